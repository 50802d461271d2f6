//! HTTP adapters (actix-web): decode, authenticate, route, encode. No business logic lives here.
//!
//! - [`connect`]: the Connect unary protocol (POST and GET, proto and JSON codecs, gzip, error envelope).
//! - [`collector_service`]: Alloy's `collector.v1.CollectorService` on top of [`connect`].
//! - [`otlp`]: the OTLP/HTTP metrics receiver (`POST /v1/metrics`) for collectors' own_metrics.
//! - [`opamp`], [`opamp_ws`]: OpAMP on `/v1/opamp` for OpenTelemetry Collectors (plain HTTP and
//!   WebSocket).
//! - [`collector_auth`]: the collector bearer-token check both collector-facing adapters share.
//! - [`api`]: the REST API under `/api/v1` (contract: `design/api-contract.md`).
//! - [`principal`]: operator authentication (session cookie or `lmsat_` bearer) and roles.
//! - [`audit`]: the audit record of every authenticated write (`crate::audit` for the rest).
//! - [`csrf`]: the cross-site check every cookie-authenticated unsafe request passes.
//! - [`request_guard`]: the middleware that cuts off slow request bodies and caps them per client.
//! - [`untrusted_text`]: deceptive characters refused in names; untrusted text escaped for logs.
//! - [`body`]: size-bounded body reading and gzip decoding shared by every adapter.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`metrics`]: `GET /metrics` (Prometheus text) and the middleware counting every request.
//! - [`client_addr`]: the client address of a request (`http.trusted_proxies`, `X-Forwarded-For`).
//! - [`login_guard`], [`guards`]: login throttling and the hashing bound; the node-wide state of the
//!   defences against abusive clients.
//! - [`state`]: [`AppState`], what every handler (and the web UI's pages) may use.
//! - [`storage_guard`]: answers 503 to everything once this node's storage has failed.
//! - [`tls`]: HTTPS on the listener (rustls), certificate reloaded on SIGHUP and on file change.
//!
//! The web UI (`crate::ui`) is mounted beside these by `server.rs`: it imports this layer's state and
//! principal, and nothing here imports it.

pub mod api;
pub mod audit;
pub mod body;
pub mod client_addr;
pub mod collector_auth;
pub mod collector_service;
pub mod connect;
pub mod csrf;
pub mod guards;
pub mod health;
pub mod login_guard;
pub mod metrics;
pub mod opamp;
pub mod opamp_enroll;
pub mod opamp_ws;
pub mod otlp;
pub mod principal;
pub mod request_guard;
pub mod state;
pub mod storage_guard;
pub mod tls;
pub mod untrusted_text;
pub mod ws_limit;

use actix_web::{web, HttpRequest};

pub use state::AppState;

/// Mounts the collector-facing endpoints, the REST API, health and metrics (the UI is mounted after
/// them).
pub fn configure(config: &mut web::ServiceConfig) {
    health::configure(config);
    metrics::configure(config);
    collector_service::configure(config);
    otlp::configure(config);
    opamp_ws::configure(config);
    api::configure(config);
}

/// The base URL collectors should use: the configured external URL, else the one this request used.
pub fn external_url(request: &HttpRequest, state: &AppState) -> String {
    match &state.config.external_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = request.connection_info();
            // Over this server's own TLS the scheme is https whatever forwarding headers claim.
            let scheme = if request.app_config().secure() { "https" } else { info.scheme() };
            format!("{scheme}://{}", info.host())
        }
    }
}
