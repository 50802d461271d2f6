//! Fleet-wide sources, destinations and routes over REST (`/api/v1/sources`, `/destinations`,
//! `/routes`): the same bodies as a collector's items plus a required `selector`, which attaches the
//! item to every collector whose labels it matches (`model/fleet_items.rs`). `""` is every
//! collector; it must be said, never assumed. Writes go through the same checks as a collector's
//! items: every collector the change reaches is rendered and checked before anything is proposed,
//! and `?validate_only=true` stops there. Views say how many collectors an item applies to.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::fleet_model::{commit_or_preview, new_id, CollectorItem, WriteOptions};
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::fleet_items::{Attached, FleetItems};
use crate::model::fleet_state::FleetState;
use crate::model::labels::Selector;
use crate::model::pipeline::{Destination, Route, Source};
use crate::model::{Command, UnixMillis};

/// A collector item's body with the selector that attaches it.
#[derive(Deserialize, JsonSchema)]
pub(super) struct FleetItemBody<B> {
    /// Label selector (`env=prod,region!=eu`); `""` attaches the item to every collector.
    selector: String,
    #[serde(flatten)]
    item: B,
}

/// A kind of item that also exists fleet-wide.
pub(super) trait FleetItem: CollectorItem + Clone {
    fn fleet(items: &FleetItems) -> &BTreeMap<String, Attached<Self>>;
    fn fleet_put(
        item: Self,
        selector: Selector,
        removed: Vec<String>,
        create: bool,
        at: UnixMillis,
    ) -> Command;
    fn fleet_delete(id: String, at: UnixMillis) -> Command;
}

impl FleetItem for Source {
    fn fleet(items: &FleetItems) -> &BTreeMap<String, Attached<Self>> {
        &items.sources
    }

    fn fleet_put(source: Self, selector: Selector, _: Vec<String>, create: bool, at: UnixMillis) -> Command {
        Command::PutFleetSource { source, selector, create, at }
    }

    fn fleet_delete(id: String, at: UnixMillis) -> Command {
        Command::DeleteFleetSource { id, at }
    }
}

impl FleetItem for Destination {
    fn fleet(items: &FleetItems) -> &BTreeMap<String, Attached<Self>> {
        &items.destinations
    }

    fn fleet_put(
        destination: Self,
        selector: Selector,
        remove_credentials: Vec<String>,
        create: bool,
        at: UnixMillis,
    ) -> Command {
        Command::PutFleetDestination { destination, selector, remove_credentials, create, at }
    }

    fn fleet_delete(id: String, at: UnixMillis) -> Command {
        Command::DeleteFleetDestination { id, at }
    }
}

impl FleetItem for Route {
    fn fleet(items: &FleetItems) -> &BTreeMap<String, Attached<Self>> {
        &items.routes
    }

    fn fleet_put(route: Self, selector: Selector, _: Vec<String>, create: bool, at: UnixMillis) -> Command {
        Command::PutFleetRoute { route, selector, create, at }
    }

    fn fleet_delete(id: String, at: UnixMillis) -> Command {
        Command::DeleteFleetRoute { id, at }
    }
}

fn parse_selector(text: &str) -> Result<Selector, ApiError> {
    Selector::parse(text).map_err(|error| ApiError::invalid_field("selector", error.0))
}

/// An item as the API shows it: the collector item's view, its selector and how many collectors it
/// applies to now.
fn fleet_view<T: FleetItem>(fleet: &FleetState, attached: &Attached<T>) -> Value {
    let mut view = attached.item.view();
    view["selector"] = Value::from(attached.selector.as_str());
    view["collectors"] = Value::from(fleet.collectors_selected(Some(&attached.selector), None).len());
    view
}

fn fleet_item_view<T: FleetItem>(state: &AppState, item_id: &str) -> Result<Value, ApiError> {
    let applied = state.raft.state();
    let attached = T::fleet(&applied.fleet.fleet_items)
        .get(item_id)
        .ok_or_else(|| ApiError::not_found(&format!("fleet-wide {}", T::KIND), item_id))?;
    Ok(fleet_view(&applied.fleet, attached))
}

pub(super) async fn create<T: FleetItem>(
    principal: Principal,
    state: web::Data<AppState>,
    options: web::Query<WriteOptions>,
    body: web::Json<FleetItemBody<T::Body>>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let FleetItemBody { selector, item } = body.into_inner();
    let selector = parse_selector(&selector)?;
    let (item, removed) = T::build(&state, new_id(T::ID_PREFIX)?, item)?;
    let id = item.id().to_owned();
    let command = T::fleet_put(item, selector, removed, true, UnixMillis::now());
    if let Some(preview) = commit_or_preview(&state, command, &options).await? {
        return Ok(preview);
    }
    Ok(HttpResponse::Created().json(fleet_item_view::<T>(&state, &id)?))
}

