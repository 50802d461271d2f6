//! OpAMP's WebSocket transport on `/v1/opamp` (spec "WebSocket Transport"): the agent opens a
//! WebSocket (`GET` with `Upgrade: websocket`) and both sides send binary frames, each a `0x00`
//! header then one protobuf message (`opamp/frame.rs`).
//!
//! - **Before the upgrade**, as for a plain-HTTP message: the collector token (401 otherwise, which
//!   the agent's client reports and retries with backoff), the collector's mode, and its call bucket
//!   (429 + `Retry-After`), so a reconnecting agent costs no more than a polling one.
//! - **Each `AgentToServer`** is answered with one `ServerToAgent`, exactly as over plain HTTP
//!   (`opamp.rs`: the collector's actor, on this node or on the owner of its slot), and counts against
//!   the same call bucket; past it, a message with a description, effective config or component list
//!   waits (the connection is not read meanwhile) instead of being refused — agents do not send a
//!   refused message again — and one that only carries status, health or the goodbye goes through:
//!   a supervisor stopping its collector sends a burst of health reports, then its goodbye, and drops
//!   the connection 5 s later. Those have an allowance of their own per connection instead
//!   ([`LIGHT_BURST`] at once, then [`LIGHT_PER_SECOND`]): past it they wait too, so an agent in a
//!   loop (or an attacker holding a token) cannot keep its collector's actor busy answering them.
//! - **One connection is one agent**: a message with another instance uid than the connection's
//!   first is refused (BadRequest); linkmesh never assigns a new uid, and an enrolled connection is
//!   bound to the collector its first message enrolled.
//! - **Push**: every node applies every change, so the node holding the connection hears that the
//!   collector's config changed (`opamp/connections.rs`) and asks the owner what to send; the config
//!   goes out at once instead of at the agent's next heartbeat. An owner whose replica has not applied
//!   the change yet says so, and is asked again shortly.
//! - **Limits and liveness**: a message larger than `max_request_body` closes the connection with
//!   1009 (Message Too Big) as soon as its frame header announces it, before its payload is buffered
//!   (`ws_limit.rs`); a text frame with 1003; a token that stops being current (rotated, or
//!   the collector deleted) with 1008 at the next message or push. Pings are answered; the server
//!   pings every [`PING_EVERY`] so that idle connections survive proxies. A connection that closes
//!   without the agent's goodbye leaves its collector `connected` until its missed heartbeats make it
//!   `stale`, like a remotecfg collector that stops polling. A node that stops closes its
//!   connections with 1001 (Going Away) first, so agents reconnect elsewhere at once instead of
//!   holding the graceful shutdown for `shutdown_timeout`.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{dev, web, FromRequest as _, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session};
use futures_util::Stream;
use prost::Message as _;

use super::collector_auth::{authenticate_agent, AgentCaller, AuthenticatedCollector, EnrollmentCaller};
use super::opamp::{
    ask_owner, bad_request, edge_offers, not_served, require_opamp_mode, server_to_agent, Reached,
    OPAMP_PATH, TOKEN_SETTING,
};
use super::ws_limit::LimitedFrames;
use super::AppState;
use crate::actors::collector_actor::OpampExchange;
use crate::error::{ApiError, ErrorCode};
use crate::model::UnixMillis;
use crate::opamp::{frame, AgentCapabilities, ConnectionWatch, InstanceUid, Notice};
use crate::proto::opamp::v1 as pb;

/// The server pings an idle connection this often (load balancers close silent ones).
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// A push the owner cannot answer yet (its replica is behind, or it is unavailable: a new owner
/// taking its slots over) is asked again after this long, at most [`PUSH_ATTEMPTS`] times; the
/// agent's next message gets the config anyway, and a slot move asks again.
const PUSH_RETRY_AFTER: Duration = Duration::from_millis(100);
const PUSH_ATTEMPTS: u32 = 50;
/// Longest single wait for the call bucket (`wait_for_call_bucket`) before it is asked again.
const MAX_BUCKET_WAIT_SECONDS: u64 = 5;
/// Status-only messages and goodbyes one connection may send at once: a supervisor restarting its
/// collector sends a dozen health reports within milliseconds.
pub const LIGHT_BURST: f64 = 64.0;
/// ...and how many a second after the burst: far above any agent's heartbeat.
pub const LIGHT_PER_SECOND: f64 = 16.0;

