//! What every collector actor on this node shares, and the table of resident actors.
//!
//! Kept apart from the registry so that the actor and the registry both depend on it, and not on each
//! other: the registry activates actors, the actor only needs its environment.

use std::collections::HashMap;

use actix::prelude::*;
use parking_lot::Mutex;

use super::activity_writer::RecordActivity;
use crate::config::CollectorSettings;
use crate::metrics::StatusChanges;
use crate::model::{slot_of, Clock};
use crate::raft::RaftNode;
use crate::secrets::DataKey;

/// Shards of the resident table.
const REGISTRY_SHARDS: usize = 64;

/// What every collector actor shares.
pub struct ActorEnv {
    pub raft: RaftNode,
    /// The activity writer (`do_send`: its mailbox is unbounded and it must not drop updates).
    pub writer: Recipient<RecordActivity>,
    pub settings: CollectorSettings,
    pub data_key: DataKey,
    /// Wall time for events and `last_seen`, monotonic time for idleness and report ages.
    pub clock: Clock,
    /// This node's `linkmesh_collector_status_changes_total`.
    pub status_changes: StatusChanges,
}

/// The resident actors by collector id, sharded to keep lock hold times short on the poll path.
/// Generic over the actor so that this file does not name the actor that holds it.
pub struct ActorShards<A: Actor> {
    shards: Vec<Mutex<HashMap<String, Addr<A>>>>,
}

impl<A: Actor> ActorShards<A> {
    pub(super) fn new() -> Self {
        ActorShards { shards: (0..REGISTRY_SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    pub(super) fn shard(&self, collector_id: &str) -> &Mutex<HashMap<String, Addr<A>>> {
        &self.shards[slot_of(collector_id) % REGISTRY_SHARDS]
    }

    /// Forgets `addr` unless a newer activation already replaced it.
    pub(super) fn remove_if_same(&self, collector_id: &str, addr: &Addr<A>) {
        let mut shard = self.shard(collector_id).lock();
        if shard.get(collector_id) == Some(addr) {
            shard.remove(collector_id);
        }
    }

    pub(super) fn get(&self, collector_id: &str) -> Option<Addr<A>> {
        self.shard(collector_id).lock().get(collector_id).cloned()
    }

    /// Every resident actor (shutdown).
    pub(super) fn all(&self) -> Vec<Addr<A>> {
        self.shards.iter().flat_map(|shard| shard.lock().values().cloned().collect::<Vec<_>>()).collect()
    }

    /// Every resident actor with its collector id.
    pub(super) fn all_with_ids(&self) -> Vec<(String, Addr<A>)> {
        self.shards
            .iter()
            .flat_map(|shard| {
                shard.lock().iter().map(|(id, addr)| (id.clone(), addr.clone())).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Removes and returns the resident actors whose collector id `leaves` accepts (slot moves).
    pub(super) fn take_where(&self, leaves: impl Fn(&str) -> bool) -> Vec<Addr<A>> {
        let mut taken = Vec::new();
        for shard in &self.shards {
            shard.lock().retain(|collector_id, addr| {
                let leaving = leaves(collector_id);
                if leaving {
                    taken.push(addr.clone());
                }
                !leaving
            });
        }
        taken
    }

    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}
