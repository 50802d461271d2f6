//! Apply status inferred from Alloy's own metrics, against the real binary: a collector reporting an
//! Alloy release is delivered one config, then a changed one; the scrapes of each fixture under
//! `tests/fixtures/alloy_apply/` (derived from Alloy's source, see its README) go to the real OTLP
//! receiver as protobuf pushes shaped like Alloy's, and `config.apply`, the events and the status
//! must say what the fixture expects. No real Alloy runs here.

mod support;

use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{json, Value};
use support::{connect_post, get_config, pb, wait_until, Api, Server, FAST_CONFIG, WAIT_DEADLINE};

const HOST: &str = "host-apply";
const SECOND: u64 = 1_000_000_000;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alloy_apply").join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture is JSON")
}

/// FNV-1 32-bit in hex, written here from its definition (not linkmesh's): what Alloy's `getHash`
/// labels `remotecfg_hash` with.
fn fnv1_32(bytes: &[u8]) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash = hash.wrapping_mul(0x0100_0193) ^ u32::from(*byte);
    }
    format!("{hash:08x}")
}

/// The component ids of the blocks inside the delivered module's `declare` body, read from the text.
fn component_ids(content: &str) -> Vec<String> {
    let mut inside = false;
    let mut ids = Vec::new();
    for line in content.lines() {
        if line.starts_with("declare ") {
            inside = true;
            continue;
        }
        if inside && line == "}" {
            break;
        }
        let Some(header) = line.strip_prefix("  ").filter(|rest| !rest.starts_with(' ')) else { continue };
        let Some(header) = header.strip_suffix(" {") else { continue };
        if let Some((name, label)) = header.split_once(' ') {
            if let Some(label) = label.strip_prefix('"').and_then(|label| label.strip_suffix('"')) {
                ids.push(format!("{name}.{label}"));
            }
        }
    }
    ids
}

/// One delivered config as the fixture placeholders see it.
struct Delivered {
    hash: String,
    components: Vec<String>,
}

impl Delivered {
    fn of(content: &str) -> Delivered {
        let components = component_ids(content);
        assert!(!components.is_empty(), "no component in the delivered module:\n{content}");
        Delivered { hash: fnv1_32(content.as_bytes()), components }
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

fn point(attributes: Vec<KeyValue>, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Gauge(Gauge { data_points: points })),
        ..Metric::default()
    }
}

fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

fn running(path: &str, id: &str, health: &str, time: u64, count: u64) -> NumberDataPoint {
    point(
        vec![text("controller_path", path), text("controller_id", id), text("health_type", health)],
        time,
        count as f64,
    )
}

