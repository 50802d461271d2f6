//! `GET /api/v1/collectors/{id}/topology`: the rendered pipeline graph annotated with per-component
//! throughput from the collector's own metrics ([`join`] does the join, purely).
//!
//! Rates are items per second, `null` until two own_metrics pushes arrived since the collector's actor
//! was activated on its owner. `?history=true` adds each node's rate window (the last hour). The
//! throughput comes from the collector's owner (one bounded peer call when that is another node);
//! `"live": false` says the owner could not be asked in time, and the rates are then `null`.

use actix_web::{web, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;

pub mod join;

use join::annotate;

use crate::cluster::live_reads::{gather_throughput, ThroughputRead};
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::time::Rfc3339;
use crate::render::graph::render_graph;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TopologyQuery {
    #[serde(default)]
    history: bool,
}

pub(super) async fn topology(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<TopologyQuery>,
) -> Result<HttpResponse, ApiError> {
    let collector_id = path.into_inner();
    let graph = {
        let applied = state.raft.state();
        let record = applied
            .fleet
            .collectors
            .get(&collector_id)
            .ok_or_else(|| ApiError::not_found("collector", &collector_id))?;
        render_graph(&applied.fleet.render_input(record))
    };
    let read = gather_throughput(&state.raft, &state.registry, &collector_id, query.history).await;
    let (snapshot, owner_asked) = match read {
        ThroughputRead::Live(snapshot) => (Some(snapshot), true),
        ThroughputRead::NotResident => (None, true),
        ThroughputRead::OwnerNotAsked => (None, false),
    };
    let topology = annotate(&graph, snapshot.as_ref(), query.history);
    let mut body = serde_json::json!({
        "nodes": topology.nodes,
        "edges": topology.edges,
        "updated_at": topology.updated_at.map(Rfc3339),
        "collector": topology.collector,
        "process": topology.process,
    });
    if !owner_asked {
        // The rates are unknown, not zero: say the owner could not be asked (cluster.md, reads).
        body["live"] = serde_json::Value::Bool(false);
    }
    Ok(HttpResponse::Ok().json(body))
}
