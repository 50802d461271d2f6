//! The cluster: `GET /cluster` (any role), `POST /cluster/join-tokens` (admins), and the join
//! exchange's endpoint `POST /cluster/join` (public: the exchange's proof authenticates it).
//!
//! A join may arrive at any member. Only the leader admits: any other member answers 503 with the
//! leader's HTTP address in `leader_http_addr`, and the joining node sends the join there (the
//! exchange is sealed end to end, so the member in between has nothing to add). Failed joins are
//! throttled per client address like failed sign-ins (`http/login_guard.rs`).

use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handler_types::Reply;
use crate::cluster::admin::{self, AdminAnswer, AdminCall, AdminError, Refusal};
use crate::cluster::admission::{self, AdmitError};
use crate::cluster::join::{JoinRequest, MAX_REQUEST_BYTES};
use crate::cluster::member_levels::JOIN_LEVEL_HEADER;
use crate::error::{ApiError, ErrorCode};
use crate::http::login_guard::LoginGuard;
use crate::http::principal::Principal;
use crate::http::{body, client_addr, AppState};
use crate::model::join_tokens::{DEFAULT_TTL_SECONDS, DEFAULT_USES, MAX_TTL_SECONDS, MAX_USES};
use crate::model::{Command, FeatureLevel, UnixMillis};
use crate::secrets;

/// The throttle's key for joins: no username can hold a control character, so joins never share a
/// key with a sign-in (they share the per-address budget, as one guesser's attempts should).
const JOIN_THROTTLE_KEY: &str = "\u{0}cluster join";

