//! own_metrics over OTLP/HTTP (`POST /v1/metrics`) against the real binary: both producers' payloads
//! (fixtures under `tests/fixtures/otlp/`), rates on the topology API, resets, out-of-order pushes, token
//! rotation, the `degraded` status, and every kind of bad push answered with `google.rpc.Status` while
//! changing nothing.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use linkmesh::config::CollectorSettings;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use prost::Message;
use reqwest::Method;
use serde_json::{json, Value};
use support::{get_config, poll_request, wait_until, Api, Server, FAST_CONFIG, WAIT_DEADLINE};

const SECOND: u64 = 1_000_000_000;
const T0: u64 = 1_793_527_200 * SECOND;
const PROTOBUF: &str = "application/x-protobuf";

/// `google.rpc.Status`, as an OTLP client decodes an error body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp").join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn post(
    server: &Server,
    token: Option<&str>,
    content_type: &str,
    gzipped: bool,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/v1/metrics"))
        .header("content-type", content_type)
        .body(body);
    if gzipped {
        request = request.header("content-encoding", "gzip");
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("push")
}

/// Pushes and expects 200 with no rejected points; returns the decoded response.
async fn push_protobuf(server: &Server, token: &str, request: &ExportMetricsServiceRequest) {
    let response = post(server, Some(token), PROTOBUF, true, gzip(&request.encode_to_vec())).await;
    assert_eq!(response.status(), 200, "push failed: {:?}", response.text().await);
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    let decoded =
        ExportMetricsServiceResponse::decode(response.bytes().await.expect("body")).expect("response");
    assert_eq!(decoded.partial_success, None);
}

async fn push_json(server: &Server, token: &str, body: Vec<u8>) {
    let response = post(server, Some(token), "application/json", false, body).await;
    assert_eq!(response.status(), 200, "push failed: {:?}", response.text().await);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.json::<Value>().await.expect("json"), json!({}));
}

/// An error response: its HTTP status and the `google.rpc.Status` it carries (protobuf unless JSON).
async fn rpc_error(response: reqwest::Response) -> (u16, i32, String) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").expect("content type").to_str().expect("ascii").to_owned();
    let body = response.bytes().await.expect("body");
    let rpc = if content_type == "application/json" {
        let value: Value = serde_json::from_slice(&body).expect("json status");
        RpcStatus {
            code: value["code"].as_i64().expect("code") as i32,
            message: value["message"].as_str().expect("message").to_owned(),
        }
    } else {
        assert_eq!(content_type, PROTOBUF);
        RpcStatus::decode(body).expect("protobuf status")
    };
    (status, rpc.code, rpc.message)
}

async fn create_collector(api: &Api, name: &str, mode: &str) -> String {
    let (status, body) =
        api.request(Method::POST, "/api/v1/collectors", Some(json!({ "name": name, "mode": mode }))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn topology(api: &Api, collector_id: &str) -> Value {
    api.get(&format!("/api/v1/collectors/{collector_id}/topology")).await
}

fn node<'a>(topology: &'a Value, id: &str) -> &'a Value {
    topology["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|node| node["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {topology:#}"))
}

/// Compares JSON, numbers within a relative 1e-9 (rates are divisions).
fn assert_json_matches(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Number(a), Value::Number(e)) => {
            let (a, e) = (a.as_f64().expect("f64"), e.as_f64().expect("f64"));
            assert!((a - e).abs() <= 1e-9 * e.abs().max(1.0), "{path}: {a} != {e}");
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{path}: length of {actual:#}");
            for (index, (a, e)) in a.iter().zip(e).enumerate() {
                assert_json_matches(a, e, &format!("{path}[{index}]"));
            }
        }
        (Value::Object(a), Value::Object(e)) => {
            let keys = |map: &serde_json::Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(e), "{path}: keys");
            for (key, e) in e {
                assert_json_matches(&a[key], e, &format!("{path}.{key}"));
            }
        }
        _ => assert_eq!(actual, expected, "{path}"),
    }
}

