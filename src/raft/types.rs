//! The openraft type configuration of linkmesh.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Command, CommandOutcome};

/// Addresses of one cluster member, carried in the replicated membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Internal address for Raft and forwarding RPCs.
    pub rpc_addr: String,
    /// Public HTTP address (collectors, API, UI).
    pub http_addr: String,
    /// Human label (`--node-name`); empty in memberships written before names travelled.
    #[serde(default)]
    pub name: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "name={} rpc={} http={}", self.name, self.rpc_addr, self.http_addr)
    }
}

openraft::declare_raft_types!(
    /// linkmesh's Raft: [`Command`]s in, [`CommandOutcome`]s out.
    pub TypeConfig:
        D = Command,
        R = CommandOutcome,
        NodeId = u64,
        Node = NodeInfo,
        // A file in `<data-dir>/snapshots/` ([`super::snapshot_file`]): sent in chunks read from it,
        // received in chunks written to it.
        SnapshotData = tokio::fs::File,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type Vote = openraft::Vote<u64>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, NodeInfo>;
pub type StoredMembership = openraft::StoredMembership<u64, NodeInfo>;
pub type Raft = openraft::Raft<TypeConfig>;
