//! The replicated state machine's data and its pure `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::audit::AuditLog;
use super::auth::{Role, ServiceAccount, ServiceAccountToken, Session, User};
use super::collector::{is_zero, CollectorRecord, RemoteConfigState};
use super::collector::{CollectorMap, ConfigVersion};
use super::command::{prune_skip, ActivityUpdate, Command, NewCollector, PruneSkips, RestoredFleet};
use super::deleted_tokens::DeletedTokens;
use super::enrollment_tokens::EnrollmentTokens;
use super::event::{EventType, NewEvent};
use super::feature_level::FeatureLevel;
use super::fleet_items::{Attached, FleetItems};
use super::history::{HistorySink, HistoryWrite};
use super::join_tokens::{JoinTokenError, JoinTokens};
use super::labels::check_labels;
use super::labels::Selector;
use super::name_order::NameOrder;
use super::pipeline::{Destination, Pipeline, Route, Source};
use super::rollouts::Rollouts;
use super::slots::{slot_of, MovedSlot, SlotEntry, SlotTable};
use super::UnixMillis;
use super::{parse_token_hash, TokenHash};
use crate::render::{template_check, RenderInput, SharedRender, SharedRenders};

mod enrollment_apply;
mod rollout_apply;

/// Longest effective config kept per collector; longer reports are truncated by the adapter.
pub const MAX_EFFECTIVE_CONFIG_BYTES: usize = 256 * 1024;

/// Why a command was rejected. Rejection never mutates the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    #[error("{kind} {id:?} not found")]
    NotFound { kind: String, id: String },
    #[error("{kind} {id:?} already exists")]
    AlreadyExists { kind: String, id: String },
    #[error("cluster is already bootstrapped")]
    AlreadyBootstrapped,
    #[error("{kind} {id:?} is still used by {}", used_by.join(", "))]
    InUse { kind: String, id: String, used_by: Vec<String> },
    #[error("{field}: {problem}")]
    InvalidReference { field: String, problem: String },
    /// The change is well-formed but the current state forbids it (e.g. removing the last admin).
    #[error("{problem}")]
    Precondition { problem: String },
    /// The command is new in a release some member does not run yet (`model/feature_level.rs`):
    /// nothing was written.
    #[error(
        "this change needs cluster feature level {needed}, and the cluster runs at {cluster} until every \
         member runs a linkmesh release that knows it: finish the upgrade (GET /api/v1/cluster shows each \
         member's level)"
    )]
    NeedsFeatureLevel { needed: FeatureLevel, cluster: FeatureLevel },
}

/// The result of applying a command, returned to the proposer. Beside [`ApplyError`] so that the
/// commands do not depend on the state they are applied to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutcome {
    Applied,
    Rejected(ApplyError),
}