/// Both transports on one route: a POST is a plain-HTTP message (`opamp.rs`), a GET the WebSocket
/// upgrade.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::resource(OPAMP_PATH)
            .route(web::post().to(super::opamp::exchange))
            .route(web::get().to(upgrade))
            .default_service(web::to(not_served)),
    );
}

/// `GET /v1/opamp` with `Upgrade: websocket`.
pub async fn upgrade(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if request.headers().get(header::UPGRADE).is_none() {
        return not_served(request).await;
    }
    let (collector, enrolling) = match authenticate_agent(&request, &state, TOKEN_SETTING).await? {
        AgentCaller::Collector(collector) => {
            require_opamp_mode(&state, &collector)?;
            if let Err(refused) = state.registry.admit_call(&collector.collector_id) {
                return Err(refused.into());
            }
            (Some(collector), None)
        }
        // Its collector is known from its first message's instance uid.
        AgentCaller::Enrolling(enrolling) => (None, Some(enrolling)),
    };
    let base_url = super::external_url(&request, &state);
    // The agent's frames pass the size limit before actix buffers them (`ws_limit.rs`).
    let limit = state.config.max_request_body;
    let oversized = Rc::new(Cell::new(false));
    let limited = LimitedFrames::new(payload.into_inner(), limit, oversized.clone());
    let mut limited = dev::Payload::from(Box::pin(limited) as Pin<Box<dyn Stream<Item = _>>>);
    let payload = web::Payload::from_request(&request, &mut limited)
        .await
        .map_err(|error| ApiError::internal("reading the upgraded connection", error))?;
    let (response, session, stream) = actix_ws::handle(&request, payload).map_err(|error| {
        ApiError::new(ErrorCode::InvalidArgument, format!("not a valid WebSocket upgrade: {error}"))
    })?;
    let stream = stream.max_frame_size(limit).aggregate_continuations().max_continuation_size(limit);
    let changes =
        collector.as_ref().map(|collector| state.registry.opamp_connections().watch(&collector.collector_id));
    let connection = Connection {
        client_addr: super::client_addr::of(&request).to_string(),
        state,
        collector,
        enrolling,
        base_url,
        session,
        changes,
        agent: None,
        oversized,
        light: LightAllowance::new(tokio::time::Instant::now()),
    };
    actix_web::rt::spawn(connection.serve(stream));
    Ok(response)
}

/// The WebSocket URL of `/v1/opamp` under `base` (`http…` → `ws…`).
fn websocket_endpoint(base: &str) -> String {
    let base = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    };
    format!("{base}{OPAMP_PATH}")
}

/// The next change notice of the connection's collector; never, while the collector is not known.
async fn next_notice(changes: &mut Option<ConnectionWatch>) -> Notice {
    match changes {
        Some(changes) => changes.next().await,
        None => std::future::pending().await,
    }
}

/// How a connection ends: with a close frame, or because the peer is gone already.
enum Ending {
    Close(CloseReason),
    Gone,
}

fn too_big() -> Ending {
    close(CloseCode::Size, "message larger than this server's max_request_body")
}

fn close(code: CloseCode, description: &str) -> Ending {
    Ending::Close(CloseReason { code, description: Some(description.to_owned()) })
}

enum Event {
    Message(Option<Result<AggregatedMessage, ProtocolError>>),
    Changed,
    Stopping,
    Ping,
}

struct Connection {
    state: web::Data<AppState>,
    /// The collector the agent is; `None` until an enrolling agent's first message named it.
    collector: Option<AuthenticatedCollector>,
    /// The enrollment token the agent presented, if it did.
    enrolling: Option<EnrollmentCaller>,
    /// linkmesh's base URL as the agent should use it (what is offered back to it is under it).
    base_url: String,
    session: Session,
    changes: Option<ConnectionWatch>,
    client_addr: String,
    /// The agent's instance uid and capabilities, from its last message with a valid uid: what a
    /// push asks the owner about.
    agent: Option<(InstanceUid, u64)>,
    /// Set when [`LimitedFrames`] ended the agent's stream at a frame over the limit.
    oversized: Rc<Cell<bool>>,
    /// What is left of the allowance for status-only messages.
    light: LightAllowance,
}

