//! The history tree in sled: where `apply`'s [`HistoryWrite`]s land (`model/history.rs`, ADR 0009).
//!
//! The state machine commits each `apply` call's writes in one batch with the last log id applied
//! ([`commit`]), just after releasing the state's write lock (still holding the snapshot gate); a reader
//! of the tree (`AppliedState::events_after`, `fleet_digest`) waits for a commit under way
//! (`state_machine::HistoryCommit`), so it sees the tree and the in-memory model at the same log id.
//! Nothing here is flushed on its own: the snapshot that follows
//! flushes sled, and everything applied after that snapshot is in the log and is applied again after
//! a crash (the writes are idempotent in order).
//!
//! Which tree is current is recorded beside the snapshot ([`KEY_HISTORY_TREE`]): installing a snapshot
//! fills a fresh tree and switches to it in the same batch that records the snapshot, so a crash
//! mid-install leaves the previous tree whole (the half-filled one is dropped at the next open).

use std::collections::BTreeMap;

use crate::model::event::Event;
use crate::model::history::{self, HistoryWrite, APPLIED_KEY};

use super::types::LogId;

/// The tree a store starts with; installs use `collector_history.<n>`.
pub const HISTORY_TREE: &str = "collector_history";
/// In the snapshot tree: the name of the current history tree (absent: [`HISTORY_TREE`]).
pub const KEY_HISTORY_TREE: &[u8] = b"history_tree";

/// Commits `writes` in order, and `applied` as the tree's last applied log id, in one batch.
pub fn commit(tree: &sled::Tree, writes: Vec<HistoryWrite>, applied: Option<LogId>) -> Result<(), String> {
    // In order, so a delete after a put in the same batch wins, as it would one entry at a time.
    let mut overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for write in writes {
        match write {
            HistoryWrite::PutEvent { history_key, event } => {
                overlay
                    .insert(history::event_key(history_key, event.id), Some(history::encode_event(&event)));
            }
            HistoryWrite::DeleteEvent { history_key, id } => {
                overlay.insert(history::event_key(history_key, id), None);
            }
            HistoryWrite::DropCollector { history_key } => {
                let prefix = history::collector_prefix(history_key);
                for key in tree.scan_prefix(&prefix).keys() {
                    let key = key.map_err(|error| format!("the history tree cannot be read: {error}"))?;
                    overlay.insert(key.to_vec(), None);
                }
                for (key, value) in overlay.range_mut(prefix.clone()..) {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    *value = None;
                }
            }
        }
    }
    let mut batch = sled::Batch::default();
    for (key, value) in overlay {
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    let applied = serde_json::to_vec(&applied).expect("a log id serializes");
    batch.insert(APPLIED_KEY, applied);
    tree.apply_batch(batch).map_err(|error| format!("the history tree cannot be written: {error}"))
}

/// The last log id whose writes `tree` holds (`None`: none yet, or a tree from before the history).
pub fn applied(tree: &sled::Tree) -> Result<Option<LogId>, String> {
    match tree.get(APPLIED_KEY).map_err(|error| format!("the history tree cannot be read: {error}"))? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| format!("the history tree's applied log id does not decode: {error}")),
        None => Ok(None),
    }
}

/// The events of the collector with `history_key` with an id greater than `after`, oldest first, at
/// most `limit`.
pub fn events_after(
    tree: &sled::Tree,
    history_key: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>, String> {
    let prefix = history::events_prefix(history_key);
    let from = history::event_key(history_key, after.saturating_add(1));
    let mut events = Vec::new();
    for entry in tree.range(from..) {
        let (key, value) = entry.map_err(|error| format!("the history tree cannot be read: {error}"))?;
        if !key.starts_with(&prefix) || events.len() == limit {
            break;
        }
        events.push(history::decode_event(&value)?);
    }
    Ok(events)
}

/// Every entry of the tree but its applied log id, in key order (what a snapshot carries).
pub fn entries(tree: &sled::Tree) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), String>> + '_ {
    tree.iter()
        .map(|entry| entry.map_err(|error| format!("the history tree cannot be read: {error}")))
        .filter(|entry| !matches!(entry, Ok((key, _)) if key.as_ref() == APPLIED_KEY))
}

