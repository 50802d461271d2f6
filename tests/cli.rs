//! The client subcommands against a running server, as scripts use them (`--output json`).

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

/// `linkmesh ARGS`: (succeeded, stdout as JSON or null, stderr).
fn linkmesh(server: &Server, token: &str, args: &[&str]) -> (bool, Value, String) {
    let (success, stdout, stderr) = linkmesh_cli(server, token, args);
    (success, serde_json::from_str(&stdout).unwrap_or(Value::Null), stderr)
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

#[tokio::test]
async fn cli_labels_a_collector_by_name_and_many_by_selector_then_deletes_them_in_bulk() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let first = api.create_collector("lab-1").await;
    let second = api.create_collector("lab-2").await;
    let bystander = api.create_collector("bystander").await;

    let (ok, answer, stderr) = linkmesh(
        &server,
        &api.token,
        &["collectors", "label", "lab-1", "env=prod", "tier=edge", "--output", "json"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(answer["collector_ids"], serde_json::json!([&first]));
    let (ok, _, stderr) = linkmesh(&server, &api.token, &["collectors", "label", &second, "tier=edge"]);
    assert!(ok, "{stderr}");
    let (ok, answer, stderr) = linkmesh(
        &server,
        &api.token,
        &["collectors", "label", "--selector", "tier=edge", "team=a", "--remove", "env", "--output", "json"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(answer["count"], 2, "{answer}");
    assert_eq!(api.collector(&first).await["labels"], serde_json::json!({"tier": "edge", "team": "a"}));
    assert_eq!(api.collector(&bystander).await["labels"], serde_json::json!({}));
    let (ok, _, stderr) = linkmesh(&server, &api.token, &["collectors", "label", "no-such-collector", "a=b"]);
    assert!(!ok);
    assert!(stderr.contains("no collector with id or name"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(["collectors", "bulk", "--selector", "team=a", "--action", "rotate", "--yes"])
        .env("LINKMESH_URL", &server.base_url)
        .env("LINKMESH_TOKEN", &api.token)
        .output()
        .expect("run linkmesh");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "collector_id,name,token", "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let token = lines[1].split(',').nth(2).expect("token column");
    assert_eq!(lines[1].split(',').next(), Some(first.as_str()), "{csv}");
    get_config(&server, token, &poll_request("lab-host", "")).await;

    // Without --yes and without an answer on stdin, nothing happens.
    let (ok, _, stderr) =
        linkmesh(&server, &api.token, &["collectors", "bulk", "--selector", "team=a", "--action", "delete"]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("delete 2 collectors"), "the question names the count: {stderr}");
    assert_eq!(api.collector(&first).await["id"], first.as_str());

    let (ok, answer, stderr) = linkmesh(
        &server,
        &api.token,
        &["collectors", "bulk", "--selector", "team=a", "--action", "delete", "--yes", "--output", "json"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(answer["collector_ids"], serde_json::json!([&first, &second]));
    assert_eq!(api.collector(&bystander).await["id"], bystander.as_str());
}

#[tokio::test]
async fn cli_prune_is_a_dry_run_unless_applied_and_refuses_a_short_inactivity() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("young").await;
    let (ok, answer, stderr) =
        linkmesh(&server, &api.token, &["collectors", "prune", "--inactive-for", "30d", "--output", "json"]);
    assert!(ok, "{stderr}");
    assert_eq!(answer["dry_run"], true, "{answer}");
    assert_eq!((&answer["count"], &answer["remaining"]), (&serde_json::json!(0), &serde_json::json!(0)));
    let (ok, answer, stderr) = linkmesh(
        &server,
        &api.token,
        &[
            "collectors",
            "prune",
            "--inactive-for",
            "1h",
            "--selector",
            "env=prod",
            "--apply",
            "--output",
            "json",
        ],
    );
    assert!(ok, "{stderr}");
    assert_eq!(answer["dry_run"], false, "{answer}");
    let (ok, _, stderr) = linkmesh(&server, &api.token, &["collectors", "prune", "--inactive-for", "10m"]);
    assert!(!ok);
    assert!(stderr.contains("400") && stderr.contains("at least 1h"), "{stderr}");
    assert_eq!(api.collector(&collector_id).await["id"], collector_id.as_str(), "nothing young is pruned");
}

/// `linkmesh enrollment-tokens create|list|revoke`: the token and a supervisor.yaml printed once; the
/// list says how many collectors use a token; revoking one in use asks first (no answer: nothing).
#[tokio::test]
async fn cli_manages_opamp_enrollment_tokens() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    wait_for_level(&api, 4).await;

    let args = [
        "enrollment-tokens",
        "create",
        "--ttl",
        "2h",
        "--uses",
        "5",
        "--labels",
        "env=prod;team=edge",
        "--output",
        "json",
    ];
    let (ok, created, stderr) = linkmesh(&server, &api.token, &args);
    assert!(ok, "{stderr}");
    let token = created["token"].as_str().expect("token");
    let id = created["id"].as_str().expect("id").to_owned();
    let supervisor = created["supervisor_config"].as_str().expect("supervisor.yaml");
    assert!(
        supervisor.contains(&format!("Bearer {token}")) && supervisor.contains("/v1/opamp"),
        "{supervisor}"
    );

    let reply = support::opamp_wire::send(&server, token, &support::opamp_wire::first_message()).await;
    assert!(reply.error_response.is_none(), "enrolled: {reply:?}");
    let (ok, listed, _) = linkmesh(&server, &api.token, &["enrollment-tokens", "list", "--output", "json"]);
    assert!(ok);
    let listed = &listed["enrollment_tokens"][0];
    assert_eq!(
        (listed["id"].as_str(), listed["collectors"].as_u64(), listed["uses"].as_u64()),
        (Some(id.as_str()), Some(1), Some(5))
    );
    assert_eq!(listed["labels"], serde_json::json!({"env": "prod", "team": "edge"}));

    let (ok, _, stderr) = linkmesh(&server, &api.token, &["enrollment-tokens", "revoke", &id]);
    assert!(!ok && stderr.contains("1 collector(s) still authenticate"), "asked first: {stderr}");
    let (ok, revoked, stderr) =
        linkmesh(&server, &api.token, &["enrollment-tokens", "revoke", &id, "--yes", "--output", "json"]);
    assert!(ok, "{stderr}");
    assert_eq!(revoked["collectors"], 1);
    let (_, listed, _) = linkmesh(&server, &api.token, &["enrollment-tokens", "list", "--output", "json"]);
    assert_eq!(listed["enrollment_tokens"][0]["state"], "revoked");
}
