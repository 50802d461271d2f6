//! The committed seed corpora of the fuzz targets (`fuzz/corpus/<target>/`), replayed on stable through
//! the same functions the cargo-fuzz targets call (`linkmesh::fuzzing`), so every run of the gate feeds
//! them through the decoders with the targets' assertions. A target without a corpus, or with an empty
//! one, fails here.
//!
//! The seeds are real inputs: Connect messages as Alloy sends them (proto and JSON), gzip bodies, and
//! own_metrics pushes derived from `tests/fixtures/otlp/`. They are written by
//! `cargo test --test fuzz_corpora -- --ignored write_seed_corpora` and committed, and a test checks
//! that the writer still produces exactly the committed files.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use linkmesh::fuzzing::{self, OtlpReach, REQUEST_BODY_LIMIT};
use linkmesh::proto::collector::v1 as pb;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message;

/// Every target in `fuzz/fuzz_targets/`; each has a corpus and a replay below.
const TARGETS: [&str; 8] = [
    "connect_messages",
    "request_body",
    "otlp_metrics",
    "otlp_wire",
    "forwarded_for",
    "cluster_messages",
    "ottl",
    "opamp_messages",
];

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn corpus_dir(target: &str) -> PathBuf {
    repo_path("fuzz/corpus").join(target)
}

/// The corpus of `target` as (file name, bytes), sorted by name; panics if it is missing or empty.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("fuzz corpus {} is missing: {error}", dir.display()));
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read seed"))
        })
        .collect();
    assert!(!seeds.is_empty(), "fuzz corpus {} is empty", dir.display());
    seeds.sort();
    seeds
}

#[test]
fn every_fuzz_target_has_a_replayed_corpus() {
    let mut targets: Vec<String> = std::fs::read_dir(repo_path("fuzz/fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .map(|entry| {
            let path = entry.expect("target entry").path();
            path.file_stem().expect("target name").to_string_lossy().into_owned()
        })
        .collect();
    targets.sort();
    let mut replayed = TARGETS.map(str::to_owned).to_vec();
    replayed.sort();
    assert_eq!(targets, replayed, "a fuzz target without a replayed corpus, or a replay without a target");
    for target in TARGETS {
        corpus(target);
    }
}

#[test]
fn forwarded_for_seeds_resolve_behind_the_trusted_peer_only() {
    // Hand-written: header values as proxies write them (one per line); the function asserts itself.
    let mut clients = std::collections::BTreeSet::new();
    for (_name, bytes) in corpus("forwarded_for") {
        clients.insert(fuzzing::forwarded_for(&bytes));
    }
    assert!(clients.len() > 2, "the seeds should resolve to several different clients: {clients:?}");
}

#[test]
fn ottl_seeds_are_checked_and_the_valid_ones_accepted() {
    // Hand-written: a context byte, then a condition or statement as users and `src/render` write them.
    let mut accepted = 0;
    for (name, bytes) in corpus("ottl") {
        let count = fuzzing::ottl(&bytes);
        if name.starts_with("bad_") {
            assert_eq!(count, 0, "seed {name} should be refused as both a condition and a statement");
        }
        accepted += count;
    }
    assert!(accepted >= 10, "most seeds should load as a condition or a statement, {accepted} did");
}

#[test]
fn connect_message_seeds_decode_and_survive_a_re_encode() {
    for (name, bytes) in corpus("connect_messages") {
        let decoded = fuzzing::connect_messages(&bytes);
        assert!(decoded > 0, "seed {name} decodes as no remotecfg message in either codec");
    }
}

#[test]
fn request_body_seeds_inflate_or_are_refused_as_their_names_say() {
    let seeds = corpus("request_body");
    for (name, bytes) in &seeds {
        let inflated = fuzzing::request_body(bytes);
        if name.starts_with("refused_") {
            assert_eq!(inflated, None, "seed {name} should be refused as a gzip body");
        } else if name.starts_with("gzip_") {
            assert!(inflated.is_some(), "seed {name} should inflate within the limit");
        }
    }
    for prefix in ["refused_", "gzip_"] {
        assert!(seeds.iter().any(|(name, _)| name.starts_with(prefix)), "no {prefix}* seed");
    }
}

