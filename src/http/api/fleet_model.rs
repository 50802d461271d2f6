//! The fleet model over REST: pipelines (tenant-wide) and each collector's sources, destinations and
//! routes; config versions and diffs. Every write accepts `?validate_only=true`, which renders the
//! result without committing it and reports the same errors a real write would.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::validate_name;
use crate::apply_status::{reported_version, AlloyVersion};
use crate::error::{ApiError, ErrorCode};
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::collector::ConfigVersion;
use crate::model::fleet_state::FleetState;
use crate::model::pipeline::{Destination, Pipeline, Route, SealedSecret, Settings, Signal, Source, Step};
use crate::model::rollouts::{FirstBatch, StagedStrategy, DEFAULT_SOAK_MS};
use crate::model::{CollectorRecord, Command, UnixMillis};
use crate::render::catalogue::{self, EntryKind, FieldError};
use crate::render::ottl_check;
use crate::render::plan::{Plan, RESOURCE_ATTRIBUTE_TEMPLATING};
use crate::render::stability::check_render_input;
use crate::render::{template_check, templates, DistinctInputs};
use crate::secrets;

const MAX_CONDITION_BYTES: usize = 4096;
const MAX_STEPS: usize = 64;

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOptions {
    #[serde(default)]
    validate_only: bool,
    /// `all` (default: every collector the change alters gets it at once) or `staged` (a first
    /// batch, then the rest once it applied; pipelines and fleet-wide items only).
    rollout: Option<String>,
    /// A staged rollout's first batch: a count (`5`) or a percentage (`10%`); default `10%`.
    first_batch: Option<String>,
    /// How long a staged rollout waits after delivery for a collector whose status cannot be
    /// known (`90s`, `5m`); default `60s`.
    soak: Option<String>,
}

impl WriteOptions {
    /// The staged strategy asked for, if any.
    fn staged(&self) -> Result<Option<StagedStrategy>, ApiError> {
        match self.rollout.as_deref() {
            None | Some("all") => {
                if self.first_batch.is_some() || self.soak.is_some() {
                    return Err(ApiError::invalid_field(
                        "rollout",
                        "first_batch and soak need rollout=staged",
                    ));
                }
                return Ok(None);
            }
            Some("staged") => {}
            Some(_) => return Err(ApiError::invalid_field("rollout", "must be \"all\" or \"staged\"")),
        }
        let first_batch = match self.first_batch.as_deref().unwrap_or("10%") {
            text if text.ends_with('%') => match text.trim_end_matches('%').parse::<u8>() {
                Ok(percent) if (1..=100).contains(&percent) => FirstBatch::Percent(percent),
                _ => return Err(ApiError::invalid_field("first_batch", "a percentage must be 1% to 100%")),
            },
            text => match text.parse::<u32>() {
                Ok(count) if count >= 1 => FirstBatch::Count(count),
                _ => {
                    return Err(ApiError::invalid_field(
                        "first_batch",
                        "must be a count (5) or a percentage (10%)",
                    ))
                }
            },
        };
        let soak_ms = match self.soak.as_deref() {
            None => DEFAULT_SOAK_MS,
            Some(text) => {
                let soak = crate::config::human::parse_duration(text)
                    .map_err(|problem| ApiError::invalid_field("soak", problem))?;
                u64::try_from(soak.as_millis()).unwrap_or(u64::MAX)
            }
        };
        Ok(Some(StagedStrategy { first_batch, soak_ms }))
    }
}

