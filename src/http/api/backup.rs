//! `GET /backup` (admins): the cluster's fleet as one backup document (`crate::backup`), read from
//! this node's replica after a read-index barrier, so it holds every write acknowledged anywhere
//! before the request arrived. It carries the data key: the request is audited like a write, and the
//! key never reaches a log.

use std::time::Duration;

use actix_web::{web, HttpResponse};

use crate::backup::{self, BackupSource};
use crate::cluster::admin::{self, AdminAnswer, AdminCall};
use crate::error::{ApiError, ErrorCode};
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::UnixMillis;

/// The leader's read index and this node's apply up to it: a quorum round and, on a follower that
/// lags, the catch-up. Longer means the cluster cannot confirm a leader now; the caller retries.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Unavailable, format!("cannot take a consistent backup now: {why}; retry"))
}

pub(super) async fn backup(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require_cluster_admin()?;
    let raft = &state.raft;
    let deadline = tokio::time::Instant::now() + BARRIER_TIMEOUT;
    let read_index =
        match tokio::time::timeout_at(deadline, admin::call_leader(raft, AdminCall::ReadIndex)).await {
            Ok(Ok(AdminAnswer::ReadIndex { commit_index })) => commit_index,
            Ok(Ok(other)) => return Err(unavailable(format!("unexpected answer from the leader: {other}"))),
            Ok(Err(error)) => return Err(unavailable(format!("no read index from the leader: {error}"))),
            Err(_elapsed) => return Err(unavailable("the leader did not confirm its read index in time")),
        };
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    if raft.wait_applied(read_index, remaining).await < read_index {
        return Err(unavailable("this node has not applied the leader's read index yet"));
    }
    let (document, applied_index, collectors) = {
        // Serialized once, under the read lock (as a snapshot is), so the document is one applied index.
        let applied = raft.state();
        let source = BackupSource {
            cluster_id: raft.cluster_id().to_owned(),
            node_id: raft.node_id(),
            applied_index: applied.last_applied.map_or(0, |log_id| log_id.index),
            linkmesh_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let mut collector_events = std::collections::BTreeMap::new();
        for record in applied.fleet.collectors.values().filter(|record| record.events_on_disk()) {
            let events = applied
                .events_after(record, 0, crate::model::collector::MAX_EVENTS_PER_COLLECTOR)
                .map_err(|error| ApiError::internal("backup", error))?;
            collector_events.insert(record.id.clone(), events);
        }
        let document =
            backup::write(&applied.fleet, &collector_events, &source, &state.data_key, UnixMillis::now())
                .map_err(|error| ApiError::internal("backup", error))?;
        (document, source.applied_index, applied.fleet.collectors.len())
    };
    tracing::info!(
        actor = %principal.name,
        applied_index,
        collectors,
        bytes = document.len(),
        "backup taken"
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"linkmesh-backup-{applied_index}.json\""),
        ))
        .body(document))
}
