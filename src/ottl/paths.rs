//! The paths each OTTL context accepts, as contrib v0.149.0 resolves them: `ctxcommon.PathExpressionParser`
//! (`pkg/ottl/contexts/internal/ctxcommon/parser.go`) picks the context a path names (`resource.…`,
//! `scope.…`, `instrumentation_scope.…`, the record's own, `otelcol.…`, `cache`), then that context's
//! `PathGetSetter` (`contexts/internal/ctx{log,span,spanevent,metric,datapoint,resource,scope,otelcol}`)
//! takes the segments, and `basePath.isComplete` (`pkg/ottl/functions.go`) refuses any segment or key
//! the getter did not use. The context names a parser knows with `EnablePathContextNames` (used when a
//! text is rewritten with its context prefix) come from `contexts/ottl<context>`.

use super::Context;

/// One path segment: its name and how many keys (`[…]`) follow it.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub name: &'a str,
    pub keys: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Resource,
    Scope,
    Log,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    OtelCol,
}

fn own(context: Context) -> &'static str {
    context.as_str()
}

/// The context parsers `pathExpressionParser` registers for `context`, by name.
fn parsers(context: Context) -> &'static [(&'static str, Part)] {
    const COMMON: [(&str, Part); 4] = [
        ("resource", Part::Resource),
        ("scope", Part::Scope),
        ("instrumentation_scope", Part::Scope),
        ("otelcol", Part::OtelCol),
    ];
    match context {
        Context::Log => &[COMMON[0], COMMON[1], COMMON[2], COMMON[3], ("log", Part::Log)],
        Context::Span => &[COMMON[0], COMMON[1], COMMON[2], COMMON[3], ("span", Part::Span)],
        Context::SpanEvent => &[
            COMMON[0],
            COMMON[1],
            COMMON[2],
            COMMON[3],
            ("span", Part::Span),
            ("spanevent", Part::SpanEvent),
        ],
        Context::Metric => &[COMMON[0], COMMON[1], COMMON[2], COMMON[3], ("metric", Part::Metric)],
        Context::DataPoint => &[
            COMMON[0],
            COMMON[1],
            COMMON[2],
            COMMON[3],
            ("metric", Part::Metric),
            ("datapoint", Part::DataPoint),
        ],
        Context::Resource => &[("resource", Part::Resource), ("otelcol", Part::OtelCol)],
        Context::Scope => &[COMMON[0], COMMON[1], COMMON[2], COMMON[3]],
    }
}

/// The names `EnablePathContextNames` gives `context`'s parser.
fn context_names(context: Context) -> &'static [&'static str] {
    match context {
        Context::Log => &["log", "instrumentation_scope", "scope", "resource", "otelcol"],
        Context::Span => &["span", "resource", "instrumentation_scope", "scope", "otelcol"],
        Context::SpanEvent => &["spanevent", "span", "resource", "instrumentation_scope", "scope", "otelcol"],
        Context::Metric => &["metric", "instrumentation_scope", "scope", "resource", "otelcol"],
        Context::DataPoint => {
            &["datapoint", "resource", "instrumentation_scope", "scope", "metric", "otelcol"]
        }
        Context::Resource => &["resource", "otelcol"],
        Context::Scope => &["scope", "resource", "otelcol"],
    }
}

