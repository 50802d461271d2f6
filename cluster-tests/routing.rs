//! Routing: a collector's polls, registers and own_metrics pushes taken on any node are handled by the
//! actor of its slot's owner, one forwarded hop away; the owner is the token's final authority; an
//! owner that cannot be reached is a 503 with `Retry-After`, not a hang.
//!
//! Each test waits until the leader's balancer has spread the slots evenly over the three nodes, then
//! creates collectors until one lands in a slot node 1 owns: calls for it taken on nodes 2 and 3 are
//! forwarded to node 1.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use serde_json::{json, Value};

use crate::harness::{Cluster, Node, CONVERGE_DEADLINE};
use crate::support::{self, Api};

/// Distinctive credential values: found in the delivered config only if the owner decrypted them.
const LOKI_PASSWORD: &str = "RoutedPassw0rdCore";
const LOKI_USERNAME: &str = "routedTenantUser7";

fn client_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("remotecfgclient", "LINKMESH_REMOTECFGCLIENT"))
}

/// One call with Alloy's own generated client (`tools/remotecfgclient`) through `node`; its JSON line.
fn alloy(node: &Node, token: &str, args: &[&str]) -> Value {
    let output = Command::new(client_binary())
        .args(["-url", &node.url(""), "-token", token])
        .args(args)
        .output()
        .expect("run remotecfgclient");
    assert!(output.status.success(), "remotecfgclient failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let mut lines: Vec<Value> =
        stdout.lines().map(|line| serde_json::from_str(line).expect("json line")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.remove(0)
}

/// The admin account (replicated) speaking to `node`.
pub(crate) fn api_at(cluster: &Cluster, node: &Node) -> Api {
    Api { http: reqwest::Client::new(), base_url: node.url(""), token: cluster.admin.token.clone() }
}

/// Three voters with the slots spread evenly over them (the table every node shows).
async fn three_nodes_with_slots_spread() -> Cluster {
    spread(Cluster::start(3, 3).await).await
}

async fn spread(cluster: Cluster) -> Cluster {
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    crate::failover::wait_even(&cluster, &[0, 1, 2], &ids).await;
    cluster
}

/// A collector created through `via` whose slot node 1 owns (collectors are created until one does;
/// a third of the slots are node 1's, so this takes a few tries).
async fn collector_owned_by_node_1(cluster: &Cluster, via: &Api, name: &str) -> String {
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    let table = crate::failover::wait_even(cluster, &[0, 1, 2], &ids).await;
    for attempt in 1..=64 {
        let collector_id = via.create_collector(&format!("{name}-{attempt}")).await;
        if table[&(linkmesh::model::slot_of(&collector_id) as u64)].0 == ids[0] {
            return collector_id;
        }
    }
    panic!("64 collectors and none in a slot of node 1: {table:?}");
}

/// Retries `call` until it answers `ok` (the edge's replica may not have the token yet), with a
/// deadline; returns the answer.
async fn until_ok(what: &str, mut call: impl FnMut() -> Value) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    loop {
        let answer = call();
        if answer["ok"] == true {
            return answer;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never succeeded; last answer: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `linkmesh_polls_total{path=...}` as `node` exports it.
async fn polls_counted(cluster: &Cluster, node: &Node, path: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(node.url("/metrics"))
        .bearer_auth(&cluster.admin.token)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let label = format!("path=\"{path}\"");
    text.lines()
        .find(|line| line.starts_with("linkmesh_polls_total{") && line.contains(&label))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no linkmesh_polls_total{{{label}}} in:\n{text}"))
}

/// The Alloy self-metrics fixture (OTLP/JSON), re-encoded as protobuf as the OTel exporter sends it.
fn alloy_self_metrics(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/otlp").join(name);
    let json = std::fs::read(path).expect("fixture");
    let request: ExportMetricsServiceRequest = serde_json::from_slice(&json).expect("otlp json");
    request.encode_to_vec()
}

async fn push_protobuf(node: &Node, token: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(node.url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("push")
}

#[tokio::test]
async fn a_collector_created_on_node_2_is_polled_through_node_3_and_pushed_to_through_node_1() {
    let cluster = three_nodes_with_slots_spread().await;
    let (node_1, node_2, node_3) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]);
    let on_2 = api_at(&cluster, node_2);
    let collector_id = collector_owned_by_node_1(&cluster, &on_2, "routed").await;
    let token = on_2.mint_token(&collector_id).await;
    // Destination credentials set through node 2 (sealed with the cluster's data key), delivered by
    // the owner, node 1.
    let base = format!("/api/v1/collectors/{collector_id}");
    on_2.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = on_2
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.routed.example"},
                   "credentials": {"username": LOKI_USERNAME, "password": LOKI_PASSWORD}}),
        )
        .await;
    on_2.create(&format!("{base}/routes"), json!({"name": "all", "destination_ids": [loki["id"]]})).await;

    let forwarded_before = polls_counted(&cluster, node_3, "forwarded").await;
    let registered = until_ok("a register through node 3", || {
        alloy(node_3, &token, &["-rpc", "register", "-id", "host-routed", "-name", "host-routed"])
    })
    .await;
    assert_eq!(registered["ok"], true);
    let delivered = until_ok("a poll through node 3 with the route in place", || {
        let reply = alloy(node_3, &token, &["-rpc", "get", "-id", "host-routed"]);
        let routed = reply["content"].as_str().is_some_and(|content| content.contains("loki.write"));
        if routed {
            reply
        } else {
            json!({ "ok": false, "last": reply })
        }
    })
    .await;
    let content = delivered["content"].as_str().expect("content");
    for secret in [LOKI_PASSWORD, LOKI_USERNAME] {
        assert!(content.contains(secret), "{secret} not delivered through node 3:\n{content}");
    }
    let hash = delivered["hash"].as_str().expect("hash");
    let cached = alloy(node_3, &token, &["-rpc", "get", "-id", "host-routed", "-hash", hash]);
    assert_eq!(cached["ok"], true, "{cached}");
    assert_eq!(cached["not_modified"], true, "{cached}");
    assert!(
        polls_counted(&cluster, node_3, "forwarded").await >= forwarded_before + 2.0,
        "node 3 counted its polls as forwarded"
    );

    // own_metrics through node 1 (the owner: local) and through node 2 (forwarded as raw protobuf).
    let pushed = push_protobuf(node_1, &token, alloy_self_metrics("alloy_self_metrics_t0.json")).await;
    assert_eq!(pushed.status(), 200, "{:?}", pushed.text().await);
    let forwarded = push_protobuf(node_2, &token, alloy_self_metrics("alloy_self_metrics_t1.json")).await;
    assert_eq!(forwarded.status(), 200, "{:?}", forwarded.text().await);
    assert_eq!(forwarded.headers()["content-type"], "application/x-protobuf");

    // Events (replicated) and the topology (rates gathered from the owner) read on node 2.
    let events = on_2.wait_for_event(&collector_id, "own_metrics_first_seen", 1).await;
    assert!(events.iter().any(|event| event == "remotecfg_registered"), "{events:?}");
    let topology_path = format!("{base}/topology");
    let has_rates = |topology: &Value| {
        topology["nodes"].as_array().is_some_and(|nodes| {
            nodes.iter().any(|node| node["in_rate"].as_f64().is_some_and(|rate| rate > 0.0))
        })
    };
    assert!(
        support::wait_until(CONVERGE_DEADLINE, || async { has_rates(&on_2.get(&topology_path).await) }).await,
        "node 2 never showed rates from both pushes: {}",
        on_2.get(&topology_path).await
    );

    // Rotation through node 2: the old token is refused by every node as soon as the call returned.
    let rotated = on_2.mint_token(&collector_id).await;
    for node in &cluster.nodes {
        let refused = alloy(node, &token, &["-rpc", "get", "-id", "host-routed"]);
        assert_eq!(refused["ok"], false, "{} took the old token: {refused}", node.name);
        assert_eq!(refused["http_status"], 401, "{}: {refused}", node.name);
        assert_eq!(refused["code"], "unauthenticated", "{}: {refused}", node.name);
    }
    let fresh = until_ok("a poll with the rotated token through node 3", || {
        alloy(node_3, &rotated, &["-rpc", "get", "-id", "host-routed", "-hash", hash])
    })
    .await;
    assert_eq!(fresh["not_modified"], true, "{fresh}");
}

