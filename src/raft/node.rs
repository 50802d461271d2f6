//! A running Raft member: opens storage, starts openraft on its own runtime, and proposes commands.
//!
//! Any member takes a proposal. The leader writes it; a follower or learner forwards it once to the
//! leader's `Propose` RPC (`cluster/service.rs`), which answers with the outcome and the log index it
//! was applied at, and then waits until it has applied that index itself, so a write that returned
//! here is visible in the next read here. While no leader is known (an election), a proposal waits up
//! to [`LEADER_WAIT`] for one; a leader that turns out not to be one any more gets one retry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use parking_lot::RwLockReadGuard;
use tokio::sync::mpsc::UnboundedSender;

use crate::cluster::catch_up::CatchUp;
use crate::cluster::ownership::Ownership;
use crate::cluster::payload;
use crate::cluster::peers::{PeerError, PeerPool};
use crate::proto::cluster::v1::{propose_reply, ProposeRequest};

use super::data_dir::OpenedStore;
use super::durable::DurableDb;
use super::identity::Identity;
use super::log_store::SledLogStore;
use super::network::PeerNetwork;
use super::snapshot_schedule::{SnapshotRules, SnapshotSchedule};
use super::state_machine::{AppliedState, SharedState, SledStateMachine};
use super::storage_health::StorageHealth;
use super::types::{NodeInfo, Raft};
use crate::model::{ApplyError, Command, CommandOutcome, Effect};

/// How long a proposal may wait for commitment before its outcome is reported as unknown.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A forwarded proposal: the leader's own [`PROPOSE_TIMEOUT`] plus the round trip.
const FORWARDED_PROPOSE_TIMEOUT: Duration = Duration::from_secs(12);
/// After the leader applied a forwarded write, how long this node may take to apply it too before
/// the write is reported as "outcome unknown" (it committed, but is not readable here yet).
const FORWARDED_APPLY_WAIT: Duration = Duration::from_secs(5);
/// How long a proposal waits for a leader during an election (several election timeouts).
pub const LEADER_WAIT: Duration = Duration::from_secs(3);
/// Snapshot chunks sent to a lagging peer: one `InstallSnapshot` call each (bytes outside the JSON).
pub const SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// One snapshot chunk may take this long, the last one included (its receiver decodes and persists
/// the whole snapshot before answering).
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 30_000;

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
    /// No leader could be reached to take the write (none elected, or its address is unknown or it
    /// could not be dialled): nothing was written.
    #[error("no leader could take the write (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the write may or may not have committed: {0}")]
    OutcomeUnknown(String),
}

/// A write applied by the leader: its outcome and the log index it was applied at.
#[derive(Debug, Clone)]
pub struct AppliedWrite {
    pub outcome: CommandOutcome,
    pub log_index: u64,
}

#[derive(Clone)]
pub struct RaftNode {
    identity: Arc<Identity>,
    raft: Raft,
    state: SharedState,
    runtime: tokio::runtime::Handle,
    db: sled::Db,
    durable: DurableDb,
    health: Arc<StorageHealth>,
    peers: PeerPool,
    log_flush_seconds: prometheus_client::metrics::histogram::Histogram,
    /// Slot ownership beside Raft: the owner lease, drains and transfers (`cluster/ownership.rs`).
    ownership: Arc<Ownership>,
    /// Coalesced catch-ups before an unknown collector token is refused (`cluster/catch_up.rs`).
    catch_up: Arc<CatchUp>,
}

/// Where a proposal goes now.
enum Route {
    Here,
    Peer { leader: u64, rpc_addr: String },
    Nowhere { leader: Option<u64> },
}

impl RaftNode {
    /// Starts openraft on `runtime` over a store [`super::data_dir::open_store`] verified. A one-voter
    /// cluster is initialized only when the store says so (a fresh data dir); never on restart, and
    /// never on a node that joined: that one waits for its leader to replicate the membership.
    pub async fn start(
        store: OpenedStore,
        node_info: NodeInfo,
        settings: &crate::config::RaftSettings,
        runtime: tokio::runtime::Handle,
        effects: UnboundedSender<Effect>,
        peers: PeerPool,
    ) -> Result<RaftNode, StartError> {
        Self::launch(store, node_info, settings, runtime, effects, peers, false).await
    }

