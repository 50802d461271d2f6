//! The published OpAMP supervisor (v0.149.0, running a real collector: `support/supervisor.rs`) behind a
//! load balancer in front of three nodes (`forwarder.rs`), through the loss of a node: promises 1, 2
//! and 7 of `cluster.md` with an agent linkmesh did not write.
//!
//! The agent first reaches a node that does not own its collector: its messages are answered by the
//! owner's actor one forwarded hop away, and changes made through a third node are pushed to it by the
//! node holding its WebSocket. Then a node is SIGKILLed:
//!
//! - **the node the agent is connected to**: the load balancer sends the agent's reconnection to a
//!   survivor, which forwards to the same owner;
//! - **the collector's owner**, while the agent stays connected to its edge node: the slots move to the
//!   survivors after `node_down_after`, the edge asks the new owner what to send, and the new owner,
//!   which never saw the agent's stream, has it report its full state (`ReportFullState`) at once;
//! - **the owner the agent is connected to** (the load balancer first moved the agent onto it): both at
//!   once, the agent's reconnection reaching a survivor before or after the slots moved.
//!
//! The agent's stream (`opamp/session.rs`) lives in the owner's actor, not on the node holding the
//! connection: a reconnection through another node to the same owner continues it, and only a new
//! owner asks for the full state.
//!
//! Either way the collector's state is whole again (description, health, the effective config), a
//! further change is applied, and SIGINT's goodbye takes it `offline`. The node lost is never the
//! leader: elections are `failover.rs`'s subject, and a write through the third node must not wait for
//! one here.

use serde_json::{json, Value};

use crate::failover::{fast_failover_config_on, ids, leader_of, wait_even};
use crate::forwarder::Forwarder;
use crate::harness::Cluster;
use crate::routing::{api_at, opamp_collector_owned_by};
use crate::support::supervisor::{
    build_tools, configure_something_to_run_here, free_port, otlp_settings, wait_for_events, wait_for_status,
    Supervisor, Transport, STEP_DEADLINE,
};
use crate::support::{self, Api, QUIET_OPAMP_CONFIG};

/// Which node is lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The node the agent's WebSocket goes to (not the owner).
    AgentsNode,
    /// The collector's owner, while the agent is connected to another node.
    Owner,
    /// The collector's owner, the agent's WebSocket having been moved there first (the load balancer
    /// cut its connection to the edge).
    OwnerTheAgentIsOn,
}

/// Adds an OTLP source on a free port through `api`; the port, which the collector's effective config
/// names once it runs the change.
async fn add_source(api: &Api, collector_id: &str, name: &str) -> u16 {
    let port = free_port();
    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": name, "type": "otlp", "settings": otlp_settings(port)}),
    )
    .await;
    port
}

/// Waits until the collector has `applied` `config_applied` events and reports running a config that
/// listens on `port`; returns the collector.
async fn wait_until_it_runs(api: &Api, collector_id: &str, applied: usize, port: u16) -> Value {
    wait_for_events(api, collector_id, "config_applied", applied).await;
    let listens = format!("127.0.0.1:{port}");
    let runs = support::wait_until(STEP_DEADLINE, || async {
        let collector = api.collector(collector_id).await;
        collector["config"]["effective_config"].as_str().is_some_and(|effective| effective.contains(&listens))
    })
    .await;
    let collector = api.collector(collector_id).await;
    assert!(runs, "the effective config never named {listens}: {collector}");
    collector
}

/// Waits until everything the agent reports is known again (a new owner learns it only from a full
/// report): its description, healthy status, capabilities and effective config (naming `port`), and
/// the collector `connected` with the config `applied`; returns the collector.
async fn wait_until_whole(api: &Api, collector_id: &str, port: u16) -> Value {
    let listens = format!("127.0.0.1:{port}");
    let whole = |collector: &Value| {
        collector["status"] == "connected"
            && collector["config"]["remote_status"] == "applied"
            && collector["local_attributes"]["service.name"] == "linkmesh-otelcol"
            && collector["opamp"]["health"]["healthy"] == true
            && collector["opamp"]["capabilities"].as_array().is_some_and(|names| !names.is_empty())
            && collector["config"]["effective_config"]
                .as_str()
                .is_some_and(|effective| effective.contains(&listens))
    };
    let reached =
        support::wait_until(STEP_DEADLINE, || async { whole(&api.collector(collector_id).await) }).await;
    let collector = api.collector(collector_id).await;
    assert!(reached, "the collector's state never came back whole: {collector}");
    collector
}

