//! Models shared by `tests/render_golden.rs` and `tests/render_checkers.rs`: the readable example
//! models under `tests/golden/models/`, and a proptest strategy for random models that stay within
//! what the API accepts (catalogue-valid settings) while stressing ids, names and OTTL text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use linkmesh::model::pipeline::{Destination, Pipeline, Route, SealedSecret, Settings, Signal, Source, Step};
use linkmesh::model::stability::StabilityLevel;
use linkmesh::model::CollectorMode;
use linkmesh::render::catalogue::{self, EntryKind};
use linkmesh::render::RenderInput;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    #[serde(default)]
    pub description: String,
    pub collector_name: String,
    pub sources: Vec<Source>,
    pub pipelines: Vec<Pipeline>,
    pub routes: Vec<Route>,
    pub destinations: Vec<Destination>,
    /// The collector's labels and reported attributes, for templated settings.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Model {
    pub fn input(&self, mode: CollectorMode) -> RenderInput<'_> {
        RenderInput {
            collector_id: "col_golden",
            collector_name: &self.collector_name,
            mode,
            sources: self.sources.iter().collect(),
            routes: self.routes.iter().collect(),
            destinations: self.destinations.iter().collect(),
            pipelines: self.pipelines.iter().map(|pipeline| (pipeline.id.as_str(), pipeline)).collect(),
            stability_level: StabilityLevel::default(),
            destinations_elsewhere: Default::default(),
            labels: &self.labels,
            attributes: &self.attributes,
        }
    }
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The example models, by name, sorted.
pub fn golden_models() -> Vec<(String, Model)> {
    let mut models = Vec::new();
    let dir = golden_dir().join("models");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("read {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("json") {
            continue;
        }
        let name = path.file_stem().and_then(|stem| stem.to_str()).expect("file name").to_owned();
        let text = std::fs::read_to_string(&path).expect("read model");
        let model: Model =
            serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        models.push((name, model));
    }
    models.sort_by(|left, right| left.0.cmp(&right.0));
    models
}

fn settings_of(json: &str) -> Settings {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default()
}

/// The catalogue's example settings of an entry.
pub fn example_settings(kind: EntryKind, type_name: &str) -> Settings {
    catalogue::entry(kind, type_name).map(|entry| settings_of(entry.example_settings)).unwrap_or_default()
}

// ---- random models ----

/// Text that exercises escaping in both formats: quotes, backslashes, `$`/`${}`, newlines, braces,
/// comment markers, YAML indicators and non-ASCII.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9 _-]{0,12}",
        Just("say \"hi\" \\ back".to_owned()),
        Just("${env:HOME} $$ $x".to_owned()),
        Just("line\nbreak\ttab\r".to_owned()),
        Just("} { ] [ // # -- *".to_owned()),
        Just("- yes: no".to_owned()),
        Just("ünïcødé ☃".to_owned()),
        Just("bell\u{7}".to_owned()),
    ]
}

fn id_text(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{6}".prop_map(move |suffix| format!("{prefix}_{suffix}")),
        1 => "[A-Za-z0-9._-]{1,10}",
    ]
}

/// OTTL conditions valid in the log, span and data point contexts alike.
fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        nasty_text().prop_map(|text| format!("attributes[\"level\"] == {}", ottl(&text))),
        nasty_text()
            .prop_map(|text| format!("resource.attributes[\"linkmesh.source.name\"] != {}", ottl(&text))),
        Just("IsMatch(resource.attributes[\"service.name\"], \"^api-.*\")".to_owned()),
        Just("attributes[\"http.status_code\"] >= 500 or attributes[\"error\"] == true".to_owned()),
    ]
}

