//! The node's Prometheus metrics: one registry per node, served as text (format 0.0.4) by
//! `GET /metrics` (`http/metrics.rs`).
//!
//! Every series carries `node` (this node's id), so the series of a cluster's nodes never collide
//! whatever the scrape config adds. Names follow Prometheus conventions: the `linkmesh_` prefix, the
//! unit in the name, `_total` on counters (added by the encoder: counters are registered without it).
//!
//! Label values come from closed sets only — route *patterns*, never paths; fixed method, outcome and
//! error-kind names; status codes the server itself sends — so no caller can grow the number of series.
//!
//! Who feeds what:
//! - Raft gauges and leader changes: [`raft_watch`], a task on openraft's metrics watch; the commit index
//!   (which openraft's metrics lack) and the gauges below are sampled at scrape time.
//! - The log flush histogram: `raft/log_store.rs` times each append's flush into the histogram its
//!   `DurableDb` was built with ([`NodeMetrics::log_flush_histogram`]), registered here.
//! - HTTP requests: the middleware in `http/metrics.rs`, around the whole App.
//! - Polls, forward errors, own_metrics pushes: the handlers that serve them; status changes: the
//!   collector actors (through the [`StatusChanges`] handle their environment holds).
//! - The activity figures (live updates waiting for their Raft write, updates written, the time a
//!   write took): the activity writer (`actors/activity_writer.rs`), through [`ActivityMetrics`].
//!
//! This file imports nothing of the crate, so every layer (raft included) may import it.

pub mod raft_watch;

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `Content-Type` of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the HTTP latency buckets: a `not_modified` poll takes well under a
/// millisecond, a sign-in (argon2) a few hundred.
const HTTP_SECONDS_BUCKETS: [f64; 15] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Upper bounds (seconds) of the log flush buckets: one `fdatasync` of sled's file plus one of the
/// facts slot, from a fast NVMe drive (~100 µs) to a saturated disk.
const LOG_FLUSH_SECONDS_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The histogram a node's log store times its flushes into (built before the registry exists, so the
/// store keeps its own handle and [`NodeMetrics::new`] registers it).
pub fn log_flush_histogram() -> Histogram {
    Histogram::new(LOG_FLUSH_SECONDS_BUCKETS)
}

/// Upper bounds (seconds) of the activity write buckets: one Raft round (a forward to the leader, a
/// quorum's fsync, the apply), from a quiet cluster's milliseconds to a leader that falls behind.
const ACTIVITY_WRITE_SECONDS_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn http_seconds_histogram() -> Histogram {
    Histogram::new(HTTP_SECONDS_BUCKETS)
}

/// Where a poll (`GetConfig`) was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPath {
    /// By this node's actor (this node owns the collector's slot).
    Local,
    /// Forwarded to the owning node over the peer transport.
    Forwarded,
}

impl PollPath {
    pub const ALL: [PollPath; 2] = [PollPath::Local, PollPath::Forwarded];

    pub fn as_str(self) -> &'static str {
        match self {
            PollPath::Local => "local",
            PollPath::Forwarded => "forwarded",
        }
    }
}

/// Why a call forwarded to another node (poll, register, push, write) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardErrorKind {
    /// The peer could not be reached (connect refused, connection reset, no address).
    Unreachable,
    /// The peer did not answer within the call's time limit.
    Timeout,
    /// The peer no longer owns the slot (a refresh and one retry follow).
    WrongOwner,
    /// The peer answered with an error of its own (refused credentials, unavailable, internal).
    Refused,
}

impl ForwardErrorKind {
    pub const ALL: [ForwardErrorKind; 4] = [
        ForwardErrorKind::Unreachable,
        ForwardErrorKind::Timeout,
        ForwardErrorKind::WrongOwner,
        ForwardErrorKind::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ForwardErrorKind::Unreachable => "unreachable",
            ForwardErrorKind::Timeout => "timeout",
            ForwardErrorKind::WrongOwner => "wrong_owner",
            ForwardErrorKind::Refused => "refused",
        }
    }
}

/// What became of an own_metrics push (`POST /v1/metrics`); why one was refused is in the HTTP
/// series of that route (its status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Accepted,
    Refused,
}

