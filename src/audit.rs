//! How requests become audit entries: the per-request record, and the node's queue of records that
//! no write carried. The log itself (ids, retention, paging) is `model/audit.rs`.
//!
//! 1. `http/audit.rs` gives every authenticated unsafe `/api/v1` request a [`RequestAudit`] (who,
//!    from where, which route, which path) in a task-local scope around its handler.
//! 2. The handler's first proposal (`RaftNode::propose` calls [`propose_audited`]) is wrapped into
//!    `Command::Audited` with the request's record (outcome `ok`) and every record queued before it:
//!    a write and its entry commit together or not at all, and costs no second Raft round trip.
//! 3. A request that committed nothing (refused, invalid, not found, outcome unknown) has its record
//!    queued once its response is known. The audit writer (`actors/audit_writer.rs`) proposes the
//!    queue as one `Command::RecordAudit` per `audit.flush_interval`, and on shutdown.
//!
//! Order: per node, entries commit in the order requests queued or proposed them. A flush and an
//! audited write never overlap (the writer holds [`AuditQueue::exclusive`]; audited proposals hold
//! the shared side), so a queued refusal is never overtaken by a later write.
//!
//! Loss: a write's own entry is never lost (it is part of the write). Queued records of requests that
//! changed nothing are lost if the process dies before the next flush (at most `audit.flush_interval`
//! of them; a clean stop flushes), and dropped with a warning beyond [`MAX_QUEUED_RECORDS`]. A failed
//! flush is retried in front of newer records; records carry a request id, so a batch whose outcome
//! was unknown is never recorded twice.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{RwLock, RwLockWriteGuard};

use crate::model::{AuditBatch, AuditRecord, AuditRetention, Command, UnixMillis};

/// Records waiting for a flush at most; beyond it new ones are dropped (and counted) so that a client
/// flooding refused requests cannot grow memory while Raft is unavailable.
pub const MAX_QUEUED_RECORDS: usize = 10_000;

/// The node's audit records and token uses waiting to be written. Shared by the HTTP workers, the
/// proposal path and the audit writer.
pub struct AuditQueue {
    pending: Mutex<VecDeque<AuditRecord>>,
    token_uses: Mutex<BTreeMap<String, UnixMillis>>,
    /// Flushes take it exclusively, audited proposals shared (see the module docs on order).
    order: RwLock<()>,
    retention: AuditRetention,
    dropped: AtomicU64,
}

impl AuditQueue {
    pub fn new(retention: AuditRetention) -> AuditQueue {
        AuditQueue {
            pending: Mutex::new(VecDeque::new()),
            token_uses: Mutex::new(BTreeMap::new()),
            order: RwLock::new(()),
            retention,
            dropped: AtomicU64::new(0),
        }
    }

    pub fn push(&self, record: AuditRecord) {
        let mut pending = self.pending.lock();
        if pending.len() >= MAX_QUEUED_RECORDS {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "audit queue full; records of refused requests are being dropped");
            }
            return;
        }
        pending.push_back(record);
    }

    /// Puts records whose write failed back in front of those queued since.
    pub fn requeue_front(&self, records: Vec<AuditRecord>) {
        let mut pending = self.pending.lock();
        for record in records.into_iter().rev() {
            pending.push_front(record);
        }
    }

    pub fn take_pending(&self) -> Vec<AuditRecord> {
        self.pending.lock().drain(..).collect()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.lock().len()
    }

    /// Records of refused requests dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Notes that a service-account token authenticated a request at `at`.
    pub fn note_token_use(&self, token_id: &str, at: UnixMillis) {
        let mut uses = self.token_uses.lock();
        let seen = uses.entry(token_id.to_owned()).or_insert(at);
        *seen = (*seen).max(at);
    }

    pub fn take_token_uses(&self) -> BTreeMap<String, UnixMillis> {
        std::mem::take(&mut *self.token_uses.lock())
    }

    /// Puts back token uses whose write failed (newer uses noted since win).
    pub fn return_token_uses(&self, failed: BTreeMap<String, UnixMillis>) {
        let mut uses = self.token_uses.lock();
        for (token_id, at) in failed {
            let seen = uses.entry(token_id).or_insert(at);
            *seen = (*seen).max(at);
        }
    }

    /// Held by a flush from taking the queue until its write is settled.
    pub async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.order.write().await
    }

    pub fn batch(&self, records: Vec<AuditRecord>, at: UnixMillis) -> AuditBatch {
        AuditBatch { records, retention: self.retention, at }
    }
}

