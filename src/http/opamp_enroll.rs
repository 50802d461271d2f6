//! An OpAMP agent presenting an enrollment token (`lmet_…`, docs/adr/0010): its instance uid decides
//! its collector. The collector already enrolled for that uid with this token is used as it is; an
//! unknown uid (or one another token enrolled) takes one enrollment of the token, through Raft
//! (`Command::EnrollCollector`), and then the agent is that collector on every node. Agents that
//! accept OpAMP connection settings are then handed the collector's own derived credential
//! (`lmoc_…`), so they stop depending on the enrollment token.

use std::collections::BTreeMap;

use super::collector_auth::{AuthenticatedCollector, EnrollmentCaller};
use super::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::model::{ApplyError, Command, UnixMillis};
use crate::opamp::{credentials, InstanceUid};
use crate::raft::node::ProposeError;
use crate::secrets;

/// The collector `caller`'s agent is, enrolling it first when this token has not enrolled its
/// instance uid yet. `description`: the agent's attributes, for a new collector's name.
pub(super) async fn resolve(
    state: &AppState,
    caller: &EnrollmentCaller,
    instance_uid: InstanceUid,
    description: Option<&BTreeMap<String, String>>,
) -> Result<AuthenticatedCollector, ApiError> {
    let uid = instance_uid.to_string();
    if let Some(collector) = bound(state, caller, &uid) {
        return Ok(collector);
    }
    let now = UnixMillis::now();
    if let Some(token) = state.raft.state().fleet.enrollment_tokens.get(&caller.token_id) {
        token.check_enroll(now).map_err(|refusal| ApiError::unauthenticated(refusal.to_string()))?;
    }
    let collector_id =
        secrets::random_id("col").map_err(|error| ApiError::internal("collector id", error))?;
    let enroll = Command::EnrollCollector {
        token_id: caller.token_id.clone(),
        instance_uid: uid.clone(),
        collector_id,
        name: credentials::enrolled_name(description, &uid),
        at: now,
    };
    match state.raft.propose(enroll).await {
        Ok(()) => {}
        Err(ProposeError::Rejected(ApplyError::Precondition { problem })) => {
            return Err(ApiError::unauthenticated(problem));
        }
        Err(ProposeError::Rejected(ApplyError::NeedsFeatureLevel { .. })) => {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "this cluster cannot enroll agents until every node runs a linkmesh release that knows \
                 enrollment tokens; retry after the upgrade",
            ));
        }
        Err(error) => return Err(error.into()),
    }
    tracing::info!(instance_uid = %uid, token_id = %caller.token_id, "OpAMP agent enrolled");
    bound(state, caller, &uid).ok_or_else(|| {
        // Applied, yet not bound to this token: another enrollment of the same uid won in between.
        ApiError::new(
            ErrorCode::Unavailable,
            "the agent was enrolled with another token at the same time; retry",
        )
    })
}

/// The collector enrolled for `uid` with this caller's token, when that token still authenticates it.
fn bound(state: &AppState, caller: &EnrollmentCaller, uid: &str) -> Option<AuthenticatedCollector> {
    let applied = state.raft.state();
    let record = applied.fleet.collector_by_instance_uid(uid)?;
    let with_this_token =
        record.enrollment.as_ref().is_some_and(|enrollment| enrollment.token_id == caller.token_id);
    if !with_this_token
        || !credentials::authenticates(&applied.fleet, &state.data_key, record, &caller.token_hash)
    {
        return None;
    }
    Some(AuthenticatedCollector {
        collector_id: record.id.clone(),
        token_hash: caller.token_hash,
        owner_decides: false,
        config_version: record.current_config().map_or(0, |config| config.version),
    })
}

/// The collector's current derived credential (`lmoc_…`), offered to enrolled agents that accept
/// OpAMP connection settings and as the own-metrics destination's header.
pub(super) fn derived_credential(state: &AppState, collector: &AuthenticatedCollector) -> Option<String> {
    let applied = state.raft.state();
    let record = applied.fleet.collector(&collector.collector_id)?;
    Some(credentials::derived(&state.data_key, record))
}
