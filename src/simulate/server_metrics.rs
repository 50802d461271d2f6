//! What the servers themselves counted during the measured phase, read from their `GET /metrics` at
//! its start and its end: the collector status changes (`linkmesh_collector_status_changes_total`; a
//! fleet in its steady state changes no status, so the difference is the run's flapping as the servers
//! saw it) and the time they took to answer GetConfig (`linkmesh_http_request_duration_seconds`,
//! beside the simulator's round trips); and whether the replicated record kept up with the live
//! updates: per-collector updates written through Raft, the time a batch took to commit, the log
//! entries committed, and how long after the run the writers' queues took to empty
//! (`linkmesh_activity_*`, `linkmesh_raft_commit_index`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

const STATUS_CHANGES: &str = "linkmesh_collector_status_changes_total{";
const HANDLING_BUCKET: &str = "linkmesh_http_request_duration_seconds_bucket{";
const GET_CONFIG_ROUTE: &str = "route=\"/collector.v1.CollectorService/GetConfig\"";
const ACTIVITY_WRITTEN: &str = "linkmesh_activity_updates_written_total{";
const ACTIVITY_PENDING: &str = "linkmesh_activity_pending_updates{";
const ACTIVITY_WRITE_BUCKET: &str = "linkmesh_activity_write_duration_seconds_bucket{";
const COMMIT_INDEX: &str = "linkmesh_raft_commit_index{";
/// How often [`read_drained`] looks again.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// One reading of every node's counters, summed over the nodes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    /// Status changes by `"<from> -> <to>"`.
    pub status_changes: BTreeMap<String, u64>,
    /// GetConfig answers by the upper bound of their handling-time bucket (seconds, cumulative, as
    /// the histogram exposes them; `f64::INFINITY` last).
    pub get_config_buckets: Vec<(f64, u64)>,
    /// Per-collector live updates written through Raft, summed over the nodes.
    pub activity_written: u64,
    /// Collectors whose updates wait for their write, summed over the nodes.
    pub activity_pending: u64,
    /// Activity writes by the upper bound of their duration bucket (cumulative, as exposed).
    pub activity_write_buckets: Vec<(f64, u64)>,
    /// The highest commit index any node reported.
    pub commit_index: u64,
}

/// What the servers counted between two readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerFigures {
    pub status_changes: BTreeMap<String, u64>,
    /// GetConfig calls the servers answered (each node's own count: a forwarded call counts on the
    /// node that took it, its owner's answer is not an HTTP request).
    pub get_config_answered: u64,
    /// Upper bounds of the handling-time buckets holding the median and the 99th percentile (the
    /// histogram's resolution), `null` without calls.
    pub get_config_p50_le_ms: Option<f64>,
    pub get_config_p99_le_ms: Option<f64>,
    /// Per-collector updates the nodes' activity writers committed, and in how many writes.
    pub activity_updates_written: u64,
    pub activity_writes: u64,
    /// Upper bound of the bucket holding the 99th percentile of a write's propose-to-commit time.
    pub activity_write_p99_le_ms: Option<f64>,
    /// Raft log entries committed (growth of the highest commit index).
    pub raft_entries_committed: u64,
    /// Time from the end of the measured phase until no node had an update waiting (`None`: still
    /// waiting at the deadline, or not asked).
    pub activity_drained_after_ms: Option<u64>,
}

/// Reads every node in `urls` (a scrape needs a service-account token, or an address in the server's
/// `metrics.allow_anonymous_from`); the error says why a node could not be read.
pub async fn read(urls: &[String], token: Option<&str>) -> Result<Reading, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let mut total = Reading::default();
    for url in urls {
        let mut request = client.get(format!("{url}/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|error| format!("GET {url}/metrics: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}/metrics answered {status}"));
        }
        let text = response.text().await.map_err(|error| format!("GET {url}/metrics: {error}"))?;
        total.add(&parse(&text));
    }
    Ok(total)
}

impl Reading {
    fn add(&mut self, other: &Reading) {
        for (change, count) in &other.status_changes {
            *self.status_changes.entry(change.clone()).or_default() += count;
        }
        for (bound, count) in &other.get_config_buckets {
            add_bucket(&mut self.get_config_buckets, *bound, *count);
        }
        for (bound, count) in &other.activity_write_buckets {
            add_bucket(&mut self.activity_write_buckets, *bound, *count);
        }
        self.activity_written += other.activity_written;
        self.activity_pending += other.activity_pending;
        self.commit_index = self.commit_index.max(other.commit_index);
    }

