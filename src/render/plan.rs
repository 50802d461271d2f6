//! The format-independent shape of one collector's pipeline: which records flow where.
//!
//! Both renderers and the graph read the same [`Plan`], so Alloy, the OTel Collector and the topology
//! agree on the route semantics:
//!
//! - every source fans out to every route; routes are evaluated by ascending `priority`, ties by id;
//! - a route's records are those matching its OTTL condition among the records that reach it;
//! - a final route keeps the records it matched from every later route; a non-final route lets
//!   everything continue;
//! - a route is evaluated only for the signals at least one of its destinations accepts: a final
//!   logs-only route does not swallow metrics;
//! - routes after a final route whose condition is `true` receive nothing for that signal and are not
//!   rendered for it.
//!
//! Per signal this is a chain: route *k* gets the records that reach it, a "match" filter (dropping
//! `not (condition)`) feeds the route's steps and destinations, and for a final route a "rest" filter
//! (dropping `condition`) feeds route *k+1*; a non-final route *k+1* gets the same input as route *k*.
//!
//! Entries of unknown type (a model older than the catalogue) are skipped and listed in
//! [`Plan::skipped`], never a panic.
//!
//! The plan holds its sources, destinations and steps with their templates resolved for the
//! collector (`super::templates`): settings and resource attributes are owned copies whose strings
//! are the values, so the renderers quote them like any text. A reference that cannot be resolved (a
//! model that skipped the write checks) is noted in [`Plan::skipped`].

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::catalogue::{self, CatalogueEntry, EntryKind};
use super::secrets::{CredentialText, Credentials};
use super::templates::{self, Templating};
use super::RenderInput;
use crate::model::pipeline::{Destination, Pipeline, Route, Settings, Signal, Source, Step};

#[derive(Debug)]
pub struct Plan<'a> {
    /// Every source of a known type, sorted by id.
    pub sources: Vec<PlannedSource>,
    /// Every route, sorted by (priority, id), including routes nothing reaches.
    pub routes: Vec<PlannedRoute<'a>>,
    /// Destinations referenced by routes (of a known type), sorted by id.
    pub destinations: Vec<PlannedDestination>,
    /// Per signal some source emits: indices into `routes`, in evaluation order, of the routes that
    /// signal reaches.
    pub chains: BTreeMap<Signal, Vec<usize>>,
    /// Human-readable notes on what could not be rendered.
    pub skipped: Vec<String>,
}

#[derive(Debug)]
pub struct PlannedSource {
    /// The source with its templates resolved.
    pub source: Source,
    pub entry: &'static CatalogueEntry,
    pub label: String,
    /// Signals the source emits that at least one route takes.
    pub routed_signals: Vec<Signal>,
}

#[derive(Debug)]
pub struct PlannedRoute<'a> {
    pub route: &'a Route,
    pub label: String,
    pub pipeline: Option<&'a Pipeline>,
    /// The condition is empty or `true`: no match filter, and (final) nothing continues.
    pub matches_everything: bool,
    /// Steps of a known type, with their index in the pipeline.
    pub steps: Vec<PlannedStep>,
    /// Indices into [`Plan::destinations`], sorted by destination id.
    pub destinations: Vec<usize>,
    /// Signals whose chain includes this route.
    pub signals: Vec<Signal>,
    /// Signals for which a "rest" filter feeds the next route of the chain.
    pub rest_signals: Vec<Signal>,
}

#[derive(Debug)]
pub struct PlannedStep {
    /// Position in the pipeline's steps (graph id `step:<route_id>:<index>`).
    pub index: usize,
    /// The step with its templates resolved.
    pub step: Step,
    pub entry: &'static CatalogueEntry,
    pub label: String,
    /// Signals this step processes on this route.
    pub signals: Vec<Signal>,
}

#[derive(Debug)]
pub struct PlannedDestination {
    /// The destination with its templates resolved.
    pub destination: Destination,
    pub entry: &'static CatalogueEntry,
    pub label: String,
    /// Signals some route actually sends here.
    pub signals: Vec<Signal>,
}

impl PlannedSource {
    /// The graph node id, `source:<id>`.
    pub fn node_id(&self) -> String {
        format!("source:{}", self.source.id)
    }
}

impl PlannedDestination {
    /// The graph node id, `destination:<id>`.
    pub fn node_id(&self) -> String {
        format!("destination:{}", self.destination.id)
    }

