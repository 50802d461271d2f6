//! Cluster administration that only the leader answers, carried by the `Admin` RPC as JSON so that a
//! new call needs no proto change.
//!
//! [`AdminCall`] is what is asked, [`AdminAnswer`] what comes back. [`dispatch`] runs a call on this
//! node and answers `NotLeader` when it does not lead; [`call_leader`] asks the leader from any member
//! (locally when this node leads, else one hop over the cluster port).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::member_levels::{this_node_reports, MemberReport};
use super::payload;
use super::peers::PeerError;
use crate::model::FeatureLevel;
use crate::proto::cluster::v1::AdminRequest;
use crate::raft::membership::matched_index;
use crate::raft::RaftNode;

/// The deadline of an `Admin` call to the leader.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum AdminCall {
    /// The leader's view of the members: replication progress and when each was last heard from.
    Members,
    /// `node_id` asks to extend its owner lease (`cluster/lease.rs` rule 2): the leader answers after
    /// a quorum round that began after the request arrived, with its commit index.
    ///
    /// It also reports the member's release (`member_levels.rs`); renewals of releases before feature
    /// levels carry neither field: [`FeatureLevel::BASELINE`], version unknown.
    RenewLease {
        node_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feature_level: Option<FeatureLevel>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// A member that does not know a collector token (or a collector a write names) asks for the
    /// leader's read index (after the same quorum round as a renewal) to apply before it answers 401
    /// or 404 (`read_index.rs`).
    ReadIndex,
    /// Drain `node_id`'s slots to the others, then remove it from the membership.
    RemoveMember { node_id: u64 },
    /// Move leadership to the voter `node_id`.
    TransferLeader { node_id: u64 },
    /// Run the balancer now.
    Rebalance,
    /// Sent by the leader to the node it hands leadership to (any node answers it): start elections
    /// until this node leads or `within_ms` passed.
    Elect { within_ms: u64 },
    /// Sent by the leader to a slot's owner before a graceful move (any node answers it): commit what
    /// the actors of `slots` hold back, so the move fences nothing off.
    FlushSlots { slots: Vec<usize> },
}

/// Why the leader refused an admin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The node named is not a member.
    NotFound,
    /// The call conflicts with the cluster's state (the last voter, the leader, a learner…).
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum AdminAnswer {
    Members(LeaderView),
    /// A renewal confirmed: the leader's commit index, to apply before the lease is extended.
    Lease {
        commit_index: Option<u64>,
    },
    /// The leader's read index: every write committed before the call arrived is at or below it.
    ReadIndex {
        commit_index: Option<u64>,
    },
    /// The call was taken; its effect follows (a drain, a transfer, a balancer run).
    Accepted,
    Refused {
        refusal: Refusal,
        message: String,
    },
    /// This node does not lead; `leader_id` is the one it knows of, if any.
    NotLeader {
        leader_id: Option<u64>,
    },
    Failed {
        message: String,
    },
}

/// What the leader knows of the members (`GET /api/v1/cluster` reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderView {
    pub leader_id: u64,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub id: u64,
    pub rpc_addr: String,
    pub http_addr: String,
    pub voter: bool,
    /// The last log index the leader knows this member holds (`None`: nothing acknowledged yet).
    pub matched_index: Option<u64>,
    /// Entries the member is behind the leader's log (`None` while unknown).
    pub lag: Option<u64>,
    /// Milliseconds since the leader last had a successful call to it (0 for the leader itself;
    /// `None`: not since the leader started).
    pub last_contact_ms: Option<u64>,
    /// The leader calls it down (no contact for `cluster.node_down_after`): its slots move away.
    #[serde(default)]
    pub down: bool,
    /// The feature level its last renewal reported (`None`: none since this leader started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_level: Option<FeatureLevel>,
    /// Its linkmesh version, as its last renewal reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not leader: {}", leader_display(*.leader_id))]
    NotLeader { leader_id: Option<u64> },
    #[error("the admin call failed: {0}")]
    Failed(String),
    #[error("{message}")]
    Refused { refusal: Refusal, message: String },
    #[error("cannot reach the leader: {0}")]
    Peer(#[from] PeerError),
    #[error("the leader's answer cannot be read: {0}")]
    Payload(#[from] payload::PayloadError),
}

fn leader_display(leader_id: Option<u64>) -> String {
    leader_id.map_or_else(|| "unknown".to_owned(), |id| id.to_string())
}

impl fmt::Display for AdminAnswer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAnswer::Members(view) => write!(formatter, "{} members", view.members.len()),
            AdminAnswer::Lease { commit_index } => write!(formatter, "lease confirmed at {commit_index:?}"),
            AdminAnswer::ReadIndex { commit_index } => write!(formatter, "read index {commit_index:?}"),
            AdminAnswer::Accepted => formatter.write_str("accepted"),
            AdminAnswer::Refused { message, .. } => formatter.write_str(message),
            AdminAnswer::NotLeader { leader_id } => {
                write!(formatter, "not leader: {}", leader_display(*leader_id))
            }
            AdminAnswer::Failed { message } => formatter.write_str(message),
        }
    }
}

