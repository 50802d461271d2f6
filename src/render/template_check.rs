//! One collector's templates checked against its labels, before a write's outcome becomes a config
//! version (`http::api::fleet_model::commit_or_preview`).
//!
//! [`check_input`] finds every `{{labels.KEY}}` in the collector's sources, destinations and the
//! steps of the pipelines its routes use whose label the collector does not have, and checks the
//! settings as resolved for it with the catalogue's own rules (`catalogue::validate_resolved`): a
//! label value that makes an endpoint not a URL is refused like a literal one. Attributes are not
//! checked: they change at run time and an unreported one renders empty ([`super::templates`]).
//!
//! [`uses_attributes`] says whether the collector's config depends on its reported attributes, so
//! the fleet model re-renders it when they change.

use super::catalogue::{self, CatalogueEntry, EntryKind, FieldError};
use super::plan::RESOURCE_ATTRIBUTE_TEMPLATING;
use super::templates::{self, Values};
use super::RenderInput;
use crate::model::pipeline::Settings;

/// What kind of item a templated text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Source,
    Destination,
    Pipeline,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Source => "source",
            ItemKind::Destination => "destination",
            ItemKind::Pipeline => "pipeline",
        }
    }
}

/// A template the collector cannot resolve, or a setting its resolved value makes invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub kind: ItemKind,
    pub id: String,
    pub name: String,
    /// The field inside the item, as the item's own request names it (`settings.endpoint`,
    /// `resource_attributes.env`, `steps[1].settings.insert.env`).
    pub field: String,
    pub message: String,
}

impl TemplateProblem {
    /// The problem named for a reader who is not looking at the item: its kind, name and field first.
    pub fn qualified_message(&self) -> String {
        format!("{} {:?}, {}: {}", self.kind.as_str(), self.name, self.field, self.message)
    }
}

struct Item<'i> {
    kind: ItemKind,
    id: &'i str,
    name: &'i str,
}

/// Every template problem of one collector's config.
pub fn check_input(input: &RenderInput<'_>) -> Vec<TemplateProblem> {
    let no_attributes = Default::default();
    // Attributes resolve empty here: the resolved settings are checked against labels only.
    let values = Values { labels: input.labels, attributes: &no_attributes };
    let mut problems = Vec::new();
    for source in &input.sources {
        let item = Item { kind: ItemKind::Source, id: &source.id, name: &source.name };
        if let Some(entry) = catalogue::entry(EntryKind::Source, &source.source_type) {
            check_settings(&mut problems, &item, "", entry, &source.settings, &values);
        }
        for (key, value) in &source.resource_attributes {
            for label in templates::labels_used(value, RESOURCE_ATTRIBUTE_TEMPLATING) {
                if !input.labels.contains_key(&label) {
                    problems.push(missing_label(&item, &format!("resource_attributes.{key}"), &label));
                }
            }
        }
    }
    for destination in &input.destinations {
        let item = Item { kind: ItemKind::Destination, id: &destination.id, name: &destination.name };
        if let Some(entry) = catalogue::entry(EntryKind::Destination, &destination.destination_type) {
            check_settings(&mut problems, &item, "", entry, &destination.settings, &values);
        }
    }
    for pipeline in input.pipelines.values() {
        let item = Item { kind: ItemKind::Pipeline, id: &pipeline.id, name: &pipeline.name };
        for (index, step) in pipeline.steps.iter().enumerate() {
            if let Some(entry) = catalogue::entry(EntryKind::Step, &step.step_type) {
                let prefix = format!("steps[{index}].");
                check_settings(&mut problems, &item, &prefix, entry, &step.settings, &values);
            }
        }
    }
    problems
}

fn missing_label(item: &Item<'_>, field: &str, label: &str) -> TemplateProblem {
    TemplateProblem {
        kind: item.kind,
        id: item.id.to_owned(),
        name: item.name.to_owned(),
        field: field.to_owned(),
        message: format!("{{{{labels.{label}}}}}: the collector has no label {label:?}"),
    }
}

fn check_settings(
    problems: &mut Vec<TemplateProblem>,
    item: &Item<'_>,
    prefix: &str,
    entry: &'static CatalogueEntry,
    settings: &Settings,
    values: &Values<'_>,
) {
    let used = catalogue::labels_used(entry, settings);
    if used.is_empty() && !catalogue::uses_attributes(entry, settings) {
        return;
    }
    let mut missing = false;
    for (field, label) in used {
        if !values.labels.contains_key(&label) {
            missing = true;
            problems.push(missing_label(item, &format!("{prefix}{field}"), &label));
        }
    }
    if missing {
        return;
    }
    let (resolved, _) = catalogue::resolve_settings(entry, settings, values);
    if let Err(invalid) = catalogue::validate_resolved(entry.kind, entry.type_name, &resolved) {
        problems.extend(invalid.into_iter().map(|FieldError { field, problem }| TemplateProblem {
            kind: item.kind,
            id: item.id.to_owned(),
            name: item.name.to_owned(),
            field: format!("{prefix}{field}"),
            message: format!("with the collector's labels: {problem}"),
        }));
    }
}

