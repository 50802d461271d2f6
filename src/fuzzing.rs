//! The bodies of the fuzz targets in `fuzz/`, one function per target, for the decoders that take
//! bytes from the network.
//!
//! They live in the library so that the cargo-fuzz targets (nightly, libFuzzer) and the replay of the
//! committed seed corpora (`tests/fuzz_corpora.rs`, stable, part of the gate) run the same code and the
//! same assertions. A function must never panic on any input: a panic (a failed assertion included) is
//! a finding. The return value says how far an input got, so the replay can check that its seeds are
//! real inputs rather than noise the decoders reject.

use std::fmt::Debug;
use std::net::IpAddr;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::actors::throughput::ThroughputState;
use crate::http::body::{self, ContentEncoding};
use crate::model::UnixMillis;
use crate::own_metrics::{self, extract};
use crate::proto::collector::v1 as pb;

/// Every remotecfg request Alloy can send, decoded from the same bytes in both Connect codecs (proto
/// and proto3 JSON). What decodes must survive a re-encode unchanged in its codec, and a message read
/// from JSON must survive the proto codec too. Returns how many (message, codec) pairs decoded.
pub fn connect_messages(data: &[u8]) -> usize {
    round_trips::<pb::GetConfigRequest>(data)
        + round_trips::<pb::RegisterCollectorRequest>(data)
        + round_trips::<pb::UnregisterCollectorRequest>(data)
}

fn round_trips<M>(data: &[u8]) -> usize
where
    M: Message + Default + PartialEq + Debug + Serialize + DeserializeOwned,
{
    let mut decoded = 0;
    if let Ok(message) = M::decode(data) {
        decoded += 1;
        let again = M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
        assert_eq!(again, message, "proto re-encode changed the message");
    }
    if let Ok(message) = serde_json::from_slice::<M>(data) {
        decoded += 1;
        // Serializing can refuse what parsing accepted (an enum number with no name); that is an error
        // the encoder reports, not a changed message.
        if let Ok(json) = serde_json::to_vec(&message) {
            let again: M = serde_json::from_slice(&json).expect("re-serialized JSON parses");
            assert_eq!(again, message, "JSON re-encode changed the message");
        }
        let again = M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
        assert_eq!(again, message, "proto encode of a JSON message changed it");
    }
    decoded
}

/// The body limit the `request_body` target runs with (small, so inputs reach it).
pub const REQUEST_BODY_LIMIT: usize = 64 * 1024;

/// A request body as the network delivers it: gzip of any shape inflates within the limit or fails
/// cleanly; identity passes through unchanged; what linkmesh gzips, it inflates back. Returns the
/// inflated length when the bytes were a gzip body within the limit.
pub fn request_body(data: &[u8]) -> Option<usize> {
    let inflated = body::decode(data.to_vec(), ContentEncoding::Gzip, REQUEST_BODY_LIMIT).ok();
    if let Some(inflated) = &inflated {
        assert!(inflated.len() <= REQUEST_BODY_LIMIT, "inflated {} bytes past the limit", inflated.len());
    }
    let identity = body::decode(data.to_vec(), ContentEncoding::Identity, REQUEST_BODY_LIMIT)
        .expect("identity never fails");
    assert_eq!(identity, data);
    if data.len() <= REQUEST_BODY_LIMIT {
        let zipped = body::gzip(data).expect("gzip into memory");
        let unzipped = body::decode(zipped, ContentEncoding::Gzip, REQUEST_BODY_LIMIT)
            .expect("linkmesh's own gzip inflates within the limit");
        assert_eq!(unzipped, data);
    }
    inflated.map(|inflated| inflated.len())
}

/// How far an own_metrics push got: points extracted, rate samples in the windows afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpReach {
    pub points: usize,
    pub rate_samples: usize,
}

