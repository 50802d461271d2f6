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

#[tokio::test]
async fn cluster_status_shows_the_one_node_cluster_as_its_own_leader() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (ok, cluster, stderr) = linkmesh(&server, &api.token, &["cluster", "status", "--output", "json"]);
    assert!(ok, "{stderr}");
    assert!(cluster["cluster_id"].as_str().expect("cluster id").starts_with("clu_"), "{cluster:#}");
    let members = cluster["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{cluster:#}");
    assert_eq!(members[0]["id"], cluster["leader_id"], "{cluster:#}");
    assert_eq!(members[0]["role"], "voter", "{cluster:#}");

    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(["cluster", "status"])
        .env("LINKMESH_URL", &server.base_url)
        .env("LINKMESH_TOKEN", &api.token)
        .output()
        .expect("run linkmesh");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    let leader = cluster["leader_id"].to_string();
    assert!(table.contains(&format!("leader {leader}")), "{table}");
    assert!(table.lines().any(|line| line.starts_with(&format!("{leader}*"))), "leader marked: {table}");
    assert!(table.contains("LAST CONTACT") && table.contains("SLOTS"), "{table}");
}

#[tokio::test]
async fn join_token_is_printed_once_with_the_command_for_the_new_node() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (ok, minted, stderr) = linkmesh(
        &server,
        &api.token,
        &["cluster", "join-token", "--ttl", "30m", "--uses", "2", "--output", "json"],
    );
    assert!(ok, "{stderr}");
    let token = minted["token"].as_str().expect("token");
    assert!(token.starts_with("lmjt_"), "{minted:#}");
    assert!(minted["expires_at"].is_string(), "{minted:#}");
    assert_eq!(
        minted["join_command"],
        format!("linkmesh serve --join {} --join-token {token}", server.base_url).as_str()
    );

    let viewer = Api::with_role(&server, "viewer").await;
    let (ok, _, stderr) = linkmesh(&server, &viewer.token, &["cluster", "join-token"]);
    assert!(!ok, "a viewer mints no join token");
    assert!(stderr.contains("403"), "{stderr}");
}

#[tokio::test]
async fn cluster_commands_name_members_by_id_or_name_and_refuse_unknown_names() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let (ok, _, stderr) = linkmesh(&server, &api.token, &["cluster", "transfer-leader", "no-such-node"]);
    assert!(!ok);
    assert!(stderr.contains("no member named \"no-such-node\""), "{stderr}");
}
