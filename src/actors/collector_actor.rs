//! `CollectorActor`: the live state of one collector.
//!
//! Message delivery: polls, registrations, own_metrics pushes, observations and the shutdown flush are
//! answered (`send`); auth-failure notices, re-render and stop requests may be dropped under pressure
//! (`do_send`) because the next poll or the replicated record repairs whatever they would have told.
//!
//! What a collector reports is live at once (status, error) but written to Raft with bounds, so one
//! token cannot grow the log at the rate it polls: a changed effective config at most once per
//! `effective_config_persist_interval` (the latest one wins; the shutdown flush writes one still
//! waiting), and `config_failed` events at most once per `noisy_event_interval`, the reports in between
//! folded into the next one's `count`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::activity_writer::RecordActivity;
use super::apply_tracker::ApplyTracker;
use super::env::{ActorEnv, ActorShards};
use super::liveness::{status_after_contact, status_after_silence, PollCadence};
use super::throughput::{
    status_after_export_report, IngestReport, ThroughputSnapshot, ThroughputState,
    EXPORT_FAILURES_FORGOTTEN_AFTER,
};
use crate::apply_status::{
    alloy_content_hash, release_signals_for, reported_version, Expectation, InferredOutcome, ReleaseSignals,
    Verdict,
};
use crate::model::command::{Delivered, RemoteStatusReport};
use crate::model::event::NewEvent;
use crate::model::fleet_state::FleetState;
use crate::model::{
    ActivityUpdate, CollectorMode, CollectorRecord, CollectorStatus, EventType, FeatureLevel, InferredApply,
    RemoteConfigState, SlotEpoch, UnixMillis,
};
use crate::opamp::components::{
    self as build_components, AgentHealth, AgentView, ComponentTypes, ReportedComponents,
};
use crate::opamp::{AgentCapabilities, AgentSession};
use crate::own_metrics::MetricsBatch;
use crate::render::render_for_delivery;
use crate::render::secrets::{redact, redact_linkmesh_tokens, CredentialValues};

pub struct CollectorActor {
    collector_id: String,
    /// The slot's epoch when this actor was activated: every update it writes carries it, so the
    /// writes of this tenure stop counting once the slot moves (`FleetState::apply`).
    slot_epoch: SlotEpoch,
    env: Arc<ActorEnv>,
    /// The registry's table of resident actors, which this actor leaves when it stops.
    resident: Arc<ActorShards<CollectorActor>>,
    status: CollectorStatus,
    host_id: Option<String>,
    host_last_seen: Option<UnixMillis>,
    /// Attributes reported during this activation, kept only when they differ from the record's at
    /// activation (the record has them once the activity writer's write commits). `None`: the
    /// record's are current, and the actor holds no copy.
    reported_attributes: Option<BTreeMap<String, String>>,
    /// [`attributes_fingerprint`] of the collector's current attributes, to notice a change.
    attributes_fingerprint: u64,
    /// The release Alloy reports in its attributes, when the signal table covers it.
    release: Option<&'static ReleaseSignals>,
    rendered: Arc<DeliverableConfig>,
    delivered_hash: Option<String>,
    applied_hash: Option<String>,
    remote_status: Option<RemoteConfigState>,
    remote_error: Option<String>,
    /// The delivered hash `remote_status` is about.
    status_hash: Option<String>,
    /// The effective config as last reported (redacted); shared with the live views that show it.
    effective_config: Option<Arc<str>>,
    /// SHA-256 of `effective_config`.
    effective_config_hash: Option<[u8; 32]>,
    /// SHA-256 of the effective config last handed to the writer (or found in the record).
    effective_config_written_hash: Option<[u8; 32]>,
    /// When this actor last handed an effective config to the writer.
    effective_config_written_at: Option<Instant>,
    /// Failed reports since the last `config_failed` event that have no event yet.
    unwritten_config_failures: Option<Box<UnwrittenConfigFailures>>,
    last_config_failed_event_at: Option<UnixMillis>,
    cadence: PollCadence,
    last_seen_persisted: Option<UnixMillis>,
    last_register_at: Option<UnixMillis>,
    /// A poll without the current hash is a new delivery worth an event: set on creation and on every
    /// (re)registration (a collector process starting), cleared when a delivery is recorded. Keeps
    /// collectors that never echo the hash (Alloy < 1.5) from writing an event per poll.
    redelivery_due: bool,
    last_activity: Instant,
    pending_auth_failures: u64,
    last_auth_event_at: Option<UnixMillis>,
    last_conflict_event_at: Option<UnixMillis>,
    /// Allocated by the first own_metrics push: most resident actors never receive one.
    throughput: Option<Box<ThroughputState>>,
    /// Whether the last own_metrics push that said so reported increasing export failures.
    exports_failing: bool,
    /// When `exports_failing` was last set or confirmed.
    last_export_report: Instant,
    /// Whether `own_metrics_first_seen` was ever recorded for this collector.
    own_metrics_seen: bool,
    /// Whether this actor recorded an `own_metrics_offered` event (one per activation: the offer is
    /// repeated on every new agent stream, the event is not).
    own_metrics_offered: bool,
    /// The restart requests (`CollectorRecord::restart_requests`) this actor sent or found sent: a
    /// restart command goes out when the record's count passes it.
    restart_sent: u64,
    /// A restart command went out; the next health report that is not a transition is its outcome.
    awaiting_restart_outcome: bool,
    /// What an OpAMP agent reported of itself (capabilities, health, its build's components); `None`
    /// until it sent a message here. Boxed: Alloy collectors never have one.
    agent_build: Option<Box<AgentBuild>>,
    own_metrics_last_seen_at: Option<UnixMillis>,
    /// The delivery being followed through the collector's own metrics (`apply_status`).
    apply: ApplyTracker,
    /// The latest inference (replicated in `config.inferred`).
    inferred: Option<Box<InferredApply>>,
    /// An OpAMP agent's message stream as this actor saw it (`None` for Alloy, and for an agent this
    /// activation has not heard from).
    opamp_session: Option<Box<AgentSession>>,
}

/// Failed reports folded into the next `config_failed` event: how many, and the latest one.
struct UnwrittenConfigFailures {
    count: u64,
    version: u64,
    error: String,
}

/// A GetConfig poll, already authenticated as this collector. Serde: a poll taken on another node
/// travels to the owner as JSON (`cluster/forward.rs`).
#[derive(Message, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[rtype(result = "PollReply")]
pub struct Poll {
    pub host_id: String,
    pub local_attributes: BTreeMap<String, String>,
    pub hash: String,
    pub remote_status: Option<RemoteStatusReport>,
    pub effective_config: Option<String>,
    pub at: UnixMillis,
    /// The collector's config version on the replica that authenticated the call (0: unknown, or a
    /// node from before this field). An actor that rendered an older version renders again first, so
    /// a poll right after a change gets it even when the change's `Rerender` is still on its way.
    #[serde(default)]
    pub config_version: u64,
}

pub struct PollReply {
    pub rendered: Arc<DeliverableConfig>,
    pub not_modified: bool,
}

/// One OpAMP message from the collector's agent, already authenticated as this collector. Serde: a
/// message taken on another node travels to the owner as JSON (`cluster/forward.rs`).
#[derive(Message, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[rtype(result = "OpampReply")]
pub struct OpampExchange {
    /// The agent's instance uid as canonical UUID text: the collector's host id.
    pub instance_uid: String,
    pub sequence_num: u64,
    /// `AgentCapabilities` bits.
    pub capabilities: u64,
    /// The agent description's attributes, when the message carries a description.
    pub description: Option<BTreeMap<String, String>>,
    pub effective_config: Option<String>,
    pub remote_status: Option<RemoteStatusReport>,
    /// `remote_config_status.last_remote_config_hash` as the text linkmesh offers hashes in; `None`
    /// when the message has no status (agents leave it out while it does not change).
    pub config_hash: Option<String>,
    /// The agent's goodbye (`agent_disconnect`).
    pub disconnect: bool,
    pub at: UnixMillis,
    /// As [`Poll::config_version`].
    #[serde(default)]
    pub config_version: u64,
    /// Not a message of the agent: the node holding its WebSocket heard that the collector's config
    /// changed and asks what to push. Only `instance_uid`, `capabilities` (of the agent's last
    /// message), `at` and `config_version` are set; nothing is recorded as the agent's contact.
    #[serde(default)]
    pub push: bool,
    /// The agent's available components, when the message reports them (absent from the exchanges
    /// of older releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<ReportedComponents>,
    /// The agent's health, when the message reports it (absent from older releases' exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<AgentHealth>,
}

/// What an OpAMP agent reported of itself.
#[derive(Debug, Default)]
struct AgentBuild {
    /// Its capability bits, from its last message that had them.
    capabilities: u64,
    /// Its health, from its last message that had it (agents leave it out while it does not change).
    health: Option<AgentHealth>,
    /// The hash of its last available-components report.
    hash: Option<String>,
    /// Its component types, once it listed them.
    types: Option<ComponentTypes>,
    /// The config hash last refused for lacking components (reported once per version).
    refused_hash: Option<String>,
}

