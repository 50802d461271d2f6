//! Reads every record of a store, checks it is whole, and compares it with the identity record.
//!
//! Used at every start (`serve`) and offline (`linkmesh check`). What it accepts: every value intact
//! (its checksum), the log contiguous and joined to the snapshot, and at least what the identity
//! record's durable facts say was durable — the vote, the log up to the last flushed id, the committed
//! and applied ids, the snapshot. A log tail that Raft truncated or purged is not "less": the facts
//! were lowered before a truncation, and purged entries are covered by the snapshot.

use super::durable::{
    KEY_COMMITTED, KEY_IDENTITY, KEY_LAST_PURGED, KEY_VOTE, LOG_TREE, META_TREE, SNAPSHOT_TREE,
};
use super::framing::Opener;
use super::identity::{DurableFacts, Identity};
use super::log_store::{decode_entry, index_key, show_key};
use super::snapshot_file;
use super::state_machine::{read_snapshot, SnapshotBody, StoredSnapshot};
use super::types::{LogId, Vote};

/// What a store holds, read record by record.
#[derive(Default)]
pub struct StoreSummary {
    pub identity: Option<Identity>,
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
    pub last_purged: Option<LogId>,
    pub first_log_index: Option<u64>,
    pub last_log_id: Option<LogId>,
    pub log_entries: u64,
    pub snapshot: Option<StoredSnapshot>,
}

/// `index 57 (term 3)`: how log ids appear in messages.
pub fn show(log_id: Option<LogId>) -> String {
    match log_id {
        Some(log_id) => format!("index {} (term {})", log_id.index, log_id.leader_id.term),
        None => "nothing".to_owned(),
    }
}

impl StoreSummary {
    /// Nothing at all: a store sled created empty (or one that lost everything).
    pub fn is_empty(&self) -> bool {
        self.vote.is_none()
            && self.last_log_id.is_none()
            && self.snapshot.is_none()
            && self.last_purged.is_none()
            && self.identity.is_none()
    }

    pub fn snapshot_last(&self) -> Option<LogId> {
        self.snapshot.as_ref().and_then(|snapshot| snapshot.meta.last_log_id)
    }

    /// The furthest log id the store can rebuild: its log, or what its snapshot and purges cover.
    pub fn end(&self) -> Option<LogId> {
        self.last_log_id.max(self.last_purged).max(self.snapshot_last())
    }
}

fn meta_value<T: serde::de::DeserializeOwned>(
    meta: &sled::Tree,
    open: Opener,
    key: &[u8],
) -> Result<Option<T>, String> {
    let name = show_key(key);
    let Some(value) = meta.get(key).map_err(|e| format!("{META_TREE}/{name} cannot be read: {e}"))? else {
        return Ok(None);
    };
    let payload = open(META_TREE, key, &value).map_err(|e| format!("{META_TREE}/{name} {e}"))?;
    serde_json::from_slice(payload)
        .map(Some)
        .map_err(|e| format!("{META_TREE}/{name} cannot be decoded: {e}"))
}

/// Reads and checks every record of `db`; the first problem is the error.
pub fn read_store(db: &sled::Db, open: Opener) -> Result<StoreSummary, String> {
    let tree = |name: &str| db.open_tree(name).map_err(|e| format!("{name} cannot be opened: {e}"));
    let (log, meta, snapshots) = (tree(LOG_TREE)?, tree(META_TREE)?, tree(SNAPSHOT_TREE)?);

    // Every value of the meta tree is checked, not only the keys read below.
    for item in meta.iter() {
        let (key, value) = item.map_err(|e| format!("{META_TREE} cannot be read: {e}"))?;
        open(META_TREE, &key, &value).map_err(|e| format!("{META_TREE}/{} {e}", show_key(&key)))?;
    }
    let mut summary = StoreSummary {
        identity: meta_value(&meta, open, KEY_IDENTITY)?,
        vote: meta_value(&meta, open, KEY_VOTE)?,
        committed: meta_value::<Option<LogId>>(&meta, open, KEY_COMMITTED)?.flatten(),
        last_purged: meta_value(&meta, open, KEY_LAST_PURGED)?,
        snapshot: read_snapshot(&snapshots, open)?,
        ..StoreSummary::default()
    };

    let mut previous: Option<LogId> = None;
    for item in log.iter() {
        let (key, value) = item.map_err(|e| format!("{LOG_TREE} cannot be read: {e}"))?;
        let entry = decode_entry(open, &key, &value)?;
        if let Some(previous) = previous {
            if entry.log_id.index != previous.index + 1 {
                return Err(format!(
                    "{LOG_TREE} has a hole between index {} and index {}",
                    previous.index, entry.log_id.index
                ));
            }
            if entry.log_id.leader_id < previous.leader_id {
                return Err(format!("{LOG_TREE} entry {} goes back to an older term", entry.log_id.index));
            }
        }
        summary.first_log_index.get_or_insert(entry.log_id.index);
        summary.log_entries += 1;
        previous = Some(entry.log_id);
    }
    summary.last_log_id = previous;
    check_whole(&summary)?;
    Ok(summary)
}