/// The audit record of one request in progress. `record.outcome` is filled in when it is known.
pub struct RequestAudit {
    record: AuditRecord,
    queue: Arc<AuditQueue>,
    /// The request's first proposal carries the record; later ones do not.
    claimed: AtomicBool,
    /// Set when the record committed together with a write.
    committed: AtomicBool,
    /// What a bulk write noted about itself ([`note_bulk`]).
    bulk: Mutex<Option<(&'static str, u64)>>,
}

tokio::task_local! {
    static CURRENT: Arc<RequestAudit>;
}

/// The outcome of a request whose write committed.
pub const OUTCOME_OK: &str = "ok";

impl RequestAudit {
    pub fn new(queue: Arc<AuditQueue>, record: AuditRecord) -> Arc<RequestAudit> {
        Arc::new(RequestAudit {
            record,
            queue,
            claimed: AtomicBool::new(false),
            committed: AtomicBool::new(false),
            bulk: Mutex::new(None),
        })
    }

    /// The record with what the handler noted and `outcome`.
    fn record_with(&self, outcome: &str) -> AuditRecord {
        let mut record = self.record.clone();
        record.outcome = outcome.to_owned();
        if let Some((operation, count)) = *self.bulk.lock() {
            record.operation = Some(operation.to_owned());
            record.count = Some(count);
        }
        record
    }

