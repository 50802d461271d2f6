//! `linkmesh serve`: wires storage, Raft, actors and HTTP together, and shuts them down in order.
//!
//! Threads: openraft and sled I/O run on a dedicated multi-thread tokio runtime; the actix `System`
//! hosts the activity writer and the actor registry's arbiters; actix-web runs its own workers.
//! SIGTERM/SIGINT stop the HTTP server gracefully, then the collector actors hand over what they hold back,
//! pending activity is written and Raft stops.
//!
//! Start-up refuses a data dir that is damaged or not its identity's (`raft/data_dir.rs`) before
//! anything is served. When storage fails while running, every request is answered 503
//! (`http/storage_guard.rs`), and after `storage_failure_exit_delay` the node stops with exit code 4.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{web, App, HttpServer};

use crate::actors::activity_writer::{ActivityWriter, FlushNow};
use crate::actors::audit_writer::{self, AuditWriter};
use crate::actors::CollectorRegistry;
use crate::audit::AuditQueue;
use crate::cluster::credential::ClusterCredential;
use crate::cluster::peers::PeerPool;
use crate::cluster::server::{ClusterListener, ClusterServerError};
use crate::cluster::service::PeerService;
use crate::cluster::tls::{ClusterTls, ClusterTlsError};
use crate::config::NodeConfig;
use crate::http::{self, AppState};
use crate::metrics::NodeMetrics;
use crate::model::{Clock, Command, UnixMillis};
use crate::opamp::OpampConnections;
use crate::raft::data_dir::{self, DataDirError, ADMIN_PASSWORD_FILE};
use crate::raft::node::StartError;
use crate::raft::storage_health::StorageHealth;
use crate::raft::{NodeInfo, RaftNode};
use crate::secrets;
use crate::ui;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error("cannot start the raft runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Raft(#[from] StartError),
    #[error(transparent)]
    DataKey(#[from] secrets::DataKeyError),
    #[error("no raft leader within {0:?}")]
    NoLeader(Duration),
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("http server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    Tls(#[from] http::tls::TlsError),
    #[error(transparent)]
    ClusterTls(#[from] ClusterTlsError),
    #[error(transparent)]
    ClusterPort(#[from] ClusterServerError),
    #[error(
        "storage failed while running ({0}); the node stopped serving. Free space or repair the device, \
         then restart it"
    )]
    StorageFailed(String),
    #[error("LINKMESH_ADMIN_PASSWORD {0}")]
    AdminPassword(String),
    #[error(transparent)]
    Join(#[from] crate::cluster::joiner::JoinFailure),
}

impl ServeError {
    /// Exit codes of `linkmesh serve` (contract, "Start-up"): 1 configuration, 3 damaged data dir,
    /// 4 storage failed while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServeError::DataDir(error) => error.exit_code(),
            ServeError::Join(error) => error.exit_code(),
            ServeError::Raft(StartError::StateMachine(_)) => 3,
            ServeError::Raft(StartError::Storage(_)) | ServeError::StorageFailed(_) => 4,
            _ => 1,
        }
    }
}

/// A bad `LINKMESH_ADMIN_PASSWORD` stops the start with a clear error (exit 1) rather than being
/// hashed at any length, or, when it is not UTF-8, silently replaced by a generated password.
fn check_admin_password_env() -> Result<(), ServeError> {
    match std::env::var("LINKMESH_ADMIN_PASSWORD") {
        Ok(password) if password.len() > secrets::MAX_PASSWORD_BYTES => Err(ServeError::AdminPassword(
            format!("is {} bytes long; at most {} are accepted", password.len(), secrets::MAX_PASSWORD_BYTES),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(ServeError::AdminPassword("is not valid UTF-8".into())),
        _ => Ok(()),
    }
}

pub fn run(config: NodeConfig) -> Result<(), ServeError> {
    check_admin_password_env()?;
    data_dir::prepare(&config.data_dir)?;
    let raft_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("linkmesh-raft")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let raft_handle = raft_runtime.handle().clone();
    let result = actix::System::new().block_on(serve(Arc::new(config), raft_handle));
    raft_runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// How much lower than Raft's the client-facing threads run (a nice increment): under CPU saturation
/// each Raft thread gets about three times the share of a client thread (Linux CFS weights 1024 vs
/// 335). Raft's appends must be answered within `raft.heartbeat_interval`, the deadline openraft
/// gives each one; polls and API calls on a saturated node can wait, but a follower whose appends
/// time out stalls every write of the cluster, and owners that cannot renew their leases stop
/// answering polls altogether.
const CLIENT_NICE_INCREMENT: i32 = 5;

/// Lowers the calling thread's CPU priority by [`CLIENT_NICE_INCREMENT`]; threads it starts afterwards
/// inherit it. Linux only (elsewhere the call would change the whole process); a failure is logged and
/// changes nothing else.
fn lower_client_priority() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
        if let Err(error) =
            rustix::process::setpriority_process(Some(thread), current + CLIENT_NICE_INCREMENT)
        {
            tracing::warn!(error = %error, "could not lower the priority of the client-facing threads");
        }
    }
}

/// Loads the data key and opens the verified store: nothing here serves or bootstraps yet.
fn open_data_dir(
    config: &NodeConfig,
    contents: data_dir::Contents,
) -> Result<(secrets::DataKey, data_dir::OpenedStore), ServeError> {
    let data_dir = &config.data_dir;
    let env_key = std::env::var("LINKMESH_DATA_KEY").ok();
    data_dir::require_data_key_file(data_dir, &contents, env_key.is_some())?;
    let data_key =
        secrets::DataKey::load_or_create(env_key.as_deref(), data_dir).map_err(|error| match error {
            secrets::DataKeyError::CorruptFile(_) | secrets::DataKeyError::ChecksumMismatch(_) => {
                ServeError::DataDir(DataDirError::damaged(data_dir, error.to_string()))
            }
            other => ServeError::DataKey(other),
        })?;
    let store = data_dir::open_store(
        data_dir,
        contents,
        &data_key.fingerprint(),
        StorageHealth::new(),
        config.node_id,
    )?;
    if let Some(configured) = config.node_id.filter(|configured| *configured != store.identity.node_id) {
        tracing::warn!(
            configured_node_id = configured,
            node_id = store.identity.node_id,
            "node_id (--node-id, LINKMESH_NODE_ID) is deprecated and ignored: this node's id is the one stored \
             in its data dir's identity record"
        );
    }
    Ok((data_key, store))
}

async fn serve(config: Arc<NodeConfig>, raft_runtime: tokio::runtime::Handle) -> Result<(), ServeError> {
    // First, so a missing or bad certificate stops the start before the data dir is opened.
    let tls = http::tls::ServerTls::load(&config.tls)?;
    let cluster_tls = ClusterTls::load(&config.cluster.tls)?;
    // Both ports are bound before the data dir is opened and Raft starts, so this node's membership
    // entry (and the addresses it sends with a join) names the addresses really bound, port 0
    // included; peers' connections wait in the backlog until Raft serves them.
    let http_listener = bind_http(config.http_addr)?;
    let http_bound = http_listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr: config.http_addr.to_string(), source })?;
    let cluster_listener = ClusterListener::bind(config.cluster.rpc_addr)?;
    let cluster_bound = cluster_listener.local_addr();
    let node_info = NodeInfo {
        rpc_addr: config.cluster.advertised_rpc_addr(cluster_bound),
        http_addr: config.cluster.advertised_http_addr(http_bound),
        name: config.cluster.node_name(),
    };
    let (data_key, store) = match (data_dir::inspect(&config.data_dir)?, &config.cluster.join) {
        (data_dir::Contents::Empty, Some(url)) => {
            crate::cluster::joiner::join_and_create_data_dir(
                &config.data_dir,
                url,
                config.cluster.join_token.as_deref().unwrap_or_default(),
                node_info.name.clone(),
                node_info.http_addr.clone(),
                node_info.rpc_addr.clone(),
            )
            .await?
        }
        (contents, join) => {
            if join.is_some() {
                tracing::info!(
                    data_dir = %config.data_dir.display(),
                    "the data dir already holds a node: --join is ignored and the node resumes as that member"
                );
            }
            open_data_dir(&config, contents)?
        }
    };
    let joined = store.joined;
    let credential = ClusterCredential::derive(&data_key, &store.identity.cluster_id);
    let peers = PeerPool::new(
        credential.clone(),
        cluster_tls.as_ref().map(ClusterTls::client_config),
        raft_runtime.clone(),
    );
    let (effects_tx, mut effects_rx) = tokio::sync::mpsc::unbounded_channel();
    let raft =
        RaftNode::start(store, node_info.clone(), &config.raft, raft_runtime.clone(), effects_tx, peers)
            .await?;
    let metrics = Arc::new(NodeMetrics::new(raft.node_id(), raft.log_flush_histogram()));
    raft_runtime.spawn(crate::metrics::raft_watch::follow(raft.metrics_watch(), metrics.clone()));
    let collector_owner = crate::cluster::service::CollectorOwnerCell::default();
    let live_source = crate::cluster::live_reads::LiveSource::default();
    let cluster_server = cluster_listener.serve(
        PeerService::new(raft.clone())
            .with_collectors(collector_owner.clone())
            .with_live_source(live_source.clone()),
        credential,
        cluster_tls.as_ref(),
        &raft_runtime,
    )?;
    if cluster_tls.is_none() && !cluster_bound.ip().is_loopback() {
        tracing::warn!(
            addr = %cluster_bound,
            "the cluster port speaks plain http/2 on a non-loopback address; keep it on a network only the \
             members reach, or set [cluster.tls]"
        );
    }
    tracing::info!(addr = %cluster_bound, advertised = %node_info.rpc_addr, tls = cluster_tls.is_some(), "cluster port listening");
    // Tests and scripts read the cluster port (useful with port 0) from this line on stdout.
    println!("cluster port listening on {cluster_bound}");
    let _ = std::io::stdout().flush();
    crate::cluster::promoter::spawn(raft.clone(), config.cluster.max_voters, &raft_runtime);
    raft.ownership().configure(config.cluster.node_down_after);
    crate::cluster::renewer::spawn(raft.clone(), &raft_runtime);
    crate::cluster::level_raiser::spawn(raft.clone(), &raft_runtime);
    crate::cluster::read_index::spawn(raft.clone(), &raft_runtime);
    crate::cluster::balancer_loop::spawn(raft.clone(), &raft_runtime);
    crate::cluster::rollout_loop::spawn(raft.clone(), &raft_runtime);
    let storage_failed =
        |raft: &RaftNode| raft.storage_health().failure().map(|failure| exit_after_storage_failure(&failure));
    if joined {
        // A joined node never bootstraps: it serves once its leader replicated the cluster's state.
        crate::cluster::joiner::wait_until_replicated(&raft).await;
        if let Some(failure) = storage_failed(&raft) {
            return Err(failure);
        }
    } else {
        let leader_timeout = Duration::from_secs(30);
        if !raft.wait_for_leader(leader_timeout).await {
            return Err(storage_failed(&raft).unwrap_or(ServeError::NoLeader(leader_timeout)));
        }
        // A restored data dir (`linkmesh restore`) learns its addresses now, before anyone can join it.
        match raft.record_own_addresses(node_info.clone()).await {
            Ok(true) => tracing::info!(node = %node_info, "recorded this node's addresses in the membership"),
            Ok(false) => {}
            Err(error) => {
                return Err(storage_failed(&raft).unwrap_or(ServeError::Bootstrap(format!(
                    "cannot record this node's addresses in the membership: {error}"
                ))))
            }
        }
        if let Err(error) = bootstrap_if_empty(&raft, &config.data_dir).await {
            return Err(storage_failed(&raft).unwrap_or(error));
        }
    }

    // The store (and sled's threads) and the Raft runtime run at the priority the node started with;
    // this thread and what it starts from here on (the collector actors' arbiters, the HTTP workers)
    // yield to them.
    lower_client_priority();
    let writer = ActivityWriter::new(raft.clone(), config.activity_flush_interval)
        .with_metrics(metrics.activity(), Clock::system())
        .start();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let registry = CollectorRegistry::start(
        raft.clone(),
        writer.clone(),
        config.collectors.clone(),
        data_key.clone(),
        Clock::system(),
        metrics.status_changes(),
        threads,
    );
    live_source.set(registry.clone());
    raft.ownership().set_slot_flusher(registry.slot_flusher(writer.clone()));
    let effect_registry = registry.clone();
    actix::spawn(async move {
        while let Some(effect) = effects_rx.recv().await {
            effect_registry.handle_effect(effect);
        }
    });
    let reactivated = registry.activate_expected();
    // From here on, collector calls other nodes took are answered by this node's actors.
    let _ = collector_owner.set(crate::cluster::service::CollectorOwner::new(raft.clone(), registry.clone()));

    let audit_queue = web::Data::new(AuditQueue::new(config.audit.retention.as_model()));
    let audit_writer =
        AuditWriter::new(raft.clone(), audit_queue.clone().into_inner(), config.audit.flush_interval).start();

    let shutdown_registry = registry.clone();
    let state =
        web::Data::new(AppState { raft: raft.clone(), registry, config: config.clone(), data_key, metrics });
    let guards = http::guards::Guards::new(&config, threads);
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(http::request_guard::guard_request_bodies))
            .wrap(actix_web::middleware::from_fn(http::storage_guard::refuse_when_storage_failed))
            .wrap(http::guards::default_headers())
            // Outermost, so every answer is counted, the guards' refusals included.
            .wrap(actix_web::middleware::from_fn(http::metrics::record_requests))
            .app_data(state.clone())
            .app_data(audit_queue.clone())
            .configure(|app| guards.register(app))
            .configure(http::configure)
            .configure(ui::configure)
    })
    .shutdown_timeout(config.shutdown_timeout.as_secs().max(1))
    .client_request_timeout(config.http.request_head_timeout)
    // A client that closed its side is gone: end its (streaming) response now, not at the next
    // failed write, so stream slots and slow-body slots come back at once.
    .h1_allow_half_closed(false)
    .disable_signals();
    if let Some(workers) = config.http_workers {
        server = server.workers(workers);
    }
    let workers = config.http_workers.unwrap_or(threads).max(1);
    server = server.max_connections(config.http.max_connections.div_ceil(workers));
    let http_bind_error = |source| ServeError::Bind { addr: config.http_addr.to_string(), source };
    let server = match tls {
        Some(tls) => {
            let server =
                server.listen_rustls_0_23(http_listener, tls.server_config()?).map_err(http_bind_error)?;
            actix::spawn(tls.watch());
            server
        }
        None => {
            if !config.http_addr.ip().is_loopback() {
                tracing::warn!(
                    addr = %config.http_addr,
                    "serving plain http on a non-loopback address; set [tls] cert and key, or terminate tls \
                     at a reverse proxy"
                );
            }
            server.listen(http_listener).map_err(http_bind_error)?
        }
    };
    let bound: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
    tracing::info!(
        addrs = ?bound,
        cluster_id = %raft.cluster_id(),
        node_id = raft.node_id(),
        data_dir = %config.data_dir.display(),
        reactivated_collectors = reactivated,
        "linkmesh is serving"
    );
    // Scripts and tests read the bound address (useful with port 0) from this line on stdout.
    println!("listening on {}", bound.join(","));
    let _ = std::io::stdout().flush();

    let server = server.run();
    actix::spawn(stop_on_signal(server.handle(), shutdown_registry.opamp_connections().clone()));
    actix::spawn(stop_when_storage_fails(
        raft.storage_health().clone(),
        server.handle(),
        shutdown_registry.opamp_connections().clone(),
        config.storage_failure_exit_delay,
    ));
    let served = server.await;
    if let Some(failure) = storage_failed(&raft) {
        return Err(failure);
    }
    tracing::info!("http server stopped; writing pending activity");
    shutdown_registry.flush_pending().await;
    if let Ok(Err(error)) = writer.send(FlushNow).await {
        tracing::warn!(error = %error, "pending activity could not be written");
    }
    if let Ok(Err(error)) = audit_writer.send(audit_writer::FlushNow).await {
        tracing::warn!(error = %error, "queued audit records could not be written");
    }
    raft.shutdown().await;
    cluster_server.stop().await;
    if let Some(failure) = storage_failed(&raft) {
        return Err(failure);
    }
    tracing::info!("shutdown complete");
    served.map_err(ServeError::Http)
}

