//! `ActivityWriter`: folds live updates from every collector actor into one Raft write per interval.
//!
//! Polls never wait for consensus; what operators must see (status changes, events) reaches the
//! replicated record within one flush interval. A failed write is retried with later updates merged
//! behind it, so per-collector event order is kept. `FlushNow` (shutdown) first waits for a write in
//! flight, so nothing is left behind when Raft stops right after it.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::{LocalBoxFuture, Shared};
use futures_util::FutureExt as _;
use tokio::sync::oneshot;

use crate::model::{ActivityUpdate, Command};
use crate::raft::{ProposeError, RaftNode};

/// How a batch is written: `RaftNode::propose` in production, a scripted stand-in in the tests below.
type Propose = Box<dyn Fn(Command) -> LocalBoxFuture<'static, Result<(), ProposeError>>>;

pub struct ActivityWriter {
    propose: Propose,
    flush_interval: Duration,
    pending: BTreeMap<String, ActivityUpdate>,
    /// Resolves when the write in flight has finished and a failed batch is queued again.
    in_flight: Option<Shared<LocalBoxFuture<'static, ()>>>,
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
        ActivityWriter { propose, flush_interval, pending: BTreeMap::new(), in_flight: None }
    }

    fn take_batch(&mut self) -> Option<Vec<ActivityUpdate>> {
        if self.pending.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.pending).into_values().collect())
    }

    /// Puts a failed batch back in front of whatever arrived since.
    fn requeue(&mut self, failed: Vec<ActivityUpdate>) {
        for mut update in failed {
            if let Some(newer) = self.pending.remove(&update.collector_id) {
                update.merge(newer);
            }
            self.pending.insert(update.collector_id.clone(), update);
        }
    }
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
        match self.pending.get_mut(&update.collector_id) {
            Some(pending) => pending.merge(update),
            None => {
                self.pending.insert(update.collector_id.clone(), update);
            }
        }
    }
}

impl Handler<Tick> for ActivityWriter {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(batch) = self.take_batch() else {
            return;
        };
        let (finished, finished_rx) = oneshot::channel::<()>();
        self.in_flight = Some(finished_rx.map(|_| ()).boxed_local().shared());
        let retained = batch.clone();
        let write = (self.propose)(Command::RecordActivity { updates: batch });
        ctx.spawn(write.into_actor(self).map(move |result, writer, _ctx| {
            writer.in_flight = None;
            match result {
                Ok(()) => {}
                Err(ProposeError::Rejected(rejection)) => {
                    tracing::error!(error = %rejection, "activity batch rejected; dropping it");
                }
                Err(error) => {
                    tracing::warn!(error = %error, updates = retained.len(), "activity write failed; will retry");
                    writer.requeue(retained);
                }
            }
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
            let write =
                writer.take_batch().map(|updates| (writer.propose)(Command::RecordActivity { updates }));
            async move {
                match write {
                    Some(write) => write.await.map_err(|e| e.to_string()),
                    None => Ok(()),
                }
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
            let raft = self.clone();
            let propose: Propose = Box::new(move |command| {
                let Command::RecordActivity { updates } = command else { panic!("unexpected command") };
                raft.batches.borrow_mut().push(updates);
                let (answer, answered) = oneshot::channel();
                raft.answers.borrow_mut().push(answer);
                Box::pin(async move { answered.await.expect("the test answers every write") })
            });
            // Flushes only when a test sends `Tick`: the interval never comes round during a test.
            ActivityWriter::with_proposer(propose, Duration::from_secs(3600)).start()
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
