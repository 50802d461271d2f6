//! `linkmesh simulate --opamp-push`: how long a config change takes to reach OpAMP agents (issue 18,
//! item 7). `--collectors` `opamp` collectors are created with a label of their own and tokens; one
//! agent per collector connects, is offered its config and applies it; then, `--rounds` times, one
//! fleet-wide REST write (a source for the label) changes every collector's config at once, and each
//! agent notes when the new config reaches it. The figures are the time from just before the write
//! to each receipt (p50, p99, max, and how many arrived).
//!
//! `--opamp-transport` picks how the agents talk: over a WebSocket (the server pushes a change at
//! once), over plain HTTP (one `POST` of `application/x-protobuf` per message, polling at the
//! heartbeat interval the server offers, as the Python and Node OpAMP clients do: a change waits for
//! the next poll), or half of each. Either way an agent is an [`opamp_agent::SimAgent`]: it reports
//! its capabilities, description, health and effective config, each offered config `APPLYING` then
//! `APPLIED`, and pushes its own metrics every `--metrics-interval` once offered a destination.
//!
//! The WebSocket agents speak RFC 6455 framing written here (a handshake, masked binary frames out,
//! unmasked frames in, pings answered) over plain `ws://`: a load generator needs nothing of a
//! WebSocket library's, and `tests/opamp_ws.rs` checks the server against opamp-go's own client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use rand::Rng as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

use super::http_client::{CallError, SimHttpClient};
use super::nodes::Nodes;
use super::opamp_agent::SimAgent;
use super::own_metrics::{encode_body, Compression};
use super::provision::{AdminApi, MAX_BATCH};
use super::stats::{CallKind, Stats};
use super::{SimulateArgs, SimulateError};
use crate::http::ws_limit::client_frame_header;
use crate::opamp::frame;
use crate::proto::opamp::v1 as pb;

/// How long a round waits for every agent's receipt.
const ROUND_DEADLINE: Duration = Duration::from_secs(60);
/// Agents connecting (upgrade and first exchange) at once.
const CONNECTING_AT_ONCE: usize = 256;
/// How often a plain-HTTP agent polls until the server offers its heartbeat interval (opamp-go's
/// default polling interval).
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// How the agents reach the server (`--opamp-transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpampTransport {
    /// One WebSocket per agent; the server pushes changes.
    Ws,
    /// Plain-HTTP `POST`s, polling at the offered heartbeat interval.
    Http,
    /// Every other agent over plain HTTP, the rest over WebSocket.
    Mixed,
}

impl OpampTransport {
    fn agent_uses_http(self, index: usize) -> bool {
        match self {
            OpampTransport::Ws => false,
            OpampTransport::Http => true,
            OpampTransport::Mixed => index % 2 == 1,
        }
    }
}

/// What the agents did besides receiving configs, for the summary.
#[derive(Debug, Default)]
struct AgentCounters {
    http_agents: AtomicU64,
    websocket_agents: AtomicU64,
    own_metrics_ok: AtomicU64,
    own_metrics_failed: AtomicU64,
}

/// The whole run: the rounds, and the agents' transports and own-metrics pushes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushRun {
    pub rounds: Vec<RoundFigures>,
    pub http_agents: u64,
    pub websocket_agents: u64,
    pub own_metrics_pushes_ok: u64,
    pub own_metrics_pushes_failed: u64,
}

/// What every agent of a run shares.
struct AgentContext {
    host: String,
    base_url: String,
    http: SimHttpClient,
    metrics_interval: Duration,
    compression: Compression,
    counters: AgentCounters,
    receipts: mpsc::UnboundedSender<Instant>,
    ready: Arc<Semaphore>,
    connecting: Arc<Semaphore>,
}

/// One round's figures, milliseconds from just before the REST write.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoundFigures {
    pub round: u64,
    pub received: usize,
    pub agents: usize,
    pub write_ms: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The whole run: each round's figures, then all rounds' together (as round 0).
