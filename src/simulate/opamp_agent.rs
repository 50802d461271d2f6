//! One simulated OpenTelemetry Collector's OpAMP agent (pure): what it tells the server and how it
//! answers what the server sends, whichever transport carries the messages (`opamp_push.rs`: a
//! WebSocket, or plain-HTTP polling at the offered heartbeat interval).
//!
//! It behaves as the `opampsupervisor` does for the parts linkmesh reads: its first message is its
//! full state (capabilities, description, health, the effective config it runs); an offered config it
//! does not run is reported `APPLYING`, then `APPLIED` with that config as its effective config; a
//! `ReportFullState` flag is answered with the full state again; the heartbeat interval and the
//! own-metrics destination of `connection_settings` are kept for its transport and its pusher.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::own_metrics::text;
use crate::proto::opamp::v1 as pb;

/// What every simulated agent reports: status, remote config and its status, effective config,
/// health and own metrics (the supervisor's set, less restarts and components).
const CAPABILITIES: u64 = pb::AgentCapabilities::ReportsStatus as u64
    | pb::AgentCapabilities::AcceptsRemoteConfig as u64
    | pb::AgentCapabilities::ReportsEffectiveConfig as u64
    | pb::AgentCapabilities::ReportsOwnMetrics as u64
    | pb::AgentCapabilities::ReportsHealth as u64
    | pb::AgentCapabilities::ReportsRemoteConfig as u64;

/// The collector build the agents describe.
const SERVICE_NAME: &str = "otelcol-contrib";
const SERVICE_VERSION: &str = "0.149.0";

/// Where the server asked the agent to push its own metrics (`connection_settings.own_metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMetricsDestination {
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
}

/// What a server message made the agent do.
#[derive(Debug, Default)]
pub struct Reaction {
    /// To send, in order.
    pub messages: Vec<pb::AgentToServer>,
    /// A config the agent did not run arrived (what `--opamp-push` times).
    pub new_config: bool,
}

/// One agent's state.
#[derive(Debug)]
pub struct SimAgent {
    instance_uid: Vec<u8>,
    sequence_num: u64,
    capabilities: u64,
    host_name: String,
    start_unix_nanos: u64,
    running_hash: Vec<u8>,
    running_config: Option<pb::AgentConfigMap>,
    heartbeat_interval: Option<Duration>,
    own_metrics: Option<OwnMetricsDestination>,
}

