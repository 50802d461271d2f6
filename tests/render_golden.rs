//! Golden files: the example models under `tests/golden/models/` render to the committed Alloy
//! module, OTel Collector YAML and graph; `docs/catalogue.md` is generated from the catalogue; random
//! models render deterministically and never panic.
//!
//! `UPDATE_GOLDEN=1 cargo test --test render_golden` rewrites the golden files and the doc; review
//! the diff before committing it.

#[path = "golden/support.rs"]
mod golden_support;

use std::fmt::Write as _;
use std::path::Path;

use golden_support::{arbitrary_model, example_settings, golden_dir, golden_models, Model};
use linkmesh::model::pipeline::{Destination, Pipeline, Route, SealedSecret, Signal, Source, Step};
use linkmesh::model::CollectorMode;
use linkmesh::render::catalogue::{self, EntryKind, SettingKind};
use linkmesh::render::secrets::{placeholder, CredentialValues, Credentials};
use linkmesh::render::{alloy, graph, otelcol, render_collector_config, render_for_delivery};
use proptest::prelude::*;

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1")
}

/// Compares `actual` with the file, or rewrites the file under `UPDATE_GOLDEN=1`.
fn check_golden(path: &Path, actual: &str) {
    if updating() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create golden dir");
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|error| {
        panic!("{}: {error} (run with UPDATE_GOLDEN=1 to create it)", path.display())
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
            .unified_diff()
            .header("committed", "rendered")
            .to_string();
        panic!("{} is out of date (UPDATE_GOLDEN=1 rewrites it):\n{diff}", path.display());
    }
}

fn render_all(model: &Model) -> (String, String, String) {
    let alloy = render_collector_config(&model.input(CollectorMode::AlloyRemotecfg)).content;
    let otelcol = render_collector_config(&model.input(CollectorMode::Opamp)).content;
    let graph = graph::render_graph(&model.input(CollectorMode::AlloyRemotecfg));
    let graph = serde_json::to_string_pretty(&graph).expect("graph json") + "\n";
    (alloy, otelcol, graph)
}

#[test]
fn golden_models_render_as_committed() {
    let models = golden_models();
    assert!(models.len() >= 4, "golden models missing");
    for (name, model) in &models {
        let (alloy, otelcol, graph) = render_all(model);
        let dir = golden_dir();
        check_golden(&dir.join(format!("{name}.alloy")), &alloy);
        check_golden(&dir.join(format!("{name}.otelcol.yaml")), &otelcol);
        check_golden(&dir.join(format!("{name}.graph.json")), &graph);
    }
}

fn model(name: &str) -> Model {
    golden_models()
        .into_iter()
        .find(|(found, _)| found == name)
        .map(|(_, model)| model)
        .expect("golden model")
}

/// The `name = [...]` list (an output of the block at `anchor`), normalised to one line.
fn list_after(text: &str, anchor: &str, name: &str) -> String {
    let start = text.find(anchor).unwrap_or_else(|| panic!("{anchor:?} not in:\n{text}"));
    let rest = &text[start..];
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.strip_prefix(name).is_some_and(|after| after.trim_start().starts_with('=')) {
            let list = &rest[offset..];
            let end = list.find(']').expect("list end");
            let joined = list[..=end].split_whitespace().collect::<Vec<_>>().join(" ");
            return joined.replace("[ ", "[").replace(", ]", "]");
        }
        offset += line.len();
    }
    panic!("no {name} list after {anchor:?}")
}

#[test]
fn a_final_route_keeps_errors_from_the_catch_all_in_alloy() {
    let (alloy, _, _) = render_all(&model("overlapping_final"));
    // Logs reach route A's match filter and its rest filter; nothing else.
    let source_logs = list_after(&alloy, "otelcol.processor.transform \"src_app\"", "logs");
    assert_eq!(
        source_logs,
        "logs = [otelcol.processor.filter.rte_a_match.input, otelcol.processor.filter.rte_a_rest.input]"
    );
    // The match filter keeps only errors and sends them to X only.
    assert!(alloy.contains("log_record = [\"not (attributes[\\\"level\\\"] == \\\"error\\\")\"]"));
    let matched = list_after(&alloy, "otelcol.processor.filter \"rte_a_match\"", "logs");
    assert_eq!(matched, "logs = [otelcol.exporter.otlphttp.dst_x.input]");
    // The rest filter drops errors and sends everything else to Y only.
    assert!(alloy.contains("log_record = [\"attributes[\\\"level\\\"] == \\\"error\\\"\"]"));
    let rest = list_after(&alloy, "otelcol.processor.filter \"rte_a_rest\"", "logs");
    assert_eq!(rest, "logs = [otelcol.exporter.loki.dst_y.input]");
    // Y (a `debug` destination, rendered with generally-available components) is fed only by the rest
    // filter, whose spans reach its log printer through its own span-to-log connector.
    assert_eq!(alloy.matches("dst_y.input").count(), 4, "Y is fed only by the rest filter");
    let spans = list_after(&alloy, "otelcol.connector.spanlogs \"dst_y\"", "logs");
    assert_eq!(spans, "logs = [otelcol.exporter.loki.dst_y.input]");
}

