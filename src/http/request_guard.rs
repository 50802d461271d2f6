//! Slow and many request bodies: the middleware every request passes before any handler.
//!
//! A client that sends headers and then trickles its body holds a connection, a task and a buffer
//! for as long as it likes; a few hundred of them cost gigabytes. So, for every request that has a body
//! (and is not a protocol upgrade, whose "body" is the upgraded stream):
//!
//! - **Deadline.** The whole body must arrive within `http.body_read_timeout`; past it the body
//!   reader gets an error, the request is answered 408 and the connection is closed.
//! - **Per-client cap.** One client address (see [`super::client_addr`]) may be sending at most
//!   `http.max_body_reads_per_client` bodies at once; the next is answered 429 at once, before a
//!   byte of its body is read. A slot is released as soon as its body has been read.
//! - **No draining.** A body the handler did not read (a request refused before its body, such as a
//!   poll with a wrong token) is not drained: the connection is closed after the response instead
//!   (actix-web would otherwise keep reading a chunked body to reuse the connection).
//!
//! The head itself has `http.request_head_timeout` (actix-web's `client_request_timeout`), and idle
//! keep-alive connections are closed after 5 s, so neither an unfinished head nor an idle
//! unauthenticated connection can be held either. The total number of connections
//! (`http.max_connections`) stays large: long-lived collector connections are legitimate.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage as _, ResponseError as _};
use futures_util::Stream;
use parking_lot::Mutex;

use super::client_addr;
use crate::config::HttpSettings;
use crate::error::{ApiError, ErrorCode};

/// What a client over its per-address cap is told to wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The message a body reader sees when the deadline passes; [`is_deadline_error`] recognises it.
const DEADLINE_MESSAGE: &str = "request body not received within http.body_read_timeout";

/// Node-wide state: how many bodies each client address is sending right now.
pub struct RequestGuard {
    body_read_timeout: Duration,
    max_body_reads_per_client: usize,
    reading: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl RequestGuard {
    pub fn new(settings: &HttpSettings) -> RequestGuard {
        RequestGuard {
            body_read_timeout: settings.body_read_timeout,
            max_body_reads_per_client: settings.max_body_reads_per_client,
            reading: Arc::default(),
        }
    }

    fn admit(&self, client: IpAddr) -> Option<ReadSlot> {
        let key = client_addr::limit_key(client);
        let mut reading = self.reading.lock();
        let count = reading.entry(key).or_insert(0);
        if *count >= self.max_body_reads_per_client {
            return None;
        }
        *count += 1;
        Some(ReadSlot { reading: self.reading.clone(), key })
    }
}

/// One body being read by one client address; released when dropped.
struct ReadSlot {
    reading: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        let mut reading = self.reading.lock();
        if let Some(count) = reading.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                reading.remove(&self.key);
            }
        }
    }
}

/// Whether a body reader's error is this middleware's deadline (so adapters can answer 408 in their
/// own protocol's error shape).
pub fn is_deadline_error(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut && io.to_string() == DEADLINE_MESSAGE)
}

pub fn deadline_exceeded() -> ApiError {
    ApiError::new(ErrorCode::RequestTimeout, "request body not received in time; send it faster or smaller")
}

fn has_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    declared.is_some_and(|length| length > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// The middleware (`actix_web::middleware::from_fn`); needs `web::Data<RequestGuard>` registered.
pub async fn guard_request_bodies(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let guard = request.app_data::<web::Data<RequestGuard>>().cloned();
    let Some(guard) = guard.filter(|_| has_body(&request) && !request.head().upgrade()) else {
        return next.call(request).await.map(ServiceResponse::map_into_boxed_body);
    };
    let payload = Rc::new(RefCell::new(request.take_payload()));
    let Some(slot) = guard.admit(client_addr::of(request.request())) else {
        let refused = ApiError::too_many_requests(
            "too many request bodies in flight from this address; retry after the Retry-After delay",
            BUSY_RETRY_AFTER,
        );
        let response = request.into_response(refused.error_response());
        return Ok(keep_unread_body(response, payload));
    };
    let progress = Rc::new(BodyProgress::default());
    let deadline_body = DeadlineBody {
        payload: payload.clone(),
        deadline: Box::pin(tokio::time::sleep(guard.body_read_timeout)),
        progress: progress.clone(),
        slot: Some(slot),
    };
    request.set_payload(Payload::from(Box::pin(deadline_body) as Pin<Box<dyn Stream<Item = _>>>));
    let response = next.call(request).await?.map_into_boxed_body();
    let response = if progress.timed_out.get() && response.status() != deadline_exceeded().code.http_status()
    {
        // Extractors (JSON) report the cut-off body as a generic read error; say what happened.
        let (request, _) = response.into_parts();
        ServiceResponse::new(request, deadline_exceeded().error_response())
    } else {
        response
    };
    if progress.finished.get() {
        Ok(response)
    } else {
        Ok(keep_unread_body(response, payload))
    }
}

/// Keeps the request's unread body alive until the response is sent, so actix-web closes the
/// connection after it rather than draining whatever the client still sends.
fn keep_unread_body(
    response: ServiceResponse<BoxBody>,
    payload: Rc<RefCell<Payload>>,
) -> ServiceResponse<BoxBody> {
    response.map_body(|_, body| BoxBody::new(HoldingBody { body, _payload: payload }))
}

#[derive(Default)]
struct BodyProgress {
    finished: Cell<bool>,
    timed_out: Cell<bool>,
}

/// The request body as handlers see it: the client's, cut off at the deadline.
struct DeadlineBody {
    payload: Rc<RefCell<Payload>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    progress: Rc<BodyProgress>,
    slot: Option<ReadSlot>,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.progress.finished.get() || self.progress.timed_out.get() {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *self.payload.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(None) => {
                self.progress.finished.set(true);
                self.slot = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                self.slot = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.progress.timed_out.set(true);
                self.slot = None;
                let error = std::io::Error::new(std::io::ErrorKind::TimedOut, DEADLINE_MESSAGE);
                Poll::Ready(Some(Err(PayloadError::Io(error))))
            }
        }
    }
}

/// A response body that owns the request's unread body until it has been sent.
struct HoldingBody {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_client_and_released_on_drop() {
        let guard =
            RequestGuard::new(&HttpSettings { max_body_reads_per_client: 2, ..HttpSettings::default() });
        let client: IpAddr = "203.0.113.9".parse().expect("address");
        let first = guard.admit(client).expect("first");
        let _second = guard.admit(client).expect("second");
        assert!(guard.admit(client).is_none(), "third refused");
        assert!(guard.admit("198.51.100.1".parse().expect("address")).is_some(), "others unaffected");
        drop(first);
        assert!(guard.admit(client).is_some(), "released");
    }

    #[test]
    fn the_deadline_error_is_recognisable() {
        let ours = PayloadError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, DEADLINE_MESSAGE));
        assert!(is_deadline_error(&ours));
        assert!(!is_deadline_error(&PayloadError::Incomplete(None)));
    }
}
