//! The servers' own count of collector status changes (`linkmesh_collector_status_changes_total`,
//! from `GET /metrics`), read at the start and the end of the measured phase: a fleet in its steady
//! state changes no status, so the difference is the run's flapping as the servers saw it.

use std::collections::BTreeMap;
use std::time::Duration;

const STATUS_CHANGES: &str = "linkmesh_collector_status_changes_total{";

/// Status changes by `"<from> -> <to>"`, summed over the nodes.
pub type StatusChanges = BTreeMap<String, u64>;

/// The status changes counted so far by every node in `urls`, or why they could not be read (a
/// scrape needs a service-account token, or an address in the server's `metrics.allow_anonymous_from`).
pub async fn status_changes(urls: &[String], token: Option<&str>) -> Result<StatusChanges, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
    let mut total = StatusChanges::new();
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
        for (change, count) in parse(&text) {
            *total.entry(change).or_default() += count;
        }
    }
    Ok(total)
}

/// What changed between two readings (counters only grow; a restarted node would start from 0).
pub fn difference(before: &StatusChanges, after: &StatusChanges) -> StatusChanges {
    after
        .iter()
        .map(|(change, count)| {
            (change.clone(), count.saturating_sub(before.get(change).copied().unwrap_or(0)))
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// The status change samples of one exposition.
fn parse(text: &str) -> StatusChanges {
    let mut changes = StatusChanges::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(STATUS_CHANGES) else { continue };
        let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
        let (Some(from), Some(to)) = (label(labels, "from"), label(labels, "to")) else { continue };
        let Ok(count) = value.trim().parse::<f64>() else { continue };
        *changes.entry(format!("{from} -> {to}")).or_default() += count as u64;
    }
    changes
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let length = labels[start..].find('"')?;
    Some(&labels[start..start + length])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_summed_by_change_and_other_series_ignored() {
        let text = "# HELP linkmesh_collector_status_changes Collector status changes\n\
            # TYPE linkmesh_collector_status_changes counter\n\
            linkmesh_collector_status_changes_total{node=\"1\",from=\"connected\",to=\"stale\"} 3\n\
            linkmesh_collector_status_changes_total{node=\"1\",from=\"stale\",to=\"connected\"} 2\n\
            linkmesh_polls_total{node=\"1\",path=\"local\"} 99\n";
        let parsed = parse(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["connected -> stale"], 3);
        assert_eq!(parsed["stale -> connected"], 2);
    }

    #[test]
    fn the_difference_keeps_only_what_grew() {
        let before = StatusChanges::from([("a -> b".to_owned(), 5), ("b -> a".to_owned(), 1)]);
        let after = StatusChanges::from([("a -> b".to_owned(), 5), ("b -> a".to_owned(), 4)]);
        assert_eq!(difference(&before, &after), StatusChanges::from([("b -> a".to_owned(), 3)]));
    }
}
