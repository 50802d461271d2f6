//! `CollectorRegistry`: the typed handle to collector actors on this node.
//!
//! Actors are virtual: activated from the replicated record on the first message, stopped when idle,
//! and spread over a fixed set of arbiters (threads) by slot. A message that races a stopping actor is
//! retried once on a fresh activation.
//!
//! own_metrics pushes are admitted through the [`PushGate`] (`push_gate.rs`) and remotecfg calls through
//! the [`PollGate`] (`poll_gate.rs`), both before their body is read.
//!
//! Slot moves (`Effect::SlotsMoved`): the old owner's actors of the moved slots leave the resident
//! table at once (the next message for them gets `NotOwner`), hand over what they hold back and stop;
//! the new owner activates the collectors of those slots that expect polls, each with the slot's new
//! epoch, which stamps everything it writes.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix::prelude::*;

use super::activity_writer::{ActivityWriter, FlushNow};
use super::collector_actor::{
    AuthFailed, CollectorActor, FlushPending, LiveView, Observe, ObserveThroughput, OpampExchange,
    OpampReply, Poll, PollReply, PushMetrics, Register, Rerender, Stop, Unregister,
};
use super::env::{ActorEnv, ActorShards};
use super::poll_gate::{PollGate, PollRefused};
use super::push_gate::{PushGate, PushPermit, PushRefused};
use super::throughput::{IngestReport, ThroughputSnapshot};
use crate::cluster::ownership::SlotFlusher;
use crate::config::CollectorSettings;
use crate::metrics::StatusChanges;
use crate::model::{slot_of, Clock, Effect, MovedSlot, TokenHash};
use crate::opamp::OpampConnections;
use crate::raft::RaftNode;
use crate::secrets::DataKey;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("collector {0:?} not found")]
    NotFound(String),
    #[error("collector {collector_id:?} is owned by node {owner}")]
    NotOwner { collector_id: String, owner: u64 },
    #[error("collector actor unavailable: {0}")]
    Unavailable(String),
    /// This node's owner lease ended (no leader confirmed it in time, `cluster/lease.rs`): it serves
    /// no poll, register, unregister or push until a renewal is confirmed.
    #[error("this node's owner lease has expired")]
    LeaseExpired,
    /// The token the call presented is not the collector's current one on the owner's replica (it was
    /// rotated, or the collector deleted, after the edge authenticated the call).
    #[error("the collector token is no longer current")]
    TokenNotCurrent,
    /// The collector has `collectors.max_pushes_in_flight_per_collector` pushes in flight already.
    #[error("collector {0:?} has too many own_metrics pushes in flight")]
    PushesInFlight(String),
    /// This node has `collectors.max_pushes_in_flight` pushes in flight already.
    #[error("too many own_metrics pushes in flight on this node")]
    Overloaded,
    /// The collector called faster than `collectors.poll_burst` / `polls_per_second` allow.
    #[error("too many remotecfg calls from this collector; retry after {retry_after:?}")]
    TooManyCalls { retry_after: std::time::Duration },
}

impl From<PollRefused> for RegistryError {
    fn from(refused: PollRefused) -> Self {
        RegistryError::TooManyCalls { retry_after: refused.retry_after }
    }
}

impl From<PushRefused> for RegistryError {
    fn from(refused: PushRefused) -> Self {
        match refused {
            PushRefused::PerCollector(collector_id) => RegistryError::PushesInFlight(collector_id),
            PushRefused::Node => RegistryError::Overloaded,
        }
    }
}

#[derive(Clone)]
pub struct CollectorRegistry {
    env: Arc<ActorEnv>,
    resident: Arc<ActorShards<CollectorActor>>,
    arbiters: Arc<Vec<ArbiterHandle>>,
    pushes: Arc<PushGate>,
    calls: Arc<PollGate>,
    /// OpAMP WebSocket connections held here, told of their collectors' config changes.
    opamp_connections: Arc<OpampConnections>,
}