/// Commits `command`, or with `validate_only` renders its outcome without committing. Either way the
/// outcome is rendered first, and refused when a collector's Alloy would refuse it. The check renders
/// every collector the change reaches with the change, staged or not; with `rollout=staged` the
/// proposal holds all but the first batch back (`model/rollouts.rs`).
pub(super) async fn commit_or_preview(
    state: &AppState,
    command: Command,
    options: &WriteOptions,
) -> Result<Option<HttpResponse>, ApiError> {
    let staged = options.staged()?;
    let previews = {
        let replica = state.raft.state();
        let (scoped, affected) = match options.validate_only {
            true => replica.fleet.preview_scope(&command)?,
            false => replica.fleet.check_scope(&command)?,
        };
        let checked = distinct_collectors(&scoped, &affected);
        check_templates(&scoped, &checked, &command)?;
        check_stability(&scoped, &checked, stability_field(&command))?;
        check_ottl(&scoped, &checked, &command)?;
        options.validate_only.then(|| {
            let mut changed = 0usize;
            let configs = affected
                .iter()
                .filter_map(|collector_id| {
                    let config = scoped.collectors.get(collector_id)?.current_config()?;
                    let before = replica.fleet.collectors.get(collector_id).and_then(|r| r.current_config());
                    if before.is_none_or(|before| before.hash != config.hash) {
                        changed += 1;
                    }
                    let mut view = version_view(config, true);
                    view["collector_id"] = Value::from(collector_id.as_str());
                    Some(view)
                })
                .collect::<Vec<Value>>();
            (configs, changed)
        })
    };
    if let Some((configs, changed)) = previews {
        return Ok(Some(
            HttpResponse::Ok().json(json!({ "valid": true, "configs": configs, "changes": changed })),
        ));
    }
    let command = match staged {
        Some(strategy) => Command::Staged { strategy, command: Box::new(command) },
        None => command,
    };
    state.raft.propose(command).await?;
    Ok(None)
}

/// The first of each group of `collector_ids` whose configs render alike and who report the same
/// Alloy release (`render::DistinctInputs`), in order: the checks below find in every collector of a
/// group what they find in its first, so checking the first checks them all, and the first collector
/// refused is the same (a fleet-wide change to ten thousand collectors with the same labels checks one).
fn distinct_collectors(fleet: &FleetState, collector_ids: &[String]) -> Vec<String> {
    let mut distinct = DistinctInputs::default();
    collector_ids
        .iter()
        .filter(|collector_id| {
            fleet.collectors.get(collector_id.as_str()).is_some_and(|record| {
                distinct.first(&fleet.render_input(record), reported_version(&record.local_attributes))
            })
        })
        .cloned()
        .collect()
}

/// The request field a stability refusal of `command` names.
fn stability_field(command: &Command) -> &'static str {
    match command {
        Command::PutDestination { .. }
        | Command::PutSource { .. }
        | Command::PutFleetDestination { .. }
        | Command::PutFleetSource { .. } => "type",
        Command::PutRoute { .. } | Command::PutFleetRoute { .. } => "destination_ids",
        Command::PutPipeline { .. } => "steps",
        Command::SetCollectorLabels { .. } => "labels",
        _ => "config",
    }
}

/// Refuses an outcome the Alloy of one of `collector_ids` would refuse: a component below the
/// collector's `stability_level`, or one its reported release does not have (`render::stability`).
pub(super) fn check_stability(
    fleet: &FleetState,
    collector_ids: &[String],
    field: &str,
) -> Result<(), ApiError> {
    for collector_id in collector_ids {
        let Some(record) = fleet.collectors.get(collector_id) else { continue };
        let release = reported_version(&record.local_attributes).and_then(AlloyVersion::parse);
        let problems = check_render_input(&fleet.render_input(record), release);
        if !problems.is_empty() {
            let text: Vec<&str> = problems.iter().map(|problem| problem.message.as_str()).collect();
            return Err(ApiError::invalid_field(
                field,
                format!("collector {:?}: {}", record.name, text.join("; ")),
            ));
        }
    }
    Ok(())
}

