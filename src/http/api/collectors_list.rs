//! `GET /collectors`: the fleet list, filtered, sorted and paged, built for 100k collectors.
//!
//! Filters (all must hold): `selector` (a label selector over operator-set labels), `attr=key=value`
//! (repeatable; a reported attribute, local or remote, equal to the value), `status`, `mode`, and `q`
//! (case-insensitive text in the name, id, host id, or a label or reported attribute written
//! `key=value`, so `q=env=prod` finds collectors labelled or reporting `env=prod`). `sort` is one of
//! [`SortKey`]'s names, `-` in front for descending; ties go by natural name (`sim-2` before `sim-10`),
//! then id, both ascending, so the order is total.
//!
//! Paging: `limit` (1..=1000) and `cursor`, the previous answer's `next`: the sort key, natural name
//! and id of that page's last item (base64url JSON). A page holds the items strictly after that
//! position, so walking the pages sees every collector that existed throughout exactly once, whatever
//! is created or deleted meanwhile (a collector whose sort key changes during the walk, e.g. its
//! `last_seen_at`, may be seen twice or not at all, as in any keyset paging). A cursor only fits the sort
//! it was made for (400 otherwise); the filters may change between pages.
//!
//! Cost: the list is chosen from this node's replica under its read lock, by reference (no record is
//! cloned), with the name index kept beside it (`model/name_order.rs`: every collector by a
//! precomputed natural-order key, with its replicated status and the count per status). A paged list
//! in name order (the default, either direction) without other filters than `status` walks the index
//! from the cursor and reads O(page) records, and takes `total` and `status_counts` from the index's
//! counts. Other filters need one scan of the records for `total` and `status_counts`. Other sorts
//! and the complete list scan and select as before ([`select_in`] says which path when). Only the
//! page's items get their live state gathered from their owners ([`live_reads::gather`]) and are
//! turned into views. So on a paged list the `status` filter, the `status` sort and `total` use the
//! **replicated** status, which follows the live one by at most an activity flush; the items shown
//! carry the live status. Without `limit` the list is complete (as scripts expect, `next` is `null`),
//! every item is gathered, and the `status` filter uses the live status as before.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::collectors::CollectorView;
use super::handler_types::{DescribeArg, Generators, HandlerTypes, Reply};
use crate::cluster::live_reads::{self, Gathered};
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::labels::{natural_cmp, Selector};
use crate::model::name_order::{status_rank, NameKey, STATUS_ORDER};
use crate::model::{CollectorMode, CollectorRecord, CollectorStatus, FleetState, UnixMillis};

/// The largest page (`limit`).
pub const MAX_PAGE: usize = 1000;

/// The query parameters `GET /collectors` takes, as the API description shows them (parsed by hand
/// from the raw query string, since `attr` may repeat).
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
pub(crate) struct ListQuery {
    /// A label selector over operator-set labels, e.g. `env=prod,region!=eu`.
    selector: Option<String>,
    /// `key=value`: a reported attribute (local or remote) with that value; repeat for several, all
    /// must match.
    attr: Option<Vec<String>>,
    /// awaiting_connection, connected, degraded, stale or offline (on a paged list: the replicated status).
    status: Option<String>,
    /// alloy-remotecfg or opamp.
    mode: Option<String>,
    /// Text in the name, id, host id, or a label or reported attribute as `key=value`.
    q: Option<String>,
    /// name (default), status, last_seen_at, created_at or mode; `-` in front for descending.
    sort: Option<String>,
    /// Page size, 1 to 1000; without it the list is complete.
    limit: Option<usize>,
    /// The previous page's `next`.
    cursor: Option<String>,
}

/// What a collector must be to be listed.
#[derive(Default, Clone)]
pub struct ListFilter {
    selector: Option<Selector>,
    attrs: Vec<(String, String)>,
    status: Option<CollectorStatus>,
    mode: Option<CollectorMode>,
    /// Lowercased `q`.
    needle: Option<String>,
}

