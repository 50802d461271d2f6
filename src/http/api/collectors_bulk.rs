//! Many collectors at once: `POST /collectors:bulk` (label, rotate tokens, delete) and
//! `POST /collectors:prune` (delete those inactive for a while).
//!
//! Invariants:
//! - A selection is explicit: `ids`, or a label `selector` (`""` selects every collector, and only
//!   when sent); never both, never neither. At most [`MAX_BULK`] collectors per call: a larger
//!   selection is refused with its size, so that scripts page by ids.
//! - Each action is one Raft entry, applied all or nothing (`SetCollectorLabels`, `SetCollectorTokens`,
//!   `DeleteCollectors`): a refused call changed nothing. `expected_count` refuses a selection whose
//!   size changed since the caller confirmed it.
//! - Rotated tokens and deleted collectors' tokens stop working as for one collector (promise 4:
//!   the owners applied it, or their leases ended) before the answer; new tokens are in the answer
//!   only, never logged.
//! - The audit record of the request names the operation and how many collectors it selected
//!   (`crate::audit::note_bulk`).
//!
//! Prune races. A prune selects, asks the owners for live state, then proposes one
//! `DeleteCollectors` carrying its cut-off and a fresh prune id. When that entry applies it skips,
//! instead of refusing the whole entry, an id already deleted (by another call meanwhile) and one
//! whose replicated last activity (`last_seen_at`, else `created_at`) is at or after the cut-off,
//! and keeps what it skipped under the prune id (`FleetState::prune_skips`, the latest 64 prunes
//! that skipped anything); the answer lists them under `skipped` and counts the rest as deleted.
//! The replica learns of a poll only when the owner's activity flush commits (`activity_flush_interval`, 200 ms by default, plus a Raft round): a
//! collector that comes back from `offline`/`stale` changes status, so its flush carries
//! `last_seen_at` at once; one whose status did not change carries it at most once per
//! `collectors.last_seen_persist_interval` — but such a collector was reported active by its owner
//! and never selected. What remains: a collector that polls after its owner answered the live read
//! and whose flush commits after the prune's entry is deleted all the same (a window of about one
//! flush interval); its next poll is refused (401) like any deleted collector's, and re-enrolling
//! creates it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::web;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::collectors::gather_live;
use super::fleet_model::{commit_or_preview, WriteOptions};
use super::handler_types::Reply;
use crate::cluster::live_reads::Gathered;
use crate::cluster::read_index::{self, CatchUpOutcome};
use crate::cluster::revocation::await_owners;
use crate::config::human::parse_duration;
use crate::error::{ApiError, ErrorCode};
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::command::{PruneCutoff, PruneSkip};
use crate::model::labels::{check_label_key, check_label_value, natural_cmp, Selector};
use crate::model::{CollectorRecord, CollectorStatus, CollectorTokenChange, Command, Labels, UnixMillis};
use crate::secrets;

/// Collectors one bulk call or one prune call acts on at most.
pub const MAX_BULK: usize = 1000;

