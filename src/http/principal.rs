//! Operator authentication: a session cookie (browser) or `Authorization: Bearer lmsat_…` (automation).
//!
//! Cookie-authenticated unsafe requests must also pass the cross-site check of [`super::csrf`].

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest};

use super::AppState;
use crate::audit::AuditQueue;
use crate::error::ApiError;
use crate::model::{Role, UnixMillis};
use crate::secrets;

pub const SESSION_COOKIE: &str = "linkmesh_session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ServiceAccount,
}

/// Who is calling, resolved against this node's replica.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The session hash when authenticated by cookie (for logout).
    pub session_hash: Option<[u8; 32]>,
}

impl Principal {
    pub fn require_collector_admin(&self) -> Result<(), ApiError> {
        if self.role.can_manage_collectors() {
            Ok(())
        } else {
            Err(ApiError::permission_denied(format!("role {} cannot change collectors", self.role.as_str())))
        }
    }

    /// Pipelines are tenant-wide: pipeline engineers and admins may change them.
    pub fn require_pipeline_admin(&self) -> Result<(), ApiError> {
        if self.role.can_manage_pipelines() {
            Ok(())
        } else {
            Err(ApiError::permission_denied(format!("role {} cannot change pipelines", self.role.as_str())))
        }
    }

    /// Cluster administration (join tokens, membership): admins.
    pub fn require_cluster_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::permission_denied(format!(
                "role {} cannot administer the cluster",
                self.role.as_str()
            )))
        }
    }

    pub fn require_access_admin(&self) -> Result<(), ApiError> {
        if self.role.can_manage_access() {
            Ok(())
        } else {
            Err(ApiError::permission_denied(format!(
                "role {} cannot manage users or service accounts",
                self.role.as_str()
            )))
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Principal, ApiError>>;

    /// The principal the route's access check already resolved (`api/routes.rs`), else resolved here.
    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        if let Some(principal) = request.extensions().get::<Principal>() {
            return ready(Ok(principal.clone()));
        }
        ready(authenticate(request))
    }
}

/// Resolves the caller of `request` (also used by the audit middleware to name the actor).
pub(crate) fn authenticate(request: &HttpRequest) -> Result<Principal, ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("authenticate", "application state missing"))?;
    let now = UnixMillis::now();
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthenticated("only Bearer service-account tokens are accepted"));
        }
        let queue = request.app_data::<web::Data<AuditQueue>>().map(|data| data.get_ref());
        return service_account(state, queue, token.trim(), now);
    }
    if let Some(cookie) = request.cookie(SESSION_COOKIE) {
        // The one place cookie principals are made, so no route can forget the forgery check.
        super::csrf::check(request, state.config.external_url.as_deref())?;
        return session(state, cookie.value(), now);
    }
    Err(ApiError::unauthenticated("sign in, or send Authorization: Bearer <service-account token>"))
}

fn service_account(
    state: &AppState,
    usage: Option<&AuditQueue>,
    token: &str,
    now: UnixMillis,
) -> Result<Principal, ApiError> {
    let rejected = || ApiError::unauthenticated("invalid or expired service-account token");
    if !token.starts_with(secrets::SERVICE_ACCOUNT_TOKEN_PREFIX) {
        return Err(rejected());
    }
    let hash = secrets::hash_token(token);
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    let stored = fleet.service_account_token_by_hash(&hash).ok_or_else(rejected)?;
    if !secrets::token_hashes_equal(&stored.token_hash, &hash)
        || stored.expires_at.is_some_and(|expiry| expiry <= now)
    {
        return Err(rejected());
    }
    let account = fleet.service_accounts.get(&stored.service_account_id).ok_or_else(rejected)?;
    // `last_used_at` is coarse on purpose: noted here, written in a batch at most once per interval.
    let interval = state.config.auth.token_last_used_interval;
    if stored.last_used_at.is_none_or(|seen| now.saturating_sub(seen) >= interval) {
        if let Some(usage) = usage {
            usage.note_token_use(&stored.id, now);
        }
    }
    Ok(Principal {
        kind: PrincipalKind::ServiceAccount,
        id: account.id.clone(),
        name: account.name.clone(),
        role: account.role,
        session_hash: None,
    })
}

fn session(state: &AppState, cookie: &str, now: UnixMillis) -> Result<Principal, ApiError> {
    let rejected = || ApiError::unauthenticated("session expired or signed out; sign in again");
    let hash = secrets::hash_token(cookie);
    let applied = state.raft.state();
    let fleet = &applied.fleet;
    let session = fleet.sessions.get(&hex::encode(hash)).ok_or_else(rejected)?;
    if session.expires_at <= now {
        return Err(rejected());
    }
    let user = fleet.users.get(&session.user_id).filter(|user| !user.disabled).ok_or_else(rejected)?;
    Ok(Principal {
        kind: PrincipalKind::User,
        id: user.id.clone(),
        name: user.username.clone(),
        role: user.role,
        session_hash: Some(hash),
    })
}
