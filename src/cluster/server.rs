//! The cluster port: bound before Raft starts (so port 0 works and this node's membership entry
//! names the real address), served on the raft runtime once Raft runs.
//!
//! Every call must carry `authorization: Bearer <cluster credential>`; the check runs on the request
//! headers, before the message is read or decoded, and a call without it is refused UNAUTHENTICATED.
//! Messages are capped at [`MAX_MESSAGE_BYTES`] both ways. Whatever arrives that is not HTTP/2 (or
//! not TLS, with `[cluster.tls]`) ends that connection only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Status};

use super::credential::ClusterCredential;
use super::peers::MAX_MESSAGE_BYTES;
use super::service::PeerService;
use super::tls::ClusterTls;
use crate::proto::cluster::v1::cluster_service_server::ClusterServiceServer;

/// A call still running after this long is ended (the longest legitimate ones, a snapshot chunk and
/// a forwarded write, are bounded well below it).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent calls on one connection (HTTP/2 streams).
const MAX_CONCURRENT_STREAMS: u32 = 256;
/// Refused calls are logged at most once per this interval (with how many were refused since), so a
/// scanner or a misconfigured peer cannot flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClusterServerError {
    #[error("cannot listen on the cluster port {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cluster port tls: {0}")]
    Tls(tonic::transport::Error),
}

/// The bound, not yet served, cluster port. Connections wait in the kernel's backlog until
/// [`ClusterListener::serve`].
pub struct ClusterListener {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
}

impl ClusterListener {
    pub fn bind(addr: SocketAddr) -> Result<ClusterListener, ClusterServerError> {
        let bind_error = |source| ClusterServerError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(ClusterListener { listener, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves the cluster port on `runtime` until the returned handle is stopped or dropped.
    pub fn serve(
        self,
        service: PeerService,
        credential: ClusterCredential,
        tls: Option<&ClusterTls>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<ClusterServerHandle, ClusterServerError> {
        let mut builder = Server::builder()
            .timeout(CALL_TIMEOUT)
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)));
        if let Some(tls) = tls {
            builder = builder.tls_config(tls.server_config()).map_err(ClusterServerError::Tls)?;
        }
        let service = ClusterServiceServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let refusals = Arc::new(Mutex::new(RefusalLog::default()));
        let authenticated = InterceptedService::new(service, move |request: Request<()>| {
            authorize(&credential, &refusals, request)
        });
        let router = builder.add_service(authenticated);
        let (stop, stopped) = oneshot::channel::<()>();
        let addr = self.local_addr;
        let std_listener = self.listener;
        let task = runtime.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(addr = %addr, error = %error, "cannot serve the cluster port");
                    return;
                }
            };
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = router.serve_with_incoming_shutdown(incoming, shutdown).await {
                tracing::error!(addr = %addr, error = %error, "the cluster port stopped serving");
            }
        });
        Ok(ClusterServerHandle { stop: Some(stop), task })
    }
}

#[derive(Default)]
struct RefusalLog {
    last_logged: Option<Instant>,
    unlogged: u64,
}

/// Refuses a call without the cluster credential; runs on the headers only.
fn authorize(
    credential: &ClusterCredential,
    refusals: &Mutex<RefusalLog>,
    request: Request<()>,
) -> Result<Request<()>, Status> {
    let presented = request.metadata().get("authorization").map(|value| value.as_bytes());
    if presented.is_some_and(|value| credential.accepts(value)) {
        return Ok(request);
    }
    let mut log = refusals.lock();
    log.unlogged += 1;
    let now = Instant::now();
    if log.last_logged.is_none_or(|last| now.saturating_duration_since(last) >= REFUSAL_LOG_INTERVAL) {
        // The remote address only: never what was presented.
        tracing::warn!(
            peer = ?request.remote_addr(),
            credential_present = presented.is_some(),
            refused_since_last_line = log.unlogged,
            "cluster port call refused: wrong or missing cluster credential"
        );
        log.last_logged = Some(now);
        log.unlogged = 0;
    }
    Err(Status::unauthenticated("this call needs the cluster credential"))
}

pub struct ClusterServerHandle {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterServerHandle {
    /// Stops accepting, lets calls in flight finish (bounded by [`CALL_TIMEOUT`]), and returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
