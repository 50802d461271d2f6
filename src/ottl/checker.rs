//! What `ottl.Parser` checks after the grammar, when it builds a condition or a statement (contrib
//! v0.149.0): the custom grammar errors (`grammarCustomErrorsVisitor` in `pkg/ottl/grammar.go`), then
//! `newBoolExpr`, `newGetter`, `newFunctionCall` and `buildArgs` (`pkg/ottl/boolean_value.go`,
//! `expression.go`, `math.go`, `functions.go`): paths, enum symbols, function names, argument counts and
//! kinds, literals the typed getters evaluate at load time, and each factory's own checks.

use super::functions::{self, Bound, Kind, Lit, Processor};
use super::lexer;
use super::parser::{
    ArgValue, BoolExpr, BoolKind, Call, Key, Literal, MathExpr, MathOp, MathValueKind, Path, Statement, Value,
};
use super::paths::{self, Segment};
use super::Context;

/// A getter as the parser builds it: a literal it evaluates at load time, or one it evaluates per record.
enum Getter {
    Lit(Lit),
    Dynamic,
}

pub struct Checker<'a> {
    /// The text checked, for positions in messages.
    pub text: &'a str,
    pub context: Context,
    pub processor: Processor,
    /// Paths are rewritten with the context's name (transform statements, context-tagged filter lists).
    pub prefixed: bool,
}

type Checked<T> = Result<T, String>;

