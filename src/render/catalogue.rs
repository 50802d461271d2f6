//! The catalogue: every source, processing step and destination type linkmesh can render.
//!
//! One table ([`entries`]) holds each type's settings schema, the signals it carries and the credential
//! keys it accepts. [`validate`] checks user input against it at the API edge; the renderers read
//! settings through [`setting_str`] and friends, which fall back to the schema default, so a model that
//! skipped validation (an older snapshot) still renders without panicking.
//!
//! How each entry renders in both formats is generated into `docs/catalogue.md` by
//! `tests/render_golden.rs`.

use serde_json::Value;

use super::templates::{self, Templating};
use crate::model::pipeline::{Settings, Signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Source,
    Step,
    Destination,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Source => "source",
            EntryKind::Step => "step",
            EntryKind::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    String,
    Integer,
    Boolean,
    /// A Go-style duration string such as `"30s"`.
    Duration,
    StringList,
    StringMap,
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    pub name: &'static str,
    pub kind: SettingKind,
    pub required: bool,
    pub description: &'static str,
    /// The value used when the setting is absent, as JSON text (`"\"60s\""`, `"8192"`, `"[\"cpu\"]"`).
    pub default: Option<&'static str>,
    /// For a `StringList`: the only values its items may take (empty: any non-empty string).
    pub allowed_items: &'static [&'static str],
    /// Which references (`{{labels.KEY}}`, `{{attributes.KEY}}`) its strings may hold
    /// (`super::templates`): labels in free text, nothing in OTTL, regular expressions and fixed values.
    pub templating: Templating,
}

#[derive(Debug, Clone, Copy)]
pub struct CatalogueEntry {
    pub kind: EntryKind,
    pub type_name: &'static str,
    pub description: &'static str,
    pub signals: &'static [Signal],
    pub settings: &'static [SettingSpec],
    /// Write-only credential keys the entry accepts (sealed at rest, filled at delivery).
    pub credentials: &'static [&'static str],
    /// Example settings as a JSON object, for docs and tests.
    pub example_settings: &'static str,
    /// Rules across settings (or on a setting's content) beyond the per-setting schema.
    pub check: Option<EntryCheck>,
}

impl CatalogueEntry {
    pub fn setting(&self, name: &str) -> Option<&'static SettingSpec> {
        self.settings.iter().find(|setting| setting.name == name)
    }

    pub fn carries(&self, signal: Signal) -> bool {
        self.signals.contains(&signal)
    }
}

/// An entry's own rule over its settings and the (sorted) credential keys given.
pub type EntryCheck = fn(&Settings, &[&str]) -> Result<(), FieldError>;

/// A validation failure naming the offending field (`settings.endpoint`, `credentials.password`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    fn setting(name: &str, problem: impl Into<String>) -> FieldError {
        FieldError { field: format!("settings.{name}"), problem: problem.into() }
    }
}

const ALL_SIGNALS: &[Signal] = &[Signal::Logs, Signal::Metrics, Signal::Traces];
const LOGS: &[Signal] = &[Signal::Logs];
const METRICS: &[Signal] = &[Signal::Metrics];

/// Host-metric scrapers, as the OTel `hostmetrics` receiver names them.
pub const HOST_METRIC_SCRAPERS: &[&str] = &["cpu", "disk", "filesystem", "load", "memory", "network"];

/// Free text takes labels; integers, booleans and enums are not text a template could fill.
const fn default_templating(kind: SettingKind) -> Templating {
    match kind {
        SettingKind::String | SettingKind::Duration | SettingKind::StringList | SettingKind::StringMap => {
            Templating::Labels
        }
        SettingKind::Integer | SettingKind::Boolean | SettingKind::Enum(_) => Templating::Literal,
    }
}

const fn setting(
    name: &'static str,
    kind: SettingKind,
    required: bool,
    description: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        kind,
        required,
        description,
        default: None,
        allowed_items: &[],
        templating: default_templating(kind),
    }
}

const fn optional(
    name: &'static str,
    kind: SettingKind,
    default: &'static str,
    description: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        kind,
        required: false,
        description,
        default: Some(default),
        allowed_items: &[],
        templating: default_templating(kind),
    }
}

/// A setting whose text is taken literally: OTTL or a regular expression, where inserted text would
/// be syntax.
const fn literal(spec: SettingSpec) -> SettingSpec {
    SettingSpec { templating: Templating::Literal, ..spec }
}

/// A setting whose values are data stamped on records: it may use the collector's reported
/// attributes too.
const fn with_attributes(spec: SettingSpec) -> SettingSpec {
    SettingSpec { templating: Templating::LabelsAndAttributes, ..spec }
}

