//! The state machine: committed commands applied to the in-memory [`FleetState`], snapshots in files.
//!
//! Persistence strategy (openraft's "persistent snapshot" option): `apply` only mutates memory; each
//! snapshot is streamed to a file in `<data-dir>/snapshots/` ([`super::snapshot_file`]) and fsynced,
//! then recorded in sled (its metadata and the file's name, length and CRC-32, checksummed,
//! [`super::framing`]) and flushed, and the durable facts raised to it in the same step; the file it
//! replaced is removed only then. On restart the state is rebuilt from the last snapshot and openraft
//! re-applies the committed log after it. Readers share the state through [`SharedState`].
//!
//! From feature level 3 on, `apply` also commits the history writes the commands return (collector
//! events) to the history tree, without a flush, in one sled batch per call with the last applied log
//! id; snapshots carry that tree after the state ([`super::history_store`], docs/adr/0009).

use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc::UnboundedSender;

use super::durable::{
    DurableDb, Flushed, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_FILE, KEY_SNAPSHOT_META, SNAPSHOT_TREE,
};
use super::framing;
use super::history_store;
use super::snapshot_file::{self, SnapshotEncoding, SnapshotFile, SnapshotWriter};
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::model::event::Event;
use crate::model::feature_level::{FeatureLevel, THIS_RELEASE};
use crate::model::{CollectorRecord, CommandOutcome, Effect, FleetState};

/// The applied state, shared read-only with the rest of the node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub fleet: FleetState,
    /// The history tree (`raft/history_store.rs`) at the same log id as `fleet` for every reader that
    /// goes through [`AppliedState::events_after`] or [`AppliedState::fleet_digest`]: `apply` commits
    /// to it just after releasing the write lock, and those wait for [`HistoryCommit`] meanwhile.
    /// `None` outside a store (tests of the model alone, benchmarks).
    #[serde(skip)]
    pub history: Option<sled::Tree>,
    #[serde(skip)]
    pub history_commit: Arc<HistoryCommit>,
}

/// The commit of one `apply` call's history writes, which runs after the state's write lock is
/// released: a fleet-wide change's acknowledgements are tens of thousands of event inserts, and every
/// reader of a config or a status would otherwise wait for them. The apply marks it under way while
/// it still holds the write lock, so a reader that comes after the model changed waits for the tree
/// to catch up, and one that came before held the lock and saw both before.
#[derive(Debug, Default)]
pub struct HistoryCommit {
    under_way: Mutex<bool>,
    done: parking_lot::Condvar,
}

/// A reader waits at most this long for a commit (one that failed leaves the store failed; its
/// readers get what the tree has).
const HISTORY_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl HistoryCommit {
    fn begin(&self) {
        *self.under_way.lock() = true;
    }

    fn end(&self) {
        *self.under_way.lock() = false;
        self.done.notify_all();
    }

    /// Returns once no commit is under way.
    fn settled(&self) {
        let mut under_way = self.under_way.lock();
        while *under_way {
            if self.done.wait_for(&mut under_way, HISTORY_COMMIT_WAIT).timed_out() {
                return;
            }
        }
    }
}

pub type SharedState = Arc<RwLock<AppliedState>>;

impl AppliedState {
    /// SHA-256 of the fleet model's serialization. Every map in it is ordered, so replicas that applied
    /// the same log give the same digest: the convergence check compares it across nodes.
    /// The history tree's entries (every collector's events, once on disk) are part of it.
    pub fn fleet_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        self.history_commit.settled();
        let mut hasher = sha2::Sha256::new();
        serde_json::to_writer(&mut hasher, &self.fleet).expect("the fleet model serializes");
        if let Some(tree) = &self.history {
            for entry in history_store::entries(tree) {
                match entry {
                    Ok((key, value)) => {
                        hasher.update((key.len() as u64).to_le_bytes());
                        hasher.update(&key);
                        hasher.update((value.len() as u64).to_le_bytes());
                        hasher.update(&value);
                    }
                    Err(error) => hasher.update(error.as_bytes()),
                }
            }
        }
        hasher.finalize().into()
    }

    /// `record`'s events with an id greater than `after`, oldest first, at most `limit`: from memory,
    /// or from the history tree once they are on disk.
    pub fn events_after(
        &self,
        record: &CollectorRecord,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, String> {
        if !record.events_on_disk() {
            return Ok(record.events_after(after, limit).cloned().collect());
        }
        self.history_commit.settled();
        match &self.history {
            Some(tree) => history_store::events_after(tree, record.history_key, after, limit),
            None => Err("this state has no history tree".to_owned()),
        }
    }
}

/// The encoding this node writes its next snapshot in: the one place that decision is made. Binary
/// once the cluster's feature level says every member reads it (`model/feature_level.rs`); JSON
/// before, since a member of an older release that lags would receive this snapshot. Levels never
/// go down, so a binary snapshot never reaches a node that cannot read it.
pub fn snapshot_encoding(state: &AppliedState) -> SnapshotEncoding {
    if state.fleet.feature_level() >= FeatureLevel::HISTORY_ON_DISK {
        SnapshotEncoding::BinaryWithHistory
    } else if state.fleet.feature_level() >= FeatureLevel::BATCH_AND_BINARY_SNAPSHOTS {
        SnapshotEncoding::Binary
    } else {
        SnapshotEncoding::Json
    }
}

/// Where the current snapshot's data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotBody {
    /// In sled itself (store formats up to 3; moved to a file when the store is opened).
    Inline(Vec<u8>),
    /// In a file of the snapshot dir (store format 4 on).
    File(SnapshotFile),
}

pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub body: SnapshotBody,
}

