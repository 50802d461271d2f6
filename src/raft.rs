//! Consensus and storage: one openraft group whose log and snapshots live in sled.
//!
//! - [`types`]: the openraft type configuration (commands in, outcomes out, [`types::NodeInfo`] per node).
//! - [`data_dir`]: what a data dir holds, its permissions, and opening its store only when it is whole
//!   ([`verify`]) and matches its identity record ([`identity`], with the durable facts in
//!   [`facts`]); refusals are exit code 3.
//! - [`log_store`]: the Raft log, vote and committed id in sled; every append is flushed before it is
//!   acknowledged ([`durable`]), so an acknowledged write survives SIGKILL, and every value is
//!   checksummed ([`framing`]).
//! - [`storage_health`]: set at the first storage error while running; the node then stops serving
//!   and exits with code 4.
//! - [`state_machine`]: applies committed commands to the in-memory [`crate::model::FleetState`] and
//!   persists snapshots in sled; on restart the state is the last snapshot plus the re-applied log.
//! - [`network`]: the peer transport (single node: every peer is unreachable).
//! - [`membership`]: adding learners, promoting voters, the cluster as this node sees it.
//! - [`node`]: starts the group and offers `propose`, the one way the rest of the server writes.

// openraft's own `StorageError` (224 bytes) is the error type its storage traits require; boxing it in
// the helpers would only add conversions at every call.
#![allow(clippy::result_large_err)]

pub mod data_dir;
pub mod durable;
pub mod facts;
pub mod framing;
pub mod history_store;
pub mod identity;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod offline_check;
pub mod record_keeper;
pub mod snapshot_file;
pub mod snapshot_schedule;
pub mod state_machine;
pub mod storage_health;
#[cfg(test)]
pub(crate) mod testing;
pub mod types;
pub mod verify;

pub use node::{ProposeError, RaftNode};
pub use types::{NodeInfo, TypeConfig};

#[cfg(test)]
mod storage_suite {
    use std::sync::Arc;

    use openraft::testing::{StoreBuilder, Suite};

    use super::durable::DurableDb;
    use super::identity::Identity;
    use super::record_keeper::RecordKeeper;
    use super::storage_health::StorageHealth;

    use super::log_store::SledLogStore;
    use super::state_machine::SledStateMachine;
    use super::types::{StorageError, TypeConfig};

    struct SledStoreBuilder;

    impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, tempfile::TempDir> for SledStoreBuilder {
        async fn build(&self) -> Result<(tempfile::TempDir, SledLogStore, SledStateMachine), StorageError> {
            let dir = tempfile::tempdir()
                .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
            let to_storage_error = |e: &dyn std::fmt::Display| {
                openraft::StorageIOError::write(openraft::AnyError::error(e.to_string()))
            };
            let db = sled::open(dir.path()).map_err(|e| to_storage_error(&e))?;
            let identity = Identity { cluster_id: "clu_suite".into(), node_id: 1 };
            let facts = super::facts::create(dir.path(), &identity, &Default::default())
                .map_err(|e| to_storage_error(&e))?;
            let keeper = Arc::new(RecordKeeper::open(dir.path(), &facts).map_err(|e| to_storage_error(&e))?);
            let snapshot_dir = dir.path().join(super::snapshot_file::SNAPSHOT_DIR);
            let durable = DurableDb::new(&db, dir.path(), &snapshot_dir, keeper, StorageHealth::new())
                .map_err(|e| to_storage_error(&e))?;
            let log_store = SledLogStore::open(durable.clone()).map_err(|e| to_storage_error(&e))?;
            let (effects, _receiver) = tokio::sync::mpsc::unbounded_channel();
            let state_machine = SledStateMachine::open(durable, effects)?;
            Ok((dir, log_store, state_machine))
        }
    }

    #[test]
    fn sled_storage_passes_the_openraft_suite() {
        Suite::test_all(SledStoreBuilder).expect("openraft storage suite");
    }
}