static ENTRIES: &[CatalogueEntry] = &[
    // ---- sources ----
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "otlp",
        description: "Receives OTLP over gRPC and HTTP.",
        signals: ALL_SIGNALS,
        settings: &[
            optional(
                "grpc_endpoint",
                SettingKind::String,
                "\"0.0.0.0:4317\"",
                "host:port the OTLP/gRPC server listens on.",
            ),
            optional(
                "http_endpoint",
                SettingKind::String,
                "\"0.0.0.0:4318\"",
                "host:port the OTLP/HTTP server listens on.",
            ),
        ],
        credentials: &[],
        example_settings: r#"{"grpc_endpoint": "0.0.0.0:4317", "http_endpoint": "0.0.0.0:4318"}"#,
        check: Some(check_otlp_source),
    },
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "prometheus_scrape",
        description: "Scrapes Prometheus metrics endpoints.",
        signals: METRICS,
        settings: &[
            setting("targets", SettingKind::StringList, true, "Targets to scrape, as host:port."),
            optional("scrape_interval", SettingKind::Duration, "\"60s\"", "How often to scrape each target."),
            optional("metrics_path", SettingKind::String, "\"/metrics\"", "HTTP path of the metrics endpoint."),
        ],
        credentials: &[],
        example_settings: r#"{"targets": ["localhost:9100"], "scrape_interval": "30s"}"#,
        check: Some(check_prometheus_scrape),
    },
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "file_tail",
        description: "Tails log files matching glob patterns.",
        signals: LOGS,
        settings: &[
            setting("include", SettingKind::StringList, true, "Glob patterns (doublestar) of files to read."),
            setting("exclude", SettingKind::StringList, false, "Glob patterns of files to skip."),
        ],
        credentials: &[],
        example_settings: r#"{"include": ["/var/log/nginx/*.log"], "exclude": ["/var/log/nginx/*.gz"]}"#,
        check: None,
    },
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "syslog",
        description: "Listens for syslog messages.",
        signals: LOGS,
        settings: &[
            optional("address", SettingKind::String, "\"0.0.0.0:514\"", "host:port to listen on."),
            SettingSpec {
                name: "protocol",
                kind: SettingKind::Enum(&["tcp", "udp"]),
                required: false,
                description: "Transport to listen on.",
                default: Some("\"tcp\""),
                allowed_items: &[],
                templating: Templating::Literal,
            },
            SettingSpec {
                name: "format",
                kind: SettingKind::Enum(&["rfc5424", "rfc3164"]),
                required: false,
                description: "Syslog message format.",
                default: Some("\"rfc5424\""),
                allowed_items: &[],
                templating: Templating::Literal,
            },
        ],
        credentials: &[],
        example_settings: r#"{"address": "0.0.0.0:5514", "protocol": "udp", "format": "rfc3164"}"#,
        check: Some(check_syslog),
    },
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "journald",
        description: "Reads the systemd journal.",
        signals: LOGS,
        settings: &[setting(
            "units",
            SettingKind::StringList,
            false,
            "Only entries of these systemd units (all units when absent).",
        )],
        credentials: &[],
        example_settings: r#"{"units": ["nginx.service", "sshd.service"]}"#,
        check: Some(check_journald),
    },
    CatalogueEntry {
        kind: EntryKind::Source,
        type_name: "hostmetrics",
        description: "Collects metrics of the host the collector runs on.",
        signals: METRICS,
        settings: &[
            optional("collection_interval", SettingKind::Duration, "\"60s\"", "How often to collect."),
            SettingSpec {
                name: "scrapers",
                kind: SettingKind::StringList,
                required: false,
                description: "Which metric families to collect.",
                default: Some(r#"["cpu", "disk", "filesystem", "load", "memory", "network"]"#),
                allowed_items: HOST_METRIC_SCRAPERS,
                templating: Templating::Literal,
            },
        ],
        credentials: &[],
        example_settings: r#"{"collection_interval": "30s", "scrapers": ["cpu", "memory"]}"#,
        check: None,
    },
    // ---- steps ----
    CatalogueEntry {
        kind: EntryKind::Step,
        type_name: "filter",
        description: "Drops every record matching any of the OTTL conditions.",
        signals: ALL_SIGNALS,
        settings: &[literal(setting(
            "conditions",
            SettingKind::StringList,
            true,
            "OTTL conditions, evaluated on each log record, span or data point; a match drops the record.",
        ))],
        credentials: &[],
        example_settings: r#"{"conditions": ["attributes[\"level\"] == \"debug\""]}"#,
        check: None,
    },
    CatalogueEntry {
        kind: EntryKind::Step,
        type_name: "transform",
        description: "Runs OTTL statements on each record.",
        signals: ALL_SIGNALS,
        settings: &[literal(setting(
            "statements",
            SettingKind::StringList,
            true,
            "OTTL statements, run in the log, span or data point context.",
        ))],
        credentials: &[],
        example_settings: r#"{"statements": ["set(attributes[\"env\"], \"prod\")"]}"#,
        check: None,
    },
    CatalogueEntry {
        kind: EntryKind::Step,
        type_name: "mask",
        description: "Replaces text matching regular expressions with ****, in log bodies and in attributes.",
        signals: ALL_SIGNALS,
        settings: &[
            optional("emails", SettingKind::Boolean, "false", "Mask e-mail addresses."),
            optional("card_numbers", SettingKind::Boolean, "false", "Mask payment card numbers (13 to 19 digits)."),
            literal(setting("patterns", SettingKind::StringList, false, "Further RE2 regular expressions to mask.")),
        ],
        credentials: &[],
        example_settings: r#"{"emails": true, "card_numbers": true, "patterns": ["secret=\\S+"]}"#,
        check: Some(check_mask),
    },
    CatalogueEntry {
        kind: EntryKind::Step,
        type_name: "attributes",
        description: "Inserts, updates or deletes record attributes (log record, span or data point).",
        signals: ALL_SIGNALS,
        settings: &[
            with_attributes(setting("insert", SettingKind::StringMap, false, "Attributes to add where absent.")),
            with_attributes(setting(
                "update",
                SettingKind::StringMap,
                false,
                "Attributes to overwrite where present.",
            )),
            setting("delete", SettingKind::StringList, false, "Attribute keys to remove."),
        ],
        credentials: &[],
        example_settings: r#"{"insert": {"env": "prod"}, "update": {"team": "web"}, "delete": ["password"]}"#,
        check: Some(check_attributes),
    },
    CatalogueEntry {
        kind: EntryKind::Step,
        type_name: "batch",
        description: "Batches records before export.",
        signals: ALL_SIGNALS,
        settings: &[
            optional("timeout", SettingKind::Duration, "\"200ms\"", "Sends a batch after this long."),
            optional("send_batch_size", SettingKind::Integer, "8192", "Sends a batch at this many records."),
        ],
        credentials: &[],
        example_settings: r#"{"timeout": "5s", "send_batch_size": 1000}"#,
        check: Some(check_batch),
    },
    // ---- destinations ----
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "otlp_http",
        description: "Sends OTLP over HTTP.",
        signals: ALL_SIGNALS,
        settings: &[
            setting(
                "endpoint",
                SettingKind::String,
                true,
                "Base URL; /v1/logs, /v1/metrics, /v1/traces are appended.",
            ),
            setting("headers", SettingKind::StringMap, false, "Extra HTTP headers."),
        ],
        credentials: &["bearer_token", "username", "password"],
        example_settings: r#"{"endpoint": "https://otlp.example.com", "headers": {"X-Scope-OrgID": "tenant-1"}}"#,
        check: Some(check_otlp_http),
    },
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "otlp_grpc",
        description: "Sends OTLP over gRPC.",
        signals: ALL_SIGNALS,
        settings: &[
            setting("endpoint", SettingKind::String, true, "host:port of the OTLP/gRPC server."),
            optional("insecure", SettingKind::Boolean, "false", "Connect without TLS."),
        ],
        credentials: &[],
        example_settings: r#"{"endpoint": "tempo.example.com:4317", "insecure": true}"#,
        check: Some(check_no_whitespace_endpoint),
    },
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "loki",
        description: "Sends logs to Grafana Loki (OTel Collector: through Loki's OTLP endpoint).",
        signals: LOGS,
        settings: &[setting(
            "url",
            SettingKind::String,
            true,
            "Loki base URL such as http://loki:3100 (a push URL ending in /loki/api/v1/push is accepted too).",
        )],
        credentials: &["username", "password"],
        example_settings: r#"{"url": "https://logs.example.com"}"#,
        check: Some(check_http_url_setting),
    },
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "prometheus_remote_write",
        description: "Sends metrics with the Prometheus remote-write protocol.",
        signals: METRICS,
        settings: &[setting(
            "url",
            SettingKind::String,
            true,
            "Remote-write URL, e.g. https://prometheus.example.com/api/v1/write.",
        )],
        credentials: &["username", "password"],
        example_settings: r#"{"url": "https://prometheus.example.com/api/v1/write"}"#,
        check: Some(check_http_url_setting),
    },
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "debug",
        description: "Writes records to the collector's own log. Alloy at its default stability level \
                      (generally-available) prints them with loki.echo and prometheus.echo, spans as one log \
                      line each; the verbosity setting applies at the experimental level, with \
                      otelcol.exporter.debug.",
        signals: ALL_SIGNALS,
        settings: &[SettingSpec {
            name: "verbosity",
            kind: SettingKind::Enum(&["basic", "normal", "detailed"]),
            required: false,
            description: "How much of each record to log.",
            default: Some("\"basic\""),
            allowed_items: &[],
            templating: Templating::Literal,
        }],
        credentials: &[],
        example_settings: r#"{"verbosity": "detailed"}"#,
        check: None,
    },
    CatalogueEntry {
        kind: EntryKind::Destination,
        type_name: "kafka",
        description: "Publishes OTLP-encoded records to a Kafka topic.",
        signals: ALL_SIGNALS,
        settings: &[
            setting("brokers", SettingKind::StringList, true, "Kafka brokers, as host:port."),
            setting("topic", SettingKind::String, true, "Topic to publish to."),
        ],
        credentials: &[],
        example_settings: r#"{"brokers": ["kafka-1:9092", "kafka-2:9092"], "topic": "telemetry"}"#,
        check: None,
    },
];

