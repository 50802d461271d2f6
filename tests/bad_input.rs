//! Bad input at every door: malformed, oversized, mistyped, unauthenticated and misrouted requests to
//! the Connect service and the REST API are refused with the documented status and error envelope, and
//! change nothing.

mod support;

use support::*;

use std::io::Write as _;

use base64::Engine as _;
use linkmesh::http::api::routes::{Access, ApiRoute, Verb, API_ROUTES};
use prost::Message;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A body the Connect codec cannot parse: field 1, length-delimited, with a truncated length varint.
const MALFORMED_PROTO: [u8; 3] = [0x0a, 0xff, 0xff];

const RPCS: [&str; 3] = ["GetConfig", "RegisterCollector", "UnregisterCollector"];

/// Query parameters of a Connect GET-form call.
type QueryPairs<'a> = &'a [(&'a str, &'a str)];

/// `max_request_body` of [`limited_server`].
const SMALL_LIMIT: usize = 64 * 1024;

/// A server that accepts request bodies of at most [`SMALL_LIMIT`] bytes (top-level keys come before
/// the `[collectors]` table of [`FAST_CONFIG`]).
fn limited_server() -> Server {
    Server::start_with_config(&format!("max_request_body = \"64KiB\"\n{FAST_CONFIG}"))
}

async fn onboarded(server: &Server, name: &str) -> (Api, String, String) {
    let api = Api::admin(server).await;
    let collector_id = api.create_collector(name).await;
    let token = api.mint_token(&collector_id).await;
    (api, collector_id, token)
}

fn rpc(server: &Server, method: Method, name: &str) -> RequestBuilder {
    reqwest::Client::new().request(method, server.url(&format!("/collector.v1.CollectorService/{name}")))
}

/// A POST of `body` as `content_type` to `name`, authenticated with `token`.
fn post_as(server: &Server, name: &str, token: &str, content_type: &str, body: Vec<u8>) -> RequestBuilder {
    rpc(server, Method::POST, name).bearer_auth(token).header(CONTENT_TYPE, content_type).body(body)
}

/// A binary-proto POST of `body` to `name`, authenticated with `token`.
fn proto_post(server: &Server, name: &str, token: &str, body: Vec<u8>) -> RequestBuilder {
    post_as(server, name, token, "application/proto", body)
}

/// Sends a call that must fail; asserts its HTTP status and Connect code and returns the message.
async fn refused(request: RequestBuilder, status: u16, code: &str) -> String {
    let response = request.send().await.expect("connect call");
    assert_eq!(
        response.status().as_u16(),
        status,
        "expected {code}; body: {}",
        response.text().await.unwrap_or_default()
    );
    let (_, actual_code, message) = connect_error(response).await;
    assert_eq!(actual_code, code, "message: {message}");
    message
}

/// The REST error of a failed call: (HTTP status, the `error` object), with the envelope's shape checked.
async fn rest_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: error content type {content_type:?}"
    );
    let body: Value = response.json().await.expect("error envelope is JSON");
    let error = body["error"].clone();
    assert!(error["code"].is_string(), "no error code: {body}");
    assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "no error message: {body}");
    (status, error)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
}

fn gzip_of_zeros(len: usize) -> Vec<u8> {
    let block = vec![0u8; 1 << 20];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..len / block.len() {
        encoder.write_all(&block).expect("gzip");
    }
    encoder.finish().expect("gzip")
}

/// Peak resident memory of a process in bytes (Linux only).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A response read off a raw socket: for requests reqwest cannot make (a declared body that never
/// comes, a chunked body that never ends).
struct RawResponse {
    status: u16,
    body: Vec<u8>,
}

impl RawResponse {
    fn connect_envelope(&self) -> (String, String) {
        let body: Value = serde_json::from_slice(&self.body).expect("error envelope is JSON");
        (
            body["code"].as_str().expect("code").to_owned(),
            body["message"].as_str().expect("message").to_owned(),
        )
    }
}

async fn raw_connection(server: &Server) -> TcpStream {
    TcpStream::connect(server.base_url.trim_start_matches("http://")).await.expect("tcp connect")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Reads one response (head, then a `Content-Length` body), failing after [`WAIT_DEADLINE`].
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let exchange = async {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            let read = stream.read(&mut chunk).await.expect("read response head");
            assert!(read > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&buffer));
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let length: usize = lines
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.trim().parse().expect("content-length"))
            .unwrap_or_else(|| panic!("no content-length in {head:?}"));
        let mut body = buffer.split_off(head_end);
        while body.len() < length {
            let read = stream.read(&mut chunk).await.expect("read response body");
            assert!(read > 0, "connection closed mid-body");
            body.extend_from_slice(&chunk[..read]);
        }
        body.truncate(length);
        RawResponse { status, body }
    };
    tokio::time::timeout(WAIT_DEADLINE, exchange).await.expect("a response within the deadline")
}

