//! HTTP adapters (actix-web): decode, authenticate, route, encode. No business logic lives here.
//!
//! - [`connect`]: the Connect unary protocol (POST and GET, proto and JSON codecs, gzip, error envelope).
//! - [`collector_service`]: Alloy's `collector.v1.CollectorService` on top of [`connect`].
//! - [`otlp`]: the OTLP/HTTP metrics receiver (`POST /v1/metrics`) for collectors' own_metrics.
//! - [`collector_auth`]: the collector bearer-token check both collector-facing adapters share.
//! - [`api`]: the REST API under `/api/v1` (contract: `design/api-contract.md`).
//! - [`principal`]: operator authentication (session cookie or `lmsat_` bearer) and roles.
//! - [`csrf`]: the cross-site check every cookie-authenticated unsafe request passes.
//! - [`untrusted_text`]: deceptive characters refused in names; untrusted text escaped for logs.
//! - [`body`]: size-bounded body reading and gzip decoding shared by every adapter.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`client_addr`]: the client address of a request (`http.trusted_proxies`, `X-Forwarded-For`).
//! - [`login_guard`], [`guards`]: login throttling and the hashing bound; the node-wide state of the
//!   defences against abusive clients.

pub mod api;
pub mod body;
pub mod client_addr;
pub mod collector_auth;
pub mod collector_service;
pub mod connect;
pub mod csrf;
pub mod guards;
pub mod health;
pub mod login_guard;
pub mod otlp;
pub mod principal;
pub mod untrusted_text;

use std::sync::Arc;

use actix_web::web;

use crate::actors::CollectorRegistry;
use crate::config::NodeConfig;
use crate::raft::RaftNode;

/// Everything a handler may use; shared by all workers.
pub struct AppState {
    pub raft: RaftNode,
    pub registry: CollectorRegistry,
    pub config: Arc<NodeConfig>,
    /// Seals destination credentials before they are proposed.
    pub data_key: crate::secrets::DataKey,
}

/// Mounts every route of the public listener.
pub fn configure(config: &mut web::ServiceConfig) {
    health::configure(config);
    collector_service::configure(config);
    otlp::configure(config);
    api::configure(config);
    crate::ui::configure(config);
}