impl Checker<'_> {
    pub fn statement(&self, statement: &Statement<'_>) -> Checked<()> {
        if !statement.call.keys.is_empty() {
            return Err(format!("the editor {} cannot be indexed", statement.call.name));
        }
        self.custom_call(&statement.call)?;
        if let Some(condition) = &statement.condition {
            self.custom_bool(condition)?;
        }
        self.call(&statement.call)?;
        if let Some(condition) = &statement.condition {
            self.bool_expr(condition)?;
        }
        Ok(())
    }

    pub fn condition(&self, condition: &BoolExpr<'_>) -> Checked<()> {
        self.custom_bool(condition)?;
        self.bool_expr(condition)
    }

    // The custom grammar errors: an editor where a value belongs.

    fn custom_bool(&self, expression: &BoolExpr<'_>) -> Checked<()> {
        for value in expression.terms.iter().flatten() {
            match &value.kind {
                BoolKind::Comparison(left, right) => {
                    self.custom_value(left)?;
                    self.custom_value(right)?;
                }
                BoolKind::Converter(call) => self.custom_call(call)?,
                BoolKind::Sub(sub) => self.custom_bool(sub)?,
                BoolKind::Const => {}
            }
        }
        Ok(())
    }

    fn custom_call(&self, call: &Call<'_>) -> Checked<()> {
        for argument in &call.args {
            if let ArgValue::Value(value) = &argument.value {
                self.custom_value(value)?;
            }
        }
        Ok(())
    }

    fn custom_value(&self, value: &Value<'_>) -> Checked<()> {
        match value {
            Value::Literal(literal) => self.custom_literal(literal),
            Value::Math(math) => self.custom_math(math),
            Value::Map(items) => items.iter().try_for_each(|(_, value)| self.custom_value(value)),
            Value::List(values) => values.iter().try_for_each(|value| self.custom_value(value)),
            _ => Ok(()),
        }
    }

    fn custom_literal(&self, literal: &Literal<'_>) -> Checked<()> {
        match literal {
            Literal::Editor(call) => Err(format!(
                "{} is an editor; only converters (upper-case names) can be used as values",
                call.name
            )),
            Literal::Converter(call) => self.custom_call(call),
            Literal::Path(path) => {
                for field in &path.fields {
                    for key in &field.keys {
                        if let Key::Math(math) = key {
                            self.custom_math(math)?;
                        }
                    }
                }
                Ok(())
            }
            Literal::Float(_) | Literal::Int(_) => Ok(()),
        }
    }

    fn custom_math(&self, math: &MathExpr<'_>) -> Checked<()> {
        for (_, term) in &math.terms {
            for (_, value) in &term.values {
                match &value.kind {
                    MathValueKind::Literal(literal) => self.custom_literal(literal)?,
                    MathValueKind::Sub(sub) => self.custom_math(sub)?,
                }
            }
        }
        Ok(())
    }

    // Building the expression.

    fn bool_expr(&self, expression: &BoolExpr<'_>) -> Checked<()> {
        for value in expression.terms.iter().flatten() {
            match &value.kind {
                BoolKind::Comparison(left, right) => {
                    self.getter(left)?;
                    self.getter(right)?;
                }
                BoolKind::Const => {}
                BoolKind::Converter(call) => self.call(call)?,
                BoolKind::Sub(sub) => self.bool_expr(sub)?,
            }
        }
        Ok(())
    }

    fn getter(&self, value: &Value<'_>) -> Checked<Getter> {
        Ok(match value {
            Value::Nil => Getter::Lit(Lit::Nil),
            Value::String(text) => Getter::Lit(Lit::Str(text.clone())),
            Value::Bool(value) => Getter::Lit(Lit::Bool(*value)),
            Value::Bytes(bytes) => Getter::Lit(Lit::Bytes(bytes.clone())),
            Value::Enum(symbol) => {
                self.enum_symbol(symbol)?;
                Getter::Lit(Lit::Int(0))
            }
            Value::Literal(literal) => self.literal(literal)?,
            Value::List(values) => {
                let mut literals = Vec::with_capacity(values.len());
                let mut dynamic = false;
                for value in values {
                    match self.getter(value)? {
                        Getter::Lit(literal) => literals.push(literal),
                        Getter::Dynamic => dynamic = true,
                    }
                }
                if dynamic {
                    Getter::Dynamic
                } else {
                    Getter::Lit(Lit::List(literals))
                }
            }
            Value::Map(items) => {
                let mut dynamic = false;
                for (_, value) in items {
                    dynamic |= matches!(self.getter(value)?, Getter::Dynamic);
                }
                if dynamic {
                    Getter::Dynamic
                } else {
                    Getter::Lit(Lit::Map)
                }
            }
            Value::Math(math) => self.math(math)?,
        })
    }

    fn literal(&self, literal: &Literal<'_>) -> Checked<Getter> {
        Ok(match literal {
            Literal::Float(value) => Getter::Lit(Lit::Float(*value)),
            Literal::Int(value) => Getter::Lit(Lit::Int(*value)),
            Literal::Path(path) => {
                self.path(path)?;
                Getter::Dynamic
            }
            Literal::Converter(call) | Literal::Editor(call) => {
                self.call(call)?;
                Getter::Dynamic
            }
        })
    }

    fn math(&self, math: &MathExpr<'_>) -> Checked<Getter> {
        let mut single = None;
        let count: usize = math.terms.iter().map(|(_, term)| term.values.len()).sum();
        for (_, term) in &math.terms {
            for (_, value) in &term.values {
                let getter = match &value.kind {
                    MathValueKind::Literal(literal) => {
                        let getter = self.literal(literal)?;
                        match (value.unary, getter) {
                            (Some(MathOp::Sub), Getter::Lit(Lit::Int(number))) => {
                                Getter::Lit(Lit::Int(number.wrapping_neg()))
                            }
                            (Some(MathOp::Sub), Getter::Lit(Lit::Float(number))) => {
                                Getter::Lit(Lit::Float(-number))
                            }
                            (Some(MathOp::Sub), _) => Getter::Dynamic,
                            (_, getter) => getter,
                        }
                    }
                    MathValueKind::Sub(sub) => match (value.unary, self.math(sub)?) {
                        (Some(MathOp::Sub), _) => Getter::Dynamic,
                        (_, getter) => getter,
                    },
                };
                single = Some(getter);
            }
        }
        Ok(if count == 1 { single.unwrap_or(Getter::Dynamic) } else { Getter::Dynamic })
    }

    fn enum_symbol(&self, symbol: &str) -> Checked<()> {
        let known = match self.context {
            Context::Log => LOG_SYMBOLS.contains(&symbol),
            Context::Span | Context::SpanEvent => SPAN_SYMBOLS.contains(&symbol),
            Context::Metric => METRIC_SYMBOLS.contains(&symbol),
            Context::DataPoint => METRIC_SYMBOLS.contains(&symbol) || DATAPOINT_SYMBOLS.contains(&symbol),
            Context::Resource | Context::Scope => {
                return Err(format!("the {} context has no enums, got {symbol}", self.context.as_str()))
            }
        };
        if known {
            Ok(())
        } else {
            Err(format!("unknown enum {symbol} in the {} context", self.context.as_str()))
        }
    }

    fn path(&self, path: &Path<'_>) -> Checked<()> {
        for field in &path.fields {
            for key in &field.keys {
                if let Key::Math(math) = key {
                    self.math(math)?;
                }
            }
        }
        let context = path.context.map(|name| Segment { name, keys: 0 });
        let fields: Vec<Segment<'_>> =
            path.fields.iter().map(|field| Segment { name: field.name, keys: field.keys.len() }).collect();
        paths::check(self.context, self.prefixed, context, &fields)
            .map_err(|error| self.at(path.offset, error))
    }

    fn at(&self, offset: usize, error: String) -> String {
        format!("{error} ({})", lexer::place(self.text, offset))
    }

    fn call(&self, call: &Call<'_>) -> Checked<()> {
        let Some(signature) = functions::lookup(&call.name, self.processor, self.context) else {
            let processor = match self.processor {
                Processor::Filter => "filter",
                Processor::Transform => "transform",
            };
            let error = format!(
                "unknown function {} for the {processor} processor in the {} context",
                call.name,
                self.context.as_str()
            );
            return Err(self.at(call.offset, error));
        };
        let Some(params) = signature.params else { return Ok(()) };
        let mut seen_named = false;
        for argument in &call.args {
            if argument.name.is_some() {
                seen_named = true;
            } else if seen_named {
                return Err(format!("{}: an unnamed argument cannot follow a named one", call.name));
            }
        }
        let required = params.iter().filter(|param| !param.optional).count();
        if call.args.len() < required || call.args.len() > params.len() {
            let takes = if required == params.len() {
                format!("{required}")
            } else {
                format!("{required} to {}", params.len())
            };
            return Err(format!(
                "{} takes {takes} argument{}, got {}",
                call.name,
                if params.len() == 1 { "" } else { "s" },
                call.args.len()
            ));
        }
        let mut bound = vec![Bound::Absent; params.len()];
        for (index, argument) in call.args.iter().enumerate() {
            let slot = match &argument.name {
                None => index,
                Some(name) => {
                    let field = functions::to_camel(name);
                    params
                        .iter()
                        .position(|param| param.name == field)
                        .ok_or_else(|| format!("{} has no parameter named {name}", call.name))?
                }
            };
            let param = &params[slot];
            bound[slot] = self.argument(param.kind, &argument.value).map_err(|error| {
                format!("{}: invalid argument {} ({}): {error}", call.name, index + 1, param.name)
            })?;
        }
        // A required parameter no argument named keeps Go's zero value.
        for (slot, param) in params.iter().enumerate() {
            if param.optional || bound[slot] != Bound::Absent {
                continue;
            }
            bound[slot] = match param.kind {
                Kind::LitString => Bound::Lit(Lit::Str(String::new())),
                Kind::LitInt => Bound::Lit(Lit::Int(0)),
                Kind::LitFloat => Bound::Lit(Lit::Float(0.0)),
                Kind::LitBool => Bound::Lit(Lit::Bool(false)),
                Kind::LitStringList | Kind::LitFloatList | Kind::List(_) => Bound::Lit(Lit::List(Vec::new())),
                _ => Bound::Absent,
            };
        }
        functions::factory_check(&call.name, &bound)
    }

    fn argument(&self, kind: Kind, argument: &ArgValue<'_>) -> Checked<Bound> {
        if kind == Kind::Function {
            let name = match argument {
                ArgValue::Value(Value::Enum(name)) => *name,
                ArgValue::FunctionName(name) => name.as_str(),
                ArgValue::Value(_) => return Err("must be a function name".to_owned()),
            };
            return match functions::lookup(name, self.processor, self.context) {
                Some(_) => Ok(Bound::Dynamic),
                None => Err(format!("unknown function {name}")),
            };
        }
        let ArgValue::Value(value) = argument else {
            return Err("a bare function name is not a value".to_owned());
        };
        self.value_as(kind, value)
    }

    fn value_as(&self, kind: Kind, value: &Value<'_>) -> Checked<Bound> {
        match kind {
            Kind::Setter | Kind::MapSetter | Kind::SliceSetter => {
                let Value::Literal(Literal::Path(path)) = value else {
                    return Err("must be a path".to_owned());
                };
                self.path(path)?;
                Ok(Bound::Dynamic)
            }
            Kind::LitString => match value {
                Value::String(text) => Ok(Bound::Lit(Lit::Str(text.clone()))),
                _ => Err("must be a string".to_owned()),
            },
            Kind::LitFloat => match value {
                Value::Literal(Literal::Float(number)) => Ok(Bound::Lit(Lit::Float(*number))),
                _ => Err("must be a float".to_owned()),
            },
            Kind::LitInt => match value {
                Value::Literal(Literal::Int(number)) => Ok(Bound::Lit(Lit::Int(*number))),
                _ => Err("must be an int".to_owned()),
            },
            Kind::LitBool => match value {
                Value::Bool(flag) => Ok(Bound::Lit(Lit::Bool(*flag))),
                _ => Err("must be a bool".to_owned()),
            },
            Kind::LitStringList | Kind::LitFloatList | Kind::List(_) => {
                let Value::List(values) = value else {
                    return Err("must be a list".to_owned());
                };
                let element = match kind {
                    Kind::LitStringList => Kind::LitString,
                    Kind::LitFloatList => Kind::LitFloat,
                    Kind::List(inner) => *inner,
                    _ => Kind::Getter,
                };
                let mut literals = Vec::with_capacity(values.len());
                for (index, value) in values.iter().enumerate() {
                    match self
                        .value_as(element, value)
                        .map_err(|error| format!("list element {index}: {error}"))?
                    {
                        Bound::Lit(literal) => literals.push(literal),
                        _ => literals.push(Lit::Unknown),
                    }
                }
                Ok(Bound::Lit(Lit::List(literals)))
            }
            Kind::Function => Err("must be a function name".to_owned()),
            _ => {
                let getter = self.getter(value)?;
                let Getter::Lit(literal) = getter else { return Ok(Bound::Dynamic) };
                typed_literal(kind, &literal)?;
                Ok(Bound::Lit(literal))
            }
        }
    }
}

