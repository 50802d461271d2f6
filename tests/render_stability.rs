//! The stability table (`src/render/alloy_stability.tsv`, generated from Alloy's source) against what
//! the renderer emits: every component the renderer or the enrollment config can produce has a row,
//! the table lists nothing else, and every catalogue entry renders only generally-available
//! components under the default level (the `debug` destination through its generally-available
//! alternative), and nothing the check refuses at any level.

#[path = "golden/support.rs"]
mod golden_support;

use std::collections::BTreeSet;

use golden_support::{arbitrary_model, example_settings, golden_models, Model};
use linkmesh::apply_status::AlloyVersion;
use linkmesh::model::pipeline::{Destination, Pipeline, Route, SealedSecret, Source, Step};
use linkmesh::model::CollectorMode;
use linkmesh::render::alloy::render_alloy;
use linkmesh::render::catalogue::{self, EntryKind};
use linkmesh::render::enrollment::render_enrollment_config_alloy;
use linkmesh::render::secrets::Credentials;
use linkmesh::render::stability::{check_render_input, component_type, stability_rows, StabilityLevel};
use linkmesh::render::RenderInput;
use proptest::prelude::*;

fn input_at(model: &Model, level: StabilityLevel) -> RenderInput<'_> {
    RenderInput { stability_level: level, ..model.input(CollectorMode::AlloyRemotecfg) }
}

/// The component types `model` renders at `level`.
fn component_types_at(model: &Model, level: StabilityLevel) -> BTreeSet<String> {
    render_alloy(&input_at(model, level), &Credentials::Markers)
        .components
        .values()
        .flatten()
        .map(|id| component_type(id).to_owned())
        .collect()
}

/// The component types `model` renders at any level.
fn component_types(model: &Model) -> BTreeSet<String> {
    StabilityLevel::ALL.into_iter().flat_map(|level| component_types_at(model, level)).collect()
}

/// Top-level block names of an Alloy config (`name "label" {`, or `{ }` on one line), for the
/// enrollment config.
fn block_types(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with(' ') && line.contains(" {") && line.contains(" \""))
        .filter_map(|line| line.split_once(' ').map(|(name, _)| name.to_owned()))
        .collect()
}

fn otlp_http_sink() -> Destination {
    Destination {
        id: "dst_sink".to_owned(),
        name: "sink".to_owned(),
        destination_type: "otlp_http".to_owned(),
        settings: serde_json::from_str(r#"{"endpoint": "https://otlp.example"}"#).expect("settings"),
        credentials: Default::default(),
    }
}

fn route_to(destination_id: &str, pipeline_id: Option<&str>) -> Route {
    Route {
        id: "rte_example".to_owned(),
        name: "example".to_owned(),
        condition: "true".to_owned(),
        priority: 100,
        is_final: true,
        pipeline_id: pipeline_id.map(str::to_owned),
        destination_ids: vec![destination_id.to_owned()],
    }
}

/// One catalogue entry in a minimal model whose other parts are generally available (an OTLP source,
/// an OTLP/HTTP destination).
fn model_around(entry: &catalogue::CatalogueEntry) -> Model {
    let settings = example_settings(entry.kind, entry.type_name);
    let otlp = Source {
        id: "src_app".to_owned(),
        name: "app".to_owned(),
        source_type: "otlp".to_owned(),
        settings: Default::default(),
        resource_attributes: Default::default(),
    };
    let mut model = Model {
        description: String::new(),
        collector_name: "example".to_owned(),
        sources: vec![otlp],
        pipelines: Vec::new(),
        routes: vec![route_to("dst_sink", None)],
        destinations: vec![otlp_http_sink()],

        labels: Default::default(),
        attributes: Default::default(),
    };
    match entry.kind {
        EntryKind::Source => {
            model.sources[0].source_type = entry.type_name.to_owned();
            model.sources[0].settings = settings;
        }
        EntryKind::Step => {
            model.pipelines = vec![Pipeline {
                id: "pl_example".to_owned(),
                name: "example".to_owned(),
                description: String::new(),
                signals: entry.signals.to_vec(),
                steps: vec![Step { step_type: entry.type_name.to_owned(), settings }],
            }];
            model.routes = vec![route_to("dst_sink", Some("pl_example"))];
        }
        EntryKind::Destination => {
            model.destinations = vec![Destination {
                id: "dst_example".to_owned(),
                name: "example".to_owned(),
                destination_type: entry.type_name.to_owned(),
                settings,
                credentials: entry
                    .credentials
                    .iter()
                    .take(2)
                    .map(|key| ((*key).to_owned(), SealedSecret(vec![0])))
                    .collect(),
            }];
            model.routes = vec![route_to("dst_example", None)];
        }
    }
    model
}

#[test]
fn the_table_covers_exactly_the_components_linkmesh_renders() {
    let mut rendered: BTreeSet<String> =
        catalogue::entries().iter().flat_map(|entry| component_types(&model_around(entry))).collect();
    for (_, model) in golden_models() {
        rendered.extend(component_types(&model));
    }
    rendered.extend(block_types(&render_enrollment_config_alloy("https://linkmesh.example", "lmct_x")));
    let table: BTreeSet<String> = stability_rows().map(|row| row.component.to_owned()).collect();
    let missing: Vec<&String> = rendered.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "rendered but not in the stability table (add them to scripts/alloy_stability.py): {missing:?}"
    );
    let unused: Vec<&String> = table.difference(&rendered).collect();
    assert!(unused.is_empty(), "in the stability table but never rendered: {unused:?}");
}

