//! Lease arithmetic: when a slot owner may serve, when the leader may call a member down, and how long
//! a rotation or deletion waits for an owner that does not answer. Pure: instants come from the
//! caller's `Clock::monotonic()` (wall time never enters: it jumps).
//!
//! # The numbers
//!
//! With `d` = `cluster.node_down_after` (default 10 s, at least 2 s) and ρ = [`MAX_CLOCK_RATE_DRIFT`]
//! (1 %: any two nodes' monotonic clocks run at rates within 1 % of real time; NTP slews at most
//! 0.05 %):
//!
//! | quantity | formula | at `d` = 10 s | at `d` = 2 s |
//! |---|---|---|---|
//! | `lease` | `2d/5` | 4 s | 0.8 s |
//! | renew every | `lease/4` | 1 s | 0.2 s |
//! | `revocation_wait` | `lease·(1+ρ)/(1−ρ)` | 4.08 s | 0.816 s |
//! | margin | `d/(1+ρ) − 2·lease/(1−ρ)` | 1.82 s | 0.36 s |
//!
//! # The rules the wiring keeps
//!
//! 1. An owner's lease runs from the instant it *sent* the renewal a leader confirmed
//!    ([`OwnerLease::confirmed`]), never from the reply's arrival, so it starts before the leader's
//!    contact with it and no message delay lengthens it. On the leader, the lease runs from the send
//!    time of the heartbeat round a quorum last acknowledged (openraft records acks by send time:
//!    `now − millis_since_quorum_ack`; `cluster/renewer.rs` instead has the leader renew through a
//!    quorum round of its own, like any member, as that metric is only as fresh as its last report).
//! 2. A leader confirms a renewal only after a quorum round that started after the request arrived
//!    (`Raft::ensure_linearizable`), and the reply carries its commit index; the owner extends its
//!    lease only once it has applied that index. A deposed leader cannot confirm (its quorum voted
//!    for a newer term), so every confirmed renewal was sent before the newer leader's term began.
//! 3. The leader calls a member down after `d` on its own clock without contact ([`PeerContacts`]),
//!    counting its own election as the last contact with everyone.
//!
//! # Why they are safe
//!
//! - **No two owners.** An owner's last renewal was sent at real time `s`, before the leader's last
//!   contact `c` (rule 2, or before the newer leader's start, which rule 3 counts as contact). Its
//!   lease ends by `s + lease/(1−ρ)` real time (its clock may run slow); the leader moves its slots no
//!   earlier than `c + d/(1+ρ)` (the leader's may run fast). The difference is at least the margin
//!   above, which also covers a request admitted just before the lease ended and still being
//!   answered. `lease = 2d/5` keeps the margin even if renewals were only guarded by the leader's own
//!   quorum lease (then an owner may serve up to two leases past the newer leader's start).
//! - **Revocation waits at most one lease.** A rotation or deletion committed at real time `r`: any
//!   renewal confirmed later carries a commit index that includes it, so the owner cannot serve
//!   under it before applying it; renewals confirmed earlier were sent before `r` and end by
//!   `r + lease/(1−ρ)`. The node that took the call applied the entry at `r` or later, and waiting
//!   `revocation_wait` on its clock lasts at least `lease/(1−ρ)` real time: after it, the owner has
//!   either applied the change or stopped serving.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Bound on how far any node's monotonic clock rate departs from real time, in percent.
pub const MAX_CLOCK_RATE_DRIFT: u32 = 1;

/// The lease figures derived from `cluster.node_down_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// No contact for this long and the leader moves the member's slots away.
    pub node_down_after: Duration,
    /// How long a confirmed renewal lets a node serve polls and pushes: `2/5 · node_down_after`.
    pub lease: Duration,
    /// How long, after applying a rotation or deletion, the node that took the call waits at most
    /// for an owner that does not confirm it: one lease, stretched by the worst clock drift.
    pub revocation_wait: Duration,
}

