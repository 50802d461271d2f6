//! Real `linkmesh` processes on loopback: a node per process, its own data dir, port 0 for HTTP and the
//! cluster port on the first start (the bound addresses are read from the `listening on` and
//! `cluster port listening on` lines), the same addresses on a restart.
//!
//! [`Cluster::start`] bootstraps node 1, mints a join token per node through the API and joins the
//! others with `serve --join <node 1> --join-token <token>`. Every wait has a deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Api, ADMIN_PASSWORD, FAST_CONFIG};

/// How long a node may take to print its addresses (a joined node prints them once it caught up).
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a test waits for the cluster to show a condition.
pub const CONVERGE_DEADLINE: Duration = Duration::from_secs(30);

/// The binary the nodes run: `LINKMESH_BIN` when set (`scripts/check.sh` gives the chaos run the
/// release build, what operators run), else this test's build of the crate.
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("LINKMESH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_linkmesh").into())
}

/// Node settings: the integration tests' fast batching, and `max_voters`.
pub fn config(max_voters: usize) -> String {
    format!("{FAST_CONFIG}\n[cluster]\nmax_voters = {max_voters}\n")
}

pub struct Node {
    child: Option<Child>,
    pub name: String,
    pub data_dir: PathBuf,
    config_path: PathBuf,
    pub log_path: PathBuf,
    /// `host:port` of the HTTP listener, once started.
    pub http_addr: String,
    /// `host:port` of the cluster port, once started (when the build prints it).
    pub rpc_addr: Option<String>,
    /// `--join` and `--join-token` given at the first start, repeated on restarts (they must be ignored).
    join: Option<(String, String)>,
    /// The network namespace the node runs in (`ip netns exec`; the chaos lab), else the test's own.
    pub netns: Option<String>,
    /// Further `serve` flags (the chaos lab's `--advertise-rpc-addr`).
    pub extra_args: Vec<String>,
    /// Further environment variables of the node's process.
    pub env: Vec<(String, String)>,
}

/// Why a node did not come up: its exit status (if it exited) and its log.
#[derive(Debug)]
pub struct StartFailure {
    pub status: Option<ExitStatus>,
    pub log: String,
}

