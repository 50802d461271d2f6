//! The published OpAMP supervisor end to end (issue 18): collector-contrib's `opampsupervisor` v0.149.0
//! (built by `scripts/build-opampsupervisor.sh`) runs a real OpenTelemetry Collector (`tools/otelcol`:
//! upstream factories plus the `opamp` extension) against the real server, over WebSocket and plain HTTP.
//! Each step is checked the way an operator sees it, through the REST API: the collector's events and
//! status.
//!
//! The supervisor, its binaries (Go is a required test dependency: never skipped) and the REST waits
//! are in `support/supervisor.rs`, shared with the cluster's run behind a load balancer.

mod support;

use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use serde_json::{json, Value};
use support::supervisor::{
    build_tools, configure_something_to_run_here, events_of_type, free_port, opamp_collector, otlp_settings,
    send_a_metric, wait_for_events, wait_for_status, Supervisor, Transport, STEP_DEADLINE,
};
use support::{Api, Server, FAST_CONFIG, QUIET_OPAMP_CONFIG};

/// The heartbeat interval for the tests that watch liveness: the supervisor follows the offered interval,
/// so it turns `stale` three intervals after it stops. Short, but long enough that a loaded machine does
/// not miss three in a row.
const HEARTBEAT_CONFIG_LINE: &str = "opamp_heartbeat_interval = \"2s\"\n";

/// A server, an `opamp` collector with `sources` OTLP sources, and a supervisor running it: the
/// collector's first config applied and its status `connected`. A test binds every field (the server
/// too, as `server: _server`: a field left to `..` is dropped, and the server stopped, at once).
struct Supervised {
    supervisor: Supervisor,
    api: Api,
    collector_id: String,
    server: Server,
}

impl Supervised {
    async fn start(config: &str, transport: Transport, name: &str, sources: usize) -> Supervised {
        build_tools();
        let server = Server::start_with_config(config);
        let api = Api::admin(&server).await;
        let (collector_id, token) = opamp_collector(&api, name).await;
        configure_something_to_run_here(&api, &collector_id, sources).await;
        let supervisor = Supervisor::start(&server.base_url, transport, &token);
        wait_for_events(&api, &collector_id, "config_applied", 1).await;
        wait_for_status(&api, &collector_id, "connected").await;
        Supervised { supervisor, api, collector_id, server }
    }
}

