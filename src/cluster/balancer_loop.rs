//! The leader's balancer driver: keeps the slot table spread evenly over the members that may own
//! slots, moves the slots of a member that is down or draining, and removes a drained member.
//!
//! Runs on every node and acts only on the leader, every [`STEP_INTERVAL`] (or at once when woken by
//! a rebalance, a drain or the end of a transfer). Each step proposes at most one bounded batch
//! ([`MAX_MOVES_PER_STEP`]) from `model/balancer.rs::next_moves` as `Command::MoveSlots` and waits
//! until it applied, so a step never overlaps the next and never loops hot. Idempotent: the batch is
//! computed from the replicated table and membership (plus the leader's own contact times), so a new
//! leader picks up where the last one stopped.
//!
//! Down members (`cluster/lease.rs` rule 3): no contact through the peer pool for
//! `cluster.node_down_after` on the leader's clock, counting its own election as contact with
//! everyone; by then the member's lease has surely ended (the lease module's margin), so its slots may
//! move. Serving members: voters and learners that are not down, not draining and have caught up with
//! the log (a learner still replaying gets slots once it can serve them).

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;

use super::admin::AdminCall;
use super::lease::PeerContacts;
use super::promoter::CAUGHT_UP_WITHIN;
use crate::model::balancer::{next_moves, SlotMembers};
use crate::model::{Command, SlotMoveReason, UnixMillis};
use crate::raft::membership::{matched_index, RaftMetrics};
use crate::raft::RaftNode;

/// How often the leader looks at the spread.
const STEP_INTERVAL: Duration = Duration::from_millis(500);
/// Slot moves per proposed batch: activation on the receivers stays smooth.
pub const MAX_MOVES_PER_STEP: usize = 64;
/// A wait that overran its interval by this much means the leader itself did not run.
const STALL: Duration = Duration::from_secs(2);
/// After a failed proposal or membership change, the driver skips this many steps.
const BACKOFF_STEPS: u32 = 4;
/// How long a graceful move waits for a giving owner to commit what its actors hold back.
const FLUSH_BEFORE_MOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts the driver on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, runtime: &tokio::runtime::Handle) {
    runtime.spawn(run(raft));
}

/// The leader's contact view, reset at each new term this node leads.
struct Leading {
    term: u64,
    contacts: PeerContacts,
}

async fn run(raft: RaftNode) {
    let mut leading: Option<Leading> = None;
    let mut skip = 0u32;
    loop {
        let ownership = raft.ownership().clone();
        let waiting_since = tokio::time::Instant::now();
        tokio::select! {
            () = tokio::time::sleep(STEP_INTERVAL) => {}
            () = ownership.woken() => { skip = 0; }
        }
        if raft.storage_health().failure().is_some() {
            return;
        }
        let metrics = raft.metrics();
        if metrics.current_leader != Some(raft.node_id()) {
            leading = None;
            ownership.set_down(BTreeSet::new());
            continue;
        }
        let now = tokio::time::Instant::now().into_std();
        let state = leading.get_or_insert_with(|| Leading {
            term: metrics.current_term,
            contacts: PeerContacts::new(ownership.timings(), now),
        });
        // A new term, or a leader that was itself stalled (a pause, SIGSTOP: the wait above overran by
        // far): its peers went unheard because it did not run, so it counts from now, as if just
        // elected (later is the safe side).
        let stalled =
            tokio::time::Instant::now().saturating_duration_since(waiting_since) > STEP_INTERVAL + STALL;
        if state.term != metrics.current_term || stalled {
            *state =
                Leading { term: metrics.current_term, contacts: PeerContacts::new(ownership.timings(), now) };
        }
        let members: BTreeSet<u64> =
            metrics.membership_config.membership().nodes().map(|(id, _)| *id).collect();
        for member in &members {
            if let Some(at) = raft.peers().last_contact(*member) {
                state.contacts.heard(*member, at.into_std());
            }
        }
        let mut others = members.clone();
        others.remove(&raft.node_id());
        let down = state.contacts.down_among(&others, now);
        ownership.set_down(down.clone());
        ownership.retain_draining(&members);
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if ownership.transferring(now) {
            continue;
        }
        let slot_members = SlotMembers {
            serving: caught_up(&metrics, &members).difference(&down).copied().collect(),
            draining: ownership.draining(),
            down,
        };
        if !step(&raft, &slot_members).await {
            skip = BACKOFF_STEPS;
            continue;
        }
        if !remove_drained(&raft, &metrics, &slot_members.draining).await {
            skip = BACKOFF_STEPS;
        }
    }
}

/// Members whose log is within [`CAUGHT_UP_WITHIN`] of the leader's (the leader itself included).
fn caught_up(metrics: &RaftMetrics, members: &BTreeSet<u64>) -> BTreeSet<u64> {
    let last = metrics.last_log_index.unwrap_or(0);
    members
        .iter()
        .copied()
        .filter(|member| {
            *member == metrics.id
                || matched_index(metrics, *member).is_some_and(|matched| matched + CAUGHT_UP_WITHIN >= last)
        })
        .collect()
}

