//! The fleet model over REST: validation, references, versions, previews, and delivery to collectors.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn post(api: &Api, path: &str, body: Value) -> Value {
    let (status, response) = api.request(Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "POST {path}: {response}");
    response
}

/// A collector with one OTLP source, one OTLP/HTTP destination and a catch-all route.
async fn configured_collector(api: &Api, name: &str) -> (String, String, String) {
    let collector_id = api.create_collector(name).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    post(api, &format!("{base}/sources"), json!({"name": "apps", "type": "otlp", "settings": {}})).await;
    let destination = post(
        api,
        &format!("{base}/destinations"),
        json!({"name": "console", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}}),
    )
    .await;
    let destination_id = destination["id"].as_str().expect("id").to_owned();
    let route = post(
        api,
        &format!("{base}/routes"),
        json!({"name": "everything", "destination_ids": [destination_id]}),
    )
    .await;
    (collector_id, destination_id, route["id"].as_str().expect("id").to_owned())
}

#[tokio::test]
async fn a_change_reaches_the_next_poll_with_a_new_version() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("delivery").await;
    let token = api.mint_token(&collector_id).await;
    let empty = get_config(&server, &token, &poll_request("h", "")).await;
    assert!(empty.content.starts_with("// linkmesh: no sources or routes"));

    let base = format!("/api/v1/collectors/{collector_id}");
    post(&api, &format!("{base}/sources"), json!({"name": "apps", "type": "otlp", "settings": {}})).await;
    let destination = post(
        &api,
        &format!("{base}/destinations"),
        json!({"name": "console", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}}),
    )
    .await;
    post(&api, &format!("{base}/routes"), json!({"name": "all", "destination_ids": [destination["id"]]}))
        .await;

    let config = api.get(&format!("{base}/config")).await;
    assert_eq!(config["format"], "alloy");
    let version = config["version"].as_u64().expect("version");
    assert!(version >= 2, "{config}");
    let polled = get_config(&server, &token, &poll_request("h", &empty.hash)).await;
    assert!(!polled.not_modified);
    assert_eq!(polled.hash, config["hash"].as_str().expect("hash"));
    assert_eq!(polled.content, config["content"].as_str().expect("content"));
    assert!(polled.content.contains("otelcol.receiver.otlp"), "{}", polled.content);

    api.wait_for_event(&collector_id, "config_delivered", 2).await;
    let events = api.get(&format!("{base}/events?limit=1000")).await;
    let delivered: Vec<u64> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "config_delivered")
        .map(|event| event["data"]["version"].as_u64().expect("version"))
        .collect();
    assert_eq!(delivered.last(), Some(&version), "{delivered:?}");

    let versions = api.get(&format!("{base}/config/versions")).await;
    assert_eq!(versions["current"], version);
    assert_eq!(versions["versions"][0]["version"], version);
    let diff = api.get(&format!("{base}/config/diff?from=1&to={version}")).await;
    let diff_text = diff["diff"].as_str().expect("diff");
    assert!(diff_text.contains("-// linkmesh: no sources or routes"), "{diff_text}");
    assert!(diff_text.contains("+"), "{diff_text}");
}

#[tokio::test]
async fn unchanged_output_does_not_bump_the_version() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("stable").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    // A source alone renders nothing new (no route yet): still version 1.
    post(&api, &format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    assert_eq!(api.get(&format!("{base}/config")).await["version"], 1);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("strict").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let cases = [
        (format!("{base}/sources"), json!({"name": "x", "type": "carrier_pigeon"}), "type"),
        (
            format!("{base}/sources"),
            json!({"name": "x", "type": "otlp", "settings": {"bogus": 1}}),
            "settings.bogus",
        ),
        (
            format!("{base}/destinations"),
            json!({"name": "x", "type": "otlp_http", "settings": {}}),
            "settings.endpoint",
        ),
        (
            format!("{base}/routes"),
            json!({"name": "x", "destination_ids": ["dst_missing"]}),
            "destination_ids",
        ),
        (format!("{base}/routes"), json!({"name": "x", "destination_ids": []}), "destination_ids"),
        ("/api/v1/pipelines".to_owned(), json!({"name": "p", "signals": ["sound"]}), "signals"),
        (
            "/api/v1/pipelines".to_owned(),
            json!({"name": "p", "signals": ["logs"], "steps": [{"type": "teleport"}]}),
            "steps[0].type",
        ),
    ];
    for (path, body, field) in cases {
        let (status, response) = api.request(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body}: {response}");
        assert_eq!(response["error"]["details"]["field"], field, "{path} {body}: {response}");
    }
    assert_eq!(api.get(&format!("{base}/config")).await["version"], 1);
}

