//! `report.md` of a run: setup, the faults injected, the operations, and each check with its verdict.
//! [`Report::finish`] writes it and returns the failures (the run fails when there is any).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checks::{Availability, FaultRecord, NodeState, WritesReadBack};
use super::workload::Record;

pub struct Report {
    path: PathBuf,
    text: String,
    failures: Vec<String>,
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

impl Report {
    pub fn new(dir: &Path) -> Report {
        Report {
            path: dir.join("report.md"),
            text: "# linkmesh chaos run\n\n".to_owned(),
            failures: Vec::new(),
        }
    }

    pub fn setup(
        &mut self,
        nodes: usize,
        collectors: usize,
        probes: u32,
        writers: u32,
        node_down_after: Duration,
        lease: Duration,
    ) {
        let _ = writeln!(
            self.text,
            "{nodes} nodes, each in its own network namespace; {collectors} simulated collectors; {probes} token \
             probes; {writers} admin writers. `node_down_after` {node_down_after:?}, owner lease {lease:?}, \
             elections after 1–2 s without a leader (the defaults).\n"
        );
    }

    pub fn faults(&mut self, faults: &[FaultRecord]) {
        self.text.push_str("## Faults injected\n\n| kind | at (s) | held (s) | ready again after (s) | what |\n|---|---|---|---|---|\n");
        for fault in faults {
            let _ = writeln!(
                self.text,
                "| {} | {:.1} | {:.1} | {:.1} | {} |",
                fault.kind.name(),
                seconds(fault.start),
                seconds(fault.healed - fault.start),
                seconds(fault.recovered - fault.healed),
                fault.note
            );
        }
        self.text.push('\n');
    }

    pub fn operations(&mut self, record: &Record, simulated: &str) {
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for op in &record.history {
            *counts.entry((op.op, op.outcome)).or_default() += 1;
        }
        let pending = record.history.iter().filter(|op| op.ret.is_none()).count();
        self.text.push_str("## Operations\n\nToken probes (the recorded history):\n\n| op | outcome | count |\n|---|---|---|\n");
        for ((op, outcome), count) in counts {
            let _ = writeln!(self.text, "| {op} | {outcome} | {count} |");
        }
        let _ = writeln!(
            self.text,
            "\n{pending} operations without an answer are kept as pending.\n\nAdmin writes: {} acknowledged, {} with an \
             unknown outcome, {} refused.\n\nSimulated fleet (`linkmesh simulate`):\n\n```\n{}\n```\n",
            record.writes_acked,
            record.writes_unknown,
            record.writes_refused,
            simulated.trim_end()
        );
    }

    pub fn linearizability(&mut self, result: &Result<String, String>) {
        self.text.push_str("## Revocation (linearizability of token validity, porcupine)\n\n");
        match result {
            Ok(summary) => {
                let _ = writeln!(self.text, "PASS\n\n```\n{}\n```\n", summary.trim_end());
            }
            Err(failure) => {
                let _ = writeln!(
                    self.text,
                    "FAIL (see linearizability.html)\n\n```\n{}\n```\n",
                    failure.trim_end()
                );
                self.failures.push("the token history is not linearizable (revocation)".to_owned());
            }
        }
    }

    pub fn writes(&mut self, read_back: &WritesReadBack, acked: u64, unknown: u64, refused: u64) {
        let WritesReadBack { checked, lost, overtaken } = read_back;
        let verdict = if lost.is_empty() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            self.text,
            "## Acknowledged writes\n\n{verdict}: {checked} facts from {acked} acknowledged writes read back on every \
             node ({unknown} writes with an unknown outcome and {refused} refused ones are not checked).\n"
        );
        for item in lost.iter().take(50) {
            let _ = writeln!(self.text, "- {item}");
        }
        if !overtaken.is_empty() {
            let _ = writeln!(
                self.text,
                "\n{} facts show a write with an unknown outcome taking effect after a later acknowledged one \
                 (allowed: an unanswered write may take effect at any time after it was sent):\n",
                overtaken.len()
            );
            for item in overtaken.iter().take(20) {
                let _ = writeln!(self.text, "- {item}");
            }
        }
        if !lost.is_empty() {
            self.failures.push(format!("{} acknowledged facts missing or wrong", lost.len()));
        }
    }

