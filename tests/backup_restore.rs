//! Backup and restore with the real binary (`docs/operations.md`, "Backup and restore"): a fleet backed
//! up with `linkmesh backup`, restored with `linkmesh restore` into a new data dir and served, is the
//! same fleet through the API (sealed credentials still open: the delivered config carries them) in
//! a new cluster that another node can join; restore refuses a data dir in use and an altered file.

mod support;

use std::path::Path;
use std::process::Output;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

const PASSWORD: &str = "Restor3dS3cretPassw0rd";
const BEARER: &str = "Bear3rAfterRestore77";

fn linkmesh(args: &[&str], token: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_linkmesh"));
    command.args(args).env_remove("LINKMESH_DATA_KEY").env_remove("LINKMESH_TOKEN");
    if let Some(token) = token {
        command.env("LINKMESH_TOKEN", token);
    }
    command.output().expect("run linkmesh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn backup(server: &Server, token: &str, out: &Path) -> Output {
    linkmesh(&["backup", "--url", &server.base_url, "--out", out.to_str().expect("path")], Some(token))
}

fn restore(from: &Path, data_dir: &Path) -> Output {
    linkmesh(
        &["restore", "--from", from.to_str().expect("path"), "--data-dir", data_dir.to_str().expect("path")],
        None,
    )
}

/// The same service-account token against another node.
fn api_at(server: &Server, token: &str) -> Api {
    Api { http: reqwest::Client::new(), base_url: server.base_url.clone(), token: token.to_owned() }
}

/// Everything durable the API shows of the fleet, without what is live or per node.
async fn fleet_model(api: &Api) -> Value {
    let mut collectors = Vec::new();
    for collector in api.get("/api/v1/collectors").await["collectors"].as_array().expect("collectors") {
        let id = collector["id"].as_str().expect("id");
        let base = format!("/api/v1/collectors/{id}");
        collectors.push(json!({
            "id": id,
            "name": collector["name"],
            "mode": collector["mode"],
            "remote_attributes": collector["remote_attributes"],
            "created_at": collector["created_at"],
            "token": collector["token"],
            "version": collector["config"]["version"],
            "hash": collector["config"]["hash"],
            "config": api.get(&format!("{base}/config")).await,
            "versions": api.get(&format!("{base}/config/versions")).await,
            "sources": api.get(&format!("{base}/sources")).await,
            "destinations": api.get(&format!("{base}/destinations")).await,
            "routes": api.get(&format!("{base}/routes")).await,
        }));
    }
    collectors.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json!({
        "collectors": collectors,
        "pipelines": api.get("/api/v1/pipelines").await,
        "users": api.get("/api/v1/users").await,
        "service_accounts": api.get("/api/v1/service-accounts").await,
    })
}

/// Two collectors with tokens; one with a pipeline, sources, two destinations with sealed credentials
/// and routes; a viewer service account.
async fn build_fleet(api: &Api) -> String {
    let pipeline = api
        .create(
            "/api/v1/pipelines",
            json!({"name": "batching", "signals": ["logs", "metrics", "traces"], "steps": [{"type": "batch", "settings": {}}]}),
        )
        .await;
    let edge = api.create_collector("edge-restored").await;
    let edge_token = api.mint_token(&edge).await;
    let other = api.create_collector("other-restored").await;
    api.mint_token(&other).await;
    let base = format!("/api/v1/collectors/{edge}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.restore.example"},
                   "credentials": {"username": "tenant-restore", "password": PASSWORD}}),
        )
        .await;
    let vendor = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "vendor", "type": "otlp_http", "settings": {"endpoint": "https://otlp.restore.example"},
                   "credentials": {"bearer_token": BEARER}}),
        )
        .await;
    api.create(
        &format!("{base}/routes"),
        json!({"name": "all", "destination_ids": [loki["id"], vendor["id"]], "pipeline_id": pipeline["id"]}),
    )
    .await;
    api.create("/api/v1/service-accounts", json!({"name": "automation", "role": "viewer"})).await;
    edge_token
}

async fn cluster(api: &Api) -> Value {
    api.get("/api/v1/cluster").await
}