#[tokio::test]
async fn a_pipeline_in_use_cannot_be_deleted_and_the_error_names_its_routes() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let pipeline = post(
        &api,
        "/api/v1/pipelines",
        json!({"name": "batching", "signals": ["logs", "metrics", "traces"], "steps": [{"type": "batch", "settings": {}}]}),
    )
    .await;
    let pipeline_id = pipeline["id"].as_str().expect("id");
    let (collector_id, destination_id, route_id) = configured_collector(&api, "with-pipeline").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let (status, route) = api
        .request(
            Method::PUT,
            &format!("{base}/routes/{route_id}"),
            Some(json!({"name": "everything", "pipeline_id": pipeline_id, "destination_ids": [destination_id]})),
        )
        .await;
    assert_eq!(status, 200, "{route}");
    assert!(api.get(&format!("{base}/config")).await["content"].as_str().expect("content").contains("batch"));

    let (status, error) =
        api.request(Method::DELETE, &format!("/api/v1/pipelines/{pipeline_id}"), None).await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"]["message"].as_str().expect("message").contains("everything"), "{error}");
    let (status, error) =
        api.request(Method::DELETE, &format!("{base}/destinations/{destination_id}"), None).await;
    assert_eq!(status, 409, "{error}");

    let (status, _) = api.request(Method::DELETE, &format!("{base}/routes/{route_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = api.request(Method::DELETE, &format!("/api/v1/pipelines/{pipeline_id}"), None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn validate_only_renders_without_committing() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (collector_id, destination_id, _route_id) = configured_collector(&api, "preview").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let before = api.get(&format!("{base}/config")).await;
    let (status, preview) = api
        .request(
            Method::POST,
            &format!("{base}/routes?validate_only=true"),
            Some(json!({"name": "errors", "condition": "attributes[\"http.status_code\"] >= 500", "priority": 10, "destination_ids": [destination_id]})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["valid"], true);
    assert_ne!(preview["configs"][0]["hash"], before["hash"]);
    assert!(preview["configs"][0]["content"].as_str().expect("content").contains("http.status_code"));
    assert_eq!(api.get(&format!("{base}/config")).await, before);
    assert_eq!(api.get(&format!("{base}/routes")).await["routes"].as_array().expect("routes").len(), 1);

    let (status, error) = api
        .request(
            Method::POST,
            &format!("{base}/routes?validate_only=true"),
            Some(json!({"name": "x", "destination_ids": ["nope"]})),
        )
        .await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn credentials_are_write_only_and_reach_only_the_collector() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("secretive").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    post(&api, &format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let destination = post(
        &api,
        &format!("{base}/destinations"),
        json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.example.com/loki/api/v1/push"},
               "credentials": {"username": "tenant-1", "password": "s3cr3t-\"quoted\""}}),
    )
    .await;
    assert_eq!(destination["credentials"]["password"], "••••");
    let destination_id = destination["id"].as_str().expect("id");
    post(&api, &format!("{base}/routes"), json!({"name": "logs", "destination_ids": [destination_id]})).await;

    let shown = api.get(&format!("{base}/config")).await;
    let shown_text = shown.to_string();
    assert!(!shown_text.contains("s3cr3t"), "{shown_text}");
    let listed = api.get(&format!("{base}/destinations")).await.to_string();
    assert!(!listed.contains("s3cr3t"), "{listed}");
    let delivered = get_config(&server, &token, &poll_request("h", "")).await;
    assert!(delivered.content.contains(r#"s3cr3t-\"quoted\""#), "{}", delivered.content);

    // Replacing the destination without credentials keeps them; null removes one.
    let (status, kept) = api
        .request(
            Method::PUT,
            &format!("{base}/destinations/{destination_id}"),
            Some(json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.example.com/loki/api/v1/push"}})),
        )
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["credentials"]["password"], "••••");
    let (status, removed) = api
        .request(
            Method::PUT,
            &format!("{base}/destinations/{destination_id}"),
            Some(json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.example.com/loki/api/v1/push"},
                        "credentials": {"password": null}})),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert!(removed["credentials"].get("password").is_none(), "{removed}");
    assert_eq!(removed["credentials"]["username"], "••••");
    let data_key = std::fs::read_to_string(server.data_dir.join("data-key")).expect("data key file");
    assert!(!data_key.trim().is_empty());
}

#[tokio::test]
async fn viewers_cannot_change_the_fleet_model() {
    let server = Server::start();
    let admin = Api::admin(&server).await;
    let collector_id = admin.create_collector("guarded").await;
    let viewer = Api::with_role(&server, "viewer").await;
    let (status, _) = viewer
        .request(
            Method::POST,
            &format!("/api/v1/collectors/{collector_id}/sources"),
            Some(json!({"name": "a", "type": "otlp"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = viewer
        .request(Method::POST, "/api/v1/pipelines", Some(json!({"name": "p", "signals": ["logs"]})))
        .await;
    assert_eq!(status, 403);
    let catalogue = viewer.get("/api/v1/catalogue").await;
    assert!(catalogue["entries"].as_array().expect("entries").len() >= 17);
}
