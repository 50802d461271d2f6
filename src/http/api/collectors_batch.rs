//! Batch provisioning: `POST /collectors:batch` creates up to [`MAX_BATCH`] collectors, with their
//! first tokens when asked, as one Raft entry (`Command::CreateCollectors`).
//!
//! Invariants:
//! - All or nothing: every item is checked (name, mode, labels, a name free and not repeated in the
//!   batch) before anything is proposed, and the entry is applied whole or refused whole, so a refused
//!   call created nothing. A refusal names the item (`collectors[3].name`, `details.index`).
//! - Ids and tokens are made here, before the proposal: `apply` only stores what the entry carries,
//!   the same on every replica. A token is minted as for one collector (`secrets::mint_token`, the
//!   `lmct_` prefix, its SHA-256 stored), appears in this answer only, and is in no log or audit record.
//! - The answer comes after the entry applied on this node: a minted token polls at once here, and
//!   other nodes find it after one catch-up (`http/collector_service.rs`).
//! - The body is read through `http/body.rs` with [`MAX_BATCH_BODY_BYTES`] enforced before
//!   allocation, above the REST API's usual JSON limit because a batch is 1,000 items.
//! - One audit record for the call: operation `create` or `create_with_tokens` and the count.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest};
use futures_util::future::LocalBoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fleet_model::{commit_or_preview, WriteOptions};
use super::handler_types::{Body, DescribeArg, Generators, HandlerTypes, Reply};
use super::validate_name;
use crate::error::{ApiError, ErrorCode};
use crate::http::body;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::command::{NewCollector, NewCollectorToken};
use crate::model::labels::check_labels;
use crate::model::{ApplyError, CollectorMode, Command, Labels, UnixMillis};
use crate::raft::ProposeError;
use crate::secrets;

/// Collectors one call creates at most.
pub const MAX_BATCH: usize = 1000;

/// The largest batch body: 4 KiB per collector on average over a full batch, room for a 128-character
/// name and a dozen long labels each. Larger imports are split by the client (`linkmesh collectors
/// import` splits by count and by size).
pub const MAX_BATCH_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBatch {
    /// 1 to 1000 collectors, created in this order.
    collectors: Vec<BatchItem>,
    /// Mint each collector's token and return it (once) in the answer; default `false`.
    #[serde(default)]
    mint_tokens: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    name: String,
    /// `alloy-remotecfg` or `opamp`.
    mode: String,
    /// Operator-set labels (what label selectors match).
    #[serde(default)]
    labels: Labels,
}

/// The body of `POST /collectors:batch`, read with [`MAX_BATCH_BODY_BYTES`] as its limit.
pub(super) struct BatchBody(CreateBatch);

impl FromRequest for BatchBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<BatchBody, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = web::Payload::from_request(&request, payload);
        Box::pin(async move {
            let is_json = request.mime_type().ok().flatten().is_some_and(|mime| {
                mime.subtype().as_str() == "json"
                    || mime.suffix().is_some_and(|suffix| suffix.as_str() == "json")
            });
            if !is_json {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "expected Content-Type: application/json",
                ));
            }
            let payload = payload.await.map_err(|error| ApiError::internal("batch body", error))?;
            let bytes = body::read_limited(&request, payload, MAX_BATCH_BODY_BYTES).await?;
            let batch = serde_json::from_slice(&bytes).map_err(|error| {
                ApiError::new(ErrorCode::InvalidArgument, format!("invalid JSON body: {error}"))
            })?;
            Ok(BatchBody(batch))
        })
    }
}

