//! Liveness and readiness; the only unauthenticated routes besides login.

use actix_web::{web, HttpResponse};

use super::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when a Raft leader is known and the cluster has been bootstrapped (the admin user exists).
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let has_leader = state.raft.has_leader();
    let bootstrapped = state.raft.state().fleet.bootstrapped;
    let body = serde_json::json!({ "ready": has_leader && bootstrapped, "has_leader": has_leader, "bootstrapped": bootstrapped });
    if has_leader && bootstrapped {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