/// Refuses an outcome whose OTTL or regular expressions a collector of `collector_ids` would refuse,
/// in the contexts its config renders them in (`render::ottl_check`). A problem in the item being
/// written names its field; one elsewhere (a route condition that a new destination's signals make
/// invalid, say) names the write's field and the item it is in.
fn check_ottl(fleet: &FleetState, collector_ids: &[String], command: &Command) -> Result<(), ApiError> {
    let written = match command {
        Command::PutRoute { route, .. } | Command::PutFleetRoute { route, .. } => {
            Some((ottl_check::ItemKind::Route, route.id.as_str()))
        }
        Command::PutPipeline { pipeline, .. } => Some((ottl_check::ItemKind::Pipeline, pipeline.id.as_str())),
        Command::PutSource { source, .. } | Command::PutFleetSource { source, .. } => {
            Some((ottl_check::ItemKind::Source, source.id.as_str()))
        }
        _ => None,
    };
    let mut checker = ottl_check::OttlChecker::default();
    for collector_id in collector_ids {
        let Some(record) = fleet.collectors.get(collector_id) else { continue };
        let input = fleet.render_input(record);
        let problems = checker.check_plan(&Plan::new(&input));
        if problems.is_empty() {
            continue;
        }
        let (own, elsewhere): (Vec<_>, Vec<_>) =
            problems.into_iter().partition(|problem| Some((problem.kind, problem.id.as_str())) == written);
        let field = match command {
            Command::PutRoute { .. } | Command::PutFleetRoute { .. }
                if elsewhere.iter().all(|problem| problem.kind == ottl_check::ItemKind::Pipeline) =>
            {
                "pipeline_id"
            }
            _ => stability_field(command),
        };
        let own = own.into_iter().map(|problem| (problem.field, problem.message)).collect();
        let elsewhere = elsewhere.iter().map(ottl_check::OttlProblem::qualified_message).collect();
        return Err(refusal(&record.name, own, elsewhere, field));
    }
    Ok(())
}

/// Refuses an outcome with a `{{labels.KEY}}` that a collector of `collector_ids` cannot resolve (it
/// has no label `KEY`), or whose resolved value breaks the setting's rules (`render::template_check`).
/// A problem in the item being written names its field and the collector; one elsewhere (a label
/// change leaving a reference dangling, a route adding a destination that needs a label) names the
/// write's field, the collector and the item.
fn check_templates(fleet: &FleetState, collector_ids: &[String], command: &Command) -> Result<(), ApiError> {
    let written = match command {
        Command::PutSource { source, .. } | Command::PutFleetSource { source, .. } => {
            Some((template_check::ItemKind::Source, source.id.as_str()))
        }
        Command::PutDestination { destination, .. } | Command::PutFleetDestination { destination, .. } => {
            Some((template_check::ItemKind::Destination, destination.id.as_str()))
        }
        Command::PutPipeline { pipeline, .. } => {
            Some((template_check::ItemKind::Pipeline, pipeline.id.as_str()))
        }
        _ => None,
    };
    for collector_id in collector_ids {
        let Some(record) = fleet.collectors.get(collector_id) else { continue };
        let problems = template_check::check_input(&fleet.render_input(record));
        if problems.is_empty() {
            continue;
        }
        let (own, elsewhere): (Vec<_>, Vec<_>) =
            problems.into_iter().partition(|problem| Some((problem.kind, problem.id.as_str())) == written);
        let own = own.into_iter().map(|problem| (problem.field, problem.message)).collect();
        let elsewhere = elsewhere.iter().map(template_check::TemplateProblem::qualified_message).collect();
        return Err(refusal(&record.name, own, elsewhere, stability_field(command)));
    }
    Ok(())
}

/// A write refused for one collector's problems: those in the item being written at their own
/// fields (`own`: field, message), else the others, qualified by their item, at the write's `field`.
fn refusal(collector: &str, own: Vec<(String, String)>, elsewhere: Vec<String>, field: &str) -> ApiError {
    if own.is_empty() {
        return ApiError::invalid_field(field, format!("collector {collector:?}: {}", elsewhere.join("; ")));
    }
    let fields = own
        .into_iter()
        .map(|(field, message)| FieldError { field, problem: format!("collector {collector:?}: {message}") })
        .collect();
    field_errors(fields)
}

/// The first problem as the error (`details.field`), every problem in `details.fields`, so a form can
/// mark every invalid field at once.
fn field_errors(problems: Vec<FieldError>) -> ApiError {
    let Some(first) = problems.first() else {
        return ApiError::new(ErrorCode::InvalidArgument, "invalid settings");
    };
    let mut error = ApiError::invalid_field(&first.field, &first.problem);
    let fields: Vec<Value> = problems
        .iter()
        .map(|problem| json!({ "field": problem.field, "problem": problem.problem }))
        .collect();
    error.details.insert("fields".to_owned(), Value::from(fields));
    error
}