pub fn entries() -> &'static [CatalogueEntry] {
    ENTRIES
}

pub fn entry(kind: EntryKind, type_name: &str) -> Option<&'static CatalogueEntry> {
    entries().iter().find(|entry| entry.kind == kind && entry.type_name == type_name)
}

/// Checks `settings` and the credential keys against the entry's schema; the first problem.
pub fn validate(
    kind: EntryKind,
    type_name: &str,
    settings: &Settings,
    credential_keys: &[&str],
) -> Result<&'static CatalogueEntry, FieldError> {
    validate_every_field(kind, type_name, settings, credential_keys)
        .map_err(|mut problems| problems.swap_remove(0))
}

/// Checks `settings` and the credential keys against the entry's schema; every field with a problem
/// (one problem per field, in the order of the schema), so a form can mark them all at once.
///
/// A templated string (`super::templates`) is checked for its template syntax and for its type, but
/// the entry's content rules (host:port, URLs, …) wait for the values: [`validate_resolved`] checks
/// the settings as resolved for each collector that renders them.
pub fn validate_every_field(
    kind: EntryKind,
    type_name: &str,
    settings: &Settings,
    credential_keys: &[&str],
) -> Result<&'static CatalogueEntry, Vec<FieldError>> {
    validate_settings(kind, type_name, settings, credential_keys, true)
}

