//! `NodeConfig`: the one typed configuration of a linkmesh node.
//!
//! Sources, lowest precedence first: built-in defaults, the TOML file (`--config`), then flags and
//! `LINKMESH_*` environment variables (see `cli.rs`). Durations and sizes are human units (`"60s"`,
//! `"4MiB"`). Unknown keys are errors, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod cluster;
pub use cluster::{ClusterSettings, ClusterTlsSettings, MetricsSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Deprecated: node ids are generated when a data dir is created and kept in its identity record.
    /// Still parsed; a value that disagrees with the stored id is reported and ignored. Used only to
    /// adopt a data dir written before identity records whose store does not name its node.
    pub node_id: Option<u64>,
    /// Where the Raft log, snapshots and the initial admin password live.
    pub data_dir: PathBuf,
    /// Public HTTP listener: collectors, REST API, UI.
    pub http_addr: SocketAddr,
    /// Base URL written into ready-to-paste collector configs; derived from the request when unset.
    pub external_url: Option<String>,
    /// HTTP worker threads; defaults to the number of CPUs.
    pub http_workers: Option<usize>,
    /// Largest accepted request body, compressed or decompressed.
    #[serde(deserialize_with = "human::byte_size")]
    pub max_request_body: usize,
    /// How long a browser session stays valid.
    #[serde(deserialize_with = "human::duration")]
    pub session_ttl: Duration,
    /// How often live status changes and events are written to Raft (one batched write per flush).
    #[serde(deserialize_with = "human::duration")]
    pub activity_flush_interval: Duration,
    /// How long in-flight requests may take to finish on SIGTERM.
    #[serde(deserialize_with = "human::duration")]
    pub shutdown_timeout: Duration,
    /// After storage fails while running, how long the node stays up answering 503 (and `/readyz`
    /// 503, so load balancers move away) before it stops with exit code 4.
    #[serde(deserialize_with = "human::duration")]
    pub storage_failure_exit_delay: Duration,
    pub collectors: CollectorSettings,
    pub raft: RaftSettings,
    pub tls: TlsSettings,
    /// Client addresses, connection limits, slow-client deadlines and live-stream caps.
    pub http: HttpSettings,
    /// Login throttling and password hashing.
    pub auth: AuthSettings,
    /// The replicated audit log of operator writes (`GET /api/v1/audit`).
    pub audit: AuditSettings,
    /// Peers, joining, failover and the cluster port (`config/cluster.rs`).
    pub cluster: ClusterSettings,
    /// Who may scrape `GET /metrics`.
    pub metrics: MetricsSettings,
}

/// The audit log: batching of the records that ride no write of their own, and retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// How often records of requests that changed nothing (refusals, failures) and service-account
    /// token use are written to Raft, in one batched write. A write's own record is committed with it.
    #[serde(deserialize_with = "human::duration")]
    pub flush_interval: Duration,
    /// How many entries, and how old, the log keeps (older ones are dropped as new ones arrive).
    pub retention: AuditRetentionSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditRetentionSettings {
    /// Entries kept at most (each is a few hundred bytes, held in memory and in snapshots).
    pub max_entries: u64,
    /// Entries older than this are dropped.
    #[serde(deserialize_with = "human::duration")]
    pub max_age: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { flush_interval: Duration::from_secs(1), retention: AuditRetentionSettings::default() }
    }
}

impl Default for AuditRetentionSettings {
    fn default() -> Self {
        AuditRetentionSettings { max_entries: 10_000, max_age: Duration::from_secs(90 * 86_400) }
    }
}

