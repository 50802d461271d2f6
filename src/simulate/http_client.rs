//! `SimHttpClient`: the simulator's calls on the wire, as Alloy makes them.
//!
//! Connect unary over HTTP/1.1 (Alloy speaks h2 only through TLS ALPN): POST, `Content-Type:
//! application/proto`, `Connect-Protocol-Version: 1`, `Accept-Encoding: gzip`, uncompressed requests,
//! `Authorization: Bearer <collector token>`. own_metrics pushes are OTLP/HTTP protobuf to
//! `/v1/metrics` with the same token. The OpAMP agents of `--opamp-push` post their messages to
//! `/v1/opamp` (plain-HTTP transport) and push their own metrics where the server told them. One
//! shared client: its pool holds at most as many connections as the caller lets calls run at once.

use std::io::Read as _;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE,
};

use super::own_metrics::Compression;
use crate::proto::collector::v1 as pb;
use crate::proto::opamp::v1 as opamp_pb;

pub const SERVICE_PATH: &str = "/collector.v1.CollectorService";
pub const OTLP_METRICS_PATH: &str = "/v1/metrics";

/// Why a call failed; [`CallError::reason`] is the stable label counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("http status {status}: {message}")]
    Status { status: u16, message: String },
    #[error("request timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("the server rejected {rejected} data points: {message}")]
    PartialSuccess { rejected: i64, message: String },
}

impl CallError {
    pub fn reason(&self) -> String {
        match self {
            CallError::Status { status, .. } => format!("http_{status}"),
            CallError::Timeout => "timeout".to_owned(),
            CallError::Connect(_) => "connect".to_owned(),
            CallError::Transport(_) => "transport".to_owned(),
            CallError::Decode(_) => "decode".to_owned(),
            CallError::PartialSuccess { .. } => "partial_success".to_owned(),
        }
    }

    /// Whether a load balancer would send the call to another backend: the connection was refused or
    /// closed without an answer, or the node answered 503 (not ready, owner down). A timeout is not
    /// retried: the node may have acted on the call.
    pub fn is_retried_by_load_balancers(&self) -> bool {
        match self {
            CallError::Connect(_) | CallError::Transport(_) => true,
            CallError::Status { status, .. } => *status == 503,
            CallError::Timeout | CallError::Decode(_) | CallError::PartialSuccess { .. } => false,
        }
    }

    pub fn from_reqwest(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            CallError::Timeout
        } else if error.is_connect() {
            CallError::Connect(error.to_string())
        } else {
            CallError::Transport(error.to_string())
        }
    }
}

#[derive(Clone)]
pub struct SimHttpClient {
    http: reqwest::Client,
}

impl SimHttpClient {
    /// `max_connections` bounds idle connections kept per server; callers bound calls in flight.
    pub fn new(max_connections: usize, timeout: Duration) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let user_agent =
            format!("Alloy/{} (linux; linkmesh-simulate)", super::alloy_collector::SIMULATED_ALLOY_VERSION);
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .default_headers(headers)
            .pool_max_idle_per_host(max_connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()?;
        Ok(SimHttpClient { http })
    }

    /// One Connect unary call with a binary proto body.
    pub async fn connect_call<Response: Message + Default>(
        &self,
        base_url: &str,
        method: &str,
        token: &str,
        request: &impl Message,
    ) -> Result<Response, CallError> {
        let url = format!("{base_url}{SERVICE_PATH}/{method}");
        self.post_proto(url, "application/proto", &[("connect-protocol-version", "1")], token, request).await
    }

    pub async fn get_config(
        &self,
        base_url: &str,
        token: &str,
        request: &pb::GetConfigRequest,
    ) -> Result<pb::GetConfigResponse, CallError> {
        self.connect_call(base_url, "GetConfig", token, request).await
    }

    pub async fn register(
        &self,
        base_url: &str,
        token: &str,
        request: &pb::RegisterCollectorRequest,
    ) -> Result<(), CallError> {
        self.connect_call::<pb::RegisterCollectorResponse>(base_url, "RegisterCollector", token, request)
            .await
            .map(|_| ())
    }

    pub async fn unregister(
        &self,
        base_url: &str,
        token: &str,
        request: &pb::UnregisterCollectorRequest,
    ) -> Result<(), CallError> {
        self.connect_call::<pb::UnregisterCollectorResponse>(base_url, "UnregisterCollector", token, request)
            .await
            .map(|_| ())
    }

