//! `linkmesh simulate`: a fleet of simulated Alloy collectors against one or more linkmesh servers —
//! the demo (`--collectors 50`), the load of `scripts/bench.sh`, and later of cluster tests.
//!
//! - [`provision`]: collector tokens minted through the REST API (`sim-<n>`, 1000 per
//!   `POST /collectors:batch`), cached in a tokens file.
//! - [`alloy_collector`]: one collector's remotecfg client state (pure): hash, status report.
//! - [`own_metrics`]: Alloy's self-metrics as an OTLP export request (pure).
//! - [`http_client`]: Connect and OTLP/HTTP calls on the wire, as Alloy makes them.
//! - [`fleet`]: the collectors and their calls; [`open_loop`]: each collector on its own schedule;
//!   [`closed_loop`]: back-to-back calls over a fixed number of connections (benchmarks).
//! - [`decode_only`]: the in-process decode baseline of the push benchmark.
//! - [`opamp_push`]: OpAMP agents (WebSocket, plain HTTP or both) and the time a fleet-wide change
//!   takes to reach them; [`opamp_agent`]: one agent's messages (pure).
//! - [`nodes`]: the servers, each call sent to one at random with a load balancer's retry.
//! - [`stats`], [`progress`], [`report`]: counters and latency histograms (totals and per node), the
//!   live line, the summary table; [`server_metrics`]: the servers' own status change counts.
//!
//! The simulator never touches server internals: everything goes over HTTP, so it measures what a
//! real fleet would see. Its own CPU use is in the summary (`client_cpu_s`), since on one machine it
//! competes with the server it loads.
#![allow(
    clippy::disallowed_methods,
    reason = "the load generator paces real traffic and measures real latency: it reads the system clock on purpose"
)]

pub mod alloy_collector;
pub mod closed_loop;
pub mod decode_only;
pub mod fleet;
pub mod http_client;
pub mod nodes;
pub mod opamp_agent;
pub mod opamp_push;
pub mod open_loop;
pub mod own_metrics;
pub mod progress;
pub mod provision;
pub mod report;
pub mod server_metrics;
pub mod stats;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::config::human::parse_duration;
use alloy_collector::LoadFailures;
use closed_loop::{ClosedLoopSettings, Workload};
use fleet::{FleetSettings, SimFleet};
use http_client::SimHttpClient;
use nodes::Nodes;
use open_loop::OpenLoopSettings;
use own_metrics::{Compression, PreparedPushes};
use provision::{AdminAuth, ProvisionPlan};
use stats::{PhaseSummary, Stats};

