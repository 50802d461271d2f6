//! `GET /api/v1/collectors/{id}/topology`: the rendered pipeline graph annotated with per-component
//! throughput from the collector's own metrics ([`join`] does the join, purely).
//!
//! Rates are items per second, `null` until two own_metrics pushes arrived since the collector's actor
//! was activated on its owner. `?history=true` adds each node's rate window (the last hour). The
//! throughput comes from the collector's owner (one bounded peer call when that is another node);
//! `"live": false` says the owner could not be asked in time, and the rates are then `null`.

use actix_web::web;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod join;

use join::{annotate, CollectorThroughput, TopologyEdge, TopologyNode};

use super::handler_types::Reply;
use crate::actors::throughput::ProcessStats;

use crate::cluster::live_reads::{gather_throughput, ThroughputRead};
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::UnixMillis;
use crate::render::graph::render_graph;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TopologyQuery {
    #[serde(default)]
    history: bool,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TopologyView {
    nodes: Vec<TopologyNode>,
    edges: Vec<TopologyEdge>,
    /// When the throughput was last updated; `null` before any.
    updated_at: Option<String>,
    /// The whole collector's received and sent items.
    collector: CollectorThroughput,
    /// `null` until a push carried process metrics.
    process: Option<ProcessStats>,
    /// `false` when the owner could not be asked in time (the rates are then `null`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<bool>,
}

pub(super) async fn topology(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<TopologyQuery>,
) -> Result<Reply<TopologyView>, ApiError> {
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
    Ok(Reply(TopologyView {
        nodes: topology.nodes,
        edges: topology.edges,
        updated_at: topology.updated_at.map(UnixMillis::to_rfc3339),
        collector: topology.collector,
        process: topology.process,
        // The rates are unknown, not zero: say the owner could not be asked (cluster.md, reads).
        live: (!owner_asked).then_some(false),
    }))
}
