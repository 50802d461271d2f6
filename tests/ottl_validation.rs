//! A typo in OTTL or a regular expression never becomes a version: route conditions, filter and
//! transform steps and mask patterns are checked at the API, in every context the collector's config
//! renders them in, with the field named, under `?validate_only=true` as on a real write. Real
//! binary, real HTTP. (The parser itself is tested against the collectors' Go code in
//! `tests/ottl_differential.rs`.)

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{Api, Server};

async fn versions(api: &Api, collector_id: &str) -> usize {
    let body = api.get(&format!("/api/v1/collectors/{collector_id}/config/versions")).await;
    body["versions"].as_array().map_or(0, Vec::len)
}

/// `POST path` with and without `validate_only`: both refused the same way, naming `field`, with
/// `expected` in the message; nothing committed.
async fn refused_both_ways(api: &Api, path: &str, body: Value, field: &str, expected: &str) -> Value {
    let mut last = Value::Null;
    for query in ["?validate_only=true", ""] {
        let (status, answer) = api.request(Method::POST, &format!("{path}{query}"), Some(body.clone())).await;
        assert_eq!(status, 400, "{path}{query} {body}: {answer}");
        assert_eq!(answer["error"]["details"]["field"], field, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{expected:?} not in {message:?}");
        last = answer;
    }
    last
}

struct Collector {
    id: String,
    base: String,
}

/// A collector with an OTLP source (every signal), a Loki destination (logs only) and an OTLP/HTTP
/// one (every signal).
async fn collector(api: &Api, name: &str) -> (Collector, String, String) {
    let id = api.create_collector(name).await;
    let base = format!("/api/v1/collectors/{id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.example"}}),
        )
        .await;
    let otlp = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "otlp", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}}),
        )
        .await;
    let ids = |value: &Value| value["id"].as_str().expect("id").to_owned();
    (Collector { id, base }, ids(&loki), ids(&otlp))
}

#[tokio::test]
async fn route_conditions_are_checked_in_every_signal_they_carry() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (edge, loki, otlp) = collector(&api, "ottl-routes").await;
    let routes = format!("{}/routes", edge.base);
    let before = versions(&api, &edge.id).await;

    // The defect as found: a syntax error was saved, wrapped in `not (…)` and delivered.
    let route = |condition: &str, destination: &str| json!({"name": "errors", "condition": condition, "destination_ids": [destination], "is_final": false});
    refused_both_ways(&api, &routes, route(r#"attributes["env" =="#, &loki), "condition", "condition").await;
    refused_both_ways(&api, &routes, route("UnknownFunction(body)", &loki), "condition", "UnknownFunction")
        .await;
    // Closes the renderer's parenthesis: only the wrapped form would load, with another meaning.
    refused_both_ways(&api, &routes, route(r#"attributes["a"] == "x") or (true"#, &loki), "condition", "")
        .await;
    // A log path on a route that carries traces and metrics too.
    let answer = refused_both_ways(
        &api,
        &routes,
        route(r#"severity_text == "ERROR""#, &otlp),
        "condition",
        "severity_text",
    )
    .await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("metrics") || message.contains("traces"), "{message}");
    assert_eq!(versions(&api, &edge.id).await, before, "no refused write made a version");

    // The same condition on a logs-only route loads.
    let accepted = api.create(&routes, route(r#"severity_text == "ERROR""#, &loki)).await;
    assert_eq!(versions(&api, &edge.id).await, before + 1);

    // Pointing that route at a destination that also carries spans is refused where it is written…
    let (status, answer) = api
        .request(
            Method::PUT,
            &format!("{routes}/{}", accepted["id"].as_str().expect("id")),
            Some(route(r#"severity_text == "ERROR""#, &otlp)),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "condition", "{answer}");
    // …and so is turning its destination into one: the refusal names the route it breaks.
    let (status, answer) = api
        .request(
            Method::PUT,
            &format!("{}/destinations/{loki}", edge.base),
            Some(json!({"name": "loki", "type": "otlp_http", "settings": {"endpoint": "https://o.example"}})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["field"], "type", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("route \"errors\"") && message.contains("severity_text"), "{message}");
    assert_eq!(versions(&api, &edge.id).await, before + 1);
}

#[tokio::test]
async fn pipeline_steps_and_mask_patterns_are_checked_before_any_collector_uses_them() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let pipeline = |signals: Value, steps: Value| json!({"name": "p", "signals": signals, "steps": steps});
    let filter =
        |condition: &str| json!([{"type": "filter", "settings": {"conditions": ["true", condition]}}]);

    refused_both_ways(
        &api,
        "/api/v1/pipelines",
        pipeline(json!(["logs"]), filter("severity_text == ")),
        "steps[0].settings.conditions[1]",
        "",
    )
    .await;
    // A log-only path in a pipeline that also runs on metrics.
    let answer = refused_both_ways(
        &api,
        "/api/v1/pipelines",
        pipeline(json!(["logs", "metrics"]), filter(r#"severity_text == "DEBUG""#)),
        "steps[0].settings.conditions[1]",
        "metrics",
    )
    .await;
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("datapoint"), "{answer}");
    let transform = json!([{"type": "transform", "settings": {"statements": ["set(attributes[\"x\"])"]}}]);
    refused_both_ways(
        &api,
        "/api/v1/pipelines",
        pipeline(json!(["traces"]), transform),
        "steps[0].settings.statements[0]",
        "",
    )
    .await;
    // An invalid regex, and one only Rust's regex crate takes (RE2 has no `(?x)`).
    for pattern in ["([a-z", "(?x) secret = \\S+"] {
        let mask = json!([{"type": "mask", "settings": {"patterns": ["token=\\S+", pattern]}}]);
        refused_both_ways(
            &api,
            "/api/v1/pipelines",
            pipeline(json!(["logs"]), mask),
            "steps[0].settings.patterns[1]",
            "regular expression",
        )
        .await;
    }
    // Several problems: every field is reported.
    let (status, answer) = api
        .request(
            Method::POST,
            "/api/v1/pipelines",
            Some(pipeline(
                json!(["logs"]),
                json!([
                    {"type": "filter", "settings": {"conditions": ["nope =="]}},
                    {"type": "mask", "settings": {"patterns": ["(unclosed"]}},
                ]),
            )),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> = answer["error"]["details"]["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(|field| field["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["steps[0].settings.conditions[0]", "steps[1].settings.patterns[0]"], "{answer}");

    let good = pipeline(
        json!(["logs", "metrics", "traces"]),
        json!([
            {"type": "filter", "settings": {"conditions": [r#"attributes["level"] == "debug""#]}},
            {"type": "transform", "settings": {"statements": [r#"set(attributes["env"], "prod")"#]}},
            {"type": "mask", "settings": {"emails": true, "patterns": ["(?i)secret=\\S+"]}},
        ]),
    );
    let created = api.create("/api/v1/pipelines", good).await;
    assert!(created["id"].as_str().is_some(), "{created}");
}