impl ListFilter {
    /// Whether no filter but `status` is set.
    fn only_status(&self) -> bool {
        self.selector.is_none() && self.attrs.is_empty() && self.mode.is_none() && self.needle.is_none()
    }

    /// Every filter but `status`.
    fn matches_except_status(&self, record: &CollectorRecord) -> bool {
        self.mode.is_none_or(|mode| record.mode == mode)
            && self.selector.as_ref().is_none_or(|selector| selector.matches(&record.labels))
            && self.attrs.iter().all(|(key, value)| {
                record.local_attributes.get(key) == Some(value)
                    || record.remote_attributes.get(key) == Some(value)
            })
            && self.needle.as_deref().is_none_or(|needle| text_matches(record, needle))
    }

    /// All filters, `status` against the replicated status.
    pub fn matches(&self, record: &CollectorRecord) -> bool {
        self.status.is_none_or(|status| record.status == status) && self.matches_except_status(record)
    }

    /// A key that is equal for equal filters (the stream hub shares work between streams by it).
    pub fn canonical(&self) -> String {
        let mut attrs = self.attrs.clone();
        attrs.sort();
        serde_json::json!([
            self.selector.as_ref().map(Selector::as_str),
            attrs,
            self.status.map(CollectorStatus::as_str),
            self.mode.map(CollectorMode::as_str),
            self.needle,
        ])
        .to_string()
    }
}

fn text_matches(record: &CollectorRecord, needle: &str) -> bool {
    let pair_matches = |(key, value): (&String, &String)| {
        // `env=prod` as one text, without allocating for every pair of every collector.
        let key = key.to_lowercase();
        let value = value.to_lowercase();
        key.contains(needle)
            || value.contains(needle)
            || needle.split_once('=').is_some_and(|(wanted_key, wanted_value)| {
                key.ends_with(wanted_key) && value.starts_with(wanted_value) && !wanted_key.is_empty()
            })
    };
    record.name.to_lowercase().contains(needle)
        || record.id.contains(needle)
        || record.host_id.as_deref().is_some_and(|host| host.to_lowercase().contains(needle))
        || record.labels.iter().any(pair_matches)
        || record.local_attributes.iter().any(pair_matches)
        || record.remote_attributes.iter().any(pair_matches)
}

/// What the list can be sorted by.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SortKey {
    Name,
    Status,
    LastSeenAt,
    CreatedAt,
    Mode,
}

/// A sort key and its direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SortOrder {
    key: SortKey,
    descending: bool,
}

impl Default for SortOrder {
    fn default() -> Self {
        SortOrder { key: SortKey::Name, descending: false }
    }
}

const SORT_NAMES: [(&str, SortKey); 5] = [
    ("name", SortKey::Name),
    ("status", SortKey::Status),
    ("last_seen_at", SortKey::LastSeenAt),
    ("created_at", SortKey::CreatedAt),
    ("mode", SortKey::Mode),
];

impl SortOrder {
    fn parse(text: &str) -> Option<SortOrder> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text),
        };
        SORT_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, key)| SortOrder { key: *key, descending })
    }

    fn name(self) -> String {
        let name = SORT_NAMES.iter().find(|(_, key)| *key == self.key).map_or("name", |(name, _)| name);
        if self.descending {
            format!("-{name}")
        } else {
            name.to_owned()
        }
    }

    /// The list's total order over two positions.
    fn compare(self, left: &Position<'_>, right: &Position<'_>) -> Ordering {
        let primary = match self.key {
            SortKey::Name => natural_cmp(left.name, right.name),
            SortKey::Status => status_rank(left.status).cmp(&status_rank(right.status)),
            SortKey::LastSeenAt => left.last_seen_at.cmp(&right.last_seen_at),
            SortKey::CreatedAt => left.created_at.cmp(&right.created_at),
            SortKey::Mode => left.mode.cmp(right.mode),
        };
        let primary = if self.descending { primary.reverse() } else { primary };
        primary.then_with(|| natural_cmp(left.name, right.name)).then_with(|| left.id.cmp(right.id))
    }

    pub fn compare_records(self, left: &CollectorRecord, right: &CollectorRecord) -> Ordering {
        self.compare(&Position::of(left), &Position::of(right))
    }
}

