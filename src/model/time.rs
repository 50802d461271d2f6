//! Time: wall-clock instants as carried inside commands ([`UnixMillis`]), and the one [`Clock`] the
//! live parts of the server read them (and monotonic instants) from.
//!
//! Invariant: this file is the only place that reads the system clock (`clippy.toml` forbids
//! `Instant::now` and `SystemTime::now` everywhere else). Code that must be tested across time takes a
//! [`Clock`]; tests drive a [`ManualClock`] instead of waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// The system's wall clock (what [`Clock::system`] reads).
    pub fn now() -> Self {
        system_wall_time()
    }

    pub fn saturating_sub(self, other: UnixMillis) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(other.0))
    }

    pub fn plus(self, duration: std::time::Duration) -> Self {
        UnixMillis(self.0.saturating_add(duration.as_millis() as u64))
    }

    /// RFC 3339 UTC with millisecond precision, as the REST contract requires.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|instant| instant.format(&format).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339())
    }
}

/// Serializes a [`UnixMillis`] as an RFC 3339 string in API responses.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub UnixMillis);

#[allow(clippy::disallowed_methods, reason = "the clock itself: the one place that reads the system clock")]
fn system_wall_time() -> UnixMillis {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    UnixMillis(since_epoch.as_millis() as u64)
}

#[allow(clippy::disallowed_methods, reason = "the clock itself: the one place that reads the system clock")]
fn system_monotonic_time() -> Instant {
    Instant::now()
}

/// Where the live parts of the server read time: wall time for what is recorded (events, `last_seen`,
/// poll timestamps) and monotonic time for durations the wall clock must not bend (idleness, how long
/// ago something was reported). Cheap to clone; every clone reads the same source.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<Mutex<ManualTime>>),
}

struct ManualTime {
    wall: UnixMillis,
    monotonic: Instant,
}

impl Clock {
    /// The system clock: what production uses.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// Wall time, as recorded in commands and events.
    pub fn now(&self) -> UnixMillis {
        match &self.0 {
            Source::System => system_wall_time(),
            Source::Manual(time) => time.lock().wall,
        }
    }

    /// Monotonic time, for measuring how long ago something happened.
    pub fn monotonic(&self) -> Instant {
        match &self.0 {
            Source::System => system_monotonic_time(),
            Source::Manual(time) => time.lock().monotonic,
        }
    }

    /// Monotonic time elapsed since `earlier` (zero if `earlier` is in the future).
    pub fn since(&self, earlier: Instant) -> Duration {
        self.monotonic().saturating_duration_since(earlier)
    }
}

/// A clock that stands still until told to move, for tests: wall and monotonic time advance together.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<ManualTime>>);

impl ManualClock {
    pub fn starting_at(wall: UnixMillis) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(ManualTime { wall, monotonic: system_monotonic_time() })))
    }

    /// A [`Clock`] reading this one.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }

    pub fn advance(&self, by: Duration) {
        let mut time = self.0.lock();
        time.wall = time.wall.plus(by);
        time.monotonic += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_with_millis() {
        assert_eq!(UnixMillis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(UnixMillis(1_764_000_000_123).to_rfc3339(), "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn a_manual_clock_moves_wall_and_monotonic_time_together_and_only_when_told() {
        let manual = ManualClock::starting_at(UnixMillis(1_000));
        let clock = manual.clock();
        let start = clock.monotonic();
        assert_eq!((clock.now(), clock.monotonic()), (UnixMillis(1_000), start));
        manual.advance(Duration::from_millis(2_500));
        assert_eq!(clock.now(), UnixMillis(3_500));
        assert_eq!(clock.since(start), Duration::from_millis(2_500));
        assert_eq!(manual.clock().now(), clock.now(), "every clock of it reads the same time");
    }
}
