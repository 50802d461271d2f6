//! Collector authentication, shared by every collector-facing adapter (remotecfg polls, own_metrics
//! pushes): only `Authorization: Bearer <collector token>`, resolved against this node's replica of the
//! token index (a read lock, no Raft round trip), hashes compared in constant time. A follower or
//! learner that does not know the hash first waits for one coalesced catch-up to the leader's read
//! index (`cluster/read_index.rs`): the token may have been minted through another node a moment ago.

use actix_web::http::header;
use actix_web::HttpRequest;

use super::AppState;
use crate::actors::RegistryError;
use crate::cluster::forward::{self, Owner};
use crate::cluster::read_index::{self, CatchUpOutcome};
use crate::error::ApiError;
use crate::model::TokenHash;
use crate::secrets;

/// A collector authenticated on this node's replica, with the hash of the token it presented (the
/// owner checks that hash again when the call is forwarded to it).
pub struct AuthenticatedCollector {
    pub collector_id: String,
    pub token_hash: TokenHash,
    /// The token is the collector's rotated-out one on this replica, and another node owns the
    /// collector: only the owner's replica may refuse it. A rotation returns once the owner applied it
    /// (or its lease ran out), so until then the owner may still accept the old token; refusing it
    /// here first would let a collector see its old token refused, then accepted (not linearizable).
    /// Such a call is forwarded, never served here: see [`AuthenticatedCollector::check_served_here`].
    pub owner_decides: bool,
    /// The collector's current config version on the replica that authenticated the call (0 when
    /// unknown): the actor renders again before answering a poll when it has an older one.
    pub config_version: u64,
}

impl AuthenticatedCollector {
    /// Refuses, as the edge would have, a call the owner was to decide on when this node turns out to
    /// be the owner (its replica already holds the rotation).
    pub fn check_served_here(&self, token_setting: &str) -> Result<(), ApiError> {
        if self.owner_decides {
            Err(invalid_token(token_setting))
        } else {
            Ok(())
        }
    }
}

impl AuthenticatedCollector {
    /// The owner's refusal (this node's registry) as the edge answers it: a token that stopped being
    /// current between the edge's check and the owner's ([`RegistryError::TokenNotCurrent`]) gets the
    /// 401 the edge would have given, and, when it was the collector's rotated-out token, the operator
    /// is told as for any such call.
    pub fn owner_refusal(&self, state: &AppState, error: RegistryError, token_setting: &str) -> ApiError {
        let RegistryError::TokenNotCurrent = error else {
            return error.into();
        };
        if rotated_out_collector(state, &self.token_hash).as_deref() == Some(self.collector_id.as_str()) {
            state.registry.auth_failed(&self.collector_id);
        }
        invalid_token(token_setting)
    }
}

fn invalid_token(token_setting: &str) -> ApiError {
    ApiError::unauthenticated(format!(
        "invalid or rotated collector token: re-mint it on the collector page and update {token_setting}"
    ))
}

/// The credentials of `Authorization: Bearer <credentials>`; a missing header or another scheme is
/// refused with what to fix.
fn bearer<'r>(request: &'r HttpRequest, token_setting: &str) -> Result<&'r str, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthenticated(format!(
            "missing Authorization header: set {token_setting} to the collector token minted in linkmesh"
        )));
    };
    let value = value.to_str().unwrap_or_default();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthenticated(format!(
            "linkmesh accepts only the Bearer scheme, not {scheme:?}: set {token_setting} (not basic_auth) \
             to the collector token minted in linkmesh"
        )));
    }
    Ok(credentials.trim())
}

/// Resolves the collector from its bearer token, or from its derived OpAMP credential (`lmoc_…`).
/// `token_setting` names where the operator puts the token on this path (`remotecfg.bearer_token`,
/// …), so the error says what to fix.
pub async fn authenticate_collector(
    request: &HttpRequest,
    state: &AppState,
    token_setting: &str,
) -> Result<AuthenticatedCollector, ApiError> {
    let credentials = bearer(request, token_setting)?;
    let presented_hash = secrets::hash_token(credentials);
    let derived_for = secrets::opamp_credential_collector(credentials);
    let lookup = |state: &AppState| match derived_for {
        Some(collector_id) => derived_collector(state, collector_id, &presented_hash),
        None => collector_of_hash(state, &presented_hash),
    };
    let mut found = lookup(state);
    if found.is_none() {
        match read_index::catch_up(&state.raft).await {
            CatchUpOutcome::CaughtUp => found = lookup(state),
            CatchUpOutcome::Failed => return Err(read_index::unconfirmed_token()),
            CatchUpOutcome::NotNeeded => {}
        }
    }
    if let Some((collector_id, config_version)) = found {
        return Ok(AuthenticatedCollector {
            collector_id,
            token_hash: presented_hash,
            owner_decides: false,
            config_version,
        });
    }
    match rotated_out_elsewhere(state, &presented_hash) {
        Some(collector_id) => Ok(AuthenticatedCollector {
            collector_id,
            token_hash: presented_hash,
            owner_decides: true,
            config_version: 0,
        }),
        None => Err(invalid_token(token_setting)),
    }
}

/// Who presented an OpAMP agent's credentials: a collector (its token or derived credential), or an
/// agent presenting an enrollment token, whose collector its instance uid decides
/// (`http/opamp_enroll.rs`).
pub enum AgentCaller {
    Collector(AuthenticatedCollector),
    Enrolling(EnrollmentCaller),
}

