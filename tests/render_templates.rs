//! Hostile label and attribute values in templated settings, rendered for Alloy and the OTel
//! Collector as delivered (with credential values), run through the official parsers
//! (`tools/alloycheck`, `tools/otelcheck`, see `tests/render_checkers.rs`), and read back: every
//! string literal of the rendered text is decoded the way the format defines it (Alloy: Go-style
//! escapes; YAML: a JSON string with the collector's `$$` → `$`), and the hostile text must be one of
//! them exactly, never syntax, never a credential.

#[path = "golden/support.rs"]
mod golden_support;
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use golden_support::Model;
use linkmesh::model::CollectorMode;
use linkmesh::render::render_for_delivery;
use linkmesh::render::secrets::CredentialValues;
use serde_json::json;

const SECRET: &str = "REAL-SECRET-VALUE";

fn alloycheck() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("alloycheck", "LINKMESH_ALLOYCHECK"))
}

fn otelcheck() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| support::go_tool("otelcheck", "LINKMESH_OTELCHECK"))
}

fn run_checker(binary: &PathBuf, args: &[&str], text: &str) {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("run {}: {error}", binary.display()));
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("checker output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "{} rejected:\n{stdout}{}\n--- rendered ---\n{text}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A collector with label `v` = `hostile` (and `other`), attribute `a` = `attribute`, whose config
/// refers to them from a header, an attributes step and a source's resource attributes, and whose
/// destination `dst_1` has a password.
fn model(hostile: &str, attribute: &str) -> Model {
    serde_json::from_value(json!({
        "collector_name": "edge-1",
        "labels": {"v": hostile, "other": "EXPANDED"},
        "attributes": {"a": attribute},
        "sources": [{
            "id": "src_1", "name": "apps", "type": "otlp", "settings": {},
            "resource_attributes": {"from_label": "{{labels.v}}", "from_attribute": "{{attributes.a}}"},
        }],
        "pipelines": [{
            "id": "pl_1", "name": "stamp", "signals": ["logs", "metrics", "traces"],
            "steps": [{"type": "attributes", "settings": {"insert": {"label": "{{labels.v}}", "attribute": "{{ attributes.a }}"}}}],
        }],
        "routes": [{
            "id": "rte_1", "name": "all", "condition": "true", "priority": 10, "is_final": true,
            "pipeline_id": "pl_1", "destination_ids": ["dst_1"],
        }],
        "destinations": [{
            "id": "dst_1", "name": "out", "type": "otlp_http",
            "settings": {"endpoint": "https://otlp.example.com", "headers": {"X-Label": "{{labels.v}}"}},
            "credentials": {"username": "01", "password": "02"},
        }],
    }))
    .expect("model")
}

fn credential_values() -> CredentialValues {
    let mut values = CredentialValues::default();
    values.insert("dst_1", "username", "user".to_owned());
    values.insert("dst_1", "password", SECRET.to_owned());
    values
}

/// Every Alloy string literal of `text`, decoded (Go-style escapes, as `alloy_syntax::quote` writes).
fn alloy_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        if character != '"' {
            continue;
        }
        let mut value = String::new();
        while let Some(character) = chars.next() {
            match character {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        value
                            .push(char::from_u32(u32::from_str_radix(&hex, 16).expect("hex")).expect("char"));
                    }
                    Some(other) => value.push(other),
                    None => break,
                },
                other => value.push(other),
            }
        }
        strings.push(value);
    }
    strings
}

/// Every double-quoted YAML scalar of `text` (JSON strings), decoded, with the collector's `$$` → `$`.
fn yaml_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'"' {
            index += 1;
            continue;
        }
        let mut end = index + 1;
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let literal = &text[index..=end.min(bytes.len() - 1)];
        if let Ok(value) = serde_json::from_str::<String>(literal) {
            strings.push(value.replace("$$", "$"));
        }
        index = end + 1;
    }
    strings
}

fn count(strings: &[String], wanted: &str) -> usize {
    strings.iter().filter(|string| string.as_str() == wanted).count()
}

#[test]
fn hostile_values_stay_literal_strings_in_both_formats() {
    let marker = "${linkmesh-secret:dst_1:password}";
    let attribute = "line one\nline \"two\" ${env:HOME} {{labels.v}}";
    for hostile in
        ["say \"hi\"", "back\\slash\\", "${env:HOME}", marker, "}}", "{{labels.other}}", "a\"}}\\${x}"]
    {
        let model = model(hostile, attribute);
        let values = credential_values();

        let alloy = render_for_delivery(&model.input(CollectorMode::AlloyRemotecfg), &values);
        run_checker(alloycheck(), &["-require-declare"], &alloy.content);
        let strings = alloy_strings(&alloy.content);
        // The header value and the attributes step's value.
        assert_eq!(count(&strings, hostile), 2, "{hostile:?} in\n{}", alloy.content);
        assert_eq!(count(&strings, attribute), 1, "{attribute:?} in\n{}", alloy.content);
        // The resource attribute: an OTTL string inside an Alloy string.
        let stamp = format!("set(attributes[\"from_label\"], {})", serde_json::Value::from(hostile));
        // One stamp statement block per signal of the source.
        assert_eq!(count(&strings, &stamp), 3, "{stamp} in\n{}", alloy.content);
        // The secret appears at its one credential position, nowhere else.
        assert_eq!(alloy.content.matches(SECRET).count(), 1, "{}", alloy.content);
        assert_eq!(count(&strings, SECRET), 1);
        assert!(!alloy.content.contains("EXPANDED"), "single pass:\n{}", alloy.content);
        assert!(!alloy.stored.content.contains(SECRET));

        let otel = render_for_delivery(&model.input(CollectorMode::Opamp), &values);
        run_checker(otelcheck(), &["-q"], &otel.content);
        let strings = yaml_strings(&otel.content);
        // The header value, the attributes step's value and the source's resource attribute.
        assert_eq!(count(&strings, hostile), 3, "{hostile:?} in\n{}", otel.content);
        assert_eq!(count(&strings, attribute), 2, "{attribute:?} in\n{}", otel.content);
        assert_eq!(otel.content.matches(SECRET).count(), 1, "{}", otel.content);
        assert_eq!(count(&strings, SECRET), 1);
        assert!(!otel.content.contains("EXPANDED"), "single pass:\n{}", otel.content);
    }
}
