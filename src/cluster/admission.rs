//! The leader's side of a join: check the request against the replicated token table, take one use
//! of the token through Raft, add the node as a learner, and answer with the sealed bundle.
//!
//! Order matters: nothing changes before the proof, the token's expiry and uses and the node id
//! (not already a member) are checked; the token use is committed before the membership changes, so
//! two nodes racing for one single-use token cannot both get in. If adding the learner fails after
//! the use was taken, the use is lost (the error says so) — never a learner without a use.

use super::join::{self, JoinBundle, JoinError, JoinRequest, JoinResponse};
use crate::model::{Command, FeatureLevel, UnixMillis};
use crate::raft::membership::MembershipError;
use crate::raft::{NodeInfo, ProposeError, RaftNode};
use crate::secrets::DataKey;

#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("this node is not the leader")]
    NotLeader { leader_http_addr: Option<String> },
    #[error(transparent)]
    Malformed(JoinError),
    /// The token is unknown, expired or used up, or the proof does not verify: 401.
    #[error("{0}")]
    Refused(String),
    #[error("node {0} is already a member; remove member {0} first, then join as a new node")]
    AlreadyMember(u64),
    #[error("{0}")]
    Unavailable(String),
    /// The joining node runs a release that cannot apply what the cluster writes (`model/feature_level.rs`).
    #[error(
        "this node's linkmesh release knows feature level {joiner} and the cluster runs at {cluster}: install \
         the members' release on it, then join again{}",
        if *.use_taken { " with a new join token if this one allowed a single use" } else { "" }
    )]
    OlderRelease { joiner: FeatureLevel, cluster: FeatureLevel, use_taken: bool },
}

/// Admits the node `request` names, on the leader.
pub async fn admit(
    raft: &RaftNode,
    data_key: &DataKey,
    request: &JoinRequest,
    joiner_level: FeatureLevel,
    now: UnixMillis,
) -> Result<JoinResponse, AdmitError> {
    let lookup = request.lookup().map_err(AdmitError::Malformed)?;
    if !raft.is_leader() {
        let leader = raft.metrics().current_leader;
        let leader_http_addr = leader.and_then(|id| raft.member_info(id)).map(|info| info.http_addr);
        return Err(AdmitError::NotLeader { leader_http_addr });
    }
    let key = {
        let state = raft.state();
        let tokens = &state.fleet.join_tokens;
        let token = tokens.get(&lookup).ok_or_else(|| {
            AdmitError::Refused(crate::model::join_tokens::JoinTokenRefusal::Unknown.to_string())
        })?;
        let key =
            request.verify(&token.token_hash).map_err(|error| AdmitError::Refused(error.to_string()))?;
        tokens.check(&lookup, now).map_err(|refusal| AdmitError::Refused(refusal.to_string()))?;
        key
    };
    if raft.member_info(request.node_id).is_some() {
        return Err(AdmitError::AlreadyMember(request.node_id));
    }
    {
        // Under the raiser's lock: from here on a raise waits for this joiner's release (member_levels.rs).
        let levels = raft.ownership().levels();
        let _decision = levels.decide().await;
        refuse_older_release(raft, joiner_level, false)?;
        levels.record(request.node_id, joiner_level, None, tokio::time::Instant::now().into_std());
    }
    let consumed =
        raft.propose(Command::ConsumeJoinToken { lookup, node_id: request.node_id, at: now }).await;
    match consumed {
        Ok(()) => {}
        Err(ProposeError::Rejected(rejection)) => return Err(AdmitError::Refused(rejection.to_string())),
        Err(ProposeError::NotLeader { .. }) => {
            return Err(AdmitError::NotLeader { leader_http_addr: None });
        }
        Err(ProposeError::OutcomeUnknown(cause)) => {
            tracing::warn!(node_id = request.node_id, error = %cause, "join token use outcome unknown");
            return Err(AdmitError::Unavailable(
                "the cluster could not confirm the join token's use; retry the join (with a new token if this \
                 one allowed a single use)"
                    .to_owned(),
            ));
        }
    }
    // A raise decided before the joiner's report was recorded is applied by now (it was proposed
    // before the token use, and this node applied the use).
    refuse_older_release(raft, joiner_level, true)?;
    let info = NodeInfo {
        rpc_addr: request.rpc_addr.clone(),
        http_addr: request.http_addr.clone(),
        name: request.name.clone(),
    };
    match raft.add_learner(request.node_id, info).await {
        Ok(()) => {}
        Err(MembershipError::AlreadyMember(node_id)) => return Err(AdmitError::AlreadyMember(node_id)),
        Err(error) => {
            tracing::warn!(node_id = request.node_id, error = %error, "adding a learner failed after its join token use");
            return Err(AdmitError::Unavailable(format!(
                "the node could not be added ({error}); the join token's use was taken: join again with a new token"
            )));
        }
    }
    tracing::info!(
        node_id = request.node_id,
        node_name = %crate::http::untrusted_text::loggable(&request.name),
        http_addr = %crate::http::untrusted_text::loggable(&request.http_addr),
        rpc_addr = %crate::http::untrusted_text::loggable(&request.rpc_addr),
        "admitted a node as a learner"
    );
    let bundle = JoinBundle { cluster_id: raft.cluster_id().to_owned(), data_key: data_key.to_base64() };
    let nonce = join::fresh_seal_nonce().map_err(|error| AdmitError::Unavailable(error.to_string()))?;
    join::seal_bundle(&key, request.node_id, &bundle, nonce)
        .map_err(|error| AdmitError::Unavailable(error.to_string()))
}

fn refuse_older_release(raft: &RaftNode, joiner: FeatureLevel, use_taken: bool) -> Result<(), AdmitError> {
    let cluster = raft.state().fleet.feature_level();
    if joiner < cluster {
        return Err(AdmitError::OlderRelease { joiner, cluster, use_taken });
    }
    Ok(())
}
