//! Pure status rules: how a collector's status follows from what it does and when.

use std::collections::VecDeque;
use std::time::Duration;

use crate::model::{CollectorStatus, RemoteConfigState, UnixMillis};

/// Intervals remembered to estimate the poll cadence.
const CADENCE_SAMPLES: usize = 5;

/// Learns a collector's poll interval from the gaps between its polls.
///
/// Gaps shorter than `min_interval` are ignored: Alloy >= 1.12 follows a status change with an immediate
/// extra GetConfig, which says nothing about its `poll_frequency`. A collector told its interval (an
/// OpAMP agent offered a heartbeat interval, [`PollCadence::announce`]) is expected at it until its
/// gaps say otherwise, and only its gaps shorter than half of it are ignored (messages sent on changes,
/// between heartbeats).
#[derive(Debug, Clone)]
pub struct PollCadence {
    default_interval: Duration,
    min_interval: Duration,
    announced: Option<Duration>,
    last_poll: Option<UnixMillis>,
    recent_intervals: VecDeque<Duration>,
}

impl PollCadence {
    pub fn new(default_interval: Duration, min_interval: Duration) -> Self {
        PollCadence {
            default_interval,
            min_interval,
            announced: None,
            last_poll: None,
            recent_intervals: VecDeque::new(),
        }
    }

    /// The collector was told to call every `interval` (`None`: nothing told, its cadence is learned
    /// alone). A new interval forgets the gaps seen before it: the collector follows it from now on.
    pub fn announce(&mut self, interval: Option<Duration>) {
        if self.announced != interval {
            self.announced = interval;
            self.recent_intervals.clear();
        }
    }

    pub fn record_poll(&mut self, at: UnixMillis) {
        if let Some(previous) = self.last_poll {
            let gap = at.saturating_sub(previous);
            let shortest = self.announced.map_or(self.min_interval, |announced| announced / 2);
            if gap >= shortest {
                self.recent_intervals.push_back(gap);
                if self.recent_intervals.len() > CADENCE_SAMPLES {
                    self.recent_intervals.pop_front();
                }
            }
        }
        if self.last_poll.is_none_or(|previous| at > previous) {
            self.last_poll = Some(at);
        }
    }

    pub fn last_poll(&self) -> Option<UnixMillis> {
        self.last_poll
    }

    /// The median of recent intervals, or the announced or configured default until one is known.
    pub fn expected_interval(&self) -> Duration {
        if self.recent_intervals.is_empty() {
            return self.announced.unwrap_or(self.default_interval);
        }
        let mut sorted: Vec<Duration> = self.recent_intervals.iter().copied().collect();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    /// True once `missed_polls` expected polls have not arrived since the last one.
    pub fn is_stale(&self, now: UnixMillis, missed_polls: u32) -> bool {
        match self.last_poll {
            Some(last_poll) => now.saturating_sub(last_poll) > self.expected_interval() * missed_polls,
            None => false,
        }
    }
}

/// Status after an authenticated call from the collector (it is evidently alive).
pub fn status_after_contact(current: CollectorStatus, remote: Option<RemoteConfigState>) -> CollectorStatus {
    match (current, remote) {
        (_, Some(RemoteConfigState::Failed)) => CollectorStatus::Degraded,
        (CollectorStatus::Degraded, Some(RemoteConfigState::Applied)) => CollectorStatus::Connected,
        (CollectorStatus::Degraded, _) => CollectorStatus::Degraded,
        _ => CollectorStatus::Connected,
    }
}

/// Status after a periodic check with no contact.
pub fn status_after_silence(
    current: CollectorStatus,
    cadence: &PollCadence,
    now: UnixMillis,
    missed_polls: u32,
) -> CollectorStatus {
    if current.expects_polls() && cadence.is_stale(now, missed_polls) {
        CollectorStatus::Stale
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1000;

    fn cadence() -> PollCadence {
        PollCadence::new(Duration::from_secs(60), Duration::from_secs(10))
    }

    #[test]
    fn expected_interval_defaults_until_polls_are_observed() {
        let mut cadence = cadence();
        assert_eq!(cadence.expected_interval(), Duration::from_secs(60));
        cadence.record_poll(UnixMillis(0));
        cadence.record_poll(UnixMillis(15 * SECOND));
        cadence.record_poll(UnixMillis(30 * SECOND));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(15));
    }

    #[test]
    fn immediate_status_report_polls_do_not_shorten_the_cadence() {
        let mut cadence = cadence();
        cadence.record_poll(UnixMillis(0));
        cadence.record_poll(UnixMillis(20 * SECOND));
        cadence.record_poll(UnixMillis(20 * SECOND + 50));
        cadence.record_poll(UnixMillis(40 * SECOND));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(20));
    }

    #[test]
    fn an_announced_interval_is_expected_at_once_and_its_short_gaps_count() {
        let mut cadence = cadence();
        cadence.record_poll(UnixMillis(0));
        cadence.record_poll(UnixMillis(30 * SECOND));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(30));
        cadence.announce(Some(Duration::from_secs(2)));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(2), "the old gaps are forgotten");
        cadence.record_poll(UnixMillis(30 * SECOND + 500)); // a message on a change: not a heartbeat
        cadence.record_poll(UnixMillis(33 * SECOND));
        cadence.record_poll(UnixMillis(36 * SECOND));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(3), "gaps under min_interval count");
        // An agent that never got the offer keeps its own pace, and is expected at it once seen.
        for second in [66, 96, 126] {
            cadence.record_poll(UnixMillis(second * SECOND));
        }
        assert_eq!(cadence.expected_interval(), Duration::from_secs(30));
        cadence.announce(Some(Duration::from_secs(2)));
        assert_eq!(cadence.expected_interval(), Duration::from_secs(30), "the same announcement keeps them");
        cadence.announce(None);
        assert_eq!(cadence.expected_interval(), Duration::from_secs(60));
    }

    #[test]
    fn stale_after_three_missed_expected_polls() {
        let mut cadence = cadence();
        cadence.record_poll(UnixMillis(0));
        cadence.record_poll(UnixMillis(10 * SECOND));
        let connected = CollectorStatus::Connected;
        assert_eq!(status_after_silence(connected, &cadence, UnixMillis(40 * SECOND), 3), connected);
        assert_eq!(
            status_after_silence(connected, &cadence, UnixMillis(40 * SECOND + 1), 3),
            CollectorStatus::Stale
        );
    }

    #[test]
    fn silence_never_changes_collectors_not_expected_to_poll() {
        let cadence = cadence();
        for status in [CollectorStatus::AwaitingConnection, CollectorStatus::Offline, CollectorStatus::Stale]
        {
            assert_eq!(status_after_silence(status, &cadence, UnixMillis(u64::MAX), 3), status);
        }
    }

    #[test]
    fn contact_connects_and_failed_config_degrades() {
        use CollectorStatus::*;
        assert_eq!(status_after_contact(AwaitingConnection, None), Connected);
        assert_eq!(status_after_contact(Stale, None), Connected);
        assert_eq!(status_after_contact(Offline, Some(RemoteConfigState::Applied)), Connected);
        assert_eq!(status_after_contact(Connected, Some(RemoteConfigState::Failed)), Degraded);
        assert_eq!(status_after_contact(Degraded, None), Degraded);
        assert_eq!(status_after_contact(Degraded, Some(RemoteConfigState::Applying)), Degraded);
        assert_eq!(status_after_contact(Degraded, Some(RemoteConfigState::Applied)), Connected);
    }
}
