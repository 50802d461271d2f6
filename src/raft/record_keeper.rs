//! The running node's durable facts in memory, raised as data becomes durable and written to the
//! facts file ([`super::facts`]) on demand, in the same blocking step as the log's flush
//! ([`super::durable`]).

use std::path::Path;

use parking_lot::Mutex;

use super::facts::{FactsRead, FactsWriter};
use super::identity::{DurableFacts, Identity};
use super::types::{LogId, Vote};

fn raise(slot: &mut Option<LogId>, value: Option<LogId>) {
    if value > *slot {
        *slot = value;
    }
}

/// The running node's facts: raised as data becomes durable, written to a slot on demand.
pub struct RecordKeeper {
    identity: Identity,
    /// What is durable now; may be ahead of the file.
    facts: Mutex<DurableFacts>,
    /// What the file says, and its writer; locked for the whole write so writes never interleave.
    written: Mutex<(DurableFacts, FactsWriter)>,
}

impl RecordKeeper {
    /// `current` is what `data_dir`'s facts file holds now (read under the data dir's lock, or just
    /// created).
    pub fn open(data_dir: &Path, current: &FactsRead) -> std::io::Result<RecordKeeper> {
        let writer = FactsWriter::open(data_dir, current)?;
        Ok(RecordKeeper {
            identity: current.identity().clone(),
            facts: Mutex::new(current.facts().clone()),
            written: Mutex::new((current.facts().clone(), writer)),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn facts(&self) -> DurableFacts {
        self.facts.lock().clone()
    }

    /// After a flush: everything up to `last_log_id` (and the vote, and `committed`) is durable.
    pub fn raise_log(&self, vote: Option<Vote>, last_log_id: Option<LogId>, committed: Option<LogId>) {
        let mut facts = self.facts.lock();
        if let Some(vote) = vote {
            if facts.vote.is_none_or(|recorded| vote >= recorded) {
                facts.vote = Some(vote);
            }
        }
        raise(&mut facts.last_log_id, last_log_id);
        let held = facts.last_log_id.max(facts.snapshot);
        raise(&mut facts.committed, committed.min(held));
    }

    /// The state machine applied up to `applied` (only ever committed, hence durable, entries).
    pub fn raise_applied(&self, applied: Option<LogId>) {
        raise(&mut self.facts.lock().applied, applied);
    }

    /// A snapshot up to `snapshot` was flushed.
    pub fn raise_snapshot(&self, snapshot: Option<LogId>) {
        raise(&mut self.facts.lock().snapshot, snapshot);
    }

    /// Raft is about to remove an uncommitted tail after `new_last`: lower the bound first.
    pub fn lower_last_log(&self, new_last: Option<LogId>) {
        let mut facts = self.facts.lock();
        if facts.last_log_id > new_last {
            facts.last_log_id = new_last;
        }
    }

    /// Writes the facts to the slot not in force if they changed since the last write (one `pwrite`
    /// and one `fdatasync`, [`super::facts`]).
    pub fn persist(&self) -> std::io::Result<()> {
        let mut written = self.written.lock();
        let facts = self.facts.lock().clone();
        if written.0 == facts {
            return Ok(());
        }
        written.1.write(&facts)?;
        written.0 = facts;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    #[test]
    fn facts_only_rise_except_a_truncated_tail() {
        let dir = tempfile::tempdir().expect("dir");
        let created = super::super::facts::create(
            dir.path(),
            &Identity { cluster_id: "clu_x".into(), node_id: 7 },
            &DurableFacts::default(),
        )
        .expect("create");
        let keeper = RecordKeeper::open(dir.path(), &created).expect("open");
        keeper.raise_log(None, Some(log_id(1, 10)), Some(log_id(1, 9)));
        keeper.raise_log(None, Some(log_id(1, 8)), Some(log_id(1, 5)));
        assert_eq!(keeper.facts().last_log_id, Some(log_id(1, 10)));
        assert_eq!(keeper.facts().committed, Some(log_id(1, 9)));
        // committed never gets ahead of what the log holds
        keeper.raise_log(None, None, Some(log_id(1, 12)));
        assert_eq!(keeper.facts().committed, Some(log_id(1, 10)));
        keeper.lower_last_log(Some(log_id(1, 9)));
        assert_eq!(keeper.facts().last_log_id, Some(log_id(1, 9)));
        keeper.persist().expect("persist");
        let read = super::super::facts::read(dir.path()).expect("read").expect("some");
        assert_eq!(read.facts(), &keeper.facts());
    }
}