pub(super) fn new_id(kind: &str) -> Result<String, ApiError> {
    secrets::random_id(kind).map_err(|error| ApiError::internal("new id", error))
}

fn collector_exists(state: &AppState, collector_id: &str) -> Result<(), ApiError> {
    if state.raft.state().fleet.collectors.contains_key(collector_id) {
        Ok(())
    } else {
        Err(ApiError::not_found("collector", collector_id))
    }
}

pub(super) async fn catalogue_view(_principal: Principal) -> HttpResponse {
    let entries: Vec<Value> = catalogue::entries()
        .iter()
        .map(|entry| {
            json!({
                "kind": entry.kind.as_str(),
                "type": entry.type_name,
                "description": entry.description,
                "signals": entry.signals.iter().map(|signal| signal.as_str()).collect::<Vec<_>>(),
                "settings": entry.settings.iter().map(|setting| json!({
                    "name": setting.name,
                    "kind": format!("{:?}", setting.kind),
                    "required": setting.required,
                    "description": setting.description,
                    "templates": setting.templating.as_str(),
                })).collect::<Vec<_>>(),
                "credentials": entry.credentials,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "entries": entries }))
}

// ---- pipelines ----

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PipelineBody {
    name: String,
    #[serde(default)]
    description: String,
    signals: Vec<String>,
    #[serde(default)]
    steps: Vec<StepBody>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StepBody {
    #[serde(rename = "type")]
    step_type: String,
    #[serde(default)]
    settings: Settings,
}

fn pipeline_from_body(id: String, body: PipelineBody) -> Result<Pipeline, ApiError> {
    validate_name("name", &body.name)?;
    if body.description.len() > 4096 {
        return Err(ApiError::invalid_field("description", "must be at most 4096 bytes"));
    }
    if body.signals.is_empty() {
        return Err(ApiError::invalid_field("signals", "name at least one of logs, metrics, traces"));
    }
    let mut signals = Vec::new();
    for name in &body.signals {
        let signal = Signal::parse(name).ok_or_else(|| {
            ApiError::invalid_field("signals", format!("unknown signal {name:?}; use logs, metrics, traces"))
        })?;
        if !signals.contains(&signal) {
            signals.push(signal);
        }
    }
    signals.sort();
    if body.steps.len() > MAX_STEPS {
        return Err(ApiError::invalid_field("steps", format!("at most {MAX_STEPS} steps")));
    }
    let mut steps = Vec::with_capacity(body.steps.len());
    for (index, step) in body.steps.into_iter().enumerate() {
        catalogue::validate(EntryKind::Step, &step.step_type, &step.settings, &[]).map_err(|error| {
            ApiError::invalid_field(&format!("steps[{index}].{}", error.field), error.problem)
        })?;
        steps.push(Step { step_type: step.step_type, settings: step.settings });
    }
    let pipeline = Pipeline { id, name: body.name, description: body.description, signals, steps };
    let problems: Vec<FieldError> = ottl_check::check_pipeline(&pipeline)
        .into_iter()
        .map(|problem| FieldError { field: problem.field, problem: problem.message })
        .collect();
    if !problems.is_empty() {
        return Err(field_errors(problems));
    }
    Ok(pipeline)
}

fn pipeline_view(pipeline: &Pipeline) -> Value {
    json!({
        "id": pipeline.id,
        "name": pipeline.name,
        "description": pipeline.description,
        "signals": pipeline.signals.iter().map(|signal| signal.as_str()).collect::<Vec<_>>(),
        "steps": pipeline.steps.iter().map(|step| json!({ "type": step.step_type, "settings": step.settings })).collect::<Vec<_>>(),
    })
}

pub(super) async fn create_pipeline(
    principal: Principal,
    state: web::Data<AppState>,
    options: web::Query<WriteOptions>,
    body: web::Json<PipelineBody>,
) -> Result<HttpResponse, ApiError> {
    principal.require_pipeline_admin()?;
    let pipeline = pipeline_from_body(new_id("pl")?, body.into_inner())?;
    let view = pipeline_view(&pipeline);
    let command = Command::PutPipeline { pipeline, create: true, at: UnixMillis::now() };
    Ok(commit_or_preview(&state, command, &options)
        .await?
        .unwrap_or_else(|| HttpResponse::Created().json(view)))
}

/// A pipeline's view with `used_by`: how many collectors' configs it is in (the impact of a change).
fn pipeline_view_in(fleet: &FleetState, pipeline: &Pipeline) -> Value {
    let mut view = pipeline_view(pipeline);
    view["used_by"] = Value::from(fleet.collectors_using_pipeline(&pipeline.id).len());
    view
}

pub(super) async fn list_pipelines(_principal: Principal, state: web::Data<AppState>) -> HttpResponse {
    let applied = state.raft.state();
    let pipelines: Vec<Value> =
        applied.fleet.pipelines.values().map(|pipeline| pipeline_view_in(&applied.fleet, pipeline)).collect();
    HttpResponse::Ok().json(json!({ "pipelines": pipelines }))
}

pub(super) async fn get_pipeline(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let pipeline =
        applied.fleet.pipelines.get(path.as_str()).ok_or_else(|| ApiError::not_found("pipeline", &path))?;
    Ok(HttpResponse::Ok().json(pipeline_view_in(&applied.fleet, pipeline)))
}

pub(super) async fn replace_pipeline(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    options: web::Query<WriteOptions>,
    body: web::Json<PipelineBody>,
) -> Result<HttpResponse, ApiError> {
    principal.require_pipeline_admin()?;
    let pipeline = pipeline_from_body(path.into_inner(), body.into_inner())?;
    let view = pipeline_view(&pipeline);
    let command = Command::PutPipeline { pipeline, create: false, at: UnixMillis::now() };
    Ok(commit_or_preview(&state, command, &options).await?.unwrap_or_else(|| HttpResponse::Ok().json(view)))
}

pub(super) async fn delete_pipeline(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    options: web::Query<WriteOptions>,
) -> Result<HttpResponse, ApiError> {
    principal.require_pipeline_admin()?;
    let command = Command::DeletePipeline { id: path.into_inner(), at: UnixMillis::now() };
    Ok(commit_or_preview(&state, command, &options)
        .await?
        .unwrap_or_else(|| HttpResponse::NoContent().finish()))
}

// ---- sources, destinations and routes: one set of handlers over [`CollectorItem`] ----

/// A kind of item that belongs to one collector and is managed with the same five calls.
pub(super) trait CollectorItem: Sized + 'static {
    /// Singular name for messages (`source`).
    const KIND: &'static str;
    /// Path segment (`sources`) and list key in responses.
    const PLURAL: &'static str;
    /// Prefix of generated ids (`src`).
    const ID_PREFIX: &'static str;
    type Body: serde::de::DeserializeOwned + schemars::JsonSchema + 'static;

    /// Validates a request body into an item; the list names credentials to remove (destinations).
    fn build(state: &AppState, id: String, body: Self::Body) -> Result<(Self, Vec<String>), ApiError>;
    /// The collector's items of this kind, by id.
    fn of(record: &CollectorRecord) -> &BTreeMap<String, Self>;
    fn view(&self) -> Value;
    fn id(&self) -> &str;
    fn put(collector_id: String, item: Self, removed: Vec<String>, create: bool, at: UnixMillis) -> Command;
    fn delete(collector_id: String, id: String, at: UnixMillis) -> Command;

    /// In the order the API lists them: by id unless the kind says otherwise.
    fn all(record: &CollectorRecord) -> Vec<&Self> {
        Self::of(record).values().collect()
    }

    fn get<'a>(record: &'a CollectorRecord, id: &str) -> Option<&'a Self> {
        Self::of(record).get(id)
    }
}

