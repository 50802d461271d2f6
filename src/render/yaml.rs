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
        let mut out = String::new();
        match self {
            Yaml::Map(entries) if !entries.is_empty() => write_map_entries(&mut out, entries, 0),
            other => {
                out.push_str(&inline(other).unwrap_or_else(|| "{}".to_owned()));
                out.push('\n');
            }
        }
        out
    }
}

/// A YAML double-quoted scalar (JSON's string syntax, which YAML reads as the same text).
pub(crate) fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Str(text) => Some(quote(&text.replace('$', "$$"))),
        Yaml::Verbatim(text) => Some(quote(text)),
        Yaml::Int(number) => Some(number.to_string()),
        Yaml::Bool(flag) => Some(flag.to_string()),
        Yaml::Seq(_) | Yaml::Map(_) => None,
    }
}

/// The value on the key's line: scalars, empty collections, and sequences of scalars.
fn inline(value: &Yaml) -> Option<String> {
    match value {
        Yaml::Seq(items) => {
            let scalars: Option<Vec<String>> = items.iter().map(scalar).collect();
            scalars.map(|scalars| format!("[{}]", scalars.join(", ")))
        }
        Yaml::Map(entries) if entries.is_empty() => Some("{}".to_owned()),
        other => scalar(other),
    }
}

/// Keys are plain when they cannot be read as anything but that string, quoted otherwise.
fn key(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        quote(text)
    }
}

fn write_map_entries(out: &mut String, entries: &[(String, Yaml)], indent: usize) {
    for (name, value) in entries {
        let _ = write!(out, "{:indent$}{}:", "", key(name));
        write_value(out, value, indent);
    }
}

/// Writes what follows `key:` (or `-`), including the newline.
fn write_value(out: &mut String, value: &Yaml, indent: usize) {
    if let Some(text) = inline(value) {
        let _ = writeln!(out, " {text}");
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

fn write_seq_item(out: &mut String, item: &Yaml, indent: usize) {
    match item {
        Yaml::Map(entries) if !entries.is_empty() => {
            // `- first: …` then the other keys aligned under `first`.
            let mut nested = String::new();
            write_map_entries(&mut nested, entries, indent + 2);
            let _ = write!(out, "{:indent$}- ", "");
            out.push_str(&nested[indent + 2..]);
        }
        other => {
            let _ = write!(out, "{:indent$}-", "");
            write_value(out, other, indent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