pub async fn run(args: &SimulateArgs) -> Result<PushRun, SimulateError> {
    let url = args.urls[0].clone();
    let Some(host) = url.strip_prefix("http://").map(str::to_owned) else {
        return Err(SimulateError::Invalid("--opamp-push speaks ws:// only: give an http:// --url".into()));
    };
    let auth = args.admin_auth().ok_or(SimulateError::Provision(
        super::provision::ProvisionError::NoAdminCredentials {
            missing: args.collectors,
            wanted: args.collectors,
        },
    ))?;
    let stats = Stats::new();
    let admin = AdminApi::sign_in(Nodes::new(vec![url.clone()]), auth, 4, &stats).await?;
    let run_id = format!("{:x}", rand::rng().random::<u32>());
    let selector = format!("linkmesh-bench=push-{run_id}");
    let tokens = create_collectors(&admin, &stats, &run_id, args.collectors).await?;
    fleet_items(&admin, &stats, &selector).await?;
    say(
        args,
        &format!("{} opamp collectors created (label {selector}); connecting their agents", tokens.len()),
    );

    let (receipts, mut received) = mpsc::unbounded_channel();
    let ready = Arc::new(Semaphore::new(0));
    let agents = tokens.len();
    let http = SimHttpClient::new(args.connections, args.request_timeout)
        .map_err(|error| SimulateError::Invalid(format!("the HTTP client: {error}")))?;
    let context = Arc::new(AgentContext {
        host,
        base_url: url.trim_end_matches('/').to_owned(),
        http,
        metrics_interval: args.metrics_interval,
        compression: args.metrics_compression,
        counters: AgentCounters::default(),
        receipts,
        ready: ready.clone(),
        connecting: Arc::new(Semaphore::new(CONNECTING_AT_ONCE)),
    });
    for (index, token) in tokens.into_iter().enumerate() {
        let context = context.clone();
        let over_http = args.opamp_transport.agent_uses_http(index);
        let host_name = format!("opamp-push-host-{index}");
        tokio::spawn(async move {
            let outcome = if over_http {
                http_agent(&context, &token, host_name).await
            } else {
                websocket_agent(&context, &token, host_name).await
            };
            if let Err(error) = outcome {
                eprintln!("linkmesh simulate: an agent stopped: {error}");
            }
        });
    }
    let connected = tokio::time::timeout(ROUND_DEADLINE * 5, ready.acquire_many(agents as u32)).await;
    if connected.is_err() {
        return Err(SimulateError::Invalid(format!(
            "only {} of {agents} agents connected and applied their first config in {:?}",
            ready.available_permits(),
            ROUND_DEADLINE * 5
        )));
    }
    say(args, &format!("{agents} agents connected and running their first config"));

    let mut rounds = Vec::new();
    let (mut all, mut writes_ms) = (Vec::new(), 0.0);
    for round in 1..=args.rounds.unwrap_or(3) {
        while received.try_recv().is_ok() {} // late receipts of an earlier round
        let started = Instant::now();
        let source =
            json!({ "selector": selector, "name": format!("push-{round}"), "type": "otlp", "settings": {} });
        admin.post(CallKind::CreateCollector, &stats, "/sources", source).await.map_err(|error| {
            SimulateError::Invalid(format!("the fleet-wide write of round {round} failed: {error}"))
        })?;
        let write_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut latencies = Vec::with_capacity(agents);
        let deadline = tokio::time::Instant::now() + ROUND_DEADLINE;
        while latencies.len() < agents {
            match tokio::time::timeout_at(deadline, received.recv()).await {
                Ok(Some(at)) => latencies.push(at.saturating_duration_since(started).as_secs_f64() * 1e3),
                Ok(None) | Err(_) => break,
            }
        }
        all.extend_from_slice(&latencies);
        writes_ms += write_ms;
        let figures = figures(round, agents, write_ms, latencies);
        say(args, &format!("round {round}: {figures:?}"));
        rounds.push(figures);
    }
    let count = rounds.len();
    rounds.push(figures(0, agents * count, writes_ms / count.max(1) as f64, all));
    let counters = &context.counters;
    Ok(PushRun {
        rounds,
        http_agents: counters.http_agents.load(Ordering::Relaxed),
        websocket_agents: counters.websocket_agents.load(Ordering::Relaxed),
        own_metrics_pushes_ok: counters.own_metrics_ok.load(Ordering::Relaxed),
        own_metrics_pushes_failed: counters.own_metrics_failed.load(Ordering::Relaxed),
    })
}

/// The figures of all rounds as `KEY=value` lines (`scripts/bench.sh` reads them).
pub fn shell_lines(rounds: &[RoundFigures]) -> Vec<String> {
    let Some(all) = rounds.iter().find(|figures| figures.round == 0) else { return Vec::new() };
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.1}"));
    vec![
        format!("RUN_ERRORS={}", all.agents - all.received),
        format!("ROUNDS={}", rounds.len() - 1),
        format!("RECEIVED={}", all.received),
        format!("EXPECTED={}", all.agents),
        format!("WRITE_MS={:.1}", all.write_ms),
        format!("P50_MS={}", ms(all.p50_ms)),
        format!("P99_MS={}", ms(all.p99_ms)),
        format!("MAX_MS={}", ms(all.max_ms)),
    ]
}

fn say(args: &SimulateArgs, line: &str) {
    if !args.quiet {
        eprintln!("linkmesh simulate: {line}");
    }
}

fn figures(round: u64, agents: usize, write_ms: f64, mut latencies: Vec<f64>) -> RoundFigures {
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 * quantile).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied()
    };
    RoundFigures {
        round,
        received: latencies.len(),
        agents,
        write_ms,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: latencies.last().copied(),
    }
}

