//! What stands between a password guesser and argon2: a throttle and a bound on concurrent hashing.
//!
//! - **Throttle.** Failed logins are counted per (client address, username) and per client address.
//!   Past `auth.login_free_attempts` (or `login_free_attempts_per_address`) a key must wait before its
//!   next attempt, `login_backoff_base` doubled per further failure up to `login_backoff_max`; while
//!   it waits, logins are answered 429 with `Retry-After` *before* any hashing, right password or not.
//!   There is no lockout: the wait is capped, and it is per client address, so an attacker hammering
//!   `admin` from one place slows down only itself — the real admin, elsewhere, signs in at once.
//!   Addresses come from [`super::client_addr`] (IPv6 per /64), so a client cannot choose its own.
//! - **Memory.** The table holds at most `login_throttle_max_entries` keys; entries are forgotten
//!   `login_throttle_window` after their last failure. When it is full, stale entries go first, then
//!   the least-failed quarter, so flooding it from many addresses evicts the flood's own light entries
//!   rather than the heavily throttled ones.
//! - **Hashing.** At most `auth.max_concurrent_password_hashes` argon2 computations run at once (one
//!   per CPU by default; each takes about 19 MiB). A login that cannot get a slot within
//!   `password_hash_wait` is answered 429, so a burst of bad logins costs queueing, not gigabytes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client_addr::limit_key;
use crate::config::AuthSettings;
use crate::error::ApiError;
use crate::model::UnixMillis;

/// What a client is told to wait when all hashing slots stay busy.
const HASH_BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Shared by every HTTP worker of the node.
pub struct LoginGuard {
    throttle: Mutex<Throttle>,
    hashing: Arc<Semaphore>,
    hash_wait: Duration,
}

impl LoginGuard {
    /// `cpus` sizes the hashing bound when the config leaves it unset.
    pub fn new(settings: &AuthSettings, cpus: usize) -> LoginGuard {
        let slots = settings.max_concurrent_password_hashes.unwrap_or(cpus).max(1);
        LoginGuard {
            throttle: Mutex::new(Throttle::new(settings.clone())),
            hashing: Arc::new(Semaphore::new(slots)),
            hash_wait: settings.password_hash_wait,
        }
    }

    /// Refuses (429, `Retry-After`) a login from `client` for `username` that must still wait.
    pub fn admit(&self, client: IpAddr, username: &str, now: UnixMillis) -> Result<(), ApiError> {
        match self.throttle.lock().wait_for(client, username, now) {
            None => Ok(()),
            Some(wait) => Err(ApiError::too_many_requests(
                "too many failed sign-ins from this address; wait before trying again",
                wait,
            )),
        }
    }

    pub fn record_failure(&self, client: IpAddr, username: &str, now: UnixMillis) {
        self.throttle.lock().record_failure(client, username, now);
    }

    pub fn record_success(&self, client: IpAddr, username: &str) {
        self.throttle.lock().record_success(client, username);
    }

    /// A slot to run one argon2 computation in; hold it until the computation is done.
    pub async fn hashing_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.hash_wait, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(ApiError::internal("password hashing slot", closed)),
            Err(_elapsed) => Err(ApiError::too_many_requests(
                "linkmesh is busy checking other passwords; retry shortly",
                HASH_BUSY_RETRY_AFTER,
            )),
        }
    }
}

/// Whose failures an entry counts: one username from one address, or everything from one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    client: IpAddr,
    username: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: UnixMillis,
    blocked_until: UnixMillis,
}

/// The pure throttle table; time comes in as an argument.
struct Throttle {
    settings: AuthSettings,
    entries: HashMap<Key, Entry>,
}

impl Throttle {
    fn new(settings: AuthSettings) -> Throttle {
        Throttle { settings, entries: HashMap::new() }
    }

    fn keys(client: IpAddr, username: &str) -> [(Key, u32); 2] {
        let client = limit_key(client);
        [(Key { client, username: Some(username.to_owned()) }, 0), (Key { client, username: None }, 1)]
    }

    fn free_attempts(&self, kind: u32) -> u32 {
        if kind == 0 {
            self.settings.login_free_attempts
        } else {
            self.settings.login_free_attempts_per_address
        }
    }

    fn is_stale(&self, entry: &Entry, now: UnixMillis) -> bool {
        entry.blocked_until <= now
            && now.saturating_sub(entry.last_failure) >= self.settings.login_throttle_window
    }

    /// How long the caller must still wait, if at all.
    fn wait_for(&self, client: IpAddr, username: &str, now: UnixMillis) -> Option<Duration> {
        Self::keys(client, username)
            .iter()
            .filter_map(|(key, _)| self.entries.get(key))
            .filter(|entry| entry.blocked_until > now)
            .map(|entry| entry.blocked_until.saturating_sub(now))
            .max()
    }