/// Runs `call` here if this node leads.
pub async fn dispatch(raft: &RaftNode, call: AdminCall) -> AdminAnswer {
    let metrics = raft.openraft().metrics().borrow().clone();
    if let AdminCall::Elect { within_ms } = call {
        return elect(raft, &metrics, Duration::from_millis(within_ms.min(10_000)));
    }
    if let AdminCall::FlushSlots { slots } = call {
        return flush_slots(raft, slots).await;
    }
    if metrics.current_leader != Some(raft.node_id()) {
        return AdminAnswer::NotLeader { leader_id: metrics.current_leader };
    }
    match call {
        AdminCall::Members => AdminAnswer::Members(leader_view(raft, &metrics)),
        AdminCall::RenewLease { node_id, feature_level, version } => {
            let level = feature_level.unwrap_or(FeatureLevel::BASELINE);
            raft.ownership().levels().record(node_id, level, version, tokio::time::Instant::now().into_std());
            renew_lease(raft, &metrics, node_id).await
        }
        AdminCall::ReadIndex => match read_index(raft).await {
            Ok(commit_index) => AdminAnswer::ReadIndex { commit_index },
            Err(failed) => failed,
        },
        AdminCall::RemoveMember { node_id } => remove_member(raft, &metrics, node_id),
        AdminCall::TransferLeader { node_id } => transfer(raft, &metrics, node_id).await,
        AdminCall::Rebalance => {
            raft.ownership().wake();
            AdminAnswer::Accepted
        }
        AdminCall::Elect { .. } | AdminCall::FlushSlots { .. } => {
            AdminAnswer::Failed { message: "handled above".to_owned() }
        }
    }
}

async fn flush_slots(raft: &RaftNode, slots: Vec<usize>) -> AdminAnswer {
    match raft.ownership().flush_slots(slots.into_iter().collect()).await {
        Ok(()) => AdminAnswer::Accepted,
        Err(message) => AdminAnswer::Failed { message },
    }
}

fn leader_view(raft: &RaftNode, metrics: &openraft::RaftMetrics<u64, crate::raft::NodeInfo>) -> LeaderView {
    let now = tokio::time::Instant::now();
    let membership = metrics.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let down = raft.ownership().down();
    let members = membership
        .nodes()
        .map(|(id, node)| {
            let matched_index =
                if *id == metrics.id { metrics.last_log_index } else { matched_index(metrics, *id) };
            let lag = match (metrics.last_log_index, matched_index) {
                (Some(last), Some(matched)) => Some(last.saturating_sub(matched)),
                (None, _) => Some(0),
                (Some(_), None) => None,
            };
            let last_contact_ms = if *id == metrics.id {
                Some(0)
            } else {
                raft.peers().last_contact(*id).map(|at| {
                    u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX)
                })
            };
            let report = if *id == metrics.id {
                Some(MemberReport {
                    level: this_node_reports(),
                    version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                    at: tokio::time::Instant::now().into_std(),
                })
            } else {
                raft.ownership().levels().report(*id)
            };
            MemberView {
                id: *id,
                rpc_addr: node.rpc_addr.clone(),
                http_addr: node.http_addr.clone(),
                voter: voters.contains(id),
                matched_index,
                lag,
                last_contact_ms,
                down: down.contains(id),
                feature_level: report.as_ref().map(|report| report.level),
                version: report.and_then(|report| report.version),
            }
        })
        .collect();
    LeaderView {
        leader_id: metrics.id,
        term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        applied_index: metrics.last_applied.map(|log_id| log_id.index),
        members,
    }
}

/// How long a renewal may wait for the leader's quorum round.
const RENEW_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the leader keeps quiet (no heartbeats, renewals or slot moves) for a transfer, at least:
/// see [`transfer_window`].
const MIN_TRANSFER_WINDOW: Duration = Duration::from_secs(3);

/// How long the target may take to receive the whole log before heartbeats stop.
const TRANSFER_CATCH_UP: Duration = Duration::from_secs(1);

