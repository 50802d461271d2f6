//! `Stats`: what the simulator counts — calls, outcomes, latency histograms, errors by reason — shared
//! by every task, plus the pure summary math (rates and percentiles) the progress line and the final
//! JSON are built from.
//!
//! Counters are atomics; each call kind has two latency histograms behind short mutexes (the whole run,
//! and the current progress interval). Histograms are in microseconds, 1 µs to 60 s, 3 significant
//! digits (about 30 KiB each), so memory does not grow with the number of collectors or calls.
//!
//! With several servers a phase's `Stats` also holds one child `Stats` per node: there every attempt
//! counts under the node it went to, while the totals count each call once (see `nodes.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

const HISTOGRAM_MAX_MICROS: u64 = 60_000_000;

/// The calls the simulator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    Register,
    /// `UnregisterCollector` (Alloy's goodbye on shutdown; the `flap` workload's offline half).
    Unregister,
    GetConfig,
    OwnMetrics,
    CreateCollector,
    FindCollector,
    MintToken,
    /// `POST /collectors:batch`: up to 1000 collectors (and their tokens) per call.
    CreateBatch,
    SignIn,
    Decode,
}

impl CallKind {
    pub const ALL: [CallKind; 10] = [
        CallKind::Register,
        CallKind::Unregister,
        CallKind::GetConfig,
        CallKind::OwnMetrics,
        CallKind::CreateCollector,
        CallKind::FindCollector,
        CallKind::MintToken,
        CallKind::CreateBatch,
        CallKind::SignIn,
        CallKind::Decode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Register => "register",
            CallKind::Unregister => "unregister",
            CallKind::GetConfig => "get_config",
            CallKind::OwnMetrics => "own_metrics",
            CallKind::CreateCollector => "create_collector",
            CallKind::FindCollector => "find_collector",
            CallKind::MintToken => "mint_token",
            CallKind::CreateBatch => "create_batch",
            CallKind::SignIn => "sign_in",
            CallKind::Decode => "decode",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a call ended, as far as the counters care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A GetConfig answered `not_modified`.
    NotModified,
    /// A GetConfig that delivered content.
    Changed,
}

struct KindStats {
    requests: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    /// Calls that failed on a first node and were sent to another.
    retried: AtomicU64,
    not_modified: AtomicU64,
    changed: AtomicU64,
    points: AtomicU64,
    request_bytes: AtomicU64,
    whole_run: Mutex<Histogram<u64>>,
    interval: Mutex<Histogram<u64>>,
    /// How long calls waited for one of the `--connections` slots before they were sent: a queue
    /// on the generator's side, which the latencies above do not include.
    queue_wait: Mutex<Histogram<u64>>,
}

impl KindStats {
    fn new() -> Self {
        KindStats {
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            changed: AtomicU64::new(0),
            points: AtomicU64::new(0),
            request_bytes: AtomicU64::new(0),
            whole_run: Mutex::new(new_histogram()),
            interval: Mutex::new(new_histogram()),
            queue_wait: Mutex::new(new_histogram()),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Bounds and precision are constants known to be valid.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Counters shared by all tasks of one phase (start-up, measured run, provisioning).
pub struct Stats {
    kinds: Vec<KindStats>,
    errors_by_reason: Mutex<BTreeMap<(CallKind, String), u64>>,
    collectors_up: AtomicU64,
    /// Per node (URL and its figures), in the order of `--url`; empty for the nodes themselves.
    nodes: Vec<(String, Stats)>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            kinds: CallKind::ALL.iter().map(|_| KindStats::new()).collect(),
            errors_by_reason: Mutex::new(BTreeMap::new()),
            collectors_up: AtomicU64::new(0),
            nodes: Vec::new(),
        }
    }

    /// Totals plus figures per node, one per URL.
    pub fn for_nodes(urls: &[String]) -> Self {
        Stats { nodes: urls.iter().map(|url| (url.clone(), Stats::new())).collect(), ..Stats::new() }
    }

    /// The figures of node `index` (`None` without per-node figures).
    pub fn node(&self, index: usize) -> Option<&Stats> {
        self.nodes.get(index).map(|(_, stats)| stats)
    }

    fn kind(&self, kind: CallKind) -> &KindStats {
        &self.kinds[kind.index()]
    }

    /// A call that got its expected answer.
    pub fn success(&self, kind: CallKind, outcome: Outcome, latency: Duration) {
        let stats = self.kind(kind);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.ok.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {}
            Outcome::NotModified => {
                stats.not_modified.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Changed => {
                stats.changed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        stats.whole_run.lock().saturating_record(micros);
        stats.interval.lock().saturating_record(micros);
    }

    /// The time a call waited for a connection slot before it was sent.
    pub fn queued(&self, kind: CallKind, wait: Duration) {
        let micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX).max(1);
        self.kind(kind).queue_wait.lock().saturating_record(micros);
    }

    /// A failed call; `reason` is a short stable label (`http_404`, `transport`, `decode`).
    pub fn failure(&self, kind: CallKind, reason: &str) {
        let stats = self.kind(kind);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.errors.fetch_add(1, Ordering::Relaxed);
        *self.errors_by_reason.lock().entry((kind, reason.to_owned())).or_insert(0) += 1;
    }

    /// A call that needed a second node (counted once, whatever its outcome).
    pub fn retried(&self, kind: CallKind) {
        self.kind(kind).retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retried_count(&self, kind: CallKind) -> u64 {
        self.kind(kind).retried.load(Ordering::Relaxed)
    }

    /// Data points carried by successful own_metrics pushes (or decoded payloads).
    pub fn add_points(&self, kind: CallKind, points: u64) {
        self.kind(kind).points.fetch_add(points, Ordering::Relaxed);
    }

    pub fn add_request_bytes(&self, kind: CallKind, bytes: u64) {
        self.kind(kind).request_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn collector_up(&self) {
        self.collectors_up.fetch_add(1, Ordering::Relaxed);
    }

    pub fn collectors_up(&self) -> u64 {
        self.collectors_up.load(Ordering::Relaxed)
    }

    pub fn total_errors(&self) -> u64 {
        self.kinds.iter().map(|stats| stats.errors.load(Ordering::Relaxed)).sum()
    }

    pub fn counts(&self, kind: CallKind) -> Counts {
        let stats = self.kind(kind);
        Counts {
            requests: stats.requests.load(Ordering::Relaxed),
            ok: stats.ok.load(Ordering::Relaxed),
            errors: stats.errors.load(Ordering::Relaxed),
            retried: stats.retried.load(Ordering::Relaxed),
            not_modified: stats.not_modified.load(Ordering::Relaxed),
            changed: stats.changed.load(Ordering::Relaxed),
            points: stats.points.load(Ordering::Relaxed),
            request_bytes: stats.request_bytes.load(Ordering::Relaxed),
        }
    }

    /// Percentiles of the calls since the last call of this method (for the progress line).
    pub fn take_interval_latency(&self, kind: CallKind) -> Option<Latency> {
        let mut histogram = self.kind(kind).interval.lock();
        let latency = Latency::of(&histogram);
        histogram.reset();
        latency
    }

    pub fn whole_run_latency(&self, kind: CallKind) -> Option<Latency> {
        Latency::of(&self.kind(kind).whole_run.lock())
    }

    pub fn errors_by_reason(&self) -> BTreeMap<String, u64> {
        self.errors_by_reason
            .lock()
            .iter()
            .map(|((kind, reason), count)| (format!("{}:{reason}", kind.as_str()), *count))
            .collect()
    }

    /// The summary of one phase that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> PhaseSummary {
        PhaseSummary {
            elapsed_s: round3(elapsed.as_secs_f64()),
            collectors_up: self.collectors_up(),
            calls: self.call_summaries(elapsed),
            errors: self.errors_by_reason(),
            nodes: self
                .nodes
                .iter()
                .map(|(url, stats)| NodeSummary {
                    url: url.clone(),
                    calls: stats.call_summaries(elapsed),
                    errors: stats.errors_by_reason(),
                })
                .collect(),
        }
    }

    fn call_summaries(&self, elapsed: Duration) -> BTreeMap<&'static str, CallSummary> {
        CallKind::ALL
            .iter()
            .filter_map(|kind| {
                let counts = self.counts(*kind);
                (counts.requests > 0).then(|| {
                    // Shown once a call had to wait (every call is recorded, a free slot as 1 µs).
                    let queue_wait = self.kind(*kind).queue_wait.lock();
                    let queue_wait = (queue_wait.max() > 1).then(|| Latency::of(&queue_wait)).flatten();
                    let summary = CallSummary::new(counts, self.whole_run_latency(*kind), elapsed);
                    (kind.as_str(), CallSummary { queue_wait, ..summary })
                })
            })
            .collect()
    }
}

/// A snapshot of one call kind's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub retried: u64,
    pub not_modified: u64,
    pub changed: u64,
    pub points: u64,
    pub request_bytes: u64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Option<Latency> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| round3(micros as f64 / 1000.0);
        Some(Latency {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: round3(histogram.mean() / 1000.0),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Calls sent to a second node after the first failed (totals only).
    #[serde(skip_serializing_if = "is_zero")]
    pub retried: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub not_modified: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub changed: u64,
    /// Successful calls per second over the phase.
    pub ok_per_s: f64,
    #[serde(skip_serializing_if = "is_zero")]
    pub points: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_request_bytes: Option<f64>,
    pub latency: Option<Latency>,
    /// The wait for a connection slot before each call (not in `latency`); absent when no call
    /// waited for one (the closed loop) and per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<Latency>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl CallSummary {
    pub fn new(counts: Counts, latency: Option<Latency>, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        CallSummary {
            requests: counts.requests,
            ok: counts.ok,
            errors: counts.errors,
            retried: counts.retried,
            not_modified: counts.not_modified,
            changed: counts.changed,
            ok_per_s: rate(counts.ok, seconds),
            points: counts.points,
            points_per_s: (counts.points > 0).then(|| rate(counts.points, seconds)),
            mean_request_bytes: (counts.request_bytes > 0 && counts.requests > 0)
                .then(|| round3(counts.request_bytes as f64 / counts.requests as f64)),
            latency,
            queue_wait: None,
        }
    }
}

/// One phase of a run in the JSON summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSummary {
    pub elapsed_s: f64,
    pub collectors_up: u64,
    pub calls: BTreeMap<&'static str, CallSummary>,
    pub errors: BTreeMap<String, u64>,
    /// Per node, every attempt counted under the node it went to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
}

/// One node's figures in a phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSummary {
    pub url: String,
    pub calls: BTreeMap<&'static str, CallSummary>,
    pub errors: BTreeMap<String, u64>,
}

impl PhaseSummary {
    /// `KEY=value` lines (keys prefixed with `prefix`), for shell scripts without a JSON parser.
    pub fn shell_lines(&self, prefix: &str) -> Vec<String> {
        let mut lines = vec![
            format!("{prefix}ELAPSED_S={}", self.elapsed_s),
            format!("{prefix}COLLECTORS_UP={}", self.collectors_up),
            format!("{prefix}ERRORS={}", self.errors.values().sum::<u64>()),
        ];
        for (name, call) in &self.calls {
            let key = format!("{prefix}{}", name.to_ascii_uppercase());
            lines.push(format!("{key}_REQUESTS={}", call.requests));
            lines.push(format!("{key}_OK={}", call.ok));
            lines.push(format!("{key}_ERRORS={}", call.errors));
            lines.push(format!("{key}_RETRIED={}", call.retried));
            lines.push(format!("{key}_NOT_MODIFIED={}", call.not_modified));
            lines.push(format!("{key}_CHANGED={}", call.changed));
            lines.push(format!("{key}_OK_PER_S={}", call.ok_per_s));
            lines.push(format!("{key}_POINTS={}", call.points));
            lines.push(format!("{key}_POINTS_PER_S={}", call.points_per_s.unwrap_or(0.0)));
            if let Some(latency) = &call.latency {
                lines.push(format!("{key}_P50_MS={}", latency.p50_ms));
                lines.push(format!("{key}_P99_MS={}", latency.p99_ms));
            }
            let queue_wait_p99 = call.queue_wait.map_or(0.0, |wait| wait.p99_ms);
            lines.push(format!("{key}_QUEUE_WAIT_P99_MS={queue_wait_p99}"));
        }
        for (reason, count) in &self.errors {
            let reason: String = reason
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
                .collect();
            lines.push(format!("{prefix}ERROR_{reason}={count}"));
        }
        // Nodes are numbered from 1 in the order of `--url`.
        for (number, node) in self.nodes.iter().enumerate().map(|(index, node)| (index + 1, node)) {
            let node_prefix = format!("{prefix}NODE{number}_");
            lines.push(format!("{node_prefix}URL={}", node.url));
            for (name, call) in &node.calls {
                let key = format!("{node_prefix}{}", name.to_ascii_uppercase());
                lines.push(format!("{key}_REQUESTS={}", call.requests));
                lines.push(format!("{key}_ERRORS={}", call.errors));
                if let Some(latency) = &call.latency {
                    lines.push(format!("{key}_P50_MS={}", latency.p50_ms));
                    lines.push(format!("{key}_P99_MS={}", latency.p99_ms));
                }
            }
        }
        lines
    }
}

pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    round3(count as f64 / seconds)
}

pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_rates_are_per_second_of_the_phase() {
        let stats = Stats::new();
        for _ in 0..10 {
            stats.success(CallKind::GetConfig, Outcome::NotModified, Duration::from_millis(2));
        }
        stats.failure(CallKind::GetConfig, "http_503");
        let summary = stats.summary(Duration::from_secs(2));
        let poll = &summary.calls["get_config"];
        assert_eq!(poll.requests, 11);
        assert_eq!(poll.ok, 10);
        assert_eq!(poll.not_modified, 10);
        assert_eq!(poll.ok_per_s, 5.0);
        let latency = poll.latency.expect("latency");
        assert!((latency.p50_ms - 2.0).abs() < 0.01, "{latency:?}");
        assert_eq!(summary.errors["get_config:http_503"], 1);
        assert!(!summary.calls.contains_key("register"));
        assert!(summary.nodes.is_empty(), "one server without per-node figures");
    }

