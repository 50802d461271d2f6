//! An OpAMP agent over WebSocket that linkmesh did not write: `tools/opampwsclient`, built from the
//! published `github.com/open-telemetry/opamp-go` module. Its events arrive as JSON lines on stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

/// How long a test waits for the agent's next event before failing (a deadline, not a measurement).
const EVENT_DEADLINE: Duration = Duration::from_secs(60);

fn agent_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| super::go_tool("opampwsclient", "LINKMESH_OPAMPWSCLIENT")).clone()
}

/// A running opamp-go agent and the events it printed.
pub struct Agent {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Agent {
    /// Connects to `/v1/opamp` of the server at `base_url` (`http://…`) over WebSocket.
    pub fn start(base_url: &str, token: &str, args: &[&str]) -> Agent {
        let url = format!("{}/v1/opamp", base_url.replacen("http://", "ws://", 1));
        let mut child = Command::new(agent_binary())
            .args(["-url", &url, "-token", token, "-timeout", "120s"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start opampwsclient");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let event: Value = serde_json::from_str(&line).expect("a JSON line");
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
        Agent { child, events }
    }

    /// The next event of type `kind`, skipping others; fails at the deadline.
    pub fn next(&self, kind: &str) -> Value {
        self.next_without(kind, "stopped")
    }

    /// As [`Agent::next`], failing if a `forbidden` event comes first (e.g. `connected`: a config that
    /// arrives after a reconnection was not pushed on the connection that was open).
    pub fn next_without(&self, kind: &str, forbidden: &str) -> Value {
        loop {
            let event = self
                .events
                .recv_timeout(EVENT_DEADLINE)
                .unwrap_or_else(|_| panic!("the agent printed no {kind:?} event"));
            if event["event"] == kind {
                return event;
            }
            assert_ne!(event["event"], forbidden, "{forbidden:?} before the {kind:?} event");
            assert_ne!(event["event"], "stopped", "the agent stopped before a {kind:?} event");
        }
    }

    /// The next `error_log` event (opamp-go's error log) containing `text`.
    pub fn next_error_log(&self, text: &str) -> Value {
        loop {
            let event = self.next("error_log");
            if event["message"].as_str().is_some_and(|message| message.contains(text)) {
                return event;
            }
        }
    }

    /// Closes its stdin (it says goodbye and stops) and returns its exit code.
    pub fn stop(mut self) -> Option<i32> {
        drop(self.child.stdin.take());
        self.child.wait().expect("wait").code()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One OTLP source, one OTLP/HTTP destination and a catch-all route on `collector_id`, through `api`:
/// something an OpenTelemetry Collector can run.
pub async fn configure_something_to_run(api: &super::Api, collector_id: &str) {
    let base = format!("/api/v1/collectors/{collector_id}");
    api.create(&format!("{base}/sources"), json!({"name": "apps", "type": "otlp"})).await;
    let destination = api
        .create(
            &format!("{base}/destinations"),
            json!({"name": "vendor", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}}),
        )
        .await;
    api.create(&format!("{base}/routes"), json!({"name": "all", "destination_ids": [destination["id"]]}))
        .await;
}
