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

use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::model::config_text::ConfigText;
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
    (format_of(input.mode), render_parts(input, credentials).content(input))
}

fn render_parts(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> RenderedParts {
    match input.mode {
        CollectorMode::AlloyRemotecfg => alloy::render_alloy_parts(input, credentials),
        CollectorMode::Opamp => otelcol::render_otelcol_parts(input, credentials),
    }
}

/// The first line of a rendered config, the only one that names the collector (its name and id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heading {
    /// A config to run.
    Config,
    /// Comments only, saying why there is nothing to run.
    Placeholder(&'static str),
}

/// A rendering split at its first line: what follows [`Heading`] is the same for every collector
/// whose render input differs only in its name and id.
pub struct RenderedParts {
    mode: CollectorMode,
    heading: Heading,
    rest: String,
    components: BTreeMap<String, Vec<String>>,
}

impl RenderedParts {
    /// The whole text for the collector of `input`.
    fn content(&self, input: &RenderInput<'_>) -> String {
        joined(self.mode, self.heading, &self.rest, input)
    }
}

fn joined(mode: CollectorMode, heading: Heading, rest: &str, input: &RenderInput<'_>) -> String {
    let mut content = heading_line(mode, heading, input);
    content.reserve_exact(rest.len());
    content.push_str(rest);
    content
}

fn heading_line(mode: CollectorMode, heading: Heading, input: &RenderInput<'_>) -> String {
    match mode {
        CollectorMode::AlloyRemotecfg => {
            alloy::heading_line(heading, input.collector_name, input.collector_id)
        }
        CollectorMode::Opamp => otelcol::heading_line(heading, input.collector_name, input.collector_id),
    }
}

/// Renders the stored configs of many collectors ([`render_collector_config`] for each, byte for
/// byte), rendering each distinct input once: a fleet-wide change reaching ten thousand collectors
/// with the same labels renders one config and names each collector in its first line.
#[derive(Default)]
pub struct SharedRenders<'a> {
    inputs: InputGroups<'a, (Heading, Arc<str>)>,
}

/// A stored config from [`SharedRenders`]: its text shares everything after the first line with the
/// other collectors of its group.
pub struct SharedRender {
    pub format: ConfigFormat,
    pub hash: String,
    pub text: ConfigText,
}

impl<'a> SharedRenders<'a> {
    pub fn render(&mut self, input: &RenderInput<'a>) -> RenderedConfig {
        let SharedRender { format, hash, text } = self.render_shared(input);
        RenderedConfig { format, content: text.to_text(), hash }
    }

    /// [`SharedRenders::render`] without joining the text: one copy of the rest per group.
    pub fn render_shared(&mut self, input: &RenderInput<'a>) -> SharedRender {
        let (heading, rest) = self.inputs.entry(input).or_insert_with(|| {
            let parts = render_parts(input, &Credentials::Markers);
            (parts.heading, Arc::from(parts.rest))
        });
        let heading = heading_line(input.mode, *heading, input);
        let hash = config_hash_of(&[&heading, rest], input);
        SharedRender {
            format: format_of(input.mode),
            hash,
            text: ConfigText::from_parts(&heading, rest.clone()),
        }
    }
}

/// Tells the first of many inputs that render alike after their first line (and agree on `X`, what
/// else a caller's check reads) from the ones after it: a check that passed for the first passes
/// for the others.
pub struct DistinctInputs<'a, X> {
    inputs: InputGroups<'a, HashSet<X>>,
}

impl<X> Default for DistinctInputs<'_, X> {
    fn default() -> Self {
        DistinctInputs { inputs: InputGroups::default() }
    }
}

impl<'a, X: std::hash::Hash + Eq> DistinctInputs<'a, X> {
    /// Whether no input before this one rendered alike with the same `extra`.
    pub fn first(&mut self, input: &RenderInput<'a>, extra: X) -> bool {
        self.inputs.entry(input).or_default().insert(extra)
    }
}

/// Inputs grouped by what a rendering after its first line depends on: the very same items (by
/// address: nothing can change or free them while `'a` lasts), mode and stability level, and, when
/// any item's text could be a template (`{{`), the same labels and reported attributes. One `V` per
/// group.
struct InputGroups<'a, V> {
    groups: HashMap<ShareKey<'a>, SharedGroup<'a, V>>,
}

impl<V> Default for InputGroups<'_, V> {
    fn default() -> Self {
        InputGroups { groups: HashMap::new() }
    }
}

struct SharedGroup<'a, V> {
    /// Whether the items' settings may resolve templates: then labels and attributes matter.
    templated: bool,
    by_values: HashMap<Option<TemplateValues<'a>>, V>,
}

type TemplateValues<'a> = (&'a Labels, &'a BTreeMap<String, String>);

impl<'a, V> InputGroups<'a, V> {
    fn entry(&mut self, input: &RenderInput<'a>) -> hash_map::Entry<'_, Option<TemplateValues<'a>>, V> {
        let group = self.groups.entry(ShareKey::of(input)).or_insert_with(|| SharedGroup {
            templated: template_check::may_hold_templates(input),
            by_values: HashMap::new(),
        });
        group.by_values.entry(group.templated.then_some((input.labels, input.attributes)))
    }
}

/// What a rendering after the first line depends on, besides template values.
#[derive(PartialEq, Eq, Hash)]
struct ShareKey<'a> {
    mode: CollectorMode,
    stability_level: StabilityLevel,
    sources: Vec<Same<'a, Source>>,
    routes: Vec<Same<'a, Route>>,
    destinations: Vec<Same<'a, Destination>>,
    pipelines: Vec<(&'a str, Same<'a, Pipeline>)>,
    destinations_elsewhere: Vec<&'a str>,
}