#[test]
fn otlp_metrics_seeds_decode_and_reach_the_rate_math() {
    let mut reached_rates = false;
    for (name, bytes) in corpus("otlp_metrics") {
        let reach = fuzzing::otlp_metrics(&bytes);
        let Some(OtlpReach { points, rate_samples }) = reach else {
            panic!("seed {name} is not an OTLP metrics push");
        };
        if name.contains("self_metrics") || name.contains("internal_metrics") {
            assert!(points > 0 && rate_samples > 0, "fixture seed {name} reached {reach:?}");
        }
        reached_rates |= rate_samples > 0;
    }
    assert!(reached_rates, "no otlp_metrics seed reaches the rate math");
}

#[test]
fn otlp_wire_seeds_decode_alike_in_both_decoders() {
    let mut points = 0;
    for (name, bytes) in corpus("otlp_wire") {
        let read = fuzzing::otlp_wire(&bytes);
        if name.starts_with("malformed_") {
            assert_eq!(read, None, "seed {name} should be refused by both decoders");
        } else {
            points += read.unwrap_or_else(|| panic!("seed {name} is not a protobuf push"));
        }
    }
    assert!(points > 0, "no otlp_wire seed carries a point linkmesh reads");
}

#[test]
fn opamp_message_seeds_are_read_as_their_names_say() {
    for (name, bytes) in corpus("opamp_messages") {
        let reach = fuzzing::opamp_messages(&bytes);
        let expected = if name.starts_with("bad_uid_") { 1 } else { 2 };
        assert_eq!(reach, expected, "seed {name}");
    }
}

#[test]
fn cluster_message_seeds_decode_past_the_protobuf_layer() {
    for (name, bytes) in corpus("cluster_messages") {
        assert!(fuzzing::cluster_messages(&bytes) > 0, "seed {name} reaches no payload decoder");
    }
}

/// Writes the seeds into `fuzz/corpus/`.
#[test]
#[ignore = "writes fuzz/corpus: cargo test --test fuzz_corpora -- --ignored write_seed_corpora"]
fn write_seed_corpora() {
    let connect = connect_seeds();
    write_seeds("connect_messages", &connect);
    write_seeds("request_body", &request_body_seeds(&connect));
    write_seeds("otlp_metrics", &otlp_seeds());
    write_seeds("otlp_wire", &otlp_wire_seeds());
    write_seeds("cluster_messages", &cluster_seeds());
    write_seeds("opamp_messages", &opamp_seeds());
}

fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}