/// Binds the public HTTP port as actix-web would (address reuse, a backlog of 1024), before Raft
/// starts; actix-web serves it later.
fn bind_http(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    let bind_error = |source| ServeError::Bind { addr: addr.to_string(), source };
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    socket.listen(1024).and_then(|listener| listener.into_std()).map_err(bind_error)
}

/// Leaves the process with exit code 4 without running destructors: dropping sled on a failed device
/// can block for ever in its final flush (seen on a full tmpfs), and nothing more can be written to it.
fn exit_after_storage_failure(failure: &str) -> ServeError {
    let error = ServeError::StorageFailed(failure.to_owned());
    tracing::error!(error = %error, exit_code = error.exit_code(), "linkmesh stopped");
    eprintln!("linkmesh: {error}");
    std::process::exit(i32::from(error.exit_code()));
}

/// After a storage failure the guard already answers 503; once load balancers and clients have had
/// `delay` to see that, stop gracefully (in-flight requests still get their answer).
/// SIGTERM and SIGINT stop the HTTP server gracefully and leave the actix System running until the
/// shutdown is done: actix-server's own signal handling would also stop the System, and with it the
/// collector actors' arbiters, racing the flush of what the actors hold back (effective configs and
/// folded events waiting for their interval).
async fn stop_on_signal(server: actix_web::dev::ServerHandle, opamp: Arc<OpampConnections>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop linkmesh with SIGKILL");
        return;
    };
    let received = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = received, "stopping gracefully");
    opamp.close_all();
    server.stop(true).await;
}