/// Side effects of an applied command for the node's runtime (actors), delivered outside `apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    CollectorDeleted {
        collector_id: String,
    },
    CollectorRenderInputsChanged {
        collector_id: String,
    },
    /// The collector's token was minted or rotated: connections held with the old one close.
    CollectorTokenChanged {
        collector_id: String,
    },
    /// An operator asked the collector's OpAMP agent to restart: the node holding its connection asks
    /// the owner what to send.
    CollectorRestartRequested {
        collector_id: String,
    },
    /// Slots changed owner: the old owner's actors of these slots hand over and stop, the new owner
    /// activates the ones that expect polls.
    SlotsMoved {
        moved: Vec<MovedSlot>,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FleetState {
    pub bootstrapped: bool,
    /// Slot → owner node and epoch; empty until bootstrap. Snapshots written before epochs call it
    /// `slot_owners` (see `model/slots.rs`).
    #[serde(alias = "slot_owners")]
    pub slots: SlotTable,
    pub collectors: CollectorMap,
    /// Tenant-wide pipelines, referenced by routes.
    #[serde(default)]
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Fleet-wide sources, destinations and routes, attached to collectors by label selector.
    #[serde(default, skip_serializing_if = "FleetItems::is_empty")]
    pub fleet_items: FleetItems,
    /// How changes reach the collectors they alter (`model/rollouts.rs`).
    #[serde(default, skip_serializing_if = "Rollouts::is_empty")]
    pub rollouts: Rollouts,
    pub users: BTreeMap<String, User>,
    pub service_accounts: BTreeMap<String, ServiceAccount>,
    pub service_account_tokens: BTreeMap<String, ServiceAccountToken>,
    /// Keyed by the hex SHA-256 of the session cookie.
    pub sessions: BTreeMap<String, Session>,
    /// Who changed what, bounded by `audit.retention` (see `model/audit.rs`).
    #[serde(default)]
    pub audit: AuditLog,
    /// Who may join the cluster (`model/join_tokens.rs`).
    #[serde(default)]
    pub join_tokens: JoinTokens,
    /// How OpAMP agents enroll (`model/enrollment_tokens.rs`, feature level 4).
    #[serde(default, skip_serializing_if = "EnrollmentTokens::is_empty")]
    pub enrollment_tokens: EnrollmentTokens,
    /// The current tokens of recently deleted collectors (`model/deleted_tokens.rs`).
    #[serde(default)]
    pub deleted_tokens: DeletedTokens,
    /// What the latest prunes skipped (see [`Command::DeleteCollectors`]).
    #[serde(default, skip_serializing_if = "PruneSkips::is_empty")]
    pub prune_skips: PruneSkips,
    /// What every member can decode (`model/feature_level.rs`). Left out at the baseline, so a state
    /// at level 1 serializes (and digests) exactly as releases before levels wrote it.
    #[serde(default, skip_serializing_if = "FeatureLevel::is_baseline")]
    feature_level: FeatureLevel,
    /// The last history key given to a collector (`model/history.rs`); 0 below `HISTORY_ON_DISK`.
    #[serde(default, skip_serializing_if = "is_zero")]
    next_history_key: u64,
    /// Derived from `collectors`; rebuilt by [`FleetState::rebuild_indexes`] after a snapshot loads.
    #[serde(skip)]
    collector_token_index: HashMap<TokenHash, String>,
    /// The rotated-out token of each collector → the collector (see `CollectorRecord::rotated_token_hash`).
    #[serde(skip)]
    rotated_collector_token_index: HashMap<TokenHash, String>,
    #[serde(skip)]
    service_account_token_index: HashMap<TokenHash, String>,
    #[serde(skip)]
    collector_name_index: HashMap<String, String>,
    /// Host id → collectors reporting it (usually one; a shared host is reported as a conflict).
    #[serde(skip)]
    host_id_index: HashMap<String, BTreeSet<String>>,
    /// Enrolled OpAMP agents: instance uid → collector (`CollectorRecord::enrollment`).
    #[serde(skip)]
    instance_uid_index: HashMap<String, String>,
    /// The collectors in natural name order with their status (`model/name_order.rs`), for the list.
    #[serde(skip)]
    name_order: NameOrder,
    /// Set on a scope made only to check a write ([`FleetState::check_scope`]): configs are not
    /// rendered again when their inputs change (the checks read the inputs).
    #[serde(skip)]
    skip_renders: bool,
    /// What the commands applied since the last [`FleetState::take_history_writes`] write to the
    /// history tree (`model/history.rs`); empty below `HISTORY_ON_DISK`.
    #[serde(skip)]
    history_writes: PendingWrites,
}

/// Writes on their way to the history tree: transient, so two states that applied the same commands
/// compare equal whether or not their writes were taken yet.
#[derive(Debug, Clone, Default)]
struct PendingWrites(Vec<HistoryWrite>);

impl PartialEq for PendingWrites {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl FleetState {
    /// Applies one command. Either the whole command takes effect or, on `Err`, nothing does.
    /// Writes that give collectors new config versions are recorded as rollouts (`rollout_apply.rs`).
    /// What the command writes outside the model (a collector's events, from `HISTORY_ON_DISK` on)
    /// is added to [`take_history_writes`](Self::take_history_writes).
    pub fn apply(&mut self, command: &Command) -> Result<Vec<Effect>, ApplyError> {
        self.admits(command)?;
        let written = self.history_writes.0.len();
        let applied = self.apply_tracked(command);
        if applied.is_err() {
            self.history_writes.0.truncate(written);
        }
        applied
    }

    /// The history writes of the commands applied since the last call, in apply order.
    pub fn take_history_writes(&mut self) -> Vec<HistoryWrite> {
        std::mem::take(&mut self.history_writes.0)
    }

    /// Where new events go: `Some` (the history writes) once the level keeps them on disk.
    fn event_sink<'a>(
        writes: &'a mut PendingWrites,
        next_key: &'a mut u64,
        level: FeatureLevel,
    ) -> Option<HistorySink<'a>> {
        (level >= FeatureLevel::HISTORY_ON_DISK).then_some(HistorySink { writes: &mut writes.0, next_key })
    }

    /// The level the cluster runs at: what every member can decode.
    pub fn feature_level(&self) -> FeatureLevel {
        self.feature_level
    }

    /// Refuses a command the cluster's feature level does not admit yet. Checked before proposing
    /// (so the entry never reaches an old member's log) and again here, where every replica agrees.
    pub fn admits(&self, command: &Command) -> Result<(), ApplyError> {
        let needed = command.needs_level();
        if needed > self.feature_level {
            return Err(ApplyError::NeedsFeatureLevel { needed, cluster: self.feature_level });
        }
        Ok(())
    }

    fn apply_command(&mut self, command: &Command) -> Result<Vec<Effect>, ApplyError> {
        match command {
            Command::Bootstrap { node_id, admin_user_id, admin_password_hash, at } => {
                if self.bootstrapped {
                    return Err(ApplyError::AlreadyBootstrapped);
                }
                self.bootstrapped = true;
                self.slots = SlotTable::assigned_to(*node_id);
                self.users.insert(
                    admin_user_id.clone(),
                    User {
                        id: admin_user_id.clone(),
                        username: "admin".to_owned(),
                        role: Role::Admin,
                        password_hash: admin_password_hash.clone(),
                        created_at: *at,
                        disabled: false,
                    },
                );
                Ok(vec![])
            }
            Command::CreateSession { session_hash, user_id, expires_at, at, remote_addr } => {
                let user = self.users.get(user_id).ok_or_else(|| not_found("user", user_id))?;
                if user.disabled {
                    return Err(ApplyError::Precondition {
                        problem: format!("user {user_id:?} is disabled"),
                    });
                }
                self.sessions.retain(|_, session| session.expires_at > *at);
                self.sessions.insert(
                    hex::encode(session_hash),
                    Session {
                        user_id: user_id.clone(),
                        created_at: *at,
                        expires_at: *expires_at,
                        remote_addr: remote_addr.clone(),
                    },
                );
                Ok(vec![])
            }
            Command::DeleteSession { session_hash } => {
                self.sessions.remove(&hex::encode(session_hash));
                Ok(vec![])
            }
            Command::DeleteUserSessions { user_id } => {
                if !self.users.contains_key(user_id) {
                    return Err(not_found("user", user_id));
                }
                self.sessions.retain(|_, session| session.user_id != *user_id);
                Ok(vec![])
            }
            Command::UpdateUser { id, role, disabled, .. } => {
                let user = self.users.get(id).ok_or_else(|| not_found("user", id))?;
                let mut updated = user.clone();
                if let Some(role) = role {
                    updated.role = *role;
                }
                if let Some(disabled) = disabled {
                    updated.disabled = *disabled;
                }
                if user.is_enabled_admin() && !updated.is_enabled_admin() {
                    self.require_another_enabled_admin(id, "disabled or given another role")?;
                }
                if updated.disabled {
                    self.sessions.retain(|_, session| session.user_id != *id);
                }
                self.users.insert(id.clone(), updated);
                Ok(vec![])
            }
            Command::DeleteUser { id } => {
                let user = self.users.get(id).ok_or_else(|| not_found("user", id))?;
                if user.is_enabled_admin() {
                    self.require_another_enabled_admin(id, "deleted")?;
                }
                self.users.remove(id);
                self.sessions.retain(|_, session| session.user_id != *id);
                Ok(vec![])
            }
            Command::SetUserPassword { user_id, password_hash, keep_session, .. } => {
                let user = self.users.get_mut(user_id).ok_or_else(|| not_found("user", user_id))?;
                user.password_hash = password_hash.clone();
                self.sessions.retain(|key, session| {
                    session.user_id != *user_id || keep_session.as_deref() == Some(key.as_str())
                });
                Ok(vec![])
            }
            Command::CreateUser { id, username, role, password_hash, at } => {
                if self.users.contains_key(id) {
                    return Err(already_exists("user", id));
                }
                if self.user_by_name(username).is_some() {
                    return Err(already_exists("user", username));
                }
                self.users.insert(
                    id.clone(),
                    User {
                        id: id.clone(),
                        username: username.clone(),
                        role: *role,
                        password_hash: password_hash.clone(),
                        created_at: *at,
                        disabled: false,
                    },
                );
                Ok(vec![])
            }
            Command::CreateServiceAccount { id, name, role, at } => {
                if self.service_accounts.contains_key(id) {
                    return Err(already_exists("service account", id));
                }
                if self.service_accounts.values().any(|account| account.name == *name) {
                    return Err(already_exists("service account", name));
                }
                self.service_accounts.insert(
                    id.clone(),
                    ServiceAccount { id: id.clone(), name: name.clone(), role: *role, created_at: *at },
                );
                Ok(vec![])
            }
            Command::CreateServiceAccountToken {
                id,
                service_account_id,
                label,
                token_hash,
                prefix,
                expires_at,
                at,
            } => {
                if !self.service_accounts.contains_key(service_account_id) {
                    return Err(not_found("service account", service_account_id));
                }
                if self.service_account_tokens.contains_key(id) {
                    return Err(already_exists("service account token", id));
                }
                // As for collector tokens: 256-bit tokens never collide, and refusing keeps the index a function.
                if self.service_account_token_index.contains_key(token_hash) {
                    return Err(already_exists("service account token", &hex::encode(&token_hash[..4])));
                }
                self.service_account_tokens.insert(
                    id.clone(),
                    ServiceAccountToken {
                        id: id.clone(),
                        service_account_id: service_account_id.clone(),
                        label: label.clone(),
                        token_hash: *token_hash,
                        prefix: prefix.clone(),
                        created_at: *at,
                        expires_at: *expires_at,
                        last_used_at: None,
                    },
                );
                self.service_account_token_index.insert(*token_hash, id.clone());
                Ok(vec![])
            }
            Command::DeleteServiceAccountToken { service_account_id, id } => {
                match self.service_account_tokens.get(id) {
                    Some(token) if token.service_account_id == *service_account_id => {}
                    _ => return Err(not_found("service account token", id)),
                }
                if let Some(token) = self.service_account_tokens.remove(id) {
                    self.service_account_token_index.remove(&token.token_hash);
                }
                Ok(vec![])
            }
            Command::DeleteServiceAccount { id } => {
                self.service_accounts.remove(id).ok_or_else(|| not_found("service account", id))?;
                let index = &mut self.service_account_token_index;
                self.service_account_tokens.retain(|_, token| {
                    let keep = token.service_account_id != *id;
                    if !keep {
                        index.remove(&token.token_hash);
                    }
                    keep
                });
                Ok(vec![])
            }
            Command::RecordTokenUse { uses } => {
                for (token_id, used_at) in uses {
                    if let Some(token) = self.service_account_tokens.get_mut(token_id) {
                        token.last_used_at =
                            Some(token.last_used_at.map_or(*used_at, |seen| seen.max(*used_at)));
                    }
                }
                Ok(vec![])
            }
            Command::Audited { audit, command } => {
                if matches!(**command, Command::Audited { .. } | Command::RecordAudit { .. }) {
                    return Err(ApplyError::InvalidReference {
                        field: "command".into(),
                        problem: "audit records cannot wrap audit records".into(),
                    });
                }
                let rollouts_before = self.rollouts.next_id;
                let effects = self.apply(command)?;
                self.note_rollout_starter(rollouts_before, audit);
                self.audit.record(audit);
                Ok(effects)
            }
            Command::RecordAudit { audit } => {
                self.audit.record(audit);
                Ok(vec![])
            }
            Command::CreateCollector { id, name, mode, remote_attributes, at, stability_level } => {
                if self.collectors.contains_key(id) {
                    return Err(already_exists("collector", id));
                }
                if self.collector_name_index.contains_key(name) {
                    return Err(already_exists("collector named", name));
                }
                let mut record =
                    CollectorRecord::new(id.clone(), name.clone(), *mode, remote_attributes.clone(), *at);
                record.stability_level = *stability_level;
                self.insert_new_collector(record, *at);
                Ok(vec![])
            }
            Command::CreateCollectors { collectors, at } => {
                self.check_new_collectors(collectors)?;
                for new in collectors {
                    let mut record = CollectorRecord::new(
                        new.id.clone(),
                        new.name.clone(),
                        new.mode,
                        BTreeMap::new(),
                        *at,
                    );
                    record.labels = new.labels.clone();
                    self.insert_new_collector(record, *at);
                    if let Some(token) = &new.token {
                        self.set_collector_token(&new.id, &token.token_hash, &token.prefix, *at);
                    }
                }
                Ok(vec![])
            }
            Command::SetCollectorStabilityLevel { collector_id, level, at } => {
                let record = self
                    .collectors
                    .get_mut(collector_id)
                    .ok_or_else(|| not_found("collector", collector_id))?;
                record.stability_level = *level;
                // The level decides how a `debug` destination renders.
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::SetCollectorLabels { collector_ids, replace, set, remove, at } => {
                let mut changed = Vec::with_capacity(collector_ids.len());
                for id in collector_ids {
                    let record = self.collectors.get(id).ok_or_else(|| not_found("collector", id))?;
                    let mut labels = replace.clone().unwrap_or_else(|| record.labels.clone());
                    labels.extend(set.iter().map(|(key, value)| (key.clone(), value.clone())));
                    for key in remove {
                        labels.remove(key);
                    }
                    check_labels(&labels).map_err(|problem| ApplyError::InvalidReference {
                        field: "labels".into(),
                        problem: format!("collector {:?}: {problem}", record.name),
                    })?;
                    if labels != record.labels {
                        changed.push((id, labels));
                    }
                }
                let mut relabelled = Vec::with_capacity(changed.len());
                for (id, labels) in changed {
                    if let Some(record) = self.collectors.get_mut(id) {
                        record.labels = labels;
                    }
                    relabelled.push(id.to_owned());
                }
                Ok(self.rerender_many(&relabelled, *at))
            }
            Command::DeleteCollector { id } => {
                if !self.collectors.contains_key(id) {
                    return Err(not_found("collector", id));
                }
                Ok(vec![self.remove_collector(id)])
            }
            Command::DeleteCollectors { ids, prune } => {
                let mut seen = BTreeSet::new();
                for id in ids {
                    if prune.is_none() && !self.collectors.contains_key(id) {
                        return Err(not_found("collector", id));
                    }
                    if !seen.insert(id) {
                        return Err(listed_twice("ids", id));
                    }
                }
                let mut doomed = Vec::with_capacity(ids.len());
                let mut skips = Vec::new();
                for id in ids {
                    // A prune skips what was deleted or reconnected since its selection.
                    let cutoff = prune.as_ref().map(|prune| prune.inactive_before);
                    match cutoff.and_then(|before| prune_skip(self.collector(id), before)) {
                        Some(skip) => skips.push((id.clone(), skip)),
                        None => doomed.push(id),
                    }
                }
                if let Some(prune) = prune {
                    self.prune_skips.record(&prune.prune_id, skips);
                }
                Ok(doomed.into_iter().map(|id| self.remove_collector(id)).collect())
            }
            Command::SetCollectorToken { collector_id, token_hash, prefix, at } => {
                self.check_collector_token(collector_id, token_hash)?;
                self.set_collector_token(collector_id, token_hash, prefix, *at);
                Ok(vec![Effect::CollectorTokenChanged { collector_id: collector_id.clone() }])
            }
            Command::SetCollectorTokens { tokens, at } => {
                let mut ids = BTreeSet::new();
                let mut hashes = BTreeSet::new();
                for change in tokens {
                    self.check_collector_token(&change.collector_id, &change.token_hash)?;
                    if !ids.insert(&change.collector_id) {
                        return Err(listed_twice("tokens", &change.collector_id));
                    }
                    if !hashes.insert(change.token_hash) {
                        return Err(already_exists("collector token", &hex::encode(&change.token_hash[..4])));
                    }
                }
                let mut changed = Vec::with_capacity(tokens.len());
                for change in tokens {
                    self.set_collector_token(&change.collector_id, &change.token_hash, &change.prefix, *at);
                    changed.push(Effect::CollectorTokenChanged { collector_id: change.collector_id.clone() });
                }
                Ok(changed)
            }
            Command::PutPipeline { pipeline, create, at } => {
                let exists = self.pipelines.contains_key(&pipeline.id);
                if *create && exists {
                    return Err(already_exists("pipeline", &pipeline.id));
                }
                if !*create && !exists {
                    return Err(not_found("pipeline", &pipeline.id));
                }
                if self.pipelines.values().any(|other| other.name == pipeline.name && other.id != pipeline.id)
                {
                    return Err(already_exists("pipeline named", &pipeline.name));
                }
                self.pipelines.insert(pipeline.id.clone(), pipeline.clone());
                let users = self.collectors_using_pipeline(&pipeline.id);
                Ok(self.rerender_many(&users, *at))
            }
            Command::DeletePipeline { id, .. } => {
                if !self.pipelines.contains_key(id) {
                    return Err(not_found("pipeline", id));
                }
                let used_by: Vec<String> = self
                    .collectors
                    .values()
                    .flat_map(|record| {
                        record
                            .routes
                            .values()
                            .filter(|route| route.pipeline_id.as_deref() == Some(id.as_str()))
                            .map(move |route| {
                                format!("route {:?} of collector {:?}", route.name, record.name)
                            })
                    })
                    .chain(
                        self.fleet_items
                            .routes
                            .values()
                            .filter(|attached| attached.item.pipeline_id.as_deref() == Some(id.as_str()))
                            .map(|attached| format!("fleet-wide route {:?}", attached.item.name)),
                    )
                    .collect();
                if !used_by.is_empty() {
                    return Err(ApplyError::InUse { kind: "pipeline".into(), id: id.clone(), used_by });
                }
                self.pipelines.remove(id);
                Ok(vec![])
            }
            Command::PutSource { collector_id, source, create, at } => {
                let record = self.collector_mut(collector_id)?;
                check_put(&record.sources, &source.id, *create, "source")?;
                if record.sources.values().any(|other| other.name == source.name && other.id != source.id) {
                    return Err(already_exists("source named", &source.name));
                }
                record.sources.insert(source.id.clone(), source.clone());
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::DeleteSource { collector_id, id, at } => {
                let record = self.collector_mut(collector_id)?;
                record.sources.remove(id).ok_or_else(|| not_found("source", id))?;
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::PutDestination { collector_id, destination, remove_credentials, create, at } => {
                let record = self.collector_mut(collector_id)?;
                check_put(&record.destinations, &destination.id, *create, "destination")?;
                if record
                    .destinations
                    .values()
                    .any(|other| other.name == destination.name && other.id != destination.id)
                {
                    return Err(already_exists("destination named", &destination.name));
                }
                let mut stored = destination.clone();
                if let Some(previous) = record.destinations.get(&destination.id) {
                    for (key, sealed) in &previous.credentials {
                        if !stored.credentials.contains_key(key) && !remove_credentials.contains(key) {
                            stored.credentials.insert(key.clone(), sealed.clone());
                        }
                    }
                }
                record.destinations.insert(stored.id.clone(), stored);
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::DeleteDestination { collector_id, id, at } => {
                let record = self.collector_mut(collector_id)?;
                if !record.destinations.contains_key(id) {
                    return Err(not_found("destination", id));
                }
                let used_by: Vec<String> = record
                    .routes
                    .values()
                    .filter(|route| route.destination_ids.contains(id))
                    .map(|route| format!("route {:?}", route.name))
                    .collect();
                if !used_by.is_empty() {
                    return Err(ApplyError::InUse { kind: "destination".into(), id: id.clone(), used_by });
                }
                record.destinations.remove(id);
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::PutRoute { collector_id, route, create, at } => {
                if let Some(pipeline_id) = &route.pipeline_id {
                    if !self.pipelines.contains_key(pipeline_id) {
                        return Err(ApplyError::InvalidReference {
                            field: "pipeline_id".into(),
                            problem: format!("pipeline {pipeline_id:?} does not exist"),
                        });
                    }
                }
                let record = self.collector_mut(collector_id)?;
                check_put(&record.routes, &route.id, *create, "route")?;
                if let Some(missing) =
                    route.destination_ids.iter().find(|id| !record.destinations.contains_key(*id))
                {
                    return Err(ApplyError::InvalidReference {
                        field: "destination_ids".into(),
                        problem: format!("destination {missing:?} does not exist on this collector"),
                    });
                }
                if record.routes.values().any(|other| other.name == route.name && other.id != route.id) {
                    return Err(already_exists("route named", &route.name));
                }
                record.routes.insert(route.id.clone(), route.clone());
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::DeleteRoute { collector_id, id, at } => {
                let record = self.collector_mut(collector_id)?;
                record.routes.remove(id).ok_or_else(|| not_found("route", id))?;
                Ok(self.rerender(collector_id, *at).into_iter().collect())
            }
            Command::PutFleetSource { source, selector, create, at } => {
                let sources = &self.fleet_items.sources;
                check_put(sources, &source.id, *create, "fleet-wide source")?;
                if sources.values().any(|other| other.item.name == source.name && other.item.id != source.id)
                {
                    return Err(already_exists("fleet-wide source named", &source.name));
                }
                let attached = Attached { selector: selector.clone(), item: source.clone() };
                let previous = self.fleet_items.sources.insert(source.id.clone(), attached);
                Ok(self.rerender_selected(previous.as_ref().map(|p| &p.selector), Some(selector), *at))
            }
            Command::DeleteFleetSource { id, at } => {
                let previous =
                    self.fleet_items.sources.remove(id).ok_or_else(|| not_found("fleet-wide source", id))?;
                Ok(self.rerender_selected(Some(&previous.selector), None, *at))
            }
            Command::PutFleetDestination { destination, selector, remove_credentials, create, at } => {
                let destinations = &self.fleet_items.destinations;
                check_put(destinations, &destination.id, *create, "fleet-wide destination")?;
                if destinations
                    .values()
                    .any(|other| other.item.name == destination.name && other.item.id != destination.id)
                {
                    return Err(already_exists("fleet-wide destination named", &destination.name));
                }
                let mut stored = destination.clone();
                if let Some(previous) = destinations.get(&destination.id) {
                    for (key, sealed) in &previous.item.credentials {
                        if !stored.credentials.contains_key(key) && !remove_credentials.contains(key) {
                            stored.credentials.insert(key.clone(), sealed.clone());
                        }
                    }
                }
                let attached = Attached { selector: selector.clone(), item: stored };
                let previous = self.fleet_items.destinations.insert(destination.id.clone(), attached);
                Ok(self.rerender_selected(previous.as_ref().map(|p| &p.selector), Some(selector), *at))
            }
            Command::DeleteFleetDestination { id, at } => {
                if !self.fleet_items.destinations.contains_key(id) {
                    return Err(not_found("fleet-wide destination", id));
                }
                let used_by = self.fleet_items.routes_using_destination(id);
                if !used_by.is_empty() {
                    return Err(ApplyError::InUse { kind: "destination".into(), id: id.clone(), used_by });
                }
                let previous =
                    self.fleet_items.destinations.remove(id).ok_or_else(|| not_found("destination", id))?;
                Ok(self.rerender_selected(Some(&previous.selector), None, *at))
            }
            Command::PutFleetRoute { route, selector, create, at } => {
                if let Some(pipeline_id) = &route.pipeline_id {
                    if !self.pipelines.contains_key(pipeline_id) {
                        return Err(ApplyError::InvalidReference {
                            field: "pipeline_id".into(),
                            problem: format!("pipeline {pipeline_id:?} does not exist"),
                        });
                    }
                }
                let routes = &self.fleet_items.routes;
                check_put(routes, &route.id, *create, "fleet-wide route")?;
                if let Some(missing) =
                    route.destination_ids.iter().find(|id| !self.fleet_items.destinations.contains_key(*id))
                {
                    return Err(ApplyError::InvalidReference {
                        field: "destination_ids".into(),
                        problem: format!("fleet-wide destination {missing:?} does not exist"),
                    });
                }
                if routes.values().any(|other| other.item.name == route.name && other.item.id != route.id) {
                    return Err(already_exists("fleet-wide route named", &route.name));
                }
                let attached = Attached { selector: selector.clone(), item: route.clone() };
                let previous = self.fleet_items.routes.insert(route.id.clone(), attached);
                Ok(self.rerender_selected(previous.as_ref().map(|p| &p.selector), Some(selector), *at))
            }
            Command::DeleteFleetRoute { id, at } => {
                let previous =
                    self.fleet_items.routes.remove(id).ok_or_else(|| not_found("fleet-wide route", id))?;
                Ok(self.rerender_selected(Some(&previous.selector), None, *at))
            }
            Command::Staged { .. }
            | Command::AdvanceRollout { .. }
            | Command::PauseRollout { .. }
            | Command::ResumeRollout { .. }
            | Command::CompleteRollout { .. }
            | Command::RevertRollout { .. } => self.apply_tracked(command),
            Command::RecordActivity { updates } => {
                let mut effects = Vec::new();
                for update in updates {
                    effects.extend(self.apply_activity(update));
                }
                Ok(effects)
            }
            Command::MoveSlots { moves, reason: _, at: _ } => {
                let moved = self
                    .slots
                    .apply_moves(moves)
                    .map_err(|error| ApplyError::Precondition { problem: error.to_string() })?;
                Ok(if moved.is_empty() { vec![] } else { vec![Effect::SlotsMoved { moved }] })
            }
            Command::CreateJoinToken { id, token_hash, uses, expires_at, at } => {
                self.join_tokens.create(id, token_hash, *uses, *expires_at, *at).map_err(join_token_error)?;
                Ok(vec![])
            }
            Command::ConsumeJoinToken { lookup, at, .. } => {
                self.join_tokens.consume(lookup, *at).map_err(join_token_error)?;
                Ok(vec![])
            }
            Command::CreateEnrollmentToken { token } => self.create_enrollment_token(token),
            Command::RequestRestart { collector_id, at } => self.request_restart(collector_id, *at),
            Command::RevokeEnrollmentToken { id, at } => self.revoke_enrollment_token(id, *at),
            Command::EnrollCollector { token_id, instance_uid, collector_id, name, at } => {
                self.enroll_collector(token_id, instance_uid, collector_id, name, *at)
            }
            Command::RestoreFleet { node_id, fleet, at: _ } => {
                if self.bootstrapped {
                    return Err(ApplyError::AlreadyBootstrapped);
                }
                let RestoredFleet {
                    slots,
                    collectors,
                    pipelines,
                    fleet_items,
                    users,
                    service_accounts,
                    service_account_tokens,
                    audit,
                    enrollment_tokens,
                } = (**fleet).clone();
                let history_writes = std::mem::take(&mut self.history_writes);
                let mut collectors = collectors;
                for record in collectors.values_mut().filter(|record| !record.events_on_disk()) {
                    // Keys are given again, from this state's counter, when the events move to disk.
                    record.history_key = 0;
                }
                *self = FleetState {
                    bootstrapped: true,
                    slots: slots.reassigned_to(*node_id),
                    collectors,
                    pipelines,
                    fleet_items,
                    users,
                    service_accounts,
                    service_account_tokens,
                    audit,
                    enrollment_tokens,
                    history_writes,
                    ..FleetState::default()
                };
                self.rebuild_indexes();
                Ok(vec![])
            }
            Command::RaiseFeatureLevel { level, at: _ } => {
                self.feature_level = self.feature_level.max(*level);
                if self.feature_level >= FeatureLevel::HISTORY_ON_DISK {
                    for record in self.collectors.values_mut() {
                        record.move_events_to_disk(HistorySink {
                            writes: &mut self.history_writes.0,
                            next_key: &mut self.next_history_key,
                        });
                    }
                }
                Ok(vec![])
            }
        }
    }

    /// Refuses a change that would leave no enabled admin user (nobody could manage access again).
    fn require_another_enabled_admin(&self, user_id: &str, change: &str) -> Result<(), ApplyError> {
        if self.users.values().any(|other| other.id != user_id && other.is_enabled_admin()) {
            return Ok(());
        }
        let name = self.users.get(user_id).map_or(user_id, |user| user.username.as_str());
        Err(ApplyError::Precondition {
            problem: format!(
                "user {name:?} is the last enabled admin and cannot be {change}; enable or add another admin first"
            ),
        })
    }

    /// What a restore carries over to a new cluster (`Command::RestoreFleet`): everything durable but
    /// the old cluster's sign-in sessions and join tokens.
    pub fn restorable(&self) -> RestoredFleet {
        RestoredFleet {
            slots: self.slots.clone(),
            collectors: self.collectors.clone(),
            pipelines: self.pipelines.clone(),
            fleet_items: self.fleet_items.clone(),
            users: self.users.clone(),
            service_accounts: self.service_accounts.clone(),
            service_account_tokens: self.service_account_tokens.clone(),
            audit: self.audit.clone(),
            enrollment_tokens: self.enrollment_tokens.clone(),
        }
    }

    /// The stored key (hex SHA-256 of the cookie) of the session with public id `session_id`.
    pub fn session_key(&self, session_id: &str) -> Option<&str> {
        if session_id.len() != super::auth::SESSION_ID_CHARS {
            return None;
        }
        self.sessions
            .range(session_id.to_owned()..)
            .next()
            .map(|(key, _)| key.as_str())
            .filter(|key| key.starts_with(session_id))
    }

    fn collector_mut(&mut self, collector_id: &str) -> Result<&mut CollectorRecord, ApplyError> {
        self.collectors
            .get_mut(collector_id)
            .map(|record| &mut **record)
            .ok_or_else(|| not_found("collector", collector_id))
    }

    /// Adds a collector whose id and name are free, with its `created` event, to the indexes, and
    /// renders its first config. No effect: it has no actor yet.
    fn insert_new_collector(&mut self, mut record: CollectorRecord, at: UnixMillis) {
        record.push_event(
            NewEvent::new(at, EventType::CollectorCreated, format!("collector {:?} created", record.name))
                .with("mode", record.mode.as_str()),
            Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level),
        );
        let id = record.id.clone();
        self.name_order.insert(&record);
        self.collector_name_index.insert(record.name.clone(), id.clone());
        self.collectors.insert(id.clone(), Box::new(record));
        self.rerender(&id, at);
    }

    /// Refuses a [`Command::CreateCollectors`] batch unless every id and name is free and listed
    /// once, every label set is valid, and every token hash is unknown and listed once.
    fn check_new_collectors(&self, collectors: &[NewCollector]) -> Result<(), ApplyError> {
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for (index, new) in collectors.iter().enumerate() {
            if self.collectors.contains_key(&new.id) {
                return Err(already_exists("collector", &new.id));
            }
            if !ids.insert(&new.id) {
                return Err(listed_twice("collectors", &new.id));
            }
            if self.collector_name_index.contains_key(&new.name) || !names.insert(&new.name) {
                return Err(already_exists("collector named", &new.name));
            }
            check_labels(&new.labels).map_err(|problem| ApplyError::InvalidReference {
                field: format!("collectors[{index}].labels"),
                problem,
            })?;
            if let Some(token) = &new.token {
                if self.collector_token_index.contains_key(&token.token_hash)
                    || !hashes.insert(token.token_hash)
                {
                    return Err(already_exists("collector token", &hex::encode(&token.token_hash[..4])));
                }
            }
        }
        Ok(())
    }

    /// The id of the collector named `name`, if any.
    pub fn collector_id_by_name(&self, name: &str) -> Option<&str> {
        self.collector_name_index.get(name).map(String::as_str)
    }

    /// Removes a collector that exists, keeping its current token in `deleted_tokens` so that a poll
    /// with it is told the collector was deleted.
    fn remove_collector(&mut self, id: &str) -> Effect {
        if let Some(record) = self.collectors.remove(id) {
            if record.events_on_disk() {
                self.history_writes.0.push(HistoryWrite::DropCollector { history_key: record.history_key });
            }
            if let Some(token) = &record.token {
                self.collector_token_index.remove(&token.hash);
                self.deleted_tokens.remember(token.hash, id);
            }
            if let Some(rotated) = record.rotated_token_hash.as_deref().and_then(parse_token_hash) {
                self.rotated_collector_token_index.remove(&rotated);
            }
            self.collector_name_index.remove(&record.name);
            self.name_order.remove(id);
            if let Some(host_id) = &record.host_id {
                unindex_host(&mut self.host_id_index, host_id, id);
            }
            if let Some(enrollment) = &record.enrollment {
                self.instance_uid_index.remove(&enrollment.instance_uid);
            }
        }
        Effect::CollectorDeleted { collector_id: id.to_owned() }
    }

    /// Refuses a token for a collector that does not exist, or one whose hash another collector has
    /// (256-bit tokens never collide; refusing a reused hash keeps the index a function anyway).
    fn check_collector_token(&self, collector_id: &str, token_hash: &TokenHash) -> Result<(), ApplyError> {
        if self.collector_token_index.get(token_hash).is_some_and(|owner| owner != collector_id) {
            return Err(already_exists("collector token", &hex::encode(&token_hash[..4])));
        }
        if !self.collectors.contains_key(collector_id) {
            return Err(not_found("collector", collector_id));
        }
        Ok(())
    }

    /// Gives a collector [`check_collector_token`](Self::check_collector_token) accepted its new
    /// token; the previous one is kept as the rotated-out token.
    fn set_collector_token(
        &mut self,
        collector_id: &str,
        token_hash: &TokenHash,
        prefix: &str,
        at: UnixMillis,
    ) {
        let Some(record) = self.collectors.get_mut(collector_id) else { return };
        let rotated = record.token.is_some();
        if self.feature_level >= FeatureLevel::OPAMP_ENROLLMENT {
            // A rotation ends the derived OpAMP credential too (`secrets::DataKey::opamp_credential`).
            record.credential_generation = record.credential_generation.wrapping_add(1);
        }
        if let Some(older) = record.rotated_token_hash.take().as_deref().and_then(parse_token_hash) {
            self.rotated_collector_token_index.remove(&older);
        }
        if let Some(previous) = record.token.take() {
            self.collector_token_index.remove(&previous.hash);
            record.rotated_token_hash = Some(hex::encode(previous.hash));
            self.rotated_collector_token_index.insert(previous.hash, collector_id.to_owned());
        }
        record.token =
            Some(super::TokenInfo { hash: *token_hash, prefix: prefix.to_owned(), created_at: at });
        let (event_type, message) = if rotated {
            (EventType::TokenRotated, "collector token rotated; the previous token no longer works")
        } else {
            (EventType::TokenMinted, "collector token minted")
        };
        record.push_event(
            NewEvent::new(at, event_type, message).with("prefix", prefix),
            Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level),
        );
        self.collector_token_index.insert(*token_hash, collector_id.to_owned());
    }

    pub fn collectors_using_pipeline(&self, pipeline_id: &str) -> Vec<String> {
        let fleet_routes: Vec<&Selector> = self
            .fleet_items
            .routes
            .values()
            .filter(|attached| attached.item.pipeline_id.as_deref() == Some(pipeline_id))
            .map(|attached| &attached.selector)
            .collect();
        self.collectors
            .values()
            .filter(|record| {
                record.routes.values().any(|route| route.pipeline_id.as_deref() == Some(pipeline_id))
                    || fleet_routes.iter().any(|selector| selector.matches(&record.labels))
            })
            .map(|record| record.id.clone())
            .collect()
    }

    /// The collectors either selector matches (an item's selector before and after a change).
    pub fn collectors_selected(&self, before: Option<&Selector>, after: Option<&Selector>) -> Vec<String> {
        self.collectors
            .values()
            .filter(|record| {
                before.is_some_and(|selector| selector.matches(&record.labels))
                    || after.is_some_and(|selector| selector.matches(&record.labels))
            })
            .map(|record| record.id.clone())
            .collect()
    }

    fn rerender_selected(
        &mut self,
        before: Option<&Selector>,
        after: Option<&Selector>,
        at: UnixMillis,
    ) -> Vec<Effect> {
        let selected = self.collectors_selected(before, after);
        self.rerender_many(&selected, at)
    }

    /// Applies `command` to a copy of the state it touches and returns the resulting current config of
    /// every affected collector, without changing `self` (`?validate_only=true`).
    pub fn preview(&self, command: &Command) -> Result<Vec<(String, ConfigVersion)>, ApplyError> {
        let (scoped, affected) = self.preview_scope(command)?;
        Ok(affected
            .into_iter()
            .filter_map(|id| {
                let current = scoped.collectors.get(&id)?.current_config()?.clone();
                Some((id, current))
            })
            .collect())
    }

    /// The part of the model `command` affects, with `command` applied, and the ids of the
    /// collectors whose config it may change.
    pub fn preview_scope(&self, command: &Command) -> Result<(FleetState, Vec<String>), ApplyError> {
        self.scope(command, false)
    }

    /// [`FleetState::preview_scope`] for a write about to be proposed, whose checks read the render
    /// inputs only: the affected collectors' configs are not rendered (the state machine does, once
    /// the write commits). A fleet-wide write at 10,000 collectors spent a fifth of its time there.
    pub fn check_scope(&self, command: &Command) -> Result<(FleetState, Vec<String>), ApplyError> {
        self.scope(command, true)
    }

    fn scope(&self, command: &Command, skip_renders: bool) -> Result<(FleetState, Vec<String>), ApplyError> {
        let affected = self.affected_collectors(command);
        let mut scoped = FleetState {
            pipelines: self.pipelines.clone(),
            fleet_items: self.fleet_items.clone(),
            rollouts: self.rollouts_for_scope(command),
            collectors: affected
                .iter()
                .filter_map(|id| self.collectors.get(id).map(|record| (id.clone(), record.clone())))
                .collect(),
            // The scope answers as the cluster would: a command its level refuses is refused here too.
            feature_level: self.feature_level,
            skip_renders,
            ..FleetState::default()
        };
        scoped.apply(command)?;
        Ok((scoped, affected))
    }

    /// The rollouts a scope of `command` needs. A command naming a rollout (rare) sees them all; any
    /// other only the active ones, which a change supersedes or is refused by: copying the finished
    /// ones too (up to `MAX_FINISHED_ROLLOUTS`, each with a target per collector it reached) made every
    /// write of a large fleet copy millions of targets.
    fn rollouts_for_scope(&self, command: &Command) -> Rollouts {
        let names_a_rollout = |command: &Command| {
            matches!(
                command,
                Command::AdvanceRollout { .. }
                    | Command::PauseRollout { .. }
                    | Command::ResumeRollout { .. }
                    | Command::CompleteRollout { .. }
                    | Command::RevertRollout { .. }
            )
        };
        let inner = match command {
            Command::Audited { command, .. } | Command::Staged { command, .. } => command.as_ref(),
            command => command,
        };
        if names_a_rollout(inner) {
            return self.rollouts.clone();
        }
        Rollouts {
            by_id: self.rollouts.active().map(|rollout| (rollout.id.clone(), rollout.clone())).collect(),
            next_id: self.rollouts.next_id,
        }
    }

    /// The collectors whose config `command` may change.
    pub fn affected_collectors(&self, command: &Command) -> Vec<String> {
        match command {
            Command::Staged { command, .. } => self.affected_collectors(command),
            Command::RevertRollout { id, .. } => self
                .revert_command(id, UnixMillis(0))
                .map(|revert| self.affected_collectors(&revert))
                .unwrap_or_default(),
            Command::PutPipeline { pipeline, .. } => self.collectors_using_pipeline(&pipeline.id),
            Command::DeletePipeline { id, .. } => self.collectors_using_pipeline(id),
            Command::PutSource { collector_id, .. }
            | Command::DeleteSource { collector_id, .. }
            | Command::PutDestination { collector_id, .. }
            | Command::DeleteDestination { collector_id, .. }
            | Command::PutRoute { collector_id, .. }
            | Command::DeleteRoute { collector_id, .. }
            | Command::SetCollectorStabilityLevel { collector_id, .. } => vec![collector_id.clone()],
            Command::SetCollectorLabels { collector_ids, .. } => collector_ids.clone(),
            // Only labels can bring shared items into a new collector's config.
            Command::CreateCollectors { collectors, .. } => {
                collectors.iter().filter(|new| !new.labels.is_empty()).map(|new| new.id.clone()).collect()
            }
            Command::PutFleetSource { source, selector, .. } => self.collectors_selected(
                self.fleet_items.sources.get(&source.id).map(|previous| &previous.selector),
                Some(selector),
            ),
            Command::PutFleetDestination { destination, selector, .. } => self.collectors_selected(
                self.fleet_items.destinations.get(&destination.id).map(|previous| &previous.selector),
                Some(selector),
            ),
            Command::PutFleetRoute { route, selector, .. } => self.collectors_selected(
                self.fleet_items.routes.get(&route.id).map(|previous| &previous.selector),
                Some(selector),
            ),
            Command::DeleteFleetSource { id, .. } => self.collectors_selected(
                self.fleet_items.sources.get(id).map(|previous| &previous.selector),
                None,
            ),
            Command::DeleteFleetDestination { id, .. } => self.collectors_selected(
                self.fleet_items.destinations.get(id).map(|previous| &previous.selector),
                None,
            ),
            Command::DeleteFleetRoute { id, .. } => self.collectors_selected(
                self.fleet_items.routes.get(id).map(|previous| &previous.selector),
                None,
            ),
            _ => vec![],
        }
    }

    /// Everything that determines a collector's rendered config: its own items, then the fleet-wide
    /// ones its labels select (`model/fleet_items.rs`), each group in id order; a shared item a
    /// staged rollout holds this collector back on is its previous revision.
    pub fn render_input<'a>(&'a self, record: &'a CollectorRecord) -> RenderInput<'a> {
        self.render_input_holding(record, None)
    }

    /// The fleet-wide items `record`'s config is rendered from now, whether or not they apply to its
    /// labels: the current revisions, except where a staged rollout still holds the collector back
    /// on an item's previous revision (those ids are in `held`; a held item absent before the change
    /// is left out).
    pub fn effective_fleet_items(&self, record: &CollectorRecord) -> EffectiveFleetItems<'_> {
        let held = self.held_items(&record.id, None);
        EffectiveFleetItems {
            sources: effective(&self.fleet_items.sources, &held.sources),
            destinations: effective(&self.fleet_items.destinations, &held.destinations),
            routes: effective(&self.fleet_items.routes, &held.routes),
            held: held
                .sources
                .keys()
                .chain(held.destinations.keys())
                .chain(held.routes.keys())
                .copied()
                .collect(),
        }
    }

    /// [`FleetState::render_input`], ignoring the hold of rollout `ignored` (what the collector's
    /// config will be once that rollout releases it).
    fn render_input_holding<'a>(
        &'a self,
        record: &'a CollectorRecord,
        ignored: Option<&str>,
    ) -> RenderInput<'a> {
        let labels = &record.labels;
        let held = self.held_items(&record.id, ignored);
        let sources = effective(&self.fleet_items.sources, &held.sources);
        let fleet_destinations = effective(&self.fleet_items.destinations, &held.destinations);
        let fleet_routes = effective(&self.fleet_items.routes, &held.routes);
        let applying: BTreeSet<&str> = fleet_destinations
            .iter()
            .filter(|attached| attached.applies_to(labels))
            .map(|attached| attached.item.id.as_str())
            .collect();
        let destinations: Vec<&'a Destination> = record
            .destinations
            .values()
            .chain(fleet_destinations.iter().filter(|a| a.applies_to(labels)).map(|a| &a.item))
            .collect();
        let destinations_elsewhere = self
            .fleet_items
            .destinations
            .keys()
            .map(String::as_str)
            .chain(held.destinations.keys().copied())
            .filter(|id| !applying.contains(id))
            .collect();
        let routes: Vec<&'a Route> = record
            .routes
            .values()
            .chain(
                fleet_routes
                    .iter()
                    .filter(|attached| {
                        attached.applies_to(labels)
                            && attached.item.destination_ids.iter().any(|id| applying.contains(id.as_str()))
                    })
                    .map(|attached| &attached.item),
            )
            .collect();
        let mut pipelines: BTreeMap<&'a str, &'a Pipeline> = routes
            .iter()
            .filter_map(|route| route.pipeline_id.as_deref())
            .filter_map(|id| self.pipelines.get_key_value(id))
            .map(|(id, pipeline)| (id.as_str(), pipeline))
            .collect();
        for (id, previous) in &held.pipelines {
            match previous {
                Some(pipeline) if pipelines.contains_key(id) => {
                    pipelines.insert(id, *pipeline);
                }
                Some(_) => {}
                None => {
                    pipelines.remove(id);
                }
            }
        }
        let sources: Vec<&'a Source> = record
            .sources
            .values()
            .chain(
                sources.iter().filter(|attached| attached.applies_to(labels)).map(|attached| &attached.item),
            )
            .collect();
        RenderInput {
            collector_id: &record.id,
            collector_name: &record.name,
            mode: record.mode,
            sources,
            routes,
            destinations,
            pipelines,
            stability_level: record.stability_level,
            destinations_elsewhere,
            labels: &record.labels,
            attributes: &record.local_attributes,
        }
    }

    /// Re-renders a collector; a changed config becomes a new version (and an effect for its actor).
    fn rerender(&mut self, collector_id: &str, at: UnixMillis) -> Option<Effect> {
        self.rerender_many(&[collector_id.to_owned()], at).pop()
    }

    /// Re-renders each of `collector_ids`, rendering each distinct input once (`render::SharedRenders`,
    /// byte for byte what `render::render_collector_config` renders for each).
    fn rerender_many(&mut self, collector_ids: &[String], at: UnixMillis) -> Vec<Effect> {
        if self.skip_renders {
            return Vec::new();
        }
        let rendered: Vec<(&String, SharedRender)> = {
            let mut shared = SharedRenders::default();
            collector_ids
                .iter()
                .filter_map(|id| {
                    Some((id, shared.render_shared(&self.render_input(self.collectors.get(id)?))))
                })
                .collect()
        };
        rendered
            .into_iter()
            .filter_map(|(collector_id, rendered)| {
                let record = self.collectors.get_mut(collector_id)?;
                record.record_rendered(rendered.hash, rendered.format.as_str(), rendered.text, at)?;
                Some(Effect::CollectorRenderInputsChanged { collector_id: collector_id.clone() })
            })
            .collect()
    }

    /// Activity for a collector deleted in the meantime is dropped: the delete won. So is activity
    /// stamped with an epoch its slot has left: a former owner's, written after the slot moved.
    /// Changed reported attributes re-render a collector whose config refers to one
    /// (`{{attributes.KEY}}`, `render::templates`).
    fn apply_activity(&mut self, update: &ActivityUpdate) -> Option<Effect> {
        if update.slot_epoch != self.slots.epoch(slot_of(&update.collector_id)) {
            return None;
        }
        let record = self.collectors.get_mut(&update.collector_id)?;
        let attributes_changed =
            update.local_attributes.as_ref().is_some_and(|attributes| *attributes != record.local_attributes);
        if let Some(status) = update.status.filter(|status| *status != record.status) {
            record.status = status;
            self.name_order.set_status(&record.id, status);
        }
        if let Some(host_id) = &update.host_id {
            if let Some(previous) = record.host_id.replace(host_id.clone()) {
                unindex_host(&mut self.host_id_index, &previous, &record.id);
            }
            self.host_id_index.entry(host_id.clone()).or_default().insert(record.id.clone());
        }
        if let Some(attributes) = &update.local_attributes {
            record.local_attributes = attributes.clone();
        }
        if let Some(last_seen_at) = update.last_seen_at {
            record.last_seen_at =
                Some(record.last_seen_at.map_or(last_seen_at, |seen| seen.max(last_seen_at)));
        }
        if let Some(delivered) = &update.delivered {
            record.config.delivered_hash = Some(delivered.hash.clone());
            record.config.delivered_at = Some(delivered.at);
        }
        if let Some(report) = &update.remote_status {
            record.config.remote_status = Some(report.state);
            record.config.status_hash = report.hash.clone();
            record.config.remote_error =
                if report.state == RemoteConfigState::Failed { report.error.clone() } else { None };
        }
        if let Some(effective_config) = &update.effective_config {
            record.config.effective_config = Some(effective_config.clone());
        }
        if let Some(inferred) = &update.inferred_apply {
            record.config.inferred = Some(inferred.clone());
        }
        for event in &update.events {
            record.push_event(
                event.clone(),
                Self::event_sink(&mut self.history_writes, &mut self.next_history_key, self.feature_level),
            );
        }
        let at = record.last_seen_at.unwrap_or_default();
        let record = self.collectors.get(&update.collector_id)?;
        if attributes_changed && template_check::uses_attributes(&self.render_input(record)) {
            return self.rerender(&update.collector_id, at);
        }
        None
    }

    /// Recomputes the derived lookup tables (after deserializing a snapshot).
    pub fn rebuild_indexes(&mut self) {
        self.collector_token_index = self
            .collectors
            .values()
            .filter_map(|record| record.token.as_ref().map(|token| (token.hash, record.id.clone())))
            .collect();
        self.rotated_collector_token_index = self
            .collectors
            .values()
            .filter_map(|record| {
                let hash = record.rotated_token_hash.as_deref().and_then(parse_token_hash)?;
                Some((hash, record.id.clone()))
            })
            .collect();
        self.service_account_token_index =
            self.service_account_tokens.values().map(|token| (token.token_hash, token.id.clone())).collect();
        self.audit.rebuild_index();
        self.deleted_tokens.rebuild_index();
        self.collector_name_index =
            self.collectors.values().map(|record| (record.name.clone(), record.id.clone())).collect();
        self.name_order = NameOrder::rebuilt(&self.collectors);
        self.host_id_index.clear();
        for record in self.collectors.values() {
            if let Some(host) = &record.host_id {
                self.host_id_index.entry(host.clone()).or_default().insert(record.id.clone());
            }
        }
        self.instance_uid_index = self
            .collectors
            .values()
            .filter_map(|record| Some((record.enrollment.as_ref()?.instance_uid.clone(), record.id.clone())))
            .collect();
        self.enrollment_tokens.rebuild_index();
    }

    /// The collectors in natural name order, with their replicated status and the count per status.
    pub fn name_order(&self) -> &NameOrder {
        &self.name_order
    }

    /// A collector's record by id.
    pub fn collector(&self, collector_id: &str) -> Option<&CollectorRecord> {
        self.collectors.get(collector_id).map(|record| &**record)
    }

    /// Every collector's record, in id order.
    pub fn collector_records(&self) -> impl Iterator<Item = &CollectorRecord> {
        self.collectors.values().map(|record| &**record)
    }

    pub fn collector_by_token_hash(&self, token_hash: &TokenHash) -> Option<&CollectorRecord> {
        self.collector_token_index.get(token_hash).and_then(|id| self.collector(id))
    }

    /// The collector whose previous (rotated-out) token has this hash.
    /// The deleted collector whose current token `token_hash` was, among the recently deleted.
    pub fn deleted_collector_by_token_hash(&self, token_hash: &TokenHash) -> Option<&str> {
        self.deleted_tokens.collector_of(token_hash)
    }

    pub fn collector_by_rotated_token_hash(&self, token_hash: &TokenHash) -> Option<&CollectorRecord> {
        self.rotated_collector_token_index.get(token_hash).and_then(|id| self.collector(id))
    }

    pub fn collector_by_host_id(&self, host_id: &str) -> Option<&CollectorRecord> {
        self.host_id_index.get(host_id).and_then(|ids| ids.first()).and_then(|id| self.collector(id))
    }

    pub fn service_account_token_by_hash(&self, token_hash: &TokenHash) -> Option<&ServiceAccountToken> {
        self.service_account_token_index.get(token_hash).and_then(|id| self.service_account_tokens.get(id))
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.users.values().find(|user| user.username == username)
    }

    pub fn slot_owner(&self, slot: usize) -> Option<u64> {
        self.slots.owner(slot)
    }

    /// The slot's owner and epoch; `None` before bootstrap.
    pub fn slot_entry(&self, slot: usize) -> Option<SlotEntry> {
        self.slots.entry(slot)
    }

    /// How many slots each node owns.
    pub fn slot_counts(&self) -> BTreeMap<u64, usize> {
        self.slots.counts()
    }
}

fn unindex_host(index: &mut HashMap<String, BTreeSet<String>>, host_id: &str, collector_id: &str) {
    if let Some(ids) = index.get_mut(host_id) {
        ids.remove(collector_id);
        if ids.is_empty() {
            index.remove(host_id);
        }
    }
}

/// The fleet-wide items one collector's config is rendered from ([`FleetState::effective_fleet_items`]).
pub struct EffectiveFleetItems<'a> {
    pub sources: Vec<&'a Attached<Source>>,
    pub destinations: Vec<&'a Attached<Destination>>,
    pub routes: Vec<&'a Attached<Route>>,
    /// The ids of the items held at their previous revision by a staged rollout.
    pub held: BTreeSet<&'a str>,
}

