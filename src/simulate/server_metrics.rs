//! What the servers themselves counted during the measured phase, read from their `GET /metrics` at
//! its start and its end: the collector status changes (`linkmesh_collector_status_changes_total`; a
//! fleet in its steady state changes no status, so the difference is the run's flapping as the servers
//! saw it) and the time they took to answer GetConfig (`linkmesh_http_request_duration_seconds`,
//! beside the simulator's round trips).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

const STATUS_CHANGES: &str = "linkmesh_collector_status_changes_total{";
const HANDLING_BUCKET: &str = "linkmesh_http_request_duration_seconds_bucket{";
const GET_CONFIG_ROUTE: &str = "route=\"/collector.v1.CollectorService/GetConfig\"";

/// One reading of every node's counters, summed over the nodes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    /// Status changes by `"<from> -> <to>"`.
    pub status_changes: BTreeMap<String, u64>,
    /// GetConfig answers by the upper bound of their handling-time bucket (seconds, cumulative, as
    /// the histogram exposes them; `f64::INFINITY` last).
    pub get_config_buckets: Vec<(f64, u64)>,
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
        let buckets: Vec<(f64, u64)> = self
            .get_config_buckets
            .iter()
            .map(|(bound, count)| {
                let earlier = before
                    .get_config_buckets
                    .iter()
                    .find(|(other, _)| other == bound)
                    .map_or(0, |(_, count)| *count);
                (*bound, count.saturating_sub(earlier))
            })
            .collect();
        let answered = buckets.last().map_or(0, |(_, count)| *count);
        let quantile = |q: f64| {
            let rank = (q * answered as f64).ceil().max(1.0) as u64;
            (answered > 0)
                .then(|| buckets.iter().find(|(_, count)| *count >= rank).map(|(bound, _)| bound * 1000.0))
                .flatten()
        };
        ServerFigures {
            status_changes,
            get_config_answered: answered,
            get_config_p50_le_ms: quantile(0.50),
            get_config_p99_le_ms: quantile(0.99),
        }
    }
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
        format!(
            "status changes during the run (the servers' count): {changes}\n\
             GetConfig handling on the servers: {} answered, p50 {}, p99 {}\n",
            self.get_config_answered,
            bound(self.get_config_p50_le_ms),
            bound(self.get_config_p99_le_ms)
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
            let bound = match label(labels, "le") {
                Some("+Inf") => f64::INFINITY,
                Some(bound) => match bound.parse::<f64>() {
                    Ok(bound) => bound,
                    Err(_) => continue,
                },
                None => continue,
            };
            add_bucket(&mut reading.get_config_buckets, bound, count);
        }
    }
    reading
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
}
