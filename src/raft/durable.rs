//! The sled database as the log store and the state machine share it, and the one durable flush.
//!
//! sled 0.34 flushes with `sync_file_range` on Linux, which survives a process crash but not a power
//! loss (it flushes neither the drive's cache nor the file's metadata), so every flush is followed by an
//! `fdatasync` of sled's data file. Then the durable facts ([`super::facts`]) are raised and written in
//! the same blocking step, before openraft hears that anything is durable.
//!
//! The order is sequential, and must be: (1) sled's flush and `fdatasync`; (2) the facts raised to what
//! (1) made durable; (3) one facts slot written and `fdatasync`ed; (4) openraft told. Overlapping (1)
//! and (3) was considered and rejected:
//!
//! - Facts that claim this flush, written while sled flushes it: if the facts reach the disk and the
//!   log does not (a crash between the two device flushes), the next start finds a store that ends
//!   before its record and refuses it although nothing acknowledged was lost: a false refusal.
//! - Facts that claim only what the *previous* flush made durable, written in parallel with this one:
//!   never a false refusal, but when openraft hears that flush n is durable, the facts cover only n-1.
//!   If sled then comes back without flush n (it silently recovers to its last intact segment), no
//!   record outside sled says n was written and the loss of acknowledged writes passes unnoticed — the
//!   one thing the record exists to catch. Covering n takes one more facts write after (1), which an
//!   idle node would never make. It would save the latency of one `fdatasync` at the price of that
//!   guarantee.
//! - Returning from `append` after (1) and writing the facts and calling back from another thread,
//!   so that the next batch's (1) overlaps this one's (3): openraft 0.9's core waits for each append's
//!   callback before it hands over the next batch (`RaftCore::append_to_log`), so nothing would overlap.
//!
//! So a flush pays one extra `fdatasync` of one 4 KiB block that is overwritten in place (no size,
//! allocation or name change, hence no filesystem journal commit), instead of the temporary file,
//! rename and directory `fsync` of an atomic replace: two ordered device round trips (the log, then
//! the facts) is the least any record outside the log can cost. One facts write covers whatever one
//! `append` carries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::record_keeper::RecordKeeper;
use super::snapshot_schedule::SnapshotSchedule;
use super::storage_health::StorageHealth;
use super::types::{LogId, Vote};

pub const LOG_TREE: &str = "raft_log";
pub const META_TREE: &str = "raft_meta";
pub const SNAPSHOT_TREE: &str = "raft_snapshot";

/// `raft_meta` keys.
pub const KEY_VOTE: &[u8] = b"vote";
pub const KEY_COMMITTED: &[u8] = b"committed";
pub const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// The store's [`super::identity::Identity`], the same as the record's; absent in store format 1.
pub const KEY_IDENTITY: &[u8] = b"identity";

/// `raft_snapshot` keys: the current snapshot's metadata and where its data is, written in one batch.
pub const KEY_SNAPSHOT_META: &[u8] = b"current_meta";
/// The data itself, in store formats up to 3; format 4 moved it to a file.
pub const KEY_SNAPSHOT_DATA: &[u8] = b"current_data";
/// From store format 4: the [`super::snapshot_file::SnapshotFile`] (name, length, CRC-32) holding the data.
pub const KEY_SNAPSHOT_FILE: &[u8] = b"current_file";

/// What a flush makes durable, to be raised in the durable facts once it is.
#[derive(Debug, Default, Clone, Copy)]
pub struct Flushed {
    pub vote: Option<Vote>,
    pub last_log_id: Option<LogId>,
    /// The last log id of a snapshot written before the flush.
    pub snapshot: Option<LogId>,
}

#[derive(Clone)]
pub struct DurableDb {
    pub db: sled::Db,
    /// sled's data file (`<dir>/db`), opened only to `fdatasync` it after sled's own flush.
    data_file: Arc<std::fs::File>,
    pub keeper: Arc<RecordKeeper>,
    pub health: Arc<StorageHealth>,
    /// Where snapshot files live ([`super::snapshot_file::SNAPSHOT_DIR`] in the data dir).
    pub snapshot_dir: PathBuf,
    /// Held while a snapshot is recorded as the current one, so that a snapshot built and one installed
    /// at the same time each remove only the file they replaced.
    pub snapshot_lock: Arc<tokio::sync::Mutex<()>>,
    /// The log since the last snapshot, and when the next one is due (never, until the node sets
    /// the rules).
    pub snapshot_schedule: Arc<SnapshotSchedule>,
    /// The committed id last given to `save_committed`; durable (and recorded) with the next flush.
    saved_committed: Arc<Mutex<Option<LogId>>>,
    /// Each append's flush, timed by the log store (`linkmesh_raft_log_flush_duration_seconds`).
    pub log_flush_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl DurableDb {
    /// `db_dir` is the directory `db` was opened at.
    pub fn new(
        db: &sled::Db,
        db_dir: &Path,
        snapshot_dir: &Path,
        keeper: Arc<RecordKeeper>,
        health: Arc<StorageHealth>,
    ) -> std::io::Result<DurableDb> {
        Ok(DurableDb {
            db: db.clone(),
            data_file: Arc::new(std::fs::File::open(db_dir.join("db"))?),
            keeper,
            health,
            snapshot_dir: snapshot_dir.to_owned(),
            snapshot_lock: Arc::new(tokio::sync::Mutex::new(())),
            snapshot_schedule: Arc::default(),
            saved_committed: Arc::new(Mutex::new(None)),
            log_flush_seconds: crate::metrics::log_flush_histogram(),
        })
    }

    pub fn note_committed(&self, committed: Option<LogId>) {
        *self.saved_committed.lock() = committed;
    }

    /// The committed id openraft last saved (this node's commit index).
    pub fn committed(&self) -> Option<LogId> {
        *self.saved_committed.lock()
    }

    /// Flushes sled, `fdatasync`s its file, then raises and writes the durable facts (blocking; run it
    /// in `spawn_blocking`). Any failure marks storage as failed.
    pub fn flush_blocking(&self, flushed: Flushed, context: &str) -> std::io::Result<()> {
        let committed = *self.saved_committed.lock();
        let result =
            self.db.flush().map_err(std::io::Error::other).and_then(|_| self.data_file.sync_data()).and_then(
                |()| {
                    self.keeper.raise_log(flushed.vote, flushed.last_log_id, committed);
                    self.keeper.raise_snapshot(flushed.snapshot);
                    self.keeper.persist()
                },
            );
        if let Err(error) = &result {
            self.health.fail(context, error);
        }
        result
    }

    pub async fn flush(&self, flushed: Flushed, context: &'static str) -> std::io::Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.flush_blocking(flushed, context))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Marks storage as failed and hands the error back, for `map_err`.
    pub fn failed<E: std::fmt::Display>(&self, context: &str) -> impl FnOnce(E) -> E + '_ {
        let context = context.to_owned();
        move |error| {
            self.health.fail(&context, &error);
            error
        }
    }
}
