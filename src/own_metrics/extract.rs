//! Extraction: the metrics of the mapping table picked out of an OTLP push, each point checked and keyed
//! by series, on the HTTP worker that received it.
//!
//! Invariants:
//! - A series is the normalised metric name plus the sorted data point attributes. The resource is not
//!   part of it: one collector token is one process, and its restart (a new `service.instance.id` for
//!   the OTel Collector) must look like a reset of the same series.
//! - Points are sorted by time, so that several points of one series in one push apply in order.
//! - A point of a listed metric that cannot be used is counted as rejected (OTLP `partial_success`),
//!   never silently dropped; metrics not in the table are accepted and ignored.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use crate::apply_status::ApplySignals;

use super::apply_signals::read_apply_signals_in;
use super::metric_rules::{
    alloy_local_id, normalise_metric_name, rule_for, ComponentKey, IdSpace, Measure, MetricRule,
};
use super::push_view::{attribute, AttributeView, DataView, PointView, PushView};

fn component_of(attributes: &[AttributeView<'_>]) -> Option<ComponentKey> {
    let find = |key: &str| attribute(attributes, key).filter(|value| !value.is_empty());
    if let Some(id) = find("component_id") {
        return Some(ComponentKey::alloy(id));
    }
    [("receiver", IdSpace::Receiver), ("processor", IdSpace::Processor), ("exporter", IdSpace::Exporter)]
        .into_iter()
        .find_map(|(key, space)| find(key).map(|id| ComponentKey { space, id: id.to_owned() }))
}

/// One data point of a metric linkmesh reads, checked and keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Normalised metric name and the sorted data point attributes.
    pub series: String,
    pub rule: &'static MetricRule,
    pub component: Option<ComponentKey>,
    pub start_unix_nano: u64,
    pub time_unix_nano: u64,
    pub value: f64,
    /// Delta temporality: the value is the increase over `[start, time]`.
    pub delta: bool,
}

/// What one OTLP push carries that linkmesh reads; built on the HTTP worker, applied by the actor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsBatch {
    /// Sorted by time, so that several points of one series in one push apply in order.
    pub points: Vec<MetricPoint>,
    /// Alloy's component edges, when the push carried `alloy_component_graph_connection` at all.
    pub graph_connections: Option<Vec<(String, String)>>,
    /// What each scrape in the push shows about the remote config (`apply_status`), oldest first.
    pub apply_signals: Vec<ApplySignals>,
    /// Data points refused (OTLP `partial_success.rejected_data_points`) and the first reason.
    pub rejected: u64,
    pub rejection: Option<String>,
}

impl MetricsBatch {
    fn reject(&mut self, count: u64, reason: impl FnOnce() -> String) {
        if count == 0 {
            return;
        }
        self.rejected += count;
        if self.rejection.is_none() {
            self.rejection = Some(reason());
        }
    }
}

/// Picks the metrics linkmesh reads out of an OTLP request and checks their points. Points of metrics
/// not in [`METRIC_RULES`] are accepted and dropped; points of listed metrics that cannot be used
/// (no value, not finite, negative counter, no timestamp, no component, histogram type) are rejected.
///
/// [`METRIC_RULES`]: super::metric_rules::METRIC_RULES
pub fn extract(request: &ExportMetricsServiceRequest) -> MetricsBatch {
    extract_from(&PushView::from_request(request))
}

/// [`extract`] on a push's view (what `wire::decode_push` reads from protobuf bytes).
pub fn extract_from(view: &PushView<'_>) -> MetricsBatch {
    let mut batch = MetricsBatch::default();
    for metric in &view.metrics {
        let Some(rule) = rule_for(metric.name) else { continue };
        let (points, delta) = match &metric.data {
            DataView::Number { points, delta } => (view.points(points), *delta),
            DataView::Other { kind, count } => {
                batch.reject(*count as u64, || {
                    format!("{}: is a {kind}; expected a sum or gauge", metric.name)
                });
                continue;
            }
            DataView::None => continue,
        };
        if rule.measure == Measure::GraphConnection {
            let edges = batch.graph_connections.get_or_insert_with(Vec::new);
            edges.extend(
                points.iter().filter(|point| point.value.is_some_and(|value| value > 0.0)).filter_map(
                    |point| {
                        let attributes = view.attributes(point);
                        let end =
                            |key: &str| attribute(attributes, key).map(|id| alloy_local_id(id).to_owned());
                        Some((end("from")?, end("to")?))
                    },
                ),
            );
            continue;
        }
        let normalised = normalise_metric_name(metric.name);
        for point in points {
            let attributes = view.attributes(point);
            match check_point(rule, point, attributes) {
                Ok((value, component)) => batch.points.push(MetricPoint {
                    series: series_key(&normalised, attributes),
                    rule,
                    component,
                    start_unix_nano: point.start_time_unix_nano,
                    time_unix_nano: point.time_unix_nano,
                    value,
                    delta: delta && rule.measure.is_counter(),
                }),
                Err(problem) => batch.reject(1, || format!("{}: {problem}", metric.name)),
            }
        }
    }
    batch.points.sort_by_key(|point| point.time_unix_nano);
    batch.apply_signals = read_apply_signals_in(view);
    if let Some(edges) = &mut batch.graph_connections {
        edges.sort();
        edges.dedup();
    }
    batch
}