#[derive(Default)]
pub struct OpampReply {
    /// The config to offer: the agent accepts remote config, does not run this version yet, and the
    /// rendering has something to run.
    pub offer: Option<Arc<DeliverableConfig>>,
    /// The actor has no record of the agent's stream, or missed a message: the agent is to send
    /// everything again (`ServerToAgentFlags_ReportFullState`).
    pub report_full_state: bool,
    /// A push asked about a config version this node's replica has not applied yet: ask again.
    pub owner_behind: bool,
    /// The heartbeat interval to offer (`connection_settings.opamp.heartbeat_interval_seconds`).
    pub heartbeat: Option<Duration>,
    /// The own-metrics destination is to be offered (`connection_settings.own_metrics`: the edge
    /// fills in its URL and the collector's derived credential).
    pub own_metrics: bool,
    /// The agent is to list its available components (`ServerToAgentFlags_ReportAvailableComponents`):
    /// it reported a components hash this actor has no list for.
    pub report_available_components: bool,
    /// A restart command goes out with this reply (`command{type: Restart}`).
    pub restart: bool,
}

/// The current config version rendered with its credentials, ready to send.
pub struct DeliverableConfig {
    pub version: u64,
    pub hash: String,
    pub content: String,
    /// The same rendering with markers at the credential positions.
    stored_content: String,
    /// The decrypted credentials in `content`, to redact what the collector reports back.
    credentials: CredentialValues,
    /// What Alloy's own metrics show once this version loads (`apply_status`); `None` for the OTel
    /// Collector.
    pub expectation: Option<Arc<Expectation>>,
}

/// Stored instead of reported text that still holds a credential after redaction.
const WITHHELD_REPORT: &str = "(not stored by linkmesh: this text differs from the delivered config and \
contains a destination credential too short to redact)";

impl std::fmt::Debug for DeliverableConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `content` holds the delivered credentials.
        formatter
            .debug_struct("DeliverableConfig")
            .field("version", &self.version)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl DeliverableConfig {
    /// Nothing to deliver yet (an actor before its first render).
    fn empty() -> Self {
        DeliverableConfig {
            version: 0,
            hash: String::new(),
            content: String::new(),
            stored_content: String::new(),
            credentials: CredentialValues::default(),
            expectation: None,
        }
    }

    /// Text the collector reported (its effective config, an error), as it may be stored: the
    /// delivered config itself is stored as rendered with markers (which covers credentials of any
    /// length); other text has every credential value replaced by its marker, or is withheld
    /// when a value too short to replace is left in it, and every linkmesh token in it reduced to
    /// its kind.
    fn storable(&self, reported: &str) -> String {
        if reported == self.content {
            return self.stored_content.clone();
        }
        let redaction = redact(reported, &self.credentials);
        if redaction.short_value_left {
            WITHHELD_REPORT.to_owned()
        } else {
            // The supervisor echoes the own-metrics header it was offered (the derived credential).
            redact_linkmesh_tokens(&redaction.text).into_owned()
        }
    }

    /// Renders the current version again with the decrypted credentials: they are written only
    /// where the renderer puts credentials, never wherever marker-like text appears.
    fn render(fleet: &FleetState, record: &CollectorRecord, env: &ActorEnv) -> Self {
        let Some(current) = record.current_config() else {
            return DeliverableConfig::empty();
        };
        let input = fleet.render_input(record);
        if record.mode == CollectorMode::Opamp
            && input.destinations.iter().all(|destination| destination.credentials.is_empty())
        {
            // Nothing to decrypt: the text the state machine rendered is the delivered one, as is.
            // (A fleet-wide change at 10,000 agents spent its fan-out rendering it again.)
            let text = current.content.to_text();
            return DeliverableConfig {
                version: current.version,
                hash: current.hash.clone(),
                stored_content: text.clone(),
                content: text,
                credentials: CredentialValues::default(),
                expectation: None,
            };
        }
        let mut values = CredentialValues::default();
        for destination in &input.destinations {
            for (key, sealed) in &destination.credentials {
                match env.data_key.open(&sealed.0) {
                    Ok(value) => values.insert(&destination.id, key, value),
                    Err(error) => tracing::error!(
                        collector_id = %record.id,
                        destination_id = %destination.id,
                        credential = %key,
                        error = %error,
                        "cannot decrypt a destination credential; delivering it empty"
                    ),
                }
            }
        }
        let rendered = render_for_delivery(&input, &values);
        if rendered.stored.hash != current.hash {
            // Only after an upgrade whose renderer writes this model differently: the version
            // keeps its hash until the model changes, and new deliveries get this build's text.
            tracing::warn!(
                collector_id = %record.id,
                version = current.version,
                "config version was rendered by another build; delivering this build's rendering"
            );
        }
        let expectation = (record.mode == CollectorMode::AlloyRemotecfg).then(|| {
            Arc::new(Expectation {
                version: current.version,
                content_hash: alloy_content_hash(rendered.content.as_bytes()),
                component_ids: rendered.alloy_component_ids,
            })
        });
        DeliverableConfig {
            version: current.version,
            hash: current.hash.clone(),
            content: rendered.content,
            stored_content: rendered.stored.content,
            credentials: values,
            expectation,
        }
    }
}

#[derive(Message, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Register {
    pub host_id: String,
    pub name: String,
    pub local_attributes: BTreeMap<String, String>,
    pub at: UnixMillis,
}

#[derive(Message, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Unregister {
    pub host_id: String,
    pub at: UnixMillis,
}

/// A call that presented this collector's previous (rotated-out) token.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct AuthFailed {
    pub at: UnixMillis,
}

/// An own_metrics push (OTLP `/v1/metrics`), authenticated and extracted on the HTTP worker. Answered:
/// the exporter is told how many points were rejected.
#[derive(Message, Clone)]
#[rtype(result = "IngestReport")]
pub struct PushMetrics {
    pub batch: Arc<MetricsBatch>,
    pub at: UnixMillis,
}

/// A copy of the throughput state (topology API); `history` adds the rate windows.
#[derive(Message, Clone)]
#[rtype(result = "ThroughputSnapshot")]
pub struct ObserveThroughput {
    pub history: bool,
}

/// The live view the API overlays on the replicated record.
#[derive(Debug, Clone)]
pub struct LiveView {
    pub status: CollectorStatus,
    pub host_id: Option<String>,
    pub last_seen_at: Option<UnixMillis>,
    pub local_attributes: BTreeMap<String, String>,
    pub delivered_hash: Option<String>,
    pub remote_status: Option<RemoteConfigState>,
    pub remote_error: Option<String>,
    pub expected_poll_interval: std::time::Duration,
    /// When the last own_metrics push linkmesh could read arrived (not replicated).
    pub own_metrics_last_seen_at: Option<UnixMillis>,
    /// The effective config as last reported (redacted), which may not be written yet (see
    /// `effective_config_persist_interval`); only for principals who may read it.
    pub effective_config: Option<Arc<str>>,
    pub apply: LiveApply,
    /// What an OpAMP agent reported of itself, since this actor was activated.
    pub opamp: Option<AgentView>,
}

/// The apply-status inference as the actor holds it, fresher than the replicated `config.inferred`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveApply {
    pub inferred: Option<InferredApply>,
    /// A delivered version no scrape has decided yet.
    pub pending_version: Option<u64>,
    /// Alloy's report and its own metrics have disagreed for more than a metrics interval.
    pub disagreement: Option<String>,
}

#[derive(Message, Clone)]
#[rtype(result = "LiveView")]
pub struct Observe;

/// The replicated render inputs changed: re-render before the next poll.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Rerender;

#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Stop;

