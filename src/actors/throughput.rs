//! Throughput from a collector's own metrics: the rate math over the points extracted from each push
//! (`own_metrics/extract.rs`), per-component rate windows, and what export failures do to the status.
//! Pure functions over plain data; the collector actor owns one [`ThroughputState`]. The topology API
//! joins its snapshots onto the rendered graph (`http/api/topology/join.rs`).
//!
//! Invariants:
//! - A series is only ever compared with its own previous point. A point not newer than the last one is
//!   ignored (out of order or a duplicate).
//! - A counter reset (collector restart) is a value drop or a changed start time: the new value is the
//!   increase since the restart. Rates are therefore never negative.
//! - Rates need two points of a series: a component's rates stay `None` until its second push.
//! - Memory is bounded: at most [`MAX_SERIES`] series, [`MAX_COMPONENTS`] components, and per component
//!   a window of the last [`WINDOW`] at push resolution, at most [`MAX_WINDOW_SAMPLES`] samples. Series
//!   and components not seen for a whole window are forgotten.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::model::time::Rfc3339;
use crate::model::{CollectorStatus, UnixMillis};
use crate::own_metrics::metric_rules::{ComponentKey, Measure, MetricRule, Stage};
use crate::own_metrics::{MetricPoint, MetricsBatch};

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

/// The rates of one component over one push interval, in items per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RateSample {
    /// The collector's timestamp of the push's newest point.
    #[serde(serialize_with = "rfc3339")]
    #[schemars(with = "String")]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, schemars::JsonSchema)]
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
                // Looked up before inserting: `entry` would clone the key for every point of the push.
                if !self.components.contains_key(component) {
                    self.components.insert(component.clone(), ComponentState::default());
                }
                let Some(state) = self.components.get_mut(component) else { continue };
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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality, NumberDataPoint};

    use super::*;
    use crate::own_metrics::extract;
    use crate::own_metrics::otlp_values::test_otlp::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

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
