//! Templated fields: a string setting may refer to the collector's labels, and where the setting
//! allows it to the attributes the collector reports, resolved when the config is rendered.
//!
//! Syntax:
//!
//! - `{{labels.KEY}}`: the value of the collector's label `KEY` (operator-set, `model::labels`);
//! - `{{attributes.KEY}}`: the value of the attribute `KEY` the collector reports about itself (its
//!   `local_attributes`), the empty string when it reports none of that name;
//! - `{{"TEXT"}}`: `TEXT` itself (anything but `"`), so `{{"{{"}}` writes a literal `{{`;
//! - spaces are allowed inside the braces (`{{ labels.region }}`); `}}` outside a template is plain
//!   text. `KEY` is everything after the first dot: `{{labels.topology.kubernetes.io/zone}}`.
//!
//! Resolution is a single pass: a resolved value is inserted as it is and never read again, so a label
//! value `{{labels.other}}` stays that literal text. It happens when the [`super::plan::Plan`] is
//! built, to owned strings, before the format quotes anything: the Alloy and YAML renderers quote a
//! resolved value like any other string (`alloy_syntax::quote`, `Yaml::str` with `$` doubled), so no
//! value can become syntax, and since credentials are written only at positions a renderer generates
//! (`super::secrets`), a value that reads `${linkmesh-secret:…}` stays that literal text.
//!
//! Where ([`Templating`], a flag per setting in the catalogue):
//!
//! - every free-text string setting, strings inside lists and the values of maps (`headers`) take
//!   labels; map keys are always literal;
//! - OTTL (filter conditions, transform statements), regular expressions (mask patterns) and values
//!   from a fixed set (enums, `scrapers`) are [`Templating::Literal`]: inserted text would be syntax
//!   there, so a reference in them is refused at the write, naming the field;
//! - attributes only where the catalogue says so: the values of a source's `resource_attributes`
//!   and of the `attributes` step's `insert` and `update`, i.e. data stamped on records. A collector
//!   controls what it reports, so an attribute must never decide where data goes or which endpoint
//!   receives a destination's credentials: endpoints, URLs, headers, brokers, topics, listen
//!   addresses and paths take labels only. Credentials are never templated.
//!
//! Checks: a malformed template, an unknown namespace or an attribute where only labels are allowed is
//! a 400 on the item's write naming the field ([`check`]); `{{labels.KEY}}` where an affected
//! collector has no label `KEY` is a 400 naming the field and the collector, and so is a label change
//! that would leave such a reference dangling (`render::template_check`, run on every write's
//! outcome). Attributes change at run time, so an unreported attribute is no error: it renders empty,
//! and a collector whose config refers to an attribute is re-rendered when its attributes change.

use std::collections::BTreeMap;

use crate::model::labels::{check_label_key, Labels};

/// Which references a setting may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Templating {
    /// Taken as written (OTTL, regular expressions, fixed values); a reference is refused.
    Literal,
    /// `{{labels.KEY}}`.
    Labels,
    /// `{{labels.KEY}}` and `{{attributes.KEY}}`.
    LabelsAndAttributes,
}

impl Templating {
    /// Its name in the catalogue API (`templates` of a setting) and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Templating::Literal => "none",
            Templating::Labels => "labels",
            Templating::LabelsAndAttributes => "labels_and_attributes",
        }
    }
}

/// What a template refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Label(String),
    Attribute(String),
}

/// A parsed text: literal text and references, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Ref(Reference),
}

/// Where every reference begins.
pub const OPEN: &str = "{{";
const CLOSE: &str = "}}";
const MAX_ATTRIBUTE_KEY_LEN: usize = 255;

/// Parses `text`; the problem names what is wrong, for a field error.
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        literal.push_str(&rest[..start]);
        let inner = rest[start + OPEN.len()..].trim_start_matches(' ');
        let (reference, after) = if let Some(quoted) = inner.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| "unclosed \" in {{\"…\"}}".to_owned())?;
            literal.push_str(&quoted[..end]);
            (None, &quoted[end + 1..])
        } else {
            let end = inner.find([' ', '}']).unwrap_or(inner.len());
            (Some(parse_reference(&inner[..end])?), &inner[end..])
        };
        rest = after.trim_start_matches(' ').strip_prefix(CLOSE).ok_or_else(|| {
            "a template {{ is not closed by }} (write {{\"{{\"}} for a literal {{)".to_owned()
        })?;
        if let Some(reference) = reference {
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Ref(reference));
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

