//! `GET /metrics` (Prometheus text, format 0.0.4) and the middleware that counts and times every
//! HTTP request. The registry itself is `crate::metrics`.
//!
//! Who may scrape (contract, "Cluster"): any service-account token (`Authorization: Bearer lmsat_…`,
//! whatever its role), or no credentials at all from a client address (`http/client_addr.rs`, so
//! `http.trusted_proxies` is respected) inside `metrics.allow_anonymous_from`; everyone else gets 401.
//! A presented token must be valid even from an allowed network: a scraper with a revoked token is told
//! so instead of being let in silently. Browser sessions are not a credential here — a scrape is
//! machine-to-machine, the contract names tokens only, and ignoring cookies keeps a signed-in browser
//! from being an ambient credential for this route; a cookie is neither accepted nor an error.
//!
//! `/metrics` lives outside `/api/v1` (where scrapers look for it), so it is not a row of
//! `api/routes.rs::API_ROUTES`; its access rule is different from every row there anyway (tokens of any
//! role, or an address). It reuses the same authentication (`principal::authenticate`), and
//! `tests/metrics.rs` covers it the way the table's sweep covers the API: strangers, garbage and
//! non-bearer credentials, sessions, every role, other methods.

use std::borrow::Cow;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

use super::collector_service::SERVICE_PATH;
use super::principal::authenticate;
use super::{client_addr, AppState};
use crate::error::{ApiError, ErrorCode};
use crate::metrics::{http_method_label, index_value, CONTENT_TYPE};

pub const METRICS_PATH: &str = "/metrics";

/// The Connect RPCs `collector_service.rs` serves. The router has one pattern for all of them
/// (`{method}`); each gets its own route label, any other name keeps the pattern.
const CONNECT_ROUTES: [&str; 3] = [
    "/collector.v1.CollectorService/GetConfig",
    "/collector.v1.CollectorService/RegisterCollector",
    "/collector.v1.CollectorService/UnregisterCollector",
];

/// The route label of a request no resource matched (unknown paths, the API's 404s).
const UNMATCHED: &str = "unmatched";
/// The route label when an inner middleware failed and took the request with it.
const UNKNOWN: &str = "unknown";

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(METRICS_PATH).route(web::get().to(scrape)).default_service(web::to(method_not_allowed)),
    );
}

/// 401 unless the caller may scrape (see the module doc).
fn authorize(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if request.headers().contains_key(header::AUTHORIZATION) {
        // With the header present, `authenticate` takes the bearer path only: never the cookie.
        return authenticate(request).map(|_service_account| ());
    }
    let client = client_addr::of(request);
    if state.config.metrics.allow_anonymous_from.iter().any(|network| network.contains(&client)) {
        return Ok(());
    }
    Err(ApiError::unauthenticated(
        "send Authorization: Bearer <service-account token>, or scrape from a network listed in \
         metrics.allow_anonymous_from",
    ))
}

async fn scrape(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    authorize(&request, &state)?;
    let metrics = &state.metrics;
    metrics.set_resident_actors(state.registry.resident_count());
    metrics.set_opamp_connections(state.registry.opamp_connections().connections());
    metrics.set_storage_failed(state.raft.storage_health().failure().is_some());
    // openraft's metrics watch lacks the commit index; a stopped core leaves the last value.
    if let Ok(committed) = state.raft.committed_index().await {
        let gauges = metrics.raft();
        gauges.commit_index.set(index_value(committed));
        // The last log index comes from openraft's metrics watch, which can lag the commit index
        // just read; the log holds every committed entry, so it is at least that.
        if gauges.last_log_index.get() < index_value(committed) {
            gauges.last_log_index.set(index_value(committed));
        }
    }
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(metrics.encode()))
}

/// Other methods: strangers get 401 first, as on the API; callers who may scrape, 405 with `Allow`.
async fn method_not_allowed(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::ResponseError as _;
    authorize(&request, &state)?;
    let error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {} not allowed on {METRICS_PATH}", request.method()),
    );
    let mut response = error.error_response();
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    Ok(response)
}

/// Counts and times every request (wrapped around the whole App, outermost): the route label is the
/// matched pattern, never the path, so ids never become labels. The time runs to the response head; a
/// stream's body (server-sent events) is not included.
pub async fn record_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(request).await;
    };
    let started = tokio::time::Instant::now();
    let method = http_method_label(request.method().as_str());
    let response = next.call(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let (route, status) = match &response {
        Ok(response) => (route_label(response.request()), response.status().as_u16()),
        Err(error) => (Cow::Borrowed(UNKNOWN), error.as_response_error().status_code().as_u16()),
    };
    state.metrics.http_request(route, method, status, seconds);
    response
}

fn route_label(request: &HttpRequest) -> Cow<'static, str> {
    match request.match_pattern() {
        Some(pattern) if pattern.starts_with(SERVICE_PATH) => {
            let path = request.path();
            CONNECT_ROUTES.into_iter().find(|route| *route == path).map_or(Cow::Owned(pattern), Cow::Borrowed)
        }
        Some(pattern) => Cow::Owned(pattern),
        None => Cow::Borrowed(UNMATCHED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_routes_are_the_services_rpcs() {
        for route in CONNECT_ROUTES {
            let method = route.strip_prefix(SERVICE_PATH).and_then(|rest| rest.strip_prefix('/'));
            assert!(method.is_some_and(|method| !method.contains('/')), "{route}");
        }
    }

    /// The label each kind of path gets, from a router shaped like linkmesh's (a handler answers with
    /// the label the middleware would record for its request).
    #[actix_web::test]
    async fn labels_are_route_patterns_and_never_paths() {
        use actix_web::{test, App};
        async fn label(request: HttpRequest) -> String {
            route_label(&request).into_owned()
        }
        let app = test::init_service(
            App::new()
                .service(web::resource(format!("{SERVICE_PATH}/{{method}}")).to(label))
                .service(web::resource("/collectors/{id}").to(label))
                .service(
                    web::scope("/api/v1")
                        .service(web::resource("/collectors/{id}/events").to(label))
                        .default_service(web::to(label)),
                )
                .default_service(web::to(label)),
        )
        .await;
        let cases = [
            ("/collectors/col_abc", "/collectors/{id}"),
            ("/api/v1/collectors/col_abc/events?after=3", "/api/v1/collectors/{id}/events"),
            ("/collector.v1.CollectorService/GetConfig", "/collector.v1.CollectorService/GetConfig"),
            ("/collector.v1.CollectorService/Bogus_123", "/collector.v1.CollectorService/{method}"),
            ("/api/v1/nope/col_abc", UNMATCHED),
            ("/anything/else", UNMATCHED),
        ];
        for (path, expected) in cases {
            let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            let body = test::read_body(response).await;
            assert_eq!(std::str::from_utf8(&body).expect("utf-8"), expected, "{path}");
        }
    }
}
