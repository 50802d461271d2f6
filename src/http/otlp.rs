//! OTLP/HTTP metrics receiver (`POST /v1/metrics`): collectors push their own metrics here with the
//! token they poll with (spec: opentelemetry.io/docs/specs/otlp/#otlphttp).
//!
//! - Bodies: `application/x-protobuf` or `application/json` (OTLP/JSON: camelCase, int64 as strings,
//!   hex ids; unknown fields ignored), optionally `Content-Encoding: gzip`, at most `max_request_body`
//!   before and after inflating.
//! - Success: 200 with `ExportMetricsServiceResponse` in the request's encoding; points linkmesh cannot
//!   use are counted in `partial_success` (still 200, so the exporter does not retry them).
//! - Errors: a `google.rpc.Status` body in the request's encoding (JSON when the content type mentions
//!   json, protobuf otherwise): 400 malformed, 401 token, 413 too large, 415 content type or encoding,
//!   429 / 503 with `Retry-After` when too many pushes are in flight. A refused push changes nothing.
//!
//! Order of checks: token, content type and encoding, admission, body size, decoding. The token comes
//! first so that nothing about the endpoint is revealed without one.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message as _;

use super::body::{self, ContentEncoding};
use super::collector_auth::{authenticate_collector, AuthenticatedCollector};
use super::AppState;
use crate::actors::collector_actor::PushMetrics;
use crate::actors::{CollectorRegistry, RegistryError};
use crate::cluster::forward::{self, CollectorRequest, Owner, Routed};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::PushOutcome;
use crate::model::{TokenHash, UnixMillis};
use crate::own_metrics::{self, MetricsBatch};
use crate::proto::cluster::v1::CollectorCall;

pub const METRICS_PATH: &str = "/v1/metrics";

/// Seconds a client is asked to wait after 429 or 503.
const RETRY_AFTER_SECONDS: u32 = 5;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Where own_metrics exporters carry the token, for error messages.
const TOKEN_SETTING: &str = "the own_metrics exporter's Authorization header (\"Bearer <collector token>\")";

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(METRICS_PATH)
            .route(web::post().to(export_metrics))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding a request asks for; errors about it are answered in the encoding it most likely reads.
    fn of_request(request: &HttpRequest) -> Result<Encoding, OtlpError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        let media_type = content_type
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            PROTOBUF => Ok(Encoding::Protobuf),
            JSON => Ok(Encoding::Json),
            _ => Err(OtlpError::new(
                ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "unsupported content type {:?}; use {PROTOBUF} or {JSON}",
                        content_type.unwrap_or("")
                    ),
                ),
                Encoding::guess(request),
            )),
        }
    }

    /// The encoding a forwarded push names (the edge sends [`Encoding::content_type`]).
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        match content_type {
            PROTOBUF => Some(Encoding::Protobuf),
            JSON => Some(Encoding::Json),
            _ => None,
        }
    }

    fn guess(request: &HttpRequest) -> Encoding {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
        if content_type.is_some_and(|value| value.to_ascii_lowercase().contains("json")) {
            Encoding::Json
        } else {
            Encoding::Protobuf
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// `google.rpc.Status` (google/rpc/status.proto) without `details`, which linkmesh never sets; not part
/// of OTLP's own messages, so `opentelemetry-proto` does not carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An error answered as a `google.rpc.Status` in the request's encoding.
#[derive(Debug)]
pub struct OtlpError {
    error: ApiError,
    encoding: Encoding,
}

impl OtlpError {
    fn new(error: ApiError, encoding: Encoding) -> Self {
        OtlpError { error, encoding }
    }
}

impl std::fmt::Display for OtlpError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(formatter)
    }
}

