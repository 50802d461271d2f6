//! Raft figures from openraft's metrics watch: a task that follows every change, so a leader change
//! between two scrapes is still counted (a scrape-time sample would miss it).

use std::sync::Arc;

use openraft::{RaftMetrics, ServerState};
use tokio::sync::watch;

use super::{index_value, NodeMetrics};

/// Counts leader changes: every time a known leader differs from the last known one. A stretch
/// without a leader (an election) is not a change by itself; re-electing the same node is not one.
#[derive(Debug, Default)]
pub struct LeaderTracker {
    last_known: Option<u64>,
}

impl LeaderTracker {
    /// Whether `leader` is a change from the last known leader (the first leader seen is one).
    pub fn observe(&mut self, leader: Option<u64>) -> bool {
        match leader {
            Some(leader) if self.last_known != Some(leader) => {
                self.last_known = Some(leader);
                true
            }
            _ => false,
        }
    }
}

/// Copies one openraft snapshot into the gauges; counts a leader change.
pub fn record<N: openraft::Node>(
    metrics: &NodeMetrics,
    tracker: &mut LeaderTracker,
    raft: &RaftMetrics<u64, N>,
) {
    let gauges = metrics.raft();
    gauges.term.set(index_value(Some(raft.current_term)));
    gauges.last_log_index.set(index_value(raft.last_log_index));
    gauges.applied_index.set(index_value(raft.last_applied.map(|log_id| log_id.index)));
    gauges.is_leader.set(i64::from(raft.state == ServerState::Leader));
    if tracker.observe(raft.current_leader) {
        gauges.leader_changes.inc();
    }
}

/// Follows `watch` until openraft drops it (shutdown). Run it on the Raft runtime.
pub async fn follow<N: openraft::Node>(
    mut watch: watch::Receiver<RaftMetrics<u64, N>>,
    metrics: Arc<NodeMetrics>,
) {
    let mut tracker = LeaderTracker::default();
    loop {
        record(&metrics, &mut tracker, &watch.borrow_and_update());
        if watch.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_change_is_counted_once_and_an_election_gap_is_not_one() {
        let mut tracker = LeaderTracker::default();
        let seen: Vec<bool> = [None, Some(1), Some(1), None, Some(1), None, Some(2), Some(2), Some(3)]
            .into_iter()
            .map(|leader| tracker.observe(leader))
            .collect();
        assert_eq!(seen, [false, true, false, false, false, false, true, false, true]);
    }

    #[test]
    fn a_snapshot_sets_the_gauges() {
        let metrics = NodeMetrics::new(3, super::super::log_flush_histogram());
        let mut tracker = LeaderTracker::default();
        let mut raft = RaftMetrics::<u64, openraft::EmptyNode>::new_initial(3);
        raft.current_term = 4;
        raft.last_log_index = Some(12);
        raft.last_applied = Some(openraft::LogId::new(openraft::CommittedLeaderId::new(4, 3), 11));
        raft.state = ServerState::Leader;
        raft.current_leader = Some(3);
        record(&metrics, &mut tracker, &raft);
        record(&metrics, &mut tracker, &raft);
        let gauges = metrics.raft();
        assert_eq!((gauges.term.get(), gauges.last_log_index.get(), gauges.applied_index.get()), (4, 12, 11));
        assert_eq!((gauges.is_leader.get(), gauges.leader_changes.get()), (1, 1));
    }
}
