//! Membership on top of openraft: adding a learner, promoting it to voter, and the cluster as this
//! node sees it (the figures of `GET /api/v1/cluster`).
//!
//! Figures only the leader knows (replication lag) are filled on the leader; a follower leaves them
//! empty (`None`), and its caller may ask the leader for them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};

use super::node::RaftNode;
use super::types::NodeInfo;
use crate::model::{FleetState, SLOT_COUNT};

/// A membership change waits at most this long for its entry to commit.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

pub type RaftMetrics = openraft::RaftMetrics<u64, NodeInfo>;

/// The last log index the leader knows `node_id` holds; `None` off the leader or before its first answer.
pub fn matched_index(metrics: &RaftMetrics, node_id: u64) -> Option<u64> {
    metrics.replication.as_ref()?.get(&node_id).copied().flatten().map(|log_id| log_id.index)
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("node {0} is already a member")]
    AlreadyMember(u64),
    #[error("node {0} is not a learner of this cluster")]
    NotALearner(u64),
    #[error("the membership change may or may not have committed: {0}")]
    OutcomeUnknown(String),
    /// Another membership change (a promotion, a removal) has not committed yet; nothing changed.
    #[error("another membership change is still in progress: {0}")]
    ChangeInProgress(String),
}

/// A member's role in the membership: it votes, or it only receives the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    Voter,
    Learner,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "voter",
            MemberRole::Learner => "learner",
        }
    }
}

/// One member as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: u64,
    pub info: NodeInfo,
    pub role: MemberRole,
    /// `leader`, `follower`, `candidate`, `learner` (or, from the transport, `unreachable`).
    pub state: &'static str,
    /// Log entries the member is behind the leader's last entry (leader only).
    pub lag: Option<u64>,
    /// Slots of the replicated slot table this member owns.
    pub slots: usize,
    /// The last index the member applied (known for this node itself).
    pub applied_index: Option<u64>,
    /// The member's linkmesh version (known for this node itself).
    pub version: Option<String>,
}

/// The cluster as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub this_node: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub members: Vec<MemberView>,
}

impl ClusterView {
    /// Pure: the view from this node's metrics, its committed index and the replicated slot table.
    pub fn from_metrics(metrics: &RaftMetrics, commit_index: Option<u64>, fleet: &FleetState) -> ClusterView {
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let leader_last = metrics.last_log_index.unwrap_or(0);
        let mut members = Vec::new();
        for (id, info) in membership.nodes() {
            let id = *id;
            let role = if voters.contains(&id) { MemberRole::Voter } else { MemberRole::Learner };
            let state = if id == metrics.id {
                server_state_name(metrics.state)
            } else if Some(id) == metrics.current_leader {
                "leader"
            } else if role == MemberRole::Learner {
                "learner"
            } else {
                "follower"
            };
            let lag = match &metrics.replication {
                Some(_) if id == metrics.id => Some(0),
                Some(replication) => Some(leader_last.saturating_sub(
                    replication.get(&id).copied().flatten().map_or(0, |matched| matched.index),
                )),
                None => None,
            };
            let this = id == metrics.id;
            members.push(MemberView {
                id,
                info: info.clone(),
                role,
                state,
                lag,
                slots: slots_owned(fleet, id),
                applied_index: if this { metrics.last_applied.map(|applied| applied.index) } else { None },
                version: this.then(|| env!("CARGO_PKG_VERSION").to_owned()),
            });
        }
        ClusterView {
            this_node: metrics.id,
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            commit_index,
            members,
        }
    }
}

fn server_state_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Follower | ServerState::Shutdown => "follower",
    }
}

/// Slots `node_id` owns in the replicated slot table.
pub fn slots_owned(fleet: &FleetState, node_id: u64) -> usize {
    (0..SLOT_COUNT).filter(|slot| fleet.slot_owner(*slot) == Some(node_id)).count()
}