/// The fleet-wide items of one kind as a held collector sees them: the current ones, with every held
/// item at its previous revision (absent if it did not exist), in id order.
fn effective<'a, T>(
    current: &'a BTreeMap<String, Attached<T>>,
    held: &BTreeMap<&'a str, Option<&'a Attached<T>>>,
) -> Vec<&'a Attached<T>> {
    let mut items: BTreeMap<&str, &'a Attached<T>> = current
        .iter()
        .filter(|(id, _)| !held.contains_key(id.as_str()))
        .map(|(id, item)| (id.as_str(), item))
        .collect();
    for (id, previous) in held {
        if let Some(previous) = previous {
            items.insert(id, previous);
        }
    }
    items.into_values().collect()
}

fn check_put<T>(
    existing: &BTreeMap<String, T>,
    id: &str,
    create: bool,
    kind: &str,
) -> Result<(), ApplyError> {
    match (create, existing.contains_key(id)) {
        (true, true) => Err(already_exists(kind, id)),
        (false, false) => Err(not_found(kind, id)),
        _ => Ok(()),
    }
}

fn join_token_error(error: JoinTokenError) -> ApplyError {
    match error {
        JoinTokenError::Invalid { field, problem } => {
            ApplyError::InvalidReference { field: field.into(), problem }
        }
        JoinTokenError::AlreadyExists(id) => already_exists("join token", &id),
        JoinTokenError::Refused(_) | JoinTokenError::Full => {
            ApplyError::Precondition { problem: error.to_string() }
        }
    }
}