/// Shutdown: hand what waits for its interval (the latest effective config, folded `config_failed`
/// reports) to the activity writer now. Answered, so the writer's last flush comes after it.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct FlushPending;

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl CollectorActor {
    pub(super) fn from_record(
        record: &CollectorRecord,
        slot_epoch: SlotEpoch,
        env: Arc<ActorEnv>,
        resident: Arc<ActorShards<CollectorActor>>,
    ) -> Self {
        let settings = &env.settings;
        let mut cadence = PollCadence::new(settings.default_poll_interval, settings.min_poll_interval);
        let now = env.clock.now();
        let effective_config_hash = record.config.effective_config.as_deref().map(text_hash);
        if record.status.expects_polls() {
            // Rebuilt after a restart or failover: give the collector a full window before calling it stale.
            cadence.record_poll(now);
        }
        CollectorActor {
            collector_id: record.id.clone(),
            slot_epoch,
            status: record.status,
            host_id: record.host_id.clone(),
            host_last_seen: record.last_seen_at,
            reported_attributes: None,
            attributes_fingerprint: attributes_fingerprint(&record.local_attributes),
            release: release_signals_for(reported_version(&record.local_attributes)),
            // Rendered in `started`, before the first message: rendering needs the fleet-wide
            // pipelines, and the registry holds the state lock while it builds the actor.
            rendered: Arc::new(DeliverableConfig::empty()),
            delivered_hash: record.config.delivered_hash.clone(),
            applied_hash: None,
            remote_status: record.config.remote_status,
            remote_error: record.config.remote_error.clone(),
            status_hash: record.config.status_hash.clone(),
            effective_config: record.config.effective_config.as_deref().map(Arc::from),
            effective_config_hash,
            effective_config_written_hash: effective_config_hash,
            effective_config_written_at: None,
            unwritten_config_failures: None,
            last_config_failed_event_at: None,
            cadence,
            last_seen_persisted: record.last_seen_at,
            last_register_at: None,
            redelivery_due: true,
            last_activity: env.clock.monotonic(),
            pending_auth_failures: 0,
            last_auth_event_at: None,
            last_conflict_event_at: None,
            throughput: None,
            // Rebuilt while degraded by something other than a failed config: export failures, which
            // the next push confirms or clears.
            exports_failing: record.status == CollectorStatus::Degraded
                && record.config.remote_status != Some(RemoteConfigState::Failed)
                && !inferred_failure(record.config.remote_status, record.config.inferred.as_ref()),
            last_export_report: env.clock.monotonic(),
            own_metrics_seen: record.own_metrics_seen(),
            own_metrics_offered: false,
            // Requests made before this activation are not replayed (a stale restart is no restart).
            restart_sent: record.restart_requests,
            awaiting_restart_outcome: false,
            agent_build: None,
            own_metrics_last_seen_at: None,
            apply: ApplyTracker::default(),
            inferred: record.config.inferred.clone().map(Box::new),
            opamp_session: None,
            env,
            resident,
        }
    }

    /// The release Alloy reports, when the signal table covers it.
    fn release(&self) -> Option<&'static ReleaseSignals> {
        self.release
    }

    /// Takes the attributes the collector reported when they differ from its current ones.
    fn observe_attributes(&mut self, reported: &BTreeMap<String, String>, update: &mut ActivityUpdate) {
        let fingerprint = attributes_fingerprint(reported);
        if fingerprint == self.attributes_fingerprint {
            return;
        }
        self.attributes_fingerprint = fingerprint;
        self.release = release_signals_for(reported_version(reported));
        self.reported_attributes = Some(reported.clone());
        update.local_attributes = Some(reported.clone());
        self.apply.release_changed(self.release);
    }

    /// The collector's current attributes: as reported during this activation, else the record's.
    fn current_attributes(&self) -> BTreeMap<String, String> {
        match &self.reported_attributes {
            Some(attributes) => attributes.clone(),
            None => {
                let state = self.env.raft.state();
                let record = state.fleet.collectors.get(&self.collector_id);
                record.map(|record| record.local_attributes.clone()).unwrap_or_default()
            }
        }
    }

    /// Whether the collector runs its config's previous version because the current one failed:
    /// as Alloy reports it, or, when it reports nothing, as its own metrics show.
    fn config_failed(&self) -> bool {
        self.remote_status == Some(RemoteConfigState::Failed)
            || inferred_failure(self.remote_status, self.inferred.as_deref())
    }

    /// Takes a verdict on delivered `version` drawn from the collector's own metrics. Alloy's own
    /// report, when it sends one, keeps deciding events and status; the verdict is kept for display.
    fn record_inferred(
        &mut self,
        version: u64,
        verdict: Verdict,
        at: UnixMillis,
        update: &mut ActivityUpdate,
    ) {
        let inferred = InferredApply {
            version,
            outcome: verdict.outcome,
            reason: verdict.reason,
            signals: verdict.signals.iter().map(|signal| (*signal).to_owned()).collect(),
            at,
        };
        update.inferred_apply = Some(inferred.clone());
        self.inferred = Some(Box::new(inferred.clone()));
        if reports_status(self.remote_status) {
            return;
        }
        let hash = self.delivered_hash.clone().unwrap_or_default();
        let signals = serde_json::Value::from(inferred.signals.clone());
        match inferred.outcome {
            InferredOutcome::Applied => {
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::ConfigApplied,
                        format!("collector applied config version {version} (inferred from its own metrics)"),
                    )
                    .with("version", version)
                    .with("hash", hash)
                    .with("inferred", true)
                    .with("reason", inferred.reason.as_str())
                    .with("signals", signals),
                );
                let mut next = status_after_contact(self.status, Some(RemoteConfigState::Applied));
                if self.exports_failing {
                    next = status_after_export_report(next, true, true, false);
                }
                if self.status.expects_polls() {
                    self.change_status(next, at, "its own metrics show the config applied", update);
                }
            }
            InferredOutcome::Failed => {
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::ConfigFailed,
                        format!(
                            "collector failed to apply config version {version} (inferred from its own metrics: {}); \
                             this Alloy release does not report the error, see its log",
                            inferred.reason
                        ),
                    )
                    .with("version", version)
                    .with("hash", hash)
                    .with("inferred", true)
                    .with("reason", inferred.reason.as_str())
                    .with("signals", signals),
                );
                if self.status.expects_polls() {
                    let next = status_after_contact(self.status, Some(RemoteConfigState::Failed));
                    self.change_status(next, at, "its own metrics show the config refused", update);
                }
            }
            InferredOutcome::Unknown => {}
        }
    }

    /// Replaces credentials in an effective config stored before reports were redacted.
    fn scrub_stored_effective_config(&mut self) {
        let Some(stored) = &self.effective_config else { return };
        let scrubbed = redact(stored, &self.rendered.credentials).text;
        if *scrubbed != **stored {
            let mut update = ActivityUpdate::for_collector(&self.collector_id);
            update.effective_config = Some(scrubbed.clone());
            self.effective_config_hash = Some(text_hash(&scrubbed));
            self.effective_config_written_hash = self.effective_config_hash;
            self.effective_config_written_at = Some(self.env.clock.monotonic());
            self.effective_config = Some(Arc::from(scrubbed));
            self.publish(update);
        }
    }

    /// Renders the current version with its credentials from this node's replica.
    /// Renders again when the caller's replica saw a newer config version than this actor rendered
    /// (its `Rerender` is still on the way).
    fn render_if_behind(&mut self, config_version: u64) {
        if config_version > self.rendered.version {
            self.render_deliverable();
        }
    }

    fn render_deliverable(&mut self) {
        let rendered = {
            let state = self.env.raft.state();
            state
                .fleet
                .collectors
                .get(&self.collector_id)
                .map(|record| DeliverableConfig::render(&state.fleet, record, &self.env))
        };
        if let Some(rendered) = rendered {
            self.rendered = Arc::new(rendered);
        }
    }

    fn publish(&self, mut update: ActivityUpdate) {
        update.slot_epoch = self.slot_epoch;
        // do_send: the writer's mailbox is unbounded and it must not drop events.
        self.env.writer.do_send(RecordActivity(update));
    }

    fn change_status(
        &mut self,
        next: CollectorStatus,
        at: UnixMillis,
        reason: &str,
        update: &mut ActivityUpdate,
    ) {
        if next == self.status {
            return;
        }
        let previous = self.status;
        self.status = next;
        self.env.status_changes.record(previous.as_str(), next.as_str());
        update.status = Some(next);
        update.last_seen_at = self.cadence.last_poll().or(self.host_last_seen);
        update.events.push(
            NewEvent::new(
                at,
                EventType::StatusChanged,
                format!("{} -> {}: {reason}", previous.as_str(), next.as_str()),
            )
            .with("from", previous.as_str())
            .with("to", next.as_str()),
        );
    }

    /// Records which host uses this token; a second live host is reported, never merged.
    fn observe_host(&mut self, host_id: &str, at: UnixMillis, update: &mut ActivityUpdate) {
        match &self.host_id {
            Some(current) if current == host_id => {}
            Some(current) if self.current_host_is_live(at) => {
                let due = self
                    .last_conflict_event_at
                    .is_none_or(|last| at.saturating_sub(last) >= self.env.settings.noisy_event_interval);
                if due {
                    self.last_conflict_event_at = Some(at);
                    update.events.push(
                        NewEvent::new(
                            at,
                            EventType::HostIdConflict,
                            format!(
                                "host {host_id:?} is using the token of this collector while host {current:?} is \
                                 still polling; give each host its own collector and token"
                            ),
                        )
                        .with("host_id", current.as_str())
                        .with("other_host_id", host_id),
                    );
                }
                return;
            }
            _ => {
                self.host_id = Some(host_id.to_owned());
                update.host_id = Some(host_id.to_owned());
            }
        }
        self.host_last_seen = Some(at);
    }

    fn current_host_is_live(&self, at: UnixMillis) -> bool {
        let window = self.cadence.expected_interval() * self.env.settings.stale_after_missed_polls;
        self.status.expects_polls()
            && self.host_last_seen.is_some_and(|seen| at.saturating_sub(seen) <= window)
    }

    fn note_contact(
        &mut self,
        at: UnixMillis,
        remote: Option<RemoteConfigState>,
        update: &mut ActivityUpdate,
    ) {
        self.last_activity = self.env.clock.monotonic();
        let mut next = status_after_contact(self.status, remote);
        if self.exports_failing {
            next = status_after_export_report(next, true, true, false);
        }
        self.change_status(next, at, "collector called linkmesh", update);
        let persist_due = self
            .last_seen_persisted
            .is_none_or(|last| at.saturating_sub(last) >= self.env.settings.last_seen_persist_interval);
        if persist_due || update.status.is_some() {
            self.last_seen_persisted = Some(at);
            update.last_seen_at = Some(at);
        }
    }

    fn record_remote_status(
        &mut self,
        report: &RemoteStatusReport,
        at: UnixMillis,
        update: &mut ActivityUpdate,
    ) {
        if report.state == RemoteConfigState::Unset {
            return;
        }
        let report = &RemoteStatusReport { hash: self.delivered_hash.clone(), ..report.clone() };
        // A report on a newly delivered config is news even when it says the same as the last one:
        // a rollout waits for it (`model/rollouts.rs`).
        let changed = self.remote_status != Some(report.state)
            || self.remote_error != report.error
            || self.status_hash != report.hash;
        match report.state {
            RemoteConfigState::Applied if self.applied_hash != self.delivered_hash || changed => {
                self.applied_hash = self.delivered_hash.clone();
                self.apply.reported_applied();
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::ConfigApplied,
                        format!("collector applied config version {}", self.rendered.version),
                    )
                    .with("version", self.rendered.version)
                    .with("hash", self.delivered_hash.clone().unwrap_or_default()),
                );
            }
            // A new event type: only once every member can decode it.
            RemoteConfigState::Applying
                if changed
                    && self.env.raft.state().fleet.feature_level() >= FeatureLevel::OPAMP_ENROLLMENT =>
            {
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::ConfigApplying,
                        format!("collector applying config version {}", self.rendered.version),
                    )
                    .with("version", self.rendered.version)
                    .with("hash", self.delivered_hash.clone().unwrap_or_default()),
                );
            }
            RemoteConfigState::Failed if changed => {
                let count = self.unwritten_config_failures.as_ref().map_or(0, |failures| failures.count);
                self.unwritten_config_failures = Some(Box::new(UnwrittenConfigFailures {
                    count: count + 1,
                    version: self.rendered.version,
                    error: report.error.clone().unwrap_or_default(),
                }));
                self.write_config_failures(at, false, update);
            }
            _ => {}
        }
        if changed {
            self.remote_status = Some(report.state);
            self.remote_error = report.error.clone();
            self.status_hash = report.hash.clone();
            update.remote_status = Some(report.clone());
        }
    }

    /// One `config_failed` event for the failed reports not yet written, when none was written for
    /// `noisy_event_interval` (or `now`): the latest report's error, and how many reports it stands for.
    fn write_config_failures(&mut self, at: UnixMillis, now: bool, update: &mut ActivityUpdate) {
        let due = now
            || self
                .last_config_failed_event_at
                .is_none_or(|last| at.saturating_sub(last) >= self.env.settings.noisy_event_interval);
        if !due {
            return;
        }
        let Some(UnwrittenConfigFailures { count, version, error }) =
            self.unwritten_config_failures.take().map(|failures| *failures)
        else {
            return;
        };
        self.last_config_failed_event_at = Some(at);
        let message = if count == 1 {
            format!("collector failed to apply config version {version}: {error}")
        } else {
            format!(
                "collector failed to apply config version {version}: {error} (the latest of {count} failed \
                 reports since the previous config_failed event)"
            )
        };
        update.events.push(
            NewEvent::new(at, EventType::ConfigFailed, message)
                .with("version", version)
                .with("error", error)
                .with("count", count),
        );
    }

    /// Takes the reported effective config (already redacted); it is written only when its hash
    /// differs from the one last written.
    fn record_effective_config(&mut self, effective: String) {
        if self.effective_config.as_deref() == Some(effective.as_str()) {
            return;
        }
        self.effective_config_hash = Some(text_hash(&effective));
        self.effective_config = Some(Arc::from(effective));
    }

    /// Writes the latest effective config if it is not the one last written, and the last write is
    /// `effective_config_persist_interval` ago (or `now`).
    fn write_effective_config(&mut self, now: bool, update: &mut ActivityUpdate) {
        if self.effective_config_hash == self.effective_config_written_hash {
            return;
        }
        let interval = self.env.settings.effective_config_persist_interval;
        let due =
            now || self.effective_config_written_at.is_none_or(|at| self.env.clock.since(at) >= interval);
        if !due {
            return;
        }
        self.effective_config_written_hash = self.effective_config_hash;
        self.effective_config_written_at = Some(self.env.clock.monotonic());
        update.effective_config = self.effective_config.as_deref().map(str::to_owned);
    }

    /// Whether something waits for its interval before it is written.
    fn has_unwritten_reports(&self) -> bool {
        self.effective_config_hash != self.effective_config_written_hash
            || self.unwritten_config_failures.is_some()
    }

    /// What waits for its interval and is due at `at` (or all of it, `now`), in one update.
    fn write_due_reports(&mut self, at: UnixMillis, now: bool) {
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.write_config_failures(at, now, &mut update);
        self.write_effective_config(now, &mut update);
        if update != ActivityUpdate::for_collector(&self.collector_id) {
            self.publish(update);
        }
    }

    fn flush_auth_failures(&mut self, at: UnixMillis) {
        if self.pending_auth_failures == 0 {
            return;
        }
        let due = self
            .last_auth_event_at
            .is_none_or(|last| at.saturating_sub(last) >= self.env.settings.noisy_event_interval);
        if !due {
            return;
        }
        let count = self.pending_auth_failures;
        self.pending_auth_failures = 0;
        self.last_auth_event_at = Some(at);
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        update.events.push(
            NewEvent::new(
                at,
                EventType::AuthFailed,
                // Nothing the caller sent is stored: the event is reachable only with this collector's
                // previous token, and says only how often it was presented.
                format!("{count} call(s) rejected: they presented this collector's previous token, which was rotated; update remotecfg.bearer_token to the new token"),
            )
            .with("count", count),
        );
        self.publish(update);
    }
}

