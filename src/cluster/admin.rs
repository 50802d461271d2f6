//! Cluster administration that only the leader answers, carried by the `Admin` RPC as JSON so that a
//! new call needs no proto change.
//!
//! [`AdminCall`] is what is asked, [`AdminAnswer`] what comes back. [`dispatch`] runs a call on this
//! node and answers `NotLeader` when it does not lead; [`call_leader`] asks the leader from any member
//! (locally when this node leads, else one hop over the cluster port).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::payload;
use super::peers::PeerError;
use crate::proto::cluster::v1::AdminRequest;
use crate::raft::RaftNode;

/// The deadline of an `Admin` call to the leader.
const ADMIN_CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum AdminCall {
    /// The leader's view of the members: replication progress and when each was last heard from.
    Members,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum AdminAnswer {
    Members(LeaderView),
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
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("not leader: {}", leader_display(*.leader_id))]
    NotLeader { leader_id: Option<u64> },
    #[error("the admin call failed: {0}")]
    Failed(String),
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
    if metrics.current_leader != Some(raft.node_id()) {
        return AdminAnswer::NotLeader { leader_id: metrics.current_leader };
    }
    match call {
        AdminCall::Members => AdminAnswer::Members(leader_view(raft, &metrics)),
    }
}

fn leader_view(raft: &RaftNode, metrics: &openraft::RaftMetrics<u64, crate::raft::NodeInfo>) -> LeaderView {
    let now = tokio::time::Instant::now();
    let membership = metrics.membership_config.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| {
            let matched_index = if *id == metrics.id {
                metrics.last_log_index
            } else {
                metrics
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(id))
                    .and_then(|matched| matched.map(|log_id| log_id.index))
            };
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
            MemberView {
                id: *id,
                rpc_addr: node.rpc_addr.clone(),
                http_addr: node.http_addr.clone(),
                voter: voters.contains(id),
                matched_index,
                lag,
                last_contact_ms,
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
    match answer {
        AdminAnswer::NotLeader { leader_id } => Err(AdminError::NotLeader { leader_id }),
        AdminAnswer::Failed { message } => Err(AdminError::Failed(message)),
        answer => Ok(answer),
    }
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
}