/// `count` `opamp` collectors labelled for this run, with tokens, 1,000 per call.
async fn create_collectors(
    admin: &AdminApi,
    stats: &Stats,
    run_id: &str,
    count: usize,
) -> Result<Vec<String>, SimulateError> {
    let mut tokens = Vec::with_capacity(count);
    for first in (0..count).step_by(MAX_BATCH) {
        let collectors: Vec<Value> = (first..count.min(first + MAX_BATCH))
            .map(|n| {
                json!({ "name": format!("opamp-push-{run_id}-{n}"), "mode": "opamp",
                        "labels": { "linkmesh-bench": format!("push-{run_id}") } })
            })
            .collect();
        let body = json!({ "collectors": collectors, "mint_tokens": true });
        let created = admin
            .post(CallKind::CreateBatch, stats, "/collectors:batch", body)
            .await
            .map_err(|error| SimulateError::Invalid(format!("creating the collectors failed: {error}")))?;
        let minted = created["collectors"].as_array().into_iter().flatten();
        tokens.extend(minted.filter_map(|collector| collector["token"].as_str().map(str::to_owned)));
    }
    Ok(tokens)
}

/// Something to run for every collector of the run: a fleet-wide destination, route and source.
async fn fleet_items(admin: &AdminApi, stats: &Stats, selector: &str) -> Result<(), SimulateError> {
    let failed =
        |error: CallError| SimulateError::Invalid(format!("creating the fleet-wide items failed: {error}"));
    let destination = json!({ "selector": selector, "name": "push-vendor", "type": "otlp_http",
                              "settings": { "endpoint": "https://otlp.example" } });
    let destination =
        admin.post(CallKind::CreateCollector, stats, "/destinations", destination).await.map_err(failed)?;
    let route = json!({ "selector": selector, "name": "push-all", "destination_ids": [destination["id"]] });
    admin.post(CallKind::CreateCollector, stats, "/routes", route).await.map_err(failed)?;
    let source = json!({ "selector": selector, "name": "push-0", "type": "otlp", "settings": {} });
    admin.post(CallKind::CreateCollector, stats, "/sources", source).await.map_err(failed)?;
    Ok(())
}

/// A WebSocket agent: connects, sends its full state, and answers every message the server pushes;
/// it counts as ready once it applied its first config, and from then on sends the time of every
/// new config's arrival.
async fn websocket_agent(context: &Arc<AgentContext>, token: &str, host_name: String) -> std::io::Result<()> {
    let mut permit = Some(context.connecting.clone().acquire_owned().await.map_err(std::io::Error::other)?);
    let mut socket = WebSocket::connect(&context.host, token).await?;
    context.counters.websocket_agents.fetch_add(1, Ordering::Relaxed);
    let mut agent = SimAgent::new(uuid_v4(), host_name, false, unix_nanos());
    socket.send(&frame::encode(&agent.full_state())).await?;
    // The server answers every message with one: a config's receipt is counted once the messages
    // about it are answered, so the run never ends before the server has read its `APPLIED`.
    let (mut pushing, mut unanswered, mut arrived) = (false, 1_usize, None);
    loop {
        let message = socket.receive().await?;
        let reply = pb::ServerToAgent::decode(frame::payload(&message)).map_err(std::io::Error::other)?;
        unanswered = unanswered.saturating_sub(1);
        let reaction = agent.on_reply(&reply);
        if reaction.new_config {
            arrived = Some(Instant::now());
        }
        for message in &reaction.messages {
            socket.send(&frame::encode(message)).await?;
        }
        unanswered += reaction.messages.len();
        pushing = pushing || start_own_metrics(context, &agent);
        if unanswered == 0 {
            if let Some(arrived) = arrived.take() {
                note_receipt(context, &mut permit, arrived);
            }
        }
    }
}