impl Actor for CollectorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.render_deliverable();
        self.scrub_stored_effective_config();
        ctx.run_interval(self.env.settings.tick_interval, |_, ctx| ctx.notify(Tick));
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.resident.remove_if_same(&self.collector_id, &ctx.address());
    }
}

impl Handler<Poll> for CollectorActor {
    type Result = MessageResult<Poll>;

    fn handle(&mut self, poll: Poll, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.contact(poll, true))
    }
}

impl Handler<OpampExchange> for CollectorActor {
    type Result = MessageResult<OpampExchange>;

    fn handle(&mut self, exchange: OpampExchange, ctx: &mut Self::Context) -> Self::Result {
        if exchange.push {
            return MessageResult(self.opamp_push(&exchange));
        }
        let report_full_state = AgentSession::observe(
            &mut self.opamp_session,
            &exchange.instance_uid,
            exchange.sequence_num,
            exchange.description.is_some(),
        );
        if exchange.disconnect {
            self.opamp_session = None;
            let goodbye = Unregister { host_id: exchange.instance_uid, at: exchange.at };
            <Self as Handler<Unregister>>::handle(self, goodbye, ctx);
            return MessageResult(OpampReply::default());
        }
        // Before `offers` reads the rendering (`contact` would do it only after).
        self.render_if_behind(exchange.config_version);
        let capabilities = AgentCapabilities(exchange.capabilities);
        let report_available_components = self.note_components(exchange.components.as_ref());
        let agent = self.agent_build.get_or_insert_with(Default::default);
        if exchange.capabilities != 0 {
            agent.capabilities = exchange.capabilities;
        }
        if exchange.health.is_some() {
            agent.health = exchange.health.clone();
        }
        if let Some(health) = &exchange.health {
            self.note_restart_outcome(health, exchange.at);
        }
        let restart = self.restart_due(capabilities, exchange.at);
        let offers = capabilities.accepts_remote_config()
            && !crate::render::otelcol::is_placeholder(&self.rendered.content)
            && self.build_has_what_config_needs(exchange.at);
        let config_hash = match self.opamp_session.as_mut() {
            Some(session) => session.config_hash(exchange.config_hash),
            None => exchange.config_hash.unwrap_or_default(),
        };
        // A report on a config other than the last one offered (a reply that never arrived) says
        // nothing about what was delivered; the agent is offered the current one again instead.
        let reported_on_delivered = self.delivered_hash.as_deref() == Some(config_hash.as_str());
        let poll = Poll {
            host_id: exchange.instance_uid,
            local_attributes: exchange.description.unwrap_or_default(),
            hash: config_hash,
            remote_status: exchange.remote_status.filter(|_| reported_on_delivered),
            effective_config: exchange.effective_config,
            at: exchange.at,
            config_version: exchange.config_version,
        };
        let heartbeat = self.heartbeat_of(capabilities);
        let reply = self.contact(poll, offers);
        let offer = (offers && !reply.not_modified).then_some(reply.rendered);
        if let (Some(offered), Some(session)) = (&offer, self.opamp_session.as_mut()) {
            // An agent that never reports which config it runs is taken to run what it was offered:
            // otherwise every message of it would carry the whole config again.
            if !capabilities.reports_remote_config() {
                session.config_hash(Some(offered.hash.clone()));
            }
        }
        // The own-metrics destination waits while a config is on its way to an agent that will
        // report on it: the supervisor restarts its collector for each, and two restarts in a row
        // make v0.149 take the first one's exit for the new config failing. The heartbeat goes now
        // and again with it, in the reply to the agent's next report.
        let own_metrics_waits = capabilities.reports_remote_config()
            && (offer.is_some() || self.remote_status == Some(RemoteConfigState::Applying));
        let own_metrics = capabilities.reports_own_metrics();
        let settings_due = (heartbeat.is_some() || own_metrics)
            && self.opamp_session.as_mut().is_some_and(|session| match own_metrics && own_metrics_waits {
                true => session.settings_pending(),
                false => session.offer_settings(),
            });
        let heartbeat = heartbeat.filter(|_| settings_due);
        let own_metrics = own_metrics && !own_metrics_waits && settings_due;
        if own_metrics {
            self.note_own_metrics_offered(exchange.at);
        }
        MessageResult(OpampReply {
            offer,
            report_full_state,
            heartbeat,
            own_metrics,
            report_available_components,
            restart,
            ..OpampReply::default()
        })
    }
}

