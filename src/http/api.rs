//! The REST API under `/api/v1` (contract: `design/api-contract.md`).
//!
//! The router is built from one table, [`routes::API_ROUTES`] (method, path, who may call it). Every
//! route requires a [`Principal`] except `POST /auth/login`; unknown routes and methods answer 401 before
//! 404/405, so the API's shape is not visible without credentials.
//!
//! The API describes itself from the same table and the handlers' types: [`openapi`] builds the
//! OpenAPI document `GET /openapi.json` serves ([`openapi_json`]) and the UI's `/api-reference` renders.

pub mod apply_view;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod cluster;
pub mod collectors;
pub mod collectors_batch;
pub mod collectors_bulk;
pub mod collectors_list;
pub mod enrollment_tokens;
pub mod fleet_items;
pub mod fleet_model;
pub mod handler_types;
pub mod openapi;
pub mod openapi_json;
pub mod rollouts;
pub mod routes;
pub mod service_accounts;
pub mod stream;
pub mod topology;
pub mod users;

use actix_web::error::JsonPayloadError;
use actix_web::{web, HttpRequest, HttpResponse};

use super::principal::Principal;
use crate::error::{ApiError, ErrorCode};

/// Largest accepted JSON request body for the REST API.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    let mut scope = web::scope(routes::API_PREFIX)
        .app_data(web::JsonConfig::default().limit(JSON_BODY_LIMIT).error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(|error, _| {
            ApiError::new(ErrorCode::InvalidArgument, format!("invalid query parameters: {error}")).into()
        }))
        .app_data(web::Data::new(openapi_json::OpenApiJson(openapi::document_text())));
    for path in routes::paths() {
        // Unmatched methods answer 401 to strangers and 405 with `Allow` to operators.
        let mut resource = web::resource(path)
            .app_data(Allow(routes::allow_header(path)))
            .default_service(web::to(method_not_allowed));
        for route in routes::API_ROUTES.iter().filter(|route| route.path == path) {
            resource = resource.route(route.build());
        }
        scope = scope.service(resource);
    }
    config.service(scope.default_service(web::to(not_found)));
}

/// The methods a resource serves, for the `Allow` header of its 405s.
struct Allow(String);

async fn not_found(_principal: Principal, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, format!("no such route: {} {}", request.method(), request.path())))
}

async fn method_not_allowed(_principal: Principal, request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError as _;
    let error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {} not allowed on {}", request.method(), request.path()),
    );
    let mut response = error.error_response();
    if let Some(Allow(allow)) = request.app_data::<Allow>() {
        if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allow) {
            response.headers_mut().insert(actix_web::http::header::ALLOW, value);
        }
    }
    response
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("request body exceeds {JSON_BODY_LIMIT} bytes"))
        }
        JsonPayloadError::ContentType => {
            ApiError::new(ErrorCode::UnsupportedMediaType, "expected Content-Type: application/json")
        }
        JsonPayloadError::Deserialize(inner) => {
            ApiError::new(ErrorCode::InvalidArgument, format!("invalid JSON body: {inner}"))
        }
        other => ApiError::new(ErrorCode::InvalidArgument, format!("invalid request body: {other}")),
    };
    api_error.into()
}

/// Checks a human-facing name: 1–128 characters, no control characters.
pub fn validate_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if name.chars().count() > 128 {
        return Err(ApiError::invalid_field(field, "must be at most 128 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(field, "must not contain control characters"));
    }
    if name.chars().any(super::untrusted_text::is_deceptive) {
        return Err(ApiError::invalid_field(
            field,
            "must not contain invisible or bidirectional-control characters",
        ));
    }
    Ok(())
}
