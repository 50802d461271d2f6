//! `POST /auth/login`, `POST /auth/logout`, `GET /auth/me`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::principal::{Principal, PrincipalKind, SESSION_COOKIE};
use crate::http::AppState;
use crate::model::{Command, UnixMillis};
use crate::secrets;

#[derive(Deserialize)]
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
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    let user = state.raft.state().fleet.user_by_name(&username).cloned();
    // Unknown users still cost one argon2 verification, so timing does not reveal which names exist.
    let phc = user.as_ref().map(|user| user.password_hash.clone()).unwrap_or_else(|| DUMMY_PHC.to_owned());
    let verified = web::block(move || secrets::verify_password(&password, &phc))
        .await
        .map_err(|error| ApiError::internal("verify password", error))?;
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!(username = %username, "login rejected");
        return Err(ApiError::unauthenticated("invalid username or password"));
    };
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
