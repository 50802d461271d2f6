//! The Connect unary protocol (connectrpc.com/docs/protocol), hand-written on actix-web + prost.
//!
//! Requests: POST with `application/proto` or `application/json` (charset parameters allowed), optional
//! `Content-Encoding: gzip`; or GET (side-effect-free methods only) with `encoding`, `message`,
//! `base64` and `compression` query parameters. `Connect-Protocol-Version` is accepted but not
//! required (Alloy's GET form never sends it). Responses use the request's codec and are gzipped when
//! the client accepts it. Errors are the Connect JSON envelope `{"code","message"}` with the HTTP
//! status of the code table in `crate::error`.

use std::collections::HashMap;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::body::{self, ContentEncoding};
use crate::error::{ApiError, ErrorCode};

/// Responses smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

impl Codec {
    fn from_name(name: &str) -> Option<Codec> {
        match name {
            "proto" => Some(Codec::Proto),
            "json" => Some(Codec::Json),
            _ => None,
        }
    }

    fn from_content_type(content_type: &str) -> Option<Codec> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        media_type.strip_prefix("application/").and_then(Codec::from_name)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Proto => "application/proto",
            Codec::Json => "application/json",
        }
    }
}

/// A decoded (inflated) unary request message, not yet parsed.
pub struct UnaryRequest {
    pub codec: Codec,
    pub accepts_gzip: bool,
    message: Vec<u8>,
}

/// An error rendered as the Connect JSON envelope.
#[derive(Debug)]
pub struct ConnectError(pub ApiError);

impl From<ApiError> for ConnectError {
    fn from(error: ApiError) -> Self {
        ConnectError(error)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl ResponseError for ConnectError {
    fn status_code(&self) -> StatusCode {
        self.0.code.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::json!({ "code": self.0.code.connect_code(), "message": self.0.message });
        let mut response = HttpResponse::build(self.status_code());
        if self.0.code == ErrorCode::UnsupportedMediaType {
            response.insert_header(("Accept-Post", "application/proto, application/json"));
        }
        if let Some(seconds) = self.0.retry_after_seconds() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.content_type("application/json").body(body.to_string())
    }
}

/// Reads a unary request in either HTTP form. `get_allowed` is true only for side-effect-free methods.
pub async fn read_unary(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    get_allowed: bool,
) -> Result<UnaryRequest, ApiError> {
    let accepts_gzip = body::accepts_gzip(request);
    match *request.method() {
        Method::POST => {
            let content_type =
                request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
            let codec = content_type.and_then(Codec::from_content_type).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "unsupported content type {:?}; use application/proto or application/json",
                        content_type.unwrap_or("")
                    ),
                )
            })?;
            let encoding = ContentEncoding::parse(
                request.headers().get(header::CONTENT_ENCODING).and_then(|value| value.to_str().ok()),
            )?;
            let raw = body::read_limited(request, payload, limit).await?;
            let message = body::decode(raw, encoding, limit)?;
            Ok(UnaryRequest { codec, accepts_gzip, message })
        }
        Method::GET if get_allowed => {
            let query = web::Query::<HashMap<String, String>>::from_query(request.query_string()).map_err(
                |error| ApiError::new(ErrorCode::InvalidArgument, format!("invalid query string: {error}")),
            )?;
            let encoding = query.get("encoding").map(String::as_str).unwrap_or_default();
            let codec = Codec::from_name(encoding).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("unsupported encoding {encoding:?}; use proto or json"),
                )
            })?;
            let text = query.get("message").ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidArgument, "missing message query parameter")
            })?;
            let raw = if query.get("base64").map(String::as_str) == Some("1") {
                decode_base64(text)?
            } else {
                text.as_bytes().to_vec()
            };
            if raw.len() > limit {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "message exceeds the request size limit",
                ));
            }
            let encoding = ContentEncoding::parse(query.get("compression").map(String::as_str))?;
            let message = body::decode(raw, encoding, limit)?;
            Ok(UnaryRequest { codec, accepts_gzip, message })
        }
        _ => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {} not allowed", request.method()),
        )),
    }
}

/// URL-safe base64 per the protocol; padding and the standard alphabet are tolerated.
fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    let unpadded = text.trim_end_matches('=');
    URL_SAFE_NO_PAD.decode(unpadded).or_else(|_| STANDARD_NO_PAD.decode(unpadded)).map_err(|error| {
        ApiError::new(ErrorCode::InvalidArgument, format!("message is not valid base64: {error}"))
    })
}

impl UnaryRequest {
    /// Parses the message. Unknown fields are ignored in both codecs (forward compatibility).
    pub fn decode<M: prost::Message + Default + DeserializeOwned>(&self) -> Result<M, ApiError> {
        match self.codec {
            Codec::Proto => M::decode(self.message.as_slice()).map_err(|error| {
                ApiError::new(ErrorCode::InvalidArgument, format!("malformed protobuf message: {error}"))
            }),
            Codec::Json if self.message.is_empty() => Ok(M::default()),
            Codec::Json => serde_json::from_slice(&self.message).map_err(|error| {
                ApiError::new(ErrorCode::InvalidArgument, format!("malformed JSON message: {error}"))
            }),
        }
    }

    /// A 200 response carrying `message` in the request's codec.
    pub fn respond<M: prost::Message + Serialize>(&self, message: &M) -> Result<HttpResponse, ApiError> {
        let encoded = match self.codec {
            Codec::Proto => message.encode_to_vec(),
            Codec::Json => serde_json::to_vec(message)
                .map_err(|error| ApiError::internal("encode connect response", error))?,
        };
        let mut response = HttpResponse::Ok();
        response.content_type(self.codec.content_type());
        if self.accepts_gzip && encoded.len() >= GZIP_MIN_BYTES {
            let compressed =
                body::gzip(&encoded).map_err(|error| ApiError::internal("gzip connect response", error))?;
            response.insert_header((header::CONTENT_ENCODING, "gzip"));
            return Ok(response.body(compressed));
        }
        Ok(response.body(encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_without_its_owner_lease_answers_unavailable_with_retry_after_in_both_forms() {
        let error = ApiError::from(crate::actors::RegistryError::LeaseExpired);
        assert_eq!(error.code, ErrorCode::Unavailable);
        let rest = ResponseError::error_response(&error);
        assert_eq!(rest.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(rest.headers().get(header::RETRY_AFTER).map(|value| value.as_bytes()), Some(&b"1"[..]));
        let connect = ConnectError(error).error_response();
        assert_eq!(connect.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(connect.headers().get(header::RETRY_AFTER).map(|value| value.as_bytes()), Some(&b"1"[..]));
    }

    #[test]
    fn content_types_with_parameters_select_the_codec() {
        assert_eq!(Codec::from_content_type("application/proto"), Some(Codec::Proto));
        assert_eq!(Codec::from_content_type("application/json; charset=utf-8"), Some(Codec::Json));
        assert_eq!(Codec::from_content_type("Application/JSON"), Some(Codec::Json));
        assert_eq!(Codec::from_content_type("application/grpc"), None);
        assert_eq!(Codec::from_content_type("text/plain"), None);
    }

    #[test]
    fn base64_accepts_url_safe_padded_and_standard_forms() {
        assert_eq!(decode_base64("CgZob3N0LTE").expect("unpadded"), b"\n\x06host-1");
        assert_eq!(decode_base64("CgZob3N0LTE=").expect("padded"), b"\n\x06host-1");
        assert_eq!(decode_base64("-_8").expect("url-safe"), decode_base64("+/8").expect("standard"));
        assert!(decode_base64("!!!").is_err());
    }
}
