//! Throughput from a collector's own metrics: what each metric means (the one mapping table,
//! [`METRIC_RULES`]), the rate math over cumulative counters, and the join of rates onto the rendered
//! graph. Pure functions over plain data; the collector actor owns one [`ThroughputState`].
//!
//! Two producers push here (facts: `shared/reference/opamp-and-self-telemetry.md` §4):
//!
//! - **Alloy** (`prometheus.exporter.self` → `prometheus.scrape` → `otelcol.receiver.prometheus` →
//!   `otelcol.exporter.otlphttp`): every component metric carries `component_id`. Older Alloy puts the
//!   module path in it (`remotecfg/linkmesh_pipeline.default/otelcol.receiver.otlp.src_1`), newer Alloy
//!   moves the path to `component_path`; both reduce to the id relative to its module, which is how the
//!   rendered graph names components. Counters may arrive with or without the Prometheus `_total`.
//!   `alloy_component_graph_connection{from,to}` gives the edges between components.
//! - **OpenTelemetry Collector** internal metrics: `otelcol_receiver_*`, `otelcol_processor_*`,
//!   `otelcol_exporter_*` with the component in the `receiver` / `processor` / `exporter` attribute
//!   (`otlp/src_1`). Component ids are unique per kind only, so the kind is part of the key.
//!
//! Invariants:
//! - A series (normalised metric name + data point attributes) is only ever compared with its own
//!   previous point. A point not newer than the last one is ignored (out of order or a duplicate).
//! - A counter reset (collector restart) is a value drop or a changed start time: the new value is the
//!   increase since the restart. Rates are therefore never negative.
//! - Rates need two points of a series: a component's rates stay `None` until its second push.
//! - Memory is bounded: at most [`MAX_SERIES`] series, [`MAX_COMPONENTS`] components, and per component
//!   a window of the last [`WINDOW`] at push resolution, at most [`MAX_WINDOW_SAMPLES`] samples. Series
//!   and components not seen for a whole window are forgotten.
//! - The resource is not part of a series: one collector token is one process, and its restart (a new
//!   `service.instance.id` for the OTel Collector) must look like a reset of the same series.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, NumberDataPoint,
};
use serde::Serialize;

use crate::model::pipeline::Signal;
use crate::model::time::Rfc3339;
use crate::model::{CollectorStatus, UnixMillis};
use crate::render::graph::{NodeKind, RenderedGraph};

/// How far back each component's rate window reaches.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Samples kept per component: an hour at 10 s pushes (Alloy's enrollment config pushes every 30 s,
/// the OTel Collector every 60 s); faster pushers get a shorter window, never more memory.
pub const MAX_WINDOW_SAMPLES: usize = 360;
/// Distinct series (metric + attributes) kept per collector.
pub const MAX_SERIES: usize = 4096;
/// Distinct components kept per collector.
pub const MAX_COMPONENTS: usize = 512;

const NANOS_PER_SECOND: f64 = 1e9;

/// Which of a component's three rates a counter adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub into: bool,
    pub out: bool,
    pub error: bool,
}

/// Items that arrived and went on (a receiver's accepted, an exporter's sent).
const PASSED: Flow = Flow { into: true, out: true, error: false };
/// Items that arrived and were lost (refused, failed to send).
const LOST: Flow = Flow { into: true, out: false, error: true };
const INCOMING: Flow = Flow { into: true, out: false, error: false };
const OUTGOING: Flow = Flow { into: false, out: true, error: false };
const ERRORS: Flow = Flow { into: false, out: false, error: true };

/// The role a component plays, used for collector-level totals (received at ingress, sent at egress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Receiver,
    Processor,
    Exporter,
}

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A counter of items (spans, data points, log records, samples, lines) of one component.
    /// `export_failure` counters that increase turn the collector `degraded`.
    Items {
        flow: Flow,
        export_failure: bool,
    },
    /// Gauges of an exporter's sending queue (in batches).
    QueueSize,
    QueueCapacity,
    /// Counter of CPU seconds used by the collector process; its rate is CPU cores in use.
    ProcessCpuSeconds,
    /// Gauge: resident memory of the process in bytes.
    ProcessResidentBytes,
    /// Counter or gauge: seconds since the process started.
    ProcessUptimeSeconds,
    /// Gauge: process start time in seconds since the Unix epoch.
    ProcessStartTimeSeconds,
    /// Alloy's `alloy_component_graph_connection{from,to}` gauge: an edge between two components.
    GraphConnection,
}

impl Measure {
    fn is_counter(self) -> bool {
        matches!(self, Measure::Items { .. } | Measure::ProcessCpuSeconds)
    }
}

/// How a rule matches a normalised metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricName {
    Exact(&'static str),
    /// The prefix followed by one of [`SIGNAL_SUFFIXES`] (`otelcol_receiver_accepted_spans`, …).
    PerSignal(&'static str),
}

/// The item kinds of the OTel Collector's per-signal counters.
pub const SIGNAL_SUFFIXES: &[&str] = &["spans", "metric_points", "log_records", "profile_samples"];

impl MetricName {
    fn matches(self, normalised: &str) -> bool {
        match self {
            MetricName::Exact(name) => name == normalised,
            MetricName::PerSignal(prefix) => {
                normalised.strip_prefix(prefix).is_some_and(|signal| SIGNAL_SUFFIXES.contains(&signal))
            }
        }
    }
}

/// One row of the mapping table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricRule {
    pub name: MetricName,
    /// `Some` for per-component metrics, which must name their component; `None` for process-wide ones.
    pub stage: Option<Stage>,
    pub measure: Measure,
}

const fn items(name: MetricName, stage: Stage, flow: Flow) -> MetricRule {
    MetricRule { name, stage: Some(stage), measure: Measure::Items { flow, export_failure: false } }
}

const fn export_failures(name: MetricName, flow: Flow) -> MetricRule {
    MetricRule { name, stage: Some(Stage::Exporter), measure: Measure::Items { flow, export_failure: true } }
}

const fn process(name: &'static str, measure: Measure) -> MetricRule {
    MetricRule { name: MetricName::Exact(name), stage: None, measure }
}

use MetricName::{Exact, PerSignal};
use Stage::{Exporter, Processor, Receiver};

