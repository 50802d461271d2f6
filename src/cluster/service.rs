//! The handlers of the cluster port: `linkmesh.cluster.v1.ClusterService` over this node's Raft.
//!
//! Every call reaching a handler has already passed the credential check (`cluster/server.rs`).
//! A payload that does not decode is answered INVALID_ARGUMENT, never a panic; Raft RPCs are handed
//! to openraft as they are and its `Result` goes back as JSON.
//!
//! `Forward` is the owner's side of a collector call another node took (`forward.rs` is the edge's):
//! the token hash is checked against this replica first (the owner is the token's final authority),
//! then the slot's ownership, then the call goes to this node's actor.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tonic::{Request, Response, Status};

use super::admin::{self, AdminCall};
use super::forward::{WireError, WireOpampReply, WirePollReply, WrongOwner};
use super::live_reads::{self, LiveReadError, LiveSource};
use super::payload::{self, PayloadError};
use super::read_index::CatchUpOutcome;
use crate::actors::collector_actor::{OpampExchange, Poll, Register, Unregister};
use crate::actors::{CollectorRegistry, RegistryError};
use crate::error::{ApiError, ErrorCode};
use crate::http::otlp::{self, Encoding};
use crate::model::{slot_of, Command, TokenHash};
use crate::proto::cluster::v1::cluster_service_server::ClusterService;
use crate::proto::cluster::v1::forward_reply::Status as ForwardStatus;
use crate::proto::cluster::v1::CollectorCall;
use crate::proto::cluster::v1::{
    propose_reply, AdminReply, AdminRequest, Applied, ForwardReply, ForwardRequest, LiveStateReply,
    LiveStateRequest, NotLeader, ProposeReply, ProposeRequest, RaftReply, RaftRequest, WaitAppliedReply,
    WaitAppliedRequest,
};
use crate::raft::{ProposeError, RaftNode, TypeConfig};

/// How long the owner waits for its replica to reach the slot epoch a forwarded call names.
const EPOCH_CATCH_UP_WAIT: Duration = Duration::from_secs(2);

/// The longest a `WaitApplied` call waits, whatever its request asks.
const MAX_WAIT_APPLIED: Duration = Duration::from_secs(10);

pub struct PeerService {
    raft: RaftNode,
    collectors: CollectorOwnerCell,
    live: LiveSource,
}

/// Set once this node's collector registry runs (after the cluster port already serves Raft);
/// until then a forwarded collector call is answered UNAVAILABLE.
pub type CollectorOwnerCell = Arc<OnceLock<CollectorOwner>>;

impl PeerService {
    pub fn new(raft: RaftNode) -> PeerService {
        PeerService { raft, collectors: Arc::default(), live: LiveSource::default() }
    }

    /// Answers forwarded collector calls once `collectors` is set.
    pub fn with_collectors(mut self, collectors: CollectorOwnerCell) -> PeerService {
        self.collectors = collectors;
        self
    }

    /// Answers `LiveState` from the registry `live` will hold once it is started.
    pub fn with_live_source(mut self, live: LiveSource) -> PeerService {
        self.live = live;
        self
    }
}

/// The owner's side of forwarded collector calls.
pub struct CollectorOwner {
    raft: RaftNode,
    registry: CollectorRegistry,
}

fn forward_reply(status: ForwardStatus, body: Vec<u8>) -> ForwardReply {
    ForwardReply { status: status as i32, body, error: String::new() }
}

fn refused(error: &ApiError) -> ForwardReply {
    forward_reply(ForwardStatus::Error, payload::to_json(&WireError::from_api(error)).unwrap_or_default())
}

impl CollectorOwner {
    pub fn new(raft: RaftNode, registry: CollectorRegistry) -> CollectorOwner {
        CollectorOwner { raft, registry }
    }

