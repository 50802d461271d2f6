//! What one collector token can make linkmesh write (issue 10, finding 8). Its remotecfg calls pass a
//! token bucket (burst 10, 2/s by default; beyond it 429 with `Retry-After`, answered before the body
//! is read); a changed effective config is written at most once per interval, the latest one winning
//! (or written by the shutdown flush); repeated `config_failed` reports are folded into one event per
//! interval with their count, while the status and error the API shows stay exact.

mod support;

use linkmesh::model::Clock;
use prost::Message;
use std::path::{Path, PathBuf};
use support::{
    connect_error, connect_post, pb, poll_request, wait_until, Api, Server, FAST_CONFIG, WAIT_DEADLINE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The default bucket (`collectors.poll_burst`, `collectors.polls_per_second`).
const BURST: usize = 10;
const PER_SECOND: f64 = 2.0;
/// What the finding's attacker sent: 60 polls, each with a new 256 KiB effective config and error.
const POLLS: usize = 60;
const EFFECTIVE_CONFIG_BYTES: usize = 256 * 1024;

/// A distinct effective config of about 256 KiB; `marker` leads it, so it survives truncation and can be
/// searched for on disk.
fn effective_config(marker: &str) -> pb::EffectiveConfig {
    let mut text = format!("// {marker}\n");
    while text.len() < EFFECTIVE_CONFIG_BYTES {
        text.push_str("logging { level = \"info\" } // filler of an oversized effective config\n");
    }
    pb::EffectiveConfig {
        config_map: Some(pb::AgentConfigMap {
            config_map: [(
                String::new(),
                pb::AgentConfigFile { body: text.into_bytes(), content_type: "text/plain".into() },
            )]
            .into(),
        }),
    }
}

fn marker(poll: usize) -> String {
    format!("effective-config-marker-{poll:02}-of-the-write-bounds-test")
}

fn error(poll: usize) -> String {
    format!("component \"otelcol.exporter.otlp.x\" failed on attempt {poll}")
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

/// Which of `needles` appear anywhere in the files under `dir`.
fn found_on_disk(dir: &Path, needles: &[String]) -> Vec<String> {
    let contents: Vec<Vec<u8>> =
        files_under(dir).iter().map(|path| std::fs::read(path).expect("read data file")).collect();
    needles
        .iter()
        .filter(|needle| {
            contents.iter().any(|bytes| bytes.windows(needle.len()).any(|window| window == needle.as_bytes()))
        })
        .cloned()
        .collect()
}

async fn config_failed_events(api: &Api, collector_id: &str) -> Vec<serde_json::Value> {
    let events = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "config_failed")
        .cloned()
        .collect()
}

#[tokio::test]
async fn rapid_polls_beyond_the_bucket_are_refused_and_write_a_bounded_amount() {
    let mut server = Server::start();
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("flooding").await;
    let token = api.mint_token(&collector_id).await;

    let clock = Clock::system();
    let started = clock.monotonic();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for poll in 0..POLLS {
        let request = pb::GetConfigRequest {
            remote_config_status: Some(pb::RemoteConfigStatus {
                status: pb::RemoteConfigStatuses::Failed as i32,
                error_message: error(poll),
            }),
            effective_config: Some(effective_config(&marker(poll))),
            ..poll_request("flood-host", "")
        };
        let response = connect_post(&server, "GetConfig", Some(&token), &request).await;
        match response.status().as_u16() {
            200 => accepted.push(poll),
            429 => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                assert!(retry_after.is_some_and(|seconds| seconds >= 1), "Retry-After {retry_after:?}");
                let (_, code, _) = connect_error(response).await;
                assert_eq!(code, "resource_exhausted");
                refused.push(poll);
            }
            other => panic!("poll {poll}: HTTP {other}: {}", response.text().await.unwrap_or_default()),
        }
    }
    let polling_took = clock.since(started);
    assert_eq!(accepted[..BURST], (0..BURST).collect::<Vec<_>>(), "the burst is admitted at once");
    // However slow this machine, no more than the burst and what refilled meanwhile got through.
    let refilled = (polling_took.as_secs_f64() * PER_SECOND).ceil() as usize;
    assert!(
        accepted.len() <= BURST + refilled,
        "{} admitted in {polling_took:?}: {accepted:?}",
        accepted.len()
    );
    assert!(!refused.is_empty(), "polls beyond the bucket are refused");
    eprintln!("{} of {POLLS} polls admitted in {polling_took:?}", accepted.len());
    let last = *accepted.last().expect("admitted polls");

    // The API is exact at once: the last admitted status, error and effective config.
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["config"]["remote_status"], "failed");
    assert_eq!(collector["config"]["remote_error"], error(last));
    let shown = collector["config"]["effective_config"].as_str().expect("effective config");
    assert!(shown.starts_with(&format!("// {}\n", marker(last))), "{}", &shown[..80]);

    // The first failure is an event at once; the others wait to be folded into the next one.
    let first =
        wait_until(WAIT_DEADLINE, || async { !config_failed_events(&api, &collector_id).await.is_empty() })
            .await;
    assert!(first, "no config_failed event");

    // A clean stop writes what waits for its interval; then nothing is left unwritten.
    let exit = server.terminate();
    assert!(exit.success(), "server exit {exit:?}; log:\n{}", server.log());
    let ran_for = clock.since(started);
    // One write per interval (60 s) that passed, plus the first one and the shutdown flush's.
    let intervals = (ran_for.as_secs() / 60) as usize;

    let markers: Vec<String> = (0..POLLS).map(marker).collect();
    let on_disk = found_on_disk(&server.data_dir, &markers);
    assert!(on_disk.contains(&marker(accepted[0])), "the first effective config is written at once");
    assert!(on_disk.contains(&marker(last)), "the last one reported is never lost: {on_disk:?}");
    assert!(on_disk.len() <= 2 + intervals, "{} effective configs written: {on_disk:?}", on_disk.len());
    for poll in &refused {
        assert!(!on_disk.contains(&marker(*poll)), "refused poll {poll} reached the disk");
    }

    server.restart();
    // A new connection pool: the old one's connections died with the first process.
    let api = Api { http: reqwest::Client::new(), ..api };
    let events = config_failed_events(&api, &collector_id).await;
    assert!(events.len() <= 2 + intervals, "{} config_failed events: {events:#?}", events.len());
    let reports: u64 = events.iter().map(|event| event["data"]["count"].as_u64().expect("count")).sum();
    assert_eq!(reports, accepted.len() as u64, "every admitted failure is counted once: {events:#?}");
    let latest = events.last().expect("events");
    assert_eq!(latest["data"]["error"], error(last), "{latest}");
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["config"]["remote_error"], error(last), "written, not only live");
    let stored = collector["config"]["effective_config"].as_str().expect("effective config");
    assert!(stored.starts_with(&format!("// {}\n", marker(last))), "{}", &stored[..80]);
}