/// The followers refuse to vote while they heard from the leader within an election timeout, so the
/// target's elections succeed only after that: the window spans the catch-up and twice the longest
/// election timeout.
fn transfer_window(raft: &RaftNode) -> Duration {
    let longest_election = Duration::from_millis(raft.openraft().config().election_timeout_max);
    MIN_TRANSFER_WINDOW.max(TRANSFER_CATCH_UP + longest_election * 2)
}
/// The new leader-to-be retries its election this often until it leads.
const ELECT_EVERY: Duration = Duration::from_millis(100);

type Metrics = openraft::RaftMetrics<u64, crate::raft::NodeInfo>;

fn refused(refusal: Refusal, message: String) -> AdminAnswer {
    AdminAnswer::Refused { refusal, message }
}

fn not_a_member(node_id: u64) -> AdminAnswer {
    refused(Refusal::NotFound, format!("node {node_id} is not a member of this cluster"))
}

/// Rule 2 of `cluster/lease.rs`: confirm only after a quorum round that began after this request
/// arrived, and hand back the commit index the owner must apply before it extends its lease.
async fn renew_lease(raft: &RaftNode, metrics: &Metrics, node_id: u64) -> AdminAnswer {
    if metrics.membership_config.membership().get_node(&node_id).is_none() {
        return not_a_member(node_id);
    }
    match read_index(raft).await {
        Ok(commit_index) => AdminAnswer::Lease { commit_index },
        Err(failed) => failed,
    }
}

/// The commit index after a quorum round that began after this call (`ensure_linearizable`); refused
/// while leadership is being transferred, since the round's heartbeats would keep the old leader.
async fn read_index(raft: &RaftNode) -> Result<Option<u64>, AdminAnswer> {
    if raft.ownership().transferring(tokio::time::Instant::now().into_std()) {
        return Err(AdminAnswer::Failed { message: "leadership is being transferred".to_owned() });
    }
    match tokio::time::timeout(RENEW_TIMEOUT, raft.openraft().ensure_linearizable()).await {
        Ok(Ok(read)) => Ok(read.map(|log_id| log_id.index)),
        Ok(Err(error)) => Err(AdminAnswer::Failed { message: error.to_string() }),
        Err(_elapsed) => Err(AdminAnswer::Failed { message: "no quorum answered in time".to_owned() }),
    }
}

/// Marks the member as draining; the balancer driver moves its slots, then removes it.
fn remove_member(raft: &RaftNode, metrics: &Metrics, node_id: u64) -> AdminAnswer {
    let membership = metrics.membership_config.membership();
    if membership.get_node(&node_id).is_none() {
        return not_a_member(node_id);
    }
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    if voters.len() == 1 && voters.contains(&node_id) {
        return refused(Refusal::Conflict, format!("node {node_id} is the last voter; it cannot leave"));
    }
    if node_id == raft.node_id() {
        return refused(
            Refusal::Conflict,
            format!(
                "node {node_id} leads the cluster: move leadership first (POST /api/v1/cluster/leader), \
                 then remove it"
            ),
        );
    }
    tracing::info!(node_id, "member removal asked: draining its slots first");
    raft.ownership().start_drain(node_id);
    AdminAnswer::Accepted
}