fn raw_head(server: &Server, token: &str, framing: &str) -> String {
    format!(
        "POST /collector.v1.CollectorService/GetConfig HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/proto\r\n{framing}\r\n\r\n",
        server.base_url.trim_start_matches("http://")
    )
}

// ---- Connect: codecs and content types

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "garbled").await;
    for name in RPCS {
        let message =
            refused(proto_post(&server, name, &token, MALFORMED_PROTO.to_vec()), 400, "invalid_argument")
                .await;
        assert!(message.contains("malformed protobuf"), "{name}: {message}");
    }
}

#[tokio::test]
async fn unsupported_content_types_are_refused_with_415() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "mistyped").await;
    let body = poll_request("h", "").encode_to_vec();
    for content_type in ["text/plain", "application/grpc", "application/grpc+proto"] {
        let response = rpc(&server, Method::POST, "GetConfig")
            .bearer_auth(&token)
            .header(CONTENT_TYPE, content_type)
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(header(&response, "accept-post"), "application/proto, application/json", "{content_type}");
        let (status, code, message) = connect_error(response).await;
        assert_eq!((status, code.as_str()), (415, "unimplemented"), "{content_type}");
        assert!(message.contains(content_type), "{message}");
    }
    let untyped = rpc(&server, Method::POST, "RegisterCollector").bearer_auth(&token).body(body);
    refused(untyped, 415, "unimplemented").await;
}

#[tokio::test]
async fn malformed_json_is_invalid_argument() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "json-garbled").await;
    for body in [r#"{"id":"h""#, "not json", r#"{"id":42}"#, r#"["h"]"#] {
        let request = rpc(&server, Method::POST, "GetConfig")
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let message = refused(request, 400, "invalid_argument").await;
        assert!(message.contains("malformed JSON"), "{body}: {message}");
    }
}

#[tokio::test]
async fn json_with_unknown_fields_is_accepted_for_forward_compatibility() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "json-future").await;
    let response = rpc(&server, Method::POST, "GetConfig")
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"id":"h","futureField":1,"future_object":{"nested":[true]}}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body: Value = response.json().await.expect("json response");
    assert_eq!(body["hash"].as_str().map(str::len), Some(64), "{body}");
    assert!(body["content"].as_str().is_some_and(|content| content.starts_with("// linkmesh:")));
}

#[tokio::test]
async fn missing_or_oversized_host_id_is_invalid_argument_naming_id() {
    let server = Server::start();
    let (api, collector_id, token) = onboarded(&server, "anonymous").await;
    for name in RPCS {
        // An empty proto message is a message whose every field, `id` included, is unset.
        let message = refused(proto_post(&server, name, &token, Vec::new()), 400, "invalid_argument").await;
        assert!(message.starts_with("id: "), "{name}: {message}");
    }
    let too_long = poll_request(&"h".repeat(257), "").encode_to_vec();
    let message = refused(proto_post(&server, "GetConfig", &token, too_long), 400, "invalid_argument").await;
    assert!(message.starts_with("id: "), "{message}");
    assert_eq!(api.collector(&collector_id).await["status"], "awaiting_connection");
}

// ---- Connect: sizes and compression

#[tokio::test]
async fn oversized_body_is_rejected_before_reading() {
    let server = limited_server();
    let (_api, _collector_id, token) = onboarded(&server, "declared-big").await;
    for declared in [SMALL_LIMIT + 1, 10 << 20] {
        // Declares a body and sends none of it: only a server that refuses on the header alone answers.
        let mut stream = raw_connection(&server).await;
        let head = raw_head(&server, &token, &format!("Content-Length: {declared}"));
        stream.write_all(head.as_bytes()).await.expect("write head");
        let response = read_response(&mut stream).await;
        assert_eq!(response.status, 413, "declared {declared}");
        let (code, message) = response.connect_envelope();
        assert_eq!(code, "resource_exhausted");
        assert!(message.contains(&SMALL_LIMIT.to_string()), "{message}");
    }
    // An ordinary client that sends the whole body gets the same answer.
    let whole = proto_post(&server, "GetConfig", &token, vec![0; SMALL_LIMIT + 1]);
    refused(whole, 413, "resource_exhausted").await;
}

