//! The one table that maps every error to its wire shapes: Connect code, REST code and HTTP status.
//!
//! Internal errors are logged once, here, where they are mapped; clients see only a generic message.

use std::fmt;

use actix_web::http::StatusCode;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::actors::RegistryError;
use crate::model::ApplyError;
use crate::raft::ProposeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    /// The change conflicts with other state, e.g. deleting a pipeline that routes use (HTTP 409).
    Conflict,
    ResourceExhausted,
    /// Body larger than the configured limit (Connect `resource_exhausted`, HTTP 413).
    PayloadTooLarge,
    /// The client did not send its request body in time (HTTP 408).
    RequestTimeout,
    /// Content type or encoding this endpoint does not speak (HTTP 415).
    UnsupportedMediaType,
    MethodNotAllowed,
    Unimplemented,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for the API description's list of REST codes.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Conflict,
        ErrorCode::ResourceExhausted,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unimplemented,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// (Connect code, REST code, HTTP status). Connect codes: connectrpc.com/docs/protocol.
    const fn table(self) -> (&'static str, &'static str, u16) {
        match self {
            ErrorCode::InvalidArgument => ("invalid_argument", "invalid_argument", 400),
            ErrorCode::Unauthenticated => ("unauthenticated", "unauthenticated", 401),
            ErrorCode::PermissionDenied => ("permission_denied", "permission_denied", 403),
            ErrorCode::NotFound => ("not_found", "not_found", 404),
            ErrorCode::AlreadyExists => ("already_exists", "already_exists", 409),
            ErrorCode::FailedPrecondition => ("failed_precondition", "failed_precondition", 400),
            ErrorCode::Conflict => ("failed_precondition", "failed_precondition", 409),
            ErrorCode::ResourceExhausted => ("resource_exhausted", "resource_exhausted", 429),
            ErrorCode::PayloadTooLarge => ("resource_exhausted", "invalid_argument", 413),
            ErrorCode::RequestTimeout => ("deadline_exceeded", "invalid_argument", 408),
            ErrorCode::UnsupportedMediaType => ("unimplemented", "invalid_argument", 415),
            ErrorCode::MethodNotAllowed => ("unimplemented", "invalid_argument", 405),
            ErrorCode::Unimplemented => ("unimplemented", "not_found", 404),
            ErrorCode::Unavailable => ("unavailable", "unavailable", 503),
            ErrorCode::Internal => ("internal", "internal", 500),
        }
    }

    pub fn connect_code(self) -> &'static str {
        self.table().0
    }

    pub fn rest_code(self) -> &'static str {
        self.table().1
    }

    pub fn http_status(self) -> StatusCode {
        StatusCode::from_u16(self.table().2).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The numeric `google.rpc.Code` of the Connect code (Connect codes are the gRPC codes), for OTLP's
    /// `google.rpc.Status` error bodies.
    pub fn rpc_code(self) -> i32 {
        match self.connect_code() {
            "canceled" => 1,
            "unknown" => 2,
            "invalid_argument" => 3,
            "deadline_exceeded" => 4,
            "not_found" => 5,
            "already_exists" => 6,
            "permission_denied" => 7,
            "resource_exhausted" => 8,
            "failed_precondition" => 9,
            "aborted" => 10,
            "out_of_range" => 11,
            "unimplemented" => 12,
            "internal" => 13,
            "unavailable" => 14,
            "data_loss" => 15,
            "unauthenticated" => 16,
            _ => 2,
        }
    }
}

/// The detail that carries a 429's wait; rendered as the `Retry-After` header too.
const RETRY_AFTER_DETAIL: &str = "retry_after_seconds";

/// An error as clients see it: a code, a lowercase message and optional structured details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: Map::new() }
    }

    pub fn invalid_field(field: &str, problem: impl fmt::Display) -> Self {
        let mut error = ApiError::new(ErrorCode::InvalidArgument, format!("{field}: {problem}"));
        error.details.insert("field".to_owned(), Value::from(field));
        error
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::PermissionDenied, message)
    }

    pub fn not_found(kind: &str, id: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{kind} {id:?} not found"))
    }

    /// 429 with `Retry-After` (whole seconds, rounded up) and `details.retry_after_seconds`.
    pub fn too_many_requests(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_millis().div_ceil(1000).max(1);
        let mut error = ApiError::new(ErrorCode::ResourceExhausted, message);
        error.details.insert(RETRY_AFTER_DETAIL.to_owned(), Value::from(seconds as u64));
        error
    }

    /// Adds `Retry-After` (whole seconds) and `details.retry_after_seconds` to any error (503s).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.details.insert(RETRY_AFTER_DETAIL.to_owned(), Value::from(seconds));
        self
    }

    /// The `Retry-After` this error asks for, if any.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.details.get(RETRY_AFTER_DETAIL).and_then(Value::as_u64)
    }

    /// Logs the cause once and hides it from the client.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, context, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code.rest_code(), self.message)
    }
}

/// The REST error body, `{"error":{"code","message","details"}}`: what [`ApiError`] answers, and the
/// schema the API description (`http/api/openapi.rs`) gives every error response.
#[derive(Serialize, JsonSchema)]
pub struct ErrorEnvelope<'a> {
    pub error: ErrorBody<'a>,
}