/// A token bucket for one connection's status-only messages ([`LIGHT_BURST`], [`LIGHT_PER_SECOND`]).
/// Taking past the burst runs into debt: the message waits until its token would have come.
#[derive(Debug)]
struct LightAllowance {
    tokens: f64,
    at: tokio::time::Instant,
}

impl LightAllowance {
    fn new(now: tokio::time::Instant) -> LightAllowance {
        LightAllowance { tokens: LIGHT_BURST, at: now }
    }

    /// Takes a token for a message read at `now`: how long the message waits for it.
    fn take(&mut self, now: tokio::time::Instant) -> Duration {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * LIGHT_PER_SECOND;
        self.tokens = (self.tokens + refill).min(LIGHT_BURST) - 1.0;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / LIGHT_PER_SECOND)
        }
    }
}

impl Connection {
    async fn serve(mut self, mut stream: AggregatedMessageStream) {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let ending = loop {
            let event = tokio::select! {
                message = stream.recv() => Event::Message(message),
                notice = next_notice(&mut self.changes) => match notice {
                    Notice::Changed => Event::Changed,
                    Notice::Stopping => Event::Stopping,
                },
                _ = ping.tick() => Event::Ping,
            };
            let step = match event {
                Event::Message(message) => self.on_message(message).await,
                Event::Changed => self.push().await,
                Event::Stopping => Err(close(CloseCode::Away, "this linkmesh node is stopping")),
                Event::Ping => self.session.ping(b"").await.map_err(|_closed| Ending::Gone),
            };
            if let Err(ending) = step {
                break ending;
            }
        };
        if let Ending::Close(reason) = ending {
            let _ = self.session.close(Some(reason)).await;
        }
    }