    pub fn settings(&self) -> &Settings {
        &self.destination.settings
    }

    pub fn has_credential(&self, key: &str) -> bool {
        self.destination.credentials.contains_key(key)
    }

    /// A username or a password is set: the destination authenticates with HTTP basic auth.
    pub fn has_basic_auth(&self) -> bool {
        self.has_credential("username") || self.has_credential("password")
    }

    /// The text at a credential position of this destination: its own marker or value, never
    /// another destination's.
    pub fn credential(&self, key: &str, credentials: &Credentials<'_>) -> CredentialText {
        credentials.text(&self.destination.id, key)
    }
}

impl PlannedRoute<'_> {
    /// The graph node id, `route:<id>`.
    pub fn node_id(&self) -> String {
        format!("route:{}", self.route.id)
    }

    pub fn has_match_filter(&self) -> bool {
        !self.matches_everything && !self.signals.is_empty()
    }

    pub fn match_label(&self) -> String {
        format!("{}_match", self.label)
    }

    pub fn rest_label(&self) -> String {
        format!("{}_rest", self.label)
    }

    pub fn steps_for(&self, signal: Signal) -> impl Iterator<Item = &PlannedStep> + '_ {
        self.steps.iter().filter(move |step| step.signals.contains(&signal))
    }
}