/// The whole run for one lost node (see the module doc).
async fn supervisor_behind_a_load_balancer_survives(lost: Lost) {
    build_tools();
    let mut cluster = Cluster::start_with_config(3, fast_failover_config_on(QUIET_OPAMP_CONFIG)).await;
    let ids = ids(&cluster);
    let table = wait_even(&cluster, &[0, 1, 2], &ids).await;
    let leader = leader_of(&cluster, &cluster.nodes[0]).await.expect("a leader");
    let third = ids.iter().position(|id| *id == leader).expect("the leader is a member");
    let followers: Vec<usize> = (0..3).filter(|index| *index != third).collect();
    let (edge, owner) = match lost {
        Lost::AgentsNode => (followers[0], followers[1]),
        Lost::Owner | Lost::OwnerTheAgentIsOn => (followers[1], followers[0]),
    };
    let on_edge = api_at(&cluster, &cluster.nodes[edge]);
    let on_third = api_at(&cluster, &cluster.nodes[third]);

    let collector_id = opamp_collector_owned_by(&on_edge, &table, ids[owner], "otel-balanced").await;
    configure_something_to_run_here(&on_edge, &collector_id, 1).await;
    let token = on_edge.mint_token(&collector_id).await;
    let forwarder = Forwarder::start(&cluster.nodes[edge].http_addr).await;
    let mut supervisor = Supervisor::start(&forwarder.url(), Transport::WebSocket, &token);
    wait_for_events(&on_third, &collector_id, "config_applied", 1).await;
    let collector = wait_for_status(&on_third, &collector_id, "connected").await;
    assert_eq!(collector["owner_node"], ids[owner], "{collector}");
    assert_eq!(collector["local_attributes"]["service.name"], "linkmesh-otelcol", "{collector}");
    assert!(forwarder.dialled(&cluster.nodes[edge].http_addr) >= 1, "the agent came in through its edge");

    // A change through the third node, pushed by the edge to the agent at once (an hour between
    // heartbeats: the agent sends nothing it is not asked for).
    let before_loss = add_source(&on_third, &collector_id, "before-loss").await;
    wait_until_it_runs(&on_third, &collector_id, 2, before_loss).await;

    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.http_addr.clone()).collect();
    let reconnected_to = |index: usize| {
        let addr = &addrs[index];
        let forwarder = &forwarder;
        async move {
            let redialled =
                support::wait_until(STEP_DEADLINE, || async { forwarder.dialled(addr) > 0 }).await;
            assert!(redialled, "the agent never reconnected through the load balancer to {addr}");
        }
    };
    if lost == Lost::OwnerTheAgentIsOn {
        // The agent's next connection goes to the owner; its messages there are the same stream.
        let seen = on_third.collector(&collector_id).await["last_seen_at"].clone();
        forwarder.point_at(&addrs[owner]);
        forwarder.cut();
        reconnected_to(owner).await;
        let heard = support::wait_until(STEP_DEADLINE, || async {
            on_third.collector(&collector_id).await["last_seen_at"] != seen
        })
        .await;
        assert!(heard, "the owner never heard the reconnected agent");
    }
    let killed = match lost {
        Lost::AgentsNode => {
            cluster.nodes[edge].kill();
            forwarder.point_at(&addrs[third]);
            reconnected_to(third).await;
            edge
        }
        Lost::Owner | Lost::OwnerTheAgentIsOn => {
            cluster.nodes[owner].kill();
            if lost == Lost::OwnerTheAgentIsOn {
                forwarder.point_at(&addrs[third]);
                reconnected_to(third).await;
            }
            wait_even(&cluster, &[edge, third], &[ids[edge], ids[third]]).await;
            // The new owner never saw the agent's stream, and the agent (an hour between heartbeats)
            // says nothing it is not asked for: the node holding its connection asks the new owner
            // what to send once the slots moved, and the new owner has it report its full state, so
            // the collector is whole again before anything changes.
            let collector = wait_until_whole(&on_third, &collector_id, before_loss).await;
            assert_ne!(collector["owner_node"], ids[owner], "{collector}");
            owner
        }
    };

    // A change after the loss: with the owner lost, the node holding the agent's connection asks the
    // new owner what to push, and the new owner first has the agent report its full state.
    let after_loss = add_source(&on_third, &collector_id, "after-loss").await;
    wait_until_it_runs(&on_third, &collector_id, 3, after_loss).await;
    let collector = wait_until_whole(&on_third, &collector_id, after_loss).await;
    match lost {
        Lost::AgentsNode => assert_eq!(collector["owner_node"], ids[owner], "{collector}"),
        Lost::Owner | Lost::OwnerTheAgentIsOn => {
            assert_ne!(collector["owner_node"], ids[owner], "{collector}")
        }
    }
    // The same on the other survivor (its live fields from the owner too).
    let other = (0..3).find(|index| *index != killed && *index != third).expect("another survivor");
    let seen_there = api_at(&cluster, &cluster.nodes[other]).collector(&collector_id).await;
    assert_eq!(seen_there["status"], "connected", "{seen_there}");
    assert_eq!(seen_there["opamp"]["health"]["healthy"], true, "{seen_there}");

    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "the supervisor exits cleanly on SIGINT: {exit}");
    wait_for_status(&on_third, &collector_id, "offline").await;
    wait_for_events(&on_third, &collector_id, "unregistered", 1).await;
}

/// The node holding the agent's WebSocket (not the owner) is SIGKILLed and the load balancer sends the
/// agent to a survivor: the agent reconnects there, its collector is whole, a change is applied, and
/// its goodbye takes it offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_behind_a_load_balancer_reconnects_to_a_survivor_when_its_node_is_killed() {
    supervisor_behind_a_load_balancer_survives(Lost::AgentsNode).await;
}

/// The collector's owner is SIGKILLed while the agent stays connected to another node: the slots move,
/// the new owner has the agent report its full state, a change is applied, and its goodbye takes it
/// offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_behind_a_load_balancer_converges_with_a_new_owner_when_the_owner_is_killed() {
    supervisor_behind_a_load_balancer_survives(Lost::Owner).await;
}

/// The agent's WebSocket is moved to the collector's owner (the load balancer cuts it), and the owner
/// is SIGKILLed: the agent reconnects to a survivor, which answers for the new owner once the slots
/// moved; the new owner has the agent report its full state, a change is applied, and its goodbye takes
/// it offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_behind_a_load_balancer_converges_when_the_owner_it_is_connected_to_is_killed() {
    supervisor_behind_a_load_balancer_survives(Lost::OwnerTheAgentIsOn).await;
}