    /// One plain-HTTP OpAMP exchange: an `AgentToServer` posted to `/v1/opamp`, its `ServerToAgent`.
    pub async fn opamp_call(
        &self,
        base_url: &str,
        token: &str,
        message: &opamp_pb::AgentToServer,
    ) -> Result<opamp_pb::ServerToAgent, CallError> {
        self.post_proto(format!("{base_url}/v1/opamp"), "application/x-protobuf", &[], token, message).await
    }

    /// POSTs a binary proto body with `token` as the bearer; a 200 answer is decoded as `Response`.
    async fn post_proto<Response: Message + Default>(
        &self,
        url: String,
        content_type: &str,
        headers: &[(&str, &str)],
        token: &str,
        request: &impl Message,
    ) -> Result<Response, CallError> {
        let mut builder = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.body(request.encode_to_vec()).send().await.map_err(CallError::from_reqwest)?;
        let (status, body) = read_body(response).await?;
        if status != 200 {
            return Err(CallError::Status { status, message: error_message(&body) });
        }
        Response::decode(body.as_slice()).map_err(|error| CallError::Decode(error.to_string()))
    }

    /// An OTLP/HTTP metrics export of an already encoded (and maybe gzipped) body.
    pub async fn push_metrics(
        &self,
        base_url: &str,
        token: &str,
        body: bytes::Bytes,
        compression: Compression,
    ) -> Result<(), CallError> {
        let authorization = [(AUTHORIZATION.as_str().to_owned(), format!("Bearer {token}"))];
        self.push_metrics_to(&format!("{base_url}{OTLP_METRICS_PATH}"), &authorization, body, compression)
            .await
    }

    /// The same export to a full URL with the given headers: where an OpAMP agent was told to push its
    /// own metrics (`connection_settings.own_metrics`).
    pub async fn push_metrics_to(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: impl Into<reqwest::Body>,
        compression: Compression,
    ) -> Result<(), CallError> {
        let mut request = self.http.post(url).header(CONTENT_TYPE, "application/x-protobuf").body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if compression == Compression::Gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let response = request.send().await.map_err(CallError::from_reqwest)?;
        let protobuf_reply = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-protobuf"));
        let (status, body) = read_body(response).await?;
        if status != 200 {
            return Err(CallError::Status { status, message: error_message(&body) });
        }
        if protobuf_reply && !body.is_empty() {
            let reply = ExportMetricsServiceResponse::decode(body.as_slice())
                .map_err(|error| CallError::Decode(error.to_string()))?;
            if let Some(partial) = reply.partial_success {
                if partial.rejected_data_points > 0 {
                    return Err(CallError::PartialSuccess {
                        rejected: partial.rejected_data_points,
                        message: partial.error_message,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The status and the (gunzipped) body.
async fn read_body(response: reqwest::Response) -> Result<(u16, Vec<u8>), CallError> {
    let status = response.status().as_u16();
    let gzipped = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("gzip"));
    let bytes = response.bytes().await.map_err(CallError::from_reqwest)?;
    if !gzipped {
        return Ok((status, bytes.to_vec()));
    }
    let mut plain = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(bytes.as_ref())
        .read_to_end(&mut plain)
        .map_err(|error| CallError::Decode(format!("gzip: {error}")))?;
    Ok((status, plain))
}

/// The message of a Connect or REST error envelope, else the start of the body.
pub fn error_message(body: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = value.as_ref().and_then(|value| {
        value["message"].as_str().or_else(|| value["error"]["message"].as_str()).map(str::to_owned)
    });
    message.unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stable_labels() {
        assert_eq!(CallError::Status { status: 404, message: String::new() }.reason(), "http_404");
        assert_eq!(CallError::Timeout.reason(), "timeout");
        assert_eq!(
            CallError::PartialSuccess { rejected: 1, message: String::new() }.reason(),
            "partial_success"
        );
    }

    #[test]
    fn only_refusals_and_unavailability_are_retried_elsewhere() {
        assert!(CallError::Connect("refused".into()).is_retried_by_load_balancers());
        assert!(CallError::Status { status: 503, message: String::new() }.is_retried_by_load_balancers());
        assert!(!CallError::Status { status: 401, message: String::new() }.is_retried_by_load_balancers());
        assert!(!CallError::Timeout.is_retried_by_load_balancers());
    }

    #[test]
    fn error_messages_come_from_connect_and_rest_envelopes() {
        assert_eq!(error_message(br#"{"code":"unauthenticated","message":"bad token"}"#), "bad token");
        assert_eq!(error_message(br#"{"error":{"code":"not_found","message":"nope"}}"#), "nope");
        assert_eq!(error_message(b"404 page"), "404 page");
    }
}
