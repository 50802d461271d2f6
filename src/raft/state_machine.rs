//! The state machine: committed commands applied to the in-memory [`FleetState`], snapshots in sled.
//!
//! Persistence strategy (openraft's "persistent snapshot" option): `apply` only mutates memory; each
//! snapshot is written to sled (checksummed, [`super::framing`]) and flushed, and the durable facts
//! raised to it in the same step; on restart the state is rebuilt from the last snapshot and openraft re-applies the
//! committed log after it. Readers share the state through [`SharedState`].

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageIOError,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use super::durable::{DurableDb, Flushed, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META, SNAPSHOT_TREE};
use super::framing;
use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::model::feature_level::THIS_RELEASE;
use crate::model::{CommandOutcome, Effect, FleetState};

/// The applied state, shared read-only with the rest of the node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub fleet: FleetState,
}

pub type SharedState = Arc<RwLock<AppliedState>>;

impl AppliedState {
    /// SHA-256 of the fleet model's serialization. Every map in it is ordered, so replicas that applied
    /// the same log give the same digest: the convergence check compares it across nodes.
    pub fn fleet_digest(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        serde_json::to_writer(&mut hasher, &self.fleet).expect("the fleet model serializes");
        hasher.finalize().into()
    }
}

pub struct StoredSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

pub struct SledStateMachine {
    state: SharedState,
    store: DurableDb,
    snapshots: sled::Tree,
    effects: UnboundedSender<Effect>,
}

impl SledStateMachine {
    /// Opens the state machine, restoring the last snapshot if there is one.
    pub fn open(store: DurableDb, effects: UnboundedSender<Effect>) -> Result<Self, StorageError> {
        let snapshots =
            store.db.open_tree(SNAPSHOT_TREE).map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let state = match read_snapshot(&snapshots, framing::open).map_err(snapshot_read_error)? {
            Some(stored) => decode_state(&stored.data).map_err(snapshot_read_error)?,
            None => AppliedState::default(),
        };
        Ok(SledStateMachine { state: Arc::new(RwLock::new(state)), store, snapshots, effects })
    }

    pub fn shared_state(&self) -> SharedState {
        self.state.clone()
    }

    async fn persist_snapshot(&self, stored: StoredSnapshot) -> Result<StoredSnapshot, StorageError> {
        persist_snapshot(&self.store, &self.snapshots, stored).await
    }
}

fn snapshot_read_error(error: String) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(error)).into()
}

/// The current snapshot, its value checksums checked and its metadata decoded (the data is not).
pub fn read_snapshot(
    snapshots: &sled::Tree,
    open: framing::Opener,
) -> Result<Option<StoredSnapshot>, String> {
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, String> {
        let Some(value) = snapshots.get(key).map_err(|e| format!("{SNAPSHOT_TREE} cannot be read: {e}"))?
        else {
            return Ok(None);
        };
        let key_name = String::from_utf8_lossy(key);
        open(SNAPSHOT_TREE, key, &value)
            .map(|payload| Some(payload.to_vec()))
            .map_err(|e| format!("{SNAPSHOT_TREE}/{key_name} {e}"))
    };
    match (read(KEY_SNAPSHOT_META)?, read(KEY_SNAPSHOT_DATA)?) {
        (Some(meta), Some(data)) => {
            let meta = serde_json::from_slice(&meta)
                .map_err(|e| format!("{SNAPSHOT_TREE}/current_meta cannot be decoded: {e}"))?;
            Ok(Some(StoredSnapshot { meta, data }))
        }
        (None, None) => Ok(None),
        _ => Err(format!("{SNAPSHOT_TREE} holds only half of a snapshot")),
    }
}

pub fn decode_state(bytes: &[u8]) -> Result<AppliedState, String> {
    let mut state: AppliedState = serde_json::from_slice(bytes)
        .map_err(|e| format!("{SNAPSHOT_TREE}/current_data cannot be decoded: {e}"))?;
    state.fleet.rebuild_indexes();
    Ok(state)
}

/// Writes a snapshot in one batch, flushes it and raises the durable facts to it.
async fn persist_snapshot(
    store: &DurableDb,
    snapshots: &sled::Tree,
    stored: StoredSnapshot,
) -> Result<StoredSnapshot, StorageError> {
    let signature = Some(stored.meta.signature());
    let fail = |error: &dyn std::fmt::Display| -> StorageError {
        store.health.fail("snapshot", error);
        StorageIOError::new(
            ErrorSubject::Snapshot(signature.clone()),
            ErrorVerb::Write,
            AnyError::error(error),
        )
        .into()
    };
    let meta = serde_json::to_vec(&stored.meta).map_err(|e| fail(&e))?;
    let mut batch = sled::Batch::default();
    batch.insert(KEY_SNAPSHOT_META, framing::seal(SNAPSHOT_TREE, KEY_SNAPSHOT_META, &meta));
    batch.insert(KEY_SNAPSHOT_DATA, framing::seal(SNAPSHOT_TREE, KEY_SNAPSHOT_DATA, &stored.data));
    snapshots.apply_batch(batch).map_err(|e| fail(&e))?;
    let last_log_id = stored.meta.last_log_id;
    let durable = store.clone();
    let flushed = Flushed { snapshot: last_log_id, ..Flushed::default() };
    tokio::task::spawn_blocking(move || durable.flush_blocking(flushed, "snapshot flush"))
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|e| fail(&e))?;
    Ok(stored)
}

