//! The node-wide side of the live streams: how many are open, and the one sampler of the collectors
//! list that every list stream shares.
//!
//! - **Caps.** At most `http.max_streams_per_principal` streams per user or service account and
//!   `http.max_streams` per node; beyond them the stream is refused with 429 and `Retry-After`. A
//!   slot is held by the stream's task and released when the stream ends, however it ends.
//! - **One sampler.** The collectors list is computed and serialized once per [`SAMPLE_INTERVAL`] for
//!   all list streams together, and only while at least one is open; each stream forwards the shared
//!   message (a reference-counted buffer) when it changed. Before, every stream rebuilt and
//!   re-serialized the whole list every second, so CPU grew with streams × collectors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::HttpSettings;
use crate::error::ApiError;
use crate::http::api::collectors::{gather_live, CollectorView};
use crate::http::principal::{Principal, PrincipalKind};
use crate::http::AppState;
use crate::model::CollectorRecord;

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

/// Every collector as the list endpoint shows it, sorted by name (computed by [`StreamHub`]'s sampler).
async fn collector_list_json(state: &AppState) -> String {
    let mut records: Vec<CollectorRecord> = state.raft.state().fleet.collectors.values().cloned().collect();
    records.sort_by(|left, right| left.name.cmp(&right.name).then_with(|| left.id.cmp(&right.id)));
    let gathered = gather_live(state, &records).await;
    let views: Vec<CollectorView> =
        records.iter().map(|record| CollectorView::gathered(record, gathered.get(&record.id))).collect();
    serde_json::json!({ "collectors": views }).to_string()
}

/// What a refused stream is told to wait before reconnecting.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(10);

pub struct StreamHub {
    max_per_principal: usize,
    max_total: usize,
    open: Arc<Mutex<OpenStreams>>,
    list: watch::Sender<Option<Bytes>>,
    list_sampler_running: Arc<AtomicBool>,
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

    /// The shared collectors-list message (`None` until the first sample), starting the sampler on
    /// this worker if none runs.
    pub fn subscribe_list(&self, state: web::Data<AppState>) -> watch::Receiver<Option<Bytes>> {
        let receiver = self.list.subscribe();
        if !self.list_sampler_running.swap(true, Ordering::AcqRel) {
            let sender = self.list.clone();
            let running = RunningFlag(self.list_sampler_running.clone());
            actix_web::rt::spawn(sample_list(state, sender, running));
        }
        receiver
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
    sender: watch::Sender<Option<Bytes>>,
    _running: RunningFlag,
) {
    let mut ticks = tokio::time::interval(SAMPLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<String> = None;
    loop {
        ticks.tick().await;
        if sender.receiver_count() == 0 {
            // Nobody listens: no work, and the next listener waits for a fresh sample.
            if last.take().is_some() {
                sender.send_replace(None);
            }
            continue;
        }
        let current = collector_list_json(&state).await;
        if last.as_deref() != Some(current.as_str()) {
            sender.send_replace(Some(sse_message("collectors", None, &current)));
            last = Some(current);
        }
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