impl AuditRetentionSettings {
    /// The retention as carried in audit commands (so every replica prunes alike).
    pub fn as_model(&self) -> crate::model::AuditRetention {
        crate::model::AuditRetention {
            max_entries: self.max_entries,
            max_age_ms: u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Consensus and log compaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// Build a snapshot (and purge the log before it) after this many new log entries, once the log
    /// since the last snapshot is also `snapshot_log_ratio` of that snapshot's size
    /// (`raft/snapshot_schedule.rs`).
    pub snapshot_after_logs: u64,
    /// ... or once the log entries appended since the last snapshot reach this size (human units,
    /// e.g. `"256MiB"`), whatever the state's size: large entries (batch creates) then do not let the
    /// log, and the replay at start, grow to `snapshot_after_logs` of them.
    #[serde(deserialize_with = "human::byte_size")]
    pub snapshot_after_bytes: usize,
    /// A snapshot costs the whole state: after `snapshot_after_logs` entries one is built only if the
    /// log since the last is at least this fraction of its size (0: entries alone decide).
    pub snapshot_log_ratio: f64,
    /// Each node stretches both thresholds by a random factor in [1, 1 + this) for every snapshot, so
    /// that the members of a cluster, which log the same entries, do not all build at once.
    pub snapshot_jitter: f64,
    /// Log entries kept behind the last snapshot, so slightly lagging followers need no snapshot.
    pub logs_kept_after_snapshot: u64,
    /// How often the leader sends appends (heartbeats). openraft 0.9 also uses it as the deadline of
    /// every append, which includes the follower's fsync: too short, and a follower on a busy disk never
    /// catches up (the leader resends the same batch forever).
    #[serde(deserialize_with = "human::duration")]
    pub heartbeat_interval: Duration,
    /// A follower that heard no leader for a random time in [this, twice this) starts an election.
    #[serde(deserialize_with = "human::duration")]
    pub election_timeout: Duration,
    /// Log entries per append at most (bounds the work one append asks of a follower within
    /// `heartbeat_interval`).
    pub max_entries_per_append: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            snapshot_after_logs: 5000,
            snapshot_after_bytes: 256 << 20,
            snapshot_log_ratio: 0.5,
            snapshot_jitter: 0.5,
            logs_kept_after_snapshot: 1000,
            heartbeat_interval: Duration::from_millis(250),
            election_timeout: Duration::from_millis(1000),
            max_entries_per_append: 64,
        }
    }
}

/// HTTPS on the public listener. Without `cert` and `key` it speaks plain HTTP (e.g. behind a reverse
/// proxy that terminates TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key: Option<PathBuf>,
    /// How often both files are checked for new contents; a reload also happens on SIGHUP.
    #[serde(deserialize_with = "human::duration")]
    pub watch_interval: Duration,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings { cert: None, key: None, watch_interval: Duration::from_secs(10) }
    }
}

impl TlsSettings {
    /// Whether the listener serves HTTPS (both files set; `validate` rejects only one of them).
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// Liveness rules for collectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSettings {
    /// Expected poll interval until one is learned from the collector's cadence (Alloy's default: 60s).
    #[serde(deserialize_with = "human::duration")]
    pub default_poll_interval: Duration,
    /// Gaps between polls shorter than this are not cadence samples (Alloy's minimum poll_frequency: 10s).
    #[serde(deserialize_with = "human::duration")]
    pub min_poll_interval: Duration,
    /// A connected collector turns `stale` after this many expected polls are missed.
    pub stale_after_missed_polls: u32,
    /// How often each actor checks for staleness.
    #[serde(deserialize_with = "human::duration")]
    pub tick_interval: Duration,
    /// An actor with no traffic for this long, and not expecting polls, is stopped (rebuilt on demand).
    #[serde(deserialize_with = "human::duration")]
    pub passivate_after: Duration,
    /// RegisterCollector calls closer together than this are one registration (Alloy calls it
    /// several times per start).
    #[serde(deserialize_with = "human::duration")]
    pub registration_window: Duration,
    /// How often an unchanged connected collector's `last_seen_at` is written to Raft.
    #[serde(deserialize_with = "human::duration")]
    pub last_seen_persist_interval: Duration,
    /// At most one `auth_failed` / `host_id_conflict` event per collector per this interval.
    #[serde(deserialize_with = "human::duration")]
    pub noisy_event_interval: Duration,
    /// own_metrics pushes in flight per collector before 429 (an exporter sends a handful at once;
    /// the OTel Collector's sending queue runs 10 consumers by default).
    pub max_pushes_in_flight_per_collector: usize,
    /// own_metrics pushes in flight on this node before 503; each may hold `max_request_body` bytes.
    pub max_pushes_in_flight: usize,
    /// Remotecfg calls (GetConfig, RegisterCollector, UnregisterCollector) one collector may make at
    /// once before it must wait; beyond it 429 with `Retry-After`. Alloy's start takes about four, and
    /// Alloy >= 1.12 polls again at once after every status change.
    pub poll_burst: u32,
    /// Remotecfg calls per second one collector earns back, sustained (Alloy polls every 10s-60s).
    pub polls_per_second: f64,
    /// A changed effective config (Alloy >= 1.12 reports it) is written to Raft at most once per this
    /// interval per collector; the latest one reported is written when the interval has passed.
    #[serde(deserialize_with = "human::duration")]
    pub effective_config_persist_interval: Duration,
    /// The heartbeat interval offered to OpAMP agents that report heartbeats
    /// (`connection_settings.opamp.heartbeat_interval_seconds`): whole seconds, 1s to 1h. Their
    /// liveness follows it: `stale` after `stale_after_missed_polls` heartbeats missed.
    #[serde(deserialize_with = "human::duration")]
    pub opamp_heartbeat_interval: Duration,
}

