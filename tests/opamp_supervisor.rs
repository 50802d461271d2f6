//! The published OpAMP supervisor end to end (issue 18): collector-contrib's `opampsupervisor` v0.149.0
//! (built by `scripts/build-opampsupervisor.sh`) runs a real OpenTelemetry Collector (`tools/otelcol`:
//! upstream factories plus the `opamp` extension) against the real server, over WebSocket and plain HTTP.
//! Each step is checked the way an operator sees it, through the REST API: the collector's events and
//! status.
//!
//! The binaries come from `LINKMESH_OPAMPSUPERVISOR` and `LINKMESH_OTELCOL` (`scripts/check.sh` exports
//! both), else they are built here. Go is a required test dependency: a missing toolchain or a failed build
//! fails these tests, never skips them.

mod support;

use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Api, Server, FAST_CONFIG, QUIET_OPAMP_CONFIG};

/// How long a step may take before the test fails: a deadline, not a measurement. Generous, because a
/// supervisor start sometimes waits ten seconds for its bootstrap collector to stop (see [`Supervisor`]),
/// applying a config takes `config_apply_timeout`, and the gate runs on two busy cores.
const STEP_DEADLINE: Duration = Duration::from_secs(120);

/// The heartbeat interval for the tests that watch liveness: the supervisor follows the offered interval,
/// so it turns `stale` three intervals after it stops. Short, but long enough that a loaded machine does
/// not miss three in a row.
const HEARTBEAT_CONFIG_LINE: &str = "opamp_heartbeat_interval = \"2s\"\n";

fn supervisor_binary() -> PathBuf {
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

fn collector_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("otelcol", "LINKMESH_OTELCOL")).clone()
}

/// Finds or builds both binaries. Each test calls it first: a build takes a while, and it blocks the
/// test's runtime, which must not hold API connections yet (see [`Supervisor::stop_with`]).
fn build_tools() {
    supervisor_binary();
    collector_binary();
}