#[test]
fn a_non_final_route_copies_errors_and_lets_everything_continue_in_alloy() {
    let (alloy, _, _) = render_all(&model("overlapping_non_final"));
    let source_logs = list_after(&alloy, "otelcol.processor.transform \"src_app\"", "logs");
    assert_eq!(
        source_logs,
        "logs = [otelcol.processor.filter.rte_a_match.input, otelcol.exporter.loki.dst_y.input]"
    );
    assert!(!alloy.contains("rte_a_rest"));
    let matched = list_after(&alloy, "otelcol.processor.filter \"rte_a_match\"", "logs");
    assert_eq!(matched, "logs = [otelcol.exporter.otlphttp.dst_x.input]");
}

#[test]
fn route_chains_in_otelcol_use_forward_connectors() {
    let (_, final_yaml, _) = render_all(&model("overlapping_final"));
    for expected in [
        "    logs/src_app:\n      receivers: [\"otlp/src_app\"]\n      processors: [\"resource/src_app\"]\n      exporters: [\"forward/rte_a_logs\"]\n",
        "    logs/rte_a:\n      receivers: [\"forward/rte_a_logs\"]\n      processors: [\"filter/rte_a_match\"]\n      exporters: [\"otlphttp/dst_x\"]\n",
        "    logs/rest_rte_a:\n      receivers: [\"forward/rte_a_logs\"]\n      processors: [\"filter/rte_a_rest\"]\n      exporters: [\"forward/rte_b_logs\"]\n",
        "    logs/rte_b:\n      receivers: [\"forward/rte_b_logs\"]\n      processors: []\n      exporters: [\"debug/dst_y\"]\n",
    ] {
        assert!(final_yaml.contains(expected), "missing\n{expected}\nin\n{final_yaml}");
    }
    let (_, non_final_yaml, _) = render_all(&model("overlapping_non_final"));
    assert!(non_final_yaml.contains("      exporters: [\"forward/rte_a_logs\", \"forward/rte_b_logs\"]\n"));
    assert!(!non_final_yaml.contains("rest_rte_a"));
}

#[test]
fn credentials_render_as_placeholders_only() {
    let (alloy, otelcol, _) = render_all(&model("every_type"));
    for text in [&alloy, &otelcol] {
        assert!(text.contains("\"${linkmesh-secret:dst_loki:password}\""));
        assert!(text.contains("\"${linkmesh-secret:dst_prom:username}\""));
    }
}

/// Decrypted values for every credential of a model: distinct, and needing no escaping in either
/// format, so a count in the delivered text is a count of placements.
fn credential_values(model: &Model) -> CredentialValues {
    let mut values = CredentialValues::default();
    for destination in &model.destinations {
        for key in destination.credentials.keys() {
            values.insert(&destination.id, key, format!("value-of-{}-{key}", destination.id));
        }
    }
    values
}

