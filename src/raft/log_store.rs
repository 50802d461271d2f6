//! The Raft log in sled.
//!
//! Keys in the `raft_log` tree are big-endian indexes, so iteration order is log order. The `raft_meta`
//! tree holds the vote, the committed log id and the last purged log id (kept by the store itself, as
//! openraft requires, so an empty log still reports where it ended).
//!
//! Every mutation is followed by a synchronous `flush()` and an `fdatasync` of sled's data file before
//! openraft is told it is durable: sled 0.34 flushes with `sync_file_range` on Linux, which survives a
//! process crash but not a power loss (it does not flush the drive's cache or the file's metadata).
//! openraft 0.9 serializes log I/O, so there are never concurrent flushes (sled's `flush_async` has
//! known deadlocks under concurrency).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError};

use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

#[derive(Clone)]
pub struct SledLogStore {
    db: sled::Db,
    /// sled's data file (`<dir>/db`), opened only to `fdatasync` it after sled's own flush.
    data_file: Arc<std::fs::File>,
    log: sled::Tree,
    meta: sled::Tree,
}

impl SledLogStore {
    /// `db_dir` is the directory `db` was opened at.
    pub fn open(db: &sled::Db, db_dir: &Path) -> Result<Self, sled::Error> {
        Ok(SledLogStore {
            db: db.clone(),
            data_file: Arc::new(std::fs::File::open(db_dir.join("db"))?),
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
        })
    }

    async fn flush(&self) -> Result<(), sled::Error> {
        let db = self.db.clone();
        let data_file = self.data_file.clone();
        tokio::task::spawn_blocking(move || {
            db.flush()?;
            data_file.sync_data().map_err(sled::Error::Io)
        })
        .await
        .map_err(|join_error| sled::Error::Io(std::io::Error::other(join_error)))?
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.meta.get(key).map_err(|e| StorageIOError::read(AnyError::new(&e)))? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        Ok(Some(value))
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        self.meta.insert(key, bytes).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok(())
    }

    fn decode_entry(bytes: &[u8]) -> Result<Entry, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for SledLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in self.log.range(index_key(start)..) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            let mut index_bytes = [0u8; 8];
            index_bytes.copy_from_slice(&key);
            if !range.contains(&u64::from_be_bytes(index_bytes)) {
                break;
            }
            entries.push(Self::decode_entry(&value)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let last = self.log.last().map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
        let last_log_id = match last {
            Some((_, value)) => Some(Self::decode_entry(&value)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, vote)?;
        self.flush().await.map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: after a crash openraft re-derives commitment; the next append flushes it.
        self.write_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes =
                serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            batch.insert(&index_key(entry.log_id.index), bytes);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let flushed = self.flush().await.map_err(std::io::Error::other);
        let failed = flushed.as_ref().err().map(|e| StorageIOError::write_logs(AnyError::new(e)));
        callback.log_io_completed(flushed);
        match failed {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for key in self.log.range(index_key(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.flush().await.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first: a crash between the two steps leaves extra entries, never a hole.
        self.write_meta(KEY_LAST_PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=index_key(log_id.index)).keys() {
            batch.remove(key.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.flush().await.map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        Ok(())
    }
}
