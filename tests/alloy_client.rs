//! Wire compatibility against an independent client: `tools/remotecfgclient`, built from the published
//! Go modules Alloy itself uses (`connectrpc.com/connect` + `github.com/grafana/alloy-remote-config`).
//!
//! The tool is built with `go build` on first use (or taken from `LINKMESH_REMOTECFGCLIENT`). Go is a
//! required test dependency: without it this test fails rather than silently passing.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::*;

fn client_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("remotecfgclient", "LINKMESH_REMOTECFGCLIENT"))
}

/// Runs one RPC with the Go client; returns its JSON lines.
fn alloy(server: &Server, token: &str, args: &[&str]) -> Vec<Value> {
    let output = Command::new(client_binary())
        .args(["-url", &server.base_url, "-token", token])
        .args(args)
        .output()
        .expect("run remotecfgclient");
    assert!(output.status.success(), "remotecfgclient failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

fn one(server: &Server, token: &str, args: &[&str]) -> Value {
    let mut lines = alloy(server, token, args);
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.remove(0)
}

#[tokio::test]
async fn alloys_generated_client_speaks_every_transport() {
    // 13 calls back to back, more than a collector makes at once: a poll bucket that holds them all.
    let server =
        Server::start_with_config(&FAST_CONFIG.replace("[collectors]\n", "[collectors]\npoll_burst = 20\n"));
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("go-client").await;
    let token = api.mint_token(&collector_id).await;

    // Alloy calls RegisterCollector several times per start.
    let registered =
        alloy(&server, &token, &["-rpc", "register", "-id", "host-go", "-name", "host-go", "-count", "3"]);
    assert!(registered.iter().all(|line| line["ok"] == true), "{registered:?}");

    let mut hash = String::new();
    for transport in ["post", "get", "json", "gzip"] {
        let reply = one(
            &server,
            &token,
            &["-rpc", "get", "-id", "host-go", "-transport", transport, "-attr", "env=prod"],
        );
        assert_eq!(reply["ok"], true, "{transport}: {reply}");
        assert_eq!(reply["not_modified"], false, "{transport}");
        assert_eq!(
            reply["content"],
            "// linkmesh: no sources or routes configured for collector \"go-client\"\n"
        );
        hash = reply["hash"].as_str().expect("hash").to_owned();
        let cached =
            one(&server, &token, &["-rpc", "get", "-id", "host-go", "-transport", transport, "-hash", &hash]);
        assert_eq!(cached["not_modified"], true, "{transport}: {cached}");
    }

    // Alloy >= 1.12 reports the outcome with an immediate extra poll.
    let reported = one(
        &server,
        &token,
        &[
            "-rpc",
            "get",
            "-id",
            "host-go",
            "-hash",
            &hash,
            "-status",
            "applied",
            "-effective-config",
            "// running",
        ],
    );
    assert_eq!(reported["not_modified"], true);
    let unregistered = one(&server, &token, &["-rpc", "unregister", "-id", "host-go"]);
    assert_eq!(unregistered["ok"], true);

    api.wait_for_status(&collector_id, "offline").await;
    let types = api.wait_for_event(&collector_id, "unregistered", 1).await;
    assert_eq!(types.iter().filter(|t| *t == "remotecfg_registered").count(), 1, "{types:?}");
    assert!(types.contains(&"config_applied".to_owned()), "{types:?}");
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["local_attributes"]["env"], "prod");
    assert_eq!(collector["config"]["effective_config"], "// running");
}

#[tokio::test]
async fn alloys_client_sees_unauthenticated_for_basic_auth_and_bad_tokens() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("go-auth").await;
    let token = api.mint_token(&collector_id).await;

    let basic = one(&server, &token, &["-rpc", "get", "-id", "h", "-auth", "basic"]);
    assert_eq!((basic["ok"].as_bool(), basic["code"].as_str()), (Some(false), Some("unauthenticated")));
    let message = basic["message"].as_str().expect("message");
    assert!(message.contains("Bearer") && message.contains("bearer_token"), "{message}");

    let missing = one(&server, &token, &["-rpc", "register", "-id", "h", "-auth", "none"]);
    assert_eq!(missing["code"], "unauthenticated");
    let wrong = one(&server, "lmct_not-a-real-token", &["-rpc", "get", "-id", "h", "-transport", "get"]);
    assert_eq!(wrong["code"], "unauthenticated");
    assert_eq!(wrong["http_status"], 401);
}

#[tokio::test]
async fn alloys_client_sees_resource_exhausted_beyond_the_poll_bucket() {
    let server = Server::start_with_config(
        &FAST_CONFIG.replace("[collectors]\n", "[collectors]\npoll_burst = 1\npolls_per_second = 0.01\n"),
    );
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("go-bucket").await;
    let token = api.mint_token(&collector_id).await;

    let first = one(&server, &token, &["-rpc", "get", "-id", "h"]);
    assert_eq!(first["ok"], true, "{first}");
    let refused = one(&server, &token, &["-rpc", "get", "-id", "h"]);
    assert_eq!(
        (refused["ok"].as_bool(), refused["code"].as_str()),
        (Some(false), Some("resource_exhausted"))
    );
    assert_eq!(refused["http_status"], 429, "{refused}");
}