#[test]
fn credentials_are_delivered_only_where_the_renderer_puts_them() {
    let clean = model("every_type");
    let values = credential_values(&clean);
    assert!(!values.is_empty());
    // Operator text naming every credential's marker: a destination URL, a source name and a
    // resource attribute.
    let mut baited = clean.clone();
    let markers: Vec<String> =
        values.iter().map(|(destination, key, _)| placeholder(destination, key)).collect();
    baited.sources[0].name = markers.join(" ");
    baited.sources[0].resource_attributes.insert("leak".to_owned(), markers.join(""));
    let loki = baited.destinations.iter_mut().find(|destination| destination.id == "dst_loki").expect("loki");
    loki.settings.insert("url".to_owned(), format!("https://attacker.example/{}", markers.join("/")).into());
    for mode in [CollectorMode::AlloyRemotecfg, CollectorMode::Opamp] {
        let stored = render_collector_config(&clean.input(mode)).content;
        let delivered = render_for_delivery(&baited.input(mode), &values).content;
        for (destination, key, value) in values.iter() {
            let positions = stored.matches(&placeholder(destination, key)).count();
            assert!(positions >= 1, "{mode:?}: no position for {destination}:{key}");
            assert_eq!(
                delivered.matches(value).count(),
                positions,
                "{mode:?}: {destination}:{key} delivered outside its positions:\n{delivered}"
            );
        }
        let stored_baited = render_for_delivery(&baited.input(mode), &values).stored;
        assert_eq!(stored_baited, render_collector_config(&baited.input(mode)));
        assert!(values.iter().all(|(_, _, value)| !stored_baited.content.contains(value)));
    }
}

/// Without credentials the config is rendered once for delivery: the delivered text, stored text and
/// hash must be exactly what the two renders give.
#[test]
fn a_model_without_credentials_is_delivered_as_stored() {
    let mut clean = model("every_type");
    for destination in &mut clean.destinations {
        destination.credentials.clear();
    }
    for mode in [CollectorMode::AlloyRemotecfg, CollectorMode::Opamp] {
        let input = clean.input(mode);
        let rendered = render_for_delivery(&input, &CredentialValues::default());
        assert_eq!(rendered.stored, render_collector_config(&input), "{mode:?}");
        assert_eq!(rendered.content, rendered.stored.content, "{mode:?}");
    }
}

#[test]
fn nothing_configured_renders_the_comment() {
    let (alloy, otelcol, _) = render_all(&model("nothing_configured"));
    assert_eq!(alloy, "// linkmesh: no sources or routes configured for collector \"idle\"\n");
    assert_eq!(otelcol, "# linkmesh: no sources or routes configured for collector \"idle\"\n");
}

// ---- docs/catalogue.md ----

fn debug_destination() -> Destination {
    Destination {
        id: "dst_debug".to_owned(),
        name: "debug".to_owned(),
        destination_type: "debug".to_owned(),
        settings: Default::default(),
        credentials: Default::default(),
    }
}

fn otlp_source() -> Source {
    Source {
        id: "src_app".to_owned(),
        name: "app".to_owned(),
        source_type: "otlp".to_owned(),
        settings: Default::default(),
        resource_attributes: Default::default(),
    }
}

fn catch_all(destination_id: &str, pipeline_id: Option<&str>) -> Route {
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

/// A minimal model around one catalogue entry, and the graph node id that shows it.
fn example_model(entry: &catalogue::CatalogueEntry) -> (Model, String) {
    let settings = example_settings(entry.kind, entry.type_name);
    let mut model = Model {
        description: String::new(),
        collector_name: "example".to_owned(),
        sources: vec![otlp_source()],
        pipelines: Vec::new(),
        routes: vec![catch_all("dst_debug", None)],
        destinations: vec![debug_destination()],

        labels: Default::default(),
        attributes: Default::default(),
    };
    let node = match entry.kind {
        EntryKind::Source => {
            model.sources = vec![Source {
                id: "src_example".to_owned(),
                name: "example".to_owned(),
                source_type: entry.type_name.to_owned(),
                settings,
                resource_attributes: [("service.name".to_owned(), "example".to_owned())]
                    .into_iter()
                    .collect(),
            }];
            "source:src_example".to_owned()
        }
        EntryKind::Step => {
            model.pipelines = vec![Pipeline {
                id: "pl_example".to_owned(),
                name: "example".to_owned(),
                description: String::new(),
                signals: entry.signals.to_vec(),
                steps: vec![Step { step_type: entry.type_name.to_owned(), settings }],
            }];
            model.routes = vec![catch_all("dst_debug", Some("pl_example"))];
            "step:rte_example:0".to_owned()
        }
        EntryKind::Destination => {
            let credentials: Vec<&str> = match entry.credentials {
                ["bearer_token", ..] => vec!["bearer_token"],
                keys => keys.to_vec(),
            };
            model.destinations = vec![Destination {
                id: "dst_example".to_owned(),
                name: "example".to_owned(),
                destination_type: entry.type_name.to_owned(),
                settings,
                credentials: credentials
                    .into_iter()
                    .map(|key| (key.to_owned(), SealedSecret(vec![0])))
                    .collect(),
            }];
            model.routes = vec![catch_all("dst_example", None)];
            "destination:dst_example".to_owned()
        }
    };
    (model, node)
}

/// The Alloy blocks of `components` (ids relative to the declare instance), as rendered.
fn alloy_blocks(text: &str, components: &[String]) -> String {
    let mut out = String::new();
    for component in components {
        let (name, label) = component.rsplit_once('.').expect("component id");
        let header = format!("  {name} \"{label}\" {{");
        let Some(start) = text.find(&header) else { continue };
        let body = &text[start..];
        let end = body.find("\n  }\n").map_or(body.len(), |end| end + "\n  }\n".len());
        if !out.is_empty() {
            out.push('\n');
        }
        for line in body[..end].lines() {
            out.push_str(line.strip_prefix("  ").unwrap_or(line));
            out.push('\n');
        }
    }
    out
}

/// The YAML entries of `components` under their sections, as rendered.
fn otelcol_entries(text: &str, components: &[String]) -> String {
    let mut out = String::new();
    let mut section = "";
    let mut current: Option<String> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
            current = None;
            continue;
        }
        if line.starts_with("  ") && !line.starts_with("   ") {
            let id = line.trim().trim_end_matches(" {}").trim_end_matches(':').to_owned();
            current = components.contains(&id).then_some(id);
        }
        if current.is_some() && section != "service" {
            match sections.iter_mut().find(|(name, _)| name == section) {
                Some((_, lines)) => {
                    lines.push_str(line);
                    lines.push('\n');
                }
                None => sections.push((section.to_owned(), format!("{line}\n"))),
            }
        }
    }
    for (name, lines) in sections {
        let _ = write!(out, "{name}:\n{lines}");
    }
    out
}

