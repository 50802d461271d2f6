//! `linkmesh simulate` against a real server: it provisions its collectors through the API, drives
//! them like Alloy, and its JSON summary and the API agree on what happened.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;

/// Runs `linkmesh simulate` to completion; returns its JSON summary and its progress output (stderr).
fn simulate(server: &Server, admin_token: &str, tokens_path: &Path, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let summary_path = dir.path().join("summary.json");
    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .arg("simulate")
        .args(["--url", &server.base_url])
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
    assert_eq!(summary["provisioning"]["calls"]["create_collector"]["ok"], 50, "{summary:#}");
    assert_eq!(summary["provisioning"]["calls"]["mint_token"]["ok"], 50, "{summary:#}");
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

    let listed = api.get("/api/v1/collectors?q=simtest-").await;
    let collectors = listed["collectors"].as_array().expect("collectors");
    assert_eq!(collectors.len(), 50);
    for collector in collectors {
        assert_eq!(collector["status"], "connected", "{collector}");
        assert_eq!(collector["host_id"], collector["name"], "{collector}");
    }
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
