//! `GET /metrics` on the real binary: who may scrape, what a poll and a push change, and the whole
//! output read by an independent parser (the Python `prometheus_client` package's text parser, installed
//! by `.ci/run` from `tests/python/requirements.txt`; without it these tests fail, they never skip).

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

/// Reads the exposition with `prometheus_client.parser.text_string_to_metric_families` and returns
/// every sample as `{"name", "labels", "value"}` with its family's `type`; panics when the parser
/// rejects the text.
fn parse_with_python(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        value = sample.value
        samples.append({"family": family.name, "type": family.type, "name": sample.name,
                        "labels": sample.labels, "value": value if math.isfinite(value) else str(value)})
json.dump(samples, sys.stdout)
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (the metrics test needs it, with prometheus-client installed)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write exposition");
    let output = child.wait_with_output().expect("python3 output");
    assert!(
        output.status.success(),
        "prometheus_client rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser summary")
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Value> = samples
        .iter()
        .filter(|sample| sample["name"] == name)
        .filter(|sample| labels.iter().all(|(key, want)| sample["labels"][*key] == *want))
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    matching[0]["value"].as_f64().expect("finite value")
}

async fn scrape(server: &Server, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("scrape")
}

async fn scrape_text(server: &Server, token: &str) -> String {
    let response = scrape(server, Some(token)).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE].to_str().expect("content type").to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.expect("body")
}

async fn assert_unauthenticated(response: reqwest::Response, what: &str) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("REST error envelope");
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{what}: {body}");
}

#[tokio::test]
async fn strangers_and_sessions_are_refused_and_every_role_may_scrape() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let login = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let signed_in = login
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(signed_in.status(), 200);
    let session_cookie = signed_in
        .cookies()
        .find(|cookie| cookie.name() == "linkmesh_session")
        .map(|cookie| format!("linkmesh_session={}", cookie.value()))
        .expect("session cookie");
    // The session is good for the API, so a refusal below is about /metrics, not the cookie.
    let me = client.get(server.url("/api/v1/auth/me")).header(COOKIE, &session_cookie).send().await;
    assert_eq!(me.expect("me").status(), 200);

    let refused: [(&str, Option<(reqwest::header::HeaderName, String)>); 5] = [
        ("no credentials", None),
        ("garbage bearer", Some((AUTHORIZATION, "Bearer lmsat_garbage".into()))),
        ("non-bearer scheme", Some((AUTHORIZATION, "Basic YWRtaW46YWRtaW4=".into()))),
        ("collector-style token", Some((AUTHORIZATION, "Bearer lmct_garbage".into()))),
        ("a valid browser session", Some((COOKIE, session_cookie.clone()))),
    ];
    for method in [Method::GET, Method::POST, Method::DELETE] {
        for (what, header) in &refused {
            let mut request = client.request(method.clone(), server.url("/metrics"));
            if let Some((name, value)) = header {
                request = request.header(name, value);
            }
            assert_unauthenticated(request.send().await.expect("request"), &format!("{method} {what}")).await;
        }
    }

    for role in ["viewer", "pipeline_engineer", "operator", "admin"] {
        let api = Api::with_role(&server, role).await;
        let text = scrape_text(&server, &api.token).await;
        assert!(text.contains("# TYPE linkmesh_raft_term gauge\n"), "{role}: {text}");
        let other = client.post(server.url("/metrics")).bearer_auth(&api.token).send().await.expect("post");
        assert_eq!(other.status(), 405, "{role}");
        assert_eq!(other.headers()["allow"], "GET");
    }
}

#[tokio::test]
async fn anonymous_scrapes_need_an_allowed_client_address() {
    let open = Server::start_with_config(&format!(
        "{FAST_CONFIG}\n[metrics]\nallow_anonymous_from = [\"127.0.0.1/32\"]\n"
    ));
    let response = scrape(&open, None).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("body").contains("linkmesh_raft_is_leader{"));
    // A presented token is checked even from an allowed address.
    assert_unauthenticated(scrape(&open, Some("lmsat_revoked_or_wrong")).await, "bad token from 127.0.0.1")
        .await;

    // Without a trusted proxy, a forwarded-for claim is not read: the client stays 127.0.0.1.
    let untrusting = Server::start_with_config(&format!(
        "{FAST_CONFIG}\n[metrics]\nallow_anonymous_from = [\"10.0.0.0/8\"]\n"
    ));
    let spoofed =
        reqwest::Client::new().get(untrusting.url("/metrics")).header("x-forwarded-for", "10.1.2.3").send();
    assert_unauthenticated(spoofed.await.expect("scrape"), "spoofed forwarded-for").await;

    // Behind a trusted proxy, the client is the forwarded address, not the proxy.
    let proxied = Server::start_with_config(&format!(
        "{FAST_CONFIG}\n[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n[metrics]\nallow_anonymous_from = [\"10.0.0.0/8\"]\n"
    ));
    let client = reqwest::Client::new();
    let forwarded_for =
        |chain: &'static str| client.get(proxied.url("/metrics")).header("x-forwarded-for", chain).send();
    assert_eq!(forwarded_for("10.1.2.3").await.expect("scrape").status(), 200);
    assert_eq!(forwarded_for("192.0.2.7, 10.1.2.3").await.expect("scrape").status(), 200);
    assert_unauthenticated(forwarded_for("10.1.2.3, 192.0.2.7").await.expect("scrape"), "outside client")
        .await;
    assert_unauthenticated(scrape(&proxied, None).await, "the proxy itself").await;
}

