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

#[cfg(test)]
mod tests {
    //! Several real Raft members in one process, each with its own store and cluster port on
    //! loopback, talking through the real transport: replication, votes, a snapshot sent to a new
    //! learner, writes forwarded from followers and a learner, and writes after the leader is gone.
    //! (Separate processes and joins are the cluster tests' part.)

    use std::collections::BTreeSet;

    use super::*;
    use crate::cluster::admin::{call_leader, AdminAnswer, AdminCall};
    use crate::cluster::peers::PeerPool;
    use crate::config::RaftSettings;
    use crate::model::{Command, Role, UnixMillis};
    use crate::raft::data_dir::{open_store, Contents};
    use crate::raft::storage_health::StorageHealth;
    use crate::raft::{NodeInfo, RaftNode};
    use crate::secrets::DataKey;

    struct Member {
        raft: RaftNode,
        info: NodeInfo,
        server: ClusterServerHandle,
        _dir: tempfile::TempDir,
    }

    async fn start_member(bootstrap: bool, settings: &RaftSettings) -> Member {
        let dir = tempfile::tempdir().expect("dir");
        let key = DataKey::from_bytes(&[9; 32]).expect("key");
        let store = open_store(dir.path(), Contents::Empty, &key.fingerprint(), StorageHealth::new(), None)
            .expect("store");
        let credential = ClusterCredential::derive(&key, "clu_transport_test");
        let listener = ClusterListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        let info = NodeInfo {
            rpc_addr: listener.local_addr().to_string(),
            http_addr: String::new(),
            name: String::new(),
        };
        let runtime = tokio::runtime::Handle::current();
        let peers = PeerPool::new(credential.clone(), None, runtime.clone());
        let (effects, _) = tokio::sync::mpsc::unbounded_channel();
        let raft = if bootstrap {
            RaftNode::start(store, info.clone(), settings, runtime.clone(), effects, peers).await
        } else {
            RaftNode::start_awaiting_leader(store, info.clone(), settings, runtime.clone(), effects, peers)
                .await
        }
        .expect("raft");
        let server =
            listener.serve(PeerService::new(raft.clone()), credential, None, &runtime).expect("serve");
        Member { raft, info, server, _dir: dir }
    }

    fn create_user(username: &str) -> Command {
        Command::CreateUser {
            id: format!("usr_{username}"),
            username: username.to_owned(),
            role: Role::Viewer,
            password_hash: "$argon2id$x".to_owned(),
            at: UnixMillis(1),
        }
    }

    fn has_user(member: &Member, username: &str) -> bool {
        member.raft.state().fleet.users.values().any(|user| user.username == username)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_replicate_forward_writes_install_snapshots_and_outlive_their_leader() {
        // Snapshots (and purges) every few entries, so a late learner can only catch up by snapshot.
        // Elections as fast as the failover tests': a write right after the leader leaves waits for one.
        let settings = RaftSettings {
            snapshot_after_logs: 8,
            logs_kept_after_snapshot: 0,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(300),
            ..RaftSettings::default()
        };
        let a = start_member(true, &settings).await;
        assert!(a.raft.wait_for_leader(Duration::from_secs(10)).await);
        a.raft
            .propose(Command::Bootstrap {
                node_id: a.raft.node_id(),
                admin_user_id: "usr_admin".into(),
                admin_password_hash: "$argon2id$x".into(),
                at: UnixMillis(1),
            })
            .await
            .expect("bootstrap");
        let b = start_member(false, &settings).await;
        let c = start_member(false, &settings).await;
        for member in [&b, &c] {
            a.raft
                .openraft()
                .add_learner(member.raft.node_id(), member.info.clone(), true)
                .await
                .expect("learner");
        }
        let voters: BTreeSet<u64> = [&a, &b, &c].iter().map(|member| member.raft.node_id()).collect();
        a.raft.openraft().change_membership(voters.clone(), false).await.expect("three voters");

        // A write taken by a follower is forwarded, and readable on that follower as soon as it returns.
        b.raft.propose(create_user("via-follower")).await.expect("forwarded write");
        assert!(has_user(&b, "via-follower"), "read your write on the follower");
        assert!(has_user(&a, "via-follower"));
        // A rejection applied by the leader comes back as a rejection.
        let refused = c.raft.propose(create_user("via-follower")).await.expect_err("duplicate");
        assert!(matches!(refused, crate::raft::ProposeError::Rejected(_)), "{refused:?}");

        let view = match call_leader(&c.raft, AdminCall::Members).await.expect("members") {
            AdminAnswer::Members(view) => view,
            other => panic!("{other:?}"),
        };
        assert_eq!(view.leader_id, a.raft.node_id());
        assert_eq!(view.members.iter().map(|member| member.id).collect::<BTreeSet<_>>(), voters);
        assert!(
            view.members.iter().all(|member| member.voter && member.last_contact_ms.is_some()),
            "{view:?}"
        );

        for index in 0..20 {
            c.raft.propose(create_user(&format!("bulk-{index}"))).await.expect("bulk write");
        }
        assert!(a.raft.openraft().metrics().borrow().purged.is_some(), "the leader purged its log");
        let d = start_member(false, &settings).await;
        a.raft.openraft().add_learner(d.raft.node_id(), d.info.clone(), true).await.expect("learner d");
        // (`add_learner` may return before the learner holds anything: wait for what the leader applied.)
        let leader_applied = a.raft.openraft().metrics().borrow().last_applied.map(|log_id| log_id.index);
        assert!(
            d.raft.wait_applied(leader_applied, Duration::from_secs(20)).await >= leader_applied,
            "d caught up"
        );
        assert!(d.raft.openraft().metrics().borrow().snapshot.is_some(), "d caught up from a snapshot");
        assert!(has_user(&d, "bulk-19") && has_user(&d, "via-follower"));
        d.raft.propose(create_user("via-learner")).await.expect("a learner's write is forwarded");
        assert!(has_user(&d, "via-learner"));

        // The leader goes away: the others elect one among themselves and take writes again.
        let old_leader = a.raft.node_id();
        a.raft.shutdown().await;
        a.server.stop().await;
        b.raft.propose(create_user("after-failover")).await.expect("a write after the leader left");
        assert!(has_user(&b, "after-failover"));
        let leader = b.raft.openraft().metrics().borrow().current_leader;
        assert!(leader.is_some() && leader != Some(old_leader), "{leader:?}");
        d.raft.propose(create_user("learner-after-failover")).await.expect("forwarded to the new leader");
        assert!(has_user(&d, "learner-after-failover"));
    }
}
