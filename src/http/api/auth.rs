//! `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`, and a user's sessions:
//! `GET /auth/sessions`, `DELETE /auth/sessions/{id}` (their own; admins: anyone's).
//!
//! A session's public id is the first characters of the hash its cookie is stored under
//! (`model::auth::session_id`); the cookie itself is never stored or shown.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handler_types::Reply;
use crate::error::ApiError;
use crate::http::login_guard::LoginGuard;
use crate::http::principal::{Principal, PrincipalKind, SESSION_COOKIE};
use crate::http::AppState;
use crate::http::{audit, client_addr, untrusted_text};
use crate::model::auth::session_id;
use crate::model::{ActorKind, Command, UnixMillis};
use crate::secrets;

/// No user can have a longer name (`validate_name`).
const MAX_USERNAME_CHARS: usize = 128;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: String,
    password: String,
}

/// Whether browsers reach this server over HTTPS, so the session cookie must be `Secure`: TLS served here,
/// an https `external_url` (TLS terminated at a proxy), or a request that arrived as https.
fn is_tls(request: &HttpRequest, state: &AppState) -> bool {
    state.config.tls.enabled()
        || state.config.external_url.as_deref().is_some_and(|url| url.starts_with("https://"))
        || request.connection_info().scheme() == "https"
}

pub(super) async fn login(
    request: HttpRequest,
    state: web::Data<AppState>,
    guard: web::Data<LoginGuard>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    // A forged login would sign the victim's browser in to the attacker's account.
    crate::http::csrf::check(&request, state.config.external_url.as_deref())?;
    let LoginRequest { username, password } = body.into_inner();
    // Bounded before anything is hashed or remembered: argon2 reads all of a password, and the
    // throttle keeps usernames.
    if password.len() > secrets::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be at most {} bytes", secrets::MAX_PASSWORD_BYTES),
        ));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(ApiError::invalid_field(
            "username",
            format!("must be at most {MAX_USERNAME_CHARS} characters"),
        ));
    }
    let client = client_addr::of(&request);
    guard.admit(client, &username, UnixMillis::now())?;
    let user = state.raft.state().fleet.user_by_name(&username).cloned();
    // Unknown users still cost one argon2 verification, so timing does not reveal which names exist.
    let phc = user.as_ref().map(|user| user.password_hash.clone()).unwrap_or_else(|| DUMMY_PHC.to_owned());
    let slot = guard.hashing_slot().await?;
    // Failures recorded while this login queued for a slot count too.
    guard.admit(client, &username, UnixMillis::now())?;
    let verified = slot.run(move || secrets::verify_password(&password, &phc)).await?;
    // A disabled user is answered like a wrong password: the refusal says nothing about the account.
    let Some(user) = user.filter(|user| verified && !user.disabled) else {
        guard.record_failure(client, &username, UnixMillis::now());
        tracing::info!(username = %untrusted_text::loggable(&username), client = %client, "login rejected");
        return Err(ApiError::unauthenticated("invalid username or password"));
    };
    guard.record_success(client, &username);
    let minted = secrets::mint_token(secrets::SESSION_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint session", error))?;
    let now = UnixMillis::now();
    let create_session = state.raft.propose(Command::CreateSession {
        session_hash: minted.hash,
        user_id: user.id.clone(),
        expires_at: now.plus(state.config.session_ttl),
        at: now,
        remote_addr: Some(client.to_string()),
    });
    // A sign-in is audited as the user it signs in (failed ones are not: they are in the log).
    audit::run_as(&request, ActorKind::User, &user.id, &user.username, create_session).await?;
    let cookie = Cookie::build(SESSION_COOKIE, minted.token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(is_tls(&request, &state))
        .max_age(actix_web::cookie::time::Duration::seconds(state.config.session_ttl.as_secs() as i64))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(serde_json::json!({
        "user": { "id": user.id, "username": user.username, "role": user.role.as_str() }
    })))
}

