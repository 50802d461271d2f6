//! `collector.v1.CollectorService`: the remotecfg API Alloy polls (GetConfig, RegisterCollector,
//! UnregisterCollector), as Connect unary RPCs.
//!
//! Only `Authorization: Bearer <collector token>` authenticates. The token identifies the collector;
//! the `id` in the message is the collector's host id (recorded, never trusted for identity).
//!
//! Any node takes the call: the token is checked on this node's replica and the collector's call
//! bucket admits it here, before the body; the decoded message then goes to the actor of the slot's
//! owner, this node's or another's through one forwarded call (`cluster/forward.rs`), where the token
//! is checked again.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use super::collector_auth::{authenticate_noting_rotated, AuthenticatedCollector};
use super::connect::{read_unary, ConnectError, UnaryRequest};
use super::AppState;
use crate::actors::collector_actor::{Poll, Register, Unregister};
use crate::cluster::forward::{self, CollectorRequest, Owner, Routed, WirePollReply};
use crate::cluster::payload;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::PollPath;
use crate::model::command::RemoteStatusReport;
use crate::model::fleet_state::MAX_EFFECTIVE_CONFIG_BYTES;
use crate::model::{RemoteConfigState, UnixMillis};
use crate::proto::cluster::v1::CollectorCall;
use crate::proto::collector::v1 as pb;

pub const SERVICE_PATH: &str = "/collector.v1.CollectorService";

/// Where Alloy carries the token, for error messages.
const TOKEN_SETTING: &str = "remotecfg.bearer_token";

/// Attributes kept per collector, and the longest key and value; extra ones are dropped, not refused
/// (RegisterCollector must never fail for a valid token).
const MAX_ATTRIBUTES: usize = 64;
const MAX_ATTRIBUTE_KEY_BYTES: usize = 128;
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;
const MAX_HOST_ID_BYTES: usize = 256;

pub fn configure(config: &mut web::ServiceConfig) {
    // Each method on a path of its own, matched by comparison (a `{method}` pattern costs every call
    // a regex match); the pattern after them answers any other method `unimplemented`.
    for rpc in Rpc::ALL {
        config.service(web::resource(format!("{SERVICE_PATH}/{}", rpc.name())).route(web::route().to(
            move |request: HttpRequest, payload: web::Payload, state: web::Data<AppState>| {
                handle(rpc, request, payload, state)
            },
        )));
    }
    config.service(web::resource(format!("{SERVICE_PATH}/{{method}}")).route(web::route().to(unimplemented)));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    GetConfig,
    RegisterCollector,
    UnregisterCollector,
}

impl Rpc {
    const ALL: [Rpc; 3] = [Rpc::GetConfig, Rpc::RegisterCollector, Rpc::UnregisterCollector];

    fn name(self) -> &'static str {
        match self {
            Rpc::GetConfig => "GetConfig",
            Rpc::RegisterCollector => "RegisterCollector",
            Rpc::UnregisterCollector => "UnregisterCollector",
        }
    }

    /// Only side-effect-free methods may be called with GET (Alloy 1.7–1.11 use it for GetConfig).
    fn allows_get(self) -> bool {
        self == Rpc::GetConfig
    }
}

/// A method of the service linkmesh does not serve.
async fn unimplemented(method: web::Path<String>) -> Result<HttpResponse, ConnectError> {
    Err(ConnectError(ApiError::new(
        ErrorCode::Unimplemented,
        format!("collector.v1.CollectorService/{method} is not implemented"),
    )))
}

async fn handle(
    rpc: Rpc,
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConnectError> {
    let method = rpc.name();
    let allowed = *request.method() == Method::POST || (*request.method() == Method::GET && rpc.allows_get());
    if !allowed {
        use actix_web::ResponseError as _;
        let error = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed for {method}", request.method()),
        );
        let mut response = ConnectError(error).error_response();
        let allow = if rpc.allows_get() { "GET, POST" } else { "POST" };
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
        return Ok(response);
    }
    // The token before the body: a stranger gets nothing read, buffered or decoded.
    let collector = authenticate_noting_rotated(&request, &state, TOKEN_SETTING).await?;
    // Still before the body: a call beyond the collector's bucket costs no read and no decode. The
    // bucket is this node's (a collector spread over several nodes gets one bucket per node).
    if let Err(refused) = state.registry.admit_call(&collector.collector_id) {
        return Err(ApiError::from(refused).into());
    }
    let limit = state.config.max_request_body;
    let unary = read_unary(&request, payload, limit, rpc.allows_get()).await?;
    let edge = Edge { state: &state, collector: &collector, request: &request };
    let response = match rpc {
        Rpc::GetConfig => get_config(&edge, &unary).await?,
        Rpc::RegisterCollector => register_collector(&edge, &unary).await?,
        Rpc::UnregisterCollector => unregister_collector(&edge, &unary).await?,
    };
    Ok(response)
}