/// An own_metrics push: OTLP protobuf or JSON, decoded and turned into per-component counters and rates
/// as the receiver and the collector actor do, then the same push again 30 s later (same values, so
/// the rate math runs on every seed). The server's clock is the push's newest point, so points are
/// not refused as from the future. Every point is accounted for (accepted, out of order or rejected)
/// and no rate is negative or NaN. Returns `None` when the bytes are not a push.
pub fn otlp_metrics(data: &[u8]) -> Option<OtlpReach> {
    let request = ExportMetricsServiceRequest::decode(data)
        .ok()
        .or_else(|| serde_json::from_slice::<ExportMetricsServiceRequest>(data).ok())?;
    let first = extract(&request);
    for point in &first.points {
        assert!(point.value.is_finite(), "extracted a non-finite value for {}", point.series);
    }
    const LATER_NANOS: u64 = 30_000_000_000;
    let mut later = first.clone();
    for point in &mut later.points {
        point.time_unix_nano = point.time_unix_nano.saturating_add(LATER_NANOS);
    }
    let newest = first.points.iter().map(|point| point.time_unix_nano).max().unwrap_or(0);
    let mut window = ThroughputState::default();
    for (batch, received_at_nanos) in [(&first, newest), (&later, newest.saturating_add(LATER_NANOS))] {
        let report = window.ingest(batch, UnixMillis(received_at_nanos / 1_000_000));
        assert_eq!(
            report.accepted + report.out_of_order + report.rejected,
            batch.points.len() as u64,
            "a point was neither applied nor refused"
        );
    }
    let snapshot = window.snapshot(true);
    let mut rate_samples = 0;
    for component in &snapshot.components {
        rate_samples += component.history.len();
        for sample in component.latest.iter().chain(&component.history) {
            for rate in [sample.in_rate, sample.out_rate, sample.error_rate].into_iter().flatten() {
                assert!(rate >= 0.0, "rate {rate} for {:?}", component.key);
            }
        }
    }
    if let Some(cpu_cores) = snapshot.process.cpu_cores {
        assert!(cpu_cores >= 0.0, "cpu rate {cpu_cores}");
    }
    Some(OtlpReach { points: first.points.len(), rate_samples })
}

/// The borrowed protobuf decoder of pushes (`own_metrics::wire`) against prost on the same bytes: it
/// accepts exactly what `ExportMetricsServiceRequest::decode` accepts, and what it reads equals the view
/// of prost's request, so extraction gives the same batch. Returns the points of the view when the bytes
/// decode.
pub fn otlp_wire(data: &[u8]) -> Option<usize> {
    let prost = ExportMetricsServiceRequest::decode(data);
    let wire = own_metrics::wire::decode_push(data);
    match (&prost, &wire) {
        (Ok(_), Err(error)) => panic!("wire refused what prost accepts: {error}"),
        (Err(error), Ok(_)) => panic!("wire accepted what prost refuses: {error}"),
        _ => {}
    }
    let (request, view) = (prost.ok()?, wire.ok()?);
    // Compared as Debug text: a NaN value is equal to itself there.
    let expected = own_metrics::push_view::PushView::from_request(&request);
    assert_eq!(format!("{view:?}"), format!("{expected:?}"), "wire read something else than prost");
    let (batch, expected_batch) = (own_metrics::extract_from(&view), extract(&request));
    assert_eq!(format!("{batch:?}"), format!("{expected_batch:?}"), "extraction differs");
    Some(view.metrics.iter().map(|metric| metric.point_count()).sum())
}

/// `X-Forwarded-For` values as a client or a proxy chain may write them, one per line: resolving the
/// client address never panics, never believes a header from an untrusted peer, and a header without
/// an address in it leaves the trusted peer as the client. Returns the address resolved behind the
/// trusted peer.
pub fn forwarded_for(data: &[u8]) -> IpAddr {
    use crate::config::human::parse_network;
    use crate::http::client_addr::resolve;

    let values: Vec<&[u8]> = data.split(|byte| *byte == b'\n').collect();
    let trusted =
        [parse_network("10.0.0.0/8").expect("network"), parse_network("fd00::/8").expect("network")];
    let peer = IpAddr::from([10, 1, 2, 3]);
    let stranger = IpAddr::from([192, 0, 2, 1]);

    assert_eq!(resolve(stranger, &values, &trusted), stranger, "an untrusted peer's header was believed");
    let client = resolve(peer, &values, &trusted);
    if !data.iter().any(|byte| byte.is_ascii_hexdigit() || *byte == b':') {
        assert_eq!(client, peer, "no address in {data:?}");
    }
    client
}

