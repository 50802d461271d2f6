//! A small YAML emitter for the OTel Collector config: block mappings, block sequences of mappings,
//! flow sequences of scalars, and every string scalar double-quoted JSON-style (a JSON string is a
//! valid YAML double-quoted scalar), so no user text can change the document's structure.
//!
//! The collector expands `${…}` in every string of its config; [`Yaml::str`] escapes `$` as `$$` so
//! user text stays literal. Only [`Yaml::verbatim`] (credential markers in stored text, which is never
//! delivered) is left unescaped.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// A string scalar with `$` escaped for the collector's variable expansion.
    Str(String),
    /// A string scalar emitted as given: credential markers in the stored text only.
    Verbatim(String),
    Int(i64),
    Bool(bool),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn str(text: impl Into<String>) -> Yaml {
        Yaml::Str(text.into())
    }

    pub fn verbatim(text: impl Into<String>) -> Yaml {
        Yaml::Verbatim(text.into())
    }

    pub fn strs<I, S>(items: I) -> Yaml
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Yaml::Seq(items.into_iter().map(|item| Yaml::Str(item.into())).collect())
    }

    pub fn map() -> Yaml {
        Yaml::Map(Vec::new())
    }

    /// Adds `key: value` to a mapping (no effect on other values).
    pub fn with(mut self, key: impl Into<String>, value: Yaml) -> Yaml {
        self.insert(key, value);
        self
    }

    pub fn insert(&mut self, key: impl Into<String>, value: Yaml) {
        if let Yaml::Map(entries) = self {
            entries.push((key.into(), value));
        }
    }

    /// The document text, ending with a newline.
    pub fn to_document(&self) -> String {
        let mut out = String::with_capacity(4096);
        match self {
            Yaml::Map(entries) if !entries.is_empty() => write_map_entries(&mut out, entries, 0),
            other => {
                if !write_inline(&mut out, other) {
                    out.push_str("{}");
                }
                out.push('\n');
            }
        }
        out
    }
}

/// A YAML double-quoted scalar (JSON's string syntax, which YAML reads as the same text).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_quoted(&mut out, text);
    out
}

/// [`quote`] onto `out`. Written directly unless the text has a character JSON escapes (`"`, `\\`,
/// a control character): rendering a fleet's configs is mostly writing plain strings.
fn push_quoted(out: &mut String, text: &str) {
    if text.bytes().any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
        out.push_str(&serde_json::Value::from(text).to_string());
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}

/// Writes a scalar; false (nothing written) for a collection.
fn write_scalar(out: &mut String, value: &Yaml) -> bool {
    match value {
        Yaml::Str(text) if text.contains('$') => push_quoted(out, &text.replace('$', "$$")),
        Yaml::Str(text) | Yaml::Verbatim(text) => push_quoted(out, text),
        Yaml::Int(number) => {
            let _ = write!(out, "{number}");
        }
        Yaml::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Yaml::Seq(_) | Yaml::Map(_) => return false,
    }
    true
}

fn is_scalar(value: &Yaml) -> bool {
    !matches!(value, Yaml::Seq(_) | Yaml::Map(_))
}

/// Writes the value on the key's line: scalars, empty collections, and sequences of scalars; false
/// (nothing written) for anything else.
fn write_inline(out: &mut String, value: &Yaml) -> bool {
    match value {
        Yaml::Seq(items) if items.iter().all(is_scalar) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_scalar(out, item);
            }
            out.push(']');
            true
        }
        Yaml::Map(entries) if entries.is_empty() => {
            out.push_str("{}");
            true
        }
        other => write_scalar(out, other),
    }
}

/// Keys are plain when they cannot be read as anything but that string, quoted otherwise.
fn push_key(out: &mut String, text: &str) {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"]
            .iter()
            .any(|word| text.eq_ignore_ascii_case(word));
    if plain {
        out.push_str(text);
    } else {
        push_quoted(out, text);
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn write_map_entries(out: &mut String, entries: &[(String, Yaml)], indent: usize) {
    for (name, value) in entries {
        push_indent(out, indent);
        push_key(out, name);
        out.push(':');
        write_value(out, value, indent);
    }
}

/// Writes what follows `key:` (or `-`), including the newline.
fn write_value(out: &mut String, value: &Yaml, indent: usize) {
    if is_inline(value) {
        out.push(' ');
        write_inline(out, value);
        out.push('\n');
        return;
    }
    out.push('\n');
    match value {
        Yaml::Map(entries) => write_map_entries(out, entries, indent + 2),
        Yaml::Seq(items) => {
            for item in items {
                write_seq_item(out, item, indent + 2);
            }
        }
        _ => {}
    }
}

/// Whether [`write_inline`] writes `value`.
fn is_inline(value: &Yaml) -> bool {
    match value {
        Yaml::Seq(items) => items.iter().all(is_scalar),
        Yaml::Map(entries) => entries.is_empty(),
        _ => true,
    }
}

fn write_seq_item(out: &mut String, item: &Yaml, indent: usize) {
    match item {
        Yaml::Map(entries) if !entries.is_empty() => {
            // `- first: …` then the other keys aligned under `first`: the first entry is written
            // after the dash instead of its indent.
            push_indent(out, indent);
            out.push_str("- ");
            for (index, (name, value)) in entries.iter().enumerate() {
                if index > 0 {
                    push_indent(out, indent + 2);
                }
                push_key(out, name);
                out.push(':');
                write_value(out, value, indent + 2);
            }
        }
        other => {
            push_indent(out, indent);
            out.push('-');
            write_value(out, other, indent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The fast path writes exactly what JSON's string syntax does.
        #[test]
        fn quoting_is_json_string_syntax(text in "(?s).{0,40}") {
            proptest::prop_assert_eq!(quote(&text), serde_json::Value::from(text.as_str()).to_string());
        }
    }

    #[test]
    fn emits_block_maps_flow_scalars_and_sequences_of_maps() {
        let document = Yaml::map()
            .with(
                "receivers",
                Yaml::map().with("otlp/src_1", Yaml::map().with("endpoint", Yaml::str("0.0.0.0:4317"))),
            )
            .with("list", Yaml::strs(["a", "b\"c"]))
            .with("empty", Yaml::map())
            .with(
                "actions",
                Yaml::Seq(vec![
                    Yaml::map()
                        .with("key", Yaml::str("k"))
                        .with("nested", Yaml::map().with("n", Yaml::Int(1)).with("m", Yaml::Int(2))),
                    Yaml::map().with("flag", Yaml::Bool(true)),
                ]),
            )
            .with("true", Yaml::str("$HOME ${x}"))
            .with("secret", Yaml::verbatim("${linkmesh-secret:dst_1:password}"));
        assert_eq!(
            document.to_document(),
            r#"receivers:
  otlp/src_1:
    endpoint: "0.0.0.0:4317"
list: ["a", "b\"c"]
empty: {}
actions:
  - key: "k"
    nested:
      "n": 1
      m: 2
  - flag: true
"true": "$$HOME $${x}"
secret: "${linkmesh-secret:dst_1:password}"
"#
        );
    }

    #[test]
    fn sequences_of_sequences_nest() {
        let document =
            Yaml::map().with("x", Yaml::Seq(vec![Yaml::Seq(vec![Yaml::map().with("a", Yaml::Int(1))])]));
        assert_eq!(document.to_document(), "x:\n  -\n    - a: 1\n");
    }
}