/// Compares the topology with the snapshot `tests/fixtures/otlp/<name>` (everything but `updated_at`).
/// The snapshot is the code's own earlier output (`LINKMESH_BLESS=1` rewrites it, for review in the
/// diff): it catches any change, not a wrong value. The values worked out by hand from `generate.py`
/// are asserted on their own next to each call.
fn assert_topology_snapshot(actual: &Value, name: &str) {
    let mut actual = actual.clone();
    assert!(actual["updated_at"].is_string(), "updated_at: {actual}");
    actual.as_object_mut().expect("object").remove("updated_at");
    let path = fixture_path(name);
    if std::env::var_os("LINKMESH_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&actual).expect("json") + "\n").expect("bless");
        return;
    }
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("topology snapshot")).expect("json");
    assert_json_matches(&actual, &snapshot, "topology");
}

/// A rate worked out by hand, within a relative 1e-9 (rates are divisions).
fn assert_close(actual: &Value, expected: f64, what: &str) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!((actual - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{what}: {actual} != {expected}");
}

/// A node's `[in_rate, out_rate, error_rate]`, worked out by hand.
fn assert_rates(topology: &Value, id: &str, [in_rate, out_rate, error_rate]: [f64; 3]) {
    let node = node(topology, id);
    assert_close(&node["in_rate"], in_rate, &format!("{id} in_rate"));
    assert_close(&node["out_rate"], out_rate, &format!("{id} out_rate"));
    assert_close(&node["error_rate"], error_rate, &format!("{id} error_rate"));
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..KeyValue::default()
    }
}