impl ResponseError for OtlpError {
    fn status_code(&self) -> StatusCode {
        self.error.code.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = RpcStatus { code: self.error.code.rpc_code(), message: self.error.message.clone() };
        let body = match self.encoding {
            Encoding::Protobuf => status.encode_to_vec(),
            Encoding::Json => {
                serde_json::json!({ "code": status.code, "message": status.message }).to_string().into()
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        match self.error.code {
            ErrorCode::ResourceExhausted | ErrorCode::Unavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
            }
            ErrorCode::MethodNotAllowed => {
                response.insert_header((header::ALLOW, "POST"));
            }
            ErrorCode::UnsupportedMediaType => {
                response.insert_header(("Accept-Post", "application/x-protobuf, application/json"));
            }
            _ => {}
        }
        response.content_type(self.encoding.content_type()).body(body)
    }
}

async fn export_metrics(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OtlpError> {
    let exported = export(request, payload, &state).await;
    state.metrics.own_metrics_push(if exported.is_ok() {
        PushOutcome::Accepted
    } else {
        PushOutcome::Refused
    });
    exported
}

/// Order: token, content type and encoding, admission (the per-node bound here; the per-collector
/// count where the collector's actor lives), body, then the owner's actor: this node's, or the
/// owner's through one forwarded call carrying the inflated body.
async fn export(
    request: HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, OtlpError> {
    let guessed = Encoding::guess(&request);
    let collector = authenticate_collector(&request, state, TOKEN_SETTING)
        .await
        .map_err(|error| OtlpError::new(error, guessed))?;
    let collector_id = collector.collector_id.as_str();
    let encoding = Encoding::of_request(&request)?;
    let fail = |error: ApiError| OtlpError::new(error, encoding);
    let content_encoding = ContentEncoding::parse(
        request.headers().get(header::CONTENT_ENCODING).and_then(|value| value.to_str().ok()),
    )
    .map_err(fail)?;
    let owner = forward::owner_of(&state.raft, collector_id);
    if owner == Owner::Here {
        collector.check_served_here(TOKEN_SETTING).map_err(fail)?;
    }
    let _permit = match owner {
        Owner::Here => state.registry.admit_push(collector_id),
        Owner::Peer { .. } => state.registry.admit_push_at_edge(),
    }
    .map_err(|error| fail(error.into()))?;
    let limit = state.config.max_request_body;
    let raw = body::read_limited(&request, payload, limit).await.map_err(fail)?;
    let message = body::decode(raw, content_encoding, limit).map_err(fail)?;
    let answer = match owner {
        Owner::Here => ingest_export(state, &collector, &message, encoding).await,
        Owner::Peer { .. } => {
            let forwarded = CollectorRequest {
                call: CollectorCall::PushMetrics,
                collector_id,
                token_hash: &collector.token_hash,
                body: message,
                content_type: encoding.content_type(),
                client_addr: super::client_addr::of(&request).to_string(),
            };
            match forward::forward(&state.raft, &state.metrics, owner, forwarded).await {
                Ok(Routed::Remote(body)) => Ok(body),
                Ok(Routed::Local(message)) => {
                    collector.check_served_here(TOKEN_SETTING).map_err(fail)?;
                    let _owner_permit = state
                        .registry
                        .admit_forwarded_push(collector_id)
                        .map_err(|error| fail(error.into()))?;
                    ingest_export(state, &collector, &message, encoding).await
                }
                Err(error) => Err(error.into_api(TOKEN_SETTING)),
            }
        }
    };
    let body = answer.map_err(fail)?;
    Ok(HttpResponse::Ok().content_type(encoding.content_type()).body(body))
}

/// Everything after the body was read and inflated, on this node when it owns the collector: decode,
/// extract, apply on the actor, and the success response's bytes in `encoding`.
async fn ingest_export(
    state: &AppState,
    collector: &AuthenticatedCollector,
    message: &[u8],
    encoding: Encoding,
) -> Result<Vec<u8>, ApiError> {
    let batch = extract_export(message, encoding)?;
    let (collector_id, token_hash) = (&collector.collector_id, &collector.token_hash);
    apply_export(&state.registry, collector_id, token_hash, batch, encoding)
        .await
        .map_err(|error| collector.owner_refusal(state, error, TOKEN_SETTING))
}

/// The CPU-bound half of [`ingest_export`]: decode and extract (the owner of a forwarded push runs it
/// off its async threads). Protobuf is read straight into the view extraction needs
/// (`own_metrics::wire`, which refuses exactly what prost refuses); JSON goes through the prost types.
pub fn extract_export(message: &[u8], encoding: Encoding) -> Result<MetricsBatch, ApiError> {
    match encoding {
        Encoding::Protobuf => {
            let view = own_metrics::wire::decode_push(message).map_err(|error| {
                ApiError::new(
                    ErrorCode::InvalidArgument,
                    format!("malformed protobuf ExportMetricsServiceRequest: {error}"),
                )
            })?;
            Ok(own_metrics::extract_from(&view))
        }
        Encoding::Json => Ok(own_metrics::extract(&decode_json(message)?)),
    }
}

/// The other half of [`ingest_export`] (and of a forwarded push on its owner): the batch on the
/// collector's actor, once the owner accepted `token_hash`, and the response bytes.
pub async fn apply_export(
    registry: &CollectorRegistry,
    collector_id: &str,
    token_hash: &TokenHash,
    batch: MetricsBatch,
    encoding: Encoding,
) -> Result<Vec<u8>, RegistryError> {
    let (extract_rejected, extract_rejection) = (batch.rejected, batch.rejection.clone());
    let push = PushMetrics { batch: Arc::new(batch), at: UnixMillis::now() };
    let report = registry.push_metrics(collector_id, token_hash, push).await?;
    let rejected = extract_rejected + report.rejected;
    if rejected > 0 || report.out_of_order > 0 {
        tracing::debug!(
            collector_id = %collector_id,
            rejected,
            out_of_order = report.out_of_order,
            "own_metrics points not applied"
        );
    }
    let partial_success = (rejected > 0).then(|| ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: extract_rejection.or(report.rejection).unwrap_or_default(),
    });
    Ok(response_body(&ExportMetricsServiceResponse { partial_success }, encoding))
}

/// Decodes OTLP/JSON; unknown fields are ignored (forward compatibility), as `wire` does for protobuf.
fn decode_json(message: &[u8]) -> Result<ExportMetricsServiceRequest, ApiError> {
    serde_json::from_slice(message).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("malformed OTLP/JSON ExportMetricsServiceRequest: {error}"),
        )
    })
}

