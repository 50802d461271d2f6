//! linkmesh: a fleet manager for Grafana Alloy (remotecfg) and OpenTelemetry Collectors (OpAMP).
//!
//! Map of the crate (details in `ARCHITECTURE.md`):
//!
//! - [`http`]: protocol adapters on actix-web — Connect (`collector.v1.CollectorService`), REST
//!   (`/api/v1`), health. Decode, authenticate, route to an actor or propose to Raft, encode.
//! - [`actors`]: one `CollectorActor` per collector on the node owning its slot; live status, poll
//!   cadence, cached rendered config; batched activity writes.
//! - [`cluster`]: joining a cluster (the sealed join exchange), promotion of learners to voters.
//! - [`raft`]: openraft with the log and snapshots in sled; the only way state changes.
//! - [`cluster`]: several nodes as one: the peer transport on the cluster port (tonic) with Raft RPCs,
//!   write forwarding and admin, the cluster credential and TLS between nodes; owner leases and
//!   failover timing.
//! - [`model`]: the replicated fleet model and its pure `apply`.
//! - [`apply_status`]: whether an Alloy collector runs its delivered config, inferred from its own
//!   metrics where its release does not report it (the per-release signal table, pure inference).
//! - [`own_metrics`]: what collectors' own metrics mean (the mapping table) and their extraction from
//!   OTLP pushes (pure).
//! - [`opamp`]: OpAMP for upstream OpenTelemetry Collectors: WebSocket framing, agent identity,
//!   capability bits (pure; the transports build on it).
//! - [`render`]: pure rendering of a collector's config (Alloy syntax, OTel YAML).
//! - [`secrets`]: token minting and hashing, passwords, ids.
//! - [`backup`]: the backup document (`GET /api/v1/backup`, `linkmesh backup`) and `linkmesh restore`.
//! - [`audit`]: how operator writes become replicated audit entries (request records, the queue).
//! - [`ui`]: the web UI at `/` (server-rendered pages, embedded assets, live updates over SSE).
//! - [`config`], [`cli`], [`server`]: node configuration, command line, process wiring.
//! - [`simulate`]: `linkmesh simulate`, a fleet of simulated Alloy collectors (demo, benchmark load).
//! - [`metrics`]: the node's Prometheus registry (Raft, polls, forwarding, actors, HTTP), served by
//!   `http::metrics` at `GET /metrics`.
//! - [`error`]: the one table mapping errors to Connect codes, REST codes and HTTP statuses.
//! - [`fuzzing`]: the fuzz targets' bodies, shared by `fuzz/` and the corpus replay in `tests/`.

pub mod actors;
pub mod apply_status;
pub mod audit;
pub mod backup;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod model;
pub mod opamp;
pub mod ottl;
pub mod own_metrics;
pub mod raft;
pub mod render;
pub mod secrets;
pub mod server;
pub mod simulate;
pub mod ui;

/// Code generated from `proto/` by `build.rs`.
pub mod proto {
    pub mod collector {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            include!(concat!(env!("OUT_DIR"), "/collector.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/collector.v1.serde.rs"));
        }
    }
    /// The peer protocol on the cluster port (client and server).
    pub mod cluster {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            include!(concat!(env!("OUT_DIR"), "/linkmesh.cluster.v1.rs"));
        }
    }
    /// OpAMP (`opamp.v1`): what agents and the server exchange on `/v1/opamp`.
    pub mod opamp {
        pub mod v1 {
            #![allow(clippy::all, missing_docs)]
            include!(concat!(env!("OUT_DIR"), "/opamp.v1.rs"));
        }
    }
}