/// An authenticated call on the node that took it.
struct Edge<'a> {
    state: &'a AppState,
    collector: &'a AuthenticatedCollector,
    request: &'a HttpRequest,
}

impl Edge<'_> {
    /// The owner's answer when another node owns the collector's slot; `None` when this node does
    /// (then the caller asks its own actor).
    async fn forward_if_owned_elsewhere<M: serde::Serialize>(
        &self,
        call: CollectorCall,
        message: &M,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let collector_id = self.collector.collector_id.as_str();
        let owner = forward::owner_of(&self.state.raft, collector_id);
        if owner == Owner::Here {
            self.collector.check_served_here(TOKEN_SETTING)?;
            return Ok(None);
        }
        let body =
            payload::to_json(message).map_err(|error| ApiError::internal("forwarding a call", error))?;
        let forwarded = CollectorRequest {
            call,
            collector_id,
            token_hash: &self.collector.token_hash,
            body,
            content_type: "application/json",
            client_addr: super::client_addr::of(self.request).to_string(),
        };
        match forward::forward(&self.state.raft, &self.state.metrics, owner, forwarded).await {
            Ok(Routed::Remote(body)) => Ok(Some(body)),
            Ok(Routed::Local(_)) => {
                self.collector.check_served_here(TOKEN_SETTING)?;
                Ok(None)
            }
            Err(error) => Err(error.into_api(TOKEN_SETTING)),
        }
    }
}

fn required_host_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_field("id", "is required (Alloy sends remotecfg.id)"));
    }
    if id.len() > MAX_HOST_ID_BYTES {
        return Err(ApiError::invalid_field("id", format!("must be at most {MAX_HOST_ID_BYTES} bytes")));
    }
    Ok(id)
}

/// `local_attributes` (Alloy >= 1.7), falling back to the deprecated `attributes` (Alloy 1.3–1.6).
fn collector_attributes(
    local: HashMap<String, String>,
    legacy: HashMap<String, String>,
) -> BTreeMap<String, String> {
    let chosen = if local.is_empty() { legacy } else { local };
    bounded_attributes(chosen)
}

/// What is kept of reported attributes (shared with OpAMP's agent description): keys and values
/// within their bounds, the first [`MAX_ATTRIBUTES`] in key order; the rest dropped, never refused.
pub(super) fn bounded_attributes(
    attributes: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .filter(|(key, value)| {
            key.len() <= MAX_ATTRIBUTE_KEY_BYTES && value.len() <= MAX_ATTRIBUTE_VALUE_BYTES
        })
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .take(MAX_ATTRIBUTES)
        .collect()
}

fn remote_status_report(status: Option<pb::RemoteConfigStatus>) -> Option<RemoteStatusReport> {
    let status = status?;
    let state = match pb::RemoteConfigStatuses::try_from(status.status).ok()? {
        pb::RemoteConfigStatuses::Unset => return None,
        pb::RemoteConfigStatuses::Applied => RemoteConfigState::Applied,
        pb::RemoteConfigStatuses::Applying => RemoteConfigState::Applying,
        pb::RemoteConfigStatuses::Failed => RemoteConfigState::Failed,
    };
    let error = (!status.error_message.is_empty()).then(|| truncate(status.error_message, 4096));
    Some(RemoteStatusReport { state, error, hash: None })
}

/// The effective config as one text: single-file configs verbatim, several files concatenated by name.
fn effective_config_text(effective: Option<pb::EffectiveConfig>) -> Option<String> {
    let files = effective?.config_map?.config_map;
    config_files_text(files.iter().map(|(name, file)| (name.as_str(), file.body.as_slice())).collect())
}

