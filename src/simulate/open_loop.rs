//! The open loop: every simulated collector lives on its own schedule, as a fleet of Alloys would.
//!
//! One tokio task per collector (a few hundred bytes each, sleeping on tokio's timer wheel), not a
//! thread: 10k–100k collectors fit in one process. A collector starts (spread over the ramp-up),
//! runs Alloy's start sequence, then polls every `poll_interval` ± `poll_jitter` (Alloy's jittered
//! ticker: each period uniform in [d − j, d + j)) and pushes own_metrics every `metrics_interval`,
//! the first push at a random offset (scrapes are not synchronised across a fleet).
//!
//! Calls made during the warm-up count in its own [`Stats`] ([`PhasedStats`]), so the measured phase's
//! latencies are those of a fleet in its steady state, not of its start-up.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::fleet::SimFleet;
use super::stats::Stats;

#[derive(Debug, Clone)]
pub struct OpenLoopSettings {
    pub duration: Duration,
    pub ramp_up: Duration,
    pub poll_interval: Duration,
    pub poll_jitter: Duration,
    /// `None`: no own_metrics pushes.
    pub metrics_interval: Option<Duration>,
}

/// Where a call counts: in the warm-up's stats before `measured_from`, in the measured phase's after.
pub struct PhasedStats {
    pub warm_up: Arc<Stats>,
    pub measured: Arc<Stats>,
    pub measured_from: Instant,
}

impl PhasedStats {
    fn current(&self) -> &Stats {
        if Instant::now() < self.measured_from {
            &self.warm_up
        } else {
            &self.measured
        }
    }

    /// A collector came up: it counts as up in both phases (the measured phase shows the fleet it runs
    /// with, most of which came up during the warm-up).
    fn collector_up(&self) {
        self.warm_up.collector_up();
        self.measured.collector_up();
    }
}

/// How long tasks still in a call at the deadline may take to finish before they are cancelled.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Runs the fleet from `started` until `settings.duration` has passed; returns the time it actually ran.
pub async fn run(
    fleet: Arc<SimFleet>,
    settings: OpenLoopSettings,
    started: Instant,
    stats: Arc<PhasedStats>,
) -> Duration {
    let deadline = started + settings.duration;
    let count = fleet.len();
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let offset = settings.ramp_up.mul_f64(index as f64 / count.max(1) as f64);
        let fleet = fleet.clone();
        let stats = stats.clone();
        let settings = settings.clone();
        tasks.spawn(async move {
            collector_life(&fleet, index, started + offset, deadline, &settings, &stats).await
        });
    }
    let drained =
        tokio::time::timeout_at(deadline + DRAIN_GRACE, async { while tasks.join_next().await.is_some() {} })
            .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    started.elapsed().min(settings.duration)
}

/// The next tick of a period that may have fallen behind: like Go's ticker, missed ticks are dropped.
fn next_tick(previous: Instant, period: Duration) -> Instant {
    let next = previous + period;
    let now = Instant::now();
    if next < now {
        now + period
    } else {
        next
    }
}

/// A period of Alloy's jittered ticker.
pub fn jittered(period: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return period;
    }
    let offset = rand::rng().random_range(-jitter.as_secs_f64()..jitter.as_secs_f64());
    Duration::from_secs_f64((period.as_secs_f64() + offset).max(0.001))
}

async fn collector_life(
    fleet: &SimFleet,
    index: usize,
    start_at: Instant,
    deadline: Instant,
    settings: &OpenLoopSettings,
    stats: &PhasedStats,
) {
    if start_at >= deadline {
        return;
    }
    tokio::time::sleep_until(start_at).await;
    let mut up = fleet.start_collector(index, stats.current()).await;
    if up {
        stats.collector_up();
    }
    let now = Instant::now();
    let mut next_poll = now + jittered(settings.poll_interval, settings.poll_jitter);
    let mut next_push = settings.metrics_interval.map(|interval| {
        let first = rand::rng().random_range(0.0..interval.as_secs_f64().max(0.001));
        now + Duration::from_secs_f64(first)
    });
    let mut pushes = 0u64;
    loop {
        let wake = next_push.map_or(next_poll, |push| push.min(next_poll));
        if wake >= deadline {
            return;
        }
        tokio::time::sleep_until(wake).await;
        if Instant::now() >= next_poll {
            let polled = fleet.poll(index, stats.current(), true).await;
            if polled && !up {
                up = true;
                stats.collector_up();
            }
            next_poll = next_tick(next_poll, jittered(settings.poll_interval, settings.poll_jitter));
        }
        if let (Some(push), Some(interval)) = (next_push, settings.metrics_interval) {
            if Instant::now() >= push {
                fleet.push_metrics(index, pushes, stats.current()).await;
                pushes += 1;
                next_push = Some(next_tick(push, interval));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_periods_stay_within_the_jitter() {
        for _ in 0..1000 {
            let period = jittered(Duration::from_secs(60), Duration::from_millis(100));
            assert!(period >= Duration::from_millis(59_900) && period < Duration::from_millis(60_100));
        }
        assert_eq!(jittered(Duration::from_secs(1), Duration::ZERO), Duration::from_secs(1));
    }
}