/// Whether the collector's config refers to an attribute it reports: it renders anew when they change.
pub fn uses_attributes(input: &RenderInput<'_>) -> bool {
    let sources = input.sources.iter().any(|source| {
        let in_settings = catalogue::entry(EntryKind::Source, &source.source_type)
            .is_some_and(|entry| catalogue::uses_attributes(entry, &source.settings));
        in_settings
            || source
                .resource_attributes
                .values()
                .any(|value| templates::uses_attributes(value, RESOURCE_ATTRIBUTE_TEMPLATING))
    });
    let destinations = input.destinations.iter().any(|destination| {
        catalogue::entry(EntryKind::Destination, &destination.destination_type)
            .is_some_and(|entry| catalogue::uses_attributes(entry, &destination.settings))
    });
    let steps = input.pipelines.values().flat_map(|pipeline| &pipeline.steps).any(|step| {
        catalogue::entry(EntryKind::Step, &step.step_type)
            .is_some_and(|entry| catalogue::uses_attributes(entry, &step.settings))
    });
    sources || destinations || steps
}

/// Whether any text the rendering of `input` reads could be a template (`{{` anywhere in the
/// settings of its sources, destinations and steps or in a source's resource attributes, whatever
/// the field allows): when not, its labels and attributes cannot change its config.
pub fn may_hold_templates(input: &RenderInput<'_>) -> bool {
    let in_settings = |settings: &Settings| settings.values().any(value_may_hold_template);
    input.sources.iter().any(|source| {
        in_settings(&source.settings)
            || source.resource_attributes.values().any(|value| value.contains(templates::OPEN))
    }) || input.destinations.iter().any(|destination| in_settings(&destination.settings))
        || input
            .pipelines
            .values()
            .flat_map(|pipeline| &pipeline.steps)
            .any(|step| in_settings(&step.settings))
}

fn value_may_hold_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains(templates::OPEN),
        serde_json::Value::Array(values) => values.iter().any(value_may_hold_template),
        serde_json::Value::Object(map) => {
            map.iter().any(|(key, value)| key.contains(templates::OPEN) || value_may_hold_template(value))
        }
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{settings_for_test, Destination, Pipeline, Route, Signal, Source, Step};
    use crate::model::CollectorMode;
    use crate::render::TestModel;
    use serde_json::json;

    fn model(endpoint: &str) -> TestModel {
        TestModel {
            sources: vec![Source::for_test("src_1", "otlp")],
            routes: vec![Route::for_test("rte_1", 10, "true", true, &["dst_1"])],
            destinations: vec![Destination {
                settings: settings_for_test(json!({"endpoint": endpoint})),
                ..Destination::for_test("dst_1", "otlp_http")
            }],
            ..TestModel::default()
        }
    }

    #[test]
    fn a_missing_label_names_the_item_and_field() {
        let model = model("https://{{labels.region}}.example.com");
        let problems = check_input(&model.input(CollectorMode::Opamp));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].kind, problems[0].id.as_str()), (ItemKind::Destination, "dst_1"));
        assert_eq!(problems[0].field, "settings.endpoint");
        assert!(problems[0].message.contains("no label \"region\""), "{}", problems[0].message);
    }

    #[test]
    fn resolved_values_are_checked_with_the_catalogue_rules() {
        let mut model = model("https://{{labels.region}}.example.com");
        model.labels.insert("region".to_owned(), "eu".to_owned());
        assert!(check_input(&model.input(CollectorMode::Opamp)).is_empty());
        model.labels.insert("region".to_owned(), "e u".to_owned());
        let problems = check_input(&model.input(CollectorMode::Opamp));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "settings.endpoint");
    }

    #[test]
    fn attribute_use_is_found_in_steps_and_resource_attributes() {
        let mut model = model("https://example.com");
        assert!(!uses_attributes(&model.input(CollectorMode::Opamp)));
        model.sources[0].resource_attributes.insert("host".to_owned(), "{{attributes.host}}".to_owned());
        assert!(uses_attributes(&model.input(CollectorMode::Opamp)));
        model.sources[0].resource_attributes.clear();
        model.pipelines.push(Pipeline::for_test(
            "pl_1",
            &[Signal::Logs],
            vec![Step::for_test("attributes", json!({"insert": {"host": "{{ attributes.host.name }}"}}))],
        ));
        model.routes[0].pipeline_id = Some("pl_1".to_owned());
        assert!(uses_attributes(&model.input(CollectorMode::Opamp)));
        assert!(check_input(&model.input(CollectorMode::Opamp)).is_empty());
    }
}
