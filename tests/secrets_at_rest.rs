//! Destination credentials never reach the data dir in clear, not even when a collector echoes
//! them back: Alloy >= 1.12 reports the config it runs (`effective_config`), which holds the
//! delivered credentials, and error messages may quote them. Only operators and admins see the
//! effective config.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::{get_config, pb, poll_request, register, wait_until, Api, Server, FAST_CONFIG, WAIT_DEADLINE};

/// Each secret has a distinctive core that survives any escaping (Alloy, YAML, JSON on disk), so a
/// search for the core finds the secret in any encoding.
const PASSWORD: &str = "Sup3rS3cretPassw0rd\"and-a-quote";
const PASSWORD_CORE: &str = "Sup3rS3cretPassw0rd";
const USERNAME: &str = "tenantScanUser9f";
const BEARER_TOKEN: &str = "BearerTok3nValue42xyz";
/// Text of the echoed effective config that is not the delivered config: it takes the slow path of
/// value-by-value redaction, and proves the effective config itself reached the disk.
const LOCAL_LINE: &str = "// echoed-by-the-scan-test";

fn effective_config(content: &str) -> pb::EffectiveConfig {
    pb::EffectiveConfig {
        config_map: Some(pb::AgentConfigMap {
            config_map: [(
                String::new(),
                pb::AgentConfigFile { body: content.as_bytes().to_vec(), content_type: "text/plain".into() },
            )]
            .into(),
        }),
    }
}

fn status(state: pb::RemoteConfigStatuses, error: &str) -> Option<pb::RemoteConfigStatus> {
    Some(pb::RemoteConfigStatus { status: state as i32, error_message: error.to_owned() })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("read {}: {error}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The files under `dir` whose bytes contain `needle`.
fn files_containing(files: &[(PathBuf, Vec<u8>)], needle: &str) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|window| window == needle.as_bytes()))
        .map(|(path, _)| path.clone())
        .collect()
}

#[tokio::test]
async fn no_credential_reaches_the_data_dir_after_an_effective_config_echo() {
    // Frequent snapshots: the scan covers the snapshot tree as well as the log.
    let mut server = Server::start_with_config(&format!(
        "{FAST_CONFIG}\n[raft]\nsnapshot_after_logs = 3\nlogs_kept_after_snapshot = 100\n"
    ));
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("scanned").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.scan.example"},
               "credentials": {"username": USERNAME, "password": PASSWORD}}),
        )
        .await;
    let otlp = api.create(&format!("{base}/destinations"),
        json!({"name": "vendor", "type": "otlp_http", "settings": {"endpoint": "https://otlp.scan.example"},
               "credentials": {"bearer_token": BEARER_TOKEN}}),
    )
    .await;
    api.create(
        &format!("{base}/routes"),
        json!({"name": "all", "destination_ids": [loki["id"], otlp["id"]]}),
    )
    .await;

    register(&server, &token, "host-scan").await;
    let delivered = get_config(&server, &token, &poll_request("host-scan", "")).await;
    for secret in [PASSWORD_CORE, USERNAME, BEARER_TOKEN] {
        assert!(delivered.content.contains(secret), "{secret} not delivered:\n{}", delivered.content);
    }
    // A failure quoting a credential, then the config it runs, exactly as delivered, then with a
    // local line.
    let failed = pb::GetConfigRequest {
        remote_config_status: status(
            pb::RemoteConfigStatuses::Failed,
            &format!("loki.write: server said 401 for {USERNAME}:{PASSWORD}"),
        ),
        ..poll_request("host-scan", &delivered.hash)
    };
    get_config(&server, &token, &failed).await;
    let echoed = pb::GetConfigRequest {
        remote_config_status: status(pb::RemoteConfigStatuses::Applied, ""),
        effective_config: Some(effective_config(&delivered.content)),
        ..poll_request("host-scan", &delivered.hash)
    };
    get_config(&server, &token, &echoed).await;
    let edited = format!("{}{LOCAL_LINE}\n", delivered.content);
    let echoed_edited =
        pb::GetConfigRequest { effective_config: Some(effective_config(&edited)), ..echoed.clone() };
    get_config(&server, &token, &echoed_edited).await;

    let stored_echo = wait_until(WAIT_DEADLINE, || async {
        api.collector(&collector_id).await["config"]["effective_config"]
            .as_str()
            .is_some_and(|text| text.contains(LOCAL_LINE))
    })
    .await;
    assert!(stored_echo, "the edited effective config was never stored");
    let collector = api.collector(&collector_id).await;
    let shown = collector["config"]["effective_config"].as_str().expect("effective config");
    let loki_id = loki["id"].as_str().expect("id");
    assert!(shown.contains(&format!("password = \"${{linkmesh-secret:{loki_id}:password}}\"")), "{shown}");
    let events = api.get(&format!("{base}/events")).await.to_string();
    for secret in [PASSWORD_CORE, USERNAME, BEARER_TOKEN] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        assert!(!collector.to_string().contains(secret), "{secret} in {collector}");
        assert!(!events.contains(secret), "{secret} in events {events}");
    }

    // Viewers and pipeline engineers do not get the effective config at all.
    for role in ["viewer", "pipeline_engineer"] {
        let reader = Api::with_role(&server, role).await;
        let one = reader.collector(&collector_id).await;
        assert!(one["config"].get("effective_config").is_none(), "{role}: {one}");
        let listed = reader.get("/api/v1/collectors").await;
        assert!(listed.to_string().contains(&collector_id));
        assert!(!listed.to_string().contains("effective_config"), "{role}: {listed}");
    }
    let operator = Api::with_role(&server, "operator").await;
    assert!(operator.collector(&collector_id).await["config"]["effective_config"].is_string());

    // A clean stop, so sled has flushed everything it holds, then every file of the data dir.
    let exit = server.terminate();
    assert!(exit.success(), "server exit {exit:?}; log:\n{}", server.log());
    let files: Vec<(PathBuf, Vec<u8>)> = files_under(&server.data_dir)
        .into_iter()
        .map(|path| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            (path, bytes)
        })
        .collect();
    // The scan can see what was written: the model and the echoed effective config are on disk.
    assert!(!files_containing(&files, "loki.scan.example").is_empty(), "the model is not readable on disk");
    assert!(!files_containing(&files, LOCAL_LINE).is_empty(), "the effective config never reached the disk");
    for secret in [PASSWORD_CORE, USERNAME, BEARER_TOKEN] {
        let found = files_containing(&files, secret);
        assert!(found.is_empty(), "{secret} in clear in {found:?}");
    }
}

