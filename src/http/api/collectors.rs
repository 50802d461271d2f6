//! Collectors: create, get, update, delete, mint/rotate token, rendered config, events (the list is
//! `collectors_list.rs`).

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::apply_view::{ApplyInputs, ApplyView};
use super::fleet_model::{check_stability, commit_or_preview, WriteOptions};
use super::handler_types::Reply;
use super::validate_name;
use crate::actors::collector_actor::LiveView;
use crate::apply_status::reported_version;
use crate::cluster::live_reads::{self, Gathered};
use crate::cluster::read_index::{self, CatchUpOutcome};
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::labels::check_labels;
use crate::model::{slot_of, CollectorMode, CollectorRecord, Command, Event, Labels, UnixMillis};
use crate::render::enrollment::{render_enrollment_config_alloy, render_supervisor_yaml, SupervisorToken};
use crate::render::stability::StabilityLevel;
use crate::secrets;

const DEFAULT_EVENT_PAGE: usize = 100;
const MAX_EVENT_PAGE: usize = 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCollector {
    name: String,
    mode: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// The `--stability.level` the collector's Alloy runs with; default `generally-available`.
    #[serde(default)]
    stability_level: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateCollector {
    /// The `--stability.level` the collector's Alloy runs with.
    #[serde(default)]
    stability_level: Option<String>,
    /// The collector's operator-set labels, replaced whole (what label selectors match).
    #[serde(default)]
    labels: Option<Labels>,
}

fn parse_stability_level(text: &str) -> Result<StabilityLevel, ApiError> {
    StabilityLevel::parse(text).ok_or_else(|| {
        ApiError::invalid_field(
            "stability_level",
            "must be \"generally-available\", \"public-preview\" or \"experimental\" (Alloy's --stability.level)",
        )
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// The Collector resource of the contract: the replicated record with the live actor state on top.
#[derive(Serialize, JsonSchema)]
pub struct CollectorView {
    id: String,
    name: String,
    mode: &'static str,
    status: &'static str,
    host_id: Option<String>,
    local_attributes: BTreeMap<String, String>,
    remote_attributes: BTreeMap<String, String>,
    /// Set by operators; what label selectors match.
    labels: Labels,
    created_at: String,
    last_seen_at: Option<String>,
    /// How often the collector is expected to poll (live state of the owning node, from its cadence);
    /// `null` when the owner was not asked.
    expected_poll_interval_seconds: Option<u64>,
    /// When the last own_metrics push arrived (live state of the owning node; `null` when none did
    /// since the collector's actor was activated).
    own_metrics_last_seen_at: Option<String>,
    token: Option<TokenView>,
    /// The `--stability.level` the collector's Alloy runs with (`generally-available` unless set).
    stability_level: &'static str,
    config: ConfigDeliveryView,
    /// The node whose actor serves this collector (its slot's owner); `null` before bootstrap.
    owner_node: Option<u64>,
    /// For an `opamp` collector, what its agent reported since its actor was activated: capabilities,
    /// health, its build's available components (live state of the owning node). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    opamp: Option<crate::opamp::components::AgentView>,
    /// `false` when the owner could not be asked in time: the live fields above are the replicated
    /// ones. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<bool>,
    /// The live effective config, which the replicated record may not hold yet (it is written at most
    /// once per `collectors.effective_config_persist_interval`); shown only with the right role.
    #[serde(skip)]
    live_effective_config: Option<std::sync::Arc<str>>,
}

#[derive(Serialize, JsonSchema)]
struct TokenView {
    prefix: String,
    created_at: String,
}

#[derive(Serialize, JsonSchema)]
struct ConfigDeliveryView {
    version: u64,
    hash: String,
    delivered_hash: Option<String>,
    delivered_at: Option<String>,
    remote_status: Option<&'static str>,
    remote_error: Option<String>,
    /// Whether the collector runs the delivered config: reported by Alloy ≥ 1.12, else inferred from
    /// its own metrics (`apply_status`), with what linkmesh cannot know for its release.
    apply: ApplyView,
    /// What the collector reports it runs, credentials replaced by markers; only for principals that
    /// [`may_read_effective_config`].
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_config: Option<String>,
}

/// Operators and admins, who may change a collector's config, may read the config it reports
/// running; other roles get the Collector without it.
pub(crate) fn may_read_effective_config(principal: &Principal) -> bool {
    principal.role.can_manage_collectors()
}

impl CollectorView {
    /// Adds the effective config when `principal` may read it.
    pub(crate) fn with_effective_config_for(
        mut self,
        record: &CollectorRecord,
        principal: &Principal,
    ) -> Self {
        if may_read_effective_config(principal) {
            self.config.effective_config = match self.live_effective_config.take() {
                Some(live) => Some(live.to_string()),
                None => record.config.effective_config.clone(),
            };
        }
        self
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The status shown: the live one where the owner was asked.
    pub(crate) fn status(&self) -> &'static str {
        self.status
    }

    /// The view without the effective config (see [`CollectorView::with_effective_config_for`]).
    pub(crate) fn new(record: &CollectorRecord, live: Option<LiveView>) -> Self {
        let current = record.current_config();
        let mut view = CollectorView {
            id: record.id.clone(),
            name: record.name.clone(),
            mode: record.mode.as_str(),
            status: record.status.as_str(),
            host_id: record.host_id.clone(),
            local_attributes: record.local_attributes.clone(),
            remote_attributes: record.remote_attributes.clone(),
            labels: record.labels.clone(),
            created_at: record.created_at.to_rfc3339(),
            last_seen_at: record.last_seen_at.map(UnixMillis::to_rfc3339),
            expected_poll_interval_seconds: None,
            own_metrics_last_seen_at: None,
            token: record.token.as_ref().map(|token| TokenView {
                prefix: token.prefix.clone(),
                created_at: token.created_at.to_rfc3339(),
            }),
            stability_level: record.stability_level.as_str(),
            live_effective_config: None,
            owner_node: None,
            opamp: None,
            live: None,
            config: ConfigDeliveryView {
                version: record.config.version,
                hash: current.map(|config| config.hash.clone()).unwrap_or_default(),
                delivered_hash: record.config.delivered_hash.clone(),
                delivered_at: record.config.delivered_at.map(UnixMillis::to_rfc3339),
                remote_status: record.config.remote_status.map(|status| status.as_str()),
                remote_error: record.config.remote_error.clone(),
                apply: ApplyView::build(&ApplyInputs {
                    record,
                    delivered_hash: record.config.delivered_hash.as_deref(),
                    remote_status: record.config.remote_status,
                    remote_error: record.config.remote_error.as_deref(),
                    live: None,
                    local_alloy_version: None,
                    own_metrics_seen: record.own_metrics_seen(),
                }),
                effective_config: None,
            },
        };
        if let Some(live) = live {
            view.status = live.status.as_str();
            view.host_id = live.host_id.or(view.host_id);
            view.last_seen_at = live.last_seen_at.map(UnixMillis::to_rfc3339).or(view.last_seen_at);
            view.local_attributes = live.local_attributes;
            view.config.delivered_hash = live.delivered_hash.or(view.config.delivered_hash);
            view.config.remote_status =
                live.remote_status.map(|status| status.as_str()).or(view.config.remote_status);
            view.config.remote_error = live.remote_error;
            view.own_metrics_last_seen_at = live.own_metrics_last_seen_at.map(UnixMillis::to_rfc3339);
            let interval = live.expected_poll_interval;
            view.expected_poll_interval_seconds =
                Some(interval.as_secs() + u64::from(interval.subsec_millis() >= 500));
            view.config.apply = ApplyView::build(&ApplyInputs {
                record,
                delivered_hash: view.config.delivered_hash.as_deref(),
                remote_status: live.remote_status.or(record.config.remote_status),
                remote_error: view.config.remote_error.as_deref(),
                live: Some(&live.apply),
                local_alloy_version: reported_version(&view.local_attributes),
                own_metrics_seen: record.own_metrics_seen() || live.own_metrics_last_seen_at.is_some(),
            });
            view.live_effective_config = live.effective_config;
            view.opamp = live.opamp;
        }
        view
    }

    /// The view with what [`live_reads::gather`] learned from the owner (`None`: not gathered).
    pub(crate) fn gathered(record: &CollectorRecord, gathered: Option<&Gathered>) -> Self {
        let mut view = CollectorView::new(record, gathered.and_then(Gathered::live));
        if let Some(gathered) = gathered {
            view.owner_node = gathered.owner;
            if !gathered.owner_asked() {
                view.live = Some(false);
            }
        }
        view
    }
}

/// The live fields of `records` from their owners (this node's actors or one bounded call per owner).
pub(crate) async fn gather_live(state: &AppState, records: &[CollectorRecord]) -> HashMap<String, Gathered> {
    let ids = records.iter().map(|record| record.id.clone()).collect();
    live_reads::gather(&state.raft, &state.registry, ids).await
}

fn record_or_404(state: &AppState, collector_id: &str) -> Result<CollectorRecord, ApiError> {
    state
        .raft
        .state()
        .fleet
        .collectors
        .get(collector_id)
        .map(|record| CollectorRecord::clone(record))
        .ok_or_else(|| ApiError::not_found("collector", collector_id))
}

/// [`record_or_404`] for a write: a collector this replica does not hold may have been created through
/// another node a moment ago (or this node was cut off), so a miss waits for one catch-up to the
/// leader's read index before the 404, and is a 503 when that fails.
async fn record_for_write(state: &AppState, collector_id: &str) -> Result<CollectorRecord, ApiError> {
    if let Ok(record) = record_or_404(state, collector_id) {
        return Ok(record);
    }
    match read_index::catch_up(&state.raft).await {
        CatchUpOutcome::Failed => Err(read_index::unconfirmed("this collector")),
        CatchUpOutcome::CaughtUp | CatchUpOutcome::NotNeeded => record_or_404(state, collector_id),
    }
}

pub(super) async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    body: web::Json<CreateCollector>,
) -> Result<Reply<CollectorView, 201>, ApiError> {
    principal.require_collector_admin()?;
    let CreateCollector { name, mode, attributes, stability_level } = body.into_inner();
    let stability_level =
        stability_level.as_deref().map(parse_stability_level).transpose()?.unwrap_or_default();
    validate_name("name", &name)?;
    let mode = CollectorMode::parse(&mode)
        .ok_or_else(|| ApiError::invalid_field("mode", "must be \"alloy-remotecfg\" or \"opamp\""))?;
    if attributes.len() > 64 {
        return Err(ApiError::invalid_field("attributes", "at most 64 attributes"));
    }
    if let Some(key) =
        attributes.keys().find(|key| key.is_empty() || key.len() > 100 || key.starts_with("collector."))
    {
        return Err(ApiError::invalid_field(
            "attributes",
            format!("key {key:?} must be 1-100 characters and must not start with \"collector.\" (reserved)"),
        ));
    }
    if attributes.values().any(|value| value.len() > 150) {
        return Err(ApiError::invalid_field("attributes", "values must be at most 150 characters"));
    }
    let id = secrets::random_id("col").map_err(|error| ApiError::internal("collector id", error))?;
    state
        .raft
        .propose(Command::CreateCollector {
            id: id.clone(),
            name,
            mode,
            remote_attributes: attributes,
            at: UnixMillis::now(),
            stability_level,
        })
        .await?;
    let record = record_or_404(&state, &id)?;
    let mut view = CollectorView::new(&record, None);
    view.owner_node = state.raft.state().fleet.slot_owner(slot_of(&id));
    Ok(Reply(view))
}

pub(super) async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<CollectorView>, ApiError> {
    let record = record_or_404(&state, &path)?;
    let gathered = gather_live(&state, std::slice::from_ref(&record)).await;
    Ok(Reply(
        CollectorView::gathered(&record, gathered.get(&record.id))
            .with_effective_config_for(&record, &principal),
    ))
}

/// `PATCH /collectors/{id}`: its labels (replaced whole) and the `--stability.level` its Alloy runs
/// with. Either is refused when the collector's config would then be one its Alloy refuses (a
/// selector-attached item the new labels bring in, a component below the level asked for).
pub(super) async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateCollector>,
) -> Result<Reply<CollectorView>, ApiError> {
    principal.require_collector_admin()?;
    let collector_id = path.into_inner();
    let UpdateCollector { stability_level, labels } = body.into_inner();
    if stability_level.is_none() && labels.is_none() {
        return Err(ApiError::invalid_field("labels", "nothing to change: send labels or stability_level"));
    }
    let level = stability_level.as_deref().map(parse_stability_level).transpose()?;
    if let Some(labels) = &labels {
        check_labels(labels).map_err(|problem| ApiError::invalid_field("labels", problem))?;
    }
    record_for_write(&state, &collector_id).await?;
    if let Some(labels) = labels {
        let command = Command::SetCollectorLabels {
            collector_ids: vec![collector_id.clone()],
            replace: Some(labels),
            set: Labels::new(),
            remove: Vec::new(),
            at: UnixMillis::now(),
        };
        commit_or_preview(&state, command, &WriteOptions::default()).await?;
    }
    if let Some(level) = level {
        let command = Command::SetCollectorStabilityLevel {
            collector_id: collector_id.clone(),
            level,
            at: UnixMillis::now(),
        };
        {
            let replica = state.raft.state();
            let (scoped, affected) = replica.fleet.check_scope(&command)?;
            check_stability(&scoped, &affected, "stability_level")?;
        }
        state.raft.propose(command).await?;
    }
    let record = record_or_404(&state, &collector_id)?;
    let gathered = gather_live(&state, std::slice::from_ref(&record)).await;
    Ok(Reply(CollectorView::gathered(&record, gathered.get(&collector_id))))
}

pub(super) async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let collector_id = path.into_inner();
    state.raft.propose(Command::DeleteCollector { id: collector_id.clone() }).await?;
    // Promise 4: the owner applied it, or its lease has ended.
    crate::cluster::revocation::await_owner(&state.raft, &collector_id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /collectors/{id}/restart`: an `opamp` collector's agent is asked to restart its collector
/// (`command{type: Restart}`: over WebSocket at once, over plain HTTP in its next reply). 202: the
/// request is recorded (`restart_requested`); the outcome is a `restart_outcome` event, from the
/// agent's next health report, or saying that the agent does not accept restart commands.
pub(super) async fn restart(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let collector_id = path.into_inner();
    state
        .raft
        .propose(Command::RequestRestart { collector_id: collector_id.clone(), at: UnixMillis::now() })
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "restart_requested": collector_id })))
}

pub(super) async fn mint_token(
    principal: Principal,
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<Reply<MintedCollectorToken, 201>, ApiError> {
    principal.require_collector_admin()?;
    let collector_id = path.into_inner();
    let record = record_for_write(&state, &collector_id).await?;
    let minted = secrets::mint_token(secrets::COLLECTOR_TOKEN_PREFIX)
        .map_err(|error| ApiError::internal("mint collector token", error))?;
    let now = UnixMillis::now();
    state
        .raft
        .propose(Command::SetCollectorToken {
            collector_id: collector_id.clone(),
            token_hash: minted.hash,
            prefix: minted.display_prefix.clone(),
            at: now,
        })
        .await?;
    // Promise 4: the owner applied it, or its lease has ended.
    crate::cluster::revocation::await_owner(&state.raft, &collector_id).await;
    let server_url = crate::http::external_url(&request, &state);
    let (config_alloy, supervisor_config) = match record.mode {
        CollectorMode::AlloyRemotecfg => {
            (Some(render_enrollment_config_alloy(&server_url, &minted.token)), None)
        }
        CollectorMode::Opamp => {
            (None, Some(render_supervisor_yaml(&server_url, &minted.token, SupervisorToken::Collector)))
        }
    };
    Ok(Reply(MintedCollectorToken {
        token: minted.token,
        prefix: minted.display_prefix,
        created_at: now.to_rfc3339(),
        collector_id,
        config_alloy,
        supervisor_config,
    }))
}

/// A collector's new token: the only answer that ever shows it. The previous one is refused from now.
#[derive(Serialize, JsonSchema)]
pub(super) struct MintedCollectorToken {
    /// `lmct_…`, the collector's bearer token.
    token: String,
    prefix: String,
    created_at: String,
    collector_id: String,
    /// The ready-to-paste `config.alloy` (Alloy collectors; `null` for OpAMP ones).
    config_alloy: Option<String>,
    /// The ready-to-paste `supervisor.yaml` for the collector's `opampsupervisor`, with this token
    /// (`opamp` collectors; `null` for Alloy ones).
    supervisor_config: Option<String>,
}

pub(super) async fn config_view(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let record =
        applied.fleet.collectors.get(path.as_str()).ok_or_else(|| ApiError::not_found("collector", &path))?;
    let current = record
        .current_config()
        .ok_or_else(|| ApiError::internal("config view", "collector has no rendered config"))?;
    let mut view = super::fleet_model::version_view(current, true);
    view["items"] = serde_json::to_value(super::fleet_items::applied_items(&applied.fleet, record))
        .map_err(|error| ApiError::internal("config view", error))?;
    Ok(HttpResponse::Ok().json(view))
}

/// One of a collector's events, as the events endpoint and the collector stream send it.
#[derive(Serialize, JsonSchema)]
pub(crate) struct EventView {
    /// Increasing per collector, from 1.
    id: u64,
    ts: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    message: String,
    data: serde_json::Map<String, serde_json::Value>,
}

pub(crate) fn event_view(event: &Event) -> EventView {
    EventView {
        id: event.id,
        ts: event.ts.to_rfc3339(),
        event_type: event.event_type.as_str(),
        message: event.message.clone(),
        data: event.data.clone(),
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct EventPage {
    /// Oldest first.
    events: Vec<EventView>,
    /// Pass as `after` for the next page.
    next: u64,
}

pub(super) async fn events(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> Result<Reply<EventPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_EVENT_PAGE);
    if limit == 0 || limit > MAX_EVENT_PAGE {
        return Err(ApiError::invalid_field("limit", format!("must be between 1 and {MAX_EVENT_PAGE}")));
    }
    let after = query.after.unwrap_or(0);
    let applied = state.raft.state();
    let record =
        applied.fleet.collectors.get(path.as_str()).ok_or_else(|| ApiError::not_found("collector", &path))?;
    let events = applied
        .events_after(record, after, limit)
        .map_err(|error| ApiError::internal("collector events", error))?;
    let next = events.last().map_or(after, |event| event.id);
    Ok(Reply(EventPage { events: events.iter().map(event_view).collect(), next }))
}
