//! Liveness and readiness; the only unauthenticated routes besides login.
//!
//! Both carry `"storage": "ok" | "failed"` (with `storage_error`): until linkmesh has a metrics
//! endpoint, this is where a storage failure is exposed to monitoring.

use actix_web::{web, HttpResponse};

use super::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}

fn storage_fields(state: &AppState, body: &mut serde_json::Value) -> bool {
    let failure = state.raft.storage_health().failure();
    body["storage"] = serde_json::Value::from(if failure.is_some() { "failed" } else { "ok" });
    if let Some(failure) = &failure {
        body["storage_error"] = serde_json::Value::from(failure.to_string());
    }
    failure.is_none()
}

/// 503 once storage failed: the process is about to exit with code 4 and must be restarted.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let mut body = serde_json::json!({ "status": "ok" });
    if storage_fields(&state, &mut body) {
        HttpResponse::Ok().json(body)
    } else {
        body["status"] = serde_json::Value::from("storage_failed");
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Ready when storage works, a Raft leader is known and the cluster has been bootstrapped (the admin
/// user exists).
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let has_leader = state.raft.has_leader();
    let bootstrapped = state.raft.state().fleet.bootstrapped;
    let mut body = serde_json::json!({ "has_leader": has_leader, "bootstrapped": bootstrapped });
    let storage_ok = storage_fields(&state, &mut body);
    let ready = storage_ok && has_leader && bootstrapped;
    body["ready"] = serde_json::Value::from(ready);
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