/// [`validate_every_field`] for settings whose templates are already resolved for one collector: every
/// string is taken as it is (a resolved value is never a template again).
pub fn validate_resolved(
    kind: EntryKind,
    type_name: &str,
    settings: &Settings,
) -> Result<&'static CatalogueEntry, Vec<FieldError>> {
    validate_settings(kind, type_name, settings, &[], false)
}

fn validate_settings(
    kind: EntryKind,
    type_name: &str,
    settings: &Settings,
    credential_keys: &[&str],
    templates_unresolved: bool,
) -> Result<&'static CatalogueEntry, Vec<FieldError>> {
    let entry = entry(kind, type_name).ok_or_else(|| {
        vec![FieldError {
            field: "type".to_owned(),
            problem: format!("unknown {} type {type_name:?}", kind.as_str()),
        }]
    })?;
    let mut problems = Vec::new();
    let mut names: Vec<&String> = settings.keys().collect();
    names.sort();
    let known: Vec<&str> = entry.settings.iter().map(|setting| setting.name).collect();
    for unknown in names.iter().filter(|name| entry.setting(name).is_none()) {
        problems.push(FieldError::setting(
            unknown,
            format!("unknown setting for {type_name}; known: {}", known.join(", ")),
        ));
    }
    // Settings holding templates: their content rules wait for the resolved values.
    let mut templated: Vec<&str> = Vec::new();
    for spec in entry.settings {
        match settings.get(spec.name) {
            None | Some(Value::Null) if spec.required => {
                problems.push(FieldError::setting(spec.name, "is required"));
            }
            None | Some(Value::Null) => {}
            Some(value) if templates_unresolved => {
                let template_problem = value_strings(spec.name, value)
                    .into_iter()
                    .find_map(|(field, text)| Some((field, templates::check(text, spec.templating).err()?)));
                if let Some((field, problem)) = template_problem {
                    problems.push(FieldError { field: format!("settings.{field}"), problem });
                } else if value_strings(spec.name, value)
                    .iter()
                    .any(|(_, text)| templates::is_templated(text, spec.templating))
                {
                    templated.push(spec.name);
                    problems.extend(check_value(spec, &map_strings(value, templates::mask)).err());
                } else {
                    problems.extend(check_value(spec, value).err());
                }
            }
            Some(value) => problems.extend(check_value(spec, value).err()),
        }
    }
    let mut keys = credential_keys.to_vec();
    keys.sort_unstable();
    for unknown in keys.iter().filter(|key| !entry.credentials.contains(key)) {
        let problem = if entry.credentials.is_empty() {
            format!("{type_name} takes no credentials")
        } else {
            format!("unknown credential for {type_name}; known: {}", entry.credentials.join(", "))
        };
        problems.push(FieldError { field: format!("credentials.{unknown}"), problem });
    }
    if let Some(check) = entry.check {
        // An entry's rule stops at its first problem; asked again without the setting or credential
        // that problem named, it finds the next one. Settings already reported are left out, so a
        // rule never repeats what the schema said about them.
        let mut remaining = settings.clone();
        let mut remaining_keys = keys.clone();
        for problem in &problems {
            remaining.remove(top_level_setting(&problem.field));
        }
        for name in &templated {
            remaining.remove(*name);
        }
        while let Err(problem) = check(&remaining, &remaining_keys) {
            let setting = top_level_setting(&problem.field).to_owned();
            let credential = problem.field.strip_prefix("credentials.").map(str::to_owned);
            problems.push(problem);
            let removed_setting = remaining.remove(&setting).is_some();
            let removed_key = credential.is_some_and(|credential| {
                let before = remaining_keys.len();
                remaining_keys.retain(|key| *key != credential);
                remaining_keys.len() < before
            });
            if !removed_setting && !removed_key {
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(entry)
    } else {
        Err(problems)
    }
}

/// Every string of a setting's value with its field path inside `settings`: `endpoint`,
/// `targets[1]`, `headers.X-Tenant` (map values; keys are never templated).
fn value_strings<'v>(name: &str, value: &'v Value) -> Vec<(String, &'v str)> {
    match value {
        Value::String(text) => vec![(name.to_owned(), text.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| Some((format!("{name}[{index}]"), item.as_str()?)))
            .collect(),
        Value::Object(map) => {
            map.iter().filter_map(|(key, item)| Some((format!("{name}.{key}"), item.as_str()?))).collect()
        }
        _ => Vec::new(),
    }
}

/// `value` with every string (not map keys) replaced by `map`.
fn map_strings(value: &Value, mut map: impl FnMut(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(map(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Value::String(map(text)),
                    other => other.clone(),
                })
                .collect(),
        ),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, item)| {
                    let item = match item {
                        Value::String(text) => Value::String(map(text)),
                        other => other.clone(),
                    };
                    (key.clone(), item)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `settings` with every template resolved against one collector's `values` (settings the schema
/// does not know, and literal ones, unchanged), and what could not be resolved, by field.
pub fn resolve_settings(
    entry: &CatalogueEntry,
    settings: &Settings,
    values: &templates::Values<'_>,
) -> (Settings, Vec<FieldError>) {
    let mut problems = Vec::new();
    let mut resolved = Settings::new();
    for (name, value) in settings {
        let templating = entry.setting(name).map_or(Templating::Literal, |spec| spec.templating);
        let mut strings = value_strings(name, value).into_iter();
        let value = map_strings(value, |text| {
            let field = strings.next().map(|(field, _)| field).unwrap_or_else(|| name.clone());
            let (text, unresolved) = templates::resolve(text, templating, values);
            problems.extend(
                unresolved
                    .into_iter()
                    .map(|problem| FieldError { field: format!("settings.{field}"), problem }),
            );
            text
        });
        resolved.insert(name.clone(), value);
    }
    (resolved, problems)
}

/// The labels the settings refer to, by field (`settings.endpoint`, label key).
pub fn labels_used(entry: &CatalogueEntry, settings: &Settings) -> Vec<(String, String)> {
    let mut used = Vec::new();
    for (name, value) in settings {
        let templating = entry.setting(name).map_or(Templating::Literal, |spec| spec.templating);
        for (field, text) in value_strings(name, value) {
            for key in templates::labels_used(text, templating) {
                used.push((format!("settings.{field}"), key));
            }
        }
    }
    used
}

/// Whether the settings refer to a reported attribute anywhere that is allowed.
pub fn uses_attributes(entry: &CatalogueEntry, settings: &Settings) -> bool {
    settings.iter().any(|(name, value)| {
        let templating = entry.setting(name).map_or(Templating::Literal, |spec| spec.templating);
        value_strings(name, value).iter().any(|(_, text)| templates::uses_attributes(text, templating))
    })
}

/// The setting a field path names: `settings.targets[1]` → `targets`, `settings.headers.x` → `headers`.
fn top_level_setting(field: &str) -> &str {
    let setting = field.strip_prefix("settings.").unwrap_or("");
    setting.split(['.', '[']).next().unwrap_or(setting)
}

fn check_value(spec: &SettingSpec, value: &Value) -> Result<(), FieldError> {
    let name = spec.name;
    // Control characters break collectors' own parsers (Prometheus's YAML) and never belong in a
    // setting; escaping alone would not help there.
    let mut texts: Vec<&str> = Vec::new();
    match value {
        Value::String(text) => texts.push(text),
        Value::Array(items) => texts.extend(items.iter().filter_map(Value::as_str)),
        Value::Object(map) => {
            texts.extend(map.keys().map(String::as_str));
            texts.extend(map.values().filter_map(Value::as_str));
        }
        _ => {}
    }
    if texts.iter().any(|text| text.chars().any(char::is_control)) {
        return Err(FieldError::setting(name, "must not contain control characters (line breaks, tabs, …)"));
    }
    match spec.kind {
        SettingKind::String => {
            let text = value.as_str().ok_or_else(|| FieldError::setting(name, "must be a string"))?;
            if text.trim().is_empty() {
                return Err(FieldError::setting(name, "must not be empty"));
            }
        }
        SettingKind::Integer => {
            if !value.is_i64() && !value.is_u64() {
                return Err(FieldError::setting(name, "must be an integer"));
            }
        }
        SettingKind::Boolean => {
            if !value.is_boolean() {
                return Err(FieldError::setting(name, "must be true or false"));
            }
        }
        SettingKind::Duration => {
            let text =
                value.as_str().ok_or_else(|| FieldError::setting(name, "must be a duration string"))?;
            if !is_positive_duration(text) {
                return Err(FieldError::setting(
                    name,
                    "must be a positive duration such as \"30s\" or \"1m30s\"",
                ));
            }
        }
        SettingKind::StringList => {
            let items =
                value.as_array().ok_or_else(|| FieldError::setting(name, "must be a list of strings"))?;
            if spec.required && items.is_empty() {
                return Err(FieldError::setting(name, "must name at least one item"));
            }
            for (index, item) in items.iter().enumerate() {
                let text = item
                    .as_str()
                    .ok_or_else(|| FieldError::setting(&format!("{name}[{index}]"), "must be a string"))?;
                if text.trim().is_empty() {
                    return Err(FieldError::setting(&format!("{name}[{index}]"), "must not be empty"));
                }
                if !spec.allowed_items.is_empty() && !spec.allowed_items.contains(&text) {
                    return Err(FieldError::setting(
                        &format!("{name}[{index}]"),
                        format!("unknown value {text:?}; use one of {}", spec.allowed_items.join(", ")),
                    ));
                }
            }
        }
        SettingKind::StringMap => {
            let map = value
                .as_object()
                .ok_or_else(|| FieldError::setting(name, "must be an object of string values"))?;
            for (key, item) in map {
                if key.trim().is_empty() {
                    return Err(FieldError::setting(name, "keys must not be empty"));
                }
                if !item.is_string() {
                    return Err(FieldError::setting(&format!("{name}.{key}"), "must be a string"));
                }
            }
        }
        SettingKind::Enum(values) => {
            let text = value.as_str().ok_or_else(|| FieldError::setting(name, "must be a string"))?;
            if !values.contains(&text) {
                return Err(FieldError::setting(name, format!("must be one of {}", values.join(", "))));
            }
        }
    }
    Ok(())
}

/// Go's `time.ParseDuration` syntax without a sign, and not zero.
fn is_positive_duration(text: &str) -> bool {
    duration_seconds(text).is_some_and(|seconds| seconds > 0.0)
}

/// The length of a Go duration string without a sign (`"1m30s"` → 90.0), `None` when malformed.
pub fn duration_seconds(text: &str) -> Option<f64> {
    const UNITS: [(&str, f64); 8] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("μs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .filter(|end| *end > 0)?;
        let number = &rest[..number_end];
        if number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_end..];
        // Longest unit first, so "ms" is not read as "m" followed by "s".
        let (unit, scale) =
            UNITS.iter().filter(|(unit, _)| rest.starts_with(unit)).max_by_key(|(unit, _)| unit.len())?;
        total += value * scale;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

// ---- reading settings (renderers) ----

fn spec_default(entry: &CatalogueEntry, name: &str) -> Option<Value> {
    entry.setting(name).and_then(|spec| spec.default).and_then(|text| serde_json::from_str(text).ok())
}

/// A string setting, or its default; `None` when absent without default or of the wrong type.
pub fn setting_str(entry: &CatalogueEntry, settings: &Settings, name: &str) -> Option<String> {
    match settings.get(name).and_then(Value::as_str) {
        Some(text) => Some(text.to_owned()),
        None => spec_default(entry, name).and_then(|value| value.as_str().map(str::to_owned)),
    }
}

pub fn setting_bool(entry: &CatalogueEntry, settings: &Settings, name: &str) -> bool {
    settings
        .get(name)
        .and_then(Value::as_bool)
        .or_else(|| spec_default(entry, name).and_then(|value| value.as_bool()))
        .unwrap_or(false)
}

pub fn setting_integer(entry: &CatalogueEntry, settings: &Settings, name: &str) -> Option<i64> {
    settings
        .get(name)
        .and_then(Value::as_i64)
        .or_else(|| spec_default(entry, name).and_then(|value| value.as_i64()))
}

/// A list setting's string items (others skipped), or its default, or empty.
pub fn setting_list(entry: &CatalogueEntry, settings: &Settings, name: &str) -> Vec<String> {
    let value = match settings.get(name) {
        Some(value @ Value::Array(_)) => Some(value.clone()),
        _ => spec_default(entry, name),
    };
    value
        .as_ref()
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A map setting's string entries (others skipped), sorted by key.
pub fn setting_map(settings: &Settings, name: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = settings
        .get(name)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter().filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned()))).collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

// ---- entry-specific rules ----

fn has_whitespace(text: &str) -> bool {
    text.chars().any(char::is_whitespace)
}

fn string_of<'a>(settings: &'a Settings, name: &str) -> Option<&'a str> {
    settings.get(name).and_then(Value::as_str)
}

