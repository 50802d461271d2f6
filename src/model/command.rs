//! Commands: every change to the fleet model, as proposed to Raft.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::audit::{AuditBatch, AuditLog};
use super::auth::{ServiceAccount, ServiceAccountToken, User};
use super::collector::{
    CollectorMap, CollectorMode, CollectorRecord, CollectorStatus, InferredApply, RemoteConfigState,
};
use super::enrollment_tokens::{EnrollmentToken, EnrollmentTokens};
use super::event::NewEvent;
use super::feature_level::FeatureLevel;
use super::fleet_items::FleetItems;
use super::labels::{Labels, Selector};
use super::pipeline::{Destination, Pipeline, Route, Source};
use super::rollouts::StagedStrategy;
use super::slots::{SlotEpoch, SlotMove, SlotMoveReason, SlotTable};
use super::stability::StabilityLevel;
use super::{Role, TokenHash, UnixMillis};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// First start of an empty cluster: the `admin` user and the slot table.
    Bootstrap {
        node_id: u64,
        admin_user_id: String,
        admin_password_hash: String,
        at: UnixMillis,
    },
    CreateSession {
        #[serde(with = "super::auth::hex_hash")]
        session_hash: TokenHash,
        user_id: String,
        expires_at: UnixMillis,
        at: UnixMillis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remote_addr: Option<String>,
    },
    DeleteSession {
        #[serde(with = "super::auth::hex_hash")]
        session_hash: TokenHash,
    },
    /// Ends every session of a user (sign out everywhere).
    DeleteUserSessions {
        user_id: String,
    },
    /// A password user beside the bootstrap `admin` (Settings → Users).
    CreateUser {
        id: String,
        username: String,
        role: Role,
        /// argon2id PHC string; the password itself never reaches the log.
        password_hash: String,
        at: UnixMillis,
    },
    /// Changes a user's role or disables/enables it; disabling ends its sessions. Refused when it
    /// would leave no enabled admin.
    UpdateUser {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disabled: Option<bool>,
        at: UnixMillis,
    },
    /// Deletes a user and its sessions. Refused for the last enabled admin.
    DeleteUser {
        id: String,
    },
    /// Replaces a user's password and ends its sessions, except `keep_session` (the hex session key
    /// of the caller changing their own password).
    SetUserPassword {
        user_id: String,
        /// argon2id PHC string.
        password_hash: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_session: Option<String>,
        at: UnixMillis,
    },
    CreateServiceAccount {
        id: String,
        name: String,
        role: Role,
        at: UnixMillis,
    },
    CreateServiceAccountToken {
        id: String,
        service_account_id: String,
        label: String,
        #[serde(with = "super::auth::hex_hash")]
        token_hash: TokenHash,
        #[serde(default)]
        prefix: String,
        expires_at: Option<UnixMillis>,
        at: UnixMillis,
    },
    /// Revokes one token: it stops authenticating when this applies.
    DeleteServiceAccountToken {
        service_account_id: String,
        id: String,
    },
    /// Deletes a service account and revokes all of its tokens.
    DeleteServiceAccount {
        id: String,
    },
    /// When service-account tokens were last used, batched by the node that saw them (token id →
    /// time). Tokens deleted in the meantime are skipped.
    RecordTokenUse {
        uses: BTreeMap<String, UnixMillis>,
    },
    /// A write and its audit records (the write's own, and refusals queued before it), committed
    /// together: applied only if `command` applies.
    Audited {
        audit: AuditBatch,
        command: Box<Command>,
    },
    /// Audit records of requests that changed nothing (refused, failed), batched by the audit writer.
    RecordAudit {
        audit: AuditBatch,
    },
    CreateCollector {
        id: String,
        name: String,
        mode: CollectorMode,
        remote_attributes: BTreeMap<String, String>,
        at: UnixMillis,
        /// Absent in entries logged before stability levels: generally-available.
        #[serde(default, skip_serializing_if = "StabilityLevel::is_default")]
        stability_level: StabilityLevel,
    },
    /// Creates several collectors at once (`POST /collectors:batch`), each as
    /// [`Command::CreateCollector`] would, with its labels, and, when one was minted, its first token
    /// as [`Command::SetCollectorToken`] would set it. All or none: refused when an id or a name exists
    /// already or is listed twice, when labels are invalid, or when a token hash is taken. Ids and
    /// token hashes are made by the proposer, so every replica applies the same entry alike.
    CreateCollectors {
        collectors: Vec<NewCollector>,
        at: UnixMillis,
    },
    /// The `--stability.level` the collector's Alloy runs with.
    SetCollectorStabilityLevel {
        collector_id: String,
        level: StabilityLevel,
        /// When the config re-rendered at the new level was made (absent in entries logged before
        /// the level changed how a config renders).
        #[serde(default)]
        at: UnixMillis,
    },
    DeleteCollector {
        id: String,
    },
    /// Changes the operator-set labels of one or more collectors (all or none): `replace` sets the
    /// whole set, else `set` adds or overwrites keys and `remove` drops them. Re-renders each.
    SetCollectorLabels {
        collector_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replace: Option<Labels>,
        #[serde(default, skip_serializing_if = "Labels::is_empty")]
        set: Labels,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
        at: UnixMillis,
    },
    /// Deletes several collectors at once, each as [`Command::DeleteCollector`] would. Without
    /// `prune` (`POST /collectors:bulk`): all or none, refused when one is missing or listed twice.
    /// With it (`POST /collectors:prune`): refused only when one is listed twice; an id that is gone,
    /// or whose replicated last activity is at or after the cut-off ([`prune_skip`]), is skipped — it
    /// was deleted, or it reconnected, since it was selected — and the skips are kept under the
    /// prune's id in `FleetState::prune_skips`, where its request reads them.
    DeleteCollectors {
        ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prune: Option<PruneCutoff>,
    },
    /// Mints (or rotates) the tokens of several collectors at once, each as
    /// [`Command::SetCollectorToken`] would (all or none).
    SetCollectorTokens {
        tokens: Vec<CollectorTokenChange>,
        at: UnixMillis,
    },
    /// Mints (or rotates) the collector's token: the previous hash stops matching when this applies.
    SetCollectorToken {
        collector_id: String,
        #[serde(with = "super::auth::hex_hash")]
        token_hash: TokenHash,
        prefix: String,
        at: UnixMillis,
    },
    /// Creates (`create`) or replaces a tenant-wide pipeline.
    PutPipeline {
        pipeline: Pipeline,
        create: bool,
        at: UnixMillis,
    },
    DeletePipeline {
        id: String,
        at: UnixMillis,
    },
    PutSource {
        collector_id: String,
        source: Source,
        create: bool,
        at: UnixMillis,
    },
    DeleteSource {
        collector_id: String,
        id: String,
        at: UnixMillis,
    },
    /// Creates or replaces a destination. Credentials are write-only: keys absent from
    /// `destination.credentials` keep their sealed value unless listed in `remove_credentials`.
    PutDestination {
        collector_id: String,
        destination: Destination,
        #[serde(default)]
        remove_credentials: Vec<String>,
        create: bool,
        at: UnixMillis,
    },
    DeleteDestination {
        collector_id: String,
        id: String,
        at: UnixMillis,
    },
    PutRoute {
        collector_id: String,
        route: Route,
        create: bool,
        at: UnixMillis,
    },
    DeleteRoute {
        collector_id: String,
        id: String,
        at: UnixMillis,
    },
    /// Creates or replaces a fleet-wide source, attached to the collectors `selector` matches.
    PutFleetSource {
        source: Source,
        selector: Selector,
        create: bool,
        at: UnixMillis,
    },
    DeleteFleetSource {
        id: String,
        at: UnixMillis,
    },
    /// Creates or replaces a fleet-wide destination; credentials as in [`Command::PutDestination`].
    PutFleetDestination {
        destination: Destination,
        selector: Selector,
        #[serde(default)]
        remove_credentials: Vec<String>,
        create: bool,
        at: UnixMillis,
    },
    DeleteFleetDestination {
        id: String,
        at: UnixMillis,
    },
    /// Creates or replaces a fleet-wide route; its destinations are fleet-wide ones.
    PutFleetRoute {
        route: Route,
        selector: Selector,
        create: bool,
        at: UnixMillis,
    },
    DeleteFleetRoute {
        id: String,
        at: UnixMillis,
    },
    /// A change to a shared item rolled out in batches (`model/rollouts.rs`): the first batch now,
    /// the rest when the rollout driver releases them.
    Staged {
        strategy: StagedStrategy,
        command: Box<Command>,
    },
    /// Releases the next batch of a running rollout (the leader's rollout driver).
    AdvanceRollout {
        id: String,
        batch: usize,
        at: UnixMillis,
    },
    /// Pauses a running rollout (the driver, when a collector of it reports FAILED).
    PauseRollout {
        id: String,
        reason: String,
        at: UnixMillis,
    },
    ResumeRollout {
        id: String,
        at: UnixMillis,
    },
    /// Marks a running rollout whose batches are all released and settled done (the driver).
    CompleteRollout {
        id: String,
        at: UnixMillis,
    },
    /// Puts the rollout's shared item back at its previous revision for every collector: `abort`
    /// (running or paused only) or roll back (any, while it is the item's latest change).
    RevertRollout {
        id: String,
        abort: bool,
        at: UnixMillis,
    },
    /// Live observations of many collectors, batched by their owner node.
    RecordActivity {
        updates: Vec<ActivityUpdate>,
    },
    /// Hands slots to other nodes (the leader's balancer). All or nothing: every move must name the
    /// slot's current owner and epoch.
    MoveSlots {
        moves: Vec<SlotMove>,
        reason: SlotMoveReason,
        at: UnixMillis,
    },
    /// A join token (`model/join_tokens.rs`): only `H`, SHA-256 of the token, is stored.
    CreateJoinToken {
        id: String,
        #[serde(with = "super::auth::hex_hash")]
        token_hash: TokenHash,
        uses: u32,
        expires_at: UnixMillis,
        at: UnixMillis,
    },
    /// One use of the join token named by `lookup` (SHA-256 of `H`), taken by node `node_id`'s join.
    ConsumeJoinToken {
        #[serde(with = "super::auth::hex_hash")]
        lookup: TokenHash,
        node_id: u64,
        at: UnixMillis,
    },
    /// First write of a cluster created by `linkmesh restore`, instead of `Bootstrap`: the backed-up
    /// fleet with every slot given to `node_id` (one epoch up), and the old cluster's sessions and join
    /// tokens left behind (they are not part of [`RestoredFleet`]). Refused once the cluster is
    /// bootstrapped.
    RestoreFleet {
        node_id: u64,
        fleet: Box<RestoredFleet>,
        at: UnixMillis,
    },
    /// An OpAMP enrollment token (`model/enrollment_tokens.rs`): only SHA-256 of the token is stored.
    /// `token.created_at` is the command's time.
    CreateEnrollmentToken {
        token: EnrollmentToken,
    },
    /// The token stops authenticating; the open connections of the agents it enrolled close.
    RevokeEnrollmentToken {
        id: String,
        at: UnixMillis,
    },
    /// An OpAMP agent presenting enrollment token `token_id` with instance uid `instance_uid`: bound to
    /// the collector already enrolled with that uid (rebound if another token enrolled it), else a
    /// new `opamp` collector `collector_id` named `name` (made unique with the uid when taken) with
    /// the token's labels. A no-op when the uid is already bound to this token.
    EnrollCollector {
        token_id: String,
        instance_uid: String,
        collector_id: String,
        name: String,
        at: UnixMillis,
    },
    /// An operator asks an `opamp` collector's agent to restart its collector: the collector's
    /// restart count goes up, and the owner's actor sends the command (`command{type: Restart}`).
    RequestRestart {
        collector_id: String,
        at: UnixMillis,
    },
    /// The cluster moves to `level` (`model/feature_level.rs`): proposed by the leader only once every
    /// member reported a release that knows it; never lowers the level.
    RaiseFeatureLevel {
        level: FeatureLevel,
        at: UnixMillis,
    },
}