fn parse_reference(name: &str) -> Result<Reference, String> {
    let unknown = || {
        format!(
            "unknown template {{{{{name}}}}}: use {{{{labels.KEY}}}} or {{{{attributes.KEY}}}} (write \
             {{{{\"{{{{\"}}}} for a literal {{{{)"
        )
    };
    let (namespace, key) = name.split_once('.').ok_or_else(unknown)?;
    match namespace {
        "labels" => {
            check_label_key(key).map_err(|problem| format!("{{{{labels.{key}}}}}: {problem}"))?;
            Ok(Reference::Label(key.to_owned()))
        }
        "attributes" => {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
            if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY_LEN || !key.chars().all(valid) {
                return Err(format!(
                    "{{{{attributes.{key}}}}}: attribute keys are 1-{MAX_ATTRIBUTE_KEY_LEN} letters, digits, \
                     '.', '_', '-' or '/'"
                ));
            }
            Ok(Reference::Attribute(key.to_owned()))
        }
        _ => Err(unknown()),
    }
}

/// Whether `text` holds a reference (`{{`, optional spaces, `labels.` or `attributes.`): in a
/// [`Templating::Literal`] field that is refused rather than taken literally, since it was surely
/// meant as one.
fn looks_like_reference(text: &str) -> bool {
    text.match_indices(OPEN).any(|(start, _)| {
        let inner = text[start + OPEN.len()..].trim_start_matches(' ');
        inner.starts_with("labels.") || inner.starts_with("attributes.")
    })
}

/// Whether `text` is a template at all: something [`resolve`] changes.
pub fn is_templated(text: &str, templating: Templating) -> bool {
    templating != Templating::Literal && text.contains(OPEN)
}

/// Checks `text` of a field with `templating`, without any collector: the syntax, the namespace, and
/// that attributes appear only where allowed.
pub fn check(text: &str, templating: Templating) -> Result<(), String> {
    match templating {
        Templating::Literal if looks_like_reference(text) => {
            Err("templates are not allowed here: the text is taken literally".to_owned())
        }
        Templating::Literal => Ok(()),
        Templating::Labels => {
            let attribute = parse(text)?.into_iter().find_map(|piece| match piece {
                Piece::Ref(Reference::Attribute(key)) => Some(key),
                _ => None,
            });
            match attribute {
                Some(key) => Err(format!(
                    "{{{{attributes.{key}}}}} is not allowed here, only labels: a collector sets its own \
                     attributes and must not decide where data or credentials go"
                )),
                None => Ok(()),
            }
        }
        Templating::LabelsAndAttributes => parse(text).map(|_| ()),
    }
}

/// The label keys `text` refers to (none for a literal or malformed text).
pub fn labels_used(text: &str, templating: Templating) -> Vec<String> {
    references(text, templating)
        .into_iter()
        .filter_map(|reference| match reference {
            Reference::Label(key) => Some(key),
            Reference::Attribute(_) => None,
        })
        .collect()
}

/// Whether `text` refers to an attribute where that is allowed.
pub fn uses_attributes(text: &str, templating: Templating) -> bool {
    templating == Templating::LabelsAndAttributes
        && references(text, templating).iter().any(|reference| matches!(reference, Reference::Attribute(_)))
}

fn references(text: &str, templating: Templating) -> Vec<Reference> {
    if !is_templated(text, templating) {
        return Vec::new();
    }
    parse(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Ref(reference) => Some(reference),
            Piece::Text(_) => None,
        })
        .collect()
}

/// `text` with every reference replaced by a neutral `x`: what type and emptiness checks see before
/// any collector's values are known.
pub fn mask(text: &str) -> String {
    match parse(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text,
                Piece::Ref(_) => "x".to_owned(),
            })
            .collect(),
        Err(_) => text.to_owned(),
    }
}

/// What templates resolve against: one collector's labels and reported attributes.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub labels: &'a Labels,
    pub attributes: &'a BTreeMap<String, String>,
}

