//! `linkmesh restore --from FILE --data-dir D`: a new one-node cluster holding a backup's fleet.
//!
//! Offline, and through the same path as a first start: the data key from the backup is written as
//! `data-key`, the store is created as for an empty data dir (`data_dir::open_store`: a new cluster id,
//! a new node id, the identity record and durable facts), openraft initializes the one-voter
//! membership, and the first command is `Command::RestoreFleet` instead of `Command::Bootstrap`. Then a
//! snapshot is taken and the log purged up to it, so nodes that join later receive the fleet as a
//! snapshot in chunks rather than as one log entry of any size, and Raft stops cleanly. A marker file
//! (`data_dir::RESTORE_MARKER_FILE`) is there from the first write to the last: a restore cut short
//! (killed, power lost) leaves a data dir that `serve` and `check` refuse (exit 3), never one that
//! starts with part of the fleet or bootstraps an empty cluster.
//!
//! What is reset (`docs/operations.md`, "Backup and restore"): the cluster id and node id are new (so
//! the cluster credential is new, and nodes of the old cluster cannot talk to this one); sign-in
//! sessions and join tokens of the old cluster are not carried over; every slot belongs to the new
//! node, one epoch past the backup's. Users, service accounts and their tokens, collectors and their
//! tokens, pipelines, sources, destinations (sealed credentials), routes, config versions, events and
//! the audit log are kept as backed up. The membership records no address for the node until `serve`
//! starts on the data dir and writes the ones it binds (`RaftNode::record_own_addresses`).

use std::path::Path;
use std::time::Duration;

use super::{Backup, BackupError, Summary};
use crate::cluster::credential::ClusterCredential;
use crate::cluster::peers::PeerPool;
use crate::config::RaftSettings;
use crate::model::{Command, UnixMillis};
use crate::raft::data_dir::{self, Contents, DataDirError, RESTORE_MARKER_FILE};
use crate::raft::storage_health::StorageHealth;
use crate::raft::{NodeInfo, RaftNode};
use crate::secrets::DataKey;

/// How long the new one-node cluster may take to elect itself, apply the fleet and take its snapshot.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Backup { path: String, source: BackupError },
    #[error(
        "data dir {path} is not empty; restore only into a new or empty directory (it never overwrites a \
         node's data)"
    )]
    NotEmpty { path: String },
    #[error(
        "LINKMESH_DATA_KEY is set to another key (fingerprint {env}) than the backup's ({backup}); unset it, \
         or set it to the backup's key"
    )]
    KeyMismatch { env: String, backup: String },
    #[error(transparent)]
    DataKey(#[from] crate::secrets::DataKeyError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot restore into {path}: {what}")]
    Failed { path: String, what: String },
}

impl RestoreError {
    /// 1 for everything a user can fix (the file, the directory, the key); 4 when storage failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            RestoreError::DataDir(error) if error.exit_code() == 4 => 4,
            _ => 1,
        }
    }
}

/// What a finished restore created.
#[derive(Debug, Clone)]
pub struct Restored {
    pub cluster_id: String,
    pub node_id: u64,
    /// The cluster the backup was taken from.
    pub source_cluster_id: String,
    pub summary: Summary,
}

