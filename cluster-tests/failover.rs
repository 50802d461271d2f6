//! Slot ownership and failover (promises 2, 3, 4, 6 and 7 of `cluster.md`): the balancer spreads the
//! slots, a killed or stopped owner's slots move to the survivors after `node_down_after` (2 s here)
//! with higher epochs and come back when it returns, a node cut off from the leader stops serving when
//! its lease ends, acknowledged writes survive a leader's and then every node's SIGKILL, and the admin
//! calls drain and remove a member and move leadership.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::harness::{Cluster, Node, CONVERGE_DEADLINE};
use crate::support::Api;

/// Three voters, members called down after 2 s (the minimum), with elections fast enough for an owner
/// lease of 0.8 s to outlast one (the configuration refuses anything slower).
fn fast_failover_config() -> String {
    fast_failover_config_on(crate::support::FAST_CONFIG)
}

/// [`fast_failover_config`] over the node settings `settings` (a `support` config such as
/// `FAST_CONFIG`, ending in its `[collectors]` table).
pub(crate) fn fast_failover_config_on(settings: &str) -> String {
    format!(
        "{settings}\n[cluster]\nmax_voters = 3\nnode_down_after = \"2s\"\n[raft]\nheartbeat_interval = \"100ms\"\nelection_timeout = \"300ms\"\n"
    )
}

/// The admin's token, sent to `node`.
fn api_at(cluster: &Cluster, node: &Node) -> Api {
    Api {
        http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client"),
        base_url: format!("http://{}", node.http_addr),
        token: cluster.admin.token.clone(),
    }
}

/// `GET /api/v1/cluster/slots` on `node` as slot → (owner, epoch); `None` while it does not answer.
async fn slot_table(cluster: &Cluster, node: &Node) -> Option<BTreeMap<u64, (u64, u64)>> {
    let response = api_at(cluster, node)
        .http
        .get(node.url("/api/v1/cluster/slots"))
        .bearer_auth(&cluster.admin.token)
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    let slots = body["slots"].as_array()?;
    Some(
        slots
            .iter()
            .map(|entry| {
                let field = |name: &str| entry[name].as_u64().expect(name);
                (field("slot"), (field("owner"), field("epoch")))
            })
            .collect(),
    )
}

fn counts(table: &BTreeMap<u64, (u64, u64)>) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for (owner, _) in table.values() {
        *counts.entry(*owner).or_insert(0) += 1;
    }
    counts
}

/// Exactly `owners` hold slots, max − min ≤ 1.
fn even_over(table: &BTreeMap<u64, (u64, u64)>, owners: &[u64]) -> bool {
    let counts = counts(table);
    let held: Vec<usize> = owners.iter().map(|owner| counts.get(owner).copied().unwrap_or(0)).collect();
    table.len() == 1024
        && counts.len() == owners.len()
        && held.iter().all(|count| *count > 0)
        && held.iter().max().zip(held.iter().min()).is_some_and(|(max, min)| max - min <= 1)
}

/// Polls `condition` until it holds, or fails with `what` after [`CONVERGE_DEADLINE`].
async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node in `nodes` shows a table spread evenly over `owners`; returns the last one.
pub(crate) async fn wait_even(
    cluster: &Cluster,
    nodes: &[usize],
    owners: &[u64],
) -> BTreeMap<u64, (u64, u64)> {
    let last = Mutex::new(BTreeMap::new());
    wait_for(&format!("slots spread evenly over {owners:?}"), || async {
        for index in nodes {
            match slot_table(cluster, &cluster.nodes[*index]).await {
                Some(table) if even_over(&table, owners) => *last.lock() = table,
                _ => return false,
            }
        }
        true
    })
    .await;
    last.into_inner()
}

pub(crate) fn ids(cluster: &Cluster) -> Vec<u64> {
    cluster.nodes.iter().map(|node| node.identity().1).collect()
}

