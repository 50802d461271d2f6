//! Test harness: starts the real `linkmesh` binary on an ephemeral port and talks real HTTP to it.
//!
//! (`tests/support/mod.rs` rather than `support.rs`: a file directly under `tests/` would be compiled as
//! a test crate of its own.)
#![allow(dead_code)]

pub mod opamp_agent;
pub mod opamp_wire;
pub mod pki;
pub mod supervisor;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prost::Message;
use serde_json::{json, Value};

pub use linkmesh::proto::collector::v1 as pb;

pub const ADMIN_PASSWORD: &str = "integration-test-admin-password";

/// The text of [`FAST_CONFIG`], ending in its `[collectors]` table (a macro so that `concat!` can
/// extend it).
macro_rules! fast_config {
    () => {
        r#"
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "5s"
min_poll_interval = "5s"
stale_after_missed_polls = 3
tick_interval = "50ms"
passivate_after = "600s"
registration_window = "300s"
noisy_event_interval = "60s"
"#
    };
}

/// Settings for tests: fast batching, and a 5 s expected poll interval so a collector stays
/// `connected` through a test's quick sequence of calls even on a loaded machine.
pub const FAST_CONFIG: &str = fast_config!();

/// [`FAST_CONFIG`] for OpAMP agents that must stay silent between messages: the heartbeat interval
/// the server offers them is an hour, so a config they receive while the test waits was pushed.
pub const QUIET_OPAMP_CONFIG: &str = concat!(fast_config!(), "opamp_heartbeat_interval = \"1h\"\n");

/// [`FAST_CONFIG`] for plain-HTTP OpAMP agents, which poll at the heartbeat interval offered: 1 s.
pub const POLLING_OPAMP_CONFIG: &str = concat!(fast_config!(), "opamp_heartbeat_interval = \"1s\"\n");

/// Like [`FAST_CONFIG`] but a collector turns `stale` 1.2 s after its last poll.
pub const STALE_FAST_CONFIG: &str = r#"
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "400ms"
min_poll_interval = "400ms"
stale_after_missed_polls = 3
tick_interval = "50ms"
"#;

pub struct Server {
    child: Option<Child>,
    pub base_url: String,
    /// The bound cluster port (`host:port`), from the `cluster port listening on` line.
    pub cluster_addr: String,
    pub data_dir: PathBuf,
    config_path: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub stderr_path: PathBuf,
    /// Whether `LINKMESH_ADMIN_PASSWORD` is set to [`ADMIN_PASSWORD`] (else the server generates one).
    admin_password_given: bool,
    /// More `serve` flags (`--join …`).
    extra_args: Vec<String>,
}

impl Server {
    /// A fresh server with [`FAST_CONFIG`] in a new temporary data dir.
    pub fn start() -> Server {
        Server::start_with_config(FAST_CONFIG)
    }

    /// A fresh server without `LINKMESH_ADMIN_PASSWORD`: its first start generates the admin password.
    pub fn start_generating_admin_password() -> Server {
        Server::start_with(FAST_CONFIG, false)
    }

    pub fn start_with_config(config: &str) -> Server {
        Server::start_with(config, true)
    }

    fn start_with(config: &str, admin_password_given: bool) -> Server {
        Server::start_in(config, admin_password_given, None, Vec::new())
    }

    /// A server with [`FAST_CONFIG`] on an existing data dir (one `linkmesh restore` created, say).
    pub fn start_on_data_dir(data_dir: &Path) -> Server {
        Server::start_in(FAST_CONFIG, true, Some(data_dir.to_owned()), Vec::new())
    }

    /// A new node with [`FAST_CONFIG`] that joins the cluster of `url` with the join token `token`.
    pub fn start_joining(url: &str, token: &str) -> Server {
        let join = vec!["--join".to_owned(), url.to_owned(), "--join-token".to_owned(), token.to_owned()];
        Server::start_in(FAST_CONFIG, true, None, join)
    }

    fn start_in(
        config: &str,
        admin_password_given: bool,
        data_dir: Option<PathBuf>,
        extra_args: Vec<String>,
    ) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = data_dir.unwrap_or_else(|| temp.path().join("data"));
        let config_path = temp.path().join("linkmesh.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = temp.path().join("server.log");
        let mut server = Server {
            child: None,
            base_url: String::new(),
            cluster_addr: String::new(),
            data_dir,
            config_path,
            _temp: Some(temp),
            stderr_path,
            admin_password_given,
            extra_args,
        };
        server.spawn("127.0.0.1:0");
        server
    }

