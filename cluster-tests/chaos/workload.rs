//! The workload that runs through the faults, every call to a node picked at random:
//! - token probes: a few collectors whose token is rotated (and, now and then, the collector deleted
//!   and replaced) while pollers present the current and revoked tokens; every call is recorded with
//!   its invoke and return times for the linearizability check (`tools/linearcheck`);
//! - admin writers: create collectors, add a destination and a route, change the route, rotate tokens,
//!   delete collectors; every acknowledged write is remembered for the end check;
//! - the fleet: `linkmesh simulate` (started by `run.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{pb, poll_request};

/// Per-call timeout of the workload's HTTP calls; a call that times out is recorded as pending.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(8);
/// How often a probe poller polls.
pub const PROBE_POLL_EVERY: Duration = Duration::from_millis(250);

/// One clock for every recorded time: nanoseconds since the run started.
#[derive(Clone, Copy)]
pub struct RunClock(pub Instant);

impl RunClock {
    pub fn now(&self) -> i64 {
        (Instant::now() - self.0).as_nanos() as i64
    }
}

/// One recorded call (the JSON line format `tools/linearcheck` reads).
#[derive(Debug, Clone, Serialize)]
pub struct HistoryOp {
    pub collector: String,
    pub client: u32,
    pub op: &'static str,
    pub token: Option<String>,
    pub call: i64,
    #[serde(rename = "return")]
    pub ret: Option<i64>,
    pub outcome: &'static str,
    pub node: String,
}

/// A probe poll as the availability check sees it: one poll with the current token, retried once.
#[derive(Debug, Clone)]
pub struct ProbePoll {
    pub collector: String,
    /// Index of the node (1-based) the poll went through.
    pub node: usize,
    pub call: i64,
    /// When the last try returned or gave up.
    pub end: i64,
    /// Answered (accepted, or refused because a rotation overtook it) on the first try or the retry.
    pub answered: bool,
}

/// Everything the workload observed, shared by its tasks.
#[derive(Default)]
pub struct Record {
    pub history: Vec<HistoryOp>,
    pub probe_polls: Vec<ProbePoll>,
    /// Collector id → what the acknowledged writes say it must look like at the end.
    pub expected: BTreeMap<String, Expected>,
    pub writes_acked: u64,
    pub writes_unknown: u64,
    pub writes_refused: u64,
}

/// The end state acknowledged writes promise for one collector (`None`: an unacknowledged write may have
/// changed it, so it is not checked).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub exists: Option<bool>,
    pub token_prefix: Option<Option<String>>,
    /// Route id → its last acknowledged priority.
    pub route_priority: BTreeMap<String, Option<i64>>,
    /// Route id → the priorities of its writes whose outcome is unknown. Such a write may take effect
    /// at any time after it was sent, after a later acknowledged one too (a node paused with the
    /// request in its socket reads it when it resumes, after the client gave up and wrote again
    /// elsewhere), so the end state may show one of these instead of the last acknowledged value.
    pub route_unconfirmed: BTreeMap<String, Vec<i64>>,
    /// Token rotations whose outcome is unknown (their prefix never reached the workload): one of
    /// them may be what the end state shows, for the same reason.
    pub unconfirmed_rotations: u32,
}

/// What the workload's tasks share.
#[derive(Clone)]
pub struct Workload {
    pub http: reqwest::Client,
    /// `http://addr` of every node, index 0 = node 1.
    pub nodes: Vec<String>,
    pub admin_token: String,
    pub clock: RunClock,
    pub record: Arc<Mutex<Record>>,
    pub stop: Arc<AtomicBool>,
}

/// The outcome of a REST call.
enum Reply {
    Status(u16, Value),
    /// Timed out or the connection failed: it may or may not have taken effect.
    Lost,
}

impl Workload {
    pub fn new(nodes: Vec<String>, admin_token: String, clock: RunClock) -> Workload {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            // A connection per call: a node restarted on the same port leaves no dead pooled connection.
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client");
        Workload {
            http,
            nodes,
            admin_token,
            clock,
            record: Arc::new(Mutex::new(Record::default())),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn pick_node(&self) -> usize {
        rand::rng().random_range(0..self.nodes.len())
    }

    async fn rest(&self, node: usize, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request =
            self.http.request(method, format!("{}{path}", self.nodes[node])).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json().await.unwrap_or(Value::Null);
                Reply::Status(status, body)
            }
            Err(_) => Reply::Lost,
        }
    }