impl RaftNode {
    /// A copy of openraft's current metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.openraft().metrics().borrow().clone()
    }

    /// openraft's metrics channel, for waiting on a change (`borrow_and_update`, then `changed`).
    pub fn metrics_watch(&self) -> tokio::sync::watch::Receiver<RaftMetrics> {
        self.openraft().metrics()
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.openraft().metrics();
        let metrics = metrics.borrow();
        metrics.current_leader == Some(metrics.id)
    }

    /// The addresses the membership holds for `node_id`.
    pub fn member_info(&self, node_id: u64) -> Option<NodeInfo> {
        self.openraft().metrics().borrow().membership_config.membership().get_node(&node_id).cloned()
    }

    /// The cluster as this node sees it.
    pub fn cluster_view(&self) -> ClusterView {
        let metrics = self.metrics();
        let state = self.state();
        ClusterView::from_metrics(&metrics, self.commit_index(), &state.fleet)
    }

    /// Adds `node_id` as a learner (on the leader). Returns once the membership entry is proposed,
    /// not when the learner caught up: the leader replicates to it from then on.
    pub async fn add_learner(&self, node_id: u64, info: NodeInfo) -> Result<(), MembershipError> {
        if self.member_info(node_id).is_some() {
            return Err(MembershipError::AlreadyMember(node_id));
        }
        // A join that arrives while a promotion commits is refused by openraft with nothing changed:
        // wait for the change in flight to commit and add the learner then, within CHANGE_TIMEOUT.
        let raft = self.openraft().clone();
        let added = self
            .runtime_handle()
            .spawn(async move {
                tokio::time::timeout(CHANGE_TIMEOUT, async {
                    loop {
                        let outcome = raft.add_learner(node_id, info.clone(), false).await;
                        let in_progress = matches!(
                            &outcome,
                            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                                ChangeMembershipError::InProgress(_)
                            )))
                        );
                        if !in_progress {
                            return outcome;
                        }
                        let committed = |metrics: &RaftMetrics| {
                            metrics.membership_config.log_id() <= &metrics.last_applied
                        };
                        if raft
                            .wait(Some(CHANGE_TIMEOUT))
                            .metrics(committed, "membership change committed")
                            .await
                            .is_err()
                        {
                            return outcome;
                        }
                    }
                })
                .await
            })
            .await;
        membership_outcome(added)
    }

    /// Writes this node's addresses and name into the membership when the membership holds no
    /// cluster address for it: a node whose data dir `linkmesh restore` created offline, before the
    /// addresses `serve` binds were known. Only on the leader of a one-member cluster, where replacing
    /// a node's entry (`SetNodes`) cannot split anything. Whether an entry was written.
    pub async fn record_own_addresses(&self, info: NodeInfo) -> Result<bool, MembershipError> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        let only_member = membership.nodes().count() == 1 && metrics.current_leader == Some(self.node_id());
        let recorded = membership.get_node(&self.node_id());
        if !only_member || recorded.is_none_or(|recorded| !recorded.rpc_addr.is_empty()) {
            return Ok(false);
        }
        let raft = self.openraft().clone();
        let change = ChangeMembers::SetNodes(BTreeMap::from([(self.node_id(), info)]));
        let changed = self
            .runtime_handle()
            .spawn(async move {
                tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership(change, false)).await
            })
            .await;
        membership_outcome(changed).map(|()| true)
    }

    /// Makes learner `node_id` a voter (on the leader); waits until the change committed.
    pub async fn promote(&self, node_id: u64) -> Result<(), MembershipError> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        if !membership.learner_ids().any(|learner| learner == node_id) {
            return Err(MembershipError::NotALearner(node_id));
        }
        let raft = self.openraft().clone();
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
        let promoted = self
            .runtime_handle()
            .spawn(async move {
                tokio::time::timeout(CHANGE_TIMEOUT, raft.change_membership(change, false)).await
            })
            .await;
        membership_outcome(promoted)
    }
}

