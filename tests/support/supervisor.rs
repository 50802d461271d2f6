//! The published OpAMP supervisor for end-to-end tests (`tests/opamp_supervisor.rs` on one server,
//! `cluster-tests/opamp_supervisor.rs` behind a load balancer over three nodes): collector-contrib's
//! `opampsupervisor` v0.149.0 (built by `scripts/build-opampsupervisor.sh`) running a real OpenTelemetry
//! Collector (`tools/otelcol`: upstream factories plus the `opamp` extension), and the REST reads that
//! check each step the way an operator sees it: the collector's events and status.
//!
//! The binaries come from `LINKMESH_OPAMPSUPERVISOR` and `LINKMESH_OTELCOL` (`scripts/check.sh` exports
//! both), else they are built here. Go is a required test dependency: a missing toolchain or a failed build
//! fails these tests, never skips them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use super::Api;

/// How long a step may take before the test fails: a deadline, not a measurement. Generous, because a
/// supervisor start sometimes waits ten seconds for its bootstrap collector to stop (see [`Supervisor`]),
/// applying a config takes `config_apply_timeout`, and the gate runs on two busy cores.
pub const STEP_DEADLINE: Duration = Duration::from_secs(120);

pub fn supervisor_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("LINKMESH_OPAMPSUPERVISOR") {
                return PathBuf::from(path);
            }
            let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("opampsupervisor");
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-opampsupervisor.sh");
            let status = Command::new(&script)
                .arg(&output)
                .status()
                .unwrap_or_else(|error| panic!("run {} (Go >= 1.26 is required): {error}", script.display()));
            assert!(status.success(), "{} failed", script.display());
            output
        })
        .clone()
}

pub fn collector_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| super::go_tool("otelcol", "LINKMESH_OTELCOL")).clone()
}

/// Finds or builds both binaries. Each test calls it first: a build takes a while, and it blocks the
/// test's runtime, which must not hold API connections yet (see [`Supervisor::stop_with`]).
pub fn build_tools() {
    supervisor_binary();
    collector_binary();
}

/// A port nothing listens on right now (the collector's receivers bind it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// OTLP source settings on ports of their own: every collector in a test run, and every process on
/// the host, may be listening on the defaults.
pub fn otlp_settings(grpc_port: u16) -> Value {
    json!({
        "grpc_endpoint": format!("127.0.0.1:{grpc_port}"),
        "http_endpoint": format!("127.0.0.1:{}", free_port()),
    })
}

/// The supervisor's `agent:` settings for every test, indented under `agent:`.
///
/// `config_apply_timeout` decides APPLIED: the supervisor reports it once the timeout has passed with
/// the new collector healthy (FAILED if it is not healthy yet), so it is short for a fast test and long
/// enough for a collector starting on a loaded machine. The collector's own metrics are served on
/// localhost:8888 by default, which collectors of tests running side by side (and anything else on the
/// host) would fight over; the supervisor adds `args` to every collector run but its `featuregate`
/// query. (The enrollment test, whose supervisor reports own metrics, gives its collector a reader of
/// its own instead: [`Supervisor::start_rendered`].)
pub fn agent_settings() -> String {
    format!(
        "  executable: {}\n  config_apply_timeout: 3s\n  args: [\"--set\", \"service.telemetry.metrics.level=none\"]\n",
        collector_binary().display()
    )
}

/// One OTLP/JSON gauge point into the collector's OTLP/HTTP receiver on `port` (refused while the
/// collector restarts: the caller tries again).
pub async fn send_a_metric(port: u16) {
    let point = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "linkmesh.test.points",
        "gauge": {"dataPoints": [{"asInt": "1", "timeUnixNano": "1"}]}}]}]}]});
    let _ = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/metrics"))
        .json(&point)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
}

/// The supervisor's own log at debug level: what a failing test prints.
pub const TELEMETRY_SETTINGS: &str = "telemetry:\n  logs:\n    level: debug\n";

pub enum Transport {
    WebSocket,
    PlainHttp,
}