pub struct SledStateMachine {
    state: SharedState,
    store: DurableDb,
    snapshots: sled::Tree,
    effects: UnboundedSender<Effect>,
    /// The file `begin_receiving_snapshot` last created, installed by name when it completes.
    receiving: Arc<Mutex<Option<std::path::PathBuf>>>,
    /// The last log id the history tree held when the store was opened. The log after the snapshot
    /// is applied again at start; the history writes of entries up to here are already in the tree
    /// (a batch records its log id with its writes, and sled recovers a prefix of its batches), so
    /// they are not written again (ADR 0009).
    history_written_before_open: Option<LogId>,
    /// Held (shared) by a snapshot build while it copies the history tree, and (exclusive) by an
    /// install before it drops the tree it replaced: a build and an install may overlap, and a copy
    /// of a tree dropped under it would be a snapshot without the history it claims.
    history_copies: Arc<RwLock<()>>,
    /// Held by a snapshot build for as long as it holds the state's read lock, and taken by every
    /// writer of the state before its write lock: see [`SnapshotGate`].
    snapshot_gate: SnapshotGate,
}

/// Keeps a snapshot build from stalling every reader of the state. The state's lock is task-fair
/// (parking_lot): once a writer waits for it, new readers queue behind that writer. A build holds the
/// read lock for seconds at a million collectors (`BENCHMARKS.md`); an apply arriving meanwhile would
/// wait as a writer, and every poll, push and API read would wait behind it until the build ended (a
/// 1M-collector node served nothing for ~5 s at each snapshot). Writers wait on this mutex instead,
/// which readers never touch; the build takes it before its read lock, so a writer is never parked
/// on the state while a build holds it.
pub type SnapshotGate = Arc<Mutex<()>>;

impl SledStateMachine {
    /// Opens the state machine, restoring the last snapshot if there is one, and removes snapshot
    /// files no longer current (replaced, or left half-written or half-received by a crash).
    pub fn open(store: DurableDb, effects: UnboundedSender<Effect>) -> Result<Self, StorageError> {
        let snapshots =
            store.db.open_tree(SNAPSHOT_TREE).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let stored = read_snapshot(&snapshots, framing::open).map_err(snapshot_read_error)?;
        let current = match &stored {
            Some(StoredSnapshot { body: SnapshotBody::File(file), .. }) => Some(file.name.as_str()),
            _ => None,
        };
        snapshot_file::remove_all_but(&store.snapshot_dir, current);
        let history_name = current_history_tree(&snapshots).map_err(snapshot_read_error)?;
        history_store::drop_all_but(&store.db, &history_name);
        let history =
            store.db.open_tree(&history_name).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let snapshot_log_id = stored.as_ref().and_then(|stored| stored.meta.last_log_id);
        let snapshot_bytes = match stored.as_ref().map(|stored| &stored.body) {
            Some(SnapshotBody::File(file)) => file.bytes,
            Some(SnapshotBody::Inline(data)) => data.len() as u64,
            None => 0,
        };
        let (entries, bytes) =
            super::log_store::logged_after(&store.db, snapshot_log_id.map(|log_id| log_id.index))
                .map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        store.snapshot_schedule.restore(entries, bytes, snapshot_bytes);
        let mut state = match stored {
            Some(stored) => load_state(&store.snapshot_dir, &stored.body).map_err(snapshot_read_error)?,
            None => AppliedState::default(),
        };
        check_history_covers(&state, &history, snapshot_log_id).map_err(snapshot_read_error)?;
        let history_written_before_open = history_store::applied(&history).map_err(snapshot_read_error)?;
        state.history = Some(history);
        Ok(SledStateMachine {
            state: Arc::new(RwLock::new(state)),
            store,
            snapshots,
            effects,
            receiving: Arc::new(Mutex::new(None)),
            history_written_before_open,
            history_copies: Arc::default(),
            snapshot_gate: Arc::default(),
        })
    }

    pub fn shared_state(&self) -> SharedState {
        self.state.clone()
    }
}

/// The name of the current history tree, recorded beside the snapshot.
pub fn current_history_tree(snapshots: &sled::Tree) -> Result<String, String> {
    let Some(value) = snapshots
        .get(history_store::KEY_HISTORY_TREE)
        .map_err(|e| format!("{SNAPSHOT_TREE} cannot be read: {e}"))?
    else {
        return Ok(history_store::HISTORY_TREE.to_owned());
    };
    let payload = framing::open(SNAPSHOT_TREE, history_store::KEY_HISTORY_TREE, &value)
        .map_err(|e| format!("{SNAPSHOT_TREE}/history_tree {e}"))?;
    String::from_utf8(payload.to_vec())
        .map_err(|_| format!("{SNAPSHOT_TREE}/history_tree is not a tree name"))
}

/// Refuses a history tree older than the snapshot it goes with: the events applied before the
/// snapshot would be missing, and the log after it cannot bring them back.
pub fn check_history_covers(
    state: &AppliedState,
    history: &sled::Tree,
    snapshot: Option<LogId>,
) -> Result<(), String> {
    if state.fleet.feature_level() < FeatureLevel::HISTORY_ON_DISK {
        return Ok(());
    }
    let applied = history_store::applied(history)?;
    if applied < snapshot {
        return Err(format!(
            "the history tree holds writes up to log index {} but the snapshot is at {}: collector events \
             applied before the snapshot are missing (restore the node from a backup, or remove its data \
             dir and join it again)",
            applied.map_or(0, |id| id.index),
            snapshot.map_or(0, |id| id.index)
        ));
    }
    Ok(())
}

fn snapshot_read_error(error: String) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(error)).into()
}

