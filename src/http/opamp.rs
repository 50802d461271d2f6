//! OpAMP on `/v1/opamp` for upstream OpenTelemetry Collectors (the `opampsupervisor`, or any OpAMP
//! agent). Plain-HTTP transport here: each POST carries one `AgentToServer` (`Content-Type:
//! application/x-protobuf`, body gzip or identity) and is answered with one `ServerToAgent` (200,
//! exactly that content type: the Node client refuses anything else). A GET asking for a WebSocket
//! upgrade is the other transport (`opamp_ws.rs`), which answers each message the same way and also
//! pushes config changes.
//!
//! `Authorization: Bearer <collector token>` of an `opamp` collector, checked before the body is
//! read, as for remotecfg (`collector_auth.rs`); the message then goes to the collector's actor on
//! the owner of its slot, this node's or another's through one forwarded call, which answers what to
//! offer. A body that is not a valid `AgentToServer`, or a message without a valid instance uid, is
//! answered `ServerErrorResponse{BadRequest}` (the agent must not retry it).

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use prost::Message as _;

use super::body::{self, ContentEncoding};
use super::collector_auth::{authenticate_agent, AgentCaller, AuthenticatedCollector, EnrollmentCaller};
use super::collector_service::{bounded_attributes, config_files_text, truncate};
use super::AppState;
use crate::actors::collector_actor::OpampExchange;
use crate::cluster::forward::{self, CollectorRequest, Owner, Routed, WireOpampReply};
use crate::cluster::payload;
use crate::error::{ApiError, ErrorCode};
use crate::model::command::RemoteStatusReport;
use crate::model::{CollectorMode, RemoteConfigState, UnixMillis};
use crate::opamp::components::{AgentHealth, ReportedComponents};
use crate::opamp::{AgentCapabilities, InstanceUid, InstanceUidError, SERVER_CAPABILITIES};
use crate::proto::cluster::v1::CollectorCall;
use crate::proto::opamp::v1 as pb;

pub const OPAMP_PATH: &str = "/v1/opamp";
const PROTOBUF: &str = "application/x-protobuf";
/// Where the agent carries the token, for error messages.
pub(super) const TOKEN_SETTING: &str =
    "the agent's OpAMP server headers (Authorization: Bearer <collector token>)";
/// The content type of the config linkmesh offers.
const CONFIG_CONTENT_TYPE: &str = "text/yaml";
/// Responses at least this long are gzipped when the agent accepts it.
const GZIP_MIN_BYTES: usize = 512;

/// Neither a POST nor a WebSocket upgrade.
pub(super) async fn not_served(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {OPAMP_PATH}; POST an AgentToServer, or open a WebSocket (ws:// or wss://)",
            request.method()
        ),
    ))
}

/// The token must be an `opamp` collector's.
pub(super) fn require_opamp_mode(
    state: &AppState,
    collector: &AuthenticatedCollector,
) -> Result<(), ApiError> {
    let mode = state.raft.state().fleet.collector(&collector.collector_id).map(|record| record.mode);
    if mode == Some(CollectorMode::Opamp) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::FailedPrecondition,
        "this token belongs to an Alloy (remotecfg) collector; an OpenTelemetry Collector needs a collector \
         created with mode \"opamp\"",
    ))
}