    fn spawn(&mut self, addr: &str) {
        let stderr =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_path).expect("log file");
        // LINKMESH_BIN: a copy of the binary under test, for runs beside other builds in a shared target dir.
        let binary =
            std::env::var_os("LINKMESH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_linkmesh").into());
        let mut command = Command::new(binary);
        if self.admin_password_given {
            command.env("LINKMESH_ADMIN_PASSWORD", ADMIN_PASSWORD);
        } else {
            command.env_remove("LINKMESH_ADMIN_PASSWORD");
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-addr")
            .arg(addr)
            .arg("--rpc-addr")
            .arg("127.0.0.1:0")
            .args(&self.extra_args)
            .env("LINKMESH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn linkmesh");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let listening = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("listening on ") => break line,
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("cluster port listening on ") {
                        self.cluster_addr = addr.to_owned();
                    }
                }
                _ => panic!("server exited before listening; log:\n{}", self.log()),
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let bound = listening.trim_start_matches("listening on ").split(',').next().expect("addr").to_owned();
        self.base_url = format!("http://{bound}");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }

    /// SIGTERM and wait for exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let status =
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill -TERM");
        assert!(status.success());
        child.wait().expect("wait")
    }

    /// Restarts on the same data dir and the same port.
    pub fn restart(&mut self) {
        let addr = self.base_url.trim_start_matches("http://").to_owned();
        self.kill();
        self.spawn(&addr);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `linkmesh ARGS` as a CLI user of `server` with `token`: (succeeded, stdout, stderr).
pub fn linkmesh_cli(server: &Server, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .args(args)
        .env("LINKMESH_URL", &server.base_url)
        .env("LINKMESH_TOKEN", token)
        .output()
        .expect("run linkmesh");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn data_dir_exists(path: &Path) -> bool {
    path.join("raft").exists()
}

/// An HTTP client authenticated as an operator through a service-account token.
pub struct Api {
    pub http: reqwest::Client,
    pub base_url: String,
    pub token: String,
}

impl Api {
    /// `POST path` that must answer 201; returns the created resource.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.request(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {created}");
        created
    }

    /// Signs in as `admin` and creates an admin service account token for the test.
    pub async fn admin(server: &Server) -> Api {
        Api::with_role(server, "admin").await
    }

    pub async fn with_role(server: &Server, role: &str) -> Api {
        Api::with_role_at(&server.base_url, role).await
    }

    /// Signs in as `admin` at `base_url` (any linkmesh, e.g. a node of `cluster-tests/`) and creates a
    /// service account token of `role`.
    pub async fn with_role_at(base_url: &str, role: &str) -> Api {
        let url = |path: &str| format!("{base_url}{path}");
        let cookies = reqwest::Client::builder().cookie_store(true).build().expect("client");
        let login = cookies
            .post(url("/api/v1/auth/login"))
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), 200, "login failed: {}", login.text().await.unwrap_or_default());
        let name = format!("test-{role}-{}", std::process::id()) + &random_suffix();
        let account: Value = cookies
            .post(url("/api/v1/service-accounts"))
            .json(&json!({ "name": name, "role": role }))
            .send()
            .await
            .expect("create service account")
            .json()
            .await
            .expect("json");
        let token: Value = cookies
            .post(url(&format!("/api/v1/service-accounts/{}/tokens", account["id"].as_str().expect("id"))))
            .json(&json!({ "label": "tests" }))
            .send()
            .await
            .expect("create token")
            .json()
            .await
            .expect("json");
        Api {
            http: reqwest::Client::new(),
            base_url: base_url.to_owned(),
            token: token["token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request =
            self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("json body") };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn create_collector(&self, name: &str) -> String {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/collectors",
                Some(json!({ "name": name, "mode": "alloy-remotecfg" })),
            )
            .await;
        assert_eq!(status, 201, "create collector: {body}");
        assert_eq!(body["status"], "awaiting_connection");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Mints (or rotates) the collector token; returns the whole response.
    pub async fn mint(&self, collector_id: &str) -> Value {
        let (status, body) = self
            .request(reqwest::Method::POST, &format!("/api/v1/collectors/{collector_id}/token"), None)
            .await;
        assert_eq!(status, 201, "mint token: {body}");
        body
    }

    pub async fn mint_token(&self, collector_id: &str) -> String {
        self.mint(collector_id).await["token"].as_str().expect("token").to_owned()
    }

    pub async fn collector(&self, collector_id: &str) -> Value {
        self.get(&format!("/api/v1/collectors/{collector_id}")).await
    }

    pub async fn event_types(&self, collector_id: &str) -> Vec<String> {
        let events = self.get(&format!("/api/v1/collectors/{collector_id}/events?limit=1000")).await;
        events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|event| event["type"].as_str().expect("type").to_owned())
            .collect()
    }

    /// Waits (with a deadline, polling) until the collector's status is `status`.
    pub async fn wait_for_status(&self, collector_id: &str, status: &str) -> Value {
        let start = tokio::time::Instant::now();
        loop {
            let last = self.collector(collector_id).await;
            if last["status"] == status {
                return last;
            }
            assert!(start.elapsed() < WAIT_DEADLINE, "collector never reached {status}; last seen: {last}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the collector's event list contains `event_type` `count` times; returns all types.
    pub async fn wait_for_event(&self, collector_id: &str, event_type: &str, count: usize) -> Vec<String> {
        let start = tokio::time::Instant::now();
        loop {
            let types = self.event_types(collector_id).await;
            if types.iter().filter(|t| *t == event_type).count() >= count {
                return types;
            }
            assert!(
                start.elapsed() < WAIT_DEADLINE,
                "event {event_type} x{count} never recorded; events: {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How long a test waits for a condition before failing.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(15);

/// Polls `condition` until it holds or `deadline` passes.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while start.elapsed() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Unique within this test process (the caller adds the process id).
fn random_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A raw Connect call as Alloy makes it (binary proto, POST).
pub async fn connect_post<M: Message>(
    server: &Server,
    method: &str,
    token: Option<&str>,
    message: &M,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/collector.v1.CollectorService/{method}")))
        .header("content-type", "application/proto")
        .header("connect-protocol-version", "1")
        .body(message.encode_to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("connect call")
}

pub async fn get_config(
    server: &Server,
    token: &str,
    request: &pb::GetConfigRequest,
) -> pb::GetConfigResponse {
    let response = connect_post(server, "GetConfig", Some(token), request).await;
    assert_eq!(response.status(), 200, "GetConfig failed: {}", response.text().await.unwrap_or_default());
    pb::GetConfigResponse::decode(response.bytes().await.expect("body")).expect("decode response")
}

pub async fn register(server: &Server, token: &str, host_id: &str) {
    let request = pb::RegisterCollectorRequest {
        id: host_id.to_owned(),
        name: host_id.to_owned(),
        local_attributes: [("collector.os".to_owned(), "linux".to_owned())].into(),
        ..Default::default()
    };
    let response = connect_post(server, "RegisterCollector", Some(token), &request).await;
    assert_eq!(
        response.status(),
        200,
        "RegisterCollector failed: {}",
        response.text().await.unwrap_or_default()
    );
}

pub fn poll_request(host_id: &str, hash: &str) -> pb::GetConfigRequest {
    pb::GetConfigRequest { id: host_id.to_owned(), hash: hash.to_owned(), ..Default::default() }
}

/// The Connect error envelope of a failed call: (HTTP status, code, message).
pub async fn connect_error(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/json"), "error content type {content_type:?}");
    let body: Value = response.json().await.expect("error envelope is JSON");
    (
        status,
        body["code"].as_str().expect("code").to_owned(),
        body["message"].as_str().expect("message").to_owned(),
    )
}

/// One of the Go test tools under `tools/<name>`: the binary named by `env_var` (as `scripts/check.sh`
/// exports them), else built with `go build` into the test target dir. Go is a required test
/// dependency: without it the wire-compatibility tests fail rather than silently pass.
pub fn go_tool(name: &str, env_var: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let output = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&output)
        .arg(".")
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools").join(name))
        .status()
        .unwrap_or_else(|error| panic!("run `go build` for tools/{name} (Go >= 1.26 is required): {error}"));
    assert!(status.success(), "go build of tools/{name} failed");
    output
}

/// Waits until the node `api` talks to runs at feature level `level` (a single node raises its level
/// shortly after it starts; what is new at a level is refused, or not recorded, until then).
pub async fn wait_for_level(api: &Api, level: u64) {
    let reached = wait_until(Duration::from_secs(30), || async {
        api.get("/api/v1/cluster").await["feature_level"] == level
    })
    .await;
    assert!(reached, "the node never reached feature level {level}");
}