impl Command {
    /// The feature level the cluster must run at before this command may reach the log: a member
    /// of an older release could not decode it. `RaiseFeatureLevel` is new too, but it is gated by
    /// the leader's check that every member knows the level it raises to, not by the level it leaves.
    pub fn needs_level(&self) -> FeatureLevel {
        match self {
            Command::Audited { command, .. } | Command::Staged { command, .. } => command.needs_level(),
            Command::CreateCollectors { .. } => FeatureLevel::BATCH_AND_BINARY_SNAPSHOTS,
            Command::CreateEnrollmentToken { .. }
            | Command::RevokeEnrollmentToken { .. }
            | Command::EnrollCollector { .. }
            | Command::RequestRestart { .. } => FeatureLevel::OPAMP_ENROLLMENT,
            _ => FeatureLevel::BASELINE,
        }
    }
}

/// One collector's new token in [`Command::SetCollectorTokens`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorTokenChange {
    pub collector_id: String,
    #[serde(with = "super::auth::hex_hash")]
    pub token_hash: TokenHash,
    pub prefix: String,
}

/// One collector of [`Command::CreateCollectors`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCollector {
    pub id: String,
    pub name: String,
    pub mode: CollectorMode,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// The minted token's hash and display prefix; the token itself never reaches the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<NewCollectorToken>,
}

