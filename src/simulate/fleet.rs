//! `SimFleet`: the simulated collectors and the calls each makes — Alloy's start sequence, a poll (with
//! the immediate status report after a change), an own_metrics push — counted in a [`Stats`].
//!
//! Per collector the fleet keeps its token and a small [`AlloyCollector`]; calls in flight are bounded
//! by a semaphore, so the HTTP pool never holds more connections than that bound. Each call goes to a
//! node picked at random (see [`Nodes`]), as behind a load balancer without stickiness.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError};

use super::alloy_collector::{register_request, AlloyCollector, LoadFailures};
use super::http_client::SimHttpClient;
use super::nodes::Nodes;
use super::own_metrics::{
    alloy_self_metrics, count_data_points, encode_body, Compression, PreparedPushes, ScrapeInput,
};
use super::provision::SimToken;
use super::stats::{CallKind, Outcome, Stats};
use crate::proto::collector::v1 as pb;

/// How the simulated collectors call.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// Send `effective_config` with status reports (Alloy >= 1.12 does).
    pub report_effective_config: bool,
    pub metrics_compression: Compression,
    /// What makes a delivered config fail to load (`--fail-when-contains`).
    pub load_failures: Arc<LoadFailures>,
}

pub struct SimFleet {
    client: SimHttpClient,
    nodes: Nodes,
    tokens: Vec<SimToken>,
    collectors: Vec<Mutex<AlloyCollector>>,
    local_attributes: HashMap<String, String>,
    in_flight: Semaphore,
    settings: FleetSettings,
    started_unix_nanos: u64,
    prepared_pushes: Option<PreparedPushes>,
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

impl SimFleet {
    pub fn new(
        client: SimHttpClient,
        nodes: Nodes,
        tokens: Vec<SimToken>,
        max_in_flight: usize,
        settings: FleetSettings,
    ) -> Self {
        let collectors = tokens
            .iter()
            .map(|_| Mutex::new(AlloyCollector::with_load_failures(settings.load_failures.clone())))
            .collect();
        SimFleet {
            client,
            nodes,
            tokens,
            collectors,
            local_attributes: super::alloy_collector::default_local_attributes(),
            in_flight: Semaphore::new(max_in_flight.max(1)),
            settings,
            started_unix_nanos: unix_nanos(),
            prepared_pushes: None,
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The host id Alloy sends (`constants.hostname` in the enrollment config): the collector's name.
    fn host_id(&self, index: usize) -> &str {
        &self.tokens[index].name
    }

    /// One of the `--connections` slots; a wait for it is counted (the open loop's calls come when
    /// they are due, and a generator that cannot send them then must say so).
    async fn connection_slot(&self, kind: CallKind, stats: &Stats) -> Option<SemaphorePermit<'_>> {
        let asked = std::time::Instant::now();
        let permit = match self.in_flight.try_acquire() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => self.in_flight.acquire().await.ok()?,
        };
        stats.queued(kind, asked.elapsed());
        Some(permit)
    }

    pub async fn register(&self, index: usize, stats: &Stats) -> bool {
        let token = &self.tokens[index];
        let request = register_request(&token.name, &token.name, &self.local_attributes);
        self.unanswered_call(CallKind::Register, stats, |url| {
            self.client.register(url, &token.token, &request)
        })
        .await
    }

