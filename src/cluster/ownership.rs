//! This node's slot-ownership state beside Raft: its owner lease, and on the leader what the balancer
//! knows beyond the replicated state (members being drained, members it calls down, a leadership
//! transfer in progress). Shared by the registry (may it serve?), the lease renewer, the balancer
//! driver and the admin calls; imports nothing of Raft, so `RaftNode` can hold it.
//!
//! The drain set lives only in the leader's memory: a new leader does not know of a drain its
//! predecessor started (the operator repeats `DELETE /api/v1/cluster/members/{id}`; slots already
//! moved stay moved).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::lease::{LeaseTimings, OwnerLease};
use super::member_levels::MemberLevels;

pub struct Ownership {
    timings: Mutex<LeaseTimings>,
    lease: Mutex<OwnerLease>,
    draining: Mutex<BTreeSet<u64>>,
    /// Members the leader calls down now (published by the balancer driver for the cluster view).
    down: Mutex<BTreeSet<u64>>,
    /// Until then the leader keeps quiet for a leadership transfer: no renewals, no slot moves.
    transferring_until: Mutex<Option<Instant>>,
    /// Wakes the balancer driver at once (rebalance, a drain, a transfer that ended).
    wake: tokio::sync::Notify,
    /// Hands what this node's actors of some slots hold back to Raft (set once the registry runs).
    slot_flusher: OnceLock<SlotFlusher>,
    /// On the leader: the members' releases, for the feature level (`member_levels.rs`).
    levels: MemberLevels,
}

/// Flushes the resident actors of the given slots and then the activity writer, so what they hold
/// back is committed before the slots move away (after the move it would be fenced off).
pub type SlotFlusher =
    Arc<dyn Fn(BTreeSet<usize>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

impl Ownership {
    pub fn new(node_down_after: Duration) -> Ownership {
        let timings = LeaseTimings::from_node_down_after(node_down_after);
        Ownership {
            timings: Mutex::new(timings),
            lease: Mutex::new(OwnerLease::new(&timings)),
            draining: Mutex::new(BTreeSet::new()),
            down: Mutex::new(BTreeSet::new()),
            transferring_until: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            slot_flusher: OnceLock::new(),
            levels: MemberLevels::default(),
        }
    }

    /// The members' reported releases (the leader's, from renewals and joins).
    pub fn levels(&self) -> &MemberLevels {
        &self.levels
    }

    /// Installs the flusher of this node's collector registry (once, when it starts).
    pub fn set_slot_flusher(&self, flusher: SlotFlusher) {
        let _ = self.slot_flusher.set(flusher);
    }

    /// Commits what this node's actors of `slots` hold back (before a graceful move takes them away).
    pub async fn flush_slots(&self, slots: BTreeSet<usize>) -> Result<(), String> {
        match self.slot_flusher.get() {
            Some(flusher) => flusher(slots).await,
            None => Err("this node's collector registry is not running yet".to_owned()),
        }
    }

    /// `cluster.node_down_after` from the configuration (before the node serves).
    pub fn configure(&self, node_down_after: Duration) {
        let timings = LeaseTimings::from_node_down_after(node_down_after);
        *self.timings.lock() = timings;
        *self.lease.lock() = OwnerLease::new(&timings);
    }

    pub fn timings(&self) -> LeaseTimings {
        *self.timings.lock()
    }

    /// A leader confirmed a renewal sent at `sent_at` (and its commit index is applied here).
    pub fn lease_confirmed(&self, sent_at: Instant) {
        self.lease.lock().confirmed(sent_at);
    }

    pub fn lease_may_serve(&self, now: Instant) -> bool {
        self.lease.lock().may_serve(now)
    }

    pub fn lease_expires_at(&self) -> Option<Instant> {
        self.lease.lock().expires_at()
    }

    pub fn revoke_lease(&self) {
        self.lease.lock().revoke();
    }

    /// Marks `node` as leaving: the balancer drains its slots, then removes it.
    pub fn start_drain(&self, node: u64) {
        self.draining.lock().insert(node);
        self.wake();
    }

    pub fn draining(&self) -> BTreeSet<u64> {
        self.draining.lock().clone()
    }

    /// Forgets drains of nodes that are no longer members (removed, or never were).
    pub fn retain_draining(&self, members: &BTreeSet<u64>) {
        self.draining.lock().retain(|node| members.contains(node));
    }

    pub fn set_down(&self, down: BTreeSet<u64>) {
        *self.down.lock() = down;
    }

    pub fn down(&self) -> BTreeSet<u64> {
        self.down.lock().clone()
    }

    pub fn begin_transfer(&self, until: Instant) {
        *self.transferring_until.lock() = Some(until);
    }

    pub fn end_transfer(&self) {
        *self.transferring_until.lock() = None;
        self.wake();
    }

    pub fn transferring(&self, now: Instant) -> bool {
        self.transferring_until.lock().is_some_and(|until| now < until)
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}