/// The first token of a [`NewCollector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCollectorToken {
    #[serde(with = "super::auth::hex_hash")]
    pub token_hash: TokenHash,
    pub prefix: String,
}

/// What a restore carries over from a backup (`crate::backup`): the durable fleet, without what
/// belonged to the old cluster alone (sign-in sessions, join tokens). `slots` is the old table, kept
/// only for its epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoredFleet {
    pub slots: SlotTable,
    pub collectors: CollectorMap,
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Absent in backups taken before fleet-wide items existed.
    #[serde(default, skip_serializing_if = "FleetItems::is_empty")]
    pub fleet_items: FleetItems,
    pub users: BTreeMap<String, User>,
    pub service_accounts: BTreeMap<String, ServiceAccount>,
    pub service_account_tokens: BTreeMap<String, ServiceAccountToken>,
    pub audit: AuditLog,
    /// The agents enrolled with them keep authenticating with them. Absent in backups taken before
    /// enrollment tokens existed.
    #[serde(default, skip_serializing_if = "EnrollmentTokens::is_empty")]
    pub enrollment_tokens: EnrollmentTokens,
}

/// What a collector actor learned since its last flush. `None` fields are unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ActivityUpdate {
    pub collector_id: String,
    /// The epoch of the collector's slot when the actor that observed this was activated; `apply`
    /// drops the update unless it is still the slot's epoch (a former owner's late write). Absent in
    /// entries logged before epochs: [`SlotEpoch::INITIAL`], the epoch they were written in.
    #[serde(default)]
    pub slot_epoch: SlotEpoch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CollectorStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_attributes: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<UnixMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<Delivered>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<RemoteStatusReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred_apply: Option<InferredApply>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NewEvent>,
}