fn counter(name: &str, attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> Metric {
    Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes,
                start_time_unix_nano: start,
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..NumberDataPoint::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

fn export(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

/// One Alloy exporter in the remotecfg module: `sent` items sent and `failed` failures so far.
fn exporter_push(time: u64, start: u64, sent: f64, failed: f64) -> ExportMetricsServiceRequest {
    let component =
        || vec![text("component_id", "remotecfg/linkmesh_pipeline.default/otelcol.exporter.otlphttp.dst_x")];
    export(vec![
        counter("otelcol_exporter_sent_spans_total", component(), start, time, sent),
        counter("otelcol_exporter_send_failed_spans_total", component(), start, time, failed),
    ])
}

async fn setup(server: &Server, mode: &str) -> (Api, String, String) {
    let api = Api::admin(server).await;
    let collector_id = create_collector(&api, "edge-1", mode).await;
    let token = api.mint_token(&collector_id).await;
    (api, collector_id, token)
}

#[tokio::test]
async fn alloy_self_metrics_give_rates_for_every_component_and_the_own_metrics_chain() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let before = topology(&api, &collector_id).await;
    assert_eq!(before["nodes"], json!([]), "an empty model renders nothing: {before}");
    assert_eq!(before["updated_at"], Value::Null);

    push_json(&server, &token, fixture("alloy_self_metrics_t0.json")).await;
    let first = topology(&api, &collector_id).await;
    let tempo = node(&first, "local:otelcol.exporter.otlphttp.dst_tempo");
    assert_eq!(
        (&tempo["in_rate"], &tempo["queue_size"]),
        (&Value::Null, &json!(12.0)),
        "one push gives no rate yet"
    );

    push_json(&server, &token, fixture("alloy_self_metrics_t1.json")).await;
    let second = topology(&api, &collector_id).await;
    // Hand-checked against generate.py: 100 spans/s + 50 log records/s accepted, 1 span/s refused.
    let receiver = node(&second, "local:otelcol.receiver.otlp.src_apps");
    assert_eq!(
        (&receiver["in_rate"], &receiver["out_rate"], &receiver["error_rate"]),
        (&json!(151.0), &json!(150.0), &json!(1.0))
    );
    assert_eq!(node(&second, "local:prometheus.exporter.self.default")["kind"], "local");
    // Tempo: 99 spans/s sent, 1/s failing; Mimir: 500 samples/s in, 499/s written, 1/s failing; Loki: 20/s.
    assert_rates(&second, "local:otelcol.exporter.otlphttp.dst_tempo", [100.0, 99.0, 1.0]);
    assert_rates(&second, "local:prometheus.remote_write.dst_mimir", [500.0, 499.0, 1.0]);
    assert_rates(&second, "local:loki.write.dst_loki", [20.0, 20.0, 0.0]);
    // Received at the edge: src_apps 151, the file source 20, both scrapes 500 + 30 (not the Prometheus
    // receiver behind the self scrape); sent: 99 + 20 + 499 + the own_metrics exporter's 30.
    assert_close(&second["collector"]["received_rate"], 701.0, "received_rate");
    assert_close(&second["collector"]["sent_rate"], 648.0, "sent_rate");
    assert_close(&second["collector"]["error_rate"], 3.0, "error_rate");
    // 1.5 CPU seconds in 30 s; started an hour before t0, pushed 30 s after it.
    assert_close(&second["process"]["cpu_cores"], 0.05, "cpu_cores");
    assert_close(&second["process"]["uptime_seconds"], 3630.0, "uptime_seconds");
    assert_topology_snapshot(&second, "alloy_self_metrics.topology.snapshot.json");

    let types = api.wait_for_event(&collector_id, "own_metrics_first_seen", 1).await;
    assert_eq!(types.iter().filter(|t| *t == "own_metrics_first_seen").count(), 1);
    let collector = api.collector(&collector_id).await;
    assert!(collector["own_metrics_last_seen_at"].is_string(), "{collector}");
    assert_eq!(collector["status"], "awaiting_connection", "a push is not a poll");
}

#[tokio::test]
async fn otel_collector_internal_metrics_over_gzipped_protobuf() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "opamp").await;
    for name in ["otelcol_internal_metrics_t0.json", "otelcol_internal_metrics_t1.json"] {
        let request: ExportMetricsServiceRequest =
            serde_json::from_slice(&fixture(name)).expect("fixture parses");
        push_protobuf(&server, &token, &request).await;
    }
    let topology = topology(&api, &collector_id).await;
    let tempo = node(&topology, "local:exporter:otlphttp/dst_tempo");
    assert_eq!(
        (&tempo["out_rate"], &tempo["queue_size"], &tempo["queue_capacity"]),
        (&json!(100.0), &json!(3.0), &json!(1000.0))
    );
    assert_eq!(topology["collector"]["received_rate"], json!(121.0));
    // otlp/src_apps: 100 spans/s accepted, 1/s refused; Loki's exporter sends the file source's 20/s.
    assert_rates(&topology, "local:receiver:otlp/src_apps", [101.0, 100.0, 1.0]);
    assert_rates(&topology, "local:exporter:otlphttp/dst_loki", [20.0, 20.0, 0.0]);
    assert_close(&topology["collector"]["sent_rate"], 120.0, "sent_rate");
    assert_close(&topology["collector"]["error_rate"], 1.0, "error_rate");
    // 3 CPU seconds in 60 s; up two hours at t0, pushed 60 s after it.
    assert_close(&topology["process"]["cpu_cores"], 0.05, "cpu_cores");
    assert_close(&topology["process"]["uptime_seconds"], 7260.0, "uptime_seconds");
    assert_topology_snapshot(&topology, "otelcol_internal_metrics.topology.snapshot.json");
}

