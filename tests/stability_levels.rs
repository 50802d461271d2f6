//! Alloy's stability levels at the API: a config that needs a component below the level the
//! collector's Alloy runs with (default generally-available) is refused before it becomes a version,
//! with an explanation; `PATCH /collectors/{id}` sets the level, and is itself refused while the
//! config needs a lower one. Real binary, real HTTP.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{connect_post, pb, Api, Server};

/// A route to a debug destination (created on first use) on `collector_id`.
async fn debug_route(api: &Api, collector_id: &str, validate_only: bool) -> (u16, Value) {
    let base = format!("/api/v1/collectors/{collector_id}");
    let existing = api.get(&format!("{base}/destinations")).await;
    let destination_id = match existing["destinations"].as_array().and_then(|list| list.first()) {
        Some(destination) => destination["id"].clone(),
        None => {
            let (status, destination) = api
                .request(
                    Method::POST,
                    &format!("{base}/destinations"),
                    Some(json!({"name": "console", "type": "debug"})),
                )
                .await;
            assert_eq!(
                status, 201,
                "an unused debug destination renders nothing and is accepted: {destination}"
            );
            destination["id"].clone()
        }
    };
    let query = if validate_only { "?validate_only=true" } else { "" };
    api.request(
        Method::POST,
        &format!("{base}/routes{query}"),
        Some(json!({"name": "all", "destination_ids": [destination_id]})),
    )
    .await
}

async fn versions(api: &Api, collector_id: &str) -> usize {
    let body = api.get(&format!("/api/v1/collectors/{collector_id}/config/versions")).await;
    body["versions"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_component_below_the_collectors_stability_level_never_becomes_a_version() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("stable-edge").await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["stability_level"], "generally-available");
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let before = versions(&api, &collector_id).await;

    for validate_only in [true, false] {
        let (status, body) = debug_route(&api, &collector_id, validate_only).await;
        assert_eq!(status, 400, "validate_only={validate_only}: {body}");
        assert_eq!(body["error"]["details"]["field"], "destination_ids", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("otelcol.exporter.debug"), "{message}");
        assert!(message.contains("\"experimental\""), "{message}");
        assert!(message.contains("--stability.level=experimental"), "{message}");
    }
    assert_eq!(versions(&api, &collector_id).await, before, "no version was created");

    let (status, body) =
        api.request(Method::PATCH, &base, Some(json!({"stability_level": "experimental"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stability_level"], "experimental");
    let (status, body) = debug_route(&api, &collector_id, false).await;
    assert_eq!(status, 201, "an experimental collector takes the debug exporter: {body}");
    let config = api.get(&format!("{base}/config")).await;
    assert!(config["content"].as_str().unwrap_or_default().contains("otelcol.exporter.debug"));

    let (status, body) =
        api.request(Method::PATCH, &base, Some(json!({"stability_level": "generally-available"}))).await;
    assert_eq!(status, 400, "the config in force needs experimental: {body}");
    assert_eq!(body["error"]["details"]["field"], "stability_level");
    assert_eq!(api.collector(&collector_id).await["stability_level"], "experimental");

    let (status, body) = api.request(Method::PATCH, &base, Some(json!({"stability_level": "stable"}))).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (400, Some("stability_level")),
        "{body}"
    );
}

#[tokio::test]
async fn the_level_is_set_at_creation_and_the_reported_release_is_checked() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (status, collector) = api
        .request(
            Method::POST,
            "/api/v1/collectors",
            Some(json!({"name": "lab", "mode": "alloy-remotecfg", "stability_level": "experimental"})),
        )
        .await;
    assert_eq!(status, 201, "{collector}");
    assert_eq!(collector["stability_level"], "experimental");
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    let token = api.mint_token(&collector_id).await;

    // An Alloy 1.2 reports its release: it has no otelcol.exporter.debug at all (added in 1.3).
    let register = pb::RegisterCollectorRequest {
        id: "lab-host".to_owned(),
        name: "lab-host".to_owned(),
        local_attributes: [("collector.version".to_owned(), "v1.2.1".to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(connect_post(&server, "RegisterCollector", Some(&token), &register).await.status(), 200);
    // The check reads the release from the replicated record, written a moment after the call.
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let refused = support::wait_until(support::WAIT_DEADLINE, || async {
        debug_route(&api, &collector_id, true).await.0 == 400
    })
    .await;
    let (_, refusal) = debug_route(&api, &collector_id, true).await;
    assert!(refused, "never refused: {refusal}");
    let message = refusal["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not exist in Alloy 1.2.1"), "{refusal}");

    let (status, body) = api
        .request(
            Method::POST,
            "/api/v1/collectors",
            Some(json!({"name": "x", "mode": "alloy-remotecfg", "stability_level": "beta"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (400, Some("stability_level")),
        "{body}"
    );
}

#[tokio::test]
async fn opentelemetry_collectors_take_the_debug_exporter() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector = api.create("/api/v1/collectors", json!({"name": "otel", "mode": "opamp"})).await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    let (status, body) = debug_route(&api, &collector_id, false).await;
    assert_eq!(status, 201, "{body}");
}