#[tokio::test]
async fn streamed_body_is_cut_off_as_soon_as_it_passes_the_limit() {
    let server = limited_server();
    let (_api, _collector_id, token) = onboarded(&server, "streamed-big").await;
    let mut stream = raw_connection(&server).await;
    let head = raw_head(&server, &token, "Transfer-Encoding: chunked");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // 65 chunks of 1 KiB, one past the limit, and never the terminating chunk: only a server that
    // counts while streaming answers.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    for _ in 0..SMALL_LIMIT / 1024 + 1 {
        stream.write_all(chunk.as_bytes()).await.expect("write chunk");
    }
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413);
    let (code, message) = response.connect_envelope();
    assert_eq!(code, "resource_exhausted");
    assert!(message.contains(&SMALL_LIMIT.to_string()), "{message}");
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_read() {
    let server = limited_server();
    let (_api, _collector_id, token) = onboarded(&server, "at-limit").await;
    // A poll padded to exactly the limit with an unknown length-delimited field 15, which the decoder
    // skips: one key byte, a three-byte length, then the padding.
    let mut body = poll_request("h", "").encode_to_vec();
    let padding = SMALL_LIMIT - body.len() - 4;
    prost::encoding::encode_key(15, prost::encoding::WireType::LengthDelimited, &mut body);
    prost::encoding::encode_varint(padding as u64, &mut body);
    body.resize(SMALL_LIMIT, b'x');
    let response = proto_post(&server, "GetConfig", &token, body).send().await.expect("post");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

#[tokio::test]
async fn gzip_bomb_is_refused_and_the_server_stays_healthy() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "bombed").await;
    let bomb = gzip_of_zeros(100 << 20);
    // Under the default 4 MiB limit compressed, 25 times over it inflated.
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let peak_before = peak_rss(server.pid());

    let request = proto_post(&server, "GetConfig", &token, bomb).header(CONTENT_ENCODING, "gzip");
    let message = refused(request, 413, "resource_exhausted").await;
    assert!(message.contains("limit"), "{message}");

    if let (Some(before), Some(after)) = (peak_before, peak_rss(server.pid())) {
        assert!(
            after < before + (48 << 20),
            "peak memory grew from {before} to {after} bytes: the bomb was inflated past the limit"
        );
    }
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    let config = get_config(&server, &token, &poll_request("h", "")).await;
    assert!(config.content.starts_with("// linkmesh:"));
}

#[tokio::test]
async fn corrupt_gzip_is_invalid_argument() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "corrupt").await;
    let valid = linkmesh::http::body::gzip(&poll_request("h", "").encode_to_vec()).expect("gzip");
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() - 10);
    let mut flipped = valid.clone();
    flipped[12] ^= 0xff;
    for (what, body) in
        [("not gzip", b"this is not gzip".to_vec()), ("truncated", truncated), ("corrupted", flipped)]
    {
        let request = proto_post(&server, "GetConfig", &token, body).header(CONTENT_ENCODING, "gzip");
        let message = refused(request, 400, "invalid_argument").await;
        assert!(message.contains("gzip"), "{what}: {message}");
    }
}

#[tokio::test]
async fn gzip_body_is_inflated_past_its_first_member() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "members").await;
    let first = get_config(&server, &token, &poll_request("h", "")).await;
    // Field 1 (`id`) in the first member, field 3 (`hash`) in the second.
    let encoded = poll_request("h", &first.hash).encode_to_vec();
    let (id_field, hash_field) = encoded.split_at(3);
    let mut body = linkmesh::http::body::gzip(id_field).expect("gzip");
    body.extend(linkmesh::http::body::gzip(hash_field).expect("gzip"));
    let response = proto_post(&server, "GetConfig", &token, body)
        .header(CONTENT_ENCODING, "gzip")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let reply = pb::GetConfigResponse::decode(response.bytes().await.expect("body")).expect("decode");
    assert!(
        reply.not_modified,
        "the hash in the second gzip member was dropped, so the config was sent again"
    );
}

#[tokio::test]
async fn gzip_body_with_trailing_garbage_is_invalid_argument() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "trailing").await;
    let mut body = linkmesh::http::body::gzip(&poll_request("h", "").encode_to_vec()).expect("gzip");
    body.extend_from_slice(b"trailing garbage");
    let request = proto_post(&server, "GetConfig", &token, body).header(CONTENT_ENCODING, "gzip");
    refused(request, 400, "invalid_argument").await;
}

#[tokio::test]
async fn unsupported_content_encoding_is_refused_with_415() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "brotli").await;
    let body = poll_request("h", "").encode_to_vec();
    for coding in ["br", "deflate", "zstd"] {
        let request = proto_post(&server, "GetConfig", &token, body.clone()).header(CONTENT_ENCODING, coding);
        let message = refused(request, 415, "unimplemented").await;
        assert!(message.contains(coding), "{message}");
    }
    let message = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
    let get = rpc(&server, Method::GET, "GetConfig").bearer_auth(&token).query(&[
        ("encoding", "proto"),
        ("base64", "1"),
        ("compression", "br"),
        ("message", message.as_str()),
    ]);
    refused(get, 415, "unimplemented").await;
}

