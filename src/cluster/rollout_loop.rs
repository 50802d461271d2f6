//! The leader's rollout driver: moves every running rollout on (`model/rollouts.rs`).
//!
//! Runs on every node and acts only on the leader, every [`STEP_INTERVAL`]: for each running
//! rollout it reads the replicated records and proposes what [`Rollout::next_step`] says — release
//! the next batch, pause on a FAILED collector, or complete. Idempotent: a step is computed from the
//! replica alone, and `apply` refuses a step that no longer fits (a batch already released, a
//! rollout paused meanwhile), so a new leader picks up where the last one stopped and two proposals
//! of one step apply once.

use std::time::Duration;

use crate::model::rollouts::{NextStep, Rollout};
use crate::model::{Command, UnixMillis};
use crate::raft::RaftNode;

const STEP_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the driver on `runtime` (the Raft runtime); it ends with the runtime.
pub fn spawn(raft: RaftNode, runtime: &tokio::runtime::Handle) {
    runtime.spawn(run(raft));
}

async fn run(raft: RaftNode) {
    loop {
        tokio::time::sleep(STEP_INTERVAL).await;
        if raft.storage_health().failure().is_some() {
            return;
        }
        if raft.metrics().current_leader != Some(raft.node_id()) {
            continue;
        }
        let now = UnixMillis::now();
        let steps: Vec<Command> = {
            let state = raft.state();
            let fleet = &state.fleet;
            fleet
                .rollouts
                .active()
                .filter_map(|rollout| command_for(rollout, rollout.next_step(&fleet.collectors, now), now))
                .collect()
        };
        for command in steps {
            if let Err(error) = raft.propose(command).await {
                tracing::warn!(error = %error, "rollout step not applied; trying again next step");
                break;
            }
        }
    }
}

fn command_for(rollout: &Rollout, step: NextStep, at: UnixMillis) -> Option<Command> {
    let id = rollout.id.clone();
    match step {
        NextStep::Wait => None,
        NextStep::Pause { reason } => {
            tracing::warn!(rollout = %id, reason = %reason, "rollout paused");
            Some(Command::PauseRollout { id, reason, at })
        }
        NextStep::Release { batch } => {
            tracing::info!(rollout = %id, batch, "rollout batch released");
            Some(Command::AdvanceRollout { id, batch, at })
        }
        NextStep::Complete => Some(Command::CompleteRollout { id, at }),
    }
}
