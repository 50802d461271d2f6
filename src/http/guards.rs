//! The node-wide state of linkmesh's defences against abusive clients, built once in `server.rs` and
//! shared by every HTTP worker: the login throttle and hashing bound ([`LoginGuard`]); and the
//! default response headers.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;

use super::login_guard::LoginGuard;
use crate::config::NodeConfig;

#[derive(Clone)]
pub struct Guards {
    pub login: web::Data<LoginGuard>,
}

impl Guards {
    /// `cpus` sizes what the config leaves to the machine (the hashing bound).
    pub fn new(config: &NodeConfig, cpus: usize) -> Guards {
        Guards { login: web::Data::new(LoginGuard::new(&config.auth, cpus)) }
    }

    /// Makes the shared state available to handlers (`web::Data<LoginGuard>`, …).
    pub fn register(&self, config: &mut web::ServiceConfig) {
        config.app_data(self.login.clone());
    }
}

/// Headers every response carries unless its handler chose otherwise (UI assets are cached by
/// content hash): nothing an API returns — one-time tokens included — is stored by a browser or a
/// proxy, and nothing is content-sniffed into something executable.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
}
