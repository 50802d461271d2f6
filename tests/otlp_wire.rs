//! The borrowed protobuf decoder of own_metrics pushes (`own_metrics::wire`) against prost: on real
//! payloads (the fixtures of both producers, the simulator's Alloy payload), on random requests, on
//! random mutations of real bytes, and on the merge and refusal rules written out by hand. Both must
//! accept the same bytes, and read the same view (so extraction gives the same batch).

use linkmesh::fuzzing;
use linkmesh::own_metrics::push_view::{DataView, PushView};
use linkmesh::own_metrics::{extract, extract_from, wire};
use linkmesh::simulate::own_metrics::{alloy_self_metrics, ScrapeInput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use proptest::prelude::*;
use prost::Message;

const SECOND: u64 = 1_000_000_000;
const T0: u64 = 1_800_000_000 * SECOND;

fn fixture(name: &str) -> ExportMetricsServiceRequest {
    let path = format!("{}/tests/fixtures/otlp/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture decodes")
}

/// Both decoders on `bytes`: the same acceptance, the same view and batch. Returns the view's points.
fn agree(bytes: &[u8]) -> Option<usize> {
    fuzzing::otlp_wire(bytes)
}

#[test]
fn fixtures_of_both_producers_read_the_same_as_through_prost() {
    for name in [
        "alloy_self_metrics_t0",
        "alloy_self_metrics_t1",
        "otelcol_internal_metrics_t0",
        "otelcol_internal_metrics_t1",
    ] {
        let request = fixture(name);
        let bytes = request.encode_to_vec();
        let points = agree(&bytes).expect("decodes");
        assert!(points > 0, "{name}: no point read");
        let view = wire::decode_push(&bytes).expect("decodes");
        let batch = extract_from(&view);
        assert_eq!(batch, extract(&request), "{name}");
        assert!(!batch.points.is_empty(), "{name}: nothing extracted");
    }
}

#[test]
fn the_simulated_alloy_payload_reads_the_same_and_skips_unread_metrics() {
    let request = alloy_self_metrics(&ScrapeInput {
        host_id: "sim-1",
        seed: 3,
        process_start_unix_nanos: T0 - 3600 * SECOND,
        now_unix_nanos: T0,
    });
    let bytes = request.encode_to_vec();
    agree(&bytes).expect("decodes");
    let view = wire::decode_push(&bytes).expect("decodes");
    let all: usize = request.resource_metrics[0].scope_metrics[0].metrics.len();
    assert!(
        view.metrics.len() < all,
        "the Go runtime metrics are not kept ({} of {all})",
        view.metrics.len()
    );
    assert_eq!(extract_from(&view), extract(&request));
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn point(time: u64, value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: T0 - 60 * SECOND,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
            ..ResourceMetrics::default()
        }],
    }
}

fn delimited(tag: u32, body: &[u8]) -> Vec<u8> {
    let mut field = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut field);
    prost::encoding::encode_varint(body.len() as u64, &mut field);
    field.extend_from_slice(body);
    field
}

/// A push of one metric whose body is given as bytes.
fn push_of_metric(metric: &[u8]) -> Vec<u8> {
    delimited(1, &delimited(2, &delimited(2, metric)))
}

