//! `linkmesh simulate` against real servers: it provisions its collectors through the API, drives
//! them like Alloy, and its JSON summary and the API agree on what happened. With several `--url`s it
//! spreads every call over them and reports each node's figures.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::*;

/// Runs `linkmesh simulate` to completion; returns its JSON summary and its progress output (stderr).
fn simulate(server: &Server, admin_token: &str, tokens_path: &Path, extra: &[&str]) -> (Value, String) {
    simulate_nodes(&[server.base_url.as_str()], server, admin_token, tokens_path, extra)
}

/// `linkmesh simulate` with one `--url` per entry of `urls`; `server`'s log is shown on failure.
fn simulate_nodes(
    urls: &[&str],
    server: &Server,
    admin_token: &str,
    tokens_path: &Path,
    extra: &[&str],
) -> (Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let summary_path = dir.path().join("summary.json");
    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .arg("simulate")
        .args(urls.iter().flat_map(|url| ["--url", url]))
        .args(["--admin-token", admin_token])
        .args(["--tokens-file", tokens_path.to_str().expect("utf-8 path")])
        .args(["--summary-json", summary_path.to_str().expect("utf-8 path")])
        .args(["--progress-interval", "1s", "--no-stdout-summary"])
        .args(extra)
        .env_remove("LINKMESH_ADMIN_PASSWORD")
        .output()
        .expect("run linkmesh simulate");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "simulate failed: {stderr}\nserver log:\n{}", server.log());
    let summary = std::fs::read_to_string(&summary_path).expect("summary written");
    (serde_json::from_str(&summary).expect("summary is JSON"), stderr)
}

#[tokio::test]
async fn simulated_fleet_registers_polls_and_shows_connected() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, progress) = simulate(
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &[
            "--collectors",
            "50",
            "--name-prefix",
            "simtest-",
            "--duration",
            "4s",
            "--poll-interval",
            "1s",
            "--metrics-interval",
            "1s",
        ],
    );

    assert_eq!(summary["mode"], "open_loop");
    assert_eq!(summary["collectors"], 50);
    // One `POST /collectors:batch` creates the 50 and mints their tokens.
    assert_eq!(summary["provisioning"]["calls"]["create_batch"]["ok"], 1, "{summary:#}");
    assert!(summary["provisioning"]["calls"].get("create_collector").is_none(), "{summary:#}");
    assert!(summary["provisioning"]["calls"].get("mint_token").is_none(), "{summary:#}");
    let run = &summary["run"];
    assert_eq!(run["collectors_up"], 50, "{summary:#}");
    let polls = &run["calls"]["get_config"];
    assert_eq!(polls["errors"], 0, "{summary:#}");
    // Each collector: a first poll that delivers the config, the status report, then ticks.
    assert_eq!(polls["changed"], 50, "{summary:#}");
    assert!(polls["not_modified"].as_u64().expect("count") >= 50, "{summary:#}");
    assert!(polls["latency"]["p99_ms"].as_f64().is_some(), "{summary:#}");
    let registers = &run["calls"]["register"];
    assert_eq!(registers["ok"], 100, "Alloy registers twice per start: {summary:#}");
    assert!(run["calls"]["own_metrics"]["requests"].as_u64().expect("pushes attempted") > 0);
    assert!(progress.contains("polls"), "progress lines on stderr: {progress}");
    // The server's own count (`/metrics`, read with the service-account token): each collector came up
    // once, and nothing flapped.
    assert_eq!(
        summary["run_server"]["status_changes"],
        json!({ "awaiting_connection -> connected": 50 }),
        "{summary:#}"
    );

    let listed = api.get("/api/v1/collectors?q=simtest-").await;
    let collectors = listed["collectors"].as_array().expect("collectors");
    assert_eq!(collectors.len(), 50);
    for collector in collectors {
        assert_eq!(collector["status"], "connected", "{collector}");
        assert_eq!(collector["host_id"], collector["name"], "{collector}");
    }
}

