//! The durable fleet model: what Raft replicates and every node holds in memory.
//!
//! Invariants:
//! - [`FleetState::apply`] is the only way the model changes; it is pure (no clock, no randomness, no I/O):
//!   timestamps and ids arrive inside the [`Command`], chosen by the proposer.
//! - A rejected command leaves the state untouched (validation happens before any mutation).
//! - Secrets are stored only as SHA-256 hashes (tokens) or argon2id PHC strings (passwords).

pub mod audit;
pub mod auth;
pub mod balancer;
pub mod collector;
pub mod command;
pub mod config_text;
pub mod deleted_tokens;
pub mod enrollment_tokens;
pub mod event;
pub mod feature_level;
pub mod fleet_items;
pub mod fleet_state;
pub mod history;
pub mod join_tokens;
pub mod labels;
pub mod name_order;
pub mod pipeline;
pub mod rollouts;
pub mod slots;
pub mod stability;
pub mod time;

pub use audit::{ActorKind, AuditBatch, AuditEntry, AuditLog, AuditRecord, AuditRetention};
pub use auth::{Role, ServiceAccount, ServiceAccountToken, Session, User};
pub use collector::{
    CollectorMap, CollectorMode, CollectorRecord, CollectorStatus, InferredApply, RemoteConfigState,
    TokenInfo,
};
pub use command::{ActivityUpdate, CollectorTokenChange, Command, RestoredFleet};
pub use event::{Event, EventType};
pub use feature_level::FeatureLevel;
pub use fleet_state::{ApplyError, CommandOutcome, Effect, FleetState};
pub use labels::{natural_cmp, Labels, Selector, SelectorError};
pub use slots::{slot_of, MovedSlot, SlotEntry, SlotEpoch, SlotMove, SlotMoveReason, SlotTable, SLOT_COUNT};
pub use time::{Clock, ManualClock, UnixMillis};

/// SHA-256 of a bearer token; the only form in which tokens are kept.
pub type TokenHash = [u8; 32];

/// A token hash as records keep it (hex), or `None` when the text is not one.
pub fn parse_token_hash(text: &str) -> Option<TokenHash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}
