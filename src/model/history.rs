//! A collector's history on disk: what `apply` writes outside the in-memory model (ADR 0009).
//!
//! From feature level 3 on, a collector's events are not kept in [`FleetState`](super::FleetState)
//! but in a sled tree of their own. `apply` stays pure: it returns [`HistoryWrite`]s beside its
//! effects, and the state machine commits them, together with the log id they were applied at, in one
//! batch. Every write is *blind* (its key and value follow from the command and the in-memory state
//! alone, never from what the tree holds) and therefore idempotent in order: replaying the log after
//! a snapshot onto a tree that is already ahead of that snapshot leaves it exactly as it was. That is
//! what lets a snapshot copy the tree without stopping applies, and a restart trust a tree that is at
//! least as new as its snapshot.
//!
//! Keys: the collector's history key (u64 BE, given by `apply` in creation order from
//! `FleetState::next_history_key`, so a batch of new collectors writes at the end of the tree instead
//! of all over it), a kind byte, the event id (u64 BE): one collector's events are one contiguous
//! range in id order. [`APPLIED_KEY`] (one byte, shorter than any collector key) holds the last log
//! id whose writes the tree has.

use serde::{Deserialize, Serialize};

use super::event::Event;

/// Kind byte of an event key.
const EVENT: u8 = b'e';
/// The key of the last applied log id (a collector key is 17 bytes; history keys never reach 0xff…).
pub const APPLIED_KEY: &[u8] = &[0xff];

/// One write to the history tree, in apply order. `history_key` is the collector's
/// (`CollectorRecord::history_key`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HistoryWrite {
    /// Stores an event under its id (ids are assigned by `apply`, so a replay writes the same one).
    PutEvent { history_key: u64, event: Event },
    /// Removes one event, dropped by the per-collector bound.
    DeleteEvent { history_key: u64, id: u64 },
    /// Removes everything a deleted collector had.
    DropCollector { history_key: u64 },
}

/// Where new events go once they are kept on disk: the writes, and the counter new collectors take
/// their history key from.
pub struct HistorySink<'a> {
    pub writes: &'a mut Vec<HistoryWrite>,
    pub next_key: &'a mut u64,
}

/// The key prefix shared by every key of the collector with `history_key`.
pub fn collector_prefix(history_key: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.extend_from_slice(&history_key.to_be_bytes());
    key
}

/// The prefix of a collector's events.
pub fn events_prefix(history_key: u64) -> Vec<u8> {
    let mut key = collector_prefix(history_key);
    key.push(EVENT);
    key
}

/// The key of event `id` of the collector with `history_key`.
pub fn event_key(history_key: u64, id: u64) -> Vec<u8> {
    let mut key = events_prefix(history_key);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// An event as stored: MessagePack with field names (the snapshot files' encoding).
pub fn encode_event(event: &Event) -> Vec<u8> {
    rmp_serde::to_vec_named(event).expect("an event serializes")
}

pub fn decode_event(bytes: &[u8]) -> Result<Event, String> {
    rmp_serde::from_slice(bytes).map_err(|error| format!("a stored event does not decode: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::EventType;
    use crate::model::UnixMillis;

    /// The event id at the end of an event key.
    fn event_id_of(key: &[u8]) -> Option<u64> {
        let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
        Some(u64::from_be_bytes(tail))
    }

    #[test]
    fn a_collectors_events_are_one_range_in_id_order_apart_from_other_collectors() {
        let mut keys = [
            event_key(2, 2),
            event_key(1, 300),
            event_key(2, 1),
            event_key(1, 2),
            event_key(256, 1),
            APPLIED_KEY.to_vec(),
        ];
        keys.sort();
        let prefix = events_prefix(1);
        let of_first: Vec<u64> =
            keys.iter().filter(|key| key.starts_with(&prefix)).filter_map(|key| event_id_of(key)).collect();
        assert_eq!(of_first, vec![2, 300]);
        assert_eq!(keys[0..2], [event_key(1, 2), event_key(1, 300)], "in creation order, then event id");
        assert_eq!(keys.last().map(Vec::as_slice), Some(APPLIED_KEY), "the applied key is no collector's");
    }

    #[test]
    fn an_event_round_trips_through_its_stored_form() {
        let event = Event {
            id: 7,
            ts: UnixMillis(12),
            event_type: EventType::TokenMinted,
            message: "collector token minted".to_owned(),
            data: serde_json::json!({ "prefix": "lmct_ab" }).as_object().cloned().unwrap_or_default(),
        };
        assert_eq!(decode_event(&encode_event(&event)), Ok(event));
        assert!(decode_event(b"\xc1").is_err());
    }
}