#[tokio::test]
async fn a_warm_up_keeps_the_start_sequence_out_of_the_measured_phase() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, progress) = simulate(
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &[
            "--collectors",
            "20",
            "--name-prefix",
            "warm-",
            "--duration",
            "6s",
            "--warm-up",
            "3s",
            "--poll-interval",
            "1s",
            "--metrics-interval",
            "0s",
        ],
    );
    let warm_up = &summary["startup"];
    assert_eq!(
        warm_up["calls"]["get_config"]["changed"], 20,
        "every config delivered in the warm-up: {summary:#}"
    );
    assert_eq!(warm_up["calls"]["register"]["ok"], 40, "{summary:#}");
    let run = &summary["run"];
    assert_eq!(run["collectors_up"], 20, "{summary:#}");
    assert!(run["calls"].get("register").is_none(), "no start sequence in the measured phase: {summary:#}");
    let polls = &run["calls"]["get_config"];
    assert_eq!(polls["changed"].as_u64().unwrap_or(0), 0, "{summary:#}");
    assert_eq!(polls["errors"], 0, "{summary:#}");
    assert!(polls["not_modified"].as_u64().expect("count") >= 40, "a poll a second for 3 s: {summary:#}");
    let elapsed = run["elapsed_s"].as_f64().expect("elapsed");
    // 3 s of a 6 s run: well short of the whole run even on a loaded machine.
    assert!((2.5..5.5).contains(&elapsed), "the measured phase is what follows the warm-up: {summary:#}");
    assert_eq!(
        summary["run_server"]["status_changes"],
        json!({}),
        "a steady fleet changes no status: {summary:#}"
    );
    let answered = summary["run_server"]["get_config_answered"].as_u64().expect("answered");
    // The servers' count and the simulator's agree but for the calls in flight when the counters are
    // read: at most one per collector.
    let polled = polls["ok"].as_u64().expect("ok");
    assert!(answered.abs_diff(polled) <= 20, "server {answered}, simulator {polled}: {summary:#}");
    assert!(summary["run_server"]["get_config_p99_le_ms"].as_f64().is_some(), "{summary:#}");
    assert!(progress.contains("warm-up"), "{progress}");
    assert!(progress.contains("status changes during the run (the servers' count): none"), "{progress}");
}

#[tokio::test]
async fn tokens_file_is_reused_and_closed_loop_counts_rounds() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.tsv");
    let (provisioned, _) = simulate(
        &server,
        &api.token,
        &tokens,
        &["--collectors", "5", "--name-prefix", "cl-", "--provision-only"],
    );
    assert_eq!(provisioned["mode"], "provision_only");
    assert_eq!(std::fs::read_to_string(&tokens).expect("tokens file").lines().count(), 5);

    // No admin token this time: everything comes from the file.
    let (summary, _) = simulate(
        &server,
        "",
        &tokens,
        &[
            "--collectors",
            "5",
            "--name-prefix",
            "cl-",
            "--closed-loop",
            "--connections",
            "2",
            "--rounds",
            "3",
            "--duration",
            "30s",
        ],
    );
    assert!(summary["provisioning"].is_null(), "nothing provisioned: {summary:#}");
    assert_eq!(summary["startup"]["collectors_up"], 5, "{summary:#}");
    let polls = &summary["run"]["calls"]["get_config"];
    assert_eq!(polls["ok"], 15, "{summary:#}");
    assert_eq!(polls["not_modified"], 15, "{summary:#}");
}