/// Reads one item of a collector as JSON, with 404s naming what is missing.
fn item_view<T: CollectorItem>(
    state: &AppState,
    collector_id: &str,
    item_id: &str,
) -> Result<Value, ApiError> {
    let applied = state.raft.state();
    let record = applied
        .fleet
        .collectors
        .get(collector_id)
        .ok_or_else(|| ApiError::not_found("collector", collector_id))?;
    T::get(record, item_id).map(T::view).ok_or_else(|| ApiError::not_found(T::KIND, item_id))
}

pub(super) async fn create_item<T: CollectorItem>(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    options: web::Query<WriteOptions>,
    body: web::Json<T::Body>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let collector_id = path.into_inner();
    collector_exists(&state, &collector_id)?;
    let (item, removed) = T::build(&state, new_id(T::ID_PREFIX)?, body.into_inner())?;
    let view = item.view();
    let command = T::put(collector_id, item, removed, true, UnixMillis::now());
    Ok(commit_or_preview(&state, command, &options)
        .await?
        .unwrap_or_else(|| HttpResponse::Created().json(view)))
}

pub(super) async fn list_items<T: CollectorItem>(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let record =
        applied.fleet.collectors.get(path.as_str()).ok_or_else(|| ApiError::not_found("collector", &path))?;
    let items: Vec<Value> = T::all(record).into_iter().map(T::view).collect();
    Ok(HttpResponse::Ok().json(json!({ T::PLURAL: items })))
}

