//! `ActivityWriter`: folds live updates from every collector actor into one Raft write per interval.
//!
//! Polls never wait for consensus; what operators must see (status changes, events) reaches the
//! replicated record within one flush interval. A failed write is retried with later updates merged
//! behind it, so per-collector event order is kept. `FlushNow` (shutdown) first waits for a write in
//! flight, so nothing is left behind when Raft stops right after it.
//!
//! A follower's batches reach the leader through write forwarding (`raft/node.rs`); a write fails
//! only when no leader can be reached or its outcome is unknown. Consecutive failures space the
//! retries out (1, 2, 4 … up to [`MAX_RETRY_SPACING_TICKS`] flush intervals), so a node cut off
//! from its leader neither retries hot nor floods the log, and what waits stays bounded: one merged
//! update per collector, with at most the events `apply` would keep.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::{LocalBoxFuture, Shared};
use futures_util::FutureExt as _;
use tokio::sync::oneshot;

use crate::metrics::ActivityMetrics;
use crate::model::collector::MAX_EVENTS_PER_COLLECTOR;
use crate::model::{ActivityUpdate, Clock, Command};
use crate::raft::{ProposeError, RaftNode};

/// The longest wait, in flush intervals, between two attempts after consecutive failed writes.
const MAX_RETRY_SPACING_TICKS: u32 = 32;

/// Per-collector updates in one Raft entry at most; a larger backlog is written over the following
/// flushes (about 1 MiB of log per entry). An entry of unbounded size — a backlog of tens of
/// thousands after a stall, at a million collectors — took followers longer to append than openraft
/// waits for an AppendEntries (`raft.heartbeat_interval`): every attempt timed out, was cancelled and
/// sent again, and the cluster stopped committing (`BENCHMARKS.md`, "Three nodes holding a million").
pub const MAX_UPDATES_PER_WRITE: usize = 2_000;

/// How a batch is written: `RaftNode::propose` in production, a scripted stand-in in the tests below.
type Propose = Box<dyn Fn(Command) -> LocalBoxFuture<'static, Result<(), ProposeError>>>;

pub struct ActivityWriter {
    propose: Propose,
    flush_interval: Duration,
    pending: BTreeMap<String, ActivityUpdate>,
    /// Resolves when the write in flight has finished and a failed batch is queued again.
    in_flight: Option<Shared<LocalBoxFuture<'static, ()>>>,
    /// Failed writes in a row, and the ticks still to let pass before the next attempt.
    consecutive_failures: u32,
    ticks_to_skip: u32,
    /// Updates in the write in flight (0 without one), for the pending gauge.
    in_flight_updates: usize,
    metrics: ActivityMetrics,
    clock: Clock,
}

/// Sent with `do_send`: the writer's mailbox is unbounded for it, so no update is dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordActivity(pub ActivityUpdate);