/// What makes a [`Command::DeleteCollectors`] a prune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneCutoff {
    /// Skip a collector whose replicated last activity is at or after this.
    pub inactive_before: UnixMillis,
    /// Unique per request: where its skips are kept ([`PruneSkips`]).
    pub prune_id: String,
}

/// Why a prune's [`Command::DeleteCollectors`] leaves a selected id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneSkip {
    /// No such collector any more: deleted by another call since it was selected.
    Gone,
    /// Its replicated last activity is at or after the cut-off: it reconnected since it was selected.
    Active,
}

/// What a prune does with a selected id whose record is `record`: `None` deletes it.
pub fn prune_skip(record: Option<&CollectorRecord>, inactive_before: UnixMillis) -> Option<PruneSkip> {
    match record {
        None => Some(PruneSkip::Gone),
        Some(record) if record.last_active() >= inactive_before => Some(PruneSkip::Active),
        Some(_) => None,
    }
}

/// The skips of the latest prunes that skipped something, by prune id, oldest first: a prune's
/// request tells its own deletions from other calls' only by this (a prune absent here skipped
/// nothing). Bounded by [`PruneSkips::CAPACITY`]: read at once, after the entry applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PruneSkips(VecDeque<(String, Vec<(String, PruneSkip)>)>);

