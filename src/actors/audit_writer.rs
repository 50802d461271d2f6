//! `AuditWriter`: writes the node's queued audit records (requests that committed nothing) and
//! service-account token uses to Raft, one batched write each per `audit.flush_interval`.
//!
//! A write's own audit record never waits here: it commits with the write (`crate::audit`). What is
//! queued is written in order, in front of anything queued later; a failed write is put back in
//! front. On shutdown `FlushNow` writes what is left. What a crash before the next tick loses is
//! described in `crate::audit`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::audit::AuditQueue;
use crate::model::{Command, UnixMillis};
use crate::raft::{ProposeError, RaftNode};

pub struct AuditWriter {
    raft: RaftNode,
    queue: Arc<AuditQueue>,
    flush_interval: Duration,
    in_flight: bool,
}

/// Writes everything queued now and answers when it is committed (shutdown, tests). Sent with `send`:
/// the caller needs to know the queue is empty.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct FlushNow;

#[derive(Message)]
#[rtype(result = "()")]
struct Tick;

impl AuditWriter {
    pub fn new(raft: RaftNode, queue: Arc<AuditQueue>, flush_interval: Duration) -> Self {
        AuditWriter { raft, queue, flush_interval, in_flight: false }
    }
}

/// One flush: queued records under the order lock, then token uses. Errors other than a rejection
/// put the batch back; a rejected batch (a bug, not a transient fault) is logged and dropped.
async fn flush(raft: RaftNode, queue: Arc<AuditQueue>) -> Result<(), String> {
    let records_result = {
        let _order = queue.exclusive().await;
        let records = queue.take_pending();
        if records.is_empty() {
            Ok(())
        } else {
            let count = records.len();
            let batch = queue.batch(records.clone(), UnixMillis::now());
            match raft.propose(Command::RecordAudit { audit: batch }).await {
                Ok(()) => Ok(()),
                Err(ProposeError::Rejected(rejection)) => {
                    tracing::error!(error = %rejection, records = count, "audit batch rejected; dropping it");
                    Ok(())
                }
                Err(error) => {
                    queue.requeue_front(records);
                    Err(format!("audit write failed: {error}"))
                }
            }
        }
    };
    let uses: BTreeMap<String, UnixMillis> = queue.take_token_uses();
    let uses_result = if uses.is_empty() {
        Ok(())
    } else {
        match raft.propose(Command::RecordTokenUse { uses: uses.clone() }).await {
            Ok(()) | Err(ProposeError::Rejected(_)) => Ok(()),
            Err(error) => {
                queue.return_token_uses(uses);
                Err(format!("token use write failed: {error}"))
            }
        }
    };
    records_result.and(uses_result)
}

impl Actor for AuditWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.flush_interval, |_, ctx| ctx.notify(Tick));
    }
}

impl Handler<Tick> for AuditWriter {
    type Result = ();

    fn handle(&mut self, _: Tick, ctx: &mut Self::Context) {
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        let write = flush(self.raft.clone(), self.queue.clone());
        ctx.spawn(write.into_actor(self).map(|result, writer, _ctx| {
            writer.in_flight = false;
            if let Err(error) = result {
                tracing::warn!(error = %error, "will retry at the next audit flush");
            }
        }));
    }
}

impl Handler<FlushNow> for AuditWriter {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: FlushNow, _ctx: &mut Self::Context) -> Self::Result {
        Box::pin(flush(self.raft.clone(), self.queue.clone()))
    }
}
