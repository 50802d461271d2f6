//! Reads from any node: a collector's live fields (and its throughput) come from its owner, whichever
//! node is asked; an owner that cannot be asked in time is said so (`"live": false`) and the replicated
//! fields are shown.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{members_with_role, Cluster, CONVERGE_DEADLINE};
use crate::support::Api;

/// The admin's service account (replicated) used against another node.
fn api_at(admin: &Api, base_url: &str) -> Api {
    Api {
        // Bounds a hung read so a regression fails instead of hanging; not a timing assertion.
        http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client"),
        base_url: base_url.to_owned(),
        token: admin.token.clone(),
    }
}

async fn get(api: &Api, path: &str) -> (u16, Value) {
    api.request(reqwest::Method::GET, path, None).await
}

/// Waits until `GET path` on `api` answers 200 with a body satisfying `condition`; returns it.
async fn wait_for(api: &Api, path: &str, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    loop {
        let (status, body) = get(api, path).await;
        if status == 200 && condition(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never showed {what}; last answer ({status}): {body:#}",
            api.base_url
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn in_list<'a>(list: &'a Value, collector_id: &str) -> Option<&'a Value> {
    list["collectors"].as_array()?.iter().find(|collector| collector["id"] == collector_id)
}

async fn post_to_owner(url: String, token: &str, content_type: &str, body: Vec<u8>) -> Value {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post to the owner");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    response.json().await.expect("json")
}

#[tokio::test]
async fn live_fields_come_from_the_owner_and_a_stopped_owner_is_reported_not_asked() {
    let cluster = Cluster::start(3, 3).await;
    cluster.wait_for_views("three voters", |view| members_with_role(view, "voter").len() == 3).await;
    // The balancer spreads the slots over the three nodes first; the collector is one whose slot node 1
    // owns, so nodes 2 and 3 ask node 1 for its live fields.
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    let table = crate::failover::wait_even(&cluster, &[0, 1, 2], &ids).await;
    let owner_id = ids[0];
    let owner = &cluster.nodes[0];
    let mut attempt = 0;
    let collector_id = loop {
        attempt += 1;
        let collector_id = cluster.admin.create_collector(&format!("live-reads-{attempt}")).await;
        if table[&(linkmesh::model::slot_of(&collector_id) as u64)].0 == owner_id {
            break collector_id;
        }
    };
    let token = cluster.admin.mint_token(&collector_id).await;
    // Polled on its owner directly, with the Connect JSON protocol (the edge's forwarding is separate).
    let poll = serde_json::json!({ "id": "host-live", "localAttributes": { "env": "test" } });
    let first = post_to_owner(
        owner.url("/collector.v1.CollectorService/GetConfig"),
        &token,
        "application/json",
        poll.to_string().into_bytes(),
    )
    .await;
    assert!(first["hash"].is_string(), "{first}");
    // One own_metrics push: `own_metrics_last_seen_at` and the throughput exist only in the owner's actor.
    let push = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/otlp/alloy_self_metrics_t0.json"),
    )
    .expect("fixture");
    post_to_owner(owner.url("/v1/metrics"), &token, "application/json", push).await;

    let node2 = api_at(&cluster.admin, &cluster.nodes[1].url(""));
    let node3 = api_at(&cluster.admin, &cluster.nodes[2].url(""));
    let path = format!("/api/v1/collectors/{collector_id}");
    let live = wait_for(&node2, &path, "the owner's live fields", |body| {
        body["status"] == "connected" && body["own_metrics_last_seen_at"].is_string()
    })
    .await;
    assert_eq!(live["owner_node"], owner_id, "{live:#}");
    assert_eq!(live["host_id"], "host-live");
    assert!(live.get("live").is_none(), "the owner answered: no `live` marker expected: {live:#}");
    let list = wait_for(&node3, "/api/v1/collectors", "the collector with its owner's live fields", |body| {
        in_list(body, &collector_id)
            .is_some_and(|collector| collector["own_metrics_last_seen_at"].is_string())
    })
    .await;
    let listed = in_list(&list, &collector_id).expect("listed");
    assert_eq!(listed["owner_node"], owner_id);
    assert_eq!(listed["status"], "connected");
    assert!(listed.get("live").is_none(), "{listed:#}");
    let topology_path = format!("/api/v1/collectors/{collector_id}/topology");
    let topology =
        wait_for(&node2, &topology_path, "the owner's throughput", |body| body["updated_at"].is_string())
            .await;
    assert!(topology["process"].is_object(), "the push's process metrics, from the owner: {topology:#}");
    assert!(topology.get("live").is_none(), "{topology:#}");

    // The owner's activity writes (status, host) replicated to node 2: what it shows once the owner
    // cannot be asked.
    let events_path = format!("/api/v1/collectors/{collector_id}/events?limit=1000");
    wait_for(&node2, &events_path, "the owner's activity events, replicated", |body| {
        let types: Vec<&str> = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|event| event["type"].as_str())
            .collect();
        types.contains(&"status_changed") && types.contains(&"own_metrics_first_seen")
    })
    .await;

    // A stopped owner keeps its connections open and answers nothing: reads elsewhere still answer,
    // with the replicated fields, and say the owner could not be asked.
    owner.signal("STOP");
    let (status, stale) = get(&node2, &path).await;
    let (list_status, list) = get(&node3, "/api/v1/collectors").await;
    let (topology_status, topology) = get(&node2, &topology_path).await;
    owner.signal("CONT");
    assert_eq!(status, 200, "{stale:#}");
    assert_eq!(stale["live"], false, "{stale:#}");
    assert_eq!(stale["owner_node"], owner_id);
    // Replicated by the owner's activity writes before it stopped.
    assert_eq!(stale["status"], "connected", "{stale:#}");
    assert_eq!(stale["host_id"], "host-live");
    assert_eq!(stale["own_metrics_last_seen_at"], Value::Null, "a live-only field: {stale:#}");
    assert_eq!(list_status, 200, "{list:#}");
    let listed = in_list(&list, &collector_id).expect("listed while the owner is stopped");
    assert_eq!(listed["live"], false, "{listed:#}");
    assert_eq!(topology_status, 200, "{topology:#}");
    assert_eq!(topology["live"], false, "{topology:#}");
    assert_eq!(topology["process"], Value::Null, "{topology:#}");

    // Resumed, the owner is asked again.
    wait_for(&node2, &path, "live fields again after SIGCONT", |body| {
        body.get("live").is_none() && body["own_metrics_last_seen_at"].is_string()
    })
    .await;
}