fn strings_of<'a>(settings: &'a Settings, name: &str) -> Vec<&'a str> {
    settings
        .get(name)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Where to connect: `host:port`, a host required.
fn check_host_port(name: &str, text: &str) -> Result<(), FieldError> {
    check_address(name, text, false)
}

/// Where to listen: `host:port`, where an empty host (`:4317`) means every interface.
fn check_listen_address(name: &str, text: &str) -> Result<(), FieldError> {
    check_address(name, text, true)
}

fn check_address(name: &str, text: &str, empty_host_allowed: bool) -> Result<(), FieldError> {
    let Some((host, port)) = text.rsplit_once(':').filter(|_| !has_whitespace(text) && !text.contains("://"))
    else {
        return Err(FieldError::setting(name, format!("{text:?} is not host:port")));
    };
    if host.is_empty() && !empty_host_allowed {
        return Err(FieldError::setting(name, format!("{text:?} is not host:port")));
    }
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::setting(name, format!("{text:?} is not host:port")));
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(FieldError::setting(name, format!("port {port} is not between 1 and 65535"))),
    }
}

fn check_otlp_source(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    for name in ["grpc_endpoint", "http_endpoint"] {
        if let Some(endpoint) = string_of(settings, name) {
            check_listen_address(name, endpoint)?;
        }
    }
    if string_of(settings, "grpc_endpoint").is_some()
        && string_of(settings, "grpc_endpoint") == string_of(settings, "http_endpoint")
    {
        return Err(FieldError::setting("http_endpoint", "must differ from grpc_endpoint"));
    }
    Ok(())
}