/// openraft 0.9 has no transfer call: the leader stops its heartbeats (and renewals and slot moves)
/// so the followers' leader leases end, and asks the target to run elections until it leads; its
/// log is caught up, so it wins. After [`transfer_window`] or the change, heartbeats resume.
async fn transfer(raft: &RaftNode, metrics: &Metrics, node_id: u64) -> AdminAnswer {
    let membership = metrics.membership_config.membership();
    if membership.get_node(&node_id).is_none() {
        return not_a_member(node_id);
    }
    if node_id == raft.node_id() {
        return AdminAnswer::Accepted;
    }
    if !membership.voter_ids().any(|voter| voter == node_id) {
        return refused(Refusal::Conflict, format!("node {node_id} is a learner; only a voter can lead"));
    }
    let last = metrics.last_log_index.unwrap_or(0);
    let matched = matched_index(metrics, node_id);
    if matched.is_none_or(|matched| matched + super::promoter::CAUGHT_UP_WITHIN < last) {
        return refused(
            Refusal::Conflict,
            format!(
                "node {node_id} has not caught up with the log (at {matched:?} of {last}); try again shortly"
            ),
        );
    }
    let ownership = raft.ownership().clone();
    let window = transfer_window(raft);
    let until = tokio::time::Instant::now() + window;
    // New writes wait from here (`RaftNode::write_here`); with heartbeats still on, the target then
    // receives the whole log. Only then do heartbeats stop: without them a follower whose last append
    // failed is not retried, and a target one entry behind loses every vote to the followers ahead.
    ownership.begin_transfer(until.into_std());
    let openraft = raft.openraft().clone();
    if !target_caught_up(&openraft, node_id).await {
        ownership.end_transfer();
        return refused(
            Refusal::Conflict,
            format!("node {node_id} did not receive the whole log in time; try again shortly"),
        );
    }
    openraft.runtime_config().heartbeat(false);
    let within_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    if let Err(error) = call_node(raft, node_id, AdminCall::Elect { within_ms }).await {
        openraft.runtime_config().heartbeat(true);
        ownership.end_transfer();
        return AdminAnswer::Failed { message: format!("node {node_id} did not take the election: {error}") };
    }
    tracing::info!(node_id, "leadership transfer started");
    let this_node = raft.node_id();
    tokio::spawn(async move {
        let mut metrics = openraft.metrics();
        loop {
            if metrics.borrow_and_update().current_leader.is_some_and(|leader| leader != this_node) {
                break;
            }
            match tokio::time::timeout_at(until, metrics.changed()).await {
                Ok(Ok(())) => continue,
                _ => break,
            }
        }
        openraft.runtime_config().heartbeat(true);
        ownership.end_transfer();
    });
    AdminAnswer::Accepted
}

/// Waits (at most [`TRANSFER_CATCH_UP`]) for the target to hold every entry this leader has.
async fn target_caught_up(openraft: &crate::raft::types::Raft, node_id: u64) -> bool {
    let deadline = tokio::time::Instant::now() + TRANSFER_CATCH_UP;
    let mut metrics = openraft.metrics();
    loop {
        {
            let current = metrics.borrow_and_update();
            let matched = matched_index(&current, node_id);
            if matched.is_some() && matched >= current.last_log_index {
                return true;
            }
        }
        if tokio::time::timeout_at(deadline, metrics.changed()).await.is_err() {
            return false;
        }
    }
}

/// On the transfer's target: elections every [`ELECT_EVERY`] until this node leads or `within`
/// passed (the first ones fail while the followers' leader leases last).
fn elect(raft: &RaftNode, metrics: &Metrics, within: Duration) -> AdminAnswer {
    if !metrics.membership_config.membership().voter_ids().any(|voter| voter == raft.node_id()) {
        return refused(Refusal::Conflict, format!("node {} is not a voter", raft.node_id()));
    }
    let openraft = raft.openraft().clone();
    let this_node = raft.node_id();
    let deadline = tokio::time::Instant::now() + within;
    tokio::spawn(async move {
        while tokio::time::Instant::now() < deadline {
            if openraft.metrics().borrow().current_leader == Some(this_node) {
                tracing::info!(node_id = this_node, "leadership taken over");
                return;
            }
            if let Err(error) = openraft.trigger().elect().await {
                tracing::warn!(error = %error, "cannot start an election");
                return;
            }
            tokio::time::sleep(ELECT_EVERY).await;
        }
    });
    AdminAnswer::Accepted
}

/// Asks the leader: here when this node leads, else over the cluster port (one hop; the leader
/// answers `NotLeader` if it lost the lead meanwhile).
pub async fn call_leader(raft: &RaftNode, call: AdminCall) -> Result<AdminAnswer, AdminError> {
    let (leader, node) = {
        let metrics = raft.openraft().metrics();
        let metrics = metrics.borrow();
        let leader = metrics.current_leader;
        (leader, leader.and_then(|id| metrics.membership_config.membership().get_node(&id).cloned()))
    };
    let answer = match (leader, node) {
        (Some(leader), _) if leader == raft.node_id() => dispatch(raft, call).await,
        (Some(leader), Some(node)) => {
            let request = AdminRequest { request: payload::to_json(&call)? };
            let reply = raft
                .peers()
                .call(leader, &node.rpc_addr, request, ADMIN_CALL_TIMEOUT, |mut client, request| async move {
                    client.admin(request).await
                })
                .await?;
            payload::from_json(&reply.reply)?
        }
        (leader_id, _) => AdminAnswer::NotLeader { leader_id },
    };
    into_result(answer)
}

fn into_result(answer: AdminAnswer) -> Result<AdminAnswer, AdminError> {
    match answer {
        AdminAnswer::NotLeader { leader_id } => Err(AdminError::NotLeader { leader_id }),
        AdminAnswer::Failed { message } => Err(AdminError::Failed(message)),
        AdminAnswer::Refused { refusal, message } => Err(AdminError::Refused { refusal, message }),
        answer => Ok(answer),
    }
}