/// One scrape of the fixture as Alloy's `prometheus.exporter.self` → `otelcol.receiver.prometheus`
/// chain pushes it: the remotecfg and controller series among unrelated ones.
fn scrape_request(
    scrape: &Value,
    start: u64,
    time: u64,
    previous: &Delivered,
    delivered: &Delivered,
) -> ExportMetricsServiceRequest {
    let pick = |which: &str| match which {
        "previous" => previous,
        "delivered" => delivered,
        other => panic!("unknown placeholder {other:?}"),
    };
    let mut metrics = vec![
        gauge("alloy_build_info", vec![point(vec![text("version", "fixture")], time, 1.0)]),
        counter("remotecfg_load_attempts_total", vec![point(vec![], time, 12.0)]),
        gauge("remotecfg_last_load_not_modified", vec![point(vec![], time, 0.0)]),
    ];
    if let Some(hashes) = scrape["remotecfg_hash"].as_array() {
        let points = hashes.iter().map(|which| {
            point(vec![text("hash", &pick(which.as_str().expect("placeholder")).hash)], time, 1.0)
        });
        metrics.push(gauge("remotecfg_hash", points.collect()));
    }
    if let Some(fetch_time) = scrape["fetch_time"].as_f64() {
        metrics.push(gauge(
            "remotecfg_last_load_success_timestamp_seconds",
            vec![point(vec![], time, (start / SECOND) as f64 + fetch_time)],
        ));
    }
    if let Some(successful) = scrape["last_load_successful"].as_f64() {
        metrics.push(gauge("remotecfg_last_load_successful", vec![point(vec![], time, successful)]));
    }
    let mut running_points = vec![running("/", "", "healthy", time, 4)];
    if let Some(module) = scrape["remotecfg_module"].as_object() {
        for (health, count) in module {
            running_points.push(running("/", "remotecfg", health, time, count.as_u64().expect("count")));
        }
    }
    if let Some(pipeline) = scrape["pipeline"].as_object() {
        let total = pick(pipeline["count"].as_str().expect("count placeholder")).components.len() as u64;
        let unhealthy = pipeline.get("unhealthy").and_then(Value::as_u64).unwrap_or(0);
        let path = ("/remotecfg", "linkmesh_pipeline.default");
        running_points.push(running(path.0, path.1, "healthy", time, total - unhealthy));
        if unhealthy > 0 {
            running_points.push(running(path.0, path.1, "unhealthy", time, unhealthy));
        }
    }
    metrics.push(gauge("alloy_component_controller_running_components", running_points));
    if let Some(which) = scrape["edges"].as_str() {
        let components = &pick(which).components;
        let edges = components.windows(2).map(|pair| {
            point(
                vec![
                    text("controller_path", "/remotecfg"),
                    text("controller_id", "linkmesh_pipeline.default"),
                    text("from", &pair[0]),
                    text("to", &pair[1]),
                ],
                time,
                1.0,
            )
        });
        metrics.push(gauge("alloy_component_graph_connection", edges.collect()));
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "integrations/self"),
                    text("service.instance.id", "127.0.0.1:12345"),
                ],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "github.com/grafana/alloy/otelcol.receiver.prometheus".to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

async fn push(server: &Server, token: &str, request: &ExportMetricsServiceRequest) {
    let response = reqwest::Client::new()
        .post(server.url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(token)
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("push");
    assert_eq!(response.status(), 200, "push refused: {:?}", response.text().await);
}

/// RegisterCollector and GetConfig as Alloy sends them, with its release in `collector.version`.
fn attributes(alloy_version: &str) -> std::collections::HashMap<String, String> {
    [
        ("collector.version".to_owned(), alloy_version.to_owned()),
        ("collector.os".to_owned(), "linux".to_owned()),
    ]
    .into()
}

async fn register(server: &Server, token: &str, alloy_version: &str) {
    let request = pb::RegisterCollectorRequest {
        id: HOST.to_owned(),
        name: HOST.to_owned(),
        local_attributes: attributes(alloy_version),
        ..Default::default()
    };
    let response = connect_post(server, "RegisterCollector", Some(token), &request).await;
    assert_eq!(response.status(), 200);
}

async fn poll(
    server: &Server,
    token: &str,
    alloy_version: &str,
    hash: &str,
    status: Option<pb::RemoteConfigStatus>,
) -> pb::GetConfigResponse {
    let request = pb::GetConfigRequest {
        id: HOST.to_owned(),
        local_attributes: attributes(alloy_version),
        hash: hash.to_owned(),
        remote_config_status: status,
        ..Default::default()
    };
    get_config(server, token, &request).await
}

fn reported_status(reported: &Value) -> Option<pb::RemoteConfigStatus> {
    let state = match reported["state"].as_str()? {
        "applied" => pb::RemoteConfigStatuses::Applied,
        "failed" => pb::RemoteConfigStatuses::Failed,
        other => panic!("unknown reported state {other:?}"),
    };
    Some(pb::RemoteConfigStatus {
        status: state as i32,
        error_message: reported["error"].as_str().unwrap_or_default().to_owned(),
    })
}

fn now_nanos() -> u64 {
    linkmesh::model::UnixMillis::now().0 * 1_000_000
}

/// A collector with one OTLP source and one route (condition `condition`) to an OTLP/HTTP destination.
async fn collector_with_route(api: &Api, name: &str) -> (String, String, Value) {
    let collector_id = api.create_collector(name).await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let destination = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "vendor", "type": "otlp_http", "settings": {"endpoint": "https://otlp.apply.example"}}),
        )
        .await;
    let route = api
        .create(
            &format!("{base}/routes"),
            json!({"name": "errors", "condition": "attributes[\"level\"] == \"error\"",
                   "destination_ids": [destination["id"]]}),
        )
        .await;
    (collector_id, token, json!({"destination": destination, "route": route}))
}