/// The public listener's defences against clients that are slow, many, or not who they say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Load balancers and reverse proxies (addresses or CIDR networks, e.g. `["10.0.0.0/8"]`) whose
    /// `X-Forwarded-For` is believed. Empty: the TCP peer is the client, and the header is ignored.
    #[serde(deserialize_with = "human::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Time a client has to send a request's head (line and headers) before the connection is closed.
    #[serde(deserialize_with = "human::duration")]
    pub request_head_timeout: Duration,
    /// Time a client has to send a whole request body; a slower body is cut off with 408.
    #[serde(deserialize_with = "human::duration")]
    pub body_read_timeout: Duration,
    /// Open connections on this node, split evenly over the HTTP workers. Long-lived collector
    /// connections count, so keep it large (and the process's open-file limit above it).
    pub max_connections: usize,
    /// Request bodies one client address may be sending at once (login, polls, pushes); beyond it 429.
    /// Behind a load balancer this is per real client only when `trusted_proxies` lists the balancer.
    pub max_body_reads_per_client: usize,
    /// Live event streams (`/api/v1/stream/…`) one user or service account may hold open; beyond it 429.
    pub max_streams_per_principal: usize,
    /// Live event streams this node serves at once; beyond it 429.
    pub max_streams: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            trusted_proxies: Vec::new(),
            request_head_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(20),
            max_connections: 65_536,
            max_body_reads_per_client: 32,
            max_streams_per_principal: 16,
            max_streams: 1024,
        }
    }
}