impl SimAgent {
    /// `reports_heartbeat`: a plain-HTTP agent reports heartbeats (it polls at their interval, which
    /// the server offers only to agents that report them); a WebSocket agent stays silent between
    /// changes.
    pub fn new(
        instance_uid: Vec<u8>,
        host_name: String,
        reports_heartbeat: bool,
        start_unix_nanos: u64,
    ) -> Self {
        let heartbeat = if reports_heartbeat { pb::AgentCapabilities::ReportsHeartbeat as u64 } else { 0 };
        SimAgent {
            instance_uid,
            sequence_num: 0,
            capabilities: CAPABILITIES | heartbeat,
            host_name,
            start_unix_nanos,
            running_hash: Vec::new(),
            running_config: None,
            heartbeat_interval: None,
            own_metrics: None,
        }
    }

    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat_interval
    }

    pub fn own_metrics(&self) -> Option<&OwnMetricsDestination> {
        self.own_metrics.as_ref()
    }

    /// The next message's frame: instance uid, sequence number, capabilities.
    fn message(&mut self) -> pb::AgentToServer {
        let message = pb::AgentToServer {
            instance_uid: self.instance_uid.clone(),
            sequence_num: self.sequence_num,
            capabilities: self.capabilities,
            ..Default::default()
        };
        self.sequence_num += 1;
        message
    }

    /// Everything the agent reports of itself: its first message, and the answer to `ReportFullState`.
    pub fn full_state(&mut self) -> pb::AgentToServer {
        let mut message = self.message();
        message.agent_description = Some(pb::AgentDescription {
            identifying_attributes: vec![
                key_value("service.name", SERVICE_NAME),
                key_value("service.version", SERVICE_VERSION),
            ],
            non_identifying_attributes: vec![
                key_value("host.name", &self.host_name),
                key_value("os.type", "linux"),
            ],
        });
        message.health = Some(self.health());
        message.effective_config = Some(self.effective_config());
        if !self.running_hash.is_empty() {
            message.remote_config_status = Some(self.remote_config_status(pb::RemoteConfigStatuses::Applied));
        }
        message
    }

    /// A heartbeat: nothing changed.
    pub fn heartbeat(&mut self) -> pb::AgentToServer {
        self.message()
    }

    /// How the agent answers `reply`.
    pub fn on_reply(&mut self, reply: &pb::ServerToAgent) -> Reaction {
        let mut reaction = Reaction::default();
        if let Some(offers) = &reply.connection_settings {
            if let Some(opamp) = offers.opamp.as_ref().filter(|opamp| opamp.heartbeat_interval_seconds > 0) {
                self.heartbeat_interval = Some(Duration::from_secs(opamp.heartbeat_interval_seconds));
            }
            if let Some(own) = offers.own_metrics.as_ref().filter(|own| !own.destination_endpoint.is_empty())
            {
                let headers = own.headers.iter().flat_map(|headers| &headers.headers);
                self.own_metrics = Some(OwnMetricsDestination {
                    endpoint: own.destination_endpoint.clone(),
                    headers: headers.map(|header| (header.key.clone(), header.value.clone())).collect(),
                });
            }
        }
        if reply.flags & pb::ServerToAgentFlags::ReportFullState as u64 != 0 {
            reaction.messages.push(self.full_state());
        }
        if let Some(offer) =
            reply.remote_config.as_ref().filter(|offer| offer.config_hash != self.running_hash)
        {
            reaction.new_config = true;
            self.running_hash = offer.config_hash.clone();
            let mut applying = self.message();
            applying.remote_config_status =
                Some(self.remote_config_status(pb::RemoteConfigStatuses::Applying));
            reaction.messages.push(applying);
            self.running_config = offer.config.clone();
            let mut applied = self.message();
            applied.remote_config_status = Some(self.remote_config_status(pb::RemoteConfigStatuses::Applied));
            applied.effective_config = Some(self.effective_config());
            applied.health = Some(self.health());
            reaction.messages.push(applied);
        }
        reaction
    }

    fn health(&self) -> pb::ComponentHealth {
        pb::ComponentHealth {
            healthy: true,
            start_time_unix_nano: self.start_unix_nanos,
            status: "StatusOK".to_owned(),
            ..Default::default()
        }
    }

    fn effective_config(&self) -> pb::EffectiveConfig {
        pb::EffectiveConfig { config_map: Some(self.running_config.clone().unwrap_or_default()) }
    }

    fn remote_config_status(&self, status: pb::RemoteConfigStatuses) -> pb::RemoteConfigStatus {
        pb::RemoteConfigStatus {
            last_remote_config_hash: self.running_hash.clone(),
            status: status as i32,
            error_message: String::new(),
        }
    }

    /// What its own-metrics pusher needs of it.
    pub fn own_metrics_source(&self) -> OwnMetricsSource {
        OwnMetricsSource {
            instance_id: self.instance_uid.iter().map(|byte| format!("{byte:02x}")).collect(),
            start_unix_nanos: self.start_unix_nanos,
        }
    }
}

/// An agent's collector as its own metrics describe it.
#[derive(Debug, Clone)]
pub struct OwnMetricsSource {
    instance_id: String,
    start_unix_nanos: u64,
}

