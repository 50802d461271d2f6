//! Templated fields over REST: `{{labels.KEY}}` in settings resolved per collector, refused where a
//! collector lacks the label (on the item's write and on a label change), refused in OTTL and
//! `{{attributes.KEY}}` refused where data or credentials are sent. Real binary, real HTTP.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn post(api: &Api, path: &str, body: Value) -> (u16, Value) {
    let (status, response) = api.request(Method::POST, path, Some(body)).await;
    (status, response)
}

async fn set_labels(api: &Api, collector_id: &str, labels: Value) -> (u16, Value) {
    let (status, body) = api
        .request(
            Method::PATCH,
            &format!("/api/v1/collectors/{collector_id}"),
            Some(json!({ "labels": labels })),
        )
        .await;
    (status, body)
}

fn field(body: &Value) -> &str {
    body["error"]["details"]["field"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_labelled_endpoint_renders_per_collector_and_dangling_labels_are_refused() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-eu").await;
    let (status, body) = set_labels(&api, &collector_id, json!({"region": "eu", "tenant": "t-1"})).await;
    assert_eq!(status, 200, "{body}");
    let base = format!("/api/v1/collectors/{collector_id}");

    let (status, body) =
        post(&api, &format!("{base}/sources"), json!({"name": "apps", "type": "otlp", "settings": {}})).await;
    assert_eq!(status, 201, "{body}");
    let destination = json!({
        "name": "regional",
        "type": "otlp_http",
        "settings": {
            "endpoint": "https://{{labels.region}}.example.com",
            "headers": {"X-Scope-OrgID": "{{ labels.tenant }}"},
        },
    });
    let (status, body) = post(&api, &format!("{base}/destinations"), destination).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["settings"]["endpoint"], "https://{{labels.region}}.example.com", "stored as written");
    let destination_id = body["id"].as_str().expect("id").to_owned();
    let (status, body) =
        post(&api, &format!("{base}/routes"), json!({"name": "all", "destination_ids": [destination_id]}))
            .await;
    assert_eq!(status, 201, "{body}");

    let config = api.get(&format!("{base}/config")).await;
    let content = config["content"].as_str().expect("content");
    assert!(content.contains("endpoint = \"https://eu.example.com\""), "{content}");
    assert!(content.contains("\"X-Scope-OrgID\" = \"t-1\""), "{content}");
    assert!(!content.contains("{{"), "{content}");
    let version = config["version"].as_u64().expect("version");

    // A new label value is a new version.
    let (status, body) = set_labels(&api, &collector_id, json!({"region": "us", "tenant": "t-1"})).await;
    assert_eq!(status, 200, "{body}");
    let config = api.get(&format!("{base}/config")).await;
    assert!(config["content"].as_str().expect("content").contains("https://us.example.com"), "{config}");
    assert_eq!(config["version"].as_u64(), Some(version + 1));

    // Removing a label the config refers to is refused, naming the field, collector and item.
    let (status, body) = set_labels(&api, &collector_id, json!({"tenant": "t-1"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "labels", "{body}");
    assert!(message(&body).contains("edge-eu"), "{body}");
    assert!(message(&body).contains("settings.endpoint"), "{body}");
    assert!(message(&body).contains("\"region\""), "{body}");
    assert_eq!(
        api.collector(&collector_id).await["labels"]["region"],
        "us",
        "a refused change changes nothing"
    );

    // A label value that makes the endpoint invalid is refused like a literal one.
    let (status, body) = set_labels(&api, &collector_id, json!({"region": "e u", "tenant": "t-1"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "labels", "{body}");

    // A destination needing a label the collector lacks: 400 naming the field and the collector.
    let (status, body) = post(
        &api,
        &format!("{base}/destinations"),
        json!({"name": "zoned", "type": "otlp_grpc", "settings": {"endpoint": "{{labels.zone}}:4317"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "settings.endpoint", "{body}");
    assert!(message(&body).contains("edge-eu") && message(&body).contains("\"zone\""), "{body}");
}

/// A fleet-wide write is checked once per group of collectors that render alike; a collector whose
/// labels break a template is still found, by name, among collectors it would be grouped with but
/// for its labels.
#[tokio::test]
async fn a_fleet_wide_write_names_the_one_collector_whose_label_breaks_it() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let mut ids = Vec::new();
    for (name, region) in [("edge-1", "eu"), ("edge-2", "eu"), ("edge-3", "e u"), ("edge-4", "eu")] {
        let collector_id = api.create_collector(name).await;
        let (status, body) = set_labels(&api, &collector_id, json!({"fleet": "t", "region": region})).await;
        assert_eq!(status, 200, "{body}");
        ids.push(collector_id);
    }
    let destination = |endpoint: &str| {
        json!({
            "selector": "fleet=t",
            "name": "regional",
            "type": "otlp_http",
            "settings": {"endpoint": endpoint},
        })
    };
    let (status, body) =
        post(&api, "/api/v1/destinations", destination("https://{{labels.region}}.example.com")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "settings.endpoint", "{body}");
    assert!(message(&body).contains("edge-3"), "{body}");

    let (status, body) = set_labels(&api, &ids[2], json!({"fleet": "t", "region": "us"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        post(&api, "/api/v1/destinations", destination("https://{{labels.region}}.example.com")).await;
    assert_eq!(status, 201, "{body}");
    let destination_id = body["id"].as_str().expect("id").to_owned();
    let (status, body) = post(
        &api,
        "/api/v1/sources",
        json!({"selector": "fleet=t", "name": "apps", "type": "otlp", "settings": {}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &api,
        "/api/v1/routes",
        json!({"selector": "fleet=t", "name": "all", "destination_ids": [destination_id]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for (collector_id, region) in ids.iter().zip(["eu", "eu", "us", "eu"]) {
        let config = api.get(&format!("/api/v1/collectors/{collector_id}/config")).await;
        let content = config["content"].as_str().expect("content");
        assert!(content.contains(&format!("https://{region}.example.com")), "{content}");
    }
}

#[tokio::test]
async fn templates_are_refused_in_ottl_and_attributes_where_data_is_sent() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-1").await;
    let base = format!("/api/v1/collectors/{collector_id}");

    let (status, body) = post(
        &api,
        "/api/v1/pipelines",
        json!({
            "name": "drop",
            "signals": ["logs"],
            "steps": [{"type": "filter", "settings": {"conditions": ["attributes[\"r\"] == \"{{labels.region}}\""]}}],
        }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "steps[0].settings.conditions[0]", "{body}");

    let (status, body) = post(
        &api,
        &format!("{base}/destinations"),
        json!({"name": "out", "type": "otlp_http", "settings": {"endpoint": "https://{{attributes.host}}.example.com"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "settings.endpoint", "{body}");
    assert!(message(&body).contains("only labels"), "{body}");

    for (settings, expected_field) in [
        (json!({"endpoint": "https://{{labels.region"}), "settings.endpoint"),
        (json!({"endpoint": "https://{{env.HOME}}"}), "settings.endpoint"),
        (json!({"endpoint": "https://x", "headers": {"a": "{{attributes.k}}"}}), "settings.headers.a"),
    ] {
        let (status, body) = post(
            &api,
            &format!("{base}/destinations"),
            json!({"name": "out", "type": "otlp_http", "settings": settings}),
        )
        .await;
        assert_eq!(status, 400, "{settings}: {body}");
        assert_eq!(field(&body), expected_field, "{body}");
    }

    // Attributes are allowed in data stamped on records; `{{"{{"}}` writes a literal `{{`.
    let (status, body) = post(
        &api,
        &format!("{base}/sources"),
        json!({
            "name": "apps",
            "type": "otlp",
            "settings": {},
            "resource_attributes": {"host": "{{attributes.host.name}}", "braces": "{{\"{{\"}}x}}"},
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &api,
        &format!("{base}/sources"),
        json!({"name": "bad", "type": "otlp", "settings": {"grpc_endpoint": "0.0.0.0:4327", "http_endpoint": "0.0.0.0:4328"},
               "resource_attributes": {"x": "{{nope}}"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field(&body), "resource_attributes.x", "{body}");
}

#[tokio::test]
async fn reported_attributes_render_into_stamped_data_and_change_with_the_collector() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("edge-attr").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let (status, body) = post(
        &api,
        &format!("{base}/sources"),
        json!({"name": "apps", "type": "otlp", "settings": {}, "resource_attributes": {"host": "{{attributes.host.name}}"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(
        &api,
        &format!("{base}/destinations"),
        json!({"name": "console", "type": "debug", "settings": {}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        post(&api, &format!("{base}/routes"), json!({"name": "all", "destination_ids": [body["id"]]})).await;
    assert_eq!(status, 201, "{body}");
    let unreported = api.get(&format!("{base}/config")).await;
    assert!(
        unreported["content"].as_str().expect("content").contains(r#"set(attributes[\"host\"], \"\")"#),
        "an unreported attribute renders empty: {unreported}"
    );

    let hostile = "edge \"1\"\n${env:HOME}";
    let mut request = poll_request("host-1", "");
    request.local_attributes = [("host.name".to_owned(), hostile.to_owned())].into();
    get_config(&server, &token, &request).await;
    // The stamp statement is an OTTL string inside an Alloy string: escaped twice, never syntax.
    let expected = r#"set(attributes[\"host\"], \"edge \\\"1\\\"\\n${env:HOME}\")"#;
    let rendered = wait_until(Duration::from_secs(10), || async {
        api.get(&format!("{base}/config")).await["content"].as_str().unwrap_or_default().contains(expected)
    })
    .await;
    let config = api.get(&format!("{base}/config")).await;
    assert!(rendered, "{expected} not in {config}");
    assert!(config["version"].as_u64() > unreported["version"].as_u64(), "{config}");
}
