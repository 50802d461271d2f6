//! The rendered pipeline of one collector as a graph: sources → routes → steps → destinations.
//!
//! Used by the topology API (with throughput from own_metrics mapped onto `components`) and the UI.
//! Nodes exist for every source, route, step and referenced destination; edges only where records
//! actually flow (per [`super::plan`]), labelled with the signals that flow along them. Component ids
//! come from the renderer of the collector's format, so they are exactly the ids in its config.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::Plan;
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
        CollectorMode::AlloyRemotecfg => alloy::render_alloy(input).components,
        CollectorMode::Opamp => otelcol::render_otelcol(input).components,
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
    for source in &plan.sources {
        let source = source.source;
        nodes.push(node(
            format!("source:{}", source.id),
            NodeKind::Source,
            &source.source_type,
            &source.name,
        ));
    }
    for route in &plan.routes {
        nodes.push(node(format!("route:{}", route.route.id), NodeKind::Route, "route", &route.route.name));
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
    for destination in &plan.destinations {
        let destination = destination.destination;
        nodes.push(node(
            format!("destination:{}", destination.id),
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
                flow(format!("source:{}", source.source.id), format!("route:{}", route.route.id), signal);
            }
        }
    }
    for route in &plan.routes {
        for &signal in &route.signals {
            let mut from = format!("route:{}", route.route.id);
            for step in route.steps_for(signal) {
                let to = step_node(&route.route.id, step.index);
                flow(from, to.clone(), signal);
                from = to;
            }
            for destination in plan.route_destinations(route, signal) {
                flow(from.clone(), format!("destination:{}", destination.destination.id), signal);
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
    use crate::model::pipeline::{Destination, Pipeline, Route, Source, Step};
    use serde_json::json;

    fn settings(value: serde_json::Value) -> crate::model::pipeline::Settings {
        value.as_object().cloned().unwrap_or_default()
    }

    struct Model {
        sources: Vec<Source>,
        routes: Vec<Route>,
        destinations: Vec<Destination>,
        pipelines: Vec<Pipeline>,
    }

    fn model() -> Model {
        Model {
            sources: vec![Source {
                id: "src_1".to_owned(),
                name: "app".to_owned(),
                source_type: "otlp".to_owned(),
                settings: Default::default(),
                resource_attributes: Default::default(),
            }],
            routes: vec![Route {
                id: "rte_1".to_owned(),
                name: "errors".to_owned(),
                condition: "attributes[\"level\"] == \"error\"".to_owned(),
                priority: 10,
                is_final: true,
                pipeline_id: Some("pl_1".to_owned()),
                destination_ids: vec!["dst_loki".to_owned(), "dst_debug".to_owned()],
            }],
            destinations: vec![
                Destination {
                    id: "dst_loki".to_owned(),
                    name: "loki".to_owned(),
                    destination_type: "loki".to_owned(),
                    settings: settings(json!({"url": "http://loki:3100"})),
                    credentials: Default::default(),
                },
                Destination {
                    id: "dst_debug".to_owned(),
                    name: "debug".to_owned(),
                    destination_type: "debug".to_owned(),
                    settings: Default::default(),
                    credentials: Default::default(),
                },
            ],
            pipelines: vec![Pipeline {
                id: "pl_1".to_owned(),
                name: "tidy".to_owned(),
                description: String::new(),
                signals: vec![Signal::Logs],
                steps: vec![Step { step_type: "batch".to_owned(), settings: Default::default() }],
            }],
        }
    }

    fn graph(model: &Model, mode: CollectorMode) -> RenderedGraph {
        render_graph(&RenderInput {
            collector_id: "col_1",
            collector_name: "edge",
            mode,
            sources: model.sources.iter().collect(),
            routes: model.routes.iter().collect(),
            destinations: model.destinations.iter().collect(),
            pipelines: model.pipelines.iter().map(|pipeline| (pipeline.id.as_str(), pipeline)).collect(),
        })
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
