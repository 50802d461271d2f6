//! The topology view: the rendered pipeline graph (`render/graph.rs`) annotated with a collector's
//! throughput snapshot (`actors/throughput.rs`). Pure; the handler in `topology.rs` serves it.
//!
//! A node's components are taken in flow order: its `in_rate` is the first component's, its `out_rate`
//! the last one's, its `error_rate` the sum. Components in the metrics that no node claims become `local`
//! nodes. An edge's rate is pinned down only where the metrics allow it (see [`TopologyEdge::rate`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemars::JsonSchema;
use serde::Serialize;

use crate::actors::throughput::{ComponentThroughput, ProcessStats, RateSample, ThroughputSnapshot};
use crate::model::pipeline::Signal;
use crate::model::UnixMillis;
use crate::own_metrics::metric_rules::ComponentKey;
use crate::render::graph::{NodeKind, RenderedGraph};

/// A node of the topology API.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TopologyNode {
    pub id: String,
    /// `source`, `processor`, `route`, `destination`, or `local` (in the metrics, not in our config).
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub node_type: String,
    pub label: String,
    pub components: Vec<String>,
    pub in_rate: Option<f64>,
    pub out_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub queue_size: Option<f64>,
    pub queue_capacity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<RateSample>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TopologyEdge {
    pub from: String,
    pub to: String,
    /// The signals flowing along a rendered edge (empty for edges from the collector's own graph).
    pub signals: Vec<Signal>,
    /// Items per second along the edge, where the metrics pin it down: `to`'s in-rate when this is its
    /// only incoming edge, else `from`'s out-rate when this is its only outgoing edge, else `null`.
    pub rate: Option<f64>,
}

/// What the whole collector received and sent: ingress receivers and egress exporters only, so items
/// passing several components inside the collector are counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, JsonSchema)]
pub struct CollectorThroughput {
    pub received_rate: Option<f64>,
    pub sent_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub received_total: Option<f64>,
    pub sent_total: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub nodes: Vec<TopologyNode>,
    pub edges: Vec<TopologyEdge>,
    pub updated_at: Option<UnixMillis>,
    pub collector: CollectorThroughput,
    /// `None` until a push carried process metrics.
    pub process: Option<ProcessStats>,
}

fn node_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Source => "source",
        NodeKind::Processor => "processor",
        NodeKind::Route => "route",
        NodeKind::Destination => "destination",
    }
}

fn sum_options(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    values.into_iter().flatten().fold(None, |sum, value| Some(sum.unwrap_or(0.0) + value))
}