// ---- Connect: routing and the GET form

#[tokio::test]
async fn unknown_rpc_is_unimplemented() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "misrouted").await;
    let body = poll_request("h", "").encode_to_vec();
    let message = refused(proto_post(&server, "Nope", &token, body), 404, "unimplemented").await;
    assert!(message.contains("Nope"), "{message}");
}

#[tokio::test]
async fn unsupported_methods_are_405_with_an_allow_header() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "wrong-verb").await;
    let body = poll_request("h", "").encode_to_vec();
    let put = rpc(&server, Method::PUT, "GetConfig")
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "application/proto")
        .body(body.clone())
        .send()
        .await
        .expect("put");
    assert!(header(&put, "allow").contains("POST"), "{:?}", put.headers());
    assert_eq!(connect_error(put).await.1, "unimplemented");

    // GET is only for side-effect-free methods, even with a well-formed GET-form message.
    let message = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&body);
    for name in ["RegisterCollector", "UnregisterCollector"] {
        for method in [Method::GET, Method::DELETE] {
            let response = rpc(&server, method.clone(), name)
                .bearer_auth(&token)
                .query(&[("encoding", "proto"), ("base64", "1"), ("message", message.as_str())])
                .send()
                .await
                .expect("call");
            assert_eq!(header(&response, "allow"), "POST", "{method} {name}");
            let (status, code, _) = connect_error(response).await;
            assert_eq!((status, code.as_str()), (405, "unimplemented"), "{method} {name}");
        }
    }
}

#[tokio::test]
async fn allow_header_of_get_config_lists_get() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "allow").await;
    let response = rpc(&server, Method::PUT, "GetConfig").bearer_auth(&token).send().await.expect("put");
    assert_eq!(response.status(), 405);
    let allow = header(&response, "allow");
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    assert!(methods.contains(&"GET") && methods.contains(&"POST"), "allow: {allow:?}");
}

#[tokio::test]
async fn get_form_errors_are_refused_by_kind() {
    let server = Server::start();
    let (_api, _collector_id, token) = onboarded(&server, "get-form").await;
    let valid =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(poll_request("h", "").encode_to_vec());
    let cases: [(QueryPairs, u16, &str, &str); 5] = [
        (&[("encoding", "proto")], 400, "invalid_argument", "missing message"),
        (
            &[("encoding", "xml"), ("base64", "1"), ("message", valid.as_str())],
            415,
            "unimplemented",
            "\"xml\"",
        ),
        (&[("base64", "1"), ("message", valid.as_str())], 415, "unimplemented", "unsupported encoding"),
        (
            &[("encoding", "proto"), ("base64", "1"), ("message", "!!!not base64!!!")],
            400,
            "invalid_argument",
            "base64",
        ),
        (&[("encoding", "json"), ("message", "{\"id\":")], 400, "invalid_argument", "malformed JSON"),
    ];
    for (query, status, code, needle) in cases {
        let request = rpc(&server, Method::GET, "GetConfig").bearer_auth(&token).query(query);
        let message = refused(request, status, code).await;
        assert!(message.contains(needle), "{query:?}: {message}");
    }
}

// ---- Connect: authentication

#[tokio::test]
async fn collector_endpoints_take_only_a_collector_bearer_token() {
    let server = Server::start();
    let (api, _collector_id, token) = onboarded(&server, "guarded").await;
    let body = poll_request("h", "").encode_to_vec();
    for name in RPCS {
        let anonymous =
            rpc(&server, Method::POST, name).header(CONTENT_TYPE, "application/proto").body(body.clone());
        let message = refused(anonymous, 401, "unauthenticated").await;
        assert!(message.contains("bearer_token"), "{message}");

        let basic = rpc(&server, Method::POST, name)
            .basic_auth("collector", Some(&token))
            .header(CONTENT_TYPE, "application/proto")
            .body(body.clone());
        let message = refused(basic, 401, "unauthenticated").await;
        assert!(message.contains("Bearer") && message.contains("bearer_token"), "{message}");

        // A valid operator token is still not a collector token.
        let message =
            refused(proto_post(&server, name, &api.token, body.clone()), 401, "unauthenticated").await;
        assert!(message.contains("collector token"), "{message}");

        for garbage in ["lmct_garbage", "", &format!("{token}x")] {
            refused(proto_post(&server, name, garbage, body.clone()), 401, "unauthenticated").await;
        }
    }
}