fn check_point(
    rule: &MetricRule,
    point: &PointView,
    attributes: &[AttributeView<'_>],
) -> Result<(f64, Option<ComponentKey>), &'static str> {
    let value = point.value.ok_or("data point has no value (asInt or asDouble)")?;
    if !value.is_finite() {
        return Err("data point value is not finite");
    }
    if rule.measure.is_counter() && value < 0.0 {
        return Err("counter value is negative");
    }
    if point.time_unix_nano == 0 {
        return Err("data point has no timeUnixNano");
    }
    let component = match rule.stage {
        Some(_) => Some(
            component_of(attributes)
                .ok_or("data point names no component (component_id, receiver, processor or exporter)")?,
        ),
        None => None,
    };
    Ok((value, component))
}

fn series_key(normalised_name: &str, attributes: &[AttributeView<'_>]) -> String {
    let mut pairs: Vec<(&str, &str)> = attributes
        .iter()
        .map(|attribute| (attribute.key, attribute.text.as_deref().unwrap_or_default()))
        .collect();
    pairs.sort_unstable();
    let mut key = String::with_capacity(
        normalised_name.len() + pairs.iter().map(|(name, value)| name.len() + value.len() + 2).sum::<usize>(),
    );
    key.push_str(normalised_name);
    for (name, value) in pairs {
        key.push('\u{1f}');
        key.push_str(name);
        key.push('=');
        key.push_str(value);
    }
    key
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    };

    use super::super::otlp_values::attribute_text;
    use super::super::otlp_values::test_otlp::*;
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    fn viewed(attributes: &[KeyValue]) -> Vec<AttributeView<'_>> {
        attributes
            .iter()
            .map(|attribute| AttributeView {
                key: &attribute.key,
                text: attribute_text(attribute.value.as_ref()),
            })
            .collect()
    }

    #[test]
    fn component_ids_drop_the_module_path_and_keep_otel_kinds_apart() {
        assert_eq!(
            alloy_local_id("remotecfg/linkmesh_pipeline.default/otelcol.receiver.otlp.src_1"),
            "otelcol.receiver.otlp.src_1"
        );
        assert_eq!(alloy_local_id("prometheus.exporter.self.default"), "prometheus.exporter.self.default");
        let alloy =
            component_of(&viewed(&[text("component_id", "a/b/loki.write.dst_1"), text("receiver", "x")]))
                .expect("alloy");
        assert_eq!(alloy, ComponentKey { space: IdSpace::Alloy, id: "loki.write.dst_1".into() });
        assert_eq!(alloy.component_type(), "loki.write");
        let otel = component_of(&viewed(&[text("exporter", "otlp/dst_1"), text("data_type", "traces")]))
            .expect("otel");
        assert_eq!(otel, ComponentKey { space: IdSpace::Exporter, id: "otlp/dst_1".into() });
        assert_eq!(otel.component_type(), "otlp");
        assert_eq!(otel.local_node_id(), "local:exporter:otlp/dst_1");
        assert!(component_of(&viewed(&[text("transport", "grpc")])).is_none());
    }

    #[test]
    fn unusable_points_are_rejected_with_a_reason() {
        let no_value = NumberDataPoint {
            time_unix_nano: T0,
            attributes: vec![text("receiver", "otlp")],
            ..NumberDataPoint::default()
        };
        let histogram = Metric {
            name: "otelcol_exporter_sent_spans".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint::default(); 2],
                aggregation_temporality: 2,
            })),
            ..Metric::default()
        };
        let batch = extract(&request(vec![
            counter("otelcol_receiver_accepted_spans", vec![no_value]),
            counter(
                "otelcol_receiver_refused_spans",
                vec![number(vec![text("receiver", "otlp")], 0, T0, f64::NAN)],
            ),
            counter(
                "otelcol_receiver_failed_spans",
                vec![number(vec![text("receiver", "otlp")], 0, T0, -1.0)],
            ),
            counter(
                "otelcol_exporter_sent_log_records",
                vec![number(vec![text("exporter", "otlp")], 0, 0, 1.0)],
            ),
            counter(
                "otelcol_exporter_sent_metric_points",
                vec![number(vec![text("transport", "grpc")], 0, T0, 1.0)],
            ),
            histogram,
            gauge("unrelated", vec![NumberDataPoint::default()]),
        ]));
        assert_eq!(batch.rejected, 7);
        assert!(batch.points.is_empty());
        assert_eq!(
            batch.rejection.as_deref(),
            Some("otelcol_receiver_accepted_spans: data point has no value (asInt or asDouble)")
        );
    }
}