impl<'a> Plan<'a> {
    pub fn new(input: &RenderInput<'a>) -> Plan<'a> {
        let mut skipped = Vec::new();
        let values = templates::Values { labels: input.labels, attributes: input.attributes };

        let mut sources: Vec<PlannedSource> = Vec::new();
        for source in sorted_by_id(&input.sources, |source| &source.id) {
            match catalogue::entry(EntryKind::Source, &source.source_type) {
                Some(entry) => sources.push(PlannedSource {
                    source: resolve_source(source, entry, &values, &mut skipped),
                    entry,
                    label: component_label("src", &source.id),
                    routed_signals: Vec::new(),
                }),
                None => skipped.push(format!("source {} has unknown type {}", source.id, source.source_type)),
            }
        }

        let mut routes: Vec<&'a Route> = input.routes.clone();
        routes.sort_by(|left, right| (left.priority, &left.id).cmp(&(right.priority, &right.id)));
        routes.dedup_by(|left, right| left.id == right.id);

        let known_destinations: BTreeMap<&str, &'a Destination> =
            input.destinations.iter().map(|destination| (destination.id.as_str(), *destination)).collect();
        let mut referenced: BTreeMap<&str, (&'a Destination, &'static CatalogueEntry)> = BTreeMap::new();
        for route in &routes {
            for id in &route.destination_ids {
                match known_destinations.get(id.as_str()) {
                    Some(destination) => {
                        match catalogue::entry(EntryKind::Destination, &destination.destination_type) {
                            Some(entry) => {
                                referenced.insert(id.as_str(), (destination, entry));
                            }
                            None => skipped.push(format!(
                                "destination {} has unknown type {}",
                                destination.id, destination.destination_type
                            )),
                        }
                    }
                    None if input.destinations_elsewhere.contains(id.as_str()) => {}
                    None => skipped.push(format!("route {} names missing destination {id}", route.id)),
                }
            }
        }
        let mut destinations: Vec<PlannedDestination> = referenced
            .values()
            .map(|(destination, entry)| PlannedDestination {
                destination: resolve_destination(destination, entry, &values, &mut skipped),
                entry,
                label: component_label("dst", &destination.id),
                signals: Vec::new(),
            })
            .collect();
        let destination_index: BTreeMap<&str, usize> =
            referenced.keys().enumerate().map(|(index, id)| (*id, index)).collect();

        let mut planned_routes: Vec<PlannedRoute<'a>> = Vec::new();
        for route in routes {
            let label = component_label("rte", &route.id);
            let pipeline = route.pipeline_id.as_deref().and_then(|id| {
                let found = input.pipelines.get(id).copied();
                if found.is_none() {
                    skipped.push(format!("route {} names missing pipeline {id}", route.id));
                }
                found
            });
            let mut steps = Vec::new();
            for (index, step) in
                pipeline.map(|pipeline| pipeline.steps.as_slice()).unwrap_or_default().iter().enumerate()
            {
                match catalogue::entry(EntryKind::Step, &step.step_type) {
                    Some(entry) => steps.push(PlannedStep {
                        index,
                        step: resolve_step(step, entry, &values, &mut skipped, pipeline, index),
                        entry,
                        label: format!("{label}_step_{index}"),
                        signals: Vec::new(),
                    }),
                    None => skipped.push(format!(
                        "step {index} of pipeline {} has unknown type {}",
                        pipeline.map(|pipeline| pipeline.id.as_str()).unwrap_or_default(),
                        step.step_type
                    )),
                }
            }
            let mut route_destinations: Vec<usize> = route
                .destination_ids
                .iter()
                .filter_map(|id| destination_index.get(id.as_str()).copied())
                .collect();
            route_destinations.sort_unstable();
            route_destinations.dedup();
            let condition = route.condition.trim();
            planned_routes.push(PlannedRoute {
                route,
                label,
                pipeline,
                matches_everything: condition.is_empty() || condition == "true",
                steps,
                destinations: route_destinations,
                signals: Vec::new(),
                rest_signals: Vec::new(),
            });
        }

        let mut chains = BTreeMap::new();
        for signal in Signal::ALL {
            if !sources.iter().any(|source| source.entry.carries(signal)) {
                continue;
            }
            let mut chain = Vec::new();
            for (index, route) in planned_routes.iter().enumerate() {
                let delivers = route
                    .destinations
                    .iter()
                    .any(|&destination| destinations[destination].entry.carries(signal));
                if !delivers {
                    continue;
                }
                chain.push(index);
                if route.route.is_final && route.matches_everything {
                    break;
                }
            }
            if !chain.is_empty() {
                chains.insert(signal, chain);
            }
        }

        for (&signal, chain) in &chains {
            for (position, &route_index) in chain.iter().enumerate() {
                let route = &mut planned_routes[route_index];
                route.signals.push(signal);
                let has_next = position + 1 < chain.len();
                if route.route.is_final && !route.matches_everything && has_next {
                    route.rest_signals.push(signal);
                }
                let pipeline_signals =
                    route.pipeline.map(|pipeline| pipeline.signals.as_slice()).unwrap_or_default();
                if pipeline_signals.contains(&signal) {
                    for step in &mut route.steps {
                        if step.entry.carries(signal) {
                            step.signals.push(signal);
                        }
                    }
                }
                for &destination in &route.destinations {
                    let planned = &mut destinations[destination];
                    if planned.entry.carries(signal) && !planned.signals.contains(&signal) {
                        planned.signals.push(signal);
                    }
                }
            }
        }
        for destination in &mut destinations {
            destination.signals.sort();
        }
        for source in &mut sources {
            source.routed_signals =
                chains.keys().copied().filter(|signal| source.entry.carries(*signal)).collect();
        }

        skipped.sort();
        skipped.dedup();
        Plan { sources, routes: planned_routes, destinations, chains, skipped }
    }

    /// Whether any record flows from a source to a destination.
    pub fn has_flow(&self) -> bool {
        !self.chains.is_empty()
    }

    pub fn chain(&self, signal: Signal) -> &[usize] {
        self.chains.get(&signal).map(Vec::as_slice).unwrap_or_default()
    }

    /// The route that follows `route_index` in the chain of `signal`.
    pub fn next_route(&self, signal: Signal, route_index: usize) -> Option<usize> {
        let chain = self.chain(signal);
        let position = chain.iter().position(|&index| index == route_index)?;
        chain.get(position + 1).copied()
    }

    /// Destinations of a route that take `signal`.
    pub fn route_destinations(
        &self,
        route: &PlannedRoute<'_>,
        signal: Signal,
    ) -> impl Iterator<Item = &PlannedDestination> + '_ {
        let indices = route.destinations.clone();
        indices
            .into_iter()
            .map(|index| &self.destinations[index])
            .filter(move |destination| destination.entry.carries(signal))
    }

    pub fn destination(&self, id: &str) -> Option<&PlannedDestination> {
        self.destinations.iter().find(|destination| destination.destination.id == id)
    }
}