async fn stop_when_storage_fails(
    health: Arc<StorageHealth>,
    server: actix_web::dev::ServerHandle,
    opamp: Arc<OpampConnections>,
    delay: Duration,
) {
    health.failed().await;
    actix_web::rt::time::sleep(delay).await;
    opamp.close_all();
    server.stop(true).await;
}

/// First start of an empty cluster: create `admin` and the slot table.
async fn bootstrap_if_empty(raft: &RaftNode, data_dir: &Path) -> Result<(), ServeError> {
    if raft.state().fleet.bootstrapped {
        return Ok(());
    }
    let (password, generated) = match std::env::var("LINKMESH_ADMIN_PASSWORD") {
        Ok(password) if !password.is_empty() => (password, false),
        _ => (secrets::random_password().map_err(|e| ServeError::Bootstrap(e.to_string()))?, true),
    };
    let password_hash =
        secrets::hash_password(&password).map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    if generated {
        // Written before the bootstrap commits, so a crash in between never leaves an unknown password.
        secrets::write_private_file(&data_dir.join(ADMIN_PASSWORD_FILE), &password)
            .map_err(|e| ServeError::Bootstrap(format!("cannot write {ADMIN_PASSWORD_FILE}: {e}")))?;
    }
    let admin_user_id = secrets::random_id("usr").map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    let command = Command::Bootstrap {
        node_id: raft.node_id(),
        admin_user_id,
        admin_password_hash: password_hash,
        at: UnixMillis::now(),
    };
    match raft.propose(command).await {
        Ok(()) => {
            // A new cluster of this release alone starts at its level rather than a second later (the
            // raiser would get there too, and does after a crash in between).
            let level = crate::cluster::member_levels::this_node_reports();
            if level > raft.state().fleet.feature_level() {
                let raise = Command::RaiseFeatureLevel { level, at: UnixMillis::now() };
                raft.propose(raise).await.map_err(|e| ServeError::Bootstrap(e.to_string()))?;
            }
        }
        Err(crate::raft::ProposeError::Rejected(crate::model::ApplyError::AlreadyBootstrapped)) => {}
        Err(error) => return Err(ServeError::Bootstrap(error.to_string())),
    }
    if generated {
        // The contract: printed once, on first start only, besides the 0600 file; plain stderr, never
        // the structured log (shipped logs must not carry it), whose line names only the file.
        let file = data_dir.join(ADMIN_PASSWORD_FILE);
        tracing::info!(file = %file.display(), "created user admin with a generated password; change it to remove the file");
        eprintln!("linkmesh: created user \"admin\" with password {password} (also in {})", file.display());
    } else {
        tracing::info!("created user admin with the password from LINKMESH_ADMIN_PASSWORD");
    }
    Ok(())
}
