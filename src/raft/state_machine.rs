//! The state machine: committed commands applied to the in-memory [`FleetState`], snapshots in files.
//!
//! Persistence strategy (openraft's "persistent snapshot" option): `apply` only mutates memory; each
//! snapshot is streamed to a file in `<data-dir>/snapshots/` ([`super::snapshot_file`]) and fsynced,
//! then recorded in sled (its metadata and the file's name, length and CRC-32, checksummed,
//! [`super::framing`]) and flushed, and the durable facts raised to it in the same step; the file it
//! replaced is removed only then. On restart the state is rebuilt from the last snapshot and openraft
//! re-applies the committed log after it. Readers share the state through [`SharedState`].

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
use super::snapshot_file::{self, SnapshotEncoding, SnapshotFile, SnapshotWriter};
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::model::feature_level::{FeatureLevel, THIS_RELEASE};
use crate::model::{CommandOutcome, Effect, FleetState};

/// The applied state, shared read-only with the rest of the node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub fleet: FleetState,
}

pub type SharedState = Arc<RwLock<AppliedState>>;

impl AppliedState {
    /// SHA-256 of the fleet model's serialization. Every map in it is ordered, so replicas that applied
    /// the same log give the same digest: the convergence check compares it across nodes.
    pub fn fleet_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        serde_json::to_writer(&mut hasher, &self.fleet).expect("the fleet model serializes");
        hasher.finalize().into()
    }
}

/// The encoding this node writes its next snapshot in: the one place that decision is made. Binary
/// once the cluster's feature level says every member reads it (`model/feature_level.rs`); JSON
/// before, since a member of an older release that lags would receive this snapshot. Levels never
/// go down, so a binary snapshot never reaches a node that cannot read it.
pub fn snapshot_encoding(state: &AppliedState) -> SnapshotEncoding {
    if state.fleet.feature_level() >= FeatureLevel::BATCH_AND_BINARY_SNAPSHOTS {
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
}

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
        let state = match stored {
            Some(stored) => load_state(&store.snapshot_dir, &stored.body).map_err(snapshot_read_error)?,
            None => AppliedState::default(),
        };
        Ok(SledStateMachine {
            state: Arc::new(RwLock::new(state)),
            store,
            snapshots,
            effects,
            receiving: Arc::new(Mutex::new(None)),
        })
    }

    pub fn shared_state(&self) -> SharedState {
        self.state.clone()
    }
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
    snapshots.apply_batch(batch).map_err(|e| fail(&e))?;
    let durable = store.clone();
    let flushed = Flushed { snapshot: meta.last_log_id, ..Flushed::default() };
    tokio::task::spawn_blocking(move || durable.flush_blocking(flushed, "snapshot flush"))
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|e| fail(&e))?;
    store.note_snapshot();
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
/// (applies wait that long; readers do not); the fsyncs come after it is released.
fn build_file(state: &SharedState, dir: &std::path::Path) -> std::io::Result<Built> {
    let clock = crate::model::Clock::system();
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
    let name = snapshot_file::fresh_name(dir, &snapshot_id);
    let mut writer = SnapshotWriter::create(dir, &name)?;
    let encoded = writer.encode(&*guard, encoding);
    drop(guard);
    let lock_held = clock.since(locked);
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
        let built = tokio::task::spawn_blocking(move || build_file(&state, &dir))
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
        persist_snapshot(&self.store, &self.snapshots, &meta, built.file.clone()).await?;
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
    let checked = snapshot_file::scan(dir, &name).and_then(|scanned| {
        let state: AppliedState = snapshot_file::decode_file(dir, &name)?;
        Ok((scanned, state))
    });
    checked.map_err(|error| {
        let _ = std::fs::remove_file(&target);
        error.to_string()
    })
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
            state.last_applied
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
        let (dir, owned_meta) = (self.store.snapshot_dir.clone(), meta.clone());
        let (stored, mut installed) =
            tokio::task::spawn_blocking(move || settle_received(&dir, &owned_meta, file, receiving))
                .await
                .map_err(|e| read_error(e.to_string()))?
                .map_err(read_error)?;
        installed.fleet.rebuild_indexes();
        installed.last_applied = meta.last_log_id;
        installed.membership = meta.last_membership.clone();
        persist_snapshot(&self.store, &self.snapshots, meta, stored).await?;
        *self.state.write() = installed;
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

    use super::{decode_state, SledStateMachine};
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
}
