//! Reading values out of OTLP data points and attributes, as both readers of a push need them.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::metrics::v1::{number_data_point, Metric, NumberDataPoint};

/// An attribute value as text (non-string values as Prometheus would print them).
pub fn attribute_text(value: Option<&AnyValue>) -> Option<Cow<'_, str>> {
    match value?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(Cow::Borrowed(text)),
        any_value::Value::BoolValue(flag) => Some(Cow::Owned(flag.to_string())),
        any_value::Value::IntValue(number) => Some(Cow::Owned(number.to_string())),
        any_value::Value::DoubleValue(number) => Some(Cow::Owned(number.to_string())),
        other => Some(Cow::Owned(format!("{other:?}"))),
    }
}

/// Every metric of a push, whatever resource and scope carry it.
pub fn all_metrics(request: &ExportMetricsServiceRequest) -> impl Iterator<Item = &Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
}

/// A number point's value, integer or double.
pub fn point_value(point: &NumberDataPoint) -> Option<f64> {
    match point.value? {
        number_data_point::Value::AsInt(value) => Some(value as f64),
        number_data_point::Value::AsDouble(value) => Some(value),
    }
}

/// OTLP builders for the tests of extraction, rates and the topology join.
#[cfg(test)]
pub(crate) mod test_otlp {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, AggregationTemporality, Gauge, Metric, ResourceMetrics, ScopeMetrics, Sum,
    };

    use super::*;

    pub(crate) fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
            ..KeyValue::default()
        }
    }

    pub(crate) fn number(attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..NumberDataPoint::default()
        }
    }

    pub(crate) fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        }
    }

    pub(crate) fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
        Metric {
            name: name.to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points: points })),
            ..Metric::default()
        }
    }

    pub(crate) fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics, ..ScopeMetrics::default() }],
                ..ResourceMetrics::default()
            }],
        }
    }
}