#[test]
fn every_catalogue_entry_renders_only_generally_available_components_under_the_default() {
    for entry in catalogue::entries() {
        let model = model_around(entry);
        for level in StabilityLevel::ALL {
            let problems = check_render_input(&input_at(&model, level), None);
            assert!(
                problems.is_empty(),
                "{} {} at {level}: {problems:?}",
                entry.kind.as_str(),
                entry.type_name
            );
        }
        // The OTel Collector has no stability levels of this kind: nothing is refused.
        assert!(check_render_input(&model.input(CollectorMode::Opamp), None).is_empty());
    }
}

/// A `debug` destination taking every signal, from an OTLP source.
fn debug_model() -> Model {
    let entry = catalogue::entries()
        .iter()
        .find(|entry| entry.kind == EntryKind::Destination && entry.type_name == "debug")
        .expect("the debug destination");
    model_around(entry)
}

#[test]
fn the_debug_destination_uses_the_debug_exporter_only_where_alloy_accepts_experimental_components() {
    let model = debug_model();
    let experimental = component_types_at(&model, StabilityLevel::Experimental);
    assert!(experimental.contains("otelcol.exporter.debug"), "{experimental:?}");
    for level in [StabilityLevel::PublicPreview, StabilityLevel::GenerallyAvailable] {
        let types = component_types_at(&model, level);
        assert!(!types.contains("otelcol.exporter.debug"), "{level}: {types:?}");
        for alternative in [
            "otelcol.exporter.loki",
            "loki.echo",
            "otelcol.exporter.prometheus",
            "prometheus.echo",
            "otelcol.connector.spanlogs",
        ] {
            assert!(types.contains(alternative), "{level}: {alternative} missing from {types:?}");
        }
    }
    let content =
        render_alloy(&input_at(&model, StabilityLevel::GenerallyAvailable), &Credentials::Markers).content;
    for wire in [
        "logs    = [otelcol.exporter.loki.dst_example.input]",
        "metrics = [otelcol.exporter.prometheus.dst_example.input]",
        "traces  = [otelcol.connector.spanlogs.dst_example.input]",
        "forward_to = [loki.echo.dst_example.receiver]",
        "forward_to = [prometheus.echo.dst_example.receiver]",
    ] {
        assert!(content.contains(wire), "{wire:?} not in:\n{content}");
    }
}

#[test]
fn an_alloy_older_than_prometheus_echo_is_told_which_release_a_debug_destination_for_metrics_needs() {
    let model = debug_model();
    let input = input_at(&model, StabilityLevel::GenerallyAvailable);
    let old = AlloyVersion::parse("1.12.2");
    let problems = check_render_input(&input, old);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].component, "prometheus.echo");
    assert!(problems[0].message.contains("needs a newer Alloy release"), "{}", problems[0].message);
    assert!(check_render_input(&input, AlloyVersion::parse("1.13.0")).is_empty());
    assert!(check_render_input(&input_at(&model, StabilityLevel::Experimental), old).is_empty());
}

proptest! {
    /// Random models (every catalogue type, random names and conditions) render only components the
    /// table knows, so the check never misses one for lack of a row.
    #[test]
    fn random_models_render_only_components_in_the_table(model in arbitrary_model()) {
        let table: BTreeSet<String> = stability_rows().map(|row| row.component.to_owned()).collect();
        for component in component_types(&model) {
            prop_assert!(table.contains(&component), "{component} is not in the stability table");
        }
    }
}