/// A reported config map as one text (shared with OpAMP's effective config): one file verbatim,
/// several concatenated in name order, each after a line naming it; cut at the stored maximum.
pub(super) fn config_files_text(mut files: Vec<(&str, &[u8])>) -> Option<String> {
    files.sort_by(|left, right| left.0.cmp(right.0));
    let text = match files.as_slice() {
        [] => return None,
        [(_, only)] => String::from_utf8_lossy(only).into_owned(),
        _ => files
            .iter()
            .map(|(name, body)| format!("// ---- {name}\n{}", String::from_utf8_lossy(body)))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Some(truncate(text, MAX_EFFECTIVE_CONFIG_BYTES))
}

pub(super) fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

async fn get_config(edge: &Edge<'_>, unary: &UnaryRequest) -> Result<HttpResponse, ApiError> {
    let message: pb::GetConfigRequest = unary.decode()?;
    let poll = Poll {
        host_id: required_host_id(message.id)?,
        local_attributes: collector_attributes(message.local_attributes, message.attributes),
        hash: message.hash,
        remote_status: remote_status_report(message.remote_config_status),
        effective_config: effective_config_text(message.effective_config),
        at: UnixMillis::now(),
        config_version: edge.collector.config_version,
    };
    let (state, collector_id) = (edge.state, edge.collector.collector_id.as_str());
    if let Some(body) = edge.forward_if_owned_elsewhere(CollectorCall::GetConfig, &poll).await? {
        let reply: WirePollReply = payload::from_json(&body)
            .map_err(|error| ApiError::internal("a forwarded poll's reply", error))?;
        state.metrics.poll_served(PollPath::Forwarded);
        return unary.respond(&poll_response(reply));
    }
    let reply = state
        .registry
        .poll(collector_id, &edge.collector.token_hash, poll)
        .await
        .map_err(|error| edge.collector.owner_refusal(state, error, TOKEN_SETTING))?;
    state.metrics.poll_served(PollPath::Local);
    unary.respond(&poll_response(WirePollReply::of(&reply)))
}

fn poll_response(reply: WirePollReply) -> pb::GetConfigResponse {
    pb::GetConfigResponse { content: reply.content, hash: reply.hash, not_modified: reply.not_modified }
}

async fn register_collector(edge: &Edge<'_>, unary: &UnaryRequest) -> Result<HttpResponse, ApiError> {
    let message: pb::RegisterCollectorRequest = unary.decode()?;
    let register = Register {
        host_id: required_host_id(message.id)?,
        name: truncate(message.name, MAX_ATTRIBUTE_VALUE_BYTES),
        local_attributes: collector_attributes(message.local_attributes, message.attributes),
        at: UnixMillis::now(),
    };
    if edge.forward_if_owned_elsewhere(CollectorCall::Register, &register).await?.is_none() {
        let collector = edge.collector;
        edge.state
            .registry
            .register(&collector.collector_id, &collector.token_hash, register)
            .await
            .map_err(|error| collector.owner_refusal(edge.state, error, TOKEN_SETTING))?;
    }
    unary.respond(&pb::RegisterCollectorResponse {})
}

async fn unregister_collector(edge: &Edge<'_>, unary: &UnaryRequest) -> Result<HttpResponse, ApiError> {
    let message: pb::UnregisterCollectorRequest = unary.decode()?;
    let unregister = Unregister { host_id: required_host_id(message.id)?, at: UnixMillis::now() };
    if edge.forward_if_owned_elsewhere(CollectorCall::Unregister, &unregister).await?.is_none() {
        let collector = edge.collector;
        edge.state
            .registry
            .unregister(&collector.collector_id, &collector.token_hash, unregister)
            .await
            .map_err(|error| collector.owner_refusal(edge.state, error, TOKEN_SETTING))?;
    }
    unary.respond(&pb::UnregisterCollectorResponse {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_attributes_win_over_legacy_ones() {
        let local = HashMap::from([("env".to_owned(), "prod".to_owned())]);
        let legacy = HashMap::from([("env".to_owned(), "old".to_owned())]);
        assert_eq!(collector_attributes(local, legacy.clone())["env"], "prod");
        assert_eq!(collector_attributes(HashMap::new(), legacy)["env"], "old");
    }

    #[test]
    fn oversized_and_excess_attributes_are_dropped() {
        let mut many: HashMap<String, String> =
            (0..100).map(|i| (format!("k{i:03}"), "v".to_owned())).collect();
        many.insert("big".to_owned(), "x".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1));
        let kept = collector_attributes(many, HashMap::new());
        assert_eq!(kept.len(), MAX_ATTRIBUTES);
        assert!(!kept.contains_key("big"));
    }

    #[test]
    fn unset_status_is_no_report_and_failed_keeps_its_message() {
        assert!(remote_status_report(Some(pb::RemoteConfigStatus::default())).is_none());
        let failed = remote_status_report(Some(pb::RemoteConfigStatus {
            status: pb::RemoteConfigStatuses::Failed as i32,
            error_message: "bad block".into(),
        }))
        .expect("report");
        assert_eq!(failed.state, RemoteConfigState::Failed);
        assert_eq!(failed.error.as_deref(), Some("bad block"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo".to_owned(), 2), "h");
        assert_eq!(truncate("abc".to_owned(), 10), "abc");
    }
}