impl CollectorActor {
    /// The heartbeat interval this agent is to keep, and is expected at from now on: the configured
    /// one for agents that report heartbeats, unless they also accept OpAMP connection settings —
    /// those would take the offer as new connection settings and reconnect with its (empty)
    /// headers, so they keep their own interval, learned from their messages.
    fn heartbeat_of(&mut self, capabilities: AgentCapabilities) -> Option<Duration> {
        if capabilities.0 == 0 {
            return None; // capabilities left out (the spec says they never are): nothing learned
        }
        let heartbeat = (capabilities.reports_heartbeat()
            && !capabilities.accepts_opamp_connection_settings())
        .then_some(self.env.settings.opamp_heartbeat_interval);
        self.cadence.announce(heartbeat);
        heartbeat
    }

    /// Keeps the agent's available components; true when the agent is to be asked for the list (it
    /// reported a hash this actor has none for).
    fn note_components(&mut self, reported: Option<&ReportedComponents>) -> bool {
        let Some(reported) = reported else { return false };
        let build = self.agent_build.get_or_insert_with(Default::default);
        match &reported.types {
            Some(types) => {
                build.hash = Some(reported.hash.clone());
                build.types = Some(types.clone());
                false
            }
            None => build.hash.as_deref() != Some(reported.hash.as_str()) || build.types.is_none(),
        }
    }

    /// Whether the agent's build has every component the current config needs, as far as its report
    /// tells (an agent that never listed its components gets the config). When it lacks some, the
    /// config is not offered and the operator is told which, once per config version.
    fn build_has_what_config_needs(&mut self, at: UnixMillis) -> bool {
        let Some(build) = self.agent_build.as_mut() else { return true };
        let Some(available) = &build.types else { return true };
        let needed = build_components::required(&self.rendered.content);
        let missing = build_components::missing(&needed, available);
        if missing.is_empty() {
            return true;
        }
        if build.refused_hash.as_deref() == Some(self.rendered.hash.as_str()) {
            return false;
        }
        build.refused_hash = Some(self.rendered.hash.clone());
        let message = build_components::refusal_message(self.rendered.version, &missing);
        let named: Vec<String> = missing.iter().map(|(kind, name)| format!("{kind}/{name}")).collect();
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        update.events.push(
            NewEvent::new(at, EventType::ConfigFailed, message.clone())
                .with("version", self.rendered.version)
                .with("hash", self.rendered.hash.as_str())
                .with("missing_components", named.join(", ")),
        );
        let report = RemoteStatusReport {
            state: RemoteConfigState::Failed,
            error: Some(message),
            hash: Some(self.rendered.hash.clone()),
        };
        self.remote_status = Some(report.state);
        self.remote_error = report.error.clone();
        self.status_hash = report.hash.clone();
        update.remote_status = Some(report);
        self.publish(update);
        false
    }

    /// Whether a restart command goes out now: an operator asked for one since the last sent, and the
    /// agent accepts restart commands (else the operator is told why none was sent, once).
    fn restart_due(&mut self, capabilities: AgentCapabilities, at: UnixMillis) -> bool {
        let requested = self
            .env
            .raft
            .state()
            .fleet
            .collector(&self.collector_id)
            .map_or(0, |record| record.restart_requests);
        if requested <= self.restart_sent || capabilities.0 == 0 {
            return false;
        }
        self.restart_sent = requested;
        let accepts = capabilities.accepts_restart_command();
        self.awaiting_restart_outcome = accepts;
        if !accepts {
            let mut update = ActivityUpdate::for_collector(&self.collector_id);
            update.events.push(
                NewEvent::new(
                    at,
                    EventType::RestartOutcome,
                    "no restart sent: the agent does not accept restart commands (the supervisor needs \
                     capabilities.accepts_restart_command: true)",
                )
                .with("restarted", false),
            );
            self.publish(update);
        }
        accepts
    }

    /// The first health report after a restart command that is not a transition (`Stopping`,
    /// `Starting`) says how the restart went.
    fn note_restart_outcome(&mut self, health: &AgentHealth, at: UnixMillis) {
        let transition =
            ["stopping", "starting"].iter().any(|word| health.status.to_ascii_lowercase().contains(word));
        if !self.awaiting_restart_outcome || transition {
            return;
        }
        self.awaiting_restart_outcome = false;
        let message = if health.healthy {
            format!("the agent restarted its collector, healthy ({})", health.status)
        } else {
            format!("the agent restarted its collector, unhealthy: {}", health.last_error)
        };
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        update.events.push(
            NewEvent::new(at, EventType::RestartOutcome, message)
                .with("restarted", true)
                .with("healthy", health.healthy),
        );
        self.publish(update);
    }

    /// The agent is offered the own-metrics destination: an `own_metrics_offered` event, once per
    /// activation, from the feature level that knows the event type (an older member could not
    /// decode it).
    fn note_own_metrics_offered(&mut self, at: UnixMillis) {
        if self.own_metrics_offered
            || self.env.raft.state().fleet.feature_level() < FeatureLevel::OPAMP_ENROLLMENT
        {
            return;
        }
        self.own_metrics_offered = true;
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        update.events.push(NewEvent::new(
            at,
            EventType::OwnMetricsOffered,
            "own_metrics destination offered to the agent (connection_settings.own_metrics): its collector pushes its own metrics to linkmesh",
        ));
        self.publish(update);
    }

    /// What to push to an agent connected over WebSocket after its config changed: the new config
    /// when the agent accepts remote config and does not run it (by the hash it last reported, so a
    /// FAILED config is not pushed again); a request for its full state when this actor has no record
    /// of its stream (it then reports, and its report is answered as any message).
    fn opamp_push(&mut self, push: &OpampExchange) -> OpampReply {
        self.render_if_behind(push.config_version);
        if self.rendered.version < push.config_version {
            return OpampReply { owner_behind: true, ..OpampReply::default() };
        }
        let Some(session) = self.opamp_session.as_mut().filter(|session| session.is_of(&push.instance_uid))
        else {
            return OpampReply { report_full_state: true, ..OpampReply::default() };
        };
        let runs = session.config_hash(None);
        let restart = self.restart_due(AgentCapabilities(push.capabilities), push.at);
        let offers = AgentCapabilities(push.capabilities).accepts_remote_config()
            && !crate::render::otelcol::is_placeholder(&self.rendered.content)
            && runs != self.rendered.hash
            && self.build_has_what_config_needs(push.at);
        if !offers {
            return OpampReply { restart, ..OpampReply::default() };
        }
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.record_delivery(push.at, &mut update);
        if update != ActivityUpdate::for_collector(&self.collector_id) {
            self.publish(update);
        }
        OpampReply { offer: Some(self.rendered.clone()), restart, ..OpampReply::default() }
    }

    /// The rendered config goes out in this answer: recorded (and a `config_delivered` event) unless
    /// this version was delivered already and no redelivery is due.
    fn record_delivery(&mut self, at: UnixMillis, update: &mut ActivityUpdate) {
        let new_delivery =
            self.delivered_hash.as_deref() != Some(self.rendered.hash.as_str()) || self.redelivery_due;
        if !new_delivery {
            return;
        }
        self.redelivery_due = false;
        self.delivered_hash = Some(self.rendered.hash.clone());
        if let Some(expectation) = &self.rendered.expectation {
            self.apply.delivered(expectation.clone(), self.release());
        }
        update.delivered = Some(Delivered { hash: self.rendered.hash.clone(), at });
        update.events.push(
            NewEvent::new(
                at,
                EventType::ConfigDelivered,
                format!("config version {} delivered", self.rendered.version),
            )
            .with("version", self.rendered.version)
            .with("hash", self.rendered.hash.as_str()),
        );
    }