fn attributes(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

/// Connect requests as Alloy sends them. Maps carry at most one entry in encoded seeds: prost and
/// pbjson write a `HashMap` in iteration order, and a rerun of the writer must reproduce the files.
/// The JSON literals carry several, and what other proto3 JSON writers send: snake_case names,
/// enums as numbers, unknown fields, base64 bytes.
fn connect_seeds() -> Vec<(String, Vec<u8>)> {
    let first_poll = pb::GetConfigRequest {
        id: "web-01".into(),
        local_attributes: attributes(&[("collector.os", "linux")]),
        ..Default::default()
    };
    let steady_poll = pb::GetConfigRequest {
        id: "web-01".into(),
        hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ..Default::default()
    };
    let failed_status = pb::GetConfigRequest {
        id: "web-01".into(),
        hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        remote_config_status: Some(pb::RemoteConfigStatus {
            status: pb::RemoteConfigStatuses::Failed as i32,
            error_message: "1:1: component \"otelcol.exporter.otlp\" does not exist".into(),
        }),
        effective_config: Some(pb::EffectiveConfig {
            config_map: Some(pb::AgentConfigMap {
                config_map: [(
                    "remotecfg".to_owned(),
                    pb::AgentConfigFile {
                        body: b"declare \"linkmesh_pipeline\" {\n}\nlinkmesh_pipeline \"default\" { }\n"
                            .to_vec(),
                        content_type: "text/alloy".into(),
                    },
                )]
                .into(),
            }),
        }),
        ..Default::default()
    };
    let legacy_attributes = pb::GetConfigRequest {
        id: "edge-7".into(),
        attributes: attributes(&[("env", "prod")]),
        ..Default::default()
    };
    let register = pb::RegisterCollectorRequest {
        id: "web-01".into(),
        name: "web-01".into(),
        attributes: attributes(&[("team", "payments")]),
        local_attributes: attributes(&[("collector.version", "v1.12.0")]),
    };
    let unregister = pb::UnregisterCollectorRequest { id: "web-01".into() };

    let mut seeds = Vec::new();
    let mut both_codecs = |name: &str, proto: Vec<u8>, json: Vec<u8>| {
        seeds.push((format!("{name}.pb"), proto));
        seeds.push((format!("{name}.json"), json));
    };
    both_codecs("get_config_first_poll", first_poll.encode_to_vec(), json(&first_poll));
    both_codecs("get_config_steady_poll", steady_poll.encode_to_vec(), json(&steady_poll));
    both_codecs("get_config_failed_status", failed_status.encode_to_vec(), json(&failed_status));
    both_codecs("get_config_legacy_attributes", legacy_attributes.encode_to_vec(), json(&legacy_attributes));
    both_codecs("register_collector", register.encode_to_vec(), json(&register));
    both_codecs("unregister_collector", unregister.encode_to_vec(), json(&unregister));
    for (name, literal) in [
        (
            "get_config_snake_case_names.json",
            r#"{"id":"web-01","hash":"","local_attributes":{"collector.os":"linux","collector.version":"v1.12.0"},"remote_config_status":{"status":"RemoteConfigStatuses_APPLIED"}}"#,
        ),
        (
            "get_config_enum_number_unknown_fields.json",
            r#"{"id":"web-01","remoteConfigStatus":{"status":2,"errorMessage":""},"futureField":{"nested":[1,2.5,null]}}"#,
        ),
        (
            "get_config_effective_config_base64.json",
            r#"{"id":"web-01","effectiveConfig":{"configMap":{"configMap":{"remotecfg":{"body":"ZGVjbGFyZSAibGlua21lc2hfcGlwZWxpbmUiIHsKfQo=","contentType":"text/alloy"},"local":{"body":"","contentType":""}}}}}"#,
        ),
        (
            "register_collector_many_attributes.json",
            r#"{"id":"web-01","name":"web 01","attributes":{"team":"payments","env":"prod"},"localAttributes":{"collector.os":"linux","collector.arch":"amd64","collector.version":"v1.12.0"}}"#,
        ),
    ] {
        seeds.push((name.to_owned(), literal.as_bytes().to_vec()));
    }
    seeds
}

fn json<T: serde::Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(message).expect("serialize seed")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Request bodies: `gzip_*` inflate within [`REQUEST_BODY_LIMIT`], `refused_*` do not.
fn request_body_seeds(connect: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let poll = &connect.iter().find(|(name, _)| name == "get_config_failed_status.pb").expect("poll seed").1;
    let push =
        std::fs::read(repo_path("tests/fixtures/otlp/otelcol_internal_metrics_t0.json")).expect("fixture");
    assert!(push.len() <= REQUEST_BODY_LIMIT, "the OTLP fixture no longer fits the fuzz limit");
    let zipped_poll = gzip(poll);
    let mut two_members = zipped_poll.clone();
    two_members.extend_from_slice(&gzip(b"{\"id\":\"web-01\"}"));
    let mut trailing_garbage = zipped_poll.clone();
    trailing_garbage.extend_from_slice(b"\x00junk");
    vec![
        ("gzip_connect_poll.gz".into(), zipped_poll.clone()),
        ("gzip_otlp_json_push.gz".into(), gzip(&push)),
        ("gzip_two_members.gz".into(), two_members),
        ("gzip_empty_body".into(), Vec::new()),
        ("refused_over_limit.gz".into(), gzip(&vec![0; 4 * REQUEST_BODY_LIMIT])),
        ("refused_truncated.gz".into(), zipped_poll[..zipped_poll.len() / 2].to_vec()),
        ("refused_trailing_garbage.gz".into(), trailing_garbage),
        ("refused_not_gzip.json".into(), b"{\"id\":\"web-01\"}".to_vec()),
    ]
}

const SECOND: u64 = 1_000_000_000;
const T0: u64 = 1_793_527_200 * SECOND;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn number(time: u64, value: number_data_point::Value, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: T0 - 60 * SECOND,
        time_unix_nano: time,
        value: Some(value),
        ..Default::default()
    }
}

