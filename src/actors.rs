//! Collector actors: the live side of every collector, on the node that owns its slot.
//!
//! - [`collector_actor`]: one actix actor per collector; owns live status, poll cadence, the cached
//!   rendered config and what the collector reported. Answers polls without touching Raft.
//! - [`env`]: what every collector actor shares (Raft, the activity writer, settings, the data key)
//!   and the table of resident actors; the actor and the registry both use it, not each other.
//! - [`registry`]: activates actors on demand on the owner node, passivates idle ones, and is the typed
//!   handle (`CollectorRegistry`) that the HTTP layer uses; nothing outside `actors/` sees a mailbox.
//! - [`push_gate`]: admission of own_metrics pushes before their body is read (per collector, per node).
//! - [`poll_gate`]: a token bucket per collector over its remotecfg calls, checked before the body is read.
//! - [`activity_writer`]: batches status changes and events from all actors into one Raft write per
//!   flush interval, so a poll never waits for consensus.
//! - [`audit_writer`]: writes the queued audit records of requests that committed nothing, and
//!   service-account token uses, one batched Raft write each per `audit.flush_interval`.
//! - [`apply_tracker`]: the delivery a collector actor follows through its own metrics, the scrape
//!   before it, and whether Alloy's own status report disagrees with the inference (`apply_status`).
//! - [`liveness`]: the pure status rules (cadence learning, stale detection), unit-tested without actors.
//! - [`throughput`]: the rate math over own_metrics pushes and the per-component rate windows (pure);
//!   the actor owns one `ThroughputState`.

pub mod activity_writer;
pub mod apply_tracker;
pub mod audit_writer;
pub mod collector_actor;
pub mod env;
pub mod liveness;
pub mod poll_gate;
pub mod push_gate;
pub mod registry;
pub mod throughput;

pub use registry::{CollectorRegistry, RegistryError};