    /// Runs `future` (the handler) with this record as the current request's.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// Queues the record with `outcome` unless it already committed with the request's write.
    pub fn finish(&self, outcome: &str) {
        if self.committed.load(Ordering::Acquire) {
            return;
        }
        self.queue.push(self.record_with(outcome));
    }
}

/// Notes on the current request's audit record what a bulk write does (`operation`, a fixed word of
/// the server's) and how many items it selected; call before its proposal. Outside an audited request
/// it does nothing.
pub fn note_bulk(operation: &'static str, count: usize) {
    let _ = CURRENT.try_with(|request| {
        *request.bulk.lock() = Some((operation, count as u64));
    });
}

/// Proposes `command` through `propose`; inside an audited request's scope, the first proposal is
/// wrapped with the request's record and the records queued before it (module docs).
pub async fn propose_audited<E, Fut>(command: Command, propose: impl FnOnce(Command) -> Fut) -> Result<(), E>
where
    Fut: Future<Output = Result<(), E>>,
{
    let request =
        CURRENT.try_with(Arc::clone).ok().filter(|request| !request.claimed.swap(true, Ordering::AcqRel));
    let Some(request) = request else {
        return propose(command).await;
    };
    let queue = &request.queue;
    let _order = queue.order.read().await;
    let earlier = queue.take_pending();
    let mut records = earlier.clone();
    records.push(request.record_with(OUTCOME_OK));
    let audited =
        Command::Audited { audit: queue.batch(records, UnixMillis::now()), command: Box::new(command) };
    let result = propose(audited).await;
    match &result {
        Ok(()) => request.committed.store(true, Ordering::Release),
        Err(_) => queue.requeue_front(earlier),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ActorKind;

    fn record(request_id: &str) -> AuditRecord {
        AuditRecord {
            request_id: request_id.to_owned(),
            ts: UnixMillis(1),
            actor_kind: ActorKind::User,
            actor_id: "usr_1".into(),
            actor: "admin".into(),
            remote_addr: "127.0.0.1".into(),
            action: "DELETE /api/v1/users/{id}".into(),
            target: "/api/v1/users/usr_2".into(),
            outcome: String::new(),
            operation: None,
            count: None,
        }
    }

    fn queue() -> Arc<AuditQueue> {
        Arc::new(AuditQueue::new(AuditRetention { max_entries: 100, max_age_ms: 1000 }))
    }

    fn request_ids(command: &Command) -> Vec<String> {
        match command {
            Command::Audited { audit, .. } => audit.records.iter().map(|r| r.request_id.clone()).collect(),
            _ => vec![],
        }
    }

    #[tokio::test]
    async fn the_first_write_of_a_request_carries_its_record_and_the_queued_ones() {
        let queue = queue();
        queue.push(record("refused-earlier"));
        let request = RequestAudit::new(queue.clone(), record("this"));
        let proposed = Mutex::new(Vec::new());
        let result: Result<(), ()> = request
            .clone()
            .scope(async {
                propose_audited(Command::DeleteUser { id: "usr_2".into() }, |command| async {
                    proposed.lock().push(command);
                    Ok(())
                })
                .await?;
                propose_audited(Command::DeleteUser { id: "usr_3".into() }, |command| async {
                    proposed.lock().push(command);
                    Ok(())
                })
                .await
            })
            .await;
        assert_eq!(result, Ok(()));
        let proposed = proposed.into_inner();
        assert_eq!(request_ids(&proposed[0]), ["refused-earlier", "this"]);
        assert!(matches!(proposed[1], Command::DeleteUser { .. }), "only the first proposal is wrapped");
        request.finish("ok");
        assert_eq!(queue.pending_len(), 0, "a committed record is not queued again");
    }

    #[tokio::test]
    async fn a_failed_write_requeues_the_earlier_records_and_queues_its_own_with_the_outcome() {
        let queue = queue();
        queue.push(record("refused-earlier"));
        let request = RequestAudit::new(queue.clone(), record("this"));
        let result: Result<(), &str> = request
            .clone()
            .scope(propose_audited(Command::DeleteUser { id: "usr_2".into() }, |_| async { Err("rejected") }))
            .await;
        assert_eq!(result, Err("rejected"));
        request.finish("not_found");
        let pending = queue.take_pending();
        let summary: Vec<(&str, &str)> =
            pending.iter().map(|r| (r.request_id.as_str(), r.outcome.as_str())).collect();
        assert_eq!(summary, [("refused-earlier", ""), ("this", "not_found")]);
    }

    #[tokio::test]
    async fn a_bulk_write_records_what_it_did_and_how_many_items_it_selected() {
        let queue = queue();
        let request = RequestAudit::new(queue.clone(), record("bulk"));
        let proposed = Mutex::new(Vec::new());
        let result: Result<(), ()> = request
            .clone()
            .scope(async {
                note_bulk("delete", 3);
                propose_audited(Command::DeleteUser { id: "usr_2".into() }, |command| async {
                    proposed.lock().push(command);
                    Ok(())
                })
                .await
            })
            .await;
        assert_eq!(result, Ok(()));
        let Some(Command::Audited { audit, .. }) = proposed.into_inner().pop() else { panic!("audited") };
        assert_eq!(audit.records[0].operation.as_deref(), Some("delete"));
        assert_eq!(audit.records[0].count, Some(3));

        let refused = RequestAudit::new(queue.clone(), record("dry-run"));
        refused.clone().scope(async { note_bulk("prune", 7) }).await;
        refused.finish("ok");
        let pending = queue.take_pending();
        assert_eq!((pending[0].operation.as_deref(), pending[0].count), (Some("prune"), Some(7)));
    }

    #[tokio::test]
    async fn outside_a_request_proposals_are_not_wrapped() {
        let proposed = Mutex::new(None);
        let _: Result<(), ()> = propose_audited(Command::DeleteUser { id: "u".into() }, |command| async {
            *proposed.lock() = Some(command);
            Ok(())
        })
        .await;
        assert!(matches!(proposed.into_inner(), Some(Command::DeleteUser { .. })));
    }

    #[test]
    fn a_full_queue_drops_and_counts_new_records() {
        let queue = queue();
        for i in 0..(MAX_QUEUED_RECORDS + 3) {
            queue.push(record(&format!("r{i}")));
        }
        assert_eq!(queue.pending_len(), MAX_QUEUED_RECORDS);
        assert_eq!(queue.dropped(), 3);
    }
}