pub(super) async fn get_item<T: CollectorItem>(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (collector_id, item_id) = path.into_inner();
    Ok(HttpResponse::Ok().json(item_view::<T>(&state, &collector_id, &item_id)?))
}

/// Full replace; the response is the stored item (write-only credentials merged as applied).
pub(super) async fn replace_item<T: CollectorItem>(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    options: web::Query<WriteOptions>,
    body: web::Json<T::Body>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let (collector_id, item_id) = path.into_inner();
    let (item, removed) = T::build(&state, item_id.clone(), body.into_inner())?;
    let command = T::put(collector_id.clone(), item, removed, false, UnixMillis::now());
    if let Some(preview) = commit_or_preview(&state, command, &options).await? {
        return Ok(preview);
    }
    Ok(HttpResponse::Ok().json(item_view::<T>(&state, &collector_id, &item_id)?))
}

pub(super) async fn delete_item<T: CollectorItem>(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    options: web::Query<WriteOptions>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let (collector_id, item_id) = path.into_inner();
    let command = T::delete(collector_id, item_id, UnixMillis::now());
    Ok(commit_or_preview(&state, command, &options)
        .await?
        .unwrap_or_else(|| HttpResponse::NoContent().finish()))
}

// ---- sources ----

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceBody {
    name: String,
    #[serde(rename = "type")]
    source_type: String,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    resource_attributes: BTreeMap<String, String>,
}

impl CollectorItem for Source {
    fn id(&self) -> &str {
        &self.id
    }

    const KIND: &'static str = "source";
    const PLURAL: &'static str = "sources";
    const ID_PREFIX: &'static str = "src";
    type Body = SourceBody;

    fn build(_state: &AppState, id: String, body: SourceBody) -> Result<(Self, Vec<String>), ApiError> {
        validate_name("name", &body.name)?;
        catalogue::validate_every_field(EntryKind::Source, &body.source_type, &body.settings, &[])
            .map_err(field_errors)?;
        if body.resource_attributes.len() > 64 {
            return Err(ApiError::invalid_field("resource_attributes", "at most 64 attributes"));
        }
        if let Some(key) =
            body.resource_attributes.keys().find(|key| key.is_empty() || key.starts_with("linkmesh."))
        {
            return Err(ApiError::invalid_field(
                "resource_attributes",
                format!("key {key:?} is empty or reserved (linkmesh.*)"),
            ));
        }
        for (key, value) in &body.resource_attributes {
            templates::check(value, RESOURCE_ATTRIBUTE_TEMPLATING)
                .map_err(|problem| ApiError::invalid_field(&format!("resource_attributes.{key}"), problem))?;
        }
        Ok((
            Source {
                id,
                name: body.name,
                source_type: body.source_type,
                settings: body.settings,
                resource_attributes: body.resource_attributes,
            },
            Vec::new(),
        ))
    }

