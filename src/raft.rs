//! Consensus and storage: one openraft group whose log and snapshots live in sled.
//!
//! - [`types`]: the openraft type configuration (commands in, outcomes out, [`types::NodeInfo`] per node).
//! - [`log_store`]: the Raft log, vote and committed id in sled; every append is flushed before it is
//!   acknowledged, so an acknowledged write survives SIGKILL.
//! - [`state_machine`]: applies committed commands to the in-memory [`crate::model::FleetState`] and
//!   persists snapshots in sled; on restart the state is the last snapshot plus the re-applied log.
//! - [`network`]: the peer transport (single node: every peer is unreachable).
//! - [`node`]: starts the group and offers `propose`, the one way the rest of the server writes.

// openraft's own `StorageError` (224 bytes) is the error type its storage traits require; boxing it in
// the helpers would only add conversions at every call.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;
pub mod types;

pub use node::{ProposeError, RaftNode};
pub use types::{NodeInfo, TypeConfig};

#[cfg(test)]
mod storage_suite {
    use openraft::testing::{StoreBuilder, Suite};

    use super::log_store::SledLogStore;
    use super::state_machine::SledStateMachine;
    use super::types::{StorageError, TypeConfig};

    struct SledStoreBuilder;

    impl StoreBuilder<TypeConfig, SledLogStore, SledStateMachine, tempfile::TempDir> for SledStoreBuilder {
        async fn build(&self) -> Result<(tempfile::TempDir, SledLogStore, SledStateMachine), StorageError> {
            let dir = tempfile::tempdir()
                .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
            let db = sled::open(dir.path())
                .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
            let log_store = SledLogStore::open(&db, dir.path())
                .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
            let (effects, _receiver) = tokio::sync::mpsc::unbounded_channel();
            let state_machine = SledStateMachine::open(&db, effects)?;
            Ok((dir, log_store, state_machine))
        }
    }

    #[test]
    fn sled_storage_passes_the_openraft_suite() {
        Suite::test_all(SledStoreBuilder).expect("openraft storage suite");
    }
}
