//! The protobuf `ExportMetricsServiceRequest` of a push read straight into a [`PushView`], without
//! building the request: no `String` per attribute, no `Vec` per point, nothing for the metrics
//! linkmesh does not read.
//!
//! Invariants:
//! - It accepts exactly the bytes `ExportMetricsServiceRequest::decode` (prost 0.14) accepts: the whole
//!   message is validated first against the OTLP schema as prost checks it (keys, varints, wire type
//!   of every known field, lengths, UTF-8 of every string, packed fields, groups in unknown fields,
//!   prost's recursion limit of 100), including the parts that are then skipped.
//! - What it reads equals `PushView::from_request` of the prost-decoded request, merge rules included:
//!   a repeated singular field keeps its last value, a repeated message field merges, a oneof keeps its
//!   last variant (merging a message variant repeated in a row).
//!
//! Both are checked by `tests/otlp_wire.rs` (fixtures, random requests, mutated bytes) and by the
//! `otlp_wire` fuzz target, which compares this decoder with prost on arbitrary bytes.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use prost::encoding::{decode_key, decode_varint, WireType};
use prost::Message as _;

use super::otlp_values::attribute_text;
use super::push_view::{
    is_read, AttributeView, DataView, MetricView, PushView, EXPONENTIAL_HISTOGRAM, HISTOGRAM, SUMMARY,
};

/// prost's `RECURSION_LIMIT`: nested messages (and groups in unknown fields) deeper than this are refused.
const RECURSION_LIMIT: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Prost(#[from] prost::DecodeError),
    #[error("buffer underflow")]
    Underflow,
    #[error("invalid wire type: {found:?} (expected {expected:?})")]
    WireType { found: WireType, expected: WireType },
    #[error("invalid string value: data is not UTF-8 encoded")]
    NotUtf8,
    #[error("recursion limit reached")]
    RecursionLimit,
    #[error("unexpected end group tag")]
    UnexpectedEndGroup,
    #[error("delimited length exceeded")]
    PackedLength,
}

/// Decodes a protobuf `ExportMetricsServiceRequest` into the view of what linkmesh reads.
pub fn decode_push(message: &[u8]) -> Result<PushView<'_>, WireError> {
    validate(Type::Request, message, RECURSION_LIMIT)?;
    let mut view = PushView::default();
    for field in Fields(message) {
        let Field { tag: 1, value: Value::Delimited(resource_metrics) } = field? else { continue };
        for field in Fields(resource_metrics) {
            let Field { tag: 2, value: Value::Delimited(scope_metrics) } = field? else { continue };
            for field in Fields(scope_metrics) {
                let Field { tag: 2, value: Value::Delimited(metric) } = field? else { continue };
                read_metric(metric, &mut view)?;
            }
        }
    }
    Ok(view)
}

// ---- Validation: what prost refuses ----------------------------------------------------------------

/// The messages of `ExportMetricsServiceRequest` (opentelemetry-proto 0.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Request,
    ResourceMetrics,
    Resource,
    EntityRef,
    ScopeMetrics,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
    NumberDataPoint,
    HistogramDataPoint,
    ExponentialHistogramDataPoint,
    Buckets,
    SummaryDataPoint,
    ValueAtQuantile,
    Exemplar,
}

/// How prost decodes a known field (and so what it refuses).
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// int32, uint32, int64, uint64, sint32, bool, enum.
    Varint,
    /// fixed64, sfixed64, double.
    Fixed64,
    String,
    Bytes,
    Message(Type),
    /// `repeated uint64`: packed or not.
    RepeatedVarint,
    /// `repeated fixed64` / `repeated double`: packed or not.
    RepeatedFixed64,
}