fn check_prometheus_scrape(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    for (index, target) in strings_of(settings, "targets").into_iter().enumerate() {
        check_host_port(&format!("targets[{index}]"), target)?;
    }
    if let Some(path) = string_of(settings, "metrics_path") {
        if !path.starts_with('/') || has_whitespace(path) {
            return Err(FieldError::setting("metrics_path", "must be a path starting with /"));
        }
    }
    Ok(())
}

fn check_syslog(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    match string_of(settings, "address") {
        Some(address) => check_listen_address("address", address),
        None => Ok(()),
    }
}

fn check_journald(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    // Units become one space-separated journal match string in Alloy.
    for (index, unit) in strings_of(settings, "units").into_iter().enumerate() {
        if has_whitespace(unit) || unit.contains('=') {
            return Err(FieldError::setting(
                &format!("units[{index}]"),
                "must be a unit name such as nginx.service",
            ));
        }
    }
    Ok(())
}

fn check_mask(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    let enabled = |name: &str| settings.get(name).and_then(Value::as_bool).unwrap_or(false);
    if !enabled("emails") && !enabled("card_numbers") && strings_of(settings, "patterns").is_empty() {
        return Err(FieldError::setting(
            "patterns",
            "enable emails or card_numbers, or give at least one pattern",
        ));
    }
    Ok(())
}

