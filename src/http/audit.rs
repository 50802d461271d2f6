//! The audit middleware of `/api/v1`: every authenticated request with an unsafe method gets an audit
//! record (actor, client address, route, path), committed with its write or queued with the outcome
//! the caller received (`crate::audit`). Unauthenticated requests are not recorded: anyone could
//! otherwise fill the replicated log; failed logins are in the structured log instead.
//!
//! Nothing from the request's body, headers or query string is recorded.

use std::future::Future;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};

use super::client_addr;
use super::principal::{self, PrincipalKind};
use crate::audit::{AuditQueue, RequestAudit, OUTCOME_OK};
use crate::error::ApiError;
use crate::model::{ActorKind, AuditRecord, UnixMillis};
use crate::raft::ProposeError;
use crate::secrets;

/// Longest recorded path; ids are short, so only a made-up path is ever cut.
const MAX_TARGET_BYTES: usize = 512;

pub async fn record_writes<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.call(request).await;
    }
    record_request(request, next).await
}

/// Records any authenticated request, whatever its method: writes through [`record_writes`], and
/// the reads the route table marks as audited (`GET /backup`, which hands out the data key).
pub async fn record_request<B: MessageBody>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let Some(queue) = request.app_data::<web::Data<AuditQueue>>().map(|data| data.clone().into_inner())
    else {
        return next.call(request).await;
    };
    let Ok(principal) = principal::authenticate(request.request()) else {
        return next.call(request).await;
    };
    let Ok(request_id) = secrets::random_id("req") else {
        return next.call(request).await;
    };
    let kind = match principal.kind {
        PrincipalKind::User => ActorKind::User,
        PrincipalKind::ServiceAccount => ActorKind::ServiceAccount,
    };
    let record = new_record(request.request(), kind, &principal.id, &principal.name, request_id);
    let audit = RequestAudit::new(queue, record);
    let response = audit.clone().scope(next.call(request)).await;
    let outcome = match &response {
        Ok(response) => outcome_of(response.status(), response.response().error()),
        Err(error) => outcome_of(error.as_response_error().status_code(), Some(error)),
    };
    audit.finish(&outcome);
    response
}

/// Runs `write` (a handler's proposal) audited as `actor` — for a request that has no principal yet
/// when it writes: a sign-in is recorded as the user it signs in.
pub async fn run_as(
    request: &HttpRequest,
    kind: ActorKind,
    actor_id: &str,
    actor: &str,
    write: impl Future<Output = Result<(), ProposeError>>,
) -> Result<(), ApiError> {
    let queue = request.app_data::<web::Data<AuditQueue>>().map(|data| data.clone().into_inner());
    let (Some(queue), Ok(request_id)) = (queue, secrets::random_id("req")) else {
        return write.await.map_err(ApiError::from);
    };
    let audit = RequestAudit::new(queue, new_record(request, kind, actor_id, actor, request_id));
    let result = audit.clone().scope(write).await.map_err(ApiError::from);
    audit.finish(result.as_ref().map_or_else(|error| error.code.rest_code(), |()| OUTCOME_OK));
    result
}

fn new_record(
    request: &HttpRequest,
    kind: ActorKind,
    actor_id: &str,
    actor: &str,
    request_id: String,
) -> AuditRecord {
    let path = request.path();
    let route = request.match_pattern().unwrap_or_else(|| path.to_owned());
    AuditRecord {
        request_id,
        ts: UnixMillis::now(),
        actor_kind: kind,
        actor_id: actor_id.to_owned(),
        actor: actor.to_owned(),
        remote_addr: client_addr::of(request).to_string(),
        action: format!("{} {route}", request.method()),
        target: truncate(path, MAX_TARGET_BYTES).to_owned(),
        outcome: String::new(),
        operation: None,
        count: None,
    }
}

/// `ok`, or the REST error code the caller received.
pub fn outcome_of(status: StatusCode, error: Option<&actix_web::Error>) -> String {
    if status.is_success() || status.is_redirection() {
        return OUTCOME_OK.to_owned();
    }
    if let Some(api_error) = error.and_then(|error| error.as_error::<ApiError>()) {
        return api_error.code.rest_code().to_owned();
    }
    match status.as_u16() {
        400 | 405 | 413 | 415 => "invalid_argument",
        401 => "unauthenticated",
        403 => "permission_denied",
        404 => "not_found",
        409 => "failed_precondition",
        429 => "resource_exhausted",
        503 => "unavailable",
        _ => "internal",
    }
    .to_owned()
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_rest_codes() {
        assert_eq!(outcome_of(StatusCode::CREATED, None), "ok");
        assert_eq!(outcome_of(StatusCode::NO_CONTENT, None), "ok");
        let conflict: actix_web::Error =
            ApiError::new(crate::error::ErrorCode::Conflict, "last admin").into();
        assert_eq!(outcome_of(StatusCode::CONFLICT, Some(&conflict)), "failed_precondition");
        assert_eq!(outcome_of(StatusCode::FORBIDDEN, None), "permission_denied");
    }

    #[test]
    fn targets_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("/api/v1/é", 9), "/api/v1/");
        assert_eq!(truncate("/api/v1/x", 100), "/api/v1/x");
    }
}
