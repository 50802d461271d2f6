//! The leader's task that raises the cluster's feature level (`model/feature_level.rs`) once every
//! member, and every node whose join is under way, reported a release that knows the higher level.
//!
//! Runs on every node and acts only on the leader, once per [`CHECK_INTERVAL`]. A member counts with
//! its last renewal's report if that is younger than a lease (`member_levels.rs`); the leader counts
//! with this release's own level. Idempotent: `RaiseFeatureLevel` never lowers the level, and a new
//! leader decides from the reports it receives itself.

use std::collections::BTreeSet;
use std::time::Duration;

use super::member_levels::this_node_reports;
use crate::model::feature_level::{next_level, THIS_RELEASE};
use crate::model::{Command, UnixMillis};
use crate::raft::RaftNode;

const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the raiser on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, runtime: &tokio::runtime::Handle) {
    runtime.spawn(run(raft));
}

async fn run(raft: RaftNode) {
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if raft.storage_health().failure().is_some() {
            return;
        }
        if raft.is_leader() && raft.state().fleet.feature_level() < THIS_RELEASE {
            raise_if_ready(&raft).await;
        }
    }
}

async fn raise_if_ready(raft: &RaftNode) {
    let ownership = raft.ownership();
    let levels = ownership.levels();
    let _decision = levels.decide().await;
    let current = raft.state().fleet.feature_level();
    let members: BTreeSet<u64> =
        raft.metrics().membership_config.membership().nodes().map(|(id, _)| *id).collect();
    let now = tokio::time::Instant::now().into_std();
    let max_age = raft.ownership().timings().lease;
    let reported = members.iter().map(|&id| {
        if id == raft.node_id() {
            Some(this_node_reports())
        } else {
            levels.fresh_level(id, now, max_age)
        }
    });
    let joiners = levels.joiner_levels(&members, now).into_iter().map(Some);
    let Some(level) = next_level(current, reported.chain(joiners)) else { return };
    tracing::info!(from = %current, to = %level, members = members.len(), "every member knows a higher feature level; raising it");
    match raft.propose(Command::RaiseFeatureLevel { level, at: UnixMillis::now() }).await {
        Ok(()) => tracing::info!(level = %level, "cluster feature level raised"),
        Err(error) => {
            tracing::warn!(level = %level, error = %error, "raising the feature level failed; trying again")
        }
    }
}