/// A source with its settings and resource attribute values resolved; problems go to `skipped`.
fn resolve_source(
    source: &Source,
    entry: &CatalogueEntry,
    values: &templates::Values<'_>,
    skipped: &mut Vec<String>,
) -> Source {
    let (settings, problems) = catalogue::resolve_settings(entry, &source.settings, values);
    note_unresolved(skipped, &format!("source {}", source.id), problems);
    let mut resource_attributes = BTreeMap::new();
    for (key, value) in &source.resource_attributes {
        let (value, problems) = templates::resolve(value, RESOURCE_ATTRIBUTE_TEMPLATING, values);
        for problem in problems {
            skipped.push(format!("source {} resource_attributes.{key}: {problem}", source.id));
        }
        resource_attributes.insert(key.clone(), value);
    }
    Source { settings, resource_attributes, ..source.clone() }
}

fn resolve_destination(
    destination: &Destination,
    entry: &CatalogueEntry,
    values: &templates::Values<'_>,
    skipped: &mut Vec<String>,
) -> Destination {
    let (settings, problems) = catalogue::resolve_settings(entry, &destination.settings, values);
    note_unresolved(skipped, &format!("destination {}", destination.id), problems);
    Destination { settings, ..destination.clone() }
}

fn resolve_step(
    step: &Step,
    entry: &CatalogueEntry,
    values: &templates::Values<'_>,
    skipped: &mut Vec<String>,
    pipeline: Option<&Pipeline>,
    index: usize,
) -> Step {
    let (settings, problems) = catalogue::resolve_settings(entry, &step.settings, values);
    let pipeline_id = pipeline.map(|pipeline| pipeline.id.as_str()).unwrap_or_default();
    note_unresolved(skipped, &format!("step {index} of pipeline {pipeline_id}"), problems);
    Step { settings, ..step.clone() }
}

fn note_unresolved(skipped: &mut Vec<String>, item: &str, problems: Vec<catalogue::FieldError>) {
    for problem in problems {
        skipped.push(format!("{item} {}: {}", problem.field, problem.problem));
    }
}

/// A source's `resource_attributes` values are data stamped on its records: they may use the
/// collector's labels and reported attributes (keys are literal).
pub const RESOURCE_ATTRIBUTE_TEMPLATING: Templating = Templating::LabelsAndAttributes;

fn sorted_by_id<'a, T>(items: &[&'a T], id: impl Fn(&T) -> &String) -> Vec<&'a T> {
    let mut sorted = items.to_vec();
    sorted.sort_by(|left, right| id(left).cmp(id(right)));
    sorted.dedup_by(|left, right| id(left) == id(right));
    sorted
}

/// A stable component label for an id: `[a-z0-9_]`, starting with `<kind>_` so labels of different
/// kinds never collide and are valid identifiers in both formats. Ids that do not map one to one
/// (other characters, upper case) get a short hash of the id appended, so distinct ids stay distinct.
pub fn component_label(kind: &str, id: &str) -> String {
    let sanitized: String = id
        .chars()
        .map(|character| match character {
            'a'..='z' | '0'..='9' | '_' => character,
            _ => '_',
        })
        .collect();
    let prefix = format!("{kind}_");
    let lossless = sanitized == id && id.starts_with(&prefix);
    let mut label = if sanitized.starts_with(&prefix) { sanitized } else { format!("{prefix}{sanitized}") };
    if !lossless {
        let digest = Sha256::digest(id.as_bytes());
        label.push('_');
        label.push_str(&hex::encode(&digest[..4]));
    }
    label
}

/// An OTTL string literal: JSON escaping is what the OTTL grammar unquotes.
pub fn ottl_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The OTTL context a record-level condition or statement runs in, per signal.
pub fn record_context(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "log",
        Signal::Metrics => "datapoint",
        Signal::Traces => "span",
    }
}

/// Regular expressions of the `mask` step's built-in toggles.
pub const EMAIL_PATTERN: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";
pub const CARD_NUMBER_PATTERN: &str = r"\b(?:\d[ -]?){12,18}\d\b";
pub const MASK_REPLACEMENT: &str = "****";

/// The regular expressions a `mask` step replaces, in a fixed order.
pub fn mask_patterns(entry: &CatalogueEntry, step: &Step) -> Vec<String> {
    let mut patterns = Vec::new();
    if catalogue::setting_bool(entry, &step.settings, "emails") {
        patterns.push(EMAIL_PATTERN.to_owned());
    }
    if catalogue::setting_bool(entry, &step.settings, "card_numbers") {
        patterns.push(CARD_NUMBER_PATTERN.to_owned());
    }
    patterns.extend(catalogue::setting_list(entry, &step.settings, "patterns"));
    patterns
}

