//! Every OTTL text and regular expression a config carries, checked the way the collector loads it,
//! before the config becomes a version (`crate::ottl`, the server's own parser, tested against the
//! collectors' Go code in `tools/ottlcheck`).
//!
//! A text is checked in every context the renderer puts it in, not once: a route condition becomes
//! a filter condition in the record context of each signal the route carries (`log`, `datapoint`,
//! `span`, [`plan::record_context`]), and a pipeline step runs in the record context of each signal
//! it processes. So `severity_text == "ERROR"` on a route that also carries traces is refused, naming
//! the route, the signal and the path, rather than delivered to a collector that would refuse the
//! whole config. The user's own text is checked before the renderer wraps it (`not (…)`), so a text
//! that only parses once wrapped is refused too.
//!
//! Two levels: [`check_pipeline`] and [`check_route_condition`] check an item on its own when it is
//! written (a pipeline's steps in every signal the pipeline declares; a route condition in at least
//! one record context), and [`OttlChecker::check_plan`] checks what one collector's config actually
//! renders. The checker remembers verdicts, so a text shared by many collectors is parsed once per
//! write.

use std::collections::HashMap;

use super::catalogue::{self, CatalogueEntry};
use super::plan::{self, Plan};
use crate::model::pipeline::{Pipeline, Route, Signal, Step};
use crate::ottl::{self, re2, Context};

/// What kind of item a text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Route,
    Pipeline,
    Source,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Route => "route",
            ItemKind::Pipeline => "pipeline",
            ItemKind::Source => "source",
        }
    }
}

/// A text a collector would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OttlProblem {
    pub kind: ItemKind,
    /// The item's id and name.
    pub id: String,
    pub name: String,
    /// The field inside the item, as the item's own request names it (`condition`,
    /// `steps[1].settings.conditions[0]`).
    pub field: String,
    /// What is wrong, with the signal and context when it depends on them.
    pub message: String,
}

impl OttlProblem {
    /// The problem named for a reader who is not looking at the item: its kind, name and field first.
    pub fn qualified_message(&self) -> String {
        format!("{} {:?}, {}: {}", self.kind.as_str(), self.name, self.field, self.message)
    }
}

/// How a text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextKind {
    Condition,
    Statement,
}

/// The record context a signal's conditions and statements run in.
pub fn record_context(signal: Signal) -> Context {
    match signal {
        Signal::Logs => Context::Log,
        Signal::Metrics => Context::DataPoint,
        Signal::Traces => Context::Span,
    }
}

/// Checks texts, remembering each verdict for the checker's lifetime (one write).
#[derive(Debug, Default)]
pub struct OttlChecker {
    verdicts: HashMap<(TextKind, Context, String), Result<(), String>>,
    regexes: HashMap<String, Result<(), String>>,
}

impl OttlChecker {
    fn text(&mut self, kind: TextKind, context: Context, text: &str) -> Result<(), String> {
        if let Some(verdict) = self.verdicts.get(&(kind, context, text.to_owned())) {
            return verdict.clone();
        }
        let verdict = match kind {
            TextKind::Condition => ottl::check_condition(text, context),
            TextKind::Statement => ottl::check_statement(text, context),
        }
        .map_err(|error| error.message);
        self.verdicts.insert((kind, context, text.to_owned()), verdict.clone());
        verdict
    }

    fn regex(&mut self, pattern: &str) -> Result<(), String> {
        if let Some(verdict) = self.regexes.get(pattern) {
            return verdict.clone();
        }
        let verdict = re2::check_regex(pattern).map_err(|error| error.message);
        self.regexes.insert(pattern.to_owned(), verdict.clone());
        verdict
    }

    /// Every text `plan` renders, in every context it is rendered in.
    pub fn check_plan(&mut self, plan: &Plan<'_>) -> Vec<OttlProblem> {
        let mut problems = Vec::new();
        for source in &plan.sources {
            for statement in plan::source_stamp_statements(&source.source) {
                if let Err(message) = self.text(TextKind::Statement, Context::Resource, &statement) {
                    problems.push(OttlProblem {
                        kind: ItemKind::Source,
                        id: source.source.id.clone(),
                        name: source.source.name.clone(),
                        field: "resource_attributes".to_owned(),
                        message: format!("the stamp {statement} is refused: {message}"),
                    });
                }
            }
        }
        for route in &plan.routes {
            if !route.matches_everything {
                for &signal in &route.signals {
                    if let Err(message) = self.route_condition_in(route.route, signal) {
                        let message = format!(
                            "refused for {}, which this route carries: {message}",
                            signal_and_context(signal, &message)
                        );
                        problems.push(route_problem(route.route, message));
                        break;
                    }
                }
            }
            let Some(pipeline) = route.pipeline else { continue };
            for step in &route.steps {
                for &signal in &step.signals {
                    let found = self.step(pipeline, step.index, &step.step, step.entry, signal);
                    if !found.is_empty() {
                        problems.extend(found);
                        break;
                    }
                }
            }
        }
        problems.dedup();
        problems
    }

