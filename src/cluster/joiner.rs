//! The joining node's side (`linkmesh serve --join <url> --join-token <lmjt_…>` on an empty data dir):
//! run the exchange against the member the URL names, follow it to the leader, and create the data
//! dir as a member of that cluster.
//!
//! The node id is generated first (it is part of the proof), the data dir is created only after the
//! cluster answered: a refused join leaves the data dir empty, so the operator can try again. The
//! store is created without initializing a cluster ([`crate::raft::data_dir::Contents::Joined`]):
//! the node waits for its leader to replicate the log to it.

use std::time::Duration;

use super::join::{self, JoinError, JoinRequest, JoinResponse, JoiningNode, JOIN_PATH};
use super::member_levels::{this_node_reports, JOIN_LEVEL_HEADER};
use crate::raft::data_dir::{self, Contents, DataDirError, OpenedStore};
use crate::raft::identity::Identity;
use crate::raft::storage_health::StorageHealth;
use crate::raft::RaftNode;
use crate::secrets::{DataKey, DataKeyError};

/// A member that is not the leader names the leader; followed at most this many times.
const MAX_REDIRECTS: usize = 3;
/// A cluster without a leader (an election under way) is asked again, this many times in all.
const MAX_ATTEMPTS: usize = 10;
const RETRY_DELAY: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// While a joined node waits for its leader, how often it says so.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum JoinFailure {
    #[error(transparent)]
    Exchange(#[from] JoinError),
    #[error("cannot reach {url} to join: {cause}; check the --join URL and that the member is running")]
    Unreachable { url: String, cause: String },
    #[error("the cluster at {url} refused the join: {message}")]
    Refused { url: String, message: String },
    #[error("the cluster at {url} refused the join: {message}")]
    AlreadyMember { url: String, message: String },
    #[error("the cluster at {url} has no leader to join through after {attempts} attempts: {message}")]
    NoLeader { url: String, attempts: usize, message: String },
    #[error("{url} answered the join with {status}: {message}")]
    Unexpected { url: String, status: u16, message: String },
    #[error(
        "LINKMESH_DATA_KEY is not the data key of the cluster joined (fingerprint {configured}, the cluster's \
         {cluster}); unset it to keep the received key in the data dir, or set it to the cluster's key"
    )]
    DataKeyMismatch { configured: String, cluster: String },
    #[error(transparent)]
    DataKey(#[from] DataKeyError),
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

impl JoinFailure {
    /// 3 for a damaged data dir, 4 for failing storage, else 1 (configuration or a refused join).
    pub fn exit_code(&self) -> u8 {
        match self {
            JoinFailure::DataDir(error) => error.exit_code(),
            _ => 1,
        }
    }
}

/// What the cluster handed over.
pub struct Admitted {
    pub cluster_id: String,
    pub data_key: DataKey,
    /// The member that admitted the node.
    pub leader_url: String,
}

/// Runs the exchange against `url` (any member), following it to the leader.
pub async fn request_admission(url: &str, token: &str, node: &JoiningNode) -> Result<Admitted, JoinFailure> {
    join::token_hash(token)?;
    warn_if_plain_http(url);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| JoinFailure::Unreachable { url: url.to_owned(), cause: error.to_string() })?;
    let scheme = if url.starts_with("https://") { "https" } else { "http" };
    let mut target = url.trim_end_matches('/').to_owned();
    let mut redirects = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (request, key) = JoinRequest::new(token, node, join::fresh_request_nonce()?)?;
        let response = client
            .post(format!("{target}{JOIN_PATH}"))
            .header(JOIN_LEVEL_HEADER, this_node_reports().0.to_string())
            .json(&request)
            .send()
            .await
            .map_err(|error| JoinFailure::Unreachable { url: target.clone(), cause: describe(&error) })?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or("no error message").to_owned();
        match status {
            200 => {
                let sealed: JoinResponse = serde_json::from_value(body).map_err(|error| {
                    JoinFailure::Unexpected { url: target.clone(), status, message: error.to_string() }
                })?;
                let bundle = join::open_bundle(&key, node.node_id, &sealed)?;
                let data_key = base64_key(&bundle.data_key).ok_or(JoinError::CannotOpen)?;
                return Ok(Admitted { cluster_id: bundle.cluster_id, data_key, leader_url: target });
            }
            503 => {
                if let Some(leader) = body["leader_http_addr"].as_str().filter(|addr| !addr.is_empty()) {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(JoinFailure::NoLeader { url: url.to_owned(), attempts, message });
                    }
                    let next = format!("{scheme}://{leader}");
                    tracing::info!(from = %target, leader = %next, "the member is not the leader; joining through the leader");
                    target = next;
                    continue;
                }
                if attempts >= MAX_ATTEMPTS {
                    return Err(JoinFailure::NoLeader { url: target, attempts, message });
                }
                tracing::info!(url = %target, reason = %message, "the cluster cannot admit the node yet; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
            401 | 400 => return Err(JoinFailure::Refused { url: target, message }),
            409 => return Err(JoinFailure::AlreadyMember { url: target, message }),
            _ => return Err(JoinFailure::Unexpected { url: target, status, message }),
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn base64_key(text: &str) -> Option<DataKey> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    DataKey::from_bytes(&bytes)
}

/// The exchange is sealed, so plain http is allowed; https still hides who joins.
fn warn_if_plain_http(url: &str) {
    let Some(rest) = url.strip_prefix("http://") else { return };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rfind(':') {
        Some(colon) if !authority.ends_with(']') => &authority[..colon],
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        tracing::warn!(
            url = %url,
            "joining over plain http: the exchange is sealed with the join token, but https would also hide which \
             node joins; prefer an https URL"
        );
    }
}

/// Joins the cluster at `url` and creates the empty data dir as a member of it: the identity record
/// with the received cluster id and this node's id, the data key (or a check that
/// `LINKMESH_DATA_KEY` is the cluster's), and a store that is never initialized.
pub async fn join_and_create_data_dir(
    data_dir: &std::path::Path,
    url: &str,
    token: &str,
    name: String,
    http_addr: String,
    rpc_addr: String,
) -> Result<(DataKey, OpenedStore), JoinFailure> {
    let generated =
        Identity::generate().map_err(|error| DataDirError::damaged(data_dir, error.to_string()))?;
    let node = JoiningNode { node_id: generated.node_id, name, http_addr, rpc_addr };
    tracing::info!(url = %url, node_id = node.node_id, "joining a cluster");
    let admitted = request_admission(url, token, &node).await?;
    let data_key = match std::env::var("LINKMESH_DATA_KEY") {
        Ok(configured) => {
            let configured = DataKey::load_or_create(Some(&configured), data_dir)?;
            if configured.fingerprint() != admitted.data_key.fingerprint() {
                return Err(JoinFailure::DataKeyMismatch {
                    configured: configured.fingerprint(),
                    cluster: admitted.data_key.fingerprint(),
                });
            }
            configured
        }
        Err(_) => {
            admitted.data_key.store(data_dir)?;
            admitted.data_key
        }
    };
    let identity = Identity { cluster_id: admitted.cluster_id, node_id: node.node_id };
    tracing::info!(
        cluster_id = %identity.cluster_id,
        node_id = identity.node_id,
        leader = %admitted.leader_url,
        "admitted to the cluster as a learner"
    );
    let store = data_dir::open_store(
        data_dir,
        Contents::Joined(identity),
        &data_key.fingerprint(),
        StorageHealth::new(),
        None,
    )?;
    Ok((data_key, store))
}

/// Waits until a joined node has a leader and has applied the cluster's state (the bootstrap entry
/// and the log as far as this node holds it), saying so every few seconds. No deadline: a node
/// that is not reached yet keeps waiting, and its log says why.
pub async fn wait_until_replicated(raft: &RaftNode) {
    let started = tokio::time::Instant::now();
    let mut next_log = started;
    let mut watch = raft.metrics_watch();
    loop {
        let metrics = watch.borrow_and_update().clone();
        let applied = metrics.last_applied.map(|applied| applied.index);
        let caught_up = metrics.current_leader.is_some()
            && raft.state().fleet.bootstrapped
            && applied.is_some()
            && applied >= metrics.last_log_index;
        if caught_up {
            tracing::info!(leader = ?metrics.current_leader, applied_index = ?applied, "caught up with the leader");
            return;
        }
        if raft.storage_health().failure().is_some() {
            return;
        }
        let now = tokio::time::Instant::now();
        if now >= next_log {
            tracing::info!(
                leader = ?metrics.current_leader,
                applied_index = ?applied,
                waited_seconds = (now - started).as_secs(),
                "waiting for the leader to replicate the cluster state to this node (the leader must reach this \
                 node's cluster port)"
            );
            next_log = now + WAITING_LOG_INTERVAL;
        }
        if let Ok(Err(_closed)) = tokio::time::timeout_at(next_log, watch.changed()).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_token_is_refused_before_anything_is_sent() {
        let node =
            JoiningNode { node_id: 7, name: "n".into(), http_addr: "a:1".into(), rpc_addr: "a:2".into() };
        let refused = request_admission("http://127.0.0.1:9", "lmjt_short", &node).await;
        assert!(matches!(refused, Err(JoinFailure::Exchange(JoinError::MalformedToken))));
    }

    #[tokio::test]
    async fn an_unreachable_member_is_named_in_the_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let node =
            JoiningNode { node_id: 7, name: "n".into(), http_addr: "a:1".into(), rpc_addr: "a:2".into() };
        let token = crate::secrets::mint_token(crate::secrets::JOIN_TOKEN_PREFIX).expect("mint").token;
        let url = format!("http://{addr}");
        match request_admission(&url, &token, &node).await {
            Err(JoinFailure::Unreachable { url: named, .. }) => assert_eq!(named, url),
            Err(other) => panic!("unexpected failure {other}"),
            Ok(_) => panic!("joined nothing"),
        }
    }
}
