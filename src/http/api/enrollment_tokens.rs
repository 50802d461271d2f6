//! OpAMP enrollment tokens (`lmet_…`, `model/enrollment_tokens.rs`, docs/adr/0010), for operators:
//! create (the token is in this one answer), list (never the token), revoke.
//!
//! `expires_at` ends enrollment of new agents; the agents a token enrolled keep authenticating with it
//! until it is revoked. The list says how many collectors still authenticate with each token
//! (`collectors`), so that nobody revokes one in use without knowing; a revocation closes their open
//! connections and refuses their next ones.

use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handler_types::Reply;
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::enrollment_tokens::{EnrollmentToken, DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS, MAX_USES};
use crate::model::labels::check_labels;
use crate::model::{Command, Labels, UnixMillis};
use crate::render::enrollment::{render_supervisor_yaml, SupervisorToken};
use crate::secrets;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEnrollmentToken {
    /// How long it enrolls new agents (default a day, at most a year). The agents it enrolled keep
    /// authenticating with it until it is revoked.
    ttl_seconds: Option<u64>,
    /// How many agents it may enroll; absent: any number until it expires.
    uses: Option<u32>,
    /// Labels given to the collectors it creates (what fleet-wide items select).
    #[serde(default)]
    labels: Labels,
}

/// A new enrollment token: the only answer that ever shows it.
#[derive(Serialize, JsonSchema)]
pub(super) struct CreatedEnrollmentToken {
    /// `lmet_…`, for the agents' `Authorization: Bearer` header.
    token: String,
    id: String,
    expires_at: String,
    /// A ready-to-paste `supervisor.yaml` for the `opampsupervisor`, with this server's URL and the token.
    supervisor_config: String,
}

/// `POST /enrollment-tokens`.
pub(super) async fn create(
    principal: Principal,
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CreateEnrollmentToken>,
) -> Result<Reply<CreatedEnrollmentToken, 201>, ApiError> {
    principal.require_collector_admin()?;
    let CreateEnrollmentToken { ttl_seconds, uses, labels } = body.into_inner();
    let ttl_seconds = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
        return Err(ApiError::invalid_field(
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS}"),
        ));
    }
    if uses.is_some_and(|uses| !(1..=MAX_USES).contains(&uses)) {
        return Err(ApiError::invalid_field("uses", format!("must be between 1 and {MAX_USES}")));
    }
    check_labels(&labels).map_err(|problem| ApiError::invalid_field("labels", problem))?;
    let minted = secrets::mint_token(secrets::ENROLLMENT_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint enrollment token", error))?;
    let id = secrets::random_id("et").map_err(|error| ApiError::internal("enrollment token id", error))?;
    let now = UnixMillis::now();
    let expires_at = now.plus(std::time::Duration::from_secs(ttl_seconds));
    let token = EnrollmentToken {
        id: id.clone(),
        token_hash: minted.hash,
        prefix: minted.display_prefix,
        uses,
        used: 0,
        labels,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    state.raft.propose(Command::CreateEnrollmentToken { token }).await?;
    let supervisor_config = render_supervisor_yaml(
        &crate::http::external_url(&request, &state),
        &minted.token,
        SupervisorToken::Enrollment,
    );
    Ok(Reply(CreatedEnrollmentToken {
        token: minted.token,
        id,
        expires_at: expires_at.to_rfc3339(),
        supervisor_config,
    }))
}

/// An enrollment token as listed (never the token itself).
#[derive(Serialize, JsonSchema)]
pub(super) struct EnrollmentTokenView {
    id: String,
    /// The token's first characters.
    prefix: String,
    /// `active`, `expired` (enrolls no new agent; its agents still connect) or `revoked`.
    state: &'static str,
    uses: Option<u32>,
    used: u32,
    labels: Labels,
    created_at: String,
    expires_at: String,
    revoked_at: Option<String>,
    /// Collectors whose agents authenticate with this token: revoking it disconnects them.
    collectors: usize,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct EnrollmentTokenList {
    enrollment_tokens: Vec<EnrollmentTokenView>,
}

/// `GET /enrollment-tokens`: newest first.
pub(super) async fn list(
    _principal: Principal,
    state: web::Data<AppState>,
) -> Result<Reply<EnrollmentTokenList>, ApiError> {
    let now = UnixMillis::now();
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    let mut in_use = std::collections::HashMap::<&str, usize>::new();
    for record in fleet.collector_records() {
        if let Some(enrollment) = &record.enrollment {
            *in_use.entry(enrollment.token_id.as_str()).or_default() += 1;
        }
    }
    let mut tokens: Vec<&EnrollmentToken> = fleet.enrollment_tokens.iter().collect();
    tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    let enrollment_tokens = tokens
        .into_iter()
        .map(|token| EnrollmentTokenView {
            id: token.id.clone(),
            prefix: token.prefix.clone(),
            state: match (token.revoked_at, token.expires_at <= now) {
                (Some(_), _) => "revoked",
                (None, true) => "expired",
                (None, false) => "active",
            },
            uses: token.uses,
            used: token.used,
            labels: token.labels.clone(),
            created_at: token.created_at.to_rfc3339(),
            expires_at: token.expires_at.to_rfc3339(),
            revoked_at: token.revoked_at.map(UnixMillis::to_rfc3339),
            collectors: in_use.get(token.id.as_str()).copied().unwrap_or(0),
        })
        .collect();
    Ok(Reply(EnrollmentTokenList { enrollment_tokens }))
}

/// `DELETE /enrollment-tokens/{id}`: revoked when this returns; the agents still using it are
/// disconnected and refused from then on.
pub(super) async fn revoke(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    state
        .raft
        .propose(Command::RevokeEnrollmentToken { id: path.into_inner(), at: UnixMillis::now() })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