    #[test]
    fn node_figures_are_summarised_beside_the_totals() {
        let stats = Stats::for_nodes(&["http://a:1".to_owned(), "http://b:2".to_owned()]);
        let a = stats.node(0).expect("node a");
        a.success(CallKind::GetConfig, Outcome::NotModified, Duration::from_millis(1));
        stats.node(1).expect("node b").failure(CallKind::GetConfig, "connect");
        stats.success(CallKind::GetConfig, Outcome::NotModified, Duration::from_millis(3));
        stats.retried(CallKind::GetConfig);
        let summary = stats.summary(Duration::from_secs(1));
        assert_eq!(summary.calls["get_config"].retried, 1);
        assert_eq!(summary.nodes.len(), 2);
        assert_eq!(summary.nodes[0].url, "http://a:1");
        assert_eq!(summary.nodes[0].calls["get_config"].ok, 1);
        assert_eq!(summary.nodes[1].errors["get_config:connect"], 1);
        assert!(summary.nodes[1].calls["get_config"].latency.is_none());
    }

    #[test]
    fn the_wait_for_a_connection_slot_shows_once_a_call_waited() {
        let stats = Stats::new();
        for _ in 0..10 {
            stats.queued(CallKind::GetConfig, Duration::ZERO);
            stats.success(CallKind::GetConfig, Outcome::NotModified, Duration::from_millis(1));
        }
        assert!(stats.summary(Duration::from_secs(1)).calls["get_config"].queue_wait.is_none());
        stats.queued(CallKind::GetConfig, Duration::from_millis(40));
        let waited = stats.summary(Duration::from_secs(1)).calls["get_config"].queue_wait.expect("a wait");
        assert!((waited.max_ms - 40.0).abs() < 0.1, "{waited:?}");
        assert_eq!(waited.p50_ms, 0.001, "most calls found a free slot");
    }