/// Order: content type, token (before the body), the collector's mode, its call bucket, the body,
/// then the owner's actor.
pub(super) async fn exchange(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some(PROTOBUF) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("an OpAMP message over plain HTTP is sent as {PROTOBUF}"),
        ));
    }
    let caller = authenticate_agent(&request, &state, TOKEN_SETTING).await?;
    if let AgentCaller::Collector(collector) = &caller {
        require_opamp_mode(&state, collector)?;
        if let Err(refused) = state.registry.admit_call(&collector.collector_id) {
            return Err(refused.into());
        }
    }
    let limit = state.config.max_request_body;
    let content_encoding = ContentEncoding::parse(
        request.headers().get(header::CONTENT_ENCODING).and_then(|value| value.to_str().ok()),
    )?;
    let raw = body::read_limited(&request, payload, limit).await?;
    let message = body::decode(raw, content_encoding, limit)?;
    let message = match pb::AgentToServer::decode(message.as_slice()) {
        Ok(message) => message,
        Err(error) => {
            return Ok(respond(
                &request,
                &bad_request(Vec::new(), format!("malformed AgentToServer: {error}")),
            ))
        }
    };
    let client_addr = super::client_addr::of(&request).to_string();
    let base_url = super::external_url(&request, &state);
    let reached = |enrolled| Reached {
        opamp_endpoint: format!("{base_url}{OPAMP_PATH}"),
        base_url: base_url.clone(),
        enrolled,
    };
    let reply = match caller {
        AgentCaller::Collector(collector) => {
            answer(&state, &collector, message, client_addr, &reached(false)).await?
        }
        AgentCaller::Enrolling(enrolling) => match enrolled_collector(&state, &enrolling, &message).await? {
            Ok(collector) => {
                if let Err(refused) = state.registry.admit_call(&collector.collector_id) {
                    return Err(refused.into());
                }
                answer(&state, &collector, message, client_addr, &reached(true)).await?
            }
            Err(bad) => bad,
        },
    };
    Ok(respond(&request, &reply))
}

/// The collector of an agent that presented an enrollment token (`opamp_enroll.rs`), or the
/// BadRequest reply for a message without a valid instance uid.
pub(super) async fn enrolled_collector(
    state: &AppState,
    caller: &EnrollmentCaller,
    message: &pb::AgentToServer,
) -> Result<Result<AuthenticatedCollector, pb::ServerToAgent>, ApiError> {
    let instance_uid = match InstanceUid::from_wire(&message.instance_uid) {
        Ok(uid) => uid,
        Err(error) => return Ok(Err(bad_request(message.instance_uid.clone(), error.to_string()))),
    };
    let description = message.agent_description.as_ref().map(description_of);
    super::opamp_enroll::resolve(state, caller, instance_uid, description.as_ref()).await.map(Ok)
}

/// How the agent reached this server, for what is offered back to it.
pub(super) struct Reached {
    /// linkmesh's base URL as the agent should use it (`external_url`, else this request's).
    pub base_url: String,
    /// The `/v1/opamp` endpoint the agent uses (`ws(s)://…` over WebSocket).
    pub opamp_endpoint: String,
    /// The agent presented an enrollment token.
    pub enrolled: bool,
}

/// The `ServerToAgent` for one decoded message.
pub(super) async fn answer(
    state: &AppState,
    collector: &AuthenticatedCollector,
    message: pb::AgentToServer,
    client_addr: String,
    reached: &Reached,
) -> Result<pb::ServerToAgent, ApiError> {
    let instance_uid = match InstanceUid::from_wire(&message.instance_uid) {
        Ok(uid) => uid,
        Err(error) => return Ok(bad_request(message.instance_uid, error.to_string())),
    };
    let capabilities = AgentCapabilities(message.capabilities);
    let exchange = exchange_of(instance_uid, message, collector.config_version);
    let reply = ask_owner(state, collector, exchange, client_addr).await?;
    let offers = edge_offers(state, collector, &reply, capabilities, reached);
    Ok(server_to_agent(instance_uid, reply, &offers))
}

/// What the edge adds to the owner's answer: the collector's derived credential for an enrolled
/// agent that accepts OpAMP connection settings, and the own-metrics destination when the owner says
/// it is due (once per agent stream).
pub(super) fn edge_offers(
    state: &AppState,
    collector: &AuthenticatedCollector,
    reply: &WireOpampReply,
    capabilities: AgentCapabilities,
    reached: &Reached,
) -> Offers {
    let wants_credential = reached.enrolled && capabilities.accepts_opamp_connection_settings();
    let derived = (wants_credential || reply.own_metrics)
        .then(|| super::opamp_enroll::derived_credential(state, collector))
        .flatten();
    let credential = derived
        .clone()
        .filter(|_| wants_credential)
        .map(|credential| Destination { endpoint: reached.opamp_endpoint.clone(), credential });
    let own_metrics = derived.filter(|_| reply.own_metrics).map(|credential| Destination {
        endpoint: format!("{}{}", reached.base_url, super::otlp::METRICS_PATH),
        credential,
    });
    Offers {
        credential,
        own_metrics,
        heartbeat_seconds: state.config.collectors.opamp_heartbeat_interval.as_secs(),
    }
}

