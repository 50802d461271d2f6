//! Rendering: pure functions from the fleet model of one collector to the text it receives.
//!
//! No I/O, clocks or randomness: the same model renders byte-identical output, so the config hash
//! changes exactly when the config does.
//!
//! Credentials never appear in rendered text stored anywhere. Every renderer takes a
//! [`secrets::Credentials`] and writes it only at the credential positions it generates itself:
//! [`render_collector_config`] renders the stored text (markers there, kept as config versions and
//! shown by the API); [`render_for_delivery`] renders the same input again with the decrypted values
//! (the collector's actor, just before delivery). Nothing fills markers into finished text, so no
//! operator-written text can turn into a credential.
//!
//! `config.hash` is the SHA-256 of the stored text and of the sealed (encrypted) credentials of the
//! collector's destinations, see [`RenderedConfig::hash`].
//!
//! - [`catalogue`]: every source, step and destination type: settings schema, signals, rendering.
//! - [`alloy`]: the Alloy module delivered over remotecfg (everything inside one `declare`).
//! - [`otelcol`]: OpenTelemetry Collector YAML for `opamp` collectors.
//! - [`graph`]: the rendered pipeline as a graph (topology API, UI canvas, throughput mapping).

pub mod alloy;
pub mod alloy_block;
pub mod alloy_syntax;
pub mod catalogue;
pub mod enrollment;
pub mod graph;
pub mod otelcol;
pub mod ottl_check;
pub mod plan;
pub mod secrets;
pub mod stability;
pub mod template_check;
pub mod templates;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::model::labels::Labels;
use crate::model::pipeline::{Destination, Pipeline, Route, Source};
use crate::model::stability::StabilityLevel;
use crate::model::CollectorMode;
use secrets::{CredentialValues, Credentials};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Alloy,
    Otelcol,
}

impl ConfigFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigFormat::Alloy => "alloy",
            ConfigFormat::Otelcol => "otelcol",
        }
    }
}

/// Everything that determines one collector's config.
#[derive(Debug, Clone)]
pub struct RenderInput<'a> {
    pub collector_id: &'a str,
    pub collector_name: &'a str,
    pub mode: CollectorMode,
    pub sources: Vec<&'a Source>,
    pub routes: Vec<&'a Route>,
    pub destinations: Vec<&'a Destination>,
    /// Pipelines referenced by the routes, by id.
    pub pipelines: BTreeMap<&'a str, &'a Pipeline>,
    /// The lowest stability level the collector's Alloy accepts: below experimental-permitting
    /// levels a `debug` destination renders with generally-available components instead.
    pub stability_level: StabilityLevel,
    /// Fleet-wide destinations that exist but do not apply to this collector: a fleet-wide route
    /// names them for the collectors they do apply to, and the plan leaves them out here silently.
    pub destinations_elsewhere: BTreeSet<&'a str>,
    /// The collector's labels, for `{{labels.KEY}}` in settings ([`templates`]).
    pub labels: &'a Labels,
    /// The attributes the collector reports (`local_attributes`), for `{{attributes.KEY}}` where a
    /// setting allows it ([`templates`]).
    pub attributes: &'a BTreeMap<String, String>,
}

/// One collector's config as stored: what it receives, with markers at the credential positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    pub format: ConfigFormat,
    /// Config text with credential markers.
    pub content: String,
    /// Hex SHA-256 over `content` and the sealed credentials of every destination of the collector
    /// (by destination id and key). The delivered text is a function of exactly these (and of the
    /// data key, which does not change), so the hash changes whenever the delivered text can — a new
    /// password is a new version — without ever hashing a secret. Opaque to collectors, which echo it
    /// back to skip unchanged configs.
    pub hash: String,
}

/// The config a collector receives, rendered with its decrypted credentials.
pub struct DeliverableRender {
    /// The same input rendered for storage; its hash is the delivered config's hash.
    pub stored: RenderedConfig,
    /// The text to send: credential values at the credential positions, nowhere else.
    pub content: String,
    /// Alloy: the component ids inside the module's declare body (what its controller runs once
    /// the content loads); empty for the OTel Collector and for an empty model.
    pub alloy_component_ids: BTreeSet<String>,
}