    fn record_failure(&mut self, client: IpAddr, username: &str, now: UnixMillis) {
        for (key, kind) in Self::keys(client, username) {
            let free = self.free_attempts(kind);
            if !self.entries.contains_key(&key) {
                self.make_room(now);
            }
            let stale = self.entries.get(&key).is_some_and(|entry| self.is_stale(entry, now));
            let entry = self.entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: UnixMillis(0),
            });
            if stale {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if entry.failures >= free {
                let doublings = (entry.failures - free).min(31);
                let wait = self
                    .settings
                    .login_backoff_base
                    .saturating_mul(1u32 << doublings)
                    .min(self.settings.login_backoff_max);
                entry.blocked_until = now.plus(wait);
            }
        }
    }

    /// A successful login clears its own (address, username) pair; the address-wide count stays, so
    /// signing in to one's own account cannot launder guesses at others.
    fn record_success(&mut self, client: IpAddr, username: &str) {
        let [(own, _), _] = Self::keys(client, username);
        self.entries.remove(&own);
    }

    fn make_room(&mut self, now: UnixMillis) {
        let capacity = self.settings.login_throttle_max_entries;
        if self.entries.len() < capacity {
            return;
        }
        let window = self.settings.login_throttle_window;
        self.entries.retain(|_, entry| {
            !(entry.blocked_until <= now && now.saturating_sub(entry.last_failure) >= window)
        });
        if self.entries.len() < capacity {
            return;
        }
        let mut weights: Vec<(u32, UnixMillis, Key)> = self
            .entries
            .iter()
            .map(|(key, entry)| (entry.failures, entry.last_failure, key.clone()))
            .collect();
        let evict = weights.len() / 4 + 1;
        weights.select_nth_unstable_by_key(evict - 1, |(failures, last, _)| (*failures, *last));
        for (_, _, key) in weights.into_iter().take(evict) {
            self.entries.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            login_free_attempts: 3,
            login_free_attempts_per_address: 10,
            login_backoff_base: Duration::from_secs(1),
            login_backoff_max: Duration::from_secs(8),
            login_throttle_window: Duration::from_secs(60),
            login_throttle_max_entries: 16,
            ..AuthSettings::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    const T0: UnixMillis = UnixMillis(1_000_000);

    #[test]
    fn waits_start_after_the_free_attempts_and_double_up_to_the_cap() {
        let mut throttle = Throttle::new(settings());
        let attacker = ip("203.0.113.9");
        let mut waits = Vec::new();
        for _ in 0..8 {
            throttle.record_failure(attacker, "admin", T0);
            waits.push(throttle.wait_for(attacker, "admin", T0).map(|wait| wait.as_secs()));
        }
        assert_eq!(waits, [None, None, Some(1), Some(2), Some(4), Some(8), Some(8), Some(8)]);
        let after_cap = T0.plus(Duration::from_secs(8));
        assert_eq!(throttle.wait_for(attacker, "admin", after_cap), None, "no lockout: the wait ends");
    }

    #[test]
    fn another_address_is_not_slowed_by_an_attack_on_the_same_user() {
        let mut throttle = Throttle::new(settings());
        for _ in 0..20 {
            throttle.record_failure(ip("203.0.113.9"), "admin", T0);
        }
        assert!(throttle.wait_for(ip("203.0.113.9"), "admin", T0).is_some());
        assert_eq!(throttle.wait_for(ip("198.51.100.1"), "admin", T0), None);
    }

    #[test]
    fn guessing_many_usernames_from_one_address_is_throttled_too() {
        let mut throttle = Throttle::new(settings());
        let attacker = ip("203.0.113.9");
        for index in 0..10 {
            throttle.record_failure(attacker, &format!("user{index}"), T0);
        }
        assert!(throttle.wait_for(attacker, "someone-new", T0).is_some());
    }

    #[test]
    fn success_clears_the_pair_but_not_the_address_count() {
        let mut throttle = Throttle::new(settings());
        let client = ip("198.51.100.1");
        for _ in 0..2 {
            throttle.record_failure(client, "dana", T0);
        }
        throttle.record_success(client, "dana");
        throttle.record_failure(client, "dana", T0);
        assert_eq!(throttle.wait_for(client, "dana", T0), None, "count restarted after the success");
        assert_eq!(throttle.entries[&Key { client, username: None }].failures, 3);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_window() {
        let mut throttle = Throttle::new(settings());
        let client = ip("198.51.100.1");
        for _ in 0..3 {
            throttle.record_failure(client, "dana", T0);
        }
        let later = T0.plus(Duration::from_secs(61));
        throttle.record_failure(client, "dana", later);
        assert_eq!(throttle.wait_for(client, "dana", later), None);
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_heavily_throttled() {
        let mut throttle = Throttle::new(settings());
        let target = ip("203.0.113.9");
        for _ in 0..6 {
            throttle.record_failure(target, "admin", T0);
        }
        for index in 0..1000u32 {
            let spray = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + index));
            throttle.record_failure(spray, "admin", T0);
            assert!(throttle.len() <= 16, "at most max_entries keys");
        }
        assert!(throttle.wait_for(target, "admin", T0).is_some(), "the heavy entry survived the flood");
    }

    #[tokio::test]
    async fn a_login_beyond_the_hashing_slots_waits_then_gets_429() {
        let guard = LoginGuard::new(
            &AuthSettings {
                max_concurrent_password_hashes: Some(1),
                password_hash_wait: Duration::from_millis(10),
                ..AuthSettings::default()
            },
            8,
        );
        let held = guard.hashing_slot().await.expect("first slot");
        let refused = guard.hashing_slot().await.expect_err("no second slot");
        assert_eq!(refused.code, crate::error::ErrorCode::ResourceExhausted);
        drop(held);
        let _again = guard.hashing_slot().await.expect("slot free again");
    }
}