impl<'a> ShareKey<'a> {
    fn of(input: &RenderInput<'a>) -> ShareKey<'a> {
        // Every field named: a field added to the input must be decided on here.
        let RenderInput {
            collector_id: _,
            collector_name: _,
            mode,
            sources,
            routes,
            destinations,
            pipelines,
            stability_level,
            destinations_elsewhere,
            labels: _,
            attributes: _,
        } = input;
        ShareKey {
            mode: *mode,
            stability_level: *stability_level,
            sources: sources.iter().map(|item| Same(*item)).collect(),
            routes: routes.iter().map(|item| Same(*item)).collect(),
            destinations: destinations.iter().map(|item| Same(*item)).collect(),
            pipelines: pipelines.iter().map(|(id, pipeline)| (*id, Same(*pipeline))).collect(),
            destinations_elsewhere: destinations_elsewhere.iter().copied().collect(),
        }
    }
}

/// One item, compared and hashed by its address.
struct Same<'a, T>(&'a T);

impl<T> PartialEq for Same<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl<T> Eq for Same<'_, T> {}

impl<T> std::hash::Hash for Same<'_, T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state);
    }
}

fn format_of(mode: CollectorMode) -> ConfigFormat {
    match mode {
        CollectorMode::AlloyRemotecfg => ConfigFormat::Alloy,
        CollectorMode::Opamp => ConfigFormat::Otelcol,
    }
}

fn config_hash(content: &str, input: &RenderInput<'_>) -> String {
    config_hash_of(&[content], input)
}

/// [`config_hash`] of the text made of `parts`.
fn config_hash_of(parts: &[&str], input: &RenderInput<'_>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::settings_for_test;
    use serde_json::json;

    /// Items shared by the collectors of the property below: a plain model, one whose destination
    /// endpoint and source attributes are templates, and an empty one.
    fn models() -> Vec<TestModel> {
        let templated = TestModel {
            sources: vec![Source {
                resource_attributes: [("host".to_owned(), "{{attributes.host.name}}".to_owned())].into(),
                ..Source::for_test("src_1", "otlp")
            }],
            routes: vec![Route::for_test("rte_1", 10, "true", true, &["dst_1"])],
            destinations: vec![Destination {
                settings: settings_for_test(json!({"endpoint": "https://{{labels.region}}.example.com"})),
                ..Destination::for_test("dst_1", "otlp_http")
            }],
            ..TestModel::default()
        };
        let plain = TestModel {
            sources: vec![Source::for_test("src_2", "otlp")],
            routes: vec![Route::for_test("rte_2", 10, "true", true, &["dst_2"])],
            destinations: vec![Destination {
                settings: settings_for_test(json!({"endpoint": "https://otlp.example.com"})),
                ..Destination::for_test("dst_2", "otlp_http")
            }],
            ..TestModel::default()
        };
        vec![plain, templated, TestModel::default()]
    }

    /// One collector of the property below: name, id, model index, labels, attributes, mode.
    type Case = (String, String, usize, Labels, BTreeMap<String, String>, CollectorMode);

    proptest::proptest! {
        /// Rendering many collectors at once gives each exactly what rendering it alone gives.
        #[test]
        fn shared_renders_are_the_renders_of_each_collector(
            collectors in proptest::collection::vec(
                ("(?s).{0,12}", "col_[a-z0-9]{1,6}", 0..3usize, proptest::option::of("[a-z\"]{1,3}"),
                    proptest::option::of("[a-z ]{1,3}"), proptest::bool::ANY),
                1..24,
            ),
        ) {
            let models = models();
            let cases: Vec<Case> = collectors
                .into_iter()
                .map(|(name, id, model, region, host, alloy)| {
                    let labels = region.map(|region| ("region".to_owned(), region)).into_iter().collect();
                    let attributes = host.map(|host| ("host.name".to_owned(), host)).into_iter().collect();
                    let mode = if alloy { CollectorMode::AlloyRemotecfg } else { CollectorMode::Opamp };
                    (name, id, model, labels, attributes, mode)
                })
                .collect();
            let inputs: Vec<RenderInput<'_>> = cases
                .iter()
                .map(|(name, id, model, labels, attributes, mode)| RenderInput {
                    collector_id: id,
                    collector_name: name,
                    labels,
                    attributes,
                    ..models[*model].input(*mode)
                })
                .collect();
            let mut shared = SharedRenders::default();
            for input in &inputs {
                proptest::prop_assert_eq!(shared.render(input), render_collector_config(input));
            }
        }
    }

    #[test]
    fn collectors_with_the_same_items_share_one_rendering_unless_their_templates_differ() {
        let models = models();
        let names = ["edge-1", "edge \"2\"", "ä\n3"];
        let labels: Vec<Labels> = ["eu", "eu", "us"]
            .iter()
            .map(|region| [("region".to_owned(), (*region).to_owned())].into())
            .collect();
        let attributes = BTreeMap::new();
        let mut shared = SharedRenders::default();
        for model in &models[..2] {
            for (name, labels) in names.iter().zip(&labels) {
                let input = RenderInput {
                    collector_name: name,
                    labels,
                    attributes: &attributes,
                    ..model.input(CollectorMode::Opamp)
                };
                assert_eq!(shared.render(&input), render_collector_config(&input));
            }
        }
        let rendered: Vec<usize> = shared.inputs.groups.values().map(|group| group.by_values.len()).collect();
        let mut rendered = rendered;
        rendered.sort_unstable();
        // The plain model once for all three; the templated one once per region.
        assert_eq!(rendered, vec![1, 2]);
    }
}
