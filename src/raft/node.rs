//! A running Raft member: opens storage, starts openraft on its own runtime, and proposes commands.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use parking_lot::RwLockReadGuard;
use tokio::sync::mpsc::UnboundedSender;

use super::data_dir::OpenedStore;
use super::identity::Identity;
use super::log_store::SledLogStore;
use super::network::PeerNetwork;
use super::state_machine::{AppliedState, SharedState, SledStateMachine};
use super::storage_health::StorageHealth;
use super::types::{NodeInfo, Raft};
use crate::model::{ApplyError, Command, CommandOutcome, Effect};

/// How long a proposal may wait for commitment before its outcome is reported as unknown.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read of the core's own state (`committed_index`) may take: it answers between two
/// events of its loop, so anything longer means the core is stuck or gone.
const CORE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the raft store: {0}")]
    Storage(sled::Error),
    /// The snapshot passed its checksum but cannot be restored: damage (exit 3).
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
    identity: Arc<Identity>,
    raft: Raft,
    state: SharedState,
    runtime: tokio::runtime::Handle,
    db: sled::Db,
    health: Arc<StorageHealth>,
    log_flush_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl RaftNode {
    /// Starts openraft on `runtime` over a store [`super::data_dir::open_store`] verified. A one-voter
    /// cluster is initialized only when the store says so (a fresh data dir); never on restart.
    pub async fn start(
        store: OpenedStore,
        node_info: NodeInfo,
        settings: &crate::config::RaftSettings,
        runtime: tokio::runtime::Handle,
        effects: UnboundedSender<Effect>,
    ) -> Result<RaftNode, StartError> {
        let OpenedStore { durable, identity, initialize } = store;
        let node_id = identity.node_id;
        let db = durable.db.clone();
        let health = durable.health.clone();
        let log_flush_seconds = durable.log_flush_seconds.clone();
        let log_store = SledLogStore::open(durable.clone()).map_err(StartError::Storage)?;
        let state_machine = SledStateMachine::open(durable, effects)
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
                let initialized = raft.is_initialized().await.map_err(|error| error.to_string())?;
                if initialize && !initialized {
                    let members = BTreeMap::from([(node_id, node_info)]);
                    raft.initialize(members).await.map_err(|error| error.to_string())?;
                } else if !initialized {
                    // `open_store` verified a store with a vote and a log; openraft must agree.
                    return Err("the verified store holds no membership".to_owned());
                }
                Ok::<_, String>(raft)
            })
            .await
            .map_err(|error| StartError::Raft(error.to_string()))?
            .map_err(StartError::Raft)?;

        runtime.spawn(watch_core(raft.clone(), health.clone()));
        Ok(RaftNode { identity: Arc::new(identity), raft, state, runtime, db, health, log_flush_seconds })
    }

    pub fn node_id(&self) -> u64 {
        self.identity.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.identity.cluster_id
    }

    /// Set once storage failed; from then on this replica must not serve.
    pub fn storage_health(&self) -> &Arc<StorageHealth> {
        &self.health
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
        if let Some(failure) = self.health.failure() {
            return Err(ProposeError::OutcomeUnknown(format!("storage failed: {failure}")));
        }
        let raft = self.raft.clone();
        let health = self.health.clone();
        // A storage failure may leave the core unable to answer; in-flight writes are told at once.
        let written = self
            .runtime
            .spawn(async move {
                tokio::select! {
                    written = tokio::time::timeout(PROPOSE_TIMEOUT, raft.client_write(command)) => Ok(written),
                    failure = health.failed() => Err(failure),
                }
            })
            .await
            .map_err(|error| ProposeError::OutcomeUnknown(error.to_string()))?
            .map_err(|failure| ProposeError::OutcomeUnknown(format!("storage failed: {failure}")))?;
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

    /// The histogram the log store times each append's flush into (exported by `crate::metrics`).
    pub fn log_flush_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.log_flush_seconds.clone()
    }

    /// openraft's metrics watch (term, leader, last log and applied index; no committed index).
    pub fn metrics_watch(&self) -> tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, NodeInfo>> {
        self.raft.metrics()
    }

    /// The highest log index openraft's core holds as committed (`None`: nothing committed yet); an
    /// error when the core does not answer within [`CORE_QUERY_TIMEOUT`] or storage failed (the core
    /// quits then). Its metrics do not carry this figure.
    pub async fn committed_index(&self) -> Result<Option<u64>, String> {
        let raft = self.raft.clone();
        let health = self.health.clone();
        self.runtime
            .spawn(async move {
                let committed = raft.with_raft_state(|state| state.committed.map(|log_id| log_id.index));
                tokio::select! {
                    answer = tokio::time::timeout(CORE_QUERY_TIMEOUT, committed) => match answer {
                        Ok(Ok(committed)) => Ok(committed),
                        Ok(Err(fatal)) => Err(fatal.to_string()),
                        Err(_elapsed) => Err("the raft core did not answer in time".to_owned()),
                    },
                    failure = health.failed() => Err(format!("storage failed: {failure}")),
                }
            })
            .await
            .map_err(|error| error.to_string())?
    }

    /// Waits up to `timeout` until this node has applied `index`; returns the applied index seen last.
    pub async fn wait_applied(&self, index: Option<u64>, timeout: Duration) -> Option<u64> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let applied = metrics.borrow_and_update().last_applied.map(|log_id| log_id.index);
            if applied >= index {
                return applied;
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => continue,
                _ => return applied,
            }
        }
    }

    pub async fn shutdown(&self) {
        if self.health.failure().is_some() {
            // The core already quit; flushing a failed device again would only add errors.
            return;
        }
        let raft = self.raft.clone();
        if let Ok(Err(error)) = self.runtime.spawn(async move { raft.shutdown().await }).await {
            tracing::warn!(error = %error, "raft did not shut down cleanly");
        }
        if let Err(error) = self.db.flush_async().await {
            tracing::warn!(error = %error, "final storage flush failed");
        }
    }
}

/// openraft's core quits on a storage error (or a panic) and cannot be restarted in place; the store
/// usually reports its own error first, this catches the rest.
async fn watch_core(raft: Raft, health: Arc<StorageHealth>) {
    let mut metrics = raft.metrics();
    loop {
        let running = metrics.borrow_and_update().running_state.clone();
        match running {
            Ok(()) => {}
            Err(openraft::error::Fatal::Stopped) => return,
            Err(fatal) => {
                health.fail("raft core stopped", &fatal);
                return;
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
