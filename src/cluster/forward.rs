//! Routing a collector's call to the owner of its slot: the edge's side of the `Forward` RPC, and the
//! wire shapes both sides share (the owner's side is `service.rs`).
//!
//! The edge (any node) authenticated the token on its replica and read the body; when the slot's
//! owner on its replica is another node it sends one `Forward` carrying the collector id, the SHA-256
//! of the token the client presented and the slot epoch it saw. The owner checks the token again (it
//! is the token's final authority, promise 4 of `cluster.md`) and answers `WRONG_OWNER` for a slot it
//! no longer owns: the edge then waits (bounded) until its replica applied what the owner had applied,
//! looks the owner up again and retries once, possibly locally. An owner that cannot be reached or
//! does not answer in time is [`ForwardError::OwnerUnavailable`] (503 with `Retry-After` at the edge).
//!
//! What travels: polls, registers and unregisters as JSON of the actor's messages, pushes as the OTLP
//! body (inflated) with its content type; the owner decodes, extracts and applies it itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::payload;
use super::peers::PeerError;
use crate::actors::collector_actor::{OpampReply, PollReply};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::{ForwardErrorKind, NodeMetrics};
use crate::model::slot_of;
use crate::model::TokenHash;
use crate::proto::cluster::v1::forward_reply::Status as ReplyStatus;
use crate::proto::cluster::v1::{CollectorCall, ForwardReply, ForwardRequest};
use crate::raft::RaftNode;

/// The deadline of one forwarded call: a poll is answered from the owner's actor without Raft, a push
/// is bounded by its decode; anything slower means the owner is in trouble.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the edge waits for its replica to reach what a `WRONG_OWNER` owner had applied.
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// Seconds a client is asked to wait when the owner cannot be reached (failover moves its slots
/// after `cluster.node_down_after`).
pub const OWNER_RETRY_AFTER_SECONDS: u64 = 5;

/// A forwarded poll's answer (`GetConfigResponse`'s fields, with the delivered credentials in
/// `content`: it travels only on the authenticated cluster port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePollReply {
    pub hash: String,
    pub content: String,
    pub not_modified: bool,
}

impl WirePollReply {
    /// A poll's answer: the content only when the collector does not have this version yet.
    pub fn of(reply: &PollReply) -> WirePollReply {
        WirePollReply {
            content: if reply.not_modified { String::new() } else { reply.rendered.content.clone() },
            hash: reply.rendered.hash.clone(),
            not_modified: reply.not_modified,
        }
    }
}

/// A forwarded OpAMP message's answer: the config to offer, if any (with its credentials, as
/// [`WirePollReply::content`]), and whether to ask the agent for its full state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOpampReply {
    pub offer: Option<WireOffer>,
    pub report_full_state: bool,
    /// As [`OpampReply::owner_behind`] (absent from the replies of older releases).
    #[serde(default)]
    pub owner_behind: bool,
    /// As [`OpampReply::heartbeat`], in whole seconds (absent from the replies of older releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_seconds: Option<u64>,
    /// As [`OpampReply::own_metrics`] (absent from the replies of older releases).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_metrics: bool,
    /// As [`OpampReply::report_available_components`] (absent from the replies of older releases).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_available_components: bool,
    /// As [`OpampReply::restart`] (absent from the replies of older releases).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOffer {
    pub hash: String,
    pub content: String,
}

impl WireOpampReply {
    pub fn of(reply: &OpampReply) -> WireOpampReply {
        WireOpampReply {
            offer: reply
                .offer
                .as_ref()
                .map(|rendered| WireOffer { hash: rendered.hash.clone(), content: rendered.content.clone() }),
            report_full_state: reply.report_full_state,
            owner_behind: reply.owner_behind,
            heartbeat_seconds: reply.heartbeat.map(|interval| interval.as_secs()),
            own_metrics: reply.own_metrics,
            report_available_components: reply.report_available_components,
            restart: reply.restart,
        }
    }
}

/// The body of a `WRONG_OWNER` reply: what the refusing node had applied, so the edge knows how far
/// its own replica must get before the slot table names the new owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrongOwner {
    pub applied_index: Option<u64>,
}

/// The body of a `STATUS_ERROR` reply: the owner's refusal as the client should see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: WireErrorCode,
    pub message: String,
}