/// The mapping table: every metric linkmesh reads, by normalised name (`_total` stripped, `.` → `_`).
/// A component's `in_rate` is what reached it, `out_rate` what it passed on, `error_rate` what it lost;
/// so for a receiver or exporter `in = out + error`. Metrics not listed here are accepted and ignored.
pub const METRIC_RULES: &[MetricRule] = &[
    // OpenTelemetry Collector internal metrics; Alloy's otelcol.* components emit the same names.
    items(PerSignal("otelcol_receiver_accepted_"), Receiver, PASSED),
    items(PerSignal("otelcol_receiver_refused_"), Receiver, LOST),
    items(PerSignal("otelcol_receiver_failed_"), Receiver, LOST),
    items(Exact("otelcol_processor_incoming_items"), Processor, INCOMING),
    items(Exact("otelcol_processor_outgoing_items"), Processor, OUTGOING),
    items(PerSignal("otelcol_exporter_sent_"), Exporter, PASSED),
    export_failures(PerSignal("otelcol_exporter_send_failed_"), LOST),
    export_failures(PerSignal("otelcol_exporter_enqueue_failed_"), LOST),
    MetricRule {
        name: Exact("otelcol_exporter_queue_size"),
        stage: Some(Exporter),
        measure: Measure::QueueSize,
    },
    MetricRule {
        name: Exact("otelcol_exporter_queue_capacity"),
        stage: Some(Exporter),
        measure: Measure::QueueCapacity,
    },
    // Alloy's Prometheus components (prometheus.scrape, prometheus.relabel, prometheus.remote_write).
    items(Exact("prometheus_forwarded_samples"), Receiver, PASSED),
    items(Exact("prometheus_relabel_metrics_processed"), Processor, INCOMING),
    items(Exact("prometheus_relabel_metrics_written"), Processor, OUTGOING),
    items(Exact("prometheus_remote_storage_samples_in"), Exporter, INCOMING),
    items(Exact("prometheus_remote_storage_samples"), Exporter, OUTGOING),
    export_failures(Exact("prometheus_remote_storage_samples_failed"), ERRORS),
    items(Exact("prometheus_remote_storage_samples_dropped"), Exporter, ERRORS),
    // Alloy's Loki components (loki.source.*, loki.relabel, loki.write).
    items(Exact("loki_source_file_read_lines"), Receiver, PASSED),
    items(Exact("loki_source_journal_target_lines"), Receiver, PASSED),
    items(Exact("loki_source_syslog_entries"), Receiver, PASSED),
    items(Exact("loki_relabel_entries_processed"), Processor, INCOMING),
    items(Exact("loki_relabel_entries_written"), Processor, OUTGOING),
    items(Exact("loki_write_sent_entries"), Exporter, PASSED),
    export_failures(Exact("loki_write_dropped_entries"), LOST),
    // Alloy's controller: which component feeds which.
    process("alloy_component_graph_connection", Measure::GraphConnection),
    // The collector process (OTel Collector `otelcol_process_*`, Alloy `alloy_resources_process_*`,
    // and the Go client's `process_*` that Alloy also exposes).
    process("otelcol_process_cpu_seconds", Measure::ProcessCpuSeconds),
    process("alloy_resources_process_cpu_seconds", Measure::ProcessCpuSeconds),
    process("process_cpu_seconds", Measure::ProcessCpuSeconds),
    process("otelcol_process_memory_rss", Measure::ProcessResidentBytes),
    process("alloy_resources_process_resident_memory_bytes", Measure::ProcessResidentBytes),
    process("process_resident_memory_bytes", Measure::ProcessResidentBytes),
    process("otelcol_process_uptime", Measure::ProcessUptimeSeconds),
    process("alloy_resources_process_start_time_seconds", Measure::ProcessStartTimeSeconds),
    process("process_start_time_seconds", Measure::ProcessStartTimeSeconds),
];

/// Strips the Prometheus `_total` suffix and maps OTel-style dots to underscores.
pub fn normalise_metric_name(name: &str) -> Cow<'_, str> {
    let name = name.strip_suffix("_total").unwrap_or(name);
    if name.contains('.') {
        Cow::Owned(name.replace('.', "_"))
    } else {
        Cow::Borrowed(name)
    }
}

/// The rule for a metric name as pushed, if linkmesh reads that metric.
pub fn rule_for(metric_name: &str) -> Option<&'static MetricRule> {
    let normalised = normalise_metric_name(metric_name);
    METRIC_RULES.iter().find(|rule| rule.name.matches(&normalised))
}

/// Whose id a component id is: Alloy ids are unique per collector, OTel ids per component kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdSpace {
    Alloy,
    Receiver,
    Processor,
    Exporter,
}

/// A component as the collector names it in its own metrics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentKey {
    pub space: IdSpace,
    /// Alloy: relative to its module (`otelcol.receiver.otlp.src_1`); OTel: `otlp/src_1`.
    pub id: String,
}

impl ComponentKey {
    pub fn alloy(id: &str) -> Self {
        ComponentKey { space: IdSpace::Alloy, id: alloy_local_id(id).to_owned() }
    }

    /// The component type: Alloy `otelcol.receiver.otlp` (the id without its label), OTel `otlp`.
    pub fn component_type(&self) -> &str {
        match self.space {
            IdSpace::Alloy => self.id.rsplit_once('.').map_or(self.id.as_str(), |(kind, _)| kind),
            _ => self.id.split_once('/').map_or(self.id.as_str(), |(kind, _)| kind),
        }
    }

    /// Id of the `local` topology node for a component the rendered graph does not contain.
    pub fn local_node_id(&self) -> String {
        match self.space {
            IdSpace::Alloy => format!("local:{}", self.id),
            IdSpace::Receiver => format!("local:receiver:{}", self.id),
            IdSpace::Processor => format!("local:processor:{}", self.id),
            IdSpace::Exporter => format!("local:exporter:{}", self.id),
        }
    }
}

/// Drops the module path Alloy may prefix component ids with (`remotecfg/linkmesh_pipeline.default/…`).
/// Alloy component ids never contain `/` themselves.
pub fn alloy_local_id(id: &str) -> &str {
    id.rsplit_once('/').map_or(id, |(_, local)| local)
}