/// How long after the measured phase the servers' figures wait for the nodes' activity writers to
/// write what the run caused (a group that keeps up empties its queues within a flush interval or two).
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Server base URL; repeat (or comma-separate) for the nodes of a cluster: every call goes to one
    /// picked at random, as behind a load balancer without stickiness, and the summary has figures per node.
    #[arg(
        long = "url",
        env = "LINKMESH_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    pub urls: Vec<String>,
    /// Number of simulated collectors.
    #[arg(long, env = "LINKMESH_SIM_COLLECTORS", default_value_t = 50)]
    pub collectors: usize,
    /// How long to run (closed loop: the measured phase, after start-up).
    #[arg(long, env = "LINKMESH_SIM_DURATION", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Alloy's `poll_frequency`.
    #[arg(long, env = "LINKMESH_SIM_POLL_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Each poll period is uniform in [interval − jitter, interval + jitter) (Alloy: 100ms).
    #[arg(long, env = "LINKMESH_SIM_POLL_JITTER", default_value = "100ms", value_parser = parse_duration)]
    pub poll_jitter: Duration,
    /// Spread the collectors' start-ups uniformly over this window (0s: all at once, like a fleet
    /// restart; the poll interval: a steady-state fleet).
    #[arg(long, env = "LINKMESH_SIM_RAMP_UP", default_value = "0s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Open loop: calls in the first part of `--duration` count in a warm-up phase of their own, so the
    /// measured phase shows the fleet in its steady state (with the status changes the servers
    /// counted in it, read from their `/metrics`).
    #[arg(long, env = "LINKMESH_SIM_WARM_UP", default_value = "0s", value_parser = parse_duration)]
    pub warm_up: Duration,
    /// own_metrics push interval (Alloy's enrollment config scrapes itself every 30s); 0s disables pushes.
    #[arg(long, env = "LINKMESH_SIM_METRICS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub metrics_interval: Duration,
    /// Push body compression (`otelcol.exporter.otlphttp` defaults to gzip).
    #[arg(long, env = "LINKMESH_SIM_METRICS_COMPRESSION", value_enum, default_value_t = Compression::Gzip)]
    pub metrics_compression: Compression,
    /// Leave `effective_config` out of status reports (Alloy before 1.12).
    #[arg(long, env = "LINKMESH_SIM_NO_EFFECTIVE_CONFIG")]
    pub no_effective_config: bool,
    /// A collector fails to load a delivered config that contains TEXT (repeatable), as Alloy does a
    /// config that fails to parse or evaluate: it reports FAILED with an error naming the component,
    /// keeps running its previous config, and does not retry that content until a different one comes.
    #[arg(long = "fail-when-contains", value_name = "TEXT", env = "LINKMESH_SIM_FAIL_WHEN_CONTAINS")]
    pub fail_when_contains: Vec<String>,
    /// Most calls in flight at once, which also bounds the HTTP connections per server.
    #[arg(long, env = "LINKMESH_SIM_CONNECTIONS", default_value_t = 64)]
    pub connections: usize,
    /// Per-call timeout.
    #[arg(long, env = "LINKMESH_SIM_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Benchmark mode: `--connections` workers call back to back instead of on a schedule.
    #[arg(long, env = "LINKMESH_SIM_CLOSED_LOOP")]
    pub closed_loop: bool,
    /// Closed loop: what each call is.
    #[arg(long, env = "LINKMESH_SIM_WORKLOAD", value_enum, default_value_t = Workload::GetConfig)]
    pub workload: Workload,
    /// Closed loop: stop once every collector has been called this many times.
    #[arg(long, env = "LINKMESH_SIM_ROUNDS")]
    pub rounds: Option<u64>,
    /// Closed loop: offer this many calls per second in total instead of calling as fast as possible.
    #[arg(long, env = "LINKMESH_SIM_RATE")]
    pub rate: Option<f64>,
    /// Closed loop: skip Alloy's start sequence (register, poll, register) before the measured phase.
    #[arg(long, env = "LINKMESH_SIM_SKIP_STARTUP")]
    pub skip_startup: bool,

    /// Service-account token (`lmsat_…`) used to create the collectors and mint their tokens.
    #[arg(long, env = "LINKMESH_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Instead of a token: sign in as `--admin-user` with this password.
    #[arg(long, env = "LINKMESH_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    #[arg(long, env = "LINKMESH_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,
    /// Collector tokens cache (`name<TAB>collector_id<TAB>token` lines): read first; collectors missing
    /// from it are created and appended. Created with mode 0600.
    #[arg(long, env = "LINKMESH_SIM_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Simulated collectors are named `<prefix><n>`, n from 1.
    #[arg(long, env = "LINKMESH_SIM_NAME_PREFIX", default_value = "sim-")]
    pub name_prefix: String,
    /// REST calls in flight while provisioning.
    #[arg(long, env = "LINKMESH_SIM_PROVISION_CONCURRENCY", default_value_t = 16)]
    pub provision_concurrency: usize,
    /// Collectors per `POST /collectors:batch` call while provisioning (1 to 1000); 1 creates each
    /// collector (and mints its token) with its own calls, one Raft write each.
    #[arg(long, env = "LINKMESH_SIM_PROVISION_BATCH", default_value_t = provision::MAX_BATCH)]
    pub provision_batch: usize,
    /// Provision the collectors (and the tokens file), report, and stop.
    #[arg(long, env = "LINKMESH_SIM_PROVISION_ONLY")]
    pub provision_only: bool,
    /// Create the collectors without minting tokens (a Raft write benchmark); implies --provision-only.
    #[arg(long, env = "LINKMESH_SIM_CREATE_ONLY")]
    pub create_only: bool,

    /// No server: decode the push payloads in-process for --duration on --threads threads (the
    /// baseline of the push benchmark).
    #[arg(long, env = "LINKMESH_SIM_DECODE_ONLY")]
    pub decode_only: bool,
    /// No Alloy collectors: `--collectors` OpAMP agents connect to the first `--url` (new `opamp`
    /// collectors with tokens and a label of their own, and fleet-wide items for it), then `--rounds`
    /// (default 3) fleet-wide writes each change every agent's config: the time from the write to
    /// each agent's receipt. The agents report their description, health and effective config,
    /// acknowledge each config APPLYING then APPLIED, and push their own metrics every
    /// `--metrics-interval` once offered a destination.
    #[arg(long, env = "LINKMESH_SIM_OPAMP_PUSH")]
    pub opamp_push: bool,
    /// With --opamp-push: how the agents talk to the server. `ws`: one WebSocket each, changes pushed
    /// at once; `http`: plain-HTTP POSTs (application/x-protobuf) polling at the heartbeat interval
    /// the server offers (`collectors.opamp_heartbeat_interval`), as the Python and Node OpAMP
    /// clients do, so a change waits for the next poll; `mixed`: every other agent over HTTP.
    #[arg(long, env = "LINKMESH_SIM_OPAMP_TRANSPORT", value_enum, default_value_t = opamp_push::OpampTransport::Ws)]
    pub opamp_transport: opamp_push::OpampTransport,

    /// Runtime threads (default: the number of CPUs).
    #[arg(long, env = "LINKMESH_SIM_THREADS")]
    pub threads: Option<usize>,

    /// Also write the JSON summary here.
    #[arg(long, env = "LINKMESH_SIM_SUMMARY_JSON")]
    pub summary_json: Option<PathBuf>,
    /// Also write the summary as `KEY=value` lines (for shell scripts).
    #[arg(long, env = "LINKMESH_SIM_SUMMARY_SHELL")]
    pub summary_shell: Option<PathBuf>,
    /// Don't print the JSON summary on stdout.
    #[arg(long, env = "LINKMESH_SIM_NO_STDOUT_SUMMARY")]
    pub no_stdout_summary: bool,
    /// Pid of a local server under test: its CPU time during the measured phase goes in the summary
    /// (`run_server_cpu_s`), which makes CPU per call comparable across machines.
    #[arg(long, env = "LINKMESH_SIM_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Progress line interval (default: 1s on a terminal, 5s otherwise).
    #[arg(long, env = "LINKMESH_SIM_PROGRESS_INTERVAL", value_parser = parse_duration)]
    pub progress_interval: Option<Duration>,
    /// No progress lines.
    #[arg(long, env = "LINKMESH_SIM_QUIET")]
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("invalid arguments: {0}")]
    Invalid(String),
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("no collector could be provisioned ({errors} errors; see the summary)")]
    NothingProvisioned { errors: u64 },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