#[tokio::test]
async fn an_unreachable_owner_is_a_503_with_retry_after_not_a_hang() {
    let mut cluster = three_nodes_with_slots_spread().await;
    let on_1 = api_at(&cluster, &cluster.nodes[0]);
    let collector_id = collector_owned_by_node_1(&cluster, &on_1, "orphaned").await;
    let token = on_1.mint_token(&collector_id).await;
    let node_2 = &cluster.nodes[1];
    until_ok("a poll through node 2 while the owner runs", || {
        alloy(node_2, &token, &["-rpc", "get", "-id", "host-orphaned"])
    })
    .await;

    cluster.nodes[0].kill();
    let (node_2, node_3) = (&cluster.nodes[1], &cluster.nodes[2]);
    let poll = support::poll_request("host-orphaned", "");
    let started = tokio::time::Instant::now();
    let response = reqwest::Client::new()
        .post(node_2.url("/collector.v1.CollectorService/GetConfig"))
        .header("content-type", "application/proto")
        .header("connect-protocol-version", "1")
        .bearer_auth(&token)
        .body(poll.encode_to_vec())
        .timeout(CONVERGE_DEADLINE)
        .send()
        .await
        .expect("a poll through node 2 is answered, not left hanging");
    let retry_after =
        response.headers().get("retry-after").map(|value| value.to_str().expect("ascii").to_owned());
    let (status, code, message) = support::connect_error(response).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"), "{message}");
    assert!(retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s >= 1)));
    assert!(!message.contains("127.0.0.1"), "an internal address reached the client: {message}");
    // (How long it took is reported, not asserted.)
    eprintln!("poll with the owner down answered in {:?}", started.elapsed());

    let pushed = push_protobuf(node_3, &token, ExportMetricsServiceRequest::default().encode_to_vec()).await;
    assert_eq!(pushed.status(), 503);
    assert!(pushed.headers().get("retry-after").is_some(), "{:?}", pushed.headers());
    assert_eq!(pushed.headers()["content-type"], "application/x-protobuf");
}