/// Login throttling: per (client address, username) exponential backoff, never a lockout, so an
/// attacker elsewhere cannot keep a user out; and a bound on the memory and CPU password hashing takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Failed logins for one username from one client address before it must wait.
    pub login_free_attempts: u32,
    /// Failed logins from one client address, whatever the usernames, before it must wait.
    pub login_free_attempts_per_address: u32,
    /// The first wait; each further failure doubles it.
    #[serde(deserialize_with = "human::duration")]
    pub login_backoff_base: Duration,
    /// The longest wait: a throttled user can always try again after this long.
    #[serde(deserialize_with = "human::duration")]
    pub login_backoff_max: Duration,
    /// Failures are forgotten after this long without a new one.
    #[serde(deserialize_with = "human::duration")]
    pub login_throttle_window: Duration,
    /// Throttled (address, username) pairs remembered at most; when full, the least-failed are
    /// forgotten first, so memory stays bounded under an attack from many addresses.
    pub login_throttle_max_entries: usize,
    /// argon2 hashes computed at once (each takes about 19 MiB); unset: one per CPU.
    pub max_concurrent_password_hashes: Option<usize>,
    /// How long a login waits for a hashing slot before it is answered 429.
    #[serde(deserialize_with = "human::duration")]
    pub password_hash_wait: Duration,
    /// Allow service-account tokens that never expire (`"expires_in_days": 0`).
    pub allow_non_expiring_tokens: bool,
    /// A token's `last_used_at` is written at most this often (batched with audit records), so using
    /// a token costs no Raft write per request.
    #[serde(deserialize_with = "human::duration")]
    pub token_last_used_interval: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            login_free_attempts: 5,
            login_free_attempts_per_address: 50,
            login_backoff_base: Duration::from_secs(1),
            login_backoff_max: Duration::from_secs(300),
            login_throttle_window: Duration::from_secs(900),
            login_throttle_max_entries: 100_000,
            max_concurrent_password_hashes: None,
            password_hash_wait: Duration::from_secs(2),
            allow_non_expiring_tokens: false,
            token_last_used_interval: Duration::from_secs(300),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: None,
            data_dir: PathBuf::from("./linkmesh-data"),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            external_url: None,
            http_workers: None,
            max_request_body: 4 * 1024 * 1024,
            session_ttl: Duration::from_secs(12 * 3600),
            activity_flush_interval: Duration::from_millis(200),
            shutdown_timeout: Duration::from_secs(30),
            storage_failure_exit_delay: Duration::from_secs(5),
            collectors: CollectorSettings::default(),
            raft: RaftSettings::default(),
            tls: TlsSettings::default(),
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            audit: AuditSettings::default(),
            cluster: ClusterSettings::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

impl Default for CollectorSettings {
    fn default() -> Self {
        CollectorSettings {
            default_poll_interval: Duration::from_secs(60),
            min_poll_interval: Duration::from_secs(10),
            stale_after_missed_polls: 3,
            tick_interval: Duration::from_secs(15),
            passivate_after: Duration::from_secs(600),
            registration_window: Duration::from_secs(300),
            last_seen_persist_interval: Duration::from_secs(300),
            noisy_event_interval: Duration::from_secs(60),
            max_pushes_in_flight_per_collector: 8,
            max_pushes_in_flight: 64,
            poll_burst: 10,
            polls_per_second: 2.0,
            effective_config_persist_interval: Duration::from_secs(60),
            opamp_heartbeat_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl NodeConfig {
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.display().to_string(), source })
    }