/// The known fields of each message, from opentelemetry-proto's generated types.
fn kind(message: Type, tag: u32) -> Option<Kind> {
    use Kind::*;
    use Type as T;
    Some(match (message, tag) {
        (T::Request, 1) => Message(T::ResourceMetrics),
        (T::ResourceMetrics, 1) => Message(T::Resource),
        (T::ResourceMetrics, 2) => Message(T::ScopeMetrics),
        (T::ResourceMetrics | T::ScopeMetrics, 3) => String,
        (T::Resource, 1) => Message(T::KeyValue),
        (T::Resource, 2) => Varint,
        (T::Resource, 3) => Message(T::EntityRef),
        (T::EntityRef, 1..=4) => String,
        (T::ScopeMetrics, 1) => Message(T::Scope),
        (T::ScopeMetrics, 2) => Message(T::Metric),
        (T::Scope, 1 | 2) => String,
        (T::Scope, 3) => Message(T::KeyValue),
        (T::Scope, 4) => Varint,
        (T::KeyValue, 1) => String,
        (T::KeyValue, 2) => Message(T::AnyValue),
        (T::KeyValue, 3) => Varint,
        (T::AnyValue, 1) => String,
        (T::AnyValue, 2 | 3 | 8) => Varint,
        (T::AnyValue, 4) => Fixed64,
        (T::AnyValue, 5) => Message(T::ArrayValue),
        (T::AnyValue, 6) => Message(T::KeyValueList),
        (T::AnyValue, 7) => Bytes,
        (T::ArrayValue, 1) => Message(T::AnyValue),
        (T::KeyValueList, 1) => Message(T::KeyValue),
        (T::Metric, 1..=3) => String,
        (T::Metric, 12) => Message(T::KeyValue),
        (T::Metric, 5) => Message(T::Gauge),
        (T::Metric, 7) => Message(T::Sum),
        (T::Metric, 9) => Message(T::Histogram),
        (T::Metric, 10) => Message(T::ExponentialHistogram),
        (T::Metric, 11) => Message(T::Summary),
        (T::Gauge, 1) => Message(T::NumberDataPoint),
        (T::Sum, 1) => Message(T::NumberDataPoint),
        (T::Sum, 2 | 3) => Varint,
        (T::Histogram, 1) => Message(T::HistogramDataPoint),
        (T::ExponentialHistogram, 1) => Message(T::ExponentialHistogramDataPoint),
        (T::Histogram | T::ExponentialHistogram, 2) => Varint,
        (T::Summary, 1) => Message(T::SummaryDataPoint),
        (T::NumberDataPoint, 7) => Message(T::KeyValue),
        (T::NumberDataPoint, 2 | 3 | 4 | 6) => Fixed64,
        (T::NumberDataPoint, 5) => Message(T::Exemplar),
        (T::NumberDataPoint, 8) => Varint,
        (T::HistogramDataPoint, 9) => Message(T::KeyValue),
        (T::HistogramDataPoint, 2..=5 | 11 | 12) => Fixed64,
        (T::HistogramDataPoint, 6 | 7) => RepeatedFixed64,
        (T::HistogramDataPoint, 8) => Message(T::Exemplar),
        (T::HistogramDataPoint, 10) => Varint,
        (T::ExponentialHistogramDataPoint, 1) => Message(T::KeyValue),
        (T::ExponentialHistogramDataPoint, 2..=5 | 7 | 12..=14) => Fixed64,
        (T::ExponentialHistogramDataPoint, 6 | 10) => Varint,
        (T::ExponentialHistogramDataPoint, 8 | 9) => Message(T::Buckets),
        (T::ExponentialHistogramDataPoint, 11) => Message(T::Exemplar),
        (T::Buckets, 1) => Varint,
        (T::Buckets, 2) => RepeatedVarint,
        (T::SummaryDataPoint, 7) => Message(T::KeyValue),
        (T::SummaryDataPoint, 2..=5) => Fixed64,
        (T::SummaryDataPoint, 6) => Message(T::ValueAtQuantile),
        (T::SummaryDataPoint, 8) => Varint,
        (T::ValueAtQuantile, 1 | 2) => Fixed64,
        (T::Exemplar, 7) => Message(T::KeyValue),
        (T::Exemplar, 2 | 3 | 6) => Fixed64,
        (T::Exemplar, 4 | 5) => Bytes,
        _ => return None,
    })
}

fn take<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], WireError> {
    if len > buf.len() as u64 {
        return Err(WireError::Underflow);
    }
    let (head, tail) = buf.split_at(len as usize);
    *buf = tail;
    Ok(head)
}

fn delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let len = decode_varint(buf)?;
    take(buf, len)
}

fn expect(found: WireType, expected: WireType) -> Result<(), WireError> {
    if found == expected {
        Ok(())
    } else {
        Err(WireError::WireType { found, expected })
    }
}

fn text(bytes: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::NotUtf8)
}

