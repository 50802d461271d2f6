//! Credential placeholders in rendered text, and filling them at delivery.

use std::collections::BTreeMap;

use super::ConfigFormat;

const OPEN: &str = "${linkmesh-secret:";
const CLOSE: &str = "}";

/// The placeholder for credential `key` of destination `destination_id`. Renderers put it *inside*
/// a string literal; [`fill`] escapes the value for that literal's syntax.
pub fn placeholder(destination_id: &str, key: &str) -> String {
    format!("{OPEN}{destination_id}:{key}{CLOSE}")
}

/// Replaces every placeholder with its value, escaped for a double-quoted string of `format`
/// (Alloy string or YAML double-quoted scalar). Unknown placeholders become empty strings.
pub fn fill(template: &str, format: ConfigFormat, values: &BTreeMap<(String, String), String>) -> String {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(OPEN) {
        filled.push_str(&rest[..start]);
        let after_open = &rest[start + OPEN.len()..];
        let Some(end) = after_open.find(CLOSE) else {
            filled.push_str(&rest[start..]);
            return filled;
        };
        let reference = &after_open[..end];
        let value = reference
            .split_once(':')
            .and_then(|(destination, key)| values.get(&(destination.to_owned(), key.to_owned())))
            .map(String::as_str)
            .unwrap_or_default();
        filled.push_str(&escape(value, format));
        rest = &after_open[end + CLOSE.len()..];
    }
    filled.push_str(rest);
    filled
}

/// Escapes for the inside of a double-quoted literal (without the quotes).
fn escape(value: &str, format: ConfigFormat) -> String {
    match format {
        ConfigFormat::Alloy => {
            let quoted = super::alloy_syntax::quote(value);
            quoted[1..quoted.len() - 1].to_owned()
        }
        // A JSON string body is a valid YAML double-quoted scalar body; `$$` keeps the collector from
        // expanding `${…}` inside a secret.
        ConfigFormat::Otelcol => {
            let quoted = serde_json::Value::from(value).to_string();
            quoted[1..quoted.len() - 1].replace('$', "$$")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_escapes_per_format() {
        let template = format!("password = \"{}\"", placeholder("dst_1", "password"));
        let values = BTreeMap::from([(("dst_1".to_owned(), "password".to_owned()), "p\"w\\d".to_owned())]);
        assert_eq!(fill(&template, ConfigFormat::Alloy, &values), "password = \"p\\\"w\\\\d\"");
        assert_eq!(fill(&template, ConfigFormat::Otelcol, &values), "password = \"p\\\"w\\\\d\"");
    }

    #[test]
    fn dollar_signs_in_secrets_are_not_expanded_by_the_collector() {
        let template = format!("token: \"{}\"", placeholder("d", "k"));
        let values = BTreeMap::from([(("d".to_owned(), "k".to_owned()), "a$b${env:HOME}".to_owned())]);
        assert_eq!(fill(&template, ConfigFormat::Otelcol, &values), "token: \"a$$b$${env:HOME}\"");
        assert_eq!(fill(&template, ConfigFormat::Alloy, &values), "token: \"a$b${env:HOME}\"");
    }

    #[test]
    fn unknown_placeholders_become_empty_and_text_without_placeholders_is_unchanged() {
        assert_eq!(fill("a ${linkmesh-secret:x:y} b", ConfigFormat::Alloy, &BTreeMap::new()), "a  b");
        assert_eq!(fill("plain ${other}", ConfigFormat::Alloy, &BTreeMap::new()), "plain ${other}");
    }
}
