//! The rendered pipeline of one collector as a graph: sources → steps → routes → destinations.
//!
//! Used by the topology API (with throughput from own_metrics mapped onto `components`) and the UI.

use serde::Serialize;

use super::RenderInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Source,
    Processor,
    Route,
    Destination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    /// Stable id, e.g. `source:src_1`, `route:rte_1`, `step:rte_1:0`, `destination:dst_1`.
    pub id: String,
    pub kind: NodeKind,
    /// The catalogue type (`otlp`, `filter`, `loki`, …) or `route`.
    #[serde(rename = "type")]
    pub node_type: String,
    pub label: String,
    /// Component ids in the rendered config that implement this node, as the collector names them in
    /// its own metrics (Alloy: `otelcol.receiver.otlp.src_1` relative to the module; OTel: `otlp/src_1`).
    pub components: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenderedGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// The graph of what [`super::render_collector_config`] renders for the same input.
pub fn render_graph(_input: &RenderInput<'_>) -> RenderedGraph {
    RenderedGraph::default()
}