    /// A collector's call carrying what it reports (a remotecfg poll, an OpAMP message): live state,
    /// activity to write, and the config to answer with. `deliverable`: the answer will carry the
    /// config when the collector does not run it (false when it will not, so no delivery is recorded).
    fn contact(&mut self, poll: Poll, deliverable: bool) -> PollReply {
        self.render_if_behind(poll.config_version);
        let at = poll.at;
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.cadence.record_poll(at);
        self.observe_host(&poll.host_id, at, &mut update);
        if !poll.local_attributes.is_empty() {
            self.observe_attributes(&poll.local_attributes, &mut update);
        }
        if let Some(report) = &poll.remote_status {
            let error = report.error.as_deref().map(|error| self.rendered.storable(error));
            self.record_remote_status(&RemoteStatusReport { error, ..report.clone() }, at, &mut update);
        }
        if let Some(effective) = poll.effective_config {
            let runs_delivered = effective == self.rendered.content
                && self.delivered_hash.as_deref() == Some(self.rendered.hash.as_str());
            let effective = self.rendered.storable(&effective);
            self.record_effective_config(effective);
            // Alloy sends its status only when it changed since it last sent one: a new config that
            // loads after an APPLIED one says so only through the effective config it reports.
            if runs_delivered
                && poll.remote_status.is_none()
                && self.remote_status == Some(RemoteConfigState::Applied)
            {
                let applied =
                    RemoteStatusReport { state: RemoteConfigState::Applied, error: None, hash: None };
                self.record_remote_status(&applied, at, &mut update);
            }
        }
        self.write_effective_config(false, &mut update);
        let remote = poll.remote_status.as_ref().map(|report| report.state);
        self.note_contact(at, remote, &mut update);

        let not_modified = !poll.hash.is_empty() && poll.hash == self.rendered.hash;
        if deliverable && !not_modified {
            self.record_delivery(at, &mut update);
        }
        if update != ActivityUpdate::for_collector(&self.collector_id) {
            self.publish(update);
        }
        PollReply { rendered: self.rendered.clone(), not_modified }
    }
}

impl Handler<Register> for CollectorActor {
    type Result = ();

    fn handle(&mut self, register: Register, _ctx: &mut Self::Context) {
        let at = register.at;
        self.redelivery_due = true;
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.observe_host(&register.host_id, at, &mut update);
        self.observe_attributes(&register.local_attributes, &mut update);
        let window = self.env.settings.registration_window;
        let new_registration = self.last_register_at.is_none_or(|last| at.saturating_sub(last) >= window)
            || !self.status.expects_polls();
        self.last_register_at = Some(at);
        if new_registration {
            let attributes: serde_json::Map<String, serde_json::Value> = register
                .local_attributes
                .iter()
                .map(|(key, value)| (key.clone(), serde_json::Value::from(value.as_str())))
                .collect();
            update.events.push(
                NewEvent::new(
                    at,
                    EventType::RemotecfgRegistered,
                    format!("host {:?} registered over remotecfg", register.host_id),
                )
                .with("host_id", register.host_id.as_str())
                .with("name", register.name.as_str())
                .with("attributes", serde_json::Value::Object(attributes)),
            );
        }
        self.note_contact(at, None, &mut update);
        self.publish(update);
    }
}

impl Handler<Unregister> for CollectorActor {
    type Result = ();

    fn handle(&mut self, unregister: Unregister, _ctx: &mut Self::Context) {
        let at = unregister.at;
        self.last_activity = self.env.clock.monotonic();
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        update.events.push(
            NewEvent::new(
                at,
                EventType::Unregistered,
                format!("host {:?} unregistered (collector shut down)", unregister.host_id),
            )
            .with("host_id", unregister.host_id.as_str()),
        );
        self.last_register_at = None;
        self.change_status(CollectorStatus::Offline, at, "collector unregistered", &mut update);
        update.last_seen_at = Some(at);
        self.publish(update);
    }
}

impl Handler<AuthFailed> for CollectorActor {
    type Result = ();

    fn handle(&mut self, failure: AuthFailed, _ctx: &mut Self::Context) {
        self.pending_auth_failures += 1;
        self.flush_auth_failures(failure.at);
    }
}

impl Handler<Observe> for CollectorActor {
    type Result = MessageResult<Observe>;

    fn handle(&mut self, _: Observe, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(LiveView {
            status: self.status,
            host_id: self.host_id.clone(),
            last_seen_at: self.cadence.last_poll().max(self.host_last_seen),
            local_attributes: self.current_attributes(),
            delivered_hash: self.delivered_hash.clone(),
            remote_status: self.remote_status,
            remote_error: self.remote_error.clone(),
            expected_poll_interval: self.cadence.expected_interval(),
            own_metrics_last_seen_at: self.own_metrics_last_seen_at,
            effective_config: self.effective_config.clone(),
            apply: LiveApply {
                inferred: self.inferred.as_deref().cloned(),
                pending_version: self.apply.pending_version(),
                disagreement: self.apply.disagreement().map(str::to_owned),
            },
            opamp: self.agent_build.as_ref().map(|agent| AgentView {
                capabilities: AgentCapabilities(agent.capabilities)
                    .names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                health: agent.health.clone(),
                available_components: agent.types.clone(),
            }),
        })
    }
}

impl Handler<PushMetrics> for CollectorActor {
    type Result = MessageResult<PushMetrics>;

    fn handle(&mut self, push: PushMetrics, _ctx: &mut Self::Context) -> Self::Result {
        let at = push.at;
        self.last_activity = self.env.clock.monotonic();
        let report = self.throughput.get_or_insert_default().ingest(&push.batch, at);
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        if report.accepted > 0 {
            self.own_metrics_last_seen_at = Some(at);
            if !self.own_metrics_seen {
                self.own_metrics_seen = true;
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::OwnMetricsFirstSeen,
                        "first own_metrics push received: the topology shows throughput from the next one on",
                    )
                    .with("data_points", report.accepted),
                );
            }
        }
        let reported = self.remote_status.filter(|state| reports_status(Some(*state)));
        let news = self.apply.scrapes(&push.batch.apply_signals, reported);
        if let Some((version, verdict)) = news.verdict {
            self.record_inferred(version, verdict, at, &mut update);
        }
        if let Some(disagreement) = news.disagreement {
            tracing::warn!(collector_id = %self.collector_id, disagreement = %disagreement, "alloy's status report and its own metrics disagree");
        }
        if let Some(failing) = report.exports_failing {
            self.last_export_report = self.env.clock.monotonic();
            let was_failing = std::mem::replace(&mut self.exports_failing, failing);
            let config_failed = self.config_failed();
            let next = status_after_export_report(self.status, was_failing, failing, config_failed);
            let reason = if failing {
                format!("exporters report send failures: {}", report.failing_exporters.join(", "))
            } else {
                "exporters stopped reporting send failures".to_owned()
            };
            self.change_status(next, at, &reason, &mut update);
        }
        if update != ActivityUpdate::for_collector(&self.collector_id) {
            self.publish(update);
        }
        MessageResult(report)
    }
}

impl Handler<ObserveThroughput> for CollectorActor {
    type Result = MessageResult<ObserveThroughput>;

    fn handle(&mut self, observe: ObserveThroughput, _ctx: &mut Self::Context) -> Self::Result {
        let snapshot = match &self.throughput {
            Some(throughput) => throughput.snapshot(observe.history),
            None => ThroughputState::default().snapshot(observe.history),
        };
        MessageResult(snapshot)
    }
}

impl Handler<Rerender> for CollectorActor {
    type Result = ();

    fn handle(&mut self, _: Rerender, _ctx: &mut Self::Context) {
        self.render_deliverable();
    }
}

impl Handler<Stop> for CollectorActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<FlushPending> for CollectorActor {
    type Result = ();

    fn handle(&mut self, _: FlushPending, _ctx: &mut Self::Context) {
        let now = self.env.clock.now();
        self.write_due_reports(now, true);
    }
}

impl Handler<Tick> for CollectorActor {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        let now = self.env.clock.now();
        let settings = &self.env.settings;
        let next = status_after_silence(self.status, &self.cadence, now, settings.stale_after_missed_polls);
        if next != self.status {
            let mut update = ActivityUpdate::for_collector(&self.collector_id);
            let reason = format!(
                "no poll for {} expected intervals of {:?}",
                settings.stale_after_missed_polls,
                self.cadence.expected_interval()
            );
            self.change_status(next, now, &reason, &mut update);
            self.publish(update);
        }
        if self.exports_failing
            && self.env.clock.since(self.last_export_report) >= EXPORT_FAILURES_FORGOTTEN_AFTER
        {
            self.exports_failing = false;
            let config_failed = self.config_failed();
            let next = status_after_export_report(self.status, true, false, config_failed);
            let mut update = ActivityUpdate::for_collector(&self.collector_id);
            let reason = format!(
                "no own_metrics push reported export failures for {:?}",
                EXPORT_FAILURES_FORGOTTEN_AFTER
            );
            self.change_status(next, now, &reason, &mut update);
            if update != ActivityUpdate::for_collector(&self.collector_id) {
                self.publish(update);
            }
        }
        self.flush_auth_failures(now);
        self.write_due_reports(now, false);
        let idle = self.env.clock.since(self.last_activity) >= self.env.settings.passivate_after;
        if idle
            && !self.status.expects_polls()
            && self.pending_auth_failures == 0
            && !self.has_unwritten_reports()
        {
            ctx.stop();
        }
    }
}