/// Annotates the rendered graph with throughput. A node's components are taken in flow order: its
/// `in_rate` is the first component's, its `out_rate` the last one's, its `error_rate` the sum.
/// Components in the metrics that no node claims (the enrollment config's own_metrics chain, anything
/// added by hand) become `local` nodes, with edges from Alloy's graph connections where they touch one.
pub fn annotate(graph: &RenderedGraph, snapshot: Option<&ThroughputSnapshot>, history: bool) -> Topology {
    let empty = ThroughputSnapshot::default();
    let snapshot = snapshot.unwrap_or(&empty);
    let by_id: HashMap<&str, &ComponentThroughput> =
        snapshot.components.iter().map(|component| (component.key.id.as_str(), component)).collect();
    let mut node_of_component: HashMap<String, String> = HashMap::new();
    let mut nodes = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let members: Vec<&ComponentThroughput> =
            node.components.iter().filter_map(|id| by_id.get(id.as_str()).copied()).collect();
        for id in &node.components {
            node_of_component.insert(id.clone(), node.id.clone());
        }
        let latest = |component: &&ComponentThroughput| component.latest;
        nodes.push(TopologyNode {
            id: node.id.clone(),
            kind: node_kind(node.kind),
            node_type: node.node_type.clone(),
            label: node.label.clone(),
            components: node.components.clone(),
            in_rate: members.iter().filter_map(latest).find_map(|sample| sample.in_rate),
            out_rate: members.iter().rev().filter_map(latest).find_map(|sample| sample.out_rate),
            error_rate: sum_options(members.iter().filter_map(latest).map(|sample| sample.error_rate)),
            queue_size: sum_options(members.iter().map(|component| component.queue_size)),
            queue_capacity: sum_options(members.iter().map(|component| component.queue_capacity)),
            history: history.then(|| merged_history(&members)),
        });
    }
    let mut local_ids: BTreeSet<String> = BTreeSet::new();
    for component in &snapshot.components {
        if !node_of_component.contains_key(&component.key.id) {
            let node_id = component.key.local_node_id();
            node_of_component.insert(component.key.id.clone(), node_id.clone());
            local_ids.insert(node_id.clone());
            nodes.push(TopologyNode {
                id: node_id,
                kind: "local",
                node_type: component.key.component_type().to_owned(),
                label: component.key.id.clone(),
                components: vec![component.key.id.clone()],
                in_rate: component.latest.and_then(|sample| sample.in_rate),
                out_rate: component.latest.and_then(|sample| sample.out_rate),
                error_rate: component.latest.and_then(|sample| sample.error_rate),
                queue_size: component.queue_size,
                queue_capacity: component.queue_capacity,
                history: history.then(|| component.history.clone()),
            });
        }
    }
    // Components only named by graph connections (prometheus.exporter.self has no throughput counters).
    for (from, to) in &snapshot.graph_connections {
        for id in [from, to] {
            if !node_of_component.contains_key(id) {
                let key = ComponentKey::alloy(id);
                let node_id = key.local_node_id();
                node_of_component.insert(id.clone(), node_id.clone());
                local_ids.insert(node_id.clone());
                nodes.push(TopologyNode {
                    id: node_id,
                    kind: "local",
                    node_type: key.component_type().to_owned(),
                    label: key.id.clone(),
                    components: vec![key.id],
                    in_rate: None,
                    out_rate: None,
                    error_rate: None,
                    queue_size: None,
                    queue_capacity: None,
                    history: history.then(Vec::new),
                });
            }
        }
    }
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut edges = Vec::with_capacity(graph.edges.len());
    for edge in &graph.edges {
        if seen.insert((edge.from.clone(), edge.to.clone())) {
            edges.push(TopologyEdge {
                from: edge.from.clone(),
                to: edge.to.clone(),
                signals: edge.signals.clone(),
                rate: None,
            });
        }
    }
    // Alloy's own edges only where they touch a local node: between rendered nodes the rendered graph is
    // the truth (its nodes group several components).
    for (from, to) in &snapshot.graph_connections {
        let (Some(from_node), Some(to_node)) = (node_of_component.get(from), node_of_component.get(to))
        else {
            continue;
        };
        let touches_local = local_ids.contains(from_node) || local_ids.contains(to_node);
        if from_node != to_node && touches_local && seen.insert((from_node.clone(), to_node.clone())) {
            edges.push(TopologyEdge {
                from: from_node.clone(),
                to: to_node.clone(),
                signals: Vec::new(),
                rate: None,
            });
        }
    }
    let rates: HashMap<&str, (Option<f64>, Option<f64>)> =
        nodes.iter().map(|node| (node.id.as_str(), (node.in_rate, node.out_rate))).collect();
    let mut incoming: HashMap<String, usize> = HashMap::new();
    let mut outgoing: HashMap<String, usize> = HashMap::new();
    for edge in &edges {
        *incoming.entry(edge.to.clone()).or_default() += 1;
        *outgoing.entry(edge.from.clone()).or_default() += 1;
    }
    for edge in &mut edges {
        let into_to =
            (incoming[&edge.to] == 1).then(|| rates.get(edge.to.as_str()).and_then(|rate| rate.0)).flatten();
        let out_of_from = (outgoing[&edge.from] == 1)
            .then(|| rates.get(edge.from.as_str()).and_then(|rate| rate.1))
            .flatten();
        edge.rate = into_to.or(out_of_from);
    }
    let process = snapshot.process;
    let has_process = process.cpu_cores.is_some()
        || process.resident_memory_bytes.is_some()
        || process.uptime_seconds.is_some();
    Topology {
        nodes,
        edges,
        updated_at: snapshot.updated_at,
        collector: collector_throughput(snapshot),
        process: has_process.then_some(process),
    }
}

