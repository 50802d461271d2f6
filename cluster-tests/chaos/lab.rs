//! The lab: one network namespace per node, one for the test's clients, and a bridge in a namespace of
//! the run's own, joined by veth pairs. The addresses (`10.77.0.0/24`) exist only on those interfaces and
//! no namespace has a route out, so no packet leaves the machine. Each node namespace has an nftables
//! table (`inet chaos`) that the faults fill and flush.
//!
//! Namespaces are named `lmc<pid>-<role>`, so two runs never collide; a run first deletes the
//! namespaces of runs whose process is gone (a run that was SIGKILLed cannot clean up after itself).
//! Everything is torn down when the [`Lab`] drops, also after a failed assertion.

use std::fs::File;
use std::process::Command;

use nix::sched::{setns, CloneFlags};

/// The lab's subnet; node `i` (1-based) is `10.77.0.(10 + i)`, the clients `10.77.0.2`.
const SUBNET_PREFIX: &str = "10.77.0";
const CLIENT_IP: &str = "10.77.0.2";

/// What the run needs from the machine, checked before anything is created: a missing tool or
/// privilege fails the run with the remedy, never skips it.
pub fn preflight() -> Result<(), String> {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing
            .push("root (network namespaces and nftables need CAP_NET_ADMIN and CAP_SYS_ADMIN)".to_owned());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables"), ("mount", "mount")] {
        let found = Command::new(tool).arg("--version").output().is_ok_and(|out| out.status.success())
            || Command::new(tool).arg("-V").output().is_ok_and(|out| out.status.success());
        if !found {
            missing.push(format!("`{tool}` (apt-get install {package})"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("the chaos run cannot start; missing: {}", missing.join(", ")))
    }
}

/// Runs a command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} {args:?}: {error}"));
    assert!(
        output.status.success(),
        "{program} {} failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub struct Lab {
    pub prefix: String,
    pub nodes: usize,
}

impl Lab {
    /// Builds the namespaces, the bridge, the veth pairs and the nftables tables for `nodes` nodes.
    pub fn create(nodes: usize) -> Lab {
        remove_stale_labs();
        let lab = Lab { prefix: format!("lmc{}", std::process::id()), nodes };
        let hub = lab.hub();
        run("ip", &["netns", "add", &hub]);
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &hub, "link", "set", "br0", "up"]);
        let members: Vec<(String, String)> = std::iter::once((lab.client_ns(), CLIENT_IP.to_owned()))
            .chain((1..=nodes).map(|i| (lab.node_ns(i), lab.node_ip(i))))
            .collect();
        for (index, (ns, ip)) in members.iter().enumerate() {
            let port = format!("p{index}");
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run(
                "ip",
                &["-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns],
            );
            run("ip", &["-n", &hub, "link", "set", &port, "master", "br0"]);
            run("ip", &["-n", &hub, "link", "set", &port, "up"]);
            run("ip", &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        }
        for i in 1..=nodes {
            lab.nft(
                i,
                "add table inet chaos\n\
                 add chain inet chaos input { type filter hook input priority 0; policy accept; }\n\
                 add chain inet chaos output { type filter hook output priority 0; policy accept; }\n",
            );
        }
        lab
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    pub fn client_ns(&self) -> String {
        format!("{}-cl", self.prefix)
    }

    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    pub fn node_ip(&self, i: usize) -> String {
        format!("{SUBNET_PREFIX}.{}", 10 + i)
    }

    /// Moves the calling thread into the clients' namespace: every socket it (and every thread it
    /// spawns afterwards) opens is there, and so is every process it starts.
    pub fn enter_client_ns(&self) {
        enter_ns(&self.client_ns());
    }

    /// Feeds `script` to `nft -f -` inside node `i`'s namespace.
    pub fn nft(&self, i: usize, script: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.node_ns(i), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write nft script");
        let output = child.wait_with_output().expect("nft");
        assert!(
            output.status.success(),
            "nft in {} refused:\n{script}\n{}",
            self.node_ns(i),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_namespaces(&self.prefix);
    }
}

/// Moves the calling thread into the named namespace (`/run/netns/<name>`).
pub fn enter_ns(name: &str) {
    let file =
        File::open(format!("/run/netns/{name}")).unwrap_or_else(|error| panic!("open netns {name}: {error}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|error| panic!("setns {name}: {error}"));
}

fn namespaces() -> Vec<String> {
    let listing =
        Command::new("ip").args(["netns", "list"]).output().map(|out| out.stdout).unwrap_or_default();
    String::from_utf8_lossy(&listing)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn delete_namespaces(prefix: &str) {
    for ns in namespaces().into_iter().filter(|ns| ns.starts_with(&format!("{prefix}-"))) {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
}

/// Deletes the namespaces of earlier runs whose process no longer exists.
fn remove_stale_labs() {
    for ns in namespaces() {
        let Some(pid) = ns.strip_prefix("lmc").and_then(|rest| rest.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}