/// The collector's actor's answer to `exchange`, on this node or from the owner of its slot.
pub(super) async fn ask_owner(
    state: &AppState,
    collector: &AuthenticatedCollector,
    exchange: OpampExchange,
    client_addr: String,
) -> Result<WireOpampReply, ApiError> {
    let collector_id = collector.collector_id.as_str();
    let reply = match forward::owner_of(&state.raft, collector_id) {
        Owner::Here => None,
        owner @ Owner::Peer { .. } => {
            let body = payload::to_json(&exchange)
                .map_err(|error| ApiError::internal("forwarding a call", error))?;
            let forwarded = CollectorRequest {
                call: CollectorCall::Opamp,
                collector_id,
                token_hash: &collector.token_hash,
                body,
                content_type: "application/json",
                client_addr,
            };
            match forward::forward(&state.raft, &state.metrics, owner, forwarded).await {
                Ok(Routed::Remote(body)) => Some(
                    payload::from_json::<WireOpampReply>(&body)
                        .map_err(|error| ApiError::internal("a forwarded OpAMP reply", error))?,
                ),
                Ok(Routed::Local(_)) => None,
                Err(error) => return Err(error.into_api(TOKEN_SETTING)),
            }
        }
    };
    let reply = match reply {
        Some(reply) => reply,
        None => {
            collector.check_served_here(TOKEN_SETTING)?;
            let reply = state
                .registry
                .opamp(collector_id, &collector.token_hash, exchange)
                .await
                .map_err(|error| collector.owner_refusal(state, error, TOKEN_SETTING))?;
            WireOpampReply::of(&reply)
        }
    };
    Ok(reply)
}

/// What the collector's actor gets of a decoded message; an error for an instance uid that is not
/// one (the agent is then answered BadRequest). Public for the fuzz target (`crate::fuzzing`).
pub fn read_message(
    message: pb::AgentToServer,
    config_version: u64,
) -> Result<OpampExchange, InstanceUidError> {
    let instance_uid = InstanceUid::from_wire(&message.instance_uid)?;
    Ok(exchange_of(instance_uid, message, config_version))
}

/// What the actor needs of an `AgentToServer`.
fn exchange_of(instance_uid: InstanceUid, message: pb::AgentToServer, config_version: u64) -> OpampExchange {
    let components = message.available_components.as_ref().and_then(ReportedComponents::of);
    let description = message.agent_description.as_ref().map(description_of);
    let effective_config = message.effective_config.and_then(|effective| {
        let files = effective.config_map.map(|map| map.config_map).unwrap_or_default();
        config_files_text(files.iter().map(|(name, file)| (name.as_str(), file.body.as_slice())).collect())
    });
    let (remote_status, config_hash) = match message.remote_config_status {
        Some(status) => {
            let state = match pb::RemoteConfigStatuses::try_from(status.status) {
                Ok(pb::RemoteConfigStatuses::Applied) => Some(RemoteConfigState::Applied),
                Ok(pb::RemoteConfigStatuses::Applying) => Some(RemoteConfigState::Applying),
                Ok(pb::RemoteConfigStatuses::Failed) => Some(RemoteConfigState::Failed),
                Ok(pb::RemoteConfigStatuses::Unset) | Err(_) => None,
            };
            let error = (!status.error_message.is_empty()).then(|| truncate(status.error_message, 4096));
            let report = state.map(|state| RemoteStatusReport { state, error, hash: None });
            // linkmesh offers the config's hash text as the hash bytes; anything else is not one of its offers.
            (report, Some(String::from_utf8(status.last_remote_config_hash).unwrap_or_default()))
        }
        None => (None, None),
    };
    OpampExchange {
        instance_uid: instance_uid.to_string(),
        sequence_num: message.sequence_num,
        capabilities: message.capabilities,
        description,
        effective_config,
        remote_status,
        config_hash,
        disconnect: message.agent_disconnect.is_some(),
        at: UnixMillis::now(),
        config_version,
        push: false,
        components,
        health: message.health.as_ref().map(AgentHealth::of),
    }
}

