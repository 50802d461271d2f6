//! `GET /api/v1/collectors/{id}/topology`: the rendered pipeline graph annotated with per-component
//! throughput from the collector's own metrics ([`join`] does the join, purely).
//!
//! Rates are items per second, `null` until two own_metrics pushes arrived since the collector's actor
//! was activated on this node. `?history=true` adds each node's rate window (the last hour).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub mod join;

use join::annotate;

use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::time::Rfc3339;
use crate::render::graph::render_graph;

#[derive(Deserialize)]
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
    let snapshot = state.registry.throughput(&collector_id, query.history).await;
    let topology = annotate(&graph, snapshot.as_ref(), query.history);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "nodes": topology.nodes,
        "edges": topology.edges,
        "updated_at": topology.updated_at.map(Rfc3339),
        "collector": topology.collector,
        "process": topology.process,
    })))
}