/// The current snapshot, its sled values' checksums checked and its metadata decoded (the data, or
/// the file it is in, is not read: see [`snapshot_file::check`]).
pub fn read_snapshot(
    snapshots: &sled::Tree,
    open: framing::Opener,
) -> Result<Option<StoredSnapshot>, String> {
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, String> {
        let Some(value) = snapshots.get(key).map_err(|e| format!("{SNAPSHOT_TREE} cannot be read: {e}"))?
        else {
            return Ok(None);
        };
        let key_name = String::from_utf8_lossy(key);
        open(SNAPSHOT_TREE, key, &value)
            .map(|payload| Some(payload.to_vec()))
            .map_err(|e| format!("{SNAPSHOT_TREE}/{key_name} {e}"))
    };
    let meta = read(KEY_SNAPSHOT_META)?;
    // A file record wins over inline data: a crash while a format-3 store was migrated can leave both.
    let body = match (read(KEY_SNAPSHOT_FILE)?, read(KEY_SNAPSHOT_DATA)?) {
        (Some(file), _) => Some(SnapshotBody::File(
            serde_json::from_slice(&file)
                .map_err(|e| format!("{SNAPSHOT_TREE}/current_file cannot be decoded: {e}"))?,
        )),
        (None, Some(data)) => Some(SnapshotBody::Inline(data)),
        (None, None) => None,
    };
    match (meta, body) {
        (Some(meta), Some(body)) => {
            let meta = serde_json::from_slice(&meta)
                .map_err(|e| format!("{SNAPSHOT_TREE}/current_meta cannot be decoded: {e}"))?;
            Ok(Some(StoredSnapshot { meta, body }))
        }
        (None, None) => Ok(None),
        _ => Err(format!("{SNAPSHOT_TREE} holds only half of a snapshot")),
    }
}

/// Decodes a JSON snapshot held in memory (store formats up to 3, the fixtures).
pub fn decode_state(bytes: &[u8]) -> Result<AppliedState, String> {
    let mut state: AppliedState = snapshot_file::decode_from(bytes)
        .map_err(|e| format!("{SNAPSHOT_TREE}/current_data cannot be decoded: {e}"))?;
    state.fleet.rebuild_indexes();
    Ok(state)
}

/// The state a stored snapshot holds, its indexes rebuilt.
pub fn load_state(snapshot_dir: &std::path::Path, body: &SnapshotBody) -> Result<AppliedState, String> {
    match body {
        SnapshotBody::Inline(data) => decode_state(data),
        SnapshotBody::File(file) => {
            let mut state: AppliedState =
                snapshot_file::decode_file(snapshot_dir, &file.name).map_err(|e| e.to_string())?;
            state.fleet.rebuild_indexes();
            Ok(state)
        }
    }
}

/// Moves a snapshot held inline in sled (store format 3 and earlier) to a file: the file written and
/// fsynced, then the record pointing at it written in one batch with the inline data removed (the
/// caller flushes). A crash before the batch leaves an unreferenced file (removed at the next open)
/// and the inline data; after it, the file. Returns whether there was anything to move.
pub fn move_inline_snapshot_out(
    db: &sled::Db,
    snapshot_dir: &std::path::Path,
    open: framing::Opener,
) -> std::io::Result<bool> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let snapshots = db.open_tree(SNAPSHOT_TREE).map_err(std::io::Error::other)?;
    let Some(StoredSnapshot { meta, body: SnapshotBody::Inline(data) }) =
        read_snapshot(&snapshots, open).map_err(invalid)?
    else {
        return Ok(false);
    };
    let name = snapshot_file::fresh_name(snapshot_dir, &meta.snapshot_id);
    let file = snapshot_file::write_bytes(snapshot_dir, &name, &data)?;
    let record = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let mut batch = sled::Batch::default();
    batch.insert(KEY_SNAPSHOT_FILE, framing::seal(SNAPSHOT_TREE, KEY_SNAPSHOT_FILE, &record));
    batch.remove(KEY_SNAPSHOT_DATA);
    snapshots.apply_batch(batch).map_err(std::io::Error::other)?;
    Ok(true)
}

/// Records `file` (already durable) as the current snapshot in one batch, flushes it, raises the durable
/// facts to it, then removes the file it replaced.
async fn persist_snapshot(
    store: &DurableDb,
    snapshots: &sled::Tree,
    meta: &SnapshotMeta,
    file: SnapshotFile,
    history_tree: Option<&str>,
) -> Result<(), StorageError> {
    let signature = Some(meta.signature());
    let fail = |error: &dyn std::fmt::Display| -> StorageError {
        store.health.fail("snapshot", error);
        StorageIOError::new(
            ErrorSubject::Snapshot(signature.clone()),
            ErrorVerb::Write,
            AnyError::error(error),
        )
        .into()
    };
    let _recording = store.snapshot_lock.lock().await;
    let replaced = match read_snapshot(snapshots, framing::open) {
        Ok(Some(StoredSnapshot { body: SnapshotBody::File(previous), .. })) => Some(previous.name),
        _ => None,
    };
    let meta_bytes = serde_json::to_vec(meta).map_err(|e| fail(&e))?;
    let file_bytes = serde_json::to_vec(&file).map_err(|e| fail(&e))?;
    let mut batch = sled::Batch::default();
    batch.insert(KEY_SNAPSHOT_META, framing::seal(SNAPSHOT_TREE, KEY_SNAPSHOT_META, &meta_bytes));
    batch.insert(KEY_SNAPSHOT_FILE, framing::seal(SNAPSHOT_TREE, KEY_SNAPSHOT_FILE, &file_bytes));
    batch.remove(KEY_SNAPSHOT_DATA);
    if let Some(name) = history_tree {
        let key = history_store::KEY_HISTORY_TREE;
        batch.insert(key, framing::seal(SNAPSHOT_TREE, key, name.as_bytes()));
    }
    snapshots.apply_batch(batch).map_err(|e| fail(&e))?;
    let durable = store.clone();
    let flushed = Flushed { snapshot: meta.last_log_id, ..Flushed::default() };
    tokio::task::spawn_blocking(move || durable.flush_blocking(flushed, "snapshot flush"))
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|e| fail(&e))?;
    store.snapshot_schedule.note_snapshot(file.bytes);
    if let Some(replaced) = replaced.filter(|replaced| *replaced != file.name) {
        if let Err(error) = std::fs::remove_file(store.snapshot_dir.join(&replaced)) {
            tracing::warn!(file = %replaced, error = %error, "the replaced snapshot file could not be removed");
        }
    }
    Ok(())
}