impl SimulateArgs {
    /// Cross-flag rules clap cannot express.
    pub fn validate(&mut self) -> Result<(), SimulateError> {
        let invalid = |message: &str| Err(SimulateError::Invalid(message.to_owned()));
        self.urls = self.urls.iter().map(|url| url.trim_end_matches('/').to_owned()).collect();
        if self.urls.is_empty() {
            return invalid("at least one --url is required");
        }
        if let Some(url) =
            self.urls.iter().find(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(SimulateError::Invalid(format!("--url {url:?} must start with http:// or https://")));
        }
        if self.collectors == 0 && !self.decode_only {
            return invalid("--collectors must be at least 1");
        }
        if self.connections == 0 || self.provision_concurrency == 0 {
            return invalid("--connections and --provision-concurrency must be at least 1");
        }
        if !(1..=provision::MAX_BATCH).contains(&self.provision_batch) {
            return invalid("--provision-batch must be 1 to 1000");
        }
        if self.poll_interval.is_zero() {
            return invalid("--poll-interval must be positive");
        }
        if self.warm_up >= self.duration && !self.warm_up.is_zero() {
            return invalid("--warm-up must be shorter than --duration");
        }
        if self.rate.is_some_and(|rate| !rate.is_finite() || rate <= 0.0) {
            return invalid("--rate must be positive");
        }
        if self.name_prefix.is_empty()
            || !self
                .name_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return invalid("--name-prefix must be non-empty and use only letters, digits, '-', '_' and '.'");
        }
        if self.fail_when_contains.iter().any(String::is_empty) {
            return invalid("--fail-when-contains needs a non-empty text");
        }
        if self.create_only {
            self.provision_only = true;
        }
        Ok(())
    }

    fn admin_auth(&self) -> Option<AdminAuth> {
        if let Some(token) = self.admin_token.clone().filter(|token| !token.is_empty()) {
            return Some(AdminAuth::ServiceAccountToken(token));
        }
        self.admin_password
            .clone()
            .filter(|password| !password.is_empty())
            .map(|password| AdminAuth::Password { user: self.admin_user.clone(), password })
    }

    fn mode(&self) -> &'static str {
        if self.opamp_push {
            "opamp_push"
        } else if self.decode_only {
            "decode_only"
        } else if self.provision_only {
            "provision_only"
        } else if self.closed_loop {
            "closed_loop"
        } else {
            "open_loop"
        }
    }
}