    /// A REST call through a node picked at random, timed for the history: (node index, invoke time,
    /// return time, reply).
    async fn timed_rest(&self, method: reqwest::Method, path: &str) -> (usize, i64, i64, Reply) {
        let node = self.pick_node();
        let call = self.clock.now();
        let reply = self.rest(node, method, path, None).await;
        (node, call, self.clock.now(), reply)
    }

    /// A REST call through a node picked at random.
    async fn rest_anywhere(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.rest(self.pick_node(), method, path, body).await
    }

    /// A setup call that must succeed: retried through random nodes until it does (or the deadline),
    /// with the body `body(try_number)` gives.
    async fn rest_until_ok(&self, method: reqwest::Method, path: &str, body: impl Fn(u32) -> Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        for try_number in 1.. {
            if let Reply::Status(200..=299, value) =
                self.rest(self.pick_node(), method.clone(), path, Some(body(try_number))).await
            {
                return value;
            }
            assert!(Instant::now() < deadline, "{method} {path} never succeeded");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!("the tries never end")
    }

    fn history(&self, op: HistoryOp) {
        self.record.lock().expect("record").history.push(op);
    }

    /// One GetConfig poll with `token` through node `node`: "accepted", "refused" or "unknown" (with no
    /// return time when no answer came).
    async fn poll(&self, node: usize, token: &str) -> (&'static str, Option<i64>) {
        let response = self
            .http
            .post(format!("{}/collector.v1.CollectorService/GetConfig", self.nodes[node]))
            .header("content-type", "application/proto")
            .header("connect-protocol-version", "1")
            .bearer_auth(token)
            .body(poll_request("chaos-probe", "").encode_to_vec())
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await;
                let ret = Some(self.clock.now());
                match status {
                    200 if body
                        .as_ref()
                        .is_ok_and(|body| pb::GetConfigResponse::decode(body.as_ref()).is_ok()) =>
                    {
                        ("accepted", ret)
                    }
                    401 => ("refused", ret),
                    _ => ("unknown", ret),
                }
            }
            Err(_) => ("unknown", None),
        }
    }
}

/// A token a probe holds: its label in the history and the secret.
#[derive(Clone)]
struct Held {
    label: String,
    secret: String,
}

/// The tokens of one probe collector: the current one and the ones rotated out.
#[derive(Default)]
struct ProbeState {
    collector: String,
    current: Option<Held>,
    revoked: Vec<Held>,
    next_label: u32,
}

/// Runs one probe slot until the workload stops: a collector, its rotator (this task) and its poller.
pub async fn probe(workload: Workload, slot: u32) {
    let state = Arc::new(Mutex::new(ProbeState::default()));
    let poller = tokio::spawn(probe_poller(workload.clone(), slot * 2 + 1, state.clone()));
    let mut generation = 0;
    while !workload.stopped() {
        generation += 1;
        new_probe_collector(&workload, slot, generation, &state).await;
        // Rotate every 0.5–1.5 s; about one iteration in 40 deletes the collector instead.
        loop {
            let pause = rand::rng().random_range(500..1500);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if workload.stopped() {
                break;
            }
            if rand::rng().random_range(0..40) == 0 {
                delete_probe_collector(&workload, slot * 2, &state).await;
                break;
            }
            rotate(&workload, slot * 2, &state).await;
        }
    }
    let _ = poller.await;
}

async fn new_probe_collector(workload: &Workload, slot: u32, generation: u32, state: &Mutex<ProbeState>) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A fresh name on every try: a create that timed out may have happened, and its name is taken.
        let created = workload
            .rest_until_ok(reqwest::Method::POST, "/api/v1/collectors", |try_number| {
                json!({"name": format!("probe-{slot}-{generation}-{attempt}-{try_number}"), "mode": "alloy-remotecfg"})
            })
            .await;
        let collector = created["id"].as_str().expect("id").to_owned();
        // The first token is "create" in the history (the register goes from no token to t0).
        let (node, call, ret, reply) = workload
            .timed_rest(reqwest::Method::POST, &format!("/api/v1/collectors/{collector}/token"))
            .await;
        let mut op = HistoryOp {
            collector: collector.clone(),
            client: slot * 2,
            op: "create",
            token: None,
            call,
            ret: None,
            outcome: "unknown",
            node: format!("node-{}", node + 1),
        };
        if let Reply::Status(201, body) = reply {
            op.token = Some("t0".to_owned());
            op.ret = Some(ret);
            op.outcome = "ok";
            workload.history(op);
            let mut state = state.lock().expect("probe");
            *state = ProbeState {
                collector,
                current: Some(Held {
                    label: "t0".into(),
                    secret: body["token"].as_str().expect("token").into(),
                }),
                revoked: Vec::new(),
                next_label: 1,
            };
            return;
        }
        // Unknown: the first token may exist, but nobody holds it. Recorded, then a fresh collector.
        workload.history(op);
    }
}