fn component_of(attributes: &[KeyValue]) -> Option<ComponentKey> {
    let find = |key: &str| {
        attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(|attribute| attribute_text(attribute.value.as_ref()))
            .filter(|value| !value.is_empty())
    };
    if let Some(id) = find("component_id") {
        return Some(ComponentKey::alloy(&id));
    }
    [("receiver", IdSpace::Receiver), ("processor", IdSpace::Processor), ("exporter", IdSpace::Exporter)]
        .into_iter()
        .find_map(|(key, space)| find(key).map(|id| ComponentKey { space, id: id.into_owned() }))
}

fn attribute_text(value: Option<&AnyValue>) -> Option<Cow<'_, str>> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(Cow::Borrowed(text)),
        any_value::Value::BoolValue(flag) => Some(Cow::Owned(flag.to_string())),
        any_value::Value::IntValue(number) => Some(Cow::Owned(number.to_string())),
        any_value::Value::DoubleValue(number) => Some(Cow::Owned(number.to_string())),
        other => Some(Cow::Owned(format!("{other:?}"))),
    }
}

/// One data point of a metric linkmesh reads, checked and keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Normalised metric name and the sorted data point attributes.
    pub series: String,
    pub rule: &'static MetricRule,
    pub component: Option<ComponentKey>,
    pub start_unix_nano: u64,
    pub time_unix_nano: u64,
    pub value: f64,
    /// Delta temporality: the value is the increase over `[start, time]`.
    pub delta: bool,
}

/// What one OTLP push carries that linkmesh reads; built on the HTTP worker, applied by the actor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsBatch {
    /// Sorted by time, so that several points of one series in one push apply in order.
    pub points: Vec<MetricPoint>,
    /// Alloy's component edges, when the push carried `alloy_component_graph_connection` at all.
    pub graph_connections: Option<Vec<(String, String)>>,
    /// Data points refused (OTLP `partial_success.rejected_data_points`) and the first reason.
    pub rejected: u64,
    pub rejection: Option<String>,
}

impl MetricsBatch {
    fn reject(&mut self, count: u64, reason: impl FnOnce() -> String) {
        if count == 0 {
            return;
        }
        self.rejected += count;
        if self.rejection.is_none() {
            self.rejection = Some(reason());
        }
    }
}

/// Picks the metrics linkmesh reads out of an OTLP request and checks their points. Points of metrics
/// not in [`METRIC_RULES`] are accepted and dropped; points of listed metrics that cannot be used
/// (no value, not finite, negative counter, no timestamp, no component, histogram type) are rejected.
pub fn extract(request: &ExportMetricsServiceRequest) -> MetricsBatch {
    let mut batch = MetricsBatch::default();
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics);
    for metric in metrics {
        let Some(rule) = rule_for(&metric.name) else { continue };
        let (points, delta): (&[NumberDataPoint], bool) = match &metric.data {
            Some(metric::Data::Sum(sum)) => {
                (&sum.data_points, sum.aggregation_temporality == AggregationTemporality::Delta as i32)
            }
            Some(metric::Data::Gauge(gauge)) => (&gauge.data_points, false),
            Some(other) => {
                let (kind, count) = match other {
                    metric::Data::Histogram(histogram) => ("histogram", histogram.data_points.len()),
                    metric::Data::ExponentialHistogram(histogram) => {
                        ("exponential histogram", histogram.data_points.len())
                    }
                    metric::Data::Summary(summary) => ("summary", summary.data_points.len()),
                    metric::Data::Sum(_) | metric::Data::Gauge(_) => ("number", 0),
                };
                batch.reject(count as u64, || {
                    format!("{}: is a {kind}; expected a sum or gauge", metric.name)
                });
                continue;
            }
            None => continue,
        };
        if rule.measure == Measure::GraphConnection {
            let edges = batch.graph_connections.get_or_insert_with(Vec::new);
            edges.extend(
                points.iter().filter(|point| point_value(point).is_some_and(|value| value > 0.0)).filter_map(
                    |point| {
                        let end = |key: &str| {
                            point.attributes.iter().find(|attribute| attribute.key == key).and_then(
                                |attribute| {
                                    attribute_text(attribute.value.as_ref())
                                        .map(|id| alloy_local_id(&id).to_owned())
                                },
                            )
                        };
                        Some((end("from")?, end("to")?))
                    },
                ),
            );
            continue;
        }
        let normalised = normalise_metric_name(&metric.name);
        for point in points {
            match check_point(rule, point) {
                Ok((value, component)) => batch.points.push(MetricPoint {
                    series: series_key(&normalised, &point.attributes),
                    rule,
                    component,
                    start_unix_nano: point.start_time_unix_nano,
                    time_unix_nano: point.time_unix_nano,
                    value,
                    delta: delta && rule.measure.is_counter(),
                }),
                Err(problem) => batch.reject(1, || format!("{}: {problem}", metric.name)),
            }
        }
    }
    batch.points.sort_by_key(|point| point.time_unix_nano);
    if let Some(edges) = &mut batch.graph_connections {
        edges.sort();
        edges.dedup();
    }
    batch
}

fn point_value(point: &NumberDataPoint) -> Option<f64> {
    match point.value? {
        number_data_point::Value::AsInt(value) => Some(value as f64),
        number_data_point::Value::AsDouble(value) => Some(value),
    }
}

fn check_point(
    rule: &MetricRule,
    point: &NumberDataPoint,
) -> Result<(f64, Option<ComponentKey>), &'static str> {
    let value = point_value(point).ok_or("data point has no value (asInt or asDouble)")?;
    if !value.is_finite() {
        return Err("data point value is not finite");
    }
    if rule.measure.is_counter() && value < 0.0 {
        return Err("counter value is negative");
    }
    if point.time_unix_nano == 0 {
        return Err("data point has no timeUnixNano");
    }
    let component = match rule.stage {
        Some(_) => Some(
            component_of(&point.attributes)
                .ok_or("data point names no component (component_id, receiver, processor or exporter)")?,
        ),
        None => None,
    };
    Ok((value, component))
}