    /// Whether `token_hash` authenticates `collector_id` on this replica, as at the edge: its current
    /// token, or for an OpAMP collector the credentials its agent may present (compared in constant
    /// time).
    fn token_accepted(&self, collector_id: &str, token_hash: &[u8]) -> bool {
        TokenHash::try_from(token_hash)
            .is_ok_and(|presented| self.registry.authenticates(collector_id, &presented))
    }

    fn is_rotated_token(&self, collector_id: &str, token_hash: &[u8]) -> bool {
        let Ok(presented) = <[u8; 32]>::try_from(token_hash) else { return false };
        let state = self.raft.state();
        state.fleet.collector_by_rotated_token_hash(&presented).is_some_and(|record| {
            record.id == collector_id
                && crate::secrets::token_hash_matches_hex(record.rotated_token_hash.as_deref(), &presented)
        })
    }

    /// A refused token. A collector still presenting its rotated-out one (edges forward those to the
    /// owner, `http/collector_auth.rs`): the owner tells the operator, as a local call would.
    fn token_refused(&self, collector_id: &str, token_hash: &[u8]) -> ForwardReply {
        if self.is_rotated_token(collector_id, token_hash) {
            self.registry.auth_failed(collector_id);
        }
        forward_reply(ForwardStatus::Unauthenticated, Vec::new())
    }

    fn wrong_owner(&self) -> ForwardReply {
        let applied_index = self.raft.openraft().metrics().borrow().last_applied.map(|log_id| log_id.index);
        forward_reply(
            ForwardStatus::WrongOwner,
            payload::to_json(&WrongOwner { applied_index }).unwrap_or_default(),
        )
    }