/// Where an item stands in the order: its sort keys, borrowed from a record or a cursor.
struct Position<'a> {
    name: &'a str,
    id: &'a str,
    status: CollectorStatus,
    last_seen_at: Option<UnixMillis>,
    created_at: UnixMillis,
    mode: &'a str,
}

impl<'a> Position<'a> {
    fn of(record: &'a CollectorRecord) -> Self {
        Position {
            name: &record.name,
            id: &record.id,
            status: record.status,
            last_seen_at: record.last_seen_at,
            created_at: record.created_at,
            mode: record.mode.as_str(),
        }
    }
}

/// The cursor's content: the sort it belongs to and the last item's position in it.
#[derive(Serialize, Deserialize)]
struct Cursor {
    sort: String,
    name: String,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
}

impl Cursor {
    fn after(order: SortOrder, record: &CollectorRecord) -> String {
        let cursor = Cursor {
            sort: order.name(),
            name: record.name.clone(),
            id: record.id.clone(),
            status: (order.key == SortKey::Status).then(|| record.status.as_str().to_owned()),
            last_seen_at: if order.key == SortKey::LastSeenAt {
                record.last_seen_at.map(|at| at.0)
            } else {
                None
            },
            created_at: (order.key == SortKey::CreatedAt).then_some(record.created_at.0),
            mode: (order.key == SortKey::Mode).then(|| record.mode.as_str().to_owned()),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
    }

    fn decode(text: &str, order: SortOrder) -> Result<Cursor, ApiError> {
        let invalid = || ApiError::invalid_field("cursor", "is not a cursor this list gave out");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.sort != order.name() {
            return Err(ApiError::invalid_field(
                "cursor",
                format!(
                    "was made for sort={}, not sort={}; start again without cursor",
                    cursor.sort,
                    order.name()
                ),
            ));
        }
        let key_present = match order.key {
            SortKey::Name | SortKey::LastSeenAt => true,
            SortKey::Status => cursor.status.as_deref().and_then(CollectorStatus::parse).is_some(),
            SortKey::CreatedAt => cursor.created_at.is_some(),
            SortKey::Mode => cursor.mode.as_deref().and_then(CollectorMode::parse).is_some(),
        };
        if !key_present {
            return Err(invalid());
        }
        Ok(cursor)
    }

    fn position(&self) -> Position<'_> {
        Position {
            name: &self.name,
            id: &self.id,
            status: self
                .status
                .as_deref()
                .and_then(CollectorStatus::parse)
                .unwrap_or(CollectorStatus::Offline),
            last_seen_at: self.last_seen_at.map(UnixMillis),
            created_at: UnixMillis(self.created_at.unwrap_or(0)),
            mode: self.mode.as_deref().unwrap_or(""),
        }
    }
}

/// The list's parameters, parsed and checked.
pub struct ListParams {
    pub filter: ListFilter,
    pub order: SortOrder,
    pub limit: Option<usize>,
    cursor: Option<Cursor>,
    /// Parameters the caller named in `extra` (the stream's), in order.
    pub extra: Vec<(String, String)>,
}