    /// What grew from `before` to `self` (counters only grow; a node restarted in between would
    /// start again from 0, which saturates to nothing).
    pub fn since(&self, before: &Reading) -> ServerFigures {
        let status_changes = self
            .status_changes
            .iter()
            .map(|(change, count)| {
                (
                    change.clone(),
                    count.saturating_sub(before.status_changes.get(change).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        let handled = grown(&self.get_config_buckets, &before.get_config_buckets);
        let writes = grown(&self.activity_write_buckets, &before.activity_write_buckets);
        ServerFigures {
            status_changes,
            get_config_answered: total(&handled),
            get_config_p50_le_ms: quantile_le_ms(&handled, 0.50),
            get_config_p99_le_ms: quantile_le_ms(&handled, 0.99),
            activity_updates_written: self.activity_written.saturating_sub(before.activity_written),
            activity_writes: total(&writes),
            activity_write_p99_le_ms: quantile_le_ms(&writes, 0.99),
            raft_entries_committed: self.commit_index.saturating_sub(before.commit_index),
            activity_drained_after_ms: None,
        }
    }
}

/// Reads every node until none has a live update waiting for its write, or `deadline` passed;
/// returns the last reading and the wait, `None` when the queues were not empty at the deadline.
pub async fn read_drained(
    urls: &[String],
    token: Option<&str>,
    deadline: Duration,
) -> Result<(Reading, Option<Duration>), String> {
    let started = std::time::Instant::now();
    loop {
        let reading = read(urls, token).await?;
        let waited = started.elapsed();
        if reading.activity_pending == 0 {
            return Ok((reading, Some(waited)));
        }
        if waited >= deadline {
            return Ok((reading, None));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// The per-bucket growth of a cumulative histogram from `before` to `after`.
fn grown(after: &[(f64, u64)], before: &[(f64, u64)]) -> Vec<(f64, u64)> {
    after
        .iter()
        .map(|(bound, count)| {
            let earlier = before.iter().find(|(other, _)| other == bound).map_or(0, |(_, count)| *count);
            (*bound, count.saturating_sub(earlier))
        })
        .collect()
}

/// Observations in a cumulative histogram (its `+Inf` bucket).
fn total(buckets: &[(f64, u64)]) -> u64 {
    buckets.last().map_or(0, |(_, count)| *count)
}

/// Upper bound (ms) of the bucket holding quantile `q`; `None` without observations.
fn quantile_le_ms(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let observed = total(buckets);
    let rank = (q * observed as f64).ceil().max(1.0) as u64;
    (observed > 0)
        .then(|| buckets.iter().find(|(_, count)| *count >= rank).map(|(bound, _)| bound * 1000.0))
        .flatten()
}

impl ServerFigures {
    /// `KEY=value` lines for shell scripts (`inf` for a percentile beyond the largest bucket).
    pub fn shell_lines(&self, prefix: &str) -> Vec<String> {
        let to_stale: u64 = self
            .status_changes
            .iter()
            .filter(|(change, _)| change.ends_with("-> stale"))
            .map(|(_, n)| n)
            .sum();
        let millis = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |ms| format!("{ms}"));
        vec![
            format!("{prefix}STATUS_CHANGES={}", self.status_changes.values().sum::<u64>()),
            format!("{prefix}STATUS_CHANGES_TO_STALE={to_stale}"),
            format!("{prefix}GET_CONFIG_ANSWERED={}", self.get_config_answered),
            format!("{prefix}GET_CONFIG_P50_LE_MS={}", millis(self.get_config_p50_le_ms)),
            format!("{prefix}GET_CONFIG_P99_LE_MS={}", millis(self.get_config_p99_le_ms)),
            format!("{prefix}ACTIVITY_UPDATES_WRITTEN={}", self.activity_updates_written),
            format!("{prefix}ACTIVITY_WRITES={}", self.activity_writes),
            format!("{prefix}ACTIVITY_WRITE_P99_LE_MS={}", millis(self.activity_write_p99_le_ms)),
            format!("{prefix}RAFT_ENTRIES_COMMITTED={}", self.raft_entries_committed),
            format!(
                "{prefix}ACTIVITY_DRAINED_AFTER_MS={}",
                self.activity_drained_after_ms.map_or_else(|| "-".to_owned(), |ms| ms.to_string())
            ),
        ]
    }

    /// The lines of the human summary.
    pub fn render(&self) -> String {
        let changes = if self.status_changes.is_empty() {
            "none".to_owned()
        } else {
            let listed: Vec<String> =
                self.status_changes.iter().map(|(change, count)| format!("{change}: {count}")).collect();
            listed.join(", ")
        };
        let bound = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |ms| format!("≤ {ms} ms"));
        let drained = self
            .activity_drained_after_ms
            .map_or_else(|| "not within the deadline".to_owned(), |ms| format!("{ms} ms after the run"));
        format!(
            "status changes during the run (the servers' count): {changes}\n\
             GetConfig handling on the servers: {} answered, p50 {}, p99 {}\n\
             live updates written through Raft: {} in {} writes (p99 {}), {} log entries committed; \
             queues empty {drained}\n",
            self.get_config_answered,
            bound(self.get_config_p50_le_ms),
            bound(self.get_config_p99_le_ms),
            self.activity_updates_written,
            self.activity_writes,
            bound(self.activity_write_p99_le_ms),
            self.raft_entries_committed,
        )
    }
}

fn add_bucket(buckets: &mut Vec<(f64, u64)>, bound: f64, count: u64) {
    match buckets.iter_mut().find(|(other, _)| *other == bound) {
        Some((_, total)) => *total += count,
        None => {
            buckets.push((bound, count));
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
}

/// The samples of one exposition this module reads.
fn parse(text: &str) -> Reading {
    let mut reading = Reading::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(STATUS_CHANGES) {
            let Some((labels, count)) = sample(rest) else { continue };
            let (Some(from), Some(to)) = (label(labels, "from"), label(labels, "to")) else { continue };
            *reading.status_changes.entry(format!("{from} -> {to}")).or_default() += count;
        } else if let Some(rest) = line.strip_prefix(HANDLING_BUCKET) {
            let Some((labels, count)) = sample(rest) else { continue };
            if !labels.contains(GET_CONFIG_ROUTE) {
                continue;
            }
            let Some(bound) = upper_bound(labels) else { continue };
            add_bucket(&mut reading.get_config_buckets, bound, count);
        } else if let Some(rest) = line.strip_prefix(ACTIVITY_WRITE_BUCKET) {
            let Some((labels, count)) = sample(rest) else { continue };
            let Some(bound) = upper_bound(labels) else { continue };
            add_bucket(&mut reading.activity_write_buckets, bound, count);
        } else if let Some((_, count)) = line.strip_prefix(ACTIVITY_WRITTEN).and_then(sample) {
            reading.activity_written += count;
        } else if let Some((_, count)) = line.strip_prefix(ACTIVITY_PENDING).and_then(sample) {
            reading.activity_pending += count;
        } else if let Some((_, index)) = line.strip_prefix(COMMIT_INDEX).and_then(sample) {
            reading.commit_index = reading.commit_index.max(index);
        }
    }
    reading
}

/// A histogram bucket's `le`, `f64::INFINITY` for `+Inf`.
fn upper_bound(labels: &str) -> Option<f64> {
    match label(labels, "le")? {
        "+Inf" => Some(f64::INFINITY),
        bound => bound.parse::<f64>().ok(),
    }
}

/// The labels and the value of a sample line, after its metric name and `{`.
fn sample(rest: &str) -> Option<(&str, u64)> {
    let (labels, value) = rest.rsplit_once("} ")?;
    let value = value.trim().parse::<f64>().ok()?;
    Some((labels, value as u64))
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let length = labels[start..].find('"')?;
    Some(&labels[start..start + length])
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_CONFIG: &str =
        "route=\"/collector.v1.CollectorService/GetConfig\",method=\"POST\",class=\"2xx\"";

    fn exposition(stale: u64, buckets: [u64; 4]) -> String {
        let mut text = format!(
            "# TYPE linkmesh_collector_status_changes counter\n\
             linkmesh_collector_status_changes_total{{node=\"1\",from=\"connected\",to=\"stale\"}} {stale}\n\
             linkmesh_collector_status_changes_total{{node=\"1\",from=\"stale\",to=\"connected\"}} 2\n\
             linkmesh_polls_total{{node=\"1\",path=\"local\"}} 99\n\
             linkmesh_http_request_duration_seconds_bucket{{node=\"1\",route=\"/api/v1/collectors\",method=\"GET\",class=\"2xx\",le=\"0.001\"}} 500\n"
        );
        for (bound, count) in ["0.0005", "0.001", "0.005", "+Inf"].iter().zip(buckets) {
            text.push_str(&format!(
                "linkmesh_http_request_duration_seconds_bucket{{node=\"1\",{GET_CONFIG},le=\"{bound}\"}} {count}\n"
            ));
        }
        text
    }

    #[test]
    fn status_changes_and_get_config_buckets_are_read_and_other_series_ignored() {
        let reading = parse(&exposition(3, [10, 20, 30, 30]));
        assert_eq!(reading.status_changes.len(), 2);
        assert_eq!(reading.status_changes["connected -> stale"], 3);
        assert_eq!(reading.status_changes["stale -> connected"], 2);
        assert_eq!(reading.get_config_buckets, [(0.0005, 10), (0.001, 20), (0.005, 30), (f64::INFINITY, 30)]);
    }

    #[test]
    fn the_figures_are_what_grew_between_two_readings() {
        let mut before = parse(&exposition(3, [10, 20, 30, 30]));
        // A second node's series add up.
        before.add(&parse(&exposition(0, [0, 0, 0, 0])));
        let after = parse(&exposition(3, [10, 100, 128, 130]));
        let figures = after.since(&before);
        assert!(figures.status_changes.is_empty(), "nothing grew: {figures:?}");
        assert_eq!(figures.get_config_answered, 100);
        // 80 of the 100 within 1 ms, 98 within 5 ms, 2 beyond.
        assert_eq!(figures.get_config_p50_le_ms, Some(1.0));
        assert_eq!(figures.get_config_p99_le_ms, Some(f64::INFINITY));
        let stale = parse(&exposition(5, [10, 100, 128, 130])).since(&after);
        assert_eq!(stale.status_changes, BTreeMap::from([("connected -> stale".to_owned(), 2)]));
        assert_eq!(stale.get_config_answered, 0);
        assert_eq!(stale.get_config_p99_le_ms, None);
    }

    fn activity(node: u64, written: u64, pending: u64, commit: u64, writes: [u64; 3]) -> String {
        let mut text = format!(
            "linkmesh_activity_updates_written_total{{node=\"{node}\"}} {written}\n\
             linkmesh_activity_pending_updates{{node=\"{node}\"}} {pending}\n\
             linkmesh_raft_commit_index{{node=\"{node}\"}} {commit}\n\
             linkmesh_raft_applied_index{{node=\"{node}\"}} 999999\n"
        );
        for (bound, count) in ["0.005", "0.05", "+Inf"].iter().zip(writes) {
            text.push_str(&format!(
                "linkmesh_activity_write_duration_seconds_bucket{{node=\"{node}\",le=\"{bound}\"}} {count}\n"
            ));
        }
        text
    }

    #[test]
    fn activity_counts_add_over_the_nodes_and_the_commit_index_is_the_highest_seen() {
        let mut before = parse(&activity(1, 100, 0, 500, [10, 10, 10]));
        before.add(&parse(&activity(2, 50, 0, 498, [5, 5, 5])));
        assert_eq!((before.activity_written, before.commit_index), (150, 500));
        let mut after = parse(&activity(1, 1100, 7, 620, [100, 120, 120]));
        after.add(&parse(&activity(2, 550, 3, 621, [50, 54, 55])));
        assert_eq!(after.activity_pending, 10);
        let figures = after.since(&before);
        assert_eq!(figures.activity_updates_written, 1500);
        assert_eq!(figures.activity_writes, 160);
        assert_eq!(figures.raft_entries_committed, 121);
        // 135 of 160 within 5 ms, 159 within 50 ms: the 99th percentile (rank 159) is within 50 ms.
        assert_eq!(figures.activity_write_p99_le_ms, Some(50.0));
        assert_eq!(figures.activity_drained_after_ms, None, "set by the caller that waited");
    }
}