impl CollectorRegistry {
    /// Must be called inside a running actix `System`.
    pub fn start(
        raft: RaftNode,
        writer: Addr<ActivityWriter>,
        settings: CollectorSettings,
        data_key: DataKey,
        clock: Clock,
        status_changes: StatusChanges,
        threads: usize,
    ) -> Self {
        let arbiters = (0..threads.max(1)).map(|_| Arbiter::new().handle()).collect();
        let pushes =
            PushGate::new(settings.max_pushes_in_flight_per_collector, settings.max_pushes_in_flight);
        let calls = Arc::new(PollGate::new(settings.poll_burst, settings.polls_per_second, clock.clone()));
        let env = Arc::new(ActorEnv {
            raft,
            writer: writer.recipient(),
            settings,
            data_key,
            clock,
            status_changes,
        });
        CollectorRegistry {
            env,
            resident: Arc::new(ActorShards::new()),
            arbiters: Arc::new(arbiters),
            pushes,
            calls,
            opamp_connections: Arc::default(),
        }
    }

    /// The OpAMP WebSocket connections on this node (`http/opamp_ws.rs`).
    pub fn opamp_connections(&self) -> &Arc<OpampConnections> {
        &self.opamp_connections
    }

    pub fn resident_count(&self) -> usize {
        self.resident.len()
    }

    fn activate(&self, collector_id: &str) -> Result<Addr<CollectorActor>, RegistryError> {
        let slot = slot_of(collector_id);
        let mut shard = self.resident.shard(collector_id).lock();
        if let Some(addr) = shard.get(collector_id) {
            if addr.connected() {
                return Ok(addr.clone());
            }
        }
        let actor = {
            let state = self.env.raft.state();
            let record = state
                .fleet
                .collectors
                .get(collector_id)
                .ok_or_else(|| RegistryError::NotFound(collector_id.to_owned()))?;
            // Before bootstrap the table is empty and this node is the only one.
            let owner = state.fleet.slot_owner(slot).unwrap_or(self.env.raft.node_id());
            if owner != self.env.raft.node_id() {
                return Err(RegistryError::NotOwner { collector_id: collector_id.to_owned(), owner });
            }
            let epoch = state.fleet.slots.epoch(slot);
            CollectorActor::from_record(record, epoch, self.env.clone(), self.resident.clone())
        };
        let arbiter = &self.arbiters[slot % self.arbiters.len()];
        let addr = CollectorActor::start_in_arbiter(arbiter, move |_| actor);
        shard.insert(collector_id.to_owned(), addr.clone());
        Ok(addr)
    }

    /// The owner's last word on a collector call, in this order: its lease, then the presented token
    /// on its replica. The order keeps promise 4 of `cluster.md` (a returned rotation or deletion is
    /// never undone): a lease valid now was confirmed either after this replica applied every rotation
    /// committed before the renewal (`cluster/lease.rs`, rule 2), so the token read below is refused,
    /// or before that rotation was committed, and then the rotation has not returned yet. A token read
    /// before the lease check (the edge's, while the body was still arriving) proves neither: a resumed
    /// owner could renew in between and serve a token rotated while it was stopped.
    fn admit_owner_call(&self, collector_id: &str, token_hash: &TokenHash) -> Result<(), RegistryError> {
        if !self.env.raft.may_serve_slots() {
            return Err(RegistryError::LeaseExpired);
        }
        if self.authenticates(collector_id, token_hash) {
            Ok(())
        } else {
            Err(RegistryError::TokenNotCurrent)
        }
    }

    /// Whether `token_hash` authenticates `collector_id` on this replica now: the collector token, or
    /// for an OpAMP collector its derived credential or the enrollment token its agent enrolled with
    /// (`opamp/credentials.rs`).
    pub fn authenticates(&self, collector_id: &str, token_hash: &TokenHash) -> bool {
        let state = self.env.raft.state();
        state.fleet.collector(collector_id).is_some_and(|record| {
            crate::opamp::credentials::authenticates(&state.fleet, &self.env.data_key, record, token_hash)
        })
    }