/// The agent's attributes, bounded as reported attributes are. Identifying attributes win over
/// non-identifying ones of the same key.
fn description_of(description: &pb::AgentDescription) -> BTreeMap<String, String> {
    let pairs = description.non_identifying_attributes.iter().chain(&description.identifying_attributes);
    bounded_attributes(
        pairs.map(|pair| (pair.key.clone(), any_value_text(pair.value.clone()))).collect::<BTreeMap<_, _>>(),
    )
}

/// An attribute value as text: strings as they are, other scalars in their usual form, lists and
/// maps as JSON (values over the attribute bound are then dropped, as for remotecfg).
fn any_value_text(value: Option<pb::AnyValue>) -> String {
    use pb::any_value::Value;
    match value.and_then(|value| value.value) {
        None => String::new(),
        Some(Value::StringValue(text)) => text,
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        Some(Value::BytesValue(bytes)) => hex::encode(bytes),
        Some(other) => any_value_json(Some(pb::AnyValue { value: Some(other) })).to_string(),
    }
}

fn any_value_json(value: Option<pb::AnyValue>) -> serde_json::Value {
    use pb::any_value::Value;
    match value.and_then(|value| value.value) {
        None => serde_json::Value::Null,
        Some(Value::StringValue(text)) => serde_json::Value::from(text),
        Some(Value::BoolValue(flag)) => serde_json::Value::from(flag),
        Some(Value::IntValue(number)) => serde_json::Value::from(number),
        Some(Value::DoubleValue(number)) => serde_json::Value::from(number),
        Some(Value::BytesValue(bytes)) => serde_json::Value::from(hex::encode(bytes)),
        Some(Value::ArrayValue(array)) => {
            array.values.into_iter().map(|value| any_value_json(Some(value))).collect()
        }
        Some(Value::KvlistValue(list)) => serde_json::Value::Object(
            list.values.into_iter().map(|pair| (pair.key, any_value_json(pair.value))).collect(),
        ),
    }
}

/// The connection settings offered with an answer (see [`edge_offers`]).
pub(super) struct Offers {
    /// The collector's credential, and the `/v1/opamp` endpoint to use it on: the one the agent
    /// reached (the supervisor replaces its whole server config with what is offered).
    pub credential: Option<Destination>,
    /// Where to push the collector's own metrics (`…/v1/metrics`), with its credential.
    pub own_metrics: Option<Destination>,
    /// The heartbeat interval, which must come with any `opamp` settings offer.
    pub heartbeat_seconds: u64,
}

/// An endpoint and the credential to present there.
#[derive(Clone)]
pub(super) struct Destination {
    pub endpoint: String,
    pub credential: String,
}