    /// Waits up to [`EPOCH_CATCH_UP_WAIT`] until this replica's epoch of `slot` reached `epoch`.
    async fn catch_up_to_epoch(&self, slot: usize, epoch: u64) {
        let mut metrics = self.raft.openraft().metrics();
        let deadline = tokio::time::Instant::now() + EPOCH_CATCH_UP_WAIT;
        while self.raft.state().fleet.slots.epoch(slot).0 < epoch {
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    /// Token, ownership, then the call on this node's actor.
    pub async fn handle(&self, request: ForwardRequest) -> ForwardReply {
        let collector_id = request.collector_id.as_str();
        // The edge knew the token; this replica may not have applied its mint yet (one catch-up).
        let accepted = self.token_accepted(collector_id, &request.token_hash)
            || match super::read_index::catch_up(&self.raft).await {
                CatchUpOutcome::CaughtUp => self.token_accepted(collector_id, &request.token_hash),
                CatchUpOutcome::Failed => return refused(&super::read_index::unconfirmed_token()),
                CatchUpOutcome::NotNeeded => false,
            };
        let Some(token_hash) =
            accepted.then(|| TokenHash::try_from(request.token_hash.as_slice()).ok()).flatten()
        else {
            return self.token_refused(collector_id, &request.token_hash);
        };
        let slot = slot_of(collector_id);
        // The edge saw a newer epoch than this replica has: it learned of a move this node has not
        // applied yet; wait (bounded) rather than answer from the older table.
        self.catch_up_to_epoch(slot, request.slot_epoch).await;
        let me = self.raft.node_id();
        let owner = self.raft.state().fleet.slot_owner(slot).unwrap_or(me);
        if owner != me {
            return self.wrong_owner();
        }
        let bad_body = |error: PayloadError| {
            refused(&ApiError::new(ErrorCode::InvalidArgument, format!("forwarded call: {error}")))
        };
        let answered = match CollectorCall::try_from(request.call).unwrap_or(CollectorCall::Unspecified) {
            CollectorCall::GetConfig => {
                let poll: Poll = match payload::from_json(&request.body) {
                    Ok(poll) => poll,
                    Err(error) => return bad_body(error),
                };
                self.registry
                    .poll(collector_id, &token_hash, poll)
                    .await
                    .map(|reply| payload::to_json(&WirePollReply::of(&reply)).unwrap_or_default())
            }
            CollectorCall::Register => {
                let register: Register = match payload::from_json(&request.body) {
                    Ok(register) => register,
                    Err(error) => return bad_body(error),
                };
                self.registry.register(collector_id, &token_hash, register).await.map(|()| Vec::new())
            }
            CollectorCall::Unregister => {
                let unregister: Unregister = match payload::from_json(&request.body) {
                    Ok(unregister) => unregister,
                    Err(error) => return bad_body(error),
                };
                self.registry.unregister(collector_id, &token_hash, unregister).await.map(|()| Vec::new())
            }
            CollectorCall::Opamp => {
                let exchange: OpampExchange = match payload::from_json(&request.body) {
                    Ok(exchange) => exchange,
                    Err(error) => return bad_body(error),
                };
                self.registry
                    .opamp(collector_id, &token_hash, exchange)
                    .await
                    .map(|reply| payload::to_json(&WireOpampReply::of(&reply)).unwrap_or_default())
            }
            CollectorCall::PushMetrics => return self.push(request, &token_hash).await,
            CollectorCall::Unspecified => {
                return refused(&ApiError::new(ErrorCode::InvalidArgument, "unknown forwarded call"));
            }
        };
        match answered {
            Ok(body) => forward_reply(ForwardStatus::Ok, body),
            Err(RegistryError::NotOwner { .. }) => self.wrong_owner(),
            Err(RegistryError::TokenNotCurrent) => self.token_refused(collector_id, &token_hash),
            Err(error) => refused(&error.into()),
        }
    }

    /// A push another node read (and admitted per node): the per-collector count is taken here, the
    /// decode runs on the blocking pool (this is the raft runtime: heartbeats must not wait for it).
    async fn push(&self, request: ForwardRequest, token_hash: &TokenHash) -> ForwardReply {
        let ForwardRequest { collector_id, body, content_type, .. } = request;
        let Some(encoding) = Encoding::from_content_type(&content_type) else {
            return refused(&ApiError::new(
                ErrorCode::InvalidArgument,
                "forwarded push without a known content type",
            ));
        };
        let _permit = match self.registry.admit_forwarded_push(&collector_id) {
            Ok(permit) => permit,
            Err(error) => return refused(&error.into()),
        };
        let extracted = tokio::task::spawn_blocking(move || otlp::extract_export(&body, encoding)).await;
        let batch = match extracted {
            Ok(Ok(batch)) => batch,
            Ok(Err(error)) => return refused(&error),
            Err(error) => return refused(&ApiError::internal("decoding a forwarded push", error)),
        };
        match otlp::apply_export(&self.registry, &collector_id, token_hash, batch, encoding).await {
            Ok(body) => forward_reply(ForwardStatus::Ok, body),
            Err(RegistryError::TokenNotCurrent) => self.token_refused(&collector_id, token_hash),
            Err(error) => refused(&error.into()),
        }
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

    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<ForwardReply>, Status> {
        let Some(collectors) = self.collectors.get() else {
            return Err(Status::unavailable("this node does not serve collectors yet"));
        };
        Ok(Response::new(collectors.handle(request.into_inner()).await))
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

#[cfg(test)]
mod tests {
    //! The owner's side of `Forward` on one real Raft node and registry: the token hash is checked
    //! against the owner's replica before anything (a token rotated there is refused even when the
    //! edge's replica still accepted it), and a slot the owner lost is `WRONG_OWNER`.

    use std::collections::BTreeMap;
    use std::time::Duration;

    use actix::Actor as _;

    use super::*;
    use crate::actors::activity_writer::ActivityWriter;
    use crate::config::CollectorSettings;
    use crate::model::{ManualClock, SlotEpoch, SlotMove, SlotMoveReason, UnixMillis};
    use crate::secrets::hash_token;

    const COLLECTOR: &str = "col_forwarded";

    fn poll_request(token_hash: &[u8]) -> ForwardRequest {
        let poll = Poll {
            host_id: "host-1".into(),
            local_attributes: BTreeMap::new(),
            hash: String::new(),
            remote_status: None,
            effective_config: None,
            at: UnixMillis(1),
            config_version: 0,
        };
        ForwardRequest {
            call: CollectorCall::GetConfig as i32,
            collector_id: COLLECTOR.into(),
            token_hash: token_hash.to_vec(),
            slot_epoch: 1,
            body: payload::to_json(&poll).expect("json"),
            content_type: "application/json".into(),
            client_addr: "127.0.0.1".into(),
        }
    }

    fn set_token(token: &str) -> Command {
        Command::SetCollectorToken {
            collector_id: COLLECTOR.into(),
            token_hash: hash_token(token),
            prefix: "lmct_x".into(),
            at: UnixMillis(2),
        }
    }

    fn status(reply: &ForwardReply) -> ForwardStatus {
        ForwardStatus::try_from(reply.status).expect("known status")
    }

    #[actix::test]
    async fn the_owner_refuses_a_token_rotated_on_its_replica_and_a_slot_it_lost() {
        let data = tempfile::tempdir().expect("temp dir");
        let (effects, _) = tokio::sync::mpsc::unbounded_channel();
        let time = ManualClock::starting_at(UnixMillis(1_800_000_000_000));
        let at = time.clock().now();
        let (raft, data_key) = crate::raft::testing::bootstrapped_node(data.path(), effects, at).await;
        let me = raft.node_id();
        crate::raft::testing::create_collector(&raft, COLLECTOR, at).await;
        raft.propose(set_token("lmct_old")).await.expect("mint");
        let writer = ActivityWriter::new(raft.clone(), Duration::from_secs(3600)).start();
        let settings = CollectorSettings { tick_interval: Duration::from_secs(3600), ..Default::default() };
        let registry = CollectorRegistry::start(
            raft.clone(),
            writer,
            settings,
            data_key,
            time.clock(),
            crate::metrics::StatusChanges::default(),
            1,
        );
        let owner = CollectorOwner::new(raft.clone(), registry);

        let old = hash_token("lmct_old");
        let answered = owner.handle(poll_request(&old)).await;
        assert_eq!(status(&answered), ForwardStatus::Ok, "{answered:?}");
        let reply: WirePollReply = payload::from_json(&answered.body).expect("poll reply");
        assert!(!reply.not_modified);

        // Rotated on the owner (whatever the edge's replica still says): the old hash is refused.
        raft.propose(set_token("lmct_new")).await.expect("rotate");
        assert_eq!(status(&owner.handle(poll_request(&old)).await), ForwardStatus::Unauthenticated);
        let new = hash_token("lmct_new");
        assert_eq!(status(&owner.handle(poll_request(&new)).await), ForwardStatus::Ok);
        // A valid hash for another collector id, and a hash of the wrong length, are refused too.
        let mut elsewhere = poll_request(&new);
        elsewhere.collector_id = "col_other".into();
        assert_eq!(status(&owner.handle(elsewhere).await), ForwardStatus::Unauthenticated);
        assert_eq!(status(&owner.handle(poll_request(&new[..31])).await), ForwardStatus::Unauthenticated);

        // The slot moved away: WRONG_OWNER, naming what this node had applied.
        let slot = slot_of(COLLECTOR);
        let away = vec![SlotMove { slot, from: me, to: me + 1, epoch: SlotEpoch::INITIAL }];
        raft.propose(Command::MoveSlots { moves: away, reason: SlotMoveReason::NodeDown, at })
            .await
            .expect("move away");
        let refused = owner.handle(poll_request(&new)).await;
        assert_eq!(status(&refused), ForwardStatus::WrongOwner);
        let wrong: WrongOwner = payload::from_json(&refused.body).expect("wrong owner body");
        assert!(wrong.applied_index.is_some());
        raft.shutdown().await;
    }
}