fn ottl(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn source() -> impl Strategy<Value = Source> {
    let types: Vec<&'static str> = catalogue::entries()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Source)
        .map(|entry| entry.type_name)
        .collect();
    (
        id_text("src"),
        nasty_text(),
        proptest::sample::select(types),
        proptest::bool::ANY,
        proptest::collection::btree_map("[a-z][a-z.]{0,8}", nasty_text(), 0..3),
    )
        .prop_map(|(id, name, source_type, use_example, resource_attributes)| {
            let mut settings =
                if use_example || source_type == "prometheus_scrape" || source_type == "file_tail" {
                    example_settings(EntryKind::Source, source_type)
                } else {
                    Settings::new()
                };
            if source_type == "file_tail" && !use_example {
                settings.remove("exclude");
            }
            Source { id, name, source_type: source_type.to_owned(), settings, resource_attributes }
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(condition(), 1..3).prop_map(|conditions| Step {
            step_type: "filter".to_owned(),
            settings: settings_of(&serde_json::json!({"conditions": conditions}).to_string())
        }),
        nasty_text().prop_map(|text| Step {
            step_type: "transform".to_owned(),
            settings: settings_of(
                &serde_json::json!({"statements": [format!("set(attributes[\"note\"], {})", ottl(&text))]})
                    .to_string()
            ),
        }),
        (proptest::bool::ANY, proptest::bool::ANY).prop_map(|(emails, cards)| Step {
            step_type: "mask".to_owned(),
            settings: settings_of(
                &serde_json::json!({"emails": emails, "card_numbers": cards, "patterns": ["secret=\\S+"]})
                    .to_string()
            ),
        }),
        (nasty_text(), nasty_text()).prop_map(|(key, value)| Step {
            step_type: "attributes".to_owned(),
            settings: settings_of(
                &serde_json::json!({"insert": {key.clone(): value}, "delete": [key]}).to_string()
            ),
        }),
        Just(Step { step_type: "batch".to_owned(), settings: Settings::new() }),
        Just(Step { step_type: "batch".to_owned(), settings: example_settings(EntryKind::Step, "batch") }),
    ]
}

fn signals() -> impl Strategy<Value = Vec<Signal>> {
    proptest::sample::subsequence(Signal::ALL.to_vec(), 1..=3)
}

fn pipeline(index: usize) -> impl Strategy<Value = Pipeline> {
    (nasty_text(), signals(), proptest::collection::vec(step(), 0..4)).prop_map(
        move |(name, signals, steps)| Pipeline {
            id: format!("pl_{index}"),
            name,
            description: String::new(),
            signals,
            steps,
        },
    )
}

fn destination() -> impl Strategy<Value = Destination> {
    let types: Vec<&'static str> = catalogue::entries()
        .iter()
        .filter(|entry| entry.kind == EntryKind::Destination)
        .map(|entry| entry.type_name)
        .collect();
    (id_text("dst"), nasty_text(), proptest::sample::select(types), 0..3usize).prop_map(
        |(id, name, destination_type, credential_choice)| {
            let entry = catalogue::entry(EntryKind::Destination, destination_type).expect("catalogue entry");
            let keys: Vec<&str> = match (credential_choice, entry.credentials) {
                (0, _) | (_, []) => Vec::new(),
                (1, credentials) => {
                    credentials.iter().copied().filter(|key| *key != "bearer_token").collect()
                }
                (_, credentials) => credentials.iter().copied().take(1).collect(),
            };
            let credentials: BTreeMap<String, SealedSecret> =
                keys.into_iter().map(|key| (key.to_owned(), SealedSecret(vec![0]))).collect();
            Destination {
                id,
                name,
                destination_type: destination_type.to_owned(),
                settings: example_settings(EntryKind::Destination, destination_type),
                credentials,
            }
        },
    )
}

/// A random model: up to 4 sources, 3 pipelines, 5 routes (priorities tie often) and 4 destinations;
/// routes may name missing pipelines and destinations.
pub fn arbitrary_model() -> impl Strategy<Value = Model> {
    (
        nasty_text(),
        proptest::collection::vec(source(), 0..4),
        (0..4usize).prop_flat_map(|count| (0..count).map(pipeline).collect::<Vec<_>>()),
        proptest::collection::vec(destination(), 0..4),
        proptest::collection::vec(
            (
                id_text("rte"),
                nasty_text(),
                condition(),
                0..4u32,
                proptest::bool::ANY,
                0..5usize,
                proptest::collection::vec(0..5usize, 0..3),
            ),
            0..5,
        ),
    )
        .prop_map(|(collector_name, mut sources, pipelines, mut destinations, raw_routes)| {
            sources.sort_by(|left, right| left.id.cmp(&right.id));
            sources.dedup_by(|left, right| left.id == right.id);
            destinations.sort_by(|left, right| left.id.cmp(&right.id));
            destinations.dedup_by(|left, right| left.id == right.id);
            let mut routes: Vec<Route> = raw_routes
                .into_iter()
                .map(|(id, name, condition, priority, is_final, pipeline_choice, destination_choices)| {
                    let pipeline_id = match pipeline_choice {
                        4 => Some("pl_missing".to_owned()),
                        index if index < pipelines.len() => Some(pipelines[index].id.clone()),
                        _ => None,
                    };
                    let mut destination_ids: Vec<String> = destination_choices
                        .into_iter()
                        .map(|index| {
                            destinations.get(index).map_or_else(|| "dst_missing".to_owned(), |d| d.id.clone())
                        })
                        .collect();
                    destination_ids.sort();
                    destination_ids.dedup();
                    Route {
                        id,
                        name,
                        condition,
                        priority: priority * 10,
                        is_final,
                        pipeline_id,
                        destination_ids,
                    }
                })
                .collect();
            routes.sort_by(|left, right| left.id.cmp(&right.id));
            routes.dedup_by(|left, right| left.id == right.id);
            Model {
                description: String::new(),
                collector_name,
                sources,
                pipelines,
                routes,
                destinations,
                labels: BTreeMap::new(),
                attributes: BTreeMap::new(),
            }
        })
}
