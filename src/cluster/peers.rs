//! The client side of the cluster port: one lazily connected tonic channel per peer address.
//!
//! A channel connects on its first call (bounded by [`CONNECT_TIMEOUT`]) and reconnects on its own
//! after the connection drops; a channel whose call failed at the transport is also replaced, so a
//! peer that moved or restarted is dialled afresh. Every call carries the cluster credential and its
//! own deadline. Channels are created on the raft runtime whatever thread asks for one (their
//! background task lives there). The pool remembers, per node, when a call last succeeded, on tokio's
//! monotonic clock: [`PeerPool::last_contact`], read by the cluster status and, later, the leases.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::credential::ClusterCredential;
use crate::proto::cluster::v1::cluster_service_client::ClusterServiceClient;

/// Dialling a peer that does not answer gives up after this long (the call then fails as unreachable).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest message either side of the cluster port sends or accepts: a snapshot chunk
/// (`SNAPSHOT_CHUNK_BYTES` in `raft/node.rs`, 4 MiB) or an append batch (up to openraft's 300 entries) is
/// far below it; a larger append batch is split by the sender first (`raft/network.rs`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer address {addr:?} is not valid: {detail}")]
    InvalidAddress { addr: String, detail: String },
    /// No connection could be made: the call was never delivered.
    #[error("cannot reach {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    /// The deadline passed: the call may or may not have been handled.
    #[error("call to {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    /// The peer answered with an error status, or the connection broke during the call.
    #[error("call to {addr} failed: {code:?}: {message}")]
    Failed { addr: String, code: tonic::Code, message: String },
}

impl PeerError {
    /// Whether the peer may have handled the call (a write may have committed).
    pub fn may_have_been_delivered(&self) -> bool {
        matches!(self, PeerError::Timeout { .. } | PeerError::Failed { .. })
    }
}

pub type PeerClient = ClusterServiceClient<Channel>;

#[derive(Clone)]
pub struct PeerPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    credential: ClusterCredential,
    tls: Option<ClientTlsConfig>,
    runtime: tokio::runtime::Handle,
    channels: Mutex<HashMap<String, Channel>>,
    last_contact: Mutex<HashMap<u64, Instant>>,
}