fn push(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn sum(name: &str, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// own_metrics pushes: both producers' fixtures in both encodings, and small pushes for the rate
/// math's other paths (two points of one series in one push, delta temporality, counter reset,
/// refused points: a histogram, a negative counter, a missing component).
/// The protobuf pushes of [`otlp_seeds`], and bytes that exercise the wire decoder's merge and refusal
/// rules: a sum sent twice (merged), an attribute value sent twice (merged), a skipped metric with a
/// string that is not UTF-8 (refused), a packed double of the wrong length (refused).
fn otlp_wire_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> =
        otlp_seeds().into_iter().filter(|(name, _)| name.ends_with(".pb")).collect();
    let point = number(T0, number_data_point::Value::AsInt(7), vec![text("receiver", "otlp/src_1")]);
    let point_bytes = point.encode_to_vec();
    let sum_bytes =
        Sum { data_points: vec![point], aggregation_temporality: 2, is_monotonic: true }.encode_to_vec();
    let delimited = |tag: u8, body: &[u8]| {
        let mut field = vec![(tag << 3) | 2];
        prost::encoding::encode_varint(body.len() as u64, &mut field);
        field.extend_from_slice(body);
        field
    };
    let in_scope = |metric: Vec<u8>| delimited(1, &delimited(2, &delimited(2, &metric)));
    let mut merged_sum = delimited(1, b"otelcol_receiver_accepted_spans");
    merged_sum.extend(delimited(7, &sum_bytes));
    merged_sum.extend(delimited(7, &delimited(1, &point_bytes)));
    seeds.push(("merged_sum.pb".into(), in_scope(merged_sum)));
    let mut attribute = delimited(1, b"receiver");
    attribute.extend(delimited(2, &delimited(1, b"otlp/src_1")));
    attribute.extend(delimited(2, &[0x10, 0x01]));
    let mut point_with_merged_value = point_bytes.clone();
    point_with_merged_value.extend(delimited(7, &attribute));
    let mut merged_value = delimited(1, b"otelcol_receiver_refused_spans");
    merged_value.extend(delimited(5, &delimited(1, &point_with_merged_value)));
    seeds.push(("merged_attribute_value.pb".into(), in_scope(merged_value)));
    let mut not_utf8 = delimited(1, b"unrelated");
    not_utf8.extend(delimited(2, b"\xff\xfe"));
    seeds.push(("malformed_skipped_string_not_utf8.pb".into(), in_scope(not_utf8)));
    let mut short_bounds = delimited(1, b"unrelated_histogram");
    short_bounds.extend(delimited(9, &delimited(1, &delimited(7, &[0u8; 7]))));
    seeds.push(("malformed_packed_double_length.pb".into(), in_scope(short_bounds)));
    seeds
}

fn otlp_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for fixture in [
        "alloy_self_metrics_t0",
        "alloy_self_metrics_t1",
        "otelcol_internal_metrics_t0",
        "otelcol_internal_metrics_t1",
    ] {
        let json = std::fs::read(repo_path(&format!("tests/fixtures/otlp/{fixture}.json"))).expect("fixture");
        let request: ExportMetricsServiceRequest = serde_json::from_slice(&json).expect("fixture decodes");
        seeds.push((format!("{fixture}.json"), json));
        seeds.push((format!("{fixture}.pb"), request.encode_to_vec()));
    }
    let receiver = || vec![text("receiver", "otlp/src_1"), text("transport", "http")];
    let exporter = || vec![text("exporter", "otlp/dst_1")];
    use number_data_point::Value::{AsDouble, AsInt};
    let small = [
        (
            "two_points_one_push",
            push(vec![sum(
                "otelcol_receiver_accepted_spans_total",
                AggregationTemporality::Cumulative,
                vec![number(T0, AsInt(100), receiver()), number(T0 + 30 * SECOND, AsInt(400), receiver())],
            )]),
        ),
        (
            "delta_and_reset",
            push(vec![
                sum(
                    "otelcol_exporter_sent_spans",
                    AggregationTemporality::Delta,
                    vec![number(T0, AsInt(50), exporter()), number(T0 + 15 * SECOND, AsInt(70), exporter())],
                ),
                sum(
                    "otelcol_exporter_send_failed_spans",
                    AggregationTemporality::Cumulative,
                    vec![
                        number(T0, AsDouble(9.0), exporter()),
                        number(T0 + 15 * SECOND, AsDouble(2.0), exporter()),
                    ],
                ),
                Metric {
                    name: "otelcol_exporter_queue_size".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![number(T0, AsInt(3), exporter())],
                    })),
                    ..Default::default()
                },
            ]),
        ),
        (
            "refused_points",
            push(vec![
                Metric {
                    name: "otelcol_receiver_accepted_spans".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![HistogramDataPoint { time_unix_nano: T0, ..Default::default() }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
                sum(
                    "otelcol_receiver_refused_spans",
                    AggregationTemporality::Cumulative,
                    vec![number(T0, AsDouble(-1.0), receiver()), number(T0, AsInt(5), Vec::new())],
                ),
            ]),
        ),
    ];
    for (name, request) in small {
        seeds.push((format!("{name}.pb"), request.encode_to_vec()));
    }
    seeds
}

