//! The audit log over real HTTP (issue 10, finding 12): every authenticated write is listed in order
//! with who, from where, what and the outcome; no secret ever appears in it; it survives restarts,
//! keeps only what `audit.retention` allows, and the queue of refusals is written on shutdown.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn entries_after(api: &Api, after: u64) -> Vec<Value> {
    let page = api.get(&format!("/api/v1/audit?after={after}&limit=1000")).await;
    page["entries"].as_array().expect("entries").clone()
}

/// Waits until at least `count` entries follow `after`.
async fn wait_for_entries(api: &Api, after: u64, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT_DEADLINE;
    let entries = loop {
        let entries = entries_after(api, after).await;
        if entries.len() >= count {
            break entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} audit entries after {after}, got {entries:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    entries
}

/// The same credentials on new connections (the pooled ones died with the old process).
fn reconnected(api: &Api) -> Api {
    Api { http: reqwest::Client::new(), base_url: api.base_url.clone(), token: api.token.clone() }
}

async fn last_id(api: &Api) -> u64 {
    entries_after(api, 0).await.last().map_or(0, |entry| entry["id"].as_u64().expect("id"))
}

async fn service_account_name(api: &Api) -> String {
    api.get("/api/v1/auth/me").await["name"].as_str().expect("name").to_owned()
}

#[tokio::test]
async fn writes_are_listed_in_order_with_actor_address_action_target_and_outcome_and_no_secret() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let viewer = Api::with_role(&server, "viewer").await;
    let admin_name = service_account_name(&admin).await;
    let viewer_name = service_account_name(&viewer).await;
    let user_password = "dana-secret-password-1";
    let next_password = "dana-secret-password-2";
    let start = last_id(&admin).await;

    // 1. a write, 2. a refusal by role, 3. a refusal by the handler (not found), 4.–5. writes
    // carrying secrets, 6. a sign-in, 7. a password change, 8. a refused write last (queued, flushed).
    let collector_id = admin.create_collector("audited").await;
    let (status, _) = viewer
        .request(Method::POST, "/api/v1/collectors", Some(json!({ "name": "nope", "mode": "opamp" })))
        .await;
    assert_eq!(status, 403);
    let (status, _) = admin.request(Method::DELETE, "/api/v1/collectors/col_missing", None).await;
    assert_eq!(status, 404);
    let (status, created) = admin
        .request(
            Method::POST,
            "/api/v1/users",
            Some(json!({ "username": "dana", "password": user_password, "role": "viewer" })),
        )
        .await;
    assert_eq!(status, 201);
    let dana_id = created["id"].as_str().expect("id").to_owned();
    let (status, account) = admin
        .request(Method::POST, "/api/v1/service-accounts", Some(json!({ "name": "ci", "role": "viewer" })))
        .await;
    assert_eq!(status, 201);
    let account_id = account["id"].as_str().expect("id").to_owned();
    let (status, minted) = admin
        .request(
            Method::POST,
            &format!("/api/v1/service-accounts/{account_id}/tokens"),
            Some(json!({ "label": "ci" })),
        )
        .await;
    assert_eq!(status, 201);
    let minted_token = minted["token"].as_str().expect("token").to_owned();
    let browser = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = browser
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "dana", "password": user_password }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie").to_owned();
    let change = browser
        .post(server.url(&format!("/api/v1/users/{dana_id}/password")))
        .json(&json!({ "current_password": user_password, "new_password": next_password }))
        .send()
        .await
        .expect("change");
    assert_eq!(change.status(), 204);
    let admin_id = admin.get("/api/v1/users").await["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|user| user["username"] == "admin")
        .expect("admin")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, _) = admin.request(Method::DELETE, &format!("/api/v1/users/{admin_id}"), None).await;
    assert_eq!(status, 409);

    let entries = wait_for_entries(&admin, start, 9).await;
    let summary: Vec<(String, String, String, String, String)> = entries
        .iter()
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (field("actor"), field("actor_kind"), field("action"), field("target"), field("outcome"))
        })
        .collect();
    let row = |actor: &str, kind: &str, action: &str, target: &str, outcome: &str| {
        (actor.to_owned(), kind.to_owned(), action.to_owned(), target.to_owned(), outcome.to_owned())
    };
    let sa = "service_account";
    assert_eq!(
        summary,
        vec![
            row(&admin_name, sa, "POST /api/v1/collectors", "/api/v1/collectors", "ok"),
            row(&viewer_name, sa, "POST /api/v1/collectors", "/api/v1/collectors", "permission_denied"),
            row(
                &admin_name,
                sa,
                "DELETE /api/v1/collectors/{id}",
                "/api/v1/collectors/col_missing",
                "not_found"
            ),
            row(&admin_name, sa, "POST /api/v1/users", "/api/v1/users", "ok"),
            row(&admin_name, sa, "POST /api/v1/service-accounts", "/api/v1/service-accounts", "ok"),
            row(
                &admin_name,
                sa,
                "POST /api/v1/service-accounts/{id}/tokens",
                &format!("/api/v1/service-accounts/{account_id}/tokens"),
                "ok"
            ),
            row("dana", "user", "POST /api/v1/auth/login", "/api/v1/auth/login", "ok"),
            row(
                "dana",
                "user",
                "POST /api/v1/users/{id}/password",
                &format!("/api/v1/users/{dana_id}/password"),
                "ok"
            ),
            row(
                &admin_name,
                sa,
                "DELETE /api/v1/users/{id}",
                &format!("/api/v1/users/{admin_id}"),
                "failed_precondition"
            ),
        ],
        "{entries:#?}"
    );
    let ids: Vec<u64> = entries.iter().map(|entry| entry["id"].as_u64().expect("id")).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    assert!(entries.iter().all(|entry| entry["remote_addr"] == "127.0.0.1" && entry["ts"].is_string()));
    assert!(!collector_id.is_empty());

    let everything = admin.get("/api/v1/audit?limit=1000").await.to_string();
    let session_value = cookie.split(';').next().and_then(|pair| pair.split_once('=')).expect("cookie").1;
    for secret in [
        user_password,
        next_password,
        minted_token.as_str(),
        admin.token.as_str(),
        viewer.token.as_str(),
        session_value,
    ] {
        assert!(!everything.contains(secret), "a secret reached the audit log: {secret}");
    }

    let (status, _) = viewer.request(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 403, "only admins read the audit log");
    let (status, _) = admin.request(Method::GET, "/api/v1/audit?limit=0", None).await;
    assert_eq!(status, 400);
    let page = admin.get(&format!("/api/v1/audit?after={start}&limit=2")).await;
    assert_eq!(page["entries"].as_array().expect("entries").len(), 2);
    assert_eq!(page["next"], ids[1]);
}

