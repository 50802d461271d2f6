//! Peer transport for Raft RPCs.
//!
//! A single-node cluster has no peers, so every peer is reported unreachable (openraft then backs off
//! instead of retrying hot). The multi-node transport (tonic, `proto/linkmesh/cluster/v1`) replaces
//! [`PeerNetwork`] without touching the rest of the node.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::types::{NodeInfo, TypeConfig};

#[derive(Debug, Clone, Default)]
pub struct PeerNetwork;

pub struct PeerClient {
    target: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("node {target} is not reachable: this build has no inter-node transport yet")]
struct NoTransport {
    target: u64,
}

impl PeerClient {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<u64, NodeInfo, E> {
        RPCError::Unreachable(Unreachable::new(&NoTransport { target: self.target }))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> Self::Network {
        PeerClient { target }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>>
    {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(self.unreachable())
    }
}