fn series_key(normalised_name: &str, attributes: &[KeyValue]) -> String {
    let mut pairs: Vec<(&str, Cow<'_, str>)> = attributes
        .iter()
        .map(|attribute| {
            (attribute.key.as_str(), attribute_text(attribute.value.as_ref()).unwrap_or_default())
        })
        .collect();
    pairs.sort();
    let mut key = String::with_capacity(normalised_name.len() + 16 * pairs.len());
    key.push_str(normalised_name);
    for (name, value) in pairs {
        key.push('\u{1f}');
        key.push_str(name);
        key.push('=');
        key.push_str(&value);
    }
    key
}

/// The rates of one component over one push interval, in items per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSample {
    /// The collector's timestamp of the push's newest point.
    #[serde(serialize_with = "rfc3339")]
    pub at: UnixMillis,
    pub in_rate: Option<f64>,
    pub out_rate: Option<f64>,
    pub error_rate: Option<f64>,
}

fn rfc3339<S: serde::Serializer>(at: &UnixMillis, serializer: S) -> Result<S::Ok, S::Error> {
    Rfc3339(*at).serialize(serializer)
}

#[derive(Debug, Clone)]
struct SeriesState {
    rule: &'static MetricRule,
    component: Option<ComponentKey>,
    start_unix_nano: u64,
    time_unix_nano: u64,
    value: f64,
    /// Items counted since the process started (the cumulative value; summed for delta series).
    total: f64,
}

#[derive(Debug, Clone, Default)]
struct ComponentState {
    receiver: bool,
    exporter: bool,
    window: VecDeque<RateSample>,
    queue_size: Option<f64>,
    queue_capacity: Option<f64>,
    last_seen_unix_nano: u64,
}

impl ComponentState {
    fn mark_stage(&mut self, stage: Option<Stage>) {
        match stage {
            Some(Stage::Receiver) => self.receiver = true,
            Some(Stage::Exporter) => self.exporter = true,
            Some(Stage::Processor) | None => {}
        }
    }
}

/// The collector process as its own metrics describe it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcessStats {
    /// CPU cores in use (rate of CPU seconds).
    pub cpu_cores: Option<f64>,
    pub resident_memory_bytes: Option<f64>,
    pub uptime_seconds: Option<f64>,
}

/// What one push changed, for the actor to act on and the HTTP adapter to answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Points applied (including first points of new series, which give no rate yet).
    pub accepted: u64,
    /// Points not newer than their series' last point.
    pub out_of_order: u64,
    /// Points refused here (series or component limits), on top of [`MetricsBatch::rejected`].
    pub rejected: u64,
    pub rejection: Option<String>,
    /// `Some` when the push said whether exporters are failing: any export-failure counter moved.
    pub exports_failing: Option<bool>,
    /// The exporters whose failure counters increased in this push.
    pub failing_exporters: Vec<String>,
}

/// Per-collector throughput: series state for the rate math, and per-component rate windows.
#[derive(Debug, Clone, Default)]
pub struct ThroughputState {
    series: HashMap<String, SeriesState>,
    components: BTreeMap<ComponentKey, ComponentState>,
    graph_connections: Vec<(String, String)>,
    process: ProcessStats,
    updated_at: Option<UnixMillis>,
}

#[derive(Default)]
struct Increase {
    amount: f64,
    nanos: u64,
}

impl ThroughputState {
    /// Applies one push. `received_at` is the server's clock; rates use the collector's timestamps.
    pub fn ingest(&mut self, batch: &MetricsBatch, received_at: UnixMillis) -> IngestReport {
        let mut report = IngestReport::default();
        let mut increases: HashMap<&str, Increase> = HashMap::new();
        // A point stamped far ahead of our clock would make every later point of its series look old.
        let latest_acceptable =
            received_at.0.saturating_mul(1_000_000).saturating_add(WINDOW.as_nanos() as u64);
        let mut newest = 0;
        for point in &batch.points {
            if point.time_unix_nano > latest_acceptable {
                reject(&mut report, || "data point timestamp is more than an hour in the future".to_owned());
                continue;
            }
            newest = newest.max(point.time_unix_nano);
            if let Some(component) = &point.component {
                if !self.components.contains_key(component) && self.components.len() >= MAX_COMPONENTS {
                    reject(&mut report, || format!("more than {MAX_COMPONENTS} components; point dropped"));
                    continue;
                }
                let state = self.components.entry(component.clone()).or_default();
                state.mark_stage(point.rule.stage);
                state.last_seen_unix_nano = state.last_seen_unix_nano.max(point.time_unix_nano);
            }
            match point.rule.measure {
                Measure::Items { .. } | Measure::ProcessCpuSeconds => {
                    self.apply_counter(point, &mut increases, &mut report);
                }
                Measure::QueueSize | Measure::QueueCapacity => {
                    if let Some(state) = point.component.as_ref().and_then(|key| self.components.get_mut(key))
                    {
                        if point.rule.measure == Measure::QueueSize {
                            state.queue_size = Some(point.value);
                        } else {
                            state.queue_capacity = Some(point.value);
                        }
                    }
                    report.accepted += 1;
                }
                Measure::ProcessResidentBytes => {
                    self.process.resident_memory_bytes = Some(point.value);
                    report.accepted += 1;
                }
                Measure::ProcessUptimeSeconds => {
                    self.process.uptime_seconds = Some(point.value);
                    report.accepted += 1;
                }
                Measure::ProcessStartTimeSeconds => {
                    let now_seconds = point.time_unix_nano as f64 / NANOS_PER_SECOND;
                    self.process.uptime_seconds = Some((now_seconds - point.value).max(0.0));
                    report.accepted += 1;
                }
                Measure::GraphConnection => {}
            }
        }
        if let Some(edges) = &batch.graph_connections {
            self.graph_connections.clone_from(edges);
        }
        self.record_rates(&increases, newest, &mut report);
        self.forget_older_than(newest);
        if report.accepted > 0 || batch.graph_connections.is_some() {
            self.updated_at = Some(received_at);
        }
        report
    }

