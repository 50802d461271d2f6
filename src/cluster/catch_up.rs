//! Coalesced catch-ups: a member that does not know a collector token's hash asks the
//! leader for its read index and applies it before it answers 401 (the token may have been minted
//! through another node a moment ago). This file is the rate limit around that leader call; the call
//! itself is `cluster/read_index.rs`'s.
//!
//! One loop per node runs the catch-ups, one at a time, each starting at least [`MIN_INTERVAL`] after
//! the one before. A request registers, then waits for the first catch-up that *starts* after it
//! registered: every request that registered meanwhile rides on the same one. So a spray of random
//! tokens costs the leader at most one read index per [`MIN_INTERVAL`] from this node, however many
//! requests it sends, while a genuine fresh token is still covered: the catch-up it waits for began
//! after its request arrived, so after its mint was committed. (Reusing a catch-up that merely ended
//! recently would not be: it may have read the leader's index before the mint.)

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// The least time between the starts of two catch-ups from one node: the bound on how often a
/// spray of unknown tokens makes this node ask the leader (at most 10 read indexes a second).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The requests registered so far and the last catch-up done.
pub struct CatchUp {
    /// How many requests registered (each takes the next number).
    wanted: watch::Sender<u64>,
    done: watch::Sender<Done>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Done {
    /// Every request numbered up to this one was served by the last catch-up.
    served: u64,
    /// Whether that catch-up reached the leader's read index.
    caught_up: bool,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp { wanted: watch::Sender::new(0), done: watch::Sender::new(Done::default()) }
    }
}

impl CatchUp {
    /// Waits, up to `within`, for a catch-up that starts after this call; whether it reached the
    /// leader's read index (false also when none ran in time).
    pub async fn wait(&self, within: Duration) -> bool {
        let mut done = self.done.subscribe();
        let mut mine = 0;
        self.wanted.send_modify(|wanted| {
            *wanted += 1;
            mine = *wanted;
        });
        let served = async {
            loop {
                let current = *done.borrow_and_update();
                if current.served >= mine {
                    return current.caught_up;
                }
                if done.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(within, served).await.unwrap_or(false)
    }

    /// The loop that runs the catch-ups: `catch_up` asks the leader and applies its index (true when
    /// it did). Spawned once per node; it ends with its runtime.
    pub async fn run<F, Fut>(&self, mut catch_up: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let mut wanted = self.wanted.subscribe();
        let mut served = 0u64;
        let mut last_started: Option<tokio::time::Instant> = None;
        loop {
            while *wanted.borrow_and_update() <= served {
                if wanted.changed().await.is_err() {
                    return;
                }
            }
            if let Some(started) = last_started {
                tokio::time::sleep_until(started + MIN_INTERVAL).await;
            }
            // Everyone registered by now is covered: this catch-up starts after they arrived.
            let target = *wanted.borrow_and_update();
            last_started = Some(tokio::time::Instant::now());
            let caught_up = catch_up().await;
            served = target;
            self.done.send_replace(Done { served, caught_up });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    /// A fake leader call that counts and holds each catch-up until the test lets one through.
    struct Leader {
        calls: AtomicUsize,
        gate: Semaphore,
    }

    fn spawn_loop(catch_up: &Arc<CatchUp>, leader: &Arc<Leader>) {
        let (catch_up, leader) = (catch_up.clone(), leader.clone());
        tokio::spawn(async move {
            catch_up
                .run(|| {
                    let leader = leader.clone();
                    async move {
                        leader.calls.fetch_add(1, Ordering::SeqCst);
                        leader.gate.acquire().await.expect("open").forget();
                        true
                    }
                })
                .await;
        });
    }

    async fn wait_registered(catch_up: &CatchUp, count: u64) {
        let mut wanted = catch_up.wanted.subscribe();
        while *wanted.borrow_and_update() < count {
            wanted.changed().await.expect("sender alive");
        }
    }

    #[tokio::test]
    async fn many_concurrent_unknown_lookups_make_one_leader_call() {
        let catch_up = Arc::new(CatchUp::default());
        let leader = Arc::new(Leader { calls: AtomicUsize::new(0), gate: Semaphore::new(0) });
        let waiters: Vec<_> = (0..100)
            .map(|_| {
                let catch_up = catch_up.clone();
                tokio::spawn(async move { catch_up.wait(Duration::from_secs(60)).await })
            })
            .collect();
        wait_registered(&catch_up, 100).await;
        spawn_loop(&catch_up, &leader);
        leader.gate.add_permits(1);
        for waiter in waiters {
            assert!(waiter.await.expect("waiter"));
        }
        assert_eq!(leader.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_lookup_arriving_during_a_catch_up_waits_for_the_next_one_shared_with_its_peers() {
        let catch_up = Arc::new(CatchUp::default());
        let leader = Arc::new(Leader { calls: AtomicUsize::new(0), gate: Semaphore::new(0) });
        spawn_loop(&catch_up, &leader);
        let first = {
            let catch_up = catch_up.clone();
            tokio::spawn(async move { catch_up.wait(Duration::from_secs(60)).await })
        };
        // The first catch-up is in flight (held at the leader) before the others arrive.
        while leader.calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let later: Vec<_> = (0..50)
            .map(|_| {
                let catch_up = catch_up.clone();
                tokio::spawn(async move { catch_up.wait(Duration::from_secs(60)).await })
            })
            .collect();
        wait_registered(&catch_up, 51).await;
        leader.gate.add_permits(1);
        assert!(first.await.expect("first"));
        // The later ones were not served by the catch-up that began before they arrived.
        for waiter in &later {
            assert!(!waiter.is_finished());
        }
        leader.gate.add_permits(1);
        for waiter in later {
            assert!(waiter.await.expect("waiter"));
        }
        assert_eq!(leader.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn without_a_catch_up_in_time_the_wait_says_so() {
        let catch_up = CatchUp::default();
        assert!(!catch_up.wait(Duration::from_millis(1)).await);
    }
}