    /// A fresh member that initializes nothing and waits for a leader to add it (the multi-node
    /// transport tests; joining nodes will start this way).
    #[cfg(test)]
    pub(crate) async fn start_awaiting_leader(
        store: OpenedStore,
        node_info: NodeInfo,
        settings: &crate::config::RaftSettings,
        runtime: tokio::runtime::Handle,
        effects: UnboundedSender<Effect>,
        peers: PeerPool,
    ) -> Result<RaftNode, StartError> {
        Self::launch(store, node_info, settings, runtime, effects, peers, true).await
    }

    async fn launch(
        store: OpenedStore,
        node_info: NodeInfo,
        settings: &crate::config::RaftSettings,
        runtime: tokio::runtime::Handle,
        effects: UnboundedSender<Effect>,
        peers: PeerPool,
        await_leader: bool,
    ) -> Result<RaftNode, StartError> {
        let OpenedStore { durable, identity, initialize, joined } = store;
        let node_id = identity.node_id;
        let db = durable.db.clone();
        let durable_handle = durable.clone();
        let health = durable.health.clone();
        let log_flush_seconds = durable.log_flush_seconds.clone();
        let log_store = SledLogStore::open(durable.clone()).map_err(StartError::Storage)?;
        let state_machine = SledStateMachine::open(durable, effects)
            .map_err(|error| StartError::StateMachine(error.to_string()))?;
        let state = state_machine.shared_state();

        let config = openraft::Config {
            cluster_name: "linkmesh".to_owned(),
            heartbeat_interval: millis(settings.heartbeat_interval),
            election_timeout_min: millis(settings.election_timeout),
            election_timeout_max: millis(settings.election_timeout * 2),
            max_payload_entries: settings.max_entries_per_append,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            snapshot_policy: openraft::SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: settings.logs_kept_after_snapshot,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|error| StartError::Raft(error.to_string()))?;

        let network = PeerNetwork::new(peers.clone());
        let raft = runtime
            .spawn(async move {
                let raft = Raft::new(node_id, Arc::new(config), network, log_store, state_machine)
                    .await
                    .map_err(|error| error.to_string())?;
                let initialized = raft.is_initialized().await.map_err(|error| error.to_string())?;
                if await_leader {
                    // Added by a leader later: nothing to initialize or check yet.
                } else if initialize && !initialized {
                    let members = BTreeMap::from([(node_id, node_info)]);
                    raft.initialize(members).await.map_err(|error| error.to_string())?;
                } else if !initialized && !joined {
                    // `open_store` verified a store with a vote and a log; openraft must agree.
                    return Err("the verified store holds no membership".to_owned());
                }
                Ok::<_, String>(raft)
            })
            .await
            .map_err(|error| StartError::Raft(error.to_string()))?
            .map_err(StartError::Raft)?;

        runtime.spawn(watch_core(raft.clone(), health.clone()));
        durable_handle.snapshot_schedule.set_rules(SnapshotRules::from_settings(settings));
        runtime.spawn(snapshot_when_due(raft.clone(), durable_handle.snapshot_schedule.clone()));
        Ok(RaftNode {
            identity: Arc::new(identity),
            raft,
            state,
            runtime,
            db,
            durable: durable_handle,
            health,
            peers,
            log_flush_seconds,
            ownership: Arc::new(Ownership::new(crate::config::ClusterSettings::default().node_down_after)),
            catch_up: Arc::default(),
        })
    }

    /// openraft itself, for the peer service that hands it Raft RPCs, membership changes and status.
    pub fn openraft(&self) -> &Raft {
        &self.raft
    }

    /// The client pool this node calls its peers with.
    pub fn peers(&self) -> &PeerPool {
        &self.peers
    }

