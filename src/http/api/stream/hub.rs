//! The node-wide side of the live streams: how many are open, and the one sampler of the collectors
//! list that every list stream shares.
//!
//! - **Caps.** At most `http.max_streams_per_principal` streams per user or service account and
//!   `http.max_streams` per node; beyond them the stream is refused with 429 and `Retry-After`. A
//!   slot is held by the stream's task and released when the stream ends, however it ends.
//! - **One sampler, windows per stream.** Each list stream follows a window of the list: the ids the
//!   UI shows (`?ids=`), or the page its list parameters select. Once per [`SAMPLE_INTERVAL`], and only
//!   while a list stream is open, the one sampler works out every stream's window and total (one scan
//!   of the replica per distinct set of parameters, reused while the replica's applied index stays),
//!   gathers the live state of the union of the windows' collectors once, and serializes each of
//!   those collectors once; each stream then sends only what changed in its window. So the work per
//!   tick grows with the collectors on screen, not with the fleet, and a hundred tabs on the same
//!   page cost what one does (the scans excepted, which are by reference and cached).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::HttpSettings;
use crate::error::ApiError;
use crate::http::api::collectors_list::{select, views_of, ListParams};
use crate::http::principal::{Principal, PrincipalKind};
use crate::http::AppState;

/// How often a stream looks for changes.
pub(super) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// One SSE message; `data` must be a single line (compact JSON is).
pub(super) fn sse_message(event: &str, id: Option<u64>, data: &str) -> Bytes {
    let mut message = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        message.push_str(&format!("id: {id}\n"));
    }
    message.push_str(&format!("event: {event}\ndata: {data}\n\n"));
    Bytes::from(message)
}

/// What one list stream follows: the list's parameters, and the ids on screen (else the page the
/// parameters select).
pub struct ListWindowSpec {
    pub params: ListParams,
    pub ids: Option<Vec<String>>,
}

impl ListWindowSpec {
    fn key(&self) -> String {
        format!(
            "{}|{}",
            self.params.canonical(),
            self.ids.as_deref().map(|ids| ids.join(",")).unwrap_or_default()
        )
    }
}

/// One stream's window in a sample.
#[derive(Clone, Default)]
pub struct ListWindow {
    /// The window's collectors that exist, in order.
    pub ids: Vec<String>,
    /// How many collectors match the parameters' filters (replicated status).
    pub total: usize,
}

/// One tick's shared result: every open stream's window, and each watched collector's view as JSON.
#[derive(Default)]
pub struct ListSample {
    pub windows: HashMap<u64, ListWindow>,
    pub views: HashMap<String, Arc<str>>,
}

fn window_of(state: &AppState, spec: &ListWindowSpec) -> ListWindow {
    let replica = state.raft.state();
    let collectors = &replica.fleet.collectors;
    match &spec.ids {
        Some(ids) => ListWindow {
            ids: ids.iter().filter(|id| collectors.contains_key(id.as_str())).cloned().collect(),
            total: collectors.values().filter(|record| spec.params.filter.matches(record)).count(),
        },
        None => {
            let selection = select(replica.fleet.collector_records(), &spec.params, true);
            ListWindow {
                ids: selection.items.iter().map(|record| record.id.clone()).collect(),
                total: selection.total,
            }
        }
    }
}

/// What a refused stream is told to wait before reconnecting.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct StreamHub {
    max_per_principal: usize,
    max_total: usize,
    open: Arc<Mutex<OpenStreams>>,
    list: watch::Sender<Option<Arc<ListSample>>>,
    list_sampler_running: Arc<AtomicBool>,
    interests: Arc<Mutex<Interests>>,
}

#[derive(Default)]
struct Interests {
    next_id: u64,
    open: HashMap<u64, Arc<ListWindowSpec>>,
}

/// A list stream's registration with the sampler; dropping it ends the interest.
pub struct ListInterest {
    pub id: u64,
    interests: Arc<Mutex<Interests>>,
}

impl Drop for ListInterest {
    fn drop(&mut self) {
        self.interests.lock().open.remove(&self.id);
    }
}

#[derive(Default)]
struct OpenStreams {
    total: usize,
    per_principal: HashMap<String, usize>,
}

/// One open stream; dropping it frees the place.
pub struct StreamSlot {
    open: Arc<Mutex<OpenStreams>>,
    principal: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_principal.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.per_principal.remove(&self.principal);
            }
        }
    }
}

impl StreamHub {
    pub fn new(settings: &HttpSettings) -> StreamHub {
        StreamHub {
            max_per_principal: settings.max_streams_per_principal,
            max_total: settings.max_streams,
            open: Arc::default(),
            list: watch::Sender::new(None),
            list_sampler_running: Arc::default(),
            interests: Arc::default(),
        }
    }