    /// Sends `message` to the collector's actor once [`Self::admit_owner_call`] let `token_hash`
    /// through, activating the actor if needed; retried once if the actor stopped between lookup and
    /// delivery.
    async fn call<M>(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        message: M,
    ) -> Result<M::Result, RegistryError>
    where
        M: Message + Send + Clone + 'static,
        M::Result: Send,
        CollectorActor: Handler<M>,
    {
        self.admit_owner_call(collector_id, token_hash)?;
        let mut last_error = None;
        for _ in 0..2 {
            let addr = self.activate(collector_id)?;
            match addr.send(message.clone()).await {
                Ok(reply) => return Ok(reply),
                Err(error) => {
                    self.resident.remove_if_same(collector_id, &addr);
                    last_error = Some(error);
                }
            }
        }
        Err(RegistryError::Unavailable(last_error.map(|e| e.to_string()).unwrap_or_default()))
    }

    pub async fn poll(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        poll: Poll,
    ) -> Result<PollReply, RegistryError> {
        self.call(collector_id, token_hash, poll).await
    }

    pub async fn register(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        register: Register,
    ) -> Result<(), RegistryError> {
        self.call(collector_id, token_hash, register).await
    }

    pub async fn unregister(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        unregister: Unregister,
    ) -> Result<(), RegistryError> {
        self.call(collector_id, token_hash, unregister).await
    }

    /// One OpAMP message of the collector's agent, answered by its actor.
    pub async fn opamp(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        exchange: OpampExchange,
    ) -> Result<OpampReply, RegistryError> {
        self.call(collector_id, token_hash, exchange).await
    }

    /// Admits a remotecfg call of an authenticated collector before its body is read (token bucket).
    pub fn admit_call(&self, collector_id: &str) -> Result<(), RegistryError> {
        Ok(self.calls.admit(collector_id)?)
    }

    /// Admits an own_metrics push before its body is read; hold the permit until the actor answered.
    pub fn admit_push(&self, collector_id: &str) -> Result<PushPermit, RegistryError> {
        Ok(self.pushes.admit(collector_id)?)
    }

    /// The edge's admission of a push it reads and forwards to the owner: the per-node bound only.
    pub fn admit_push_at_edge(&self) -> Result<PushPermit, RegistryError> {
        Ok(self.pushes.admit_node()?)
    }

    /// The owner's admission of a push another node read and forwarded: the per-collector count only.
    pub fn admit_forwarded_push(&self, collector_id: &str) -> Result<PushPermit, RegistryError> {
        Ok(self.pushes.admit_collector(collector_id)?)
    }

    /// Applies an own_metrics push on the collector's actor (activating it if needed).
    pub async fn push_metrics(
        &self,
        collector_id: &str,
        token_hash: &TokenHash,
        push: PushMetrics,
    ) -> Result<IngestReport, RegistryError> {
        self.call(collector_id, token_hash, push).await
    }

    /// The throughput of a resident actor; `None` when the collector is not active on this node (then
    /// no push arrived since it was last activated, and there is nothing to show).
    pub async fn throughput(&self, collector_id: &str, history: bool) -> Option<ThroughputSnapshot> {
        let addr = self.resident.get(collector_id)?;
        addr.send(ObserveThroughput { history }).await.ok()
    }

    /// Best effort (dropped if the mailbox is full): a call presented this collector's rotated token.
    pub fn auth_failed(&self, collector_id: &str) {
        if let Ok(addr) = self.activate(collector_id) {
            addr.do_send(AuthFailed { at: self.env.clock.now() });
        }
    }

    /// The live view of a resident actor; `None` when the collector is not active on this node.
    pub async fn observe(&self, collector_id: &str) -> Option<LiveView> {
        let addr = self.resident.get(collector_id)?;
        addr.send(Observe).await.ok()
    }

    /// Shutdown: every resident actor hands what waits for its interval to the activity writer; when
    /// this returns, a `FlushNow` to the writer covers it.
    pub async fn flush_pending(&self) {
        flush_each(self.resident.all()).await;
    }

    /// Reacts to an applied command (called for every effect the state machine emits).
    pub fn handle_effect(&self, effect: Effect) {
        match effect {
            Effect::CollectorDeleted { collector_id } => {
                if let Some(addr) = self.resident.get(&collector_id) {
                    addr.do_send(Stop);
                }
                // Its connections hear the owner refuse them, and close.
                self.opamp_connections.changed(&collector_id);
            }
            Effect::CollectorRenderInputsChanged { collector_id } => {
                if let Some(addr) = self.resident.get(&collector_id) {
                    addr.do_send(Rerender);
                }
                self.opamp_connections.changed(&collector_id);
            }
            // Connections held with the old token hear the owner refuse it, and close.
            Effect::CollectorTokenChanged { collector_id }
            | Effect::CollectorRestartRequested { collector_id } => {
                self.opamp_connections.changed(&collector_id)
            }
            Effect::SlotsMoved { moved } => self.slots_moved(&moved),
        }
    }