/// Checks `buf` as the body of a `message` at recursion budget `depth` (prost's `DecodeContext`). A
/// nested message is checked within its declared length: a field running past it is an error here as
/// it is in prost (there as "delimited length exceeded").
fn validate(message: Type, mut buf: &[u8], depth: u32) -> Result<(), WireError> {
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        match kind(message, tag) {
            None => skip(wire_type, tag, &mut buf, depth)?,
            Some(Kind::Varint) => {
                expect(wire_type, WireType::Varint)?;
                decode_varint(&mut buf)?;
            }
            Some(Kind::Fixed64) => {
                expect(wire_type, WireType::SixtyFourBit)?;
                take(&mut buf, 8)?;
            }
            Some(Kind::String) => {
                expect(wire_type, WireType::LengthDelimited)?;
                text(delimited(&mut buf)?)?;
            }
            Some(Kind::Bytes) => {
                expect(wire_type, WireType::LengthDelimited)?;
                delimited(&mut buf)?;
            }
            Some(Kind::Message(inner)) => {
                expect(wire_type, WireType::LengthDelimited)?;
                if depth == 0 {
                    return Err(WireError::RecursionLimit);
                }
                validate(inner, delimited(&mut buf)?, depth - 1)?;
            }
            Some(Kind::RepeatedVarint) => {
                if wire_type == WireType::LengthDelimited {
                    let mut packed = delimited(&mut buf)?;
                    while !packed.is_empty() {
                        decode_varint(&mut packed)?;
                    }
                } else {
                    expect(wire_type, WireType::Varint)?;
                    decode_varint(&mut buf)?;
                }
            }
            Some(Kind::RepeatedFixed64) => {
                if wire_type == WireType::LengthDelimited {
                    if delimited(&mut buf)?.len() % 8 != 0 {
                        return Err(WireError::PackedLength);
                    }
                } else {
                    expect(wire_type, WireType::SixtyFourBit)?;
                    take(&mut buf, 8)?;
                }
            }
        }
    }
    Ok(())
}

/// prost's `skip_field`: an unknown field, a group with everything in it.
fn skip(wire_type: WireType, tag: u32, buf: &mut &[u8], depth: u32) -> Result<(), WireError> {
    if depth == 0 {
        return Err(WireError::RecursionLimit);
    }
    let len = match wire_type {
        WireType::Varint => {
            decode_varint(buf)?;
            0
        }
        WireType::ThirtyTwoBit => 4,
        WireType::SixtyFourBit => 8,
        WireType::LengthDelimited => decode_varint(buf)?,
        WireType::StartGroup => loop {
            let (inner_tag, inner_wire_type) = decode_key(buf)?;
            if inner_wire_type == WireType::EndGroup {
                if inner_tag != tag {
                    return Err(WireError::UnexpectedEndGroup);
                }
                break 0;
            }
            skip(inner_wire_type, inner_tag, buf, depth - 1)?;
        },
        WireType::EndGroup => return Err(WireError::UnexpectedEndGroup),
    };
    take(buf, len)?;
    Ok(())
}

// ---- Reading: what linkmesh keeps (on validated bytes) ---------------------------------------------

enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Delimited(&'a [u8]),
    /// A fixed32 or a group: nothing linkmesh reads.
    Other,
}

struct Field<'a> {
    tag: u32,
    value: Value<'a>,
}

/// The fields of a message body, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.read())
    }
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<Field<'a>, WireError> {
        let buf = &mut self.0;
        let (tag, wire_type) = decode_key(buf)?;
        let value = match wire_type {
            WireType::Varint => Value::Varint(decode_varint(buf)?),
            WireType::SixtyFourBit => {
                let bytes = take(buf, 8)?;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().map_err(|_| WireError::Underflow)?))
            }
            WireType::LengthDelimited => Value::Delimited(delimited(buf)?),
            WireType::ThirtyTwoBit | WireType::StartGroup | WireType::EndGroup => {
                skip(wire_type, tag, buf, RECURSION_LIMIT)?;
                Value::Other
            }
        };
        Ok(Field { tag, value })
    }
}

/// A message field that may occur more than once and then merges: its payloads in order.
struct Payloads<'a> {
    first: &'a [u8],
    more: Vec<&'a [u8]>,
}