/// What a peer sends on the cluster port once its credential passed: the bytes as a `RaftRequest`,
/// `ProposeRequest`, `AdminRequest` or `ForwardRequest` (protobuf) and the JSON inside each, the
/// bytes as such JSON directly (`cluster/payload.rs`), and as a forwarded call's reply bodies. Every decoder refuses with an error, never a panic; what decodes
/// survives a re-encode unchanged. Returns how many (message, payload) decodings succeeded beyond the
/// protobuf layer (an empty input is a valid empty protobuf message, so that layer alone says nothing).
pub fn cluster_messages(data: &[u8]) -> usize {
    use crate::cluster::admin::AdminCall;
    use crate::model::Command;
    use crate::proto::cluster::v1::{AdminRequest, ForwardRequest, ProposeRequest, RaftRequest};

    let mut decoded = 0;
    if let Ok(request) = RaftRequest::decode(data) {
        decoded += raft_payloads(&request);
    }
    if let Ok(propose) = ProposeRequest::decode(data) {
        decoded += json_round_trips::<Command>(&propose.command);
    }
    if let Ok(admin) = AdminRequest::decode(data) {
        decoded += json_round_trips::<AdminCall>(&admin.request);
    }
    if let Ok(forward) = ForwardRequest::decode(data) {
        decoded += forwarded_calls(&forward.body);
    }
    let as_payload = RaftRequest {
        payload_format: crate::cluster::payload::PAYLOAD_FORMAT_JSON,
        payload: data.to_vec(),
        snapshot_data: Vec::new(),
    };
    decoded
        + raft_payloads(&as_payload)
        + json_round_trips::<Command>(data)
        + json_round_trips::<AdminCall>(data)
        + forwarded_calls(data)
}

/// A forwarded collector call's JSON (`cluster/forward.rs`): the owner decodes the call, the edge the
/// owner's reply.
fn forwarded_calls(data: &[u8]) -> usize {
    use crate::actors::collector_actor::{Poll, Register, Unregister};
    use crate::cluster::forward::{WireError, WirePollReply, WrongOwner};

    json_round_trips::<Poll>(data)
        + json_round_trips::<Register>(data)
        + json_round_trips::<Unregister>(data)
        + json_round_trips::<WirePollReply>(data)
        + json_round_trips::<WrongOwner>(data)
        + json_round_trips::<WireError>(data)
}

fn raft_payloads(request: &crate::proto::cluster::v1::RaftRequest) -> usize {
    use openraft::raft::{AppendEntriesRequest, VoteRequest};

    use crate::cluster::payload;
    use crate::raft::TypeConfig;

    let mut decoded = 0;
    if let Ok(append) = payload::decode_request::<AppendEntriesRequest<TypeConfig>>(request) {
        decoded += 1;
        let encoded = payload::encode_request(&append).expect("a decoded append re-encodes");
        let again: AppendEntriesRequest<TypeConfig> =
            payload::decode_request(&encoded).expect("a re-encoded append decodes");
        assert_eq!(payload::to_json(&again).ok(), Some(encoded.payload), "append re-encode changed it");
    }
    if let Ok(vote) = payload::decode_request::<VoteRequest<u64>>(request) {
        decoded += 1;
        let encoded = payload::encode_request(&vote).expect("a decoded vote re-encodes");
        let again: VoteRequest<u64> = payload::decode_request(&encoded).expect("a re-encoded vote decodes");
        assert_eq!(again, vote, "vote re-encode changed it");
    }
    if let Ok(chunk) = payload::decode_snapshot_chunk(request.clone()) {
        decoded += 1;
        assert_eq!(chunk.data, request.snapshot_data, "a chunk's bytes are the ones sent beside the json");
        let encoded = payload::encode_snapshot_chunk(chunk.clone()).expect("a decoded chunk re-encodes");
        let again = payload::decode_snapshot_chunk(encoded).expect("a re-encoded chunk decodes");
        assert_eq!(again, chunk, "chunk re-encode changed it");
    }
    decoded
}

