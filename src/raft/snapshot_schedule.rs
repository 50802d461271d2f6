//! When this node takes its next snapshot.
//!
//! A snapshot costs the whole state (2 s of CPU and 829 MiB written at a million collectors), the log
//! behind it only what was logged. openraft 0.9's policy counts entries alone, so at a million
//! collectors it rebuilt the whole state every few MiB of log; and since every member logs the same
//! entries, all members built at the same index, at the same moment. The schedule here replaces it
//! (openraft's policy is `Never`; `raft/node.rs` asks for a snapshot when [`SnapshotSchedule`] says so):
//!
//! - after `raft.snapshot_after_logs` entries, **if** the log since the last snapshot is also at least
//!   `raft.snapshot_log_ratio` of that snapshot's size, so that the cost per logged byte stays bounded
//!   whatever the state's size (a small state behaves as before: its snapshot is smaller than the log);
//! - or once that log reaches `raft.snapshot_after_bytes`, whatever the state, which bounds the disk it
//!   takes and the replay at start;
//! - both thresholds stretched by a factor drawn from `[1, 1 + raft.snapshot_jitter)` for every
//!   snapshot, so that the members of a cluster drift apart instead of building together.
//!
//! The counts survive a restart: the state machine counts the log after its snapshot when it opens.

use parking_lot::Mutex;

use crate::config::RaftSettings;

/// The settings the schedule follows (from `[raft]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotRules {
    pub after_logs: u64,
    pub after_bytes: u64,
    pub log_ratio: f64,
    pub jitter: f64,
}

impl SnapshotRules {
    /// Never due: what a store has until its node sets the rules (tools that open a store offline).
    pub const NEVER: SnapshotRules =
        SnapshotRules { after_logs: u64::MAX, after_bytes: u64::MAX, log_ratio: 0.0, jitter: 0.0 };

    pub fn from_settings(settings: &RaftSettings) -> SnapshotRules {
        SnapshotRules {
            after_logs: settings.snapshot_after_logs,
            after_bytes: u64::try_from(settings.snapshot_after_bytes).unwrap_or(u64::MAX),
            log_ratio: settings.snapshot_log_ratio,
            jitter: settings.snapshot_jitter,
        }
    }
}

#[derive(Debug)]
struct Counts {
    rules: SnapshotRules,
    /// Log entries and their bytes since the last snapshot (or since it was asked for).
    entries: u64,
    bytes: u64,
    /// The size of the last snapshot file, 0 before the first.
    snapshot_bytes: u64,
    /// This cycle's factor in `[1, 1 + jitter)`.
    stretch: f64,
}

impl Counts {
    fn due(&self) -> bool {
        let stretched = |threshold: f64| threshold * self.stretch;
        let (entries, bytes) = (self.entries as f64, self.bytes as f64);
        bytes >= stretched(self.rules.after_bytes as f64)
            || (entries >= stretched(self.rules.after_logs as f64)
                && bytes >= stretched(self.snapshot_bytes as f64 * self.rules.log_ratio))
    }

    fn restart_cycle(&mut self, draw: f64) {
        self.entries = 0;
        self.bytes = 0;
        self.stretch = 1.0 + self.rules.jitter * draw.clamp(0.0, 1.0);
    }
}

/// The counts since the last snapshot and the rules that make the next one due. Shared by the log
/// store (which counts), the state machine (which records snapshots) and the node's trigger task.
#[derive(Debug)]
pub struct SnapshotSchedule {
    counts: Mutex<Counts>,
    pub due: tokio::sync::Notify,
}

impl Default for SnapshotSchedule {
    fn default() -> Self {
        SnapshotSchedule {
            counts: Mutex::new(Counts {
                rules: SnapshotRules::NEVER,
                entries: 0,
                bytes: 0,
                snapshot_bytes: 0,
                stretch: 1.0,
            }),
            due: tokio::sync::Notify::new(),
        }
    }
}

impl SnapshotSchedule {
    pub fn set_rules(&self, rules: SnapshotRules) {
        let mut counts = self.counts.lock();
        counts.rules = rules;
        counts.stretch = 1.0 + rules.jitter * rand::random::<f64>();
        if counts.due() {
            self.due.notify_one();
        }
    }

    /// What the store held when it opened: the log after its snapshot, and that snapshot's size.
    pub fn restore(&self, entries: u64, bytes: u64, snapshot_bytes: u64) {
        let mut counts = self.counts.lock();
        counts.entries = entries;
        counts.bytes = bytes;
        counts.snapshot_bytes = snapshot_bytes;
    }

    /// Counts an append; wakes the trigger once a snapshot is due.
    pub fn note_logged(&self, entries: u64, bytes: u64) {
        let mut counts = self.counts.lock();
        counts.entries = counts.entries.saturating_add(entries);
        counts.bytes = counts.bytes.saturating_add(bytes);
        if counts.due() {
            self.due.notify_one();
        }
    }