fn check_attributes(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    let count = setting_map(settings, "insert").len()
        + setting_map(settings, "update").len()
        + strings_of(settings, "delete").len();
    if count == 0 {
        return Err(FieldError::setting("insert", "give at least one insert, update or delete action"));
    }
    Ok(())
}

fn check_batch(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    match settings.get("send_batch_size").and_then(Value::as_i64) {
        Some(size) if !(1..=1_000_000).contains(&size) => {
            Err(FieldError::setting("send_batch_size", "must be between 1 and 1000000"))
        }
        _ => Ok(()),
    }
}

fn check_http_url(name: &str, url: &str) -> Result<(), FieldError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !has_whitespace(url) => Ok(()),
        _ => Err(FieldError::setting(name, "must be an http:// or https:// URL")),
    }
}

fn check_otlp_http(settings: &Settings, keys: &[&str]) -> Result<(), FieldError> {
    if let Some(endpoint) = string_of(settings, "endpoint") {
        check_http_url("endpoint", endpoint)?;
    }
    if keys.contains(&"bearer_token") && (keys.contains(&"username") || keys.contains(&"password")) {
        return Err(FieldError {
            field: "credentials.bearer_token".to_owned(),
            problem: "use either bearer_token or username/password, not both".to_owned(),
        });
    }
    Ok(())
}

fn check_no_whitespace_endpoint(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    match string_of(settings, "endpoint") {
        Some(endpoint) if has_whitespace(endpoint) => {
            Err(FieldError::setting("endpoint", "must not contain whitespace"))
        }
        _ => Ok(()),
    }
}