    async fn on_message(
        &mut self,
        message: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Result<(), Ending> {
        match message {
            None => Err(Ending::Gone),
            Some(Ok(AggregatedMessage::Binary(frame))) => self.on_frame(&frame).await,
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.map_err(|_closed| Ending::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Text(_))) => {
                Err(close(CloseCode::Unsupported, "OpAMP messages are binary frames"))
            }
            // The agent closes (after its goodbye, if any): the close is echoed.
            Some(Ok(AggregatedMessage::Close(reason))) => {
                Err(Ending::Close(reason.unwrap_or_else(|| CloseCode::Normal.into())))
            }
            Some(Err(_)) if self.oversized.get() => Err(too_big()),
            Some(Err(ProtocolError::Overflow)) => Err(too_big()),
            Some(Err(error)) => Err(close(CloseCode::Protocol, &error.to_string())),
        }
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Result<(), Ending> {
        let message = match pb::AgentToServer::decode(frame::payload(frame)) {
            Ok(message) => message,
            Err(error) => {
                return self.send(&bad_request(Vec::new(), format!("malformed AgentToServer: {error}"))).await
            }
        };
        if let Ok(uid) = InstanceUid::from_wire(&message.instance_uid) {
            if let Some((known, _)) = self.agent.filter(|(known, _)| *known != uid) {
                // linkmesh never assigns a new uid (`agent_identification`), and the connection was
                // bound to the agent that spoke first (an enrolled one, to the collector it enrolled).
                let refused = format!(
                    "instance_uid changed within the connection (it was {known}): one connection is one agent; \
                     reconnect to speak for another"
                );
                return self.send(&bad_request(message.instance_uid, refused)).await;
            }
            let capabilities = match (message.capabilities, self.agent) {
                (0, Some((_, known))) => known,
                (reported, _) => reported,
            };
            self.agent = Some((uid, capabilities));
        }
        let instance_uid = message.instance_uid.clone();
        let collector = match (&self.collector, &self.enrolling) {
            (Some(collector), _) => collector.collector_id.clone(),
            (None, Some(enrolling)) => {
                match super::opamp::enrolled_collector(&self.state, enrolling, &message).await {
                    Ok(Ok(collector)) => {
                        let id = collector.collector_id.clone();
                        self.changes = Some(self.state.registry.opamp_connections().watch(&id));
                        self.collector = Some(collector);
                        id
                    }
                    Ok(Err(bad)) => return self.send(&bad).await,
                    Err(error) => {
                        closing(&error)?;
                        return self.send(&refusal(instance_uid, error)).await;
                    }
                }
            }
            (None, None) => return Err(close(CloseCode::Error, "no credentials")),
        };
        if is_light(&message) {
            // Its goodbye and its status and health changes are never held: a supervisor stopping
            // its collector sends a dozen health reports and then its goodbye, and closes the
            // connection (dropping what the server has not read) 5 s later.
            let _ = self.state.registry.admit_call(&collector);
            let wait = self.light.take(tokio::time::Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        } else {
            self.wait_for_call_bucket(&collector).await;
        }
        let config_version = self.config_version();
        let reached = self.reached();
        let Some(authenticated) = self.collector.as_mut() else { return Ok(()) };
        authenticated.config_version = config_version;
        let answered =
            super::opamp::answer(&self.state, authenticated, message, self.client_addr.clone(), &reached)
                .await;
        let reply = match answered {
            Ok(reply) => reply,
            Err(error) => {
                closing(&error)?;
                refusal(instance_uid, error)
            }
        };
        self.send(&reply).await
    }

    /// Holds the message until the collector's call bucket admits it. Over an open connection an
    /// agent's messages are never refused for its rate: opamp-go does not send a refused message
    /// again, so its status, health or goodbye would be lost (a supervisor restarting its collector
    /// sends a dozen health reports within milliseconds). Not reading the connection meanwhile is
    /// the back-pressure: the agent cannot send faster than `polls_per_second` after its burst.
    async fn wait_for_call_bucket(&self, collector_id: &str) {
        while let Err(refused) = self.state.registry.admit_call(collector_id) {
            let seconds = ApiError::from(refused).retry_after_seconds().unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(seconds.clamp(1, MAX_BUCKET_WAIT_SECONDS))).await;
        }
    }

    /// The collector's config changed: whatever the owner has for the agent now.
    async fn push(&mut self) -> Result<(), Ending> {
        let Some((instance_uid, capabilities)) = self.agent else {
            return Ok(()); // nothing heard from the agent yet: its first message is answered
        };
        let reached = self.reached();
        // Asking an owner that is gone can take a while each time: the agent's messages wait meanwhile.
        let give_up = tokio::time::Instant::now() + PUSH_RETRY_AFTER * PUSH_ATTEMPTS;
        for _ in 0..PUSH_ATTEMPTS {
            let config_version = self.config_version();
            let Some(collector) = self.collector.as_mut() else { return Ok(()) };
            collector.config_version = config_version;
            let ask = OpampExchange {
                instance_uid: instance_uid.to_string(),
                sequence_num: 0,
                capabilities,
                description: None,
                effective_config: None,
                remote_status: None,
                config_hash: None,
                disconnect: false,
                at: UnixMillis::now(),
                config_version,
                push: true,
                components: None,
                health: None,
            };
            let reply = match ask_owner(&self.state, collector, ask, self.client_addr.clone()).await {
                Ok(reply) => reply,
                Err(error) if error.code == ErrorCode::Unavailable => {
                    if tokio::time::Instant::now() >= give_up {
                        return Ok(());
                    }
                    tokio::time::sleep(PUSH_RETRY_AFTER).await;
                    continue;
                }
                // Any other refusal: the agent's next message is answered instead, or the token is no
                // longer valid and the connection closes.
                Err(error) => return closing(&error),
            };
            if reply.owner_behind {
                tokio::time::sleep(PUSH_RETRY_AFTER).await;
                continue;
            }
            if reply.offer.is_none() && !reply.report_full_state && !reply.restart {
                return Ok(());
            }
            let offers =
                edge_offers(&self.state, collector, &reply, AgentCapabilities(capabilities), &reached);
            return self.send(&server_to_agent(instance_uid, reply, &offers)).await;
        }
        Ok(())
    }

    fn reached(&self) -> Reached {
        Reached {
            opamp_endpoint: websocket_endpoint(&self.base_url),
            base_url: self.base_url.clone(),
            enrolled: self.enrolling.is_some(),
        }
    }

    /// The collector's config version on this node's replica.
    fn config_version(&self) -> u64 {
        let Some(collector) = &self.collector else { return 0 };
        let state = self.state.raft.state();
        let record = state.fleet.collector(&collector.collector_id);
        record.and_then(|record| record.current_config()).map_or(0, |config| config.version)
    }

    async fn send(&mut self, reply: &pb::ServerToAgent) -> Result<(), Ending> {
        self.session.binary(frame::encode(reply)).await.map_err(|_closed| Ending::Gone)
    }
}

/// A message that only says how the agent is (status, health, heartbeat) or goodbye: no description,
/// effective config or component list for the owner to process.
fn is_light(message: &pb::AgentToServer) -> bool {
    message.agent_disconnect.is_some()
        || (message.agent_description.is_none()
            && message.effective_config.is_none()
            && message
                .available_components
                .as_ref()
                .is_none_or(|components| components.components.is_empty()))
}

/// Refusals that end the connection: the token is no longer good (rotated, or its collector
/// deleted). The agent's client reconnects, and its new upgrade is refused with 401.
fn closing(error: &ApiError) -> Result<(), Ending> {
    match error.code {
        ErrorCode::Unauthenticated | ErrorCode::NotFound => {
            Err(close(CloseCode::Policy, "the collector token is no longer valid"))
        }
        _ => Ok(()),
    }
}

/// Any other refusal as a `ServerErrorResponse`: overload and unavailability are `Unavailable` with
/// the delay to wait (the agent's client reconnects after it), a bad message `BadRequest`.
fn refusal(instance_uid: Vec<u8>, error: ApiError) -> pb::ServerToAgent {
    use pb::ServerErrorResponseType as Type;
    let (kind, retry) = match error.code {
        ErrorCode::ResourceExhausted | ErrorCode::Unavailable => {
            let seconds = error.retry_after_seconds().unwrap_or(1);
            (Type::Unavailable, Some(Duration::from_secs(seconds)))
        }
        ErrorCode::InvalidArgument | ErrorCode::FailedPrecondition | ErrorCode::PayloadTooLarge => {
            (Type::BadRequest, None)
        }
        _ => (Type::Unknown, None),
    };
    let details = retry.map(|retry| {
        pb::server_error_response::Details::RetryInfo(pb::RetryInfo {
            retry_after_nanoseconds: u64::try_from(retry.as_nanos()).unwrap_or(u64::MAX),
        })
    });
    pb::ServerToAgent {
        instance_uid,
        error_response: Some(pb::ServerErrorResponse {
            r#type: kind as i32,
            error_message: error.message,
            details,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_messages_pass_in_a_burst_then_wait_for_their_rate() {
        let start = tokio::time::Instant::now();
        let mut light = LightAllowance::new(start);
        for _ in 0..LIGHT_BURST as usize {
            assert_eq!(light.take(start), Duration::ZERO);
        }
        let per_message = Duration::from_secs_f64(1.0 / LIGHT_PER_SECOND);
        assert_eq!(light.take(start), per_message, "the first past the burst waits for one token");
        assert_eq!(light.take(start), per_message * 2, "the next for two");
        // A second later the debt is paid and sixteen tokens came back, less the two owed.
        let later = start + Duration::from_secs(1);
        for _ in 0..(LIGHT_PER_SECOND as usize - 2) {
            assert_eq!(light.take(later), Duration::ZERO);
        }
        assert_eq!(light.take(later), per_message);
        // Idle long enough, the whole burst is back, and no more.
        let idle = later + Duration::from_secs(3600);
        for _ in 0..LIGHT_BURST as usize {
            assert_eq!(light.take(idle), Duration::ZERO);
        }
        assert!(light.take(idle) > Duration::ZERO);
    }
}