    /// A route condition as the filters of `signal` load it: the user's text, then the match
    /// filter's wrapped form. The error is the parser's.
    fn route_condition_in(&mut self, route: &Route, signal: Signal) -> Result<(), String> {
        let context = record_context(signal);
        let condition = route.condition.trim();
        self.text(TextKind::Condition, context, condition)?;
        self.text(TextKind::Condition, context, &plan::match_drop_condition(condition))
    }

    /// The texts of one pipeline step, run for `signal`.
    fn step(
        &mut self,
        pipeline: &Pipeline,
        index: usize,
        step: &Step,
        entry: &CatalogueEntry,
        signal: Signal,
    ) -> Vec<OttlProblem> {
        let context = record_context(signal);
        let problem = |field: String, message: String| OttlProblem {
            kind: ItemKind::Pipeline,
            id: pipeline.id.clone(),
            name: pipeline.name.clone(),
            field: format!("steps[{index}].settings.{field}"),
            message: format!("refused for {}: {message}", signal_and_context(signal, &message)),
        };
        let mut problems = Vec::new();
        match entry.type_name {
            "filter" => {
                for (item, condition) in
                    catalogue::setting_list(entry, &step.settings, "conditions").iter().enumerate()
                {
                    if let Err(message) = self.text(TextKind::Condition, context, condition) {
                        problems.push(problem(format!("conditions[{item}]"), message));
                    }
                }
            }
            "transform" => {
                for (item, statement) in
                    catalogue::setting_list(entry, &step.settings, "statements").iter().enumerate()
                {
                    if let Err(message) = self.text(TextKind::Statement, context, statement) {
                        problems.push(problem(format!("statements[{item}]"), message));
                    }
                }
            }
            "mask" => {
                for (item, pattern) in
                    catalogue::setting_list(entry, &step.settings, "patterns").iter().enumerate()
                {
                    if let Err(message) = self.regex(pattern) {
                        problems.push(OttlProblem {
                            message: format!(
                                "not a regular expression the collector accepts (RE2): {message}"
                            ),
                            ..problem(format!("patterns[{item}]"), String::new())
                        });
                    }
                }
                if problems.is_empty() {
                    for statement in plan::mask_statements(entry, step, signal) {
                        if let Err(message) = self.text(TextKind::Statement, context, &statement) {
                            problems.push(problem("patterns".to_owned(), format!("{statement}: {message}")));
                        }
                    }
                }
            }
            _ => {}
        }
        problems
    }
}

/// `metrics (the datapoint context)`, or just `metrics` when the parser's `message` names the context.
fn signal_and_context(signal: Signal, message: &str) -> String {
    let context = record_context(signal).as_str();
    if message.contains(&format!("the {context} context")) {
        signal.as_str().to_owned()
    } else {
        format!("{} (the {context} context)", signal.as_str())
    }
}

fn route_problem(route: &Route, message: String) -> OttlProblem {
    OttlProblem {
        kind: ItemKind::Route,
        id: route.id.clone(),
        name: route.name.clone(),
        field: "condition".to_owned(),
        message,
    }
}

/// A pipeline on its own: every step's texts in the record context of every signal the pipeline
/// declares (a log-only path in a pipeline that also declares metrics is refused).
pub fn check_pipeline(pipeline: &Pipeline) -> Vec<OttlProblem> {
    let mut checker = OttlChecker::default();
    let mut problems = Vec::new();
    for (index, step) in pipeline.steps.iter().enumerate() {
        let Some(entry) = catalogue::entry(catalogue::EntryKind::Step, &step.step_type) else { continue };
        for &signal in &pipeline.signals {
            if !entry.carries(signal) {
                continue;
            }
            let found = checker.step(pipeline, index, step, entry, signal);
            if !found.is_empty() {
                problems.extend(found);
                break;
            }
        }
    }
    problems
}

