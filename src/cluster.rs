//! The cluster: what several nodes agree on beyond the Raft log itself.
//!
//! - [`lease`]: lease arithmetic (when an owner may serve, when the leader calls a member down, how long
//!   a revocation waits for an unreachable owner), pure over monotonic instants.

pub mod lease;
