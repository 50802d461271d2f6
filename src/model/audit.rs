//! The audit log: who changed what, from where, and with what outcome — replicated like the rest of
//! the model, so every node lists the same entries in the same order.
//!
//! Invariants:
//! - An entry holds no request body, header or token: only the actor's name and id, the client
//!   address, the route (`action`), the request path (`target`) and the outcome, and for a bulk write
//!   the server's name for what it did and how many collectors it selected.
//! - Ids increase by one per recorded entry and are never reused; listing is in id order, which is the
//!   order the entries were committed.
//! - A record whose `request_id` is already in the log is skipped, so re-sending a batch whose first
//!   write may have committed (outcome unknown) never duplicates an entry.
//! - Retention is applied while recording, with the limits carried in the command (never a node's own
//!   config), so every replica keeps exactly the same entries.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::UnixMillis;

/// Who made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ServiceAccount,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ServiceAccount => "service_account",
        }
    }
}

/// One audited request, as proposed (the log assigns the id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Random per request; the key that makes re-sent records idempotent.
    pub request_id: String,
    pub ts: UnixMillis,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    /// The username or service-account name at the time of the request.
    pub actor: String,
    /// The client address (`http.trusted_proxies` rules).
    pub remote_addr: String,
    /// Method and route pattern, e.g. `DELETE /api/v1/users/{id}`.
    pub action: String,
    /// The request path without its query, e.g. `/api/v1/users/usr_1f…`.
    pub target: String,
    /// `ok`, or the REST error code the caller received (`permission_denied`, `not_found`, …).
    pub outcome: String,
    /// What a bulk write did, in the server's words (`delete`, `rotate`, `label`, `prune`, or one of
    /// them with `_dry_run`: listed, changed nothing; `create` or `create_with_tokens` for a batch of
    /// new collectors); absent for other requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// How many items (collectors) a bulk write selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// How much of the log is kept: at most `max_entries`, none older than `max_age_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRetention {
    pub max_entries: u64,
    pub max_age_ms: u64,
}

/// Records to append, with the retention to apply and the proposer's clock for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBatch {
    pub records: Vec<AuditRecord>,
    pub retention: AuditRetention,
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    entries: VecDeque<AuditEntry>,
    next_id: u64,
    /// Derived from `entries`; rebuilt by [`AuditLog::rebuild_index`] after a snapshot loads.
    #[serde(skip)]
    request_ids: HashSet<String>,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog { entries: VecDeque::new(), next_id: 1, request_ids: HashSet::new() }
    }
}

impl AuditLog {
    /// Appends the batch's new records, then drops what the retention no longer keeps.
    pub fn record(&mut self, batch: &AuditBatch) {
        for record in &batch.records {
            if self.request_ids.contains(&record.request_id) {
                continue;
            }
            self.request_ids.insert(record.request_id.clone());
            self.entries.push_back(AuditEntry { id: self.next_id, record: record.clone() });
            self.next_id += 1;
        }
        let oldest_kept = UnixMillis(batch.at.0.saturating_sub(batch.retention.max_age_ms));
        while let Some(front) = self.entries.front() {
            let too_many = self.entries.len() as u64 > batch.retention.max_entries;
            if !too_many && front.record.ts >= oldest_kept {
                break;
            }
            if let Some(dropped) = self.entries.pop_front() {
                self.request_ids.remove(&dropped.record.request_id);
            }
        }
    }

    /// Up to `limit` entries with an id above `after` and a timestamp not before `not_before`, oldest
    /// first.
    pub fn page(&self, after: u64, limit: usize, not_before: UnixMillis) -> Vec<&AuditEntry> {
        let start = self.entries.partition_point(|entry| entry.id <= after);
        self.entries.range(start..).filter(|entry| entry.record.ts >= not_before).take(limit).collect()
    }

    /// The id of the newest entry ever recorded (0 before the first). Ids are consecutive, so the
    /// newest `n` entries are those after `last_id() - n`.
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn rebuild_index(&mut self) {
        self.request_ids = self.entries.iter().map(|entry| entry.record.request_id.clone()).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(request_id: &str, ts: u64) -> AuditRecord {
        AuditRecord {
            request_id: request_id.to_owned(),
            ts: UnixMillis(ts),
            actor_kind: ActorKind::User,
            actor_id: "usr_1".into(),
            actor: "admin".into(),
            remote_addr: "127.0.0.1".into(),
            action: "POST /api/v1/collectors".into(),
            target: "/api/v1/collectors".into(),
            outcome: "ok".into(),
            operation: None,
            count: None,
        }
    }

    fn batch(records: Vec<AuditRecord>, max_entries: u64, max_age_ms: u64, at: u64) -> AuditBatch {
        AuditBatch { records, retention: AuditRetention { max_entries, max_age_ms }, at: UnixMillis(at) }
    }

    #[test]
    fn entries_get_increasing_ids_and_a_resent_record_is_skipped() {
        let mut log = AuditLog::default();
        log.record(&batch(vec![record("a", 10), record("b", 11)], 100, 1000, 11));
        log.record(&batch(vec![record("b", 11), record("c", 12)], 100, 1000, 12));
        let page = log.page(0, 10, UnixMillis(0));
        let ids: Vec<(u64, &str)> = page.iter().map(|e| (e.id, e.record.request_id.as_str())).collect();
        assert_eq!(ids, [(1, "a"), (2, "b"), (3, "c")]);
    }

    #[test]
    fn retention_drops_the_oldest_by_count_and_by_age_and_ids_are_not_reused() {
        let mut log = AuditLog::default();
        log.record(&batch((0..5).map(|i| record(&format!("r{i}"), 100 + i)).collect(), 3, 1000, 104));
        let page = log.page(0, 10, UnixMillis(0));
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        log.record(&batch(vec![record("late", 2000)], 3, 1000, 2000));
        let page = log.page(0, 10, UnixMillis(0));
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [6], "older than max_age: gone");
        log.record(&batch(vec![record("r0", 2001)], 3, 1000, 2001));
        assert_eq!(log.len(), 2, "a pruned request id may be recorded again");
    }

    #[test]
    fn pages_follow_the_cursor() {
        let mut log = AuditLog::default();
        log.record(&batch((0..5).map(|i| record(&format!("r{i}"), 100 + i)).collect(), 100, 10_000, 104));
        let first = log.page(0, 2, UnixMillis(0));
        assert_eq!(first.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
        let second = log.page(2, 3, UnixMillis(0));
        assert_eq!(second.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
        let recent = log.page(0, 10, UnixMillis(103));
        assert_eq!(recent.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn the_index_survives_a_snapshot_round_trip() {
        let mut log = AuditLog::default();
        log.record(&batch(vec![record("a", 10)], 100, 1000, 10));
        let mut restored: AuditLog =
            serde_json::from_slice(&serde_json::to_vec(&log).expect("ser")).expect("de");
        restored.rebuild_index();
        assert_eq!(restored, log);
    }
}