impl PruneSkips {
    pub const CAPACITY: usize = 64;

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn record(&mut self, prune_id: &str, skips: Vec<(String, PruneSkip)>) {
        if skips.is_empty() {
            return;
        }
        if self.0.len() == Self::CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back((prune_id.to_owned(), skips));
    }

    /// What the prune `prune_id` skipped (empty when nothing, or when forgotten already).
    pub fn of(&self, prune_id: &str) -> &[(String, PruneSkip)] {
        self.0.iter().rev().find(|(id, _)| id == prune_id).map_or(&[], |(_, skips)| skips.as_slice())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub hash: String,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteStatusReport {
    pub state: RemoteConfigState,
    pub error: Option<String>,
    /// The hash of the config the report is about: the one last delivered when it arrived (Alloy's
    /// report names none; the next poll after a delivery reports on it). Absent in entries logged
    /// before rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl ActivityUpdate {
    pub fn for_collector(collector_id: impl Into<String>) -> Self {
        ActivityUpdate { collector_id: collector_id.into(), ..ActivityUpdate::default() }
    }

    /// Folds a later update into this one, keeping the newest value of every field and all events.
    /// Updates of different epochs are never mixed: the older epoch is already fenced off (its slot
    /// moved since), so the newer update replaces it whole, and an older one is dropped.
    pub fn merge(&mut self, later: ActivityUpdate) {
        match later.slot_epoch.cmp(&self.slot_epoch) {
            std::cmp::Ordering::Greater => {
                *self = later;
                return;
            }
            std::cmp::Ordering::Less => return,
            std::cmp::Ordering::Equal => {}
        }
        let ActivityUpdate {
            collector_id: _,
            slot_epoch: _,
            status,
            host_id,
            local_attributes,
            last_seen_at,
            delivered,
            remote_status,
            effective_config,
            inferred_apply,
            events,
        } = later;
        self.status = status.or(self.status.take());
        self.host_id = host_id.or(self.host_id.take());
        self.local_attributes = local_attributes.or(self.local_attributes.take());
        self.last_seen_at = last_seen_at.or(self.last_seen_at.take());
        self.delivered = delivered.or(self.delivered.take());
        self.remote_status = remote_status.or(self.remote_status.take());
        self.effective_config = effective_config.or(self.effective_config.take());
        self.inferred_apply = inferred_apply.or(self.inferred_apply.take());
        self.events.extend(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::EventType;

    fn update(epoch: u64, status: CollectorStatus, event: &str) -> ActivityUpdate {
        ActivityUpdate {
            slot_epoch: SlotEpoch(epoch),
            status: Some(status),
            events: vec![NewEvent::new(UnixMillis(epoch), EventType::StatusChanged, event)],
            ..ActivityUpdate::for_collector("c1")
        }
    }

    #[test]
    fn merging_keeps_the_newer_epoch_whole_and_never_mixes_two() {
        let mut merged = update(2, CollectorStatus::Connected, "a");
        merged.host_id = Some("host-of-epoch-2".into());
        merged.merge(update(2, CollectorStatus::Stale, "b"));
        assert_eq!((merged.status, merged.events.len()), (Some(CollectorStatus::Stale), 2));
        merged.merge(update(3, CollectorStatus::Degraded, "c"));
        assert_eq!(
            merged,
            update(3, CollectorStatus::Degraded, "c"),
            "epoch 2 is fenced off: nothing of it stays"
        );
        merged.merge(update(2, CollectorStatus::Connected, "late"));
        assert_eq!(
            merged,
            update(3, CollectorStatus::Degraded, "c"),
            "an older epoch arriving late is dropped"
        );
    }

    #[test]
    fn an_update_logged_without_an_epoch_has_the_initial_one() {
        let logged = r#"{"collector_id":"c1","status":"connected"}"#;
        let update: ActivityUpdate = serde_json::from_str(logged).expect("decodes");
        assert_eq!(update.slot_epoch, SlotEpoch::INITIAL);
        assert_eq!(ActivityUpdate::for_collector("c1").slot_epoch, SlotEpoch::INITIAL);
    }
}