#[tokio::test]
async fn collector_token_does_not_open_the_rest_api() {
    let server = Server::start();
    let (_api, collector_id, token) = onboarded(&server, "no-rest").await;
    for path in [
        "/api/v1/collectors".to_owned(),
        format!("/api/v1/collectors/{collector_id}"),
        "/api/v1/auth/me".to_owned(),
    ] {
        let response =
            reqwest::Client::new().get(server.url(&path)).bearer_auth(&token).send().await.expect("get");
        let (status, error) = rest_error(response).await;
        assert_eq!((status, error["code"].as_str()), (401, Some("unauthenticated")), "{path}");
    }
}

// ---- Connect: nothing refused leaves a trace

#[tokio::test]
async fn refused_collector_calls_change_nothing_and_record_no_caller_text() {
    // Dozens of calls back to back with the collector's token, more than its poll bucket holds by default
    // (the bucket has its own tests in `collector_write_bounds.rs`).
    let server =
        Server::start_with_config(&FAST_CONFIG.replace("[collectors]\n", "[collectors]\npoll_burst = 100\n"));
    let (api, collector_id, token) = onboarded(&server, "untouched").await;
    let first = get_config(&server, &token, &poll_request("h", "")).await;
    api.wait_for_event(&collector_id, "config_delivered", 1).await;
    let before = api.collector(&collector_id).await;

    let poll = poll_request("h", &first.hash).encode_to_vec();
    let goodbye = pb::UnregisterCollectorRequest { id: "h".into() }.encode_to_vec();
    let hello = pb::RegisterCollectorRequest { id: "h".into(), name: "h".into(), ..Default::default() }
        .encode_to_vec();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut calls: Vec<(&str, RequestBuilder, u16, &str)> = Vec::new();
    for name in ["RegisterCollector", "UnregisterCollector"] {
        calls.extend([
            (
                "malformed proto",
                proto_post(&server, name, &token, MALFORMED_PROTO.to_vec()),
                400,
                "invalid_argument",
            ),
            ("no id", proto_post(&server, name, &token, Vec::new()), 400, "invalid_argument"),
            ("text/plain", post_as(&server, name, &token, "text/plain", hello.clone()), 415, "unimplemented"),
            (
                "corrupt gzip",
                proto_post(&server, name, &token, b"not gzip".to_vec()).header(CONTENT_ENCODING, "gzip"),
                400,
                "invalid_argument",
            ),
            (
                "brotli",
                proto_post(&server, name, &token, hello.clone()).header(CONTENT_ENCODING, "br"),
                415,
                "unimplemented",
            ),
            (
                "malformed json",
                post_as(&server, name, &token, "application/json", b"{\"id\":".to_vec()),
                400,
                "invalid_argument",
            ),
            (
                "get form",
                rpc(&server, Method::GET, name).bearer_auth(&token).query(&[
                    ("encoding", "proto"),
                    ("base64", "1"),
                    ("message", b64(&hello).as_str()),
                ]),
                405,
                "unimplemented",
            ),
            (
                "put",
                rpc(&server, Method::PUT, name).bearer_auth(&token).body(hello.clone()),
                405,
                "unimplemented",
            ),
        ]);
    }
    calls.extend([
        (
            "unregister, no token",
            rpc(&server, Method::POST, "UnregisterCollector")
                .header(CONTENT_TYPE, "application/proto")
                .body(goodbye.clone()),
            401,
            "unauthenticated",
        ),
        (
            "unregister, basic auth",
            rpc(&server, Method::POST, "UnregisterCollector")
                .basic_auth("h", Some(&token))
                .header(CONTENT_TYPE, "application/proto")
                .body(goodbye.clone()),
            401,
            "unauthenticated",
        ),
        (
            "unregister, operator token",
            proto_post(&server, "UnregisterCollector", &api.token, goodbye.clone()),
            401,
            "unauthenticated",
        ),
        (
            "register, garbage token",
            proto_post(&server, "RegisterCollector", "lmct_garbage", hello.clone()),
            401,
            "unauthenticated",
        ),
        (
            "poll, operator token",
            proto_post(&server, "GetConfig", &api.token, poll.clone()),
            401,
            "unauthenticated",
        ),
        (
            "poll, malformed proto",
            proto_post(&server, "GetConfig", &token, MALFORMED_PROTO.to_vec()),
            400,
            "invalid_argument",
        ),
        ("unknown rpc", proto_post(&server, "Nope", &token, poll.clone()), 404, "unimplemented"),
    ]);
    for (what, request, status, code) in calls {
        let response = request.send().await.expect("call");
        assert_eq!(
            response.status().as_u16(),
            status,
            "{what}: {}",
            response.text().await.unwrap_or_default()
        );
        let (_, actual_code, message) = connect_error(response).await;
        assert_eq!(actual_code, code, "{what}: {message}");
    }

    // Rejected calls named host "h", but only a call with this collector's rotated-out token may be
    // attributed to it (tests/hardening.rs): no caller text becomes an event here.
    // A barrier: this registration's event is written after anything the calls above could have caused.
    register(&server, &token, "h").await;
    let types = api.wait_for_event(&collector_id, "remotecfg_registered", 1).await;
    assert_eq!(
        types,
        ["collector_created", "token_minted", "status_changed", "config_delivered", "remotecfg_registered",]
    );
    let after = api.collector(&collector_id).await;
    assert_eq!(after["status"], "connected");
    assert_eq!(after["host_id"], before["host_id"]);
    assert_eq!(after["token"], before["token"]);
}

