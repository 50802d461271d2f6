//! Server-sent events for live views (the web UI's collectors list and collector page):
//!
//! - `GET /stream/collectors`: follows a window of the list. It takes the list's parameters
//!   (`selector`, `attr`, `status`, `mode`, `q`, `sort`, `limit`, `cursor`) and `ids` (comma-separated,
//!   at most 1000: the rows on screen). The window is those ids, else the page the parameters select
//!   (`limit` defaults to 1000 here). Event `collectors`, data `{"collectors":[Collector],
//!   "removed":[id],"ids":[id],"total":N}`: on connect every collector of the window; then, whenever
//!   something changed, only the window's collectors whose view changed, the ids that left the window
//!   (deleted, or off the page), the window in order and how many match the filters (replicated
//!   status, as the paged list counts). The UI re-subscribes when its visible rows change.
//! - `GET /stream/collectors/{id}`: event `collector` (the Collector) on connect and on change, and
//!   event `events` (`{"events":[…]}`, oldest first, the `events` endpoint's items) for events newer
//!   than `Last-Event-ID` (or `?after=`); the SSE `id` is the newest event id sent, so a reconnecting
//!   `EventSource` resumes where it stopped. Event `gone` when the collector is deleted.
//!
//! Each stream samples this node's replica and the collector actors every [`SAMPLE_INTERVAL`] and sends
//! only what changed; list streams share one sampler ([`StreamHub`]). Streams are capped per principal
//! and per node (`http.max_streams_per_principal`, `http.max_streams`: 429 beyond). Streams stay authenticated: a session that is signed out or expires ends its
//! stream (event `signed_out`). They also end on SIGTERM/SIGINT, so an open browser tab never holds up
//! a graceful shutdown, and after [`MAX_STREAM_LIFETIME`]; `EventSource` reconnects by itself (`retry`).

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;
// The runtime's clock, like the tick interval it runs beside (and pausable in tests).
use tokio::time::Instant;

mod hub;

pub use hub::StreamHub;
use hub::{sse_message, ListWindowSpec, StreamSlot, SAMPLE_INTERVAL};

use super::collectors::{event_view, gather_live, CollectorView, EventView};
use super::collectors_list::{ListParams, ListQuery};
use super::handler_types::EventStream;
use crate::error::ApiError;
use crate::http::principal::Principal;
use crate::http::AppState;
use crate::model::UnixMillis;

/// A comment line at least this often, so proxies keep the connection and dead clients are noticed.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Streams end after this long and the browser reconnects (and re-authenticates).
const MAX_STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// What a browser waits before reconnecting, in milliseconds.
const RECONNECT_MILLIS: u32 = 1000;
/// Ids a list stream may follow (the list's largest page).
const MAX_STREAM_IDS: usize = super::collectors_list::MAX_PAGE;
/// Events sent at most per message (a collector keeps at most 1000).
const MAX_EVENTS_PER_MESSAGE: usize = 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CollectorStreamQuery {
    after: Option<u64>,
}

fn sse_response(receiver: mpsc::Receiver<Bytes>) -> EventStream {
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    EventStream(
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body),
    )
}

/// Whether the caller may still read: its session (if any) still exists and has not expired.
fn still_signed_in(state: &AppState, principal: &Principal) -> bool {
    let Some(hash) = principal.session_hash else { return true };
    state
        .raft
        .state()
        .fleet
        .sessions
        .get(&hex::encode(hash))
        .is_some_and(|session| session.expires_at > UnixMillis::now())
}

/// Resolves when the process is asked to stop (or never, if signals cannot be watched).
async fn shutdown_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut terminate), Ok(mut interrupt)) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// What a stream sends after one sample, and whether the stream ends after it.
type Step = (Vec<Bytes>, bool);
type StepFuture = Pin<Box<dyn Future<Output = Step>>>;

