//! The Raft log in sled.
//!
//! Keys in the `raft_log` tree are big-endian indexes, so iteration order is log order. The `raft_meta`
//! tree holds the vote, the committed log id and the last purged log id (kept by the store itself, as
//! openraft requires, so an empty log still reports where it ended), and the store's identity. Every
//! value is checksummed ([`super::framing`]).
//!
//! Every mutation is flushed (and sled's file `fdatasync`ed, see [`super::durable`]) before openraft
//! is told it is durable, and the durable facts are raised in the same step. openraft 0.9 serializes
//! log I/O, so there are never concurrent flushes (sled's `flush_async` has known deadlocks under
//! concurrency). Any storage error marks the node's storage as failed: openraft's core quits on it.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};

use super::durable::{DurableDb, Flushed, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, LOG_TREE, META_TREE};
use super::framing;
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};

#[derive(Clone)]
pub struct SledLogStore {
    store: DurableDb,
    log: sled::Tree,
    meta: sled::Tree,
}

fn io_error(subject: ErrorSubject<u64>, verb: ErrorVerb, error: impl std::fmt::Display) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::error(error)).into()
}

impl SledLogStore {
    pub fn open(store: DurableDb) -> Result<Self, sled::Error> {
        Ok(SledLogStore { log: store.db.open_tree(LOG_TREE)?, meta: store.db.open_tree(META_TREE)?, store })
    }

    /// Marks storage failed and builds openraft's error.
    fn fail(
        &self,
        subject: ErrorSubject<u64>,
        verb: ErrorVerb,
        error: impl std::fmt::Display,
    ) -> StorageError {
        let error = io_error(subject, verb, error);
        self.store.health.fail("raft log", &error);
        error
    }

    fn read_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        let Some(bytes) =
            self.meta.get(key).map_err(|e| self.fail(ErrorSubject::Store, ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        let payload = framing::open(META_TREE, key, &bytes).map_err(|e| {
            self.fail(ErrorSubject::Store, ErrorVerb::Read, format!("{META_TREE}/{} {e}", show_key(key)))
        })?;
        let value = serde_json::from_slice(payload)
            .map_err(|e| self.fail(ErrorSubject::Store, ErrorVerb::Read, e))?;
        Ok(Some(value))
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| self.fail(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.meta
            .insert(key, framing::seal(META_TREE, key, &bytes))
            .map_err(|e| self.fail(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(())
    }

    fn decode_entry(&self, key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
        decode_entry(framing::open, key, value).map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Read, e))
    }

    async fn flush(&self, flushed: Flushed, subject: ErrorSubject<u64>) -> Result<(), StorageError> {
        self.store.flush(flushed, "raft log flush").await.map_err(|e| io_error(subject, ErrorVerb::Write, e))
    }
}

/// The entries in the log after `index` (all of them for `None`), and their stored bytes: the log a
/// start replays, counted towards the next snapshot ([`super::snapshot_schedule`]).
pub fn logged_after(db: &sled::Db, index: Option<u64>) -> sled::Result<(u64, u64)> {
    let log = db.open_tree(LOG_TREE)?;
    let from = index.map_or(0, |index| index.saturating_add(1));
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in log.range(index_key(from)..) {
        let (_, value) = entry?;
        entries += 1;
        bytes += value.len() as u64;
    }
    Ok((entries, bytes))
}

pub fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub fn show_key(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(index) => u64::from_be_bytes(index).to_string(),
        Err(_) => String::from_utf8_lossy(key).into_owned(),
    }
}

/// A log entry as stored: checksummed, and at the key of its own index.
pub fn decode_entry(open: framing::Opener, key: &[u8], value: &[u8]) -> Result<Entry, String> {
    let payload =
        open(LOG_TREE, key, value).map_err(|e| format!("{LOG_TREE} entry {} {e}", show_key(key)))?;
    let entry: Entry = serde_json::from_slice(payload)
        .map_err(|e| format!("{LOG_TREE} entry {} cannot be decoded: {e}", show_key(key)))?;
    if index_key(entry.log_id.index)[..] != *key {
        return Err(format!("{LOG_TREE} entry {} holds index {}", show_key(key), entry.log_id.index));
    }
    Ok(entry)
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
            let (key, value) = item.map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            let entry = self.decode_entry(&key, &value)?;
            if !range.contains(&entry.log_id.index) {
                break;
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for SledLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let last = self.log.last().map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let last_log_id = match last {
            Some((key, value)) => Some(self.decode_entry(&key, &value)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, vote)?;
        self.flush(Flushed { vote: Some(*vote), ..Flushed::default() }, ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: after a crash openraft re-derives commitment; the next append flushes
        // it (and only then do the durable facts count it).
        self.write_meta(KEY_COMMITTED, &committed)?;
        self.store.note_committed(committed);
        Ok(())
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
        let mut last_log_id = None;
        let (mut appended, mut logged) = (0u64, 0u64);
        for entry in entries {
            appended += 1;
            let bytes =
                serde_json::to_vec(&entry).map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?;
            logged += bytes.len() as u64;
            let key = index_key(entry.log_id.index);
            batch.insert(&key, framing::seal(LOG_TREE, &key, &bytes));
            last_log_id = Some(entry.log_id);
        }
        if let Err(error) = self.log.apply_batch(batch) {
            let failed = self.fail(ErrorSubject::Logs, ErrorVerb::Write, &error);
            callback.log_io_completed(Err(std::io::Error::other(error)));
            return Err(failed);
        }
        let started = tokio::time::Instant::now();
        let flushed = self.store.flush(Flushed { last_log_id, ..Flushed::default() }, "raft log flush").await;
        self.store.log_flush_seconds.observe(started.elapsed().as_secs_f64());
        let failed = flushed.as_ref().err().map(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, e));
        callback.log_io_completed(flushed);
        self.store.snapshot_schedule.note_logged(appended, logged);
        match failed {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The facts must never claim the tail Raft is removing: lower them first, then remove.
        let new_last = match log_id.index.checked_sub(1) {
            None => None,
            Some(previous) => match self.log.get(index_key(previous)) {
                Ok(Some(value)) => Some(self.decode_entry(&index_key(previous), &value)?.log_id),
                Ok(None) => self.read_meta(KEY_LAST_PURGED)?,
                Err(e) => return Err(self.fail(ErrorSubject::Logs, ErrorVerb::Read, e)),
            },
        };
        self.store.keeper.lower_last_log(new_last);
        let keeper = self.store.keeper.clone();
        tokio::task::spawn_blocking(move || keeper.persist())
            .await
            .map_err(std::io::Error::other)
            .and_then(|written| written)
            .map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?;

        let mut batch = sled::Batch::default();
        for key in self.log.range(index_key(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?);
        }
        self.log.apply_batch(batch).map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        self.flush(Flushed::default(), ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first: a crash between the two steps leaves extra entries, never a hole.
        self.write_meta(KEY_LAST_PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=index_key(log_id.index)).keys() {
            batch.remove(key.map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?);
        }
        self.log.apply_batch(batch).map_err(|e| self.fail(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        self.flush(Flushed::default(), ErrorSubject::Logs).await
    }
}
