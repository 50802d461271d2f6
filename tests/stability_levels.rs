//! Alloy's stability levels at the API: a `debug` destination renders with the debug exporter only
//! where the collector's Alloy accepts experimental components, and with generally-available ones
//! otherwise; a config that needs a component the collector's level or reported release refuses is
//! refused before it becomes a version, with an explanation; `PATCH /collectors/{id}` sets the level,
//! re-renders, and is itself refused while the config would need what the new level refuses. Real
//! binary, real HTTP.

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

/// Registers `token`'s collector as an Alloy of `release`.
async fn report_release(server: &Server, collector_id: &str, token: &str, release: &str) {
    let register = pb::RegisterCollectorRequest {
        id: format!("{collector_id}-host"),
        name: format!("{collector_id}-host"),
        local_attributes: [("collector.version".to_owned(), release.to_owned())].into(),
        ..Default::default()
    };
    assert_eq!(connect_post(server, "RegisterCollector", Some(token), &register).await.status(), 200);
}

/// A debug route on `collector_id` is refused, once the release the collector reported reaches the
/// replicated record the check reads (a moment after the call); the refusal.
async fn debug_route_refused(api: &Api, collector_id: &str) -> Value {
    let refused = support::wait_until(support::WAIT_DEADLINE, || async {
        debug_route(api, collector_id, true).await.0 == 400
    })
    .await;
    let (_, refusal) = debug_route(api, collector_id, true).await;
    assert!(refused, "never refused: {refusal}");
    refusal
}

async fn config_content(api: &Api, collector_id: &str) -> String {
    let config = api.get(&format!("/api/v1/collectors/{collector_id}/config")).await;
    config["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_debug_destination_renders_what_the_collectors_stability_level_accepts() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("stable-edge").await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["stability_level"], "generally-available");
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;

    let (status, body) = debug_route(&api, &collector_id, true).await;
    assert_eq!(status, 200, "{body}");
    let preview = body["configs"][0]["content"].as_str().unwrap_or_default();
    assert!(preview.contains("loki.echo") && !preview.contains("otelcol.exporter.debug"), "{preview}");
    let (status, body) = debug_route(&api, &collector_id, false).await;
    assert_eq!(status, 201, "{body}");
    let content = config_content(&api, &collector_id).await;
    for component in ["loki.echo", "prometheus.echo", "otelcol.connector.spanlogs"] {
        assert!(content.contains(component), "{component} missing:\n{content}");
    }
    assert!(!content.contains("otelcol.exporter.debug"), "{content}");

    // The level is part of what a config renders from: changing it makes a new version.
    let before = versions(&api, &collector_id).await;
    let (status, body) =
        api.request(Method::PATCH, &base, Some(json!({"stability_level": "experimental"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stability_level"], "experimental");
    assert_eq!(versions(&api, &collector_id).await, before + 1);
    let content = config_content(&api, &collector_id).await;
    assert!(content.contains("otelcol.exporter.debug") && !content.contains("loki.echo"), "{content}");

    let (status, body) = api.request(Method::PATCH, &base, Some(json!({"stability_level": "stable"}))).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (400, Some("stability_level")),
        "{body}"
    );
}

#[tokio::test]
async fn a_component_the_collectors_release_lacks_never_becomes_a_version() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("older-edge").await;
    let token = api.mint_token(&collector_id).await;
    // Alloy 1.12 has no prometheus.echo (added in 1.13), which a debug destination needs for metrics
    // at the default level.
    report_release(&server, &collector_id, &token, "v1.12.2").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let before = versions(&api, &collector_id).await;
    debug_route_refused(&api, &collector_id).await;
    for validate_only in [true, false] {
        let (status, body) = debug_route(&api, &collector_id, validate_only).await;
        assert_eq!(status, 400, "validate_only={validate_only}: {body}");
        assert_eq!(body["error"]["details"]["field"], "destination_ids", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("prometheus.echo does not exist in Alloy 1.12.2"), "{message}");
    }
    assert_eq!(versions(&api, &collector_id).await, before, "no version was created");

    // At the experimental level the debug exporter (in Alloy since 1.3) prints metrics instead.
    let (status, body) =
        api.request(Method::PATCH, &base, Some(json!({"stability_level": "experimental"}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = debug_route(&api, &collector_id, false).await;
    assert_eq!(status, 201, "{body}");
    assert!(config_content(&api, &collector_id).await.contains("otelcol.exporter.debug"));

    let (status, body) =
        api.request(Method::PATCH, &base, Some(json!({"stability_level": "generally-available"}))).await;
    assert_eq!(status, 400, "the config in force would need prometheus.echo: {body}");
    assert_eq!(body["error"]["details"]["field"], "stability_level");
    assert_eq!(api.collector(&collector_id).await["stability_level"], "experimental");
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
    report_release(&server, &collector_id, &token, "v1.2.1").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let refusal = debug_route_refused(&api, &collector_id).await;
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
