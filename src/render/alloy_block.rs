//! A tiny model of Alloy syntax (blocks, attributes, expressions) printed the way `alloy fmt` lays
//! it out: two-space indent, `=` aligned within a run of attributes, long lists one item per line.

use std::fmt::Write as _;

use super::alloy_syntax::quote;

/// An Alloy expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Emitted as given: component references (`otelcol.exporter.debug.dst_1.input`), numbers, bools.
    Raw(String),
    List(Vec<Expr>),
    /// An object literal; keys are quoted.
    Object(Vec<(String, Expr)>),
}

impl Expr {
    pub fn string(text: &str) -> Expr {
        Expr::Raw(quote(text))
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> Expr {
        Expr::List(items.iter().map(|item| Expr::string(item.as_ref())).collect())
    }

    pub fn refs(items: &[String]) -> Expr {
        Expr::List(items.iter().map(|item| Expr::Raw(item.clone())).collect())
    }

    pub fn string_map(pairs: &[(String, String)]) -> Expr {
        Expr::Object(pairs.iter().map(|(key, value)| (key.clone(), Expr::string(value))).collect())
    }

    fn one_line(&self) -> String {
        match self {
            Expr::Raw(text) => text.clone(),
            Expr::List(items) => {
                format!("[{}]", items.iter().map(Expr::one_line).collect::<Vec<_>>().join(", "))
            }
            Expr::Object(entries) if entries.is_empty() => "{}".to_owned(),
            Expr::Object(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("{} = {}", quote(key), value.one_line()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn write(&self, out: &mut String, indent: usize, column: usize) {
        let one_line = self.one_line();
        if column + one_line.len() <= 100 {
            out.push_str(&one_line);
            return;
        }
        match self {
            Expr::Raw(text) => out.push_str(text),
            Expr::List(items) => {
                out.push_str("[\n");
                for item in items {
                    let _ = write!(out, "{:width$}", "", width = indent + 2);
                    item.write(out, indent + 2, indent + 2);
                    out.push_str(",\n");
                }
                let _ = write!(out, "{:indent$}]", "");
            }
            Expr::Object(entries) => {
                out.push_str("{\n");
                let width = entries.iter().map(|(key, _)| quote(key).len()).max().unwrap_or(0);
                for (key, value) in entries {
                    let quoted = quote(key);
                    let _ = write!(out, "{:pad$}{quoted:width$} = ", "", pad = indent + 2);
                    value.write(out, indent + 2, indent + 2 + width + 3);
                    out.push_str(",\n");
                }
                let _ = write!(out, "{:indent$}}}", "");
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attribute(String, Expr),
    Block(Block),
    Comment(String),
}

/// `name "label" { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub name: String,
    pub label: Option<String>,
    pub items: Vec<Item>,
}

impl Block {
    pub fn new(name: &str) -> Block {
        Block { name: name.to_owned(), label: None, items: Vec::new() }
    }

    pub fn labeled(name: &str, label: &str) -> Block {
        Block { name: name.to_owned(), label: Some(label.to_owned()), items: Vec::new() }
    }

    pub fn attr(mut self, name: &str, value: Expr) -> Block {
        self.items.push(Item::Attribute(name.to_owned(), value));
        self
    }

    pub fn block(mut self, block: Block) -> Block {
        self.items.push(Item::Block(block));
        self
    }

    pub fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    pub fn write(&self, out: &mut String, indent: usize) {
        let _ = write!(out, "{:indent$}{}", "", self.name);
        if let Some(label) = &self.label {
            let _ = write!(out, " {}", quote(label));
        }
        if self.items.is_empty() {
            out.push_str(" { }\n");
            return;
        }
        out.push_str(" {\n");
        write_items(out, &self.items, indent + 2);
        let _ = writeln!(out, "{:indent$}}}", "");
    }
}

/// Writes items at `indent`, aligning `=` across consecutive attributes and separating blocks from
/// what precedes them with a blank line.
pub fn write_items(out: &mut String, items: &[Item], indent: usize) {
    let mut index = 0;
    while index < items.len() {
        if index > 0 && matches!(items[index], Item::Block(_) | Item::Comment(_)) {
            let previous_is_comment = matches!(items[index - 1], Item::Comment(_));
            if !previous_is_comment {
                out.push('\n');
            }
        }
        match &items[index] {
            Item::Attribute(..) => {
                let run_end = items[index..]
                    .iter()
                    .position(|item| !matches!(item, Item::Attribute(..)))
                    .map_or(items.len(), |offset| index + offset);
                let width = items[index..run_end]
                    .iter()
                    .map(|item| match item {
                        Item::Attribute(name, _) => name.len(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                for item in &items[index..run_end] {
                    if let Item::Attribute(name, value) = item {
                        let _ = write!(out, "{:indent$}{name:width$} = ", "");
                        value.write(out, indent, indent + width + 3);
                        out.push('\n');
                    }
                }
                index = run_end;
                continue;
            }
            Item::Block(block) => block.write(out, indent),
            Item::Comment(text) => {
                let _ = writeln!(out, "{:indent$}// {text}", "");
            }
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_attributes_and_breaks_long_lists() {
        let long: Vec<String> =
            (0..8).map(|index| format!("otelcol.exporter.debug.dst_{index}.input")).collect();
        let block = Block::labeled("otelcol.processor.batch", "rte_1")
            .attr("timeout", Expr::string("200ms"))
            .attr("send_batch_size", Expr::Raw("8192".to_owned()))
            .block(
                Block::new("output").attr("logs", Expr::refs(&long[..1])).attr("traces", Expr::refs(&long)),
            );
        let mut out = String::new();
        block.write(&mut out, 0);
        let expected = "otelcol.processor.batch \"rte_1\" {
  timeout         = \"200ms\"
  send_batch_size = 8192

  output {
    logs   = [otelcol.exporter.debug.dst_0.input]
    traces = [
      otelcol.exporter.debug.dst_0.input,
      otelcol.exporter.debug.dst_1.input,
      otelcol.exporter.debug.dst_2.input,
      otelcol.exporter.debug.dst_3.input,
      otelcol.exporter.debug.dst_4.input,
      otelcol.exporter.debug.dst_5.input,
      otelcol.exporter.debug.dst_6.input,
      otelcol.exporter.debug.dst_7.input,
    ]
  }
}
";
        assert_eq!(out, expected);
    }

    #[test]
    fn objects_quote_keys_and_empty_blocks_stay_on_one_line() {
        let mut out = String::new();
        Block::labeled("x", "y")
            .attr("headers", Expr::string_map(&[("a\"b".to_owned(), "c".to_owned())]))
            .block(Block::new("output"))
            .write(&mut out, 0);
        assert_eq!(out, "x \"y\" {\n  headers = {\"a\\\"b\" = \"c\"}\n\n  output { }\n}\n");
    }
}
