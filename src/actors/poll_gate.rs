//! `PollGate`: a token bucket per collector over its remotecfg calls (GetConfig, RegisterCollector,
//! UnregisterCollector), checked after the token and before the body is read.
//!
//! Why here and not in the collector's actor, which owns the rest of its live state: a refused call
//! must cost no body read, buffer or decode, so the check comes before the body; asking the actor
//! first would add a mailbox round trip to every call (an envelope and a reply channel allocated, a
//! hop to the actor's arbiter thread, a passivated actor activated) for a decision that a shard lock
//! held for a few nanoseconds makes. A full bucket is the same as no bucket, so buckets that have
//! refilled are dropped and the table holds only collectors that called recently. Like the push gate,
//! it counts the calls this node receives.
//!
//! Time comes from the injected [`Clock`] (monotonic), so refill and burst are tested with a manual one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::{slot_of, Clock};

/// Shards of the bucket table, to keep lock hold times short.
const GATE_SHARDS: usize = 64;

/// A shard is swept for refilled buckets when it grows past this many (then past twice what is left).
const MIN_SWEEP_AT: usize = 64;

/// A collector called faster than its bucket allows.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("too many remotecfg calls from this collector; retry after {retry_after:?}")]
pub struct PollRefused {
    /// Until the next call would be admitted.
    pub retry_after: Duration,
}

/// `burst` calls at once, then `per_second` sustained (pure: time is passed in).
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    fn full(burst: f64, now: Instant) -> Self {
        TokenBucket { tokens: burst, updated: now }
    }

    fn refill(&mut self, now: Instant, burst: f64, per_second: f64) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.updated = now;
    }

    /// Takes one call's token, or says how long until there is one.
    fn take(&mut self, now: Instant, burst: f64, per_second: f64) -> Result<(), Duration> {
        self.refill(now, burst, per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }

    fn is_full_at(&self, now: Instant, burst: f64, per_second: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * per_second >= burst
    }
}

#[derive(Default)]
struct Shard {
    buckets: HashMap<String, TokenBucket>,
    sweep_at: usize,
}

/// The buckets of the collectors that called this node recently.
pub struct PollGate {
    shards: Vec<Mutex<Shard>>,
    burst: f64,
    per_second: f64,
    clock: Clock,
}

impl PollGate {
    pub fn new(burst: u32, per_second: f64, clock: Clock) -> Self {
        PollGate {
            shards: (0..GATE_SHARDS)
                .map(|_| Mutex::new(Shard { buckets: HashMap::new(), sweep_at: MIN_SWEEP_AT }))
                .collect(),
            burst: f64::from(burst.max(1)),
            per_second,
            clock,
        }
    }

    /// Admits one call of `collector_id`, or refuses it with the wait until the next would be admitted.
    /// A refusal allocates nothing.
    pub fn admit(&self, collector_id: &str) -> Result<(), PollRefused> {
        let now = self.clock.monotonic();
        let (burst, per_second) = (self.burst, self.per_second);
        let mut shard = self.shards[slot_of(collector_id) % GATE_SHARDS].lock();
        if let Some(bucket) = shard.buckets.get_mut(collector_id) {
            return bucket.take(now, burst, per_second).map_err(|retry_after| PollRefused { retry_after });
        }
        if shard.buckets.len() >= shard.sweep_at {
            shard.buckets.retain(|_, bucket| !bucket.is_full_at(now, burst, per_second));
            shard.sweep_at = (2 * shard.buckets.len()).max(MIN_SWEEP_AT);
        }
        let mut bucket = TokenBucket::full(burst, now);
        let taken = bucket.take(now, burst, per_second);
        shard.buckets.insert(collector_id.to_owned(), bucket);
        taken.map_err(|retry_after| PollRefused { retry_after })
    }

    /// Collectors with a bucket that has not refilled, or not been swept yet (tests, observability).
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().buckets.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ManualClock, UnixMillis};

    const MILLI: Duration = Duration::from_millis(1);

    fn gate(burst: u32, per_second: f64) -> (ManualClock, PollGate) {
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let gate = PollGate::new(burst, per_second, time.clock());
        (time, gate)
    }

    #[test]
    fn a_burst_is_admitted_at_once_and_the_next_call_waits_for_one_refill() {
        let (_time, gate) = gate(10, 2.0);
        for call in 0..10 {
            assert_eq!(gate.admit("col_a"), Ok(()), "call {call} of the burst");
        }
        assert_eq!(gate.admit("col_a"), Err(PollRefused { retry_after: 500 * MILLI }));
        assert_eq!(gate.admit("col_b"), Ok(()), "another collector has its own bucket");
    }

    #[test]
    fn tokens_come_back_at_the_sustained_rate_and_never_beyond_the_burst() {
        let (time, gate) = gate(10, 2.0);
        for _ in 0..10 {
            gate.admit("col_a").expect("burst");
        }
        time.advance(499 * MILLI);
        let refused = gate.admit("col_a").expect_err("not yet refilled");
        assert_eq!(refused.retry_after, MILLI, "{refused:?}");
        time.advance(MILLI);
        assert_eq!(gate.admit("col_a"), Ok(()), "one token after 500 ms at 2/s");
        assert!(gate.admit("col_a").is_err());

        // Sustained: one call every 500 ms is always admitted.
        for _ in 0..100 {
            time.advance(500 * MILLI);
            assert_eq!(gate.admit("col_a"), Ok(()));
        }

        // An hour idle refills to the burst, not to 7200 calls.
        time.advance(Duration::from_secs(3600));
        for _ in 0..10 {
            assert_eq!(gate.admit("col_a"), Ok(()));
        }
        assert!(gate.admit("col_a").is_err());
    }

    #[test]
    fn refilled_buckets_are_swept_so_the_table_holds_only_recent_callers() {
        let (time, gate) = gate(10, 2.0);
        for collector in 0..MIN_SWEEP_AT * GATE_SHARDS * 2 {
            gate.admit(&format!("col_{collector}")).expect("first call");
        }
        let before = gate.tracked();
        time.advance(Duration::from_secs(1));
        // Each admitted call spent one token; after 1 s at 2/s every bucket is full again.
        for collector in 0..MIN_SWEEP_AT * GATE_SHARDS * 2 {
            gate.admit(&format!("later_{collector}")).expect("first call");
        }
        assert!(
            gate.tracked() < before * 2,
            "refilled buckets were dropped: {} tracked after {before} and as many new",
            gate.tracked()
        );
    }
}