impl PushOutcome {
    pub const ALL: [PushOutcome; 2] = [PushOutcome::Accepted, PushOutcome::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            PushOutcome::Accepted => "accepted",
            PushOutcome::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusChangeLabels {
    from: &'static str,
    to: &'static str,
}

/// Collector status changes made by this node's actors, by the status left and the one entered: how
/// flapping shows (an alert on `to="stale"`, the simulator's flap count). Shared by the actors.
#[derive(Clone, Default)]
pub struct StatusChanges(Family<StatusChangeLabels, Counter>);

impl StatusChanges {
    pub fn record(&self, from: &'static str, to: &'static str) {
        self.0.get_or_create(&StatusChangeLabels { from, to }).inc();
    }

    /// Changes counted from `from` to `to`.
    pub fn count(&self, from: &'static str, to: &'static str) -> u64 {
        self.0.get_or_create(&StatusChangeLabels { from, to }).get()
    }
}

/// What the activity writer reports: whether the replicated record keeps up with the live updates
/// (`pending` stays small and drains; a write takes less than a flush interval or two).
#[derive(Clone)]
pub struct ActivityMetrics {
    /// Collectors with live updates not yet committed (waiting for the next write, or in the write
    /// in flight).
    pub pending: Gauge,
    /// Per-collector updates committed (each carries a status change, events, or both).
    pub written: Counter,
    /// Time from proposing one batch to its commit (or failure).
    pub write_seconds: Histogram,
}

impl Default for ActivityMetrics {
    fn default() -> Self {
        ActivityMetrics {
            pending: Gauge::default(),
            written: Counter::default(),
            write_seconds: Histogram::new(ACTIVITY_WRITE_SECONDS_BUCKETS),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequestLabels {
    route: Cow<'static, str>,
    method: &'static str,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLatencyLabels {
    route: Cow<'static, str>,
    method: &'static str,
    class: &'static str,
}

/// The Raft figures, set by [`raft_watch`] and at scrape time.
#[derive(Default)]
pub struct RaftGauges {
    pub term: Gauge,
    pub leader_changes: Counter,
    pub commit_index: Gauge,
    pub applied_index: Gauge,
    pub last_log_index: Gauge,
    pub is_leader: Gauge,
}

/// One node's registry and the handles that feed it. Shared (`Arc`) by the HTTP workers, the Raft
/// watcher and the handlers; every update is a relaxed atomic or a short lock.
pub struct NodeMetrics {
    registry: Registry,
    raft: RaftGauges,
    log_flush: Histogram,
    polls: Family<PathLabel, Counter>,
    forward_errors: Family<KindLabel, Counter>,
    resident_actors: Gauge,
    opamp_connections: Gauge,
    status_changes: StatusChanges,
    activity: ActivityMetrics,
    own_metrics_pushes: Family<OutcomeLabel, Counter>,
    http_requests: Family<HttpRequestLabels, Counter>,
    http_seconds: Family<HttpLatencyLabels, Histogram, fn() -> Histogram>,
    storage_failed: Gauge,
}

impl NodeMetrics {
    /// The registry of node `node_id`; `log_flush` is the histogram its log store times flushes into.
    pub fn new(node_id: u64, log_flush: Histogram) -> NodeMetrics {
        let labels = [(Cow::Borrowed("node"), Cow::Owned(node_id.to_string()))];
        let mut registry = Registry::with_prefix_and_labels("linkmesh", labels.into_iter());
        let metrics = NodeMetrics {
            registry: Registry::default(),
            raft: RaftGauges::default(),
            log_flush,
            polls: Family::default(),
            forward_errors: Family::default(),
            resident_actors: Gauge::default(),
            opamp_connections: Gauge::default(),
            status_changes: StatusChanges::default(),
            activity: ActivityMetrics::default(),
            own_metrics_pushes: Family::default(),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(http_seconds_histogram),
            storage_failed: Gauge::default(),
        };
        // Label sets that exist from the start are exported as 0, so a query or an alert on them
        // works before the first event (and a missing series means a missing node, not a quiet one).
        for path in PollPath::ALL {
            metrics.polls.get_or_create_owned(&PathLabel { path: path.as_str() });
        }
        for kind in ForwardErrorKind::ALL {
            metrics.forward_errors.get_or_create_owned(&KindLabel { kind: kind.as_str() });
        }
        for outcome in PushOutcome::ALL {
            metrics.own_metrics_pushes.get_or_create_owned(&OutcomeLabel { outcome: outcome.as_str() });
        }
        let raft = &metrics.raft;
        registry.register("raft_term", "Current Raft term as this node sees it", raft.term.clone());
        registry.register(
            "raft_leader_changes",
            "Times this node saw the Raft leader change (to a known leader)",
            raft.leader_changes.clone(),
        );
        registry.register(
            "raft_commit_index",
            "Highest Raft log index this node knows to be committed",
            raft.commit_index.clone(),
        );
        registry.register(
            "raft_applied_index",
            "Highest Raft log index applied to this node's state machine",
            raft.applied_index.clone(),
        );
        registry.register(
            "raft_last_log_index",
            "Highest Raft log index in this node's log",
            raft.last_log_index.clone(),
        );
        registry.register(
            "raft_is_leader",
            "1 when this node is the Raft leader, else 0",
            raft.is_leader.clone(),
        );
        registry.register(
            "raft_log_flush_duration_seconds",
            "Time to make one Raft log append durable (sled flush, fdatasync, durable facts)",
            metrics.log_flush.clone(),
        );
        registry.register(
            "polls",
            "GetConfig polls answered, by where the collector's actor ran (local or forwarded to its owner)",
            metrics.polls.clone(),
        );
        registry.register(
            "forward_errors",
            "Calls forwarded to another node that failed, by kind",
            metrics.forward_errors.clone(),
        );
        registry.register(
            "resident_actors",
            "Collector actors resident on this node",
            metrics.resident_actors.clone(),
        );
        registry.register(
            "opamp_connections",
            "OpAMP WebSocket connections open on this node",
            metrics.opamp_connections.clone(),
        );
        registry.register(
            "collector_status_changes",
            "Collector status changes made by this node's actors, by the status left and the one entered",
            metrics.status_changes.0.clone(),
        );
        registry.register(
            "activity_pending_updates",
            "Collectors whose live updates (status, events) this node has not yet written through Raft",
            metrics.activity.pending.clone(),
        );
        registry.register(
            "activity_updates_written",
            "Per-collector live updates this node wrote through Raft",
            metrics.activity.written.clone(),
        );
        registry.register(
            "activity_write_duration_seconds",
            "Time from proposing one batch of live updates to its commit",
            metrics.activity.write_seconds.clone(),
        );
        registry.register(
            "own_metrics_pushes",
            "own_metrics pushes (POST /v1/metrics) accepted or refused",
            metrics.own_metrics_pushes.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status code",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by route pattern, method and status class",
            metrics.http_seconds.clone(),
        );
        registry.register(
            "storage_failed",
            "1 once this node's storage failed (it stops serving and exits), else 0",
            metrics.storage_failed.clone(),
        );
        NodeMetrics { registry, ..metrics }
    }

    /// The Raft gauges, for the watcher and the scrape.
    pub fn raft(&self) -> &RaftGauges {
        &self.raft
    }

    /// The status change counters, for this node's collector actors.
    pub fn status_changes(&self) -> StatusChanges {
        self.status_changes.clone()
    }

    /// The activity writer's figures.
    pub fn activity(&self) -> ActivityMetrics {
        self.activity.clone()
    }

    pub fn poll_served(&self, path: PollPath) {
        self.polls.get_or_create(&PathLabel { path: path.as_str() }).inc();
    }

    pub fn forward_failed(&self, kind: ForwardErrorKind) {
        self.forward_errors.get_or_create(&KindLabel { kind: kind.as_str() }).inc();
    }

    pub fn own_metrics_push(&self, outcome: PushOutcome) {
        self.own_metrics_pushes.get_or_create(&OutcomeLabel { outcome: outcome.as_str() }).inc();
    }

    pub fn set_resident_actors(&self, count: usize) {
        self.resident_actors.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn set_opamp_connections(&self, count: usize) {
        self.opamp_connections.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub fn set_storage_failed(&self, failed: bool) {
        self.storage_failed.set(i64::from(failed));
    }

    /// One answered HTTP request. `route` is the matched route pattern (or a fixed word for none),
    /// `method` one of [`http_method_label`]'s values.
    pub fn http_request(&self, route: Cow<'static, str>, method: &'static str, status: u16, seconds: f64) {
        let class = status_class(status);
        self.http_requests
            .get_or_create(&HttpRequestLabels { route: route.clone(), method, code: status })
            .inc();
        self.http_seconds.get_or_create(&HttpLatencyLabels { route, method, class }).observe(seconds);
    }

    /// The whole registry in the Prometheus text format (0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an encoder error would be a bug in a metric type.
        if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "cannot encode the metrics registry");
        }
        text
    }
}

/// `index` (openraft's `u64`) as a gauge value.
pub fn index_value(index: Option<u64>) -> i64 {
    index.map_or(0, |index| i64::try_from(index).unwrap_or(i64::MAX))
}

/// The method label: the methods linkmesh serves, and one word for any other, so a client sending
/// made-up methods cannot add series.
pub fn http_method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines(text: &str, name: &str) -> Vec<String> {
        text.lines().filter(|line| line.starts_with(name)).map(str::to_owned).collect()
    }

    #[test]
    fn every_series_is_labelled_with_the_node_and_counters_end_in_total() {
        let metrics = NodeMetrics::new(7, log_flush_histogram());
        metrics.poll_served(PollPath::Local);
        metrics.http_request(Cow::Borrowed("/api/v1/collectors/{id}"), "GET", 200, 0.002);
        let text = metrics.encode();
        let samples: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert!(samples.len() > 20, "{text}");
        for sample in &samples {
            assert!(sample.starts_with("linkmesh_"), "{sample}");
            assert!(sample.contains("node=\"7\""), "{sample}");
        }
        let mut polls = sample_lines(&text, "linkmesh_polls_total");
        polls.sort();
        assert_eq!(
            polls,
            [
                "linkmesh_polls_total{node=\"7\",path=\"forwarded\"} 0",
                "linkmesh_polls_total{node=\"7\",path=\"local\"} 1"
            ]
        );
        assert!(text.contains("# TYPE linkmesh_polls_total counter\n"), "{text}");
        assert!(text.contains("# TYPE linkmesh_http_request_duration_seconds histogram\n"), "{text}");
        assert!(!text.contains("# EOF"), "0.0.4 has no EOF marker");
    }

    #[test]
    fn http_requests_are_counted_by_code_and_timed_by_class() {
        let metrics = NodeMetrics::new(1, log_flush_histogram());
        for status in [200, 204, 404] {
            metrics.http_request(Cow::Borrowed("/api/v1/collectors"), "GET", status, 0.0003);
        }
        let text = metrics.encode();
        let counts = sample_lines(&text, "linkmesh_http_requests_total");
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(counts.iter().any(|line| line.contains("code=\"204\"")), "{counts:?}");
        let mut timed = sample_lines(&text, "linkmesh_http_request_duration_seconds_count");
        timed.sort();
        assert_eq!(
            timed,
            [
                "linkmesh_http_request_duration_seconds_count{node=\"1\",route=\"/api/v1/collectors\",method=\"GET\",class=\"2xx\"} 2",
                "linkmesh_http_request_duration_seconds_count{node=\"1\",route=\"/api/v1/collectors\",method=\"GET\",class=\"4xx\"} 1"
            ]
        );
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(http_method_label("GET"), "GET");
        assert_eq!(http_method_label("BREW"), "other");
        assert_eq!(http_method_label("get"), "other");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(101), "1xx");
    }

    #[test]
    fn the_log_flush_histogram_given_is_the_one_exported() {
        let histogram = log_flush_histogram();
        let metrics = NodeMetrics::new(1, histogram.clone());
        histogram.observe(0.003);
        let text = metrics.encode();
        assert!(text.contains("linkmesh_raft_log_flush_duration_seconds_count{node=\"1\"} 1\n"), "{text}");
        assert!(
            text.contains("linkmesh_raft_log_flush_duration_seconds_bucket{node=\"1\",le=\"0.005\"} 1\n"),
            "{text}"
        );
    }
}