/// Alloy sent a status of its own (≥ 1.12): it decides events and status, not the inference.
fn reports_status(remote: Option<RemoteConfigState>) -> bool {
    matches!(
        remote,
        Some(RemoteConfigState::Applied | RemoteConfigState::Applying | RemoteConfigState::Failed)
    )
}

/// The latest inference says the delivered config was refused, and Alloy reports nothing itself.
fn inferred_failure(remote: Option<RemoteConfigState>, inferred: Option<&InferredApply>) -> bool {
    !reports_status(remote) && inferred.is_some_and(|inferred| inferred.outcome == InferredOutcome::Failed)
}

/// A fingerprint of a collector's attributes (in this process only), so an actor notices a change
/// without keeping a copy of what the record holds.
fn attributes_fingerprint(attributes: &BTreeMap<String, String>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    attributes.hash(&mut hasher);
    hasher.finish()
}

fn text_hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::CollectorSettings;
    use crate::metrics::StatusChanges;
    use crate::model::{CollectorMode, ManualClock};
    use crate::own_metrics::extract;
    use crate::own_metrics::otlp_values::test_otlp::{counter, number, request, text};

    const COLLECTOR: &str = "col_test";
    /// The slot epoch the harness activates its actor with.
    const HARNESS_EPOCH: SlotEpoch = SlotEpoch(7);
    const SECOND: Duration = Duration::from_secs(1);

    /// Stands in for the activity writer: keeps what the actor publishes until the test takes it.
    #[derive(Default)]
    struct Recorder {
        updates: Vec<ActivityUpdate>,
    }

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Handler<RecordActivity> for Recorder {
        type Result = ();

        fn handle(&mut self, RecordActivity(update): RecordActivity, _ctx: &mut Self::Context) {
            self.updates.push(update);
        }
    }

    #[derive(Message)]
    #[rtype(result = "Vec<ActivityUpdate>")]
    struct Take;

    impl Handler<Take> for Recorder {
        type Result = MessageResult<Take>;

        fn handle(&mut self, _: Take, _ctx: &mut Self::Context) -> Self::Result {
            MessageResult(std::mem::take(&mut self.updates))
        }
    }

    /// One collector actor on a real single-node Raft, with a manual clock and its published activity
    /// recorded. Ticks come only from the test: the interval is an hour.
    struct Harness {
        time: ManualClock,
        actor: Addr<CollectorActor>,
        recorder: Addr<Recorder>,
        resident: Arc<ActorShards<CollectorActor>>,
        status_changes: StatusChanges,
        _data: tempfile::TempDir,
    }

    impl Harness {
        /// Settings: expected poll every 60 s until learned (at least 10 s), stale after 3 missed,
        /// passivated after 600 s idle, `last_seen_at` written every 300 s.
        async fn start(status: CollectorStatus) -> Harness {
            let data = tempfile::tempdir().expect("temp dir");
            let (effects, _) = tokio::sync::mpsc::unbounded_channel();
            let (raft, data_key) = crate::raft::testing::one_node(data.path(), effects).await;
            let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
            let recorder = Recorder::default().start();
            let settings =
                CollectorSettings { tick_interval: Duration::from_secs(3600), ..Default::default() };
            let status_changes = StatusChanges::default();
            let env = Arc::new(ActorEnv {
                raft,
                writer: recorder.clone().recipient(),
                settings,
                data_key,
                clock: time.clock(),
                status_changes: status_changes.clone(),
            });
            let mut record = CollectorRecord::new(
                COLLECTOR.into(),
                "edge-1".into(),
                CollectorMode::AlloyRemotecfg,
                BTreeMap::new(),
                time.clock().now(),
            );
            record.status = status;
            let resident = Arc::new(ActorShards::new());
            let actor = CollectorActor::from_record(&record, HARNESS_EPOCH, env, resident.clone()).start();
            resident.shard(COLLECTOR).lock().insert(COLLECTOR.into(), actor.clone());
            Harness { time, actor, recorder, resident, status_changes, _data: data }
        }

        fn now(&self) -> UnixMillis {
            self.time.clock().now()
        }

        async fn poll(&self) {
            self.poll_reporting(None, None).await;
        }

        /// A poll as Alloy >= 1.12 sends it after a change: the remote status and the effective config.
        async fn poll_reporting(&self, remote_status: Option<RemoteStatusReport>, effective: Option<&str>) {
            let poll = Poll {
                host_id: "host-1".into(),
                local_attributes: BTreeMap::new(),
                hash: String::new(),
                remote_status,
                effective_config: effective.map(str::to_owned),
                at: self.now(),
                config_version: 0,
            };
            self.actor.send(poll).await.expect("actor");
        }

        async fn poll_failed(&self, error: &str) {
            let failed = RemoteStatusReport {
                state: RemoteConfigState::Failed,
                error: Some(error.into()),
                hash: None,
            };
            self.poll_reporting(Some(failed), None).await;
        }

        async fn flush_pending(&self) {
            self.actor.send(FlushPending).await.expect("actor");
        }

        /// The effective configs written by what the actor published since the last call.
        async fn written_effective_configs(&self) -> Vec<String> {
            self.published().await.into_iter().filter_map(|update| update.effective_config).collect()
        }

        /// The `config_failed` events published since the last call.
        async fn config_failed_events(&self) -> Vec<NewEvent> {
            self.published()
                .await
                .into_iter()
                .flat_map(|update| update.events)
                .filter(|event| event.event_type == EventType::ConfigFailed)
                .collect()
        }

        async fn tick(&self) {
            self.actor.send(Tick).await.expect("actor");
        }

        /// An own_metrics push of one exporter's cumulative sent and failed spans, stamped now.
        async fn push(&self, sent: f64, failed: f64) -> IngestReport {
            let time = self.now().0 * 1_000_000;
            let exporter = || vec![text("component_id", "otelcol.exporter.otlphttp.dst_1")];
            let batch = extract(&request(vec![
                counter("otelcol_exporter_sent_spans_total", vec![number(exporter(), 0, time, sent)]),
                counter(
                    "otelcol_exporter_send_failed_spans_total",
                    vec![number(exporter(), 0, time, failed)],
                ),
            ]));
            self.actor.send(PushMetrics { batch: Arc::new(batch), at: self.now() }).await.expect("actor")
        }

        /// What the actor published since the last call (messages between two actors on one thread
        /// arrive in the order sent, so everything published before this request is in).
        async fn published(&self) -> Vec<ActivityUpdate> {
            self.recorder.send(Take).await.expect("recorder")
        }

        async fn statuses(&self) -> Vec<CollectorStatus> {
            self.published().await.iter().filter_map(|update| update.status).collect()
        }

        async fn live(&self) -> LiveView {
            self.actor.send(Observe).await.expect("actor")
        }
    }

    #[actix::test]
    async fn reported_attributes_are_written_once_per_change_and_shown_live_before_the_write() {
        let harness = Harness::start(CollectorStatus::Connected).await;
        let attributes =
            |version: &str| BTreeMap::from([("collector.version".to_owned(), version.to_owned())]);
        let poll = |local_attributes: BTreeMap<String, String>| Poll {
            host_id: "host-1".into(),
            local_attributes,
            hash: String::new(),
            remote_status: None,
            effective_config: None,
            at: harness.now(),
            config_version: 0,
        };
        let written = |updates: Vec<ActivityUpdate>| -> Vec<BTreeMap<String, String>> {
            updates.into_iter().filter_map(|update| update.local_attributes).collect()
        };

        harness.actor.send(poll(attributes("v1.9.0"))).await.expect("actor");
        assert_eq!(written(harness.published().await), [attributes("v1.9.0")]);
        assert_eq!(harness.live().await.local_attributes, attributes("v1.9.0"), "live before any write");

        harness.actor.send(poll(attributes("v1.9.0"))).await.expect("actor");
        harness.actor.send(poll(BTreeMap::new())).await.expect("actor");
        assert_eq!(written(harness.published().await), Vec::<BTreeMap<String, String>>::new());

        harness.actor.send(poll(attributes("v1.10.0"))).await.expect("actor");
        assert_eq!(written(harness.published().await), [attributes("v1.10.0")]);
        assert_eq!(harness.live().await.local_attributes, attributes("v1.10.0"));
    }

    #[actix::test]
    async fn a_polling_collector_turns_stale_only_after_three_missed_expected_polls() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        let published = harness.published().await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].status, Some(CollectorStatus::Connected));
        assert_eq!(published[0].last_seen_at, Some(harness.now()));
        assert!(published[0].events.iter().any(|event| event.event_type == EventType::StatusChanged));
        assert_eq!(published[0].slot_epoch, HARNESS_EPOCH, "stamped with the epoch it was activated in");

        harness.time.advance(3 * 60 * SECOND);
        harness.tick().await;
        assert_eq!(harness.statuses().await, [], "three intervals of 60 s are not yet missed");
        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        assert_eq!(harness.statuses().await, [CollectorStatus::Stale]);
        assert_eq!(harness.live().await.status, CollectorStatus::Stale);

        harness.poll().await;
        assert_eq!(harness.statuses().await, [CollectorStatus::Connected], "a poll brings it back");
        let counted = |from, to| harness.status_changes.count(from, to);
        assert_eq!(counted("awaiting_connection", "connected"), 1);
        assert_eq!(counted("connected", "stale"), 1);
        assert_eq!(counted("stale", "connected"), 1);
        assert_eq!(counted("connected", "offline"), 0);
    }

    #[actix::test]
    async fn the_expected_interval_is_learned_from_the_polls() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        for _ in 0..2 {
            harness.time.advance(20 * SECOND);
            harness.poll().await;
        }
        // Alloy's extra GetConfig right after a status report says nothing about its cadence.
        harness.time.advance(Duration::from_millis(50));
        harness.poll().await;
        assert_eq!(harness.live().await.expected_poll_interval, 20 * SECOND);
        let _ = harness.published().await;

        harness.time.advance(3 * 20 * SECOND);
        harness.tick().await;
        assert_eq!(harness.statuses().await, [], "exactly three learned intervals");
        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        assert_eq!(harness.statuses().await, [CollectorStatus::Stale], "long before the 60 s default would");
    }

    #[actix::test]
    async fn last_seen_is_written_at_most_every_persist_interval() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        let first_seen = harness.now();
        assert_eq!(harness.published().await[0].last_seen_at, Some(first_seen));

        let mut polled_at = Vec::new();
        for _ in 0..4 {
            harness.time.advance(60 * SECOND);
            harness.poll().await;
            polled_at.push(harness.now());
        }
        assert_eq!(
            harness.published().await,
            [],
            "an unchanged collector polling within 300 s writes nothing"
        );
        assert_eq!(
            harness.live().await.last_seen_at,
            polled_at.last().copied(),
            "yet the live view is current"
        );

        harness.time.advance(60 * SECOND);
        harness.poll().await;
        let published = harness.published().await;
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].last_seen_at, Some(harness.now()));
        assert_eq!(published[0].status, None);
    }

    #[actix::test]
    async fn an_idle_actor_not_expecting_polls_stops_after_the_passivation_delay() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.time.advance(600 * SECOND - Duration::from_millis(1));
        harness.tick().await;
        assert!(harness.actor.connected(), "not idle long enough");

        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        for _ in 0..1000 {
            if !harness.actor.connected() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(!harness.actor.connected(), "the actor stopped");
        assert!(harness.resident.get(COLLECTOR).is_none(), "and left the resident table");
        assert_eq!(harness.published().await, [], "passivation is not an event");
    }

    #[actix::test]
    async fn a_connected_actor_stays_resident_however_long_it_is_idle() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        for _ in 0..20 {
            harness.time.advance(60 * SECOND);
            harness.poll().await;
            harness.tick().await;
        }
        assert!(harness.actor.connected());
        assert_eq!(harness.live().await.status, CollectorStatus::Connected);
    }

    #[actix::test]
    async fn reported_export_failures_degrade_until_ten_minutes_pass_without_a_report() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        assert_eq!(harness.push(100.0, 0.0).await.exports_failing, None, "one point gives no increase");
        harness.time.advance(10 * SECOND);
        assert_eq!(harness.push(150.0, 10.0).await.exports_failing, Some(true));
        let statuses = harness.statuses().await;
        assert_eq!(statuses, [CollectorStatus::Connected, CollectorStatus::Degraded]);

        // Polls keep it degraded (and alive) while no push says the failures stopped.
        for _ in 0..9 {
            harness.time.advance(60 * SECOND);
            harness.poll().await;
            harness.tick().await;
        }
        harness.time.advance(60 * SECOND - Duration::from_millis(1));
        harness.poll().await;
        harness.tick().await;
        assert_eq!(harness.statuses().await, [], "599.999 s after the last report");

        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        let published = harness.published().await;
        assert_eq!(
            published.iter().filter_map(|update| update.status).collect::<Vec<_>>(),
            [CollectorStatus::Connected]
        );
        let reason = &published[0].events[0].message;
        assert!(reason.contains("no own_metrics push reported export failures"), "{reason}");
    }

    #[actix::test]
    async fn a_push_that_shows_failures_stopped_restores_the_status_at_once() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll().await;
        harness.push(100.0, 0.0).await;
        harness.time.advance(10 * SECOND);
        harness.push(150.0, 10.0).await;
        harness.time.advance(10 * SECOND);
        assert_eq!(harness.push(200.0, 10.0).await.exports_failing, Some(false));
        let statuses = harness.statuses().await;
        assert_eq!(
            statuses,
            [CollectorStatus::Connected, CollectorStatus::Degraded, CollectorStatus::Connected]
        );
    }

    #[actix::test]
    async fn a_changed_effective_config_is_written_at_most_once_per_interval_and_the_latest_wins() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll_reporting(None, Some("config a")).await;
        assert_eq!(harness.written_effective_configs().await, ["config a"], "the first one at once");

        for (step, text) in ["config b", "config c", "config d"].iter().enumerate() {
            harness.time.advance(10 * SECOND);
            harness.poll_reporting(None, Some(text)).await;
            harness.tick().await;
            assert_eq!(harness.written_effective_configs().await, Vec::<String>::new(), "step {step}");
        }
        harness.time.advance(30 * SECOND - Duration::from_millis(1));
        harness.tick().await;
        assert_eq!(
            harness.written_effective_configs().await,
            Vec::<String>::new(),
            "59.999 s after the write"
        );
        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        assert_eq!(harness.written_effective_configs().await, ["config d"], "only the latest, on the tick");

        // The same text again is no change, however much time passes.
        harness.time.advance(600 * SECOND);
        harness.poll_reporting(None, Some("config d")).await;
        harness.tick().await;
        assert_eq!(harness.written_effective_configs().await, Vec::<String>::new());

        // Back to what was last written before the interval passed: nothing is left to write.
        harness.poll_reporting(None, Some("config e")).await;
        assert_eq!(harness.written_effective_configs().await, ["config e"], "due: written with the poll");
        harness.time.advance(SECOND);
        harness.poll_reporting(None, Some("config f")).await;
        harness.poll_reporting(None, Some("config e")).await;
        harness.time.advance(120 * SECOND);
        harness.tick().await;
        assert_eq!(harness.written_effective_configs().await, Vec::<String>::new(), "config e is written");
    }

    #[actix::test]
    async fn the_shutdown_flush_writes_the_effective_config_still_waiting_for_its_interval() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll_reporting(None, Some("config a")).await;
        harness.time.advance(SECOND);
        harness.poll_reporting(None, Some("config b")).await;
        assert_eq!(harness.written_effective_configs().await, ["config a"]);
        harness.flush_pending().await;
        assert_eq!(harness.written_effective_configs().await, ["config b"]);
        harness.flush_pending().await;
        assert_eq!(harness.written_effective_configs().await, Vec::<String>::new(), "nothing left");
    }

    #[actix::test]
    async fn repeated_config_failures_are_folded_into_one_event_per_interval_while_the_error_stays_exact() {
        let harness = Harness::start(CollectorStatus::AwaitingConnection).await;
        harness.poll_failed("error 1").await;
        let events = harness.config_failed_events().await;
        assert_eq!(events.len(), 1, "the first failure is an event at once");
        assert_eq!(events[0].data["error"], "error 1");
        assert_eq!(events[0].data["count"], 1);

        for n in 2..=6 {
            harness.time.advance(5 * SECOND);
            harness.poll_failed(&format!("error {n}")).await;
            let live = harness.live().await;
            assert_eq!(live.remote_status, Some(RemoteConfigState::Failed));
            assert_eq!(live.remote_error.as_deref(), Some(format!("error {n}").as_str()), "live and exact");
            let published = harness.published().await;
            let reported: Vec<_> =
                published.iter().filter_map(|update| update.remote_status.clone()).collect();
            assert_eq!(reported.len(), 1, "the status is still written: {published:?}");
            assert_eq!(reported[0].error.as_deref(), Some(format!("error {n}").as_str()));
            assert!(
                published
                    .iter()
                    .all(|update| update.events.iter().all(|e| e.event_type != EventType::ConfigFailed)),
                "no event for failure {n}"
            );
        }
        // A repeated report of the same error is no new failure.
        harness.poll_failed("error 6").await;
        harness.time.advance(35 * SECOND - Duration::from_millis(1));
        harness.tick().await;
        assert_eq!(harness.config_failed_events().await, [], "59.999 s after the event");

        harness.time.advance(Duration::from_millis(1));
        harness.tick().await;
        let events = harness.config_failed_events().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data["error"], "error 6", "the latest error");
        assert_eq!(events[0].data["count"], 5, "and how many reports it stands for");
        assert!(events[0].message.contains("the latest of 5 failed reports"), "{}", events[0].message);

        harness.time.advance(SECOND);
        harness.poll_failed("error 7").await;
        assert_eq!(harness.config_failed_events().await, [], "within the interval of the folded event");
        harness.flush_pending().await;
        let events = harness.config_failed_events().await;
        assert_eq!(events.len(), 1, "the shutdown flush writes it");
        assert_eq!(
            (events[0].data["error"].as_str(), events[0].data["count"].as_u64()),
            (Some("error 7"), Some(1))
        );
    }
}