/// The error codes an owner may answer with (the others are the edge's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireErrorCode {
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl WireError {
    /// What an owner sends back for a refusal; internal detail stays in the owner's log.
    pub fn from_api(error: &ApiError) -> WireError {
        let code = match error.code {
            ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition => WireErrorCode::InvalidArgument,
            ErrorCode::NotFound => WireErrorCode::NotFound,
            ErrorCode::ResourceExhausted => WireErrorCode::ResourceExhausted,
            ErrorCode::PayloadTooLarge => WireErrorCode::PayloadTooLarge,
            ErrorCode::Unavailable => WireErrorCode::Unavailable,
            _ => WireErrorCode::Internal,
        };
        let message =
            if code == WireErrorCode::Internal { "internal error".to_owned() } else { error.message.clone() };
        WireError { code, message }
    }

    fn into_api(self) -> ApiError {
        let code = match self.code {
            WireErrorCode::InvalidArgument => ErrorCode::InvalidArgument,
            WireErrorCode::NotFound => ErrorCode::NotFound,
            WireErrorCode::ResourceExhausted => ErrorCode::ResourceExhausted,
            WireErrorCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            WireErrorCode::Unavailable => ErrorCode::Unavailable,
            WireErrorCode::Internal => ErrorCode::Internal,
        };
        ApiError::new(code, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The owner no longer accepts the token (rotated or deleted there): a 401, as a local refusal.
    #[error("the owner refused the collector token")]
    Unauthenticated,
    /// The owner could not be reached, did not answer in time, or the slot kept moving.
    #[error("the owner of the collector's slot is unavailable: {detail}")]
    OwnerUnavailable { kind: ForwardErrorKind, detail: String },
    /// The owner handled the call and refused it (its answer, as the client should see it).
    #[error("the owner refused the call: {0}")]
    Refused(ApiError),
}

impl ForwardError {
    /// The client-visible error; `token_setting` names where the token goes on this path. Nothing
    /// here names a node or an address.
    pub fn into_api(self, token_setting: &str) -> ApiError {
        match self {
            ForwardError::Unauthenticated => ApiError::unauthenticated(format!(
                "invalid or rotated collector token: re-mint it on the collector page and update {token_setting}"
            )),
            ForwardError::OwnerUnavailable { .. } => ApiError::new(
                ErrorCode::Unavailable,
                "the node serving this collector cannot be reached; retry after the Retry-After delay",
            )
            .with_retry_after(OWNER_RETRY_AFTER_SECONDS),
            ForwardError::Refused(error) => error,
        }
    }
}

/// Who handles a collector's calls, on this node's replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Here,
    Peer { node_id: u64, epoch: u64 },
}

/// The slot's owner on this replica (before bootstrap the table is empty and this node is alone).
pub fn owner_of(raft: &RaftNode, collector_id: &str) -> Owner {
    let slot = slot_of(collector_id);
    let me = raft.node_id();
    let state = raft.state();
    match state.fleet.slot_entry(slot) {
        Some(entry) if entry.owner != me => Owner::Peer { node_id: entry.owner, epoch: entry.epoch.0 },
        _ => Owner::Here,
    }
}

/// What a forwarded call came to.
#[derive(Debug)]
pub enum Routed {
    /// The owner's answer body (`WirePollReply` JSON for polls, the OTLP response for pushes).
    Remote(Vec<u8>),
    /// After a refresh this node owns the slot: the caller handles the call locally (the body it
    /// handed over comes back).
    Local(Vec<u8>),
}

/// One call for the owner: what [`forward`] sends (the epoch is filled in per attempt).
pub struct CollectorRequest<'a> {
    pub call: CollectorCall,
    pub collector_id: &'a str,
    pub token_hash: &'a TokenHash,
    pub body: Vec<u8>,
    pub content_type: &'a str,
    pub client_addr: String,
}