    /// Cross-field rules that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == Some(0) {
            return Err(ConfigError::Invalid("node_id must be at least 1".into()));
        }
        if let Some(url) = &self.external_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "external_url {url:?} must start with http:// or https://"
                )));
            }
        }
        if self.max_request_body < 1024 {
            return Err(ConfigError::Invalid("max_request_body must be at least 1KiB".into()));
        }
        let collectors = &self.collectors;
        if collectors.stale_after_missed_polls == 0 {
            return Err(ConfigError::Invalid(
                "collectors.stale_after_missed_polls must be at least 1".into(),
            ));
        }
        if collectors.min_poll_interval > collectors.default_poll_interval {
            return Err(ConfigError::Invalid(
                "collectors.min_poll_interval must not exceed collectors.default_poll_interval".into(),
            ));
        }
        let heartbeat = collectors.opamp_heartbeat_interval;
        if heartbeat.subsec_nanos() != 0 || !(1..=3600).contains(&heartbeat.as_secs()) {
            return Err(ConfigError::Invalid(format!(
                "collectors.opamp_heartbeat_interval must be whole seconds from 1s to 1h (OpAMP offers it in \
                 seconds), not {heartbeat:?}"
            )));
        }
        if collectors.max_pushes_in_flight_per_collector == 0 || collectors.max_pushes_in_flight == 0 {
            return Err(ConfigError::Invalid("collectors.max_pushes_in_flight* must be at least 1".into()));
        }
        if collectors.poll_burst == 0
            || !collectors.polls_per_second.is_finite()
            || collectors.polls_per_second <= 0.0
        {
            return Err(ConfigError::Invalid(
                "collectors.poll_burst must be at least 1 and collectors.polls_per_second positive".into(),
            ));
        }
        if self.raft.snapshot_after_logs == 0 || self.raft.snapshot_after_bytes == 0 {
            return Err(ConfigError::Invalid(
                "raft.snapshot_after_logs and raft.snapshot_after_bytes must be at least 1".into(),
            ));
        }
        let ratio = self.raft.snapshot_log_ratio;
        if !(ratio.is_finite() && ratio >= 0.0 && (0.0..=1.0).contains(&self.raft.snapshot_jitter)) {
            return Err(ConfigError::Invalid(
                "raft.snapshot_log_ratio must be 0 or more and raft.snapshot_jitter between 0 and 1".into(),
            ));
        }
        if self.raft.heartbeat_interval < Duration::from_millis(10) || self.raft.max_entries_per_append == 0 {
            return Err(ConfigError::Invalid(
                "raft.heartbeat_interval must be at least 10ms and raft.max_entries_per_append at least 1"
                    .into(),
            ));
        }
        if self.raft.election_timeout < self.raft.heartbeat_interval * 3 {
            return Err(ConfigError::Invalid(
                "raft.election_timeout must be at least three times raft.heartbeat_interval".into(),
            ));
        }
        // An owner's lease (2/5 of node_down_after, `cluster/lease.rs`) is renewed through the leader, so
        // it must outlast the longest election (twice election_timeout): otherwise every leader change
        // stops every owner from serving polls until the new leader renews them.
        if self.cluster.node_down_after * 2 / 5 <= self.raft.election_timeout * 2 {
            return Err(ConfigError::Invalid(format!(
                "cluster.node_down_after ({:?}) must be more than 5 times raft.election_timeout ({:?}): the owner \
                 lease (2/5 of it) must outlast an election (up to twice election_timeout)",
                self.cluster.node_down_after, self.raft.election_timeout
            )));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid("tls.cert and tls.key must be set together".into()));
        }
        if self.tls.watch_interval.is_zero() {
            return Err(ConfigError::Invalid("tls.watch_interval must be positive".into()));
        }
        if collectors.tick_interval.is_zero() || self.activity_flush_interval.is_zero() {
            return Err(ConfigError::Invalid("tick and flush intervals must be positive".into()));
        }
        self.http.validate()?;
        self.auth.validate()?;
        self.cluster.validate()?;
        if self.audit.flush_interval.is_zero() || self.audit.retention.max_entries == 0 {
            return Err(ConfigError::Invalid(
                "audit.flush_interval must be positive and audit.retention.max_entries at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl HttpSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.request_head_timeout.is_zero() || self.body_read_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "http.request_head_timeout and http.body_read_timeout must be positive".into(),
            ));
        }
        if self.max_connections == 0 || self.max_body_reads_per_client == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections and http.max_body_reads_per_client must be at least 1".into(),
            ));
        }
        if self.max_streams_per_principal == 0 || self.max_streams < self.max_streams_per_principal {
            return Err(ConfigError::Invalid(
                "http.max_streams_per_principal must be at least 1 and at most http.max_streams".into(),
            ));
        }
        Ok(())
    }
}

