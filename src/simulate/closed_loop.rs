//! The closed loop, for benchmarks: `connections` workers call back to back, each taking the next
//! collector round-robin, so every call uses a distinct token in turn and the server, not a schedule,
//! sets the pace. A start-up phase (Alloy's start sequence for every collector, counted apart) comes
//! first unless skipped. With a `rate`, each worker paces its calls instead (a fixed offered load, for
//! latency at a given fraction of the peak); latency is then still measured from the actual send.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::fleet::SimFleet;
use super::stats::Stats;

/// What each call of the measured phase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// GetConfig with the collector's last hash (answered `not_modified` once it has the config).
    GetConfig,
    /// GetConfig with an empty hash: the full config every time.
    GetConfigChanged,
    /// own_metrics pushes only.
    OwnMetrics,
    /// Every call changes a status: rounds alternate UnregisterCollector (connected → offline) and
    /// GetConfig (offline → connected), so each call is one status change and one event written
    /// through Raft (for the replicated record's ceiling).
    Flap,
}

impl Workload {
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::GetConfig => "get_config",
            Workload::GetConfigChanged => "get_config_changed",
            Workload::OwnMetrics => "own_metrics",
            Workload::Flap => "flap",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClosedLoopSettings {
    pub workload: Workload,
    pub connections: usize,
    /// The measured phase ends after this long, or after `rounds`, whichever comes first.
    pub duration: Duration,
    /// Stop once every collector has been called this many times.
    pub rounds: Option<u64>,
    /// Calls per second offered by all workers together; `None`: as fast as possible.
    pub rate: Option<f64>,
}

/// Alloy's start sequence for every collector, `connections` at a time; returns how long it took.
pub async fn start_up(fleet: Arc<SimFleet>, connections: usize, stats: Arc<Stats>) -> Duration {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections.max(1) {
        let (fleet, stats, next) = (fleet.clone(), stats.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                if index >= fleet.len() {
                    return;
                }
                if fleet.start_collector(index, &stats).await {
                    stats.collector_up();
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    started.elapsed()
}

/// The measured phase; returns its length.
pub async fn run(fleet: Arc<SimFleet>, settings: ClosedLoopSettings, stats: Arc<Stats>) -> Duration {
    let started = Instant::now();
    let deadline = started + settings.duration;
    let total_calls = settings.rounds.map(|rounds| rounds.saturating_mul(fleet.len() as u64));
    let next = Arc::new(AtomicU64::new(0));
    let connections = settings.connections.max(1);
    let pace = settings
        .rate
        .filter(|rate| *rate > 0.0)
        .map(|rate| Duration::from_secs_f64(connections as f64 / rate));
    let mut workers = JoinSet::new();
    for worker in 0..connections {
        let (fleet, stats, next) = (fleet.clone(), stats.clone(), next.clone());
        let workload = settings.workload;
        workers.spawn(async move {
            // Paced workers start staggered across one period, so the offered load is smooth.
            let mut send_at = pace.map(|pace| started + pace.mul_f64(worker as f64 / connections as f64));
            loop {
                if let (Some(at), Some(pace)) = (send_at, pace) {
                    if at >= deadline {
                        return;
                    }
                    tokio::time::sleep_until(at).await;
                    send_at = Some(at + pace);
                }
                if Instant::now() >= deadline {
                    return;
                }
                let call = next.fetch_add(1, Ordering::Relaxed);
                if total_calls.is_some_and(|total| call >= total) {
                    return;
                }
                let index = (call % fleet.len() as u64) as usize;
                match workload {
                    Workload::GetConfig => fleet.poll(index, &stats, true).await,
                    Workload::GetConfigChanged => fleet.poll(index, &stats, false).await,
                    Workload::OwnMetrics => {
                        fleet.push_metrics(index, call / fleet.len() as u64, &stats).await
                    }
                    // Round 0 finds every collector connected (the start-up phase polled it).
                    Workload::Flap if (call / fleet.len() as u64).is_multiple_of(2) => {
                        fleet.unregister(index, &stats).await
                    }
                    Workload::Flap => fleet.poll(index, &stats, true).await,
                };
            }
        });
    }
    while workers.join_next().await.is_some() {}
    started.elapsed()
}