/// The shortest `inactive_for` a prune accepts: below it a typo could delete a healthy fleet.
pub const MIN_PRUNE_INACTIVITY: Duration = Duration::from_secs(3600);

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkRequest {
    /// The collectors, by id (exclusive with `selector`).
    #[serde(default)]
    ids: Option<Vec<String>>,
    /// A label selector (exclusive with `ids`); `""` selects every collector.
    #[serde(default)]
    selector: Option<String>,
    /// Refuse (409) unless the selection has exactly this many collectors now.
    #[serde(default)]
    expected_count: Option<usize>,
    /// `label`, `rotate` or `delete`.
    action: String,
    /// For `label`: keys to set (or overwrite) and keys to remove.
    #[serde(default)]
    labels: Option<LabelChanges>,
    /// Answer with the selection without acting (default `false`).
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LabelChanges {
    #[serde(default)]
    set: Labels,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BulkAction {
    Label,
    Rotate,
    Delete,
}

impl BulkAction {
    fn parse(text: &str) -> Result<BulkAction, ApiError> {
        match text {
            "label" => Ok(BulkAction::Label),
            "rotate" => Ok(BulkAction::Rotate),
            "delete" => Ok(BulkAction::Delete),
            _ => Err(ApiError::invalid_field("action", "must be \"label\", \"rotate\" or \"delete\"")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            BulkAction::Label => "label",
            BulkAction::Rotate => "rotate",
            BulkAction::Delete => "delete",
        }
    }

    /// The audit log's name for a dry run of the action, which changed nothing.
    fn dry_run_name(self) -> &'static str {
        match self {
            BulkAction::Label => "label_dry_run",
            BulkAction::Rotate => "rotate_dry_run",
            BulkAction::Delete => "delete_dry_run",
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct BulkResult {
    action: &'static str,
    /// How many collectors were selected (and acted on, unless `dry_run`).
    count: usize,
    /// In the order given (`ids`), else by name.
    collector_ids: Vec<String>,
    /// Present (`true`) when nothing was done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    /// `rotate` only: each collector's new token, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<Vec<RotatedToken>>,
}

#[derive(Serialize, JsonSchema)]
struct RotatedToken {
    collector_id: String,
    name: String,
    /// `lmct_…`, the collector's new bearer token; its previous one is refused from now.
    token: String,
    prefix: String,
}

/// `POST /collectors:bulk`.
pub(super) async fn bulk(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<BulkRequest>,
) -> Result<Reply<BulkResult>, ApiError> {
    principal.require_collector_admin()?;
    let BulkRequest { ids, selector, expected_count, action, labels, dry_run } = body.into_inner();
    let action = BulkAction::parse(&action)?;
    let label_changes = match (action, labels) {
        (BulkAction::Label, Some(changes)) => Some(check_label_changes(changes)?),
        (BulkAction::Label, None) => {
            return Err(ApiError::invalid_field(
                "labels",
                "the label action needs {\"set\":{…},\"remove\":[…]}",
            ))
        }
        (_, Some(_)) => return Err(ApiError::invalid_field("labels", "only the label action takes labels")),
        (_, None) => None,
    };
    let selected = select(&state, ids, selector).await?;
    if let Some(expected) = expected_count {
        if expected != selected.len() {
            let mut error = ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the selection has {} collectors now, not the {expected} expected: review it again",
                    selected.len()
                ),
            );
            error.details.insert("count".to_owned(), serde_json::Value::from(selected.len()));
            return Err(error);
        }
    }
    let collector_ids: Vec<String> = selected.iter().map(|record| record.id.clone()).collect();
    crate::audit::note_bulk(
        if dry_run { action.dry_run_name() } else { action.as_str() },
        collector_ids.len(),
    );
    let mut result = BulkResult {
        action: action.as_str(),
        count: collector_ids.len(),
        collector_ids,
        dry_run,
        tokens: None,
    };
    if dry_run || result.collector_ids.is_empty() {
        return Ok(Reply(result));
    }
    let at = UnixMillis::now();
    match action {
        BulkAction::Label => {
            let (set, remove) = label_changes.unwrap_or_default();
            let command = Command::SetCollectorLabels {
                collector_ids: result.collector_ids.clone(),
                replace: None,
                set,
                remove,
                at,
            };
            commit_or_preview(&state, command, &WriteOptions::default()).await?;
        }
        BulkAction::Rotate => {
            let mut changes = Vec::with_capacity(selected.len());
            let mut tokens = Vec::with_capacity(selected.len());
            for record in &selected {
                let minted = secrets::mint_token(secrets::COLLECTOR_TOKEN_PREFIX)
                    .map_err(|error| ApiError::internal("mint collector token", error))?;
                changes.push(CollectorTokenChange {
                    collector_id: record.id.clone(),
                    token_hash: minted.hash,
                    prefix: minted.display_prefix.clone(),
                });
                tokens.push(RotatedToken {
                    collector_id: record.id.clone(),
                    name: record.name.clone(),
                    token: minted.token,
                    prefix: minted.display_prefix,
                });
            }
            state.raft.propose(Command::SetCollectorTokens { tokens: changes, at }).await?;
            await_owners(&state.raft, &result.collector_ids).await;
            result.tokens = Some(tokens);
        }
        BulkAction::Delete => delete_collectors(&state, &result.collector_ids).await?,
    }
    Ok(Reply(result))
}

/// Checks the label action's changes: valid keys and values, something to change, no key both set
/// and removed. The labels each collector ends up with are checked again when the command applies.
fn check_label_changes(changes: LabelChanges) -> Result<(Labels, Vec<String>), ApiError> {
    let LabelChanges { set, remove } = changes;
    if set.is_empty() && remove.is_empty() {
        return Err(ApiError::invalid_field("labels", "nothing to change: send set or remove"));
    }
    for (key, value) in &set {
        check_label_key(key)
            .and_then(|()| check_label_value(key, value))
            .map_err(|problem| ApiError::invalid_field("labels.set", problem))?;
    }
    for key in &remove {
        check_label_key(key).map_err(|problem| ApiError::invalid_field("labels.remove", problem))?;
        if set.contains_key(key) {
            return Err(ApiError::invalid_field("labels.remove", format!("{key:?} is also in set")));
        }
    }
    Ok((set, remove))
}

/// The selected collectors: `ids` in their order, or those `selector` matches by name. Refused when
/// both or neither are given, when an id is unknown or listed twice, and beyond [`MAX_BULK`].
async fn select(
    state: &AppState,
    ids: Option<Vec<String>>,
    selector: Option<String>,
) -> Result<Vec<CollectorRecord>, ApiError> {
    let (field, selected) = match (ids, selector) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field("selector", "send ids or selector, not both"))
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "ids",
                "send ids or selector (\"selector\":\"\" selects every collector)",
            ))
        }
        (Some(ids), None) => ("ids", select_ids(state, ids).await?),
        (None, Some(text)) => {
            let selector =
                Selector::parse(&text).map_err(|error| ApiError::invalid_field("selector", error))?;
            caught_up(state).await?;
            ("selector", matching(state, Some(&selector)))
        }
    };
    if selected.len() > MAX_BULK {
        return Err(too_many(field, selected.len()));
    }
    Ok(selected)
}