    fn slots_moved(&self, moved: &[MovedSlot]) {
        let node_id = self.env.raft.node_id();
        let lost: BTreeSet<usize> = moved.iter().filter(|m| m.from == node_id).map(|m| m.slot).collect();
        let gained: BTreeSet<usize> = moved.iter().filter(|m| m.to == node_id).map(|m| m.slot).collect();
        // A resident actor of a gained slot can only be left from an earlier tenure here (activation
        // raced the move away): its epoch is stale, so it goes too and a fresh one takes over.
        let leaving = self.resident.take_where(|collector_id| {
            let slot = slot_of(collector_id);
            lost.contains(&slot) || gained.contains(&slot)
        });
        for addr in &leaving {
            // do_send: both arrive in this order; what the flush hands over carries the old epoch and is
            // fenced off once the move applied, unless the mover flushed before proposing it.
            addr.do_send(FlushPending);
            addr.do_send(Stop);
        }
        let activated =
            if gained.is_empty() { 0 } else { self.activate_expected_in(|slot| gained.contains(&slot)) };
        // The agents this node holds WebSockets for, whose collectors have a new owner: that owner
        // never saw their stream, so each is asked what to send now (a full state report first) rather
        // than at its next heartbeat, and a change pushed while the old owner was gone is not lost.
        let slots: BTreeSet<usize> = moved.iter().map(|m| m.slot).collect();
        self.opamp_connections.changed_where(|collector_id| slots.contains(&slot_of(collector_id)));
        tracing::info!(
            lost = lost.len(),
            gained = gained.len(),
            stopped = leaving.len(),
            activated,
            "slots moved"
        );
    }

    /// Hands over what the resident actors of `slots` hold back (status, events, effective config
    /// waiting for its interval) to the activity writer, and waits until they have. A graceful
    /// move calls it, then flushes the writer, before proposing the move: after the move applies,
    /// those actors' writes no longer count.
    pub async fn flush_slots(&self, slots: &BTreeSet<usize>) {
        let resident = self.resident.all_with_ids().into_iter();
        flush_each(resident.filter(|(id, _)| slots.contains(&slot_of(id))).map(|(_, addr)| addr).collect())
            .await;
    }

    /// What the leader's `FlushSlots` runs here before a graceful move: the resident actors of the
    /// slots hand what they hold back to `writer`, which then writes everything pending.
    pub fn slot_flusher(&self, writer: Addr<ActivityWriter>) -> SlotFlusher {
        let registry = self.clone();
        Arc::new(move |slots| {
            let (registry, writer) = (registry.clone(), writer.clone());
            Box::pin(async move {
                registry.flush_slots(&slots).await;
                writer.send(FlushNow).await.map_err(|error| error.to_string())?
            })
        })
    }

    /// Activates every collector that should be polling, so that silence turns it stale even if it
    /// never calls again (after a restart or failover nothing else would wake its actor).
    pub fn activate_expected(&self) -> usize {
        self.activate_expected_in(|_| true)
    }

    /// [`Self::activate_expected`] for the slots `in_slots` accepts that this node owns.
    fn activate_expected_in(&self, in_slots: impl Fn(usize) -> bool) -> usize {
        let expected: Vec<String> = {
            let state = self.env.raft.state();
            let node_id = self.env.raft.node_id();
            state
                .fleet
                .collectors
                .values()
                .filter(|record| record.status.expects_polls())
                .filter(|record| {
                    let slot = slot_of(&record.id);
                    in_slots(slot) && state.fleet.slot_owner(slot).unwrap_or(node_id) == node_id
                })
                .map(|record| record.id.clone())
                .collect()
        };
        expected.iter().filter(|id| self.activate(id).is_ok()).count()
    }
}