impl<'a> Payloads<'a> {
    fn new(first: &'a [u8]) -> Self {
        Payloads { first, more: Vec::new() }
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

/// Metric data fields (`gauge` 5, `sum` 7, `histogram` 9, `exponential_histogram` 10, `summary` 11).
const DATA_TAGS: [u32; 5] = [5, 7, 9, 10, 11];

fn read_metric<'a>(metric: &'a [u8], view: &mut PushView<'a>) -> Result<(), WireError> {
    let mut name = "";
    // The oneof's last variant, and its payloads since the variant last changed (a repeated variant
    // merges, another one replaces).
    let mut data: Option<(u32, Payloads<'a>)> = None;
    for field in Fields(metric) {
        match field? {
            Field { tag: 1, value: Value::Delimited(bytes) } => name = text(bytes)?,
            Field { tag, value: Value::Delimited(bytes) } if DATA_TAGS.contains(&tag) => match &mut data {
                Some((variant, payloads)) if *variant == tag => payloads.more.push(bytes),
                _ => data = Some((tag, Payloads::new(bytes))),
            },
            _ => {}
        }
    }
    if !is_read(name) {
        return Ok(());
    }
    let data = match data {
        None => DataView::None,
        Some((5, payloads)) => read_number_points(&payloads, false, view)?,
        Some((7, payloads)) => read_number_points(&payloads, true, view)?,
        Some((tag, payloads)) => {
            let kind = match tag {
                9 => HISTOGRAM,
                10 => EXPONENTIAL_HISTOGRAM,
                _ => SUMMARY,
            };
            let mut count = 0;
            for payload in payloads.iter() {
                for field in Fields(payload) {
                    if field?.tag == 1 {
                        count += 1;
                    }
                }
            }
            DataView::Other { kind, count }
        }
    };
    view.metrics.push(MetricView { name, data });
    Ok(())
}

/// The points of a gauge or sum (`data_points` 1; a sum's `aggregation_temporality` 2).
fn read_number_points<'a>(
    payloads: &Payloads<'a>,
    sum: bool,
    view: &mut PushView<'a>,
) -> Result<DataView, WireError> {
    let first = view.begin_points();
    let mut temporality = 0i32;
    for payload in payloads.iter() {
        for field in Fields(payload) {
            match field? {
                Field { tag: 1, value: Value::Delimited(point) } => read_point(point, view)?,
                // prost reads an enum as `varint as i32`.
                Field { tag: 2, value: Value::Varint(value) } if sum => temporality = value as i32,
                _ => {}
            }
        }
    }
    let delta = sum && temporality == AggregationTemporality::Delta as i32;
    Ok(DataView::Number { points: first..view.begin_points(), delta })
}

/// A `NumberDataPoint`: attributes 7, start 2, time 3, `as_double` 4, `as_int` 6.
fn read_point<'a>(point: &'a [u8], view: &mut PushView<'a>) -> Result<(), WireError> {
    let attributes_from = view.attributes_len();
    let (mut start, mut time, mut value) = (0, 0, None);
    for field in Fields(point) {
        match field? {
            Field { tag: 7, value: Value::Delimited(attribute) } => {
                view.push_attribute(read_attribute(attribute)?)
            }
            Field { tag: 2, value: Value::Fixed64(nanos) } => start = nanos,
            Field { tag: 3, value: Value::Fixed64(nanos) } => time = nanos,
            Field { tag: 4, value: Value::Fixed64(bits) } => value = Some(f64::from_bits(bits)),
            Field { tag: 6, value: Value::Fixed64(bits) } => value = Some(bits as i64 as f64),
            _ => {}
        }
    }
    view.push_point(attributes_from, start, time, value);
    Ok(())
}

/// A `KeyValue`: key 1, value 2 (an `AnyValue`, merged when repeated).
fn read_attribute(attribute: &[u8]) -> Result<AttributeView<'_>, WireError> {
    let mut key = "";
    let mut value: Option<Payloads<'_>> = None;
    for field in Fields(attribute) {
        match field? {
            Field { tag: 1, value: Value::Delimited(bytes) } => key = text(bytes)?,
            Field { tag: 2, value: Value::Delimited(bytes) } => match &mut value {
                Some(payloads) => payloads.more.push(bytes),
                None => value = Some(Payloads::new(bytes)),
            },
            _ => {}
        }
    }
    let text = match value {
        Some(payloads) => any_value_text(&payloads)?,
        None => None,
    };
    Ok(AttributeView { key, text })
}

/// [`attribute_text`] of an `AnyValue`: its oneof's last variant. Strings, bools, ints and doubles are
/// read here; the rare others (arrays, maps, bytes) are decoded by prost and printed as `attribute_text` does.
fn any_value_text<'a>(payloads: &Payloads<'a>) -> Result<Option<Cow<'a, str>>, WireError> {
    let mut last = None;
    for payload in payloads.iter() {
        for field in Fields(payload) {
            let field = field?;
            if (1..=8).contains(&field.tag) {
                last = Some(field);
            }
        }
    }
    Ok(match last {
        None => None,
        Some(Field { tag: 1, value: Value::Delimited(bytes) }) => Some(Cow::Borrowed(text(bytes)?)),
        Some(Field { tag: 2, value: Value::Varint(flag) }) => Some(Cow::Owned((flag != 0).to_string())),
        Some(Field { tag: 3, value: Value::Varint(number) }) => Some(Cow::Owned((number as i64).to_string())),
        Some(Field { tag: 4, value: Value::Fixed64(bits) }) => {
            Some(Cow::Owned(f64::from_bits(bits).to_string()))
        }
        Some(_) => {
            let merged: Vec<u8> = payloads.iter().flatten().copied().collect();
            let value = AnyValue::decode(merged.as_slice())?;
            attribute_text(Some(&value)).map(|text| Cow::Owned(text.into_owned()))
        }
    })
}
