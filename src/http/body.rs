//! Request bodies with limits enforced before allocation.
//!
//! A declared `Content-Length` over the limit is refused without reading; a streamed body is cut off
//! as soon as it passes the limit; gzip is inflated through a reader capped at the same limit, so a
//! gzip bomb costs at most `limit` bytes of memory. A slow body is cut off by `request_guard.rs`
//! (408 at `http.body_read_timeout`).

use std::io::Read;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value (or a Connect GET `compression` parameter).
    pub fn parse(value: Option<&str>) -> Result<ContentEncoding, ApiError> {
        match value.map(str::trim) {
            None | Some("") | Some("identity") => Ok(ContentEncoding::Identity),
            Some(coding) if coding.eq_ignore_ascii_case("gzip") => Ok(ContentEncoding::Gzip),
            Some(other) => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("unsupported content encoding {other:?}; supported: gzip, identity"),
            )),
        }
    }
}

/// Bytes reserved up front for a body of declared length.
const PREALLOCATE_MAX_BYTES: usize = 64 * 1024;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("request body exceeds the limit of {limit} bytes"))
}

/// Reads the whole body, refusing anything over `limit` bytes.
pub async fn read_limited(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    // Grown as bytes arrive: a declared length is a claim, and preallocating it would let slow
    // clients reserve `limit` bytes each for free.
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(PREALLOCATE_MAX_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            if super::request_guard::is_deadline_error(&error) {
                return super::request_guard::deadline_exceeded();
            }
            ApiError::new(ErrorCode::InvalidArgument, format!("cannot read request body: {error}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decodes `body` per `encoding`, refusing output over `limit` bytes. Every gzip member is inflated
/// (concatenated members are one valid stream); bytes after the last member are an error. Empty bodies are not inflated
/// (the Connect protocol says so, and an empty gzip stream is invalid anyway).
pub fn decode(body: Vec<u8>, encoding: ContentEncoding, limit: usize) -> Result<Vec<u8>, ApiError> {
    if encoding == ContentEncoding::Identity || body.is_empty() {
        return Ok(body);
    }
    let mut inflated = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(body.as_slice()).take(limit as u64 + 1);
    reader
        .read_to_end(&mut inflated)
        .map_err(|error| ApiError::new(ErrorCode::InvalidArgument, format!("invalid gzip body: {error}")))?;
    if inflated.len() > limit {
        return Err(too_large(limit));
    }
    Ok(inflated)
}

/// Gzips a response body.
pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2), flate2::Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// Whether an `Accept-Encoding` header admits gzip (a `q=0` entry refuses it).
pub fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| parameter.replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_under_the_limit() {
        let compressed = gzip(b"hello world").expect("gzip");
        assert_eq!(decode(compressed, ContentEncoding::Gzip, 1024).expect("decode"), b"hello world");
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]).expect("gzip");
        assert!(bomb.len() < 64 * 1024);
        let error = decode(bomb, ContentEncoding::Gzip, 1024 * 1024).expect_err("refused");
        assert_eq!(error.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn corrupt_gzip_is_invalid_argument() {
        let error = decode(b"not gzip".to_vec(), ContentEncoding::Gzip, 1024).expect_err("refused");
        assert_eq!(error.code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn unknown_encodings_are_unsupported() {
        assert_eq!(ContentEncoding::parse(Some("br")).expect_err("br").code, ErrorCode::UnsupportedMediaType);
        assert_eq!(ContentEncoding::parse(Some("GZIP")).expect("gzip"), ContentEncoding::Gzip);
    }
}