/// Whether the typed getter `kind` accepts a literal at load time (the `newStandard…Getter`s of
/// `pkg/ottl/expression.go` evaluate literals once and fail the load on a type they refuse).
fn typed_literal(kind: Kind, literal: &Lit) -> Checked<()> {
    let ok = match kind {
        Kind::Getter | Kind::StringLike => true,
        Kind::String => matches!(literal, Lit::Str(_)),
        Kind::Int => matches!(literal, Lit::Int(_)),
        Kind::Float => matches!(literal, Lit::Float(_)),
        Kind::Bool => matches!(literal, Lit::Bool(_)),
        Kind::IntLike => {
            matches!(literal, Lit::Nil | Lit::Int(_) | Lit::Str(_) | Lit::Float(_) | Lit::Bool(_))
        }
        Kind::FloatLike => match literal {
            Lit::Nil | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => true,
            Lit::Str(text) => go_parse_float(text),
            _ => false,
        },
        Kind::BoolLike => match literal {
            Lit::Nil | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => true,
            Lit::Str(text) => matches!(
                text.as_str(),
                "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
            ),
            _ => false,
        },
        Kind::ByteSliceLike => !matches!(literal, Lit::List(_) | Lit::Map | Lit::Unknown),
        Kind::Map => matches!(literal, Lit::Map),
        Kind::Slice => match literal {
            Lit::List(values) => slice_from_raw(values),
            _ => false,
        },
        Kind::Time | Kind::Duration => false,
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let wanted = match kind {
        Kind::String => "a string",
        Kind::Int => "an int",
        Kind::Float => "a float",
        Kind::Bool => "a bool",
        Kind::IntLike => "something convertible to an int",
        Kind::FloatLike => "a number or a string holding one",
        Kind::BoolLike => "a bool, a number or a string holding a bool",
        Kind::ByteSliceLike => "bytes, a string or a number",
        Kind::Map => "a map",
        Kind::Slice => "a list of plain values",
        Kind::Time => "a time (from a path or a converter such as Time)",
        Kind::Duration => "a duration (from a path or a converter such as Duration)",
        _ => "another kind of value",
    };
    Err(format!("expected {wanted}, got a literal {}", describe(literal)))
}

/// `pcommon.Slice.FromRaw` on a literal list: a map literal (a `pcommon.Map`) is not a raw value.
fn slice_from_raw(values: &[Lit]) -> bool {
    values.iter().all(|value| match value {
        Lit::Map => false,
        Lit::List(inner) => slice_from_raw(inner),
        _ => true,
    })
}

fn describe(literal: &Lit) -> &'static str {
    match literal {
        Lit::Nil => "nil",
        Lit::Str(_) => "string",
        Lit::Bool(_) => "bool",
        Lit::Bytes(_) => "byte string",
        Lit::Int(_) => "int",
        Lit::Float(_) => "float",
        Lit::List(_) => "list",
        Lit::Map => "map",
        Lit::Unknown => "value",
    }
}