pub(crate) async fn leader_of(cluster: &Cluster, node: &Node) -> Option<u64> {
    node.cluster(&cluster.admin).await["leader_id"].as_u64()
}

async fn readyz(node: &Node) -> Option<u16> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    client.get(node.url("/readyz")).send().await.ok().map(|response| response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_spread_evenly_move_off_a_killed_owner_and_come_back_when_it_restarts() {
    let mut cluster = Cluster::start_with_config(3, fast_failover_config()).await;
    let ids = ids(&cluster);
    let before = wait_even(&cluster, &[0, 1, 2], &ids).await;

    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("leader");
    let victim = (0..3).find(|index| ids[*index] != leader).expect("a follower");
    let victim_id = ids[victim];
    let survivors: Vec<usize> = (0..3).filter(|index| *index != victim).collect();
    let victim_slots: BTreeMap<u64, u64> = before
        .iter()
        .filter(|(_, (owner, _))| *owner == victim_id)
        .map(|(slot, (_, epoch))| (*slot, *epoch))
        .collect();
    cluster.nodes[victim].kill();
    let killed_at = tokio::time::Instant::now();

    let survivor_ids: Vec<u64> = survivors.iter().map(|index| ids[*index]).collect();
    let after = wait_even(&cluster, &survivors, &survivor_ids).await;
    // Reported, never asserted (wall time on a shared machine).
    eprintln!(
        "slots of the killed owner spread over the survivors after {:?} (node_down_after 2 s)",
        tokio::time::Instant::now().saturating_duration_since(killed_at)
    );
    for (slot, epoch) in &victim_slots {
        let (owner, moved_epoch) = after[slot];
        assert_ne!(owner, victim_id, "slot {slot}");
        assert!(moved_epoch > *epoch, "slot {slot}: epoch {moved_epoch} after {epoch}");
    }
    wait_for("the killed node shown unreachable by the survivors", || async {
        for index in &survivors {
            let view = cluster.nodes[*index].cluster(&cluster.admin).await;
            let unreachable = view["members"]
                .as_array()
                .expect("members")
                .iter()
                .any(|member| member["id"] == victim_id && member["state"] == "unreachable");
            if !unreachable {
                return false;
            }
        }
        true
    })
    .await;

    // Back on its data dir: it resumes as the same member (never bootstraps) and gets slots again.
    cluster.nodes[victim].start(None);
    assert_eq!(cluster.nodes[victim].identity().1, victim_id);
    wait_even(&cluster, &[0, 1, 2], &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_owner_loses_its_slots_and_a_node_cut_off_from_the_leader_stops_serving() {
    let cluster = Cluster::start_with_config(3, fast_failover_config()).await;
    let ids = ids(&cluster);
    wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("leader");
    let victim = (0..3).find(|index| ids[*index] != leader).expect("a follower");
    let others: Vec<usize> = (0..3).filter(|index| *index != victim).collect();
    let other_ids: Vec<u64> = others.iter().map(|index| ids[*index]).collect();

    // SIGSTOP for longer than node_down_after: the others take its slots.
    cluster.nodes[victim].signal("STOP");
    wait_even(&cluster, &others, &other_ids).await;
    cluster.nodes[victim].signal("CONT");
    wait_even(&cluster, &[0, 1, 2], &ids).await;
    wait_for("the resumed node ready", || async {
        readyz(&cluster.nodes[victim]).await.is_some_and(|status| status == 200)
    })
    .await;

    // Now the others stop: the victim cannot renew its lease, so it stops serving.
    for index in &others {
        cluster.nodes[*index].signal("STOP");
    }
    wait_for("the isolated node not ready", || async {
        readyz(&cluster.nodes[victim]).await.is_some_and(|status| status == 503)
    })
    .await;
    let body: Value =
        reqwest::get(cluster.nodes[victim].url("/readyz")).await.expect("readyz").json().await.expect("json");
    assert!(body.to_string().contains("no owner lease"), "{body}");
    for index in &others {
        cluster.nodes[*index].signal("CONT");
    }
    wait_for("the node ready again", || async {
        readyz(&cluster.nodes[victim]).await.is_some_and(|status| status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_leaders_sigkill_and_then_every_nodes() {
    let mut cluster = Cluster::start_with_config(3, fast_failover_config()).await;
    let ids = ids(&cluster);
    wait_even(&cluster, &[0, 1, 2], &ids).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (index, node) in cluster.nodes.iter().enumerate() {
        let api = api_at(&cluster, node);
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let created = api
                    .http
                    .post(format!("{}/api/v1/collectors", api.base_url))
                    .bearer_auth(&api.token)
                    .json(&json!({ "name": format!("w{index}-{n}"), "mode": "alloy-remotecfg" }))
                    .send()
                    .await;
                match created {
                    Ok(response) if response.status() == 201 => {
                        let body: Value = response.json().await.expect("json");
                        acknowledged.lock().push(body["id"].as_str().expect("id").to_owned());
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }));
    }
    let count = || acknowledged.lock().len();
    wait_for("writes acknowledged", || async { count() >= 15 }).await;
    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("leader");
    let leader_index = ids.iter().position(|id| *id == leader).expect("leader index");
    cluster.nodes[leader_index].kill();
    let at_kill = count();
    let killed_at = tokio::time::Instant::now();
    wait_for("writes resume after the leader's kill", || async { count() > at_kill }).await;
    eprintln!(
        "first write acknowledged {:?} after the leader's SIGKILL",
        tokio::time::Instant::now().saturating_duration_since(killed_at)
    );
    wait_for("writes resume after the leader's kill", || async { count() >= at_kill + 15 }).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().clone();

    let token = cluster.admin.token.clone();
    let all_present = |node: &Node| {
        let api = Api {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client"),
            base_url: format!("http://{}", node.http_addr),
            token: token.clone(),
        };
        let acknowledged = acknowledged.clone();
        async move {
            let Ok(response) = api
                .http
                .get(format!("{}/api/v1/collectors", api.base_url))
                .bearer_auth(&api.token)
                .send()
                .await
            else {
                return false;
            };
            let Ok(body) = response.json::<Value>().await else { return false };
            let present: std::collections::BTreeSet<&str> = body["collectors"]
                .as_array()
                .map(|list| list.iter().filter_map(|collector| collector["id"].as_str()).collect())
                .unwrap_or_default();
            acknowledged.iter().all(|id| present.contains(id.as_str()))
        }
    };
    for (index, node) in cluster.nodes.iter().enumerate() {
        if index != leader_index {
            wait_for("every acknowledged write on a survivor", || all_present(node)).await;
        }
    }

    // Promise 3: SIGKILL of every node at once, then all three back (together: each needs a quorum).
    for node in &mut cluster.nodes {
        node.kill();
    }
    std::thread::scope(|scope| {
        for node in &mut cluster.nodes {
            scope.spawn(move || node.start(None));
        }
    });
    for node in &cluster.nodes {
        wait_for("every acknowledged write after the restart", || all_present(node)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_on_request_and_a_removed_member_drains_then_leaves() {
    let cluster = Cluster::start_with_config(3, fast_failover_config()).await;
    let ids = ids(&cluster);
    wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("leader");
    let follower = (0..3).find(|index| ids[*index] != leader).expect("a follower");
    let target = ids[follower];
    // Asked on a node that does not lead (forwarded to the leader).
    let api = api_at(&cluster, &cluster.nodes[follower]);
    let (status, body) = api
        .request(reqwest::Method::POST, "/api/v1/cluster/leader", Some(json!({ "node_id": target })))
        .await;
    assert_eq!(status, 202, "{body}");
    cluster
        .wait_for_views("leadership on the target", |view| view["leader_id"].as_u64() == Some(target))
        .await;

    let (status, body) = api.request(reqwest::Method::DELETE, "/api/v1/cluster/members/987654", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = api.request(reqwest::Method::DELETE, "/api/v1/cluster/members/abc", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{body}");
    let (status, body) =
        api.request(reqwest::Method::DELETE, &format!("/api/v1/cluster/members/{target}"), None).await;
    assert_eq!(status, 409, "the leader is not removed: {body}");

    let leaving = (0..3).find(|index| ids[*index] != target && *index != follower).expect("a third node");
    let leaving_id = ids[leaving];
    let (status, body) =
        api.request(reqwest::Method::DELETE, &format!("/api/v1/cluster/members/{leaving_id}"), None).await;
    assert_eq!(status, 202, "{body}");
    let staying: Vec<usize> = (0..3).filter(|index| *index != leaving).collect();
    let staying_ids: Vec<u64> = staying.iter().map(|index| ids[*index]).collect();
    wait_even(&cluster, &staying, &staying_ids).await;
    wait_for("the drained member out of the membership", || async {
        for index in &staying {
            let view = cluster.nodes[*index].cluster(&cluster.admin).await;
            let members = view["members"].as_array().expect("members");
            if members.iter().any(|member| member["id"] == leaving_id) || members.len() != 2 {
                return false;
            }
        }
        true
    })
    .await;
    let (status, _) = api.request(reqwest::Method::POST, "/api/v1/cluster/rebalance", None).await;
    assert_eq!(status, 202);
}

/// A remotecfg `GetConfig` sent to `node` itself with `token`: the HTTP status.
async fn poll_status(node: &Node, token: &str) -> Option<u16> {
    use prost::Message as _;
    let request = crate::support::poll_request("host-1", "");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let response = client
        .post(node.url("/collector.v1.CollectorService/GetConfig"))
        .header("content-type", "application/proto")
        .header("connect-protocol-version", "1")
        .bearer_auth(token)
        .body(request.encode_to_vec())
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_returns_once_the_owner_applied_it_or_its_lease_ended() {
    let cluster = Cluster::start_with_config(3, fast_failover_config()).await;
    let ids = ids(&cluster);
    let table = wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("leader");
    // A collector whose owner is a follower; the calls go through another node.
    let mut attempt = 0;
    let (collector_id, owner) = loop {
        attempt += 1;
        let collector_id = cluster.admin.create_collector(&format!("revoked-{attempt}")).await;
        let owner = table[&(linkmesh::model::slot_of(&collector_id) as u64)].0;
        if owner != leader {
            break (collector_id, owner);
        }
    };
    let owner_index = ids.iter().position(|id| *id == owner).expect("owner");
    let caller_index = (0..3).find(|index| *index != owner_index).expect("another node");
    let caller = api_at(&cluster, &cluster.nodes[caller_index]);

    // Minted through another node: the owner applied it before the call returned.
    let first = caller.mint_token(&collector_id).await;
    assert_eq!(poll_status(&cluster.nodes[owner_index], &first).await, Some(200));

    // The owner cannot answer: the rotation still returns (once the owner's lease has surely ended),
    // and the owner never accepts the old token afterwards.
    cluster.nodes[owner_index].signal("STOP");
    let second = caller.mint_token(&collector_id).await;
    cluster.nodes[owner_index].signal("CONT");
    assert_ne!(first, second);
    wait_for("the resumed owner refuses the rotated token", || async {
        match poll_status(&cluster.nodes[owner_index], &first).await {
            Some(200) => panic!("the old token was accepted after the rotation returned"),
            Some(401) => true,
            // 503 while it has no lease, or once the slot moved away (then it is no authority any more).
            _ => slot_table(&cluster, &cluster.nodes[owner_index])
                .await
                .is_some_and(|table| table[&(linkmesh::model::slot_of(&collector_id) as u64)].0 != owner),
        }
    })
    .await;
}
