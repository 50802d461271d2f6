//! Service accounts and their `lmsat_` tokens (admin only): create, list, revoke.
//!
//! A token expires after `expires_in_days` (365 by default; `0`, never, only when
//! `auth.allow_non_expiring_tokens` is set). Revoking a token or deleting its account removes its hash
//! from the replicated index before the call returns, so the next request with it is refused.
//! `last_used_at` is coarse (`auth.token_last_used_interval`, written in batches by the audit writer).

use actix_web::{web, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handler_types::Reply;
use super::validate_name;
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::{Command, Role, UnixMillis};
use crate::secrets;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateServiceAccount {
    name: String,
    role: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    #[serde(default)]
    label: String,
    expires_in_days: Option<u32>,
}

pub(super) async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<CreateServiceAccount>,
) -> Result<Reply<ServiceAccountView, 201>, ApiError> {
    principal.require_access_admin()?;
    let CreateServiceAccount { name, role } = body.into_inner();
    validate_name("name", &name)?;
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::invalid_field("role", "must be one of admin, operator, pipeline_engineer, viewer")
    })?;
    let id = secrets::random_id("sa").map_err(|error| ApiError::internal("service account id", error))?;
    state
        .raft
        .propose(Command::CreateServiceAccount {
            id: id.clone(),
            name: name.clone(),
            role,
            at: UnixMillis::now(),
        })
        .await?;
    Ok(Reply(ServiceAccountView { id, name, role: role.as_str(), created_at: None }))
}

/// A service account; `created_at` only in lists.
#[derive(Serialize, JsonSchema)]
pub(super) struct ServiceAccountView {
    id: String,
    name: String,
    /// `admin`, `operator`, `pipeline_engineer` or `viewer`.
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct ServiceAccountList {
    service_accounts: Vec<ServiceAccountView>,
}

pub(super) async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<Reply<ServiceAccountList>, ApiError> {
    principal.require_access_admin()?;
    let service_accounts = state
        .raft
        .state()
        .fleet
        .service_accounts
        .values()
        .map(|account| ServiceAccountView {
            id: account.id.clone(),
            name: account.name.clone(),
            role: account.role.as_str(),
            created_at: Some(account.created_at.to_rfc3339()),
        })
        .collect();
    Ok(Reply(ServiceAccountList { service_accounts }))
}

pub(super) async fn create_token(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateToken>,
) -> Result<Reply<MintedToken, 201>, ApiError> {
    principal.require_access_admin()?;
    let service_account_id = path.into_inner();
    let CreateToken { label, expires_in_days } = body.into_inner();
    if !label.is_empty() {
        validate_name("label", &label)?;
    }
    let days = expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if days == 0 && !state.config.auth.allow_non_expiring_tokens {
        return Err(ApiError::invalid_field(
            "expires_in_days",
            "0 (never expires) is refused unless auth.allow_non_expiring_tokens is set",
        ));
    }
    if days > MAX_TOKEN_DAYS {
        return Err(ApiError::invalid_field("expires_in_days", format!("must be at most {MAX_TOKEN_DAYS}")));
    }
    let minted = secrets::mint_token(secrets::SERVICE_ACCOUNT_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint service account token", error))?;
    let id = secrets::random_id("sat").map_err(|error| ApiError::internal("token id", error))?;
    let now = UnixMillis::now();
    let expires_at = (days > 0).then(|| now.plus(std::time::Duration::from_secs(u64::from(days) * 86_400)));
    state
        .raft
        .propose(Command::CreateServiceAccountToken {
            id: id.clone(),
            service_account_id,
            label,
            token_hash: minted.hash,
            prefix: minted.display_prefix.clone(),
            expires_at,
            at: now,
        })
        .await?;
    Ok(Reply(MintedToken {
        token: minted.token,
        id,
        prefix: minted.display_prefix,
        expires_at: expires_at.map(UnixMillis::to_rfc3339),
    }))
}

/// A new service-account token: the only answer that ever shows it.
#[derive(Serialize, JsonSchema)]
pub(super) struct MintedToken {
    /// `lmsat_…`, for `Authorization: Bearer`.
    token: String,
    id: String,
    prefix: String,
    /// `null`: never expires.
    expires_at: Option<String>,
}

/// Days a token lives when the request does not say.
const DEFAULT_TOKEN_DAYS: u32 = 365;
/// Longest expiry a request may ask for (ten years); `0` is "never", where allowed.
const MAX_TOKEN_DAYS: u32 = 3650;

/// `GET /service-accounts/{id}/tokens`: the account's tokens, never the token itself.
pub(super) async fn list_tokens(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<TokenList>, ApiError> {
    principal.require_access_admin()?;
    let account_id = path.into_inner();
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    if !fleet.service_accounts.contains_key(&account_id) {
        return Err(ApiError::not_found("service account", &account_id));
    }
    let mut tokens: Vec<&crate::model::ServiceAccountToken> = fleet
        .service_account_tokens
        .values()
        .filter(|token| token.service_account_id == account_id)
        .collect();
    tokens.sort_by_key(|token| (token.created_at, token.id.clone()));
    let tokens = tokens
        .into_iter()
        .map(|token| ServiceAccountTokenView {
            id: token.id.clone(),
            label: token.label.clone(),
            prefix: (!token.prefix.is_empty()).then(|| token.prefix.clone()),
            created_at: token.created_at.to_rfc3339(),
            expires_at: token.expires_at.map(UnixMillis::to_rfc3339),
            last_used_at: token.last_used_at.map(UnixMillis::to_rfc3339),
        })
        .collect();
    Ok(Reply(TokenList { tokens }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct TokenList {
    /// Oldest first.
    tokens: Vec<ServiceAccountTokenView>,
}

/// A service-account token as listed: never the token itself.
#[derive(Serialize, JsonSchema)]
struct ServiceAccountTokenView {
    id: String,
    label: String,
    /// `null` when none was kept for the token.
    prefix: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
}

/// `DELETE /service-accounts/{id}/tokens/{token_id}`: the token is refused from the moment this returns.
pub(super) async fn delete_token(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let (service_account_id, id) = path.into_inner();
    state.raft.propose(Command::DeleteServiceAccountToken { service_account_id, id }).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /service-accounts/{id}`: the account and every one of its tokens are gone when this returns.
pub(super) async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    state.raft.propose(Command::DeleteServiceAccount { id: path.into_inner() }).await?;
    Ok(HttpResponse::NoContent().finish())
}
