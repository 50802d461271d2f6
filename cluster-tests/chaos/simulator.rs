//! The simulated fleet (`linkmesh simulate`): provisioned before the faults, then polling every
//! [`super::run`]'s fleet interval and pushing own_metrics through random nodes for the planned length
//! of the run. Its summary table (calls and errors per node) goes into the report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Simulator {
    child: Child,
    stderr_path: PathBuf,
}

fn command(urls: &[String], token: &str, collectors: usize, tokens_file: &Path) -> Command {
    let mut command = Command::new(crate::harness::binary());
    command
        .arg("simulate")
        .env("LINKMESH_TOKEN", token)
        .env_remove("LINKMESH_ADMIN_PASSWORD")
        .args(["--collectors", &collectors.to_string()])
        .args(["--name-prefix", "fleet-"])
        .args(["--request-timeout", "8s"])
        .args(["--connections", "32"])
        .arg("--tokens-file")
        .arg(tokens_file)
        .arg("--no-stdout-summary");
    for url in urls {
        command.arg("--url").arg(url);
    }
    command
}

impl Simulator {
    /// Provisions `collectors` collectors (waiting for it), then starts the fleet for `duration`.
    pub fn start(
        dir: &Path,
        urls: &[String],
        token: &str,
        collectors: usize,
        duration: Duration,
    ) -> Simulator {
        let tokens_file = dir.join("fleet-tokens.tsv");
        let provision = command(urls, token, collectors, &tokens_file)
            .arg("--provision-only")
            .output()
            .expect("run linkmesh simulate --provision-only");
        assert!(
            provision.status.success(),
            "provisioning the simulated fleet failed: {}",
            String::from_utf8_lossy(&provision.stderr)
        );
        let stderr_path = dir.join("simulate.log");
        let stderr = std::fs::File::create(&stderr_path).expect("simulate log");
        let child = command(urls, token, collectors, &tokens_file)
            .args(["--duration", &format!("{}s", duration.as_secs())])
            .args(["--poll-interval", super::run::FLEET_POLL_INTERVAL])
            .args(["--metrics-interval", "30s"])
            .args(["--ramp-up", super::run::FLEET_POLL_INTERVAL])
            .arg("--summary-json")
            .arg(dir.join("simulate.json"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn linkmesh simulate");
        Simulator { child, stderr_path }
    }

    /// Waits for the fleet's run to end (it stops by itself after its duration) and returns its summary
    /// table.
    pub fn finish(mut self) -> String {
        let status = self.child.wait().expect("wait for simulate");
        let log = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        // The table starts at the phase line `run (…)`; progress lines, if any, come before it.
        let start = if log.starts_with("run (") { Some(0) } else { log.find("\nrun (").map(|at| at + 1) };
        let table = start.map_or_else(|| log.clone(), |at| log[at..].to_owned());
        format!("exit: {status}\n{table}")
    }
}