/// Rules that hold for any store openraft wrote, record or not.
fn check_whole(summary: &StoreSummary) -> Result<(), String> {
    let snapshot_last = summary.snapshot_last();
    if summary.last_purged > snapshot_last {
        return Err(format!(
            "the log was purged up to {} but the snapshot only reaches {}",
            show(summary.last_purged),
            show(snapshot_last)
        ));
    }
    if let Some(first) = summary.first_log_index {
        let covered_to = summary.last_purged.max(snapshot_last).map(|log_id| log_id.index);
        let expected_first = covered_to.map_or(0, |index| index + 1);
        if first > expected_first {
            return Err(format!(
                "the log starts at index {first} but the snapshot and purged log end at {}",
                show(summary.last_purged.max(snapshot_last))
            ));
        }
    }
    if !summary.is_empty() && summary.vote.is_none() && summary.end().is_some() {
        return Err(format!("{META_TREE}/vote is missing"));
    }
    if summary.committed > summary.end() {
        return Err(format!(
            "{META_TREE}/committed says {} but the store ends at {}",
            show(summary.committed),
            show(summary.end())
        ));
    }
    Ok(())
}

/// Compares a whole store with its identity record (its identity and durable `facts`): nothing the
/// record says was durable is missing, and the snapshot file the store names (in `snapshot_dir`) is
/// there, of its length and intact.
pub fn check_against_record(
    db: &sled::Db,
    open: Opener,
    summary: &StoreSummary,
    recorded_identity: &Identity,
    facts: &DurableFacts,
    snapshot_dir: &std::path::Path,
) -> Result<(), String> {
    match &summary.identity {
        Some(identity) if identity != recorded_identity => {
            return Err(format!(
                "the raft store belongs to cluster {} node {} but the identity record names cluster {} node {} \
                 (files from two data dirs?)",
                identity.cluster_id, identity.node_id, recorded_identity.cluster_id, recorded_identity.node_id
            ));
        }
        Some(_) => {}
        None if facts.is_empty() && summary.is_empty() => {}
        None => {
            return Err(
                "the raft store has no identity (it is empty, or from another data dir) but the identity \
                 record says it held data"
                    .to_owned(),
            );
        }
    }
    if let Some(recorded) = facts.vote {
        let kept = summary.vote.is_some_and(|vote| vote >= recorded);
        if !kept {
            return Err(format!(
                "{META_TREE}/vote went back from term {} to {}",
                recorded.leader_id.term,
                summary.vote.map_or("none".to_owned(), |vote| format!("term {}", vote.leader_id.term))
            ));
        }
    }
    let required = facts.required_end();
    if summary.end() < required {
        return Err(format!(
            "the raft store ends at {} but the identity record says {} was written",
            show(summary.end()),
            show(required)
        ));
    }
    if facts.snapshot > summary.snapshot_last() {
        return Err(format!(
            "the snapshot reaches {} but the identity record says a snapshot up to {} was written",
            show(summary.snapshot_last()),
            show(facts.snapshot)
        ));
    }
    // The entry the record names must be the very same one (same term), unless it was compacted away.
    if let (Some(recorded), Some(first)) = (facts.last_log_id, summary.first_log_index) {
        if recorded.index >= first {
            let log = db.open_tree(LOG_TREE).map_err(|e| format!("{LOG_TREE} cannot be opened: {e}"))?;
            let key = index_key(recorded.index);
            let stored = match log.get(key).map_err(|e| format!("{LOG_TREE} cannot be read: {e}"))? {
                Some(value) => Some(decode_entry(open, &key, &value)?.log_id),
                None => None,
            };
            if stored != Some(recorded) {
                return Err(format!(
                    "{LOG_TREE} holds {} at index {} but the identity record says {}",
                    show(stored),
                    recorded.index,
                    show(Some(recorded))
                ));
            }
        }
    }
    // Last: a store that went back names an older file, and "went back" is the better message.
    if let Some(StoredSnapshot { body: SnapshotBody::File(file), .. }) = &summary.snapshot {
        snapshot_file::check(snapshot_dir, file).map_err(|error| error.to_string())?;
    }
    Ok(())
}
