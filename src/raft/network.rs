//! Raft RPCs to the other members, over the cluster port's client pool (`cluster/peers.rs`).
//!
//! Each request is openraft's own type as JSON (`cluster/payload.rs`); the answer is openraft's
//! `Result` as JSON, so a remote Raft error comes back as `RPCError::RemoteError`. Transport failures
//! are mapped so openraft backs off where retrying at once cannot help: a peer that cannot be dialled
//! or that refuses our credential is `Unreachable` (openraft waits before the next attempt); a call cut
//! short or timed out is `Network` (retried at the next heartbeat). Deadlines come from openraft's
//! `RPCOption` (the heartbeat interval for appends and votes, `install_snapshot_timeout` for each
//! snapshot chunk).

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;

use super::types::{NodeInfo, TypeConfig};
use crate::cluster::payload::{self, PayloadError};
use crate::cluster::peers::{PeerError, PeerPool, MAX_MESSAGE_BYTES};
use crate::proto::cluster::v1::{RaftReply, RaftRequest};

#[derive(Clone)]
pub struct PeerNetwork {
    peers: PeerPool,
}

impl PeerNetwork {
    pub fn new(peers: PeerPool) -> PeerNetwork {
        PeerNetwork { peers }
    }
}

pub struct PeerClient {
    peers: PeerPool,
    target: u64,
    node: NodeInfo,
}

#[derive(Debug, Clone, Copy)]
enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        PeerClient { peers: self.peers.clone(), target, node: node.clone() }
    }
}

impl PeerClient {
    async fn send<T, E>(
        &self,
        rpc: RaftRpc,
        request: RaftRequest,
        option: &RPCOption,
    ) -> Result<T, RPCError<u64, NodeInfo, RaftError<u64, E>>>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if self.node.rpc_addr.is_empty() {
            return Err(RPCError::Unreachable(Unreachable::new(&NoAddress { target: self.target })));
        }
        let reply = self
            .peers
            .call(
                self.target,
                &self.node.rpc_addr,
                request,
                option.hard_ttl(),
                |mut client, request| async move {
                    match rpc {
                        RaftRpc::AppendEntries => client.append_entries(request).await,
                        RaftRpc::Vote => client.vote(request).await,
                        RaftRpc::InstallSnapshot => client.install_snapshot(request).await,
                    }
                },
            )
            .await
            .map_err(|error| transport_error(&error))?;
        let answer =
            decode_reply::<T, E>(&reply).map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        answer.map_err(|error| {
            RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), error))
        })
    }
}

fn decode_reply<T: DeserializeOwned, E: DeserializeOwned>(
    reply: &RaftReply,
) -> Result<Result<T, RaftError<u64, E>>, PayloadError> {
    payload::decode_reply(reply)
}

fn encode_error<E: std::error::Error>(error: &PayloadError) -> RPCError<u64, NodeInfo, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(error))
}

#[derive(Debug, thiserror::Error)]
#[error("node {target} has no cluster address in the membership")]
struct NoAddress {
    target: u64,
}

/// Unreachable (openraft backs off) when the call was refused before it could do anything and
/// retrying at once would be refused the same way; Network otherwise.
fn transport_error<E: std::error::Error>(error: &PeerError) -> RPCError<u64, NodeInfo, RaftError<u64, E>> {
    match error {
        PeerError::Unreachable { .. } | PeerError::InvalidAddress { .. } => {
            RPCError::Unreachable(Unreachable::new(error))
        }
        PeerError::Failed {
            code: tonic::Code::Unauthenticated | tonic::Code::PermissionDenied | tonic::Code::Unimplemented,
            ..
        } => RPCError::Unreachable(Unreachable::new(error)),
        PeerError::Timeout { .. } | PeerError::Failed { .. } => RPCError::Network(NetworkError::new(error)),
    }
}

/// What one AppendEntries may carry (a single larger entry still goes alone). openraft 0.9 gives the
/// whole call — transfer, the follower's decode, append and fsync — `raft.heartbeat_interval`, then
/// cancels it and sends the same entries again: a call a loaded follower cannot take within that time
/// would be resent forever and nothing would commit (seen with three nodes at a million collectors,
/// `BENCHMARKS.md`). 2 MiB is a few tens of milliseconds of work on the slowest node measured.
const APPEND_BUDGET_BYTES: usize = 2 << 20;

/// `Some(fewer)` when `entries` entries encoded in `payload_bytes` are over [`APPEND_BUDGET_BYTES`]
/// (or the peer's message limit) and can be split: about as many as fit, at least one.
fn fewer_entries(entries: u64, payload_bytes: usize) -> Option<u64> {
    let budget = APPEND_BUDGET_BYTES.min(MAX_MESSAGE_BYTES - 1024);
    if payload_bytes <= budget || entries <= 1 {
        return None;
    }
    let fitting = (entries as u128 * budget as u128 / payload_bytes as u128) as u64;
    Some(fitting.clamp(1, entries - 1))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let entries = rpc.entries.len() as u64;
        let request = payload::encode_request(&rpc).map_err(|error| encode_error(&error))?;
        // Over budget: openraft sends fewer entries per call for its next ten calls.
        if let Some(hint) = fewer_entries(entries, request.payload.len()) {
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        self.send(RaftRpc::AppendEntries, request, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>>
    {
        let request = payload::encode_snapshot_chunk(rpc).map_err(|error| encode_error(&error))?;
        self.send(RaftRpc::InstallSnapshot, request, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let request = payload::encode_request(&rpc).map_err(|error| encode_error(&error))?;
        self.send(RaftRpc::Vote, request, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_over_budget_is_split_into_calls_that_fit_and_a_single_entry_goes_alone() {
        assert_eq!(fewer_entries(64, APPEND_BUDGET_BYTES), None, "at the budget");
        assert_eq!(fewer_entries(64, APPEND_BUDGET_BYTES * 4), Some(16));
        assert_eq!(fewer_entries(64, APPEND_BUDGET_BYTES * 100), Some(1), "at least one");
        assert_eq!(fewer_entries(2, APPEND_BUDGET_BYTES + 1), Some(1));
        assert_eq!(fewer_entries(1, APPEND_BUDGET_BYTES * 10), None, "one entry cannot be split");
    }
}
