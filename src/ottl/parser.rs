//! The OTTL grammar: the participle structs of `pkg/ottl/grammar.go` (contrib v0.149.0) as a recursive
//! descent parser over [`lexer`](super::lexer) tokens.
//!
//! participle (built with `MaxLookahead`) behaves as a PEG: alternatives are tried in order and the
//! first that matches wins, repetitions and optional parts are greedy and never revisited, and a
//! sequence that has started must complete. This parser keeps exactly those rules — `attributes[1 + 2]`
//! does not parse, since the key's `Int` alternative matches `1` and the `]` is then missing — and adds
//! two bounds Go lacks: nesting deeper than [`MAX_DEPTH`] and more than [`MAX_STEPS`] parse steps
//! (inputs that take participle exponential time) are refused instead of exhausting the stack or the
//! CPU.

use super::lexer::{self, Kind, Token};
use super::OttlError;

/// Deepest nesting of parentheses, calls, lists, maps and keys accepted.
pub const MAX_DEPTH: usize = 100;
/// Most parse steps one text may take.
pub const MAX_STEPS: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug)]
pub struct Call<'a> {
    pub name: String,
    pub offset: usize,
    pub args: Vec<Argument<'a>>,
    pub keys: Vec<Key<'a>>,
}

#[derive(Debug)]
pub struct Argument<'a> {
    pub name: Option<String>,
    pub value: ArgValue<'a>,
}

#[derive(Debug)]
pub enum ArgValue<'a> {
    Value(Value<'a>),
    /// A bare converter name such as `SHA256`-like `Sha256` (for function-typed parameters).
    FunctionName(String),
}

