//! The summary table printed on stderr at the end of a run: per phase, each kind of call it made (polls,
//! pushes, registers; creates and mints while provisioning) per node beside the totals (requests,
//! errors, p50/p99), the errors by kind under the node that answered them, and the routing legend once.
//! Pure: it renders [`PhaseSummary`]s, the same figures as the JSON.

use super::nodes::ROUTING_LEGEND;
use super::stats::{CallSummary, PhaseSummary};

/// The call kinds that get columns when a phase made them, in this order.
const COLUMNS: [(&str, &str); 7] = [
    ("get_config", "polls"),
    ("own_metrics", "pushes"),
    ("register", "registers"),
    ("create_collector", "creates"),
    ("mint_token", "mints"),
    ("find_collector", "lookups"),
    ("decode", "decodes"),
];

fn cells(call: Option<&CallSummary>) -> String {
    let Some(call) = call else {
        return format!("{:>9} {:>7} {:>8} {:>8}", "-", "-", "-", "-");
    };
    let (p50, p99) = call.latency.map_or(("-".to_owned(), "-".to_owned()), |l| {
        (format!("{:.2}", l.p50_ms), format!("{:.2}", l.p99_ms))
    });
    format!("{:>9} {:>7} {:>8} {:>8}", call.requests, call.errors, p50, p99)
}

/// The tables of the phases that ran, then the legend when calls were spread over nodes.
pub fn render_all(phases: &[(&str, &PhaseSummary)]) -> String {
    let mut out = String::new();
    for (name, phase) in phases {
        out.push_str(&render(name, phase));
        out.push('\n');
    }
    if phases.iter().any(|(_, phase)| phase.nodes.len() > 1) {
        out.push_str(&format!("legend: {ROUTING_LEGEND}\n"));
    }
    out
}

/// The table of one phase (`name`: `run`, `start-up`, `provisioning`).
pub fn render(name: &str, phase: &PhaseSummary) -> String {
    let columns: Vec<(&str, &str)> =
        COLUMNS.into_iter().filter(|(kind, _)| phase.calls.contains_key(kind)).collect();
    let width = phase.nodes.iter().map(|node| node.url.len()).max().unwrap_or(0).max(8);
    let mut out = format!("{name} ({:.1}s, {} collectors up)\n", phase.elapsed_s, phase.collectors_up);
    let mut header = format!("{:<width$}", "node");
    for (_, label) in &columns {
        header.push_str(&format!(" | {:>9} {:>7} {:>8} {:>8}", label, "errors", "p50 ms", "p99 ms"));
    }
    header.push_str(" | retried");
    out.push_str(header.trim_end());
    out.push('\n');
    for node in &phase.nodes {
        let mut row = format!("{:<width$}", node.url);
        for (kind, _) in &columns {
            row.push_str(&format!(" | {}", cells(node.calls.get(kind))));
        }
        row.push_str(" |       -");
        out.push_str(&row);
        out.push('\n');
    }
    let mut total = format!("{:<width$}", "total");
    for (kind, _) in &columns {
        total.push_str(&format!(" | {}", cells(phase.calls.get(kind))));
    }
    let retried: u64 = phase.calls.values().map(|call| call.retried).sum();
    total.push_str(&format!(" | {retried:>7}"));
    out.push_str(&total);
    out.push('\n');
    for node in &phase.nodes {
        if !node.errors.is_empty() {
            let errors: Vec<String> =
                node.errors.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
            out.push_str(&format!("errors at {}: {}\n", node.url, errors.join(", ")));
        }
    }
    if !phase.errors.is_empty() {
        let errors: Vec<String> =
            phase.errors.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
        out.push_str(&format!("errors after retry: {}\n", errors.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::simulate::stats::{CallKind, Outcome, Stats};

    #[test]
    fn a_table_has_a_row_per_node_the_totals_and_the_errors_where_they_happened() {
        let stats = Stats::for_nodes(&["http://10.0.0.1:8080".to_owned(), "http://10.0.0.2:8080".to_owned()]);
        stats.node(0).expect("node 1").success(
            CallKind::GetConfig,
            Outcome::NotModified,
            Duration::from_millis(2),
        );
        stats.node(1).expect("node 2").failure(CallKind::GetConfig, "connect");
        stats.success(CallKind::GetConfig, Outcome::NotModified, Duration::from_millis(3));
        stats.retried(CallKind::GetConfig);
        let table = render("run", &stats.summary(Duration::from_secs(1)));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("node") && lines[1].contains("polls"), "{table}");
        assert!(!lines[1].contains("pushes"), "only the kinds the phase made: {table}");
        assert!(
            lines[2].starts_with("http://10.0.0.1:8080 |         1       0     2.00     2.00 |"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("http://10.0.0.2:8080 |         1       1        -        - |"),
            "{table}"
        );
        assert!(lines[4].starts_with("total") && lines[4].ends_with("|       1"), "{table}");
        assert!(table.contains("errors at http://10.0.0.2:8080: get_config:connect 1"), "{table}");
        let all = render_all(&[("run", &stats.summary(Duration::from_secs(1)))]);
        assert_eq!(all.matches("legend: each call goes to a node picked at random").count(), 1, "{all}");
    }
}