#[tokio::test]
async fn the_flap_workload_changes_a_status_with_every_call_and_the_record_keeps_every_change() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, progress) = simulate(
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &[
            "--collectors",
            "10",
            "--name-prefix",
            "flap-",
            "--closed-loop",
            "--workload",
            "flap",
            "--connections",
            "2",
            "--rounds",
            "4",
            "--duration",
            "60s",
        ],
    );
    assert_eq!(summary["workload"], "flap");
    let calls = &summary["run"]["calls"];
    assert_eq!(calls["unregister"]["ok"], 20, "rounds 0 and 2 unregister: {summary:#}");
    assert_eq!(calls["get_config"]["ok"], 20, "rounds 1 and 3 poll: {summary:#}");
    let server_side = &summary["run_server"];
    assert_eq!(
        server_side["status_changes"],
        json!({ "connected -> offline": 20, "offline -> connected": 20 }),
        "{summary:#}"
    );
    // The writer merges a collector's updates within a flush interval: at least one update per
    // collector, at most one per change.
    let written = server_side["activity_updates_written"].as_u64().expect("written");
    assert!((10..=40).contains(&written), "{summary:#}");
    // Each write is one log entry. The two counters come from one scrape but not one instant: a
    // write can be in the commit index already and not yet counted by its writer when the
    // "before" figures are read (a start-up poll's status write), so the entries may trail by one.
    let writes = server_side["activity_writes"].as_u64().expect("writes");
    let entries = server_side["raft_entries_committed"].as_u64().expect("entries");
    assert!(writes >= 1 && entries + 1 >= writes, "{summary:#}");
    assert!(server_side["activity_drained_after_ms"].as_u64().is_some(), "{summary:#}");
    assert!(progress.contains("live updates written through Raft"), "{progress}");

    // What was written is what the API reads: every collector connected again, both goodbyes kept.
    let listed = api.get("/api/v1/collectors?q=flap-").await;
    let collectors = listed["collectors"].as_array().expect("collectors");
    assert_eq!(collectors.len(), 10);
    for collector in collectors {
        assert_eq!(collector["status"], "connected", "{collector}");
        let id = collector["id"].as_str().expect("id");
        let events = api.get(&format!("/api/v1/collectors/{id}/events?limit=100")).await;
        let goodbyes = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|event| event["type"] == "unregistered")
            .count();
        assert_eq!(goodbyes, 2, "{events:#}");
    }
}

