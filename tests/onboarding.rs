//! The product page's onboarding path, over real HTTP against the real binary.

mod support;

use support::*;

#[tokio::test]
async fn onboarding_connects_and_records_registration_then_delivery() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-1").await;

    let minted = api.mint(&collector_id).await;
    let token = minted["token"].as_str().expect("token");
    assert!(token.starts_with("lmct_"));
    let config_alloy = minted["config_alloy"].as_str().expect("config_alloy");
    assert!(config_alloy.contains(&format!("bearer_token = \"{token}\"")));
    assert!(config_alloy.contains(&format!("\"Authorization\" = \"Bearer {token}\"")));
    assert!(config_alloy.contains(&format!("url            = \"{}\"", server.base_url)));

    // What Alloy does on start: register, poll, register again.
    register(&server, token, "host-a").await;
    let first = get_config(&server, token, &poll_request("host-a", "")).await;
    register(&server, token, "host-a").await;
    assert!(!first.not_modified);
    assert_eq!(first.content, "// linkmesh: no sources or routes configured for collector \"edge-1\"\n");

    let collector = api.wait_for_status(&collector_id, "connected").await;
    assert_eq!(collector["host_id"], "host-a");
    assert_eq!(collector["token"]["prefix"], minted["prefix"]);
    let types = api.wait_for_event(&collector_id, "config_delivered", 1).await;
    let position =
        |name: &str| types.iter().position(|t| t == name).unwrap_or_else(|| panic!("{name} in {types:?}"));
    assert!(position("collector_created") < position("token_minted"));
    assert!(position("token_minted") < position("remotecfg_registered"));
    assert!(position("remotecfg_registered") < position("config_delivered"));
    assert_eq!(types.iter().filter(|t| *t == "remotecfg_registered").count(), 1, "{types:?}");

    // The stored record catches up with the live view (batched write), and the token is never shown again.
    let stored = api.get(&format!("/api/v1/collectors/{collector_id}")).await;
    assert!(stored.to_string().find(token).is_none());
    let config = api.get(&format!("/api/v1/collectors/{collector_id}/config")).await;
    assert_eq!(config["content"], first.content);
    assert_eq!(config["hash"], first.hash);
    assert_eq!(config["format"], "alloy");
}

#[tokio::test]
async fn rotated_token_is_rejected_immediately() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("rotating").await;
    let old = api.mint_token(&collector_id).await;
    get_config(&server, &old, &poll_request("host-a", "")).await;
    // Rejected calls are attributed through the replicated host id, written with the first batch.
    api.wait_for_event(&collector_id, "config_delivered", 1).await;

    let new = api.mint_token(&collector_id).await;
    let rejected = connect_post(&server, "GetConfig", Some(&old), &poll_request("host-a", "")).await;
    let (status, code, message) = connect_error(rejected).await;
    assert_eq!((status, code.as_str()), (401, "unauthenticated"));
    assert!(message.contains("rotated"), "{message}");
    get_config(&server, &new, &poll_request("host-a", "")).await;
    api.wait_for_event(&collector_id, "token_rotated", 1).await;
    api.wait_for_event(&collector_id, "auth_failed", 1).await;
}

#[tokio::test]
async fn deleting_a_collector_revokes_its_token() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("doomed").await;
    let token = api.mint_token(&collector_id).await;
    get_config(&server, &token, &poll_request("host-a", "")).await;

    let (status, _) =
        api.request(reqwest::Method::DELETE, &format!("/api/v1/collectors/{collector_id}"), None).await;
    assert_eq!(status, 204);
    let response = connect_post(&server, "GetConfig", Some(&token), &poll_request("host-a", "")).await;
    assert_eq!(connect_error(response).await.0, 401);
    let (status, body) =
        api.request(reqwest::Method::GET, &format!("/api/v1/collectors/{collector_id}"), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn collector_names_are_unique_and_validated_by_field() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    api.create_collector("dup").await;
    let (status, body) = api
        .request(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(serde_json::json!({"name": "dup", "mode": "alloy-remotecfg"})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("already_exists")));
    let (status, body) = api
        .request(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(serde_json::json!({"name": "x", "mode": "fluentd"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["field"], "mode");
    let (status, body) = api
        .request(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(serde_json::json!({"name": "", "mode": "opamp"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"]["field"], "name");
}

#[tokio::test]
async fn viewers_read_but_cannot_write() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let collector_id = admin.create_collector("watched").await;
    let viewer = Api::with_role(&server, "viewer").await;

    let listed = viewer.get("/api/v1/collectors").await;
    assert_eq!(listed["collectors"][0]["id"], collector_id.as_str());
    let (status, body) = viewer
        .request(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(serde_json::json!({"name": "nope", "mode": "opamp"})),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("permission_denied")));
    let (status, _) = viewer
        .request(reqwest::Method::POST, &format!("/api/v1/collectors/{collector_id}/token"), None)
        .await;
    assert_eq!(status, 403);
    let (status, _) =
        viewer.request(reqwest::Method::DELETE, &format!("/api/v1/collectors/{collector_id}"), None).await;
    assert_eq!(status, 403);
    assert_eq!(admin.event_types(&collector_id).await, vec!["collector_created"]);
}

#[tokio::test]
async fn list_filters_by_status_mode_and_text() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let alloy = api.create_collector("alloy-east").await;
    let (status, _) = api
        .request(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(serde_json::json!({"name": "otel-west", "mode": "opamp"})),
        )
        .await;
    assert_eq!(status, 201);
    let token = api.mint_token(&alloy).await;
    get_config(&server, &token, &poll_request("h1", "")).await;
    api.wait_for_status(&alloy, "connected").await;

    let ids = |value: serde_json::Value| -> Vec<String> {
        value["collectors"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(ids(api.get("/api/v1/collectors?mode=opamp").await), ["otel-west"]);
    assert_eq!(ids(api.get("/api/v1/collectors?status=connected").await), ["alloy-east"]);
    assert_eq!(ids(api.get("/api/v1/collectors?q=EAST").await), ["alloy-east"]);
    assert_eq!(ids(api.get("/api/v1/collectors").await), ["alloy-east", "otel-west"]);
}