#[tokio::test]
async fn a_credential_too_short_to_redact_is_stored_only_as_its_marker_or_not_at_all() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("short").await;
    let token = api.mint_token(&collector_id).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let loki = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "loki", "type": "loki", "settings": {"url": "https://loki.short.example"},
               "credentials": {"username": "Zq7", "password": "long-enough-password"}}),
        )
        .await;
    api.create(&format!("{base}/routes"), json!({"name": "all", "destination_ids": [loki["id"]]})).await;
    let delivered = get_config(&server, &token, &poll_request("host-short", "")).await;
    assert!(delivered.content.contains("username = \"Zq7\""), "{}", delivered.content);
    let effective = |text: String| {
        let echo = pb::GetConfigRequest {
            effective_config: Some(effective_config(&text)),
            ..poll_request("host-short", &delivered.hash)
        };
        let (server, token) = (&server, &token);
        async move {
            get_config(server, token, &echo).await;
        }
    };
    let stored = || async { api.collector(&collector_id).await["config"]["effective_config"].clone() };

    // The delivered config itself: stored as rendered, with markers, short credential included.
    effective(delivered.content.clone()).await;
    let loki_id = loki["id"].as_str().expect("id");
    let username_marker = format!("username = \"${{linkmesh-secret:{loki_id}:username}}\"");
    assert!(
        wait_until(WAIT_DEADLINE, || async {
            stored().await.as_str().is_some_and(|text| text.contains(&username_marker))
        })
        .await,
        "{}",
        stored().await
    );
    // Anything else that still holds the short value after redaction is not stored.
    effective(format!("{}{LOCAL_LINE}\n", delivered.content)).await;
    assert!(
        wait_until(WAIT_DEADLINE, || async {
            stored().await.as_str().is_some_and(|text| text.contains("too short to redact"))
        })
        .await,
        "{}",
        stored().await
    );
    // Text without it is stored, long credentials redacted.
    effective("password = \"long-enough-password\"".to_owned()).await;
    let expected = format!("password = \"${{linkmesh-secret:{loki_id}:password}}\"");
    assert!(wait_until(WAIT_DEADLINE, || async { stored().await == expected.as_str() }).await);
}