/// Restores the backup in `file` into `data_dir` (absent or empty). On failure nothing is left in
/// `data_dir` but the directory itself (when it existed before).
pub fn run(file: &Path, data_dir: &Path) -> Result<Restored, RestoreError> {
    let bytes = std::fs::read(file)
        .map_err(|source| RestoreError::Read { path: file.display().to_string(), source })?;
    let (backup, data_key) = Backup::parse(&bytes)
        .map_err(|source| RestoreError::Backup { path: file.display().to_string(), source })?;
    drop(bytes);
    if let Ok(env) = std::env::var("LINKMESH_DATA_KEY") {
        let env_key = DataKey::load_or_create(Some(&env), data_dir)?;
        if env_key.fingerprint() != data_key.fingerprint() {
            return Err(RestoreError::KeyMismatch {
                env: env_key.fingerprint(),
                backup: data_key.fingerprint(),
            });
        }
    }
    let existed = data_dir.exists();
    if existed && !is_empty_dir(data_dir) {
        return Err(RestoreError::NotEmpty { path: data_dir.display().to_string() });
    }
    let restored = create(&backup, &data_key, data_dir);
    if restored.is_err() {
        // The directory was empty or absent: what is in it now is this restore's, half done.
        let _ = if existed { empty_dir(data_dir) } else { std::fs::remove_dir_all(data_dir) };
    }
    restored
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

fn empty_dir(path: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn create(backup: &Backup, data_key: &DataKey, data_dir: &Path) -> Result<Restored, RestoreError> {
    data_dir::prepare(data_dir)?;
    let marker = data_dir.join(RESTORE_MARKER_FILE);
    let marker_error = |source: std::io::Error| RestoreError::Failed {
        path: data_dir.display().to_string(),
        what: format!("{RESTORE_MARKER_FILE}: {source}"),
    };
    // First in, last out: until it goes, `serve` and `check` refuse the data dir.
    crate::secrets::write_private_file(&marker, "linkmesh restore is writing this data dir")
        .and_then(|()| sync_dir(data_dir))
        .map_err(marker_error)?;
    data_key.store(data_dir)?;
    let store =
        data_dir::open_store(data_dir, Contents::Empty, &data_key.fingerprint(), StorageHealth::new(), None)?;
    let identity = store.identity.clone();
    let failed = |what: String| RestoreError::Failed { path: data_dir.display().to_string(), what };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("linkmesh-restore")
        .enable_all()
        .build()
        .map_err(|error| failed(format!("cannot start a runtime: {error}")))?;
    let handle = runtime.handle().clone();
    let credential = ClusterCredential::derive(data_key, &identity.cluster_id);
    let fleet = Box::new(backup.fleet.restorable());
    let applied = runtime.block_on(async move {
        // One voter and no peers: nothing is ever dialled. Effects are for actors, of which there are none.
        let peers = PeerPool::new(credential, None, handle.clone());
        let (effects, _no_actors) = tokio::sync::mpsc::unbounded_channel();
        let raft =
            RaftNode::start(store, NodeInfo::default(), &RaftSettings::default(), handle, effects, peers)
                .await
                .map_err(|error| error.to_string())?;
        let outcome = install(&raft, fleet).await;
        raft.shutdown().await;
        match raft.storage_health().failure() {
            Some(failure) => Err(format!("storage failed: {failure}")),
            None => outcome,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    applied.map_err(failed)?;
    std::fs::remove_file(&marker).and_then(|()| sync_dir(data_dir)).map_err(marker_error)?;
    Ok(Restored {
        cluster_id: identity.cluster_id,
        node_id: identity.node_id,
        source_cluster_id: backup.source.cluster_id.clone(),
        summary: backup.summary(),
    })
}

/// Elects the one voter, applies the fleet as the cluster's first command, snapshots and purges.
async fn install(raft: &RaftNode, fleet: Box<crate::model::RestoredFleet>) -> Result<(), String> {
    if !raft.wait_for_leader(STEP_TIMEOUT).await {
        return Err(format!("the new node did not elect itself within {STEP_TIMEOUT:?}"));
    }
    let command = Command::RestoreFleet { node_id: raft.node_id(), fleet, at: UnixMillis::now() };
    raft.propose(command).await.map_err(|error| format!("the fleet was not applied: {error}"))?;
    let applied = raft.metrics().last_applied;
    let openraft = raft.openraft().clone();
    openraft.trigger().snapshot().await.map_err(|error| error.to_string())?;
    let snapshot_taken = |metrics: &crate::raft::membership::RaftMetrics| metrics.snapshot >= applied;
    wait_for(raft, snapshot_taken, "the snapshot").await?;
    let upto = applied.map_or(0, |log_id| log_id.index);
    openraft.trigger().purge_log(upto).await.map_err(|error| error.to_string())?;
    wait_for(raft, |metrics| metrics.purged >= applied, "the log purge").await
}

async fn wait_for(
    raft: &RaftNode,
    done: impl Fn(&crate::raft::membership::RaftMetrics) -> bool,
    what: &str,
) -> Result<(), String> {
    let mut metrics = raft.metrics_watch();
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        if done(&metrics.borrow_and_update()) {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, metrics.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Err(format!("{what} did not finish within {STEP_TIMEOUT:?}")),
        }
    }
}