/// One OpAMP `AgentToServer` sent as a plain-HTTP agent sends it, through `node`; the answer, once
/// the node answers 200 (the edge's replica may not have the token yet: a 401 is retried until the
/// deadline).
async fn opamp_through(
    node: &Node,
    token: &str,
    message: &linkmesh::proto::opamp::v1::AgentToServer,
) -> linkmesh::proto::opamp::v1::ServerToAgent {
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    loop {
        let response = reqwest::Client::new()
            .post(node.url("/v1/opamp"))
            .header("content-type", "application/x-protobuf")
            .bearer_auth(token)
            .body(message.encode_to_vec())
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        if status == 200 {
            let body = response.bytes().await.expect("body");
            return linkmesh::proto::opamp::v1::ServerToAgent::decode(body.as_ref())
                .expect("a ServerToAgent");
        }
        assert!(tokio::time::Instant::now() < deadline, "{} answered {status}", node.url("/v1/opamp"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An OpAMP agent's messages taken on nodes 2 and 3 are answered by the actor on node 1, the owner:
/// the config is offered once, the APPLIED report sent to another node is recorded, and the goodbye
/// through a third takes it offline; every message counts as the same agent stream (no full-state
/// request between them).
#[tokio::test]
async fn opamp_messages_taken_on_any_node_are_answered_by_the_owner() {
    use linkmesh::proto::opamp::v1 as opamp;
    let cluster = three_nodes_with_slots_spread().await;
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    let on_2 = api_at(&cluster, &cluster.nodes[1]);
    let (collector_id, token) = configured_opamp_collector_of_node_1(&cluster, &on_2, &ids).await;

    let uid = vec![0x01, 0x93, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 7];
    let description = opamp::AgentDescription {
        identifying_attributes: vec![opamp::KeyValue {
            key: "service.name".into(),
            value: Some(opamp::AnyValue {
                value: Some(opamp::any_value::Value::StringValue("otelcol".into())),
            }),
        }],
        non_identifying_attributes: Vec::new(),
    };
    let first = opamp::AgentToServer {
        instance_uid: uid.clone(),
        capabilities: 0x7C47,
        agent_description: Some(description),
        ..Default::default()
    };
    let offer = opamp_through(&cluster.nodes[1], &token, &first).await;
    assert_eq!(offer.capabilities, 0x27);
    let hash = offer.remote_config.expect("the config is offered through node 2").config_hash;

    let applied = opamp::AgentToServer {
        instance_uid: uid.clone(),
        sequence_num: 1,
        capabilities: 0x7C47,
        remote_config_status: Some(opamp::RemoteConfigStatus {
            last_remote_config_hash: hash,
            status: opamp::RemoteConfigStatuses::Applied as i32,
            error_message: String::new(),
        }),
        ..Default::default()
    };
    let reply = opamp_through(&cluster.nodes[2], &token, &applied).await;
    assert!(reply.remote_config.is_none(), "applied: not offered again");
    assert_eq!(reply.flags, 0, "the owner saw message 0 through node 2: no full-state request");
    let on_3 = api_at(&cluster, &cluster.nodes[2]);
    let collector = until_events(&on_3, &collector_id, "config_applied").await;
    assert_eq!(collector["owner_node"], ids[0], "{collector}");

    let goodbye = opamp::AgentToServer {
        instance_uid: uid,
        sequence_num: 2,
        capabilities: 0x7C47,
        agent_disconnect: Some(opamp::AgentDisconnect {}),
        ..Default::default()
    };
    opamp_through(&cluster.nodes[0], &token, &goodbye).await;
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    while on_3.collector(&collector_id).await["status"] != "offline" {
        assert!(tokio::time::Instant::now() < deadline, "never offline after the goodbye");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An `opamp` collector created through `api` in a slot of node 1 (`ids[0]`), with something to run
/// and a token.
async fn configured_opamp_collector_of_node_1(cluster: &Cluster, api: &Api, ids: &[u64]) -> (String, String) {
    let table = crate::failover::wait_even(cluster, &[0, 1, 2], ids).await;
    let collector_id = opamp_collector_owned_by(api, &table, ids[0], "otel-routed").await;
    support::opamp_agent::configure_something_to_run(api, &collector_id).await;
    let token = api.mint_token(&collector_id).await;
    (collector_id, token)
}

/// An opamp-go agent connected over WebSocket to node 2 gets a change made through node 3 at once
/// (heartbeats off, and an hour offered: it sends nothing after its acknowledgement), though its
/// collector's actor lives on node 1: node 2 hears of the change by applying it and asks the owner
/// what to push.
#[tokio::test]
async fn a_change_is_pushed_to_a_websocket_agent_on_a_node_that_does_not_own_its_collector() {
    let config = format!("{}\n[cluster]\nmax_voters = 3\n", crate::support::QUIET_OPAMP_CONFIG);
    let cluster = spread(Cluster::start_with_config(3, config).await).await;
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    let on_2 = api_at(&cluster, &cluster.nodes[1]);
    let (collector_id, token) = configured_opamp_collector_of_node_1(&cluster, &on_2, &ids).await;
    let agent_url = format!("http://{}", cluster.nodes[1].http_addr);
    let agent =
        support::opamp_agent::Agent::start(&agent_url, &token, &["-configs", "2", "-heartbeat", "0s"]);
    agent.next("connected");
    let first = agent.next("config");
    let on_3 = api_at(&cluster, &cluster.nodes[2]);
    let collector = until_events(&on_3, &collector_id, "config_applied").await;
    assert_eq!(collector["owner_node"], ids[0], "{collector}");

    on_3.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "pushed", "type": "otlp"}),
    )
    .await;
    let second = agent.next_without("config", "connected");
    assert_ne!(second["hash"], first["hash"]);
    assert!(second["body"].as_str().expect("body").contains("pushed"), "{second}");
    agent.next("stopped");
}

/// An `opamp` collector created through `api` in a slot that `owner` holds in `table` (slot → (owner,
/// epoch), spread evenly): collectors named `name-<attempt>` are created until one lands there.
pub(crate) async fn opamp_collector_owned_by(
    api: &Api,
    table: &BTreeMap<u64, (u64, u64)>,
    owner: u64,
    name: &str,
) -> String {
    for attempt in 1..=64 {
        let (status, created) = api
            .request(
                reqwest::Method::POST,
                "/api/v1/collectors",
                Some(json!({ "name": format!("{name}-{attempt}"), "mode": "opamp" })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        if table[&(linkmesh::model::slot_of(&id) as u64)].0 == owner {
            return id;
        }
    }
    panic!("64 opamp collectors and none in a slot of node {owner}: {table:?}");
}

/// Waits until `event_type` is among the collector's events as `api`'s node shows them; the collector.
async fn until_events(api: &Api, collector_id: &str, event_type: &str) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    loop {
        let types = api.event_types(collector_id).await;
        if types.iter().any(|found| found == event_type) {
            return api.collector(collector_id).await;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {event_type} event: {types:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