fn kind_text(kind: SettingKind) -> String {
    match kind {
        SettingKind::String => "string".to_owned(),
        SettingKind::Integer => "integer".to_owned(),
        SettingKind::Boolean => "boolean".to_owned(),
        SettingKind::Duration => "duration".to_owned(),
        SettingKind::StringList => "list of strings".to_owned(),
        SettingKind::StringMap => "map of strings".to_owned(),
        SettingKind::Enum(values) => {
            format!("one of {}", values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

fn catalogue_markdown() -> String {
    let mut doc = String::from(
        "# Catalogue\n\n\
         Every source, step and destination type linkmesh renders, with its settings and what one \
         example renders to in both formats. Generated from `src/render/catalogue.rs` by \
         `UPDATE_GOLDEN=1 cargo test --test render_golden`; do not edit by hand.\n\n\
         Every source stamps `linkmesh.source.name` and `linkmesh.source.id` (and its own \
         `resource_attributes`) on each record's resource. Routes are evaluated by ascending priority \
         (ties by id); see `src/render/plan.rs` for the route chain and `tests/golden/` for whole \
         configs.\n\n\
         Notes on the OpenTelemetry Collector rendering:\n\n\
         - `loki` renders as `otlphttp` to Loki's native OTLP endpoint `<url>/otlp`: the contrib `loki` \
         exporter was removed from recent collector releases. Loki 3.0 or later is required.\n\
         - Credentials use the `basicauth` and `bearertokenauth` extensions (collector-contrib).\n\
         - `$` in user text is written as `$$` so the collector does not expand it.\n\n",
    );
    for kind in [EntryKind::Source, EntryKind::Step, EntryKind::Destination] {
        let title = match kind {
            EntryKind::Source => "Sources",
            EntryKind::Step => "Steps",
            EntryKind::Destination => "Destinations",
        };
        let _ = write!(doc, "## {title}\n\n");
        for entry in catalogue::entries().iter().filter(|entry| entry.kind == kind) {
            let signals: Vec<&str> = entry.signals.iter().map(|signal: &Signal| signal.as_str()).collect();
            let _ = write!(
                doc,
                "### `{}`\n\n{}\n\nSignals: {}.",
                entry.type_name,
                entry.description,
                signals.join(", ")
            );
            if !entry.credentials.is_empty() {
                let keys: Vec<String> = entry.credentials.iter().map(|key| format!("`{key}`")).collect();
                let _ = write!(doc, " Credentials: {}.", keys.join(", "));
            }
            doc.push_str(
                "\n\n| setting | kind | required | default | description |\n|---|---|---|---|---|\n",
            );
            for spec in entry.settings {
                let _ = writeln!(
                    doc,
                    "| `{}` | {} | {} | {} | {} |",
                    spec.name,
                    kind_text(spec.kind),
                    if spec.required { "yes" } else { "no" },
                    spec.default.map(|default| format!("`{default}`")).unwrap_or_default(),
                    spec.description.replace('|', "\\|"),
                );
            }
            let (model, node) = example_model(entry);
            let alloy_rendered =
                alloy::render_alloy(&model.input(CollectorMode::AlloyRemotecfg), &Credentials::Markers);
            let otel_rendered =
                otelcol::render_otelcol(&model.input(CollectorMode::Opamp), &Credentials::Markers);
            let alloy_components = alloy_rendered.components.get(&node).cloned().unwrap_or_default();
            let otel_components = otel_rendered.components.get(&node).cloned().unwrap_or_default();
            let _ = write!(
                doc,
                "\nExample settings: `{}`\n\nAlloy (inside the `declare` block):\n\n```alloy\n{}```\n\nOpenTelemetry Collector:\n\n```yaml\n{}```\n\n",
                entry.example_settings,
                alloy_blocks(&alloy_rendered.content, &alloy_components),
                otelcol_entries(&otel_rendered.content, &otel_components),
            );
        }
    }
    doc
}

#[test]
fn catalogue_doc_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/catalogue.md");
    let doc = catalogue_markdown();
    for entry in catalogue::entries() {
        assert!(doc.contains(&format!("### `{}`", entry.type_name)), "{}", entry.type_name);
    }
    check_golden(&path, &doc);
}

#[test]
fn every_catalogue_example_renders_components_for_its_node() {
    for entry in catalogue::entries() {
        let (model, node) = example_model(entry);
        let alloy_rendered =
            alloy::render_alloy(&model.input(CollectorMode::AlloyRemotecfg), &Credentials::Markers);
        let otel_rendered =
            otelcol::render_otelcol(&model.input(CollectorMode::Opamp), &Credentials::Markers);
        assert!(
            alloy_rendered.components.get(&node).is_some_and(|c| !c.is_empty()),
            "alloy {}",
            entry.type_name
        );
        assert!(
            otel_rendered.components.get(&node).is_some_and(|c| !c.is_empty()),
            "otelcol {}",
            entry.type_name
        );
    }
}

// ---- random models ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_models_render_deterministically(model in arbitrary_model()) {
        for mode in [CollectorMode::AlloyRemotecfg, CollectorMode::Opamp] {
            let first = render_collector_config(&model.input(mode));
            let second = render_collector_config(&model.input(mode));
            prop_assert_eq!(&first, &second);
            prop_assert!(!first.content.is_empty());
            // Input order does not matter: the same model with its lists reversed renders the same.
            let mut reversed = model.clone();
            reversed.sources.reverse();
            reversed.routes.reverse();
            reversed.destinations.reverse();
            reversed.pipelines.reverse();
            prop_assert_eq!(&render_collector_config(&reversed.input(mode)).content, &first.content);
            prop_assert_eq!(graph::render_graph(&model.input(mode)), graph::render_graph(&reversed.input(mode)));
        }
    }

    #[test]
    fn random_models_keep_every_component_inside_the_declare(model in arbitrary_model()) {
        let content = render_collector_config(&model.input(CollectorMode::AlloyRemotecfg)).content;
        let top_level: Vec<&str> = content
            .lines()
            .filter(|line| !line.starts_with(' ') && !line.starts_with("//") && !line.is_empty())
            .collect();
        if !top_level.is_empty() {
            prop_assert_eq!(top_level, vec!["declare \"linkmesh_pipeline\" {", "}", "linkmesh_pipeline \"default\" { }"]);
        }
    }

    #[test]
    fn random_models_report_only_rendered_components(model in arbitrary_model()) {
        let rendered = alloy::render_alloy(&model.input(CollectorMode::AlloyRemotecfg), &Credentials::Markers);
        for component in rendered.components.values().flatten() {
            let (name, label) = component.rsplit_once('.').expect("component id");
            prop_assert!(rendered.content.contains(&format!("  {name} \"{label}\" {{")), "{}", component);
        }
        let rendered = otelcol::render_otelcol(&model.input(CollectorMode::Opamp), &Credentials::Markers);
        for component in rendered.components.values().flatten() {
            let entry = format!("\n  {component}:");
            prop_assert!(rendered.content.contains(&entry), "{}", component);
        }
    }
}