    #[test]
    fn interval_latency_resets_but_whole_run_keeps_everything() {
        let stats = Stats::new();
        stats.success(CallKind::Register, Outcome::Ok, Duration::from_millis(1));
        assert!(stats.take_interval_latency(CallKind::Register).is_some());
        assert!(stats.take_interval_latency(CallKind::Register).is_none());
        assert!(stats.whole_run_latency(CallKind::Register).is_some());
    }

    #[test]
    fn shell_lines_are_sourceable_keys() {
        let stats = Stats::for_nodes(&["http://a:8080".to_owned(), "http://b:8080".to_owned()]);
        stats.success(CallKind::OwnMetrics, Outcome::Ok, Duration::from_millis(1));
        stats.add_points(CallKind::OwnMetrics, 300);
        stats.failure(CallKind::OwnMetrics, "http_404");
        let node = stats.node(1).expect("node 2");
        node.failure(CallKind::OwnMetrics, "http_404");
        let lines = stats.summary(Duration::from_secs(1)).shell_lines("RUN_");
        assert!(lines.contains(&"RUN_OWN_METRICS_POINTS_PER_S=300".to_owned()), "{lines:?}");
        assert!(lines.contains(&"RUN_ERROR_OWN_METRICS_HTTP_404=1".to_owned()), "{lines:?}");
        assert!(lines.contains(&"RUN_NODE2_URL=http://b:8080".to_owned()), "{lines:?}");
        assert!(lines.contains(&"RUN_NODE2_OWN_METRICS_ERRORS=1".to_owned()), "{lines:?}");
        assert!(lines.iter().all(|line| line.split_once('=').is_some_and(|(key, _)| key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))));
    }
}
