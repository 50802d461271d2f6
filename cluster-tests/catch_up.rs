//! Catch-up before a 401: a token minted through the leader and used at once through a follower is
//! taken there, even while the follower's replica has not applied the mint yet (it waits for one
//! catch-up to the leader's read index); a made-up token is still refused.

use serde_json::{json, Value};

use crate::harness::{Cluster, Node};
use crate::support::Api;

/// Fresh tokens tried, each polled through a follower right after its mint returned on the leader.
const FRESH_TOKENS: usize = 20;

/// A GetConfig as Connect JSON through `node`: (HTTP status, body).
pub(crate) async fn poll(node: &Node, token: &str, host_id: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(node.url("/collector.v1.CollectorService/GetConfig"))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .bearer_auth(token)
        .body(json!({ "id": host_id }).to_string())
        .send()
        .await
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_through_the_leader_is_taken_at_once_through_a_follower() {
    let cluster = Cluster::start(3, 3).await;
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    crate::failover::wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader_id = cluster.nodes[0].cluster(&cluster.admin).await["leader_id"].as_u64().expect("leader");
    let leader = cluster.nodes.iter().find(|node| node.identity().1 == leader_id).expect("leader node");
    let followers: Vec<&Node> = cluster.nodes.iter().filter(|node| node.identity().1 != leader_id).collect();
    let on_leader =
        Api { http: reqwest::Client::new(), base_url: leader.url(""), token: cluster.admin.token.clone() };

    let mut refused = Vec::new();
    for attempt in 0..FRESH_TOKENS {
        let collector_id = on_leader.create_collector(&format!("fresh-{attempt}")).await;
        let token = on_leader.mint_token(&collector_id).await;
        let follower = followers[attempt % followers.len()];
        let (status, body) = poll(follower, &token, &format!("host-{attempt}")).await;
        if status != 200 {
            refused.push(format!("{} on {}: {status} {body}", collector_id, follower.name));
        }
    }
    assert!(refused.is_empty(), "first polls refused through a follower: {refused:#?}");

    for follower in &followers {
        let (status, body) = poll(follower, "lmct_notaminttokenatall0000000000000000000000", "host-x").await;
        assert_eq!(status, 401, "{}: {body}", follower.name);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("invalid or rotated collector token"), "{message}");
        let pushed = reqwest::Client::new()
            .post(follower.url("/v1/metrics"))
            .header("content-type", "application/x-protobuf")
            .bearer_auth("lmct_notaminttokenatall0000000000000000000000")
            .body(Vec::new())
            .send()
            .await
            .expect("push");
        assert_eq!(pushed.status(), 401, "{}", follower.name);
    }
}