impl DescribeArg for BatchBody {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
        types.body = Some(Body::Json(generators.request.subschema_for::<CreateBatch>()));
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct CreatedBatch {
    /// In request order.
    collectors: Vec<CreatedCollector>,
}

#[derive(Serialize, JsonSchema)]
struct CreatedCollector {
    id: String,
    name: String,
    /// `lmct_…`, the collector's bearer token, shown this once; absent without `mint_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// A refusal that names the batch item it is about.
fn item_error(mut error: ApiError, index: usize) -> ApiError {
    error.details.insert("index".to_owned(), serde_json::Value::from(index));
    error
}

fn invalid_item(index: usize, field: &str, problem: impl std::fmt::Display) -> ApiError {
    item_error(ApiError::invalid_field(&format!("collectors[{index}].{field}"), problem), index)
}

fn name_taken(index: usize, name: &str, problem: &str) -> ApiError {
    let error = ApiError::new(
        ErrorCode::AlreadyExists,
        format!("collectors[{index}].name: a collector named {name:?} {problem}"),
    );
    let mut error = item_error(error, index);
    error.details.insert("field".to_owned(), serde_json::Value::from(format!("collectors[{index}].name")));
    error
}

/// Checks every item as `POST /collectors` checks one, and that no name is taken or repeated; the
/// first problem found is the answer.
fn check_items(
    state: &AppState,
    items: Vec<BatchItem>,
) -> Result<Vec<(String, CollectorMode, Labels)>, ApiError> {
    if items.is_empty() {
        return Err(ApiError::invalid_field("collectors", "at least one collector"));
    }
    if items.len() > MAX_BATCH {
        let mut error = ApiError::invalid_field(
            "collectors",
            format!("at most {MAX_BATCH} collectors per call, not {}: send several batches", items.len()),
        );
        error.details.insert("max".to_owned(), serde_json::Value::from(MAX_BATCH));
        return Err(error);
    }
    let mut checked = Vec::with_capacity(items.len());
    let mut first_of_name = std::collections::HashMap::with_capacity(items.len());
    for (index, BatchItem { name, mode, labels }) in items.into_iter().enumerate() {
        validate_name(&format!("collectors[{index}].name"), &name)
            .map_err(|error| item_error(error, index))?;
        let mode = CollectorMode::parse(&mode)
            .ok_or_else(|| invalid_item(index, "mode", "must be \"alloy-remotecfg\" or \"opamp\""))?;
        check_labels(&labels).map_err(|problem| invalid_item(index, "labels", problem))?;
        if let Some(first) = first_of_name.insert(name.clone(), index) {
            let mut error = name_taken(index, &name, &format!("is also collectors[{first}]"));
            error.details.insert("first_index".to_owned(), serde_json::Value::from(first));
            return Err(error);
        }
        checked.push((name, mode, labels));
    }
    let replica = state.raft.state();
    if let Some(index) =
        checked.iter().position(|(name, ..)| replica.fleet.collector_id_by_name(name).is_some())
    {
        return Err(name_taken(index, &checked[index].0, "already exists"));
    }
    Ok(checked)
}

/// `POST /collectors:batch`.
pub(super) async fn create_batch(
    principal: Principal,
    state: web::Data<AppState>,
    body: BatchBody,
) -> Result<Reply<CreatedBatch, 201>, ApiError> {
    principal.require_collector_admin()?;
    let CreateBatch { collectors, mint_tokens } = body.0;
    let checked = check_items(&state, collectors)?;
    crate::audit::note_bulk(if mint_tokens { "create_with_tokens" } else { "create" }, checked.len());
    let mut new_collectors = Vec::with_capacity(checked.len());
    let mut created = Vec::with_capacity(checked.len());
    for (name, mode, labels) in checked {
        let id = secrets::random_id("col").map_err(|error| ApiError::internal("collector id", error))?;
        let minted = if mint_tokens {
            Some(
                secrets::mint_token(secrets::COLLECTOR_TOKEN_PREFIX)
                    .map_err(|error| ApiError::internal("mint collector token", error))?,
            )
        } else {
            None
        };
        new_collectors.push(NewCollector {
            id: id.clone(),
            name: name.clone(),
            mode,
            labels,
            token: minted.as_ref().map(|minted| NewCollectorToken {
                token_hash: minted.hash,
                prefix: minted.display_prefix.clone(),
            }),
        });
        created.push(CreatedCollector { id, name, token: minted.map(|minted| minted.token) });
    }
    let labelled = new_collectors.iter().any(|new| !new.labels.is_empty());
    let command = Command::CreateCollectors { collectors: new_collectors, at: UnixMillis::now() };
    let proposed = if labelled {
        // Labels can bring fleet-wide items into a new collector's config: the same checks as a
        // label change (templates, stability level, OTTL) before anything is written.
        commit_or_preview(&state, command, &WriteOptions::default()).await.map(|_| ())
    } else {
        state.raft.propose(command).await.map_err(|error| name_error(error, &created))
    };
    proposed?;
    Ok(Reply(CreatedBatch { collectors: created }))
}

/// A name taken on the leader but not yet on this replica (created through another node a moment
/// ago) is refused when the entry applies: the answer still names the item.
fn name_error(error: ProposeError, created: &[CreatedCollector]) -> ApiError {
    if let ProposeError::Rejected(ApplyError::AlreadyExists { kind, id }) = &error {
        if kind == "collector named" {
            if let Some(index) = created.iter().position(|item| &item.name == id) {
                return name_taken(index, id, "already exists");
            }
        }
    }
    error.into()
}