/// A running `opampsupervisor` and the collectors it starts. Dropping it kills the supervisor and then
/// every collector started with its storage directory, orphans included (a supervisor stopped by SIGTERM
/// leaves its collector running); when the test is failing it first prints the end of both logs.
///
/// Measured here: when the supervisor stops its bootstrap collector (the run that learns the agent
/// description) while that collector is still starting, the collector sometimes ignores the signal and
/// the supervisor waits ten seconds before it SIGKILLs it and connects — hence [`STEP_DEADLINE`].
pub struct Supervisor {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Supervisor {
    /// Starts a supervisor for the collector whose token is `token`, with an empty storage directory,
    /// connecting to `/v1/opamp` under `base_url` (`http://host:port`: a server, or a load balancer in
    /// front of nodes).
    pub fn start(base_url: &str, transport: Transport, token: &str) -> Supervisor {
        let endpoint = match transport {
            Transport::WebSocket => format!("{base_url}/v1/opamp").replacen("http://", "ws://", 1),
            Transport::PlainHttp => format!("{base_url}/v1/opamp"),
        };
        Supervisor::run(|storage| {
            format!(
                r#"server:
  endpoint: {endpoint}
  headers:
    # The collector's own token, or an enrollment token (one per fleet: the agent is enrolled as a
    # collector of its own on first contact).
    Authorization: ["Bearer {token}"]
capabilities:
  accepts_remote_config: true
  reports_remote_config: true
  reports_effective_config: true
  reports_health: true
  reports_heartbeat: true
  reports_available_components: true
  # Off: an own-metrics offer arriving with the first config makes the supervisor restart its
  # collector twice in a row, and v0.149.0 then sometimes takes the first one's exit for the second's
  # crash and reports the config FAILED. The enrollment test runs linkmesh's rendered config, with it on.
  reports_own_metrics: false
agent:
{agent}storage:
  directory: {storage}
{TELEMETRY_SETTINGS}"#,
                agent = agent_settings(),
                storage = storage.display(),
            )
        })
    }

    /// Starts a supervisor with the `supervisor.yaml` linkmesh renders for an enrollment token, as an
    /// operator would run it: only the collector's path and the storage directory are changed, and the
    /// settings every collector here needs added.
    ///
    /// The rendered config has the supervisor report its collector's own metrics, so that collector
    /// keeps its metrics on (unlike [`agent_settings`]): a local config file, merged before the
    /// own-telemetry section the supervisor builds from linkmesh's offer, gives it a Prometheus reader
    /// on a free port until the offer replaces it with a reader pushing to linkmesh, once a second.
    /// (The supervisor's bootstrap run, which learns the agent description, still serves them on the
    /// default localhost:8888 for a moment: no other test here leaves its collector's metrics on.)
    pub fn start_rendered(rendered: &str) -> Supervisor {
        const EXECUTABLE: &str = "  executable: /usr/local/bin/otelcol-contrib\n";
        const STORAGE: &str = "  directory: /var/lib/otelcol/supervisor\n";
        assert!(rendered.contains(EXECUTABLE) && rendered.contains(STORAGE), "{rendered}");
        Supervisor::run(|storage| {
            let local = storage.with_file_name("local-telemetry.yaml");
            let reader = format!(
                "service:\n  telemetry:\n    metrics:\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 127.0.0.1\n                port: {}\n",
                free_port()
            );
            std::fs::write(&local, reader).expect("write the local telemetry config");
            let agent = format!(
                "  executable: {}\n  config_apply_timeout: 3s\n  config_files: [\"{}\", $OWN_TELEMETRY_CONFIG, $OPAMP_EXTENSION_CONFIG, $REMOTE_CONFIG]\n  env:\n    OTEL_METRIC_EXPORT_INTERVAL: \"1000\"\n",
                collector_binary().display(),
                local.display(),
            );
            let storage = format!("  directory: {}\n", storage.display());
            rendered.replace(EXECUTABLE, &agent).replace(STORAGE, &storage) + TELEMETRY_SETTINGS
        })
    }

