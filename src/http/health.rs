//! Liveness and readiness; the only unauthenticated routes besides login.
//!
//! Both carry `"storage": "ok" | "failed"` (with `storage_error`); `GET /metrics` exposes the same
//! as `linkmesh_storage_failed`.

use std::time::Duration;

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

/// How long `/readyz` waits for this node to apply what it holds as committed. A caught-up node
/// applies a fresh commit within milliseconds, so under steady writes the probe does not flap; a node
/// replaying a backlog (after a join, or behind its leader) stays not ready.
const APPLY_WAIT: Duration = Duration::from_millis(500);

/// Ready when storage works, a Raft leader is known, the cluster has been bootstrapped (the admin
/// user exists), and this node has applied everything its log holds as committed (openraft's commit
/// index, read from its core; a restart replays the committed log before anything is served).
/// `reasons` says why not.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let has_leader = state.raft.has_leader();
    let bootstrapped = state.raft.state().fleet.bootstrapped;
    let mut body = serde_json::json!({ "has_leader": has_leader, "bootstrapped": bootstrapped });
    let storage_ok = storage_fields(&state, &mut body);
    let mut reasons = Vec::new();
    if !storage_ok {
        reasons.push("storage failed".to_owned());
    }
    if !has_leader {
        reasons.push("no raft leader known".to_owned());
    }
    if !bootstrapped {
        reasons.push("cluster not bootstrapped yet".to_owned());
    }
    // A failed store stopped the core: there is nothing to catch up with, and nothing to ask.
    let committed =
        if storage_ok { state.raft.committed_index().await } else { Err("storage failed".into()) };
    let caught_up = match committed {
        Ok(committed) => {
            let applied = state.raft.wait_applied(committed, APPLY_WAIT).await;
            body["committed_index"] = serde_json::json!(committed);
            body["applied_index"] = serde_json::json!(applied);
            if applied < committed {
                reasons.push(format!(
                    "catching up: applied index {} is behind commit index {}",
                    show_index(applied),
                    show_index(committed)
                ));
            }
            applied >= committed
        }
        Err(_) if !storage_ok => false,
        Err(error) => {
            reasons.push(format!("raft core not answering: {error}"));
            false
        }
    };
    body["caught_up"] = serde_json::Value::from(caught_up);
    let ready = reasons.is_empty();
    body["ready"] = serde_json::Value::from(ready);
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        body["reasons"] = serde_json::json!(reasons);
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn show_index(index: Option<u64>) -> String {
    index.map_or_else(|| "none".to_owned(), |index| index.to_string())
}