/// Go's `strconv.ParseFloat(text, 64)` accepts `text`.
fn go_parse_float(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return true;
    }
    if unsigned.starts_with("0x") || text.contains('_') {
        // Hex floats and digit separators: rare enough to let the collector judge.
        return true;
    }
    if unsigned.is_empty()
        || !unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
    {
        return false;
    }
    text.parse::<f64>().is_ok_and(f64::is_finite)
}

const LOG_SYMBOLS: &[&str] = &[
    "SEVERITY_NUMBER_UNSPECIFIED",
    "SEVERITY_NUMBER_TRACE",
    "SEVERITY_NUMBER_TRACE2",
    "SEVERITY_NUMBER_TRACE3",
    "SEVERITY_NUMBER_TRACE4",
    "SEVERITY_NUMBER_DEBUG",
    "SEVERITY_NUMBER_DEBUG2",
    "SEVERITY_NUMBER_DEBUG3",
    "SEVERITY_NUMBER_DEBUG4",
    "SEVERITY_NUMBER_INFO",
    "SEVERITY_NUMBER_INFO2",
    "SEVERITY_NUMBER_INFO3",
    "SEVERITY_NUMBER_INFO4",
    "SEVERITY_NUMBER_WARN",
    "SEVERITY_NUMBER_WARN2",
    "SEVERITY_NUMBER_WARN3",
    "SEVERITY_NUMBER_WARN4",
    "SEVERITY_NUMBER_ERROR",
    "SEVERITY_NUMBER_ERROR2",
    "SEVERITY_NUMBER_ERROR3",
    "SEVERITY_NUMBER_ERROR4",
    "SEVERITY_NUMBER_FATAL",
    "SEVERITY_NUMBER_FATAL2",
    "SEVERITY_NUMBER_FATAL3",
    "SEVERITY_NUMBER_FATAL4",
];