/// Sends the call to `owner` (a peer, as [`owner_of`] found it); on `WRONG_OWNER` waits for this
/// replica to catch up and retries once with the owner it names then (or answers [`Routed::Local`]).
/// Every failure is counted in `forward_failed`.
pub async fn forward(
    raft: &RaftNode,
    metrics: &NodeMetrics,
    mut owner: Owner,
    request: CollectorRequest<'_>,
) -> Result<Routed, ForwardError> {
    let mut request_message = ForwardRequest {
        call: request.call as i32,
        collector_id: request.collector_id.to_owned(),
        token_hash: request.token_hash.to_vec(),
        slot_epoch: 0,
        body: request.body,
        content_type: request.content_type.to_owned(),
        client_addr: request.client_addr,
    };
    for attempt in 0..2 {
        let Owner::Peer { node_id, epoch } = owner else {
            return Ok(Routed::Local(request_message.body));
        };
        request_message.slot_epoch = epoch;
        let answer = call_owner(raft, node_id, request_message.clone()).await;
        let failed = |kind: ForwardErrorKind, detail: String| {
            metrics.forward_failed(kind);
            tracing::warn!(
                collector_id = %request.collector_id,
                owner = node_id,
                kind = kind.as_str(),
                error = %detail,
                "forwarded collector call failed"
            );
            ForwardError::OwnerUnavailable { kind, detail }
        };
        let reply = match answer {
            Ok(reply) => reply,
            Err(error) => {
                let kind = match error {
                    PeerError::Timeout { .. } => ForwardErrorKind::Timeout,
                    PeerError::Failed { code: tonic::Code::DeadlineExceeded, .. } => {
                        ForwardErrorKind::Timeout
                    }
                    _ => ForwardErrorKind::Unreachable,
                };
                return Err(failed(kind, error.to_string()));
            }
        };
        match ReplyStatus::try_from(reply.status).unwrap_or(ReplyStatus::Unspecified) {
            ReplyStatus::Ok => return Ok(Routed::Remote(reply.body)),
            ReplyStatus::Unauthenticated => {
                metrics.forward_failed(ForwardErrorKind::Refused);
                return Err(ForwardError::Unauthenticated);
            }
            ReplyStatus::Error => {
                metrics.forward_failed(ForwardErrorKind::Refused);
                let error = payload::from_json::<WireError>(&reply.body).map_or_else(
                    |_| ApiError::new(ErrorCode::Internal, "internal error"),
                    WireError::into_api,
                );
                return Err(ForwardError::Refused(error));
            }
            ReplyStatus::WrongOwner => {
                let refused =
                    failed(ForwardErrorKind::WrongOwner, format!("node {node_id} no longer owns the slot"));
                if attempt == 1 {
                    return Err(refused);
                }
                let behind = payload::from_json::<WrongOwner>(&reply.body).ok().and_then(|w| w.applied_index);
                raft.wait_applied(behind, CATCH_UP_WAIT).await;
                let refreshed = owner_of(raft, request.collector_id);
                if refreshed == owner {
                    // This replica still names the node that refused: nothing better to try.
                    return Err(refused);
                }
                owner = refreshed;
            }
            ReplyStatus::Unspecified => {
                return Err(failed(ForwardErrorKind::Unreachable, "the owner sent no status".to_owned()));
            }
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// One `Forward` call to `node_id` at the address its membership entry names.
async fn call_owner(
    raft: &RaftNode,
    node_id: u64,
    request: ForwardRequest,
) -> Result<ForwardReply, PeerError> {
    let rpc_addr = {
        let metrics = raft.openraft().metrics();
        let current = metrics.borrow();
        current.membership_config.membership().get_node(&node_id).map(|node| node.rpc_addr.clone())
    };
    let Some(rpc_addr) = rpc_addr.filter(|addr| !addr.is_empty()) else {
        return Err(PeerError::Unreachable {
            addr: String::new(),
            detail: format!("node {node_id} has no cluster address"),
        });
    };
    raft.peers()
        .call(node_id, &rpc_addr, request, FORWARD_TIMEOUT, |mut client, request| async move {
            client.forward(request).await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_errors_cross_the_wire_without_internal_detail() {
        let refused = ApiError::new(ErrorCode::InvalidArgument, "malformed protobuf");
        let wire = WireError::from_api(&refused);
        let back: WireError = payload::from_json(&payload::to_json(&wire).expect("json")).expect("decode");
        assert_eq!(back.into_api().code, ErrorCode::InvalidArgument);
        let internal = WireError::from_api(&ApiError::new(ErrorCode::Internal, "sled at /data/x failed"));
        assert_eq!(internal.message, "internal error");
    }

    #[test]
    fn client_visible_errors_name_no_node_or_address() {
        let unavailable = ForwardError::OwnerUnavailable {
            kind: ForwardErrorKind::Unreachable,
            detail: "cannot reach 10.0.0.7:8081".to_owned(),
        }
        .into_api("remotecfg.bearer_token");
        assert_eq!(unavailable.code, ErrorCode::Unavailable);
        assert!(!unavailable.message.contains("10.0.0.7"), "{}", unavailable.message);
        assert_eq!(ForwardError::Unauthenticated.into_api("x").code, ErrorCode::Unauthenticated);
    }
}