    /// A place for one more stream of `principal`, or 429.
    pub fn admit(&self, principal: &Principal) -> Result<StreamSlot, ApiError> {
        let kind = match principal.kind {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
        };
        let key = format!("{kind}:{}", principal.id);
        let mut open = self.open.lock();
        if open.total >= self.max_total {
            return Err(ApiError::too_many_requests(
                "this node serves as many live streams as it may; retry later",
                STREAM_RETRY_AFTER,
            ));
        }
        let count = open.per_principal.entry(key.clone()).or_insert(0);
        if *count >= self.max_per_principal {
            return Err(ApiError::too_many_requests(
                "too many live streams open for this account; close another tab or retry later",
                STREAM_RETRY_AFTER,
            ));
        }
        *count += 1;
        open.total += 1;
        Ok(StreamSlot { open: self.open.clone(), principal: key })
    }

    /// Registers a list stream's window with the shared sampler (started on this worker if none
    /// runs); the receiver sees every tick's [`ListSample`] (`None` until the first one).
    pub fn subscribe_list(
        &self,
        state: web::Data<AppState>,
        spec: ListWindowSpec,
    ) -> (watch::Receiver<Option<Arc<ListSample>>>, ListInterest) {
        let id = {
            let mut interests = self.interests.lock();
            interests.next_id += 1;
            let id = interests.next_id;
            interests.open.insert(id, Arc::new(spec));
            id
        };
        let receiver = self.list.subscribe();
        if !self.list_sampler_running.swap(true, Ordering::AcqRel) {
            let sender = self.list.clone();
            let running = RunningFlag(self.list_sampler_running.clone());
            actix_web::rt::spawn(sample_list(state, sender, self.interests.clone(), running));
        }
        (receiver, ListInterest { id, interests: self.interests.clone() })
    }
}

/// Clears the "sampler running" flag when the sampler's task ends (its worker stopped), so the next
/// subscriber starts a new one.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn sample_list(
    state: web::Data<AppState>,
    sender: watch::Sender<Option<Arc<ListSample>>>,
    interests: Arc<Mutex<Interests>>,
    _running: RunningFlag,
) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Windows by their parameters, valid while the replica stays at the index they were taken at.
    let mut cached: HashMap<String, (Option<openraft::LogId<u64>>, ListWindow)> = HashMap::new();
    loop {
        ticks.tick().await;
        let open: Vec<(u64, Arc<ListWindowSpec>)> =
            interests.lock().open.iter().map(|(id, spec)| (*id, spec.clone())).collect();
        if open.is_empty() || sender.receiver_count() == 0 {
            // Nobody listens: no work, and the next listener waits for a fresh sample.
            cached.clear();
            if sender.borrow().is_some() {
                sender.send_replace(None);
            }
            continue;
        }
        let applied = state.raft.state().last_applied;
        let mut windows = HashMap::with_capacity(open.len());
        let mut fresh = HashMap::new();
        for (id, spec) in &open {
            let key = spec.key();
            let window = match fresh.get(&key).or_else(|| cached.get(&key).filter(|(at, _)| *at == applied)) {
                Some((_, window)) => window.clone(),
                None => window_of(&state, spec),
            };
            fresh.insert(key, (applied, window.clone()));
            windows.insert(*id, window);
        }
        cached = fresh;
        let mut watched: Vec<String> =
            windows.values().flat_map(|window| window.ids.iter().cloned()).collect();
        watched.sort_unstable();
        watched.dedup();
        let views = views_of(&state, watched, None)
            .await
            .into_iter()
            .map(|view| (view.id().to_owned(), Arc::from(serde_json::to_string(&view).unwrap_or_default())))
            .collect();
        sender.send_replace(Some(Arc::new(ListSample { windows, views })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn principal(id: &str) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            id: id.to_owned(),
            name: id.to_owned(),
            role: Role::Viewer,
            session_hash: None,
        }
    }

    #[test]
    fn streams_are_capped_per_principal_and_per_node_and_released_on_drop() {
        let hub = StreamHub::new(&HttpSettings {
            max_streams_per_principal: 2,
            max_streams: 3,
            ..HttpSettings::default()
        });
        let first = hub.admit(&principal("a")).expect("a 1");
        let _second = hub.admit(&principal("a")).expect("a 2");
        assert!(hub.admit(&principal("a")).is_err(), "a's third");
        let _third = hub.admit(&principal("b")).expect("b 1");
        assert!(hub.admit(&principal("b")).is_err(), "node full");
        drop(first);
        hub.admit(&principal("b")).expect("a place came back");
    }
}
