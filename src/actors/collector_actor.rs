//! `CollectorActor`: the live state of one collector.
//!
//! Message delivery: polls, registrations, own_metrics pushes and observations are answered (`send`);
//! auth-failure notices, re-render and stop requests may be dropped under pressure (`do_send`) because
//! the next poll or the replicated record repairs whatever they would have told.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::activity_writer::RecordActivity;
use super::env::{ActorEnv, ActorShards};
use super::liveness::{status_after_contact, status_after_silence, PollCadence};
use super::throughput::{
    status_after_export_report, IngestReport, ThroughputSnapshot, ThroughputState,
    EXPORT_FAILURES_FORGOTTEN_AFTER,
};
use crate::model::command::{Delivered, RemoteStatusReport};
use crate::model::event::NewEvent;
use crate::model::fleet_state::FleetState;
use crate::model::{
    ActivityUpdate, CollectorRecord, CollectorStatus, EventType, RemoteConfigState, UnixMillis,
};
use crate::own_metrics::MetricsBatch;
use crate::render::render_for_delivery;
use crate::render::secrets::{redact, CredentialValues};

pub struct CollectorActor {
    collector_id: String,
    env: Arc<ActorEnv>,
    /// The registry's table of resident actors, which this actor leaves when it stops.
    resident: Arc<ActorShards<CollectorActor>>,
    status: CollectorStatus,
    host_id: Option<String>,
    host_last_seen: Option<UnixMillis>,
    local_attributes: BTreeMap<String, String>,
    rendered: Arc<DeliverableConfig>,
    delivered_hash: Option<String>,
    applied_hash: Option<String>,
    remote_status: Option<RemoteConfigState>,
    remote_error: Option<String>,
    effective_config: Option<String>,
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
    throughput: ThroughputState,
    /// Whether the last own_metrics push that said so reported increasing export failures.
    exports_failing: bool,
    /// When `exports_failing` was last set or confirmed.
    last_export_report: Instant,
    /// Whether `own_metrics_first_seen` was ever recorded for this collector.
    own_metrics_seen: bool,
    own_metrics_last_seen_at: Option<UnixMillis>,
}

/// A GetConfig poll, already authenticated as this collector.
#[derive(Message, Clone)]
#[rtype(result = "PollReply")]
pub struct Poll {
    pub host_id: String,
    pub local_attributes: BTreeMap<String, String>,
    pub hash: String,
    pub remote_status: Option<RemoteStatusReport>,
    pub effective_config: Option<String>,
    pub at: UnixMillis,
}

pub struct PollReply {
    pub rendered: Arc<DeliverableConfig>,
    pub not_modified: bool,
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
        }
    }

    /// Text the collector reported (its effective config, an error), as it may be stored: the
    /// delivered config itself is stored as rendered with markers (which covers credentials of any
    /// length); other text has every credential value replaced by its marker, or is withheld
    /// when a value too short to replace is left in it.
    fn storable(&self, reported: &str) -> String {
        if reported == self.content {
            return self.stored_content.clone();
        }
        let redaction = redact(reported, &self.credentials);
        if redaction.short_value_left {
            WITHHELD_REPORT.to_owned()
        } else {
            redaction.text
        }
    }

    /// Renders the current version again with the decrypted credentials: they are written only
    /// where the renderer puts credentials, never wherever marker-like text appears.
    fn render(fleet: &FleetState, record: &CollectorRecord, env: &ActorEnv) -> Self {
        let Some(current) = record.current_config() else {
            return DeliverableConfig::empty();
        };
        let mut values = CredentialValues::default();
        for destination in record.destinations.values() {
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
        let rendered = render_for_delivery(&fleet.render_input(record), &values);
        if rendered.stored.hash != current.hash {
            // Only after an upgrade whose renderer writes this model differently: the version
            // keeps its hash until the model changes, and new deliveries get this build's text.
            tracing::warn!(
                collector_id = %record.id,
                version = current.version,
                "config version was rendered by another build; delivering this build's rendering"
            );
        }
        DeliverableConfig {
            version: current.version,
            hash: current.hash.clone(),
            content: rendered.content,
            stored_content: rendered.stored.content,
            credentials: values,
        }
    }
}

#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Register {
    pub host_id: String,
    pub name: String,
    pub local_attributes: BTreeMap<String, String>,
    pub at: UnixMillis,
}