/// Writes everything pending now and answers when it is committed (shutdown, tests).
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct FlushNow;

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl ActivityWriter {
    pub fn new(raft: RaftNode, flush_interval: Duration) -> Self {
        let propose: Propose = Box::new(move |command| {
            let raft = raft.clone();
            Box::pin(async move { raft.propose(command).await })
        });
        ActivityWriter::with_proposer(propose, flush_interval)
    }

    fn with_proposer(propose: Propose, flush_interval: Duration) -> Self {
        ActivityWriter {
            propose,
            flush_interval,
            pending: BTreeMap::new(),
            in_flight: None,
            consecutive_failures: 0,
            ticks_to_skip: 0,
            in_flight_updates: 0,
            metrics: ActivityMetrics::default(),
            clock: Clock::system(),
        }
    }

    /// Reports into `metrics` (the node's registry), timing writes with `clock`.
    pub fn with_metrics(mut self, metrics: ActivityMetrics, clock: Clock) -> Self {
        self.metrics = metrics;
        self.clock = clock;
        self
    }

    /// Sets the pending gauge: collectors waiting for a write, and those in the write in flight.
    fn report_pending(&self) {
        let pending = self.pending.len().saturating_add(self.in_flight_updates);
        self.metrics.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Folds `update` into what waits for its collector.
    fn add(&mut self, update: ActivityUpdate) {
        match self.pending.get_mut(&update.collector_id) {
            Some(pending) => {
                pending.merge(update);
                keep_latest_events(pending);
            }
            None => {
                self.pending.insert(update.collector_id.clone(), update);
            }
        }
    }

    fn write_failed(&mut self) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let spacing = 1u32
            .checked_shl(self.consecutive_failures - 1)
            .unwrap_or(MAX_RETRY_SPACING_TICKS)
            .min(MAX_RETRY_SPACING_TICKS);
        self.ticks_to_skip = spacing - 1;
    }

    /// The next write: at most [`MAX_UPDATES_PER_WRITE`] updates, in collector id order; the rest
    /// waits for the next flush.
    fn take_batch(&mut self) -> Option<Vec<ActivityUpdate>> {
        if self.pending.is_empty() {
            return None;
        }
        if self.pending.len() <= MAX_UPDATES_PER_WRITE {
            return Some(std::mem::take(&mut self.pending).into_values().collect());
        }
        let rest = match self.pending.keys().nth(MAX_UPDATES_PER_WRITE).cloned() {
            Some(first_left) => self.pending.split_off(&first_left),
            None => BTreeMap::new(),
        };
        Some(std::mem::replace(&mut self.pending, rest).into_values().collect())
    }

    /// Everything pending, as the writes [`Self::take_batch`] would make one flush after another.
    fn take_all_batches(&mut self) -> Vec<Vec<ActivityUpdate>> {
        std::iter::from_fn(|| self.take_batch()).collect()
    }

    /// Puts a failed batch back in front of whatever arrived since.
    fn requeue(&mut self, failed: Vec<ActivityUpdate>) {
        for mut update in failed {
            if let Some(newer) = self.pending.remove(&update.collector_id) {
                update.merge(newer);
                keep_latest_events(&mut update);
            }
            self.pending.insert(update.collector_id.clone(), update);
        }
    }
}

/// `apply` keeps a collector's latest [`MAX_EVENTS_PER_COLLECTOR`] events; older ones waiting here
/// would only be written to be dropped.
fn keep_latest_events(update: &mut ActivityUpdate) {
    let excess = update.events.len().saturating_sub(MAX_EVENTS_PER_COLLECTOR);
    update.events.drain(..excess);
}

impl Actor for ActivityWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.flush_interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Handler<RecordActivity> for ActivityWriter {
    type Result = ();

    fn handle(&mut self, RecordActivity(update): RecordActivity, _ctx: &mut Self::Context) {
        self.add(update);
        self.report_pending();
    }
}

impl Handler<Tick> for ActivityWriter {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        if self.in_flight.is_some() {
            return;
        }
        if self.ticks_to_skip > 0 {
            self.ticks_to_skip -= 1;
            return;
        }
        let Some(batch) = self.take_batch() else {
            return;
        };
        let (finished, finished_rx) = oneshot::channel::<()>();
        self.in_flight = Some(finished_rx.map(|_| ()).boxed_local().shared());
        let retained = batch.clone();
        self.in_flight_updates = batch.len();
        let proposed_at = self.clock.monotonic();
        let write = (self.propose)(Command::RecordActivity { updates: batch });
        ctx.spawn(write.into_actor(self).map(move |result, writer, _ctx| {
            writer.in_flight = None;
            writer.in_flight_updates = 0;
            writer.metrics.write_seconds.observe(writer.clock.since(proposed_at).as_secs_f64());
            match result {
                Ok(()) => {
                    writer.consecutive_failures = 0;
                    writer.metrics.written.inc_by(retained.len() as u64);
                }
                Err(ProposeError::Rejected(rejection)) => {
                    writer.consecutive_failures = 0;
                    tracing::error!(error = %rejection, "activity batch rejected; dropping it");
                }
                Err(error) => {
                    writer.write_failed();
                    tracing::warn!(
                        error = %error,
                        updates = retained.len(),
                        consecutive_failures = writer.consecutive_failures,
                        retry_after_ticks = writer.ticks_to_skip + 1,
                        "activity write failed; will retry"
                    );
                    writer.requeue(retained);
                }
            }
            writer.report_pending();
            let _ = finished.send(());
        }));
    }
}