/// Proposes the next batch, if any; false when the proposal failed.
async fn step(raft: &RaftNode, members: &SlotMembers) -> bool {
    let plan = {
        let state = raft.state();
        next_moves(&state.fleet.slots, members, MAX_MOVES_PER_STEP)
    };
    if plan.moves.is_empty() {
        return true;
    }
    let moves = plan.moves.len();
    let receivers: BTreeSet<u64> = plan.moves.iter().map(|planned| planned.to).collect();
    let givers: BTreeSet<u64> = plan.moves.iter().map(|planned| planned.from).collect();
    let reason = plan.reason;
    if reason != SlotMoveReason::NodeDown {
        flush_before_moving(raft, &plan.moves).await;
    }
    match raft.propose(Command::MoveSlots { moves: plan.moves, reason, at: UnixMillis::now() }).await {
        Ok(()) => {
            tracing::info!(moves, reason = ?reason, from = ?givers, to = ?receivers, "slots moved");
            true
        }
        Err(error) => {
            tracing::warn!(moves, reason = ?reason, error = %error, "slot moves not applied; trying again later");
            false
        }
    }
}

/// A graceful move first asks each giving owner to commit what its actors of those slots hold back
/// (status, events, effective configs waiting for their interval): once the move applies, their writes
/// carry a stale epoch and are fenced off. Bounded: a giver that does not answer in time (it may be
/// slow, or about to be called down) does not hold the move up; what it held is then lost to the
/// fence, as on a node's failure. (Activity between this flush and the move's commit is still fenced:
/// a window of one Raft round.)
async fn flush_before_moving(raft: &RaftNode, moves: &[crate::model::SlotMove]) {
    let mut by_giver: std::collections::BTreeMap<u64, Vec<usize>> = std::collections::BTreeMap::new();
    for planned in moves {
        by_giver.entry(planned.from).or_default().push(planned.slot);
    }
    let flushes = by_giver.into_iter().map(|(giver, slots)| async move {
        let count = slots.len();
        let call = crate::cluster::admin::call_node(raft, giver, AdminCall::FlushSlots { slots });
        match tokio::time::timeout(FLUSH_BEFORE_MOVE_TIMEOUT, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(giver, slots = count, error = %error, "flush before a slot move failed")
            }
            Err(_) => tracing::warn!(giver, slots = count, "flush before a slot move timed out"),
        }
    });
    futures_util::future::join_all(flushes).await;
}

/// Removes draining members that hold no slot any more (one at a time); false when a change failed.
async fn remove_drained(raft: &RaftNode, metrics: &RaftMetrics, draining: &BTreeSet<u64>) -> bool {
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return true;
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let empty = {
        let state = raft.state();
        draining.iter().copied().find(|node| state.fleet.slots.slots_of(*node).is_empty())
    };
    let Some(node) = empty else { return true };
    if node == raft.node_id() {
        // The leader never removes itself: leadership moves first (`POST /api/v1/cluster/leader`).
        return true;
    }
    let change = if voters.contains(&node) {
        if voters.len() <= 1 {
            return true;
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([node]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([node]))
    };
    let openraft = raft.openraft().clone();
    let changed =
        tokio::time::timeout(Duration::from_secs(10), openraft.change_membership(change, false)).await;
    match changed {
        Ok(Ok(_)) => {
            tracing::info!(node_id = node, "drained member removed from the cluster");
            true
        }
        Ok(Err(error)) => {
            tracing::warn!(node_id = node, error = %error, "removing a drained member failed; trying again later");
            false
        }
        Err(_elapsed) => {
            tracing::warn!(node_id = node, "removing a drained member timed out; trying again later");
            false
        }
    }
}

impl RaftNode {
    /// Whether this node may serve polls, registers and pushes for the slots it owns now: a
    /// one-member cluster always may (it is its own quorum); otherwise only under a live owner lease.
    pub fn may_serve_slots(&self) -> bool {
        let sole_member = {
            let metrics = self.openraft().metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let mut nodes = membership.nodes().map(|(id, _)| *id);
            match (nodes.next(), nodes.next()) {
                (None, _) => true,
                (Some(only), None) => only == self.node_id(),
                _ => false,
            }
        };
        sole_member || self.ownership().lease_may_serve(tokio::time::Instant::now().into_std())
    }
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

    #[test]
    fn only_members_within_reach_of_the_log_may_take_slots_and_the_leader_always_may() {
        let nodes: BTreeMap<u64, NodeInfo> = (1..=4).map(|id| (id, NodeInfo::default())).collect();
        let membership = openraft::Membership::new(vec![[1, 2, 3].into()], nodes);
        let mut metrics = RaftMetrics::new_initial(1);
        metrics.current_leader = Some(1);
        metrics.last_log_index = Some(1000);
        metrics.membership_config = Arc::new(openraft::StoredMembership::new(Some(log_id(5)), membership));
        metrics.replication = Some(BTreeMap::from([
            (1, Some(log_id(1000))),
            (2, Some(log_id(1000 - CAUGHT_UP_WITHIN))),
            (3, Some(log_id(1000 - CAUGHT_UP_WITHIN - 1))),
            (4, None),
        ]));
        let members = BTreeSet::from([1, 2, 3, 4]);
        assert_eq!(caught_up(&metrics, &members), BTreeSet::from([1, 2]));
        metrics.replication = None;
        assert_eq!(
            caught_up(&metrics, &members),
            BTreeSet::from([1]),
            "no replication figures: the leader only"
        );
    }
}