/// The per-node entry of `url` in a phase of the summary.
fn node<'a>(phase: &'a Value, url: &str) -> &'a Value {
    phase["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|node| node["url"] == url))
        .unwrap_or_else(|| panic!("no figures for {url}: {phase:#}"))
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

#[tokio::test]
async fn calls_are_spread_over_every_node_and_counted_where_they_went() {
    // Two independent servers: collectors provisioned on `a` are unknown to `b`, which must refuse
    // their tokens (401, never retried elsewhere), so every poll's node shows in its outcome. Each
    // collector may poll 11 times within a quarter second here (10 rounds and its status report), one
    // more than the default burst: `a`'s bucket must not be what the test measures.
    let a =
        Server::start_with_config(&FAST_CONFIG.replace("[collectors]\n", "[collectors]\npoll_burst = 100\n"));
    let b = Server::start();
    let api = Api::admin(&a).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.tsv");
    simulate(
        &a,
        &api.token,
        &tokens,
        &["--collectors", "20", "--name-prefix", "spread-", "--provision-only"],
    );

    let (summary, table) = simulate_nodes(
        &[&a.base_url, &b.base_url],
        &a,
        "",
        &tokens,
        &[
            "--collectors",
            "20",
            "--name-prefix",
            "spread-",
            "--closed-loop",
            "--skip-startup",
            "--connections",
            "4",
            "--rounds",
            "10",
            "--duration",
            "60s",
        ],
    );
    let run = &summary["run"];
    let polls = &run["calls"]["get_config"];
    let at_a = &node(run, &a.base_url)["calls"]["get_config"];
    let at_b = &node(run, &b.base_url)["calls"]["get_config"];
    // 200 calls (plus status reports) picked at random: both nodes get some.
    assert!(count(&at_a["requests"]) > 0 && count(&at_b["requests"]) > 0, "{summary:#}");
    assert_eq!(count(&at_a["errors"]), 0, "a knows every token: {summary:#}");
    assert_eq!(at_b["ok"], 0, "b knows none: {summary:#}");
    assert_eq!(node(run, &b.base_url)["errors"]["get_config:http_401"], at_b["requests"], "{summary:#}");
    assert_eq!(
        count(&polls["requests"]),
        count(&at_a["requests"]) + count(&at_b["requests"]),
        "a 401 is an answer: each poll went to exactly one node: {summary:#}"
    );
    assert_eq!(polls["ok"], at_a["ok"], "{summary:#}");
    assert_eq!(polls["errors"], at_b["errors"], "{summary:#}");
    assert!(polls.get("retried").is_none(), "nothing retried: {summary:#}");
    assert!(at_a["latency"]["p99_ms"].as_f64().is_some(), "{summary:#}");
    assert!(table.contains(&a.base_url) && table.contains(&b.base_url), "table on stderr: {table}");
    assert!(table.contains(&format!("errors at {}: get_config:http_401", b.base_url)), "{table}");
}

#[tokio::test]
async fn a_refused_node_counts_its_errors_and_every_call_is_retried_on_another() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    // A port nothing listens on: connections to it are refused.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, table) = simulate_nodes(
        &[&server.base_url, &dead],
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &[
            "--collectors",
            "10",
            "--name-prefix",
            "retry-",
            // One call per collector and token, so that some of them reach the dead node.
            "--provision-batch",
            "1",
            "--closed-loop",
            "--connections",
            "2",
            "--rounds",
            "5",
            "--duration",
            "60s",
        ],
    );
    for phase in ["provisioning", "startup", "run"] {
        let phase = &summary[phase];
        assert_eq!(phase["errors"], serde_json::json!({}), "every call succeeded on retry: {summary:#}");
        let at_dead = node(phase, &dead);
        let mut refused = 0;
        for (kind, call) in phase["calls"].as_object().expect("calls") {
            let at_dead_calls = &at_dead["calls"][kind.as_str()];
            assert_eq!(at_dead_calls["ok"].as_u64().unwrap_or(0), 0, "{summary:#}");
            assert_eq!(
                count(&call["retried"]),
                count(&at_dead_calls["requests"]),
                "each refused call was retried once on the live node: {summary:#}"
            );
            assert_eq!(
                count(&node(phase, &server.base_url)["calls"][kind.as_str()]["ok"]),
                count(&call["ok"]),
                "{summary:#}"
            );
            refused += count(&at_dead_calls["requests"]);
        }
        assert!(refused > 0, "some calls went to the dead node: {summary:#}");
        let reasons: Vec<&String> = at_dead["errors"].as_object().expect("errors").keys().collect();
        assert!(reasons.iter().all(|reason| reason.ends_with(":connect")), "{summary:#}");
    }
    assert_eq!(summary["provisioning"]["calls"]["mint_token"]["ok"], 10, "{summary:#}");
    assert_eq!(summary["run"]["calls"]["get_config"]["ok"], 50, "{summary:#}");
    assert!(table.contains("legend: each call goes to a node picked at random"), "{table}");
}

