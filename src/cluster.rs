//! The cluster: how nodes join, are promoted and are shown (`../shared/design/cluster.md`).
//!
//! - [`join`]: the join exchange of `docs/adr/0004` (pure): request, proof, sealed reply.
//! - [`admission`]: the leader's side of a join: verify, consume a token use, add a learner.
//! - [`joiner`]: the joining node's side: run the exchange against any member, follow it to the leader.
//! - [`promoter`]: the leader's task that promotes caught-up learners to voters, up to `max_voters`.

pub mod admission;
pub mod join;
pub mod joiner;
pub mod promoter;