/// A route condition on its own: it must load in at least one record context (which signals it
/// carries is decided per collector, by [`OttlChecker::check_plan`]). `None` when it does, or when it
/// matches everything.
pub fn check_route_condition(route: &Route) -> Option<OttlProblem> {
    let condition = route.condition.trim();
    if condition.is_empty() || condition == "true" {
        return None;
    }
    let mut checker = OttlChecker::default();
    let mut first_refusal = None;
    for signal in Signal::ALL {
        match checker.route_condition_in(route, signal) {
            Ok(()) => return None,
            Err(message) if first_refusal.is_none() => first_refusal = Some(message),
            Err(_) => {}
        }
    }
    first_refusal
        .map(|message| route_problem(route, format!("not a condition the collector accepts: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{Destination, Source};
    use crate::model::CollectorMode;
    use crate::render::TestModel;
    use serde_json::json;

    /// An OTLP source (every signal) through route `rte_1` (condition `condition`, pipeline `pl_1`
    /// when `steps` is not empty) to a destination of `destination_type`.
    fn problems(condition: &str, destination_type: &str, steps: Vec<Step>) -> Vec<OttlProblem> {
        let model = TestModel {
            sources: vec![Source::for_test("src_1", "otlp")],
            destinations: vec![Destination::for_test("dst_1", destination_type)],
            routes: vec![Route {
                pipeline_id: (!steps.is_empty()).then(|| "pl_1".to_owned()),
                ..Route::for_test("rte_1", 10, condition, true, &["dst_1"])
            }],
            pipelines: vec![Pipeline::for_test("pl_1", &Signal::ALL, steps)],
            ..TestModel::default()
        };
        let input = model.input(CollectorMode::AlloyRemotecfg);
        OttlChecker::default().check_plan(&Plan::new(&input))
    }

    #[test]
    fn a_route_condition_is_checked_for_each_signal_the_route_carries() {
        assert_eq!(problems(r#"severity_text == "ERROR""#, "loki", vec![]), []);
        let found = problems(r#"severity_text == "ERROR""#, "otlp_http", vec![]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].kind, found[0].field.as_str()), (ItemKind::Route, "condition"));
        assert!(found[0].message.contains("refused for metrics"), "{}", found[0].message);
        assert!(found[0].message.contains("datapoint context"), "{}", found[0].message);
        assert!(problems("true", "otlp_http", vec![]).is_empty());
    }

    #[test]
    fn only_the_users_text_is_trusted_not_its_wrapped_form() {
        let found = problems(r#"attributes["a"] == "x") or (true"#, "loki", vec![]);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn steps_name_the_item_that_is_refused() {
        let steps = vec![
            Step::for_test("filter", json!({"conditions": ["true", "severity_number >="]})),
            Step::for_test("mask", json!({"patterns": ["ok=\\S+", "(?x) a"]})),
            Step::for_test("transform", json!({"statements": ["set(attributes[\"x\"], \"y\")"]})),
        ];
        let found = problems("true", "otlp_http", steps);
        let fields: Vec<&str> = found.iter().map(|problem| problem.field.as_str()).collect();
        assert_eq!(fields, ["steps[0].settings.conditions[1]", "steps[1].settings.patterns[1]"], "{found:?}");
        assert!(found.iter().all(|problem| problem.kind == ItemKind::Pipeline));
    }

    #[test]
    fn a_pipeline_is_checked_in_every_signal_it_declares() {
        let filter = |signals: &[Signal]| {
            Pipeline::for_test(
                "pl_1",
                signals,
                vec![Step::for_test("filter", json!({"conditions": [r#"severity_text == "DEBUG""#]}))],
            )
        };
        assert_eq!(check_pipeline(&filter(&[Signal::Logs])), []);
        let found = check_pipeline(&filter(&[Signal::Logs, Signal::Metrics]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("metrics"), "{}", found[0].message);
    }

    #[test]
    fn a_route_condition_alone_needs_one_context_that_loads_it() {
        let route = |condition: &str| Route::for_test("rte_1", 10, condition, true, &["dst_1"]);
        assert_eq!(check_route_condition(&route(r#"severity_text == "ERROR""#)), None);
        assert_eq!(check_route_condition(&route("true")), None);
        let problem = check_route_condition(&route(r#"attributes["env" =="#)).expect("refused");
        assert_eq!(problem.field, "condition");
    }
}