impl Handler<FlushNow> for ActivityWriter {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, _: FlushNow, _ctx: &mut Self::Context) -> Self::Result {
        let in_flight = self.in_flight.clone();
        let waited = async move {
            if let Some(in_flight) = in_flight {
                in_flight.await;
            }
        };
        Box::pin(waited.into_actor(self).then(|(), writer, _ctx| {
            let batches = writer.take_all_batches();
            writer.report_pending();
            let written = writer.metrics.written.clone();
            // Awaited in turn (a write starts when polled), each once the one before it committed.
            let writes: Vec<_> = batches
                .into_iter()
                .map(|updates| {
                    let count = updates.len() as u64;
                    ((writer.propose)(Command::RecordActivity { updates }), count)
                })
                .collect();
            async move {
                for (write, count) in writes {
                    write.await.map_err(|e| e.to_string())?;
                    written.inc_by(count);
                }
                Ok(())
            }
            .into_actor(writer)
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::model::event::NewEvent;
    use crate::model::{ApplyError, EventType, UnixMillis};

    type Answer = oneshot::Sender<Result<(), ProposeError>>;

    /// Stands in for Raft: keeps every batch proposed, and answers each with what the test sends.
    #[derive(Clone, Default)]
    struct ScriptedRaft {
        batches: Rc<RefCell<Vec<Vec<ActivityUpdate>>>>,
        answers: Rc<RefCell<Vec<Answer>>>,
    }

    impl ScriptedRaft {
        fn writer(&self) -> Addr<ActivityWriter> {
            self.writer_reporting_to(ActivityMetrics::default())
        }

        fn writer_reporting_to(&self, metrics: ActivityMetrics) -> Addr<ActivityWriter> {
            let raft = self.clone();
            let propose: Propose = Box::new(move |command| {
                let Command::RecordActivity { updates } = command else { panic!("unexpected command") };
                raft.batches.borrow_mut().push(updates);
                let (answer, answered) = oneshot::channel();
                raft.answers.borrow_mut().push(answer);
                Box::pin(async move { answered.await.expect("the test answers every write") })
            });
            // Flushes only when a test sends `Tick`: the interval never comes round during a test.
            ActivityWriter::with_proposer(propose, Duration::from_secs(3600))
                .with_metrics(metrics, Clock::system())
                .start()
        }

        /// Answers the oldest unanswered write.
        fn answer(&self, result: Result<(), ProposeError>) {
            let answer = self.answers.borrow_mut().remove(0);
            assert!(answer.send(result).is_ok(), "the writer stopped waiting");
        }

        fn proposed(&self) -> usize {
            self.batches.borrow().len()
        }

        /// The event messages of batch `index`, per collector, in order.
        fn messages(&self, index: usize) -> Vec<(String, Vec<String>)> {
            self.batches.borrow()[index]
                .iter()
                .map(|update| {
                    let messages = update.events.iter().map(|event| event.message.clone()).collect();
                    (update.collector_id.clone(), messages)
                })
                .collect()
        }
    }

    fn event(collector_id: &str, message: &str) -> RecordActivity {
        let mut update = ActivityUpdate::for_collector(collector_id);
        update.events.push(NewEvent::new(UnixMillis(0), EventType::StatusChanged, message));
        RecordActivity(update)
    }

    /// Ticks until the writer has proposed `count` batches: a finished write is handled on a later turn
    /// of the writer's context, so the test gives it turns, a bounded number, never a duration.
    async fn tick_until_proposed(writer: &Addr<ActivityWriter>, raft: &ScriptedRaft, count: usize) {
        for _ in 0..1000 {
            if raft.proposed() >= count {
                return;
            }
            writer.send(Tick).await.expect("writer");
            tokio::task::yield_now().await;
        }
        panic!("the writer never proposed batch {count}");
    }

    fn list(entries: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        entries
            .iter()
            .map(|(collector, messages)| {
                (collector.to_string(), messages.iter().map(|message| message.to_string()).collect())
            })
            .collect()
    }

    /// A backlog larger than one write (a stall at a million collectors) goes out in entries of at
    /// most [`MAX_UPDATES_PER_WRITE`] updates, one per flush, in collector order; `FlushNow` writes all
    /// of what is left, in as many entries.
    #[actix::test]
    async fn a_backlog_is_written_in_bounded_entries_and_a_flush_now_writes_all_of_it() {
        let raft = ScriptedRaft::default();
        let writer = raft.writer();
        let id = |index: usize| format!("col_{index:06}");
        for index in 0..MAX_UPDATES_PER_WRITE * 2 + 5 {
            writer.send(event(&id(index), "up")).await.expect("writer");
        }
        tick_until_proposed(&writer, &raft, 1).await;
        raft.answer(Ok(()));
        tick_until_proposed(&writer, &raft, 2).await;
        raft.answer(Ok(()));
        for (batch, first) in [(0, 0), (1, MAX_UPDATES_PER_WRITE)] {
            let batches = raft.batches.borrow();
            assert_eq!(batches[batch].len(), MAX_UPDATES_PER_WRITE, "batch {batch}");
            assert_eq!(batches[batch][0].collector_id, id(first), "batch {batch}");
        }

        for index in 0..MAX_UPDATES_PER_WRITE + 100 {
            writer.send(event(&id(1_000_000 + index), "later")).await.expect("writer");
        }
        let flushed = writer.send(FlushNow);
        let answering = async {
            for _ in 0..2 {
                while raft.answers.borrow().is_empty() {
                    tokio::task::yield_now().await;
                }
                raft.answer(Ok(()));
            }
        };
        let (flushed, ()) = futures_util::join!(flushed, answering);
        flushed.expect("writer").expect("flushed");
        let batches = raft.batches.borrow();
        let sizes: Vec<usize> = batches[2..].iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_UPDATES_PER_WRITE, 105], "the 5 left over, then the 2,100 new ones");
    }

    #[actix::test]
    async fn a_failed_write_is_retried_ahead_of_the_updates_that_arrived_meanwhile() {
        let raft = ScriptedRaft::default();
        let writer = raft.writer();
        writer.send(event("col_a", "first")).await.expect("writer");
        writer.send(Tick).await.expect("writer");
        assert_eq!(raft.messages(0), list(&[("col_a", &["first"])]));

        writer.send(event("col_a", "second")).await.expect("writer");
        writer.send(event("col_b", "other")).await.expect("writer");
        writer.send(Tick).await.expect("writer");
        assert_eq!(raft.proposed(), 1, "one write at a time");

        raft.answer(Err(ProposeError::OutcomeUnknown("leader lost".into())));
        tick_until_proposed(&writer, &raft, 2).await;
        assert_eq!(raft.messages(1), list(&[("col_a", &["first", "second"]), ("col_b", &["other"])]));

        raft.answer(Ok(()));
        writer.send(event("col_a", "third")).await.expect("writer");
        tick_until_proposed(&writer, &raft, 3).await;
        assert_eq!(raft.messages(2), list(&[("col_a", &["third"])]), "a written batch is not written again");
        raft.answer(Ok(()));
    }

    #[actix::test]
    async fn the_gauge_counts_what_waits_and_what_is_in_flight_until_it_is_committed() {
        let raft = ScriptedRaft::default();
        let metrics = ActivityMetrics::default();
        let writer = raft.writer_reporting_to(metrics.clone());
        writer.send(event("col_a", "one")).await.expect("writer");
        writer.send(event("col_a", "two")).await.expect("writer");
        writer.send(event("col_b", "three")).await.expect("writer");
        assert_eq!(metrics.pending.get(), 2, "one merged update per collector");
        writer.send(Tick).await.expect("writer");
        writer.send(event("col_c", "four")).await.expect("writer");
        assert_eq!(metrics.pending.get(), 3, "two in flight, one waiting");
        assert_eq!(metrics.written.get(), 0);

        raft.answer(Err(ProposeError::OutcomeUnknown("leader lost".into())));
        tick_until_proposed(&writer, &raft, 2).await;
        assert_eq!(metrics.written.get(), 0, "a failed write wrote nothing");
        assert_eq!(metrics.pending.get(), 3, "requeued and merged with what came since");

        raft.answer(Ok(()));
        writer.send(FlushNow).await.expect("writer").expect("nothing left to write");
        assert_eq!(metrics.written.get(), 3);
        assert_eq!(metrics.pending.get(), 0);
    }

    #[actix::test]
    async fn consecutive_failures_space_the_retries_out_and_a_success_resets_them() {
        // Every write fails at once, as on a node that can reach no leader.
        let attempts = Rc::new(RefCell::new(0usize));
        let counted = attempts.clone();
        let fail_result = Rc::new(RefCell::new(true));
        let failing = fail_result.clone();
        let propose: Propose = Box::new(move |_command| {
            *counted.borrow_mut() += 1;
            let result =
                if *failing.borrow() { Err(ProposeError::NotLeader { leader: None }) } else { Ok(()) };
            Box::pin(async move { result })
        });
        let writer = ActivityWriter::with_proposer(propose, Duration::from_secs(3600)).start();
        writer.send(event("col_a", "waiting")).await.expect("writer");
        let ticks = 400;
        for _ in 0..ticks {
            writer.send(Tick).await.expect("writer");
            tokio::task::yield_now().await;
        }
        let failed_attempts = *attempts.borrow();
        // Spacing 1, 2, 4, 8, 16, 32, 32 …: about 16 attempts in 400 ticks instead of 400 (or 200 with
        // the in-flight ticks skipped); at least the first six come quickly.
        assert!((6..=24).contains(&failed_attempts), "{failed_attempts} attempts in {ticks} ticks");

        *fail_result.borrow_mut() = false;
        for _ in 0..=MAX_RETRY_SPACING_TICKS * 2 {
            writer.send(Tick).await.expect("writer");
            tokio::task::yield_now().await;
        }
        assert_eq!(*attempts.borrow(), failed_attempts + 1, "the update is written once the leader is back");
        writer.send(event("col_a", "next")).await.expect("writer");
        let before = *attempts.borrow();
        for _ in 0..3 {
            writer.send(Tick).await.expect("writer");
            tokio::task::yield_now().await;
        }
        assert_eq!(*attempts.borrow(), before + 1, "after a success the next tick writes again");
    }

    #[test]
    fn waiting_events_are_capped_at_what_apply_keeps() {
        let mut writer = ActivityWriter::with_proposer(
            Box::new(|_| Box::pin(async { Ok(()) })),
            Duration::from_secs(3600),
        );
        for index in 0..(MAX_EVENTS_PER_COLLECTOR + 50) {
            let RecordActivity(update) = event("col_a", &format!("event {index}"));
            writer.add(update);
        }
        let waiting = &writer.pending["col_a"].events;
        assert_eq!(waiting.len(), MAX_EVENTS_PER_COLLECTOR);
        assert_eq!(
            waiting.last().map(|event| event.message.as_str()),
            Some(&*format!("event {}", MAX_EVENTS_PER_COLLECTOR + 49))
        );
        assert_eq!(waiting[0].message, "event 50", "the oldest ones are dropped");
    }

    #[actix::test]
    async fn a_rejected_batch_is_dropped_not_retried() {
        let raft = ScriptedRaft::default();
        let writer = raft.writer();
        writer.send(event("col_a", "refused")).await.expect("writer");
        writer.send(Tick).await.expect("writer");
        writer.send(event("col_a", "later")).await.expect("writer");

        raft.answer(Err(ProposeError::Rejected(ApplyError::AlreadyBootstrapped)));
        tick_until_proposed(&writer, &raft, 2).await;
        assert_eq!(raft.messages(1), list(&[("col_a", &["later"])]));
        raft.answer(Ok(()));
    }

    #[actix::test]
    async fn flush_now_waits_for_the_write_in_flight_and_writes_what_it_left_behind() {
        let raft = ScriptedRaft::default();
        let writer = raft.writer();
        writer.send(event("col_a", "in flight")).await.expect("writer");
        writer.send(Tick).await.expect("writer");
        writer.send(event("col_a", "later")).await.expect("writer");
        let flushed = writer.send(FlushNow);
        let answered = async {
            for _ in 0..1000 {
                tokio::task::yield_now().await;
            }
            assert_eq!(raft.proposed(), 1, "no second write while the first is in flight");
            raft.answer(Err(ProposeError::OutcomeUnknown("leader lost".into())));
            for _ in 0..1000 {
                if raft.proposed() > 1 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            raft.answer(Ok(()));
        };
        let (flushed, ()) = tokio::join!(flushed, answered);
        assert_eq!(flushed.expect("writer"), Ok(()));
        assert_eq!(raft.messages(1), list(&[("col_a", &["in flight", "later"])]), "the failed batch first");
    }

    #[actix::test]
    async fn flush_now_writes_everything_pending_and_reports_the_outcome() {
        let raft = ScriptedRaft::default();
        let writer = raft.writer();
        writer.send(event("col_b", "b")).await.expect("writer");
        writer.send(event("col_a", "a")).await.expect("writer");
        let flushed = writer.send(FlushNow);
        let answered = async {
            for _ in 0..1000 {
                if raft.proposed() > 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            raft.answer(Err(ProposeError::NotLeader { leader: None }));
        };
        let (flushed, ()) = tokio::join!(flushed, answered);
        assert!(flushed.expect("writer").is_err(), "the caller hears that the write failed");
        assert_eq!(raft.messages(0), list(&[("col_a", &["a"]), ("col_b", &["b"])]));
        assert_eq!(writer.send(FlushNow).await.expect("writer"), Ok(()), "nothing left to write");
        assert_eq!(raft.proposed(), 1);
    }
}