#[derive(Debug)]
pub enum Value<'a> {
    Nil,
    Literal(Literal<'a>),
    Math(MathExpr<'a>),
    Bytes(Vec<u8>),
    String(String),
    Bool(bool),
    Enum(&'a str),
    Map(Vec<(String, Value<'a>)>),
    List(Vec<Value<'a>>),
}

#[derive(Debug)]
pub enum Literal<'a> {
    Editor(Call<'a>),
    Converter(Call<'a>),
    Float(f64),
    Int(i64),
    Path(Path<'a>),
}

#[derive(Debug)]
pub struct Path<'a> {
    pub context: Option<&'a str>,
    pub fields: Vec<Field<'a>>,
    pub offset: usize,
}

#[derive(Debug)]
pub struct Field<'a> {
    pub name: &'a str,
    pub keys: Vec<Key<'a>>,
}

#[derive(Debug)]
pub enum Key<'a> {
    String,
    Int,
    Math(MathExpr<'a>),
}

#[derive(Debug)]
pub struct MathExpr<'a> {
    pub terms: Vec<(MathOp, MathTerm<'a>)>,
}

#[derive(Debug)]
pub struct MathTerm<'a> {
    pub values: Vec<(MathOp, MathValue<'a>)>,
}

#[derive(Debug)]
pub struct MathValue<'a> {
    pub unary: Option<MathOp>,
    pub kind: MathValueKind<'a>,
}

#[derive(Debug)]
pub enum MathValueKind<'a> {
    Literal(Literal<'a>),
    Sub(MathExpr<'a>),
}

/// `or`-joined terms of `and`-joined values.
#[derive(Debug)]
pub struct BoolExpr<'a> {
    pub terms: Vec<Vec<BoolValue<'a>>>,
}

#[derive(Debug)]
pub struct BoolValue<'a> {
    pub kind: BoolKind<'a>,
}

#[derive(Debug)]
pub enum BoolKind<'a> {
    Comparison(Value<'a>, Value<'a>),
    Const,
    Converter(Call<'a>),
    Sub(BoolExpr<'a>),
}

#[derive(Debug)]
pub struct Statement<'a> {
    pub call: Call<'a>,
    pub condition: Option<BoolExpr<'a>>,
}

/// A failed parse step; the furthest one is reported.
struct Failure;

type Parsed<T> = Result<T, Failure>;

struct Parser<'t, 'a> {
    input: &'a str,
    tokens: &'t [Token<'a>],
    position: usize,
    depth: usize,
    steps: usize,
    /// The furthest token a parse step failed at, and what it expected there.
    furthest: usize,
    expected: &'static str,
    /// Set when a bound was hit: the parse is refused whatever happens after.
    limit: Option<&'static str>,
}

impl<'t, 'a> Parser<'t, 'a> {
    fn peek(&self) -> &'t Token<'a> {
        &self.tokens[self.position]
    }

    fn peek_at(&self, ahead: usize) -> &'t Token<'a> {
        &self.tokens[(self.position + ahead).min(self.tokens.len() - 1)]
    }

    /// Fails a parse step; `expected` says what would have continued the text there (empty for an
    /// optional continuation, which is not worth reporting).
    fn fail<T>(&mut self, expected: &'static str) -> Parsed<T> {
        if expected.is_empty() {
            return Err(Failure);
        }
        if self.position > self.furthest || (self.position == self.furthest && self.expected.is_empty()) {
            self.furthest = self.position;
            self.expected = expected;
        }
        Err(Failure)
    }

    fn step(&mut self) -> Parsed<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.limit.get_or_insert("the text is too complex to check");
            return Err(Failure);
        }
        Ok(())
    }

    fn enter(&mut self) -> Parsed<()> {
        self.step()?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.limit.get_or_insert("the text nests too deeply");
            self.depth -= 1;
            return Err(Failure);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Runs `rule`, restoring the position when it fails.
    fn attempt<T>(&mut self, rule: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        let start = self.position;
        if self.limit.is_some() {
            return Err(Failure);
        }
        let result = rule(self);
        if result.is_err() {
            self.position = start;
        }
        result
    }

    fn accept(&mut self, kind: Kind) -> Option<&'t Token<'a>> {
        let token = self.peek();
        if token.kind == kind {
            self.position += 1;
            Some(token)
        } else {
            None
        }
    }

    fn expect(&mut self, kind: Kind, expected: &'static str) -> Parsed<&'t Token<'a>> {
        match self.accept(kind) {
            Some(token) => Ok(token),
            None => self.fail(expected),
        }
    }

    /// Matches a punctuation or keyword literal of the grammar (`'('`, `','`, `'where'`, …). participle
    /// compares such literals with a token's value whatever its type, and a string token's value is
    /// its unquoted text: `"("` closes nothing but opens an argument list as well as `(` does.
    fn accept_text(&mut self, text: &str) -> bool {
        let token = self.peek();
        let value = if token.kind == Kind::String {
            token.unquoted.as_deref().unwrap_or(token.text)
        } else {
            token.text
        };
        if value == text {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect_text(&mut self, text: &'static str, expected: &'static str) -> Parsed<()> {
        if self.accept_text(text) {
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    /// `first (Uppercase | Lowercase)*`, joined (whitespace between the parts is dropped upstream too).
    fn name(&mut self, first: Kind) -> Option<(String, usize)> {
        let start = self.accept(first)?;
        let mut name = start.text.to_owned();
        while matches!(self.peek().kind, Kind::Uppercase | Kind::Lowercase) {
            name.push_str(self.peek().text);
            self.position += 1;
        }
        Some((name, start.offset))
    }

    fn boolean_expression(&mut self) -> Parsed<BoolExpr<'a>> {
        self.enter()?;
        let result = self.boolean_expression_inner();
        self.leave();
        result
    }

    fn boolean_expression_inner(&mut self) -> Parsed<BoolExpr<'a>> {
        let mut terms = vec![self.term()?];
        loop {
            let next = self.attempt(|parser| {
                parser.expect(Kind::OpOr, "")?;
                parser.term()
            });
            match next {
                Ok(term) => terms.push(term),
                Err(Failure) => break,
            }
        }
        Ok(BoolExpr { terms })
    }

    fn term(&mut self) -> Parsed<Vec<BoolValue<'a>>> {
        let mut values = vec![self.boolean_value()?];
        loop {
            let next = self.attempt(|parser| {
                parser.expect(Kind::OpAnd, "")?;
                parser.boolean_value()
            });
            match next {
                Ok(value) => values.push(value),
                Err(Failure) => break,
            }
        }
        Ok(values)
    }

    fn boolean_value(&mut self) -> Parsed<BoolValue<'a>> {
        self.step()?;
        self.accept(Kind::OpNot);
        if let Ok((left, right)) = self.attempt(|parser| {
            let left = parser.value()?;
            parser.expect(Kind::OpComparison, "a comparison operator")?;
            let right = parser.value()?;
            Ok((left, right))
        }) {
            return Ok(BoolValue { kind: BoolKind::Comparison(left, right) });
        }
        if self.accept(Kind::Boolean).is_some() {
            return Ok(BoolValue { kind: BoolKind::Const });
        }
        if let Ok(call) = self.attempt(|parser| parser.call(Kind::Uppercase)) {
            return Ok(BoolValue { kind: BoolKind::Converter(call) });
        }
        let sub = self.attempt(|parser| {
            parser.expect_text("(", "a value")?;
            let expression = parser.boolean_expression()?;
            parser.expect_text(")", "\")\"")?;
            Ok(expression)
        })?;
        Ok(BoolValue { kind: BoolKind::Sub(sub) })
    }

    /// An editor (`first` lower-case) or converter (`first` upper-case) call with its keys.
    fn call(&mut self, first: Kind) -> Parsed<Call<'a>> {
        let Some((name, offset)) = self.name(first) else {
            return self.fail("a value");
        };
        self.expect_text("(", "\"(\"")?;
        self.enter()?;
        let args = self.arguments();
        self.leave();
        let args = args?;
        self.expect_text(")", "\")\" or \",\"")?;
        let keys = self.keys()?;
        Ok(Call { name, offset, args, keys })
    }

    fn arguments(&mut self) -> Parsed<Vec<Argument<'a>>> {
        let mut args = Vec::new();
        match self.attempt(Self::argument) {
            Ok(first) => args.push(first),
            Err(Failure) => return Ok(args),
        }
        loop {
            let next = self.attempt(|parser| {
                parser.expect_text(",", "\",\"")?;
                parser.argument()
            });
            match next {
                Ok(argument) => args.push(argument),
                Err(Failure) => return Ok(args),
            }
        }
    }

    fn argument(&mut self) -> Parsed<Argument<'a>> {
        self.step()?;
        let name = self
            .attempt(|parser| {
                let Some((name, _)) = parser.name(Kind::Lowercase) else {
                    return parser.fail("a value");
                };
                parser.expect(Kind::Equal, "\"=\"")?;
                Ok(name)
            })
            .ok();
        if let Ok(value) = self.attempt(Self::value) {
            return Ok(Argument { name, value: ArgValue::Value(value) });
        }
        match self.name(Kind::Uppercase) {
            Some((function, _)) => Ok(Argument { name, value: ArgValue::FunctionName(function) }),
            None => self.fail("a value"),
        }
    }

    fn keys(&mut self) -> Parsed<Vec<Key<'a>>> {
        let mut keys = Vec::new();
        while let Ok(key) = self.attempt(Self::key) {
            keys.push(key);
        }
        Ok(keys)
    }

    fn key(&mut self) -> Parsed<Key<'a>> {
        self.expect_text("[", "")?;
        let key = if self.accept(Kind::String).is_some() {
            Key::String
        } else if self.peek().kind == Kind::Int {
            let token = self.peek();
            match parse_go_int(token.text) {
                Some(_) => {
                    self.position += 1;
                    Key::Int
                }
                None => return self.fail("an integer that fits 64 bits"),
            }
        } else {
            // The grammar's last alternative (a bare math literal) matches only where this one does.
            self.enter()?;
            let math = self.math_expression();
            self.leave();
            Key::Math(math?)
        };
        self.expect_text("]", "\"]\"")?;
        Ok(key)
    }

    fn value(&mut self) -> Parsed<Value<'a>> {
        self.enter()?;
        let result = self.value_inner();
        self.leave();
        result
    }

    fn value_inner(&mut self) -> Parsed<Value<'a>> {
        if self.accept(Kind::Nil).is_some() {
            return Ok(Value::Nil);
        }
        if let Ok(literal) = self.attempt(|parser| {
            let literal = parser.math_literal()?;
            if matches!(parser.peek().kind, Kind::OpAddSub | Kind::OpMultDiv) {
                return parser.fail("");
            }
            Ok(literal)
        }) {
            return Ok(Value::Literal(literal));
        }
        if let Ok(math) = self.attempt(Self::math_expression) {
            return Ok(Value::Math(math));
        }
        let token = self.peek();
        match token.kind {
            Kind::Bytes => {
                let hex = &token.text[2..];
                if !hex.len().is_multiple_of(2) {
                    return self.fail("a byte literal with an even number of hex digits");
                }
                self.position += 1;
                let bytes = (0..hex.len())
                    .step_by(2)
                    .map(|index| u8::from_str_radix(&hex[index..index + 2], 16).unwrap_or(0))
                    .collect();
                return Ok(Value::Bytes(bytes));
            }
            Kind::String => {
                self.position += 1;
                return Ok(Value::String(token.unquoted.clone().unwrap_or_default()));
            }
            Kind::Boolean => {
                self.position += 1;
                return Ok(Value::Bool(token.text == "true"));
            }
            Kind::Uppercase if self.peek_at(1).kind != Kind::Lowercase => {
                self.position += 1;
                return Ok(Value::Enum(token.text));
            }
            _ => {}
        }
        if let Ok(map) = self.attempt(Self::map) {
            return Ok(Value::Map(map));
        }
        self.attempt(Self::list).map(Value::List)
    }

    fn map(&mut self) -> Parsed<Vec<(String, Value<'a>)>> {
        self.expect_text("{", "a value")?;
        let mut items = Vec::new();
        loop {
            let item = self.attempt(|parser| {
                let key = parser.expect(Kind::String, "a string map key or \"}\"")?;
                parser.expect_text(":", "\":\"")?;
                let value = parser.value()?;
                Ok((key.unquoted.clone().unwrap_or_default(), value))
            });
            match item {
                Ok(item) => {
                    items.push(item);
                    self.accept_text(",");
                }
                Err(Failure) => break,
            }
        }
        self.expect_text("}", "\"}\"")?;
        Ok(items)
    }

    fn list(&mut self) -> Parsed<Vec<Value<'a>>> {
        self.expect_text("[", "a value")?;
        let mut values = Vec::new();
        while let Ok(value) = self.attempt(Self::value) {
            values.push(value);
        }
        while let Ok(value) = self.attempt(|parser| {
            parser.expect_text(",", "\",\"")?;
            parser.value()
        }) {
            values.push(value);
        }
        self.expect_text("]", "\"]\"")?;
        Ok(values)
    }

    fn math_literal(&mut self) -> Parsed<Literal<'a>> {
        self.step()?;
        if let Ok(call) = self.attempt(|parser| parser.call(Kind::Lowercase)) {
            return Ok(Literal::Editor(call));
        }
        if let Ok(call) = self.attempt(|parser| parser.call(Kind::Uppercase)) {
            return Ok(Literal::Converter(call));
        }
        let token = self.peek();
        match token.kind {
            Kind::Float => {
                return match parse_go_float(token.text) {
                    Some(value) => {
                        self.position += 1;
                        Ok(Literal::Float(value))
                    }
                    None => self.fail("a float that fits 64 bits"),
                };
            }
            Kind::Int => {
                return match parse_go_int(token.text) {
                    Some(value) => {
                        self.position += 1;
                        Ok(Literal::Int(value))
                    }
                    None => self.fail("an integer that fits 64 bits"),
                };
            }
            _ => {}
        }
        self.attempt(Self::path).map(Literal::Path)
    }

    fn path(&mut self) -> Parsed<Path<'a>> {
        let offset = self.peek().offset;
        let context = self
            .attempt(|parser| {
                let name = parser.expect(Kind::Lowercase, "a value")?;
                parser.expect_text(".", "")?;
                Ok(name.text)
            })
            .ok();
        let mut fields = vec![self.field()?];
        while let Ok(field) = self.attempt(|parser| {
            parser.expect_text(".", "")?;
            parser.field()
        }) {
            fields.push(field);
        }
        Ok(Path { context, fields, offset })
    }

    fn field(&mut self) -> Parsed<Field<'a>> {
        let name = self.expect(Kind::Lowercase, "a path")?.text;
        self.enter()?;
        let keys = self.keys();
        self.leave();
        Ok(Field { name, keys: keys? })
    }

    fn math_expression(&mut self) -> Parsed<MathExpr<'a>> {
        let mut terms = vec![(MathOp::Add, self.math_term()?)];
        while let Ok(term) = self.attempt(|parser| {
            let op = parser.expect(Kind::OpAddSub, "\"+\" or \"-\"")?;
            let term = parser.math_term()?;
            Ok((if op.text == "+" { MathOp::Add } else { MathOp::Sub }, term))
        }) {
            terms.push(term);
        }
        Ok(MathExpr { terms })
    }

    fn math_term(&mut self) -> Parsed<MathTerm<'a>> {
        let mut values = vec![(MathOp::Mul, self.math_value()?)];
        while let Ok(value) = self.attempt(|parser| {
            let op = parser.expect(Kind::OpMultDiv, "\"*\" or \"/\"")?;
            let value = parser.math_value()?;
            Ok((if op.text == "*" { MathOp::Mul } else { MathOp::Div }, value))
        }) {
            values.push(value);
        }
        Ok(MathTerm { values })
    }

    fn math_value(&mut self) -> Parsed<MathValue<'a>> {
        self.enter()?;
        let result = self.math_value_inner();
        self.leave();
        result
    }

    fn math_value_inner(&mut self) -> Parsed<MathValue<'a>> {
        let unary =
            self.accept(Kind::OpAddSub).map(|op| if op.text == "+" { MathOp::Add } else { MathOp::Sub });
        if let Ok(literal) = self.attempt(Self::math_literal) {
            return Ok(MathValue { unary, kind: MathValueKind::Literal(literal) });
        }
        self.expect_text("(", "a value")?;
        let sub = self.math_expression()?;
        self.expect_text(")", "\")\"")?;
        Ok(MathValue { unary, kind: MathValueKind::Sub(sub) })
    }

    fn statement(&mut self) -> Result<Statement<'a>, OttlError> {
        let call = match self.attempt(|parser| parser.call(Kind::Lowercase)) {
            Ok(call) => call,
            Err(Failure) => match self.attempt(|parser| parser.call(Kind::Uppercase)) {
                Ok(call) => {
                    return Err(OttlError::new(format!(
                        "a statement must call an editor (a lower-case function such as set), not the converter {}",
                        call.name
                    )))
                }
                Err(Failure) if self.furthest == 0 && self.limit.is_none() => {
                    return Err(OttlError::new("a statement must start with an editor call such as set(…)".to_owned()))
                }
                Err(Failure) => return Err(self.error()),
            },
        };
        let condition = self
            .attempt(|parser| {
                parser.expect_text("where", "")?;
                parser.boolean_expression()
            })
            .ok();
        self.finish()?;
        Ok(Statement { call, condition })
    }

    fn condition(&mut self) -> Result<BoolExpr<'a>, OttlError> {
        let expression = self
            .boolean_expression()
            .map_err(|Failure| self.editor_error().unwrap_or_else(|| self.error()))?;
        self.finish()?;
        Ok(expression)
    }

    /// A condition that starts with an editor call (`set(…)`): say so rather than where parsing stopped.
    fn editor_error(&self) -> Option<OttlError> {
        let (first, second) = (&self.tokens[0], self.tokens.get(1)?);
        (self.limit.is_none() && first.kind == Kind::Lowercase && second.text == "(").then(|| {
            OttlError::new(format!(
                "{} is an editor (a statement); a condition can only call converters (upper-case names)",
                first.text
            ))
        })
    }

    fn finish(&mut self) -> Result<(), OttlError> {
        if self.peek().kind == Kind::Eof {
            Ok(())
        } else {
            if self.position >= self.furthest {
                self.furthest = self.position;
                self.expected = "the end of the text";
            }
            Err(self.error())
        }
    }

    fn error(&self) -> OttlError {
        if let Some(limit) = self.limit {
            return OttlError::new(limit.to_owned());
        }
        let token = &self.tokens[self.furthest.min(self.tokens.len() - 1)];
        let found =
            if token.kind == Kind::Eof { "end of text".to_owned() } else { format!("{:?}", token.text) };
        let place = lexer::place(self.input, token.offset);
        let expected = if self.expected.is_empty() { "something else" } else { self.expected };
        OttlError::new(format!("unexpected {found} at {place}: expected {expected}"))
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)` on a run of decimal digits: a leading `0` means octal.
pub fn parse_go_int(text: &str) -> Option<i64> {
    if text.len() > 1 && text.starts_with('0') {
        i64::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// Go's `strconv.ParseFloat(text, 64)` on a `Float` token: out of range is an error.
pub fn parse_go_float(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn parser<'t, 'a>(input: &'a str, tokens: &'t [Token<'a>]) -> Parser<'t, 'a> {
    Parser { input, tokens, position: 0, depth: 0, steps: 0, furthest: 0, expected: "", limit: None }
}

pub fn parse_condition<'a>(input: &'a str, tokens: &[Token<'a>]) -> Result<BoolExpr<'a>, OttlError> {
    parser(input, tokens).condition()
}

pub fn parse_statement<'a>(input: &'a str, tokens: &[Token<'a>]) -> Result<Statement<'a>, OttlError> {
    parser(input, tokens).statement()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(text: &str) -> Result<(), OttlError> {
        let tokens = lexer::lex(text)?;
        parse_condition(text, &tokens).map(|_| ())
    }

    #[test]
    fn keys_do_not_backtrack_from_the_int_alternative() {
        assert!(condition(r#"attributes["a"] == 1"#).is_ok());
        assert!(condition("attributes[-1] == 1").is_ok());
        assert!(condition("attributes[1 + 2] == 1").is_err());
    }

    #[test]
    fn literals_followed_by_math_are_math() {
        assert!(condition("attributes[\"a\"] + 1 > 2").is_ok());
        assert!(condition("1 + 2 * 3 == 7").is_ok());
    }

    #[test]
    fn string_tokens_match_punctuation_by_their_value() {
        // participle matches `'('` by value, and a string's value is unquoted.
        assert!(condition(r#"(5")">1"#).is_ok());
        assert!(condition(r#"resource"."attributes["a"] == 1"#).is_ok());
        let text = r#"set(attributes["a"], 1) "where" true"#;
        let tokens = lexer::lex(text).expect("lexes");
        assert!(parse_statement(text, &tokens).is_ok());
    }

    #[test]
    fn int_literals_are_parsed_as_go_base_zero() {
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("09"), None);
        assert!(condition("09 == 1").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "(".repeat(100_000);
        let error = condition(&text).expect_err("refused");
        assert!(error.message.contains("too deeply") || error.message.contains("complex"), "{error}");
        let text = format!("{}true{}", "(".repeat(5_000), ")".repeat(5_000));
        assert!(condition(&text).is_err());
    }

    #[test]
    fn errors_say_where() {
        let error = condition("severity_number => 17").expect_err("refused");
        assert!(error.message.contains("column"), "{error}");
    }
}
