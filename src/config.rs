//! `NodeConfig`: the one typed configuration of a linkmesh node.
//!
//! Sources, lowest precedence first: built-in defaults, the TOML file (`--config`), then flags and
//! `LINKMESH_*` environment variables (see `cli.rs`). Durations and sizes are human units (`"60s"`,
//! `"4MiB"`). Unknown keys are errors, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
}

/// Consensus and log compaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    /// Build a snapshot (and purge the log before it) after this many new log entries.
    pub snapshot_after_logs: u64,
    /// Log entries kept behind the last snapshot, so slightly lagging followers need no snapshot.
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings { snapshot_after_logs: 5000, logs_kept_after_snapshot: 1000 }
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
        if self.raft.snapshot_after_logs == 0 {
            return Err(ConfigError::Invalid("raft.snapshot_after_logs must be at least 1".into()));
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
    fn validation_names_the_bad_field() {
        let config =
            NodeConfig { external_url: Some("linkmesh.example.com".into()), ..NodeConfig::default() };
        let error = config.validate().expect_err("invalid").to_string();
        assert!(error.contains("external_url"), "{error}");
    }
}