/// Builds a snapshot from a point-in-time copy of the state.
pub struct SnapshotBuilder {
    state: SharedState,
    store: DurableDb,
    snapshots: sled::Tree,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, last_applied, membership) = {
            let state = self.state.read();
            let data = serde_json::to_vec(&*state)
                .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
            (data, state.last_applied, state.membership.clone())
        };
        let snapshot_id = match last_applied {
            Some(log_id) => {
                format!("{}-{}-{}", log_id.leader_id, log_id.index, crate::model::UnixMillis::now().0)
            }
            None => format!("empty-{}", crate::model::UnixMillis::now().0),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership: membership, snapshot_id };
        let stored = persist_snapshot(&self.store, &self.snapshots, StoredSnapshot { meta, data }).await?;
        Ok(Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) })
    }
}

impl RaftStateMachine<TypeConfig> for SledStateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        let mut effects = Vec::new();
        let applied = {
            let mut state = self.state.write();
            for entry in entries {
                let entry_log_id = entry.log_id;
                state.last_applied = Some(entry.log_id);
                let outcome = match entry.payload {
                    EntryPayload::Blank => CommandOutcome::Applied,
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), membership);
                        CommandOutcome::Applied
                    }
                    EntryPayload::Normal(command) => match state.fleet.apply(&command) {
                        Ok(command_effects) => {
                            effects.extend(command_effects);
                            CommandOutcome::Applied
                        }
                        Err(rejection) => CommandOutcome::Rejected(rejection),
                    },
                };
                outcomes.push(outcome);
                let level = state.fleet.feature_level();
                if level > THIS_RELEASE {
                    // Only a newer release raises this far; its next entries would not decode here.
                    let problem = format!(
                        "the cluster moved to feature level {level} and this linkmesh release knows up to \
                         {THIS_RELEASE}: upgrade this node's binary"
                    );
                    self.store.health.fail("apply", &problem);
                    return Err(StorageIOError::apply(entry_log_id, AnyError::error(problem)).into());
                }
            }
            state.last_applied
        };
        self.store.keeper.raise_applied(applied);
        for effect in effects {
            // The receiver is gone only during shutdown; effects are hints for live actors.
            let _ = self.effects.send(effect);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            store: self.store.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut installed = decode_state(&data)
            .map_err(|error| StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(error)))?;
        installed.last_applied = meta.last_log_id;
        installed.membership = meta.last_membership.clone();
        self.persist_snapshot(StoredSnapshot { meta: meta.clone(), data }).await?;
        *self.state.write() = installed;
        self.store.keeper.raise_applied(meta.last_log_id);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let stored = read_snapshot(&self.snapshots, framing::open).map_err(|error| {
            self.store.health.fail("snapshot", &error);
            snapshot_read_error(error)
        })?;
        Ok(stored.map(|stored| Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::decode_state;
    use crate::model::{
        slot_of, Command, SlotEntry, SlotEpoch, SlotMove, SlotMoveReason, UnixMillis, SLOT_COUNT,
    };

    /// Written by linkmesh before slot epochs (main at 93f945a): a one-node cluster with a polled
    /// collector, its snapshot data as stored, and the `record_activity` entry from its log.
    const SNAPSHOT: &str = include_str!("../../tests/fixtures/snapshots/before_slot_epochs.json");
    const LOGGED_ACTIVITY: &str =
        include_str!("../../tests/fixtures/snapshots/before_slot_epochs.record_activity.json");
    const NODE: u64 = 224_484_336_956_794;
    const COLLECTOR: &str = "col_f59b3ff04a2ef68e114c";

    #[test]
    fn a_snapshot_and_log_from_before_slot_epochs_load_at_epoch_one() {
        let mut state = decode_state(SNAPSHOT.as_bytes()).expect("an old snapshot decodes");
        let fleet = &mut state.fleet;
        assert_eq!(fleet.slot_counts(), [(NODE, SLOT_COUNT)].into());
        assert_eq!(fleet.slot_entry(3), Some(SlotEntry { owner: NODE, epoch: SlotEpoch::INITIAL }));
        assert!(fleet
            .collector_by_token_hash(&fleet.collectors[COLLECTOR].token.as_ref().expect("token").hash)
            .is_some());

        let logged: Command = serde_json::from_str(LOGGED_ACTIVITY).expect("an old log entry decodes");
        let Command::RecordActivity { updates } = &logged else { panic!("{logged:?}") };
        assert_eq!(updates[0].slot_epoch, SlotEpoch::INITIAL, "written in the only epoch there was");
        let events = fleet.collectors[COLLECTOR].next_event_id;
        fleet.apply(&logged).expect("re-applied after the snapshot, as openraft does with the log");
        assert_eq!(fleet.collectors[COLLECTOR].next_event_id, events + 3, "it still applies");

        let slot = slot_of(COLLECTOR);
        let moves = vec![SlotMove { slot, from: NODE, to: 2, epoch: SlotEpoch::INITIAL }];
        fleet
            .apply(&Command::MoveSlots { moves, reason: SlotMoveReason::Balance, at: UnixMillis(1) })
            .expect("move");
        let moved = fleet.clone();
        fleet.apply(&logged).expect("activity applies");
        assert_eq!(*fleet, moved, "after a move, an entry without an epoch is a former owner's");
        let round_trip = serde_json::to_vec(&state).expect("serialize");
        assert_eq!(decode_state(&round_trip).expect("decode").fleet, state.fleet);
    }
}