/// Checks a path in `context`. `prefixed` is the transform processor's (and the filter's context-tagged
/// lists') rewrite: a path whose first segment is not one of the context names gets the context's own
/// name put before it.
pub fn check(
    context: Context,
    prefixed: bool,
    path_context: Option<Segment<'_>>,
    fields: &[Segment<'_>],
) -> Result<(), String> {
    let mut all: Vec<Segment<'_>> = Vec::with_capacity(fields.len() + 1);
    all.extend(path_context);
    all.extend_from_slice(fields);
    let unknown = |segment: &Segment<'_>| {
        format!("unknown path {:?} in the {} context", segment.name, context.as_str())
    };
    let (part_name, rest): (&str, &[Segment<'_>]) = if prefixed {
        match path_context {
            Some(named) if context_names(context).contains(&named.name) => (named.name, fields),
            _ => (own(context), &all[..]),
        }
    } else if let Some(&(name, _)) = parsers(context).iter().find(|(name, _)| *name == all[0].name) {
        if all[0].keys > 0 {
            return Err(format!("the context name {name:?} cannot be indexed"));
        }
        if all.len() == 1 {
            return Err(format!("the path {name:?} names a context but no field of it"));
        }
        (name, &all[1..])
    } else {
        (own(context), &all[..])
    };
    let first = rest[0];
    if first.name == "cache" {
        if part_name != own(context) {
            return Err(format!(
                "cache is only accessible in the {} context, not through {part_name}",
                own(context)
            ));
        }
        return leaf(rest, true)
            .map_err(|()| format!("the path cache takes only keys, in the {} context", own(context)));
    }
    let Some(&(_, part)) = parsers(context).iter().find(|(name, _)| *name == part_name) else {
        return Err(unknown(&first));
    };
    let known = match part {
        Part::Resource => resource(rest),
        Part::Scope => scope(rest),
        Part::Log => log(rest),
        Part::Span => span(rest),
        Part::SpanEvent => {
            if first.name == "event_index" {
                Some(leaf(rest, false))
            } else {
                span_event(rest)
            }
        }
        Part::Metric => metric(rest),
        Part::DataPoint => data_point(rest),
        Part::OtelCol => otelcol(rest),
    };
    match known {
        None => {
            let shown = if part_name == own(context) {
                format!("unknown path {:?} in the {} context", first.name, context.as_str())
            } else {
                format!("unknown path {:?} under {part_name} in the {} context", first.name, context.as_str())
            };
            Err(shown)
        }
        Some(Err(())) => Err(format!(
            "the path {:?} in the {} context does not take the keys or sub-fields given",
            first.name,
            context.as_str()
        )),
        Some(Ok(())) => Ok(()),
    }
}

/// A segment with nothing after it, and keys only where `keyed`.
fn leaf(segments: &[Segment<'_>], keyed: bool) -> Result<(), ()> {
    if segments.len() == 1 && (keyed || segments[0].keys == 0) {
        Ok(())
    } else {
        Err(())
    }
}

/// A segment without keys, optionally followed by one key-less sub-field from `subfields`.
fn with_subfield(segments: &[Segment<'_>], subfields: &[&str]) -> Result<(), ()> {
    if segments[0].keys > 0 {
        return Err(());
    }
    match segments.get(1) {
        None => Ok(()),
        Some(next) if subfields.contains(&next.name) => leaf(&segments[1..], false),
        Some(_) => Err(()),
    }
}

fn resource(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "attributes" => leaf(segments, true),
        "dropped_attributes_count" | "schema_url" => leaf(segments, false),
        _ => return None,
    })
}

fn scope(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "attributes" => leaf(segments, true),
        "name" | "version" | "dropped_attributes_count" | "schema_url" => leaf(segments, false),
        _ => return None,
    })
}

fn log(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "time_unix_nano"
        | "observed_time_unix_nano"
        | "time"
        | "observed_time"
        | "severity_number"
        | "severity_text"
        | "dropped_attributes_count"
        | "flags"
        | "event_name" => leaf(segments, false),
        "attributes" => leaf(segments, true),
        "body" => {
            if segments.len() == 1 {
                Ok(())
            } else {
                with_subfield(segments, &["string"])
            }
        }
        "trace_id" | "span_id" => with_subfield(segments, &["string"]),
        _ => return None,
    })
}

fn span(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "trace_id" | "span_id" | "parent_span_id" => with_subfield(segments, &["string"]),
        "trace_state" => {
            if segments[0].keys > 1 {
                Err(())
            } else {
                leaf(segments, true)
            }
        }
        "name"
        | "start_time_unix_nano"
        | "end_time_unix_nano"
        | "start_time"
        | "end_time"
        | "dropped_attributes_count"
        | "events"
        | "dropped_events_count"
        | "links"
        | "dropped_links_count"
        | "flags" => leaf(segments, false),
        "kind" => with_subfield(segments, &["string", "deprecated_string"]),
        "attributes" => leaf(segments, true),
        "status" => with_subfield(segments, &["code", "message"]),
        _ => return None,
    })
}

