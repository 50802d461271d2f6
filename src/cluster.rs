//! The cluster: what nodes of one cluster say to each other on the cluster port
//! (`proto/linkmesh/cluster/v1`, tonic), how they prove they belong together, and what they agree on
//! beyond the Raft log itself.
//!
//! - [`credential`]: the cluster credential every peer call carries (derived from the data key).
//! - [`payload`]: the bytes inside peer messages (openraft's types and commands as JSON), pure.
//! - [`tls`]: optional TLS and mTLS on the cluster port (`[cluster.tls]`).
//! - [`peers`]: the client pool: a channel per peer, deadlines, reconnects, last contact per node.
//! - [`service`]: the handlers of the cluster port (Raft RPCs, write forwarding, admin).
//! - [`server`]: binding the cluster port and serving it, credential checked before any message.
//! - [`admin`]: the admin calls only the leader answers (`AdminCall`).
//! - [`lease`]: lease arithmetic (when an owner may serve, when the leader calls a member down, how long
//!   a revocation waits for an unreachable owner), pure over monotonic instants.

pub mod admin;
pub mod credential;
pub mod lease;
pub mod payload;
pub mod peers;
pub mod server;
pub mod service;
pub mod tls;
