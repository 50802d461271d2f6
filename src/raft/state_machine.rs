//! The state machine: committed commands applied to the in-memory [`FleetState`], snapshots in sled.
//!
//! Persistence strategy (openraft's "persistent snapshot" option): `apply` only mutates memory; each
//! snapshot is written to sled and flushed; on restart the state is rebuilt from the last snapshot and
//! openraft re-applies the committed log after it. Readers share the state through [`SharedState`].

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use super::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use crate::model::{CommandOutcome, Effect, FleetState};

/// The current snapshot: its metadata as JSON and its data as raw bytes, written in one batch.
const KEY_SNAPSHOT_META: &[u8] = b"current_meta";
const KEY_SNAPSHOT_DATA: &[u8] = b"current_data";

/// The applied state, shared read-only with the rest of the node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppliedState {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub fleet: FleetState,
}

pub type SharedState = Arc<RwLock<AppliedState>>;

struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

pub struct SledStateMachine {
    state: SharedState,
    db: sled::Db,
    snapshots: sled::Tree,
    effects: UnboundedSender<Effect>,
}

impl SledStateMachine {
    /// Opens the state machine, restoring the last snapshot if there is one.
    pub fn open(db: &sled::Db, effects: UnboundedSender<Effect>) -> Result<Self, StorageError> {
        let snapshots = db.open_tree("raft_snapshot").map_err(|e| StorageIOError::read(AnyError::new(&e)))?;
        let state = match read_snapshot(&snapshots)? {
            Some(stored) => decode_state(&stored.data)?,
            None => AppliedState::default(),
        };
        Ok(SledStateMachine { state: Arc::new(RwLock::new(state)), db: db.clone(), snapshots, effects })
    }

    pub fn shared_state(&self) -> SharedState {
        self.state.clone()
    }

    fn persist_snapshot(&self, stored: &StoredSnapshot) -> Result<(), StorageError> {
        Self::persist_snapshot_with(&self.db, &self.snapshots, stored)
    }
}

fn read_snapshot(snapshots: &sled::Tree) -> Result<Option<StoredSnapshot>, StorageError> {
    let read =
        |key: &[u8]| snapshots.get(key).map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)));
    let (Some(meta), Some(data)) = (read(KEY_SNAPSHOT_META)?, read(KEY_SNAPSHOT_DATA)?) else {
        return Ok(None);
    };
    let meta =
        serde_json::from_slice(&meta).map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
    Ok(Some(StoredSnapshot { meta, data: data.to_vec() }))
}

fn decode_state(bytes: &[u8]) -> Result<AppliedState, StorageError> {
    let mut state: AppliedState =
        serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
    state.fleet.rebuild_indexes();
    Ok(state)
}

/// Builds a snapshot from a point-in-time copy of the state.
pub struct SnapshotBuilder {
    state: SharedState,
    db: sled::Db,
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
        let stored = StoredSnapshot { meta: meta.clone(), data };
        SledStateMachine::persist_snapshot_with(&self.db, &self.snapshots, &stored)?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(stored.data)) })
    }
}

impl SledStateMachine {
    fn persist_snapshot_with(
        db: &sled::Db,
        snapshots: &sled::Tree,
        stored: &StoredSnapshot,
    ) -> Result<(), StorageError> {
        let signature = Some(stored.meta.signature());
        let meta = serde_json::to_vec(&stored.meta)
            .map_err(|e| StorageIOError::write_snapshot(signature.clone(), AnyError::new(&e)))?;
        let mut batch = sled::Batch::default();
        batch.insert(KEY_SNAPSHOT_META, meta);
        batch.insert(KEY_SNAPSHOT_DATA, stored.data.as_slice());
        snapshots
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_snapshot(signature.clone(), AnyError::new(&e)))?;
        db.flush().map_err(|e| StorageIOError::write_snapshot(signature, AnyError::new(&e)))?;
        Ok(())
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
        {
            let mut state = self.state.write();
            for entry in entries {
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
            }
        }
        for effect in effects {
            // The receiver is gone only during shutdown; effects are hints for live actors.
            let _ = self.effects.send(effect);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { state: self.state.clone(), db: self.db.clone(), snapshots: self.snapshots.clone() }
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
        let mut installed = decode_state(&data)?;
        installed.last_applied = meta.last_log_id;
        installed.membership = meta.last_membership.clone();
        self.persist_snapshot(&StoredSnapshot { meta: meta.clone(), data })?;
        *self.state.write() = installed;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(read_snapshot(&self.snapshots)?
            .map(|stored| Snapshot { meta: stored.meta, snapshot: Box::new(Cursor::new(stored.data)) }))
    }
}