/// The success response's bytes. OTLP/JSON writes int64 as a string, which the crate's serde mapping
/// does not.
fn response_body(response: &ExportMetricsServiceResponse, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => {
            let value = match &response.partial_success {
                Some(partial) => serde_json::json!({ "partialSuccess": {
                    "rejectedDataPoints": partial.rejected_data_points.to_string(),
                    "errorMessage": partial.error_message,
                }}),
                None => serde_json::json!({}),
            };
            value.to_string().into_bytes()
        }
    }
}

async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, OtlpError> {
    Err(OtlpError::new(
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {} not allowed on {METRICS_PATH}; use POST", request.method()),
        ),
        Encoding::guess(&request),
    ))
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn content_types_select_the_encoding_and_others_are_415() {
        let with = |content_type: &str| {
            Encoding::of_request(
                &TestRequest::default().insert_header((header::CONTENT_TYPE, content_type)).to_http_request(),
            )
        };
        assert_eq!(with("application/x-protobuf").expect("protobuf"), Encoding::Protobuf);
        assert_eq!(with("application/json; charset=utf-8").expect("json"), Encoding::Json);
        let refused = with("text/json").expect_err("415");
        assert_eq!(refused.status_code(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(refused.encoding, Encoding::Json, "answered in the encoding the client reads");
        assert_eq!(with("application/proto").expect_err("415").encoding, Encoding::Protobuf);
    }

    #[test]
    fn errors_are_google_rpc_status_in_the_request_encoding() {
        let error = OtlpError::new(ApiError::new(ErrorCode::InvalidArgument, "bad"), Encoding::Protobuf);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().try_into_bytes().expect("body");
        assert_eq!(RpcStatus::decode(body).expect("status"), RpcStatus { code: 3, message: "bad".into() });

        let busy = OtlpError::new(ApiError::new(ErrorCode::ResourceExhausted, "busy"), Encoding::Json)
            .error_response();
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers().get(header::RETRY_AFTER).expect("retry-after"), "5");
        let body = busy.into_body().try_into_bytes().expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json, serde_json::json!({ "code": 8, "message": "busy" }));
    }

    #[test]
    fn partial_success_in_json_writes_int64_as_a_string() {
        let response = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "x".into(),
            }),
        };
        let body = response_body(&response, Encoding::Json);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            json,
            serde_json::json!({ "partialSuccess": { "rejectedDataPoints": "3", "errorMessage": "x" } })
        );
        assert!(response_body(&ExportMetricsServiceResponse::default(), Encoding::Protobuf).is_empty());
    }

    #[test]
    fn malformed_bodies_are_invalid_argument() {
        assert_eq!(
            extract_export(b"\xff\xff\xff", Encoding::Protobuf).expect_err("pb").code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            extract_export(b"{\"resourceMetrics\": 5}", Encoding::Json).expect_err("json").code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            extract_export(b"", Encoding::Json).expect_err("empty json").code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(extract_export(b"", Encoding::Protobuf).expect("empty protobuf"), MetricsBatch::default());
    }
}
