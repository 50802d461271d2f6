//! Acknowledged writes survive SIGKILL; snapshots and log replay rebuild the same state.

mod support;

use support::*;

/// Snapshots every few entries, so restarts go through snapshot restore plus log replay.
fn snapshotting_config() -> String {
    format!("{FAST_CONFIG}\n[raft]\nsnapshot_after_logs = 7\nlogs_kept_after_snapshot = 2\n")
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let mut server = Server::start();
    let api = Api::admin(&server).await;
    let mut collectors = Vec::new();
    for index in 0..5 {
        let collector_id = api.create_collector(&format!("durable-{index}")).await;
        let token = api.mint_token(&collector_id).await;
        collectors.push((collector_id, token));
    }
    server.kill();
    server.restart();

    let api = Api::admin(&server).await;
    for (collector_id, token) in &collectors {
        let collector = api.collector(collector_id).await;
        assert_eq!(collector["token"]["prefix"].as_str().map(|p| token.starts_with(p)), Some(true));
        get_config(&server, token, &poll_request("after-restart", "")).await;
        api.wait_for_status(collector_id, "connected").await;
    }
    let types = api.event_types(&collectors[0].0).await;
    assert_eq!(&types[..2], ["collector_created", "token_minted"]);
}

#[tokio::test]
async fn state_is_rebuilt_from_snapshot_and_log_after_sigkill() {
    let mut server = Server::start_with_config(&snapshotting_config());
    let api = Api::admin(&server).await;
    let mut collectors = Vec::new();
    for index in 0..12 {
        let collector_id = api.create_collector(&format!("snap-{index}")).await;
        collectors.push(collector_id);
    }
    api.mint_token(&collectors[3]).await;
    let rotated = api.mint_token(&collectors[3]).await;
    let before = api.get("/api/v1/collectors").await;
    server.kill();
    server.restart();

    let api = Api::admin(&server).await;
    let after = api.get("/api/v1/collectors").await;
    assert_eq!(after, before);
    get_config(&server, &rotated, &poll_request("h", "")).await;
    let types = api.event_types(&collectors[3]).await;
    assert_eq!(&types[..3], ["collector_created", "token_minted", "token_rotated"]);
}

#[tokio::test]
async fn sigterm_drains_and_persists_live_status() {
    let mut server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("graceful").await;
    let token = api.mint_token(&collector_id).await;
    register(&server, &token, "host-g").await;
    get_config(&server, &token, &poll_request("host-g", "")).await;

    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}; log:\n{}", server.log());
    server.restart();
    let api = Api::admin(&server).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["status"], "connected");
    assert_eq!(collector["host_id"], "host-g");
    let types = api.event_types(&collector_id).await;
    assert!(types.contains(&"remotecfg_registered".to_owned()), "{types:?}");
    assert!(types.contains(&"config_delivered".to_owned()), "{types:?}");
}

#[tokio::test]
async fn first_start_writes_the_admin_password_file_only_when_generated() {
    // Given: the harness sets LINKMESH_ADMIN_PASSWORD, so no password is generated or written.
    let given = Server::start();
    assert!(data_dir_exists(&given.data_dir));
    assert!(!given.data_dir.join("initial-admin-password").exists());
    assert!(!given.log().contains("created user \"admin\" with password"), "{}", given.log());

    // Generated: written to a file only its owner can read, and printed once on standard error.
    let mut generated = Server::start_generating_admin_password();
    let file = generated.data_dir.join("initial-admin-password");
    let written = std::fs::read_to_string(&file).expect("the generated password is written");
    let password = written.trim_end().to_owned();
    assert!(password.len() >= 20, "a generated password is long: {password:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode of {}", file.display());
    }
    let log = generated.log();
    assert_eq!(log.matches(password.as_str()).count(), 1, "printed exactly once:\n{log}");
    assert!(log.contains(&format!("with password {password} (also in {})", file.display())), "{log}");
    let login = reqwest::Client::new()
        .post(generated.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "admin", "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "the printed password signs in");

    // A second start of the same data dir neither prints it again nor replaces the file.
    generated.restart();
    let log = generated.log();
    assert_eq!(log.matches("linkmesh is serving").count(), 2, "both starts are in this log:\n{log}");
    assert_eq!(log.matches(password.as_str()).count(), 1, "printed again on restart:\n{log}");
    assert_eq!(std::fs::read_to_string(&file).expect("still there"), written);
}