    pub fn availability(&mut self, result: &Availability, bound: Duration, leader_changes: &[i64]) {
        let verdict = if result.violations.is_empty() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            self.text,
            "## Polls through the majority\n\n{verdict}: {} of {} polls with the current token answered ({:.2} %); \
             {} unanswered ones not excused. Excused: {}.\n",
            result.answered,
            result.polls,
            100.0 * result.answered as f64 / result.polls.max(1) as f64,
            result.violations.len(),
            if result.excused.is_empty() {
                "none".to_owned()
            } else {
                result.excused.iter().map(|(reason, count)| format!("{count} {reason}")).collect::<Vec<_>>().join("; ")
            }
        );
        let changes: Vec<String> = leader_changes.iter().map(|at| format!("{:.1}", seconds(*at))).collect();
        let _ = writeln!(
            self.text,
            "The failover bound (lease + `node_down_after` + an election + a probe poll interval): {bound:?}. Leader changes seen \
             at (s): {}.\n",
            changes.join(", ")
        );
        let mut outages: Vec<(&String, &f64)> = result.longest_outage.iter().collect();
        outages.sort_by(|a, b| b.1.total_cmp(a.1));
        let beyond = outages.iter().filter(|(_, outage)| **outage > bound.as_secs_f64()).count();
        let _ = writeln!(
            self.text,
            "{beyond} of {} probe collectors had an outage longer than the failover bound.\n",
            result.longest_outage.len()
        );
        self.text.push_str("Longest outage per collector (the ten longest):\n\n| collector | longest outage (s) | within the bound |\n|---|---|---|\n");
        for (collector, outage) in outages.iter().take(10) {
            let within = if **outage <= bound.as_secs_f64() { "yes" } else { "no" };
            let _ = writeln!(self.text, "| {collector} | {outage:.2} | {within} |");
        }
        self.text.push('\n');
        for violation in result.violations.iter().take(50) {
            let _ = writeln!(self.text, "- {violation}");
        }
        if !result.violations.is_empty() {
            self.failures
                .push(format!("{} polls through the majority went unanswered", result.violations.len()));
        }
    }

    pub fn convergence(&mut self, states: &[Option<NodeState>], converged: bool) {
        let verdict = if converged { "PASS" } else { "FAIL" };
        let _ = writeln!(self.text, "## Convergence\n\n{verdict}\n\n| node | applied index | fleet model digest | slots |\n|---|---|---|---|");
        for (index, state) in states.iter().enumerate() {
            match state {
                Some(state) => {
                    let owners = state.slots.as_array().map_or(0, Vec::len);
                    let _ = writeln!(
                        self.text,
                        "| node-{} | {:?} | {} | {owners} |",
                        index + 1,
                        state.applied_index,
                        &state.digest[..state.digest.len().min(16)]
                    );
                }
                None => {
                    let _ = writeln!(self.text, "| node-{} | did not answer | | |", index + 1);
                }
            }
        }
        self.text.push('\n');
        if !converged {
            self.failures.push(
                "the nodes did not converge (applied index, slot table, fleet model digest)".to_owned(),
            );
        }
    }

    /// Writes the report; returns the failures (a missing fault kind is one).
    pub fn finish(mut self, missing_kinds: &[&str]) -> Vec<String> {
        if !missing_kinds.is_empty() {
            self.failures.push(format!("fault kinds never executed: {}", missing_kinds.join(", ")));
        }
        let verdict = if self.failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL: {}", self.failures.join("; "))
        };
        self.text.insert_str("# linkmesh chaos run\n\n".len(), &format!("**{verdict}**\n\n"));
        std::fs::write(&self.path, &self.text).expect("write report");
        self.failures
    }
}
