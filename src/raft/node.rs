//! A running Raft member: opens storage, starts openraft on its own runtime, and proposes commands.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use parking_lot::RwLockReadGuard;
use tokio::sync::mpsc::UnboundedSender;

use super::log_store::SledLogStore;
use super::network::PeerNetwork;
use super::state_machine::{AppliedState, SharedState, SledStateMachine};
use super::types::{NodeInfo, Raft};
use crate::model::{ApplyError, Command, CommandOutcome, Effect};

/// How long a proposal may wait for commitment before its outcome is reported as unknown.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open storage at {path}: {source}")]
    Storage { path: String, source: sled::Error },
    #[error("cannot restore the state machine: {0}")]
    StateMachine(String),
    #[error("cannot start raft: {0}")]
    Raft(String),
}

/// Why a proposal did not apply. Only [`ProposeError::OutcomeUnknown`] may have committed.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    Rejected(#[from] ApplyError),
    #[error("this node is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the write may or may not have committed: {0}")]
    OutcomeUnknown(String),
}

#[derive(Clone)]
pub struct RaftNode {
    node_id: u64,
    raft: Raft,
    state: SharedState,
    runtime: tokio::runtime::Handle,
    db: sled::Db,
}

impl RaftNode {
    /// Opens `<data_dir>/raft` and starts openraft on `runtime`. A fresh data dir initializes a
    /// one-voter cluster; an existing one resumes (no initialization on restart).
    pub async fn start(
        node_id: u64,
        node_info: NodeInfo,
        data_dir: &Path,
        settings: &crate::config::RaftSettings,
        runtime: tokio::runtime::Handle,
        effects: UnboundedSender<Effect>,
    ) -> Result<RaftNode, StartError> {
        let path = data_dir.join("raft");
        let db = sled::Config::new()
            .path(&path)
            .flush_every_ms(Some(1000))
            // sled's default page cache is 1 GiB; the state machine already lives in memory.
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|source| StartError::Storage { path: path.display().to_string(), source })?;
        let log_store = SledLogStore::open(&db, &path)
            .map_err(|source| StartError::Storage { path: path.display().to_string(), source })?;
        let state_machine = SledStateMachine::open(&db, effects)
            .map_err(|error| StartError::StateMachine(error.to_string()))?;
        let state = state_machine.shared_state();

        let config = openraft::Config {
            cluster_name: "linkmesh".to_owned(),
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            install_snapshot_timeout: 2000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(settings.snapshot_after_logs),
            max_in_snapshot_log_to_keep: settings.logs_kept_after_snapshot,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|error| StartError::Raft(error.to_string()))?;

        let raft = runtime
            .spawn(async move {
                let raft = Raft::new(node_id, Arc::new(config), PeerNetwork, log_store, state_machine)
                    .await
                    .map_err(|error| error.to_string())?;
                if !raft.is_initialized().await.map_err(|error| error.to_string())? {
                    let members = BTreeMap::from([(node_id, node_info)]);
                    raft.initialize(members).await.map_err(|error| error.to_string())?;
                }
                Ok::<_, String>(raft)
            })
            .await
            .map_err(|error| StartError::Raft(error.to_string()))?
            .map_err(StartError::Raft)?;

        Ok(RaftNode { node_id, raft, state, runtime, db })
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Read access to the applied state. Hold the guard briefly: `apply` waits for it.
    pub fn state(&self) -> RwLockReadGuard<'_, AppliedState> {
        self.state.read()
    }

    /// Proposes a command and waits until it is committed (durable on a quorum) and applied here.
    /// Inside an audited request, the request's audit record rides along (`crate::audit`).
    pub async fn propose(&self, command: Command) -> Result<(), ProposeError> {
        crate::audit::propose_audited(command, |command| self.propose_unaudited(command)).await
    }

    async fn propose_unaudited(&self, command: Command) -> Result<(), ProposeError> {
        let raft = self.raft.clone();
        let written = self
            .runtime
            .spawn(async move { tokio::time::timeout(PROPOSE_TIMEOUT, raft.client_write(command)).await })
            .await
            .map_err(|error| ProposeError::OutcomeUnknown(error.to_string()))?;
        match written {
            Err(_elapsed) => Err(ProposeError::OutcomeUnknown("timed out waiting for commit".to_owned())),
            Ok(Ok(response)) => match response.data {
                CommandOutcome::Applied => Ok(()),
                CommandOutcome::Rejected(rejection) => Err(ProposeError::Rejected(rejection)),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader { leader: forward.leader_id })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
                Err(ProposeError::OutcomeUnknown(error.to_string()))
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(ProposeError::OutcomeUnknown(fatal.to_string())),
        }
    }

    /// Waits until this node sees a leader, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> bool {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if metrics.borrow().current_leader.is_some() {
                return true;
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => continue,
                _ => return false,
            }
        }
    }

    /// Whether a leader is known. (A restarted single node re-applies its committed log before
    /// openraft reports a leader, so a known leader also means the local state has caught up.)
    pub fn has_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader.is_some()
    }

    pub async fn shutdown(&self) {
        let raft = self.raft.clone();
        if let Ok(Err(error)) = self.runtime.spawn(async move { raft.shutdown().await }).await {
            tracing::warn!(error = %error, "raft did not shut down cleanly");
        }
        if let Err(error) = self.db.flush_async().await {
            tracing::warn!(error = %error, "final storage flush failed");
        }
    }
}
