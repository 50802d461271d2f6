//! Multi-node tests: real `linkmesh` processes on loopback ports (`harness.rs`), driven through their
//! public HTTP API. Run with `cargo test --test cluster`.
//!
//! Every wait has a deadline; no test sleeps to synchronise.

#[path = "../tests/support/mod.rs"]
mod support;

mod batch;
mod catch_up;
mod failover;
mod forwarder;
mod harness;
mod join;
mod live_reads;
mod opamp_supervisor;
mod peer_tls;
mod routing;
mod upgrade;