impl LeaseTimings {
    pub fn from_node_down_after(node_down_after: Duration) -> LeaseTimings {
        let lease = node_down_after * 2 / 5;
        let revocation_wait = scale(lease, 100 + MAX_CLOCK_RATE_DRIFT, 100 - MAX_CLOCK_RATE_DRIFT);
        LeaseTimings { node_down_after, lease, revocation_wait }
    }

    /// How often a node asks for a renewal: four chances per lease, so one lost reply costs nothing.
    pub fn renew_every(&self) -> Duration {
        self.lease / 4
    }

    /// What is left between the latest real time a deposed owner may still serve and the earliest
    /// its slots can move: `d/(1+ρ) − 2·lease/(1−ρ)`. Covers a request admitted just before the lease
    /// ended and still being answered.
    pub fn margin(&self) -> Duration {
        let earliest_move = scale(self.node_down_after, 100, 100 + MAX_CLOCK_RATE_DRIFT);
        let latest_serve = scale(self.lease * 2, 100, 100 - MAX_CLOCK_RATE_DRIFT);
        earliest_move.saturating_sub(latest_serve)
    }
}

/// `duration · numerator / denominator`, rounded up (every use is a bound that must not shrink).
fn scale(duration: Duration, numerator: u32, denominator: u32) -> Duration {
    let nanos = (duration.as_nanos() * u128::from(numerator)).div_ceil(u128::from(denominator));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// This node's right to serve the slots it owns.
#[derive(Debug, Clone)]
pub struct OwnerLease {
    lease: Duration,
    /// Send time of the latest renewal a leader confirmed.
    renewed_from: Option<Instant>,
}

impl OwnerLease {
    pub fn new(timings: &LeaseTimings) -> OwnerLease {
        OwnerLease { lease: timings.lease, renewed_from: None }
    }

    /// A leader confirmed the renewal this node sent at `sent_at` (and this node applied the commit
    /// index the confirmation carried). A late reply to an older request never shortens the lease.
    pub fn confirmed(&mut self, sent_at: Instant) {
        self.renewed_from = Some(self.renewed_from.map_or(sent_at, |renewed| renewed.max(sent_at)));
    }

    /// Leadership lost, membership removed, storage failed: stop serving now.
    pub fn revoke(&mut self) {
        self.renewed_from = None;
    }

    /// When serving must stop unless a renewal is confirmed first.
    pub fn expires_at(&self) -> Option<Instant> {
        self.renewed_from.map(|renewed| renewed + self.lease)
    }

    pub fn may_serve(&self, now: Instant) -> bool {
        self.expires_at().is_some_and(|expiry| now < expiry)
    }
}

/// The leader's view of its peers: when it last heard from each.
#[derive(Debug, Clone)]
pub struct PeerContacts {
    timings: LeaseTimings,
    /// When this node became leader: the contact everyone gets to begin with.
    leading_since: Instant,
    heard: BTreeMap<u64, Instant>,
}

impl PeerContacts {
    pub fn new(timings: LeaseTimings, leading_since: Instant) -> PeerContacts {
        PeerContacts { timings, leading_since, heard: BTreeMap::new() }
    }

    /// A message from `node` arrived at `at` (its receipt: later is the safe side for calling it down).
    pub fn heard(&mut self, node: u64, at: Instant) {
        let last = self.heard.entry(node).or_insert(at);
        *last = (*last).max(at);
    }

    /// The later of the last message from `node` and this leader's start.
    pub fn last_contact(&self, node: u64) -> Instant {
        self.heard.get(&node).map_or(self.leading_since, |heard| (*heard).max(self.leading_since))
    }

    /// Unreachable for `node_down_after`: its slots may move.
    pub fn down(&self, node: u64, now: Instant) -> bool {
        now.saturating_duration_since(self.last_contact(node)) >= self.timings.node_down_after
    }

    /// The members of `nodes` that are down at `now`.
    pub fn down_among(&self, nodes: &BTreeSet<u64>, now: Instant) -> BTreeSet<u64> {
        nodes.iter().copied().filter(|node| self.down(*node, now)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ManualClock, UnixMillis};

    fn timings() -> LeaseTimings {
        LeaseTimings::from_node_down_after(Duration::from_secs(10))
    }

    #[test]
    fn the_documented_numbers_hold_at_the_default_and_the_minimum() {
        let default = timings();
        assert_eq!(default.lease, Duration::from_secs(4));
        assert_eq!(default.renew_every(), Duration::from_secs(1));
        assert_eq!(default.revocation_wait.as_millis(), 4_080);
        assert_eq!(default.margin().as_millis(), 1_820);
        let minimum = LeaseTimings::from_node_down_after(Duration::from_secs(2));
        assert_eq!(minimum.lease, Duration::from_millis(800));
        assert_eq!(minimum.revocation_wait.as_millis(), 816);
        assert_eq!(minimum.margin().as_millis(), 364);
    }

    #[test]
    fn a_deposed_owner_stops_before_the_leader_may_move_its_slots_at_every_setting() {
        for seconds in [2, 3, 5, 10, 30, 60, 600] {
            let timings = LeaseTimings::from_node_down_after(Duration::from_secs(seconds));
            // Real time after the last contact: the owner's slow clock stretches two leases, the
            // leader's fast clock shrinks node_down_after; the margin is what stays between them.
            let owner_stops = scale(timings.lease * 2, 100, 100 - MAX_CLOCK_RATE_DRIFT);
            let leader_moves = scale(timings.node_down_after, 100, 100 + MAX_CLOCK_RATE_DRIFT);
            assert!(owner_stops < leader_moves, "{seconds}s");
            assert!(timings.margin() >= timings.node_down_after / 6, "{seconds}s: margin too thin");
            assert!(timings.revocation_wait < timings.node_down_after / 2, "{seconds}s");
        }
    }

    #[test]
    fn an_owner_serves_for_one_lease_from_the_send_time_of_its_last_confirmed_renewal() {
        let time = ManualClock::starting_at(UnixMillis(0));
        let clock = time.clock();
        let mut lease = OwnerLease::new(&timings());
        assert!(!lease.may_serve(clock.monotonic()), "no renewal yet");
        let sent = clock.monotonic();
        time.advance(Duration::from_millis(300));
        lease.confirmed(sent);
        time.advance(Duration::from_millis(3_699));
        assert!(lease.may_serve(clock.monotonic()));
        time.advance(Duration::from_millis(1));
        assert!(!lease.may_serve(clock.monotonic()), "4 s after the send, not after the reply");
        let newer = clock.monotonic();
        lease.confirmed(newer);
        lease.confirmed(sent);
        assert_eq!(
            lease.expires_at(),
            Some(newer + Duration::from_secs(4)),
            "a late reply never shortens it"
        );
        lease.revoke();
        assert!(!lease.may_serve(clock.monotonic()));
    }

    #[test]
    fn the_leader_calls_a_member_down_after_node_down_after_counting_from_its_own_election() {
        let time = ManualClock::starting_at(UnixMillis(0));
        let clock = time.clock();
        let mut contacts = PeerContacts::new(timings(), clock.monotonic());
        time.advance(Duration::from_secs(6));
        contacts.heard(2, clock.monotonic());
        time.advance(Duration::from_millis(3_999));
        let members = BTreeSet::from([2, 3]);
        assert!(
            contacts.down_among(&members, clock.monotonic()).is_empty(),
            "3 was never heard: 10 s from the election"
        );
        time.advance(Duration::from_millis(1));
        assert_eq!(contacts.down_among(&members, clock.monotonic()), BTreeSet::from([3]));
        time.advance(Duration::from_secs(6));
        assert_eq!(contacts.down_among(&members, clock.monotonic()), members);
        contacts.heard(3, clock.monotonic());
        assert!(!contacts.down(3, clock.monotonic()), "back once heard again");
    }
}