#[tokio::test]
async fn a_refused_call_is_answered_before_its_body_is_read() {
    // Two calls, then one every 100 s.
    let server = Server::start_with_config(
        &FAST_CONFIG.replace("[collectors]\n", "[collectors]\npoll_burst = 2\npolls_per_second = 0.01\n"),
    );
    let api = Api::admin(&server).await;
    let collector_id = api.create_collector("impatient").await;
    let token = api.mint_token(&collector_id).await;
    for _ in 0..2 {
        let response = connect_post(&server, "GetConfig", Some(&token), &poll_request("h", "")).await;
        assert_eq!(response.status(), 200);
    }

    // A call announcing 1 MiB of body and sending none of it: answered all the same.
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /collector.v1.CollectorService/GetConfig HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n\
         Content-Length: 1048576\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT_DEADLINE, async {
        let mut buffer = [0u8; 4096];
        while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut buffer).await.expect("read");
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    assert!(read.is_ok(), "the server waited for the body");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 429"), "{answer}");
    let retry_after: u64 = answer
        .lines()
        .find_map(|line| line.strip_prefix("retry-after:"))
        .map(|value| value.trim().parse().expect("whole seconds"))
        .expect("retry-after header");
    assert!((90..=100).contains(&retry_after), "one call per 100 s: Retry-After {retry_after}");

    // Other collectors have buckets of their own.
    let other_id = api.create_collector("patient").await;
    let other = api.mint_token(&other_id).await;
    let response = connect_post(&server, "GetConfig", Some(&other), &poll_request("h2", "")).await;
    assert_eq!(response.status(), 200);
    let reply = pb::GetConfigResponse::decode(response.bytes().await.expect("body")).expect("decode");
    assert!(!reply.hash.is_empty());
}