    fn apply_counter<'a>(
        &mut self,
        point: &'a MetricPoint,
        increases: &mut HashMap<&'a str, Increase>,
        report: &mut IngestReport,
    ) {
        let Some(state) = self.series.get_mut(&point.series) else {
            if self.series.len() >= MAX_SERIES {
                reject(report, || format!("more than {MAX_SERIES} series; point dropped"));
                return;
            }
            self.series.insert(
                point.series.clone(),
                SeriesState {
                    rule: point.rule,
                    component: point.component.clone(),
                    start_unix_nano: point.start_unix_nano,
                    time_unix_nano: point.time_unix_nano,
                    value: point.value,
                    total: point.value,
                },
            );
            report.accepted += 1;
            return;
        };
        if point.time_unix_nano <= state.time_unix_nano {
            report.out_of_order += 1;
            return;
        }
        let (amount, nanos) = counter_increase(state, point);
        let increase = increases.entry(point.series.as_str()).or_default();
        increase.amount += amount;
        increase.nanos += nanos;
        state.start_unix_nano = point.start_unix_nano;
        state.time_unix_nano = point.time_unix_nano;
        state.value = point.value;
        state.total = if point.delta { state.total + point.value } else { point.value };
        report.accepted += 1;
    }

    /// Turns this push's increases into one rate sample per component that moved.
    fn record_rates(&mut self, increases: &HashMap<&str, Increase>, newest: u64, report: &mut IngestReport) {
        struct Sums {
            into: Option<f64>,
            out: Option<f64>,
            error: Option<f64>,
        }
        let add = |sum: &mut Option<f64>, rate: f64| *sum = Some(sum.unwrap_or(0.0) + rate);
        let mut sums: BTreeMap<&ComponentKey, Sums> = BTreeMap::new();
        let mut export_failure_seen = false;
        let mut failing: BTreeSet<String> = BTreeSet::new();
        for (series, increase) in increases {
            let Some(state) = self.series.get(*series) else { continue };
            if increase.nanos == 0 {
                continue;
            }
            let rate = increase.amount * NANOS_PER_SECOND / increase.nanos as f64;
            match (state.rule.measure, &state.component) {
                (Measure::ProcessCpuSeconds, _) => self.process.cpu_cores = Some(rate),
                (Measure::Items { flow, export_failure }, Some(component)) => {
                    let entry = sums.entry(component).or_insert(Sums { into: None, out: None, error: None });
                    if flow.into {
                        add(&mut entry.into, rate);
                    }
                    if flow.out {
                        add(&mut entry.out, rate);
                    }
                    if flow.error {
                        add(&mut entry.error, rate);
                    }
                    if export_failure {
                        export_failure_seen = true;
                        if increase.amount > 0.0 {
                            failing.insert(component.id.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let at = UnixMillis(newest / 1_000_000);
        for (component, sum) in sums {
            let Some(state) = self.components.get_mut(component) else { continue };
            state.window.push_back(RateSample {
                at,
                in_rate: sum.into,
                out_rate: sum.out,
                error_rate: sum.error,
            });
            trim_window(&mut state.window);
        }
        if export_failure_seen {
            report.exports_failing = Some(!failing.is_empty());
            report.failing_exporters = failing.into_iter().collect();
        }
    }

    fn forget_older_than(&mut self, newest: u64) {
        let horizon = newest.saturating_sub(WINDOW.as_nanos() as u64);
        self.series.retain(|_, state| state.time_unix_nano >= horizon);
        self.components.retain(|_, state| state.last_seen_unix_nano >= horizon);
    }

    /// A copy for the topology API; `history` adds each component's rate window.
    pub fn snapshot(&self, history: bool) -> ThroughputSnapshot {
        let mut totals: BTreeMap<&ComponentKey, FlowTotals> = BTreeMap::new();
        for state in self.series.values() {
            let (Measure::Items { flow, .. }, Some(component)) = (state.rule.measure, &state.component)
            else {
                continue;
            };
            let entry = totals.entry(component).or_default();
            let add = |sum: &mut Option<f64>| *sum = Some(sum.unwrap_or(0.0) + state.total);
            if flow.into {
                add(&mut entry.into);
            }
            if flow.out {
                add(&mut entry.out);
            }
            if flow.error {
                add(&mut entry.error);
            }
        }
        let components = self
            .components
            .iter()
            .map(|(key, state)| ComponentThroughput {
                key: key.clone(),
                receiver: state.receiver,
                exporter: state.exporter,
                latest: state.window.back().copied(),
                totals: totals.get(key).copied().unwrap_or_default(),
                queue_size: state.queue_size,
                queue_capacity: state.queue_capacity,
                history: if history { state.window.iter().copied().collect() } else { Vec::new() },
            })
            .collect();
        ThroughputSnapshot {
            updated_at: self.updated_at,
            components,
            graph_connections: self.graph_connections.clone(),
            process: self.process,
        }
    }
}

fn reject(report: &mut IngestReport, reason: impl FnOnce() -> String) {
    report.rejected += 1;
    if report.rejection.is_none() {
        report.rejection = Some(reason());
    }
}

/// The increase of a counter since its previous point, and over how many nanoseconds.
fn counter_increase(previous: &SeriesState, point: &MetricPoint) -> (f64, u64) {
    let since_previous = point.time_unix_nano - previous.time_unix_nano;
    if point.delta {
        let covered = point.time_unix_nano.saturating_sub(point.start_unix_nano);
        let nanos = if point.start_unix_nano != 0 && covered > 0 { covered } else { since_previous };
        return (point.value, nanos);
    }
    let restarted = point.start_unix_nano != 0
        && previous.start_unix_nano != 0
        && point.start_unix_nano != previous.start_unix_nano;
    if restarted || point.value < previous.value {
        // Everything counted since the restart is new; if the restart time is known and after the
        // previous point, the items were counted since then.
        let nanos = if point.start_unix_nano > previous.time_unix_nano
            && point.start_unix_nano < point.time_unix_nano
        {
            point.time_unix_nano - point.start_unix_nano
        } else {
            since_previous
        };
        return (point.value, nanos);
    }
    (point.value - previous.value, since_previous)
}

fn trim_window(window: &mut VecDeque<RateSample>) {
    let Some(newest) = window.back().map(|sample| sample.at) else { return };
    let horizon = UnixMillis(newest.0.saturating_sub(WINDOW.as_millis() as u64));
    while window.front().is_some_and(|sample| sample.at < horizon) || window.len() > MAX_WINDOW_SAMPLES {
        window.pop_front();
    }
}

/// How long export failures count without a push confirming them: if the own_metrics chain stops
/// (removed, or its own exporter is what fails), nothing says the exporters still fail.
pub const EXPORT_FAILURES_FORGOTTEN_AFTER: Duration = Duration::from_secs(600);

/// Status after an own_metrics push said whether exporters are failing (`failing`), given whether they
/// were before. Only a polling collector changes: `connected` turns `degraded` while failures increase
/// and back once they stop, unless a failed config keeps it degraded.
pub fn status_after_export_report(
    current: CollectorStatus,
    was_failing: bool,
    failing: bool,
    config_failed: bool,
) -> CollectorStatus {
    match current {
        CollectorStatus::Connected if failing => CollectorStatus::Degraded,
        CollectorStatus::Degraded if was_failing && !failing && !config_failed => CollectorStatus::Connected,
        other => other,
    }
}

/// Items counted since the collector process started, per flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FlowTotals {
    pub into: Option<f64>,
    pub out: Option<f64>,
    pub error: Option<f64>,
}

/// One component's throughput as the topology API reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentThroughput {
    pub key: ComponentKey,
    /// Reports receiver or exporter counters (for the collector's received and sent totals).
    pub receiver: bool,
    pub exporter: bool,
    /// Rates of the last push that moved this component's counters.
    pub latest: Option<RateSample>,
    pub totals: FlowTotals,
    pub queue_size: Option<f64>,
    pub queue_capacity: Option<f64>,
    /// The rate window, oldest first (only when asked for).
    pub history: Vec<RateSample>,
}

/// A copy of a collector's throughput state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThroughputSnapshot {
    pub updated_at: Option<UnixMillis>,
    pub components: Vec<ComponentThroughput>,
    pub graph_connections: Vec<(String, String)>,
    pub process: ProcessStats,
}

/// A node of the topology API.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, Sum,
    };

    use super::*;
    use crate::render::graph::{GraphEdge, GraphNode};

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
            ..KeyValue::default()
        }
    }

    fn number(attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..NumberDataPoint::default()
        }
    }

    fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        }
    }

    fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points: points })),
            ..Metric::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
                ..ResourceMetrics::default()
            }],
        }
    }

    /// One Alloy OTLP receiver and exporter, as `otelcol.receiver.prometheus` would push them.
    fn alloy_push(
        time: u64,
        start: u64,
        accepted: f64,
        sent: f64,
        failed: f64,
    ) -> ExportMetricsServiceRequest {
        let receiver =
            || vec![text("component_id", "remotecfg/linkmesh_pipeline.default/otelcol.receiver.otlp.src_1")];
        let exporter = || {
            vec![
                text("component_id", "otelcol.exporter.otlphttp.dst_1"),
                text("component_path", "/remotecfg/linkmesh_pipeline.default"),
            ]
        };
        request(vec![
            counter("otelcol_receiver_accepted_spans_total", vec![number(receiver(), start, time, accepted)]),
            counter("otelcol_exporter_sent_spans", vec![number(exporter(), start, time, sent)]),
            counter(
                "otelcol_exporter_send_failed_spans_total",
                vec![number(exporter(), start, time, failed)],
            ),
            gauge("otelcol_exporter_queue_size", vec![number(exporter(), 0, time, 3.0)]),
            gauge("go_goroutines", vec![number(vec![], 0, time, 100.0)]),
        ])
    }

    fn component<'a>(snapshot: &'a ThroughputSnapshot, id: &str) -> &'a ComponentThroughput {
        snapshot.components.iter().find(|component| component.key.id == id).expect("component")
    }

    /// Ingests as if received long after every test timestamp.
    fn ingest(state: &mut ThroughputState, request: &ExportMetricsServiceRequest) -> IngestReport {
        state.ingest(&extract(request), UnixMillis(T0 / 1_000_000 + 365 * 24 * 3600 * 1000))
    }

    #[test]
    fn names_are_normalised_with_or_without_total() {
        assert_eq!(
            normalise_metric_name("otelcol_receiver_accepted_spans_total"),
            "otelcol_receiver_accepted_spans"
        );
        assert_eq!(normalise_metric_name("otelcol.exporter.sent.spans"), "otelcol_exporter_sent_spans");
        assert!(rule_for("otelcol_receiver_accepted_log_records_total").is_some());
        assert!(rule_for("otelcol_receiver_accepted_bananas").is_none());
        assert!(rule_for("otelcol_receiver_requests").is_none());
        assert_eq!(
            rule_for("prometheus_remote_storage_samples_total").expect("rule").measure,
            Measure::Items { flow: OUTGOING, export_failure: false }
        );
    }

    #[test]
    fn every_rule_name_is_normalised_and_unique() {
        for (index, rule) in METRIC_RULES.iter().enumerate() {
            let name = match rule.name {
                MetricName::Exact(name) | MetricName::PerSignal(name) => name,
            };
            assert_eq!(normalise_metric_name(name), name, "{name}");
            for other in &METRIC_RULES[index + 1..] {
                assert_ne!(rule.name, other.name);
            }
        }
    }

    #[test]
    fn component_ids_drop_the_module_path_and_keep_otel_kinds_apart() {
        assert_eq!(
            alloy_local_id("remotecfg/linkmesh_pipeline.default/otelcol.receiver.otlp.src_1"),
            "otelcol.receiver.otlp.src_1"
        );
        assert_eq!(alloy_local_id("prometheus.exporter.self.default"), "prometheus.exporter.self.default");
        let alloy = component_of(&[text("component_id", "a/b/loki.write.dst_1"), text("receiver", "x")])
            .expect("alloy");
        assert_eq!(alloy, ComponentKey { space: IdSpace::Alloy, id: "loki.write.dst_1".into() });
        assert_eq!(alloy.component_type(), "loki.write");
        let otel =
            component_of(&[text("exporter", "otlp/dst_1"), text("data_type", "traces")]).expect("otel");
        assert_eq!(otel, ComponentKey { space: IdSpace::Exporter, id: "otlp/dst_1".into() });
        assert_eq!(otel.component_type(), "otlp");
        assert_eq!(otel.local_node_id(), "local:exporter:otlp/dst_1");
        assert!(component_of(&[text("transport", "grpc")]).is_none());
    }

    #[test]
    fn rates_come_from_the_second_push() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, T0 - 60 * SECOND, 1000.0, 900.0, 0.0));
        let first = state.snapshot(false);
        assert_eq!(component(&first, "otelcol.receiver.otlp.src_1").latest, None);
        assert_eq!(component(&first, "otelcol.exporter.otlphttp.dst_1").queue_size, Some(3.0));
        let report = ingest(&mut state, &alloy_push(T0 + 30 * SECOND, T0 - 60 * SECOND, 1600.0, 1500.0, 0.0));
        assert_eq!(report.exports_failing, Some(false));
        let second = state.snapshot(false);
        let receiver = component(&second, "otelcol.receiver.otlp.src_1").latest.expect("rates");
        assert_eq!(
            (receiver.in_rate, receiver.out_rate, receiver.error_rate),
            (Some(20.0), Some(20.0), None)
        );
        let exporter = component(&second, "otelcol.exporter.otlphttp.dst_1").latest.expect("rates");
        assert_eq!(
            (exporter.in_rate, exporter.out_rate, exporter.error_rate),
            (Some(20.0), Some(20.0), Some(0.0))
        );
        assert_eq!(component(&second, "otelcol.exporter.otlphttp.dst_1").totals.out, Some(1500.0));
    }

    #[test]
    fn a_value_drop_is_a_reset_not_a_negative_rate() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, 0, 1000.0, 1000.0, 0.0));
        ingest(&mut state, &alloy_push(T0 + 10 * SECOND, 0, 50.0, 50.0, 0.0));
        let sample = component(&state.snapshot(false), "otelcol.receiver.otlp.src_1").latest.expect("rates");
        assert_eq!(sample.in_rate, Some(5.0));
    }

    #[test]
    fn a_new_start_time_is_a_restart_counted_from_the_start() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, T0 - 100 * SECOND, 1000.0, 1000.0, 0.0));
        // Restarted 20 s after the previous point, 2000 items counted in the 10 s since then: the value
        // did not drop, only the start time says it restarted.
        ingest(&mut state, &alloy_push(T0 + 30 * SECOND, T0 + 20 * SECOND, 2000.0, 2000.0, 0.0));
        let sample = component(&state.snapshot(false), "otelcol.receiver.otlp.src_1").latest.expect("rates");
        assert_eq!(sample.in_rate, Some(200.0));
    }

    #[test]
    fn out_of_order_and_duplicate_pushes_are_ignored() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, 0, 100.0, 100.0, 0.0));
        ingest(&mut state, &alloy_push(T0 + 10 * SECOND, 0, 200.0, 200.0, 0.0));
        let before = state.snapshot(true);
        let late = ingest(&mut state, &alloy_push(T0 + 5 * SECOND, 0, 150.0, 150.0, 0.0));
        assert_eq!(late.out_of_order, 3);
        let duplicate = ingest(&mut state, &alloy_push(T0 + 10 * SECOND, 0, 200.0, 200.0, 0.0));
        assert_eq!(duplicate.out_of_order, 3);
        let after = state.snapshot(true);
        assert_eq!(
            component(&before, "otelcol.receiver.otlp.src_1").history,
            component(&after, "otelcol.receiver.otlp.src_1").history
        );
    }

    #[test]
    fn points_from_the_far_future_are_rejected_and_do_not_freeze_the_series() {
        let mut state = ThroughputState::default();
        let now = UnixMillis(T0 / 1_000_000);
        state.ingest(&extract(&alloy_push(T0 - 10 * SECOND, 0, 100.0, 100.0, 0.0)), now);
        let future =
            state.ingest(&extract(&alloy_push(T0 + 2 * WINDOW.as_nanos() as u64, 0, 1e9, 1e9, 0.0)), now);
        assert_eq!(future.rejected, 4);
        state.ingest(&extract(&alloy_push(T0, 0, 200.0, 200.0, 0.0)), now);
        let sample = component(&state.snapshot(false), "otelcol.receiver.otlp.src_1").latest.expect("rates");
        assert_eq!(sample.in_rate, Some(10.0));
    }

    #[test]
    fn increasing_send_failures_mean_failing_exporters_until_they_stop() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, 0, 100.0, 100.0, 5.0));
        let failing = ingest(&mut state, &alloy_push(T0 + 10 * SECOND, 0, 200.0, 180.0, 25.0));
        assert_eq!(failing.exports_failing, Some(true));
        assert_eq!(failing.failing_exporters, ["otelcol.exporter.otlphttp.dst_1"]);
        let sample =
            component(&state.snapshot(false), "otelcol.exporter.otlphttp.dst_1").latest.expect("rates");
        assert_eq!((sample.in_rate, sample.out_rate, sample.error_rate), (Some(10.0), Some(8.0), Some(2.0)));
        let recovered = ingest(&mut state, &alloy_push(T0 + 20 * SECOND, 0, 300.0, 280.0, 25.0));
        assert_eq!(recovered.exports_failing, Some(false));
    }

    #[test]
    fn delta_counters_cover_their_own_interval() {
        let mut state = ThroughputState::default();
        let push = |start: u64, time: u64, value: f64| {
            let mut request = request(vec![counter(
                "otelcol_receiver_accepted_spans",
                vec![number(vec![text("receiver", "otlp")], start, time, value)],
            )]);
            if let Some(metric::Data::Sum(sum)) =
                &mut request.resource_metrics[0].scope_metrics[0].metrics[0].data
            {
                sum.aggregation_temporality = AggregationTemporality::Delta as i32;
            }
            request
        };
        ingest(&mut state, &push(T0 - 10 * SECOND, T0, 100.0));
        ingest(&mut state, &push(T0, T0 + 4 * SECOND, 40.0));
        let snapshot = state.snapshot(false);
        let receiver = component(&snapshot, "otlp");
        assert_eq!(receiver.latest.expect("rates").in_rate, Some(10.0));
        assert_eq!(receiver.totals.into, Some(140.0));
    }

    #[test]
    fn unusable_points_are_rejected_with_a_reason() {
        let no_value = NumberDataPoint {
            time_unix_nano: T0,
            attributes: vec![text("receiver", "otlp")],
            ..NumberDataPoint::default()
        };
        let histogram = Metric {
            name: "otelcol_exporter_sent_spans".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint::default(); 2],
                aggregation_temporality: 2,
            })),
            ..Metric::default()
        };
        let batch = extract(&request(vec![
            counter("otelcol_receiver_accepted_spans", vec![no_value]),
            counter(
                "otelcol_receiver_refused_spans",
                vec![number(vec![text("receiver", "otlp")], 0, T0, f64::NAN)],
            ),
            counter(
                "otelcol_receiver_failed_spans",
                vec![number(vec![text("receiver", "otlp")], 0, T0, -1.0)],
            ),
            counter(
                "otelcol_exporter_sent_log_records",
                vec![number(vec![text("exporter", "otlp")], 0, 0, 1.0)],
            ),
            counter(
                "otelcol_exporter_sent_metric_points",
                vec![number(vec![text("transport", "grpc")], 0, T0, 1.0)],
            ),
            histogram,
            gauge("unrelated", vec![NumberDataPoint::default()]),
        ]));
        assert_eq!(batch.rejected, 7);
        assert!(batch.points.is_empty());
        assert_eq!(
            batch.rejection.as_deref(),
            Some("otelcol_receiver_accepted_spans: data point has no value (asInt or asDouble)")
        );
    }

    #[test]
    fn series_and_components_are_bounded() {
        let mut state = ThroughputState::default();
        let points: Vec<NumberDataPoint> = (0..MAX_COMPONENTS + 10)
            .map(|index| number(vec![text("receiver", &format!("otlp/{index}"))], 0, T0, 1.0))
            .collect();
        let report = ingest(&mut state, &request(vec![counter("otelcol_receiver_accepted_spans", points)]));
        assert_eq!(report.rejected, 10);
        assert_eq!(state.snapshot(false).components.len(), MAX_COMPONENTS);
        let mut state = ThroughputState::default();
        let points: Vec<NumberDataPoint> = (0..MAX_SERIES + 10)
            .map(|index| number(vec![text("receiver", "otlp"), text("n", &index.to_string())], 0, T0, 1.0))
            .collect();
        let report = ingest(&mut state, &request(vec![counter("otelcol_receiver_refused_spans", points)]));
        assert_eq!(report.rejected, 10);
        assert_eq!(state.series.len(), MAX_SERIES);
    }

    #[test]
    fn the_window_keeps_the_last_hour_at_most() {
        let mut state = ThroughputState::default();
        for step in 0..(MAX_WINDOW_SAMPLES as u64 + 50) {
            let time = T0 + step * 30 * SECOND;
            ingest(&mut state, &alloy_push(time, 0, step as f64 * 30.0, step as f64 * 30.0, 0.0));
        }
        let snapshot = state.snapshot(true);
        let history = &component(&snapshot, "otelcol.receiver.otlp.src_1").history;
        assert_eq!(history.len(), 121, "an hour at 30 s pushes, both ends included");
        assert!(history.iter().all(|sample| sample.in_rate == Some(1.0)));
    }

    #[test]
    fn components_silent_for_a_window_are_forgotten() {
        let mut state = ThroughputState::default();
        ingest(&mut state, &alloy_push(T0, 0, 1.0, 1.0, 0.0));
        let other = request(vec![counter(
            "otelcol_receiver_accepted_spans",
            vec![number(vec![text("receiver", "otlp")], 0, T0 + 2 * WINDOW.as_nanos() as u64, 1.0)],
        )]);
        ingest(&mut state, &other);
        let snapshot = state.snapshot(false);
        assert_eq!(snapshot.components.len(), 1);
        assert_eq!(state.series.len(), 1);
    }

    #[test]
    fn process_stats_from_either_producer() {
        let mut state = ThroughputState::default();
        let push = |time: u64, cpu: f64| {
            request(vec![
                counter("process_cpu_seconds_total", vec![number(vec![], 0, time, cpu)]),
                gauge("process_resident_memory_bytes", vec![number(vec![], 0, time, 5e8)]),
                gauge(
                    "process_start_time_seconds",
                    vec![number(vec![], 0, time, (T0 / SECOND - 3600) as f64)],
                ),
            ])
        };
        ingest(&mut state, &push(T0, 10.0));
        ingest(&mut state, &push(T0 + 10 * SECOND, 15.0));
        let process = state.snapshot(false).process;
        assert_eq!(
            process,
            ProcessStats {
                cpu_cores: Some(0.5),
                resident_memory_bytes: Some(5e8),
                uptime_seconds: Some(3610.0)
            }
        );
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

    #[test]
    fn export_failures_degrade_only_polling_collectors_and_recover() {
        use CollectorStatus::*;
        assert_eq!(status_after_export_report(Connected, false, true, false), Degraded);
        assert_eq!(status_after_export_report(Degraded, true, false, false), Connected);
        assert_eq!(status_after_export_report(Degraded, true, false, true), Degraded, "config still failed");
        assert_eq!(
            status_after_export_report(Degraded, false, false, false),
            Degraded,
            "degraded for another reason"
        );
        for quiet in [AwaitingConnection, Stale, Offline] {
            assert_eq!(status_after_export_report(quiet, false, true, false), quiet);
            assert_eq!(status_after_export_report(quiet, true, false, false), quiet);
        }
    }

    proptest::proptest! {
        #[test]
        fn rates_are_finite_and_never_negative(
            steps in proptest::collection::vec((0u64..5_000_000_000, 0u64..3, 0.0f64..1e12), 1..40)
        ) {
            let mut state = ThroughputState::default();
            let mut time = T0;
            for (advance, start, value) in steps {
                time = time.saturating_add(advance).saturating_sub(if advance % 7 == 0 { 2 * SECOND } else { 0 });
                let start = [0, T0 - SECOND, time.saturating_sub(SECOND)][start as usize];
                ingest(&mut state, &alloy_push(time, start, value, value / 2.0, value / 3.0));
                for component in state.snapshot(true).components {
                    for sample in component.history {
                        for rate in [sample.in_rate, sample.out_rate, sample.error_rate].into_iter().flatten() {
                            proptest::prop_assert!(rate.is_finite() && rate >= 0.0, "{rate}");
                        }
                    }
                }
            }
        }
    }
}