#[tokio::test]
async fn polls_and_pushes_are_counted_and_the_exposition_parses() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("scraped").await;
    let token = api.mint_token(&collector_id).await;
    register(&server, &token, "host-a").await;
    let before = parse_with_python(&scrape_text(&server, &api.token).await);

    let first = get_config(&server, &token, &poll_request("host-a", "")).await;
    get_config(&server, &token, &poll_request("host-a", &first.hash)).await;
    api.collector(&collector_id).await;
    let push = |token: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(server.url("/v1/metrics"))
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Vec::new()); // an empty ExportMetricsServiceRequest
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(push(Some(&token)).await.expect("push").status(), 200);
    assert_eq!(push(None).await.expect("push").status(), 401);

    let text = scrape_text(&server, &api.token).await;
    let after = parse_with_python(&text);

    // Every sample carries the node label, and no label carries an id from a path.
    assert!(after.len() > 50, "{text}");
    for sample in &after {
        assert!(sample["labels"]["node"].as_str().is_some_and(|node| !node.is_empty()), "{sample}");
        assert!(!sample.to_string().contains(&collector_id), "an id became a label: {sample}");
    }
    let types: BTreeMap<&str, &str> = after
        .iter()
        .map(|sample| (sample["family"].as_str().expect("family"), sample["type"].as_str().expect("type")))
        .collect();
    for (family, kind) in [
        ("linkmesh_raft_term", "gauge"),
        ("linkmesh_raft_leader_changes", "counter"),
        ("linkmesh_raft_commit_index", "gauge"),
        ("linkmesh_raft_applied_index", "gauge"),
        ("linkmesh_raft_last_log_index", "gauge"),
        ("linkmesh_raft_is_leader", "gauge"),
        ("linkmesh_raft_log_flush_duration_seconds", "histogram"),
        ("linkmesh_polls", "counter"),
        ("linkmesh_forward_errors", "counter"),
        ("linkmesh_resident_actors", "gauge"),
        ("linkmesh_opamp_connections", "gauge"),
        ("linkmesh_own_metrics_pushes", "counter"),
        ("linkmesh_http_requests", "counter"),
        ("linkmesh_http_request_duration_seconds", "histogram"),
        ("linkmesh_storage_failed", "gauge"),
    ] {
        assert_eq!(types.get(family).copied(), Some(kind), "{family}: {types:?}");
    }

    let polls = |samples: &[Value], path| value(samples, "linkmesh_polls_total", &[("path", path)]);
    assert_eq!(polls(&after, "local") - polls(&before, "local"), 2.0);
    assert_eq!(polls(&after, "forwarded"), 0.0);
    let pushes = |outcome| value(&after, "linkmesh_own_metrics_pushes_total", &[("outcome", outcome)]);
    assert_eq!((pushes("accepted"), pushes("refused")), (1.0, 1.0));
    for kind in ["unreachable", "timeout", "wrong_owner", "refused"] {
        assert_eq!(value(&after, "linkmesh_forward_errors_total", &[("kind", kind)]), 0.0, "{kind}");
    }

    // The HTTP series name the route pattern: polls by their RPC, the API by its template.
    let get_config_route = [("route", "/collector.v1.CollectorService/GetConfig"), ("method", "POST")];
    let timed_polls = |samples: &[Value]| {
        value(
            samples,
            "linkmesh_http_request_duration_seconds_count",
            &[get_config_route[0], get_config_route[1], ("class", "2xx")],
        )
    };
    assert_eq!(timed_polls(&after), 2.0);
    let counted = |code| {
        value(
            &after,
            "linkmesh_http_requests_total",
            &[get_config_route[0], get_config_route[1], ("code", code)],
        )
    };
    assert_eq!(counted("200"), 2.0);
    let collector_route = [("route", "/api/v1/collectors/{id}"), ("method", "GET"), ("code", "200")];
    assert!(value(&after, "linkmesh_http_requests_total", &collector_route) >= 1.0);
    let push_route = [("route", "/v1/metrics"), ("method", "POST")];
    assert_eq!(
        value(&after, "linkmesh_http_requests_total", &[push_route[0], push_route[1], ("code", "401")]),
        1.0
    );
    let inf_bucket = value(
        &after,
        "linkmesh_http_request_duration_seconds_bucket",
        &[get_config_route[0], get_config_route[1], ("class", "2xx"), ("le", "+Inf")],
    );
    assert_eq!(inf_bucket, 2.0);

    // Raft, on a single node that committed the collector's creation and token.
    assert_eq!(value(&after, "linkmesh_raft_is_leader", &[]), 1.0);
    assert!(value(&after, "linkmesh_raft_term", &[]) >= 1.0);
    assert!(value(&after, "linkmesh_raft_leader_changes_total", &[]) >= 1.0);
    let committed = value(&after, "linkmesh_raft_commit_index", &[]);
    let applied = value(&after, "linkmesh_raft_applied_index", &[]);
    let last_log = value(&after, "linkmesh_raft_last_log_index", &[]);
    assert!(committed >= 3.0 && applied >= 3.0 && last_log >= committed, "{committed} {applied} {last_log}");
    assert!(value(&after, "linkmesh_raft_log_flush_duration_seconds_count", &[]) >= 3.0);
    assert!(value(&after, "linkmesh_resident_actors", &[]) >= 1.0);
    assert_eq!(value(&after, "linkmesh_storage_failed", &[]), 0.0);
}

#[tokio::test]
async fn readyz_reports_the_commit_and_applied_index() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    api.create_collector("ready").await;
    let response = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["caught_up"], true, "{body}");
    let committed = body["committed_index"].as_u64().expect("committed_index");
    assert!(committed >= 2, "{body}");
    assert!(body["applied_index"].as_u64().expect("applied_index") >= committed, "{body}");
    assert!(body.get("reasons").is_none(), "{body}");
}
