//! `linkmesh serve`: wires storage, Raft, actors and HTTP together, and shuts them down in order.
//!
//! Threads: openraft and sled I/O run on a dedicated multi-thread tokio runtime; the actix `System`
//! hosts the activity writer and the actor registry's arbiters; actix-web runs its own workers.
//! SIGTERM/SIGINT stop the HTTP server gracefully, then pending activity is written and Raft stops.

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
use crate::config::NodeConfig;
use crate::http::{self, AppState};
use crate::model::{Command, UnixMillis};
use crate::raft::{NodeInfo, RaftNode};
use crate::secrets;
use crate::ui;

use crate::secrets::INITIAL_ADMIN_PASSWORD_FILE as ADMIN_PASSWORD_FILE;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot start the raft runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Raft(#[from] crate::raft::node::StartError),
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
    #[error("LINKMESH_ADMIN_PASSWORD {0}")]
    AdminPassword(String),
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
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| ServeError::DataDir { path: config.data_dir.display().to_string(), source })?;
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

async fn serve(config: Arc<NodeConfig>, raft_runtime: tokio::runtime::Handle) -> Result<(), ServeError> {
    let data_key = secrets::DataKey::load_or_create(
        std::env::var("LINKMESH_DATA_KEY").ok().as_deref(),
        &config.data_dir,
    )?;
    let (effects_tx, mut effects_rx) = tokio::sync::mpsc::unbounded_channel();
    let node_info = NodeInfo { rpc_addr: String::new(), http_addr: config.http_addr.to_string() };
    let raft =
        RaftNode::start(config.node_id, node_info, &config.data_dir, &config.raft, raft_runtime, effects_tx)
            .await?;
    let leader_timeout = Duration::from_secs(30);
    if !raft.wait_for_leader(leader_timeout).await {
        return Err(ServeError::NoLeader(leader_timeout));
    }
    bootstrap_if_empty(&raft, &config.data_dir).await?;

    let writer = ActivityWriter::new(raft.clone(), config.activity_flush_interval).start();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let registry = CollectorRegistry::start(
        raft.clone(),
        writer.clone(),
        config.collectors.clone(),
        data_key.clone(),
        threads,
    );
    let effect_registry = registry.clone();
    actix::spawn(async move {
        while let Some(effect) = effects_rx.recv().await {
            effect_registry.handle_effect(effect);
        }
    });
    let reactivated = registry.activate_expected();

    let audit_queue = web::Data::new(AuditQueue::new(config.audit.retention.as_model()));
    let audit_writer =
        AuditWriter::new(raft.clone(), audit_queue.clone().into_inner(), config.audit.flush_interval).start();

    let state = web::Data::new(AppState { raft: raft.clone(), registry, config: config.clone(), data_key });
    let guards = http::guards::Guards::new(&config, threads);
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(http::guards::default_headers())
            .app_data(state.clone())
            .app_data(audit_queue.clone())
            .configure(|app| guards.register(app))
            .configure(http::configure)
            .configure(ui::configure)
    })
    .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
    if let Some(workers) = config.http_workers {
        server = server.workers(workers);
    }
    let server = server
        .bind(config.http_addr)
        .map_err(|source| ServeError::Bind { addr: config.http_addr.to_string(), source })?;
    let bound: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
    tracing::info!(
        addrs = ?bound,
        node_id = config.node_id,
        data_dir = %config.data_dir.display(),
        reactivated_collectors = reactivated,
        "linkmesh is serving"
    );
    // Scripts and tests read the bound address (useful with port 0) from this line on stdout.
    println!("listening on {}", bound.join(","));
    let _ = std::io::stdout().flush();

    let served = server.run().await;
    tracing::info!("http server stopped; writing pending activity");
    if let Ok(Err(error)) = writer.send(FlushNow).await {
        tracing::warn!(error = %error, "pending activity could not be written");
    }
    if let Ok(Err(error)) = audit_writer.send(audit_writer::FlushNow).await {
        tracing::warn!(error = %error, "queued audit records could not be written");
    }
    raft.shutdown().await;
    tracing::info!("shutdown complete");
    served.map_err(ServeError::Http)
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
        Ok(()) | Err(crate::raft::ProposeError::Rejected(crate::model::ApplyError::AlreadyBootstrapped)) => {}
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
