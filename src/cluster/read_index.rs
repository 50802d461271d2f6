//! The catch-up a follower or learner runs before it refuses a collector token its replica does not
//! know: ask the leader for its read index (`AdminCall::ReadIndex`) and wait until this node applied
//! it. Coalesced and spaced by `cluster/catch_up.rs`; never run on the leader or a single node, whose
//! replica already holds every committed token.

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

/// Whether an unknown token is worth a catch-up here: on a member of a multi-node cluster that does
/// not lead (the leader's replica, and a single node's, hold every committed write).
pub fn worth_catching_up(raft: &RaftNode) -> bool {
    let metrics = raft.openraft().metrics();
    let metrics = metrics.borrow();
    metrics.current_leader != Some(raft.node_id())
        && metrics.membership_config.membership().nodes().count() > 1
}

/// Waits (up to [`CATCH_UP_WAIT`]) for a catch-up that began after this call, when this node is one
/// where that can help; whether it reached the leader's read index.
pub async fn catch_up(raft: &RaftNode) -> bool {
    worth_catching_up(raft) && raft.catch_up().wait(CATCH_UP_WAIT).await
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
