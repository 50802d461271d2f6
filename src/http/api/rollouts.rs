//! Rollouts over REST: list, one rollout with each collector's progress, and resume, abort and
//! rollback (`model/rollouts.rs`). Progress is computed from this node's replica at the time of
//! the request, with the same rule the leader's driver follows.

use actix_web::web;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fleet_model::{commit_or_preview, WriteOptions};
use super::handler_types::Reply;
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::rollouts::{Counts, FirstBatch, Rollout, TargetProgress};
use crate::model::{natural_cmp, CollectorMap, Command, UnixMillis};

const DEFAULT_LIST: usize = 50;
const MAX_LIST: usize = 500;
/// Collectors listed in one rollout's view (the counts cover all of them).
const MAX_COLLECTORS_SHOWN: usize = 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// `running`, `paused`, `done`, `aborted`, or `active` (running or paused).
    state: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct BatchView {
    index: usize,
    size: usize,
    released_at: Option<String>,
    counts: Counts,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct CollectorProgress {
    id: String,
    name: String,
    batch: usize,
    /// `pending`, `delivered`, `applied`, `failed` or `unknown`.
    progress: TargetProgress,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct RolloutView {
    id: String,
    /// `running`, `paused`, `done` or `aborted`.
    state: &'static str,
    change: String,
    started_by: Option<String>,
    created_at: String,
    updated_at: String,
    /// `all` or `staged`.
    strategy: &'static str,
    /// A staged rollout's first batch (`10%`, `5`).
    first_batch: Option<String>,
    soak_seconds: u64,
    /// The shared item changed (`{"kind":"pipeline","id":…}`), if any: what abort and rollback revert.
    item: Option<serde_json::Value>,
    paused_reason: Option<String>,
    rollback_of: Option<String>,
    rolled_back_by: Option<String>,
    /// The later change of the same item that took over this all-at-once rollout (it ends `done`).
    superseded_by: Option<String>,
    batches: Vec<BatchView>,
    counts: Counts,
    /// Each collector's progress (first 1000, failed ones first); only in `GET /rollouts/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    collectors: Option<Vec<CollectorProgress>>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct RolloutList {
    /// Newest first.
    rollouts: Vec<RolloutView>,
}

fn view(rollout: &Rollout, collectors: &CollectorMap, with_collectors: bool) -> RolloutView {
    let now = UnixMillis::now();
    let mut batches: Vec<BatchView> = rollout
        .batches
        .iter()
        .enumerate()
        .map(|(index, batch)| BatchView {
            index,
            size: batch.targets.len(),
            released_at: batch.released_at.map(UnixMillis::to_rfc3339),
            counts: Counts::default(),
        })
        .collect();
    let mut counts = Counts::default();
    let mut shown = Vec::new();
    for (batch, id, progress) in rollout.progress(collectors, now) {
        counts.add(progress);
        batches[batch].counts.add(progress);
        if with_collectors {
            if let Some(record) = collectors.get(id) {
                shown.push(CollectorProgress {
                    id: id.to_owned(),
                    name: record.name.clone(),
                    batch,
                    progress,
                    status: record.status.as_str(),
                    error: (progress == TargetProgress::Failed)
                        .then(|| record.config.remote_error.clone())
                        .flatten(),
                });
            }
        }
    }
    shown.sort_by(|left, right| {
        (right.progress == TargetProgress::Failed)
            .cmp(&(left.progress == TargetProgress::Failed))
            .then_with(|| left.batch.cmp(&right.batch))
            .then_with(|| natural_cmp(&left.name, &right.name))
    });
    shown.truncate(MAX_COLLECTORS_SHOWN);
    RolloutView {
        id: rollout.id.clone(),
        state: rollout.state.as_str(),
        change: rollout.change.clone(),
        started_by: rollout.started_by.clone(),
        created_at: rollout.created_at.to_rfc3339(),
        updated_at: rollout.updated_at.to_rfc3339(),
        strategy: if rollout.staged.is_some() { "staged" } else { "all" },
        first_batch: rollout.staged.map(|staged| match staged.first_batch {
            FirstBatch::Count(count) => count.to_string(),
            FirstBatch::Percent(percent) => format!("{percent}%"),
        }),
        soak_seconds: rollout.soak_ms() / 1000,
        item: rollout.item.as_ref().and_then(|item| serde_json::to_value(&item.key).ok()),
        paused_reason: rollout.paused_reason.clone(),
        rollback_of: rollout.rollback_of.clone(),
        rolled_back_by: rollout.rolled_back_by.clone(),
        superseded_by: rollout.superseded_by.clone(),
        batches,
        counts,
        collectors: with_collectors.then_some(shown),
    }
}

pub(super) async fn list(
    _principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<Reply<RolloutList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::invalid_field("limit", format!("must be between 1 and {MAX_LIST}")));
    }
    let wanted = query.state.as_deref();
    if wanted.is_some_and(|state| !["running", "paused", "done", "aborted", "active"].contains(&state)) {
        return Err(ApiError::invalid_field("state", "must be running, paused, done, aborted or active"));
    }
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    let rollouts = fleet
        .rollouts
        .by_id
        .values()
        .rev()
        .filter(|rollout| match wanted {
            None => true,
            Some("active") => rollout.state.is_active(),
            Some(name) => rollout.state.as_str() == name,
        })
        .take(limit)
        .map(|rollout| view(rollout, &fleet.collectors, false))
        .collect();
    Ok(Reply(RolloutList { rollouts }))
}

fn rollout_view(state: &AppState, id: &str) -> Result<RolloutView, ApiError> {
    let applied = state.raft.state();
    let rollout = applied.fleet.rollouts.by_id.get(id).ok_or_else(|| ApiError::not_found("rollout", id))?;
    Ok(view(rollout, &applied.fleet.collectors, true))
}

pub(super) async fn get(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<RolloutView>, ApiError> {
    Ok(Reply(rollout_view(&state, &path)?))
}

pub(super) async fn resume(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<RolloutView>, ApiError> {
    principal.require_collector_admin()?;
    let id = path.into_inner();
    state.raft.propose(Command::ResumeRollout { id: id.clone(), at: UnixMillis::now() }).await?;
    Ok(Reply(rollout_view(&state, &id)?))
}

/// Abort and rollback put the previous revision back: a change like any other, checked the same way
/// for every collector it reaches before it is proposed.
async fn revert(state: &AppState, id: String, abort: bool) -> Result<Reply<RolloutView>, ApiError> {
    let command = Command::RevertRollout { id: id.clone(), abort, at: UnixMillis::now() };
    commit_or_preview(state, command, &WriteOptions::default()).await?;
    Ok(Reply(rollout_view(state, &id)?))
}

pub(super) async fn abort(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<RolloutView>, ApiError> {
    principal.require_collector_admin()?;
    revert(&state, path.into_inner(), true).await
}

pub(super) async fn rollback(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<RolloutView>, ApiError> {
    principal.require_collector_admin()?;
    revert(&state, path.into_inner(), false).await
}