/// Runs `sample` every [`SAMPLE_INTERVAL`] and forwards what it produces until the client leaves,
/// the session ends, the process stops, or the stream has lived long enough. The task runs on the
/// worker's local executor, so samplers may keep `Rc` memory.
fn spawn_sampler(
    state: web::Data<AppState>,
    principal: Principal,
    slot: StreamSlot,
    mut sample: impl FnMut(web::Data<AppState>) -> StepFuture + 'static,
) -> EventStream {
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(async move {
        // Held for as long as this task runs, however the stream ends.
        let _slot = slot;
        let started = Instant::now();
        if sender.send(Bytes::from(format!("retry: {RECONNECT_MILLIS}\n\n"))).await.is_err() {
            return;
        }
        let mut last_sent = Instant::now();
        let shutdown = shutdown_requested();
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut shutdown => break,
                _ = sender.closed() => break,
            }
            if !still_signed_in(&state, &principal) {
                let _ = sender.send(sse_message("signed_out", None, "{}")).await;
                break;
            }
            let (messages, done) = sample(state.clone()).await;
            for message in messages {
                if sender.send(message).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
            if done || started.elapsed() >= MAX_STREAM_LIFETIME {
                break;
            }
            if last_sent.elapsed() >= HEARTBEAT_INTERVAL {
                if sender.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                    return;
                }
                last_sent = Instant::now();
            }
        }
    });
    sse_response(receiver)
}

/// The list stream's query: the list's parameters and the ids on screen.
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
pub(super) struct ListStreamQuery {
    #[serde(flatten)]
    list: ListQuery,
    /// Comma-separated ids of the rows on screen (at most 1000); without it, the page the other
    /// parameters select.
    ids: Option<String>,
}

/// The list stream's parameters, parsed from the raw query (400 on a bad one).
pub(super) struct ListStreamRequest(ListWindowSpec);

impl actix_web::FromRequest for ListStreamRequest {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(parse_list_stream(request.query_string()).map(ListStreamRequest))
    }
}

impl super::handler_types::DescribeArg for ListStreamRequest {
    fn describe(
        types: &mut super::handler_types::HandlerTypes,
        generators: &mut super::handler_types::Generators,
    ) {
        <web::Query<ListStreamQuery> as super::handler_types::DescribeArg>::describe(types, generators);
    }
}

fn parse_list_stream(query: &str) -> Result<ListWindowSpec, ApiError> {
    let mut params = ListParams::parse(query, &["ids"])?;
    let mut ids = None;
    for (_, value) in std::mem::take(&mut params.extra) {
        if ids.is_some() {
            return Err(ApiError::invalid_field("ids", "given more than once"));
        }
        let list: Vec<String> =
            value.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect();
        if list.len() > MAX_STREAM_IDS {
            return Err(ApiError::invalid_field("ids", format!("at most {MAX_STREAM_IDS} ids")));
        }
        ids = Some(list);
    }
    if params.limit.is_none() {
        params.limit = Some(MAX_STREAM_IDS);
    }
    Ok(ListWindowSpec { params, ids })
}

pub(super) async fn collectors_stream(
    principal: Principal,
    state: web::Data<AppState>,
    hub: web::Data<StreamHub>,
    request: ListStreamRequest,
) -> Result<EventStream, ApiError> {
    let slot = hub.admit(&principal)?;
    let (mut shared, interest) = hub.subscribe_list(state.clone(), request.0);
    let mut window = WindowMemory::default();
    Ok(spawn_sampler(state, principal, slot, move |_state| {
        // The whole registration is moved in (not only its id, as a closure would capture), so the
        // window stays registered exactly as long as the stream lives.
        let interest: &hub::ListInterest = &interest;
        let mut message = None;
        if shared.has_changed().unwrap_or(false) {
            if let Some(sample) = shared.borrow_and_update().as_ref() {
                message = window.changes(sample, interest.id);
            }
        }
        Box::pin(async move { (message.into_iter().collect(), false) })
    }))
}

/// What one list stream's client already has.
#[derive(Default)]
struct WindowMemory {
    started: bool,
    ids: Vec<String>,
    total: usize,
    sent: std::collections::HashMap<String, std::sync::Arc<str>>,
}