#[tokio::test]
async fn rates_land_on_the_rendered_graph_of_the_collector() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let (status, _) = api
        .request(
            Method::POST,
            &format!("{base}/sources"),
            Some(json!({"name": "apps", "type": "otlp", "settings": {}})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, destination) = api
        .request(
            Method::POST,
            &format!("{base}/destinations"),
            Some(json!({"name": "console", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .request(
            Method::POST,
            &format!("{base}/routes"),
            Some(json!({"name": "all", "destination_ids": [destination["id"]]})),
        )
        .await;
    assert_eq!(status, 201);

    // The rendered graph names the components; push metrics for exactly those, as Alloy would.
    let rendered = topology(&api, &collector_id).await;
    let components: Vec<(String, String)> = rendered["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .flat_map(|node| {
            let node_id = node["id"].as_str().expect("id").to_owned();
            node["components"]
                .as_array()
                .expect("components")
                .iter()
                .map(move |c| (node_id.clone(), c.as_str().expect("id").to_owned()))
        })
        .collect();
    assert!(components.iter().any(|(node, _)| node.starts_with("source:")), "{rendered:#}");
    assert!(components.iter().any(|(node, _)| node.starts_with("destination:")), "{rendered:#}");
    let push = |time: u64, n: f64| {
        let mut metrics = Vec::new();
        for (_, id) in &components {
            let attributes =
                || vec![text("component_id", &format!("remotecfg/linkmesh_pipeline.default/{id}"))];
            if id.starts_with("otelcol.receiver.") {
                metrics.push(counter(
                    "otelcol_receiver_accepted_log_records_total",
                    attributes(),
                    0,
                    time,
                    40.0 * n,
                ));
            } else if id.starts_with("otelcol.processor.") {
                metrics.push(counter(
                    "otelcol_processor_incoming_items_total",
                    attributes(),
                    0,
                    time,
                    40.0 * n,
                ));
                metrics.push(counter(
                    "otelcol_processor_outgoing_items_total",
                    attributes(),
                    0,
                    time,
                    40.0 * n,
                ));
            } else if id.starts_with("otelcol.exporter.") {
                metrics.push(counter(
                    "otelcol_exporter_sent_log_records_total",
                    attributes(),
                    0,
                    time,
                    40.0 * n,
                ));
            }
        }
        metrics.push(counter(
            "otelcol_exporter_sent_metric_points_total",
            vec![text("component_id", "otelcol.exporter.otlphttp.linkmesh")],
            0,
            time,
            5.0 * n,
        ));
        export(metrics)
    };
    push_protobuf(&server, &token, &push(T0, 1.0)).await;
    push_protobuf(&server, &token, &push(T0 + 10 * SECOND, 11.0)).await;

    let annotated = topology(&api, &collector_id).await;
    for node in annotated["nodes"].as_array().expect("nodes") {
        let kind = node["kind"].as_str().expect("kind");
        if kind == "source" {
            assert_eq!(node["out_rate"], json!(40.0), "{node}");
        }
        if kind == "destination" {
            assert_eq!(node["in_rate"], json!(40.0), "{node}");
        }
    }
    assert_eq!(node(&annotated, "local:otelcol.exporter.otlphttp.linkmesh")["out_rate"], json!(5.0));
    let source_edge = annotated["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|edge| edge["from"].as_str().is_some_and(|from| from.starts_with("source:")))
        .expect("an edge from the source");
    assert_eq!(source_edge["rate"], json!(40.0), "{annotated:#}");
    assert!(!source_edge["signals"].as_array().expect("signals").is_empty());
}

#[tokio::test]
async fn counter_resets_restarts_and_out_of_order_pushes() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let rate = |topology: &Value| node(topology, "local:otelcol.exporter.otlphttp.dst_x")["out_rate"].clone();
    let start = T0 - 100 * SECOND;
    push_protobuf(&server, &token, &exporter_push(T0, start, 1000.0, 0.0)).await;
    push_protobuf(&server, &token, &exporter_push(T0 + 10 * SECOND, start, 1100.0, 0.0)).await;
    assert_eq!(rate(&topology(&api, &collector_id).await), json!(10.0));

    // The counter dropped: the collector restarted, 50 items since then.
    push_protobuf(&server, &token, &exporter_push(T0 + 20 * SECOND, start, 50.0, 0.0)).await;
    assert_eq!(rate(&topology(&api, &collector_id).await), json!(5.0));

    // A new start time 5 s before the point: a restart even though the value grew.
    push_protobuf(&server, &token, &exporter_push(T0 + 30 * SECOND, T0 + 25 * SECOND, 400.0, 0.0)).await;
    assert_eq!(rate(&topology(&api, &collector_id).await), json!(80.0));

    // A late push from before the last one, and a duplicate of it: ignored.
    let settled = api.get(&format!("/api/v1/collectors/{collector_id}/topology?history=true")).await;
    push_protobuf(&server, &token, &exporter_push(T0 + 15 * SECOND, start, 99_999.0, 0.0)).await;
    push_protobuf(&server, &token, &exporter_push(T0 + 30 * SECOND, T0 + 25 * SECOND, 400.0, 0.0)).await;
    let after = api.get(&format!("/api/v1/collectors/{collector_id}/topology?history=true")).await;
    assert_eq!(after["nodes"], settled["nodes"]);
    let history =
        node(&after, "local:otelcol.exporter.otlphttp.dst_x")["history"].as_array().expect("history").clone();
    let rates: Vec<&Value> = history.iter().map(|sample| &sample["out_rate"]).collect();
    assert_eq!(rates, [&json!(10.0), &json!(5.0), &json!(80.0)]);
}

#[tokio::test]
async fn a_rotated_token_is_rejected_mid_stream_and_changes_nothing() {
    let server = Server::start();
    let (api, collector_id, old_token) = setup(&server, "alloy-remotecfg").await;
    push_protobuf(&server, &old_token, &exporter_push(T0, 0, 100.0, 0.0)).await;
    push_protobuf(&server, &old_token, &exporter_push(T0 + 10 * SECOND, 0, 200.0, 0.0)).await;
    let before = topology(&api, &collector_id).await;

    let new_token = api.mint_token(&collector_id).await;
    let body = gzip(&exporter_push(T0 + 20 * SECOND, 0, 900.0, 0.0).encode_to_vec());
    let response = post(&server, Some(&old_token), PROTOBUF, true, body).await;
    let (status, code, message) = rpc_error(response).await;
    assert_eq!((status, code), (401, 16));
    assert!(message.contains("rotated") && message.contains("Authorization"), "{message}");
    assert_eq!(topology(&api, &collector_id).await, before);

    push_protobuf(&server, &new_token, &exporter_push(T0 + 20 * SECOND, 0, 300.0, 0.0)).await;
    assert_eq!(
        node(&topology(&api, &collector_id).await, "local:otelcol.exporter.otlphttp.dst_x")["out_rate"],
        json!(10.0)
    );
}

#[tokio::test]
async fn bad_pushes_get_otlp_errors_and_change_nothing() {
    let server = Server::start_with_config(&format!("max_request_body = \"64KiB\"\n{FAST_CONFIG}"));
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let valid = exporter_push(T0, 0, 1.0, 0.0).encode_to_vec();
    let client = reqwest::Client::new();

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, i32)> = vec![
        (
            "no token",
            client.post(server.url("/v1/metrics")).header("content-type", PROTOBUF).body(valid.clone()),
            401,
            16,
        ),
        (
            "basic auth",
            client
                .post(server.url("/v1/metrics"))
                .basic_auth("collector", Some(&token))
                .header("content-type", PROTOBUF)
                .body(valid.clone()),
            401,
            16,
        ),
        (
            "a service-account token",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&api.token)
                .header("content-type", PROTOBUF)
                .body(valid.clone()),
            401,
            16,
        ),
        (
            "wrong content type",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body(valid.clone()),
            415,
            12,
        ),
        (
            "unknown content encoding",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", PROTOBUF)
                .header("content-encoding", "br")
                .body(valid.clone()),
            415,
            12,
        ),
        (
            "oversized body",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", PROTOBUF)
                .body(vec![0u8; 65 * 1024]),
            413,
            8,
        ),
        (
            "gzip bomb",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", PROTOBUF)
                .header("content-encoding", "gzip")
                .body(gzip(&vec![0u8; 8 * 1024 * 1024])),
            413,
            8,
        ),
        (
            "corrupt gzip",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", PROTOBUF)
                .header("content-encoding", "gzip")
                .body(b"not gzip".to_vec()),
            400,
            3,
        ),
        (
            "malformed protobuf",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", PROTOBUF)
                .body(vec![0x0a, 0xff, 0xff, 0x01]),
            400,
            3,
        ),
        (
            "malformed JSON",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{\"resourceMetrics\":"),
            400,
            3,
        ),
        (
            "JSON of the wrong shape",
            client
                .post(server.url("/v1/metrics"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{\"resourceMetrics\":5}"),
            400,
            3,
        ),
        ("GET", client.get(server.url("/v1/metrics")).bearer_auth(&token), 405, 12),
    ];
    for (name, request, expected_status, expected_code) in cases {
        let response = request.send().await.expect(name);
        let (status, code, message) = rpc_error(response).await;
        assert_eq!((status, code), (expected_status, expected_code), "{name}: {message}");
        assert!(!message.is_empty(), "{name}");
    }

    let json_error = client
        .post(server.url("/v1/metrics"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("[")
        .send()
        .await
        .expect("push");
    assert_eq!(
        json_error.headers()["content-type"],
        "application/json",
        "errors answer in the request's encoding"
    );

    let unchanged = topology(&api, &collector_id).await;
    assert_eq!((&unchanged["nodes"], &unchanged["updated_at"]), (&json!([]), &Value::Null));
    assert!(!api.event_types(&collector_id).await.contains(&"own_metrics_first_seen".to_owned()));
    assert_eq!(api.collector(&collector_id).await["own_metrics_last_seen_at"], Value::Null);
}

#[tokio::test]
async fn unusable_points_are_counted_in_partial_success() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let mut request = exporter_push(T0, 0, 100.0, 0.0);
    let metrics = &mut request.resource_metrics[0].scope_metrics[0].metrics;
    metrics.push(counter("otelcol_exporter_sent_spans", vec![text("transport", "grpc")], 0, T0, 1.0));
    metrics.push(counter("otelcol_receiver_accepted_spans", vec![text("receiver", "otlp")], 0, T0, f64::NAN));
    metrics.push(counter("some_unrelated_metric", vec![], 0, T0, 1.0));

    let response = post(&server, Some(&token), PROTOBUF, false, request.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let decoded =
        ExportMetricsServiceResponse::decode(response.bytes().await.expect("body")).expect("response");
    let partial = decoded.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 2);
    assert!(partial.error_message.contains("names no component"), "{}", partial.error_message);

    request.resource_metrics[0].scope_metrics[0]
        .metrics
        .retain(|metric| metric.name != "otelcol_receiver_accepted_spans");
    let json_body = serde_json::to_vec(&request).expect("json");
    let response = post(&server, Some(&token), "application/json", false, json_body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["partialSuccess"]["rejectedDataPoints"], "1",
        "OTLP/JSON writes int64 as a string: {body}"
    );
    // The usable points were applied.
    assert!(node(&topology(&api, &collector_id).await, "local:otelcol.exporter.otlphttp.dst_x")
        ["components"]
        .is_array());
}

#[tokio::test]
async fn export_failures_degrade_a_connected_collector_until_they_stop() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    get_config(&server, &token, &poll_request("host-1", "")).await;
    api.wait_for_status(&collector_id, "connected").await;

    push_protobuf(&server, &token, &exporter_push(T0, 0, 100.0, 5.0)).await;
    push_protobuf(&server, &token, &exporter_push(T0 + 10 * SECOND, 0, 150.0, 25.0)).await;
    api.wait_for_status(&collector_id, "degraded").await;
    let topology = topology(&api, &collector_id).await;
    assert_eq!(node(&topology, "local:otelcol.exporter.otlphttp.dst_x")["error_rate"], json!(2.0));
    // A poll does not clear it while failures increase.
    get_config(&server, &token, &poll_request("host-1", "")).await;
    assert_eq!(api.collector(&collector_id).await["status"], "degraded");

    push_protobuf(&server, &token, &exporter_push(T0 + 20 * SECOND, 0, 250.0, 25.0)).await;
    api.wait_for_status(&collector_id, "connected").await;
    // awaiting_connection -> connected -> degraded -> connected
    api.wait_for_event(&collector_id, "status_changed", 3).await;
    let events = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    let messages: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "status_changed")
        .map(|event| event["message"].as_str().expect("message"))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("send failures: otelcol.exporter.otlphttp.dst_x")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("stopped reporting send failures")), "{messages:?}");
}