/// What peers send on the cluster port: Raft requests (an append with a command and a membership, a
/// vote, a snapshot chunk with its bytes beside the JSON), a forwarded proposal, an admin call, each as
/// the protobuf message and as its bare JSON payload.
fn cluster_seeds() -> Vec<(String, Vec<u8>)> {
    use std::collections::{BTreeMap, BTreeSet};

    use linkmesh::cluster::admin::AdminCall;
    use linkmesh::cluster::payload;
    use linkmesh::model::{Command, UnixMillis};
    use linkmesh::proto::cluster::v1::{AdminRequest, ProposeRequest};
    use linkmesh::raft::{NodeInfo, TypeConfig};
    use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, SnapshotMeta, Vote};

    let log_id = |index| LogId::new(CommittedLeaderId::new(3, 1), index);
    let node = |port: u16| NodeInfo {
        rpc_addr: format!("10.0.0.{port}:8081"),
        http_addr: format!("10.0.0.{port}:8080"),
        name: format!("node-{port}"),
    };
    let members = BTreeMap::from([(1u64, node(1)), (2, node(2)), (3, node(3))]);
    let voters: BTreeSet<u64> = members.keys().copied().collect();
    let command = Command::RecordTokenUse {
        uses: BTreeMap::from([("sat_1".to_owned(), UnixMillis(1_800_000_000_000))]),
    };
    let append = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        prev_log_id: Some(log_id(9)),
        leader_commit: Some(log_id(9)),
        entries: vec![
            openraft::Entry { log_id: log_id(10), payload: EntryPayload::Blank },
            openraft::Entry { log_id: log_id(11), payload: EntryPayload::Normal(command.clone()) },
            openraft::Entry {
                log_id: log_id(12),
                payload: EntryPayload::Membership(Membership::new(vec![voters], members.clone())),
            },
        ],
    };
    let vote = VoteRequest::<u64>::new(Vote::new(4, 2), Some(log_id(12)));
    let chunk = InstallSnapshotRequest::<TypeConfig> {
        vote: Vote::new_committed(3, 1),
        meta: SnapshotMeta {
            last_log_id: Some(log_id(12)),
            snapshot_id: "3-1-12-7".into(),
            ..Default::default()
        },
        offset: 0,
        data: br#"{"last_applied":null}"#.to_vec(),
        done: true,
    };
    let append_request = payload::encode_request(&append).expect("append");
    let vote_request = payload::encode_request(&vote).expect("vote");
    let chunk_request = payload::encode_snapshot_chunk(chunk).expect("chunk");
    let propose = ProposeRequest { command: payload::to_json(&command).expect("command") };
    let admin = AdminRequest { request: payload::to_json(&AdminCall::Members).expect("admin") };
    vec![
        ("append_entries.pb".into(), append_request.encode_to_vec()),
        ("append_entries.json".into(), append_request.payload.clone()),
        ("vote.pb".into(), vote_request.encode_to_vec()),
        ("vote.json".into(), vote_request.payload.clone()),
        ("install_snapshot_chunk.pb".into(), chunk_request.encode_to_vec()),
        ("propose.pb".into(), propose.encode_to_vec()),
        ("propose_command.json".into(), propose.command.clone()),
        ("admin_members.pb".into(), admin.encode_to_vec()),
        ("admin_members.json".into(), admin.request.clone()),
    ]
}