    /// This node's owner lease and the leader's balancing state (`cluster/ownership.rs`).
    pub fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }

    /// This node's coalesced catch-ups (`cluster/catch_up.rs`; run by `cluster/read_index.rs`).
    pub fn catch_up(&self) -> &Arc<CatchUp> {
        &self.catch_up
    }

    /// The runtime openraft runs on: calls into it are spawned there.
    pub(super) fn runtime_handle(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// This node's commit index (what openraft last saved as committed).
    pub fn commit_index(&self) -> Option<u64> {
        self.durable.committed().map(|committed| committed.index)
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
        // Before it can reach any log: a member of an older release could not decode it.
        self.state().fleet.admits(&command)?;
        let node = self.clone();
        let health = self.health.clone();
        // On the raft runtime: peer channels and openraft live there. A storage failure may leave the
        // core unable to answer; in-flight writes are told at once.
        self.runtime
            .spawn(async move {
                tokio::select! {
                    routed = node.propose_routed(command) => routed,
                    failure = health.failed() => {
                        Err(ProposeError::OutcomeUnknown(format!("storage failed: {failure}")))
                    }
                }
            })
            .await
            .map_err(|error| ProposeError::OutcomeUnknown(error.to_string()))?
    }

    /// Writes here when this node leads, else forwards once to the leader; one retry when the
    /// leader moved in between (its write was refused, so nothing committed).
    async fn propose_routed(&self, command: Command) -> Result<(), ProposeError> {
        let mut refused_by = None;
        let mut last_leader = None;
        for _attempt in 0..2 {
            let outcome = match self.route(refused_by).await {
                Route::Nowhere { leader } => return Err(ProposeError::NotLeader { leader }),
                Route::Here => match self.write_here(command.clone()).await {
                    Err(ProposeError::NotLeader { leader }) => {
                        refused_by = Some(self.node_id());
                        last_leader = leader;
                        continue;
                    }
                    written => written?.outcome,
                },
                Route::Peer { leader, rpc_addr } => match self.forward(leader, &rpc_addr, &command).await {
                    Err(ProposeError::NotLeader { leader: hint }) => {
                        refused_by = Some(leader);
                        last_leader = hint.or(Some(leader));
                        continue;
                    }
                    forwarded => forwarded?.outcome,
                },
            };
            return match outcome {
                CommandOutcome::Applied => Ok(()),
                CommandOutcome::Rejected(rejection) => Err(ProposeError::Rejected(rejection)),
            };
        }
        Err(ProposeError::NotLeader { leader: last_leader })
    }

    /// While this leader hands leadership over (`cluster/admin.rs`), new entries wait: a log that
    /// keeps growing here leaves the target behind, and the followers then refuse it their votes (seen
    /// in the chaos run: the old leader won its own election back). When the transfer ends, the write
    /// goes on; if the lead moved, `client_write` refuses it and the caller retries at the new leader.
    async fn hold_during_transfer(&self) {
        let ownership = self.ownership();
        while ownership.transferring(tokio::time::Instant::now().into_std()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The leader to send a proposal to, waiting up to [`LEADER_WAIT`] (or three of the longest
    /// elections) while none is known (or while
    /// the only one known is `refused_by`, which just said it no longer leads).
    async fn route(&self, refused_by: Option<u64>) -> Route {
        let mut metrics = self.raft.metrics();
        // Several elections: with the default timing one takes 1–2 s after the leader went quiet.
        let longest_election = Duration::from_millis(self.raft.config().election_timeout_max);
        let deadline = tokio::time::Instant::now() + LEADER_WAIT.max(longest_election * 3);
        loop {
            let leader = {
                let current = metrics.borrow_and_update();
                match current.current_leader {
                    Some(leader) if Some(leader) != refused_by => {
                        if leader == self.node_id() {
                            return Route::Here;
                        }
                        let node = current.membership_config.membership().get_node(&leader).cloned();
                        match node {
                            Some(node) if !node.rpc_addr.is_empty() => {
                                return Route::Peer { leader, rpc_addr: node.rpc_addr };
                            }
                            _ => Some(leader),
                        }
                    }
                    other => other,
                }
            };
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Route::Nowhere { leader },
            }
        }
    }

    /// Writes through this node's openraft: only a leader takes it (else `NotLeader`, nothing written).
    async fn write_here(&self, command: Command) -> Result<AppliedWrite, ProposeError> {
        self.hold_during_transfer().await;
        let written = tokio::time::timeout(PROPOSE_TIMEOUT, self.raft.client_write(command)).await;
        match written {
            Err(_elapsed) => Err(ProposeError::OutcomeUnknown("timed out waiting for commit".to_owned())),
            Ok(Ok(response)) => Ok(AppliedWrite { outcome: response.data, log_index: response.log_id.index }),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader { leader: forward.leader_id })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
                Err(ProposeError::OutcomeUnknown(error.to_string()))
            }
            Ok(Err(RaftError::Fatal(fatal))) => Err(ProposeError::OutcomeUnknown(fatal.to_string())),
        }
    }

    /// A proposal a follower forwarded: written here if this node leads, never forwarded again.
    pub async fn propose_as_leader(&self, command: Command) -> Result<AppliedWrite, ProposeError> {
        if let Some(failure) = self.health.failure() {
            return Err(ProposeError::OutcomeUnknown(format!("storage failed: {failure}")));
        }
        self.state().fleet.admits(&command)?;
        let health = self.health.clone();
        tokio::select! {
            written = self.write_here(command) => written,
            failure = health.failed() => Err(ProposeError::OutcomeUnknown(format!("storage failed: {failure}"))),
        }
    }

    /// Sends `command` to the leader's `Propose` and, once the leader applied it, waits until this
    /// node applied the same index.
    async fn forward(
        &self,
        leader: u64,
        rpc_addr: &str,
        command: &Command,
    ) -> Result<AppliedWrite, ProposeError> {
        let unknown = |detail: String| ProposeError::OutcomeUnknown(detail);
        let request = ProposeRequest {
            command: payload::to_json(command).map_err(|error| unknown(error.to_string()))?,
        };
        let reply = self
            .peers
            .call(leader, rpc_addr, request, FORWARDED_PROPOSE_TIMEOUT, |mut client, request| async move {
                client.propose(request).await
            })
            .await;
        let result = match reply {
            Ok(reply) => reply.result,
            // Never delivered: the leader has not seen it, so it is as if it had refused.
            Err(error @ PeerError::Unreachable { .. } | error @ PeerError::InvalidAddress { .. }) => {
                tracing::warn!(leader, error = %error, "cannot forward a write to the leader");
                return Err(ProposeError::NotLeader { leader: Some(leader) });
            }
            Err(error) => return Err(unknown(format!("forwarded to leader {leader}: {error}"))),
        };
        let applied = match result {
            Some(propose_reply::Result::Applied(applied)) => applied,
            Some(propose_reply::Result::NotLeader(not_leader)) => {
                let hint = not_leader.leader_known.then_some(not_leader.leader_id);
                return Err(ProposeError::NotLeader { leader: hint });
            }
            Some(propose_reply::Result::OutcomeUnknown(detail)) => {
                return Err(unknown(format!("leader {leader}: {detail}")));
            }
            None => return Err(unknown(format!("leader {leader} sent an empty reply"))),
        };
        let outcome: CommandOutcome = payload::from_json(&applied.outcome)
            .map_err(|error| unknown(format!("leader {leader} applied the write but its reply {error}")))?;
        let written = AppliedWrite { outcome, log_index: applied.log_index };
        if matches!(written.outcome, CommandOutcome::Applied)
            && self.wait_applied(Some(written.log_index), FORWARDED_APPLY_WAIT).await
                < Some(written.log_index)
        {
            return Err(unknown(format!(
                "the leader applied the write at index {} but this node has not yet",
                written.log_index
            )));
        }
        Ok(written)
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

/// Asks openraft for a snapshot whenever [`SnapshotSchedule`] says one is due (openraft's own policy is
/// `Never`: it counts only entries, the same on every member). Ends with the core.
async fn snapshot_when_due(raft: Raft, schedule: Arc<SnapshotSchedule>) {
    let mut metrics = raft.metrics();
    loop {
        tokio::select! {
            () = schedule.due.notified() => {}
            changed = metrics.changed() => {
                if changed.is_err() || metrics.borrow_and_update().running_state.is_err() {
                    return;
                }
                continue;
            }
        }
        if schedule.take_due() {
            tracing::info!(
                "the log since the last snapshot reached the snapshot schedule; taking a snapshot"
            );
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