fn json_round_trips<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> usize {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return 0;
    };
    let json = serde_json::to_vec(&value).expect("a decoded value re-encodes");
    let again: T = serde_json::from_slice(&json).expect("re-encoded json decodes");
    assert_eq!(again, value, "json re-encode changed it");
    1
}

/// An OTTL text from a user (a route or filter condition, a transform statement): the first byte picks
/// the context, the rest is the text. Both checks answer without panicking, the same way twice, and a
/// refusal says why. Returns how many of the two checks accepted the text.
pub fn ottl(data: &[u8]) -> usize {
    use crate::ottl::{check_condition, check_statement, Context};

    let Some((&selector, text)) = data.split_first() else { return 0 };
    let Ok(text) = std::str::from_utf8(text) else { return 0 };
    let context = Context::ALL[usize::from(selector) % Context::ALL.len()];
    let mut accepted = 0;
    for check in [check_condition, check_statement] {
        let verdict = check(text, context);
        assert_eq!(verdict, check(text, context), "the verdict on {text:?} changed between two checks");
        match verdict {
            Ok(()) => accepted += 1,
            Err(error) => assert!(!error.message.is_empty(), "a refusal of {text:?} without a reason"),
        }
    }
    accepted
}

/// An OpAMP message as a plain-HTTP body or a WebSocket frame carries it (the frame header is
/// optional, as for old agents): what decodes must survive a re-encode unchanged, and what the
/// collector's actor gets of it must survive the JSON a forwarded message travels as. Returns 0 (not
/// an `AgentToServer`), 1 (decoded, but no valid instance uid) or 2 (read whole).
pub fn opamp_messages(data: &[u8]) -> usize {
    use crate::proto::opamp::v1::AgentToServer;
    let Ok(message) = AgentToServer::decode(crate::opamp::frame::payload(data)) else {
        return 0;
    };
    let again =
        AgentToServer::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
    assert_eq!(again, message, "proto re-encode changed the message");
    let Ok(exchange) = crate::http::opamp::read_message(message, 1) else {
        return 1;
    };
    let json = serde_json::to_vec(&exchange).expect("an exchange serializes");
    let forwarded: crate::actors::collector_actor::OpampExchange =
        serde_json::from_slice(&json).expect("a forwarded exchange parses");
    assert_eq!(forwarded, exchange, "the forwarded form changed the exchange");
    2
}

#[cfg(test)]
mod tests {
    #[test]
    fn forwarded_calls_and_replies_reach_the_fuzzed_decoders() {
        let poll = crate::actors::collector_actor::Poll {
            host_id: "host-1".into(),
            local_attributes: [("env".to_owned(), "prod".to_owned())].into(),
            hash: "abc".into(),
            remote_status: None,
            effective_config: Some("// text".into()),
            at: crate::model::UnixMillis(5),
            config_version: 2,
        };
        let request = crate::proto::cluster::v1::ForwardRequest {
            call: crate::proto::cluster::v1::CollectorCall::GetConfig as i32,
            body: crate::cluster::payload::to_json(&poll).expect("json"),
            ..Default::default()
        };
        assert!(super::cluster_messages(&prost::Message::encode_to_vec(&request)) > 0);
        let reply = crate::cluster::forward::WirePollReply {
            hash: "h".into(),
            content: String::new(),
            not_modified: true,
        };
        assert!(super::cluster_messages(&crate::cluster::payload::to_json(&reply).expect("json")) > 0);
    }
}
