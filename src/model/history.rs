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
//! Keys: the collector id's length (u16 BE), the id, a kind byte, the event id (u64 BE), so one
//! collector's events are one contiguous range in id order. [`APPLIED_KEY`] (one byte, shorter than
//! any collector key) holds the last log id whose writes the tree has.

use serde::{Deserialize, Serialize};

use super::event::Event;

/// Kind byte of an event key.
const EVENT: u8 = b'e';
/// The key of the last applied log id (a collector key is at least 11 bytes).
pub const APPLIED_KEY: &[u8] = &[0xff];

/// One write to the history tree, in apply order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HistoryWrite {
    /// Stores an event under its id (ids are assigned by `apply`, so a replay writes the same one).
    PutEvent { collector_id: String, event: Event },
    /// Removes one event, dropped by the per-collector bound.
    DeleteEvent { collector_id: String, id: u64 },
    /// Removes everything a deleted collector had.
    DropCollector { collector_id: String },
}

/// The key prefix shared by every key of `collector_id`.
pub fn collector_prefix(collector_id: &str) -> Vec<u8> {
    let id = collector_id.as_bytes();
    // Ids are minted by the server (`col_` and 20 hex digits); a restored fleet's ids are bounded by the
    // backup's own limits, far below this.
    let length = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + id.len() + 9);
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(&id[..usize::from(length)]);
    key
}

/// The prefix of `collector_id`'s events.
pub fn events_prefix(collector_id: &str) -> Vec<u8> {
    let mut key = collector_prefix(collector_id);
    key.push(EVENT);
    key
}

/// The key of event `id` of `collector_id`.
pub fn event_key(collector_id: &str, id: u64) -> Vec<u8> {
    let mut key = events_prefix(collector_id);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The event id at the end of an event key.
pub fn event_id_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
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

    #[test]
    fn a_collectors_events_are_one_range_in_id_order_apart_from_other_collectors() {
        let mut keys = [
            event_key("col_b", 2),
            event_key("col_a", 300),
            event_key("col_b", 1),
            event_key("col_a", 2),
            event_key("col_ab", 1),
            APPLIED_KEY.to_vec(),
        ];
        keys.sort();
        let prefix = events_prefix("col_a");
        let of_a: Vec<u64> =
            keys.iter().filter(|key| key.starts_with(&prefix)).filter_map(|key| event_id_of(key)).collect();
        assert_eq!(of_a, vec![2, 300], "a longer id is not inside a shorter one's range");
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