#[derive(Serialize, JsonSchema)]
pub struct ErrorBody<'a> {
    /// The REST code; the HTTP status says the same.
    #[schemars(schema_with = "rest_code_schema")]
    pub code: &'a str,
    /// Lowercase, for people; names the field at fault in validation errors.
    pub message: &'a str,
    /// Structured details, e.g. `field` or `retry_after_seconds`.
    pub details: &'a Map<String, Value>,
}

/// Every REST code [`ErrorCode::table`] maps to, as an enum.
fn rest_code_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.rest_code()).collect();
    codes.sort_unstable();
    codes.dedup();
    schemars::json_schema!({ "type": "string", "enum": codes })
}

/// The REST shape: `{"error":{"code","message","details"}}`.
impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.http_status()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let body = ErrorEnvelope {
            error: ErrorBody { code: self.code.rest_code(), message: &self.message, details: &self.details },
        };
        let mut response = actix_web::HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after_seconds() {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(body)
    }
}

/// The `Retry-After` of a write refused for the cluster's feature level: upgrades take minutes.
const UPGRADE_RETRY_SECONDS: u64 = 30;

impl From<ApplyError> for ApiError {
    fn from(error: ApplyError) -> Self {
        let code = match &error {
            ApplyError::NotFound { .. } => ErrorCode::NotFound,
            ApplyError::AlreadyExists { .. } | ApplyError::AlreadyBootstrapped => ErrorCode::AlreadyExists,
            ApplyError::InUse { .. } | ApplyError::Precondition { .. } => ErrorCode::Conflict,
            ApplyError::InvalidReference { field, problem } => {
                return ApiError::invalid_field(field, problem);
            }
            ApplyError::NeedsFeatureLevel { needed, cluster } => {
                // A rolling upgrade in progress: the change works once every member runs the new release.
                let mut api_error = ApiError::new(ErrorCode::Unavailable, error.to_string())
                    .with_retry_after(UPGRADE_RETRY_SECONDS);
                api_error.details.insert("needed_feature_level".to_owned(), needed.0.into());
                api_error.details.insert("cluster_feature_level".to_owned(), cluster.0.into());
                return api_error;
            }
        };
        let mut api_error = ApiError::new(code, error.to_string());
        if let ApplyError::InUse { used_by, .. } = &error {
            api_error.details.insert("used_by".to_owned(), serde_json::Value::from(used_by.clone()));
        }
        api_error
    }
}

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::Rejected(rejection) => rejection.into(),
            ProposeError::NotLeader { .. } => ApiError::new(
                ErrorCode::Unavailable,
                "no raft leader reachable from this node; retry shortly",
            ),
            ProposeError::OutcomeUnknown(cause) => {
                tracing::warn!(error = %cause, "write outcome unknown");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the write may or may not have been applied; re-read before retrying",
                )
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::NotFound(id) => ApiError::not_found("collector", &id),
            RegistryError::NotOwner { .. } | RegistryError::Unavailable(_) => {
                tracing::warn!(error = %error, "collector actor unavailable");
                ApiError::new(ErrorCode::Unavailable, "collector temporarily unavailable; retry")
            }
            RegistryError::PushesInFlight(_) => ApiError::new(
                ErrorCode::ResourceExhausted,
                "too many own_metrics pushes in flight for this collector; retry after the Retry-After delay",
            ),
            RegistryError::TooManyCalls { retry_after } => ApiError::too_many_requests(
                "this collector calls linkmesh too often; retry after the Retry-After delay",
                retry_after,
            ),
            RegistryError::TokenNotCurrent => ApiError::unauthenticated(
                "invalid or rotated collector token: re-mint it on the collector page",
            ),
            RegistryError::LeaseExpired => {
                let mut error = ApiError::new(
                    ErrorCode::Unavailable,
                    "this node cannot reach a cluster leader and does not serve collectors now; retry \
                     after the Retry-After delay (another node serves them once the cluster moves them)",
                );
                error.details.insert(RETRY_AFTER_DETAIL.to_owned(), Value::from(1u64));
                error
            }
            RegistryError::Overloaded => ApiError::new(
                ErrorCode::Unavailable,
                "linkmesh is busy with own_metrics pushes; retry after the Retry-After delay",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_codes_match_the_protocol_status_table() {
        assert_eq!(ErrorCode::Unauthenticated.connect_code(), "unauthenticated");
        assert_eq!(ErrorCode::Unauthenticated.http_status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ErrorCode::Unavailable.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorCode::PayloadTooLarge.http_status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(ErrorCode::InvalidArgument.http_status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rpc_codes_are_the_grpc_numbers() {
        assert_eq!(ErrorCode::InvalidArgument.rpc_code(), 3);
        assert_eq!(ErrorCode::Unauthenticated.rpc_code(), 16);
        assert_eq!(ErrorCode::PayloadTooLarge.rpc_code(), 8);
        assert_eq!(ErrorCode::UnsupportedMediaType.rpc_code(), 12);
        assert_eq!(ErrorCode::Unavailable.rpc_code(), 14);
    }
}
