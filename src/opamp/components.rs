//! What a config needs of a collector's build, and what the agent says its build has
//! (`AvailableComponents`, asked for with `ServerToAgentFlags_ReportAvailableComponents`). A config
//! that needs a component the build lacks is not offered: an upstream collector would fail to start
//! with it, and the supervisor would restart it with the same config every few seconds without ever
//! telling the server why (reference/opamp-and-self-telemetry.md §3.4b).
//!
//! Names differ between the two: the v0.149 collector registers its OTLP exporters as `otlp_grpc` and
//! `otlp_http` and its file log receiver as `file_log`, and keeps `otlp`, `otlphttp` and `filelog` —
//! the names linkmesh renders — as deprecated aliases that its available-components report does not
//! list. [`ALIASES`] says which names are one component.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::opamp::v1 as pb;

/// Component types per kind (`receivers`, `processors`, `exporters`, `connectors`, `extensions`).
pub type ComponentTypes = BTreeMap<String, BTreeSet<String>>;

/// The kinds of an OpenTelemetry Collector config, as its top-level sections name them.
pub const KINDS: [&str; 5] = ["receivers", "processors", "exporters", "connectors", "extensions"];

/// `(kind, name linkmesh renders, name a build may report instead)`: the same component.
/// Checked against what the real supervisor v0.149 reported for a build of upstream factories
/// (`tests/fixtures/opamp/supervisor-v0.149-available-components.json`).
pub const ALIASES: &[(&str, &str, &str)] = &[
    ("exporters", "otlp", "otlp_grpc"),
    ("exporters", "otlphttp", "otlp_http"),
    ("receivers", "filelog", "file_log"),
];

/// The component types `content` (an OpenTelemetry Collector YAML as linkmesh renders it: two-space
/// indentation, one component id per line of its section) uses, per kind: `otlp/src_1` is type
/// `otlp`.
pub fn required(content: &str) -> ComponentTypes {
    let mut types = ComponentTypes::new();
    let mut section: Option<&str> = None;
    for line in content.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            let key = line.trim_end().trim_end_matches(':');
            section = KINDS.iter().copied().find(|kind| *kind == key && line.trim_end().ends_with(':'));
            continue;
        }
        let Some(kind) = section else { continue };
        let Some(entry) = line.strip_prefix("  ").filter(|entry| !entry.starts_with(' ')) else { continue };
        let id = entry.split(':').next().unwrap_or_default().trim().trim_matches('"');
        let component_type = id.split('/').next().unwrap_or_default();
        if !component_type.is_empty() {
            types.entry(kind.to_owned()).or_default().insert(component_type.to_owned());
        }
    }
    types
}

/// The component types an agent reports, per kind. The report's top-level keys are the kinds
/// (`receivers`, or the singular), each with its types in `sub_component_map`.
pub fn reported(available: &pb::AvailableComponents) -> ComponentTypes {
    let mut types = ComponentTypes::new();
    for (kind, details) in &available.components {
        let kind = if kind.ends_with('s') { kind.clone() } else { format!("{kind}s") };
        let entry = types.entry(kind).or_default();
        entry.extend(details.sub_component_map.keys().cloned());
    }
    types
}

/// An agent's available-components report as the collector's actor gets it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportedComponents {
    /// The report's hash (hex): agents send it in every full report, the list only when asked.
    pub hash: String,
    /// The types per kind, when the message lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<ComponentTypes>,
}

impl ReportedComponents {
    pub fn of(available: &pb::AvailableComponents) -> Option<ReportedComponents> {
        if available.hash.is_empty() && available.components.is_empty() {
            return None;
        }
        let types = (!available.components.is_empty()).then(|| reported(available));
        Some(ReportedComponents { hash: hex::encode(&available.hash), types })
    }
}

/// The agent's health as it last reported it (`ComponentHealth` at the top level).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AgentHealth {
    pub healthy: bool,
    /// The agent's own words (`StatusOK`, `Stopping`, …), bounded.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub last_error: String,
}

/// Longest health status or error kept.
const HEALTH_TEXT_LIMIT: usize = 2048;

impl AgentHealth {
    pub fn of(health: &pb::ComponentHealth) -> AgentHealth {
        let bounded = |text: &str| text.chars().take(HEALTH_TEXT_LIMIT).collect::<String>();
        AgentHealth {
            healthy: health.healthy,
            status: bounded(&health.status),
            last_error: bounded(&health.last_error),
        }
    }
}