/// The whole life of a collector under the supervisor, over WebSocket: it connects and runs the config
/// linkmesh pushes; a change is applied; a config its collector cannot run (an OTLP port another
/// process holds) is reported as `config_failed` with the supervisor's message; the fix is applied;
/// and SIGINT says goodbye, so the collector is `offline` at once.
#[tokio::test]
async fn the_supervisor_over_websocket_applies_changes_reports_a_failure_and_says_goodbye() {
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(QUIET_OPAMP_CONFIG, Transport::WebSocket, "otel-supervised", 1).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["local_attributes"]["service.name"], "linkmesh-otelcol", "{collector}");
    assert_eq!(collector["config"]["remote_status"], "applied", "{collector}");
    assert_eq!(supervisor.collector_pids().len(), 1, "one collector runs");

    // A change, pushed at once (the server offers an hour between heartbeats).
    let more_port = free_port();
    api.create(
        &format!("{base}/sources"),
        json!({"name": "more", "type": "otlp", "settings": otlp_settings(more_port)}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;
    let reported = support::wait_until(STEP_DEADLINE, || async {
        let collector = api.collector(&collector_id).await;
        collector["config"]["effective_config"]
            .as_str()
            .is_some_and(|effective| effective.contains(&format!("127.0.0.1:{more_port}")))
    })
    .await;
    assert!(
        reported,
        "the effective config names the new source's port: {}",
        api.collector(&collector_id).await
    );

    // A failure only the host sees: the OTLP port is taken, so the collector exits at start.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let busy = api
        .create(
            &format!("{base}/sources"),
            json!({"name": "busy", "type": "otlp", "settings": otlp_settings(taken_port)}),
        )
        .await;
    let failed = wait_for_events(&api, &collector_id, "config_failed", 1).await;
    let message = failed[0]["message"].as_str().expect("message");
    assert!(
        message.contains("Agent exited unexpectedly with exit code 1 while applying configuration"),
        "the supervisor's own words: {message}"
    );
    let collector = wait_for_status(&api, &collector_id, "degraded").await;
    assert_eq!(collector["config"]["remote_status"], "failed", "{collector}");
    // The collector's reason stays on the host.
    let agent_log = std::fs::read_to_string(supervisor.storage().join("agent.log")).unwrap_or_default();
    assert!(agent_log.contains("address already in use"), "the collector's log says why");

    // Fixed: the source moves to a free port.
    let busy_path = format!("{base}/sources/{}", busy["id"].as_str().expect("id"));
    let (status, body) = api
        .request(
            reqwest::Method::PUT,
            &busy_path,
            Some(json!({"name": "busy", "type": "otlp", "settings": otlp_settings(free_port())})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for_events(&api, &collector_id, "config_applied", 3).await;
    let collector = wait_for_status(&api, &collector_id, "connected").await;
    assert_eq!(collector["config"]["remote_status"], "applied", "{collector}");
    drop(taken);

    // SIGINT: the supervisor stops its collector and says goodbye.
    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "the supervisor exits cleanly on SIGINT: {exit}");
    assert_eq!(supervisor.collector_pids(), Vec::<u32>::new(), "its collector stopped with it");
    wait_for_status(&api, &collector_id, "offline").await;
    // The status is read from the collector's actor; its events are written a moment later.
    wait_for_events(&api, &collector_id, "unregistered", 1).await;
}

/// SIGTERM kills the supervisor on the spot: no goodbye, and its collector keeps running as an orphan.
/// linkmesh learns of it from the heartbeats that stop: `stale` after three offered intervals.
#[tokio::test]
async fn a_supervisor_killed_with_sigterm_turns_stale_and_leaves_its_collector_running() {
    let config = format!("{FAST_CONFIG}{HEARTBEAT_CONFIG_LINE}");
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(&config, Transport::WebSocket, "otel-sigterm", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["expected_poll_interval_seconds"], 2, "the offered heartbeat is kept: {collector}");

    let exit = supervisor.stop_with("TERM").await;
    assert_eq!(exit.signal(), Some(15), "SIGTERM is not handled: the supervisor dies of it ({exit})");
    assert_eq!(supervisor.collector_pids().len(), 1, "the collector outlives its supervisor");
    wait_for_status(&api, &collector_id, "stale").await;
    assert!(events_of_type(&api, &collector_id, "unregistered").await.is_empty(), "no goodbye was said");

    supervisor.kill_collectors().await;
    assert!(supervisor.collector_pids().is_empty());
}

/// OpAMP's plain-HTTP transport (an `http://` endpoint): the supervisor polls, gets its config in an
/// answer, applies it, and a change reaches it at its next poll (the offered heartbeat interval).
#[tokio::test]
async fn the_supervisor_over_plain_http_applies_its_config_and_a_change() {
    let config = format!("{FAST_CONFIG}{HEARTBEAT_CONFIG_LINE}");
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(&config, Transport::PlainHttp, "otel-http", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["local_attributes"]["service.name"], "linkmesh-otelcol", "{collector}");

    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "more", "type": "otlp", "settings": otlp_settings(free_port())}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;

    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "the supervisor exits cleanly on SIGINT: {exit}");
    assert_eq!(supervisor.collector_pids(), Vec::<u32>::new(), "its collector stopped with it");
}

/// A supervisor stopped with SIGINT right after it restarted its collector (a config change) sends its
/// goodbye behind two bursts of health reports (one per component state change), well past the
/// collector's call bucket (`poll_burst` 10, 2 per second); the collector must still turn `offline`.
/// Refused, those messages were lost (opamp-go never resends one); held for the bucket, the goodbye
/// came after opamp-go had closed the connection, 5 s after sending it (in 2 of 4 runs of this test,
/// and in 4 of 5 runs of the WebSocket flow test, before status, health and goodbye messages went
/// through).
#[tokio::test]
async fn a_supervisor_goodbye_after_a_burst_of_health_reports_is_not_refused() {
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(QUIET_OPAMP_CONFIG, Transport::WebSocket, "otel-goodbye", 3).await;
    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "one-more", "type": "otlp", "settings": otlp_settings(free_port())}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;

    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "{exit}");
    wait_for_status(&api, &collector_id, "offline").await;
}