// ---- REST: authentication

/// A body that would succeed if the caller were allowed, for the write routes that take one, so that
/// a refusal cannot come from the body instead of the credentials.
fn plausible_body(verb: Verb, path: &str) -> Option<Value> {
    let intruder = |fields: Value| Some(fields);
    match (verb, path) {
        (Verb::Post, "/service-accounts") => intruder(json!({ "name": "intruder", "role": "admin" })),
        (Verb::Post, "/service-accounts/{id}/tokens") => intruder(json!({ "label": "intruder" })),
        (Verb::Post, "/cluster/join-tokens") => intruder(json!({ "uses": 5 })),
        (Verb::Post, "/collectors") => intruder(json!({ "name": "intruder", "mode": "opamp" })),
        (Verb::Patch, "/collectors/{id}") => intruder(json!({ "stability_level": "experimental" })),
        (Verb::Post, "/users") => {
            intruder(json!({ "username": "intruder", "password": "long-enough-password", "role": "admin" }))
        }
        (Verb::Post | Verb::Put, "/pipelines" | "/pipelines/{id}") => {
            intruder(json!({ "name": "intruder", "signals": ["logs"] }))
        }
        (Verb::Post | Verb::Put, "/collectors/{id}/sources" | "/collectors/{id}/sources/{item}") => {
            intruder(json!({ "name": "intruder", "type": "otlp" }))
        }
        (
            Verb::Post | Verb::Put,
            "/collectors/{id}/destinations" | "/collectors/{id}/destinations/{item}",
        ) => intruder(json!({ "name": "intruder", "type": "debug" })),
        (Verb::Post | Verb::Put, "/collectors/{id}/routes" | "/collectors/{id}/routes/{item}") => {
            intruder(json!({ "name": "intruder", "destination_ids": ["dst_x"] }))
        }
        _ => None,
    }
}

/// A route's path with its parameters filled in: `{id}` is `collector_id` under `/collectors` and
/// `service_account_id` under `/service-accounts`; other parameters name nothing that exists.
fn concrete_path(route: &ApiRoute, collector_id: &str, service_account_id: &str) -> String {
    let id = if route.path.starts_with("/service-accounts") { service_account_id } else { collector_id };
    let id = if route.path.starts_with("/pipelines") { "pl_x" } else { id };
    let path = route.full_path().replace("{id}", id).replace("{item}", "itm_x");
    // The diff needs `from`; without it the request is refused for its query, not its route.
    if route.path.ends_with("/config/diff") {
        format!("{path}?from=1")
    } else {
        path
    }
}

fn method_of(verb: Verb) -> Method {
    Method::from_bytes(verb.as_str().as_bytes()).expect("method")
}

