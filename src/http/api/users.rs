//! Password users (admin only): `GET /users`, `POST /users`. The bootstrap `admin` is created by
//! `Command::Bootstrap`; these are the operators added after it (Settings → Users in the UI).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::validate_name;
use crate::error::ApiError;
use crate::http::login_guard::LoginGuard;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::{Command, Role, UnixMillis};
use crate::secrets;

/// Shortest password accepted for a new user.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateUser {
    username: String,
    password: String,
    role: String,
}

pub(super) async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    guard: web::Data<LoginGuard>,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let CreateUser { username, password, role } = body.into_inner();
    validate_name("username", &username)?;
    if username.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field("username", "must not contain spaces"));
    }
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::invalid_field("role", "must be one of admin, operator, pipeline_engineer, viewer")
    })?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > secrets::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be at most {} bytes", secrets::MAX_PASSWORD_BYTES),
        ));
    }
    if state.raft.state().fleet.user_by_name(&username).is_some() {
        return Err(ApiError::new(
            crate::error::ErrorCode::AlreadyExists,
            format!("user {username:?} already exists"),
        ));
    }
    let slot = guard.hashing_slot().await?;
    let password_hash = web::block(move || secrets::hash_password(&password))
        .await
        .map_err(|error| ApiError::internal("hash password", error))?
        .map_err(|error| ApiError::internal("hash password", error))?;
    drop(slot);
    let id = secrets::random_id("usr").map_err(|error| ApiError::internal("user id", error))?;
    state
        .raft
        .propose(Command::CreateUser {
            id: id.clone(),
            username: username.clone(),
            role,
            password_hash,
            at: UnixMillis::now(),
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": id, "username": username, "role": role.as_str()
    })))
}

pub(super) async fn list(principal: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let users: Vec<serde_json::Value> = state
        .raft
        .state()
        .fleet
        .users
        .values()
        .map(|user| {
            serde_json::json!({
                "id": user.id, "username": user.username, "role": user.role.as_str(),
                "created_at": user.created_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users })))
}