/// Entry point of `linkmesh simulate`.
pub fn run(mut args: SimulateArgs) -> ExitCode {
    if let Err(error) = args.validate() {
        eprintln!("linkmesh simulate: {error}");
        return ExitCode::from(2);
    }
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("linkmesh simulate: {}", SimulateError::Runtime(error));
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(simulate(args, threads)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("linkmesh simulate: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The phases of one run, in the order they happened.
#[derive(Default)]
struct Phases {
    provisioning: Option<PhaseSummary>,
    startup: Option<PhaseSummary>,
    run: Option<PhaseSummary>,
    /// CPU seconds `--server-pid` used during the measured phase.
    run_server_cpu_s: Option<f64>,
    /// Open loop: what the servers counted during the measured phase (status changes, GetConfig
    /// handling times), or why it could not be read.
    run_server: Option<Result<server_metrics::ServerFigures, String>>,
    collectors: usize,
}

/// Encodes the closed loop's own_metrics pushes before it starts, so that the generator's CPU goes to
/// sending (it shares the machine with the server it measures).
fn prepare_pushes(args: &SimulateArgs) -> Result<PreparedPushes, SimulateError> {
    let started = Instant::now();
    let prepared = PreparedPushes::for_benchmarks(args.metrics_compression, fleet::unix_nanos())
        .map_err(SimulateError::Runtime)?;
    if !args.quiet {
        eprintln!(
            "linkmesh simulate: {} pushes encoded in advance ({} KiB) in {:.1} s",
            prepared.bodies().len(),
            prepared.encoded_bytes() / 1024,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(prepared)
}

async fn simulate(args: SimulateArgs, threads: usize) -> Result<(), SimulateError> {
    let mut phases = Phases::default();
    if args.decode_only {
        let stats = Arc::new(Stats::new());
        let progress = progress::start("decode-only", stats.clone(), 0, args.progress_interval, args.quiet);
        let (duration, compression) = (args.duration, args.metrics_compression);
        let decode_stats = stats.clone();
        let elapsed = tokio::task::spawn_blocking(move || {
            decode_only::run(threads, duration, compression, decode_stats)
        })
        .await
        .map_err(|error| SimulateError::Runtime(std::io::Error::other(error)))?
        .map_err(SimulateError::Runtime)?;
        progress.finish();
        phases.run = Some(stats.summary(elapsed));
        return write_summary(&args, threads, &phases);
    }

    if args.opamp_push {
        let run = opamp_push::run(&args).await?;
        if let Some(path) = &args.summary_shell {
            let mut lines = opamp_push::shell_lines(&run.rounds);
            lines.push(format!("CLIENT_CPU_S={}", own_cpu_seconds().unwrap_or(0.0)));
            std::fs::write(path, lines.join("\n") + "\n")
                .map_err(|source| SimulateError::Write { path: path.display().to_string(), source })?;
        }
        let summary = json!({
            "mode": args.mode(),
            "collectors": args.collectors,
            "url": args.urls[0],
            "opamp_transport": args.opamp_transport,
            "http_agents": run.http_agents,
            "websocket_agents": run.websocket_agents,
            "own_metrics_pushes": { "ok": run.own_metrics_pushes_ok, "failed": run.own_metrics_pushes_failed },
            "rounds": run.rounds,
        });
        return write_json(&args, &summary);
    }

    let tokens = provision_tokens(&args, &mut phases).await?;
    phases.collectors = tokens.len();
    if args.provision_only {
        return write_summary(&args, threads, &phases);
    }
    if tokens.is_empty() {
        let errors = phases.provisioning.as_ref().map_or(0, |summary| summary.errors.values().sum());
        return Err(SimulateError::NothingProvisioned { errors });
    }
    if tokens.len() < args.collectors {
        eprintln!(
            "linkmesh simulate: only {} of {} collectors could be provisioned",
            tokens.len(),
            args.collectors
        );
    }

    let client = SimHttpClient::new(args.connections, args.request_timeout)?;
    let nodes = Nodes::new(args.urls.clone());
    let settings = FleetSettings {
        report_effective_config: !args.no_effective_config,
        metrics_compression: args.metrics_compression,
        load_failures: Arc::new(LoadFailures::new(args.fail_when_contains.iter().cloned())),
    };
    let mut fleet = SimFleet::new(client, nodes, tokens, args.connections, settings);
    if args.closed_loop && args.workload == Workload::OwnMetrics {
        fleet = fleet.with_prepared_pushes(prepare_pushes(&args)?);
    }
    let fleet = Arc::new(fleet);
    if args.closed_loop {
        if !args.skip_startup {
            let stats = Arc::new(Stats::for_nodes(&args.urls));
            let progress =
                progress::start("start-up", stats.clone(), fleet.len(), args.progress_interval, args.quiet);
            let elapsed = closed_loop::start_up(fleet.clone(), args.connections, stats.clone()).await;
            progress.finish();
            phases.startup = Some(stats.summary(elapsed));
        }
        let stats = Arc::new(Stats::for_nodes(&args.urls));
        let progress = progress::start("closed loop", stats.clone(), 0, args.progress_interval, args.quiet);
        let settings = ClosedLoopSettings {
            workload: args.workload,
            connections: args.connections,
            duration: args.duration,
            rounds: args.rounds,
            rate: args.rate,
        };
        let figures_before = server_metrics::read(&args.urls, metrics_token(&args)).await;
        let server_cpu_before = args.server_pid.and_then(|pid| process_cpu_seconds(&pid.to_string()));
        let elapsed = closed_loop::run(fleet, settings, stats.clone()).await;
        let server_cpu_after = args.server_pid.and_then(|pid| process_cpu_seconds(&pid.to_string()));
        progress.finish();
        phases.run = Some(stats.summary(elapsed));
        phases.run_server_cpu_s =
            server_cpu_after.zip(server_cpu_before).map(|(after, before)| after - before);
        phases.run_server = Some(server_figures_since(&args, figures_before).await);
    } else {
        run_open_loop(&args, fleet, &mut phases).await;
    }
    write_summary(&args, threads, &phases)
}

/// The open loop: a warm-up (when asked for) and the measured phase, each with its own stats and
/// progress line; the servers' status change counters are read where the measured phase starts
/// and ends.
async fn run_open_loop(args: &SimulateArgs, fleet: Arc<SimFleet>, phases: &mut Phases) {
    let collectors = fleet.len();
    let token = metrics_token(args);
    // Without a warm-up the measured phase starts with the first call: read the counters before it.
    let mut changes_before = None;
    if args.warm_up.is_zero() {
        changes_before = Some(server_metrics::read(&args.urls, token).await);
    }
    let started = tokio::time::Instant::now();
    let stats = Arc::new(open_loop::PhasedStats {
        warm_up: Arc::new(Stats::for_nodes(&args.urls)),
        measured: Arc::new(Stats::for_nodes(&args.urls)),
        measured_from: started + args.warm_up,
    });
    let settings = OpenLoopSettings {
        duration: args.duration,
        ramp_up: args.ramp_up,
        poll_interval: args.poll_interval,
        poll_jitter: args.poll_jitter,
        metrics_interval: (!args.metrics_interval.is_zero()).then_some(args.metrics_interval),
    };
    let running = tokio::spawn(open_loop::run(fleet, settings, started, stats.clone()));
    if !args.warm_up.is_zero() {
        let progress =
            progress::start("warm-up", stats.warm_up.clone(), collectors, args.progress_interval, args.quiet);
        tokio::time::sleep_until(stats.measured_from).await;
        progress.finish();
        phases.startup = Some(stats.warm_up.summary(args.warm_up));
    }
    let changes_before = match changes_before {
        Some(changes) => changes,
        None => server_metrics::read(&args.urls, token).await,
    };
    let progress =
        progress::start("running", stats.measured.clone(), collectors, args.progress_interval, args.quiet);
    let server_cpu_before = args.server_pid.and_then(|pid| process_cpu_seconds(&pid.to_string()));
    let elapsed = running.await.unwrap_or(args.duration);
    let server_cpu_after = args.server_pid.and_then(|pid| process_cpu_seconds(&pid.to_string()));
    progress.finish();
    phases.run = Some(stats.measured.summary(elapsed.saturating_sub(args.warm_up)));
    phases.run_server_cpu_s = server_cpu_after.zip(server_cpu_before).map(|(after, before)| after - before);
    phases.run_server = Some(server_figures_since(args, changes_before).await);
}

/// The token a `/metrics` scrape may use: a service-account token (without one the servers must
/// allow the simulator's address in `metrics.allow_anonymous_from`).
fn metrics_token(args: &SimulateArgs) -> Option<&str> {
    args.admin_token.as_deref().filter(|token| token.starts_with("lmsat_"))
}

/// What the servers counted from `before` to now, read once the nodes' activity writers have
/// written everything the run caused (waiting at most [`DRAIN_DEADLINE`]).
async fn server_figures_since(
    args: &SimulateArgs,
    before: Result<server_metrics::Reading, String>,
) -> Result<server_metrics::ServerFigures, String> {
    let before = before?;
    let (after, drained_after) =
        server_metrics::read_drained(&args.urls, metrics_token(args), DRAIN_DEADLINE).await?;
    let mut figures = after.since(&before);
    figures.activity_drained_after_ms = drained_after.map(|waited| waited.as_millis() as u64);
    Ok(figures)
}

async fn provision_tokens(
    args: &SimulateArgs,
    phases: &mut Phases,
) -> Result<Vec<provision::SimToken>, SimulateError> {
    let plan = ProvisionPlan {
        count: args.collectors,
        name_prefix: args.name_prefix.clone(),
        concurrency: args.provision_concurrency,
        tokens_file: args.tokens_file.clone(),
        mint_tokens: !args.create_only,
        batch_size: args.provision_batch,
    };
    let stats = Arc::new(Stats::for_nodes(&args.urls));
    let progress = progress::start("provisioning", stats.clone(), 0, args.progress_interval, args.quiet);
    let started = Instant::now();
    let nodes = Nodes::new(args.urls.clone());
    let tokens = provision::provision(&nodes, args.admin_auth(), &plan, &stats).await;
    let elapsed = started.elapsed();
    progress.finish();
    let summary = stats.summary(elapsed);
    if !summary.calls.is_empty() {
        phases.provisioning = Some(summary);
    }
    Ok(tokens?)
}

/// Seconds of CPU this process used (user + system), from `/proc/self/stat` (Linux only).
fn own_cpu_seconds() -> Option<f64> {
    process_cpu_seconds("self")
}

/// Seconds of CPU a process (`self` or a pid) used so far, from `/proc/<pid>/stat` (Linux only).
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports in USER_HZ, which is 100 on every Linux ABI.
    Some(stats::round3(ticks / 100.0))
}

/// A summary other than the phases': to `--summary-json`, and to stdout.
fn write_json(args: &SimulateArgs, summary: &serde_json::Value) -> Result<(), SimulateError> {
    let text = serde_json::to_string_pretty(summary).unwrap_or_default();
    if let Some(path) = &args.summary_json {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|source| SimulateError::Write { path: path.display().to_string(), source })?;
    }
    if !args.no_stdout_summary {
        println!("{text}");
    }
    Ok(())
}

fn write_summary(args: &SimulateArgs, threads: usize, phases: &Phases) -> Result<(), SimulateError> {
    let client_cpu_s = own_cpu_seconds();
    let summary = json!({
        "mode": args.mode(),
        "workload": (args.closed_loop && !args.provision_only).then(|| args.workload.as_str()),
        "collectors": phases.collectors,
        "urls": args.urls,
        "routing": nodes::ROUTING_LEGEND,
        "connections": args.connections,
        "threads": threads,
        "rate": args.rate,
        "metrics_compression": format!("{:?}", args.metrics_compression).to_lowercase(),
        "fail_when_contains": args.fail_when_contains,
        "provisioning": phases.provisioning,
        "startup": phases.startup,
        "run": phases.run,
        "client_cpu_s": client_cpu_s,
        "run_server_cpu_s": phases.run_server_cpu_s.map(stats::round3),
        "run_server": phases.run_server.as_ref().map(|figures| match figures {
            Ok(figures) => json!(figures),
            Err(error) => json!({ "unavailable": error }),
        }),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    if let Some(path) = &args.summary_json {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|source| SimulateError::Write { path: path.display().to_string(), source })?;
    }
    if let Some(path) = &args.summary_shell {
        let mut lines = vec![
            format!("MODE={}", args.mode()),
            format!("COLLECTORS={}", phases.collectors),
            format!("CLIENT_CPU_S={}", client_cpu_s.unwrap_or(0.0)),
            format!("RUN_SERVER_CPU_S={}", phases.run_server_cpu_s.map_or(0.0, stats::round3)),
        ];
        if let Some(Ok(figures)) = &phases.run_server {
            lines.extend(figures.shell_lines("RUN_SERVER_"));
        }
        for (prefix, phase) in
            [("PROVISION_", &phases.provisioning), ("STARTUP_", &phases.startup), ("RUN_", &phases.run)]
        {
            if let Some(phase) = phase {
                lines.extend(phase.shell_lines(prefix));
            }
        }
        std::fs::write(path, lines.join("\n") + "\n")
            .map_err(|source| SimulateError::Write { path: path.display().to_string(), source })?;
    }
    if !args.quiet {
        let startup_name = if args.closed_loop { "start-up" } else { "warm-up" };
        let ran: Vec<(&str, &PhaseSummary)> =
            [("provisioning", &phases.provisioning), (startup_name, &phases.startup), ("run", &phases.run)]
                .into_iter()
                .filter_map(|(name, phase)| phase.as_ref().map(|phase| (name, phase)))
                .collect();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{}", report::render_all(&ran));
        match &phases.run_server {
            Some(Ok(figures)) => {
                let _ = write!(stderr, "{}", figures.render());
            }
            Some(Err(error)) => {
                let _ = writeln!(stderr, "the servers' own figures: not read ({error})");
            }
            None => {}
        }
    }
    if !args.no_stdout_summary {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(argv: &[&str]) -> SimulateArgs {
        Wrapper::try_parse_from(std::iter::once("simulate").chain(argv.iter().copied())).expect("parses").args
    }

    #[test]
    fn urls_are_repeatable_and_comma_separated() {
        let mut args = parse(&["--url", "http://a:1/", "--url", "http://b:2,http://c:3"]);
        args.validate().expect("valid");
        assert_eq!(args.urls, ["http://a:1", "http://b:2", "http://c:3"]);
    }

    #[test]
    fn durations_use_human_units() {
        let args = parse(&["--duration", "90s", "--poll-interval", "1m", "--metrics-interval", "0s"]);
        assert_eq!(args.duration, Duration::from_secs(90));
        assert_eq!(args.poll_interval, Duration::from_secs(60));
        assert!(args.metrics_interval.is_zero());
    }

    #[test]
    fn bad_flags_are_rejected_with_the_flag_named() {
        let mut args = parse(&["--url", "127.0.0.1:8080"]);
        assert!(args.validate().expect_err("invalid").to_string().contains("--url"));
        let mut args = parse(&["--name-prefix", "a b"]);
        assert!(args.validate().expect_err("invalid").to_string().contains("--name-prefix"));
        let mut args = parse(&["--create-only"]);
        args.validate().expect("valid");
        assert!(args.provision_only);
        let mut args = parse(&["--fail-when-contains", ""]);
        assert!(args.validate().expect_err("invalid").to_string().contains("--fail-when-contains"));
        let mut args = parse(&["--fail-when-contains", "boom", "--fail-when-contains", "a,b"]);
        args.validate().expect("valid");
        assert_eq!(args.fail_when_contains, ["boom", "a,b"], "repeatable, never split");
    }

    #[test]
    fn own_cpu_time_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(own_cpu_seconds().is_some());
        }
    }
}