#[tokio::test]
async fn every_rest_route_answers_401_to_strangers() {
    let server = Server::start();
    let (api, collector_id, _token) = onboarded(&server, "guarded").await;
    let accounts = api.get("/api/v1/service-accounts").await;
    let service_account_id =
        accounts["service_accounts"][0]["id"].as_str().expect("service account id").to_owned();
    let collectors_before = api.get("/api/v1/collectors").await;
    let events_before = api.event_types(&collector_id).await;

    // Every non-public route of the table, plus an unknown route and an unknown method.
    let mut requests: Vec<(Method, String, Option<Value>)> = API_ROUTES
        .iter()
        .filter(|route| route.access != Access::Public)
        .map(|route| {
            (
                method_of(route.verb),
                concrete_path(route, &collector_id, &service_account_id),
                plausible_body(route.verb, route.path),
            )
        })
        .collect();
    assert!(requests.len() >= 40, "the table lost routes: {}", requests.len());
    requests.push((Method::GET, "/api/v1/nope".into(), None));
    requests.push((Method::PUT, "/api/v1/collectors".into(), None));

    let credentials: [(&str, Option<(reqwest::header::HeaderName, &str)>); 4] = [
        ("no credentials", None),
        ("garbage bearer", Some((AUTHORIZATION, "Bearer lmsat_garbage"))),
        ("non-bearer scheme", Some((AUTHORIZATION, "Token lmsat_garbage"))),
        ("bogus session", Some((COOKIE, "linkmesh_session=lmss_garbage"))),
    ];
    let client = reqwest::Client::new();
    for (method, path, body) in requests {
        for (what, credential) in &credentials {
            let mut request = client.request(method.clone(), server.url(&path));
            if let Some((name, value)) = credential {
                request = request.header(name, *value);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.expect("request");
            let (status, error) = rest_error(response).await;
            assert_eq!(
                (status, error["code"].as_str()),
                (401, Some("unauthenticated")),
                "{method} {path} with {what}: {error}"
            );
        }
    }

    assert_eq!(api.get("/api/v1/collectors").await, collectors_before);
    assert_eq!(api.get("/api/v1/service-accounts").await, accounts);
    assert_eq!(api.event_types(&collector_id).await, events_before);
}

/// The router serves exactly the table: every listed method of every path reaches a handler, and
/// every other method of that path is 405 with the table's methods in `Allow`.
#[tokio::test]
async fn the_router_serves_every_route_of_the_table_and_no_other_method() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    for path in linkmesh::http::api::routes::paths() {
        let allow = linkmesh::http::api::routes::allow_header(path);
        // Parameters that name nothing: handlers answer 404 for the resource, never for the route.
        let url = format!("/api/v1{}", path.replace("{id}", "x_missing").replace("{item}", "x_missing"));
        for verb in Verb::ALL {
            let listed = API_ROUTES.iter().any(|route| route.path == path && route.verb == verb);
            let response = api
                .http
                .request(method_of(verb), server.url(&url))
                .bearer_auth(&api.token)
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let allow_header = header(&response, "allow");
            if listed {
                if status < 400 {
                    continue; // served (an event stream stays open: its body is not read)
                }
                let (_, error) = rest_error(response).await;
                let message = error["message"].as_str().unwrap_or_default();
                assert!(
                    status != 405 && !message.starts_with("no such route"),
                    "{} {url} is in the table but not served: {status} {error}",
                    verb.as_str()
                );
            } else {
                assert_eq!(status, 405, "{} {url} is not in the table but answered {status}", verb.as_str());
                assert_eq!(allow_header, allow, "Allow of {url}");
            }
        }
    }
}

/// Who may do what, written down here independently of the table: access management and the audit
/// log are for admins, pipelines for pipeline engineers and up, every other change for operators and
/// up, and reading (and one's own sign-in, password and sessions) for everyone. Every route of the
/// table is tried with every role.
#[tokio::test]
async fn each_role_is_refused_exactly_the_routes_above_it() {
    fn lowest_role_allowed(verb: Verb, path: &str) -> &'static str {
        if path == "/users/{id}/password" || path == "/users/{id}/sessions" {
            "viewer"
        } else if path.starts_with("/users")
            || path.starts_with("/service-accounts")
            || path == "/audit"
            || path == "/backup"
            || (path.starts_with("/cluster") && verb != Verb::Get)
        {
            "admin"
        } else if path.starts_with("/auth/") || verb == Verb::Get {
            "viewer"
        } else if path.starts_with("/pipelines") {
            "pipeline_engineer"
        } else {
            "operator"
        }
    }
    const ROLES: [&str; 4] = ["viewer", "pipeline_engineer", "operator", "admin"];
    let rank = |role: &str| ROLES.iter().position(|r| *r == role).expect("role");

    let server = Server::start();
    let (admin, _collector_id, _token) = onboarded(&server, "guarded").await;
    let collectors_before = admin.get("/api/v1/collectors").await;
    let mut callers = Vec::new();
    for role in ROLES {
        callers.push((role, Api::with_role(&server, role).await));
    }
    for route in API_ROUTES.iter().filter(|route| route.access != Access::Public) {
        let lowest = lowest_role_allowed(route.verb, route.path);
        assert_eq!(
            route.access.min_role().map(|role| role.as_str()),
            Some(lowest),
            "the table's minimum role for {} {}",
            route.verb.as_str(),
            route.path
        );
        // Ids that name nothing; a body that would work only for those refused, so that an allowed call
        // changes nothing and a refused one is refused for its role alone.
        let path = concrete_path(route, "col_missing", "sa_missing");
        for (role, api) in &callers {
            let refused = rank(role) < rank(lowest);
            let mut request =
                api.http.request(method_of(route.verb), server.url(&path)).bearer_auth(&api.token);
            if let Some(body) = plausible_body(route.verb, route.path).filter(|_| refused) {
                request = request.json(&body);
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            if refused {
                let (_, error) = rest_error(response).await;
                assert_eq!(
                    (status, error["code"].as_str()),
                    (403, Some("permission_denied")),
                    "{role} on {} {path}: {error}",
                    route.verb.as_str()
                );
            } else {
                assert!(
                    status != 401 && status != 403,
                    "{role} on {} {path} was refused: {status}",
                    route.verb.as_str()
                );
            }
        }
    }
    assert_eq!(admin.get("/api/v1/collectors").await, collectors_before);
}