    fn of(record: &CollectorRecord) -> &BTreeMap<String, Self> {
        &record.sources
    }

    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.source_type,
            "settings": self.settings,
            "resource_attributes": self.resource_attributes,
        })
    }

    fn put(
        collector_id: String,
        source: Self,
        _removed: Vec<String>,
        create: bool,
        at: UnixMillis,
    ) -> Command {
        Command::PutSource { collector_id, source, create, at }
    }

    fn delete(collector_id: String, id: String, at: UnixMillis) -> Command {
        Command::DeleteSource { collector_id, id, at }
    }
}

// ---- destinations ----

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DestinationBody {
    name: String,
    #[serde(rename = "type")]
    destination_type: String,
    #[serde(default)]
    settings: Settings,
    /// Values to set; `null` removes a stored credential; absent keys keep theirs (write-only).
    #[serde(default)]
    credentials: BTreeMap<String, Option<String>>,
}

impl CollectorItem for Destination {
    fn id(&self) -> &str {
        &self.id
    }

    const KIND: &'static str = "destination";
    const PLURAL: &'static str = "destinations";
    const ID_PREFIX: &'static str = "dst";
    type Body = DestinationBody;

    fn build(state: &AppState, id: String, body: DestinationBody) -> Result<(Self, Vec<String>), ApiError> {
        validate_name("name", &body.name)?;
        let keys: Vec<&str> = body.credentials.keys().map(String::as_str).collect();
        catalogue::validate_every_field(
            EntryKind::Destination,
            &body.destination_type,
            &body.settings,
            &keys,
        )
        .map_err(field_errors)?;
        let mut sealed = BTreeMap::new();
        let mut removed = Vec::new();
        for (key, value) in body.credentials {
            match value {
                Some(value) if value.len() > 16 * 1024 => {
                    return Err(ApiError::invalid_field(
                        &format!("credentials.{key}"),
                        "must be at most 16 KiB",
                    ));
                }
                Some(value) => {
                    let ciphertext = state
                        .data_key
                        .seal(&value)
                        .map_err(|error| ApiError::internal("seal credential", error))?;
                    sealed.insert(key, SealedSecret(ciphertext));
                }
                None => removed.push(key),
            }
        }
        let destination = Destination {
            id,
            name: body.name,
            destination_type: body.destination_type,
            settings: body.settings,
            credentials: sealed,
        };
        Ok((destination, removed))
    }

    fn of(record: &CollectorRecord) -> &BTreeMap<String, Self> {
        &record.destinations
    }

    fn view(&self) -> Value {
        let masked: BTreeMap<&str, &str> =
            self.credentials.keys().map(|key| (key.as_str(), "••••")).collect();
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.destination_type,
            "settings": self.settings,
            "credentials": masked,
        })
    }

    fn put(
        collector_id: String,
        destination: Self,
        removed: Vec<String>,
        create: bool,
        at: UnixMillis,
    ) -> Command {
        Command::PutDestination { collector_id, destination, remove_credentials: removed, create, at }
    }

    fn delete(collector_id: String, id: String, at: UnixMillis) -> Command {
        Command::DeleteDestination { collector_id, id, at }
    }
}

// ---- routes ----

fn default_condition() -> String {
    "true".to_owned()
}