/// Enrollment with the real supervisor, run with the `supervisor.yaml` linkmesh renders for the
/// enrollment token (only the collector's path and the storage directory changed): the token gets the
/// agent a collector of its own (named from its description, with the token's labels, so fleet-wide items
/// selected by them give it a config at once), offered its own-metrics destination; a destination its
/// collector's build lacks (this build has no Kafka exporter, and the supervisor reports its available
/// components) is refused before it is offered, naming the component, and the collector keeps running
/// the config it has. Its components reach linkmesh as `tests/fixtures/opamp/` lists them.
#[tokio::test]
async fn a_supervisor_enrolls_with_an_enrollment_token_and_is_never_offered_what_its_build_lacks() {
    build_tools();
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    support::wait_for_level(&api, 4).await;
    let selector = "fleet=supervised";
    let receiver_http_port = free_port();
    let settings = json!({
        "grpc_endpoint": format!("127.0.0.1:{}", free_port()),
        "http_endpoint": format!("127.0.0.1:{receiver_http_port}"),
    });
    api.create(
        "/api/v1/sources",
        json!({"selector": selector, "name": "apps", "type": "otlp", "settings": settings}),
    )
    .await;
    let local = api
        .create("/api/v1/destinations", json!({"selector": selector, "name": "local", "type": "debug"}))
        .await;
    let route = api
        .create(
            "/api/v1/routes",
            json!({"selector": selector, "name": "all", "destination_ids": [local["id"]]}),
        )
        .await;
    let created = api.create("/api/v1/enrollment-tokens", json!({"labels": {"fleet": "supervised"}})).await;
    let rendered = created["supervisor_config"].as_str().expect("a rendered supervisor.yaml");

    let mut supervisor = Supervisor::start_rendered(rendered);
    let enrolled = support::wait_until(STEP_DEADLINE, || async {
        api.get("/api/v1/collectors?mode=opamp").await["collectors"]
            .as_array()
            .is_some_and(|list| list.len() == 1)
    })
    .await;
    assert!(enrolled, "no collector was enrolled");
    let collector = api.get("/api/v1/collectors?mode=opamp").await["collectors"][0].clone();
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    assert!(
        collector["name"].as_str().is_some_and(|name| name.starts_with("linkmesh-otelcol@")),
        "{collector}"
    );
    assert_eq!(collector["labels"], json!({"fleet": "supervised"}));
    wait_for_events(&api, &collector_id, "enrolled", 1).await;
    wait_for_events(&api, &collector_id, "config_applied", 1).await;
    wait_for_status(&api, &collector_id, "connected").await;

    // Offered once the config applied, its own metrics light up the topology as data flows.
    wait_for_events(&api, &collector_id, "own_metrics_offered", 1).await;
    let receiver = support::wait_until(STEP_DEADLINE, || async {
        send_a_metric(receiver_http_port).await;
        let topology = api.get(&format!("/api/v1/collectors/{collector_id}/topology")).await;
        topology["nodes"].as_array().is_some_and(|nodes| {
            nodes.iter().any(|node| {
                node["kind"] == "source"
                    && node["label"] == "apps"
                    && node["in_rate"].as_f64().is_some_and(|rate| rate > 0.0)
                    && node["in_rate"].as_f64().is_some_and(|rate| rate > 0.0)
            })
        })
    })
    .await;
    let topology = api.get(&format!("/api/v1/collectors/{collector_id}/topology")).await;
    assert!(receiver, "the collector's own metrics never showed its receiver's throughput: {topology}");
    wait_for_events(&api, &collector_id, "own_metrics_first_seen", 1).await;
    assert_eq!(
        events_of_type(&api, &collector_id, "config_failed").await.len(),
        0,
        "the own-metrics offer restarted the collector without a failure"
    );

    // What its build has reaches linkmesh as the report names it (otlp_grpc, file_log, …).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opamp/supervisor-v0.149-available-components.json");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("fixture JSON");
    let listed = support::wait_until(STEP_DEADLINE, || async {
        !api.collector(&collector_id).await["opamp"]["available_components"].is_null()
    })
    .await;
    let reported = api.collector(&collector_id).await;
    assert!(listed, "the agent's components never reached linkmesh: {reported}");
    assert_eq!(reported["opamp"]["available_components"], expected, "{reported}");

    let kafka = api
        .create(
            "/api/v1/destinations",
            json!({"selector": selector, "name": "bus", "type": "kafka",
                   "settings": {"brokers": ["127.0.0.1:9"], "topic": "t"}}),
        )
        .await;
    let path = format!("/api/v1/routes/{}", route["id"].as_str().expect("id"));
    let body = json!({"selector": selector, "name": "all", "destination_ids": [local["id"], kafka["id"]]});
    let (status, reply) = api.request(reqwest::Method::PUT, &path, Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    let failed = wait_for_events(&api, &collector_id, "config_failed", 1).await;
    let message = failed[0]["message"].as_str().expect("message");
    assert!(message.contains("exporters kafka"), "{message}");
    let still = api.collector(&collector_id).await;
    assert_eq!(still["status"], "connected", "{still}");
    assert_eq!(
        events_of_type(&api, &collector_id, "config_applied").await.len(),
        1,
        "never offered, never applied"
    );
    supervisor.stop_with("INT").await;
    wait_for_status(&api, &collector_id, "offline").await;
}