impl AuthSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.login_free_attempts == 0 || self.login_free_attempts_per_address == 0 {
            return Err(ConfigError::Invalid("auth.login_free_attempts* must be at least 1".into()));
        }
        if self.login_backoff_base.is_zero() || self.login_backoff_base > self.login_backoff_max {
            return Err(ConfigError::Invalid(
                "auth.login_backoff_base must be positive and at most auth.login_backoff_max".into(),
            ));
        }
        if self.login_throttle_window < self.login_backoff_max {
            return Err(ConfigError::Invalid(
                "auth.login_throttle_window must be at least auth.login_backoff_max".into(),
            ));
        }
        if self.login_throttle_max_entries < 16 {
            return Err(ConfigError::Invalid("auth.login_throttle_max_entries must be at least 16".into()));
        }
        if self.max_concurrent_password_hashes == Some(0) {
            return Err(ConfigError::Invalid(
                "auth.max_concurrent_password_hashes must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Human-unit parsers shared by the config file and the CLI.
pub mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn parse_duration(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text).map_err(|error| format!("invalid duration {text:?}: {error}"))
    }

    /// `"4MiB"`, `"512KiB"`, `"1GiB"`, `"64kB"` or a plain number of bytes.
    pub fn parse_byte_size(text: &str) -> Result<usize, String> {
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let number: usize = digits.parse().map_err(|_| format!("invalid size {text:?}"))?;
        let multiplier = match unit.trim() {
            "" | "B" => 1,
            "kB" | "KB" => 1000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => return Err(format!("invalid size unit {other:?} in {text:?}")),
        };
        number.checked_mul(multiplier).ok_or_else(|| format!("size {text:?} is too large"))
    }

    pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }

    pub fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        parse_byte_size(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }

    /// `"10.0.0.0/8"`, `"fd00::/8"` or a single address (`"10.1.2.3"`, a /32 or /128).
    pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
        let trimmed = text.trim();
        trimmed
            .parse::<ipnet::IpNet>()
            .or_else(|_| trimmed.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(|network| network.trunc())
            .map_err(|_| format!("invalid address or network {text:?} (expected e.g. 10.0.0.0/8)"))
    }

    pub fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| parse_network(text))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_in_human_units() {
        let config: NodeConfig = toml::from_str(
            "http_addr = \"127.0.0.1:9000\"\nmax_request_body = \"1MiB\"\n[collectors]\ndefault_poll_interval = \"15s\"\n",
        )
        .expect("parses");
        assert_eq!(config.http_addr.port(), 9000);
        assert_eq!(config.max_request_body, 1 << 20);
        assert_eq!(config.collectors.default_poll_interval, Duration::from_secs(15));
        assert_eq!(config.collectors.stale_after_missed_polls, 3);
        config.validate().expect("valid");
    }

    #[test]
    fn the_deprecated_node_id_still_parses() {
        let config: NodeConfig = toml::from_str("node_id = 3\n").expect("parses");
        assert_eq!(config.node_id, Some(3));
        config.validate().expect("valid");
        assert_eq!(NodeConfig::default().node_id, None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<NodeConfig>("http_adr = \"127.0.0.1:9000\"").is_err());
    }

    #[test]
    fn byte_sizes_parse_with_units() {
        assert_eq!(human::parse_byte_size("4MiB"), Ok(4 << 20));
        assert_eq!(human::parse_byte_size("1000"), Ok(1000));
        assert!(human::parse_byte_size("4 parsecs").is_err());
    }

    #[test]
    fn tls_needs_both_files() {
        let config: NodeConfig =
            toml::from_str("[tls]\ncert = \"/etc/linkmesh/cert.pem\"\nwatch_interval = \"1m\"\n")
                .expect("parses");
        assert_eq!(config.tls.watch_interval, Duration::from_secs(60));
        assert!(!config.tls.enabled());
        let error = config.validate().expect_err("key missing").to_string();
        assert!(error.contains("tls.key"), "{error}");
        let config: NodeConfig =
            toml::from_str("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n").expect("parses");
        assert!(config.tls.enabled());
        config.validate().expect("valid");
        assert!(!NodeConfig::default().tls.enabled());
    }

    #[test]
    fn trusted_proxies_parse_as_networks_or_single_addresses() {
        let config: NodeConfig =
            toml::from_str("[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"fd00::1/8\"]\n")
                .expect("parses");
        let shown: Vec<String> = config.http.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
        assert!(toml::from_str::<NodeConfig>("[http]\ntrusted_proxies = [\"lb.internal\"]\n").is_err());
        config.validate().expect("valid");
    }

    #[test]
    fn throttle_settings_must_leave_a_way_back_in() {
        let config = NodeConfig {
            auth: AuthSettings { login_backoff_max: Duration::from_secs(3600), ..AuthSettings::default() },
            ..NodeConfig::default()
        };
        let error = config.validate().expect_err("window shorter than the longest wait").to_string();
        assert!(error.contains("login_throttle_window"), "{error}");
    }

    #[test]
    fn the_poll_bucket_and_effective_config_interval_parse_and_must_be_positive() {
        let config: NodeConfig = toml::from_str(
            "[collectors]\npoll_burst = 20\npolls_per_second = 0.5\neffective_config_persist_interval = \"5m\"\n",
        )
        .expect("parses");
        assert_eq!(config.collectors.poll_burst, 20);
        assert_eq!(config.collectors.polls_per_second, 0.5);
        assert_eq!(config.collectors.effective_config_persist_interval, Duration::from_secs(300));
        config.validate().expect("valid");
        for bad in
            ["poll_burst = 0", "polls_per_second = 0.0", "polls_per_second = -1.0", "polls_per_second = nan"]
        {
            let config: NodeConfig = toml::from_str(&format!("[collectors]\n{bad}\n")).expect("parses");
            let error = config.validate().expect_err(bad).to_string();
            assert!(error.contains("collectors.poll"), "{error}");
        }
    }

    #[test]
    fn the_opamp_heartbeat_is_whole_seconds_from_one_second_to_an_hour() {
        let parse =
            |text: &str| toml::from_str::<NodeConfig>(&format!("[collectors]\n{text}\n")).expect("parses");
        let config = parse("opamp_heartbeat_interval = \"1h\"");
        config.validate().expect("an hour is valid");
        assert_eq!(config.collectors.opamp_heartbeat_interval, Duration::from_secs(3600));
        assert_eq!(NodeConfig::default().collectors.opamp_heartbeat_interval, Duration::from_secs(30));
        for bad in ["\"0s\"", "\"1500ms\"", "\"2h\""] {
            let error =
                parse(&format!("opamp_heartbeat_interval = {bad}")).validate().expect_err(bad).to_string();
            assert!(error.contains("collectors.opamp_heartbeat_interval"), "{error}");
        }
    }

    #[test]
    fn the_owner_lease_must_outlast_an_election_and_appends_get_a_sane_deadline() {
        let parse = |text: &str| toml::from_str::<NodeConfig>(text).expect("parses");
        let config = parse("[raft]\nheartbeat_interval = \"100ms\"\nelection_timeout = \"300ms\"\n[cluster]\nnode_down_after = \"2s\"\n");
        config.validate().expect("the failover tests' timing is valid");
        assert_eq!(config.raft.election_timeout, Duration::from_millis(300));
        let error = parse("[cluster]\nnode_down_after = \"3s\"\n")
            .validate()
            .expect_err("lease 1.2 s < 2 s")
            .to_string();
        assert!(error.contains("node_down_after") && error.contains("election_timeout"), "{error}");
        let error = parse("[raft]\nheartbeat_interval = \"400ms\"\n")
            .validate()
            .expect_err("1 s < 3 × 400 ms")
            .to_string();
        assert!(error.contains("three times"), "{error}");
        let error =
            parse("[raft]\nmax_entries_per_append = 0\n").validate().expect_err("no entries").to_string();
        assert!(error.contains("max_entries_per_append"), "{error}");
        NodeConfig::default().validate().expect("the defaults are valid");
    }

    #[test]
    fn the_snapshot_schedule_needs_a_ratio_of_zero_or_more_and_a_jitter_up_to_one() {
        let parse = |text: &str| toml::from_str::<NodeConfig>(&format!("[raft]\n{text}\n")).expect("parses");
        parse("snapshot_log_ratio = 0.0\nsnapshot_jitter = 0.0").validate().expect("both off");
        parse("snapshot_log_ratio = 2.0\nsnapshot_jitter = 1.0").validate().expect("valid");
        for bad in ["snapshot_log_ratio = -0.5", "snapshot_log_ratio = inf", "snapshot_jitter = 1.5"] {
            let error = parse(bad).validate().expect_err(bad).to_string();
            assert!(error.contains("raft.snapshot_log_ratio"), "{error}");
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        let config =
            NodeConfig { external_url: Some("linkmesh.example.com".into()), ..NodeConfig::default() };
        let error = config.validate().expect_err("invalid").to_string();
        assert!(error.contains("external_url"), "{error}");
    }
}