async fn rotate(workload: &Workload, client: u32, state: &Mutex<ProbeState>) {
    let (collector, label) = {
        let mut state = state.lock().expect("probe");
        let label = format!("t{}", state.next_label);
        state.next_label += 1;
        (state.collector.clone(), label)
    };
    let (node, call, ret, reply) =
        workload.timed_rest(reqwest::Method::POST, &format!("/api/v1/collectors/{collector}/token")).await;
    let (token, ret, outcome) = match &reply {
        Reply::Status(201, _) => (Some(label.clone()), Some(ret), "ok"),
        Reply::Status(404, _) => (None, Some(ret), "not_found"),
        Reply::Status(_, _) => (None, Some(ret), "unknown"),
        Reply::Lost => (None, None, "unknown"),
    };
    workload.history(HistoryOp {
        collector,
        client,
        op: "rotate",
        token,
        call,
        ret,
        outcome,
        node: format!("node-{}", node + 1),
    });
    if let Reply::Status(201, body) = reply {
        let mut state = state.lock().expect("probe");
        let held = Held { label, secret: body["token"].as_str().expect("token").into() };
        if let Some(old) = state.current.replace(held) {
            state.revoked.push(old);
        }
    }
}

async fn delete_probe_collector(workload: &Workload, client: u32, state: &Mutex<ProbeState>) {
    let collector = state.lock().expect("probe").collector.clone();
    let (node, call, ret, reply) =
        workload.timed_rest(reqwest::Method::DELETE, &format!("/api/v1/collectors/{collector}")).await;
    let (ret, outcome) = match reply {
        Reply::Status(204, _) => (Some(ret), "ok"),
        Reply::Status(404, _) => (Some(ret), "not_found"),
        Reply::Status(_, _) => (Some(ret), "unknown"),
        Reply::Lost => (None, "unknown"),
    };
    workload.history(HistoryOp {
        collector,
        client,
        op: "delete",
        token: None,
        call,
        ret,
        outcome,
        node: format!("node-{}", node + 1),
    });
    // The poller keeps presenting the dead collector's tokens until the next one is created: refusals.
    let mut state = state.lock().expect("probe");
    if let Some(old) = state.current.take() {
        state.revoked.push(old);
    }
}

