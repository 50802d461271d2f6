//! Operator-set labels on collectors, and the label selectors that pick collectors by them.
//!
//! Selectors match labels only, never what a collector reports about itself: a collector token can
//! change its reported attributes, so matching them would let a collector move itself into a
//! selector and receive that selector's destinations and credentials.
//!
//! Syntax (comma-separated requirements, all of which must hold, as Kubernetes' label selectors):
//! `key=value` (`==` too), `key!=value` (also true when the key is absent), `key in (a,b)`,
//! `key notin (a,b)`, `key` (present), `!key` (absent). Values may be double-quoted, with `\"` and
//! `\\` escapes, to hold `,`, `)`, spaces or quotes. The empty selector matches every collector.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Labels on one collector.
pub type Labels = BTreeMap<String, String>;

pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY_LEN: usize = 63;
pub const MAX_LABEL_VALUE_LEN: usize = 256;
pub const MAX_SELECTOR_LEN: usize = 4096;
const MAX_REQUIREMENTS: usize = 64;

/// A label key: ASCII letters, digits, `.`, `_`, `-` and `/`, starting and ending with a letter or a
/// digit, at most [`MAX_LABEL_KEY_LEN`] bytes.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if key.is_empty() || key.len() > MAX_LABEL_KEY_LEN {
        return Err(format!("label key {key:?} must be 1-{MAX_LABEL_KEY_LEN} characters"));
    }
    let edges_ok = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !edges_ok || !key.chars().all(valid_char) {
        return Err(format!(
            "label key {key:?} may hold letters, digits, '.', '_', '-' and '/', and must start and end with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// A label value: any text up to [`MAX_LABEL_VALUE_LEN`] bytes without control characters (values
/// end up inside rendered configs through templates, where they are always quoted as text).
pub fn check_label_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_LABEL_VALUE_LEN {
        return Err(format!("label {key:?}: values are at most {MAX_LABEL_VALUE_LEN} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("label {key:?}: values must not contain control characters"));
    }
    Ok(())
}

/// Checks a whole label set.
pub fn check_labels(labels: &Labels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("at most {MAX_LABELS} labels per collector"));
    }
    for (key, value) in labels {
        check_label_key(key)?;
        check_label_value(key, value)?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::Equals(key, value) => labels.get(key) == Some(value),
            Requirement::NotEquals(key, value) => labels.get(key) != Some(value),
            Requirement::In(key, values) => labels.get(key).is_some_and(|value| values.contains(value)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|value| !values.contains(value)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::Absent(key) => !labels.contains_key(key),
        }
    }
}

/// A parsed label selector. Kept as its text in the model (`Selector` serializes as text), parsed
/// again on load, so the stored form is what the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    requirements: Vec<Requirement>,
}

/// Why a selector does not parse: the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

impl Selector {
    /// The selector that matches every collector.
    pub fn everything() -> Selector {
        Selector { text: String::new(), requirements: Vec::new() }
    }

    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        if text.len() > MAX_SELECTOR_LEN {
            return Err(SelectorError(format!("a selector is at most {MAX_SELECTOR_LEN} bytes")));
        }
        let requirements = Parser { text, position: 0 }.requirements()?;
        if requirements.len() > MAX_REQUIREMENTS {
            return Err(SelectorError(format!("a selector has at most {MAX_REQUIREMENTS} requirements")));
        }
        Ok(Selector { text: text.trim().to_owned(), requirements })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|requirement| requirement.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Selector {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Selector".into()
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A label selector: comma-separated `key=value`, `key!=value`, `key in (a,b)`, \
                            `key notin (a,b)`, `key`, `!key`; empty matches every collector"
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.position = self.text.len() - trimmed.len();
    }

    fn error(&self, problem: &str) -> SelectorError {
        SelectorError(format!("selector {:?}: {problem} at byte {}", self.text, self.position))
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(token) {
            self.position += token.len();
            true
        } else {
            false
        }
    }

    fn requirements(mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        self.skip_spaces();
        if self.rest().is_empty() {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.requirement()?);
            self.skip_spaces();
            if self.rest().is_empty() {
                return Ok(requirements);
            }
            if !self.eat(",") {
                return Err(self.error("expected ','"));
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.eat("!") {
            return Ok(Requirement::Absent(self.key()?));
        }
        let key = self.key()?;
        self.skip_spaces();
        if self.eat("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        if self.eat("==") || self.eat("=") {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        if self.word("notin") {
            return Ok(Requirement::NotIn(key, self.value_set()?));
        }
        if self.word("in") {
            return Ok(Requirement::In(key, self.value_set()?));
        }
        if self.rest().is_empty() || self.rest().starts_with(',') {
            return Ok(Requirement::Exists(key));
        }
        Err(self.error("expected '=', '!=', 'in' or 'notin'"))
    }

    /// An operator word followed by a space or '(' (so a key named `index` is not `in`).
    fn word(&mut self, word: &str) -> bool {
        self.skip_spaces();
        let follows = self.rest().strip_prefix(word).and_then(|after| after.chars().next());
        if follows.is_some_and(|c| c == '(' || c.is_whitespace()) {
            self.position += word.len();
            true
        } else {
            false
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        self.skip_spaces();
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
            .unwrap_or(rest.len());
        let key = rest[..end].to_owned();
        check_label_key(&key).map_err(|problem| self.error(&problem))?;
        self.position += end;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        self.skip_spaces();
        if self.rest().starts_with('"') {
            return self.quoted();
        }
        let rest = self.rest();
        let end = rest.find([',', '(', ')', '"']).unwrap_or(rest.len());
        let value = rest[..end].trim_end().to_owned();
        self.position += end;
        check_label_value("selector", &value).map_err(|problem| self.error(&problem))?;
        Ok(value)
    }

    fn quoted(&mut self) -> Result<String, SelectorError> {
        self.position += 1;
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((offset, c)) = chars.next() {
            match c {
                '"' => {
                    self.position += offset + 1;
                    check_label_value("selector", &value).map_err(|problem| self.error(&problem))?;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    _ => return Err(self.error("only \\\" and \\\\ escapes are allowed in a quoted value")),
                },
                other => value.push(other),
            }
        }
        Err(self.error("unterminated quoted value"))
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        if !self.eat("(") {
            return Err(self.error("expected '('"));
        }
        let mut values = vec![self.value()?];
        loop {
            if self.eat(")") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err(self.error("expected ',' or ')'"));
            }
            values.push(self.value()?);
        }
    }
}

/// Names in the order people expect: runs of digits compare by value (`sim-2` before `sim-10`),
/// the rest case-insensitively, ties broken by the exact text.
pub fn natural_cmp(left: &str, right: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut left_rest, mut right_rest) = (left.as_bytes(), right.as_bytes());
    loop {
        match (left_rest.first(), right_rest.first()) {
            (None, None) => return left.cmp(right),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
                let left_digits = left_rest.iter().take_while(|c| c.is_ascii_digit()).count();
                let right_digits = right_rest.iter().take_while(|c| c.is_ascii_digit()).count();
                let trim = |digits: &[u8]| -> usize { digits.iter().take_while(|c| **c == b'0').count() };
                let (left_number, right_number) = (&left_rest[..left_digits], &right_rest[..right_digits]);
                let left_significant = &left_number[trim(left_number)..];
                let right_significant = &right_number[trim(right_number)..];
                let order = left_significant
                    .len()
                    .cmp(&right_significant.len())
                    .then_with(|| left_significant.cmp(right_significant));
                if order != Ordering::Equal {
                    return order;
                }
                left_rest = &left_rest[left_digits..];
                right_rest = &right_rest[right_digits..];
            }
            (Some(a), Some(b)) => {
                let order = a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                left_rest = &left_rest[1..];
                right_rest = &right_rest[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn selectors_match_labels_as_kubernetes_does() {
        let prod_us = labels(&[("env", "prod"), ("region", "us")]);
        let prod_eu = labels(&[("env", "prod"), ("region", "eu")]);
        let unlabelled = Labels::new();
        let cases = [
            ("", [true, true, true]),
            ("env=prod", [true, true, false]),
            ("env==prod,region!=eu", [true, false, false]),
            ("region!=eu", [true, false, true]),
            ("region in (us, ap)", [true, false, false]),
            ("region notin (us)", [false, true, true]),
            ("region", [true, true, false]),
            ("!region", [false, false, true]),
            (" env = prod , !team ", [true, true, false]),
        ];
        for (text, expected) in cases {
            let selector = Selector::parse(text).expect(text);
            let got = [&prod_us, &prod_eu, &unlabelled].map(|labels| selector.matches(labels));
            assert_eq!(got, expected, "{text:?}");
        }
    }

    #[test]
    fn quoted_values_hold_separators_and_quotes() {
        let selector = Selector::parse(r#"team="a, \"b\" (c)""#).expect("parses");
        assert!(selector.matches(&labels(&[("team", r#"a, "b" (c)"#)])));
        assert!(!selector.matches(&labels(&[("team", "a")])));
    }

    #[test]
    fn bad_selectors_say_where() {
        for (text, needle) in [
            ("env=prod,", "label key"),
            ("=prod", "label key"),
            ("env prod", "expected '='"),
            ("env in prod", "expected '('"),
            ("env in (a", "expected ',' or ')'"),
            ("env=\"open", "unterminated"),
            ("env=\"a\\n\"", "escapes"),
            ("-env=x", "label key"),
        ] {
            let error = Selector::parse(text).expect_err(text).0;
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_key_that_starts_with_an_operator_word_is_a_key() {
        let selector = Selector::parse("index=1,inner,notinside!=x").expect("parses");
        assert!(selector.matches(&labels(&[("index", "1"), ("inner", "")])));
    }

    #[test]
    fn selectors_round_trip_through_serde_as_their_text() {
        let selector = Selector::parse("env=prod, region in (us,eu)").expect("parses");
        let json = serde_json::to_string(&selector).expect("serializes");
        assert_eq!(json, "\"env=prod, region in (us,eu)\"");
        assert_eq!(serde_json::from_str::<Selector>(&json).expect("parses"), selector);
        assert!(serde_json::from_str::<Selector>("\"env in\"").is_err());
    }

    #[test]
    fn label_values_refuse_control_characters_and_keys_their_odd_characters() {
        assert!(check_labels(&labels(&[("env", "quote\" ${x} ok")])).is_ok());
        assert!(check_labels(&labels(&[("env", "line\nbreak")])).is_err());
        assert!(check_labels(&labels(&[("e nv", "x")])).is_err());
        assert!(check_labels(&labels(&[("env.", "x")])).is_err());
        assert!(check_labels(&labels(&[("example.com/team", "x")])).is_ok());
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["sim-10", "sim-2", "Sim-1", "sim-100", "sim-02", "alpha", "sim-1"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["alpha", "Sim-1", "sim-1", "sim-02", "sim-2", "sim-10", "sim-100"]);
    }

    proptest! {
        #[test]
        fn natural_order_is_a_total_order(mut names in proptest::collection::vec("[a-c0-9]{0,6}", 0..30)) {
            names.sort_by(|a, b| natural_cmp(a, b));
            for pair in names.windows(2) {
                prop_assert_ne!(natural_cmp(&pair[0], &pair[1]), std::cmp::Ordering::Greater);
            }
            for a in &names {
                for b in &names {
                    prop_assert_eq!(natural_cmp(a, b), natural_cmp(b, a).reverse());
                    prop_assert_eq!(natural_cmp(a, b) == std::cmp::Ordering::Equal, a == b);
                }
            }
        }

        #[test]
        fn parsing_never_panics(text in ".{0,80}") {
            let _ = Selector::parse(&text);
        }
    }
}
