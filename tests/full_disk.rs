//! Storage failing while running: with its data dir on a small tmpfs filled by creating collectors, the
//! node reports not ready, answers polls, pushes and writes with 503 and a body, exits with code 4, and
//! after space returns and a restart holds every write it acknowledged.
//!
//! Needs root (to mount a tmpfs). CI runs as root; elsewhere this test fails loudly instead of skipping.

mod data_dirs;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use data_dirs::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"
activity_flush_interval = "30ms"
shutdown_timeout = "5s"
storage_failure_exit_delay = "10s"
[raft]
snapshot_after_logs = 300
logs_kept_after_snapshot = 50
[metrics]
allow_anonymous_from = ["127.0.0.1/32"]
"#;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    _temp: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let temp = tempfile::tempdir().expect("temp");
        let path = temp.path().join("mnt");
        std::fs::create_dir(&path).expect("mkdir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=700"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "this test needs root to mount a tmpfs (it runs as root in CI): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { _temp: temp, path }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("remount");
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Creates collectors from 8 writers until the node refuses one; returns the acknowledged ids.
async fn fill(node: &Node) -> Result<BTreeSet<String>, String> {
    let base_url = &node.base_url;
    let client = admin(base_url).await;
    let padding = "x".repeat(140);
    let mut writers = Vec::new();
    for worker in 0..8 {
        let (client, base_url, padding) = (client.clone(), base_url.to_owned(), padding.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for index in 0..20_000 {
                let response = client
                    .post(format!("{base_url}/api/v1/collectors"))
                    .json(&json!({ "name": format!("fill-{worker}-{index}"), "mode": "alloy-remotecfg",
                                   "attributes": { "a": padding, "b": padding, "c": padding } }))
                    .send()
                    .await;
                let Ok(response) = response else {
                    return Err(format!("a create got no response: {:?}", response.err()));
                };
                let status = response.status().as_u16();
                let body = response.text().await.expect("a body");
                match status {
                    201 => acknowledged.push(
                        serde_json::from_str::<Value>(&body).expect("json")["id"]
                            .as_str()
                            .expect("id")
                            .to_owned(),
                    ),
                    503 => {
                        assert!(body.contains("\"unavailable\""), "503 with an error body: {body}");
                        return Ok((acknowledged, true));
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            Ok((acknowledged, false))
        }));
    }
    let mut acknowledged = BTreeSet::new();
    let mut refused = false;
    for writer in writers {
        let written = writer.await.expect("writer");
        let (ids, writer_refused) = match written {
            Ok(written) => written,
            Err(error) => return Err(error),
        };
        acknowledged.extend(ids);
        refused |= writer_refused;
    }
    assert!(refused, "the tmpfs never filled");
    Ok(acknowledged)
}

async fn assert_503_with_body(response: reqwest::Response, what: &str) -> String {
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    assert_eq!(status, 503, "{what}: {body}");
    let named = ["storage failed", "\"storage\":\"failed\""].iter().any(|words| body.contains(words));
    assert!(named, "{what}: {body}");
    body
}

#[tokio::test]
async fn a_full_disk_stops_the_node_and_loses_no_acknowledged_write() {
    let tmpfs = Tmpfs::mount("8m");
    let data_dir = tmpfs.path.join("data");
    // Logs and config stay off the tmpfs, as they would in a deployment (journald).
    let files = tempfile::tempdir().expect("temp");
    let mut node = launch_with_files_in(&data_dir, files.path(), CONFIG, "127.0.0.1:0").serving();
    let client = admin(&node.base_url).await;
    let polled = create_collector(&client, &node.base_url, "polled").await.expect("create");
    let minted: Value = client
        .post(node.url(&format!("/api/v1/collectors/{polled}/token")))
        .send()
        .await
        .expect("mint")
        .json()
        .await
        .expect("json");
    let token = minted["token"].as_str().expect("token").to_owned();

    let mut acknowledged = match fill(&node).await {
        Ok(acknowledged) => acknowledged,
        Err(error) => {
            let status = node.wait_exit(Duration::from_secs(60));
            panic!("{error}; the node exited with {status:?}; log:\n{}", node.log());
        }
    };
    acknowledged.insert(polled.clone());

    let http = reqwest::Client::new();
    let ready: Value = serde_json::from_str(
        &assert_503_with_body(http.get(node.url("/readyz")).send().await.expect("readyz"), "readyz").await,
    )
    .expect("json");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["storage"], "failed");
    // Monitoring still reads the node's metrics, which say so.
    let metrics = http.get(node.url("/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.expect("metrics body");
    let failed = metrics.lines().find(|line| line.starts_with("linkmesh_storage_failed{"));
    assert!(failed.is_some_and(|line| line.ends_with(" 1")), "{metrics}");
    let poll = linkmesh::proto::collector::v1::GetConfigRequest { id: "h".into(), ..Default::default() };
    let response = http
        .post(node.url("/collector.v1.CollectorService/GetConfig"))
        .bearer_auth(&token)
        .header("content-type", "application/proto")
        .body(prost::Message::encode_to_vec(&poll))
        .send()
        .await
        .expect("poll");
    let body = assert_503_with_body(response, "poll").await;
    assert!(body.contains("\"code\":\"unavailable\""), "Connect error: {body}");
    let response = http
        .post(node.url("/v1/metrics"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("push");
    assert_503_with_body(response, "push").await;
    let response = client
        .post(node.url("/api/v1/collectors"))
        .json(&json!({ "name": "after-failure", "mode": "alloy-remotecfg" }))
        .send()
        .await
        .expect("write");
    assert!(assert_503_with_body(response, "write").await.contains("\"unavailable\""));
    let response = client.get(node.url("/api/v1/collectors")).send().await.expect("read");
    assert_503_with_body(response, "read from the stale replica").await;

    let status = node.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(4), "log:\n{}", node.log());
    let log = node.log();
    assert_eq!(log.matches("storage failed: this node stops serving").count(), 1, "one clear line:\n{log}");

    tmpfs.resize("64m");
    let node = launch_with_files_in(&data_dir, files.path(), CONFIG, "127.0.0.1:0").serving();
    let kept = collector_ids(&node.base_url).await;
    assert!(acknowledged.is_subset(&kept), "lost acknowledged writes: {:?}", acknowledged.difference(&kept));
    drop(node);
}