impl ListParams {
    /// Parses a raw query string; names in `extra` are kept for the caller, any other unknown name is
    /// a 400.
    pub fn parse(query: &str, extra: &[&str]) -> Result<ListParams, ApiError> {
        let mut filter = ListFilter::default();
        let mut order = None;
        let mut limit = None;
        let mut cursor_text = None;
        let mut extras = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, value) = (name.into_owned(), value.into_owned());
            if name != "attr" && !extra.contains(&name.as_str()) {
                if seen.contains(&name) {
                    return Err(ApiError::invalid_field(&name, "given more than once"));
                }
                seen.push(name.clone());
            }
            match name.as_str() {
                "selector" => {
                    let selector = Selector::parse(&value)
                        .map_err(|error| ApiError::invalid_field("selector", error.0))?;
                    filter.selector = (!selector.is_everything()).then_some(selector);
                }
                "attr" => {
                    let (key, wanted) = value
                        .split_once('=')
                        .filter(|(key, _)| !key.is_empty())
                        .ok_or_else(|| ApiError::invalid_field("attr", "must be key=value"))?;
                    filter.attrs.push((key.to_owned(), wanted.to_owned()));
                }
                "status" if !value.is_empty() => {
                    filter.status = Some(CollectorStatus::parse(&value).ok_or_else(|| {
                        ApiError::invalid_field(
                            "status",
                            "must be awaiting_connection, connected, degraded, stale or offline",
                        )
                    })?);
                }
                "mode" if !value.is_empty() => {
                    filter.mode = Some(CollectorMode::parse(&value).ok_or_else(|| {
                        ApiError::invalid_field("mode", "must be \"alloy-remotecfg\" or \"opamp\"")
                    })?);
                }
                "status" | "mode" => {}
                "q" => filter.needle = (!value.trim().is_empty()).then(|| value.trim().to_lowercase()),
                "sort" => {
                    order = Some(SortOrder::parse(&value).ok_or_else(|| {
                        ApiError::invalid_field(
                            "sort",
                            "must be name, status, last_seen_at, created_at or mode, with - in front for descending",
                        )
                    })?);
                }
                "limit" => {
                    limit = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|limit| (1..=MAX_PAGE).contains(limit))
                            .ok_or_else(|| {
                                ApiError::invalid_field("limit", format!("must be between 1 and {MAX_PAGE}"))
                            })?,
                    );
                }
                "cursor" => cursor_text = Some(value),
                other if extra.contains(&other) => extras.push((name, value)),
                other => {
                    return Err(ApiError::invalid_field(other, "unknown query parameter"));
                }
            }
        }
        let order = order.unwrap_or_default();
        let cursor = cursor_text.map(|text| Cursor::decode(&text, order)).transpose()?;
        Ok(ListParams { filter, order, limit, cursor, extra: extras })
    }
}

impl ListParams {
    /// A key that is equal for equal parameters (the stream hub shares work between streams by it).
    pub fn canonical(&self) -> String {
        let cursor = self.cursor.as_ref().map(|cursor| serde_json::to_string(cursor).unwrap_or_default());
        serde_json::json!([self.filter.canonical(), self.order.name(), self.limit, cursor]).to_string()
    }
}

/// The extractor for [`list`]: the query string parsed as [`ListParams`] (400 on a bad parameter).
pub(crate) struct ListRequest(ListParams);

impl FromRequest for ListRequest {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(ListParams::parse(request.query_string(), &[]).map(ListRequest))
    }
}

impl DescribeArg for ListRequest {
    fn describe(types: &mut HandlerTypes, generators: &mut Generators) {
        web::Query::<ListQuery>::describe(types, generators);
    }
}

/// One page of the list, as references into the replica.
pub struct Selection<'a> {
    pub items: Vec<&'a CollectorRecord>,
    /// How many match the filters.
    pub total: usize,
    /// Whether items follow the page.
    pub more: bool,
    /// How many match the filters other than `status`, per replicated status.
    pub status_counts: [usize; 5],
}

/// Filters `collectors`, keeps what follows the cursor, and takes the first `limit` in the order
/// (all of them without a limit). `status_filter` false leaves the status filter to the caller.
/// Reads every record and orders by parsing names; [`select_in`] gives the same selection from a
/// replica with its name index.
pub fn select<'a>(
    collectors: impl Iterator<Item = &'a CollectorRecord>,
    params: &ListParams,
    status_filter: bool,
) -> Selection<'a> {
    let cursor = params.cursor.as_ref().map(Cursor::position);
    let order = params.order;
    let mut status_counts = [0; 5];
    let mut total = 0;
    let mut items = Vec::new();
    for record in collectors {
        if !params.filter.matches_except_status(record) {
            continue;
        }
        status_counts[status_rank(record.status)] += 1;
        if status_filter && params.filter.status.is_some_and(|status| record.status != status) {
            continue;
        }
        total += 1;
        if cursor
            .as_ref()
            .is_some_and(|cursor| order.compare(&Position::of(record), cursor) != Ordering::Greater)
        {
            continue;
        }
        items.push(record);
    }
    let compare = |left: &&CollectorRecord, right: &&CollectorRecord| order.compare_records(left, right);
    let mut more = false;
    if let Some(limit) = params.limit {
        if items.len() > limit {
            more = true;
            items.select_nth_unstable_by(limit - 1, compare);
            items.truncate(limit);
        }
    }
    items.sort_unstable_by(compare);
    Selection { items, total, more, status_counts }
}

