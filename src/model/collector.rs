//! The durable record of one collector.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config_text::ConfigText;
use super::event::{Event, NewEvent};
use super::history::{HistorySink, HistoryWrite};
use super::labels::Labels;
use super::pipeline::{Destination, Route, Source};
use super::stability::StabilityLevel;
use super::{TokenHash, UnixMillis};
use crate::apply_status::InferredOutcome;

/// Events kept per collector; older ones are dropped first. A constant, so `apply` stays deterministic.
pub const MAX_EVENTS_PER_COLLECTOR: usize = 1000;

/// Rendered config versions kept per collector.
pub const MAX_CONFIG_VERSIONS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CollectorMode {
    #[serde(rename = "alloy-remotecfg")]
    AlloyRemotecfg,
    #[serde(rename = "opamp")]
    Opamp,
}

impl CollectorMode {
    pub fn parse(name: &str) -> Option<CollectorMode> {
        match name {
            "alloy-remotecfg" => Some(CollectorMode::AlloyRemotecfg),
            "opamp" => Some(CollectorMode::Opamp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CollectorMode::AlloyRemotecfg => "alloy-remotecfg",
            CollectorMode::Opamp => "opamp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectorStatus {
    AwaitingConnection,
    Connected,
    Degraded,
    Stale,
    Offline,
}

impl CollectorStatus {
    pub fn parse(name: &str) -> Option<CollectorStatus> {
        match name {
            "awaiting_connection" => Some(CollectorStatus::AwaitingConnection),
            "connected" => Some(CollectorStatus::Connected),
            "degraded" => Some(CollectorStatus::Degraded),
            "stale" => Some(CollectorStatus::Stale),
            "offline" => Some(CollectorStatus::Offline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CollectorStatus::AwaitingConnection => "awaiting_connection",
            CollectorStatus::Connected => "connected",
            CollectorStatus::Degraded => "degraded",
            CollectorStatus::Stale => "stale",
            CollectorStatus::Offline => "offline",
        }
    }

    /// Whether the collector is expected to keep polling (so missing polls mean something).
    pub fn expects_polls(self) -> bool {
        matches!(self, CollectorStatus::Connected | CollectorStatus::Degraded)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    #[serde(with = "super::auth::hex_hash")]
    pub hash: TokenHash,
    /// The first characters of the token, safe to display.
    pub prefix: String,
    pub created_at: UnixMillis,
}

/// What the collector last told us about the config it received (remotecfg `remote_config_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteConfigState {
    Unset,
    Applied,
    Applying,
    Failed,
}

impl RemoteConfigState {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteConfigState::Unset => "unset",
            RemoteConfigState::Applied => "applied",
            RemoteConfigState::Applying => "applying",
            RemoteConfigState::Failed => "failed",
        }
    }
}

/// One rendered config version (with credential placeholders, never secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    pub version: u64,
    pub hash: String,
    pub format: String,
    /// Shares everything after its first line with the versions a fleet-wide change rendered alike.
    pub content: ConfigText,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConfigDelivery {
    /// Bumped by every change that alters the rendered config; starts at 1.
    pub version: u64,
    /// The last [`MAX_CONFIG_VERSIONS`] versions, oldest first; the last one is current. Shared, so a
    /// copy of the record (a write's check scope copies every collector it reaches) copies no text;
    /// serialized as the versions themselves.
    pub history: VecDeque<Arc<ConfigVersion>>,
    pub delivered_hash: Option<String>,
    pub delivered_at: Option<UnixMillis>,
    pub remote_status: Option<RemoteConfigState>,
    pub remote_error: Option<String>,
    /// The hash of the delivered config `remote_status` is about (absent before rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_hash: Option<String>,
    /// What the collector reports it runs (Alloy >= 1.12), bounded in size by the protocol adapter.
    pub effective_config: Option<String>,
    /// linkmesh's inference from the collector's own metrics of whether it runs a delivered version
    /// (`apply_status`); Alloy's own `remote_status`, when it sends one, wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<InferredApply>,
}

/// Whether the collector runs a delivered version, as inferred from its own metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferredApply {
    pub version: u64,
    pub outcome: InferredOutcome,
    /// What the metrics showed, for the operator.
    pub reason: String,
    /// The metric names the outcome rests on.
    pub signals: Vec<String>,
    pub at: UnixMillis,
}

/// The fleet's collectors by id. Each record is boxed: a map node holds eleven values, and records
/// loaded in key order leave nodes about half full, so inline records (~620 bytes) cost ~1.2 KB each.
pub type CollectorMap = BTreeMap<String, Box<CollectorRecord>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorRecord {
    pub id: String,
    pub name: String,
    pub mode: CollectorMode,
    pub status: CollectorStatus,
    /// The `id` the collector sends (Alloy's `remotecfg.id`, usually the hostname).
    pub host_id: Option<String>,
    pub local_attributes: BTreeMap<String, String>,
    pub remote_attributes: BTreeMap<String, String>,
    /// Set by operators (never by the collector); what label selectors match.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    pub created_at: UnixMillis,
    pub last_seen_at: Option<UnixMillis>,
    pub token: Option<TokenInfo>,
    /// Hex SHA-256 of the token the current one replaced. A call presenting it is a collector not yet
    /// given its new token, reported as `auth_failed`; no other rejected call can reach the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_token_hash: Option<String>,
    pub config: ConfigDelivery,
    /// The `--stability.level` this collector's Alloy runs with: configs that need a lower level
    /// are refused before they become a version (`render::stability`).
    #[serde(default, skip_serializing_if = "StabilityLevel::is_default")]
    pub stability_level: StabilityLevel,
    pub sources: BTreeMap<String, Source>,
    pub destinations: BTreeMap<String, Destination>,
    pub routes: BTreeMap<String, Route>,
    pub next_event_id: u64,
    /// The events, oldest first, while the cluster's feature level keeps them in memory (below
    /// `HISTORY_ON_DISK`); empty from that level on, when they are in the history tree
    /// (`model/history.rs`) and only their id range is here.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub events: VecDeque<Event>,
    /// The oldest event id the history tree still holds (0 while events are in memory).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_event_id: u64,
    /// Whether an `own_metrics_first_seen` event was ever recorded (kept here once events are on disk).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saw_own_metrics: bool,
    /// Where the collector's history is in the history tree (`model/history.rs`); 0 until it has one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_key: u64,
    /// The OpAMP agent this collector was enrolled for (`Command::EnrollCollector`), if any. Boxed:
    /// most collectors have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment: Option<Box<Enrollment>>,
    /// Generation of the collector's derived OpAMP credential (`secrets::DataKey::opamp_credential`):
    /// bumped by every token rotation from feature level 4 on, which ends the older credentials.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub credential_generation: u32,
    /// How many restarts operators asked of the collector's OpAMP agent (`Command::RequestRestart`):
    /// the owner's actor sends a restart command when this passes the count it sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_requests: u64,
}

/// How an enrolled collector's agent is known and authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The agent's instance uid (canonical text): the key an agent presenting an enrollment token is
    /// found by.
    pub instance_uid: String,
    /// The enrollment token the agent may authenticate with (its last enrollment's).
    pub token_id: String,
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

pub(crate) fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl CollectorRecord {
    /// When the replicated record last shows the collector active: its last poll, else its
    /// creation (what a prune selects by, and checks again when its deletion applies).
    pub fn last_active(&self) -> UnixMillis {
        self.last_seen_at.unwrap_or(self.created_at)
    }

    pub fn new(
        id: String,
        name: String,
        mode: CollectorMode,
        remote_attributes: BTreeMap<String, String>,
        created_at: UnixMillis,
    ) -> Self {
        CollectorRecord {
            id,
            name,
            mode,
            status: CollectorStatus::AwaitingConnection,
            host_id: None,
            local_attributes: BTreeMap::new(),
            remote_attributes,
            labels: Labels::new(),
            created_at,
            last_seen_at: None,
            token: None,
            rotated_token_hash: None,
            config: ConfigDelivery::default(),
            stability_level: StabilityLevel::default(),
            sources: BTreeMap::new(),
            destinations: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_event_id: 1,
            events: VecDeque::new(),
            first_event_id: 0,
            saw_own_metrics: false,
            history_key: 0,
            enrollment: None,
            credential_generation: 0,
            restart_requests: 0,
        }
    }

    /// Whether the collector ever pushed own metrics linkmesh could read (`own_metrics_first_seen`).
    pub fn own_metrics_seen(&self) -> bool {
        self.saw_own_metrics
            || self
                .events
                .iter()
                .any(|event| event.event_type == super::event::EventType::OwnMetricsFirstSeen)
    }

    /// Whether this record's events are in the history tree rather than in [`Self::events`].
    pub fn events_on_disk(&self) -> bool {
        self.first_event_id != 0
    }

    /// Records an event with the next id, and drops the oldest beyond [`MAX_EVENTS_PER_COLLECTOR`]:
    /// in memory, or, with `disk`, as writes to the history tree.
    pub fn push_event(&mut self, event: NewEvent, disk: Option<HistorySink<'_>>) {
        let id = self.next_event_id;
        self.next_event_id += 1;
        if event.event_type == super::event::EventType::OwnMetricsFirstSeen && disk.is_some() {
            self.saw_own_metrics = true;
        }
        let event = Event {
            id,
            ts: event.ts,
            event_type: event.event_type,
            message: event.message,
            data: event.data,
        };
        match disk {
            None => {
                self.events.push_back(event);
                while self.events.len() > MAX_EVENTS_PER_COLLECTOR {
                    self.events.pop_front();
                }
            }
            Some(sink) => {
                if self.first_event_id == 0 {
                    self.first_event_id = id;
                }
                let history_key = self.history_key_from(sink.next_key);
                sink.writes.push(HistoryWrite::PutEvent { history_key, event });
                let keep_from = self.next_event_id.saturating_sub(MAX_EVENTS_PER_COLLECTOR as u64);
                while self.first_event_id < keep_from {
                    sink.writes.push(HistoryWrite::DeleteEvent { history_key, id: self.first_event_id });
                    self.first_event_id += 1;
                }
            }
        }
    }

    /// The collector's history key, taken from `next_key` the first time.
    fn history_key_from(&mut self, next_key: &mut u64) -> u64 {
        if self.history_key == 0 {
            *next_key += 1;
            self.history_key = *next_key;
        }
        self.history_key
    }

    /// Moves the events kept in memory to history writes (the cluster reached `HISTORY_ON_DISK`).
    pub fn move_events_to_disk(&mut self, sink: HistorySink<'_>) {
        if self.events_on_disk() {
            return;
        }
        self.saw_own_metrics = self.own_metrics_seen();
        self.first_event_id = self.events.front().map_or(self.next_event_id, |event| event.id);
        let history_key = self.history_key_from(sink.next_key);
        for event in std::mem::take(&mut self.events) {
            sink.writes.push(HistoryWrite::PutEvent { history_key, event });
        }
    }

    /// The current config version; every record has one from creation on.
    pub fn current_config(&self) -> Option<&ConfigVersion> {
        self.config.history.back().map(Arc::as_ref)
    }

    /// Records a newly rendered config if it differs from the current one; returns the new version.
    pub fn record_rendered(
        &mut self,
        hash: String,
        format: &str,
        content: ConfigText,
        at: UnixMillis,
    ) -> Option<u64> {
        if self.current_config().is_some_and(|current| current.hash == hash) {
            return None;
        }
        self.config.version += 1;
        let version = self.config.version;
        self.config.history.push_back(Arc::new(ConfigVersion {
            version,
            hash,
            format: format.to_owned(),
            content,
            created_at: at,
        }));
        while self.config.history.len() > MAX_CONFIG_VERSIONS {
            self.config.history.pop_front();
        }
        // Most collectors keep one or a few versions: no room for more than they hold (a first push
        // reserves four, ~260 bytes a collector at the scale of issue 17).
        self.config.history.shrink_to_fit();
        Some(version)
    }

    /// Events kept in memory with an id greater than `after`, oldest first, at most `limit` (see
    /// `AppliedState::events_after` for a record whose events are on disk).
    pub fn events_after(&self, after: u64, limit: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |event| event.id > after).take(limit)
    }
}