/// A port nothing listens on right now (the collector's receivers bind it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// OTLP source settings on ports of their own: every collector in a test run, and every process on
/// the host, may be listening on the defaults.
fn otlp_settings(grpc_port: u16) -> Value {
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
fn agent_settings() -> String {
    format!(
        "  executable: {}\n  config_apply_timeout: 3s\n  args: [\"--set\", \"service.telemetry.metrics.level=none\"]\n",
        collector_binary().display()
    )
}

/// One OTLP/JSON gauge point into the collector's OTLP/HTTP receiver on `port` (refused while the
/// collector restarts: the caller tries again).
async fn send_a_metric(port: u16) {
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
const TELEMETRY_SETTINGS: &str = "telemetry:\n  logs:\n    level: debug\n";

enum Transport {
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
struct Supervisor {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Supervisor {
    /// Starts a supervisor for the collector whose token is `token`, with an empty storage directory.
    fn start(server: &Server, transport: Transport, token: &str) -> Supervisor {
        let endpoint = match transport {
            Transport::WebSocket => server.url("/v1/opamp").replacen("http://", "ws://", 1),
            Transport::PlainHttp => server.url("/v1/opamp"),
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
    fn start_rendered(rendered: &str) -> Supervisor {
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
    fn run(config: impl FnOnce(&Path) -> String) -> Supervisor {
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

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Sends `signal` (`INT`, `TERM`) to the supervisor and waits for it to exit. The wait must not
    /// block the test's runtime: the server closes API connections idle for a few seconds, and a
    /// runtime that cannot see it keeps them pooled and fails its next request.
    async fn stop_with(&mut self, signal: &str) -> ExitStatus {
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
    fn collector_pids(&self) -> Vec<u32> {
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
    async fn kill_collectors(&self) {
        let gone = support::wait_until(STEP_DEADLINE, || async {
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
    fn log_tails(&self, lines: usize) -> String {
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

async fn opamp_collector(api: &Api, name: &str) -> (String, String) {
    let collector = api.create("/api/v1/collectors", json!({ "name": name, "mode": "opamp" })).await;
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    let token = api.mint_token(&collector_id).await;
    (collector_id, token)
}

/// `sources` OTLP sources on free ports, a debug destination (nothing leaves the host) and a catch-all
/// route: something the collector can run on a host where others run too (`support::opamp_agent`'s
/// version listens on the default OTLP ports and sends to an external endpoint).
async fn configure_something_to_run_here(api: &Api, collector_id: &str, sources: usize) {
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

async fn events(api: &Api, collector_id: &str) -> Vec<Value> {
    let page = api.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
    page["events"].as_array().expect("events").clone()
}

async fn events_of_type(api: &Api, collector_id: &str, event_type: &str) -> Vec<Value> {
    events(api, collector_id).await.into_iter().filter(|event| event["type"] == event_type).collect()
}

/// Waits until the collector has `count` events of `event_type`; returns them. (The logs of the
/// supervisor and its collector are printed when a test fails, by [`Supervisor`]'s `Drop`.)
async fn wait_for_events(api: &Api, collector_id: &str, event_type: &str, count: usize) -> Vec<Value> {
    let reached = support::wait_until(STEP_DEADLINE, || async {
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

async fn wait_for_status(api: &Api, collector_id: &str, status: &str) -> Value {
    let reached = support::wait_until(STEP_DEADLINE, || async {
        api.collector(collector_id).await["status"] == status
    })
    .await;
    let collector = api.collector(collector_id).await;
    assert!(reached, "never {status}; last seen: {collector}");
    collector
}

/// A server, an `opamp` collector with `sources` OTLP sources, and a supervisor running it: the
/// collector's first config applied and its status `connected`. A test binds every field (the server
/// too, as `server: _server`: a field left to `..` is dropped, and the server stopped, at once).
struct Supervised {
    supervisor: Supervisor,
    api: Api,
    collector_id: String,
    server: Server,
}

impl Supervised {
    async fn start(config: &str, transport: Transport, name: &str, sources: usize) -> Supervised {
        build_tools();
        let server = Server::start_with_config(config);
        let api = Api::admin(&server).await;
        let (collector_id, token) = opamp_collector(&api, name).await;
        configure_something_to_run_here(&api, &collector_id, sources).await;
        let supervisor = Supervisor::start(&server, transport, &token);
        wait_for_events(&api, &collector_id, "config_applied", 1).await;
        wait_for_status(&api, &collector_id, "connected").await;
        Supervised { supervisor, api, collector_id, server }
    }
}

/// The whole life of a collector under the supervisor, over WebSocket: it connects and runs the config
/// linkmesh pushes; a change is applied; a config its collector cannot run (an OTLP port another
/// process holds) is reported as `config_failed` with the supervisor's message; the fix is applied;
/// and SIGINT says goodbye, so the collector is `offline` at once.
#[tokio::test]
async fn the_supervisor_over_websocket_applies_changes_reports_a_failure_and_says_goodbye() {
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(QUIET_OPAMP_CONFIG, Transport::WebSocket, "otel-supervised", 1).await;
    let base = format!("/api/v1/collectors/{collector_id}");
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["local_attributes"]["service.name"], "linkmesh-otelcol", "{collector}");
    assert_eq!(collector["config"]["remote_status"], "applied", "{collector}");
    assert_eq!(supervisor.collector_pids().len(), 1, "one collector runs");

    // A change, pushed at once (the server offers an hour between heartbeats).
    let more_port = free_port();
    api.create(
        &format!("{base}/sources"),
        json!({"name": "more", "type": "otlp", "settings": otlp_settings(more_port)}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;
    let reported = support::wait_until(STEP_DEADLINE, || async {
        let collector = api.collector(&collector_id).await;
        collector["config"]["effective_config"]
            .as_str()
            .is_some_and(|effective| effective.contains(&format!("127.0.0.1:{more_port}")))
    })
    .await;
    assert!(
        reported,
        "the effective config names the new source's port: {}",
        api.collector(&collector_id).await
    );

    // A failure only the host sees: the OTLP port is taken, so the collector exits at start.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let busy = api
        .create(
            &format!("{base}/sources"),
            json!({"name": "busy", "type": "otlp", "settings": otlp_settings(taken_port)}),
        )
        .await;
    let failed = wait_for_events(&api, &collector_id, "config_failed", 1).await;
    let message = failed[0]["message"].as_str().expect("message");
    assert!(
        message.contains("Agent exited unexpectedly with exit code 1 while applying configuration"),
        "the supervisor's own words: {message}"
    );
    let collector = wait_for_status(&api, &collector_id, "degraded").await;
    assert_eq!(collector["config"]["remote_status"], "failed", "{collector}");
    // The collector's reason stays on the host.
    let agent_log = std::fs::read_to_string(supervisor.storage().join("agent.log")).unwrap_or_default();
    assert!(agent_log.contains("address already in use"), "the collector's log says why");

    // Fixed: the source moves to a free port.
    let busy_path = format!("{base}/sources/{}", busy["id"].as_str().expect("id"));
    let (status, body) = api
        .request(
            reqwest::Method::PUT,
            &busy_path,
            Some(json!({"name": "busy", "type": "otlp", "settings": otlp_settings(free_port())})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for_events(&api, &collector_id, "config_applied", 3).await;
    let collector = wait_for_status(&api, &collector_id, "connected").await;
    assert_eq!(collector["config"]["remote_status"], "applied", "{collector}");
    drop(taken);

    // SIGINT: the supervisor stops its collector and says goodbye.
    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "the supervisor exits cleanly on SIGINT: {exit}");
    assert_eq!(supervisor.collector_pids(), Vec::<u32>::new(), "its collector stopped with it");
    wait_for_status(&api, &collector_id, "offline").await;
    // The status is read from the collector's actor; its events are written a moment later.
    wait_for_events(&api, &collector_id, "unregistered", 1).await;
}

/// SIGTERM kills the supervisor on the spot: no goodbye, and its collector keeps running as an orphan.
/// linkmesh learns of it from the heartbeats that stop: `stale` after three offered intervals.
#[tokio::test]
async fn a_supervisor_killed_with_sigterm_turns_stale_and_leaves_its_collector_running() {
    let config = format!("{FAST_CONFIG}{HEARTBEAT_CONFIG_LINE}");
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(&config, Transport::WebSocket, "otel-sigterm", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["expected_poll_interval_seconds"], 2, "the offered heartbeat is kept: {collector}");

    let exit = supervisor.stop_with("TERM").await;
    assert_eq!(exit.signal(), Some(15), "SIGTERM is not handled: the supervisor dies of it ({exit})");
    assert_eq!(supervisor.collector_pids().len(), 1, "the collector outlives its supervisor");
    wait_for_status(&api, &collector_id, "stale").await;
    assert!(events_of_type(&api, &collector_id, "unregistered").await.is_empty(), "no goodbye was said");

    supervisor.kill_collectors().await;
    assert!(supervisor.collector_pids().is_empty());
}

/// OpAMP's plain-HTTP transport (an `http://` endpoint): the supervisor polls, gets its config in an
/// answer, applies it, and a change reaches it at its next poll (the offered heartbeat interval).
#[tokio::test]
async fn the_supervisor_over_plain_http_applies_its_config_and_a_change() {
    let config = format!("{FAST_CONFIG}{HEARTBEAT_CONFIG_LINE}");
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(&config, Transport::PlainHttp, "otel-http", 1).await;
    let collector = api.collector(&collector_id).await;
    assert_eq!(collector["local_attributes"]["service.name"], "linkmesh-otelcol", "{collector}");

    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "more", "type": "otlp", "settings": otlp_settings(free_port())}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;

    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "the supervisor exits cleanly on SIGINT: {exit}");
    assert_eq!(supervisor.collector_pids(), Vec::<u32>::new(), "its collector stopped with it");
}

/// A supervisor stopped with SIGINT right after it restarted its collector (a config change) sends its
/// goodbye behind two bursts of health reports (one per component state change), well past the
/// collector's call bucket (`poll_burst` 10, 2 per second); the collector must still turn `offline`.
/// Refused, those messages were lost (opamp-go never resends one); held for the bucket, the goodbye
/// came after opamp-go had closed the connection, 5 s after sending it (in 2 of 4 runs of this test,
/// and in 4 of 5 runs of the WebSocket flow test, before status, health and goodbye messages went
/// through).
#[tokio::test]
async fn a_supervisor_goodbye_after_a_burst_of_health_reports_is_not_refused() {
    let Supervised { mut supervisor, api, collector_id, server: _server } =
        Supervised::start(QUIET_OPAMP_CONFIG, Transport::WebSocket, "otel-goodbye", 3).await;
    api.create(
        &format!("/api/v1/collectors/{collector_id}/sources"),
        json!({"name": "one-more", "type": "otlp", "settings": otlp_settings(free_port())}),
    )
    .await;
    wait_for_events(&api, &collector_id, "config_applied", 2).await;

    let exit = supervisor.stop_with("INT").await;
    assert!(exit.success(), "{exit}");
    wait_for_status(&api, &collector_id, "offline").await;
}

/// Enrollment with the real supervisor, run with the `supervisor.yaml` linkmesh renders for the
/// enrollment token (only the collector's path and the storage directory changed): the token gets the
/// agent a collector of its own (named from its description, with the token's labels, so fleet-wide items
/// selected by them give it a config at once), offered its own-metrics destination; a destination its
/// collector's build lacks (this build has no Kafka exporter, and the supervisor reports its available
/// components) is refused before it is offered, naming the component, and the collector keeps running
/// the config it has. Its components reach linkmesh as `tests/fixtures/opamp/` lists them.
#[tokio::test]
async fn a_supervisor_enrolls_with_an_enrollment_token_and_is_never_offered_what_its_build_lacks() {
    build_tools();
    let server = Server::start_with_config(QUIET_OPAMP_CONFIG);
    let api = Api::admin(&server).await;
    support::wait_for_level(&api, 4).await;
    let selector = "fleet=supervised";
    let receiver_http_port = free_port();
    let settings = json!({
        "grpc_endpoint": format!("127.0.0.1:{}", free_port()),
        "http_endpoint": format!("127.0.0.1:{receiver_http_port}"),
    });
    api.create(
        "/api/v1/sources",
        json!({"selector": selector, "name": "apps", "type": "otlp", "settings": settings}),
    )
    .await;
    let local = api
        .create("/api/v1/destinations", json!({"selector": selector, "name": "local", "type": "debug"}))
        .await;
    let route = api
        .create(
            "/api/v1/routes",
            json!({"selector": selector, "name": "all", "destination_ids": [local["id"]]}),
        )
        .await;
    let created = api.create("/api/v1/enrollment-tokens", json!({"labels": {"fleet": "supervised"}})).await;
    let rendered = created["supervisor_config"].as_str().expect("a rendered supervisor.yaml");

    let mut supervisor = Supervisor::start_rendered(rendered);
    let enrolled = support::wait_until(STEP_DEADLINE, || async {
        api.get("/api/v1/collectors?mode=opamp").await["collectors"]
            .as_array()
            .is_some_and(|list| list.len() == 1)
    })
    .await;
    assert!(enrolled, "no collector was enrolled");
    let collector = api.get("/api/v1/collectors?mode=opamp").await["collectors"][0].clone();
    let collector_id = collector["id"].as_str().expect("id").to_owned();
    assert!(
        collector["name"].as_str().is_some_and(|name| name.starts_with("linkmesh-otelcol@")),
        "{collector}"
    );
    assert_eq!(collector["labels"], json!({"fleet": "supervised"}));
    wait_for_events(&api, &collector_id, "enrolled", 1).await;
    wait_for_events(&api, &collector_id, "config_applied", 1).await;
    wait_for_status(&api, &collector_id, "connected").await;

    // Offered once the config applied, its own metrics light up the topology as data flows.
    wait_for_events(&api, &collector_id, "own_metrics_offered", 1).await;
    let receiver = support::wait_until(STEP_DEADLINE, || async {
        send_a_metric(receiver_http_port).await;
        let topology = api.get(&format!("/api/v1/collectors/{collector_id}/topology")).await;
        topology["nodes"].as_array().is_some_and(|nodes| {
            nodes.iter().any(|node| {
                node["kind"] == "source"
                    && node["label"] == "apps"
                    && node["in_rate"].as_f64().is_some_and(|rate| rate > 0.0)
                    && node["in_rate"].as_f64().is_some_and(|rate| rate > 0.0)
            })
        })
    })
    .await;
    let topology = api.get(&format!("/api/v1/collectors/{collector_id}/topology")).await;
    assert!(receiver, "the collector's own metrics never showed its receiver's throughput: {topology}");
    wait_for_events(&api, &collector_id, "own_metrics_first_seen", 1).await;
    assert_eq!(
        events_of_type(&api, &collector_id, "config_failed").await.len(),
        0,
        "the own-metrics offer restarted the collector without a failure"
    );

    // What its build has reaches linkmesh as the report names it (otlp_grpc, file_log, …).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/opamp/supervisor-v0.149-available-components.json");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("fixture JSON");
    let listed = support::wait_until(STEP_DEADLINE, || async {
        !api.collector(&collector_id).await["opamp"]["available_components"].is_null()
    })
    .await;
    let reported = api.collector(&collector_id).await;
    assert!(listed, "the agent's components never reached linkmesh: {reported}");
    assert_eq!(reported["opamp"]["available_components"], expected, "{reported}");

    let kafka = api
        .create(
            "/api/v1/destinations",
            json!({"selector": selector, "name": "bus", "type": "kafka",
                   "settings": {"brokers": ["127.0.0.1:9"], "topic": "t"}}),
        )
        .await;
    let path = format!("/api/v1/routes/{}", route["id"].as_str().expect("id"));
    let body = json!({"selector": selector, "name": "all", "destination_ids": [local["id"], kafka["id"]]});
    let (status, reply) = api.request(reqwest::Method::PUT, &path, Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    let failed = wait_for_events(&api, &collector_id, "config_failed", 1).await;
    let message = failed[0]["message"].as_str().expect("message");
    assert!(message.contains("exporters kafka"), "{message}");
    let still = api.collector(&collector_id).await;
    assert_eq!(still["status"], "connected", "{still}");
    assert_eq!(
        events_of_type(&api, &collector_id, "config_applied").await.len(),
        1,
        "never offered, never applied"
    );
    supervisor.stop_with("INT").await;
    wait_for_status(&api, &collector_id, "offline").await;
}
