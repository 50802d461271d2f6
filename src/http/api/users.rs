//! Password users: `GET|POST /users`, `PATCH|DELETE /users/{id}` (admin only); a user's password
//! (`POST /users/{id}/password`: their own with the current one, or an admin) and sessions
//! (`DELETE /users/{id}/sessions`: their own, or an admin). The bootstrap `admin` is created by
//! `Command::Bootstrap`; the others are added here (Settings → Users in the UI).
//!
//! Disabling, deleting and changing a password end the user's sessions in the same command, so the
//! next request with one of them is refused. The last enabled admin cannot be disabled, demoted or
//! deleted (409 `failed_precondition`).

use std::path::Path;

use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handler_types::Reply;
use super::validate_name;
use crate::error::{ApiError, ErrorCode};
use crate::http::client_addr;
use crate::http::login_guard::LoginGuard;
use crate::http::principal::{Principal, PrincipalKind};
use crate::http::AppState;
use crate::model::{Command, Role, UnixMillis, User};
use crate::secrets;

/// Shortest password accepted for a new user.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Deserialize, JsonSchema)]
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
) -> Result<Reply<CreatedUser, 201>, ApiError> {
    principal.require_access_admin()?;
    let CreateUser { username, password, role } = body.into_inner();
    validate_name("username", &username)?;
    if username.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_field("username", "must not contain spaces"));
    }
    let role = Role::parse(&role).ok_or_else(|| {
        ApiError::invalid_field("role", "must be one of admin, operator, pipeline_engineer, viewer")
    })?;
    validate_new_password("password", &password)?;
    if state.raft.state().fleet.user_by_name(&username).is_some() {
        return Err(ApiError::new(
            crate::error::ErrorCode::AlreadyExists,
            format!("user {username:?} already exists"),
        ));
    }
    let password_hash = hash_new_password(&guard, password).await?;
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
    Ok(Reply(CreatedUser { id, username, role: role.as_str() }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct CreatedUser {
    id: String,
    username: String,
    role: &'static str,
}

pub(super) async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<Reply<UserList>, ApiError> {
    principal.require_access_admin()?;
    let users = state.raft.state().fleet.users.values().map(user_view).collect();
    Ok(Reply(UserList { users }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct UserList {
    users: Vec<UserView>,
}

#[derive(Serialize, JsonSchema)]
pub(super) struct UserView {
    id: String,
    username: String,
    /// `admin`, `operator`, `pipeline_engineer` or `viewer`.
    role: &'static str,
    /// A disabled user cannot sign in.
    disabled: bool,
    created_at: String,
}

fn user_view(user: &User) -> UserView {
    UserView {
        id: user.id.clone(),
        username: user.username.clone(),
        role: user.role.as_str(),
        disabled: user.disabled,
        created_at: user.created_at.to_rfc3339(),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateUser {
    role: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /users/{id}` `{"role"?,"disabled"?}`: disabling ends the user's sessions.
pub(super) async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<Reply<UserView>, ApiError> {
    principal.require_access_admin()?;
    let id = path.into_inner();
    let UpdateUser { role, disabled } = body.into_inner();
    let role = role
        .map(|role| {
            Role::parse(&role).ok_or_else(|| {
                ApiError::invalid_field("role", "must be one of admin, operator, pipeline_engineer, viewer")
            })
        })
        .transpose()?;
    if role.is_none() && disabled.is_none() {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "nothing to change: give role or disabled"));
    }
    user_or_404(&state, &id)?;
    state.raft.propose(Command::UpdateUser { id: id.clone(), role, disabled, at: UnixMillis::now() }).await?;
    let updated = user_or_404(&state, &id)?;
    Ok(Reply(user_view(&updated)))
}

/// `DELETE /users/{id}`: the user and its sessions are gone when this returns.
pub(super) async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_access_admin()?;
    let id = path.into_inner();
    let user = user_or_404(&state, &id)?;
    state.raft.propose(Command::DeleteUser { id }).await?;
    if user.username == BOOTSTRAP_ADMIN {
        remove_initial_password_file(&state.config.data_dir);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangePassword {
    current_password: Option<String>,
    new_password: String,
}

/// `POST /users/{id}/password`: a user changes their own with the current password (their other
/// sessions end, the one they used stays); an admin sets anyone's (all of that user's sessions end).
pub(super) async fn change_password(
    request: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
    guard: web::Data<LoginGuard>,
    path: web::Path<String>,
    body: web::Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let user = user_or_404(&state, &id)?;
    let is_self = principal.kind == PrincipalKind::User && principal.id == id;
    if !is_self {
        principal.require_access_admin().map_err(|_| {
            ApiError::permission_denied("only admins change other users' passwords; use your own user id")
        })?;
    }
    let ChangePassword { current_password, new_password } = body.into_inner();
    validate_new_password("new_password", &new_password)?;
    if is_self {
        let current = current_password.ok_or_else(|| {
            ApiError::invalid_field("current_password", "is required to change your own password")
        })?;
        verify_current_password(&request, &guard, &user, current).await?;
    }
    let password_hash = hash_new_password(&guard, new_password).await?;
    let keep_session = if is_self { principal.session_hash.map(hex::encode) } else { None };
    state
        .raft
        .propose(Command::SetUserPassword { user_id: id, password_hash, keep_session, at: UnixMillis::now() })
        .await?;
    if user.username == BOOTSTRAP_ADMIN {
        remove_initial_password_file(&state.config.data_dir);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /users/{id}/sessions`: signs the user out everywhere (their own, or an admin for anyone).
pub(super) async fn delete_sessions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    user_or_404(&state, &id)?;
    let is_self = principal.kind == PrincipalKind::User && principal.id == id;
    if !is_self {
        principal.require_access_admin().map_err(|_| {
            ApiError::permission_denied("only admins end other users' sessions; use your own user id")
        })?;
    }
    state.raft.propose(Command::DeleteUserSessions { user_id: id }).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The user `Command::Bootstrap` creates, whose generated password may sit in the data dir.
const BOOTSTRAP_ADMIN: &str = "admin";

fn user_or_404(state: &AppState, id: &str) -> Result<User, ApiError> {
    state.raft.state().fleet.users.get(id).cloned().ok_or_else(|| ApiError::not_found("user", id))
}

fn validate_new_password(field: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > secrets::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {} bytes", secrets::MAX_PASSWORD_BYTES),
        ));
    }
    Ok(())
}

async fn hash_new_password(guard: &LoginGuard, password: String) -> Result<String, ApiError> {
    guard
        .hash(move || secrets::hash_password(&password))
        .await?
        .map_err(|error| ApiError::internal("hash password", error))
}

/// The current password, checked under the login throttle: a stolen session must not become an
/// unthrottled password oracle.
async fn verify_current_password(
    request: &HttpRequest,
    guard: &LoginGuard,
    user: &User,
    password: String,
) -> Result<(), ApiError> {
    if password.len() > secrets::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field("current_password", "is not the current password"));
    }
    let client = client_addr::of(request);
    guard.admit(client, &user.username, UnixMillis::now())?;
    let slot = guard.hashing_slot().await?;
    // Failures recorded while this check queued for a slot count too.
    guard.admit(client, &user.username, UnixMillis::now())?;
    let phc = user.password_hash.clone();
    let verified = slot.run(move || secrets::verify_password(&password, &phc)).await?;
    if !verified {
        guard.record_failure(client, &user.username, UnixMillis::now());
        return Err(ApiError::invalid_field("current_password", "is not the current password"));
    }
    Ok(())
}

/// The generated bootstrap password is useless once changed (or its user is gone): remove its copy.
fn remove_initial_password_file(data_dir: &Path) {
    let path = data_dir.join(secrets::INITIAL_ADMIN_PASSWORD_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "removed the initial admin password file"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "cannot remove the initial admin password file")
        }
    }
}