/// [`select`] over a replica, using its name index (`model/name_order.rs`) for paged lists in name
/// order (the default, either direction):
/// - without other filters than `status`: a walk of the index from the cursor (O(page) records read;
///   with `status`, the index's entries of other statuses are stepped over without reading their
///   records), and `total` and `status_counts` from the index's counts;
/// - with other filters: one scan of the records by reference for `total` and `status_counts`; then,
///   when matches are dense (matches² > (limit + 1) × collectors, so the walk reaches a full page
///   within about as many records as there are matches), the same walk checking the filters, and
///   otherwise [`select`] among the matches.
///
/// Other sorts and the complete list are [`select`] itself: comparing precomputed name keys there
/// instead of `natural_cmp` did not measure cheaper (BENCHMARKS.md), the records are read anyway.
pub fn select_in<'a>(fleet: &'a FleetState, params: &ListParams, status_filter: bool) -> Selection<'a> {
    let Some(limit) = params.limit.filter(|_| params.order.key == SortKey::Name) else {
        return select(fleet.collector_records(), params, status_filter);
    };
    let index = fleet.name_order();
    let filter = &params.filter;
    let wanted_status = if status_filter { filter.status } else { None };
    if filter.only_status() {
        let status_counts = index.status_counts();
        let total = wanted_status.map_or(index.len(), |status| status_counts[status_rank(status)]);
        let (items, more) = walk(fleet, params, wanted_status, limit);
        return Selection { items, total, more, status_counts };
    }
    let mut status_counts = [0; 5];
    let mut matches = Vec::new();
    for record in fleet.collectors.values() {
        if !filter.matches_except_status(record) {
            continue;
        }
        status_counts[status_rank(record.status)] += 1;
        if wanted_status.is_some_and(|status| record.status != status) {
            continue;
        }
        matches.push(&**record);
    }
    let total = matches.len();
    let (items, more) = if total * total > (limit + 1) * fleet.collectors.len() {
        walk(fleet, params, wanted_status, limit)
    } else {
        let chosen = select(matches.into_iter(), params, status_filter);
        (chosen.items, chosen.more)
    };
    Selection { items, total, more, status_counts }
}

/// The first `limit` collectors after the cursor in name order (ascending or descending) that match
/// the filters (`status` only if `wanted_status`), and whether more follow.
fn walk<'a>(
    fleet: &'a FleetState,
    params: &ListParams,
    wanted_status: Option<CollectorStatus>,
    limit: usize,
) -> (Vec<&'a CollectorRecord>, bool) {
    let index = fleet.name_order();
    let cursor = params.cursor.as_ref().map(|cursor| NameKey::new(&cursor.name, &cursor.id));
    let entries = if params.order.descending {
        index.descending_after(cursor.as_ref())
    } else {
        Box::new(index.ascending_after(cursor.as_ref()))
    };
    let check_filters = !params.filter.only_status();
    let mut items = Vec::with_capacity(limit + 1);
    for (key, status) in entries {
        if wanted_status.is_some_and(|wanted| status != wanted) {
            continue;
        }
        let Some(record) = fleet.collectors.get(key.id()) else { continue };
        if check_filters && !params.filter.matches_except_status(record) {
            continue;
        }
        items.push(&**record);
        if items.len() > limit {
            break;
        }
    }
    let more = items.len() > limit;
    items.truncate(limit);
    (items, more)
}