impl OwnMetricsSource {
    /// The collector's own metrics at `now_unix_nanos`, as its `service::telemetry` OTLP exporter
    /// sends them: uptime, and cumulative item counters of the `otlp` receiver and exporter that grow
    /// with uptime (so consecutive pushes give steady rates).
    pub fn request(&self, now_unix_nanos: u64) -> ExportMetricsServiceRequest {
        let uptime_seconds = now_unix_nanos.saturating_sub(self.start_unix_nanos) as f64 / 1e9;
        let point = |attribute: (&str, &str), value: f64| NumberDataPoint {
            attributes: vec![text(attribute.0, attribute.1)],
            start_time_unix_nano: self.start_unix_nanos,
            time_unix_nano: now_unix_nanos,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        };
        let counter = |name: &str, attribute: (&str, &str), value: f64| Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![point(attribute, value)],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let items = (uptime_seconds * 100.0).floor();
        let uptime = Metric {
            name: "otelcol_process_uptime".to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: now_unix_nanos,
                    value: Some(number_data_point::Value::AsDouble(uptime_seconds)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![
                        text("service.name", SERVICE_NAME),
                        text("service.version", SERVICE_VERSION),
                        text("service.instance.id", &self.instance_id),
                    ],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        uptime,
                        counter("otelcol_receiver_accepted_metric_points", ("receiver", "otlp"), items),
                        counter("otelcol_exporter_sent_metric_points", ("exporter", "otlp"), items),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

fn key_value(key: &str, value: &str) -> pb::KeyValue {
    pb::KeyValue {
        key: key.to_owned(),
        value: Some(pb::AnyValue { value: Some(pb::any_value::Value::StringValue(value.to_owned())) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(hash: &[u8], body: &str) -> pb::ServerToAgent {
        let mut config_map = std::collections::HashMap::new();
        config_map.insert(
            String::new(),
            pb::AgentConfigFile { body: body.as_bytes().to_vec(), content_type: "text/yaml".into() },
        );
        pb::ServerToAgent {
            remote_config: Some(pb::AgentRemoteConfig {
                config: Some(pb::AgentConfigMap { config_map }),
                config_hash: hash.to_vec(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_offered_config_is_reported_applying_then_applied_with_it_as_the_effective_config() {
        let mut agent = SimAgent::new(vec![7; 16], "host-1".into(), true, 1);
        let first = agent.full_state();
        assert_eq!(first.sequence_num, 0);
        assert!(first.agent_description.is_some() && first.health.is_some());
        assert_ne!(first.capabilities & pb::AgentCapabilities::ReportsHeartbeat as u64, 0);

        let reaction = agent.on_reply(&offer(b"h1", "receivers: {}"));
        assert!(reaction.new_config);
        let statuses: Vec<i32> = reaction
            .messages
            .iter()
            .map(|message| message.remote_config_status.as_ref().expect("a status").status)
            .collect();
        assert_eq!(
            statuses,
            [pb::RemoteConfigStatuses::Applying as i32, pb::RemoteConfigStatuses::Applied as i32]
        );
        let applied = &reaction.messages[1];
        assert_eq!(applied.sequence_num, 2, "one sequence number per message");
        let effective = applied.effective_config.as_ref().and_then(|config| config.config_map.as_ref());
        assert_eq!(effective.expect("effective config").config_map[""].body, b"receivers: {}");

        let again = agent.on_reply(&offer(b"h1", "receivers: {}"));
        assert!(!again.new_config && again.messages.is_empty(), "the config it runs is not applied again");
    }

    #[test]
    fn connection_settings_and_a_full_state_request_are_followed() {
        let mut agent = SimAgent::new(vec![7; 16], "host-1".into(), false, 1);
        let reply = pb::ServerToAgent {
            flags: pb::ServerToAgentFlags::ReportFullState as u64,
            connection_settings: Some(pb::ConnectionSettingsOffers {
                opamp: Some(pb::OpAmpConnectionSettings {
                    heartbeat_interval_seconds: 5,
                    ..Default::default()
                }),
                own_metrics: Some(pb::TelemetryConnectionSettings {
                    destination_endpoint: "http://lm/v1/metrics".into(),
                    headers: Some(pb::Headers {
                        headers: vec![pb::Header {
                            key: "Authorization".into(),
                            value: "Bearer lmoc_x".into(),
                        }],
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let reaction = agent.on_reply(&reply);
        assert_eq!(reaction.messages.len(), 1);
        assert!(reaction.messages[0].agent_description.is_some(), "the full state");
        assert_eq!(agent.heartbeat_interval(), Some(Duration::from_secs(5)));
        let destination = agent.own_metrics().expect("own metrics destination");
        assert_eq!(destination.endpoint, "http://lm/v1/metrics");
        assert_eq!(destination.headers, [("Authorization".to_owned(), "Bearer lmoc_x".to_owned())]);
        let metrics = agent.own_metrics_source().request(2_000_000_001);
        assert_eq!(metrics.resource_metrics[0].scope_metrics[0].metrics.len(), 3);
    }
}
