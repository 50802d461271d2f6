//! OTTL (the OpenTelemetry Transformation Language) and RE2 regular expressions, checked on the server
//! before a config that contains them becomes a version.
//!
//! The collectors parse OTTL with `pkg/ottl` and compile regexes with Go's `regexp` when they load a
//! config; a text either refuses is a config the collector refuses as a whole. This module answers the
//! same question without Go: [`check_condition`] and [`check_statement`] say whether the filter and
//! transform processors would load a text in a context, [`re2::check_regex`] whether Go would compile
//! a pattern. `tools/ottlcheck` (the collectors' own Go code) is the oracle the differential tests
//! compare these answers with (`tests/ottl_differential.rs`).
//!
//! A text goes through `lexer` (participle's token rules), `parser` (the grammar as an ordered-choice
//! parser, bounded in depth and steps), then `checker`: the custom grammar errors, `paths` per
//! context, enum symbols, and `functions` (each processor's function set, parameters and factory
//! checks, with `grok` and `timefmt` tables, and `xpath` for the literal XPath of `GetXML`,
//! `InsertXML`, `RemoveXML` and the XML conversions, by antchfx/xpath's `Compile` rules). Everything is
//! answered from static tables; nothing is cached or locked between calls.

mod checker;
mod functions;
mod grok;
mod lexer;
mod parser;
mod paths;
pub mod re2;
mod timefmt;
mod xpath;

use std::fmt;

/// The OTTL contexts linkmesh renders conditions and statements in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Log,
    Resource,
    Scope,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
}

impl Context {
    pub const ALL: [Context; 7] = [
        Context::Log,
        Context::Resource,
        Context::Scope,
        Context::Span,
        Context::SpanEvent,
        Context::Metric,
        Context::DataPoint,
    ];

    /// The name `pkg/ottl` and `tools/ottlcheck` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Log => "log",
            Context::Resource => "resource",
            Context::Scope => "scope",
            Context::Span => "span",
            Context::SpanEvent => "spanevent",
            Context::Metric => "metric",
            Context::DataPoint => "datapoint",
        }
    }

    pub fn parse(name: &str) -> Option<Context> {
        Context::ALL.into_iter().find(|context| context.as_str() == name)
    }
}

/// Why a text would be refused, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OttlError {
    pub message: String,
}

impl OttlError {
    pub(crate) fn new(message: String) -> OttlError {
        OttlError { message }
    }
}

impl fmt::Display for OttlError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for OttlError {}

/// Whether the filter processor would load `text` as a condition in `context`.
///
/// The filter's explicit per-context lists take paths as written; its scope conditions come from a
/// context-tagged list, whose paths get the `scope.` prefix first (so `instrumentation_scope.name` is
/// refused there).
pub fn check_condition(text: &str, context: Context) -> Result<(), OttlError> {
    let tokens = lexer::lex(text)?;
    let condition = parser::parse_condition(text, &tokens)?;
    let checker = checker::Checker {
        text,
        context,
        processor: functions::Processor::Filter,
        prefixed: context == Context::Scope,
    };
    checker.condition(&condition).map_err(OttlError::new)
}

/// Whether the transform processor would load `text` as a statement in `context` (a statement group
/// with `context: <context>`, whose paths get the context's prefix first).
pub fn check_statement(text: &str, context: Context) -> Result<(), OttlError> {
    let tokens = lexer::lex(text)?;
    let statement = parser::parse_statement(text, &tokens)?;
    let checker =
        checker::Checker { text, context, processor: functions::Processor::Transform, prefixed: true };
    checker.statement(&statement).map_err(OttlError::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(text: &str, context: Context) -> bool {
        check_condition(text, context).is_ok()
    }

    fn statement(text: &str, context: Context) -> bool {
        check_statement(text, context).is_ok()
    }

    #[test]
    fn record_paths_load_only_in_their_context() {
        assert!(condition(r#"severity_text == "ERROR""#, Context::Log));
        assert!(!condition(r#"severity_text == "ERROR""#, Context::Span));
        assert!(!condition(r#"attributes["k"] == "v""#, Context::Metric));
        assert!(condition(r#"metric.name == "cpu" and value_double > 0.9"#, Context::DataPoint));
        assert!(!condition(r#"not (severity_text == "ERROR")"#, Context::DataPoint));
    }

    #[test]
    fn scope_conditions_and_all_statements_get_the_context_prefix() {
        // The filter's scope list is context-tagged: `instrumentation_scope.name` becomes
        // `scope.instrumentation_scope.name`; the log list takes it as written.
        assert!(!condition(r#"instrumentation_scope.name == "lib""#, Context::Scope));
        assert!(condition(r#"instrumentation_scope.name == "lib""#, Context::Log));
        assert!(condition(r#"name == "lib""#, Context::Scope));
        assert!(!statement(r#"set(span.name, "v")"#, Context::Log));
        assert!(statement(r#"set(resource.attributes["k"], "v")"#, Context::Log));
        assert!(statement(r#"set(cache["k"], "v")"#, Context::Span));
    }

    #[test]
    fn each_processor_has_its_own_functions() {
        assert!(condition(r#"HasAttrOnDatapoint("k", "v")"#, Context::Metric));
        assert!(!statement(r#"set(description, "x") where HasAttrOnDatapoint("k", "v")"#, Context::Metric));
        assert!(statement(r#"convert_sum_to_gauge() where name == "x""#, Context::Metric));
        assert!(!statement("convert_sum_to_gauge()", Context::DataPoint));
        assert!(!condition(r#"set(attributes["x"], "y")"#, Context::Log));
        assert!(!statement(r#"IsMatch(body, "a")"#, Context::Log));
        // A factory without an arguments struct never looks at its arguments.
        assert!(condition("IsRootSpan(nope) == true", Context::Span));
    }

    #[test]
    fn arguments_are_counted_named_and_typed() {
        let error = check_statement(r#"set(attributes["x"])"#, Context::Log).expect_err("refused");
        assert_eq!(error.message, "set takes 2 arguments, got 1");
        assert!(condition(r#"IsMatch(target = body, pattern = "a")"#, Context::Log));
        assert!(!condition(r#"IsMatch(target = body, "a")"#, Context::Log));
        assert!(!condition("IsMatch(body, 1)", Context::Log));
        assert!(!statement("limit(attributes, -1, [])", Context::Log));
        assert!(!condition(r#"ConvertCase(body, target = "x") == "x""#, Context::Log));
        assert!(!condition("span_id == SpanID(0x0102)", Context::Log));
        assert!(condition("span_id == SpanID(0x0102030405060708)", Context::Log));
    }

    #[test]
    fn literal_patterns_are_compiled_at_load() {
        let error = check_condition(r#"IsMatch(body, "([a-z")"#, Context::Log).expect_err("refused");
        assert!(error.message.starts_with("invalid regular expression in IsMatch: "), "{error}");
        // A pattern known only per record is not checked.
        assert!(condition(r#"IsMatch(body, attributes["pattern"])"#, Context::Log));
        assert!(!statement(r#"replace_match(body, "[z-a]", "x")"#, Context::Log));
    }

    #[test]
    fn errors_say_what_and_where() {
        let error = check_condition(r#"severity_text == "ERROR""#, Context::Span).expect_err("refused");
        assert_eq!(error.message, r#"unknown path "severity_text" in the span context (column 1)"#);
        let error = check_condition(r#"attributes["a"] == == 1"#, Context::Log).expect_err("refused");
        assert_eq!(error.message, r#"unexpected "==" at column 20: expected a value"#);
    }
}