/// OTTL statements of a `mask` step for `signal`, in that signal's record context.
pub fn mask_statements(entry: &CatalogueEntry, step: &Step, signal: Signal) -> Vec<String> {
    let replacement = ottl_string(MASK_REPLACEMENT);
    let mut statements = Vec::new();
    for pattern in mask_patterns(entry, step) {
        let pattern = ottl_string(&pattern);
        if signal == Signal::Logs {
            statements.push(format!("replace_pattern(body, {pattern}, {replacement})"));
        }
        statements.push(format!("replace_all_patterns(attributes, \"value\", {pattern}, {replacement})"));
    }
    statements
}

/// OTTL statements of a `transform` or `mask` step for `signal`.
pub fn step_statements(step: &PlannedStep, signal: Signal) -> Vec<String> {
    match step.entry.type_name {
        "mask" => mask_statements(step.entry, &step.step, signal),
        _ => catalogue::setting_list(step.entry, &step.step.settings, "statements"),
    }
}

/// `(action, key, value)` of an `attributes` step: inserts, updates, deletes, each sorted by key.
pub fn attribute_actions(
    entry: &CatalogueEntry,
    settings: &Settings,
) -> Vec<(&'static str, String, Option<String>)> {
    let mut actions = Vec::new();
    for (key, value) in catalogue::setting_map(settings, "insert") {
        actions.push(("insert", key, Some(value)));
    }
    for (key, value) in catalogue::setting_map(settings, "update") {
        actions.push(("update", key, Some(value)));
    }
    let mut deletes = catalogue::setting_list(entry, settings, "delete");
    deletes.sort();
    deletes.dedup();
    for key in deletes {
        actions.push(("delete", key, None));
    }
    actions
}

/// Resource-context OTTL statements stamping a source's attributes on its records.
pub fn source_stamp_statements(source: &Source) -> Vec<String> {
    let mut attributes: Vec<(&str, &str)> = source
        .resource_attributes
        .iter()
        .filter(|(key, _)| !key.starts_with("linkmesh."))
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    attributes.push(("linkmesh.source.id", &source.id));
    attributes.push(("linkmesh.source.name", &source.name));
    attributes.sort();
    attributes
        .into_iter()
        .map(|(key, value)| format!("set(attributes[{}], {})", ottl_string(key), ottl_string(value)))
        .collect()
}

/// The attributes a source stamps, sorted by key (`linkmesh.*` from the source itself, never the user).
pub fn source_stamp_attributes(source: &Source) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = source
        .resource_attributes
        .iter()
        .filter(|(key, _)| !key.starts_with("linkmesh."))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    attributes.push(("linkmesh.source.id".to_owned(), source.id.clone()));
    attributes.push(("linkmesh.source.name".to_owned(), source.name.clone()));
    attributes.sort();
    attributes
}

/// The Prometheus job name of a scraping source: its name, without control characters (Prometheus's
/// YAML parser rejects them), or its label when nothing is left.
pub fn job_name(source: &PlannedSource) -> String {
    let cleaned: String = source
        .source
        .name
        .chars()
        .map(|character| if character.is_control() { ' ' } else { character })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        source.label.clone()
    } else {
        cleaned.to_owned()
    }
}

/// Prometheus rejects a scrape timeout (default 10s) longer than the interval: shorter intervals
/// get the interval as timeout.
pub fn scrape_timeout_for(interval: &str) -> Option<String> {
    match catalogue::duration_seconds(interval) {
        Some(seconds) if seconds < 10.0 => Some(interval.to_owned()),
        _ => None,
    }
}

/// A match filter drops what the condition does not match.
pub fn match_drop_condition(condition: &str) -> String {
    format!("not ({})", condition.trim())
}