#[tokio::test]
async fn first_seen_is_recorded_once_even_across_a_restart() {
    let mut server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    push_protobuf(&server, &token, &exporter_push(T0, 0, 1.0, 0.0)).await;
    push_protobuf(&server, &token, &exporter_push(T0 + SECOND, 0, 2.0, 0.0)).await;
    api.wait_for_event(&collector_id, "own_metrics_first_seen", 1).await;

    server.restart();
    let api = Api::admin(&server).await;
    push_protobuf(&server, &token, &exporter_push(T0 + 2 * SECOND, 0, 3.0, 0.0)).await;
    // The push after the restart was applied (a new actor, so no rate yet) ...
    let applied = wait_until(WAIT_DEADLINE, || async {
        api.collector(&collector_id).await["own_metrics_last_seen_at"].is_string()
    })
    .await;
    assert!(applied);
    // ... and the replicated record already had the event.
    let types = api.event_types(&collector_id).await;
    assert_eq!(types.iter().filter(|t| *t == "own_metrics_first_seen").count(), 1, "{types:?}");
}

/// Holds a push open: headers and part of a body, the rest never sent.
fn stalled_push(server: &Server, token: &str) -> TcpStream {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(&[0u8; 10]).expect("write");
    stream
}

#[tokio::test]
async fn too_many_pushes_in_flight_get_429_with_retry_after() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let mut stalled: Vec<TcpStream> = (0..CollectorSettings::default().max_pushes_in_flight_per_collector)
        .map(|_| stalled_push(&server, &token))
        .collect();

    let body = exporter_push(T0, 0, 1.0, 0.0).encode_to_vec();
    // A probe can overtake a stalled request whose headers the server has not read yet; that stalled
    // request is then the one refused, so open another until the probe finds every slot taken.
    let deadline = tokio::time::Instant::now() + WAIT_DEADLINE;
    let response = loop {
        let response = post(&server, Some(&token), PROTOBUF, false, body.clone()).await;
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled pushes never filled the collector's slots"
        );
        stalled.push(stalled_push(&server, &token));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(response.headers()["retry-after"], "5");
    let (_, code, _) = rpc_error(response).await;
    assert_eq!(code, 8);

    // Another collector is not affected.
    let other = create_collector(&api, "edge-2", "alloy-remotecfg").await;
    let other_token = api.mint_token(&other).await;
    push_protobuf(&server, &other_token, &exporter_push(T0, 0, 1.0, 0.0)).await;

    for mut stream in stalled {
        stream.shutdown(std::net::Shutdown::Both).ok();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    let recovered = wait_until(WAIT_DEADLINE, || async {
        post(&server, Some(&token), PROTOBUF, false, body.clone()).await.status() == 200
    })
    .await;
    assert!(recovered, "slots were not released when the stalled clients went away");
    assert!(
        node(&topology(&api, &collector_id).await, "local:otelcol.exporter.otlphttp.dst_x")["id"].is_string()
    );
}

#[tokio::test]
async fn the_topology_api_needs_credentials_and_a_known_collector() {
    let server = Server::start();
    let (api, collector_id, token) = setup(&server, "alloy-remotecfg").await;
    let path = format!("/api/v1/collectors/{collector_id}/topology");
    let anonymous = reqwest::Client::new().get(server.url(&path)).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    let with_collector_token =
        reqwest::Client::new().get(server.url(&path)).bearer_auth(&token).send().await.expect("get");
    assert_eq!(with_collector_token.status(), 401, "a collector token is not an operator credential");
    let (status, body) = api.request(Method::GET, "/api/v1/collectors/col_missing/topology", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, _) = api.request(Method::GET, &format!("{path}?history=maybe"), None).await;
    assert_eq!(status, 400);
}