#[tokio::test]
async fn login_refuses_bad_credentials_and_bad_bodies() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let login = || client.post(server.url("/api/v1/auth/login"));
    let cases = [
        (
            "wrong password",
            login().json(&json!({ "username": "admin", "password": "wrong" })),
            401,
            "unauthenticated",
        ),
        (
            "unknown user",
            login().json(&json!({ "username": "nobody", "password": ADMIN_PASSWORD })),
            401,
            "unauthenticated",
        ),
        (
            "malformed json",
            login().header(CONTENT_TYPE, "application/json").body("{\"username\":"),
            400,
            "invalid_argument",
        ),
        (
            "unknown field, right password",
            login().json(&json!({ "username": "admin", "password": ADMIN_PASSWORD, "remember": true })),
            400,
            "invalid_argument",
        ),
        ("missing field", login().json(&json!({ "username": "admin" })), 400, "invalid_argument"),
    ];
    let mut messages = Vec::new();
    for (what, request, status, code) in cases {
        let response = request.send().await.expect("login");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{what}: a refused login set a cookie");
        let (actual_status, error) = rest_error(response).await;
        assert_eq!((actual_status, error["code"].as_str()), (status, Some(code)), "{what}: {error}");
        messages.push(error["message"].clone());
    }
    // Wrong password and unknown user read the same, so names cannot be probed.
    assert_eq!(messages[0], messages[1]);
}

// ---- REST: bad input from an operator

#[tokio::test]
async fn rest_bad_input_is_refused_by_kind() {
    let server = Server::start();
    let (api, collector_id, _token) = onboarded(&server, "rest-input").await;
    let collectors_before = api.get("/api/v1/collectors").await;
    let create = || api.http.post(server.url("/api/v1/collectors")).bearer_auth(&api.token);

    let huge = json!({ "name": "huge", "mode": "opamp", "attributes": { "k": "x".repeat(1 << 20) } });
    let response = create().json(&huge).send().await.expect("post");
    let (status, error) = rest_error(response).await;
    // The REST code of 413 and 415 is invalid_argument (crate::error's table).
    assert_eq!((status, error["code"].as_str()), (413, Some("invalid_argument")), "{error}");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("1048576")));

    let response = create()
        .header(CONTENT_TYPE, "text/plain")
        .body(json!({ "name": "plain", "mode": "opamp" }).to_string())
        .send()
        .await
        .expect("post");
    let (status, error) = rest_error(response).await;
    assert_eq!((status, error["code"].as_str()), (415, Some("invalid_argument")), "{error}");

    for query in ["limit=0", "limit=1001"] {
        let (status, body) = api
            .request(Method::GET, &format!("/api/v1/collectors/{collector_id}/events?{query}"), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument");
        assert_eq!(body["error"]["details"]["field"], "limit", "{query}: {body}");
    }
    let (status, body) =
        api.request(Method::GET, &format!("/api/v1/collectors/{collector_id}/events?limit=many"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{body}");

    assert_eq!(api.get("/api/v1/collectors").await, collectors_before);
}

#[tokio::test]
async fn rest_405_lists_the_allowed_methods() {
    let server = Server::start();
    let api = Api::admin(&server).await;
    let response =
        api.http.put(server.url("/api/v1/collectors")).bearer_auth(&api.token).send().await.expect("put");
    let allow = header(&response, "allow");
    let (status, error) = rest_error(response).await;
    assert_eq!(status, 405, "{error}");
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    assert!(methods.contains(&"GET") && methods.contains(&"POST"), "allow: {allow:?}");
}

#[tokio::test]
async fn login_route_answers_other_methods_with_the_rest_envelope() {
    let server = Server::start();
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let response = reqwest::Client::new()
            .request(method.clone(), server.url("/api/v1/auth/login"))
            .send()
            .await
            .expect("request");
        let (status, error) = rest_error(response).await;
        assert!(matches!(status, 401 | 405), "{method}: {status} {error}");
    }
}