/// The rate windows of a node's components, merged by timestamp (first component's in, last's out).
fn merged_history(members: &[&ComponentThroughput]) -> Vec<RateSample> {
    let mut merged: BTreeMap<UnixMillis, RateSample> = BTreeMap::new();
    for (index, component) in members.iter().enumerate() {
        let first = index == 0;
        let last = index + 1 == members.len();
        for sample in &component.history {
            let entry = merged.entry(sample.at).or_insert(RateSample {
                at: sample.at,
                in_rate: None,
                out_rate: None,
                error_rate: None,
            });
            if first {
                entry.in_rate = sample.in_rate;
            }
            if last {
                entry.out_rate = sample.out_rate;
            }
            entry.error_rate = sum_options([entry.error_rate, sample.error_rate]);
        }
    }
    merged.into_values().collect()
}

/// Received = receivers with no upstream component that has throughput of its own (Alloy's
/// `otelcol.receiver.prometheus` behind a `prometheus.scrape` is an inner hop); sent = exporters with
/// no such downstream component. Errors are summed over every component.
pub fn collector_throughput(snapshot: &ThroughputSnapshot) -> CollectorThroughput {
    let measured: BTreeSet<&str> =
        snapshot.components.iter().map(|component| component.key.id.as_str()).collect();
    let has_measured_upstream = |id: &str| {
        snapshot
            .graph_connections
            .iter()
            .any(|(from, to)| to == id && from != id && measured.contains(from.as_str()))
    };
    let has_measured_downstream = |id: &str| {
        snapshot
            .graph_connections
            .iter()
            .any(|(from, to)| from == id && to != id && measured.contains(to.as_str()))
    };
    let ingress: Vec<&ComponentThroughput> = snapshot
        .components
        .iter()
        .filter(|component| component.receiver && !has_measured_upstream(&component.key.id))
        .collect();
    let egress: Vec<&ComponentThroughput> = snapshot
        .components
        .iter()
        .filter(|component| component.exporter && !has_measured_downstream(&component.key.id))
        .collect();
    CollectorThroughput {
        received_rate: sum_options(ingress.iter().map(|component| component.latest.and_then(|s| s.in_rate))),
        sent_rate: sum_options(egress.iter().map(|component| component.latest.and_then(|s| s.out_rate))),
        error_rate: sum_options(
            snapshot.components.iter().map(|component| component.latest.and_then(|s| s.error_rate)),
        ),
        received_total: sum_options(ingress.iter().map(|component| component.totals.into)),
        sent_total: sum_options(egress.iter().map(|component| component.totals.out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::throughput::{IngestReport, ThroughputState};
    use crate::own_metrics::extract;
    use crate::own_metrics::otlp_values::test_otlp::*;
    use crate::render::graph::{GraphEdge, GraphNode};
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    /// Ingests as if received long after every test timestamp.
    fn ingest(state: &mut ThroughputState, request: &ExportMetricsServiceRequest) -> IngestReport {
        state.ingest(&extract(request), UnixMillis(T0 / 1_000_000 + 365 * 24 * 3600 * 1000))
    }

    fn graph() -> RenderedGraph {
        let node = |id: &str, kind, node_type: &str, components: &[&str]| GraphNode {
            id: id.into(),
            kind,
            node_type: node_type.into(),
            label: id.into(),
            components: components.iter().map(|c| (*c).to_owned()).collect(),
        };
        RenderedGraph {
            nodes: vec![
                node("source:src_1", NodeKind::Source, "otlp", &["otelcol.receiver.otlp.src_1"]),
                node("route:rte_1", NodeKind::Route, "route", &[]),
                node(
                    "destination:dst_1",
                    NodeKind::Destination,
                    "otlp_http",
                    &["otelcol.processor.batch.dst_1", "otelcol.exporter.otlphttp.dst_1"],
                ),
            ],
            edges: vec![
                GraphEdge {
                    from: "source:src_1".into(),
                    to: "route:rte_1".into(),
                    signals: vec![Signal::Traces],
                },
                GraphEdge {
                    from: "route:rte_1".into(),
                    to: "destination:dst_1".into(),
                    signals: vec![Signal::Traces],
                },
            ],
        }
    }

    #[test]
    fn without_metrics_the_graph_has_null_rates() {
        let topology = annotate(&graph(), None, false);
        assert_eq!(topology.nodes.len(), 3);
        assert!(topology.nodes.iter().all(|node| node.in_rate.is_none() && node.out_rate.is_none()));
        assert!(topology.edges.iter().all(|edge| edge.rate.is_none()));
        assert_eq!(topology.updated_at, None);
        assert_eq!(topology.process, None);
    }

    #[test]
    fn rates_land_on_rendered_nodes_and_the_rest_is_local() {
        let mut state = ThroughputState::default();
        let push = |time: u64, n: f64| {
            let id =
                |id: &str| vec![text("component_id", &format!("remotecfg/linkmesh_pipeline.default/{id}"))];
            let root = |id: &str| vec![text("component_id", id)];
            let edge = |from: &str, to: &str| number(vec![text("from", from), text("to", to)], 0, time, 1.0);
            request(vec![
                counter(
                    "otelcol_receiver_accepted_spans_total",
                    vec![number(id("otelcol.receiver.otlp.src_1"), 0, time, 10.0 * n)],
                ),
                counter(
                    "otelcol_processor_incoming_items_total",
                    vec![number(id("otelcol.processor.batch.dst_1"), 0, time, 10.0 * n)],
                ),
                counter(
                    "otelcol_processor_outgoing_items_total",
                    vec![number(id("otelcol.processor.batch.dst_1"), 0, time, 2.0 * n)],
                ),
                counter(
                    "otelcol_exporter_sent_spans_total",
                    vec![number(id("otelcol.exporter.otlphttp.dst_1"), 0, time, 2.0 * n)],
                ),
                counter(
                    "prometheus_forwarded_samples_total",
                    vec![number(root("prometheus.scrape.linkmesh_self"), 0, time, 100.0 * n)],
                ),
                counter(
                    "otelcol_receiver_accepted_metric_points_total",
                    vec![number(root("otelcol.receiver.prometheus.linkmesh"), 0, time, 100.0 * n)],
                ),
                counter(
                    "otelcol_exporter_sent_metric_points_total",
                    vec![number(root("otelcol.exporter.otlphttp.linkmesh"), 0, time, 100.0 * n)],
                ),
                gauge(
                    "alloy_component_graph_connection",
                    vec![
                        edge("prometheus.exporter.self.default", "prometheus.scrape.linkmesh_self"),
                        edge("prometheus.scrape.linkmesh_self", "otelcol.receiver.prometheus.linkmesh"),
                        edge("otelcol.receiver.prometheus.linkmesh", "otelcol.exporter.otlphttp.linkmesh"),
                        edge("otelcol.receiver.otlp.src_1", "otelcol.processor.batch.dst_1"),
                    ],
                ),
            ])
        };
        ingest(&mut state, &push(T0, 0.0));
        ingest(&mut state, &push(T0 + 10 * SECOND, 10.0));
        let topology = annotate(&graph(), Some(&state.snapshot(false)), false);
        let node =
            |id: &str| topology.nodes.iter().find(|node| node.id == id).unwrap_or_else(|| panic!("{id}"));
        assert_eq!(node("source:src_1").in_rate, Some(10.0));
        assert_eq!(
            (node("destination:dst_1").in_rate, node("destination:dst_1").out_rate),
            (Some(10.0), Some(2.0))
        );
        assert_eq!(node("route:rte_1").in_rate, None);
        let local = node("local:prometheus.exporter.self.default");
        assert_eq!(
            (local.kind, local.node_type.as_str(), local.in_rate),
            ("local", "prometheus.exporter.self", None)
        );
        assert_eq!(node("local:otelcol.exporter.otlphttp.linkmesh").out_rate, Some(100.0));
        let edges: Vec<(&str, &str, Option<f64>)> =
            topology.edges.iter().map(|edge| (edge.from.as_str(), edge.to.as_str(), edge.rate)).collect();
        assert_eq!(
            edges,
            [
                ("source:src_1", "route:rte_1", Some(10.0)),
                ("route:rte_1", "destination:dst_1", Some(10.0)),
                (
                    "local:otelcol.receiver.prometheus.linkmesh",
                    "local:otelcol.exporter.otlphttp.linkmesh",
                    Some(100.0)
                ),
                (
                    "local:prometheus.exporter.self.default",
                    "local:prometheus.scrape.linkmesh_self",
                    Some(100.0)
                ),
                (
                    "local:prometheus.scrape.linkmesh_self",
                    "local:otelcol.receiver.prometheus.linkmesh",
                    Some(100.0)
                ),
            ]
        );
        // Received: src_1 and the self scrape, not the prometheus receiver behind it; sent: both exporters.
        assert_eq!(topology.collector.received_rate, Some(110.0));
        assert_eq!(topology.collector.sent_rate, Some(102.0));
        assert_eq!(topology.collector.received_total, Some(1100.0));
    }
}