/// How long `GET /cluster` waits for the leader's view of contact times before leaving them out.
const LEADER_VIEW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /cluster`: the members, leader, term, indexes and feature level, as this node sees them;
/// contact times, lag, reachability and each member's release as the leader sees them (asked through `AdminCall::Members`; left empty when
/// it does not answer in time).
pub(super) async fn status(_principal: Principal, state: web::Data<AppState>) -> HttpResponse {
    let view = state.raft.cluster_view();
    let leader_view = if view.leader_id.is_some() {
        match tokio::time::timeout(LEADER_VIEW_TIMEOUT, admin::call_leader(&state.raft, AdminCall::Members))
            .await
        {
            Ok(Ok(AdminAnswer::Members(leader_view))) => Some(leader_view),
            _ => None,
        }
    } else {
        None
    };
    let members: Vec<serde_json::Value> = view
        .members
        .iter()
        .map(|member| {
            let seen = leader_view
                .as_ref()
                .and_then(|leader_view| leader_view.members.iter().find(|seen| seen.id == member.id));
            let state_name = if seen.is_some_and(|seen| seen.down) { "unreachable" } else { member.state };
            serde_json::json!({
                "id": member.id,
                "name": member.info.name,
                "http_addr": member.info.http_addr,
                "rpc_addr": member.info.rpc_addr,
                "role": member.role.as_str(),
                "state": state_name,
                "last_contact_ms": seen.and_then(|seen| seen.last_contact_ms),
                "lag": member.lag.or(seen.and_then(|seen| seen.lag)),
                "slots": member.slots,
                "applied_index": member.applied_index,
                "version": member.version.clone().or_else(|| seen.and_then(|seen| seen.version.clone())),
                "feature_level": seen.and_then(|seen| seen.feature_level),
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "cluster_id": state.raft.cluster_id(),
        "leader_id": view.leader_id,
        "term": view.term,
        "commit_index": view.commit_index,
        "feature_level": state.raft.state().fleet.feature_level(),
        "members": members,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateJoinToken {
    ttl_seconds: Option<u64>,
    uses: Option<u32>,
}

/// `POST /cluster/join-tokens`: a join token, shown once; only its hash is stored.
pub(super) async fn create_join_token(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<CreateJoinToken>,
) -> Result<Reply<JoinToken, 201>, ApiError> {
    principal.require_cluster_admin()?;
    let CreateJoinToken { ttl_seconds, uses } = body.into_inner();
    let ttl_seconds = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
        return Err(ApiError::invalid_field(
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS}"),
        ));
    }
    let uses = uses.unwrap_or(DEFAULT_USES);
    if !(1..=MAX_USES).contains(&uses) {
        return Err(ApiError::invalid_field("uses", format!("must be between 1 and {MAX_USES}")));
    }
    let minted = secrets::mint_token(secrets::JOIN_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint join token", error))?;
    let id = secrets::random_id("jt").map_err(|error| ApiError::internal("join token id", error))?;
    let now = UnixMillis::now();
    let expires_at = now.plus(std::time::Duration::from_secs(ttl_seconds));
    state
        .raft
        .propose(Command::CreateJoinToken {
            id: id.clone(),
            token_hash: minted.hash,
            uses,
            expires_at,
            at: now,
        })
        .await?;
    Ok(Reply(JoinToken { token: minted.token, id, expires_at: expires_at.to_rfc3339() }))
}

/// A new join token: the only answer that ever shows it.
#[derive(Serialize, JsonSchema)]
pub(super) struct JoinToken {
    /// `lmjt_…`, for `linkmesh serve --join-token`.
    token: String,
    id: String,
    expires_at: String,
}

/// `POST /cluster/join`: the join exchange (`cluster/join.rs`), answered by the leader.
pub(super) async fn join(
    request: HttpRequest,
    state: web::Data<AppState>,
    guard: web::Data<LoginGuard>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let client = client_addr::of(&request);
    guard.admit(client, JOIN_THROTTLE_KEY, UnixMillis::now()).map_err(|mut refusal| {
        refusal.message = "too many failed joins from this address; wait before trying again".to_owned();
        refusal
    })?;
    let bytes = body::read_limited(&request, payload, MAX_REQUEST_BYTES).await?;
    let failed = |error: ApiError| {
        guard.record_failure(client, JOIN_THROTTLE_KEY, UnixMillis::now());
        error
    };
    let join_request: JoinRequest = serde_json::from_slice(&bytes).map_err(|error| {
        failed(ApiError::new(ErrorCode::InvalidArgument, format!("invalid join request: {error}")))
    })?;
    let joiner_level = joiner_feature_level(&request);
    match admission::admit(&state.raft, &state.data_key, &join_request, joiner_level, UnixMillis::now()).await
    {
        Ok(sealed) => {
            guard.record_success(client, JOIN_THROTTLE_KEY);
            Ok(HttpResponse::Ok().json(sealed))
        }
        Err(AdmitError::NotLeader { leader_http_addr }) => Ok(not_leader(leader_http_addr)),
        Err(AdmitError::Malformed(error)) => {
            Err(failed(ApiError::new(ErrorCode::InvalidArgument, error.to_string())))
        }
        Err(AdmitError::Refused(message)) => {
            tracing::info!(client = %client, node_id = join_request.node_id, reason = %message, "join refused");
            Err(failed(ApiError::unauthenticated(message)))
        }
        Err(error @ AdmitError::AlreadyMember(_)) => {
            tracing::info!(client = %client, node_id = join_request.node_id, "join refused: already a member");
            Err(ApiError::new(ErrorCode::Conflict, error.to_string()))
        }
        Err(AdmitError::Unavailable(message)) => Err(ApiError::new(ErrorCode::Unavailable, message)),
        Err(error @ AdmitError::OlderRelease { .. }) => {
            tracing::warn!(client = %client, node_id = join_request.node_id, reason = %error, "join refused: older release");
            Err(ApiError::new(ErrorCode::Conflict, error.to_string()))
        }
    }
}

/// The joining node's feature level (`cluster/member_levels.rs`): releases before levels send none.
fn joiner_feature_level(request: &HttpRequest) -> FeatureLevel {
    request
        .headers()
        .get(JOIN_LEVEL_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u32>().ok())
        .map_or(FeatureLevel::BASELINE, FeatureLevel)
}

/// 503 naming the leader, so the joining node sends its join there.
fn not_leader(leader_http_addr: Option<String>) -> HttpResponse {
    let message = match &leader_http_addr {
        Some(addr) => format!("this node is not the leader; send the join to the leader at {addr}"),
        None => "this node knows no leader yet; retry shortly".to_owned(),
    };
    let mut response = HttpResponse::ServiceUnavailable();
    if leader_http_addr.is_none() {
        response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
    }
    response.json(serde_json::json!({
        "error": {
            "code": ErrorCode::Unavailable.rest_code(),
            "message": message,
            "details": { "leader_http_addr": leader_http_addr },
        },
        "leader_http_addr": leader_http_addr,
    }))
}

/// `GET /cluster/slots`: the replicated slot table as this node has applied it.
pub(super) async fn slots(_principal: Principal, state: web::Data<AppState>) -> Reply<SlotTable> {
    let applied = state.raft.state();
    let slots = applied
        .fleet
        .slots
        .entries()
        .map(|(slot, entry)| SlotView { slot, owner: entry.owner, epoch: entry.epoch.0 })
        .collect();
    Reply(SlotTable { slots })
}

#[derive(Serialize, JsonSchema)]
pub(super) struct SlotTable {
    slots: Vec<SlotView>,
}

#[derive(Serialize, JsonSchema)]
struct SlotView {
    slot: usize,
    /// The node whose actors serve the slot's collectors.
    owner: u64,
    /// Bumped on every move of the slot.
    epoch: u64,
}

/// `GET /cluster/digest`: this node's applied index and a digest of its fleet model at that index.
/// Nodes that applied the same log show the same digest (the chaos test's convergence check).
pub(super) async fn digest(_principal: Principal, state: web::Data<AppState>) -> Reply<Digest> {
    let (applied_index, digest) = {
        let applied = state.raft.state();
        (applied.last_applied.map(|id| id.index), applied.fleet_digest())
    };
    Reply(Digest { node_id: state.raft.node_id(), applied_index, model_digest: hex::encode(digest) })
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Digest {
    node_id: u64,
    /// The last log index this node applied; `null` before the first.
    applied_index: Option<u64>,
    /// SHA-256 of the fleet model at `applied_index`, hex.
    model_digest: String,
}

/// A member id from the path: a node id is a positive integer.
fn member_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid_field("id", "must be a node id (a positive integer)"))
}

/// Asks the leader (here, or one hop away) and maps its refusals to the API's errors.
async fn ask_leader(state: &AppState, call: AdminCall) -> Result<AdminAnswer, ApiError> {
    admin::call_leader(&state.raft, call).await.map_err(|error| match error {
        AdminError::Refused { refusal: Refusal::NotFound, message } => {
            ApiError::new(ErrorCode::NotFound, message)
        }
        AdminError::Refused { refusal: Refusal::Conflict, message } => {
            ApiError::new(ErrorCode::Conflict, message)
        }
        other => {
            tracing::warn!(error = %other, "cluster admin call to the leader failed");
            ApiError::new(
                ErrorCode::Unavailable,
                format!("the cluster leader could not take the call: {other}"),
            )
        }
    })
}

/// The answer of a cluster change the leader goes on with in the background.
#[derive(Serialize, JsonSchema)]
pub(super) struct Accepted {
    /// The member concerned (none for a rebalance).
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<u64>,
    /// `draining` for a member being removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
}

/// `DELETE /cluster/members/{id}`: the member's slots drain to the others, then it leaves.
pub(super) async fn remove_member(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<Accepted, 202>, ApiError> {
    principal.require_cluster_admin()?;
    let node_id = member_id(&path)?;
    ask_leader(&state, AdminCall::RemoveMember { node_id }).await?;
    Ok(Reply(Accepted { node_id: Some(node_id), state: Some("draining") }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferLeader {
    node_id: u64,
}

/// `POST /cluster/leader`: leadership moves to that voter.
pub(super) async fn transfer_leader(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<TransferLeader>,
) -> Result<Reply<Accepted, 202>, ApiError> {
    principal.require_cluster_admin()?;
    let TransferLeader { node_id } = body.into_inner();
    ask_leader(&state, AdminCall::TransferLeader { node_id }).await?;
    Ok(Reply(Accepted { node_id: Some(node_id), state: None }))
}

/// `POST /cluster/rebalance`: one balancer run now.
pub(super) async fn rebalance(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<Reply<Accepted, 202>, ApiError> {
    principal.require_cluster_admin()?;
    ask_leader(&state, AdminCall::Rebalance).await?;
    Ok(Reply(Accepted { node_id: None, state: None }))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn a_joiner_without_a_readable_level_counts_as_a_release_before_levels() {
        let level = |value: Option<&str>| {
            let request = match value {
                Some(value) => TestRequest::default().insert_header((JOIN_LEVEL_HEADER, value)),
                None => TestRequest::default(),
            };
            joiner_feature_level(&request.to_http_request())
        };
        assert_eq!(level(None), FeatureLevel::BASELINE, "no header: an older release");
        assert_eq!(level(Some(" 2 ")), FeatureLevel(2));
        for garbage in ["", "two", "-1", "2.0", "99999999999"] {
            assert_eq!(level(Some(garbage)), FeatureLevel::BASELINE, "{garbage:?}");
        }
    }
}
