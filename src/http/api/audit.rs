//! `GET /audit?after=&limit=` (admins): the replicated audit log, oldest first, paged by entry id;
//! `next` is the last id returned (or `after` when none), to pass as the next `after`, as for events.
//! `?tail=N` (instead of `after`) returns the newest N entries, still oldest first (the Settings page).
//! How entries are made: `crate::audit`; what they hold and how long they are kept: `model/audit.rs`.

use actix_web::{web, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::{AuditEntry, UnixMillis};

/// Entries per page without `limit`, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
    tail: Option<usize>,
}

pub(super) async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let limit = query.limit.or(query.tail).unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        let field = if query.limit.is_some() { "limit" } else { "tail" };
        return Err(ApiError::invalid_field(field, format!("must be between 1 and {MAX_LIMIT}")));
    }
    // Entries past their age are dropped when the next one is recorded; until then, hide them.
    let max_age = state.config.audit.retention.max_age;
    let not_before = UnixMillis(UnixMillis::now().0.saturating_sub(max_age.as_millis() as u64));
    let applied = state.raft.state();
    let log = &applied.fleet.audit;
    let after = match query.tail {
        Some(tail) => log.last_id().saturating_sub(tail as u64),
        None => query.after,
    };
    let page = log.page(after, limit, not_before);
    let next = page.last().map_or(after, |entry| entry.id);
    let entries: Vec<serde_json::Value> = page.into_iter().map(entry_view).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries, "next": next })))
}

fn entry_view(entry: &AuditEntry) -> serde_json::Value {
    let record = &entry.record;
    serde_json::json!({
        "id": entry.id,
        "ts": record.ts.to_rfc3339(),
        "actor": record.actor,
        "actor_kind": record.actor_kind.as_str(),
        "actor_id": record.actor_id,
        "remote_addr": record.remote_addr,
        "action": record.action,
        "target": record.target,
        "outcome": record.outcome,
        "request_id": record.request_id,
        "operation": record.operation,
        "count": record.count,
    })
}