/// What the collector page shows of an OpAMP agent (live state of the collector's actor).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct AgentView {
    /// The names of the capability bits it reported.
    pub capabilities: Vec<String>,
    pub health: Option<AgentHealth>,
    /// Its build's component types per kind, when it listed them.
    pub available_components: Option<ComponentTypes>,
}

/// The `(kind, type)` pairs `required` needs that `available` lacks, aliases taken into account.
/// Kinds the report does not list at all are not judged (an agent may report only some).
pub fn missing(required: &ComponentTypes, available: &ComponentTypes) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for (kind, types) in required {
        let Some(has) = available.get(kind) else { continue };
        for component_type in types {
            let known = has.contains(component_type)
                || ALIASES.iter().any(|(alias_kind, rendered, reported)| {
                    alias_kind == kind
                        && ((rendered == component_type && has.contains(*reported))
                            || (reported == component_type && has.contains(*rendered)))
                });
            if !known {
                missing.push((kind.clone(), component_type.clone()));
            }
        }
    }
    missing
}

/// What the operator reads when a config is not offered: the missing components by kind.
pub fn refusal_message(version: u64, missing: &[(String, String)]) -> String {
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (kind, component_type) in missing {
        by_kind.entry(kind).or_default().push(component_type);
    }
    let named: Vec<String> =
        by_kind.iter().map(|(kind, types)| format!("{kind} {}", types.join(", "))).collect();
    format!(
        "config version {version} was not offered: the collector's build has no {} (its agent's \
         available components); use a collector build with them (e.g. otelcol-contrib), or remove what \
         needs them",
        named.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "# linkmesh: config\nreceivers:\n  otlp/src_1:\n    protocols:\n      grpc:\n        \
                            endpoint: \"0.0.0.0:4317\"\nprocessors:\n  resource/src_1:\n    attributes: []\n  \
                            batch: {}\nexporters:\n  otlphttp/dst_1:\n    endpoint: \"https://x\"\n  \
                            kafka/dst_2:\n    brokers: [\"k:9092\"]\nconnectors:\n  forward/rte_1_logs: {}\n\
                            service:\n  pipelines:\n    logs/src_1:\n      receivers: [\"otlp/src_1\"]\n";

    fn types(pairs: &[(&str, &[&str])]) -> ComponentTypes {
        pairs
            .iter()
            .map(|(kind, names)| ((*kind).to_owned(), names.iter().map(|name| (*name).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn a_rendered_config_needs_the_types_of_its_section_entries() {
        let needed = required(RENDERED);
        assert_eq!(
            needed,
            types(&[
                ("receivers", &["otlp"]),
                ("processors", &["batch", "resource"]),
                ("exporters", &["kafka", "otlphttp"]),
                ("connectors", &["forward"]),
            ])
        );
    }

    #[test]
    fn aliases_count_as_the_component_and_what_is_missing_is_named() {
        let build = types(&[
            ("receivers", &["otlp"]),
            ("processors", &["batch", "resource"]),
            ("exporters", &["otlp_grpc", "otlp_http", "debug"]),
            ("connectors", &["forward"]),
        ]);
        let lacking = missing(&required(RENDERED), &build);
        assert_eq!(lacking, vec![("exporters".to_owned(), "kafka".to_owned())]);
        let message = refusal_message(3, &lacking);
        assert!(message.contains("version 3") && message.contains("exporters kafka"), "{message}");
        assert!(missing(&types(&[("exporters", &["otlp"])]), &build).is_empty(), "otlp is otlp_grpc");
    }

    #[test]
    fn kinds_the_report_leaves_out_are_not_judged_and_the_report_is_read_by_kind() {
        assert!(missing(&required(RENDERED), &types(&[("extensions", &["opamp"])])).is_empty());
        let report = pb::AvailableComponents {
            components: [(
                "exporter".to_owned(),
                pb::ComponentDetails {
                    metadata: vec![],
                    sub_component_map: [("otlp_http".to_owned(), pb::ComponentDetails::default())].into(),
                },
            )]
            .into(),
            hash: vec![1],
        };
        assert_eq!(reported(&report), types(&[("exporters", &["otlp_http"])]));
    }
}
