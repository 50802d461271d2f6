//! Storage test helpers: start the real binary on a given data dir and see whether it serves or refuses;
//! build, copy and damage data dirs.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "integration-test-admin-password";

/// How long a start may take before the test calls it a hang.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

pub enum Outcome {
    Serving(Node),
    Exited { code: Option<i32>, log: String },
}

impl Outcome {
    /// The refusal: exit code and log. Panics if the node served.
    pub fn refused(self) -> (Option<i32>, String) {
        match self {
            Outcome::Exited { code, log } => (code, log),
            Outcome::Serving(node) => panic!("the node served; log:\n{}", node.log()),
        }
    }

    pub fn serving(self) -> Node {
        match self {
            Outcome::Serving(node) => node,
            Outcome::Exited { code, log } => panic!("the node exited with {code:?}; log:\n{log}"),
        }
    }
}

pub struct Node {
    child: Option<Child>,
    pub base_url: String,
    pub data_dir: PathBuf,
    log_path: PathBuf,
}

impl Node {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
        assert!(status.success());
        child.wait().expect("wait")
    }

    /// Waits for the process to exit on its own, up to `deadline` (then kills it and panics).
    // std has no wait-with-timeout for a child: this polls its exit (the condition) against a deadline.
    #[allow(clippy::disallowed_methods)]
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let start = tokio::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the node did not exit within {deadline:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `linkmesh serve` on `data_dir` with `config`; returns once it listens or exits. A start that
/// does neither within [`START_DEADLINE`] is a hang and fails the test.
pub fn launch(data_dir: &Path, config: &str, addr: &str) -> Outcome {
    launch_with_files_in(data_dir, data_dir.parent().expect("data dir has a parent"), config, addr)
}

/// Like [`launch`], with the config and log files in `parent` instead of next to the data dir.
pub fn launch_with_files_in(data_dir: &Path, parent: &Path, config: &str, addr: &str) -> Outcome {
    let name = data_dir.file_name().expect("name").to_string_lossy().into_owned();
    let config_path = parent.join(format!("{name}.toml"));
    std::fs::write(&config_path, config).expect("write config");
    let log_path = parent.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--http-addr")
        .arg(addr)
        .arg("--rpc-addr")
        .arg("127.0.0.1:0")
        .env("LINKMESH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LINKMESH_LOG", "info")
        .env_remove("LINKMESH_DATA_KEY")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn linkmesh");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addrs) = line.strip_prefix("listening on ") {
                let _ = sender.send(addrs.split(',').next().unwrap_or_default().to_owned());
            }
        }
    });
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    match receiver.recv_timeout(START_DEADLINE) {
        Ok(bound) => Outcome::Serving(Node {
            child: Some(child),
            base_url: format!("http://{bound}"),
            data_dir: data_dir.to_owned(),
            log_path,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().expect("wait");
            Outcome::Exited { code: status.code(), log: read_log() }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "linkmesh neither served nor exited within {START_DEADLINE:?} (a hang); log:\n{}",
                read_log()
            );
        }
    }
}

/// A cookie-authenticated admin client.
pub async fn admin(base_url: &str) -> reqwest::Client {
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let login = client
        .post(format!("{base_url}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "login: {}", login.text().await.unwrap_or_default());
    client
}

/// Waits until the node's cluster runs at feature `level` (`GET /api/v1/cluster`): a data dir of an
/// older release starts at level 1 and its leader raises it within a second or two.
pub async fn wait_for_feature_level(base_url: &str, level: u64) {
    let client = admin(base_url).await;
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    loop {
        let view: Value = client
            .get(format!("{base_url}/api/v1/cluster"))
            .send()
            .await
            .expect("cluster")
            .json()
            .await
            .expect("cluster view");
        if view["feature_level"] == level {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reached feature level {level}: {view:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a collector; `Ok(id)` when acknowledged (201), else the status and body.
pub async fn create_collector(
    client: &reqwest::Client,
    base_url: &str,
    name: &str,
) -> Result<String, (u16, String)> {
    let response = client
        .post(format!("{base_url}/api/v1/collectors"))
        .json(&json!({ "name": name, "mode": "alloy-remotecfg" }))
        .send()
        .await
        .map_err(|error| (0, error.to_string()))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|error| (status, error.to_string()))?;
    if status != 201 {
        return Err((status, text));
    }
    let body: Value = serde_json::from_str(&text).expect("json");
    Ok(body["id"].as_str().expect("id").to_owned())
}

/// Creates `count` collectors, `concurrency` at a time; returns their ids.
pub async fn create_collectors(
    base_url: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> BTreeSet<String> {
    let client = admin(base_url).await;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, base_url, prefix) = (client.clone(), base_url.to_owned(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for index in (worker..count).step_by(concurrency) {
                let id =
                    create_collector(&client, &base_url, &format!("{prefix}-{index}")).await.expect("create");
                ids.push(id);
            }
            ids
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        ids.extend(task.await.expect("join"));
    }
    ids
}

pub async fn collector_ids(base_url: &str) -> BTreeSet<String> {
    let client = admin(base_url).await;
    let body: Value = client
        .get(format!("{base_url}/api/v1/collectors"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    body["collectors"]
        .as_array()
        .expect("collectors")
        .iter()
        .map(|collector| collector["id"].as_str().expect("id").to_owned())
        .collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(from).expect("meta").permissions().mode();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

/// Applies `change` to the bytes of `path`.
pub fn edit_file(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).expect("read");
    change(&mut bytes);
    std::fs::write(path, bytes).expect("write");
}

/// Runs `linkmesh check --data-dir`; returns (exit code, stdout).
pub fn check(data_dir: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_linkmesh"))
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("LINKMESH_DATA_KEY")
        .output()
        .expect("run check");
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The one refusal line the binary prints on stderr (besides the structured log).
pub fn refusal_line(log: &str) -> String {
    log.lines().rev().find(|line| line.starts_with("linkmesh: ")).unwrap_or_default().to_owned()
}