impl PeerPool {
    pub fn new(
        credential: ClusterCredential,
        tls: Option<ClientTlsConfig>,
        runtime: tokio::runtime::Handle,
    ) -> PeerPool {
        PeerPool {
            inner: Arc::new(PoolInner {
                credential,
                tls,
                runtime,
                channels: Mutex::new(HashMap::new()),
                last_contact: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// When a call to `node_id` last succeeded (tokio's monotonic clock); `None`: never since start.
    pub fn last_contact(&self, node_id: u64) -> Option<Instant> {
        self.inner.last_contact.lock().get(&node_id).copied()
    }

    /// Calls the peer `node_id` at `addr` (`host:port`) with `message`: `call` picks the RPC on the
    /// client it is handed. The credential and the deadline are added here; a transport failure
    /// drops the channel so the next call dials again.
    pub async fn call<M, R, F, Fut>(
        &self,
        node_id: u64,
        addr: &str,
        message: M,
        timeout: Duration,
        call: F,
    ) -> Result<R, PeerError>
    where
        F: FnOnce(PeerClient, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let client = self.client(addr)?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let bearer = self.inner.credential.bearer().parse().map_err(|_| PeerError::InvalidAddress {
            addr: addr.to_owned(),
            detail: "the credential is not a valid header value".to_owned(),
        })?;
        request.metadata_mut().insert("authorization", bearer);
        match tokio::time::timeout(timeout, call(client, request)).await {
            Err(_elapsed) => Err(PeerError::Timeout { addr: addr.to_owned(), after: timeout }),
            Ok(Ok(response)) => {
                self.inner.last_contact.lock().insert(node_id, Instant::now());
                Ok(response.into_inner())
            }
            Ok(Err(status)) => {
                let error = classify(addr, status, timeout);
                if !matches!(error, PeerError::Failed { code, .. } if answered_by_peer(code)) {
                    self.inner.channels.lock().remove(addr);
                } else {
                    // The peer answered: it is there, even if it refused this call.
                    self.inner.last_contact.lock().insert(node_id, Instant::now());
                }
                Err(error)
            }
        }
    }

    fn client(&self, addr: &str) -> Result<PeerClient, PeerError> {
        let channel = {
            let mut channels = self.inner.channels.lock();
            match channels.get(addr) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = self.connect_lazy(addr)?;
                    channels.insert(addr.to_owned(), channel.clone());
                    channel
                }
            }
        };
        Ok(ClusterServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn connect_lazy(&self, addr: &str) -> Result<Channel, PeerError> {
        let invalid = |detail: String| PeerError::InvalidAddress { addr: addr.to_owned(), detail };
        let scheme = if self.inner.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|error| invalid(error.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10));
        if let Some(tls) = &self.inner.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|error| invalid(error.to_string()))?;
        }
        // The channel's worker task is spawned on the current runtime: make that the raft runtime.
        let _runtime = self.inner.runtime.enter();
        Ok(endpoint.connect_lazy())
    }
}

/// Codes a peer's service returns itself (the connection worked).
fn answered_by_peer(code: tonic::Code) -> bool {
    !matches!(code, tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled)
}

/// A status whose cause is a failed dial (tonic's `ConnectError` in its source chain) means nothing
/// was sent; tonic's own deadline (`TimeoutExpired`, from the request's timeout) is a timeout;
/// anything else may have reached the peer.
fn classify(addr: &str, status: tonic::Status, timeout: Duration) -> PeerError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&status);
    while let Some(error) = source {
        if error.downcast_ref::<tonic::ConnectError>().is_some() {
            return PeerError::Unreachable { addr: addr.to_owned(), detail: status.message().to_owned() };
        }
        if error.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return PeerError::Timeout { addr: addr.to_owned(), after: timeout };
        }
        source = error.source();
    }
    PeerError::Failed { addr: addr.to_owned(), code: status.code(), message: status.message().to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::cluster::v1::WaitAppliedRequest;
    use crate::secrets::DataKey;

    fn pool() -> PeerPool {
        let key = DataKey::from_bytes(&[3; 32]).expect("key");
        PeerPool::new(ClusterCredential::derive(&key, "clu_test"), None, tokio::runtime::Handle::current())
    }

    async fn wait_applied(pool: &PeerPool, addr: &str) -> Result<(), PeerError> {
        let request = WaitAppliedRequest { index: 1, timeout_ms: 10 };
        pool.call(7, addr, request, Duration::from_secs(5), |mut client, request| async move {
            client.wait_applied(request).await
        })
        .await
        .map(drop)
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_nothing_was_delivered() {
        // A port that was just free: bound, then closed again.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let pool = pool();
        let error = wait_applied(&pool, &addr).await.expect_err("nothing listens");
        assert!(matches!(error, PeerError::Unreachable { .. }), "{error:?}");
        assert!(!error.may_have_been_delivered());
        assert_eq!(pool.last_contact(7), None);
        // The failed channel was dropped: the next call dials again (and fails the same way).
        assert!(pool.inner.channels.lock().is_empty());
        assert!(matches!(wait_applied(&pool, &addr).await, Err(PeerError::Unreachable { .. })));
    }

    #[tokio::test]
    async fn a_bad_address_is_refused_before_dialling() {
        let error = wait_applied(&pool(), "not an address at all").await.expect_err("invalid");
        assert!(matches!(error, PeerError::InvalidAddress { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_peer_that_accepts_but_never_answers_times_out() {
        // Accepts the TCP connection and then says nothing: the call's own deadline ends it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let pool = pool();
        let request = WaitAppliedRequest { index: 1, timeout_ms: 10 };
        let error = pool
            .call(7, &addr, request, Duration::from_millis(300), |mut client, request| async move {
                client.wait_applied(request).await
            })
            .await
            .expect_err("silent peer");
        assert!(matches!(error, PeerError::Timeout { .. }), "{error:?}");
        assert!(error.may_have_been_delivered());
        held.abort();
    }
}