const SPAN_SYMBOLS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
    "STATUS_CODE_UNSET",
    "STATUS_CODE_OK",
    "STATUS_CODE_ERROR",
];

const METRIC_SYMBOLS: &[&str] = &[
    "AGGREGATION_TEMPORALITY_UNSPECIFIED",
    "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE",
    "METRIC_DATA_TYPE_NONE",
    "METRIC_DATA_TYPE_GAUGE",
    "METRIC_DATA_TYPE_SUM",
    "METRIC_DATA_TYPE_HISTOGRAM",
    "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM",
    "METRIC_DATA_TYPE_SUMMARY",
];

const DATAPOINT_SYMBOLS: &[&str] = &["FLAG_NONE", "FLAG_NO_RECORDED_VALUE"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_refuse_literals_of_the_wrong_type() {
        assert!(typed_literal(Kind::String, &Lit::Int(1)).is_err());
        assert!(typed_literal(Kind::StringLike, &Lit::Int(1)).is_ok());
        assert!(typed_literal(Kind::FloatLike, &Lit::Str("x".into())).is_err());
        assert!(typed_literal(Kind::FloatLike, &Lit::Str("1.5".into())).is_ok());
        assert!(typed_literal(Kind::IntLike, &Lit::Str("x".into())).is_ok());
        assert!(typed_literal(Kind::Duration, &Lit::Str("1s".into())).is_err());
        assert!(typed_literal(Kind::Slice, &Lit::List(vec![Lit::Map])).is_err());
    }
}