type ChangeResult = Result<
    Result<
        Result<
            openraft::raft::ClientWriteResponse<super::types::TypeConfig>,
            RaftError<u64, ClientWriteError<u64, NodeInfo>>,
        >,
        tokio::time::error::Elapsed,
    >,
    tokio::task::JoinError,
>;

fn membership_outcome(result: ChangeResult) -> Result<(), MembershipError> {
    match result {
        Err(error) => Err(MembershipError::OutcomeUnknown(error.to_string())),
        Ok(Err(_elapsed)) => Err(MembershipError::OutcomeUnknown("timed out waiting for commit".to_owned())),
        Ok(Ok(Ok(_response))) => Ok(()),
        Ok(Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))))) => {
            Err(MembershipError::NotLeader { leader: forward.leader_id })
        }
        Ok(Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(in_progress),
        ))))) => Err(MembershipError::ChangeInProgress(in_progress.to_string())),
        Ok(Ok(Err(error))) => Err(MembershipError::OutcomeUnknown(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn info(name: &str) -> NodeInfo {
        NodeInfo {
            rpc_addr: format!("{name}:8081"),
            http_addr: format!("{name}:8080"),
            name: name.to_owned(),
        }
    }

    fn log_id(index: u64) -> openraft::LogId<u64> {
        openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index)
    }

    fn metrics_of_leader() -> RaftMetrics {
        let membership = openraft::Membership::new(
            vec![BTreeSet::from([1, 2])],
            BTreeMap::from([(1, info("a")), (2, info("b")), (3, info("c"))]),
        );
        let mut metrics = RaftMetrics::new_initial(1);
        metrics.state = ServerState::Leader;
        metrics.current_leader = Some(1);
        metrics.current_term = 4;
        metrics.last_log_index = Some(100);
        metrics.last_applied = Some(log_id(99));
        metrics.membership_config = Arc::new(openraft::StoredMembership::new(Some(log_id(3)), membership));
        metrics.replication =
            Some(BTreeMap::from([(1, Some(log_id(100))), (2, Some(log_id(97))), (3, None)]));
        metrics
    }

    #[test]
    fn the_leader_sees_roles_lag_and_slots_of_every_member() {
        let mut fleet = FleetState::default();
        fleet.slots = crate::model::slots::SlotTable::from_entries(
            (0..SLOT_COUNT)
                .map(|slot| crate::model::slots::SlotEntry {
                    owner: if slot < 1000 { 1 } else { 2 },
                    epoch: crate::model::slots::SlotEpoch::INITIAL,
                })
                .collect(),
        );
        let view = ClusterView::from_metrics(&metrics_of_leader(), Some(99), &fleet);
        assert_eq!((view.leader_id, view.term, view.commit_index), (Some(1), 4, Some(99)));
        let summary: Vec<_> =
            view.members.iter().map(|m| (m.id, m.role.as_str(), m.state, m.lag, m.slots)).collect();
        assert_eq!(
            summary,
            vec![
                (1, "voter", "leader", Some(0), 1000),
                (2, "voter", "follower", Some(3), 24),
                (3, "learner", "learner", Some(100), 0),
            ]
        );
        assert_eq!(view.members[0].applied_index, Some(99));
        assert_eq!(view.members[1].applied_index, None);
        assert_eq!(view.members[2].info.name, "c");
    }

    #[test]
    fn a_follower_knows_no_lag() {
        let mut metrics = metrics_of_leader();
        metrics.id = 2;
        metrics.state = ServerState::Follower;
        metrics.replication = None;
        let view = ClusterView::from_metrics(&metrics, None, &FleetState::default());
        assert!(view.members.iter().all(|member| member.lag.is_none()));
        assert_eq!(view.members[0].state, "leader");
        assert_eq!(view.members[1].state, "follower");
        assert_eq!(view.members[1].version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    }
}