/// A rest filter drops what the condition matches (a final route took it).
pub fn rest_drop_condition(condition: &str) -> String {
    condition.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CollectorMode;
    use crate::render::TestModel;

    fn plan(model: &TestModel, check: impl FnOnce(&Plan<'_>)) {
        let input = model.input(CollectorMode::AlloyRemotecfg);
        check(&Plan::new(&input));
    }

    #[test]
    fn labels_are_identifiers_and_distinct_ids_stay_distinct() {
        assert_eq!(component_label("src", "src_abc"), "src_abc");
        assert_eq!(component_label("src", "abc"), "src_abc_ba7816bf");
        assert_ne!(component_label("src", "a-b"), component_label("src", "a_b"));
        assert_ne!(component_label("src", "A"), component_label("src", "a"));
        assert!(component_label("dst", "").starts_with("dst__"));
        assert_ne!(component_label("src", "abc"), component_label("src", "src_abc"));
        let weird = component_label("rte", "ü \"x\"");
        assert!(weird.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{weird}");
    }

    #[test]
    fn routes_are_ordered_by_priority_then_id_and_a_final_catch_all_ends_the_chain() {
        let model = TestModel {
            sources: vec![Source::for_test("src_1", "otlp")],
            destinations: vec![
                Destination::for_test("dst_a", "debug"),
                Destination::for_test("dst_b", "debug"),
            ],
            routes: vec![
                Route::for_test("rte_c", 30, "true", false, &["dst_a"]),
                Route::for_test("rte_b", 20, "true", true, &["dst_b"]),
                Route::for_test("rte_a", 20, "attributes[\"x\"] == 1", true, &["dst_a"]),
            ],
            ..TestModel::default()
        };
        plan(&model, |plan| {
            let order: Vec<&str> = plan.routes.iter().map(|route| route.route.id.as_str()).collect();
            assert_eq!(order, ["rte_a", "rte_b", "rte_c"]);
            assert_eq!(plan.chain(Signal::Logs), [0, 1]);
            assert_eq!(plan.routes[0].rest_signals, Signal::ALL);
            assert!(plan.routes[1].rest_signals.is_empty());
            assert!(plan.routes[2].signals.is_empty());
        });
    }

    #[test]
    fn a_route_is_evaluated_only_for_signals_its_destinations_take() {
        let model = TestModel {
            sources: vec![Source::for_test("src_1", "otlp")],
            destinations: vec![
                Destination::for_test("dst_loki", "loki"),
                Destination::for_test("dst_debug", "debug"),
            ],
            routes: vec![
                Route::for_test("rte_1", 10, "true", true, &["dst_loki"]),
                Route::for_test("rte_2", 20, "true", true, &["dst_debug"]),
            ],
            ..TestModel::default()
        };
        plan(&model, |plan| {
            assert_eq!(plan.chain(Signal::Logs), [0]);
            assert_eq!(plan.chain(Signal::Metrics), [1]);
            assert_eq!(plan.chain(Signal::Traces), [1]);
            assert_eq!(
                plan.destination("dst_debug").map(|d| d.signals.clone()),
                Some(vec![Signal::Metrics, Signal::Traces])
            );
        });
    }

    #[test]
    fn steps_run_only_for_the_pipelines_signals() {
        let model = TestModel {
            sources: vec![Source::for_test("src_1", "otlp")],
            destinations: vec![Destination::for_test("dst_1", "debug")],
            routes: vec![Route {
                pipeline_id: Some("pl_1".to_owned()),
                ..Route::for_test("rte_1", 10, "true", true, &["dst_1"])
            }],
            pipelines: vec![Pipeline::for_test(
                "pl_1",
                &[Signal::Logs],
                vec![
                    Step::for_test("batch", serde_json::Value::Null),
                    Step::for_test("teleport", serde_json::Value::Null),
                ],
            )],
            ..TestModel::default()
        };
        plan(&model, |plan| {
            assert_eq!(plan.routes[0].steps.len(), 1);
            assert_eq!(plan.routes[0].steps[0].signals, [Signal::Logs]);
            assert_eq!(plan.skipped.len(), 1, "{:?}", plan.skipped);
        });
    }

    #[test]
    fn stamps_escape_and_cannot_override_linkmesh_attributes() {
        let mut stamped = Source { name: "say \"hi\"".to_owned(), ..Source::for_test("src_1", "otlp") };
        stamped.resource_attributes.insert("linkmesh.source.id".to_owned(), "forged".to_owned());
        stamped.resource_attributes.insert("env".to_owned(), "prod".to_owned());
        assert_eq!(
            source_stamp_statements(&stamped),
            [
                r#"set(attributes["env"], "prod")"#,
                r#"set(attributes["linkmesh.source.id"], "src_1")"#,
                r#"set(attributes["linkmesh.source.name"], "say \"hi\"")"#,
            ]
        );
    }
}