#[derive(Message, Clone)]
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

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl CollectorActor {
    pub(super) fn from_record(
        record: &CollectorRecord,
        env: Arc<ActorEnv>,
        resident: Arc<ActorShards<CollectorActor>>,
    ) -> Self {
        let settings = &env.settings;
        let mut cadence = PollCadence::new(settings.default_poll_interval, settings.min_poll_interval);
        let now = UnixMillis::now();
        if record.status.expects_polls() {
            // Rebuilt after a restart or failover: give the collector a full window before calling it stale.
            cadence.record_poll(now);
        }
        CollectorActor {
            collector_id: record.id.clone(),
            status: record.status,
            host_id: record.host_id.clone(),
            host_last_seen: record.last_seen_at,
            local_attributes: record.local_attributes.clone(),
            // Rendered in `started`, before the first message: rendering needs the fleet-wide
            // pipelines, and the registry holds the state lock while it builds the actor.
            rendered: Arc::new(DeliverableConfig::empty()),
            delivered_hash: record.config.delivered_hash.clone(),
            applied_hash: None,
            remote_status: record.config.remote_status,
            remote_error: record.config.remote_error.clone(),
            effective_config: record.config.effective_config.clone(),
            cadence,
            last_seen_persisted: record.last_seen_at,
            last_register_at: None,
            redelivery_due: true,
            last_activity: Instant::now(),
            pending_auth_failures: 0,
            last_auth_event_at: None,
            last_conflict_event_at: None,
            throughput: ThroughputState::default(),
            // Rebuilt while degraded by something other than a failed config: export failures, which
            // the next push confirms or clears.
            exports_failing: record.status == CollectorStatus::Degraded
                && record.config.remote_status != Some(RemoteConfigState::Failed),
            last_export_report: Instant::now(),
            own_metrics_seen: record
                .events
                .iter()
                .any(|event| event.event_type == EventType::OwnMetricsFirstSeen),
            own_metrics_last_seen_at: None,
            env,
            resident,
        }
    }

    /// Replaces credentials in an effective config stored before reports were redacted.
    fn scrub_stored_effective_config(&mut self) {
        let Some(stored) = &self.effective_config else { return };
        let scrubbed = redact(stored, &self.rendered.credentials).text;
        if scrubbed != *stored {
            let mut update = ActivityUpdate::for_collector(&self.collector_id);
            update.effective_config = Some(scrubbed.clone());
            self.effective_config = Some(scrubbed);
            self.publish(update);
        }
    }

    /// Renders the current version with its credentials from this node's replica.
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

    fn publish(&self, update: ActivityUpdate) {
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
        self.last_activity = Instant::now();
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
        let changed = self.remote_status != Some(report.state) || self.remote_error != report.error;
        match report.state {
            RemoteConfigState::Applied if self.applied_hash != self.delivered_hash || changed => {
                self.applied_hash = self.delivered_hash.clone();
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
            RemoteConfigState::Failed if changed => {
                let error = report.error.clone().unwrap_or_default();
                update.events.push(
                    NewEvent::new(
                        at,
                        EventType::ConfigFailed,
                        format!(
                            "collector failed to apply config version {}: {error}",
                            self.rendered.version
                        ),
                    )
                    .with("version", self.rendered.version)
                    .with("error", error),
                );
            }
            _ => {}
        }
        if changed {
            self.remote_status = Some(report.state);
            self.remote_error = report.error.clone();
            update.remote_status = Some(report.clone());
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
        let at = poll.at;
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.cadence.record_poll(at);
        self.observe_host(&poll.host_id, at, &mut update);
        if !poll.local_attributes.is_empty() && poll.local_attributes != self.local_attributes {
            self.local_attributes = poll.local_attributes.clone();
            update.local_attributes = Some(poll.local_attributes);
        }
        if let Some(report) = &poll.remote_status {
            let error = report.error.as_deref().map(|error| self.rendered.storable(error));
            self.record_remote_status(&RemoteStatusReport { error, ..report.clone() }, at, &mut update);
        }
        if let Some(effective) = poll.effective_config {
            let effective = self.rendered.storable(&effective);
            if self.effective_config.as_ref() != Some(&effective) {
                self.effective_config = Some(effective.clone());
                update.effective_config = Some(effective);
            }
        }
        let remote = poll.remote_status.as_ref().map(|report| report.state);
        self.note_contact(at, remote, &mut update);

        let not_modified = !poll.hash.is_empty() && poll.hash == self.rendered.hash;
        let new_delivery =
            self.delivered_hash.as_deref() != Some(self.rendered.hash.as_str()) || self.redelivery_due;
        if !not_modified && new_delivery {
            self.redelivery_due = false;
            self.delivered_hash = Some(self.rendered.hash.clone());
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
        if update != ActivityUpdate::for_collector(&self.collector_id) {
            self.publish(update);
        }
        MessageResult(PollReply { rendered: self.rendered.clone(), not_modified })
    }
}

impl Handler<Register> for CollectorActor {
    type Result = ();

    fn handle(&mut self, register: Register, _ctx: &mut Self::Context) {
        let at = register.at;
        self.redelivery_due = true;
        let mut update = ActivityUpdate::for_collector(&self.collector_id);
        self.observe_host(&register.host_id, at, &mut update);
        if register.local_attributes != self.local_attributes {
            self.local_attributes = register.local_attributes.clone();
            update.local_attributes = Some(register.local_attributes.clone());
        }
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
        self.last_activity = Instant::now();
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
            local_attributes: self.local_attributes.clone(),
            delivered_hash: self.delivered_hash.clone(),
            remote_status: self.remote_status,
            remote_error: self.remote_error.clone(),
            expected_poll_interval: self.cadence.expected_interval(),
            own_metrics_last_seen_at: self.own_metrics_last_seen_at,
        })
    }
}

impl Handler<PushMetrics> for CollectorActor {
    type Result = MessageResult<PushMetrics>;

    fn handle(&mut self, push: PushMetrics, _ctx: &mut Self::Context) -> Self::Result {
        let at = push.at;
        self.last_activity = Instant::now();
        let report = self.throughput.ingest(&push.batch, at);
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
        if let Some(failing) = report.exports_failing {
            self.last_export_report = Instant::now();
            let was_failing = std::mem::replace(&mut self.exports_failing, failing);
            let config_failed = self.remote_status == Some(RemoteConfigState::Failed);
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
        MessageResult(self.throughput.snapshot(observe.history))
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

impl Handler<Tick> for CollectorActor {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        let now = UnixMillis::now();
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
        if self.exports_failing && self.last_export_report.elapsed() >= EXPORT_FAILURES_FORGOTTEN_AFTER {
            self.exports_failing = false;
            let config_failed = self.remote_status == Some(RemoteConfigState::Failed);
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
        let idle = self.last_activity.elapsed() >= self.env.settings.passivate_after;
        if idle && !self.status.expects_polls() && self.pending_auth_failures == 0 {
            ctx.stop();
        }
    }
}
