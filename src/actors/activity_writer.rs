//! `ActivityWriter`: folds live updates from every collector actor into one Raft write per interval.
//!
//! Polls never wait for consensus; what operators must see (status changes, events) reaches the
//! replicated record within one flush interval. A failed write is retried with later updates merged
//! behind it, so per-collector event order is kept.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;

use crate::model::{ActivityUpdate, Command};
use crate::raft::{ProposeError, RaftNode};

pub struct ActivityWriter {
    raft: RaftNode,
    flush_interval: Duration,
    pending: BTreeMap<String, ActivityUpdate>,
    in_flight: bool,
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
        ActivityWriter { raft, flush_interval, pending: BTreeMap::new(), in_flight: false }
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
        if self.in_flight {
            return;
        }
        let Some(batch) = self.take_batch() else {
            return;
        };
        self.in_flight = true;
        let raft = self.raft.clone();
        let retained = batch.clone();
        let write = async move { raft.propose(Command::RecordActivity { updates: batch }).await };
        ctx.spawn(write.into_actor(self).map(move |result, writer, _ctx| {
            writer.in_flight = false;
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
        }));
    }
}

impl Handler<FlushNow> for ActivityWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: FlushNow, _ctx: &mut Self::Context) -> Self::Result {
        let batch = self.take_batch();
        let raft = self.raft.clone();
        Box::pin(async move {
            match batch {
                Some(updates) => {
                    raft.propose(Command::RecordActivity { updates }).await.map_err(|e| e.to_string())
                }
                None => Ok(()),
            }
        })
    }
}