fn not_found(kind: &str, id: &str) -> ApplyError {
    ApplyError::NotFound { kind: kind.to_owned(), id: id.to_owned() }
}

fn listed_twice(field: &str, id: &str) -> ApplyError {
    ApplyError::InvalidReference { field: field.to_owned(), problem: format!("{id:?} is listed twice") }
}

fn already_exists(kind: &str, id: &str) -> ApplyError {
    ApplyError::AlreadyExists { kind: kind.to_owned(), id: id.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::collector::CollectorStatus;
    use crate::model::command::{PruneCutoff, PruneSkip, PruneSkips};
    use crate::model::event::Event;
    use crate::model::{CollectorMode, SlotEpoch, UnixMillis, SLOT_COUNT};

    fn create(id: &str) -> Command {
        Command::CreateCollector {
            id: id.to_owned(),
            name: format!("name-{id}"),
            mode: CollectorMode::AlloyRemotecfg,
            remote_attributes: BTreeMap::new(),
            at: UnixMillis(10),
            stability_level: Default::default(),
        }
    }

    fn set_token(id: &str, byte: u8) -> Command {
        Command::SetCollectorToken {
            collector_id: id.to_owned(),
            token_hash: [byte; 32],
            prefix: "lmct_abc".to_owned(),
            at: UnixMillis(20),
        }
    }

    fn create_user(id: &str, username: &str) -> Command {
        Command::CreateUser {
            id: id.to_owned(),
            username: username.to_owned(),
            role: Role::Viewer,
            password_hash: "$argon2id$placeholder".to_owned(),
            at: UnixMillis(5),
        }
    }

    #[test]
    fn the_feature_level_only_rises_and_a_baseline_state_serializes_as_before_levels() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create");
        let before_levels = serde_json::to_value(&state).expect("serialize");
        assert!(before_levels.get("feature_level").is_none(), "a level-1 state digests as older releases do");
        let two = FeatureLevel(2);
        state.apply(&Command::RaiseFeatureLevel { level: two, at: UnixMillis(30) }).expect("raise");
        assert_eq!(state.feature_level(), two);
        state
            .apply(&Command::RaiseFeatureLevel { level: FeatureLevel::BASELINE, at: UnixMillis(31) })
            .expect("a lower raise is a no-op");
        assert_eq!(state.feature_level(), two, "never lowered");
        let round_trip: FleetState =
            serde_json::from_value(serde_json::to_value(&state).expect("serialize")).expect("decode");
        assert_eq!(round_trip.feature_level(), two);
        let old: FleetState = serde_json::from_value(before_levels).expect("an old state decodes");
        assert_eq!(old.feature_level(), FeatureLevel::BASELINE);
    }

    #[test]
    fn only_the_last_rotated_out_token_points_back_at_its_collector() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create");
        state.apply(&set_token("c1", 1)).expect("mint");
        assert!(state.collector_by_rotated_token_hash(&[1; 32]).is_none(), "a current token is not rotated");
        state.apply(&set_token("c1", 2)).expect("rotate");
        assert_eq!(
            state.collector_by_rotated_token_hash(&[1; 32]).map(|record| record.id.as_str()),
            Some("c1")
        );
        state.apply(&set_token("c1", 3)).expect("rotate again");
        assert!(state.collector_by_rotated_token_hash(&[1; 32]).is_none());
        assert!(state.collector_by_rotated_token_hash(&[2; 32]).is_some());
        let mut restored: FleetState =
            serde_json::from_slice(&serde_json::to_vec(&state).expect("serialize")).expect("deserialize");
        restored.rebuild_indexes();
        assert!(restored.collector_by_rotated_token_hash(&[2; 32]).is_some(), "rebuilt after a snapshot");
        state.apply(&Command::DeleteCollector { id: "c1".into() }).expect("delete");
        assert!(state.collector_by_rotated_token_hash(&[2; 32]).is_none());
    }

    #[test]
    fn deleting_many_collectors_is_all_or_nothing_and_keeps_their_tokens_as_deleted() {
        let mut state = FleetState::default();
        for (id, byte) in [("c1", 1), ("c2", 2), ("c3", 3)] {
            state.apply(&create(id)).expect("create");
            state.apply(&set_token(id, byte)).expect("mint");
        }
        let before = state.clone();
        let missing = Command::DeleteCollectors { ids: vec!["c1".into(), "nope".into()], prune: None };
        assert!(matches!(state.apply(&missing), Err(ApplyError::NotFound { .. })));
        let twice = Command::DeleteCollectors { ids: vec!["c1".into(), "c1".into()], prune: None };
        assert!(matches!(state.apply(&twice), Err(ApplyError::InvalidReference { .. })));
        assert_eq!(state, before, "a refused batch deletes none");

        let effects = state
            .apply(&Command::DeleteCollectors { ids: vec!["c1".into(), "c2".into()], prune: None })
            .expect("delete");
        assert_eq!(
            effects,
            [
                Effect::CollectorDeleted { collector_id: "c1".into() },
                Effect::CollectorDeleted { collector_id: "c2".into() }
            ]
        );
        assert_eq!(state.collectors.keys().collect::<Vec<_>>(), ["c3"]);
        assert!(state.collector_by_token_hash(&[1; 32]).is_none());
        assert_eq!(state.deleted_collector_by_token_hash(&[2; 32]), Some("c2"));
        assert!(!state.collector_name_index.contains_key("name-c1"));
    }

    #[test]
    fn a_prune_skips_collectors_gone_or_active_since_their_selection() {
        let mut state = FleetState::default();
        for id in ["c1", "c2", "c3", "c4"] {
            state.apply(&create(id)).expect("create");
        }
        let seen = |id: &str, at: u64| {
            let mut update = ActivityUpdate::for_collector(id);
            update.last_seen_at = Some(UnixMillis(at));
            Command::RecordActivity { updates: vec![update] }
        };
        // c1 last seen long ago; c2 reconnected at the cut-off; c3 after it; c4 never seen (created).
        for command in [seen("c1", 10), seen("c2", 100), seen("c3", 150)] {
            state.apply(&command).expect("activity");
        }
        state.apply(&Command::DeleteCollector { id: "c4".into() }).expect("deleted meanwhile");
        let prune = |ids: &[&str]| Command::DeleteCollectors {
            ids: ids.iter().map(|id| (*id).to_owned()).collect(),
            prune: Some(PruneCutoff {
                inactive_before: UnixMillis(100),
                prune_id: format!("p{}", ids.len()),
            }),
        };
        let twice = prune(&["c1", "c1"]);
        let before = state.clone();
        assert!(matches!(state.apply(&twice), Err(ApplyError::InvalidReference { .. })));
        assert_eq!(state, before, "listed twice: refused whole");

        let effects = state.apply(&prune(&["c1", "c2", "c3", "c4"])).expect("prune applies");
        assert_eq!(effects, [Effect::CollectorDeleted { collector_id: "c1".into() }]);
        assert_eq!(state.collectors.keys().collect::<Vec<_>>(), ["c2", "c3"]);
        assert_eq!(
            state.prune_skips.of("p4"),
            [
                ("c2".to_owned(), PruneSkip::Active),
                ("c3".to_owned(), PruneSkip::Active),
                ("c4".to_owned(), PruneSkip::Gone)
            ],
            "the skips are kept for the request to read"
        );

        assert_eq!(state.apply(&prune(&["c1", "c4"])).expect("only gone ids"), []);
        assert_eq!(
            state.prune_skips.of("p2"),
            [("c1".to_owned(), PruneSkip::Gone), ("c4".to_owned(), PruneSkip::Gone)]
        );
        let skipped_nothing = state.clone();
        assert_eq!(state.apply(&prune(&[])).expect("nothing selected"), []);
        assert_eq!(state, skipped_nothing, "nothing skipped, nothing kept");
        assert!(state.prune_skips.of("p0").is_empty());
        let deleted_meanwhile = Command::DeleteCollectors { ids: vec!["c1".into()], prune: None };
        assert!(
            matches!(state.apply(&deleted_meanwhile), Err(ApplyError::NotFound { .. })),
            "the bulk delete stays all or nothing"
        );
    }

    #[test]
    fn prune_skips_are_bounded_oldest_forgotten_first() {
        let mut skips = PruneSkips::default();
        for n in 0..=PruneSkips::CAPACITY {
            skips.record(&format!("p{n}"), vec![(format!("c{n}"), PruneSkip::Gone)]);
        }
        assert!(skips.of("p0").is_empty(), "the oldest is forgotten");
        assert_eq!(skips.of("p1"), [("c1".to_owned(), PruneSkip::Gone)]);
    }

    #[test]
    fn a_prune_entry_without_a_cutoff_decodes_as_the_bulk_delete() {
        let logged: Command =
            serde_json::from_str(r#"{"op":"delete_collectors","ids":["c1"]}"#).expect("decodes");
        assert_eq!(logged, Command::DeleteCollectors { ids: vec!["c1".into()], prune: None });
    }

    #[test]
    fn rotating_many_tokens_is_all_or_nothing() {
        let mut state = FleetState::default();
        for (id, byte) in [("c1", 1), ("c2", 2)] {
            state.apply(&create(id)).expect("create");
            state.apply(&set_token(id, byte)).expect("mint");
        }
        let change = |id: &str, byte: u8| crate::model::CollectorTokenChange {
            collector_id: id.to_owned(),
            token_hash: [byte; 32],
            prefix: "lmct_new".to_owned(),
        };
        let tokens = |changes| Command::SetCollectorTokens { tokens: changes, at: UnixMillis(30) };
        let before = state.clone();
        for refused in [
            tokens(vec![change("c1", 11), change("nope", 12)]),
            tokens(vec![change("c1", 11), change("c1", 12)]),
            tokens(vec![change("c1", 11), change("c2", 11)]),
            tokens(vec![change("c1", 2)]),
        ] {
            assert!(state.apply(&refused).is_err(), "{refused:?}");
            assert_eq!(state, before, "a refused batch rotates none: {refused:?}");
        }
        state.apply(&tokens(vec![change("c1", 11), change("c2", 12)])).expect("rotate both");
        assert_eq!(state.collector_by_token_hash(&[11; 32]).map(|r| r.id.as_str()), Some("c1"));
        assert_eq!(state.collector_by_token_hash(&[12; 32]).map(|r| r.id.as_str()), Some("c2"));
        assert!(state.collector_by_token_hash(&[1; 32]).is_none(), "the old token stops matching");
        assert_eq!(state.collector_by_rotated_token_hash(&[2; 32]).map(|r| r.id.as_str()), Some("c2"));
    }

    fn new_collector(id: &str, name: &str, labels: &[(&str, &str)], token: Option<u8>) -> NewCollector {
        NewCollector {
            id: id.to_owned(),
            name: name.to_owned(),
            mode: CollectorMode::AlloyRemotecfg,
            labels: labels.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect(),
            token: token.map(|byte| crate::model::command::NewCollectorToken {
                token_hash: [byte; 32],
                prefix: "lmct_new".to_owned(),
            }),
        }
    }

    #[test]
    fn creating_many_collectors_is_all_or_nothing() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create");
        state.apply(&set_token("c1", 1)).expect("mint");
        let batch = |collectors| Command::CreateCollectors { collectors, at: UnixMillis(40) };
        let at_baseline = state.clone();
        let refused = state.apply(&batch(vec![new_collector("c2", "a", &[], None)]));
        assert!(
            matches!(
                refused,
                Err(ApplyError::NeedsFeatureLevel { needed: FeatureLevel(2), cluster: FeatureLevel(1) })
            ),
            "an older member could not decode a batch: {refused:?}"
        );
        assert_eq!(state, at_baseline);
        let raise = Command::RaiseFeatureLevel {
            level: FeatureLevel::BATCH_AND_BINARY_SNAPSHOTS,
            at: UnixMillis(39),
        };
        state.apply(&raise).expect("raise");
        let labelled = batch(vec![new_collector("c9", "l", &[("env", "prod")], None)]);
        let (scoped, affected) = state.preview_scope(&labelled).expect("previewed at the cluster's level");
        assert_eq!((scoped.feature_level(), affected), (FeatureLevel(2), vec!["c9".to_owned()]));
        let before = state.clone();
        for refused in [
            batch(vec![new_collector("c2", "a", &[], None), new_collector("c1", "b", &[], None)]),
            batch(vec![new_collector("c2", "a", &[], None), new_collector("c2", "b", &[], None)]),
            batch(vec![new_collector("c2", "a", &[], None), new_collector("c3", "name-c1", &[], None)]),
            batch(vec![new_collector("c2", "a", &[], None), new_collector("c3", "a", &[], None)]),
            batch(vec![
                new_collector("c2", "a", &[], None),
                new_collector("c3", "b", &[("bad key", "v")], None),
            ]),
            batch(vec![new_collector("c2", "a", &[], Some(1))]),
            batch(vec![new_collector("c2", "a", &[], Some(7)), new_collector("c3", "b", &[], Some(7))]),
        ] {
            assert!(state.apply(&refused).is_err(), "{refused:?}");
            assert_eq!(state, before, "a refused batch creates none: {refused:?}");
        }
        let effects = state
            .apply(&batch(vec![
                new_collector("c2", "a", &[("env", "prod")], Some(2)),
                new_collector("c3", "b", &[], None),
            ]))
            .expect("create both");
        assert!(effects.is_empty(), "new collectors have no actor to tell");
        let c2 = &state.collectors["c2"];
        assert_eq!(c2.labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(c2.status, CollectorStatus::AwaitingConnection);
        assert_eq!(c2.config.version, 1);
        let types: Vec<EventType> = c2.events.iter().map(|event| event.event_type).collect();
        assert_eq!(types, [EventType::CollectorCreated, EventType::TokenMinted]);
        assert_eq!(state.collector_by_token_hash(&[2; 32]).map(|r| r.id.as_str()), Some("c2"));
        assert!(state.collectors["c3"].token.is_none());
        assert_eq!(state.collector_id_by_name("b"), Some("c3"));
        assert_eq!(state.name_order().len(), 3);

        let mut restored: FleetState =
            serde_json::from_slice(&serde_json::to_vec(&state).expect("serialize")).expect("deserialize");
        restored.rebuild_indexes();
        assert_eq!(restored, state, "the indexes a batch builds are the ones a snapshot rebuilds");
    }

    #[test]
    fn created_user_can_be_found_by_name_and_names_are_unique() {
        let mut state = FleetState::default();
        state.apply(&create_user("u1", "dana")).expect("create user applies");
        assert_eq!(state.user_by_name("dana").map(|user| user.role), Some(Role::Viewer));
        let before = state.clone();
        assert!(matches!(state.apply(&create_user("u2", "dana")), Err(ApplyError::AlreadyExists { .. })));
        assert!(matches!(state.apply(&create_user("u1", "erin")), Err(ApplyError::AlreadyExists { .. })));
        assert_eq!(state, before);
    }

    fn session(byte: u8, user_id: &str) -> Command {
        Command::CreateSession {
            session_hash: [byte; 32],
            user_id: user_id.to_owned(),
            expires_at: UnixMillis(1_000_000),
            at: UnixMillis(10),
            remote_addr: None,
        }
    }

    fn admin_state() -> FleetState {
        let mut state = FleetState::default();
        let bootstrap = Command::Bootstrap {
            node_id: 1,
            admin_user_id: "adm".into(),
            admin_password_hash: "$argon2id$x".into(),
            at: UnixMillis(1),
        };
        state.apply(&bootstrap).expect("bootstrap");
        state
    }

    #[test]
    fn the_last_enabled_admin_cannot_be_disabled_demoted_or_deleted() {
        let mut state = admin_state();
        let before = state.clone();
        let disable =
            Command::UpdateUser { id: "adm".into(), role: None, disabled: Some(true), at: UnixMillis(2) };
        let demote = Command::UpdateUser {
            id: "adm".into(),
            role: Some(Role::Viewer),
            disabled: None,
            at: UnixMillis(2),
        };
        for command in [&disable, &demote, &Command::DeleteUser { id: "adm".into() }] {
            assert!(matches!(state.apply(command), Err(ApplyError::Precondition { .. })), "{command:?}");
            assert_eq!(state, before);
        }
        state.apply(&create_user("u2", "erin")).expect("second user");
        let promote = Command::UpdateUser {
            id: "u2".into(),
            role: Some(Role::Admin),
            disabled: None,
            at: UnixMillis(3),
        };
        state.apply(&promote).expect("promote");
        state.apply(&disable).expect("another admin is enabled: disabling works");
        assert!(matches!(
            state.apply(&Command::DeleteUser { id: "u2".into() }),
            Err(ApplyError::Precondition { .. })
        ));
    }

    #[test]
    fn disabling_deleting_or_a_new_password_end_the_users_sessions() {
        let mut state = admin_state();
        state.apply(&create_user("u2", "erin")).expect("user");
        state.apply(&session(1, "u2")).expect("session 1");
        state.apply(&session(2, "u2")).expect("session 2");
        state.apply(&session(3, "adm")).expect("admin session");
        let keep = hex::encode([2u8; 32]);
        let password = Command::SetUserPassword {
            user_id: "u2".into(),
            password_hash: "$argon2id$new".into(),
            keep_session: Some(keep.clone()),
            at: UnixMillis(20),
        };
        state.apply(&password).expect("password");
        assert_eq!(
            state.sessions.keys().cloned().collect::<Vec<_>>(),
            [keep.clone(), hex::encode([3u8; 32])]
        );
        assert_eq!(state.users["u2"].password_hash, "$argon2id$new");
        let disable =
            Command::UpdateUser { id: "u2".into(), role: None, disabled: Some(true), at: UnixMillis(21) };
        state.apply(&disable).expect("disable");
        assert!(!state.sessions.contains_key(&keep));
        assert!(
            matches!(state.apply(&session(4, "u2")), Err(ApplyError::Precondition { .. })),
            "no new session"
        );
        state.apply(&Command::DeleteUser { id: "u2".into() }).expect("delete");
        assert!(!state.users.contains_key("u2"));
        assert_eq!(state.sessions.len(), 1, "the admin's own session stays");
        assert_eq!(state.session_key(&hex::encode([3u8; 32])[..16]), Some(hex::encode([3u8; 32]).as_str()));
    }

    #[test]
    fn revoked_tokens_and_deleted_accounts_stop_matching() {
        let mut state = FleetState::default();
        let account = |id: &str| Command::CreateServiceAccount {
            id: id.into(),
            name: format!("n-{id}"),
            role: Role::Viewer,
            at: UnixMillis(1),
        };
        let token = |id: &str, account: &str, byte: u8| Command::CreateServiceAccountToken {
            id: id.into(),
            service_account_id: account.into(),
            label: String::new(),
            token_hash: [byte; 32],
            prefix: "lmsat_abcdef".into(),
            expires_at: None,
            at: UnixMillis(2),
        };
        state.apply(&account("sa1")).expect("account");
        state.apply(&account("sa2")).expect("account");
        state.apply(&token("t1", "sa1", 1)).expect("t1");
        state.apply(&token("t2", "sa1", 2)).expect("t2");
        state.apply(&token("t3", "sa2", 3)).expect("t3");
        let wrong_account =
            Command::DeleteServiceAccountToken { service_account_id: "sa2".into(), id: "t1".into() };
        assert!(matches!(state.apply(&wrong_account), Err(ApplyError::NotFound { .. })));
        state
            .apply(&Command::DeleteServiceAccountToken { service_account_id: "sa1".into(), id: "t1".into() })
            .expect("revoke");
        assert!(state.service_account_token_by_hash(&[1; 32]).is_none());
        assert!(state.service_account_token_by_hash(&[2; 32]).is_some());
        state.apply(&Command::DeleteServiceAccount { id: "sa1".into() }).expect("delete account");
        assert!(state.service_account_token_by_hash(&[2; 32]).is_none());
        assert!(state.service_account_token_by_hash(&[3; 32]).is_some());
        let uses = BTreeMap::from([("t3".to_owned(), UnixMillis(50)), ("gone".to_owned(), UnixMillis(50))]);
        state.apply(&Command::RecordTokenUse { uses }).expect("uses");
        assert_eq!(state.service_account_tokens["t3"].last_used_at, Some(UnixMillis(50)));
    }

    #[test]
    fn an_audited_write_that_is_rejected_records_nothing() {
        let mut state = admin_state();
        let record = crate::model::AuditRecord {
            request_id: "req_1".into(),
            ts: UnixMillis(5),
            actor_kind: crate::model::ActorKind::User,
            actor_id: "adm".into(),
            actor: "admin".into(),
            remote_addr: "127.0.0.1".into(),
            action: "DELETE /api/v1/users/{id}".into(),
            target: "/api/v1/users/adm".into(),
            outcome: "ok".into(),
            operation: None,
            count: None,
        };
        let audit = crate::model::AuditBatch {
            records: vec![record],
            retention: crate::model::AuditRetention { max_entries: 10, max_age_ms: 1000 },
            at: UnixMillis(5),
        };
        let before = state.clone();
        let rejected = Command::Audited {
            audit: audit.clone(),
            command: Box::new(Command::DeleteUser { id: "adm".into() }),
        };
        assert!(state.apply(&rejected).is_err());
        assert_eq!(state, before);
        let nested = Command::Audited {
            audit: audit.clone(),
            command: Box::new(Command::RecordAudit { audit: audit.clone() }),
        };
        assert!(state.apply(&nested).is_err());
        state
            .apply(&Command::Audited { audit, command: Box::new(create_user("u2", "erin")) })
            .expect("audited write");
        assert!(state.users.contains_key("u2"));
        assert_eq!(state.audit.len(), 1);
    }

    #[test]
    fn created_collector_awaits_connection_with_a_created_event() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        let record = &state.collectors["c1"];
        assert_eq!(record.status, CollectorStatus::AwaitingConnection);
        assert_eq!(record.config.version, 1);
        assert_eq!(record.events[0].event_type, EventType::CollectorCreated);
        assert_eq!(record.events[0].id, 1);
    }

    #[test]
    fn duplicate_collector_id_is_rejected_without_change() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        let before = state.clone();
        assert!(matches!(state.apply(&create("c1")), Err(ApplyError::AlreadyExists { .. })));
        assert_eq!(state, before);
    }

    #[test]
    fn rotating_a_token_unindexes_the_previous_hash() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        state.apply(&set_token("c1", 1)).expect("mint applies");
        assert_eq!(state.collector_by_token_hash(&[1; 32]).map(|r| r.id.as_str()), Some("c1"));
        state.apply(&set_token("c1", 2)).expect("rotate applies");
        assert!(state.collector_by_token_hash(&[1; 32]).is_none());
        assert_eq!(state.collector_by_token_hash(&[2; 32]).map(|r| r.id.as_str()), Some("c1"));
        let types: Vec<_> = state.collectors["c1"].events.iter().map(|e| e.event_type).collect();
        assert_eq!(types, [EventType::CollectorCreated, EventType::TokenMinted, EventType::TokenRotated]);
    }

    #[test]
    fn deleting_a_collector_revokes_its_token() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        state.apply(&set_token("c1", 1)).expect("mint applies");
        let effects = state.apply(&Command::DeleteCollector { id: "c1".into() }).expect("delete applies");
        assert_eq!(effects, vec![Effect::CollectorDeleted { collector_id: "c1".into() }]);
        assert!(state.collector_by_token_hash(&[1; 32]).is_none());
    }

    #[test]
    fn activity_for_a_deleted_collector_is_ignored() {
        let mut state = FleetState::default();
        let update = ActivityUpdate {
            status: Some(CollectorStatus::Connected),
            ..ActivityUpdate::for_collector("gone")
        };
        state.apply(&Command::RecordActivity { updates: vec![update] }).expect("activity applies");
        assert!(state.collectors.is_empty());
    }

    #[test]
    fn activity_updates_status_host_and_appends_events_in_order() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        let update = ActivityUpdate {
            status: Some(CollectorStatus::Connected),
            host_id: Some("host-a".into()),
            last_seen_at: Some(UnixMillis(50)),
            events: vec![
                NewEvent::new(UnixMillis(50), EventType::StatusChanged, "connected"),
                NewEvent::new(UnixMillis(51), EventType::RemotecfgRegistered, "registered"),
            ],
            ..ActivityUpdate::for_collector("c1")
        };
        state.apply(&Command::RecordActivity { updates: vec![update] }).expect("activity applies");
        let record = &state.collectors["c1"];
        assert_eq!(record.status, CollectorStatus::Connected);
        assert_eq!(state.collector_by_host_id("host-a").map(|r| r.id.as_str()), Some("c1"));
        let ids: Vec<_> = record.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn changed_attributes_re_render_only_a_config_that_refers_to_them() {
        use crate::model::pipeline::{Destination, Route, Source};
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        let mut source = Source::for_test("src_1", "otlp");
        source.resource_attributes.insert("host".into(), "{{attributes.host}}".into());
        let at = UnixMillis(10);
        for command in [
            Command::PutSource { collector_id: "c1".into(), source, create: true, at },
            Command::PutDestination {
                collector_id: "c1".into(),
                destination: Destination::for_test("dst_1", "debug"),
                remove_credentials: vec![],
                create: true,
                at,
            },
            Command::PutRoute {
                collector_id: "c1".into(),
                route: Route::for_test("rte_1", 10, "true", true, &["dst_1"]),
                create: true,
                at,
            },
        ] {
            state.apply(&command).expect("model applies");
        }
        let version = |state: &FleetState| state.collectors["c1"].config.version;
        let before = version(&state);
        let report = |host: &str| Command::RecordActivity {
            updates: vec![ActivityUpdate {
                local_attributes: Some([("host".to_owned(), host.to_owned())].into_iter().collect()),
                last_seen_at: Some(UnixMillis(20)),
                ..ActivityUpdate::for_collector("c1")
            }],
        };
        let effects = state.apply(&report("edge-a")).expect("activity applies");
        assert_eq!(effects, vec![Effect::CollectorRenderInputsChanged { collector_id: "c1".into() }]);
        assert_eq!(version(&state), before + 1);
        let content = state.collectors["c1"].current_config().expect("config").content.to_text();
        assert!(content.contains("edge-a"), "{content}");
        // The same attributes again: nothing to render.
        assert!(state.apply(&report("edge-a")).expect("activity applies").is_empty());
        assert_eq!(version(&state), before + 1);
        // A config without attribute references is not re-rendered.
        let record = state.collectors.get_mut("c1").expect("c1");
        record.sources.values_mut().for_each(|source| source.resource_attributes.clear());
        assert!(state.apply(&report("edge-b")).expect("activity applies").is_empty());
    }

    #[test]
    fn events_are_bounded_per_collector() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        let events = (0..(crate::model::collector::MAX_EVENTS_PER_COLLECTOR + 5))
            .map(|i| NewEvent::new(UnixMillis(i as u64), EventType::StatusChanged, "x"))
            .collect();
        let update = ActivityUpdate { events, ..ActivityUpdate::for_collector("c1") };
        state.apply(&Command::RecordActivity { updates: vec![update] }).expect("activity applies");
        let record = &state.collectors["c1"];
        assert_eq!(record.events.len(), crate::model::collector::MAX_EVENTS_PER_COLLECTOR);
        assert_eq!(record.events.back().map(|e| e.id), Some(record.next_event_id - 1));
    }

    /// Replays history writes into a map, as the history tree would hold them.
    fn on_disk(writes: Vec<HistoryWrite>, into: &mut BTreeMap<(u64, u64), Event>) {
        for write in writes {
            match write {
                HistoryWrite::PutEvent { history_key, event } => {
                    into.insert((history_key, event.id), event);
                }
                HistoryWrite::DeleteEvent { history_key, id } => {
                    into.remove(&(history_key, id));
                }
                HistoryWrite::DropCollector { history_key } => into.retain(|(key, _), _| *key != history_key),
            }
        }
    }

    #[test]
    fn reaching_the_history_level_moves_events_to_writes_and_later_events_follow_them_bounded() {
        use crate::model::collector::MAX_EVENTS_PER_COLLECTOR;
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create");
        state.apply(&set_token("c1", 1)).expect("token");
        state.apply(&create("c2")).expect("create");
        assert!(state.take_history_writes().is_empty(), "below the level, events stay in memory");
        let in_memory = state.collectors["c1"].events.clone();
        let raise = Command::RaiseFeatureLevel { level: FeatureLevel::HISTORY_ON_DISK, at: UnixMillis(30) };
        state.apply(&raise).expect("raise");
        let mut disk = BTreeMap::new();
        on_disk(state.take_history_writes(), &mut disk);
        let key = |state: &FleetState, id: &str| state.collectors[id].history_key;
        let (c1_key, c2_key) = (key(&state, "c1"), key(&state, "c2"));
        assert_eq!((c1_key, c2_key), (1, 2), "keys given in the collectors' order, from 1");
        let c1: Vec<Event> =
            disk.iter().filter(|((key, _), _)| *key == c1_key).map(|(_, event)| event.clone()).collect();
        assert_eq!(c1, Vec::from(in_memory), "every event moved, ids kept");
        let record = &state.collectors["c1"];
        assert!(record.events.is_empty() && record.events_on_disk());
        assert_eq!(record.first_event_id, 1);

        // New events get the next ids and the bound drops the oldest as writes.
        let events = (0..(MAX_EVENTS_PER_COLLECTOR + 5))
            .map(|i| NewEvent::new(UnixMillis(40 + i as u64), EventType::StatusChanged, "x"))
            .collect();
        let update = ActivityUpdate { events, ..ActivityUpdate::for_collector("c1") };
        state.apply(&Command::RecordActivity { updates: vec![update] }).expect("activity");
        on_disk(state.take_history_writes(), &mut disk);
        let record = &state.collectors["c1"];
        let ids: Vec<u64> = disk.keys().filter(|(key, _)| *key == c1_key).map(|(_, event)| *event).collect();
        assert_eq!(ids.len(), MAX_EVENTS_PER_COLLECTOR);
        assert_eq!(ids.first(), Some(&record.first_event_id));
        assert_eq!(ids.last(), Some(&(record.next_event_id - 1)));
        assert!(record.events.is_empty());

        // A rejected command writes nothing; a deleted collector's history goes with it.
        state.apply(&create("c2")).expect_err("exists");
        assert!(state.take_history_writes().is_empty(), "a rejected command leaves no writes");
        state.apply(&Command::DeleteCollector { id: "c2".into() }).expect("delete");
        on_disk(state.take_history_writes(), &mut disk);
        assert!(disk.keys().all(|(key, _)| *key != c2_key));
        // A new collector starts on disk at once, with the next key.
        state.apply(&create("c3")).expect("create");
        on_disk(state.take_history_writes(), &mut disk);
        assert_eq!((state.collectors["c3"].first_event_id, key(&state, "c3")), (1, 3));
        assert_eq!(disk[&(3, 1)].event_type, EventType::CollectorCreated);
        // What a record says about own metrics survives the move.
        assert!(!state.collectors["c3"].own_metrics_seen());
        let seen = ActivityUpdate {
            events: vec![NewEvent::new(UnixMillis(50), EventType::OwnMetricsFirstSeen, "first push")],
            ..ActivityUpdate::for_collector("c3")
        };
        state.apply(&Command::RecordActivity { updates: vec![seen] }).expect("activity");
        assert!(state.collectors["c3"].own_metrics_seen());
    }

    #[test]
    fn indexes_survive_a_snapshot_round_trip() {
        let mut state = FleetState::default();
        state.apply(&create("c1")).expect("create applies");
        state.apply(&set_token("c1", 7)).expect("mint applies");
        let bytes = serde_json::to_vec(&state).expect("serializes");
        let mut restored: FleetState = serde_json::from_slice(&bytes).expect("deserializes");
        restored.rebuild_indexes();
        assert_eq!(restored.collector_by_token_hash(&[7; 32]).map(|r| r.id.as_str()), Some("c1"));
        assert_eq!(restored, state);
    }

    #[test]
    fn bootstrap_happens_once_and_assigns_every_slot() {
        let mut state = FleetState::default();
        let bootstrap = Command::Bootstrap {
            node_id: 1,
            admin_user_id: "u1".into(),
            admin_password_hash: "$argon2id$x".into(),
            at: UnixMillis(1),
        };
        state.apply(&bootstrap).expect("bootstrap applies");
        assert_eq!(state.slot_counts(), BTreeMap::from([(1, SLOT_COUNT)]));
        assert_eq!(state.slot_entry(5).map(|entry| entry.epoch), Some(SlotEpoch::INITIAL));
        assert_eq!(state.apply(&bootstrap), Err(ApplyError::AlreadyBootstrapped));
    }

    #[test]
    fn a_restored_fleet_is_the_backed_up_one_on_its_new_node_without_sessions_or_join_tokens() {
        let mut old = admin_state();
        old.apply(&create("c1")).expect("create");
        old.apply(&set_token("c1", 7)).expect("mint");
        old.apply(&session(3, "adm")).expect("sign in");
        let join_token = Command::CreateJoinToken {
            id: "jt1".into(),
            token_hash: [9; 32],
            uses: 1,
            expires_at: UnixMillis(1_000_000),
            at: UnixMillis(10),
        };
        old.apply(&join_token).expect("join token");
        old.apply(&Command::PutFleetDestination {
            destination: crate::model::pipeline::Destination::for_test("fd1", "debug"),
            selector: Selector::parse("env=prod").expect("selector"),
            remove_credentials: Vec::new(),
            create: true,
            at: UnixMillis(10),
        })
        .expect("fleet-wide destination");
        let slot = slot_of("c1");
        let moves = vec![crate::model::SlotMove { slot, from: 1, to: 2, epoch: SlotEpoch::INITIAL }];
        old.apply(&Command::MoveSlots {
            moves,
            reason: crate::model::SlotMoveReason::Balance,
            at: UnixMillis(11),
        })
        .expect("move");

        let restore =
            Command::RestoreFleet { node_id: 42, fleet: Box::new(old.restorable()), at: UnixMillis(20) };
        let mut new = FleetState::default();
        new.apply(&restore).expect("restore applies to an empty state");
        assert!(new.bootstrapped);
        assert_eq!(new.collectors, old.collectors);
        assert_eq!(new.fleet_items, old.fleet_items, "fleet-wide items are restored");
        assert_eq!(new.users, old.users);
        assert_eq!(new.collector_by_token_hash(&[7; 32]).map(|r| r.id.as_str()), Some("c1"), "indexes built");
        assert!(new.sessions.is_empty() && new.join_tokens.is_empty());
        assert_eq!(new.slot_counts(), BTreeMap::from([(42, SLOT_COUNT)]));
        assert_eq!(
            new.slot_entry(slot).map(|entry| entry.epoch),
            Some(SlotEpoch(3)),
            "moved once, then restored"
        );
        assert_eq!(new.slot_entry((slot + 1) % SLOT_COUNT).map(|entry| entry.epoch), Some(SlotEpoch(2)));
        let before = new.clone();
        assert_eq!(new.apply(&restore), Err(ApplyError::AlreadyBootstrapped));
        assert_eq!(new, before);
        let round_trip: Command =
            serde_json::from_slice(&serde_json::to_vec(&restore).expect("serialize")).expect("deserialize");
        assert_eq!(round_trip, restore);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::model::command::ActivityUpdate;
    use crate::model::{CollectorMode, CollectorStatus};

    fn audit_batch(request: u8, ts: u64) -> crate::model::AuditBatch {
        crate::model::AuditBatch {
            records: vec![crate::model::AuditRecord {
                request_id: format!("req_{request}"),
                ts: UnixMillis(ts),
                actor_kind: crate::model::ActorKind::User,
                actor_id: "u0".into(),
                actor: "n".into(),
                remote_addr: "127.0.0.1".into(),
                action: "POST /api/v1/x".into(),
                target: "/api/v1/x".into(),
                outcome: "ok".into(),
                operation: None,
                count: None,
            }],
            retention: crate::model::AuditRetention { max_entries: 3, max_age_ms: 20 },
            at: UnixMillis(ts),
        }
    }

    /// Users and service accounts the access commands can refer to (applied before every case).
    fn with_accounts() -> FleetState {
        let mut state = FleetState::default();
        let raise = Command::RaiseFeatureLevel {
            level: crate::model::feature_level::THIS_RELEASE,
            at: UnixMillis(1),
        };
        state.apply(&raise).expect("raise");
        for (id, role) in [("u0", Role::Admin), ("u1", Role::Admin), ("u2", Role::Viewer)] {
            let user = Command::CreateUser {
                id: id.into(),
                username: format!("name-{id}"),
                role,
                password_hash: "$argon2id$x".into(),
                at: UnixMillis(1),
            };
            state.apply(&user).expect("user");
        }
        for id in ["sa0", "sa1"] {
            let account = Command::CreateServiceAccount {
                id: id.into(),
                name: id.into(),
                role: Role::Viewer,
                at: UnixMillis(1),
            };
            state.apply(&account).expect("account");
        }
        state
    }

    fn command() -> impl Strategy<Value = Command> {
        let collector = 0u8..4;
        prop_oneof![
            (collector.clone(), 0u8..3).prop_map(|(id, name)| Command::CreateCollector {
                id: format!("c{id}"),
                name: format!("n{name}"),
                mode: CollectorMode::AlloyRemotecfg,
                remote_attributes: BTreeMap::new(),
                at: UnixMillis(1),
                stability_level: Default::default(),
            }),
            proptest::collection::vec(
                (collector.clone(), 0u8..3, proptest::option::of(any::<u8>()), any::<bool>()),
                0..4
            )
            .prop_map(|items| Command::CreateCollectors {
                collectors: items
                    .into_iter()
                    .map(|(id, name, token, labelled)| NewCollector {
                        id: format!("c{id}"),
                        name: format!("n{name}"),
                        mode: CollectorMode::AlloyRemotecfg,
                        labels: if labelled {
                            [("env".to_owned(), "v1".to_owned())].into()
                        } else {
                            BTreeMap::new()
                        },
                        token: token.map(|byte| crate::model::command::NewCollectorToken {
                            token_hash: [byte; 32],
                            prefix: "lmct_b".into(),
                        }),
                    })
                    .collect(),
                at: UnixMillis(1),
            }),
            collector.clone().prop_map(|id| Command::DeleteCollector { id: format!("c{id}") }),
            (proptest::collection::vec(collector.clone(), 0..4), proptest::option::of(0u64..200)).prop_map(
                |(ids, before)| Command::DeleteCollectors {
                    ids: ids.into_iter().map(|id| format!("c{id}")).collect(),
                    prune: before.map(|before| crate::model::command::PruneCutoff {
                        inactive_before: UnixMillis(before),
                        prune_id: format!("p{before}"),
                    }),
                }
            ),
            proptest::collection::vec((collector.clone(), any::<u8>()), 0..4).prop_map(|changes| {
                Command::SetCollectorTokens {
                    tokens: changes
                        .into_iter()
                        .map(|(id, byte)| crate::model::CollectorTokenChange {
                            collector_id: format!("c{id}"),
                            token_hash: [byte; 32],
                            prefix: "lmct_y".into(),
                        })
                        .collect(),
                    at: UnixMillis(2),
                }
            }),
            (collector.clone(), any::<u8>()).prop_map(|(id, byte)| Command::SetCollectorToken {
                collector_id: format!("c{id}"),
                token_hash: [byte; 32],
                prefix: "lmct_x".into(),
                at: UnixMillis(2),
            }),
            (0u8..3, 0u8..3).prop_map(|(id, byte)| Command::CreateSession {
                session_hash: [byte; 32],
                user_id: format!("u{id}"),
                expires_at: UnixMillis(100),
                at: UnixMillis(3),
                remote_addr: None,
            }),
            (0u8..3, proptest::option::of(any::<bool>()), any::<bool>()).prop_map(|(id, disabled, admin)| {
                Command::UpdateUser {
                    id: format!("u{id}"),
                    role: Some(if admin { Role::Admin } else { Role::Viewer }),
                    disabled,
                    at: UnixMillis(4),
                }
            }),
            (0u8..3).prop_map(|id| Command::DeleteUser { id: format!("u{id}") }),
            (0u8..3, proptest::option::of(0u8..3)).prop_map(|(id, keep)| Command::SetUserPassword {
                user_id: format!("u{id}"),
                password_hash: "$argon2id$p".into(),
                keep_session: keep.map(|byte| hex::encode([byte; 32])),
                at: UnixMillis(5),
            }),
            (0u8..2, 0u8..3, 0u8..3).prop_map(|(account, id, byte)| Command::CreateServiceAccountToken {
                id: format!("t{id}"),
                service_account_id: format!("sa{account}"),
                label: String::new(),
                token_hash: [byte; 32],
                prefix: "lmsat_x".into(),
                expires_at: None,
                at: UnixMillis(6),
            }),
            (0u8..2, 0u8..3).prop_map(|(account, id)| Command::DeleteServiceAccountToken {
                service_account_id: format!("sa{account}"),
                id: format!("t{id}"),
            }),
            (0u8..2).prop_map(|account| Command::DeleteServiceAccount { id: format!("sa{account}") }),
            (0u8..3, 0u8..4, 0u64..50).prop_map(|(id, request, ts)| {
                let audit = audit_batch(request, ts);
                Command::Audited { audit, command: Box::new(Command::DeleteUser { id: format!("u{id}") }) }
            }),
            (0u8..4, 0u64..50)
                .prop_map(|(request, ts)| Command::RecordAudit { audit: audit_batch(request, ts) }),
            (collector, proptest::option::of(0u8..3)).prop_map(|(id, host)| Command::RecordActivity {
                updates: vec![ActivityUpdate {
                    status: Some(CollectorStatus::Connected),
                    host_id: host.map(|h| format!("h{h}")),
                    ..ActivityUpdate::for_collector(format!("c{id}"))
                }],
            }),
            (0u8..3, 0u32..3, 1u64..40, 0u64..40).prop_map(|(byte, uses, ttl, at)| {
                Command::CreateJoinToken {
                    id: format!("jt{byte}"),
                    token_hash: [byte; 32],
                    uses,
                    expires_at: UnixMillis(at + ttl),
                    at: UnixMillis(at),
                }
            }),
            (0u8..3, 0u64..60).prop_map(|(byte, at)| Command::ConsumeJoinToken {
                lookup: crate::model::join_tokens::lookup_of(&[byte; 32]),
                node_id: 2,
                at: UnixMillis(at),
            }),
            (proptest::collection::vec(0u8..4, 1..3), 0u8..3, any::<bool>()).prop_map(
                |(ids, value, invalid)| {
                    Command::SetCollectorLabels {
                        collector_ids: ids.iter().map(|id| format!("c{id}")).collect(),
                        replace: None,
                        set: [(if invalid { "bad key" } else { "env" }.to_owned(), format!("v{value}"))]
                            .into(),
                        remove: Vec::new(),
                        at: UnixMillis(7),
                    }
                }
            ),
            (0u8..2, 0u8..3).prop_map(|(id, value)| Command::PutFleetDestination {
                destination: crate::model::pipeline::Destination::for_test(&format!("fd{id}"), "debug"),
                selector: Selector::parse(&format!("env=v{value}")).expect("selector"),
                remove_credentials: Vec::new(),
                create: id == 0,
                at: UnixMillis(8),
            }),
            (0u8..2, 0u8..2).prop_map(|(id, destination)| Command::PutFleetRoute {
                route: crate::model::pipeline::Route::for_test(
                    &format!("fr{id}"),
                    10,
                    "true",
                    true,
                    &[&format!("fd{destination}")],
                ),
                selector: Selector::everything(),
                create: true,
                at: UnixMillis(9),
            }),
            (0u8..2)
                .prop_map(|id| Command::DeleteFleetDestination { id: format!("fd{id}"), at: UnixMillis(10) }),
            (0u8..2).prop_map(|id| Command::PutFleetSource {
                source: crate::model::pipeline::Source::for_test(&format!("fs{id}"), "otlp"),
                selector: Selector::parse("env=v1").expect("selector"),
                create: true,
                at: UnixMillis(11),
            }),
        ]
    }

    proptest! {
        /// Replicas applying the same log agree, rejected commands change nothing, and a snapshot
        /// restores the same state (including derived indexes).
        #[test]
        fn apply_is_deterministic_atomic_and_snapshot_stable(commands in proptest::collection::vec(command(), 0..40)) {
            let mut first = with_accounts();
            let mut second = with_accounts();
            for command in &commands {
                let before = first.clone();
                let outcome = first.apply(command);
                prop_assert_eq!(outcome.is_ok(), second.apply(command).is_ok());
                if outcome.is_err() {
                    prop_assert_eq!(&first, &before);
                }
            }
            prop_assert_eq!(&first, &second);
            let mut restored: FleetState = serde_json::from_slice(&serde_json::to_vec(&first).expect("serialize")).expect("deserialize");
            restored.rebuild_indexes();
            prop_assert_eq!(&restored, &first);
            for record in first.collectors.values() {
                if let Some(token) = &record.token {
                    prop_assert_eq!(first.collector_by_token_hash(&token.hash).map(|r| r.id.as_str()), Some(record.id.as_str()));
                }
            }
            for token in first.service_account_tokens.values() {
                prop_assert_eq!(first.service_account_token_by_hash(&token.token_hash).map(|t| t.id.as_str()), Some(token.id.as_str()));
                prop_assert!(first.service_accounts.contains_key(&token.service_account_id));
            }
            prop_assert!(first.users.values().any(|user| user.is_enabled_admin()), "an enabled admin always remains");
            prop_assert!(first.sessions.values().all(|session| first.users.get(&session.user_id).is_some_and(|user| !user.disabled)));
            prop_assert!(first.audit.len() <= 3);
        }
    }
}

