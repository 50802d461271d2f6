//! The leader's promoter: a learner that has caught up becomes a voter while the cluster has fewer
//! than `cluster.max_voters` voters; further nodes stay learners (they serve and own slots, they do
//! not vote).
//!
//! Runs on every node and acts only on the leader, once per [`CHECK_INTERVAL`], one promotion at a
//! time (each waits until its membership change committed), so it never loops hot and never has two
//! changes in flight. Idempotent: it looks only at the current membership, so a new leader picks up
//! where the last one stopped.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::raft::membership::RaftMetrics;
use crate::raft::RaftNode;

const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// A learner whose replicated log is within this many entries of the leader's last one has caught up.
pub const CAUGHT_UP_WITHIN: u64 = 64;
/// After a failed promotion, the promoter waits this many checks before trying again.
const BACKOFF_CHECKS: u32 = 5;

/// Starts the promoter on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, max_voters: usize, runtime: &tokio::runtime::Handle) {
    runtime.spawn(run(raft, max_voters));
}

async fn run(raft: RaftNode, max_voters: usize) {
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skip = 0u32;
    loop {
        interval.tick().await;
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if raft.storage_health().failure().is_some() {
            return;
        }
        if !raft.is_leader() {
            continue;
        }
        let Some(learner) = next_promotion(&raft.metrics(), max_voters) else { continue };
        tracing::info!(node_id = learner, max_voters, "promoting a caught-up learner to voter");
        match raft.promote(learner).await {
            Ok(()) => tracing::info!(node_id = learner, "learner promoted to voter"),
            Err(error) => {
                tracing::warn!(node_id = learner, error = %error, "promotion failed; trying again later");
                skip = BACKOFF_CHECKS;
            }
        }
    }
}

/// Pure: the learner to promote now, if any — only on a leader, outside a joint configuration, while
/// voters < `max_voters`; among caught-up learners the one furthest along (then the lowest id).
pub fn next_promotion(metrics: &RaftMetrics, max_voters: usize) -> Option<u64> {
    if metrics.current_leader != Some(metrics.id) {
        return None;
    }
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return None;
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    if voters.len() >= max_voters {
        return None;
    }
    let replication = metrics.replication.as_ref()?;
    let last = metrics.last_log_index.unwrap_or(0);
    membership
        .learner_ids()
        .filter_map(|learner| {
            let matched = replication.get(&learner).copied().flatten()?.index;
            (matched + CAUGHT_UP_WITHIN >= last).then_some((matched, learner))
        })
        .max_by_key(|(matched, learner)| (*matched, std::cmp::Reverse(*learner)))
        .map(|(_, learner)| learner)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::raft::NodeInfo;

    fn log_id(index: u64) -> openraft::LogId<u64> {
        openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index)
    }

    /// Leader 1; voters as given; every other node of 1..=5 a learner; matched indexes as given.
    fn metrics(voters: &[u64], matched: &[(u64, Option<u64>)]) -> RaftMetrics {
        let nodes: BTreeMap<u64, NodeInfo> = (1..=5).map(|id| (id, NodeInfo::default())).collect();
        let membership = openraft::Membership::new(vec![voters.iter().copied().collect()], nodes);
        let mut metrics = RaftMetrics::new_initial(1);
        metrics.current_leader = Some(1);
        metrics.last_log_index = Some(1000);
        metrics.membership_config = Arc::new(openraft::StoredMembership::new(Some(log_id(5)), membership));
        metrics.replication =
            Some(matched.iter().map(|(id, index)| (*id, index.map(log_id))).collect::<BTreeMap<_, _>>());
        metrics
    }

    #[test]
    fn a_caught_up_learner_is_promoted_and_a_lagging_one_is_not() {
        let lagging = metrics(&[1], &[(1, Some(1000)), (2, Some(10)), (3, None)]);
        assert_eq!(next_promotion(&lagging, 5), None);
        let caught_up = metrics(&[1], &[(1, Some(1000)), (2, Some(990)), (3, Some(1000))]);
        assert_eq!(next_promotion(&caught_up, 5), Some(3), "the one furthest along first");
        let tie = metrics(&[1], &[(1, Some(1000)), (2, Some(1000)), (3, Some(1000))]);
        assert_eq!(next_promotion(&tie, 5), Some(2), "then the lowest id");
    }

    #[test]
    fn no_promotion_beyond_max_voters_or_off_the_leader() {
        let full = metrics(&[1, 2, 3], &[(4, Some(1000)), (5, Some(1000))]);
        assert_eq!(next_promotion(&full, 3), None);
        assert_eq!(next_promotion(&full, 4), Some(4));
        let mut follower = metrics(&[1], &[(2, Some(1000))]);
        follower.current_leader = Some(2);
        assert_eq!(next_promotion(&follower, 5), None);
    }
}
