//! The catch-up a member runs before it refuses a collector token its replica does not know: ask the
//! leader for its read index (`AdminCall::ReadIndex`) and wait until this node applied it. Coalesced
//! and spaced by `cluster/catch_up.rs`; never run on a single node, whose replica holds every committed
//! token. It runs on the leader too: a leader cut off from the others may have been replaced, and
//! only a read index (a quorum's confirmation) tells. When the catch-up fails, the token can be
//! neither accepted nor refused: the caller answers 503 (a refusal would be a lie to a collector
//! whose token was minted on the majority's side of a partition).

use std::time::Duration;

use super::admin::{self, AdminAnswer, AdminCall};
use crate::raft::RaftNode;

/// The longest an unknown token waits for a catch-up before its 401: a read index round and the
/// apply that follows take a few milliseconds between healthy nodes, plus up to one
/// `catch_up::MIN_INTERVAL` of spacing; a leader that cannot answer within this is not worth holding
/// the collector's connection for.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// Starts this node's catch-up loop on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, runtime: &tokio::runtime::Handle) {
    runtime.spawn(async move {
        let catch_up = raft.catch_up().clone();
        catch_up.run(|| catch_up_once(&raft)).await;
    });
}

/// Whether an unknown token is worth a catch-up here: on any member of a multi-node cluster (a single
/// node's replica holds every committed write).
pub fn worth_catching_up(raft: &RaftNode) -> bool {
    let metrics = raft.openraft().metrics();
    let metrics = metrics.borrow();
    metrics.membership_config.membership().nodes().count() > 1
}

/// What a catch-up before a refusal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpOutcome {
    /// A single node: its replica is complete; refuse.
    NotNeeded,
    /// This node applied the leader's read index: look again, then refuse if still unknown.
    CaughtUp,
    /// No read index in time (partitioned, no leader, overloaded): neither accept nor refuse.
    Failed,
}

/// Waits (up to [`CATCH_UP_WAIT`]) for a catch-up that began after this call, when this node is one
/// where that can help; whether it reached the leader's read index.
pub async fn catch_up(raft: &RaftNode) -> CatchUpOutcome {
    if !worth_catching_up(raft) {
        CatchUpOutcome::NotNeeded
    } else if raft.catch_up().wait(CATCH_UP_WAIT).await {
        CatchUpOutcome::CaughtUp
    } else {
        CatchUpOutcome::Failed
    }
}

/// The answer when a catch-up failed: 503, retry in a second.
pub fn unconfirmed_token() -> crate::error::ApiError {
    unconfirmed("this token")
}

/// 503 (retry in a second): this node could not confirm `what` with the leader.
pub fn unconfirmed(what: &str) -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::Unavailable,
        format!("this node cannot reach the cluster's leader to check {what} right now; retry shortly"),
    )
    .with_retry_after(1)
}

/// One round: the leader's read index, then this node's apply up to it, within [`CATCH_UP_WAIT`].
async fn catch_up_once(raft: &RaftNode) -> bool {
    let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
    let asked = tokio::time::timeout_at(deadline, admin::call_leader(raft, AdminCall::ReadIndex)).await;
    let commit_index = match asked {
        Ok(Ok(AdminAnswer::ReadIndex { commit_index })) => commit_index,
        Ok(Ok(other)) => {
            tracing::debug!(answer = %other, "unexpected answer to a read index");
            return false;
        }
        Ok(Err(error)) => {
            tracing::debug!(error = %error, "no read index from the leader");
            return false;
        }
        Err(_elapsed) => return false,
    };
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    raft.wait_applied(commit_index, remaining).await >= commit_index
}