impl WindowMemory {
    /// The message for what changed in this stream's window since the last one, if anything did.
    fn changes(&mut self, sample: &hub::ListSample, interest: u64) -> Option<Bytes> {
        let window = sample.windows.get(&interest)?;
        let mut changed = Vec::new();
        let mut sent = std::collections::HashMap::with_capacity(window.ids.len());
        for id in &window.ids {
            let Some(view) = sample.views.get(id) else { continue };
            if self.sent.get(id).is_none_or(|before| before != view) {
                changed.push(view.clone());
            }
            sent.insert(id.clone(), view.clone());
        }
        let removed: Vec<&String> = self.ids.iter().filter(|id| !sent.contains_key(*id)).collect();
        if self.started
            && changed.is_empty()
            && removed.is_empty()
            && self.ids == window.ids
            && self.total == window.total
        {
            return None;
        }
        let mut data = String::from("{\"collectors\":[");
        for (index, view) in changed.iter().enumerate() {
            if index > 0 {
                data.push(',');
            }
            data.push_str(view);
        }
        data.push_str("],\"removed\":");
        data.push_str(&serde_json::to_string(&removed).unwrap_or_default());
        data.push_str(",\"ids\":");
        data.push_str(&serde_json::to_string(&window.ids).unwrap_or_default());
        data.push_str(&format!(",\"total\":{}}}", window.total));
        self.started = true;
        self.ids = window.ids.clone();
        self.total = window.total;
        self.sent = sent;
        Some(sse_message("collectors", None, &data))
    }
}

pub(super) async fn collector_stream(
    principal: Principal,
    request: HttpRequest,
    state: web::Data<AppState>,
    hub: web::Data<StreamHub>,
    path: web::Path<String>,
    query: web::Query<CollectorStreamQuery>,
) -> Result<EventStream, ApiError> {
    let collector_id = path.into_inner();
    if !state.raft.state().fleet.collectors.contains_key(&collector_id) {
        return Err(ApiError::not_found("collector", &collector_id));
    }
    let resume_after = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .or(query.after)
        .unwrap_or(0);
    let slot = hub.admit(&principal)?;
    let sampler = CollectorSampler::new(collector_id, resume_after, principal.clone());
    Ok(spawn_sampler(state, principal, slot, sampler.into_fn()))
}

/// The memory of one collector's stream: what the client already has.
struct CollectorSampler {
    collector_id: String,
    last_event_id: u64,
    last_view: Option<String>,
    /// Whose view it is (the effective config is shown to some roles only).
    principal: Principal,
}

impl CollectorSampler {
    fn new(collector_id: String, last_event_id: u64, principal: Principal) -> Self {
        CollectorSampler { collector_id, last_event_id, last_view: None, principal }
    }

    fn into_fn(self) -> impl FnMut(web::Data<AppState>) -> StepFuture {
        let memory = Rc::new(RefCell::new(self));
        move |state| {
            let memory = memory.clone();
            Box::pin(async move {
                let read = {
                    let applied = state.raft.state();
                    let memory = memory.borrow();
                    applied.fleet.collectors.get(&memory.collector_id).cloned().map(|record| {
                        let events =
                            applied.events_after(&record, memory.last_event_id, MAX_EVENTS_PER_MESSAGE);
                        (record, events)
                    })
                };
                let Some((record, events)) = read else {
                    return (vec![sse_message("gone", None, "{}")], true);
                };
                let gathered = gather_live(&state, std::slice::from_ref(&record)).await;
                let mut memory = memory.borrow_mut();
                let view = CollectorView::gathered(&record, gathered.get(&record.id))
                    .with_effective_config_for(&record, &memory.principal);
                let view = serde_json::to_string(&view).unwrap_or_default();
                let mut messages = Vec::new();
                if memory.last_view.as_deref() != Some(view.as_str()) {
                    messages.push(sse_message("collector", None, &view));
                    memory.last_view = Some(view);
                }
                let events = events.unwrap_or_else(|error| {
                    tracing::warn!(collector_id = %record.id, error = %error, "events could not be read for the stream");
                    Vec::new()
                });
                if let Some(newest) = events.last().map(|event| event.id) {
                    let events: Vec<EventView> = events.iter().map(event_view).collect();
                    let data = serde_json::json!({ "events": events }).to_string();
                    messages.push(sse_message("events", Some(newest), &data));
                    memory.last_event_id = newest;
                }
                (messages, false)
            })
        }
    }
}