async fn open_snapshot_file(
    store: &DurableDb,
    meta: &SnapshotMeta,
    name: &str,
) -> Result<tokio::fs::File, StorageError> {
    tokio::fs::File::open(store.snapshot_dir.join(name)).await.map_err(|e| {
        store.health.fail("snapshot", &e);
        StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)).into()
    })
}

/// Builds a snapshot: the state streamed to a file under its read lock, the fsyncs after it.
pub struct SnapshotBuilder {
    state: SharedState,
    store: DurableDb,
    snapshots: sled::Tree,
    history_copies: Arc<RwLock<()>>,
    snapshot_gate: SnapshotGate,
}

/// What building a snapshot file produced.
struct Built {
    file: SnapshotFile,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot_id: String,
    encoding: SnapshotEncoding,
    lock_held: std::time::Duration,
}

/// Writes the current state to a new file of `dir`. The read lock is held only while it is encoded
/// (applies wait that long, on `snapshot_gate`; readers do not); the fsyncs come after it is released.
fn build_file(
    state: &SharedState,
    history_copies: &RwLock<()>,
    snapshot_gate: &Mutex<()>,
    dir: &std::path::Path,
) -> std::io::Result<Built> {
    let clock = crate::model::Clock::system();
    let copying = history_copies.read();
    let building = snapshot_gate.lock();
    let guard = state.read();
    let locked = clock.monotonic();
    let (last_applied, membership) = (guard.last_applied, guard.membership.clone());
    let snapshot_id = match last_applied {
        Some(log_id) => {
            format!("{}-{}-{}", log_id.leader_id, log_id.index, crate::model::UnixMillis::now().0)
        }
        None => format!("empty-{}", crate::model::UnixMillis::now().0),
    };
    let encoding = snapshot_encoding(&guard);
    let history = guard.history.clone();
    let name = snapshot_file::fresh_name(dir, &snapshot_id);
    let mut writer = SnapshotWriter::create(dir, &name)?;
    let encoded = writer.encode(&*guard, encoding);
    drop(guard);
    drop(building);
    let lock_held = clock.since(locked);
    // The history tree is copied without the lock: entries written meanwhile belong to log entries
    // after this snapshot, which every node applies again after installing it (ADR 0009).
    let encoded = encoded.and_then(|()| match (encoding, &history) {
        (SnapshotEncoding::BinaryWithHistory, Some(tree)) => {
            for entry in history_store::entries(tree) {
                let (key, value) = entry.map_err(std::io::Error::other)?;
                writer.history_entry(&key, &value)?;
            }
            writer.end_history()
        }
        (SnapshotEncoding::BinaryWithHistory, None) => {
            Err(std::io::Error::other("a state at the history level without its history tree"))
        }
        _ => Ok(()),
    });
    drop(copying);
    let finished = encoded.and_then(|()| writer.finish());
    let file = finished.inspect_err(|_| {
        let _ = std::fs::remove_file(dir.join(&name));
    })?;
    Ok(Built { file, last_applied, membership, snapshot_id, encoding, lock_held })
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let clock = crate::model::Clock::system();
        let started = clock.monotonic();
        let (state, dir) = (self.state.clone(), self.store.snapshot_dir.clone());
        let history_copies = self.history_copies.clone();
        let snapshot_gate = self.snapshot_gate.clone();
        let built =
            tokio::task::spawn_blocking(move || build_file(&state, &history_copies, &snapshot_gate, &dir))
                .await
                .map_err(std::io::Error::other)
                .and_then(|built| built)
                .map_err(|e| {
                    self.store.health.fail("snapshot", &e);
                    StorageError::from(StorageIOError::write_snapshot(None, AnyError::new(&e)))
                })?;
        let meta = SnapshotMeta {
            last_log_id: built.last_applied,
            last_membership: built.membership,
            snapshot_id: built.snapshot_id,
        };
        persist_snapshot(&self.store, &self.snapshots, &meta, built.file.clone(), None).await?;
        tracing::info!(
            snapshot_id = %meta.snapshot_id,
            bytes = built.file.bytes,
            encoding = ?built.encoding,
            lock_held_ms = built.lock_held.as_millis() as u64,
            took_ms = clock.since(started).as_millis() as u64,
            "built a snapshot"
        );
        let data = open_snapshot_file(&self.store, &meta, &built.file.name).await?;
        Ok(Snapshot { meta, snapshot: Box::new(data) })
    }
}

/// The inode of an open file, to tell whether openraft hands back the file it was given.
#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &std::fs::File, _path: &std::path::Path) -> bool {
    false
}

/// Makes a received snapshot a file of `dir` named for `meta`: the file openraft wrote the chunks to is
/// renamed; any other (openraft's test suite hands over files built elsewhere) is copied.
fn settle_received(
    dir: &std::path::Path,
    meta: &SnapshotMeta,
    mut file: std::fs::File,
    receiving: Option<std::path::PathBuf>,
    history: &sled::Tree,
) -> Result<(SnapshotFile, AppliedState), String> {
    use std::io::Seek as _;
    let name = snapshot_file::fresh_name(dir, &meta.snapshot_id);
    let target = dir.join(&name);
    match receiving.filter(|path| same_file(&file, path)) {
        Some(path) => {
            file.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&path, &target).map_err(|e| e.to_string())?;
        }
        None => {
            snapshot_file::create_private_dir(dir).map_err(|e| e.to_string())?;
            let mut copy = snapshot_file::private_options()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(|e| e.to_string())?;
            file.rewind().map_err(|e| e.to_string())?;
            std::io::copy(&mut file, &mut copy).map_err(|e| e.to_string())?;
            copy.sync_all().map_err(|e| e.to_string())?;
        }
    }
    snapshot_file::sync_dir(dir).map_err(|e| e.to_string())?;
    let checked = snapshot_file::scan(dir, &name).map_err(|error| error.to_string()).and_then(|scanned| {
        let state = fill_history(dir, &name, history, meta.last_log_id)?;
        Ok((scanned, state))
    });
    checked.inspect_err(|_| {
        let _ = std::fs::remove_file(&target);
    })
}