pub(super) async fn logout(
    principal: Principal,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(session_hash) = principal.session_hash {
        state.raft.propose(Command::DeleteSession { session_hash }).await?;
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "").path("/").secure(is_tls(&request, &state)).finish();
    removal.make_removal();
    Ok(HttpResponse::NoContent().cookie(removal).finish())
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionsQuery {
    user_id: Option<String>,
}

/// `GET /auth/sessions`: the caller's sessions; an admin sees everyone's (or one user's with
/// `?user_id=`). `current` marks the session the request came with.
pub(super) async fn list_sessions(
    principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<SessionsQuery>,
) -> Result<Reply<SessionList>, ApiError> {
    let is_admin = principal.role.can_manage_access();
    let own_id = (principal.kind == PrincipalKind::User).then_some(principal.id.as_str());
    let filter = match (&query.user_id, is_admin) {
        (Some(user_id), true) => Some(user_id.as_str()),
        (None, true) => None,
        (Some(user_id), false) if Some(user_id.as_str()) == own_id => own_id,
        (Some(_), false) => {
            return Err(ApiError::permission_denied("only admins list other users' sessions"))
        }
        // A service account has no sessions; an empty filter would list everyone's.
        (None, false) => Some(own_id.unwrap_or("")),
    };
    let current = principal.session_hash.map(hex::encode);
    let now = UnixMillis::now();
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    let sessions = fleet
        .sessions
        .iter()
        .filter(|(_, session)| session.expires_at > now)
        .filter(|(_, session)| filter.is_none_or(|user_id| session.user_id == user_id))
        .map(|(key, session)| SessionView {
            id: session_id(key).to_owned(),
            user_id: session.user_id.clone(),
            username: fleet.users.get(&session.user_id).map(|user| user.username.clone()),
            created_at: session.created_at.to_rfc3339(),
            expires_at: session.expires_at.to_rfc3339(),
            remote_addr: session.remote_addr.clone(),
            current: current.as_deref() == Some(key.as_str()),
        })
        .collect();
    Ok(Reply(SessionList { sessions }))
}

#[derive(Serialize, JsonSchema)]
pub(super) struct SessionList {
    sessions: Vec<SessionView>,
}

#[derive(Serialize, JsonSchema)]
struct SessionView {
    id: String,
    user_id: String,
    /// `null` when the user is gone.
    username: Option<String>,
    created_at: String,
    expires_at: String,
    remote_addr: Option<String>,
    /// The session this request came with.
    current: bool,
}

/// `DELETE /auth/sessions/{id}`: ends one session at once (the caller's own, or any for an admin).
/// Another user's session is "not found" to a non-admin, so ids cannot be probed.
pub(super) async fn delete_session(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let key = {
        let applied = state.raft.state();
        let fleet = &applied.fleet;
        let key = fleet.session_key(&id).map(str::to_owned);
        let owner =
            key.as_ref().and_then(|key| fleet.sessions.get(key)).map(|session| session.user_id.clone());
        let own = principal.kind == PrincipalKind::User && owner.as_deref() == Some(principal.id.as_str());
        key.filter(|_| own || principal.role.can_manage_access())
    };
    let key = key.ok_or_else(|| ApiError::not_found("session", &id))?;
    let mut session_hash = [0u8; 32];
    hex::decode_to_slice(&key, &mut session_hash)
        .map_err(|error| ApiError::internal("session key", error))?;
    state.raft.propose(Command::DeleteSession { session_hash }).await?;
    let mut response = HttpResponse::NoContent();
    if principal.session_hash == Some(session_hash) {
        let mut removal = Cookie::build(SESSION_COOKIE, "").path("/").finish();
        removal.make_removal();
        response.cookie(removal);
    }
    Ok(response.finish())
}

pub(super) async fn me(principal: Principal) -> Reply<Me> {
    let kind = match principal.kind {
        PrincipalKind::User => "user",
        PrincipalKind::ServiceAccount => "service_account",
    };
    Reply(Me { id: principal.id, name: principal.name, role: principal.role.as_str(), kind })
}

/// The caller of `GET /auth/me`.
#[derive(Serialize, JsonSchema)]
pub(super) struct Me {
    id: String,
    name: String,
    /// `admin`, `operator`, `pipeline_engineer` or `viewer`.
    role: &'static str,
    /// `user` or `service_account`.
    kind: &'static str,
}

/// An argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Q8bzGgvH2Gj4sXq1r3m9bYbY2aZ8ZtC9m3n2Tq4yUo";