/// Promise 8: a former owner's late activity never lands (`model/slots.rs`).
#[cfg(test)]
mod fencing {
    use proptest::prelude::*;

    use super::*;
    use crate::model::collector::CollectorStatus;
    use crate::model::{CollectorMode, SlotEpoch, SlotMove, SlotMoveReason};

    const NODES: u64 = 3;
    const COLLECTORS: usize = 4;

    #[derive(Debug, Clone)]
    enum Step {
        /// Move the collector's slot to `to`; `stale` proposes it with an epoch the slot has left.
        Move { collector: usize, to: u64, stale: bool },
        /// One batch: (collector, the node whose actor wrote it, an explicit epoch instead of that
        /// node's latest tenure of the slot).
        Activity(Vec<(usize, u64, Option<u64>)>),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..COLLECTORS, 1..=NODES, proptest::bool::weighted(0.2))
                .prop_map(|(collector, to, stale)| Step::Move { collector, to, stale }),
            proptest::collection::vec(
                (0..COLLECTORS, 1..=NODES, proptest::option::weighted(0.2, 0u64..6)),
                1..5
            )
            .prop_map(Step::Activity),
        ]
    }

    fn collector_id(index: usize) -> String {
        format!("col_{index}")
    }

    proptest! {
        #[test]
        fn a_former_owners_activity_never_changes_a_collector(steps in proptest::collection::vec(step(), 1..40)) {
            let mut state = FleetState::default();
            let bootstrap = Command::Bootstrap {
                node_id: 1,
                admin_user_id: "adm".into(),
                admin_password_hash: "$argon2id$x".into(),
                at: UnixMillis(1),
            };
            state.apply(&bootstrap).expect("bootstrap");
            // The epoch of each node's latest tenure of each slot: what its actors stamp.
            let mut tenures: BTreeMap<(u64, usize), SlotEpoch> = BTreeMap::new();
            for index in 0..COLLECTORS {
                let create = Command::CreateCollector {
                    id: collector_id(index),
                    name: collector_id(index),
                    mode: CollectorMode::AlloyRemotecfg,
                    remote_attributes: BTreeMap::new(),
                    at: UnixMillis(1),
                    stability_level: Default::default(),
                };
                state.apply(&create).expect("create");
                tenures.insert((1, slot_of(&collector_id(index))), SlotEpoch::INITIAL);
            }
            for (round, step) in steps.into_iter().enumerate() {
                let at = UnixMillis(100 + round as u64);
                match step {
                    Step::Move { collector, to, stale } => {
                        let slot = slot_of(&collector_id(collector));
                        let entry = state.slot_entry(slot).expect("assigned");
                        let epoch = if stale { SlotEpoch(entry.epoch.0 - 1) } else { entry.epoch };
                        let moves = vec![SlotMove { slot, from: entry.owner, to, epoch }];
                        let before = state.clone();
                        let outcome = state.apply(&Command::MoveSlots { moves, reason: SlotMoveReason::Balance, at });
                        prop_assert_eq!(outcome.is_ok(), !stale && to != entry.owner);
                        match outcome {
                            Ok(effects) => {
                                let new_epoch = SlotEpoch(entry.epoch.0 + 1);
                                prop_assert_eq!(state.slot_entry(slot), Some(SlotEntry { owner: to, epoch: new_epoch }));
                                let moved = vec![MovedSlot { slot, from: entry.owner, to, epoch: new_epoch }];
                                prop_assert_eq!(effects, vec![Effect::SlotsMoved { moved }]);
                                tenures.insert((to, slot), new_epoch);
                            }
                            Err(_) => prop_assert_eq!(&state, &before),
                        }
                    }
                    Step::Activity(writes) => {
                        let status = if round % 2 == 0 { CollectorStatus::Connected } else { CollectorStatus::Degraded };
                        let updates: Vec<ActivityUpdate> = writes
                            .iter()
                            .filter_map(|(collector, node, explicit)| {
                                let slot = slot_of(&collector_id(*collector));
                                let slot_epoch = explicit.map(SlotEpoch).or_else(|| tenures.get(&(*node, slot)).copied())?;
                                Some(ActivityUpdate {
                                    slot_epoch,
                                    status: Some(status),
                                    last_seen_at: Some(at),
                                    events: vec![NewEvent::new(at, EventType::StatusChanged, "x")],
                                    ..ActivityUpdate::for_collector(collector_id(*collector))
                                })
                            })
                            .collect();
                        let before = state.clone();
                        state.apply(&Command::RecordActivity { updates: updates.clone() }).expect("activity applies");
                        for index in 0..COLLECTORS {
                            let id = collector_id(index);
                            let current = state.slots.epoch(slot_of(&id));
                            let ours = updates.iter().filter(|update| update.collector_id == id);
                            let accepted = ours.clone().filter(|update| update.slot_epoch == current).count();
                            let (was, is) = (&before.collectors[&id], &state.collectors[&id]);
                            if accepted == 0 {
                                prop_assert_eq!(was, is, "only stale writes for {}: nothing changes", id);
                            } else {
                                prop_assert_eq!(is.status, status);
                                prop_assert_eq!(is.last_seen_at, Some(at));
                                prop_assert_eq!(is.next_event_id, was.next_event_id + accepted as u64);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_update_from_the_current_tenure_applies_beside_a_dropped_stale_one() {
        let mut state = FleetState::default();
        let bootstrap = Command::Bootstrap {
            node_id: 1,
            admin_user_id: "adm".into(),
            admin_password_hash: "$argon2id$x".into(),
            at: UnixMillis(1),
        };
        state.apply(&bootstrap).expect("bootstrap");
        for index in 0..2 {
            let create = Command::CreateCollector {
                id: collector_id(index),
                name: collector_id(index),
                mode: CollectorMode::AlloyRemotecfg,
                remote_attributes: BTreeMap::new(),
                at: UnixMillis(1),
                stability_level: Default::default(),
            };
            state.apply(&create).expect("create");
        }
        let moved_slot = slot_of(&collector_id(0));
        assert_ne!(moved_slot, slot_of(&collector_id(1)));
        let moves = vec![SlotMove { slot: moved_slot, from: 1, to: 2, epoch: SlotEpoch::INITIAL }];
        state
            .apply(&Command::MoveSlots { moves, reason: SlotMoveReason::NodeDown, at: UnixMillis(2) })
            .expect("move");
        let connected = |index: usize| ActivityUpdate {
            status: Some(CollectorStatus::Connected),
            ..ActivityUpdate::for_collector(collector_id(index))
        };
        state
            .apply(&Command::RecordActivity { updates: vec![connected(0), connected(1)] })
            .expect("activity");
        assert_eq!(state.collectors[&collector_id(0)].status, CollectorStatus::AwaitingConnection);
        assert_eq!(state.collectors[&collector_id(1)].status, CollectorStatus::Connected);
    }
}

/// The name index `apply` keeps (`model/name_order.rs`) is the one a snapshot install rebuilds.
#[cfg(test)]
mod name_order_kept {
    use proptest::prelude::*;

    use super::*;
    use crate::model::collector::CollectorStatus;
    use crate::model::labels::natural_cmp;
    use crate::model::name_order::tests::name;
    use crate::model::name_order::{status_rank, STATUS_ORDER};
    use crate::model::CollectorMode;

    #[derive(Debug, Clone)]
    enum Step {
        Create { id: u8, name: String },
        Delete(u8),
        DeleteMany(Vec<u8>),
        Status(u8, CollectorStatus),
        Restore,
    }

    fn status() -> impl Strategy<Value = CollectorStatus> {
        proptest::sample::select(STATUS_ORDER.to_vec())
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0u8..12, name()).prop_map(|(id, name)| Step::Create { id, name }),
            1 => (0u8..12).prop_map(Step::Delete),
            1 => proptest::collection::vec(0u8..12, 0..4).prop_map(Step::DeleteMany),
            3 => (0u8..12, status()).prop_map(|(id, status)| Step::Status(id, status)),
            1 => Just(Step::Restore),
        ]
    }

    fn id(number: u8) -> String {
        format!("col_{number:02}")
    }

    fn command(state: &FleetState, step: &Step) -> Command {
        match step {
            Step::Create { id: number, name } => Command::CreateCollector {
                id: id(*number),
                name: name.clone(),
                mode: CollectorMode::AlloyRemotecfg,
                remote_attributes: BTreeMap::new(),
                at: UnixMillis(1),
                stability_level: Default::default(),
            },
            Step::Delete(number) => Command::DeleteCollector { id: id(*number) },
            Step::DeleteMany(numbers) => Command::DeleteCollectors {
                ids: numbers.iter().map(|number| id(*number)).collect(),
                prune: None,
            },
            Step::Status(number, status) => {
                let collector_id = id(*number);
                let slot_epoch = state.slots.epoch(crate::model::slot_of(&collector_id));
                let update = ActivityUpdate {
                    slot_epoch,
                    status: Some(*status),
                    ..ActivityUpdate::for_collector(collector_id)
                };
                Command::RecordActivity { updates: vec![update] }
            }
            Step::Restore => {
                Command::RestoreFleet { node_id: 1, fleet: Box::new(state.restorable()), at: UnixMillis(2) }
            }
        }
    }

    proptest! {
        /// The index `apply` keeps is the one a snapshot install rebuilds, whatever the commands.
        #[test]
        fn the_kept_index_equals_a_rebuild(steps in proptest::collection::vec(step(), 0..40)) {
            let mut state = FleetState::default();
            state.apply(&Command::Bootstrap {
                node_id: 1,
                admin_user_id: "u1".into(),
                admin_password_hash: "hash".into(),
                at: UnixMillis(0),
            }).expect("bootstrap");
            for step in &steps {
                let command = command(&state, step);
                let mut restored_into = FleetState::default();
                let target = if matches!(step, Step::Restore) { &mut restored_into } else { &mut state };
                let _ = target.apply(&command);
                if matches!(step, Step::Restore) {
                    state = restored_into;
                }
                let kept = state.name_order();
                prop_assert_eq!(kept, &NameOrder::rebuilt(&state.collectors));
                let counted = state.collectors.values().fold([0; 5], |mut counts, record| {
                    counts[status_rank(record.status)] += 1;
                    counts
                });
                prop_assert_eq!(kept.status_counts(), counted);
                let walked: Vec<&str> = kept.ascending_after(None).map(|(key, _)| key.id()).collect();
                let mut sorted: Vec<&CollectorRecord> = state.collector_records().collect();
                sorted.sort_by(|a, b| natural_cmp(&a.name, &b.name).then_with(|| a.id.cmp(&b.id)));
                prop_assert_eq!(walked, sorted.iter().map(|record| record.id.as_str()).collect::<Vec<_>>());
            }
        }

    }
}