/// A running `linkmesh simulate`, stopped when dropped (also when the test fails).
struct Running {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipeline(level: &str) -> Value {
    serde_json::json!({"name": "levels", "signals": ["logs"],
                       "steps": [{"type": "attributes", "settings": {"insert": {"level": level}}}]})
}

#[tokio::test]
async fn a_collector_fails_to_load_a_config_with_the_marker_and_applies_the_next_one() {
    let server = Server::start_with_config(FAST_CONFIG);
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens.tsv");
    simulate(
        &server,
        &api.token,
        &tokens,
        &["--collectors", "1", "--name-prefix", "fails-", "--provision-only"],
    );
    let listed = api.get("/api/v1/collectors?q=fails-").await;
    let id = listed["collectors"][0]["id"].as_str().expect("provisioned").to_owned();

    // A pipeline whose level the marker can go into.
    let pipeline_id =
        api.create("/api/v1/pipelines", pipeline("v1")).await["id"].as_str().expect("id").to_owned();
    let base = format!("/api/v1/collectors/{id}");
    api.create(&format!("{base}/sources"), serde_json::json!({"name": "in", "type": "otlp"})).await;
    let destination = api
        .create(
            &format!("{base}/destinations"),
            serde_json::json!({"name": "out", "type": "otlp_http", "settings": {"endpoint": "https://otlp.sim.example"}}),
        )
        .await;
    api.create(
        &format!("{base}/routes"),
        serde_json::json!({"name": "all", "pipeline_id": pipeline_id, "destination_ids": [destination["id"]]}),
    )
    .await;

    let log = dir.path().join("simulate.log");
    let running = Running {
        child: Command::new(env!("CARGO_BIN_EXE_linkmesh"))
            .arg("simulate")
            .args(["--url", &server.base_url, "--tokens-file", tokens.to_str().expect("utf-8 path")])
            .args(["--collectors", "1", "--name-prefix", "fails-", "--duration", "600s"])
            .args(["--poll-interval", "1s", "--metrics-interval", "0s", "--quiet", "--no-stdout-summary"])
            .args(["--fail-when-contains", "fail-me"])
            .env_remove("LINKMESH_ADMIN_PASSWORD")
            .env_remove("LINKMESH_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start linkmesh simulate"),
        log,
    };
    let config_when = |wanted: &'static str, level: &'static str| {
        let (api, id) = (&api, &id);
        async move {
            let collector = api.collector(id).await;
            let config = &collector["config"];
            config["remote_status"] == wanted
                && config["effective_config"]
                    .as_str()
                    .is_some_and(|effective| effective.contains(&format!("\"{level}\"")))
        }
    };
    let applied = wait_until(WAIT_DEADLINE, || config_when("applied", "v1")).await;
    assert!(applied, "v1 never applied: {}\nsimulate: {}", api.collector(&id).await, running.log());

    // The marker in the config: FAILED with Alloy's kind of error, v1 still running.
    let path = format!("/api/v1/pipelines/{pipeline_id}");
    let (status, body) = api.request(reqwest::Method::PUT, &path, Some(pipeline("fail-me"))).await;
    assert_eq!(status, 200, "{body}");
    let failed = wait_until(WAIT_DEADLINE, || config_when("failed", "v1")).await;
    let collector = api.collector(&id).await;
    assert!(failed, "never failed: {collector}\nsimulate: {}", running.log());
    let error = collector["config"]["remote_error"].as_str().expect("the error is shown");
    assert!(error.contains(": Failed to build component: building component: otelcol.processor."), "{error}");
    assert!(error.ends_with("simulated failure: the config contains \"fail-me\""), "{error}");
    eprintln!("the error shown: {error}");

    // Rolled back: v1 is what runs, so APPLIED again without a reload.
    let rollout = api.get("/api/v1/rollouts?limit=1").await;
    let rollout_id = rollout["rollouts"][0]["id"].as_str().expect("the change's rollout").to_owned();
    let (status, body) =
        api.request(reqwest::Method::POST, &format!("/api/v1/rollouts/{rollout_id}/rollback"), None).await;
    assert_eq!(status, 200, "{body}");
    let rolled_back = wait_until(WAIT_DEADLINE, || config_when("applied", "v1")).await;
    let collector = api.collector(&id).await;
    assert!(rolled_back, "never applied after the rollback: {collector}\nsimulate: {}", running.log());
    assert!(collector["config"]["remote_error"].is_null(), "{collector}");
    let rollback_done = wait_until(WAIT_DEADLINE, || async {
        api.get("/api/v1/rollouts?limit=1").await["rollouts"][0]["state"] == "done"
    })
    .await;
    assert!(rollback_done, "{}", api.get("/api/v1/rollouts?limit=1").await);

    // A new config without the marker loads: APPLIED, its effective config shown.
    let (status, body) = api.request(reqwest::Method::PUT, &path, Some(pipeline("v3"))).await;
    assert_eq!(status, 200, "{body}");
    let reapplied = wait_until(WAIT_DEADLINE, || config_when("applied", "v3")).await;
    let collector = api.collector(&id).await;
    assert!(reapplied, "never applied again: {collector}\nsimulate: {}", running.log());
    assert!(collector["config"]["remote_error"].is_null(), "{collector}");
}

/// `--opamp-push`: its agents connect over WebSocket, and every one of them gets every fleet-wide
/// change (the server pushes it; the agents send nothing but acknowledgements). The API shows the
/// collectors it made and their configs applied.
#[tokio::test]
async fn the_opamp_push_mode_sees_every_change_reach_every_agent() {
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, _) = simulate(
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &["--opamp-push", "--collectors", "40", "--rounds", "2"],
    );
    assert_eq!(summary["mode"], "opamp_push");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 3, "two rounds and the total: {summary:#}");
    for round in rounds {
        assert_eq!(round["received"], round["agents"], "{summary:#}");
    }
    assert_eq!(rounds[2]["round"], 0);
    assert_eq!(rounds[2]["agents"], 80);
    assert!(rounds[2]["p99_ms"].as_f64().expect("a p99") > 0.0, "{summary:#}");

    let listed = api.get("/api/v1/collectors?selector=linkmesh-bench&limit=100").await;
    let collectors = listed["collectors"].as_array().expect("collectors");
    assert_eq!(collectors.len(), 40, "{listed:#}");
    let collector_id = collectors[0]["id"].as_str().expect("id");
    // The first config and one per round, each acknowledged.
    api.wait_for_event(collector_id, "config_applied", 3).await;
}

