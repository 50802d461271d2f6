//! Service accounts and their `lmsat_` tokens (admin only).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::validate_name;
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::{Command, Role, UnixMillis};
use crate::secrets;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateServiceAccount {
    name: String,
    role: String,
}

#[derive(Deserialize)]
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
) -> Result<HttpResponse, ApiError> {
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
    Ok(HttpResponse::Created().json(serde_json::json!({ "id": id, "name": name, "role": role.as_str() })))
}

pub(super) async fn list(principal: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let accounts: Vec<serde_json::Value> = state
        .raft
        .state()
        .fleet
        .service_accounts
        .values()
        .map(|account| {
            serde_json::json!({
                "id": account.id, "name": account.name, "role": account.role.as_str(),
                "created_at": account.created_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "service_accounts": accounts })))
}

pub(super) async fn create_token(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let service_account_id = path.into_inner();
    let CreateToken { label, expires_in_days } = body.into_inner();
    if !label.is_empty() {
        validate_name("label", &label)?;
    }
    if expires_in_days == Some(0) {
        return Err(ApiError::invalid_field("expires_in_days", "must be at least 1"));
    }
    let minted = secrets::mint_token(secrets::SERVICE_ACCOUNT_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint service account token", error))?;
    let id = secrets::random_id("sat").map_err(|error| ApiError::internal("token id", error))?;
    let now = UnixMillis::now();
    let expires_at =
        expires_in_days.map(|days| now.plus(std::time::Duration::from_secs(u64::from(days) * 86_400)));
    state
        .raft
        .propose(Command::CreateServiceAccountToken {
            id: id.clone(),
            service_account_id,
            label,
            token_hash: minted.hash,
            expires_at,
            at: now,
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "token": minted.token,
        "id": id,
        "prefix": minted.display_prefix,
        "expires_at": expires_at.map(UnixMillis::to_rfc3339),
    })))
}