fn default_priority() -> u32 {
    100
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteBody {
    name: String,
    #[serde(default = "default_condition")]
    condition: String,
    #[serde(default = "default_priority")]
    priority: u32,
    #[serde(default = "default_true")]
    is_final: bool,
    #[serde(default)]
    pipeline_id: Option<String>,
    destination_ids: Vec<String>,
}

impl CollectorItem for Route {
    fn id(&self) -> &str {
        &self.id
    }

    const KIND: &'static str = "route";
    const PLURAL: &'static str = "routes";
    const ID_PREFIX: &'static str = "rte";
    type Body = RouteBody;

    fn build(_state: &AppState, id: String, body: RouteBody) -> Result<(Self, Vec<String>), ApiError> {
        validate_name("name", &body.name)?;
        let condition = body.condition.trim().to_owned();
        if condition.is_empty() {
            return Err(ApiError::invalid_field(
                "condition",
                "must not be empty (use \"true\" to match everything)",
            ));
        }
        if condition.len() > MAX_CONDITION_BYTES || condition.chars().any(char::is_control) {
            return Err(ApiError::invalid_field("condition", "must be one line of at most 4096 bytes"));
        }
        if body.destination_ids.is_empty() {
            return Err(ApiError::invalid_field("destination_ids", "name at least one destination"));
        }
        let mut destination_ids = body.destination_ids;
        destination_ids.sort();
        destination_ids.dedup();
        let route = Route {
            id,
            name: body.name,
            condition,
            priority: body.priority,
            is_final: body.is_final,
            pipeline_id: body.pipeline_id.filter(|id| !id.is_empty()),
            destination_ids,
        };
        if let Some(problem) = ottl_check::check_route_condition(&route) {
            return Err(ApiError::invalid_field(&problem.field, problem.message));
        }
        Ok((route, Vec::new()))
    }

    fn of(record: &CollectorRecord) -> &BTreeMap<String, Self> {
        &record.routes
    }

    /// In evaluation order: ascending priority, ties by id.
    fn all(record: &CollectorRecord) -> Vec<&Self> {
        let mut routes: Vec<&Route> = record.routes.values().collect();
        routes.sort_by(|left, right| left.priority.cmp(&right.priority).then_with(|| left.id.cmp(&right.id)));
        routes
    }

    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "condition": self.condition,
            "priority": self.priority,
            "is_final": self.is_final,
            "pipeline_id": self.pipeline_id,
            "destination_ids": self.destination_ids,
        })
    }

    fn put(
        collector_id: String,
        route: Self,
        _removed: Vec<String>,
        create: bool,
        at: UnixMillis,
    ) -> Command {
        Command::PutRoute { collector_id, route, create, at }
    }

    fn delete(collector_id: String, id: String, at: UnixMillis) -> Command {
        Command::DeleteRoute { collector_id, id, at }
    }
}

// ---- versions and diffs ----

/// A config version as the API shows it: credentials stay placeholders, never secrets.
pub fn version_view(config: &ConfigVersion, with_content: bool) -> Value {
    let mut view = json!({
        "version": config.version,
        "hash": config.hash,
        "format": config.format,
        "created_at": config.created_at.to_rfc3339(),
    });
    if with_content {
        view["content"] = Value::from(config.content.to_text());
    }
    view
}

pub(super) async fn config_versions(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let record =
        applied.fleet.collectors.get(path.as_str()).ok_or_else(|| ApiError::not_found("collector", &path))?;
    let versions: Vec<Value> =
        record.config.history.iter().rev().map(|config| version_view(config, false)).collect();
    Ok(HttpResponse::Ok().json(json!({ "versions": versions, "current": record.config.version })))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    from: u64,
    to: Option<u64>,
}

pub(super) async fn config_diff(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let record =
        applied.fleet.collectors.get(path.as_str()).ok_or_else(|| ApiError::not_found("collector", &path))?;
    let find = |field: &str, version: u64| {
        record.config.history.iter().find(|config| config.version == version).ok_or_else(|| {
            let oldest = record.config.history.front().map_or(0, |config| config.version);
            ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "{field}: version {version} is not kept (versions {oldest}..={} are)",
                    record.config.version
                ),
            )
        })
    };
    let from = find("from", query.from)?;
    let to = find("to", query.to.unwrap_or(record.config.version))?;
    let (from_text, to_text) = (from.content.to_text(), to.content.to_text());
    let diff = similar::TextDiff::from_lines(&from_text, &to_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("version {}", from.version), &format!("version {}", to.version))
        .to_string();
    Ok(HttpResponse::Ok().json(json!({ "from": from.version, "to": to.version, "diff": diff })))
}
