//! One chaos run: three nodes in the lab, the workload through random nodes, the faults one after the
//! other (CI: every kind once; `LINKMESH_CHAOS_DURATION`: rounds of every kind in random order until the
//! time is up), then healing, the checks and the report (`target/chaos/<time>/report.md`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::checks::{self, FaultRecord, Samples};
use super::disk::SmallDisk;
use super::faults::{self, FaultKind};
use super::lab::Lab;
use super::proxy::{self, Knob};
use super::report::Report;
use super::workload::{self, RunClock, Workload};
use crate::harness::Node;
use crate::support::{go_tool, Api};

const NODES: usize = 3;
/// `cluster.node_down_after` for the run (the lease is 0.4 of it); elections start after 1–2 s.
const NODE_DOWN_AFTER: Duration = Duration::from_secs(6);
const LEASE: Duration = Duration::from_millis(2400);
/// Twice the default `raft.election_timeout` (1 s): the longest a follower waits before it campaigns.
const LONGEST_ELECTION: Duration = Duration::from_secs(2);
/// How long a network fault or a pause holds: longer than `node_down_after`, so slots move.
const HOLD: Duration = Duration::from_secs(8);
/// How long a node may take to be ready again after a fault healed.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);
/// The simulated fleet's poll interval (the server expects the same).
pub const FLEET_POLL_INTERVAL: &str = "10s";
/// The tmpfs that holds the disk-full node's data dir.
const SMALL_DISK_MIB: u64 = 256;

/// What the environment asks of the run.
pub struct Settings {
    /// `None`: every fault kind once (the CI run).
    pub duration: Option<Duration>,
    pub collectors: usize,
    pub probes: u32,
    pub writers: u32,
    pub dir: PathBuf,
}

impl Settings {
    pub fn from_env() -> Settings {
        let duration = std::env::var("LINKMESH_CHAOS_DURATION").ok().map(|text| parse_duration(&text));
        let collectors = std::env::var("LINKMESH_CHAOS_COLLECTORS")
            .ok()
            .map_or(1000, |text| text.parse().expect("collectors"));
        let dir = match std::env::var("LINKMESH_CHAOS_DIR") {
            Ok(dir) => PathBuf::from(dir),
            Err(_) => {
                let stamp = super::lab::run("date", &["-u", "+%Y%m%dT%H%M%SZ"]);
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/chaos").join(stamp.trim())
            }
        };
        Settings { duration, collectors, probes: 8, writers: 3, dir }
    }
}

/// `30m`, `90s`, `2h`.
fn parse_duration(text: &str) -> Duration {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().unwrap_or_else(|_| panic!("bad duration {text:?} (30m, 90s, 2h)"));
    Duration::from_secs(match unit {
        "s" | "" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => panic!("bad duration unit in {text:?} (s, m, h)"),
    })
}

/// The running lab: nodes, their delay knobs, the small disk.
/// Fields drop in order: the nodes are killed before their disk is unmounted and the lab torn down.
struct Fleet {
    nodes: Vec<Node>,
    knobs: Vec<Arc<Knob>>,
    disk: SmallDisk,
    /// Node ids by index (`ids[i - 1]` is node `i`).
    ids: Vec<u64>,
    admin: Api,
    lab: Lab,
}

fn node_config() -> String {
    format!(
        "activity_flush_interval = \"30ms\"\nshutdown_timeout = \"5s\"\n\n\
         [collectors]\ndefault_poll_interval = \"{FLEET_POLL_INTERVAL}\"\nmin_poll_interval = \"1s\"\n\
         stale_after_missed_polls = 3\ntick_interval = \"100ms\"\npassivate_after = \"600s\"\n\n\
         [cluster]\nmax_voters = {NODES}\nnode_down_after = \"{}s\"\n",
        NODE_DOWN_AFTER.as_secs()
    )
}

