//! `Nodes`: the servers a run spreads its calls over, the way a load balancer without stickiness does.
//! Every call (poll, register, push, provisioning) goes to a node picked at random; a call that failed
//! the way a load balancer retries (connection refused, connection closed before an answer, a 503) is
//! sent once more, to another node. Each attempt counts under the node it went to; the call counts
//! once in the totals, with the latency the collector saw (both attempts).
//!
//! With one node nothing is retried: a balancer with one backend has nowhere else to send the call.

use std::future::Future;
use std::time::Instant;

use rand::Rng as _;

use super::http_client::CallError;
use super::stats::{CallKind, Outcome, Stats};

/// The legend of the per-node figures, in the table and the JSON summary.
pub const ROUTING_LEGEND: &str = "each call goes to a node picked at random; after a refused or closed \
     connection or a 503 it is retried once on another node, as a load balancer would; per-node figures \
     count every attempt, totals count each call once (retried: calls that needed the second node)";

/// The servers of a run, in the order given on the command line.
#[derive(Debug, Clone)]
pub struct Nodes {
    urls: Vec<String>,
}

impl Nodes {
    /// `urls` must not be empty (the arguments' validation guarantees it).
    pub fn new(urls: Vec<String>) -> Self {
        debug_assert!(!urls.is_empty());
        Nodes { urls }
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn url(&self, node: usize) -> &str {
        &self.urls[node]
    }

    /// A node at random, uniformly; with `except`, one of the others (None when there is no other).
    pub fn pick(&self, except: Option<usize>) -> Option<usize> {
        let count = self.urls.len();
        match except {
            None => Some(rand::rng().random_range(0..count)),
            Some(_) if count < 2 => None,
            Some(excluded) => {
                let picked = rand::rng().random_range(0..count - 1);
                Some(if picked >= excluded { picked + 1 } else { picked })
            }
        }
    }

    /// One call routed like a load balancer's: `attempt(url)` on a random node, and once more on another
    /// node after a retryable failure. Counts every attempt under its node in `stats` and the call in
    /// the totals (`outcome` classifies a success).
    pub async fn call<'nodes, T, Attempt, Fut>(
        &'nodes self,
        kind: CallKind,
        stats: &Stats,
        outcome: impl Fn(&T) -> Outcome,
        attempt: Attempt,
    ) -> Result<T, CallError>
    where
        Attempt: Fn(&'nodes str) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let started = Instant::now();
        let mut node = self.pick(None).unwrap_or(0);
        let mut retried = false;
        loop {
            let attempt_started = Instant::now();
            let result = attempt(self.url(node)).await;
            let attempt_latency = attempt_started.elapsed();
            match result {
                Ok(value) => {
                    let outcome = outcome(&value);
                    if let Some(node_stats) = stats.node(node) {
                        node_stats.success(kind, outcome, attempt_latency);
                    }
                    stats.success(kind, outcome, started.elapsed());
                    if retried {
                        stats.retried(kind);
                    }
                    return Ok(value);
                }
                Err(error) => {
                    let reason = error.reason();
                    if let Some(node_stats) = stats.node(node) {
                        node_stats.failure(kind, &reason);
                    }
                    tracing::debug!(call = kind.as_str(), node = self.url(node), error = %error, "simulated call failed");
                    let other = if retried || !error.is_retried_by_load_balancers() {
                        None
                    } else {
                        self.pick(Some(node))
                    };
                    match other {
                        Some(other) => {
                            node = other;
                            retried = true;
                        }
                        None => {
                            stats.failure(kind, &reason);
                            if retried {
                                stats.retried(kind);
                            }
                            return Err(error);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(count: usize) -> Nodes {
        Nodes::new((0..count).map(|node| format!("http://node-{node}")).collect())
    }

    #[test]
    fn picks_spread_over_every_node_and_the_retry_avoids_the_first() {
        let three = nodes(3);
        let mut seen = [0u32; 3];
        for _ in 0..600 {
            let first = three.pick(None).expect("a node");
            seen[first] += 1;
            let other = three.pick(Some(first)).expect("another node");
            assert_ne!(other, first);
        }
        assert!(seen.iter().all(|count| *count > 0), "{seen:?}");
        assert_eq!(nodes(1).pick(Some(0)), None, "one node: nowhere to retry");
    }

    #[tokio::test]
    async fn a_refused_call_is_retried_once_elsewhere_and_counted_under_both_nodes() {
        let two = nodes(2);
        let stats = Stats::for_nodes(two.urls());
        for _ in 0..20 {
            let result = two
                .call(
                    CallKind::GetConfig,
                    &stats,
                    |_| Outcome::NotModified,
                    |url| {
                        let up = url == "http://node-0";
                        async move {
                            if up {
                                Ok(())
                            } else {
                                Err(CallError::Connect("refused".into()))
                            }
                        }
                    },
                )
                .await;
            assert!(result.is_ok());
        }
        let totals = stats.counts(CallKind::GetConfig);
        assert_eq!((totals.requests, totals.ok, totals.errors), (20, 20, 0));
        let down = stats.node(1).expect("node 1").counts(CallKind::GetConfig);
        let up = stats.node(0).expect("node 0").counts(CallKind::GetConfig);
        assert_eq!(up.ok, 20);
        assert_eq!(down.errors, down.requests);
        assert_eq!(stats.retried_count(CallKind::GetConfig), down.requests);
    }

    #[tokio::test]
    async fn a_rejected_call_is_not_retried() {
        let two = nodes(2);
        let stats = Stats::for_nodes(two.urls());
        let result = two
            .call(
                CallKind::Register,
                &stats,
                |_| Outcome::Ok,
                |_| async { Err::<(), _>(CallError::Status { status: 401, message: String::new() }) },
            )
            .await;
        assert!(result.is_err());
        let node_requests: u64 =
            (0..2).map(|node| stats.node(node).expect("node").counts(CallKind::Register).requests).sum();
        assert_eq!(node_requests, 1);
        assert_eq!(stats.counts(CallKind::Register).errors, 1);
        assert_eq!(stats.retried_count(CallKind::Register), 0);
    }

    #[tokio::test]
    async fn a_second_failure_ends_the_call() {
        let two = nodes(2);
        let stats = Stats::for_nodes(two.urls());
        let result = two
            .call(
                CallKind::OwnMetrics,
                &stats,
                |_| Outcome::Ok,
                |_| async { Err::<(), _>(CallError::Status { status: 503, message: String::new() }) },
            )
            .await;
        assert!(result.is_err());
        for node in 0..2 {
            assert_eq!(stats.node(node).expect("node").counts(CallKind::OwnMetrics).errors, 1);
        }
        let totals = stats.counts(CallKind::OwnMetrics);
        assert_eq!((totals.requests, totals.errors), (1, 1));
        assert_eq!(stats.errors_by_reason()["own_metrics:http_503"], 1);
    }
}
