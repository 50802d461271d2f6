//! Command line: `linkmesh serve` and the client subcommands of the contract.
//!
//! Every flag also reads a `LINKMESH_*` environment variable. For `serve`, flags and env override the
//! `--config` file, which overrides the built-in defaults.

pub mod access;
pub mod backup;
pub mod client;
pub mod cluster;
pub mod enrollment;
pub mod import;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ConfigError, NodeConfig};

#[derive(Parser)]
#[command(name = "linkmesh", version, about = "Fleet manager for Grafana Alloy and OpenTelemetry Collectors")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a linkmesh node (with no flags: a single-node cluster in ./linkmesh-data on :8080).
    Serve(Box<ServeArgs>),
    /// Manage collectors on a running server.
    #[command(subcommand)]
    Collectors(CollectorsCommand),
    /// Show a collector's events, oldest first.
    Events {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
        /// Only events after this id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show the config a collector will receive.
    Config {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
    },
    /// Manage users: list, disable, enable, set-role, delete, password, sign-out.
    #[command(subcommand)]
    Users(access::UsersCommand),
    /// Manage service accounts and their tokens.
    #[command(subcommand)]
    ServiceAccounts(access::ServiceAccountsCommand),
    /// List or end sign-in sessions.
    #[command(subcommand)]
    Sessions(access::SessionsCommand),
    /// Show the audit log (admins), oldest first.
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        /// Only entries after this id.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// OpAMP enrollment tokens for OpenTelemetry Collectors (`lmet_…`): create, list, revoke.
    #[command(subcommand)]
    EnrollmentTokens(enrollment::EnrollmentTokensCommand),
    /// Cluster membership: status, join tokens, remove a member, move the leader, rebalance slots.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Write a backup of the cluster's fleet (admins): collectors, tokens, pipelines, users, and the
    /// data key that opens the sealed credentials. Treat the file as a secret.
    Backup(Box<backup::BackupArgs>),
    /// Create a data dir from a backup, offline: `linkmesh serve` on it starts a new one-node cluster
    /// (new cluster id) with the backed-up fleet.
    Restore(backup::RestoreArgs),
    /// Simulate a fleet of Alloy collectors against running servers (demo and benchmark load).
    Simulate(Box<crate::simulate::SimulateArgs>),
    /// Verify a stopped node's data dir offline: reads every record, prints what it holds and the
    /// first problem. Exit status 0 sound, 3 damaged, 1 not a data dir or in use.
    Check {
        /// The data dir to verify (it is not modified: the store is read from a copy).
        #[arg(long, env = "LINKMESH_DATA_DIR")]
        data_dir: PathBuf,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// TOML config file (see README for keys).
    #[arg(long, env = "LINKMESH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (Raft log, snapshots).
    #[arg(long, env = "LINKMESH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "LINKMESH_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Base URL written into ready-to-paste collector configs.
    #[arg(long, env = "LINKMESH_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// Deprecated and ignored: node ids are generated with the data dir (a different value is reported).
    #[arg(long, env = "LINKMESH_NODE_ID", hide = true)]
    pub node_id: Option<u64>,
    /// PEM certificate chain: serve HTTPS (with `--tls-key`).
    #[arg(long, env = "LINKMESH_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(long, env = "LINKMESH_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Cluster port for peers (Raft, forwarding), default 0.0.0.0:8081.
    #[arg(long, env = "LINKMESH_RPC_ADDR")]
    pub rpc_addr: Option<SocketAddr>,
    /// The cluster address peers dial (host:port), when it differs from --rpc-addr.
    #[arg(long, env = "LINKMESH_ADVERTISE_RPC_ADDR")]
    pub advertise_rpc_addr: Option<String>,
    /// The public HTTP address (host:port) other nodes send clients to, when it differs from --http-addr.
    #[arg(long, env = "LINKMESH_ADVERTISE_HTTP_ADDR")]
    pub advertise_http_addr: Option<String>,
    /// Human label of this node.
    #[arg(long, env = "LINKMESH_NODE_NAME")]
    pub node_name: Option<String>,
    /// URL of any member of an existing cluster to join (the node never bootstraps then).
    #[arg(long, env = "LINKMESH_JOIN")]
    pub join: Option<String>,
    /// Join token (`lmjt_…`) from `linkmesh cluster join-token`.
    #[arg(long, env = "LINKMESH_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
}

impl ServeArgs {
    pub fn into_config(self) -> Result<NodeConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => NodeConfig::from_file(path)?,
            None => NodeConfig::default(),
        };
        if let Some(data_dir) = self.data_dir {
            config.data_dir = data_dir;
        }
        if let Some(http_addr) = self.http_addr {
            config.http_addr = http_addr;
        }
        if let Some(external_url) = self.external_url {
            config.external_url = Some(external_url);
        }
        if let Some(node_id) = self.node_id {
            config.node_id = Some(node_id);
        }
        if let Some(cert) = self.tls_cert {
            config.tls.cert = Some(cert);
        }
        if let Some(key) = self.tls_key {
            config.tls.key = Some(key);
        }
        let cluster = &mut config.cluster;
        if let Some(rpc_addr) = self.rpc_addr {
            cluster.rpc_addr = rpc_addr;
        }
        for (flag, setting) in [
            (self.advertise_rpc_addr, &mut cluster.advertise_rpc_addr),
            (self.advertise_http_addr, &mut cluster.advertise_http_addr),
            (self.node_name, &mut cluster.node_name),
            (self.join, &mut cluster.join),
            (self.join_token, &mut cluster.join_token),
        ] {
            if flag.is_some() {
                *setting = flag;
            }
        }
        config.validate()?;
        Ok(config)
    }
}

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// Server base URL.
    #[arg(long, env = "LINKMESH_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Service-account token (`lmsat_…`).
    #[arg(long, env = "LINKMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