async fn select_ids(state: &AppState, ids: Vec<String>) -> Result<Vec<CollectorRecord>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::invalid_field("ids", "must not be empty"));
    }
    if ids.len() > MAX_BULK {
        return Err(too_many("ids", ids.len()));
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(ApiError::invalid_field("ids", format!("{twice:?} is listed twice")));
    }
    let lookup = |state: &AppState| -> Result<Vec<CollectorRecord>, String> {
        let replica = state.raft.state();
        ids.iter()
            .map(|id| {
                replica
                    .fleet
                    .collectors
                    .get(id)
                    .map(|record| CollectorRecord::clone(record))
                    .ok_or_else(|| id.clone())
            })
            .collect()
    };
    match lookup(state) {
        Ok(records) => Ok(records),
        // Created through another node a moment ago, or this replica is behind: catch up once.
        Err(_) => {
            caught_up(state).await?;
            lookup(state).map_err(|missing| ApiError::not_found("collector", &missing))
        }
    }
}

async fn caught_up(state: &AppState) -> Result<(), ApiError> {
    match read_index::catch_up(&state.raft).await {
        CatchUpOutcome::Failed => Err(read_index::unconfirmed("the selection")),
        CatchUpOutcome::CaughtUp | CatchUpOutcome::NotNeeded => Ok(()),
    }
}

/// The collectors `selector` matches (all without one), by name then id.
fn matching(state: &AppState, selector: Option<&Selector>) -> Vec<CollectorRecord> {
    let replica = state.raft.state();
    let mut records: Vec<CollectorRecord> = replica
        .fleet
        .collectors
        .values()
        .filter(|record| selector.is_none_or(|selector| selector.matches(&record.labels)))
        .map(|record| CollectorRecord::clone(record))
        .collect();
    records.sort_by(|left, right| natural_cmp(&left.name, &right.name).then_with(|| left.id.cmp(&right.id)));
    records
}