/// `--opamp-transport mixed`: half the agents post their messages over plain HTTP, polling at the
/// 1 s heartbeat interval the server offers, the rest hold a WebSocket. Every change reaches every
/// agent either way, and the server sees what a supervisor would report of each plain-HTTP agent:
/// its config APPLYING then APPLIED (the current version), the effective config it runs, its health,
/// and the own metrics it pushes once offered a destination.
#[tokio::test]
async fn plain_http_opamp_agents_apply_every_change_and_report_like_websocket_ones() {
    let server = Server::start_with_config(POLLING_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    wait_for_level(&api, 4).await; // config_applying and own_metrics_offered are recorded from level 4
    let dir = tempfile::tempdir().expect("temp dir");
    let (summary, _) = simulate(
        &server,
        &api.token,
        &dir.path().join("tokens.tsv"),
        &[
            "--opamp-push",
            "--opamp-transport",
            "mixed",
            "--collectors",
            "10",
            "--rounds",
            "2",
            "--metrics-interval",
            "1s",
        ],
    );
    assert_eq!(summary["opamp_transport"], "mixed", "{summary:#}");
    assert_eq!(summary["http_agents"], 5, "{summary:#}");
    assert_eq!(summary["websocket_agents"], 5, "{summary:#}");
    for round in summary["rounds"].as_array().expect("rounds") {
        assert_eq!(round["received"], round["agents"], "{summary:#}");
    }
    assert_eq!(summary["own_metrics_pushes"]["failed"], 0, "{summary:#}");
    assert!(summary["own_metrics_pushes"]["ok"].as_u64().expect("pushes") > 0, "{summary:#}");

    let listed = api.get("/api/v1/collectors?selector=linkmesh-bench&limit=100").await;
    let collectors = listed["collectors"].as_array().expect("collectors");
    assert_eq!(collectors.len(), 10, "{listed:#}");
    let mut http_agents = 0;
    for listed in collectors {
        let collector_id = listed["id"].as_str().expect("id");
        let collector = api.collector(collector_id).await;
        let capabilities = collector["opamp"]["capabilities"].as_array().expect("capabilities").clone();
        if !capabilities.contains(&json!("reports heartbeats")) {
            continue; // a WebSocket agent
        }
        http_agents += 1;
        // The first config and one per round: each APPLYING, then APPLIED.
        let events = api.wait_for_event(collector_id, "config_applied", 3).await;
        assert!(events.iter().filter(|kind| *kind == "config_applying").count() >= 3, "{events:?}");
        assert!(events.contains(&"own_metrics_offered".to_owned()), "{events:?}");
        let config = &collector["config"];
        assert_eq!(config["apply"]["state"], "applied", "{collector:#}");
        assert_eq!(config["apply"]["version"], config["version"], "the current version: {collector:#}");
        let effective = config["effective_config"].as_str().unwrap_or_default();
        assert!(effective.contains("push-2"), "the effective config is the last one offered: {collector:#}");
        assert_eq!(collector["opamp"]["health"]["healthy"], true, "{collector:#}");
        assert_eq!(collector["local_attributes"]["service.name"], "otelcol-contrib", "{collector:#}");
    }
    assert_eq!(http_agents, 5, "the plain-HTTP agents, told apart by their heartbeats");
}