/// Renders one collector's config as stored; an empty model renders a non-empty comment (Alloy
/// treats empty content as "keep running the previous config").
pub fn render_collector_config(input: &RenderInput<'_>) -> RenderedConfig {
    let (format, content) = render_content(input, &Credentials::Markers);
    let hash = config_hash(&content, input);
    RenderedConfig { format, content, hash }
}

/// Renders one collector's config from the same input as stored and as delivered with `values` (the
/// decrypted credentials of the collector's destinations): twice when it has credentials, else once,
/// the two texts being the same (markers stand only where credentials go).
pub fn render_for_delivery(input: &RenderInput<'_>, values: &CredentialValues) -> DeliverableRender {
    let has_credentials = input.destinations.iter().any(|destination| !destination.credentials.is_empty());
    let credentials = Credentials::Values(values);
    let stored_as = |content: &str| RenderedConfig {
        format: format_of(input.mode),
        content: content.to_owned(),
        hash: config_hash(content, input),
    };
    match input.mode {
        CollectorMode::AlloyRemotecfg => {
            let rendered = alloy::render_alloy(input, &credentials);
            let stored =
                if has_credentials { render_collector_config(input) } else { stored_as(&rendered.content) };
            let alloy_component_ids = rendered.components.into_values().flatten().collect();
            DeliverableRender { stored, content: rendered.content, alloy_component_ids }
        }
        CollectorMode::Opamp => {
            let (_, content) = render_content(input, &credentials);
            let stored = if has_credentials { render_collector_config(input) } else { stored_as(&content) };
            DeliverableRender { stored, content, alloy_component_ids: BTreeSet::new() }
        }
    }
}

fn render_content(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> (ConfigFormat, String) {
    let content = match input.mode {
        CollectorMode::AlloyRemotecfg => alloy::render_alloy(input, credentials).content,
        CollectorMode::Opamp => otelcol::render_otelcol(input, credentials).content,
    };
    (format_of(input.mode), content)
}

fn format_of(mode: CollectorMode) -> ConfigFormat {
    match mode {
        CollectorMode::AlloyRemotecfg => ConfigFormat::Alloy,
        CollectorMode::Opamp => ConfigFormat::Otelcol,
    }
}

fn config_hash(content: &str, input: &RenderInput<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(content.as_bytes());
    let mut destinations: Vec<&Destination> = input.destinations.clone();
    destinations.sort_by(|left, right| left.id.cmp(&right.id));
    for destination in destinations {
        for (key, sealed) in &destination.credentials {
            hasher.update(destination.id.as_bytes());
            hasher.update([0]);
            hasher.update(key.as_bytes());
            hasher.update([0]);
            hasher.update(&sealed.0);
        }
    }
    hex::encode(hasher.finalize())
}

/// Whether the model is empty: nothing to collect or nowhere to send it.
pub fn nothing_configured(input: &RenderInput<'_>) -> bool {
    input.sources.is_empty() || input.routes.is_empty()
}

/// The owned model the render unit tests build their [`RenderInput`] from.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct TestModel {
    pub sources: Vec<Source>,
    pub routes: Vec<Route>,
    pub destinations: Vec<Destination>,
    pub pipelines: Vec<Pipeline>,
    pub labels: Labels,
    pub attributes: BTreeMap<String, String>,
}

#[cfg(test)]
impl TestModel {
    /// The input of collector `col_1` named `edge-1`.
    pub fn input(&self, mode: CollectorMode) -> RenderInput<'_> {
        RenderInput {
            collector_id: "col_1",
            collector_name: "edge-1",
            mode,
            sources: self.sources.iter().collect(),
            routes: self.routes.iter().collect(),
            destinations: self.destinations.iter().collect(),
            pipelines: self.pipelines.iter().map(|pipeline| (pipeline.id.as_str(), pipeline)).collect(),
            stability_level: StabilityLevel::default(),
            destinations_elsewhere: BTreeSet::new(),
            labels: &self.labels,
            attributes: &self.attributes,
        }
    }
}