async fn change_config(api: &Api, collector_id: &str, change: &str, parts: &Value) {
    let base = format!("/api/v1/collectors/{collector_id}");
    match change {
        "edit_condition" => {
            let route_id = parts["route"]["id"].as_str().expect("route id");
            let (status, body) = api
                .request(
                    reqwest::Method::PUT,
                    &format!("{base}/routes/{route_id}"),
                    Some(json!({"name": "errors", "condition": "attributes[\"level\"] == \"fatal\"",
                                "destination_ids": [parts["destination"]["id"]]})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        "add_route" => {
            api.create(
                &format!("{base}/routes"),
                json!({"name": "checkout", "condition": "resource.attributes[\"service.name\"] == \"checkout\"",
                       "destination_ids": [parts["destination"]["id"]]}),
            )
            .await;
        }
        other => panic!("unknown change {other:?}"),
    }
}

async fn run_fixture(server: &Server, api: &Api, name: &str) {
    let fixture = fixture(name);
    let alloy_version = fixture["alloy_version"].as_str().expect("alloy_version");
    let (collector_id, token, parts) =
        collector_with_route(api, &format!("apply-{}", name.trim_end_matches(".json"))).await;
    register(server, &token, alloy_version).await;
    let first = poll(server, &token, alloy_version, "", None).await;
    let previous = Delivered::of(&first.content);

    // Alloy's metrics flow for a while before the next change: three scrapes of the "before" state.
    let start = now_nanos() - 600 * SECOND;
    let before = &fixture["before"][0];
    for index in 0..3u64 {
        push(
            server,
            &token,
            &scrape_request(before, start, start + index * 30 * SECOND, &previous, &previous),
        )
        .await;
    }

    change_config(api, &collector_id, fixture["change"].as_str().expect("change"), &parts).await;
    let second = poll(server, &token, alloy_version, &first.hash, None).await;
    assert!(!second.not_modified && second.hash != first.hash, "{name}: the change was not delivered");
    let delivered = Delivered::of(&second.content);
    let version = api.get(&format!("/api/v1/collectors/{collector_id}/config")).await["version"].clone();
    if let Some(status) = reported_status(&fixture["reported"]) {
        poll(server, &token, alloy_version, &second.hash, Some(status)).await;
    }
    for (index, scrape) in fixture["after"].as_array().expect("after").iter().enumerate() {
        let time = start + (4 + index as u64) * 30 * SECOND;
        push(server, &token, &scrape_request(scrape, start, time, &previous, &delivered)).await;
    }

    let expect = &fixture["expect"];
    let path = format!("/api/v1/collectors/{collector_id}");
    let settled = wait_until(WAIT_DEADLINE, || async {
        let apply = api.get(&path).await["config"]["apply"].clone();
        apply["state"] == expect["state"] && apply["source"] == expect["source"]
    })
    .await;
    let current = api.get(&path).await;
    let apply = &current["config"]["apply"];
    assert!(settled, "{name}: expected {expect}, got {apply:#}");
    assert_eq!(apply["version"], version, "{name}: {apply:#}");
    assert_eq!(apply["alloy_version"], json!(alloy_version), "{name}");
    for signal in expect["signals"].as_array().expect("signals") {
        assert!(
            apply["signals"].as_array().expect("signals").contains(signal),
            "{name}: {signal} missing from {apply:#}"
        );
    }
    if apply["source"] == "inferred" {
        assert!(apply["error"].is_null(), "{name}: an inferred state has no error text");
        assert!(
            apply["limits"]
                .as_array()
                .expect("limits")
                .iter()
                .any(|limit| limit.as_str().unwrap_or("").contains("1.12")),
            "{name}: the limits say what this release cannot report: {apply:#}"
        );
    }
    if let Some(shown) = expect["disagreement"].as_bool() {
        assert_eq!(apply["disagreement"].is_string(), shown, "{name}: {apply:#}");
    }
    if let Some(status) = expect["status"].as_str() {
        let reached = api.wait_for_status(&collector_id, status).await;
        assert_eq!(reached["status"], status, "{name}");
    }
    let events_of = |kind: &'static str| {
        let events_path = format!("{path}/events?limit=1000");
        let version = version.clone();
        async move {
            let events = api.get(&events_path).await;
            events["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter(|event| event["type"] == kind && event["data"]["version"] == version)
                .cloned()
                .collect::<Vec<_>>()
        }
    };
    match expect["event"].as_str() {
        Some("config_applied") => check_event(name, &events_of, "config_applied", expect).await,
        Some("config_failed") => check_event(name, &events_of, "config_failed", expect).await,
        Some(other) => panic!("{name}: unexpected event kind {other:?}"),
        None => {
            // The inference wrote its "unknown" (no event) before the API showed it; no event follows.
            assert!(events_of("config_applied").await.is_empty(), "{name}");
            assert!(events_of("config_failed").await.is_empty(), "{name}");
        }
    }
}

async fn check_event<F, Fut>(name: &str, events_of: &F, kind: &'static str, expect: &Value)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = Vec<Value>>,
{
    let written = wait_until(WAIT_DEADLINE, || async { !events_of(kind).await.is_empty() }).await;
    assert!(written, "{name}: no {kind} event for the second version");
    let found = events_of(kind).await;
    assert_eq!(found.len(), 1, "{name}: one {kind} for the second version: {found:#?}");
    let inferred = expect["source"] == "inferred";
    assert_eq!(found[0]["data"]["inferred"].as_bool().unwrap_or(false), inferred, "{name}: {:#}", found[0]);
}

#[tokio::test]
async fn every_fixture_gives_the_apply_status_its_source_lines_say() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let mut names: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alloy_apply"))
            .expect("fixtures")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".json"))
            .collect();
    names.sort();
    assert!(names.len() >= 9, "fixtures: {names:?}");
    for name in names {
        run_fixture(&server, &api, &name).await;
    }
}

#[tokio::test]
async fn a_collector_that_never_pushes_own_metrics_gets_no_inferred_status() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let (collector_id, token, parts) = collector_with_route(&api, "silent").await;
    register(&server, &token, "v1.10.2").await;
    let first = poll(&server, &token, "v1.10.2", "", None).await;
    change_config(&api, &collector_id, "add_route", &parts).await;
    let second = poll(&server, &token, "v1.10.2", &first.hash, None).await;
    assert!(!second.not_modified);
    let collector = api.collector(&collector_id).await;
    let apply = &collector["config"]["apply"];
    assert_eq!(
        (apply["state"].as_str(), apply["source"].as_str()),
        (Some("unknown"), Some("none")),
        "{apply:#}"
    );
    assert!(apply["reason"].as_str().unwrap_or("").contains("own metrics"), "{apply:#}");
    assert_eq!(apply["alloy_release_row"], "1.8.0–1.11.3");
    assert_eq!(collector["status"], "connected");
    let types = api.event_types(&collector_id).await;
    assert!(!types.iter().any(|kind| kind == "config_applied" || kind == "config_failed"), "{types:?}");
}
