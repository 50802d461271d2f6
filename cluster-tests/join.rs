//! Bootstrap and join: nodes from empty data dirs, promotion up to `max_voters`, refused joins that
//! change nothing, and restarts that resume.

use std::collections::BTreeMap;
use std::time::Duration;

use linkmesh::cluster::join::{fresh_request_nonce, JoinRequest, JoiningNode};
use serde_json::{json, Value};

use crate::harness::{members_with_role, slots_total, Cluster, Node};

/// Member id → (role, slots), as one node sees the cluster.
fn roles_and_slots(view: &Value) -> BTreeMap<u64, (String, u64)> {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| {
            let role = member["role"].as_str().expect("role").to_owned();
            (member["id"].as_u64().expect("id"), (role, member["slots"].as_u64().expect("slots")))
        })
        .collect()
}

/// Every node agrees on the cluster id, the leader and each member's role and slot count, and the
/// slot counts cover the whole table.
fn agree(views: &[Value]) -> bool {
    views.iter().all(|view| {
        view["cluster_id"] == views[0]["cluster_id"]
            && view["leader_id"].is_u64()
            && view["leader_id"] == views[0]["leader_id"]
            && roles_and_slots(view) == roles_and_slots(&views[0])
            && slots_total(view) == 1024
    })
}