impl Fleet {
    async fn start(lab: Lab, dir: &Path) -> Fleet {
        let config = node_config();
        let mut nodes = Vec::new();
        let mut knobs = Vec::new();
        let mut disk = None;
        for i in 1..=NODES {
            let ip = lab.node_ip(i);
            knobs.push(proxy::start(
                lab.node_ns(i),
                format!("{ip}:9081").parse().expect("addr"),
                "127.0.0.1:8081".parse().expect("addr"),
            ));
            let mut node = Node::new(dir, &format!("node-{i}"), &config);
            node.netns = Some(lab.node_ns(i));
            node.http_addr = format!("{ip}:8080");
            node.rpc_addr = Some("127.0.0.1:8081".to_owned());
            node.extra_args = vec!["--advertise-rpc-addr".to_owned(), format!("{ip}:9081")];
            if i == NODES {
                let small = SmallDisk::mount(&dir.join(format!("node-{i}")).join("disk"), SMALL_DISK_MIB);
                node.data_dir = small.mount_point.join("data");
                disk = Some(small);
            }
            nodes.push(node);
        }
        nodes[0].start(None);
        let admin = Api::with_role_at(&nodes[0].url(""), "admin").await;
        for i in 1..NODES {
            let token = admin.create("/api/v1/cluster/join-tokens", json!({})).await["token"]
                .as_str()
                .expect("token")
                .to_owned();
            let join = (nodes[0].url(""), token);
            nodes[i].start(Some(join));
        }
        let mut fleet = Fleet { nodes, knobs, disk: disk.expect("small disk"), ids: Vec::new(), admin, lab };
        fleet.ids = fleet.nodes.iter().map(|node| node.identity().1).collect();
        fleet.wait_healthy("the three nodes formed the cluster").await;
        fleet
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.url("")).collect()
    }

    /// `GET /api/v1/cluster` through node `i`, if it answers.
    async fn view(&self, i: usize) -> Option<Value> {
        let response = self
            .admin
            .http
            .get(self.nodes[i - 1].url("/api/v1/cluster"))
            .bearer_auth(&self.admin.token)
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }

    async fn ready(&self, i: usize) -> bool {
        let response = self
            .admin
            .http
            .get(self.nodes[i - 1].url("/readyz"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        response.is_ok_and(|response| response.status() == 200)
    }

    /// Waits until every node is ready, every member is reachable and every member owns slots.
    async fn wait_healthy(&self, what: &str) {
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        loop {
            let mut healthy = true;
            for i in 1..=NODES {
                healthy &= self.nodes[i - 1].is_running() && self.ready(i).await;
            }
            if healthy {
                if let Some(view) = self.view(1).await {
                    healthy = view["members"].as_array().is_some_and(|members| {
                        members.len() == NODES
                            && members.iter().all(|member| {
                                member["state"] != "unreachable" && member["slots"].as_u64() > Some(0)
                            })
                    });
                } else {
                    healthy = false;
                }
            }
            if healthy {
                return;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|node| format!("--- {}\n{}", node.name, tail(&node.log(), 40)))
                    .collect();
                panic!(
                    "{what}: the cluster was not healthy within {RECOVERY_DEADLINE:?}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The current leader's index (1-based), asking the nodes in turn.
    async fn leader(&self) -> usize {
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        loop {
            for i in 1..=NODES {
                if let Some(view) = self.view(i).await {
                    if let Some(leader) = view["leader_id"].as_u64() {
                        if let Some(index) = self.ids.iter().position(|id| *id == leader) {
                            return index + 1;
                        }
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader known");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /api/v1/cluster/leader` to another voter, and waits until the lead moved; as an operator
    /// would, sends it again when the transfer's window passed without a change (three times at most).
    async fn move_leadership_from(&self, i: usize) {
        let target = (1..=NODES).find(|&other| other != i).expect("another node");
        for attempt in 1..=3 {
            // A fresh client: a pooled connection to a node restarted on the same port is dead.
            let response = reqwest::Client::new()
                .post(self.nodes[target - 1].url("/api/v1/cluster/leader"))
                .bearer_auth(&self.admin.token)
                .json(&json!({"node_id": self.ids[target - 1]}))
                .send()
                .await
                .expect("transfer-leader");
            let status = response.status();
            if status != 202 {
                // 409 while the target is still catching up after its own restart: try again.
                eprintln!("chaos: transfer-leader to node-{target}: {status} {:?}", response.text().await);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if self.leader().await != i {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            eprintln!("chaos: leadership still on node-{i} 10 s after transfer-leader (attempt {attempt})");
        }
        panic!("leadership never left node-{i} after three transfer-leader calls");
    }

    fn restart(&mut self, i: usize) {
        self.nodes[i - 1].start(None);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Injects one fault, holds it, heals it and waits for recovery; returns its record.
async fn inject(fleet: &mut Fleet, kind: FaultKind, clock: RunClock, first_disk_fault: bool) -> FaultRecord {
    let start = clock.now();
    let mut nodes_out = Vec::new();
    let note;
    match kind {
        FaultKind::PartitionOne => {
            let leader = fleet.leader().await;
            let victim = (1..=NODES).find(|&i| i != leader).expect("a follower");
            faults::isolate(&fleet.lab, victim);
            nodes_out.push(victim);
            note = format!("node-{victim} (a follower) cut off from the others");
            tokio::time::sleep(HOLD).await;
            faults::heal(&fleet.lab);
        }
        FaultKind::IsolateLeader => {
            let leader = fleet.leader().await;
            faults::isolate(&fleet.lab, leader);
            nodes_out.push(leader);
            note = format!("node-{leader} (the leader) cut off from the others");
            tokio::time::sleep(HOLD).await;
            faults::heal(&fleet.lab);
        }
        FaultKind::OneWay => {
            let leader = fleet.leader().await;
            let to = (1..=NODES).find(|&i| i != leader).expect("a follower");
            faults::one_way(&fleet.lab, leader, to);
            // TCP needs both ways: the leader loses `to`, `to` loses the leader; the third node sees both.
            nodes_out.push(to);
            note =
                format!("packets node-{leader} (leader) → node-{to} dropped, node-{to} → node-{leader} flow");
            tokio::time::sleep(HOLD).await;
            faults::heal(&fleet.lab);
        }
        FaultKind::PacketLoss => {
            for i in 1..=NODES {
                faults::loss(&fleet.lab, i, 10);
            }
            note = "10 % random loss on every node's traffic".to_owned();
            tokio::time::sleep(HOLD * 2).await;
            faults::heal(&fleet.lab);
        }
        FaultKind::DelayJitter => {
            for knob in &fleet.knobs {
                knob.set(Duration::from_millis(40), Duration::from_millis(40));
            }
            note = "40 ms + up to 40 ms jitter on every peer connection, each way".to_owned();
            tokio::time::sleep(HOLD * 2).await;
            for knob in &fleet.knobs {
                knob.set(Duration::ZERO, Duration::ZERO);
            }
        }
        FaultKind::Pause => {
            let victim = rand::random_range(1..=NODES);
            fleet.nodes[victim - 1].signal("STOP");
            nodes_out.push(victim);
            note = format!("node-{victim} SIGSTOPped for {HOLD:?}");
            tokio::time::sleep(HOLD).await;
            fleet.nodes[victim - 1].signal("CONT");
        }
        FaultKind::KillRestart => {
            let leader = fleet.leader().await;
            fleet.nodes[leader - 1].kill();
            nodes_out.push(leader);
            note = format!("node-{leader} (the leader) SIGKILLed, restarted {HOLD:?} later");
            tokio::time::sleep(HOLD).await;
            fleet.restart(leader);
        }
        FaultKind::RollingRestart => {
            // As docs/operations.md's "Rolling restart and upgrade" says: followers first, then the
            // leader after moving the lead away; each node back and caught up before the next.
            let leader = fleet.leader().await;
            let order: Vec<usize> =
                (1..=NODES).filter(|&i| i != leader).chain(std::iter::once(leader)).collect();
            nodes_out.extend(order.iter().copied());
            for &i in &order {
                if i == leader {
                    fleet.move_leadership_from(i).await;
                }
                let status = fleet.nodes[i - 1].stop();
                assert!(status.success(), "node-{i} stopped with {status} on SIGTERM");
                fleet.restart(i);
                fleet.wait_healthy(&format!("rolling restart of node-{i}")).await;
            }
            note = format!(
                "nodes stopped (SIGTERM) and started again one at a time, followers first, the leader (node-{leader}) \
                 last after a leadership transfer; each waited ready and caught up"
            );
        }
        FaultKind::DiskFull => {
            let victim = NODES;
            fleet.disk.fill();
            nodes_out.push(victim);
            let status = fleet.nodes[victim - 1].wait_exit(Duration::from_secs(60)).await;
            fleet.disk.free();
            match status {
                Some(status) => {
                    assert_eq!(
                        status.code(),
                        Some(4),
                        "node-{victim} on a full disk must stop itself with exit code 4; it gave {status}; log:\n{}",
                        tail(&fleet.nodes[victim - 1].log(), 40)
                    );
                    note = format!(
                        "node-{victim}'s data dir filled up: it exited with code 4; space freed, restarted"
                    );
                    fleet.restart(victim);
                }
                // The store reuses the space of segments it freed, so a full file system bites only
                // when the log must grow: the first time in a run it always does (the CI run checks
                // that); later, a node that never failed to write keeps serving, as it should.
                None if !first_disk_fault => {
                    assert!(
                        fleet.ready(victim).await,
                        "node-{victim} neither stopped nor stayed ready on a full disk"
                    );
                    note = format!("node-{victim}'s data dir filled up for 60 s: it never needed new space and kept serving");
                }
                None => panic!(
                    "node-{victim} on a full disk never stopped itself; log:\n{}",
                    tail(&fleet.nodes[victim - 1].log(), 40)
                ),
            }
        }
    }
    let healed = clock.now();
    fleet.wait_healthy(&format!("after {}", kind.name())).await;
    FaultRecord { kind, nodes_out, start, healed, recovered: clock.now(), note }
}

/// Samples the slot table and the leader every 500 ms until the workload stops. The leader is the one
/// named by the view with the highest term: a deposed leader cut off from the others still names itself.
async fn sample_cluster(workload: Workload, samples: Arc<Mutex<Samples>>) {
    let get = |url: String| {
        let request =
            workload.http.get(url).bearer_auth(&workload.admin_token).timeout(Duration::from_secs(1));
        async move { request.send().await.ok()?.json::<Value>().await.ok() }
    };
    while !workload.stop.load(Ordering::Relaxed) {
        let at = workload.clock.now();
        let mut views = tokio::task::JoinSet::new();
        for node in &workload.nodes {
            views.spawn(get(format!("{node}/api/v1/cluster")));
        }
        let mut leader: Option<(u64, Option<u64>)> = None;
        while let Some(view) = views.join_next().await {
            let Some(view) = view.ok().flatten() else { continue };
            let term = view["term"].as_u64().unwrap_or(0);
            if leader.is_none_or(|(best, _)| term > best) {
                leader = Some((term, view["leader_id"].as_u64()));
            }
        }
        let mut owners = None;
        for node in &workload.nodes {
            if let Some(slots) = get(format!("{node}/api/v1/cluster/slots")).await {
                owners = slots["slots"]
                    .as_array()
                    .map(|slots| slots.iter().map(|slot| slot["owner"].as_u64().unwrap_or(0)).collect());
                break;
            }
        }
        {
            let mut samples = samples.lock().expect("samples");
            // No view at all: every node was busy electing or unreachable; that is a leader gap too.
            samples.leaders.push((at, leader.and_then(|(_, leader)| leader)));
            if let Some(owners) = owners {
                samples.owners.push((at, owners));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn run(lab: Lab, settings: Settings) {
    std::fs::create_dir_all(&settings.dir).expect("run dir");
    let mut report = Report::new(&settings.dir);
    let linearcheck = go_tool("linearcheck", "LINKMESH_LINEARCHECK");
    let mut fleet = Fleet::start(lab, &settings.dir.join("nodes")).await;
    let clock = RunClock(Instant::now());
    let workload = Workload::new(fleet.urls(), fleet.admin.token.clone(), clock);

    // The simulated fleet: provisioned first, then polling and pushing through random nodes.
    let planned = settings.duration.unwrap_or(Duration::from_secs(150));
    let simulator = super::simulator::Simulator::start(
        &settings.dir,
        &fleet.urls(),
        &fleet.admin.token,
        settings.collectors,
        planned,
    );

    let samples = Arc::new(Mutex::new(Samples::default()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(sample_cluster(workload.clone(), samples.clone()));
    for slot in 0..settings.probes {
        tasks.spawn(workload::probe(workload.clone(), slot));
    }
    for writer in 0..settings.writers {
        tasks.spawn(workload::admin_writer(workload.clone(), writer));
    }
    // Quiet operation first, so the history has a baseline.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut faults_done = Vec::new();
    let started = Instant::now();
    loop {
        let mut round = FaultKind::ALL.to_vec();
        if settings.duration.is_some() {
            round.shuffle(&mut rand::rng());
        }
        for kind in round {
            eprintln!("chaos: {} at {:.1}s", kind.name(), clock.now() as f64 / 1e9);
            let first_disk_fault =
                !faults_done.iter().any(|done: &FaultRecord| done.kind == FaultKind::DiskFull);
            let record = inject(&mut fleet, kind, clock, first_disk_fault).await;
            eprintln!(
                "chaos: {} done ({}), recovered at {:.1}s",
                kind.name(),
                record.note,
                record.recovered as f64 / 1e9
            );
            faults_done.push(record);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if settings.duration.is_none_or(|duration| started.elapsed() >= duration) {
            break;
        }
    }
    // Healed: a little more quiet operation, then the workload stops.
    tokio::time::sleep(Duration::from_secs(3)).await;
    workload.stop.store(true, Ordering::Relaxed);
    while tasks.join_next().await.is_some() {}
    let simulated = simulator.finish();

    let record = std::mem::take(&mut *workload.record.lock().expect("record"));
    let history_path = settings.dir.join("history.jsonl");
    let lines: Vec<String> = record.history.iter().map(|op| serde_json::to_string(op).expect("op")).collect();
    std::fs::write(&history_path, lines.join("\n") + "\n").expect("write history");

    let linear =
        checks::linearizable(&linearcheck, &history_path, &settings.dir.join("linearizability.html"));
    let writes_read_back =
        checks::acknowledged_writes(&workload.http, &workload.nodes, &workload.admin_token, &record.expected)
            .await;
    let failover_bound = LEASE + NODE_DOWN_AFTER + LONGEST_ELECTION + workload::PROBE_POLL_EVERY * 2;
    let samples = samples.lock().expect("samples").clone();
    let availability = checks::availability(
        &record.probe_polls,
        &faults_done,
        &samples,
        &fleet.ids,
        LEASE,
        LONGEST_ELECTION,
    );
    let (states, converged) =
        checks::convergence(&workload.http, &workload.nodes, &workload.admin_token, Duration::from_secs(90))
            .await;

    report.setup(NODES, settings.collectors, settings.probes, settings.writers, NODE_DOWN_AFTER, LEASE);
    report.faults(&faults_done);
    report.operations(&record, &simulated);
    report.linearizability(&linear);
    report.writes(&writes_read_back, record.writes_acked, record.writes_unknown, record.writes_refused);
    report.availability(&availability, failover_bound, &samples.leader_changes());
    report.convergence(&states, converged);
    let missing: Vec<&str> = FaultKind::ALL
        .iter()
        .filter(|kind| !faults_done.iter().any(|done| done.kind == **kind))
        .map(|kind| kind.name())
        .collect();
    let failures = report.finish(&missing);
    for node in &fleet.nodes {
        let _ = std::fs::copy(&node.log_path, settings.dir.join(format!("{}.log", node.name)));
    }
    eprintln!("chaos report: {}", settings.dir.join("report.md").display());
    assert!(
        failures.is_empty(),
        "the chaos run failed:\n- {}\nreport: {}",
        failures.join("\n- "),
        settings.dir.join("report.md").display()
    );
}
