//! Collector events: the operator-visible history of a collector (Events tab, `linkmesh events`).

use serde::{Deserialize, Serialize};

use super::UnixMillis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    CollectorCreated,
    TokenMinted,
    TokenRotated,
    RemotecfgRegistered,
    ConfigDelivered,
    ConfigApplied,
    ConfigFailed,
    StatusChanged,
    AuthFailed,
    HostIdConflict,
    Unregistered,
    /// The collector's first own_metrics push (OTLP `/v1/metrics`) that linkmesh could read.
    OwnMetricsFirstSeen,
    /// An OpAMP agent presenting an enrollment token was bound to the collector (feature level 4).
    Enrolled,
    /// The OpAMP agent was offered linkmesh as its own-metrics destination (feature level 4).
    OwnMetricsOffered,
    /// An operator asked the OpAMP agent to restart its collector (feature level 4).
    RestartRequested,
    /// The collector reported APPLYING for a delivered config (OpAMP; feature level 4).
    ConfigApplying,
    /// What the agent's health said after a restart command, or why none was sent (feature level 4).
    RestartOutcome,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CollectorCreated => "collector_created",
            EventType::TokenMinted => "token_minted",
            EventType::TokenRotated => "token_rotated",
            EventType::RemotecfgRegistered => "remotecfg_registered",
            EventType::ConfigDelivered => "config_delivered",
            EventType::ConfigApplied => "config_applied",
            EventType::ConfigFailed => "config_failed",
            EventType::StatusChanged => "status_changed",
            EventType::AuthFailed => "auth_failed",
            EventType::HostIdConflict => "host_id_conflict",
            EventType::Unregistered => "unregistered",
            EventType::OwnMetricsFirstSeen => "own_metrics_first_seen",
            EventType::Enrolled => "enrolled",
            EventType::OwnMetricsOffered => "own_metrics_offered",
            EventType::RestartRequested => "restart_requested",
            EventType::ConfigApplying => "config_applying",
            EventType::RestartOutcome => "restart_outcome",
        }
    }
}

/// An event as the actor proposes it; the state machine assigns the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub ts: UnixMillis,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub message: String,
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic per collector, starting at 1.
    pub id: u64,
    pub ts: UnixMillis,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub message: String,
    #[serde(default)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl NewEvent {
    pub fn new(ts: UnixMillis, event_type: EventType, message: impl Into<String>) -> Self {
        NewEvent { ts, event_type, message: message.into(), data: serde_json::Map::new() }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}
