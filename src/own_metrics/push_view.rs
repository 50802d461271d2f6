//! [`PushView`]: the part of an OTLP push that linkmesh reads, borrowed from the request it came in.
//!
//! Both readers of a push (`extract`, `apply_signals`) work on this view, and it is built two ways
//! that must agree: from the protobuf bytes without building the request (`wire::decode_push`, the
//! hot path) and from a decoded `ExportMetricsServiceRequest` (OTLP/JSON, tests). Only metrics one of
//! the readers looks at are kept ([`is_read`]); everything else is validated and skipped.
//!
//! Points and attributes live in two flat vectors for the whole push (one allocation each, not one
//! per point), and metrics and points refer to ranges of them.

use std::borrow::Cow;
use std::ops::Range;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality, NumberDataPoint};

use super::metric_rules::{is_apply_signal, normalise_metric_name, rule_for};
use super::otlp_values::{all_metrics, attribute_text, point_value};

/// The metrics of a push that linkmesh reads, in the order the push carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushView<'a> {
    pub metrics: Vec<MetricView<'a>>,
    points: Vec<PointView>,
    attributes: Vec<AttributeView<'a>>,
}

/// One metric: its name as pushed and what its data holds.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricView<'a> {
    pub name: &'a str,
    pub data: DataView,
}

impl MetricView<'_> {
    /// Data points of any kind.
    pub fn point_count(&self) -> usize {
        match &self.data {
            DataView::None => 0,
            DataView::Number { points, .. } => points.len(),
            DataView::Other { count, .. } => *count,
        }
    }
}

/// A metric's data, as far as the readers care.
#[derive(Debug, Clone, PartialEq)]
pub enum DataView {
    /// No data set.
    None,
    /// A sum or a gauge: its points (a range of [`PushView::points`]) and whether it is a delta sum.
    Number { points: Range<usize>, delta: bool },
    /// A histogram, exponential histogram or summary: only how many points it has.
    Other { kind: &'static str, count: usize },
}

/// One number data point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointView {
    attributes: Range<usize>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// `asInt` or `asDouble`, as a double.
    pub value: Option<f64>,
}

/// One data point attribute: its key and its value as text ([`attribute_text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeView<'a> {
    pub key: &'a str,
    pub text: Option<Cow<'a, str>>,
}

/// Whether either reader looks at the metric named `name` (as pushed).
pub fn is_read(name: &str) -> bool {
    rule_for(name).is_some() || is_apply_signal(&normalise_metric_name(name))
}

/// The name a histogram-like data kind is reported by in rejections.
pub const HISTOGRAM: &str = "histogram";
pub const EXPONENTIAL_HISTOGRAM: &str = "exponential histogram";
pub const SUMMARY: &str = "summary";

impl<'a> PushView<'a> {
    /// The view of a decoded request (OTLP/JSON, tests).
    pub fn from_request(request: &'a ExportMetricsServiceRequest) -> Self {
        let mut view = PushView::default();
        for metric in all_metrics(request) {
            if !is_read(&metric.name) {
                continue;
            }
            let data = match &metric.data {
                None => DataView::None,
                Some(metric::Data::Gauge(gauge)) => view.number_points(&gauge.data_points, false),
                Some(metric::Data::Sum(sum)) => view.number_points(
                    &sum.data_points,
                    sum.aggregation_temporality == AggregationTemporality::Delta as i32,
                ),
                Some(metric::Data::Histogram(histogram)) => {
                    DataView::Other { kind: HISTOGRAM, count: histogram.data_points.len() }
                }
                Some(metric::Data::ExponentialHistogram(histogram)) => {
                    DataView::Other { kind: EXPONENTIAL_HISTOGRAM, count: histogram.data_points.len() }
                }
                Some(metric::Data::Summary(summary)) => {
                    DataView::Other { kind: SUMMARY, count: summary.data_points.len() }
                }
            };
            view.metrics.push(MetricView { name: &metric.name, data });
        }
        view
    }

    fn number_points(&mut self, points: &'a [NumberDataPoint], delta: bool) -> DataView {
        let first = self.points.len();
        for point in points {
            let attributes_from = self.attributes.len();
            self.attributes.extend(point.attributes.iter().map(|attribute| AttributeView {
                key: &attribute.key,
                text: attribute_text(attribute.value.as_ref()),
            }));
            self.points.push(PointView {
                attributes: attributes_from..self.attributes.len(),
                start_time_unix_nano: point.start_time_unix_nano,
                time_unix_nano: point.time_unix_nano,
                value: point_value(point),
            });
        }
        DataView::Number { points: first..self.points.len(), delta }
    }

    /// The points of a [`DataView::Number`].
    pub fn points(&self, range: &Range<usize>) -> &[PointView] {
        &self.points[range.clone()]
    }

    /// The attributes of a point, in the order the push carries them.
    pub fn attributes(&self, point: &PointView) -> &[AttributeView<'a>] {
        &self.attributes[point.attributes.clone()]
    }

    /// Starts a number metric's points (the wire decoder adds them one by one).
    pub(super) fn begin_points(&self) -> usize {
        self.points.len()
    }

    /// Adds an attribute of the point being decoded (before [`PushView::push_point`]).
    pub(super) fn push_attribute(&mut self, attribute: AttributeView<'a>) {
        self.attributes.push(attribute);
    }

    pub(super) fn attributes_len(&self) -> usize {
        self.attributes.len()
    }

    /// Adds a point whose attributes were pushed since `attributes_from`.
    pub(super) fn push_point(&mut self, attributes_from: usize, start: u64, time: u64, value: Option<f64>) {
        self.points.push(PointView {
            attributes: attributes_from..self.attributes.len(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            value,
        });
    }
}

/// The text of the first attribute named `key` (`None` when that attribute has no value).
pub fn attribute<'v>(attributes: &'v [AttributeView<'_>], key: &str) -> Option<&'v str> {
    attributes.iter().find(|attribute| attribute.key == key).and_then(|attribute| attribute.text.as_deref())
}