#[test]
fn repeated_fields_merge_as_prost_merges_them() {
    let first = Sum {
        data_points: vec![point(T0, 1.0, vec![string("receiver", "otlp/a")])],
        aggregation_temporality: 2,
        is_monotonic: true,
    };
    let second = Sum {
        data_points: vec![point(T0 + SECOND, 2.0, vec![string("receiver", "otlp/a")])],
        aggregation_temporality: 1,
        is_monotonic: true,
    };
    let gauge = Gauge { data_points: vec![point(T0, 9.0, vec![string("receiver", "otlp/b")])] };
    // sum, sum: merged (both points, the later temporality).
    let mut metric = delimited(1, b"otelcol_receiver_accepted_spans");
    metric.extend(delimited(7, &first.encode_to_vec()));
    metric.extend(delimited(7, &second.encode_to_vec()));
    let view_points = agree(&push_of_metric(&metric)).expect("decodes");
    assert_eq!(view_points, 2);
    // sum, gauge, sum: the last variant only; a second name replaces the first.
    let mut metric = delimited(1, b"unrelated");
    metric.extend(delimited(7, &first.encode_to_vec()));
    metric.extend(delimited(5, &gauge.encode_to_vec()));
    metric.extend(delimited(7, &second.encode_to_vec()));
    metric.extend(delimited(1, b"otelcol_receiver_accepted_spans"));
    let bytes = push_of_metric(&metric);
    assert_eq!(agree(&bytes), Some(1));
    let view = wire::decode_push(&bytes).expect("decodes");
    assert!(
        matches!(view.metrics[0].data, DataView::Number { delta: true, .. }),
        "the last sum is a delta one"
    );
    // An attribute value sent twice merges: a string then a bool is the bool.
    let mut attribute = delimited(1, b"receiver");
    attribute.extend(delimited(
        2,
        &AnyValue { value: Some(any_value::Value::StringValue("x".into())) }.encode_to_vec(),
    ));
    attribute
        .extend(delimited(2, &AnyValue { value: Some(any_value::Value::BoolValue(true)) }.encode_to_vec()));
    let mut point_bytes = point(T0, 1.0, vec![]).encode_to_vec();
    point_bytes.extend(delimited(7, &attribute));
    let mut metric = delimited(1, b"otelcol_receiver_accepted_spans");
    metric.extend(delimited(5, &delimited(1, &point_bytes)));
    let bytes = push_of_metric(&metric);
    agree(&bytes).expect("decodes");
    let batch = extract_from(&wire::decode_push(&bytes).expect("decodes"));
    assert_eq!(batch.points[0].component.as_ref().map(|key| key.id.as_str()), Some("true"));
}

#[test]
fn what_prost_refuses_is_refused_even_in_metrics_linkmesh_skips() {
    let refused = |metric: Vec<u8>, why: &str| {
        let bytes = push_of_metric(&metric);
        assert!(ExportMetricsServiceRequest::decode(bytes.as_slice()).is_err(), "prost accepts {why}");
        assert!(wire::decode_push(&bytes).is_err(), "wire accepts {why}");
        assert_eq!(agree(&bytes), None);
    };
    let with_name = |rest: Vec<u8>| {
        let mut metric = delimited(1, b"go_goroutines");
        metric.extend(rest);
        metric
    };
    refused(with_name(delimited(2, b"\xff")), "a description that is not UTF-8");
    refused(with_name(vec![0x10, 0x01]), "a string field sent as a varint");
    let histogram = delimited(1, &delimited(7, &[0; 12]));
    refused(with_name(delimited(9, &histogram)), "packed doubles of 12 bytes");
    refused(with_name(vec![0xa4, 0x06]), "an end group without a start");
    refused(with_name(vec![0xa3, 0x06, 0x08, 0x01, 0xac, 0x06 + 0x08]), "a group ended by another tag");
    refused(with_name(vec![0xa0, 0x06]), "a truncated varint");
    refused(with_name(vec![0x00]), "field number 0");
    refused(with_name(vec![0x0f]), "wire type 7");
    refused(with_name(vec![0x69, 1, 2, 3]), "a truncated fixed64");
    refused(with_name(delimited(5, &[0x0a, 0x05, 0x11])), "a nested length past its parent");
    // Accepted: unknown fields of every wire type, groups included, in a skipped metric.
    let mut unknown = with_name(vec![0xa0, 0x06, 0x01, 0xa5, 0x06, 1, 2, 3, 4, 0xa9, 0x06]);
    unknown.extend([0; 8]);
    unknown.extend([0xa3, 0x06, 0x08, 0x01, 0xa4, 0x06]);
    assert_eq!(agree(&push_of_metric(&unknown)), Some(0));
}

#[test]
fn nesting_is_refused_past_prosts_recursion_limit_and_not_before() {
    fn nested(depth: usize) -> AnyValue {
        let mut value = AnyValue { value: Some(any_value::Value::StringValue("leaf".into())) };
        for _ in 0..depth {
            value =
                AnyValue { value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![value] })) };
        }
        value
    }
    let mut accepted = 0;
    let mut refused = 0;
    for depth in 40..50 {
        let attribute =
            KeyValue { key: "receiver".into(), value: Some(nested(depth)), ..KeyValue::default() };
        let metric = Metric {
            name: "otelcol_receiver_accepted_spans".into(),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![point(T0, 1.0, vec![attribute])] })),
            ..Metric::default()
        };
        match agree(&request(vec![metric]).encode_to_vec()) {
            Some(_) => accepted += 1,
            None => refused += 1,
        }
    }
    assert!(accepted > 0 && refused > 0, "the limit lies inside the range tried ({accepted} accepted)");
}

