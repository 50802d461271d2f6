//! Batch provisioning in a cluster: a `POST /collectors:batch` sent to a follower is forwarded to the
//! leader as one entry, and every token it minted polls at once through every other node (which wait
//! for one catch-up when they have not applied the entry yet).

use serde_json::{json, Value};

use crate::harness::{Cluster, Node};
use crate::support::Api;

const BATCH: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_to_a_follower_creates_collectors_whose_tokens_poll_on_every_node() {
    let cluster = Cluster::start(3, 3).await;
    // Slots still moving to a new member answer polls 503 for a moment: start once they have settled.
    let ids: Vec<u64> = cluster.nodes.iter().map(|node| node.identity().1).collect();
    crate::failover::wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader_id = cluster.nodes[0].cluster(&cluster.admin).await["leader_id"].as_u64().expect("leader");
    let follower = cluster.nodes.iter().find(|node| node.identity().1 != leader_id).expect("a follower");
    let via_follower =
        Api { http: reqwest::Client::new(), base_url: follower.url(""), token: cluster.admin.token.clone() };
    let items: Vec<Value> =
        (0..BATCH).map(|n| json!({"name": format!("batch-{n}"), "mode": "alloy-remotecfg"})).collect();
    let created = via_follower
        .create("/api/v1/collectors:batch", json!({"collectors": items, "mint_tokens": true}))
        .await;
    let created = created["collectors"].as_array().expect("collectors");
    assert_eq!(created.len(), BATCH);

    let others: Vec<&Node> =
        cluster.nodes.iter().filter(|node| node.identity().1 != follower.identity().1).collect();
    let mut refused = Vec::new();
    for (n, collector) in created.iter().enumerate() {
        let token = collector["token"].as_str().expect("token");
        let node = others[n % others.len()];
        let (status, _) = crate::catch_up::poll(node, token, &format!("host-{n}")).await;
        if status != 200 {
            refused.push(format!("{} on {}: {status}", collector["id"], node.name));
        }
    }
    assert!(refused.is_empty(), "first polls refused: {refused:#?}");
}