    /// A call whose answer carries nothing the collector keeps (register, unregister): one connection
    /// slot, one node (another on failure); true when it succeeded.
    async fn unanswered_call<'fleet, Attempt, Fut>(
        &'fleet self,
        kind: CallKind,
        stats: &Stats,
        attempt: Attempt,
    ) -> bool
    where
        Attempt: Fn(&'fleet str) -> Fut,
        Fut: std::future::Future<Output = Result<(), super::http_client::CallError>>,
    {
        let Some(_permit) = self.connection_slot(kind, stats).await else { return false };
        self.nodes.call(kind, stats, |_| Outcome::Ok, attempt).await.is_ok()
    }

    /// UnregisterCollector, as Alloy sends on shutdown: the collector goes `offline` until its next poll.
    pub async fn unregister(&self, index: usize, stats: &Stats) -> bool {
        let token = &self.tokens[index];
        let request = pb::UnregisterCollectorRequest { id: token.name.clone() };
        self.unanswered_call(CallKind::Unregister, stats, |url| {
            self.client.unregister(url, &token.token, &request)
        })
        .await
    }

    /// One GetConfig; when it delivered a config that changed, Alloy's immediate second GetConfig
    /// reporting the status follows. `send_hash = false` always asks for the full config.
    pub async fn poll(&self, index: usize, stats: &Stats, send_hash: bool) -> bool {
        let mut report_calls = 0;
        loop {
            let (request, carried) = self.collectors[index].lock().get_config_request(
                self.host_id(index),
                &self.local_attributes,
                send_hash,
                self.settings.report_effective_config,
            );
            let Some(permit) = self.connection_slot(CallKind::GetConfig, stats).await else { return false };
            let token = &self.tokens[index].token;
            let result = self
                .nodes
                .call(CallKind::GetConfig, stats, poll_outcome, |url| {
                    self.client.get_config(url, token, &request)
                })
                .await;
            drop(permit);
            match result {
                Ok(response) => {
                    let report_now = self.collectors[index].lock().on_response(carried, &response);
                    if !report_now || report_calls > 0 {
                        return true;
                    }
                    report_calls += 1;
                }
                Err(_) => return false,
            }
        }
    }

    /// Alloy's start: RegisterCollector, GetConfig (plus its status report), RegisterCollector again.
    /// True when the GetConfig succeeded.
    pub async fn start_collector(&self, index: usize, stats: &Stats) -> bool {
        self.register(index, stats).await;
        let polled = self.poll(index, stats, true).await;
        self.register(index, stats).await;
        polled
    }

    /// Pushes encoded in advance for the closed loop (see [`PreparedPushes`]); without them, or past
    /// their last step, each push builds and encodes a scrape of its own.
    pub fn with_prepared_pushes(mut self, prepared: PreparedPushes) -> Self {
        self.prepared_pushes = Some(prepared);
        self
    }

    /// The `round`-th own_metrics push of collector `index` (`round` picks a prepared body; a push
    /// built here is stamped with the current time instead).
    pub async fn push_metrics(&self, index: usize, round: u64, stats: &Stats) -> bool {
        let prepared = self.prepared_pushes.as_ref().and_then(|prepared| prepared.push(index, round));
        let (body, points) = match prepared {
            Some(push) => (push.body.clone(), push.points),
            None => match self.build_push(index) {
                Ok(built) => built,
                Err(_) => {
                    stats.failure(CallKind::OwnMetrics, "encode");
                    return false;
                }
            },
        };
        let body_bytes = body.len() as u64;
        let Some(_permit) = self.connection_slot(CallKind::OwnMetrics, stats).await else { return false };
        let (token, compression) = (&self.tokens[index].token, self.settings.metrics_compression);
        let result = self
            .nodes
            .call(
                CallKind::OwnMetrics,
                stats,
                |_| Outcome::Ok,
                |url| {
                    // A retry sends the same bytes again (a shared buffer: no copy).
                    self.client.push_metrics(url, token, body.clone(), compression)
                },
            )
            .await;
        if result.is_ok() {
            stats.add_points(CallKind::OwnMetrics, points);
            stats.add_request_bytes(CallKind::OwnMetrics, body_bytes);
        }
        result.is_ok()
    }

    /// The collector's current self-metrics, encoded: the body and its data points.
    fn build_push(&self, index: usize) -> std::io::Result<(bytes::Bytes, u64)> {
        // Simulated processes started between 0 and 10 days before the run, so counters are large.
        let uptime_before_run = Duration::from_secs((index as u64).wrapping_mul(7_919) % 864_000);
        let request = alloy_self_metrics(&ScrapeInput {
            host_id: self.host_id(index),
            seed: index as u64,
            process_start_unix_nanos: self
                .started_unix_nanos
                .saturating_sub(uptime_before_run.as_nanos() as u64),
            now_unix_nanos: unix_nanos(),
        });
        let body = encode_body(&request, self.settings.metrics_compression)?;
        Ok((bytes::Bytes::from(body), count_data_points(&request)))
    }
}

fn poll_outcome(response: &crate::proto::collector::v1::GetConfigResponse) -> Outcome {
    if response.not_modified {
        Outcome::NotModified
    } else {
        Outcome::Changed
    }
}