    /// Writes the config `config` makes for the storage directory it is given and starts the supervisor.
    pub fn run(config: impl FnOnce(&Path) -> String) -> Supervisor {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("supervisor.yaml");
        std::fs::write(&config_path, config(&dir.path().join("storage"))).expect("write supervisor.yaml");
        let log = std::fs::File::create(dir.path().join("supervisor.log")).expect("log file");
        let child = Command::new(supervisor_binary())
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start opampsupervisor");
        Supervisor { child: Some(child), dir }
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Sends `signal` (`INT`, `TERM`) to the supervisor and waits for it to exit. The wait must not
    /// block the test's runtime: the server closes API connections idle for a few seconds, and a
    /// runtime that cannot see it keeps them pooled and fails its next request.
    pub async fn stop_with(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.as_ref().expect("running").id();
        let sent =
            Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
        let start = tokio::time::Instant::now();
        loop {
            let exited = self.child.as_mut().expect("running").try_wait().expect("wait for the supervisor");
            if let Some(status) = exited {
                self.child = None;
                return status;
            }
            assert!(start.elapsed() < STEP_DEADLINE, "the supervisor did not exit on SIG{signal}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The live processes (zombies left out) whose command line names this supervisor's storage
    /// directory: its collectors, which run `--config <storage>/effective.yaml`.
    pub fn collector_pids(&self) -> Vec<u32> {
        let storage = self.storage();
        let needle = storage.to_string_lossy();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(command_line) = std::fs::read(entry.path().join("cmdline")) else { continue };
            if !String::from_utf8_lossy(&command_line).contains(needle.as_ref()) {
                continue;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state …`: the state follows the last ')'.
            let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if !zombie {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGKILLs the collectors this supervisor started and waits until none is left.
    pub async fn kill_collectors(&self) {
        let gone = super::wait_until(STEP_DEADLINE, || async {
            let pids = self.collector_pids();
            for pid in &pids {
                let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
            pids.is_empty()
        })
        .await;
        assert!(gone, "collectors {:?} survive SIGKILL", self.collector_pids());
    }

    /// The last `lines` lines of the supervisor's log and of the collector's (`agent.log`).
    pub fn log_tails(&self, lines: usize) -> String {
        let tail = |path: PathBuf| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            format!("--- {} ---\n{}", path.display(), all[all.len().saturating_sub(lines)..].join("\n"))
        };
        format!(
            "{}\n{}",
            tail(self.dir.path().join("supervisor.log")),
            tail(self.storage().join("agent.log"))
        )
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(40));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The supervisor is gone, so no new collector can start: what is left are orphans.
        let storage = self.storage();
        let needle = storage.to_string_lossy();
        for pid in self.collector_pids() {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            eprintln!("killed collector {pid} (of {needle})");
        }
    }
}

pub async fn opamp_collector(api: &Api, name: &str) -> (String, String) {
    let collector = api.create("/api/v1/collectors", json!({ "name": name, "mode": "opamp" })).await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    let token = api.mint_token(&collector_id).await;
    (collector_id, token)
}

/// `sources` OTLP sources on free ports, a debug destination (nothing leaves the host) and a catch-all
/// route: something the collector can run on a host where others run too (`super::opamp_agent`'s
/// version listens on the default OTLP ports and sends to an external endpoint).
pub async fn configure_something_to_run_here(api: &Api, collector_id: &str, sources: usize) {
    let base = format!("/api/v1/collectors/{collector_id}");
    for index in 1..=sources {
        api.create(
            &format!("{base}/sources"),
            json!({"name": format!("apps-{index}"), "type": "otlp", "settings": otlp_settings(free_port())}),
        )
        .await;
    }
    let destination =
        api.create(&format!("{base}/destinations"), json!({"name": "local", "type": "debug"})).await;
    api.create(&format!("{base}/routes"), json!({"name": "all", "destination_ids": [destination["id"]]}))
        .await;
}

pub async fn events(api: &Api, collector_id: &str) -> Vec<Value> {
    let page = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    page["events"].as_array().expect("events").clone()
}

pub async fn events_of_type(api: &Api, collector_id: &str, event_type: &str) -> Vec<Value> {
    events(api, collector_id).await.into_iter().filter(|event| event["type"] == event_type).collect()
}

/// Waits until the collector has `count` events of `event_type`; returns them. (The logs of the
/// supervisor and its collector are printed when a test fails, by [`Supervisor`]'s `Drop`.)
pub async fn wait_for_events(api: &Api, collector_id: &str, event_type: &str, count: usize) -> Vec<Value> {
    let reached = super::wait_until(STEP_DEADLINE, || async {
        events_of_type(api, collector_id, event_type).await.len() >= count
    })
    .await;
    if !reached {
        let kinds: Vec<Value> =
            events(api, collector_id).await.into_iter().map(|e| e["type"].clone()).collect();
        panic!("no {count} {event_type} events; events: {kinds:?}");
    }
    events_of_type(api, collector_id, event_type).await
}

pub async fn wait_for_status(api: &Api, collector_id: &str, status: &str) -> Value {
    let reached =
        super::wait_until(STEP_DEADLINE, || async { api.collector(collector_id).await["status"] == status })
            .await;
    let collector = api.collector(collector_id).await;
    assert!(reached, "never {status}; last seen: {collector}");
    collector
}