/// Sends `call` to the member `node_id` itself (not to the leader): `Elect`, `FlushSlots`.
pub async fn call_node(raft: &RaftNode, node_id: u64, call: AdminCall) -> Result<AdminAnswer, AdminError> {
    if node_id == raft.node_id() {
        // Only `Elect` and `FlushSlots` are sent to a given node; here they need no hop (and no
        // recursion into dispatch).
        let metrics = raft.openraft().metrics().borrow().clone();
        return match call {
            AdminCall::Elect { within_ms } => {
                into_result(elect(raft, &metrics, Duration::from_millis(within_ms)))
            }
            AdminCall::FlushSlots { slots } => into_result(flush_slots(raft, slots).await),
            other => Err(AdminError::Failed(format!("{other:?} is only sent to the leader"))),
        };
    }
    let node = raft.openraft().metrics().borrow().membership_config.membership().get_node(&node_id).cloned();
    let Some(node) = node else {
        return Err(AdminError::Refused {
            refusal: Refusal::NotFound,
            message: format!("node {node_id} is not a member"),
        });
    };
    let request = AdminRequest { request: payload::to_json(&call)? };
    let reply = raft
        .peers()
        .call(node_id, &node.rpc_addr, request, ADMIN_CALL_TIMEOUT, |mut client, request| async move {
            client.admin(request).await
        })
        .await?;
    into_result(payload::from_json(&reply.reply)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_answers_are_tagged_json() {
        assert_eq!(serde_json::to_string(&AdminCall::Members).expect("json"), r#"{"call":"members"}"#);
        let decoded: AdminCall = serde_json::from_str(r#"{"call":"members"}"#).expect("decode");
        assert_eq!(decoded, AdminCall::Members);
        assert!(serde_json::from_str::<AdminCall>(r#"{"call":"drop_everything"}"#).is_err());
        let not_leader = AdminAnswer::NotLeader { leader_id: Some(3) };
        let json = serde_json::to_string(&not_leader).expect("json");
        assert_eq!(json, r#"{"answer":"not_leader","leader_id":3}"#);
        assert_eq!(not_leader.to_string(), "not leader: 3");
        assert_eq!(AdminError::NotLeader { leader_id: None }.to_string(), "not leader: unknown");
    }

    #[test]
    fn the_failover_calls_keep_their_wire_names() {
        let renew = AdminCall::RenewLease { node_id: 2, feature_level: None, version: None };
        assert_eq!(serde_json::to_string(&renew).expect("json"), r#"{"call":"renew_lease","node_id":2}"#);
        // What releases before feature levels send, and what this one sends (older leaders ignore the rest).
        let old: AdminCall = serde_json::from_str(r#"{"call":"renew_lease","node_id":2}"#).expect("decode");
        assert_eq!(old, renew);
        let reported = AdminCall::RenewLease {
            node_id: 2,
            feature_level: Some(FeatureLevel(2)),
            version: Some("0.1.0".to_owned()),
        };
        assert_eq!(
            serde_json::to_string(&reported).expect("json"),
            r#"{"call":"renew_lease","node_id":2,"feature_level":2,"version":"0.1.0"}"#
        );
        assert_eq!(serde_json::to_string(&AdminCall::ReadIndex).expect("json"), r#"{"call":"read_index"}"#);
        let elect: AdminCall = serde_json::from_str(r#"{"call":"elect","within_ms":3000}"#).expect("decode");
        assert_eq!(elect, AdminCall::Elect { within_ms: 3000 });
        let refused = AdminAnswer::Refused { refusal: Refusal::NotFound, message: "node 9".into() };
        assert_eq!(
            serde_json::to_string(&refused).expect("json"),
            r#"{"answer":"refused","refusal":"not_found","message":"node 9"}"#
        );
        match into_result(refused) {
            Err(AdminError::Refused { refusal: Refusal::NotFound, message }) => assert_eq!(message, "node 9"),
            other => panic!("{other:?}"),
        }
        // A member view from a leader that predates `down` reads as reachable.
        let view: MemberView = serde_json::from_str(
            r#"{"id":1,"rpc_addr":"a","http_addr":"b","voter":true,"matched_index":null,"lag":null,"last_contact_ms":null}"#,
        )
        .expect("decode");
        assert!(!view.down);
        assert_eq!(view.feature_level, None, "an older leader knows no member's level");
    }
}