/// Decodes the snapshot file `dir/name`, its history section into the empty tree `history` (in
/// batches), which then records `last_log_id` as applied. A state at the history level must come
/// with its section.
fn fill_history(
    dir: &std::path::Path,
    name: &str,
    history: &sled::Tree,
    last_log_id: Option<LogId>,
) -> Result<AppliedState, String> {
    const BATCH_ENTRIES: usize = 10_000;
    let write_error = |e: sled::Error| format!("the history tree cannot be written: {e}");
    let mut batch = sled::Batch::default();
    let mut batched = 0;
    let (state, with_history): (AppliedState, bool) =
        snapshot_file::decode_file_with_history(dir, name, |key, value| {
            batch.insert(key, value);
            batched += 1;
            if batched == BATCH_ENTRIES {
                history.apply_batch(std::mem::take(&mut batch)).map_err(write_error)?;
                batched = 0;
            }
            Ok(())
        })
        .map_err(|error| error.to_string())?;
    if state.fleet.feature_level() >= FeatureLevel::HISTORY_ON_DISK && !with_history {
        return Err(format!(
            "{name} holds a state at feature level {} without its history section",
            state.fleet.feature_level()
        ));
    }
    history.apply_batch(batch).map_err(write_error)?;
    history_store::commit(history, Vec::new(), last_log_id)?;
    Ok(state)
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        let mut effects = Vec::new();
        let applied = {
            let _no_build_under_way = self.snapshot_gate.lock();
            let mut state = self.state.write();
            for entry in entries {
                let entry_log_id = entry.log_id;
                state.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => CommandOutcome::Applied,
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), membership);
                        CommandOutcome::Applied
                    }
                    EntryPayload::Normal(command) => match state.fleet.apply(&command) {
                        Ok(command_effects) => {
                            effects.extend(command_effects);
                            CommandOutcome::Applied
                        }
                        Err(rejection) => CommandOutcome::Rejected(rejection),
                    },
                };
                outcomes.push(outcome);
                let level = state.fleet.feature_level();
                if level > THIS_RELEASE {
                    // Only a newer release raises this far; its next entries would not decode here.
                    let problem = format!(
                        "the cluster moved to feature level {level} and this linkmesh release knows up to \
                         {THIS_RELEASE}: upgrade this node's binary"
                    );
                    self.store.health.fail("apply", &problem);
                    return Err(StorageIOError::apply(entry_log_id, AnyError::error(problem)).into());
                }
            }
            // Below the history level there are no writes, and nothing to record.
            let writes = state.fleet.take_history_writes();
            let on_disk = state.fleet.feature_level() >= FeatureLevel::HISTORY_ON_DISK;
            let written_before = state.last_applied <= self.history_written_before_open;
            // Committed after the write lock is released, still under the snapshot gate.
            let history = state.history.clone();
            let commit = state.history_commit.clone();
            let applied = state.last_applied;
            commit.begin();
            drop(state);
            let committed = match (&history, on_disk && !written_before, applied) {
                (Some(tree), true, Some(last)) => {
                    history_store::commit(tree, writes, Some(last)).map_err(|problem| (last, problem))
                }
                _ => Ok(()),
            };
            commit.end();
            if let Err((last, problem)) = committed {
                self.store.health.fail("apply", &problem);
                return Err(StorageIOError::apply(last, AnyError::error(problem)).into());
            }
            applied
        };
        self.store.keeper.raise_applied(applied);
        for effect in effects {
            // The receiver is gone only during shutdown; effects are hints for live actors.
            let _ = self.effects.send(effect);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            store: self.store.clone(),
            snapshots: self.snapshots.clone(),
            history_copies: self.history_copies.clone(),
            snapshot_gate: self.snapshot_gate.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let dir = self.store.snapshot_dir.clone();
        let fail = |e: std::io::Error| -> StorageError {
            StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
        };
        let name =
            snapshot_file::fresh_name(&dir, &format!("receiving-{}", crate::model::UnixMillis::now().0));
        let path = dir.join(&name);
        let file = tokio::task::spawn_blocking(move || {
            snapshot_file::create_private_dir(&dir)?;
            snapshot_file::private_options().read(true).write(true).create_new(true).open(dir.join(&name))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|file| file)
        .map_err(fail)?;
        // An earlier reception that never completed is abandoned by openraft when a new one starts.
        if let Some(abandoned) = self.receiving.lock().replace(path) {
            let _ = std::fs::remove_file(abandoned);
        }
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let read_error = |error: String| -> StorageError {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(error)).into()
        };
        // tokio's File may still hold the last chunk's write in flight.
        snapshot.flush().await.map_err(|e| read_error(e.to_string()))?;
        let file = snapshot.into_std().await;
        let receiving = self.receiving.lock().take();
        // Into a fresh tree, made current in the batch that records the snapshot: a crash before it
        // leaves the current tree as it was (the fresh one is dropped at the next open).
        let history_name = history_store::fresh_tree_name(&self.store.db);
        let history = self.store.db.open_tree(&history_name).map_err(|e| read_error(e.to_string()))?;
        let (dir, owned_meta, filling) = (self.store.snapshot_dir.clone(), meta.clone(), history.clone());
        let settled = tokio::task::spawn_blocking(move || {
            settle_received(&dir, &owned_meta, file, receiving, &filling)
        })
        .await
        .map_err(|e| read_error(e.to_string()))
        .and_then(|settled| settled.map_err(read_error));
        let (stored, mut installed) = match settled {
            Ok(settled) => settled,
            Err(error) => {
                let _ = self.store.db.drop_tree(&history_name);
                return Err(error);
            }
        };
        installed.fleet.rebuild_indexes();
        installed.last_applied = meta.last_log_id;
        installed.membership = meta.last_membership.clone();
        installed.history = Some(history);
        persist_snapshot(&self.store, &self.snapshots, meta, stored, Some(&history_name)).await?;
        {
            let _no_build_under_way = self.snapshot_gate.lock();
            *self.state.write() = installed;
        }
        // The new tree holds no more than the snapshot promises: every later entry writes again.
        self.history_written_before_open = None;
        let _no_copy_under_way = self.history_copies.write();
        history_store::drop_all_but(&self.store.db, &history_name);
        self.store.keeper.raise_applied(meta.last_log_id);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        // A snapshot being recorded meanwhile removes the file it replaces: read the record and open
        // its file under the same lock (an open file stays readable once removed).
        let _recording = self.store.snapshot_lock.lock().await;
        let stored = read_snapshot(&self.snapshots, framing::open).map_err(|error| {
            self.store.health.fail("snapshot", &error);
            snapshot_read_error(error)
        })?;
        let Some(stored) = stored else { return Ok(None) };
        match &stored.body {
            SnapshotBody::File(file) => {
                let data = open_snapshot_file(&self.store, &stored.meta, &file.name).await?;
                Ok(Some(Snapshot { meta: stored.meta, snapshot: Box::new(data) }))
            }
            // Opening the store moves an inline snapshot to a file before the state machine exists.
            SnapshotBody::Inline(_) => Err(snapshot_read_error(format!(
                "{SNAPSHOT_TREE} still holds its snapshot inline (the store was not migrated to format 4)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::storage::RaftStateMachine;
    use openraft::RaftSnapshotBuilder;
    use tokio::io::AsyncWriteExt as _;

    use super::{decode_state, HistoryCommit, SledStateMachine};
    use crate::model::feature_level::FeatureLevel;
    use crate::model::{
        slot_of, Command, SlotEntry, SlotEpoch, SlotMove, SlotMoveReason, UnixMillis, SLOT_COUNT,
    };
    use crate::raft::durable::DurableDb;
    use crate::raft::identity::Identity;
    use crate::raft::record_keeper::RecordKeeper;
    use crate::raft::snapshot_file::MAGIC;
    use crate::raft::storage_health::StorageHealth;
    use crate::raft::types::SnapshotMeta;

    /// Written by linkmesh before slot epochs (main at 93f945a): a one-node cluster with a polled
    /// collector, its snapshot data as stored, and the `record_activity` entry from its log.
    const SNAPSHOT: &str = include_str!("../../tests/fixtures/snapshots/before_slot_epochs.json");
    const LOGGED_ACTIVITY: &str =
        include_str!("../../tests/fixtures/snapshots/before_slot_epochs.record_activity.json");
    const NODE: u64 = 224_484_336_956_794;
    const COLLECTOR: &str = "col_f59b3ff04a2ef68e114c";

    #[test]
    fn a_reader_of_the_history_tree_waits_for_the_commit_under_way() {
        let commit = Arc::new(HistoryCommit::default());
        commit.settled(); // nothing under way: at once
        commit.begin();
        let (done, settled) = std::sync::mpsc::channel();
        let reader = {
            let commit = commit.clone();
            std::thread::spawn(move || {
                commit.settled();
                done.send(()).expect("the test waits");
            })
        };
        assert!(
            settled.recv_timeout(std::time::Duration::from_millis(100)).is_err(),
            "the reader went on while the commit was under way"
        );
        commit.end();
        settled.recv().expect("the reader went on once the commit ended");
        reader.join().expect("the reader thread");
    }

    #[test]
    fn a_snapshot_and_log_from_before_slot_epochs_load_at_epoch_one() {
        let mut state = decode_state(SNAPSHOT.as_bytes()).expect("an old snapshot decodes");
        let fleet = &mut state.fleet;
        assert_eq!(fleet.slot_counts(), [(NODE, SLOT_COUNT)].into());
        assert_eq!(fleet.slot_entry(3), Some(SlotEntry { owner: NODE, epoch: SlotEpoch::INITIAL }));
        assert!(fleet
            .collector_by_token_hash(&fleet.collectors[COLLECTOR].token.as_ref().expect("token").hash)
            .is_some());

        let logged: Command = serde_json::from_str(LOGGED_ACTIVITY).expect("an old log entry decodes");
        let Command::RecordActivity { updates } = &logged else { panic!("{logged:?}") };
        assert_eq!(updates[0].slot_epoch, SlotEpoch::INITIAL, "written in the only epoch there was");
        let events = fleet.collectors[COLLECTOR].next_event_id;
        fleet.apply(&logged).expect("re-applied after the snapshot, as openraft does with the log");
        assert_eq!(fleet.collectors[COLLECTOR].next_event_id, events + 3, "it still applies");

        let slot = slot_of(COLLECTOR);
        let moves = vec![SlotMove { slot, from: NODE, to: 2, epoch: SlotEpoch::INITIAL }];
        fleet
            .apply(&Command::MoveSlots { moves, reason: SlotMoveReason::Balance, at: UnixMillis(1) })
            .expect("move");
        let moved = fleet.clone();
        fleet.apply(&logged).expect("activity applies");
        assert_eq!(*fleet, moved, "after a move, an entry without an epoch is a former owner's");
        let round_trip = serde_json::to_vec(&state).expect("serialize");
        assert_eq!(decode_state(&round_trip).expect("decode").fleet, state.fleet);
    }

    fn snapshot_files(dir: &std::path::Path) -> Vec<Vec<u8>> {
        let mut files: Vec<_> =
            std::fs::read_dir(dir).expect("snapshots/").map(|e| e.expect("entry").path()).collect();
        files.sort();
        files.iter().map(|path| std::fs::read(path).expect("read")).collect()
    }

    /// An older node sends its snapshot as JSON, in chunks: it is written to a file as received,
    /// installed by a streaming decode, survives a restart; the next snapshot built is JSON too while
    /// the cluster's feature level says an older member may read it, binary once the level rose.
    #[tokio::test]
    async fn a_json_snapshot_from_an_older_node_is_received_into_a_file_installed_and_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let raft_dir = dir.path().join("raft");
        let snapshot_dir = dir.path().join("snapshots");
        let db = sled::open(&raft_dir).expect("sled");
        let identity = Identity { cluster_id: "clu_test".into(), node_id: 1 };
        let facts = crate::raft::facts::create(dir.path(), &identity, &Default::default()).expect("facts");
        let keeper = Arc::new(RecordKeeper::open(dir.path(), &facts).expect("keeper"));
        let durable =
            DurableDb::new(&db, &raft_dir, &snapshot_dir, keeper, StorageHealth::new()).expect("durable");
        let (effects, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut machine = SledStateMachine::open(durable.clone(), effects.clone()).expect("open");

        let sent = decode_state(SNAPSHOT.as_bytes()).expect("old snapshot");
        let meta = SnapshotMeta {
            last_log_id: sent.last_applied,
            last_membership: sent.membership.clone(),
            snapshot_id: "T1-N224484336956794-9-1796168267000".into(),
        };
        let mut data = machine.begin_receiving_snapshot().await.expect("begin");
        for chunk in SNAPSHOT.as_bytes().chunks(1000) {
            data.write_all(chunk).await.expect("chunk");
        }
        machine.install_snapshot(&meta, data).await.expect("install");
        assert_eq!(machine.shared_state().read().fleet, sent.fleet);
        assert_eq!(snapshot_files(&snapshot_dir), vec![SNAPSHOT.as_bytes().to_vec()], "kept as received");

        let reopened = SledStateMachine::open(durable.clone(), effects.clone()).expect("reopen");
        assert_eq!(reopened.shared_state().read().fleet, sent.fleet);
        assert_eq!(reopened.shared_state().read().last_applied, sent.last_applied);

        machine.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let files = snapshot_files(&snapshot_dir);
        assert_eq!(files.len(), 1, "the received file is removed once the new one is durable");
        assert!(
            !files[0].starts_with(&MAGIC),
            "JSON while the cluster runs at level 1: {:?}",
            &files[0][..8]
        );

        let raise =
            Command::RaiseFeatureLevel { level: FeatureLevel::BATCH_AND_BINARY_SNAPSHOTS, at: UnixMillis(1) };
        machine.shared_state().write().fleet.apply(&raise).expect("raise");
        let built = machine.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let files = snapshot_files(&snapshot_dir);
        assert_eq!(files.len(), 1, "the JSON file is removed once the binary one is durable");
        assert!(files[0].starts_with(&MAGIC), "binary once every member reads it");
        assert_eq!(built.meta.last_log_id, sent.last_applied);
        let current = machine.get_current_snapshot().await.expect("current").expect("a snapshot");
        assert_eq!(current.meta, built.meta);
        let reopened = SledStateMachine::open(durable, effects).expect("reopen");
        assert_eq!(reopened.shared_state().read().fleet, machine.shared_state().read().fleet);
    }

    /// A store on its own data dir `dir`, and a state machine opened on it.
    fn machine_in(dir: &std::path::Path) -> (SledStateMachine, DurableDb) {
        let raft_dir = dir.join("raft");
        let db = sled::open(&raft_dir).expect("sled");
        let identity = Identity { cluster_id: "clu_test".into(), node_id: 1 };
        let facts = crate::raft::facts::create(dir, &identity, &Default::default()).expect("facts");
        let keeper = Arc::new(RecordKeeper::open(dir, &facts).expect("keeper"));
        let durable = DurableDb::new(&db, &raft_dir, &dir.join("snapshots"), keeper, StorageHealth::new())
            .expect("durable");
        (reopen(&durable).expect("open"), durable)
    }

    /// The state machine as a restart opens it on `durable` (its memory rebuilt from the snapshot).
    fn reopen(durable: &DurableDb) -> Result<SledStateMachine, crate::raft::types::StorageError> {
        let (effects, receiver) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(receiver);
        SledStateMachine::open(durable.clone(), effects)
    }

    fn entry(index: u64, command: serde_json::Value) -> crate::raft::types::Entry {
        openraft::Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Normal(serde_json::from_value(command).expect("a command")),
        }
    }

    fn event_ids(machine: &SledStateMachine, collector: &str) -> Vec<u64> {
        let state = machine.shared_state();
        let state = state.read();
        let record = &state.fleet.collectors[collector];
        state.events_after(record, 0, 100).expect("events").iter().map(|event| event.id).collect()
    }

    /// An apply that arrives while a snapshot build holds the state's read lock waits on the gate,
    /// not on the lock: readers that come after it still get the state at once (they would queue
    /// behind a parked writer for the whole build), and the apply goes on once the build is done.
    #[test]
    fn an_apply_during_a_snapshot_build_waits_without_holding_up_readers() {
        let dir = tempfile::tempdir().expect("dir");
        let (machine, _store) = machine_in(dir.path());
        let state = machine.shared_state();
        let gate = machine.snapshot_gate.clone();
        // What build_file holds while it encodes.
        let building = gate.lock();
        let encoding = state.read();
        let create = serde_json::json!({"op": "create_collector", "id": "col_a", "name": "a",
            "mode": "alloy-remotecfg", "remote_attributes": {}, "at": 1});
        let applier = std::thread::spawn(move || {
            let mut machine = machine;
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            runtime.block_on(machine.apply(vec![entry(1, create)])).expect("apply");
            machine
        });
        // An observation window, not a synchronisation: long enough for the apply to reach its wait,
        // and a reader must get in every time meanwhile.
        #[allow(clippy::disallowed_methods)]
        for _ in 0..50 {
            assert!(state.try_read().is_some(), "a reader queued behind the waiting apply");
            assert!(!applier.is_finished(), "the apply cannot finish while the build holds the state");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        drop(encoding);
        drop(building);
        let machine = applier.join().expect("applier");
        assert!(machine.shared_state().read().fleet.collectors.contains_key("col_a"));
    }

    /// Events on disk (feature level 3): applied into the history tree, kept over a restart, and
    /// carried by snapshots — also by one whose tree was copied while later entries were applied,
    /// which is exact once those entries are applied after it (ADR 0009).
    #[tokio::test]
    async fn events_on_disk_survive_restarts_and_travel_in_snapshots_copied_while_applies_go_on() {
        let at = 1_796_000_000_000u64;
        let create = |id: &str| {
            serde_json::json!({"op": "create_collector", "id": id, "name": id, "mode": "alloy-remotecfg",
                "remote_attributes": {}, "at": at})
        };
        let token = |id: &str, byte: u8| {
            serde_json::json!({"op": "set_collector_token", "collector_id": id,
                "token_hash": format!("{byte:02x}").repeat(32), "prefix": "lmct_x", "at": at})
        };
        let raise = serde_json::json!({"op": "raise_feature_level", "level": 3, "at": at});
        let before = vec![entry(1, create("col_a")), entry(2, raise), entry(3, token("col_a", 1))];
        let after = vec![
            entry(4, token("col_a", 2)),
            entry(5, create("col_b")),
            entry(6, serde_json::json!({"op": "delete_collector", "id": "col_a"})),
            entry(7, token("col_b", 3)),
        ];

        let leader_dir = tempfile::tempdir().expect("dir");
        let (mut leader, leader_store) = machine_in(leader_dir.path());
        let outcomes = leader.apply(before.clone()).await.expect("apply");
        assert!(outcomes.iter().all(|o| matches!(o, crate::model::CommandOutcome::Applied)), "{outcomes:?}");
        assert_eq!(event_ids(&leader, "col_a"), vec![1, 2], "created, then minted, read from the tree");
        assert!(leader.shared_state().read().fleet.collectors["col_a"].events.is_empty());
        let built = leader.get_snapshot_builder().await.build_snapshot().await.expect("build");
        leader.apply(after.clone()).await.expect("apply");
        let leader_digest = leader.shared_state().read().fleet_digest();

        // Restarted: the snapshot's state, the tree as it was (ahead of it); the log after it again.
        drop(leader);
        let mut restarted = reopen(&leader_store).expect("reopen");
        assert_eq!(restarted.shared_state().read().last_applied, Some(before[2].log_id));
        restarted.apply(after.clone()).await.expect("re-apply");
        assert_eq!(restarted.shared_state().read().fleet_digest(), leader_digest);
        assert_eq!(event_ids(&restarted, "col_b"), vec![1, 2]);

        // A snapshot file as the builder writes it when the entries after it were applied before the
        // tree was copied: the state at the snapshot, the tree as it is now.
        let fuzzy_dir = tempfile::tempdir().expect("dir");
        let state_at_snapshot: super::AppliedState = {
            let stored = super::read_snapshot(&restarted.snapshots, crate::raft::framing::open)
                .expect("read")
                .expect("a snapshot");
            super::load_state(&leader_store.snapshot_dir, &stored.body).expect("load")
        };
        let mut writer = super::SnapshotWriter::create(fuzzy_dir.path(), "fuzzy.snap").expect("create");
        writer.encode(&state_at_snapshot, super::SnapshotEncoding::BinaryWithHistory).expect("state");
        let tree = restarted.shared_state().read().history.clone().expect("a tree");
        for entry in crate::raft::history_store::entries(&tree) {
            let (key, value) = entry.expect("entry");
            writer.history_entry(&key, &value).expect("entry");
        }
        writer.end_history().expect("end");
        writer.finish().expect("finish");
        let real = built.snapshot.into_std().await;
        let fuzzy = std::fs::File::open(fuzzy_dir.path().join("fuzzy.snap")).expect("open");
        let sources = [("the snapshot built", real), ("a snapshot copied while applies went on", fuzzy)];
        for (what, file) in sources {
            let follower_dir = tempfile::tempdir().expect("dir");
            let (mut follower, follower_store) = machine_in(follower_dir.path());
            let mut data = follower.begin_receiving_snapshot().await.expect("begin");
            let mut file = tokio::fs::File::from_std(file);
            tokio::io::AsyncSeekExt::rewind(&mut file).await.expect("rewind");
            tokio::io::copy(&mut file, &mut data).await.expect("copy");
            follower.install_snapshot(&built.meta, data).await.expect("install");
            // The copy taken later no longer has `col_a`'s events (entry 6 deleted it), and does not
            // need them: entry 6 is applied next.
            let at_snapshot = if what == "the snapshot built" { vec![1, 2] } else { vec![] };
            assert_eq!(event_ids(&follower, "col_a"), at_snapshot, "{what}");
            follower.apply(after.clone()).await.expect("apply");
            assert_eq!(follower.shared_state().read().fleet_digest(), leader_digest, "{what}");
            drop(follower);
            let mut reopened = reopen(&follower_store).expect("reopen");
            reopened.apply(after.clone()).await.expect("re-apply");
            assert_eq!(reopened.shared_state().read().fleet_digest(), leader_digest, "{what}, restarted");
            assert_eq!(event_ids(&reopened, "col_b"), vec![1, 2], "{what}: the installed tree is current");
        }
    }

    /// A history tree that ends before its snapshot cannot be made whole by the log: refused.
    #[tokio::test]
    async fn a_history_tree_behind_its_snapshot_is_refused_at_open() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut machine, store) = machine_in(dir.path());
        let raise = serde_json::json!({"op": "raise_feature_level", "level": 3, "at": 1});
        machine
            .apply(vec![
                entry(1, raise),
                entry(2, serde_json::json!({"op": "raise_feature_level", "level": 3, "at": 2})),
            ])
            .await
            .expect("apply");
        machine.get_snapshot_builder().await.build_snapshot().await.expect("build");
        let tree = machine.shared_state().read().history.clone().expect("tree");
        let older = Some(openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 1));
        crate::raft::history_store::commit(&tree, Vec::new(), older).expect("rewind the record");
        drop(machine);
        let refused = reopen(&store).err().expect("refused");
        assert!(refused.to_string().contains("history tree holds writes up to log index 1"), "{refused}");
    }
}