#[test]
fn histograms_and_summaries_of_read_metrics_are_counted_for_rejection() {
    let metrics = vec![
        Metric {
            name: "otelcol_exporter_sent_spans".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint::default(); 3],
                aggregation_temporality: 2,
            })),
            ..Metric::default()
        },
        Metric {
            name: "otelcol_exporter_sent_log_records".into(),
            data: Some(metric::Data::Summary(Summary { data_points: vec![SummaryDataPoint::default(); 2] })),
            ..Metric::default()
        },
    ];
    let bytes = request(metrics).encode_to_vec();
    assert_eq!(agree(&bytes), Some(5));
    assert_eq!(extract_from(&wire::decode_push(&bytes).expect("decodes")).rejected, 5);
}

// ---- Random requests and random bytes ---------------------------------------------------------------

const NAMES: [&str; 8] = [
    "otelcol_receiver_accepted_spans_total",
    "otelcol.exporter.sent.spans",
    "otelcol_exporter_queue_size",
    "alloy_component_graph_connection",
    "remotecfg_hash",
    "alloy_component_controller_running_components",
    "process_cpu_seconds_total",
    "go_goroutines",
];
const KEYS: [&str; 8] =
    ["component_id", "receiver", "exporter", "from", "to", "hash", "controller_path", "health_type"];

fn any_value() -> impl Strategy<Value = Option<AnyValue>> {
    let scalar = prop_oneof![
        "[a-z/._0-9]{0,12}".prop_map(any_value::Value::StringValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        any::<f64>().prop_map(any_value::Value::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(any_value::Value::BytesValue),
    ];
    let value = scalar.prop_recursive(2, 6, 3, |inner| {
        proptest::collection::vec(inner, 0..3).prop_map(|values| {
            any_value::Value::ArrayValue(ArrayValue {
                values: values.into_iter().map(|value| AnyValue { value: Some(value) }).collect(),
            })
        })
    });
    proptest::option::weighted(0.9, value.prop_map(|value| AnyValue { value: Some(value) }))
}

fn data_point() -> impl Strategy<Value = NumberDataPoint> {
    let attribute = (0..KEYS.len(), any_value()).prop_map(|(key, value)| KeyValue {
        key: KEYS[key].into(),
        value,
        ..KeyValue::default()
    });
    let value = proptest::option::of(prop_oneof![
        any::<f64>().prop_map(number_data_point::Value::AsDouble),
        any::<i64>().prop_map(number_data_point::Value::AsInt),
    ]);
    (proptest::collection::vec(attribute, 0..4), 0u64..3, 0u64..3, value).prop_map(
        |(attributes, start, time, value)| NumberDataPoint {
            attributes,
            start_time_unix_nano: start * T0,
            time_unix_nano: time * T0,
            value,
            ..NumberDataPoint::default()
        },
    )
}

fn metric_data() -> impl Strategy<Value = Option<metric::Data>> {
    let points = || proptest::collection::vec(data_point(), 0..4);
    proptest::option::weighted(
        0.95,
        prop_oneof![
            (points(), 0i32..4, any::<bool>()).prop_map(
                |(data_points, aggregation_temporality, is_monotonic)| {
                    metric::Data::Sum(Sum { data_points, aggregation_temporality, is_monotonic })
                }
            ),
            points().prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
            (0usize..3).prop_map(|count| metric::Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint { explicit_bounds: vec![1.0], ..Default::default() };
                    count
                ],
                aggregation_temporality: 2,
            })),
        ],
    )
}

fn push_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let metric = (0..NAMES.len(), metric_data(), "[a-z ]{0,8}").prop_map(|(name, data, description)| {
        Metric { name: NAMES[name].into(), description, data, ..Metric::default() }
    });
    proptest::collection::vec(proptest::collection::vec(metric, 0..6), 1..3).prop_map(|scopes| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: scopes
                    .into_iter()
                    .map(|metrics| ScopeMetrics { metrics, ..ScopeMetrics::default() })
                    .collect(),
                ..ResourceMetrics::default()
            }],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_requests_read_the_same_as_through_prost(request in push_request()) {
        let bytes = request.encode_to_vec();
        prop_assert!(agree(&bytes).is_some());
        let view = wire::decode_push(&bytes).expect("decodes");
        prop_assert_eq!(format!("{:?}", extract_from(&view)), format!("{:?}", extract(&request)));
        prop_assert_eq!(format!("{view:?}"), format!("{:?}", PushView::from_request(&request)));
    }

    #[test]
    fn mutated_bytes_are_accepted_or_refused_alike(
        request in push_request(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = request.encode_to_vec();
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        // Panics (a failed property) when the two disagree.
        agree(&bytes);
    }
}
