//! The telemetry a collector handles: sources, pipelines (ordered processing steps), routes and
//! destinations. Settings are free-form JSON validated against the catalogue (`render/catalogue.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The three OpenTelemetry signal types.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Metrics, Signal::Traces];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }

    pub fn parse(name: &str) -> Option<Signal> {
        match name {
            "logs" => Some(Signal::Logs),
            "metrics" => Some(Signal::Metrics),
            "traces" => Some(Signal::Traces),
            _ => None,
        }
    }
}

pub type Settings = serde_json::Map<String, serde_json::Value>;

/// One processing step of a pipeline, e.g. `{"type":"filter","settings":{"conditions":[…]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    #[serde(rename = "type")]
    pub step_type: String,
    #[serde(default)]
    pub settings: Settings,
}

/// A tenant-wide, reusable processing chain referenced by routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Signals the pipeline applies to; records of other signals pass the route untouched by it.
    pub signals: Vec<Signal>,
    pub steps: Vec<Step>,
}

/// Where a collector receives telemetry from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub source_type: String,
    #[serde(default)]
    pub settings: Settings,
    /// Added to every record from this source (besides `linkmesh.source.name` / `linkmesh.source.id`).
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
}

/// An encrypted credential value: `nonce || ciphertext` (ChaCha20-Poly1305), key outside Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(#[serde(with = "hex_bytes")] pub Vec<u8>);

/// Where telemetry goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub destination_type: String,
    #[serde(default)]
    pub settings: Settings,
    /// Write-only credential values, sealed before they are proposed to Raft.
    #[serde(default)]
    pub credentials: BTreeMap<String, SealedSecret>,
}

/// Which records go where: routes are evaluated by ascending priority; a final route keeps the
/// records it matched from every later route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub id: String,
    pub name: String,
    /// An OTTL condition evaluated against each record; `true` matches everything.
    pub condition: String,
    pub priority: u32,
    pub is_final: bool,
    pub pipeline_id: Option<String>,
    pub destination_ids: Vec<String>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Settings from a JSON object literal (anything else is empty settings), for tests.
#[cfg(test)]
pub fn settings_for_test(value: serde_json::Value) -> Settings {
    value.as_object().cloned().unwrap_or_default()
}

/// Test fixtures: one builder per record with the defaults the render tests share; tests change the
/// fields they care about with struct update syntax.
#[cfg(test)]
mod fixtures {
    use super::*;

    impl Source {
        pub fn for_test(id: &str, source_type: &str) -> Source {
            Source {
                id: id.to_owned(),
                name: id.to_owned(),
                source_type: source_type.to_owned(),
                settings: Settings::new(),
                resource_attributes: BTreeMap::new(),
            }
        }
    }

    impl Destination {
        pub fn for_test(id: &str, destination_type: &str) -> Destination {
            Destination {
                id: id.to_owned(),
                name: id.to_owned(),
                destination_type: destination_type.to_owned(),
                settings: Settings::new(),
                credentials: BTreeMap::new(),
            }
        }
    }

    impl Route {
        /// A route without a pipeline.
        pub fn for_test(
            id: &str,
            priority: u32,
            condition: &str,
            is_final: bool,
            destination_ids: &[&str],
        ) -> Route {
            Route {
                id: id.to_owned(),
                name: id.to_owned(),
                condition: condition.to_owned(),
                priority,
                is_final,
                pipeline_id: None,
                destination_ids: destination_ids.iter().map(|id| (*id).to_owned()).collect(),
            }
        }
    }

    impl Pipeline {
        pub fn for_test(id: &str, signals: &[Signal], steps: Vec<Step>) -> Pipeline {
            Pipeline {
                id: id.to_owned(),
                name: id.to_owned(),
                description: String::new(),
                signals: signals.to_vec(),
                steps,
            }
        }
    }

    impl Step {
        pub fn for_test(step_type: &str, settings: serde_json::Value) -> Step {
            Step { step_type: step_type.to_owned(), settings: settings_for_test(settings) }
        }
    }
}