/// A plain-HTTP agent: each message is one `POST /v1/opamp`, whose answer may ask for more (a config
/// to apply, the full state); with nothing left to say it polls with a heartbeat at the interval the
/// server offered. A config's receipt (its arrival time) is counted once the agent has said all it
/// had to about it, so the run never ends between a config's arrival and its `APPLIED`.
async fn http_agent(context: &Arc<AgentContext>, token: &str, host_name: String) -> std::io::Result<()> {
    let mut permit = Some(context.connecting.clone().acquire_owned().await.map_err(std::io::Error::other)?);
    context.counters.http_agents.fetch_add(1, Ordering::Relaxed);
    let mut agent = SimAgent::new(uuid_v4(), host_name, true, unix_nanos());
    let mut outbox = std::collections::VecDeque::from([agent.full_state()]);
    let (mut pushing, mut arrived) = (false, None);
    loop {
        let message = match outbox.pop_front() {
            Some(message) => message,
            None => {
                if let Some(arrived) = arrived.take() {
                    note_receipt(context, &mut permit, arrived);
                }
                tokio::time::sleep(agent.heartbeat_interval().unwrap_or(DEFAULT_POLL_INTERVAL)).await;
                agent.heartbeat()
            }
        };
        let reply = match context.http.opamp_call(&context.base_url, token, &message).await {
            Ok(reply) => reply,
            Err(error) => {
                // As opamp-go's HTTP client: the message is sent again at the next poll.
                eprintln!("linkmesh simulate: an agent's OpAMP call failed: {}", error.reason());
                outbox.push_front(message);
                tokio::time::sleep(agent.heartbeat_interval().unwrap_or(DEFAULT_POLL_INTERVAL)).await;
                continue;
            }
        };
        let reaction = agent.on_reply(&reply);
        outbox.extend(reaction.messages);
        pushing = pushing || start_own_metrics(context, &agent);
        if reaction.new_config {
            arrived = Some(Instant::now());
        }
    }
}

/// A config reached an agent at `arrived`: the first makes it ready (and lets the next agent
/// connect), the later ones are the receipts a round times.
fn note_receipt(
    context: &AgentContext,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    arrived: Instant,
) {
    if permit.take().is_some() {
        context.ready.add_permits(1);
    } else {
        let _ = context.receipts.send(arrived);
    }
}

/// Once the agent has an own-metrics destination (and `--metrics-interval` is not 0s), a task pushes
/// its own metrics there every interval for the rest of the run; true once started.
fn start_own_metrics(context: &Arc<AgentContext>, agent: &SimAgent) -> bool {
    let Some(destination) = agent.own_metrics().cloned() else { return false };
    if context.metrics_interval.is_zero() {
        return true;
    }
    let context = context.clone();
    let source = agent.own_metrics_source();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(context.metrics_interval);
        loop {
            ticks.tick().await;
            let pushed = match encode_body(&source.request(unix_nanos()), context.compression) {
                Ok(body) => {
                    context
                        .http
                        .push_metrics_to(
                            &destination.endpoint,
                            &destination.headers,
                            body,
                            context.compression,
                        )
                        .await
                }
                Err(error) => Err(CallError::Decode(error.to_string())),
            };
            let counter = match &pushed {
                Ok(()) => &context.counters.own_metrics_ok,
                Err(_) => &context.counters.own_metrics_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    true
}

fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

fn uuid_v4() -> Vec<u8> {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.to_vec()
}

/// The client side of one WebSocket connection, as much of RFC 6455 as an agent needs.
struct WebSocket {
    stream: BufReader<TcpStream>,
}

impl WebSocket {
    async fn connect(host: &str, token: &str) -> std::io::Result<WebSocket> {
        let key: [u8; 16] = rand::rng().random();
        let mut stream = BufReader::new(TcpStream::connect(host).await?);
        let upgrade = format!(
            "GET /v1/opamp HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
        );
        stream.get_mut().write_all(upgrade.as_bytes()).await?;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await?);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            let head = String::from_utf8_lossy(&head);
            return Err(std::io::Error::other(format!(
                "upgrade refused: {}",
                head.lines().next().unwrap_or("")
            )));
        }
        Ok(WebSocket { stream })
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mask: [u8; 4] = rand::rng().random();
        let mut bytes = client_frame_header(true, opcode, payload.len() as u64, mask);
        bytes.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
        self.stream.get_mut().write_all(&bytes).await
    }

    async fn send(&mut self, message: &[u8]) -> std::io::Result<()> {
        self.send_frame(0x2, message).await
    }

    /// The next binary message; pings are answered on the way, a close ends the connection.
    async fn receive(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            let first = self.stream.read_u8().await?;
            let second = self.stream.read_u8().await?;
            let length = match second & 0x7f {
                126 => u64::from(self.stream.read_u16().await?),
                127 => self.stream.read_u64().await?,
                short => u64::from(short),
            };
            let mask =
                if second & 0x80 != 0 { Some(self.stream.read_u32().await?.to_be_bytes()) } else { None };
            let mut payload = vec![0; usize::try_from(length).map_err(std::io::Error::other)?];
            self.stream.read_exact(&mut payload).await?;
            if let Some(mask) = mask {
                payload.iter_mut().enumerate().for_each(|(index, byte)| *byte ^= mask[index % 4]);
            }
            match first & 0x0f {
                0x2 if first & 0x80 != 0 => return Ok(payload),
                0x9 => self.send_frame(0xA, &payload).await?,
                0x8 => return Err(std::io::Error::other("the server closed the connection")),
                _ => {} // pongs; fragments (the server sends whole messages)
            }
        }
    }
}