fn check_http_url_setting(settings: &Settings, _keys: &[&str]) -> Result<(), FieldError> {
    match string_of(settings, "url") {
        Some(url) => check_http_url("url", url),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: Value) -> Settings {
        value.as_object().cloned().unwrap_or_default()
    }

    fn error_of(kind: EntryKind, type_name: &str, value: Value, keys: &[&str]) -> FieldError {
        match validate(kind, type_name, &settings(value), keys) {
            Ok(_) => panic!("{type_name} settings unexpectedly valid"),
            Err(error) => error,
        }
    }

    #[test]
    fn every_example_validates_and_every_default_parses() {
        for entry in entries() {
            let example: Value = serde_json::from_str(entry.example_settings).expect("example is JSON");
            let result = validate(entry.kind, entry.type_name, &settings(example), &[]);
            assert!(result.is_ok(), "{}: {:?}", entry.type_name, result.err());
            for spec in entry.settings {
                if let Some(default) = spec.default {
                    let value: Value = serde_json::from_str(default).expect("default is JSON");
                    assert!(check_value(spec, &value).is_ok(), "{}.{}", entry.type_name, spec.name);
                }
            }
        }
    }

    #[test]
    fn type_names_are_unique_per_kind() {
        for (index, entry) in entries().iter().enumerate() {
            assert!(
                !entries()[..index]
                    .iter()
                    .any(|other| other.kind == entry.kind && other.type_name == entry.type_name),
                "{}",
                entry.type_name
            );
        }
    }

    #[test]
    fn unknown_type_names_the_type_field() {
        let error = error_of(EntryKind::Source, "carrier_pigeon", json!({}), &[]);
        assert_eq!(error.field, "type");
    }

    #[test]
    fn unknown_and_missing_settings_name_the_setting() {
        let error = error_of(EntryKind::Destination, "loki", json!({"url": "http://l", "tenant": "x"}), &[]);
        assert_eq!(error.field, "settings.tenant");
        let error = error_of(EntryKind::Destination, "loki", json!({}), &[]);
        assert_eq!(error, FieldError { field: "settings.url".to_owned(), problem: "is required".to_owned() });
    }

    #[test]
    fn wrong_json_types_are_rejected() {
        let error = error_of(EntryKind::Step, "batch", json!({"send_batch_size": "10"}), &[]);
        assert_eq!(error.field, "settings.send_batch_size");
        let error = error_of(EntryKind::Step, "filter", json!({"conditions": "true"}), &[]);
        assert_eq!(error.field, "settings.conditions");
        let error = error_of(EntryKind::Step, "filter", json!({"conditions": [1]}), &[]);
        assert_eq!(error.field, "settings.conditions[0]");
        let error = error_of(EntryKind::Step, "attributes", json!({"insert": {"a": 1}}), &[]);
        assert_eq!(error.field, "settings.insert.a");
        let error =
            error_of(EntryKind::Destination, "otlp_grpc", json!({"endpoint": "h:1", "insecure": "yes"}), &[]);
        assert_eq!(error.field, "settings.insecure");
    }

    #[test]
    fn enum_values_and_list_items_are_checked() {
        let error = error_of(EntryKind::Destination, "debug", json!({"verbosity": "loud"}), &[]);
        assert_eq!(error.field, "settings.verbosity");
        assert!(error.problem.contains("basic, normal, detailed"), "{}", error.problem);
        let error = error_of(EntryKind::Source, "hostmetrics", json!({"scrapers": ["cpu", "gpu"]}), &[]);
        assert_eq!(error.field, "settings.scrapers[1]");
    }

    #[test]
    fn durations_follow_go_syntax() {
        for good in ["30s", "1m30s", "200ms", "1.5h", "10us"] {
            assert!(is_positive_duration(good), "{good}");
        }
        for bad in ["", "30", "s", "-1s", "0s", "1x", "1.s", ".5s", "1 s"] {
            assert!(!is_positive_duration(bad), "{bad}");
        }
    }

    #[test]
    fn credential_keys_are_checked() {
        let error = error_of(EntryKind::Destination, "loki", json!({"url": "http://l"}), &["token"]);
        assert_eq!(error.field, "credentials.token");
        let error = error_of(EntryKind::Destination, "debug", json!({}), &["password"]);
        assert_eq!(error.field, "credentials.password");
        assert!(validate(
            EntryKind::Destination,
            "loki",
            &settings(json!({"url": "http://l"})),
            &["password", "username"]
        )
        .is_ok());
        let error = error_of(
            EntryKind::Destination,
            "otlp_http",
            json!({"endpoint": "https://o"}),
            &["bearer_token", "password"],
        );
        assert_eq!(error.field, "credentials.bearer_token");
    }

    #[test]
    fn content_rules_reject_unrenderable_values() {
        let error = error_of(EntryKind::Source, "prometheus_scrape", json!({"targets": ["http://a:1"]}), &[]);
        assert_eq!(error.field, "settings.targets[0]");
        let error = error_of(EntryKind::Source, "prometheus_scrape", json!({"targets": ["a\u{7}:1"]}), &[]);
        assert_eq!(error.field, "settings.targets");
        let error = error_of(EntryKind::Step, "attributes", json!({"insert": {"k": "line\nbreak"}}), &[]);
        assert_eq!(error.field, "settings.insert");
        let error = error_of(EntryKind::Source, "journald", json!({"units": ["a b"]}), &[]);
        assert_eq!(error.field, "settings.units[0]");
        let error = error_of(EntryKind::Step, "mask", json!({}), &[]);
        assert_eq!(error.field, "settings.patterns");
        let error = error_of(EntryKind::Step, "attributes", json!({"delete": []}), &[]);
        assert_eq!(error.field, "settings.insert");
        let error =
            error_of(EntryKind::Destination, "otlp_http", json!({"endpoint": "otlp.example.com"}), &[]);
        assert_eq!(error.field, "settings.endpoint");
    }

    fn problems_of(kind: EntryKind, type_name: &str, settings: &Settings) -> Vec<FieldError> {
        match validate_every_field(kind, type_name, settings, &[]) {
            Ok(_) => panic!("{type_name} settings unexpectedly valid"),
            Err(problems) => problems,
        }
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let otlp = settings(json!({"grpc_endpoint": "not a host port", "http_endpoint": "0.0.0.0:99999"}));
        let problems = problems_of(EntryKind::Source, "otlp", &otlp);
        let fields: Vec<&str> = problems.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["settings.grpc_endpoint", "settings.http_endpoint"]);
        assert!(problems[1].problem.contains("between 1 and 65535"), "{problems:?}");
        let scrape =
            settings(json!({"targets": ["a\u{7}:1"], "scrape_interval": "soon", "metrics_path": "x"}));
        let problems = problems_of(EntryKind::Source, "prometheus_scrape", &scrape);
        let fields: Vec<&str> = problems.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["settings.targets", "settings.scrape_interval", "settings.metrics_path"]);
    }

    #[test]
    fn listen_addresses_take_an_empty_host_and_ports_stay_in_range() {
        let valid = |value: Value| validate(EntryKind::Source, "otlp", &settings(value), &[]).is_ok();
        assert!(valid(json!({"grpc_endpoint": ":4317", "http_endpoint": "[::]:4318"})));
        assert!(!valid(json!({"grpc_endpoint": "0.0.0.0:0"})));
        assert!(!valid(json!({"grpc_endpoint": "0.0.0.0:65536"})));
        assert!(valid(json!({"grpc_endpoint": "0.0.0.0:65535"})));
        assert!(validate(EntryKind::Source, "syslog", &settings(json!({"address": ":514"})), &[]).is_ok());
        let error = error_of(EntryKind::Source, "prometheus_scrape", json!({"targets": [":9090"]}), &[]);
        assert_eq!(error.field, "settings.targets[0]", "a scrape target needs a host");
    }

    #[test]
    fn readers_fall_back_to_defaults_and_ignore_wrong_types() {
        let otlp = entry(EntryKind::Source, "otlp").expect("otlp");
        let given = settings(json!({"grpc_endpoint": 5}));
        assert_eq!(setting_str(otlp, &given, "grpc_endpoint").as_deref(), Some("0.0.0.0:4317"));
        let hostmetrics = entry(EntryKind::Source, "hostmetrics").expect("hostmetrics");
        assert_eq!(setting_list(hostmetrics, &Settings::new(), "scrapers").len(), 6);
        let batch = entry(EntryKind::Step, "batch").expect("batch");
        assert_eq!(setting_integer(batch, &Settings::new(), "send_batch_size"), Some(8192));
    }
}