#[tokio::test]
async fn a_restored_backup_is_a_new_cluster_with_the_same_fleet_that_another_node_can_join() {
    let source = Server::start();
    let admin = Api::admin(&source).await;
    let edge_token = build_fleet(&admin).await;
    register(&source, &edge_token, "host-edge").await;
    let delivered = get_config(&source, &edge_token, &poll_request("host-edge", "")).await;
    for secret in [PASSWORD, BEARER] {
        assert!(delivered.content.contains(secret), "{secret} not delivered:\n{}", delivered.content);
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("fleet.backup.json");
    let backed_up = backup(&source, &admin.token, &file);
    assert!(backed_up.status.success(), "backup: {}", text(&backed_up.stderr));
    let summary = text(&backed_up.stdout);
    assert!(summary.contains("2 collectors, 1 pipelines"), "{summary}");
    assert!(summary.contains("3 sealed credentials"), "{summary}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("backup file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the backup holds the data key");
    }
    let bytes = std::fs::read(&file).expect("read backup");
    assert!(!text(&bytes).contains(PASSWORD), "credentials stay sealed in the file");
    let model = fleet_model(&admin).await;
    let source_cluster = cluster(&admin).await;

    let data_dir = dir.path().join("restored");
    let restored = restore(&file, &data_dir);
    assert!(restored.status.success(), "restore: {}", text(&restored.stderr));
    assert!(text(&restored.stdout).contains("as the new cluster"), "{}", text(&restored.stdout));
    let checked = linkmesh(&["check", "--data-dir", data_dir.to_str().expect("path")], None);
    assert!(checked.status.success(), "check: {}{}", text(&checked.stdout), text(&checked.stderr));
    assert!(text(&checked.stdout).contains("collectors: 2 (2 with a token)"), "{}", text(&checked.stdout));

    let node = Server::start_on_data_dir(&data_dir);
    let api = api_at(&node, &admin.token);
    let restored_cluster = cluster(&api).await;
    assert_ne!(restored_cluster["cluster_id"], source_cluster["cluster_id"], "a new cluster id");
    let members = restored_cluster["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{restored_cluster}");
    assert_ne!(members[0]["id"], source_cluster["members"][0]["id"], "a new node id");
    assert_eq!(fleet_model(&api).await, model, "the restored fleet is the backed-up one");
    let slots = api.get("/api/v1/cluster/slots").await;
    assert!(
        slots["slots"].as_array().expect("slots").iter().all(|slot| slot["owner"] == members[0]["id"]),
        "every slot is the new node's"
    );
    // The collector polls the restored node with its old token, and gets the same config, its sealed
    // credentials opened with the backed-up key.
    let polled = get_config(&node, &edge_token, &poll_request("host-edge", "")).await;
    assert_eq!(polled.hash, delivered.hash);
    assert_eq!(polled.content, delivered.content);

    // Another node joins the restored cluster as usual and holds the same fleet.
    let (status, join_token) =
        api.request(Method::POST, "/api/v1/cluster/join-tokens", Some(json!({"uses": 1}))).await;
    assert_eq!(status, 201, "{join_token}");
    let joined = Server::start_joining(&node.base_url, join_token["token"].as_str().expect("token"));
    let joined_api = api_at(&joined, &admin.token);
    let joined_cluster = cluster(&joined_api).await;
    assert_eq!(joined_cluster["cluster_id"], restored_cluster["cluster_id"]);
    let both = wait_until(WAIT_DEADLINE, || async {
        cluster(&api).await["members"].as_array().is_some_and(|members| members.len() == 2)
    })
    .await;
    assert!(both, "the joined node is a member: {}", cluster(&api).await);
    assert_eq!(fleet_model(&joined_api).await, model, "the joined node holds the same fleet");
    // Once it holds its lease (ready), it serves the collector too: forwarded to the slot's owner.
    let ready = wait_until(WAIT_DEADLINE, || async {
        reqwest::get(joined.url("/readyz")).await.is_ok_and(|response| response.status() == 200)
    })
    .await;
    assert!(ready, "the joined node becomes ready");
    let through_joined = get_config(&joined, &edge_token, &poll_request("host-edge", "")).await;
    assert_eq!(through_joined.content, delivered.content);

    // A follower answers a backup too (after the leader's read index): the same fleet, restorable.
    let from_follower = dir.path().join("from-follower.json");
    let backed_up = backup(&joined, &admin.token, &from_follower);
    assert!(backed_up.status.success(), "backup from a follower: {}", text(&backed_up.stderr));
    let document: Value =
        serde_json::from_slice(&std::fs::read(&from_follower).expect("read")).expect("json");
    assert_eq!(document["source"]["cluster_id"], restored_cluster["cluster_id"]);
    assert_ne!(
        document["source"]["node_id"], restored_cluster["members"][0]["id"],
        "the joined node answered"
    );
    assert!(document["source"]["applied_index"].as_u64() > Some(0));
    let again = dir.path().join("again");
    let restored_again = restore(&from_follower, &again);
    assert!(restored_again.status.success(), "{}", text(&restored_again.stderr));
}

#[tokio::test]
async fn restore_refuses_a_data_dir_in_use_and_an_altered_backup_and_backup_needs_an_admin() {
    let source = Server::start();
    let admin = Api::admin(&source).await;
    admin.create_collector("kept").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.json");
    let backed_up = backup(&source, &admin.token, &file);
    assert!(backed_up.status.success(), "backup: {}", text(&backed_up.stderr));

    // An existing file is never replaced without --force.
    let again = backup(&source, &admin.token, &file);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("--force"), "{}", text(&again.stderr));
    let forced = linkmesh(
        &["backup", "--url", &source.base_url, "--out", file.to_str().expect("path"), "--force"],
        Some(&admin.token),
    );
    assert!(forced.status.success(), "{}", text(&forced.stderr));

    // Only admins, and only with a token the server knows; a server that is not there is named.
    let viewer = Api::with_role(&source, "viewer").await;
    let refused = backup(&source, &viewer.token, &dir.path().join("viewer.json"));
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("admin"), "{}", text(&refused.stderr));
    let unknown = backup(&source, "lmsat_not-a-token", &dir.path().join("unknown.json"));
    assert!(text(&unknown.stderr).contains("401"), "{}", text(&unknown.stderr));
    let unreachable = linkmesh(
        &[
            "backup",
            "--url",
            "http://127.0.0.1:9",
            "--out",
            dir.path().join("x.json").to_str().expect("path"),
        ],
        Some(&admin.token),
    );
    assert!(text(&unreachable.stderr).contains("cannot reach"), "{}", text(&unreachable.stderr));
    for name in ["viewer.json", "unknown.json", "x.json"] {
        assert!(!dir.path().join(name).exists(), "no file from a refused backup: {name}");
    }
    // Every backup taken or refused is in the audit log, like a write.
    let audited = wait_until(WAIT_DEADLINE, || async {
        let page = admin.get("/api/v1/audit?limit=1000").await;
        let outcomes: Vec<&str> = page["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|entry| entry["action"] == "GET /api/v1/backup")
            .filter_map(|entry| entry["outcome"].as_str())
            .collect();
        outcomes.iter().filter(|outcome| **outcome == "ok").count() == 2
            && outcomes.contains(&"permission_denied")
    })
    .await;
    assert!(audited, "backups audited: {}", admin.get("/api/v1/audit?limit=1000").await);

    // A data dir with anything in it is left alone.
    let used = dir.path().join("used");
    std::fs::create_dir(&used).expect("mkdir");
    std::fs::write(used.join("notes.txt"), "mine").expect("write");
    let into_used = restore(&file, &used);
    assert_eq!(into_used.status.code(), Some(1));
    assert!(text(&into_used.stderr).contains("not empty"), "{}", text(&into_used.stderr));
    let entries: Vec<_> = std::fs::read_dir(&used).expect("list").collect();
    assert_eq!(entries.len(), 1, "nothing was added");

    // A key whose fingerprint is not the stated one: altered, refused, nothing created.
    let mut document: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    document["data_key"]["fingerprint"] = json!("00000000deadbeef");
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&document).expect("json")).expect("write");
    let fresh = dir.path().join("fresh");
    let from_tampered = restore(&tampered, &fresh);
    assert_eq!(from_tampered.status.code(), Some(1));
    assert!(
        text(&from_tampered.stderr).contains("does not match its fingerprint"),
        "{}",
        text(&from_tampered.stderr)
    );
    assert!(!fresh.exists(), "no data dir from a refused restore");

    // The untouched file restores into an empty directory.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let restored = restore(&file, &empty);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(support::data_dir_exists(&empty));
    assert!(!empty.join("restore-in-progress").exists(), "a finished restore removes its marker");

    // A restore cut short (its marker still there) is neither checked sound nor served.
    std::fs::write(empty.join("restore-in-progress"), "").expect("marker");
    let dir_arg = empty.to_str().expect("path");
    let checked = linkmesh(&["check", "--data-dir", dir_arg], None);
    assert_eq!(checked.status.code(), Some(3), "{}{}", text(&checked.stdout), text(&checked.stderr));
    let served = linkmesh(
        &["serve", "--data-dir", dir_arg, "--http-addr", "127.0.0.1:0", "--rpc-addr", "127.0.0.1:0"],
        None,
    );
    assert_eq!(served.status.code(), Some(3), "{}", text(&served.stderr));
    assert!(text(&served.stderr).contains("did not finish"), "{}", text(&served.stderr));
}