#[test]
fn seed_writer_output_is_what_is_committed() {
    // A rerun of the writer must reproduce the committed generated seeds byte for byte (hand-written
    // ones are not generated), so they stay derived from the types and fixtures rather than drifting.
    let connect = connect_seeds();
    let generated = [
        ("connect_messages", connect.clone()),
        ("request_body", request_body_seeds(&connect)),
        ("otlp_metrics", otlp_seeds()),
        ("otlp_wire", otlp_wire_seeds()),
        ("cluster_messages", cluster_seeds()),
        ("opamp_messages", opamp_seeds()),
    ];
    for (target, seeds) in generated {
        for (name, bytes) in seeds {
            let path = corpus_dir(target).join(&name);
            let committed =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert!(
                committed == bytes,
                "{} differs from the writer's output; rerun write_seed_corpora",
                path.display()
            );
        }
    }
}

/// OpAMP messages as the supervisor and the client libraries send them: a first full report, a
/// heartbeat, status reports, a goodbye; as bare bodies (plain HTTP) and as WebSocket frames (header
/// byte first); an old agent's ULID uid; and a uid that is none. Maps hold one entry at most, so a
/// rerun of the writer reproduces the files.
fn opamp_seeds() -> Vec<(String, Vec<u8>)> {
    use linkmesh::proto::opamp::v1 as opamp;
    let text = |key: &str, value: &str| opamp::KeyValue {
        key: key.into(),
        value: Some(opamp::AnyValue { value: Some(opamp::any_value::Value::StringValue(value.into())) }),
    };
    let uid =
        vec![0x01, 0x93, 0xa1, 0xb2, 0xc3, 0xd4, 0x7e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b];
    let first = opamp::AgentToServer {
        instance_uid: uid.clone(),
        capabilities: 0x7C47,
        agent_description: Some(opamp::AgentDescription {
            identifying_attributes: vec![
                text("service.name", "otelcol-contrib"),
                text("service.version", "0.149.0"),
            ],
            non_identifying_attributes: vec![text("host.name", "edge-7"), text("os.type", "linux")],
        }),
        effective_config: Some(opamp::EffectiveConfig {
            config_map: Some(opamp::AgentConfigMap {
                config_map: [(
                    String::new(),
                    opamp::AgentConfigFile {
                        body: b"receivers:\n  otlp:\n".to_vec(),
                        content_type: String::new(),
                    },
                )]
                .into(),
            }),
        }),
        health: Some(opamp::ComponentHealth {
            healthy: true,
            status: "StatusOK".into(),
            ..Default::default()
        }),
        available_components: Some(opamp::AvailableComponents { hash: vec![7; 32], ..Default::default() }),
        ..Default::default()
    };
    let heartbeat = opamp::AgentToServer {
        instance_uid: uid.clone(),
        sequence_num: 4,
        capabilities: 0x7C47,
        ..Default::default()
    };
    let status = |state: opamp::RemoteConfigStatuses, error: &str| opamp::AgentToServer {
        sequence_num: 5,
        remote_config_status: Some(opamp::RemoteConfigStatus {
            last_remote_config_hash: b"9f86d081884c7d659a2feaa0c55ad015".to_vec(),
            status: state as i32,
            error_message: error.into(),
        }),
        ..heartbeat.clone()
    };
    let goodbye =
        opamp::AgentToServer { agent_disconnect: Some(opamp::AgentDisconnect {}), ..heartbeat.clone() };
    let ulid =
        opamp::AgentToServer { instance_uid: b"01ARZ3NDEKTSV4RRFFQ69G5FAV".to_vec(), ..heartbeat.clone() };
    let bad_uid = opamp::AgentToServer { instance_uid: vec![1, 2, 3], ..heartbeat.clone() };
    let framed = |message: &opamp::AgentToServer| linkmesh::opamp::frame::encode(message);
    vec![
        ("first_report.pb".into(), first.encode_to_vec()),
        ("first_report_frame.pb".into(), framed(&first)),
        ("heartbeat.pb".into(), heartbeat.encode_to_vec()),
        ("heartbeat_frame.pb".into(), framed(&heartbeat)),
        ("applying.pb".into(), status(opamp::RemoteConfigStatuses::Applying, "").encode_to_vec()),
        ("applied.pb".into(), status(opamp::RemoteConfigStatuses::Applied, "").encode_to_vec()),
        (
            "failed.pb".into(),
            status(opamp::RemoteConfigStatuses::Failed, "Agent exited unexpectedly").encode_to_vec(),
        ),
        ("goodbye_frame.pb".into(), framed(&goodbye)),
        ("ulid_uid.pb".into(), ulid.encode_to_vec()),
        ("bad_uid_short.pb".into(), bad_uid.encode_to_vec()),
    ]
}