/// Reads are not audited; writes from an untrusted peer are recorded with the peer's address whatever
/// `X-Forwarded-For` says, and with the forwarded client's behind a trusted proxy.
#[tokio::test]
async fn the_recorded_address_is_the_client_address_of_the_contract() {
    let trusted = format!("{FAST_CONFIG}\n[http]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    for (config, expected) in [(FAST_CONFIG.to_owned(), "127.0.0.1"), (trusted, "203.0.113.9")] {
        let server = Server::start_with_config(&config);
        let admin = Api::admin(&server).await;
        let start = last_id(&admin).await;
        admin.get("/api/v1/collectors").await;
        let response = admin
            .http
            .post(server.url("/api/v1/collectors"))
            .bearer_auth(&admin.token)
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "name": "forwarded", "mode": "opamp" }))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        let entries = wait_for_entries(&admin, start, 1).await;
        assert_eq!(entries.len(), 1, "the read was not recorded: {entries:#?}");
        assert_eq!(entries[0]["remote_addr"], expected);
    }
}

#[tokio::test]
async fn retention_keeps_the_newest_entries_and_they_survive_a_restart() {
    let config = format!("{FAST_CONFIG}\n[audit]\nflush_interval = \"50ms\"\n[audit.retention]\nmax_entries = 5\nmax_age = \"1d\"\n");
    let mut server = Server::start_with_config(&config);
    let admin = Api::admin(&server).await;
    let mut names = Vec::new();
    for index in 0..8 {
        let name = format!("kept-{index}");
        admin.create_collector(&name).await;
        names.push(name);
    }
    let entries = entries_after(&admin, 0).await;
    assert_eq!(entries.len(), 5, "{entries:#?}");
    let ids: Vec<u64> = entries.iter().map(|entry| entry["id"].as_u64().expect("id")).collect();
    assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1), "the newest, contiguous: {ids:?}");
    assert!(entries.iter().all(|entry| entry["action"] == "POST /api/v1/collectors"));
    let tail = admin.get("/api/v1/audit?tail=2").await;
    assert_eq!(
        tail["entries"].as_array().expect("entries")[..],
        entries[3..],
        "the newest two, oldest first"
    );
    assert_eq!(tail["next"], ids[4]);

    server.restart();
    let admin = reconnected(&admin);
    assert_eq!(entries_after(&admin, 0).await, entries, "replicated state, restored from the log");
}

/// A refusal is queued, not written with a write of its own; a clean stop writes the queue.
#[tokio::test]
async fn queued_records_are_written_on_shutdown() {
    let config = format!("{FAST_CONFIG}\n[audit]\nflush_interval = \"1h\"\n");
    let mut server = Server::start_with_config(&config);
    let admin = Api::admin(&server).await;
    let start = last_id(&admin).await;
    let (status, _) = admin.request(Method::DELETE, "/api/v1/collectors/col_missing", None).await;
    assert_eq!(status, 404);
    assert_eq!(entries_after(&admin, start).await, Vec::<Value>::new(), "queued until a flush");
    assert!(server.terminate().success());
    server.restart();
    let admin = reconnected(&admin);
    let entries = entries_after(&admin, start).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["outcome"], "not_found");
}