/// `text` with every reference replaced by its value (single pass), and what could not be resolved.
/// A model that skipped the write checks still renders: a malformed text stays as written, a missing
/// label or a disallowed attribute becomes the empty string, each with a problem.
pub fn resolve(text: &str, templating: Templating, values: &Values<'_>) -> (String, Vec<String>) {
    if !is_templated(text, templating) {
        return (text.to_owned(), Vec::new());
    }
    let pieces = match parse(text) {
        Ok(pieces) => pieces,
        Err(problem) => return (text.to_owned(), vec![problem]),
    };
    let mut resolved = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => resolved.push_str(&text),
            Piece::Ref(Reference::Label(key)) => match values.labels.get(&key) {
                Some(value) => resolved.push_str(value),
                None => problems.push(format!("the collector has no label {key:?}")),
            },
            Piece::Ref(Reference::Attribute(key)) if templating == Templating::LabelsAndAttributes => {
                if let Some(value) = values.attributes.get(&key) {
                    resolved.push_str(value);
                }
            }
            Piece::Ref(Reference::Attribute(key)) => {
                problems.push(format!("{{{{attributes.{key}}}}} is not allowed here, only labels"));
            }
        }
    }
    (resolved, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    fn resolved(text: &str, templating: Templating, labels: &Labels, attributes: &Labels) -> String {
        let (text, problems) = resolve(text, templating, &Values { labels, attributes });
        assert!(problems.is_empty(), "{problems:?}");
        text
    }

    #[test]
    fn parses_references_quoted_text_and_spaces() {
        assert_eq!(
            parse("https://{{ labels.region }}.example.com/{{attributes.host.name}}").expect("parses"),
            [
                Piece::Text("https://".to_owned()),
                Piece::Ref(Reference::Label("region".to_owned())),
                Piece::Text(".example.com/".to_owned()),
                Piece::Ref(Reference::Attribute("host.name".to_owned())),
            ]
        );
        assert_eq!(parse("a{{\"{{\"}}b}}").expect("parses"), [Piece::Text("a{{b}}".to_owned())]);
        assert_eq!(
            parse("{{labels.topology.kubernetes.io/zone}}").expect("parses"),
            [Piece::Ref(Reference::Label("topology.kubernetes.io/zone".to_owned()))]
        );
        assert_eq!(
            parse("no templates }} here").expect("parses"),
            [Piece::Text("no templates }} here".into())]
        );
    }

    #[test]
    fn malformed_templates_and_unknown_namespaces_are_errors() {
        for bad in [
            "{{labels.region",
            "{{labels.region}",
            "{{ labels.a b }}",
            "{{region}}",
            "{{env.HOME}}",
            "{{labels.}}",
            "{{labels.-x}}",
            "{{attributes.a b}}",
            "{{\"unclosed}}",
            "{{}}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
            assert!(check(bad, Templating::LabelsAndAttributes).is_err(), "{bad}");
        }
        let problem = parse("{{env.HOME}}").expect_err("unknown namespace");
        assert!(problem.contains("use {{labels.KEY}} or {{attributes.KEY}}"), "{problem}");
    }

    #[test]
    fn resolution_is_a_single_pass() {
        let labels = labels(&[("region", "{{labels.other}}"), ("other", "x")]);
        assert_eq!(
            resolved("{{labels.region}}", Templating::Labels, &labels, &Labels::new()),
            "{{labels.other}}"
        );
        let hostile = "\"\\${env:HOME}${linkmesh-secret:dst_1:password}}}";
        let labels = super::Labels::from([("v".to_owned(), hostile.to_owned())]);
        assert_eq!(
            resolved("a{{labels.v}}b", Templating::Labels, &labels, &Labels::new()),
            format!("a{hostile}b")
        );
    }

    #[test]
    fn attributes_resolve_only_where_allowed_and_unreported_ones_are_empty() {
        let attributes = labels(&[("host", "line\nbreak")]);
        let none = Labels::new();
        assert_eq!(
            resolved(
                "{{attributes.host}}|{{attributes.gone}}",
                Templating::LabelsAndAttributes,
                &none,
                &attributes
            ),
            "line\nbreak|"
        );
        let (text, problems) = resolve(
            "{{attributes.host}}",
            Templating::Labels,
            &Values { labels: &none, attributes: &attributes },
        );
        assert_eq!(text, "");
        assert_eq!(problems.len(), 1);
        assert!(check("{{attributes.host}}", Templating::Labels).is_err());
        assert!(check("{{attributes.host}}", Templating::LabelsAndAttributes).is_ok());
        assert!(uses_attributes("x{{attributes.host}}", Templating::LabelsAndAttributes));
        assert!(!uses_attributes("x{{labels.host}}", Templating::LabelsAndAttributes));
    }

    #[test]
    fn literal_fields_are_never_resolved_and_refuse_references() {
        let labels = labels(&[("region", "eu")]);
        let none = Labels::new();
        let text = "attributes[\"r\"] == \"{{labels.region}}\"";
        assert_eq!(resolved(text, Templating::Literal, &labels, &none), text);
        assert!(check(text, Templating::Literal).is_err());
        assert!(check("{{ attributes.x }}", Templating::Literal).is_err());
        assert!(check("a{{2}}", Templating::Literal).is_ok());
        assert!(labels_used(text, Templating::Literal).is_empty());
    }

    #[test]
    fn missing_labels_are_reported_and_render_empty() {
        let none = Labels::new();
        let (text, problems) = resolve(
            "https://{{labels.region}}.example.com",
            Templating::Labels,
            &Values { labels: &none, attributes: &none },
        );
        assert_eq!(text, "https://.example.com");
        assert_eq!(problems, ["the collector has no label \"region\""]);
        assert_eq!(labels_used("{{labels.a}}{{labels.b}}", Templating::Labels), ["a", "b"]);
    }
}
