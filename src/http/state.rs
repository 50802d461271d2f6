//! `AppState`: what every handler may use, shared by all workers. Its own file so that the HTTP
//! adapters and the web UI both import it without importing each other.

use std::sync::Arc;

use crate::actors::CollectorRegistry;
use crate::config::NodeConfig;
use crate::metrics::NodeMetrics;
use crate::raft::RaftNode;

/// Everything a handler may use; shared by all workers.
pub struct AppState {
    pub raft: RaftNode,
    pub registry: CollectorRegistry,
    pub config: Arc<NodeConfig>,
    /// Seals destination credentials before they are proposed.
    pub data_key: crate::secrets::DataKey,
    /// This node's Prometheus registry (`GET /metrics`).
    pub metrics: Arc<NodeMetrics>,
}