/// An enrollment token that still authenticates on this replica.
#[derive(Debug, Clone)]
pub struct EnrollmentCaller {
    pub token_id: String,
    pub token_hash: TokenHash,
}

/// [`authenticate_noting_rotated`] for `/v1/opamp`, which also takes enrollment tokens (`lmet_…`).
pub async fn authenticate_agent(
    request: &HttpRequest,
    state: &AppState,
    token_setting: &str,
) -> Result<AgentCaller, ApiError> {
    let credentials = bearer(request, token_setting)?;
    if !credentials.starts_with(secrets::ENROLLMENT_TOKEN_PREFIX) {
        return authenticate_noting_rotated(request, state, token_setting).await.map(AgentCaller::Collector);
    }
    let presented_hash = secrets::hash_token(credentials);
    let mut found = enrollment_of_hash(state, &presented_hash);
    if found.is_none() {
        match read_index::catch_up(&state.raft).await {
            CatchUpOutcome::CaughtUp => found = enrollment_of_hash(state, &presented_hash),
            CatchUpOutcome::Failed => return Err(read_index::unconfirmed_token()),
            CatchUpOutcome::NotNeeded => {}
        }
    }
    match found {
        Some(Ok(token_id)) => {
            Ok(AgentCaller::Enrolling(EnrollmentCaller { token_id, token_hash: presented_hash }))
        }
        Some(Err(refusal)) => Err(ApiError::unauthenticated(refusal)),
        None => Err(ApiError::unauthenticated(
            "unknown enrollment token (mistyped, or created by another linkmesh): create one in linkmesh \
             (Collectors → Enroll, or `linkmesh enrollment-token create`)",
        )),
    }
}

/// The enrollment token with this hash on this replica: its id, or why it no longer authenticates.
fn enrollment_of_hash(state: &AppState, presented_hash: &TokenHash) -> Option<Result<String, String>> {
    let applied = state.raft.state();
    let token = applied.fleet.enrollment_tokens.by_hash(presented_hash)?;
    if !secrets::token_hashes_equal(&token.token_hash, presented_hash) {
        return None;
    }
    Some(token.check_authenticates().map(|()| token.id.clone()).map_err(|refusal| refusal.to_string()))
}

/// The collector a derived credential names, with its config version, when the credential is that
/// collector's current one on this replica.
fn derived_collector(
    state: &AppState,
    collector_id: &str,
    presented_hash: &TokenHash,
) -> Option<(String, u64)> {
    let applied = state.raft.state();
    let record = applied.fleet.collector(collector_id)?;
    let version = record.current_config().map_or(0, |config| config.version);
    crate::opamp::credentials::authenticates(&applied.fleet, &state.data_key, record, presented_hash)
        .then(|| (record.id.clone(), version))
}

/// The collector whose rotated-out token `presented_hash` is on this replica, or whose current token it
/// was when it was deleted, when another node owns it: that owner may not have applied the rotation or
/// the deletion yet, and until it has (or its lease ended) the call has not returned.
fn rotated_out_elsewhere(state: &AppState, presented_hash: &TokenHash) -> Option<String> {
    let collector_id = rotated_out_collector(state, presented_hash).or_else(|| {
        state.raft.state().fleet.deleted_collector_by_token_hash(presented_hash).map(str::to_owned)
    })?;
    (forward::owner_of(&state.raft, &collector_id) != Owner::Here).then_some(collector_id)
}

/// The collector whose current token `presented_hash` is on this replica, with its config version.
fn collector_of_hash(state: &AppState, presented_hash: &[u8; 32]) -> Option<(String, u64)> {
    let applied = state.raft.state();
    let record = applied.fleet.collector_by_token_hash(presented_hash)?;
    let token = record.token.as_ref()?;
    let version = record.current_config().map_or(0, |config| config.version);
    secrets::token_hashes_equal(&token.hash, presented_hash).then(|| (record.id.clone(), version))
}

/// The collector whose previous, rotated-out token has this hash on this replica (compared in
/// constant time).
fn rotated_out_collector(state: &AppState, presented_hash: &TokenHash) -> Option<String> {
    let applied = state.raft.state();
    let record = applied.fleet.collector_by_rotated_token_hash(presented_hash)?;
    secrets::token_hash_matches_hex(record.rotated_token_hash.as_deref(), presented_hash)
        .then(|| record.id.clone())
}

/// The collector whose previous, rotated-out token a rejected request presented, if any: the only
/// rejected calls worth telling an operator about (a collector still configured with the old token).
/// Nothing else a stranger sends — host ids, made-up tokens — can reach a collector's events.
pub fn rotated_token_owner(request: &HttpRequest, state: &AppState) -> Option<String> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    rotated_out_collector(state, &secrets::hash_token(credentials.trim()))
}

/// [`authenticate_collector`] for the adapters whose refusals an operator should hear of (remotecfg,
/// OpAMP): a call refused for presenting the collector's rotated-out token is noted on the collector.
pub async fn authenticate_noting_rotated(
    request: &HttpRequest,
    state: &AppState,
    token_setting: &str,
) -> Result<AuthenticatedCollector, ApiError> {
    let refused = match authenticate_collector(request, state, token_setting).await {
        Ok(collector) => return Ok(collector),
        Err(refused) => refused,
    };
    if let Some(collector_id) = rotated_token_owner(request, state) {
        state.registry.auth_failed(&collector_id);
    }
    Err(refused)
}