pub(super) async fn list<T: FleetItem>(
    _principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let applied = state.raft.state();
    let items: Vec<Value> = T::fleet(&applied.fleet.fleet_items)
        .values()
        .map(|attached| fleet_view(&applied.fleet, attached))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ T::PLURAL: items })))
}

pub(super) async fn get<T: FleetItem>(
    _principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(fleet_item_view::<T>(&state, &path)?))
}

/// Full replace, selector included.
pub(super) async fn replace<T: FleetItem>(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    options: web::Query<WriteOptions>,
    body: web::Json<FleetItemBody<T::Body>>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let item_id = path.into_inner();
    let FleetItemBody { selector, item } = body.into_inner();
    let selector = parse_selector(&selector)?;
    let (item, removed) = T::build(&state, item_id.clone(), item)?;
    let command = T::fleet_put(item, selector, removed, false, UnixMillis::now());
    if let Some(preview) = commit_or_preview(&state, command, &options).await? {
        return Ok(preview);
    }
    Ok(HttpResponse::Ok().json(fleet_item_view::<T>(&state, &item_id)?))
}

pub(super) async fn delete<T: FleetItem>(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    options: web::Query<WriteOptions>,
) -> Result<HttpResponse, ApiError> {
    principal.require_collector_admin()?;
    let command = T::fleet_delete(path.into_inner(), UnixMillis::now());
    Ok(commit_or_preview(&state, command, &options)
        .await?
        .unwrap_or_else(|| HttpResponse::NoContent().finish()))
}

/// Why an item is part of a collector's config (the Config tab's "applies because of").
#[derive(serde::Serialize, JsonSchema)]
pub(crate) struct AppliedItem {
    /// `source`, `destination` or `route`.
    kind: &'static str,
    id: String,
    name: String,
    /// `collector` (the collector's own item) or `fleet` (attached by `selector`).
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    /// Whether it is in the rendered config: a fleet-wide route none of whose destinations applies
    /// to this collector is left out.
    rendered: bool,
    /// Why, in a sentence.
    reason: String,
    /// A staged rollout has not reached this collector yet: the config has the item's previous
    /// revision.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    held: bool,
}

fn own_item(kind: &'static str, id: &str, name: &str) -> AppliedItem {
    AppliedItem {
        kind,
        id: id.to_owned(),
        name: name.to_owned(),
        scope: "collector",
        selector: None,
        rendered: true,
        reason: "this collector's own item".to_owned(),
        held: false,
    }
}

fn attached_item(kind: &'static str, id: &str, name: &str, selector: &Selector) -> AppliedItem {
    let reason = if selector.is_everything() {
        "fleet-wide, attached to every collector".to_owned()
    } else {
        format!("fleet-wide, applies because of selector {selector}")
    };
    AppliedItem {
        kind,
        id: id.to_owned(),
        name: name.to_owned(),
        scope: "fleet",
        selector: Some(selector.as_str().to_owned()),
        rendered: true,
        reason,
        held: false,
    }
}

/// Every item of `record`'s config and why it is there, in the order of the render input. Fleet-wide
/// items are taken as the config has them: during a staged rollout that has not reached this
/// collector yet, at their previous revision (and the reason says so).
pub(crate) fn applied_items(fleet: &FleetState, record: &crate::model::CollectorRecord) -> Vec<AppliedItem> {
    let labels = &record.labels;
    let items = fleet.effective_fleet_items(record);
    let attached = |kind: &'static str, id: &str, name: &str, selector: &Selector| {
        let mut view = attached_item(kind, id, name, selector);
        if items.held.contains(id) {
            view.held = true;
            view.reason
                .push_str(" (at its previous revision: a staged rollout has not reached this collector yet)");
        }
        view
    };
    let mut applied = Vec::new();
    applied.extend(record.sources.values().map(|source| own_item("source", &source.id, &source.name)));
    for source in items.sources.iter().filter(|source| source.applies_to(labels)) {
        applied.push(attached("source", &source.item.id, &source.item.name, &source.selector));
    }
    applied.extend(
        record
            .destinations
            .values()
            .map(|destination| own_item("destination", &destination.id, &destination.name)),
    );
    for destination in items.destinations.iter().filter(|destination| destination.applies_to(labels)) {
        applied.push(attached(
            "destination",
            &destination.item.id,
            &destination.item.name,
            &destination.selector,
        ));
    }
    applied.extend(record.routes.values().map(|route| own_item("route", &route.id, &route.name)));
    for route in items.routes.iter().filter(|route| route.applies_to(labels)) {
        let mut item = attached("route", &route.item.id, &route.item.name, &route.selector);
        let reaches_a_destination = route.item.destination_ids.iter().any(|id| {
            items
                .destinations
                .iter()
                .any(|destination| &destination.item.id == id && destination.applies_to(labels))
        });
        if !reaches_a_destination {
            item.rendered = false;
            item.reason =
                format!("{}, but left out: none of its destinations applies to this collector", item.reason);
        }
        applied.push(item);
    }
    applied
}
