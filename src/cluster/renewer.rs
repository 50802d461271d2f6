//! The owner lease renewer: every `lease/4` this node (the leader included) asks the leader to
//! confirm its lease (`AdminCall::RenewLease`), and extends it from the send time of the request once
//! it applied the commit index the confirmation carried (`cluster/lease.rs`, rules 1 and 2).
//!
//! The leader renews its own lease the same way, through a quorum round of its own
//! (`ensure_linearizable`), rather than from openraft's `millis_since_quorum_ack`: that figure is a
//! snapshot taken when the metrics were last reported, so read later it would date the last quorum
//! acknowledgement too late and stretch the lease.

use std::time::Duration;

use super::admin::{self, AdminAnswer, AdminCall};
use super::member_levels::this_node_reports;
use crate::raft::RaftNode;

/// Starts the renewer on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, runtime: &tokio::runtime::Handle) {
    runtime.spawn(run(raft));
}

async fn run(raft: RaftNode) {
    let mut failures = 0u32;
    loop {
        let timings = raft.ownership().timings();
        tokio::time::sleep(timings.renew_every()).await;
        if raft.storage_health().failure().is_some() {
            raft.ownership().revoke_lease();
            return;
        }
        let sent_at = tokio::time::Instant::now();
        let renew = AdminCall::RenewLease {
            node_id: raft.node_id(),
            feature_level: Some(this_node_reports()),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        };
        let renewal = admin::call_leader(&raft, renew);
        let confirmed = match tokio::time::timeout(timings.lease, renewal).await {
            Ok(Ok(AdminAnswer::Lease { commit_index })) => {
                let remaining =
                    (sent_at + timings.lease).saturating_duration_since(tokio::time::Instant::now());
                raft.wait_applied(commit_index, remaining.max(Duration::from_millis(1))).await >= commit_index
            }
            Ok(Ok(_)) => false,
            Ok(Err(error)) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::info!(error = %error, failures, "owner lease not renewed");
                }
                false
            }
            Err(_elapsed) => false,
        };
        if confirmed {
            if failures > 0 {
                tracing::info!(failures, "owner lease renewed again");
            }
            failures = 0;
            raft.ownership().lease_confirmed(sent_at.into_std());
        }
    }
}