/// Requests that wait on one actor each, in flight at most this many at a time: one `join_all` over a
/// million actors spent its time in wake-ups (a graceful stop with 1M resident actors did not finish in
/// ten minutes; BENCHMARKS.md).
const FLUSHES_IN_FLIGHT: usize = 1024;

/// Sends `FlushPending` to every actor of `addrs` and waits until each has handed over what it held.
async fn flush_each(addrs: Vec<Addr<CollectorActor>>) {
    futures_util::StreamExt::for_each_concurrent(
        futures_util::stream::iter(addrs),
        FLUSHES_IN_FLIGHT,
        |addr| async move {
            // An actor already stopped has nothing left to hand over.
            let _ = addr.send(FlushPending).await;
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use super::*;
    use crate::model::{
        CollectorStatus, Command, EventType, ManualClock, SlotEpoch, SlotMove, SlotMoveReason, UnixMillis,
    };

    const COLLECTOR: &str = "col_moving";

    /// The registry over `raft` with a writer whose interval is an hour (what the actors publish waits
    /// in it until a test flushes it), ticks only from the test, and the applied effects handed to it.
    fn start_registry(
        raft: &RaftNode,
        data_key: DataKey,
        time: &ManualClock,
        mut applied_effects: tokio::sync::mpsc::UnboundedReceiver<Effect>,
    ) -> (Addr<ActivityWriter>, CollectorRegistry) {
        let writer = ActivityWriter::new(raft.clone(), Duration::from_secs(3600)).start();
        let settings = CollectorSettings { tick_interval: Duration::from_secs(3600), ..Default::default() };
        let registry = CollectorRegistry::start(
            raft.clone(),
            writer.clone(),
            settings,
            data_key,
            time.clock(),
            StatusChanges::default(),
            1,
        );
        let forwarder = registry.clone();
        actix::spawn(async move {
            while let Some(effect) = applied_effects.recv().await {
                forwarder.handle_effect(effect);
            }
        });
        (writer, registry)
    }

    /// Waits (with a deadline) until `condition` holds: effects reach the registry asynchronously.
    async fn eventually(condition: impl Fn() -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        waited.await.expect("condition within 10 s");
    }

    #[actix::test]
    async fn a_slot_moved_away_stops_its_actor_and_one_moved_back_is_served_in_the_new_epoch() {
        let data = tempfile::tempdir().expect("temp dir");
        let (effects, applied_effects) = tokio::sync::mpsc::unbounded_channel();
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let at = time.clock().now();
        let (raft, data_key) = crate::raft::testing::bootstrapped_node(data.path(), effects, at).await;
        let me = raft.node_id();
        crate::raft::testing::create_collector(&raft, COLLECTOR, at).await;
        let token = crate::raft::testing::mint_token(&raft, COLLECTOR, "lmc_moving", at).await;
        let (writer, registry) = start_registry(&raft, data_key, &time, applied_effects);
        let register =
            Register { host_id: "host-1".into(), name: String::new(), local_attributes: BTreeMap::new(), at };
        let registered_events = || {
            let state = raft.state();
            let events = &state.fleet.collectors[COLLECTOR].events;
            events.iter().filter(|event| event.event_type == EventType::RemotecfgRegistered).count()
        };

        registry.register(COLLECTOR, &token, register.clone()).await.expect("register");
        writer.send(FlushNow).await.expect("writer").expect("flush");
        assert_eq!(registered_events(), 1);
        assert_eq!(raft.state().fleet.collectors[COLLECTOR].status, CollectorStatus::Connected);
        assert_eq!(registry.resident_count(), 1);

        let slot = slot_of(COLLECTOR);
        let away = vec![SlotMove { slot, from: me, to: me + 1, epoch: SlotEpoch::INITIAL }];
        let reason = SlotMoveReason::NodeDown;
        raft.propose(Command::MoveSlots { moves: away, reason, at }).await.expect("move away");
        eventually(|| registry.resident_count() == 0).await;
        let refused = registry.register(COLLECTOR, &token, register.clone()).await;
        assert!(
            matches!(refused, Err(RegistryError::NotOwner { owner, .. }) if owner == me + 1),
            "{refused:?}"
        );

        let back = vec![SlotMove { slot, from: me + 1, to: me, epoch: SlotEpoch(2) }];
        raft.propose(Command::MoveSlots { moves: back, reason, at }).await.expect("move back");
        eventually(|| registry.resident_count() == 1).await;
        registry.register(COLLECTOR, &token, register).await.expect("register with the new owner");
        writer.send(FlushNow).await.expect("writer").expect("flush");
        assert_eq!(registered_events(), 2, "written in epoch 3, so it counts");
        raft.shutdown().await;
    }

    /// The owner's token check comes after its lease check and reads its replica then, not what the
    /// edge read before the body arrived: a call authenticated with a token rotated (or a collector
    /// deleted) in between is refused, however the actor was left (promise 4 of `cluster.md`).
    #[actix::test]
    async fn a_call_whose_token_was_rotated_after_the_edge_checked_it_is_refused_by_the_owner() {
        let data = tempfile::tempdir().expect("temp dir");
        let (effects, applied_effects) = tokio::sync::mpsc::unbounded_channel();
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let at = time.clock().now();
        let (raft, data_key) = crate::raft::testing::bootstrapped_node(data.path(), effects, at).await;
        crate::raft::testing::create_collector(&raft, COLLECTOR, at).await;
        let first = crate::raft::testing::mint_token(&raft, COLLECTOR, "lmc_first", at).await;
        let (_writer, registry) = start_registry(&raft, data_key, &time, applied_effects);
        let register =
            Register { host_id: "host-1".into(), name: String::new(), local_attributes: BTreeMap::new(), at };
        registry.register(COLLECTOR, &first, register.clone()).await.expect("the current token");
        assert_eq!(registry.resident_count(), 1, "the actor is resident with the first token");

        let second = crate::raft::testing::mint_token(&raft, COLLECTOR, "lmc_second", at).await;
        let refused = registry.register(COLLECTOR, &first, register.clone()).await;
        assert!(matches!(refused, Err(RegistryError::TokenNotCurrent)), "{refused:?}");
        let unknown = crate::secrets::hash_token("lmc_never_minted");
        let refused = registry.register(COLLECTOR, &unknown, register.clone()).await;
        assert!(matches!(refused, Err(RegistryError::TokenNotCurrent)), "{refused:?}");
        registry.register(COLLECTOR, &second, register.clone()).await.expect("the rotated-in token");

        raft.propose(Command::DeleteCollector { id: COLLECTOR.into() }).await.expect("delete");
        let refused = registry.register(COLLECTOR, &second, register).await;
        assert!(matches!(refused, Err(RegistryError::TokenNotCurrent)), "{refused:?}");
        raft.shutdown().await;
    }

    /// A poll right after a config change gets it although the change's `Rerender` has not reached
    /// the actor (here it never does: no effect is forwarded), because the poll carries the config
    /// version its authentication saw on the replica; one that carries no version is answered from
    /// the actor's rendering, which shows what the version check is for.
    #[actix::test]
    async fn a_poll_carrying_a_newer_config_version_gets_that_version_before_the_rerender_arrives() {
        use crate::model::pipeline::{Destination, Route, Source};

        let data = tempfile::tempdir().expect("temp dir");
        let (effects, _never_forwarded) = tokio::sync::mpsc::unbounded_channel();
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let at = time.clock().now();
        let (raft, data_key) = crate::raft::testing::bootstrapped_node(data.path(), effects, at).await;
        crate::raft::testing::create_collector(&raft, COLLECTOR, at).await;
        let token = crate::raft::testing::mint_token(&raft, COLLECTOR, "lmc_polling", at).await;
        let (_no_effects_sender, no_effects) = tokio::sync::mpsc::unbounded_channel();
        let (_writer, registry) = start_registry(&raft, data_key, &time, no_effects);
        let current = || {
            let state = raft.state();
            let record = &state.fleet.collectors[COLLECTOR];
            (record.config.version, record.current_config().expect("a version").hash.clone())
        };
        let poll = |config_version| Poll {
            host_id: "host-1".into(),
            local_attributes: BTreeMap::new(),
            hash: String::new(),
            remote_status: None,
            effective_config: None,
            at,
            config_version,
        };

        let (first_version, first_hash) = current();
        let reply = registry.poll(COLLECTOR, &token, poll(first_version)).await.expect("poll");
        assert_eq!(reply.rendered.hash, first_hash);

        let collector_id = COLLECTOR.to_owned();
        for command in [
            Command::PutSource {
                collector_id: collector_id.clone(),
                source: Source::for_test("s", "otlp"),
                create: true,
                at,
            },
            Command::PutDestination {
                collector_id: collector_id.clone(),
                destination: Destination::for_test("d", "otlphttp"),
                remove_credentials: vec![],
                create: true,
                at,
            },
            Command::PutRoute {
                collector_id: collector_id.clone(),
                route: Route::for_test("r", 1, "true", true, &["d"]),
                create: true,
                at,
            },
        ] {
            raft.propose(command).await.expect("config change");
        }
        let (new_version, new_hash) = current();
        assert!(new_version > first_version && new_hash != first_hash, "the change made a version");

        let stale = registry.poll(COLLECTOR, &token, poll(0)).await.expect("poll without a version");
        assert_eq!(stale.rendered.hash, first_hash, "no Rerender arrived, so the actor still has v1");
        let fresh = registry.poll(COLLECTOR, &token, poll(new_version)).await.expect("poll with the version");
        assert_eq!(fresh.rendered.hash, new_hash);
        assert!(!fresh.rendered.content.is_empty());
        raft.shutdown().await;
    }

    /// What a graceful move prevents: activity still waiting in the writer when a slot moves away
    /// carries the old epoch and is fenced off; the leader's `FlushSlots` (this registry's
    /// `slot_flusher`) commits it before the move.
    #[actix::test]
    async fn a_slot_flushed_before_it_moves_keeps_the_activity_a_move_alone_would_fence_off() {
        let data = tempfile::tempdir().expect("temp dir");
        let (effects, applied_effects) = tokio::sync::mpsc::unbounded_channel();
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let at = time.clock().now();
        let (raft, data_key) = crate::raft::testing::bootstrapped_node(data.path(), effects, at).await;
        let me = raft.node_id();
        // Two collectors in two different slots: one moves after a flush, the other without.
        let (flushed, unflushed) = ("col_flushed_first", "col_moved_as_is");
        assert_ne!(slot_of(flushed), slot_of(unflushed));
        for id in [flushed, unflushed] {
            crate::raft::testing::create_collector(&raft, id, at).await;
            crate::raft::testing::mint_token(&raft, id, id, at).await;
        }
        let token = |id: &str| crate::secrets::hash_token(id);
        let (writer, registry) = start_registry(&raft, data_key, &time, applied_effects);
        let register = |id: &str| Register {
            host_id: format!("host-{id}"),
            name: String::new(),
            local_attributes: BTreeMap::new(),
            at,
        };
        let registered = |id: &str| {
            let state = raft.state();
            state.fleet.collectors[id]
                .events
                .iter()
                .any(|event| event.event_type == EventType::RemotecfgRegistered)
        };
        registry.register(flushed, &token(flushed), register(flushed)).await.expect("register");
        assert!(!registered(flushed), "waiting in the writer");
        let flusher = registry.slot_flusher(writer.clone());
        flusher(BTreeSet::from([slot_of(flushed)])).await.expect("flush before the move");
        assert!(registered(flushed), "the flush committed the registration");
        // The other collector's registration arrives after the flush and still waits when its slot moves.
        registry.register(unflushed, &token(unflushed), register(unflushed)).await.expect("register");
        assert!(!registered(unflushed), "waiting in the writer");
        let reason = SlotMoveReason::Balance;
        let moves = [flushed, unflushed]
            .map(|id| SlotMove { slot: slot_of(id), from: me, to: me + 1, epoch: SlotEpoch::INITIAL })
            .to_vec();
        raft.propose(Command::MoveSlots { moves, reason, at }).await.expect("move away");
        writer.send(FlushNow).await.expect("writer").expect("flush after the move");
        assert!(registered(flushed));
        assert!(!registered(unflushed), "written after the move in the old epoch: fenced off");
        raft.shutdown().await;
    }
}
