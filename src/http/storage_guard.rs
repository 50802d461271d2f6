//! Refuses every request once this node's storage has failed, so nothing is served from a replica that
//! can no longer apply anything.
//!
//! Wrapped around the whole `App` (`server.rs`), so no handler needs to know. The check runs before the
//! handler and again after it: a response computed while storage failed is replaced, never sent. Each
//! protocol gets its own error shape: Connect `{"code","message"}` for collector RPCs, a
//! `google.rpc.Status` for OTLP pushes (protobuf or JSON, as the request), the REST envelope otherwise.
//! `/healthz`, `/readyz` and `/metrics` pass through and report the failure themselves.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use super::AppState;
use crate::error::{ApiError, ErrorCode};

/// Seconds a client should wait: a service manager restarts the node, or a load balancer moves on.
const RETRY_AFTER_SECONDS: &str = "5";

const MESSAGE: &str = "storage failed on this linkmesh node; it is stopping and will not serve from its \
                       replica; retry on another node or after it restarts";

/// `google.rpc.Status` without details (as in `otlp.rs`).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

pub async fn refuse_when_storage_failed(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = request.path();
    let health = request.app_data::<web::Data<AppState>>().map(|state| state.raft.storage_health().clone());
    let Some(health) = health.filter(|_| !matches!(path, "/healthz" | "/readyz" | "/metrics")) else {
        return next.call(request).await.map(ServiceResponse::map_into_left_body);
    };
    if health.failure().is_some() {
        let refusal = refusal(request.request());
        return Ok(request.into_response(refusal).map_into_right_body());
    }
    let response = next.call(request).await?;
    if health.failure().is_some() && !response.status().is_server_error() {
        let refusal = refusal(response.request());
        let (request, _) = response.into_parts();
        return Ok(ServiceResponse::new(request, refusal).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

fn refusal(request: &actix_web::HttpRequest) -> HttpResponse {
    let code = ErrorCode::Unavailable;
    let mut response = HttpResponse::build(code.http_status());
    response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
    let path = request.path();
    if path.starts_with("/v1/") {
        let status = RpcStatus { code: code.rpc_code(), message: MESSAGE.to_owned() };
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("json"));
        if json {
            return response.json(serde_json::json!({ "code": status.code, "message": status.message }));
        }
        return response.content_type("application/x-protobuf").body(prost::Message::encode_to_vec(&status));
    }
    let first_segment = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    if first_segment.contains('.') && first_segment.ends_with("Service") {
        // `/<package>.<Service>/<Method>`: a Connect RPC.
        return response.json(serde_json::json!({ "code": code.connect_code(), "message": MESSAGE }));
    }
    let mut error = ApiError::new(code, MESSAGE);
    error.details.insert("storage".to_owned(), serde_json::Value::from("failed"));
    let mut refused = actix_web::ResponseError::error_response(&error);
    refused.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static(RETRY_AFTER_SECONDS));
    refused
}
