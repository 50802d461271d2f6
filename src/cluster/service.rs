//! The handlers of the cluster port: `linkmesh.cluster.v1.ClusterService` over this node's Raft.
//!
//! Every call reaching a handler has already passed the credential check (`cluster/server.rs`).
//! A payload that does not decode is answered INVALID_ARGUMENT, never a panic; Raft RPCs are handed
//! to openraft as they are and its `Result` goes back as JSON.

use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tonic::{Request, Response, Status};

use super::admin::{self, AdminCall};
use super::live_reads::{self, LiveReadError, LiveSource};
use super::payload::{self, PayloadError};
use crate::model::Command;
use crate::proto::cluster::v1::cluster_service_server::ClusterService;
use crate::proto::cluster::v1::{
    propose_reply, AdminReply, AdminRequest, Applied, ForwardReply, ForwardRequest, LiveStateReply,
    LiveStateRequest, NotLeader, ProposeReply, ProposeRequest, RaftReply, RaftRequest, WaitAppliedReply,
    WaitAppliedRequest,
};
use crate::raft::{ProposeError, RaftNode, TypeConfig};

/// The longest a `WaitApplied` call waits, whatever its request asks.
const MAX_WAIT_APPLIED: Duration = Duration::from_secs(10);

pub struct PeerService {
    raft: RaftNode,
    live: LiveSource,
}

impl PeerService {
    pub fn new(raft: RaftNode) -> PeerService {
        PeerService { raft, live: LiveSource::default() }
    }

    /// Answers `LiveState` from the registry `live` will hold once it is started.
    pub fn with_live_source(mut self, live: LiveSource) -> PeerService {
        self.live = live;
        self
    }
}

fn invalid(error: PayloadError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn reply<T: serde::Serialize, E: serde::Serialize>(
    result: &Result<T, E>,
) -> Result<Response<RaftReply>, Status> {
    payload::encode_reply(result).map(Response::new).map_err(|error| Status::internal(error.to_string()))
}

#[tonic::async_trait]
impl ClusterService for PeerService {
    async fn append_entries(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> =
            payload::decode_request(request.get_ref()).map_err(invalid)?;
        reply(&self.raft.openraft().append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc: VoteRequest<u64> = payload::decode_request(request.get_ref()).map_err(invalid)?;
        reply(&self.raft.openraft().vote(rpc).await)
    }

    async fn install_snapshot(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let rpc = payload::decode_snapshot_chunk(request.into_inner()).map_err(invalid)?;
        reply(&self.raft.openraft().install_snapshot(rpc).await)
    }

    async fn propose(&self, request: Request<ProposeRequest>) -> Result<Response<ProposeReply>, Status> {
        let command: Command = payload::from_json(&request.get_ref().command).map_err(invalid)?;
        let result = match self.raft.propose_as_leader(command).await {
            Ok(applied) => propose_reply::Result::Applied(Applied {
                outcome: payload::to_json(&applied.outcome)
                    .map_err(|error| Status::internal(error.to_string()))?,
                log_index: applied.log_index,
            }),
            Err(ProposeError::NotLeader { leader }) => propose_reply::Result::NotLeader(NotLeader {
                leader_id: leader.unwrap_or_default(),
                leader_known: leader.is_some(),
            }),
            Err(error @ (ProposeError::OutcomeUnknown(_) | ProposeError::Rejected(_))) => {
                propose_reply::Result::OutcomeUnknown(error.to_string())
            }
        };
        Ok(Response::new(ProposeReply { result: Some(result) }))
    }

    async fn wait_applied(
        &self,
        request: Request<WaitAppliedRequest>,
    ) -> Result<Response<WaitAppliedReply>, Status> {
        let WaitAppliedRequest { index, timeout_ms } = request.into_inner();
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT_APPLIED);
        let applied = self.raft.wait_applied(Some(index), timeout).await;
        Ok(Response::new(WaitAppliedReply {
            applied_index: applied.unwrap_or(0),
            reached: applied >= Some(index),
        }))
    }

    async fn admin(&self, request: Request<AdminRequest>) -> Result<Response<AdminReply>, Status> {
        let call: AdminCall = payload::from_json(&request.get_ref().request).map_err(invalid)?;
        let answer = admin::dispatch(&self.raft, call).await;
        let reply = payload::to_json(&answer).map_err(|error| Status::internal(error.to_string()))?;
        Ok(Response::new(AdminReply { reply }))
    }

    async fn forward(&self, _request: Request<ForwardRequest>) -> Result<Response<ForwardReply>, Status> {
        Err(Status::unimplemented("forwarding to the owner is not served by this node yet"))
    }

    async fn live_state(
        &self,
        request: Request<LiveStateRequest>,
    ) -> Result<Response<LiveStateReply>, Status> {
        match live_reads::answer(&self.live, request.into_inner()).await {
            Ok(reply) => Ok(Response::new(reply)),
            Err(error @ LiveReadError::TooManyIds(_)) => Err(Status::invalid_argument(error.to_string())),
            Err(error @ LiveReadError::NotStarted) => Err(Status::unavailable(error.to_string())),
            Err(error @ LiveReadError::Payload(_)) => Err(Status::internal(error.to_string())),
        }
    }
}
