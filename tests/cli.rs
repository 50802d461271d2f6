//! The client subcommands against a running server, as scripts use them (`--output json`).

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

fn linkmesh(server: &Server, token: &str, args: &[&str]) -> (bool, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(args)
        .env("LINKMESH_URL", &server.base_url)
        .env("LINKMESH_TOKEN", token)
        .output()
        .expect("run linkmesh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.success(), value, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn cli_manages_a_collector_end_to_end() {
    let server = Server::start();
    let api = Api::admin(&server).await;

    let (ok, created, stderr) =
        linkmesh(&server, &api.token, &["collectors", "create", "cli-edge", "--output", "json"]);
    assert!(ok, "{stderr}");
    let collector_id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["status"], "awaiting_connection");

    let (ok, minted, stderr) =
        linkmesh(&server, &api.token, &["collectors", "token", &collector_id, "--output", "json"]);
    assert!(ok, "{stderr}");
    let token = minted["token"].as_str().expect("token");
    assert!(minted["config_alloy"].as_str().expect("config").contains(token));
    get_config(&server, token, &poll_request("cli-host", "")).await;
    api.wait_for_status(&collector_id, "connected").await;

    let (ok, listed, _) =
        linkmesh(&server, &api.token, &["collectors", "list", "--status", "connected", "--output", "json"]);
    assert!(ok);
    assert_eq!(listed["collectors"][0]["id"], collector_id.as_str());
    let (ok, fetched, _) =
        linkmesh(&server, &api.token, &["collectors", "get", &collector_id, "--output", "json"]);
    assert!(ok);
    assert_eq!(fetched["host_id"], "cli-host");
    let (ok, config, _) = linkmesh(&server, &api.token, &["config", &collector_id, "--output", "json"]);
    assert!(ok);
    assert_eq!(config["format"], "alloy");
    api.wait_for_event(&collector_id, "config_delivered", 1).await;
    let (ok, events, _) = linkmesh(&server, &api.token, &["events", &collector_id, "--output", "json"]);
    assert!(ok);
    assert_eq!(events["events"][0]["type"], "collector_created");

    let (ok, _, stderr) =
        linkmesh(&server, &api.token, &["collectors", "delete", &collector_id, "--output", "json"]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = linkmesh(&server, &api.token, &["collectors", "get", &collector_id]);
    assert!(!ok);
    assert!(stderr.contains("404"), "{stderr}");
}

#[tokio::test]
async fn cli_reports_a_rejected_token_clearly() {
    let server = Server::start();
    let (ok, _, stderr) = linkmesh(&server, "lmsat_wrong", &["collectors", "list"]);
    assert!(!ok);
    assert!(stderr.contains("401") && stderr.contains("service-account token"), "{stderr}");
}