impl Node {
    /// A node in `root/<name>` (the data dir is created by the node itself).
    pub fn new(root: &Path, name: &str, config: &str) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        let config_path = dir.join("linkmesh.toml");
        std::fs::write(&config_path, config).expect("write config");
        Node {
            child: None,
            name: name.to_owned(),
            data_dir: dir.join("data"),
            config_path,
            log_path: dir.join("server.log"),
            http_addr: "127.0.0.1:0".to_owned(),
            rpc_addr: None,
            join: None,
            netns: None,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Starts the node (bootstrapping, joining or resuming, as its data dir and `join` say) and waits
    /// for its addresses, or for it to exit.
    pub fn try_start(&mut self, join: Option<(String, String)>) -> Result<(), StartFailure> {
        if join.is_some() {
            self.join = join;
        }
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).expect("log file");
        // `ip netns exec` execs the binary itself, so the child's pid is the node's (signals reach it).
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec"]).arg(netns).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        command
            .env("LINKMESH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LINKMESH_LOG", "info")
            .env_remove("LINKMESH_DATA_KEY")
            .env_remove("LINKMESH_JOIN_TOKEN")
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http-addr")
            .arg(&self.http_addr)
            .arg("--rpc-addr")
            .arg(self.rpc_addr.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--node-name")
            .arg(&self.name);
        if let Some((url, token)) = &self.join {
            command.arg("--join").arg(url).arg("--join-token").arg(token);
        }
        command.args(&self.extra_args).envs(self.env.iter().map(|(key, value)| (key, value)));
        let mut child = command.stdout(Stdio::piped()).stderr(log).spawn().expect("spawn linkmesh");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = mpsc::channel();
        // Reads stdout to its end, so the node never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("cluster port listening on ") {
                        self.rpc_addr = Some(addr.trim().to_owned());
                    } else if let Some(addrs) = line.strip_prefix("listening on ") {
                        self.http_addr = addrs.split(',').next().expect("addr").trim().to_owned();
                        self.child = Some(child);
                        return Ok(());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(StartFailure { status: Some(status), log: self.log() });
                    }
                    if left.is_zero() {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(StartFailure { status: None, log: self.log() });
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().ok();
                    return Err(StartFailure { status, log: self.log() });
                }
            }
        }
    }

    pub fn start(&mut self, join: Option<(String, String)>) {
        if let Err(failure) = self.try_start(join) {
            panic!("node {} did not start ({:?}); log:\n{}", self.name, failure.status, failure.log);
        }
    }

    /// SIGTERM, and wait for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status =
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill -TERM");
        assert!(status.success());
        child.wait().expect("wait")
    }

    #[allow(dead_code)] // the chaos run's (cluster-tests/chaos)
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    #[allow(dead_code)] // the chaos run's
    /// Waits up to `deadline` for the node to exit on its own; its status, or `None` if it still runs.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the running node, as `kill -<signal>` would.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    /// `identity.json`'s cluster id and node id.
    pub fn identity(&self) -> (String, u64) {
        let text = std::fs::read_to_string(self.data_dir.join("identity.json")).expect("identity.json");
        let body: Value = serde_json::from_str(text.lines().next().expect("body line")).expect("json");
        let identity = &body["identity"];
        (
            identity["cluster_id"].as_str().expect("cluster id").to_owned(),
            identity["node_id"].as_u64().expect("id"),
        )
    }

    /// `GET /api/v1/cluster` on this node. Sent twice at most: the client's pooled connection to a
    /// node that restarted on the same port is dead, and reqwest reports that instead of redialling.
    pub async fn cluster(&self, api: &Api) -> Value {
        let url = self.url("/api/v1/cluster");
        let mut response = api.http.get(&url).bearer_auth(&api.token).send().await;
        if response.is_err() {
            response = api.http.get(&url).bearer_auth(&api.token).send().await;
        }
        let response = response.unwrap_or_else(|error| {
            panic!("GET /api/v1/cluster on {}: {error}; log:\n{}", self.name, self.log())
        });
        assert_eq!(response.status(), 200, "GET /api/v1/cluster on {}", self.name);
        response.json().await.expect("json")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Cluster {
    pub root: tempfile::TempDir,
    pub nodes: Vec<Node>,
    /// An admin service account (replicated: valid on every node).
    pub admin: Api,
    pub config: String,
    /// Nodes made so far, started or refused: each gets its own name and data dir.
    made: std::cell::Cell<usize>,
}

impl Cluster {
    /// Node 1 bootstraps; nodes 2..=`size` join through node 1, one at a time.
    pub async fn start(size: usize, max_voters: usize) -> Cluster {
        Cluster::start_with_config(size, config(max_voters)).await
    }

    /// [`Cluster::start`] with the nodes' settings as given.
    pub async fn start_with_config(size: usize, config: String) -> Cluster {
        let root = tempfile::tempdir().expect("temp dir");
        let first = Node::new(root.path(), "node-1", &config);
        Cluster::start_from(root, first, size, config).await
    }

    /// Starts `first` (a node made in `root`, not started), then joins nodes 2..=`size` through it.
    pub async fn start_from(
        root: tempfile::TempDir,
        mut first: Node,
        size: usize,
        config: String,
    ) -> Cluster {
        first.start(None);
        let admin = Api::with_role_at(&format!("http://{}", first.http_addr), "admin").await;
        let mut cluster = Cluster { root, nodes: vec![first], admin, config, made: std::cell::Cell::new(1) };
        for _ in 1..size {
            cluster.add_node().await;
        }
        cluster
    }

    /// A join token from the API (through node 1).
    pub async fn join_token(&self, body: Value) -> Value {
        self.admin.create("/api/v1/cluster/join-tokens", body).await
    }

    /// A new node joined with a fresh single-use token, started until it serves.
    pub async fn add_node(&mut self) -> &Node {
        let token = self.join_token(json!({})).await["token"].as_str().expect("token").to_owned();
        let mut node = self.new_node();
        node.start(Some((self.nodes[0].url(""), token)));
        self.nodes.push(node);
        self.nodes.last().expect("node")
    }

    /// A node of this cluster's config that has not started.
    pub fn new_node(&self) -> Node {
        self.made.set(self.made.get() + 1);
        Node::new(self.root.path(), &format!("node-{}", self.made.get()), &self.config)
    }

    /// Waits until every node's `GET /api/v1/cluster` satisfies `condition`; returns the views.
    pub async fn wait_for_views(&self, what: &str, condition: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.wait_for_all(what, |views| views.iter().all(&condition)).await
    }

    /// Waits until the views of all nodes, together, satisfy `condition`; returns them.
    pub async fn wait_for_all(&self, what: &str, condition: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + CONVERGE_DEADLINE;
        loop {
            let mut views = Vec::new();
            for node in &self.nodes {
                views.push(node.cluster(&self.admin).await);
            }
            if condition(&views) {
                return views;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster never showed {what}; views: {views:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The members of a `GET /api/v1/cluster` view by role.
pub fn members_with_role(view: &Value, role: &str) -> Vec<u64> {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|member| member["role"] == role)
        .map(|member| member["id"].as_u64().expect("id"))
        .collect()
}

/// The sum of the members' slot counts.
pub fn slots_total(view: &Value) -> u64 {
    view["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| member["slots"].as_u64().expect("slots"))
        .sum()
}
