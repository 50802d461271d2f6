//! The own_metrics mapping table ([`METRIC_RULES`]): every metric linkmesh reads from a collector's own
//! metrics, which component stage it describes, and which of that component's rates (in, out, error)
//! it adds to. Also how components are named ([`ComponentKey`]). ARCHITECTURE.md shows the table.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

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
    /// Cumulative or delta counters (rates come from their increase); the rest are gauges.
    pub fn is_counter(self) -> bool {
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
    /// The table's meaning, which `RULES_BY_NAME` expands (the test oracle of `rule_for`).
    #[cfg(test)]
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

/// Every name the table matches (a per-signal rule once per signal), for one lookup per metric: a
/// push names about a hundred metrics, most of which no rule reads.
static RULES_BY_NAME: LazyLock<HashMap<String, &'static MetricRule>> = LazyLock::new(|| {
    let mut by_name = HashMap::new();
    for rule in METRIC_RULES {
        let names = match rule.name {
            MetricName::Exact(name) => vec![name.to_owned()],
            MetricName::PerSignal(prefix) => {
                SIGNAL_SUFFIXES.iter().map(|signal| format!("{prefix}{signal}")).collect()
            }
        };
        for name in names {
            // The first rule wins, as in a scan of the table (names are unique: tested below).
            by_name.entry(name).or_insert(rule);
        }
    }
    by_name
});

/// The rule for a metric name as pushed, if linkmesh reads that metric.
pub fn rule_for(metric_name: &str) -> Option<&'static MetricRule> {
    let normalised = normalise_metric_name(metric_name);
    RULES_BY_NAME.get(normalised.as_ref()).copied()
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

/// The metrics `apply_signals` reads (not in the table: they feed no rate), by normalised name.
const SIGNAL_METRICS: [&str; 4] = [
    "remotecfg_hash",
    "remotecfg_last_load_success_timestamp_seconds",
    "alloy_component_controller_running_components",
    "alloy_component_graph_connection",
];

/// Whether the metric (by normalised name) is one `apply_signals` reads.
pub fn is_apply_signal(normalised: &str) -> bool {
    SIGNAL_METRICS.contains(&normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_lookup_finds_what_a_scan_of_the_table_finds() {
        let mut names: Vec<String> = METRIC_RULES
            .iter()
            .flat_map(|rule| match rule.name {
                MetricName::Exact(name) => vec![name.to_owned(), format!("{name}_total")],
                MetricName::PerSignal(prefix) => {
                    SIGNAL_SUFFIXES.iter().map(|signal| format!("{prefix}{signal}")).collect()
                }
            })
            .collect();
        names.extend(
            ["otelcol.exporter.sent.spans", "otelcol_exporter_sent_", "process_cpu", "", "x"]
                .map(String::from),
        );
        for name in &names {
            let scanned = METRIC_RULES.iter().find(|rule| rule.name.matches(&normalise_metric_name(name)));
            assert_eq!(rule_for(name), scanned, "{name}");
        }
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
}