#[derive(Serialize, JsonSchema)]
pub(super) struct CollectorList {
    /// In the order asked for (`sort`, default natural name), ties by natural name, then id.
    collectors: Vec<CollectorView>,
    /// The cursor for the next page; `null` at the end and without `limit`.
    next: Option<String>,
    /// How many collectors match the filters (on a paged list by replicated status).
    total: usize,
    /// How many match the filters other than `status`, per replicated status (the UI's chips).
    status_counts: BTreeMap<&'static str, usize>,
}

/// The views of `ids` that still exist, in that order, with what their owners report live.
pub(crate) async fn views_of(
    state: &AppState,
    ids: Vec<String>,
    principal: Option<&Principal>,
) -> Vec<CollectorView> {
    let gathered: HashMap<String, Gathered> =
        live_reads::gather(&state.raft, &state.registry, ids.clone()).await;
    let replica = state.raft.state();
    ids.iter()
        .filter_map(|id| replica.fleet.collectors.get(id))
        .map(|record| {
            let view = CollectorView::gathered(record, gathered.get(&record.id));
            match principal {
                Some(principal) => view.with_effective_config_for(record, principal),
                None => view,
            }
        })
        .collect()
}

pub(super) async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: ListRequest,
) -> Result<Reply<CollectorList>, ApiError> {
    let params = request.0;
    let paged = params.limit.is_some();
    let (ids, mut total, next, status_counts) = {
        let replica = state.raft.state();
        let selection = select_in(&replica.fleet, &params, paged);
        let next = selection
            .more
            .then(|| selection.items.last().map(|last| Cursor::after(params.order, last)))
            .flatten();
        let ids: Vec<String> = selection.items.iter().map(|record| record.id.clone()).collect();
        (ids, selection.total, next, selection.status_counts)
    };
    let mut views = views_of(&state, ids, Some(&principal)).await;
    if !paged {
        if let Some(status) = params.filter.status {
            // The complete list is gathered whole, so it filters on the live status, as it always did.
            views.retain(|view| view.status() == status.as_str());
        }
        total = views.len();
    }
    let status_counts =
        STATUS_ORDER.iter().map(|status| (status.as_str(), status_counts[status_rank(*status)])).collect();
    Ok(Reply(CollectorList { collectors: views, next, total, status_counts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_round_trip_and_unknown_ones_are_refused() {
        for (name, _) in SORT_NAMES {
            for text in [name.to_owned(), format!("-{name}")] {
                assert_eq!(SortOrder::parse(&text).map(SortOrder::name), Some(text.clone()));
            }
        }
        assert!(SortOrder::parse("--name").is_none());
        assert!(SortOrder::parse("host_id").is_none());
    }

    #[test]
    fn parameters_are_checked_with_their_field() {
        let field = |query: &str| match ListParams::parse(query, &[]) {
            Ok(_) => None,
            Err(error) => error.details.get("field").and_then(|field| field.as_str()).map(str::to_owned),
        };
        assert_eq!(field("limit=0").as_deref(), Some("limit"));
        assert_eq!(field("limit=1001").as_deref(), Some("limit"));
        assert_eq!(field("limit=1000"), None);
        assert_eq!(field("cursor=%%%").as_deref(), Some("cursor"));
        assert_eq!(field("selector=%3Dprod").as_deref(), Some("selector"));
        assert_eq!(field("attr=noequals").as_deref(), Some("attr"));
        assert_eq!(field("attr=a%3D1&attr=b%3D2"), None);
        assert_eq!(field("sort=-bogus").as_deref(), Some("sort"));
        assert_eq!(field("limit=1&limit=2").as_deref(), Some("limit"));
        assert_eq!(field("colour=red").as_deref(), Some("colour"));
        assert_eq!(field("status=&mode="), None);
    }

    use proptest::prelude::*;

    use crate::model::labels::Labels;

    /// A collector as the generator describes it: name, status, env label, mode, last_seen_at, created_at.
    type Described = (String, CollectorStatus, Option<&'static str>, CollectorMode, Option<u64>, u64);

    fn collector() -> impl Strategy<Value = Described> {
        (
            "[aS]{0,2}-?[0-9]{0,3}",
            proptest::sample::select(STATUS_ORDER.to_vec()),
            proptest::sample::select(vec![None, Some("prod"), Some("dev")]),
            proptest::sample::select(vec![CollectorMode::AlloyRemotecfg, CollectorMode::Opamp]),
            proptest::option::of(0u64..3),
            0u64..3,
        )
    }

    fn record(number: usize, described: &Described) -> CollectorRecord {
        let (name, status, env, mode, last_seen_at, created_at) = described.clone();
        let mut record = CollectorRecord::new(
            format!("col_{number:02}"),
            name,
            mode,
            BTreeMap::new(),
            UnixMillis(created_at),
        );
        record.status = status;
        record.last_seen_at = last_seen_at.map(UnixMillis);
        record.labels = env.map(|env| Labels::from([("env".to_owned(), env.to_owned())])).unwrap_or_default();
        record
    }

    /// A replica of the described collectors (names made unique, as `apply` keeps them).
    fn fleet(described: &[Described]) -> FleetState {
        let mut fleet = FleetState::default();
        let mut names = std::collections::HashSet::new();
        for (number, described) in described.iter().enumerate() {
            let record = record(number, described);
            if names.insert(record.name.clone()) {
                fleet.collectors.insert(record.id.clone(), Box::new(record));
            }
        }
        fleet.rebuild_indexes();
        fleet
    }

    fn ids<'a>(items: &[&'a CollectorRecord]) -> Vec<&'a str> {
        items.iter().map(|record| record.id.as_str()).collect()
    }

    proptest! {
        /// The index's selection is the scan's, page by page, for every sort, filter and cursor (one
        /// of the fleet's, or of a collector that is not there).
        #[test]
        fn the_indexed_selection_equals_the_scan(
            described in proptest::collection::vec(collector(), 0..24),
            sort in proptest::sample::select(SORT_NAMES.iter().flat_map(|(name, _)| [name.to_string(), format!("-{name}")]).collect::<Vec<_>>()),
            filters in proptest::sample::subsequence(vec!["status=connected", "q=1", "mode=opamp"], 0..3),
            selector in proptest::sample::select(vec!["", "&selector=env%3Dprod", "&selector=env", "&selector=!env"]),
            limit in proptest::option::of(1usize..6),
            cursor_at in proptest::option::of(0usize..30),
            phantom_cursor in collector(),
            status_filter in any::<bool>(),
        ) {
            let fleet = fleet(&described);
            let mut query = format!("sort={sort}{selector}");
            for filter in &filters {
                query.push('&');
                query.push_str(filter);
            }
            if let Some(limit) = limit {
                query.push_str(&format!("&limit={limit}"));
            }
            let order = SortOrder::parse(&sort).expect("sort");
            if let Some(at) = cursor_at {
                let records: Vec<&CollectorRecord> = fleet.collector_records().collect();
                let phantom = record(at, &phantom_cursor);
                let cursor = records.get(at).copied().unwrap_or(&phantom);
                query.push_str(&format!("&cursor={}", Cursor::after(order, cursor)));
            }
            // Walk every page from there, comparing each.
            loop {
                let params = ListParams::parse(&query, &[]).expect("params");
                let scanned = select(fleet.collector_records(), &params, status_filter);
                let indexed = select_in(&fleet, &params, status_filter);
                prop_assert_eq!(ids(&indexed.items), ids(&scanned.items), "{}", query);
                prop_assert_eq!(
                    (indexed.total, indexed.more, indexed.status_counts),
                    (scanned.total, scanned.more, scanned.status_counts),
                    "{}", query
                );
                let Some(last) = indexed.items.last().filter(|_| indexed.more) else { break };
                let next = Cursor::after(order, last);
                query = match query.split_once("&cursor=") {
                    Some((start, _)) => format!("{start}&cursor={next}"),
                    None => format!("{query}&cursor={next}"),
                };
            }
        }
    }
}
