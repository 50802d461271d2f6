//! The rendered pipeline of one collector as a graph: sources → routes → steps → destinations.
//!
//! Used by the topology API (with throughput from own_metrics mapped onto `components`) and the UI.
//! Nodes exist for every source, route, step and referenced destination; edges only where records
//! actually flow (per [`super::plan`]), labelled with the signals that flow along them. Component ids
//! come from the renderer of the collector's format, so they are exactly the ids in its config.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::Plan;
use super::secrets::Credentials;
use super::{alloy, otelcol, RenderInput};
use crate::model::pipeline::Signal;
use crate::model::CollectorMode;

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
    /// The signals that flow along this edge, sorted.
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenderedGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// The graph of what [`super::render_collector_config`] renders for the same input.
pub fn render_graph(input: &RenderInput<'_>) -> RenderedGraph {
    let mut components = match input.mode {
        CollectorMode::AlloyRemotecfg => alloy::render_alloy(input, &Credentials::Markers).components,
        CollectorMode::Opamp => otelcol::render_otelcol(input, &Credentials::Markers).components,
    };
    let plan = Plan::new(input);
    let mut node = |id: String, kind: NodeKind, node_type: &str, label: &str| GraphNode {
        components: components.remove(&id).unwrap_or_default(),
        id,
        kind,
        node_type: node_type.to_owned(),
        label: label.to_owned(),
    };

    let mut nodes = Vec::new();
    for planned in &plan.sources {
        let source = &planned.source;
        nodes.push(node(planned.node_id(), NodeKind::Source, &source.source_type, &source.name));
    }
    for route in &plan.routes {
        nodes.push(node(route.node_id(), NodeKind::Route, "route", &route.route.name));
        for step in &route.steps {
            let pipeline_name = route.pipeline.map(|pipeline| pipeline.name.as_str()).unwrap_or_default();
            nodes.push(node(
                step_node(&route.route.id, step.index),
                NodeKind::Processor,
                &step.step.step_type,
                &format!("{pipeline_name} #{}: {}", step.index + 1, step.step.step_type),
            ));
        }
    }
    for planned in &plan.destinations {
        let destination = &planned.destination;
        nodes.push(node(
            planned.node_id(),
            NodeKind::Destination,
            &destination.destination_type,
            &destination.name,
        ));
    }

    let mut edges: BTreeMap<(String, String), Vec<Signal>> = BTreeMap::new();
    let mut flow = |from: String, to: String, signal: Signal| {
        let signals = edges.entry((from, to)).or_default();
        if !signals.contains(&signal) {
            signals.push(signal);
            signals.sort();
        }
    };
    for source in &plan.sources {
        for &signal in &source.routed_signals {
            for &route_index in plan.chain(signal) {
                let route = &plan.routes[route_index];
                flow(source.node_id(), route.node_id(), signal);
            }
        }
    }
    for route in &plan.routes {
        for &signal in &route.signals {
            let mut from = route.node_id();
            for step in route.steps_for(signal) {
                let to = step_node(&route.route.id, step.index);
                flow(from, to.clone(), signal);
                from = to;
            }
            for destination in plan.route_destinations(route, signal) {
                flow(from.clone(), destination.node_id(), signal);
            }
        }
    }
    let edges = edges.into_iter().map(|((from, to), signals)| GraphEdge { from, to, signals }).collect();
    RenderedGraph { nodes, edges }
}

fn step_node(route_id: &str, index: usize) -> String {
    format!("step:{route_id}:{index}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{settings_for_test, Destination, Pipeline, Route, Source, Step};
    use crate::render::TestModel;
    use serde_json::json;

    fn model() -> TestModel {
        TestModel {
            sources: vec![Source { name: "app".to_owned(), ..Source::for_test("src_1", "otlp") }],
            routes: vec![Route {
                name: "errors".to_owned(),
                pipeline_id: Some("pl_1".to_owned()),
                ..Route::for_test(
                    "rte_1",
                    10,
                    "attributes[\"level\"] == \"error\"",
                    true,
                    &["dst_loki", "dst_debug"],
                )
            }],
            destinations: vec![
                Destination {
                    name: "loki".to_owned(),
                    settings: settings_for_test(json!({"url": "http://loki:3100"})),
                    ..Destination::for_test("dst_loki", "loki")
                },
                Destination { name: "debug".to_owned(), ..Destination::for_test("dst_debug", "debug") },
            ],
            pipelines: vec![Pipeline {
                name: "tidy".to_owned(),
                ..Pipeline::for_test("pl_1", &[Signal::Logs], vec![Step::for_test("batch", json!({}))])
            }],
            ..TestModel::default()
        }
    }

    fn graph(model: &TestModel, mode: CollectorMode) -> RenderedGraph {
        render_graph(&model.input(mode))
    }

    fn edge(from: &str, to: &str, signals: &[Signal]) -> GraphEdge {
        GraphEdge { from: from.to_owned(), to: to.to_owned(), signals: signals.to_vec() }
    }

    #[test]
    fn edges_follow_the_signals_that_flow() {
        let graph = graph(&model(), CollectorMode::AlloyRemotecfg);
        let ids: Vec<&str> = graph.nodes.iter().map(|node| node.id.as_str()).collect();
        assert_eq!(
            ids,
            ["source:src_1", "route:rte_1", "step:rte_1:0", "destination:dst_debug", "destination:dst_loki"]
        );
        assert_eq!(
            graph.edges,
            [
                edge("route:rte_1", "destination:dst_debug", &[Signal::Metrics, Signal::Traces]),
                edge("route:rte_1", "step:rte_1:0", &[Signal::Logs]),
                edge("source:src_1", "route:rte_1", &Signal::ALL),
                edge("step:rte_1:0", "destination:dst_debug", &[Signal::Logs]),
                edge("step:rte_1:0", "destination:dst_loki", &[Signal::Logs]),
            ]
        );
    }

    #[test]
    fn nodes_carry_the_component_ids_of_each_format() {
        let alloy = graph(&model(), CollectorMode::AlloyRemotecfg);
        let step =
            alloy.nodes.iter().find(|node| node.id == "step:rte_1:0").map(|node| node.components.clone());
        assert_eq!(step, Some(vec!["otelcol.processor.batch.rte_1_step_0".to_owned()]));
        let otel = graph(&model(), CollectorMode::Opamp);
        let source =
            otel.nodes.iter().find(|node| node.id == "source:src_1").map(|node| node.components.clone());
        assert_eq!(source, Some(vec!["otlp/src_1".to_owned(), "resource/src_1".to_owned()]));
    }

    #[test]
    fn a_model_without_routes_has_nodes_but_no_edges() {
        let mut model = model();
        model.routes.clear();
        let graph = graph(&model, CollectorMode::Opamp);
        assert_eq!(graph.nodes.len(), 1);
        assert!(graph.edges.is_empty());
        assert!(graph.nodes[0].components.is_empty());
    }
}