    /// Whether a snapshot is due; if so, counts from zero again (the snapshot it asks for covers the
    /// log counted so far).
    pub fn take_due(&self) -> bool {
        let mut counts = self.counts.lock();
        if !counts.due() {
            return false;
        }
        counts.restart_cycle(rand::random::<f64>());
        true
    }

    /// A snapshot of `snapshot_bytes` was recorded (built here or received): the log before it no
    /// longer counts, and the next one is measured against its size.
    pub fn note_snapshot(&self, snapshot_bytes: u64) {
        let mut counts = self.counts.lock();
        counts.snapshot_bytes = snapshot_bytes;
        counts.restart_cycle(rand::random::<f64>());
    }

    #[cfg(test)]
    fn with(rules: SnapshotRules, snapshot_bytes: u64, draw: f64) -> SnapshotSchedule {
        let schedule = SnapshotSchedule::default();
        let mut counts = schedule.counts.lock();
        counts.rules = rules;
        counts.snapshot_bytes = snapshot_bytes;
        counts.restart_cycle(draw);
        drop(counts);
        schedule
    }
}

#[cfg(test)]
mod tests {
    use super::{SnapshotRules, SnapshotSchedule};

    const MIB: u64 = 1 << 20;
    const RULES: SnapshotRules =
        SnapshotRules { after_logs: 5_000, after_bytes: 256 * MIB, log_ratio: 0.5, jitter: 0.5 };

    #[test]
    fn a_small_state_is_snapshotted_every_snapshot_after_logs_entries() {
        let schedule = SnapshotSchedule::with(RULES, 100 << 10, 0.0);
        schedule.note_logged(4_999, MIB);
        assert!(!schedule.take_due());
        schedule.note_logged(1, 100);
        assert!(schedule.take_due());
        assert!(!schedule.take_due(), "counts start again once a snapshot is asked for");
    }

    #[test]
    fn a_large_state_waits_for_a_log_of_half_its_snapshot() {
        let schedule = SnapshotSchedule::with(RULES, 400 * MIB, 0.0);
        schedule.note_logged(50_000, 199 * MIB);
        assert!(!schedule.take_due(), "ten times the entries, but a log under half the snapshot");
        schedule.note_logged(1, MIB);
        assert!(schedule.take_due());
    }

    #[test]
    fn snapshot_after_bytes_bounds_the_log_whatever_the_state() {
        let schedule = SnapshotSchedule::with(RULES, 4_000 * MIB, 0.0);
        schedule.note_logged(10, 255 * MIB);
        assert!(!schedule.take_due());
        schedule.note_logged(1, MIB);
        assert!(schedule.take_due(), "the log reached snapshot_after_bytes");
    }

    #[test]
    fn the_jitter_stretches_both_thresholds() {
        let schedule = SnapshotSchedule::with(RULES, 0, 1.0);
        schedule.note_logged(7_499, 383 * MIB);
        assert!(!schedule.take_due(), "stretched by 1.5: 7,500 entries or 384 MiB");
        schedule.note_logged(1, 0);
        assert!(schedule.take_due());
        let schedule = SnapshotSchedule::with(RULES, 0, 1.0);
        schedule.note_logged(1, 384 * MIB);
        assert!(schedule.take_due());
    }

    #[test]
    fn members_that_log_the_same_entries_do_not_all_build_at_once() {
        let members: Vec<SnapshotSchedule> = (0..3)
            .map(|_| {
                let schedule = SnapshotSchedule::default();
                schedule.set_rules(RULES);
                schedule
            })
            .collect();
        // The same entries reach every member; at which entry each one asks for a snapshot.
        let mut firsts = Vec::new();
        for _ in 0..50 {
            let mut asked_at = [0u64; 3];
            for entry in 1..=10_000u64 {
                for (member, schedule) in members.iter().enumerate() {
                    if asked_at[member] > 0 {
                        continue;
                    }
                    schedule.note_logged(1, 100);
                    if schedule.take_due() {
                        asked_at[member] = entry;
                        schedule.note_snapshot(1 << 10);
                    }
                }
                if asked_at.iter().all(|&at| at > 0) {
                    break;
                }
            }
            // The first whole entry at or past 5 000 × [1, 1.5): 7 500 itself when the draw is close to 1.5.
            assert!(asked_at.iter().all(|&at| (5_000..=7_500).contains(&at)), "{asked_at:?}");
            firsts.push(asked_at);
        }
        let together = firsts.iter().filter(|at| at[0] == at[1] && at[1] == at[2]).count();
        assert!(together < 5, "{together} of 50 cycles had all three members build at the same entry");
    }

    #[test]
    fn a_restored_count_makes_a_snapshot_due_after_a_restart() {
        let schedule = SnapshotSchedule::default();
        schedule.restore(6_000, MIB, 10 << 10);
        schedule.set_rules(SnapshotRules { jitter: 0.0, ..RULES });
        assert!(schedule.take_due(), "the log replayed at start counts");
    }
}
