//! Rolling upgrades: the cluster's feature level (`model/feature_level.rs`) stays where the oldest
//! member's release holds it, rises once every member runs a release that knows the next level, and
//! then keeps older releases out.
//!
//! The tests cannot run an old binary, so a node plays one with `LINKMESH_TEST_REPORT_FEATURE_LEVEL=1`:
//! it reports level 1 in its renewals and its join, as releases before levels do (they report none).

use std::time::Duration;

use linkmesh::cluster::member_levels::REPORT_LEVEL_ENV;
use linkmesh::model::feature_level::THIS_RELEASE;
use serde_json::Value;

use crate::harness::{self, Cluster, Node};
use crate::support::Api;

/// Sends a two-collector batch create (a level-2 command) to `node`: its status and body.
async fn batch_create(cluster: &Cluster, node: usize, prefix: &str) -> (u16, Value) {
    let api = Api {
        http: reqwest::Client::new(),
        base_url: cluster.nodes[node].url(""),
        token: cluster.admin.token.clone(),
    };
    let collectors: Vec<Value> = (0..2)
        .map(|n| serde_json::json!({"name": format!("{prefix}-{n}"), "mode": "alloy-remotecfg"}))
        .collect();
    api.request(
        reqwest::Method::POST,
        "/api/v1/collectors:batch",
        Some(serde_json::json!({"collectors": collectors})),
    )
    .await
}

/// Member id → the feature level the leader has from its last renewal.
fn reported_levels(view: &Value) -> Vec<Option<u64>> {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| member["feature_level"].as_u64())
        .collect()
}

fn playing_an_older_release(node: &mut Node) {
    node.env.push((REPORT_LEVEL_ENV.to_owned(), "1".to_owned()));
}

#[tokio::test]
async fn the_feature_level_rises_once_every_member_knows_it_and_then_keeps_older_releases_out() {
    let config = harness::config(3);
    let root = tempfile::tempdir().expect("temp dir");
    let mut first = Node::new(root.path(), "node-1", &config);
    playing_an_older_release(&mut first);
    let mut cluster = Cluster::start_from(root, first, 3, config).await;

    // Nodes 2 and 3 run this release, node 1 an older one: every member reported, the level holds.
    cluster
        .wait_for_all("three members that reported their releases, the cluster at level 1", |views| {
            views.iter().all(|view| {
                let mut levels = reported_levels(view);
                levels.sort_unstable();
                let new = Some(u64::from(THIS_RELEASE.0));
                view["feature_level"] == 1 && levels == [Some(1), new, new]
            })
        })
        .await;
    let held_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < held_until {
        for node in &cluster.nodes {
            let view = node.cluster(&cluster.admin).await;
            assert_eq!(view["feature_level"], 1, "raised while {} still reports level 1: {view:#}", "node-1");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // What an older member could not decode is refused, on every node, with the levels named.
    for node in 0..3 {
        let (status, body) = batch_create(&cluster, node, "early").await;
        assert_eq!(status, 503, "a batch create at level 1 via node {node}: {body:#}");
        assert_eq!(body["error"]["details"]["needed_feature_level"], 2, "{body:#}");
        assert_eq!(body["error"]["details"]["cluster_feature_level"], 1, "{body:#}");
    }

    // The last node is upgraded: restarted on this release, it reports its level and the level rises
    // (through 2, the batch create's, to this release's).
    let first = &mut cluster.nodes[0];
    first.stop();
    first.env.clear();
    first.start(None);
    cluster
        .wait_for_all("every member at this release's level and the cluster raised to it", |views| {
            let new = u64::from(THIS_RELEASE.0);
            views.iter().all(|view| {
                view["feature_level"] == new && reported_levels(view).iter().all(|level| *level == Some(new))
            })
        })
        .await;

    let (status, body) = batch_create(&cluster, 1, "after").await;
    assert_eq!(status, 201, "a batch create once the level rose: {body:#}");
    assert_eq!(body["collectors"].as_array().map(Vec::len), Some(2), "{body:#}");

    // From now on a node of an older release cannot join: it could not read what the cluster writes.
    let token = cluster.join_token(serde_json::json!({})).await["token"].as_str().expect("token").to_owned();
    let mut old = cluster.new_node();
    playing_an_older_release(&mut old);
    let failure =
        old.try_start(Some((cluster.nodes[1].url(""), token))).expect_err("the join must be refused");
    assert_eq!(failure.status.and_then(|status| status.code()), Some(1), "log:\n{}", failure.log);
    assert!(
        failure.log.contains(&format!("knows feature level 1 and the cluster runs at {THIS_RELEASE}")),
        "no clear refusal in the log:\n{}",
        failure.log
    );
    assert!(!old.data_dir.join("identity.json").exists(), "a refused join wrote a data dir");
    let view = cluster.nodes[1].cluster(&cluster.admin).await;
    assert_eq!(view["members"].as_array().expect("members").len(), 3, "{view:#}");
}