/// The name of a fresh tree to install a snapshot's history into.
pub fn fresh_tree_name(db: &sled::Db) -> String {
    let mut attempt = 1u64;
    loop {
        let name = format!("{HISTORY_TREE}.{attempt}");
        if !db.tree_names().iter().any(|existing| existing.as_ref() == name.as_bytes()) {
            return name;
        }
        attempt += 1;
    }
}

/// Drops every history tree but `current` (left by an install a crash interrupted, or replaced).
pub fn drop_all_but(db: &sled::Db, current: &str) {
    for name in db.tree_names() {
        let is_history = name.as_ref() == HISTORY_TREE.as_bytes()
            || name.as_ref().starts_with(format!("{HISTORY_TREE}.").as_bytes());
        if is_history && name.as_ref() != current.as_bytes() {
            if let Err(error) = db.drop_tree(&name) {
                tracing::warn!(tree = %String::from_utf8_lossy(&name), error = %error, "a replaced history tree could not be dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::EventType;
    use crate::model::UnixMillis;

    const A: u64 = 1;
    const B: u64 = 2;
    const C: u64 = 3;
    const GONE: u64 = 4;

    fn event(id: u64) -> Event {
        Event {
            id,
            ts: UnixMillis(id),
            event_type: EventType::StatusChanged,
            message: format!("event {id}"),
            data: serde_json::Map::new(),
        }
    }

    fn put(collector: u64, id: u64) -> HistoryWrite {
        HistoryWrite::PutEvent { history_key: collector, event: event(id) }
    }

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().expect("a temporary sled");
        db.open_tree(HISTORY_TREE).expect("a tree")
    }

    fn ids(tree: &sled::Tree, collector: u64) -> Vec<u64> {
        events_after(tree, collector, 0, 100).expect("read").iter().map(|event| event.id).collect()
    }

    #[test]
    fn writes_land_in_order_within_one_batch_and_pages_read_after_an_id() {
        let tree = tree();
        let writes = vec![
            put(A, 1),
            put(A, 2),
            put(A, 3),
            HistoryWrite::DeleteEvent { history_key: A, id: 1 },
            put(B, 1),
            put(GONE, 1),
            HistoryWrite::DropCollector { history_key: GONE },
        ];
        commit(&tree, writes, None).expect("commit");
        assert_eq!(ids(&tree, A), vec![2, 3]);
        assert_eq!(ids(&tree, B), vec![1]);
        assert!(ids(&tree, GONE).is_empty(), "a drop removes the puts before it in the batch");
        let page = events_after(&tree, A, 2, 10).expect("read");
        assert_eq!(page, vec![event(3)]);
        assert_eq!(events_after(&tree, A, 0, 1).expect("read").len(), 1, "at most limit");
    }

    #[test]
    fn replaying_the_same_writes_onto_a_tree_that_is_ahead_leaves_it_as_it_was() {
        let first = vec![put(A, 1), put(A, 2)];
        let second = vec![HistoryWrite::DeleteEvent { history_key: A, id: 1 }, put(A, 3)];
        let third = vec![HistoryWrite::DropCollector { history_key: A }, put(C, 1)];
        let ahead = tree();
        for writes in [first.clone(), second.clone(), third.clone()] {
            commit(&ahead, writes, None).expect("commit");
        }
        let state = |tree: &sled::Tree| -> Vec<(Vec<u8>, Vec<u8>)> {
            entries(tree).map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("read")).collect()
        };
        let expected = state(&ahead);
        // A restart from a snapshot taken after `first`: the tree already holds all three.
        for writes in [second, third] {
            commit(&ahead, writes, None).expect("replay");
        }
        assert_eq!(state(&ahead), expected);
        assert_eq!(ids(&ahead, C), vec![1]);
    }

    #[test]
    fn the_applied_log_id_is_recorded_with_the_writes_and_skipped_by_entries() {
        let tree = tree();
        assert_eq!(applied(&tree), Ok(None));
        let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), 17);
        commit(&tree, vec![put(A, 1)], Some(log_id)).expect("commit");
        assert_eq!(applied(&tree), Ok(Some(log_id)));
        assert_eq!(entries(&tree).count(), 1);
    }
}
