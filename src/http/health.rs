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

/// What readiness is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Readiness {
    storage_ok: bool,
    has_leader: bool,
    bootstrapped: bool,
    /// Holds its owner lease (or is a one-member cluster): it may serve its collectors.
    may_serve: bool,
    /// openraft's commit index and this node's applied index once it waited for it, or why the core
    /// could not be asked.
    indexes: Result<(Option<u64>, Option<u64>), String>,
}

impl Readiness {
    /// Why this node is not ready; empty when it is. Pure, so each reason is tested on its own.
    fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.storage_ok {
            reasons.push("storage failed".to_owned());
        }
        if !self.has_leader {
            reasons.push("no raft leader known".to_owned());
        }
        if !self.bootstrapped {
            reasons.push("cluster not bootstrapped yet".to_owned());
        }
        if !self.may_serve {
            reasons.push("no owner lease: no leader confirmed this node recently".to_owned());
        }
        match &self.indexes {
            Ok((committed, applied)) if applied < committed => reasons.push(format!(
                "catching up: applied index {} is behind commit index {}",
                show_index(*applied),
                show_index(*committed)
            )),
            Ok(_) => {}
            // A failed store stopped the core; the storage reason says all there is to say.
            Err(_) if !self.storage_ok => {}
            Err(error) => reasons.push(format!("raft core not answering: {error}")),
        }
        reasons
    }

    fn caught_up(&self) -> bool {
        matches!(self.indexes, Ok((committed, applied)) if applied >= committed)
    }
}

/// Ready when storage works, a Raft leader is known, the cluster has been bootstrapped (the admin
/// user exists), and this node has applied everything its log holds as committed (openraft's commit
/// index, read from its core; a restart replays the committed log before anything is served), and
/// it may serve its collectors (its owner lease holds, `cluster/lease.rs`).
/// `reasons` says why not.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let has_leader = state.raft.has_leader();
    let bootstrapped = state.raft.state().fleet.bootstrapped;
    let mut body = serde_json::json!({ "has_leader": has_leader, "bootstrapped": bootstrapped });
    let storage_ok = storage_fields(&state, &mut body);
    let indexes = if storage_ok {
        match state.raft.committed_index().await {
            Ok(committed) => Ok((committed, state.raft.wait_applied(committed, APPLY_WAIT).await)),
            Err(error) => Err(error),
        }
    } else {
        Err("storage failed".to_owned())
    };
    if let Ok((committed, applied)) = &indexes {
        body["committed_index"] = serde_json::json!(committed);
        body["applied_index"] = serde_json::json!(applied);
    }
    let may_serve = state.raft.may_serve_slots();
    let readiness = Readiness { storage_ok, has_leader, bootstrapped, may_serve, indexes };
    let reasons = readiness.reasons();
    body["caught_up"] = serde_json::Value::from(readiness.caught_up());
    body["ready"] = serde_json::Value::from(reasons.is_empty());
    if reasons.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        body["reasons"] = serde_json::json!(reasons);
        HttpResponse::ServiceUnavailable().json(body)
    }
}

fn show_index(index: Option<u64>) -> String {
    index.map_or_else(|| "none".to_owned(), |index| index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Readiness {
        Readiness {
            storage_ok: true,
            has_leader: true,
            bootstrapped: true,
            may_serve: true,
            indexes: Ok((Some(9), Some(9))),
        }
    }

    #[test]
    fn a_node_that_applied_everything_committed_is_ready() {
        assert!(ready().reasons().is_empty());
        assert!(ready().caught_up());
        let ahead = Readiness { indexes: Ok((Some(9), Some(10))), ..ready() };
        assert!(ahead.reasons().is_empty(), "applied past the commit index read a moment earlier");
        let empty = Readiness { indexes: Ok((None, None)), ..ready() };
        assert!(empty.reasons().is_empty());
    }

    #[test]
    fn a_node_behind_its_commit_index_is_not_ready_and_says_how_far() {
        let behind = Readiness { indexes: Ok((Some(120), Some(37))), ..ready() };
        assert_eq!(behind.reasons(), ["catching up: applied index 37 is behind commit index 120"]);
        assert!(!behind.caught_up());
        let nothing_applied = Readiness { indexes: Ok((Some(0), None)), ..ready() };
        assert_eq!(nothing_applied.reasons(), ["catching up: applied index none is behind commit index 0"]);
    }

    #[test]
    fn every_other_reason_is_named() {
        let stuck = Readiness { indexes: Err("the raft core did not answer in time".into()), ..ready() };
        assert_eq!(stuck.reasons(), ["raft core not answering: the raft core did not answer in time"]);
        let failed = Readiness {
            storage_ok: false,
            has_leader: false,
            bootstrapped: false,
            may_serve: false,
            indexes: Err("storage failed".into()),
        };
        assert_eq!(
            failed.reasons(),
            [
                "storage failed",
                "no raft leader known",
                "cluster not bootstrapped yet",
                "no owner lease: no leader confirmed this node recently"
            ]
        );
        assert!(!failed.caught_up());
    }
}