#[tokio::test]
async fn three_nodes_form_one_cluster_and_a_fourth_stays_a_learner_beyond_max_voters() {
    let mut cluster = Cluster::start(3, 3).await;
    let views = cluster
        .wait_for_all("three voters, seen alike by every node", |views| {
            agree(views) && members_with_role(&views[0], "voter").len() == 3
        })
        .await;
    let cluster_id = views[0]["cluster_id"].as_str().expect("cluster id").to_owned();
    for (node, view) in cluster.nodes.iter().zip(&views) {
        let (stored_cluster_id, node_id) = node.identity();
        assert_eq!(stored_cluster_id, cluster_id, "{} joined another cluster", node.name);
        let member = view["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|member| member["id"] == node_id)
            .unwrap_or_else(|| panic!("{} is not in its own view: {view}", node.name))
            .clone();
        assert_eq!(member["name"], node.name.as_str());
        assert_eq!(member["http_addr"], node.http_addr.as_str());
        assert_eq!(member["version"], env!("CARGO_PKG_VERSION"));
        assert!(member["applied_index"].is_u64(), "{member}");
        assert!(view["term"].as_u64().expect("term") >= 1);
        assert!(view["commit_index"].is_u64(), "{view}");
    }

    let fourth_id = {
        let fourth = cluster.add_node().await;
        fourth.identity().1
    };
    let is_learner = |view: &Value| {
        members_with_role(view, "learner") == vec![fourth_id] && members_with_role(view, "voter").len() == 3
    };
    cluster.wait_for_views("the fourth node as a learner", is_learner).await;
    // Caught up (no lag on the leader's view), the promoter has had its chances: it must still not vote.
    cluster
        .wait_for_views("the fourth node caught up", |view| {
            view["members"]
                .as_array()
                .expect("members")
                .iter()
                .all(|member| member["lag"].is_null() || member["lag"].as_u64() <= Some(64))
        })
        .await;
    let held_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < held_until {
        for node in &cluster.nodes {
            let view = node.cluster(&cluster.admin).await;
            assert!(is_learner(&view), "{} promoted the fourth node beyond max_voters: {view}", node.name);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's clock, from its `Date` header (whole seconds).
async fn server_time(node: &Node) -> time::OffsetDateTime {
    let response = reqwest::get(node.url("/healthz")).await.expect("healthz");
    let date = response.headers().get("date").expect("date header").to_str().expect("ascii").to_owned();
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(&date, &format).expect("http date").assume_utc()
}

/// Waits until the node's clock is past `instant` (RFC 3339), with a deadline.
async fn wait_until_server_time_passes(node: &Node, instant: &str) {
    let instant = time::OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // The Date header drops the fraction: one second more is surely past.
    while server_time(node).await <= instant + time::Duration::seconds(1) {
        assert!(tokio::time::Instant::now() < deadline, "the server's clock never passed {instant}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn holds_linkmesh_files(node: &Node) -> bool {
    ["identity.json", "durable-facts", "data-key", "raft"]
        .iter()
        .any(|name| node.data_dir.join(name).exists())
}

/// A refused join exits with a clear message and leaves the joining data dir empty.
fn refused(node: &mut Node, url: &str, token: &str, expected: &str) {
    let failure =
        node.try_start(Some((url.to_owned(), token.to_owned()))).expect_err("the join must be refused");
    let status = failure.status.expect("the node exits");
    assert_eq!(status.code(), Some(1), "exit status; log:\n{}", failure.log);
    assert!(failure.log.contains(expected), "no {expected:?} in the log:\n{}", failure.log);
    assert!(!holds_linkmesh_files(node), "a refused join created files in {}", node.data_dir.display());
}

async fn post_join(node: &Node, request: &JoinRequest) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(node.url("/api/v1/cluster/join"))
        .json(request)
        .send()
        .await
        .expect("join request");
    (response.status().as_u16(), response.json().await.expect("json"))
}

#[tokio::test]
async fn expired_reused_and_already_member_joins_are_refused_and_change_nothing() {
    let mut cluster = Cluster::start(1, 5).await;
    let leader_url = cluster.nodes[0].url("");

    // An expired token.
    let expired = cluster.join_token(json!({ "ttl_seconds": 1 })).await;
    wait_until_server_time_passes(&cluster.nodes[0], expired["expires_at"].as_str().expect("expires_at"))
        .await;
    let mut late = cluster.new_node();
    refused(&mut late, &leader_url, expired["token"].as_str().expect("token"), "expired");

    // A single-use token, used, then used again.
    let single = cluster.join_token(json!({})).await;
    let single = single["token"].as_str().expect("token").to_owned();
    let mut second = cluster.new_node();
    second.start(Some((leader_url.clone(), single.clone())));
    let second_id = second.identity().1;
    cluster.nodes.push(second);
    // Once the balancer has spread the slots over both, nothing moves them any more.
    let before = cluster
        .wait_for_views("two members, the slots spread over both", |view| {
            let members = roles_and_slots(view);
            members.len() == 2 && members.values().all(|(_, slots)| *slots == 512)
        })
        .await;
    let mut again = cluster.new_node();
    refused(&mut again, &leader_url, &single, "used up");

    // A join under the id of a member (a wiped node coming back as itself), with a valid token.
    let fresh = cluster.join_token(json!({})).await;
    let fresh = fresh["token"].as_str().expect("token").to_owned();
    let comeback = JoiningNode {
        node_id: second_id,
        name: "node-2".into(),
        http_addr: "127.0.0.1:1".into(),
        rpc_addr: "127.0.0.1:2".into(),
    };
    let (request, _) =
        JoinRequest::new(&fresh, &comeback, fresh_request_nonce().expect("nonce")).expect("request");
    let (status, body) = post_join(&cluster.nodes[0], &request).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["message"],
        format!(
            "node {second_id} is already a member; remove member {second_id} first, then join as a new node"
        )
    );

    // A wrong token (a proof made with another token under a real lookup) and an unknown one.
    let mut forged = request.clone();
    let (other, _) = JoinRequest::new(
        &linkmesh::secrets::mint_token(linkmesh::secrets::JOIN_TOKEN_PREFIX).expect("mint").token,
        &JoiningNode { node_id: 77, ..comeback.clone() },
        fresh_request_nonce().expect("nonce"),
    )
    .expect("request");
    forged.node_id = 77;
    forged.proof = other.proof.clone();
    let (status, body) = post_join(&cluster.nodes[0], &forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthenticated")), "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("proof does not verify"), "{body}");
    let (status, body) = post_join(&cluster.nodes[0], &other).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("not known"), "{body}");

    // Nothing changed: the same members, and the token refused for the comeback still has its use.
    let after = cluster.wait_for_views("the same members", |view| roles_and_slots(view).len() == 2).await;
    assert_eq!(roles_and_slots(&after[0]), roles_and_slots(&before[0]));
    let mut third = cluster.new_node();
    third.start(Some((leader_url, fresh)));
    cluster.nodes.push(third);
    cluster.wait_for_views("three members", |view| roles_and_slots(view).len() == 3).await;
}

#[tokio::test]
async fn a_restarted_node_resumes_as_the_same_member_and_never_bootstraps_again() {
    let mut cluster = Cluster::start(2, 5).await;
    cluster.wait_for_views("two voters", |view| members_with_role(view, "voter").len() == 2).await;
    let identities: Vec<(String, u64)> = cluster.nodes.iter().map(Node::identity).collect();

    // The joined node restarts with its --join flags still given: they are ignored.
    cluster.nodes[1].stop();
    cluster.nodes[1].start(None);
    assert!(cluster.nodes[1].log().contains("--join is ignored"), "{}", cluster.nodes[1].log());
    // The first node restarts too: it resumes, it does not create a cluster again.
    cluster.nodes[0].stop();
    cluster.nodes[0].start(None);
    for (node, identity) in cluster.nodes.iter().zip(&identities) {
        assert_eq!(&node.identity(), identity, "{} changed identity", node.name);
        assert_eq!(node.log().matches("created a new data dir").count(), 1, "{}", node.log());
    }
    let views =
        cluster.wait_for_views("both members back", |view| members_with_role(view, "voter").len() == 2).await;
    for view in &views {
        assert_eq!(view["cluster_id"], identities[0].0.as_str());
        let ids: Vec<u64> = roles_and_slots(view).into_keys().collect();
        let mut expected: Vec<u64> = identities.iter().map(|(_, id)| *id).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected);
    }
}