pub enum CollectorsCommand {
    /// List collectors.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        mode: Option<String>,
        /// Only collectors whose labels match this selector (`env=prod,region!=eu`).
        #[arg(long)]
        selector: Option<String>,
        /// Only collectors reporting this attribute (`key=value`; repeatable).
        #[arg(long)]
        attr: Vec<String>,
        /// At most this many (at most 1000); the answer's `next` is the cursor of the next page.
        #[arg(long)]
        limit: Option<usize>,
        /// The page after this cursor (a previous answer's `next`).
        #[arg(long)]
        cursor: Option<String>,
        /// Sort order, as the server names it.
        #[arg(long)]
        sort: Option<String>,
    },
    /// Set or remove labels of one collector (by id or name), or of every collector a selector
    /// matches: `linkmesh collectors label edge-1 env=prod team=a --remove old`.
    Label {
        #[command(flatten)]
        client: ClientArgs,
        /// The collector (id or name) then `key=value` pairs; with `--selector`, only the pairs.
        #[arg(required = true)]
        args: Vec<String>,
        /// A label key to remove (repeatable).
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
        /// Label every collector this selector matches (at most 1000) instead of one.
        #[arg(long)]
        selector: Option<String>,
    },
    /// Rotate the tokens of, or delete, every collector a label selector matches (at most 1000).
    /// Asks for confirmation naming how many, unless `--yes`.
    Bulk {
        #[command(flatten)]
        client: ClientArgs,
        /// The label selector; `""` means every collector.
        #[arg(long)]
        selector: String,
        #[arg(long, value_enum)]
        action: BulkActionArg,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete collectors not seen for a while. Lists them only (a dry run) unless `--apply`.
    Prune {
        #[command(flatten)]
        client: ClientArgs,
        /// How long without a poll makes a collector inactive (`30d`, `12h`; at least 1h).
        #[arg(long)]
        inactive_for: String,
        /// Only collectors whose labels match this selector.
        #[arg(long)]
        selector: Option<String>,
        /// Delete them (else only list them).
        #[arg(long)]
        apply: bool,
    },
    /// Create the collectors a CSV (`name,mode,labels`, labels as `k=v;k=v`) or JSON file lists,
    /// in batches of up to 1000 (each all or none), with progress on stderr.
    Import {
        #[command(flatten)]
        client: ClientArgs,
        /// The file: `.csv`, `.json`, or either detected from its content.
        file: PathBuf,
        /// Mint each collector's token; the tokens go to `--tokens-out` (shown nowhere else).
        #[arg(long, requires = "tokens_out")]
        mint_tokens: bool,
        /// A new file (created 0600, never overwritten) for the minted tokens, as CSV `id,name,token`.
        #[arg(long, value_name = "PATH")]
        tokens_out: Option<PathBuf>,
        /// Leave out rows whose name exists already (read from the server first), e.g. to continue
        /// an import that stopped.
        #[arg(long)]
        skip_existing: bool,
        /// Collectors per call (1 to 1000).
        #[arg(long, default_value_t = import::MAX_BATCH)]
        batch_size: usize,
    },
    /// Create a collector.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        name: String,
        #[arg(long, default_value = "alloy-remotecfg")]
        mode: String,
        /// The `--stability.level` the collector's Alloy runs with (default generally-available):
        /// configs that need a component below it are refused.
        #[arg(long, env = "LINKMESH_STABILITY_LEVEL")]
        stability_level: Option<String>,
    },
    /// Set the `--stability.level` a collector's Alloy runs with (generally-available,
    /// public-preview or experimental); refused while its config needs a lower one.
    SetStabilityLevel {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
        level: String,
    },
    /// Show one collector.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
    },
    /// Delete a collector (its token stops working at once).
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
    },
    /// Ask an OpenTelemetry Collector's OpAMP agent to restart the collector (`linkmesh events` shows
    /// the outcome as `restart_outcome`).
    Restart {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
    },
    /// Mint (or rotate) a collector's token and print the ready-to-paste config.alloy.
    Token {
        #[command(flatten)]
        client: ClientArgs,
        collector_id: String,
    },
}

/// What `linkmesh collectors bulk` does to the selected collectors.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum BulkActionArg {
    /// New tokens (printed once, as CSV); the previous ones stop working at once.
    Rotate,
    /// Delete them; their tokens stop working at once.
    Delete,
}