fn too_many(field: &str, count: usize) -> ApiError {
    let mut error = ApiError::invalid_field(
        field,
        format!(
            "selects {count} collectors; at most {MAX_BULK} per call: page by ids or narrow the selector"
        ),
    );
    error.details.insert("count".to_owned(), serde_json::Value::from(count));
    error
}

/// Deletes `collector_ids` in one entry; returns once their tokens are refused everywhere.
async fn delete_collectors(state: &AppState, collector_ids: &[String]) -> Result<(), ApiError> {
    state.raft.propose(Command::DeleteCollectors { ids: collector_ids.to_vec(), prune: None }).await?;
    // Promise 4: the owners applied it, or their leases have ended.
    await_owners(&state.raft, collector_ids).await;
    Ok(())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PruneRequest {
    /// How long without a poll makes a collector inactive: `"30d"`, `"12h"` (at least 1h).
    inactive_for: String,
    /// Only collectors this label selector matches.
    #[serde(default)]
    selector: Option<String>,
    /// `true` (the default): list what would be deleted and delete nothing.
    #[serde(default = "default_dry_run")]
    dry_run: bool,
}

fn default_dry_run() -> bool {
    true
}

#[derive(Serialize, JsonSchema)]
pub(super) struct PruneResult {
    dry_run: bool,
    /// How many collectors are listed (and, unless `dry_run`, were deleted).
    count: usize,
    /// How many were deleted (`0` on a dry run; else `count`).
    deleted: usize,
    /// Inactive collectors beyond this call's [`MAX_BULK`]: call again to prune them.
    remaining: usize,
    /// Least recently active first: those that would be deleted (`dry_run`), else those deleted.
    collectors: Vec<PrunedCollector>,
    /// Selected but not deleted: it reconnected (`"active"`) or was deleted by another call
    /// (`"gone"`) between the selection and the deletion. Empty on a dry run.
    skipped: Vec<SkippedCollector>,
}

#[derive(Serialize, JsonSchema)]
struct SkippedCollector {
    id: String,
    name: String,
    /// `"active"` or `"gone"`.
    reason: &'static str,
}

#[derive(Serialize, JsonSchema)]
struct PrunedCollector {
    id: String,
    name: String,
    status: &'static str,
    created_at: String,
    last_seen_at: Option<String>,
    labels: Labels,
}

/// `POST /collectors:prune`: deletes (or with `dry_run`, lists) the collectors not seen for
/// `inactive_for`, at most [`MAX_BULK`] per call, least recently active first.
///
/// Inactive: last seen (else created) longer than `inactive_for` ago. The replicated `last_seen_at`
/// is written at most once per `collectors.last_seen_persist_interval`, so each candidate's owner is
/// asked for its live state: one it reports connected or degraded, or seen since the cut-off, is kept.
/// When the owner cannot say (not asked in time, or no actor resident), the replicated time must be
/// older than the cut-off by `last_seen_persist_interval` more.
pub(super) async fn prune(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<PruneRequest>,
) -> Result<Reply<PruneResult>, ApiError> {
    principal.require_collector_admin()?;
    let PruneRequest { inactive_for, selector, dry_run } = body.into_inner();
    let inactive_for = parse_duration(&inactive_for).map_err(|problem| {
        ApiError::invalid_field("inactive_for", format!("{problem} (a duration such as \"30d\" or \"12h\")"))
    })?;
    if inactive_for < MIN_PRUNE_INACTIVITY {
        return Err(ApiError::invalid_field("inactive_for", "must be at least 1h"));
    }
    let selector = selector
        .as_deref()
        .map(Selector::parse)
        .transpose()
        .map_err(|error| ApiError::invalid_field("selector", error))?;
    caught_up(&state).await?;
    let now = UnixMillis::now();
    let cutoff = UnixMillis(now.0.saturating_sub(duration_millis(inactive_for)));
    let margin = state.config.collectors.last_seen_persist_interval;
    let stricter_cutoff = UnixMillis(cutoff.0.saturating_sub(duration_millis(margin)));
    let candidates: Vec<CollectorRecord> = matching(&state, selector.as_ref())
        .into_iter()
        .filter(|record| record.last_active() < cutoff)
        .collect();
    let gathered = gather_live(&state, &candidates).await;
    let mut inactive: Vec<(CollectorRecord, CollectorStatus, Option<UnixMillis>)> = candidates
        .into_iter()
        .filter_map(|record| {
            let (status, last_seen) =
                still_inactive(&record, gathered.get(&record.id), cutoff, stricter_cutoff)?;
            Some((record, status, last_seen))
        })
        .collect();
    inactive.sort_by_key(|(record, _, last_seen)| last_seen.unwrap_or(record.created_at));
    let remaining = inactive.len().saturating_sub(MAX_BULK);
    inactive.truncate(MAX_BULK);
    crate::audit::note_bulk(if dry_run { "prune_dry_run" } else { "prune" }, inactive.len());
    let mut skipped = Vec::new();
    if !dry_run && !inactive.is_empty() {
        let ids: Vec<String> = inactive.iter().map(|(record, _, _)| record.id.clone()).collect();
        let reasons = prune_collectors(&state, &ids, cutoff).await?;
        let mut kept = Vec::with_capacity(inactive.len());
        for (entry, reason) in inactive.into_iter().zip(reasons) {
            match reason {
                None => kept.push(entry),
                Some(reason) => skipped.push(SkippedCollector {
                    id: entry.0.id,
                    name: entry.0.name,
                    reason: match reason {
                        PruneSkip::Active => "active",
                        PruneSkip::Gone => "gone",
                    },
                }),
            }
        }
        inactive = kept;
    }
    let collectors: Vec<PrunedCollector> = inactive
        .into_iter()
        .map(|(record, status, last_seen)| PrunedCollector {
            id: record.id,
            name: record.name,
            status: status.as_str(),
            created_at: record.created_at.to_rfc3339(),
            last_seen_at: last_seen.map(UnixMillis::to_rfc3339),
            labels: record.labels,
        })
        .collect();
    let deleted = if dry_run { 0 } else { collectors.len() };
    Ok(Reply(PruneResult { dry_run, count: collectors.len(), deleted, remaining, collectors, skipped }))
}

/// Deletes the selected `ids` in one entry that skips those gone or active since `cutoff` (see
/// [`Command::DeleteCollectors`]); returns once the deleted ones' tokens are refused everywhere, with
/// why each id was skipped (`None`: deleted). The entry keeps its skips under a fresh prune id in the
/// replicated state, which this node has applied when `propose` returns.
async fn prune_collectors(
    state: &AppState,
    ids: &[String],
    cutoff: UnixMillis,
) -> Result<Vec<Option<PruneSkip>>, ApiError> {
    let prune_id = secrets::random_id("prune").map_err(|error| ApiError::internal("prune id", error))?;
    let prune = PruneCutoff { inactive_before: cutoff, prune_id: prune_id.clone() };
    state.raft.propose(Command::DeleteCollectors { ids: ids.to_vec(), prune: Some(prune) }).await?;
    let skips: BTreeMap<String, PruneSkip> =
        state.raft.state().fleet.prune_skips.of(&prune_id).iter().cloned().collect();
    let reasons: Vec<Option<PruneSkip>> = ids.iter().map(|id| skips.get(id).copied()).collect();
    let deleted: Vec<String> =
        ids.iter().zip(&reasons).filter(|(_, reason)| reason.is_none()).map(|(id, _)| id.clone()).collect();
    // Promise 4: the owners applied it, or their leases have ended.
    await_owners(&state.raft, &deleted).await;
    Ok(reasons)
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The status and last-seen time to report for a candidate that is still inactive in the light of
/// its live state; `None` when it is active after all.
fn still_inactive(
    record: &CollectorRecord,
    gathered: Option<&Gathered>,
    cutoff: UnixMillis,
    stricter_cutoff: UnixMillis,
) -> Option<(CollectorStatus, Option<UnixMillis>)> {
    match gathered.and_then(Gathered::live) {
        Some(live) => {
            let last_seen = live.last_seen_at.max(record.last_seen_at);
            let active = matches!(live.status, CollectorStatus::Connected | CollectorStatus::Degraded)
                || last_seen.unwrap_or(record.created_at) >= cutoff;
            (!active).then_some((live.status, last_seen))
        }
        None => (record.last_active() < stricter_cutoff).then_some((record.status, record.last_seen_at)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::actors::collector_actor::LiveView;
    use crate::cluster::live_reads::LiveRead;
    use crate::model::CollectorMode;

    const HOUR: u64 = 3_600_000;

    fn record(created_at: u64, last_seen_at: Option<u64>, status: CollectorStatus) -> CollectorRecord {
        let mut record = CollectorRecord::new(
            "col_1".into(),
            "edge".into(),
            CollectorMode::AlloyRemotecfg,
            BTreeMap::new(),
            UnixMillis(created_at),
        );
        record.last_seen_at = last_seen_at.map(UnixMillis);
        record.status = status;
        record
    }

    fn live(status: CollectorStatus, last_seen_at: Option<u64>) -> Gathered {
        let view = LiveView {
            status,
            host_id: None,
            last_seen_at: last_seen_at.map(UnixMillis),
            local_attributes: BTreeMap::new(),
            delivered_hash: None,
            remote_status: None,
            remote_error: None,
            expected_poll_interval: Duration::from_secs(60),
            own_metrics_last_seen_at: None,
            effective_config: None,
            apply: Default::default(),
            opamp: None,
        };
        Gathered { owner: Some(1), read: LiveRead::Live(Box::new(view)) }
    }

    #[test]
    fn a_collector_its_owner_reports_connected_is_never_inactive() {
        let old = record(HOUR, Some(2 * HOUR), CollectorStatus::Offline);
        let cutoff = UnixMillis(100 * HOUR);
        let stricter = UnixMillis(99 * HOUR);
        assert!(still_inactive(
            &old,
            Some(&live(CollectorStatus::Connected, Some(2 * HOUR))),
            cutoff,
            stricter
        )
        .is_none());
        assert!(
            still_inactive(&old, Some(&live(CollectorStatus::Degraded, None)), cutoff, stricter).is_none()
        );
        assert!(
            still_inactive(&old, Some(&live(CollectorStatus::Offline, Some(100 * HOUR))), cutoff, stricter)
                .is_none(),
            "seen since the cut-off, though not persisted yet"
        );
        let (status, last_seen) =
            still_inactive(&old, Some(&live(CollectorStatus::Stale, Some(3 * HOUR))), cutoff, stricter)
                .expect("inactive");
        assert_eq!((status, last_seen), (CollectorStatus::Stale, Some(UnixMillis(3 * HOUR))));
    }

    #[test]
    fn without_live_state_the_persisted_time_needs_the_persist_interval_more() {
        let cutoff = UnixMillis(100 * HOUR);
        let stricter = UnixMillis(99 * HOUR);
        let not_asked = Gathered { owner: Some(1), read: LiveRead::OwnerNotAsked };
        let within_margin = record(HOUR, Some(99 * HOUR + 1), CollectorStatus::Offline);
        assert!(still_inactive(&within_margin, Some(&not_asked), cutoff, stricter).is_none());
        let beyond = record(HOUR, Some(98 * HOUR), CollectorStatus::Connected);
        assert!(still_inactive(&beyond, Some(&not_asked), cutoff, stricter).is_some());
        let never_seen = record(HOUR, None, CollectorStatus::AwaitingConnection);
        assert_eq!(
            still_inactive(&never_seen, None, cutoff, stricter),
            Some((CollectorStatus::AwaitingConnection, None))
        );
    }

    #[test]
    fn label_changes_must_change_something_and_not_contradict_themselves() {
        let changes = |set: &[(&str, &str)], remove: &[&str]| LabelChanges {
            set: set.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            remove: remove.iter().map(|k| (*k).to_owned()).collect(),
        };
        assert!(check_label_changes(changes(&[], &[])).is_err());
        assert!(check_label_changes(changes(&[("env", "prod")], &["env"])).is_err());
        assert!(check_label_changes(changes(&[("bad key", "x")], &[])).is_err());
        assert!(check_label_changes(changes(&[("env", "prod")], &["team"])).is_ok());
    }
}
