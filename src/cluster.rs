//! The cluster: what nodes of one cluster say to each other on the cluster port
//! (`proto/linkmesh/cluster/v1`, tonic), how they prove they belong together, how nodes join and are
//! promoted, and what they agree on beyond the Raft log itself (`../shared/design/cluster.md`).
//!
//! - [`credential`]: the cluster credential every peer call carries (derived from the data key).
//! - [`payload`]: the bytes inside peer messages (openraft's types and commands as JSON), pure.
//! - [`tls`]: optional TLS and mTLS on the cluster port (`[cluster.tls]`).
//! - [`peers`]: the client pool: a channel per peer, deadlines, reconnects, last contact per node.
//! - [`service`]: the handlers of the cluster port (Raft RPCs, write forwarding, admin, the owner's
//!   side of collector calls forwarded to it).
//! - [`forward`]: the edge's side of routing a collector's call to the owner of its slot.
//! - [`live_reads`]: reads from any node: live fields gathered from the owners, one bounded call each.
//! - [`server`]: binding the cluster port and serving it, credential checked before any message.
//! - [`admin`]: the admin calls only the leader answers (`AdminCall`).
//! - [`lease`]: lease arithmetic (when an owner may serve, when the leader calls a member down, how long
//!   a revocation waits for an unreachable owner), pure over monotonic instants.
//! - [`join`]: the join exchange of `docs/adr/0004` (pure): request, proof, sealed reply.
//! - [`admission`]: the leader's side of a join: verify, consume a token use, add a learner.
//! - [`joiner`]: the joining node's side: run the exchange against any member, follow it to the leader.
//! - [`promoter`]: the leader's task that promotes caught-up learners to voters, up to `max_voters`.
//! - [`ownership`]: this node's owner lease and the leader's drains, down members and transfers.
//! - [`renewer`]: the task that renews this node's owner lease with the leader.
//! - [`revocation`]: a rotation or deletion waits for the owner (or its lease) before it returns.
//! - [`member_levels`]: on the leader, each member's reported release (feature level, version).
//! - [`level_raiser`]: the leader's task that raises the cluster's feature level once every member
//!   knows it (rolling upgrades, `model/feature_level.rs`).
//! - [`balancer_loop`]: the leader's task that moves slots (balance, failover, drain) and removes
//!   drained members.

pub mod admin;
pub mod admission;
pub mod balancer_loop;
pub mod catch_up;
pub mod credential;
pub mod forward;
pub mod join;
pub mod joiner;
pub mod lease;
pub mod level_raiser;
pub mod live_reads;
pub mod member_levels;
pub mod ownership;
pub mod payload;
pub mod peers;
pub mod promoter;
pub mod read_index;
pub mod renewer;
pub mod revocation;
pub mod rollout_loop;
pub mod server;
pub mod service;
pub mod tls;