/// Polls every [`PROBE_POLL_EVERY`]: mostly with the current token (retried once when unanswered, for
/// the availability check), sometimes with a revoked one.
async fn probe_poller(workload: Workload, client: u32, state: Arc<Mutex<ProbeState>>) {
    while !workload.stopped() {
        tokio::time::sleep(PROBE_POLL_EVERY).await;
        let (collector, held, current) = {
            let state = state.lock().expect("probe");
            let use_revoked =
                !state.revoked.is_empty() && (state.current.is_none() || rand::rng().random_range(0..4) == 0);
            if use_revoked {
                let held = state.revoked.choose(&mut rand::rng()).expect("revoked").clone();
                (state.collector.clone(), held, false)
            } else if let Some(held) = state.current.clone() {
                (state.collector.clone(), held, true)
            } else {
                continue;
            }
        };
        let node = workload.pick_node();
        let first_call = workload.clock.now();
        let mut answered = false;
        for attempt in 0..2 {
            let call = workload.clock.now();
            let (outcome, ret) = workload.poll(node, &held.secret).await;
            workload.history(HistoryOp {
                collector: collector.clone(),
                client,
                op: "poll",
                token: Some(held.label.clone()),
                call,
                ret,
                outcome,
                node: format!("node-{}", node + 1),
            });
            answered = outcome != "unknown";
            if answered || !current || attempt == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if current {
            let end = workload.clock.now();
            workload.record.lock().expect("record").probe_polls.push(ProbePoll {
                collector,
                node: node + 1,
                call: first_call,
                end,
                answered,
            });
        }
    }
}

/// One admin writer: creates its collectors (a destination and a route each), changes their routes,
/// rotates their tokens and deletes some, through random nodes, until the workload stops.
pub async fn admin_writer(workload: Workload, writer: u32) {
    let mut mine: Vec<(String, Option<(String, String)>)> = Vec::new();
    let mut made = 0;
    while !workload.stopped() {
        let pause = Duration::from_millis(rand::rng().random_range(50..250));
        tokio::time::sleep(pause).await;
        let roll = rand::rng().random_range(0..10);
        if mine.is_empty() || roll < 3 {
            made += 1;
            if let Some(created) = create_with_route(&workload, writer, made).await {
                mine.push(created);
            }
        } else if roll < 7 {
            let (collector, route) = mine.choose(&mut rand::rng()).expect("mine").clone();
            if let Some((route, destination)) = route {
                let priority = rand::rng().random_range(1..1000);
                let body = json!({
                    "name": "main",
                    "condition": "true",
                    "priority": priority,
                    "is_final": true,
                    "destination_ids": [destination],
                });
                let path = format!("/api/v1/collectors/{collector}/routes/{route}");
                let reply = workload.rest_anywhere(reqwest::Method::PUT, &path, Some(body)).await;
                note(&workload, &collector, reply, |expected, acked| {
                    expected.route_priority.insert(route.clone(), acked.then_some(priority));
                    if !acked {
                        expected.route_unconfirmed.entry(route.clone()).or_default().push(priority);
                    }
                });
            }
        } else if roll < 9 {
            let (collector, _) = mine.choose(&mut rand::rng()).expect("mine").clone();
            let reply = workload
                .rest_anywhere(reqwest::Method::POST, &format!("/api/v1/collectors/{collector}/token"), None)
                .await;
            let prefix = match &reply {
                Reply::Status(201, body) => body["prefix"].as_str().map(str::to_owned),
                _ => None,
            };
            note(&workload, &collector, reply, |expected, acked| {
                expected.token_prefix = acked.then(|| prefix.clone());
                if !acked {
                    expected.unconfirmed_rotations += 1;
                }
            });
        } else {
            let index = rand::rng().random_range(0..mine.len());
            let (collector, _) = mine.swap_remove(index);
            let reply = workload
                .rest_anywhere(reqwest::Method::DELETE, &format!("/api/v1/collectors/{collector}"), None)
                .await;
            note(&workload, &collector, reply, |expected, acked| {
                expected.exists = if acked { Some(false) } else { None };
            });
        }
    }
}

/// Records the outcome of a write on `collector`: `change(expected, acknowledged)` for an acknowledged
/// write or an unknown outcome; a refused write (4xx) changed nothing.
fn note(workload: &Workload, collector: &str, reply: Reply, change: impl FnOnce(&mut Expected, bool)) {
    let mut record = workload.record.lock().expect("record");
    let acked = match reply {
        Reply::Status(200..=299, _) => true,
        Reply::Status(400..=499, _) => {
            record.writes_refused += 1;
            return;
        }
        _ => false,
    };
    if acked {
        record.writes_acked += 1;
    } else {
        record.writes_unknown += 1;
    }
    change(record.expected.entry(collector.to_owned()).or_default(), acked);
}

/// Creates a collector with an OTLP/HTTP destination and a route to it; `None` when a step's outcome was not
/// acknowledged (what was acknowledged is still recorded).
async fn create_with_route(
    workload: &Workload,
    writer: u32,
    made: u32,
) -> Option<(String, Option<(String, String)>)> {
    let reply = workload
        .rest_anywhere(
            reqwest::Method::POST,
            "/api/v1/collectors",
            Some(json!({"name": format!("writer-{writer}-{made}"), "mode": "alloy-remotecfg"})),
        )
        .await;
    let Reply::Status(201, body) = reply else {
        let mut record = workload.record.lock().expect("record");
        record.writes_unknown += 1;
        return None;
    };
    let collector = body["id"].as_str().expect("id").to_owned();
    note(workload, &collector, Reply::Status(201, Value::Null), |expected, _| {
        expected.exists = Some(true);
        expected.token_prefix = Some(None);
    });
    let base = format!("/api/v1/collectors/{collector}");
    let reply = workload
        .rest_anywhere(
            reqwest::Method::POST,
            &format!("{base}/destinations"),
            Some(json!({"name": "console", "type": "otlp_http", "settings": {"endpoint": "https://otlp.example"}})),
        )
        .await;
    let Reply::Status(201, destination) = reply else { return Some((collector, None)) };
    let destination_id = destination["id"].as_str().expect("id").to_owned();
    let reply = workload
        .rest_anywhere(
            reqwest::Method::POST,
            &format!("{base}/routes"),
            Some(json!({"name": "main", "priority": 100, "destination_ids": [destination_id]})),
        )
        .await;
    let route = match &reply {
        Reply::Status(201, route) => route["id"].as_str().map(str::to_owned),
        _ => None,
    };
    let route_for_note = route.clone();
    note(workload, &collector, reply, |expected, acked| {
        if let Some(route) = route_for_note {
            expected.route_priority.insert(route, acked.then_some(100));
        }
    });
    Some((collector, route.map(|route| (route, destination_id))))
}
