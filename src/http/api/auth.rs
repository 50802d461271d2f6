//! `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::login_guard::LoginGuard;
use crate::http::principal::{Principal, PrincipalKind, SESSION_COOKIE};
use crate::http::AppState;
use crate::http::{client_addr, untrusted_text};
use crate::model::{Command, UnixMillis};
use crate::secrets;

/// No user can have a longer name (`validate_name`).
const MAX_USERNAME_CHARS: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: String,
    password: String,
}

fn is_tls(request: &HttpRequest, state: &AppState) -> bool {
    request.connection_info().scheme() == "https"
        || state.config.external_url.as_deref().is_some_and(|url| url.starts_with("https://"))
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
    let slot = guard.hashing_slot().await?;
    // Failures recorded while this login queued for a slot count too.
    guard.admit(client, &username, UnixMillis::now())?;
    let user = state.raft.state().fleet.user_by_name(&username).cloned();
    // Unknown users still cost one argon2 verification, so timing does not reveal which names exist.
    let phc = user.as_ref().map(|user| user.password_hash.clone()).unwrap_or_else(|| DUMMY_PHC.to_owned());
    let verified = web::block(move || secrets::verify_password(&password, &phc))
        .await
        .map_err(|error| ApiError::internal("verify password", error))?;
    drop(slot);
    let Some(user) = user.filter(|_| verified) else {
        guard.record_failure(client, &username, UnixMillis::now());
        tracing::info!(username = %untrusted_text::loggable(&username), client = %client, "login rejected");
        return Err(ApiError::unauthenticated("invalid username or password"));
    };
    guard.record_success(client, &username);
    let minted = secrets::mint_token(secrets::SESSION_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint session", error))?;
    let now = UnixMillis::now();
    state
        .raft
        .propose(Command::CreateSession {
            session_hash: minted.hash,
            user_id: user.id.clone(),
            expires_at: now.plus(state.config.session_ttl),
            at: now,
        })
        .await?;
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(session_hash) = principal.session_hash {
        state.raft.propose(Command::DeleteSession { session_hash }).await?;
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    removal.make_removal();
    Ok(HttpResponse::NoContent().cookie(removal).finish())
}

pub(super) async fn me(principal: Principal) -> HttpResponse {
    let kind = match principal.kind {
        PrincipalKind::User => "user",
        PrincipalKind::ServiceAccount => "service_account",
    };
    HttpResponse::Ok().json(serde_json::json!({
        "id": principal.id, "name": principal.name, "role": principal.role.as_str(), "kind": kind
    }))
}

/// An argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0Q8bzGgvH2Gj4sXq1r3m9bYbY2aZ8ZtC9m3n2Tq4yUo";