fn span_event(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "time_unix_nano" | "time" | "name" | "dropped_attributes_count" => leaf(segments, false),
        "attributes" => leaf(segments, true),
        _ => return None,
    })
}

fn metric(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "name"
        | "description"
        | "unit"
        | "type"
        | "aggregation_temporality"
        | "is_monotonic"
        | "data_points" => leaf(segments, false),
        "metadata" => leaf(segments, true),
        _ => return None,
    })
}

fn data_point(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    Some(match segments[0].name {
        "attributes" => leaf(segments, true),
        "start_time_unix_nano"
        | "time_unix_nano"
        | "start_time"
        | "time"
        | "value_double"
        | "value_int"
        | "exemplars"
        | "flags"
        | "count"
        | "sum"
        | "bucket_counts"
        | "explicit_bounds"
        | "scale"
        | "zero_count"
        | "quantile_values" => leaf(segments, false),
        "positive" | "negative" => with_subfield(segments, &["offset", "bucket_counts"]),
        _ => return None,
    })
}

fn otelcol(segments: &[Segment<'_>]) -> Option<Result<(), ()>> {
    let head = segments[0];
    let next = segments.get(1);
    Some(match (head.name, next.map(|next| next.name)) {
        ("client" | "grpc", None) => Err(()),
        ("client", Some("addr")) if head.keys == 0 => leaf(&segments[1..], false),
        ("client", Some("metadata")) | ("grpc", Some("metadata")) if head.keys == 0 => {
            leaf(&segments[1..], true)
        }
        ("client", Some("auth")) if head.keys == 0 && segments[1].keys == 0 => match segments.get(2) {
            Some(attributes) if attributes.name == "attributes" => leaf(&segments[2..], true),
            _ => Err(()),
        },
        ("client" | "grpc", Some(_)) => Err(()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(text: &'static str) -> Vec<Segment<'static>> {
        text.split('.')
            .map(|part| {
                let keys = part.matches('[').count();
                Segment { name: part.split('[').next().expect("a name"), keys }
            })
            .collect()
    }

    fn ok(context: Context, prefixed: bool, text: &'static str) -> bool {
        let all = segments(text);
        // As the grammar splits it: a first segment followed by `.` and without keys is the context.
        let (path_context, fields) =
            if all.len() > 1 && all[0].keys == 0 { (Some(all[0]), &all[1..]) } else { (None, &all[..]) };
        check(context, prefixed, path_context, fields).is_ok()
    }

    #[test]
    fn record_paths_stay_in_their_context() {
        assert!(ok(Context::Log, false, "severity_text"));
        assert!(!ok(Context::Span, false, "severity_text"));
        assert!(ok(Context::Log, false, "log.attributes[k]"));
        assert!(ok(Context::DataPoint, false, "metric.name"));
        assert!(!ok(Context::Metric, false, "attributes[k]"));
        assert!(ok(Context::SpanEvent, false, "span.name"));
    }

    #[test]
    fn the_scope_context_rewrite_hides_the_legacy_name() {
        assert!(ok(Context::Scope, true, "scope.name"));
        assert!(ok(Context::Scope, true, "name"));
        assert!(!ok(Context::Scope, true, "instrumentation_scope.name"));
        assert!(ok(Context::Log, true, "instrumentation_scope.name"));
    }

    #[test]
    fn unused_keys_and_segments_are_refused() {
        assert!(!ok(Context::Log, false, "severity_text[k]"));
        assert!(ok(Context::Log, false, "body[k]"));
        assert!(ok(Context::Log, false, "body.string"));
        assert!(!ok(Context::Log, false, "body[k].string"));
        assert!(!ok(Context::Span, false, "trace_state[a][b]"));
        assert!(ok(Context::Log, false, "cache[k]"));
        assert!(!ok(Context::Log, false, "resource.cache[k]"));
        assert!(ok(Context::Log, false, "otelcol.client.addr"));
        assert!(!ok(Context::Log, false, "otelcol.client"));
    }
}
