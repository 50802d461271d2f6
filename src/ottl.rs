//! OTTL (the OpenTelemetry Transformation Language) and RE2 regular expressions, checked on the server
//! before a config that contains them becomes a version.
//!
//! The collectors parse OTTL with `pkg/ottl` and compile regexes with Go's `regexp` when they load a
//! config; a text either refuses is a config the collector refuses as a whole. This module answers the
//! same question without Go: [`check_condition`] and [`check_statement`] say whether the filter and
//! transform processors would load a text in a context, [`re2::check_regex`] whether Go would compile
//! a pattern. `tools/ottlcheck` (the collectors' own Go code) is the oracle the differential tests
//! compare these answers with.

mod checker;
mod functions;
mod grok;
mod lexer;
mod parser;
mod paths;
pub mod re2;
mod timefmt;

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
