//! `[cluster]` and `[metrics]`: how a node finds its peers and who may scrape it.
//! Names: `../shared/design/api-contract.md`, section "Cluster".

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{human, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Cluster port: Raft, forwarding and admin RPCs between nodes (tonic). Peers only.
    pub rpc_addr: SocketAddr,
    /// The cluster address peers dial; unset: `rpc_addr`, with an unspecified IP replaced by the
    /// machine's loopback (set it whenever nodes run on different hosts).
    pub advertise_rpc_addr: Option<String>,
    /// The public HTTP address other nodes and clients are sent to; unset: derived from `http_addr`.
    pub advertise_http_addr: Option<String>,
    /// Human label of this node (in `GET /api/v1/cluster` and the UI); unset: the host name.
    pub node_name: Option<String>,
    /// HTTP(S) URL of any member of the cluster to join. With it the node never bootstraps.
    pub join: Option<String>,
    /// `lmjt_…` join token (only read at the first start of an empty data dir).
    pub join_token: Option<String>,
    /// Voters at most; further nodes join and stay learners (they serve and own slots, they do not vote).
    pub max_voters: usize,
    /// A member not heard from for this long is down: its slots move to the others.
    #[serde(deserialize_with = "human::duration")]
    pub node_down_after: Duration,
    /// TLS (and mTLS) on the cluster port and for the node's own peer calls.
    pub tls: ClusterTlsSettings,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            rpc_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            advertise_rpc_addr: None,
            advertise_http_addr: None,
            node_name: None,
            join: None,
            join_token: None,
            max_voters: 5,
            node_down_after: Duration::from_secs(10),
            tls: ClusterTlsSettings::default(),
        }
    }
}

/// With `cert` and `key` the cluster port speaks TLS; with `ca` too, peers verify each other's
/// certificates against it (and, with `require_client_cert`, the server demands one: mTLS).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterTlsSettings {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// PEM CA bundle that peers' certificates must chain to.
    pub ca: Option<PathBuf>,
    /// Demand and verify a client certificate from every peer (needs `ca`).
    pub require_client_cert: bool,
}

impl ClusterTlsSettings {
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// An unspecified bind IP (`0.0.0.0`, `::`) is no address to dial: loopback stands in for it.
fn with_reachable_ip(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// `GET /metrics` (Prometheus text).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Scrapers (addresses or CIDR networks) that may read `/metrics` without a token; everyone else
    /// needs a service-account token.
    #[serde(deserialize_with = "human::networks")]
    pub allow_anonymous_from: Vec<ipnet::IpNet>,
}

impl ClusterSettings {
    /// The HTTP address other nodes send clients (and joining nodes) to: `advertise_http_addr`, else
    /// the bound address with an unspecified IP replaced by loopback.
    pub fn advertised_http_addr(&self, bound: SocketAddr) -> String {
        self.advertise_http_addr.clone().unwrap_or_else(|| with_reachable_ip(bound).to_string())
    }

    /// The cluster address peers dial: `advertise_rpc_addr`, else `rpc_addr` (bound as `bound`) with an
    /// unspecified IP replaced by loopback.
    pub fn advertised_rpc_addr(&self, bound: SocketAddr) -> String {
        self.advertise_rpc_addr.clone().unwrap_or_else(|| with_reachable_ip(bound).to_string())
    }

    /// `node_name`, else the host name, else `linkmesh`.
    pub fn node_name(&self) -> String {
        if let Some(name) = &self.node_name {
            return name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "linkmesh".to_owned())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_voters == 0 {
            return Err(ConfigError::Invalid("cluster.max_voters must be at least 1".into()));
        }
        if self.node_down_after < Duration::from_secs(2) {
            return Err(ConfigError::Invalid("cluster.node_down_after must be at least 2s".into()));
        }
        if let Some(name) = &self.node_name {
            if name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
                return Err(ConfigError::Invalid(
                    "cluster.node_name must be 1 to 128 characters, without control characters".into(),
                ));
            }
        }
        if let Some(url) = &self.join {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "cluster.join {url:?} must be the http:// or https:// URL of a member"
                )));
            }
            if self.join_token.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::Invalid(
                    "cluster.join needs a join token (--join-token or LINKMESH_JOIN_TOKEN)".into(),
                ));
            }
        }
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "cluster.tls.cert and cluster.tls.key must be set together".into(),
            ));
        }
        if (tls.ca.is_some() || tls.require_client_cert) && !tls.enabled() {
            return Err(ConfigError::Invalid(
                "cluster.tls.ca needs cluster.tls.cert and cluster.tls.key".into(),
            ));
        }
        if tls.require_client_cert && tls.ca.is_none() {
            return Err(ConfigError::Invalid("cluster.tls.require_client_cert needs cluster.tls.ca".into()));
        }
        Ok(())
    }
}
