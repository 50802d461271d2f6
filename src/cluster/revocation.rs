//! Promise 4 of `cluster.md`: a token rotation or a collector deletion returns only once the owner of
//! the collector's slot applied it, or once that owner's lease has surely ended (`revocation_wait`,
//! `cluster/lease.rs`), whichever comes first. The owner is the token's final authority on the poll
//! path, so after either, no node accepts the old token.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::slot_of;
use crate::proto::cluster::v1::WaitAppliedRequest;
use crate::raft::RaftNode;

/// Between two `WaitApplied` calls to an owner that did not answer.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Call after the write applied on this node: waits until `collector_id`'s owner applied what this
/// node has applied now, or `revocation_wait` passed. Returns at once when this node owns the slot
/// (it applied the write) or is the only member.
pub async fn await_owner(raft: &RaftNode, collector_id: &str) {
    await_owners(raft, std::slice::from_ref(&collector_id)).await;
}

/// [`await_owner`] for many collectors at once (a bulk rotation or deletion): one wait per distinct
/// owner, all at the same time, so the whole takes at most one `revocation_wait`.
pub async fn await_owners<S: AsRef<str>>(raft: &RaftNode, collector_ids: &[S]) {
    let timings = raft.ownership().timings();
    let deadline = tokio::time::Instant::now() + timings.revocation_wait;
    let (owners, applied) = {
        let metrics = raft.metrics();
        let state = raft.state();
        let owners: BTreeMap<u64, Option<String>> = collector_ids
            .iter()
            .filter_map(|collector_id| state.fleet.slot_owner(slot_of(collector_id.as_ref())))
            .filter(|owner| *owner != raft.node_id())
            .map(|owner| {
                let rpc_addr =
                    metrics.membership_config.membership().get_node(&owner).map(|node| node.rpc_addr.clone());
                (owner, rpc_addr)
            })
            .collect();
        (owners, metrics.last_applied.map(|log_id| log_id.index))
    };
    let Some(index) = applied else { return };
    let waits =
        owners.into_iter().map(|(owner, rpc_addr)| await_node(raft, owner, rpc_addr, index, deadline));
    futures_util::future::join_all(waits).await;
}

/// Waits until `owner` applied `index`, or `deadline`.
async fn await_node(
    raft: &RaftNode,
    owner: u64,
    rpc_addr: Option<String>,
    index: u64,
    deadline: tokio::time::Instant,
) {
    let Some(rpc_addr) = rpc_addr else {
        // The owner left the membership: it renews no lease any more, so waiting one lease covers it.
        tokio::time::sleep_until(deadline).await;
        return;
    };
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            tracing::info!(owner, index, "owner did not confirm a revocation; its lease has ended");
            return;
        }
        let timeout_ms = u32::try_from(remaining.as_millis()).unwrap_or(u32::MAX);
        let request = WaitAppliedRequest { index, timeout_ms };
        let answer = raft
            .peers()
            .call(
                owner,
                &rpc_addr,
                request,
                remaining + Duration::from_millis(200),
                |mut client, request| async move { client.wait_applied(request).await },
            )
            .await;
        match answer {
            Ok(reply) if reply.reached => return,
            Ok(_) => continue,
            Err(_) => {
                let pause = RETRY_EVERY.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                tokio::time::sleep(pause).await;
            }
        }
    }
}