/// The reply to a message the actor answered. `capabilities` in every reply: plain HTTP has no
/// connection whose first reply would be the only one to need them.
pub(super) fn server_to_agent(
    instance_uid: InstanceUid,
    reply: WireOpampReply,
    offers: &Offers,
) -> pb::ServerToAgent {
    let remote_config = reply.offer.map(|offer| pb::AgentRemoteConfig {
        config: Some(pb::AgentConfigMap {
            config_map: [(
                String::new(),
                pb::AgentConfigFile {
                    body: offer.content.into_bytes(),
                    content_type: CONFIG_CONTENT_TYPE.to_owned(),
                },
            )]
            .into(),
        }),
        config_hash: offer.hash.into_bytes(),
    });
    let mut flags = 0;
    if reply.report_full_state {
        flags |= pb::ServerToAgentFlags::ReportFullState as u64;
    }
    if reply.report_available_components {
        flags |= pb::ServerToAgentFlags::ReportAvailableComponents as u64;
    }
    let heartbeat = match (&offers.credential, reply.heartbeat_seconds) {
        (Some(_), _) => Some(offers.heartbeat_seconds),
        (None, seconds) => seconds,
    };
    let connection_settings = (heartbeat.is_some() || offers.own_metrics.is_some())
        .then(|| settings_offer(heartbeat, offers.credential.as_ref(), offers.own_metrics.as_ref()));
    pb::ServerToAgent {
        instance_uid: instance_uid.as_bytes().to_vec(),
        remote_config,
        flags,
        capabilities: SERVER_CAPABILITIES,
        connection_settings,
        command: reply
            .restart
            .then_some(pb::ServerToAgentCommand { r#type: pb::CommandType::Restart as i32 }),
        ..Default::default()
    }
}

/// Connection settings: the heartbeat interval and, for an enrolled agent that accepts them, the
/// `Authorization` header with its collector's credential (the agent reconnects with it), in
/// `opamp`; the own-metrics destination in `own_metrics`. Every `opamp` settings offer must carry
/// the interval: an agent that reports heartbeats takes a missing one as 0, and over WebSocket 0
/// turns its heartbeats off. `hash`: of everything offered, so the same offer always has the same
/// hash (it covers the credentials without revealing them).
fn settings_offer(
    heartbeat_seconds: Option<u64>,
    credential: Option<&Destination>,
    own_metrics: Option<&Destination>,
) -> pb::ConnectionSettingsOffers {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    let opamp = heartbeat_seconds.map(|seconds| {
        hash.update(format!("opamp.heartbeat_interval_seconds={seconds}\n"));
        let mut settings =
            pb::OpAmpConnectionSettings { heartbeat_interval_seconds: seconds, ..Default::default() };
        if let Some(offer) = credential {
            hash.update(format!("opamp.destination_endpoint={}\nopamp.authorization=", offer.endpoint));
            hash.update(&offer.credential);
            settings.destination_endpoint = offer.endpoint.clone();
            settings.headers = Some(bearer_header(&offer.credential));
        }
        settings
    });
    let own_metrics = own_metrics.map(|offer| {
        hash.update(format!(
            "\nown_metrics.destination_endpoint={}\nown_metrics.authorization=",
            offer.endpoint
        ));
        hash.update(&offer.credential);
        pb::TelemetryConnectionSettings {
            destination_endpoint: offer.endpoint.clone(),
            headers: Some(bearer_header(&offer.credential)),
        }
    });
    pb::ConnectionSettingsOffers { hash: hash.finalize().to_vec(), opamp, own_metrics, ..Default::default() }
}

fn bearer_header(credential: &str) -> pb::Headers {
    pb::Headers {
        headers: vec![pb::Header { key: "Authorization".to_owned(), value: format!("Bearer {credential}") }],
    }
}

/// A refusal the agent must not retry.
pub(super) fn bad_request(instance_uid: Vec<u8>, message: String) -> pb::ServerToAgent {
    pb::ServerToAgent {
        instance_uid,
        error_response: Some(pb::ServerErrorResponse {
            r#type: pb::ServerErrorResponseType::BadRequest as i32,
            error_message: message,
            details: None,
        }),
        ..Default::default()
    }
}

fn respond(request: &HttpRequest, reply: &pb::ServerToAgent) -> HttpResponse {
    let encoded = reply.encode_to_vec();
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CONTENT_TYPE, PROTOBUF));
    if body::accepts_gzip(request) && encoded.len() >= GZIP_MIN_BYTES {
        if let Ok(compressed) = body::gzip(&encoded) {
            response.insert_header((header::CONTENT_ENCODING, "gzip"));
            return response.body(compressed);
        }
    }
    response.body(encoded)
}
