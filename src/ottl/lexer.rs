//! The OTTL lexer: the token rules of `buildLexer` in `pkg/ottl/grammar.go` (contrib v0.149.0), tried in
//! order at each position with the first matching rule winning (participle's simple lexer), whitespace
//! dropped, and string literals unquoted with Go's `strconv.UnquoteChar` rules (participle's `Unquote`),
//! so an invalid escape anywhere in the text refuses the whole text, as it does upstream.

use super::OttlError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bytes,
    Float,
    Int,
    String,
    Nil,
    OpNot,
    OpOr,
    OpAnd,
    OpComparison,
    OpAddSub,
    OpMultDiv,
    Boolean,
    Equal,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Colon,
    Punct,
    Uppercase,
    Lowercase,
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token<'a> {
    pub kind: Kind,
    /// The token's text as written (for a string, with its quotes).
    pub text: &'a str,
    /// Byte offset of the token in the input.
    pub offset: usize,
    /// The unquoted value of a string token.
    pub unquoted: Option<String>,
}

/// One-based column of a byte offset, as participle reports positions (in characters of its line).
pub fn column(input: &str, offset: usize) -> (usize, usize) {
    let before = &input[..offset.min(input.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|index| index + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// `\b(word)\b` at the start of `rest`.
fn keyword(rest: &[u8], word: &str) -> bool {
    rest.starts_with(word.as_bytes()) && rest.get(word.len()).is_none_or(|&next| !is_word(next))
}

fn digits(rest: &[u8]) -> usize {
    rest.iter().take_while(|byte| byte.is_ascii_digit()).count()
}

/// Length of a `Float` match (`(\d+\.\d*|\d*\.\d+)([eE][-+]?\d+)?`) at the start of `rest`.
fn float_len(rest: &[u8]) -> Option<usize> {
    let int_part = digits(rest);
    let mantissa = if rest.get(int_part) == Some(&b'.') && (int_part > 0 || digits(&rest[int_part + 1..]) > 0)
    {
        int_part + 1 + digits(&rest[int_part + 1..])
    } else {
        return None;
    };
    let mut length = mantissa;
    if matches!(rest.get(length), Some(b'e' | b'E')) {
        let mut exponent = length + 1;
        if matches!(rest.get(exponent), Some(b'+' | b'-')) {
            exponent += 1;
        }
        let exponent_digits = digits(&rest[exponent.min(rest.len())..]);
        if exponent_digits > 0 {
            length = exponent + exponent_digits;
        }
    }
    Some(length)
}

/// Length of a `String` match (`"(\\.|[^\\"])*"`; `.` is any character but a newline).
fn string_len(text: &str) -> Option<usize> {
    let mut chars = text.char_indices().skip(1);
    while let Some((index, character)) = chars.next() {
        match character {
            '"' => return Some(index + 1),
            '\\' => match chars.next() {
                Some((_, '\n')) | None => return None,
                Some(_) => {}
            },
            _ => {}
        }
    }
    None
}

/// Go's `strconv.UnquoteChar` loop over a double-quoted literal's body.
pub fn unquote(body: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(character) = chars.next() {
        if character == '"' {
            return Err("unescaped quote");
        }
        if character != '\\' {
            out.push(character);
            continue;
        }
        let escape = chars.next().ok_or("trailing backslash")?;
        let simple = match escape {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(value) = simple {
            out.push(value);
            continue;
        }
        let hex_digits = match escape {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            '0'..='7' => {
                let mut value = escape.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let digit = chars.next().and_then(|c| c.to_digit(8)).ok_or("invalid octal escape")?;
                    value = value * 8 + digit;
                }
                if value > 255 {
                    return Err("octal escape above \\377");
                }
                out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                continue;
            }
            _ => return Err("invalid escape"),
        };
        let mut value: u32 = 0;
        for _ in 0..hex_digits {
            let digit = chars.next().and_then(|c| c.to_digit(16)).ok_or("invalid hex escape")?;
            value = value * 16 + digit;
        }
        if escape == 'x' {
            out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
        } else {
            out.push(char::from_u32(value).ok_or("escape is not a valid Unicode code point")?);
        }
    }
    Ok(out)
}

/// Splits `input` into tokens (whitespace dropped), ending with an `Eof` token.
pub fn lex(input: &str) -> Result<Vec<Token<'_>>, OttlError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::with_capacity(input.len() / 3 + 2);
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let first = rest[0];
        let mut unquoted = None;
        let (kind, length) = if rest.starts_with(b"0x") && rest.get(2).is_some_and(u8::is_ascii_hexdigit) {
            (Kind::Bytes, 2 + rest[2..].iter().take_while(|b| b.is_ascii_hexdigit()).count())
        } else if let Some(length) = float_len(rest) {
            (Kind::Float, length)
        } else if first.is_ascii_digit() {
            (Kind::Int, digits(rest))
        } else if first == b'"' {
            let Some(length) = string_len(&input[offset..]) else {
                return Err(lexer_error(input, offset));
            };
            let text = &input[offset..offset + length];
            match unquote(&text[1..text.len() - 1]) {
                Ok(value) => unquoted = Some(value),
                Err(reason) => {
                    return Err(OttlError::new(format!(
                        "invalid string {text} at {}: {reason} (OTTL strings take Go's escapes)",
                        place(input, offset)
                    )));
                }
            }
            (Kind::String, length)
        } else if keyword(rest, "nil") {
            (Kind::Nil, 3)
        } else if keyword(rest, "not") {
            (Kind::OpNot, 3)
        } else if keyword(rest, "or") {
            (Kind::OpOr, 2)
        } else if keyword(rest, "and") {
            (Kind::OpAnd, 3)
        } else if rest.starts_with(b"==")
            || rest.starts_with(b"!=")
            || rest.starts_with(b">=")
            || rest.starts_with(b"<=")
        {
            (Kind::OpComparison, 2)
        } else if first == b'>' || first == b'<' {
            (Kind::OpComparison, 1)
        } else if first == b'+' || first == b'-' {
            (Kind::OpAddSub, 1)
        } else if first == b'/' || first == b'*' {
            (Kind::OpMultDiv, 1)
        } else if keyword(rest, "true") {
            (Kind::Boolean, 4)
        } else if keyword(rest, "false") {
            (Kind::Boolean, 5)
        } else {
            match first {
                b'=' => (Kind::Equal, 1),
                b'(' => (Kind::LParen, 1),
                b')' => (Kind::RParen, 1),
                b'{' => (Kind::LBrace, 1),
                b'}' => (Kind::RBrace, 1),
                b':' => (Kind::Colon, 1),
                b',' | b'.' | b'[' | b']' => (Kind::Punct, 1),
                b'A'..=b'Z' => (
                    Kind::Uppercase,
                    1 + rest[1..]
                        .iter()
                        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
                        .count(),
                ),
                b'a'..=b'z' => (
                    Kind::Lowercase,
                    1 + rest[1..]
                        .iter()
                        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
                        .count(),
                ),
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                    offset += rest
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
                        .count();
                    continue;
                }
                _ => return Err(lexer_error(input, offset)),
            }
        };
        tokens.push(Token { kind, text: &input[offset..offset + length], offset, unquoted });
        offset += length;
    }
    tokens.push(Token { kind: Kind::Eof, text: "", offset: input.len(), unquoted: None });
    Ok(tokens)
}

fn lexer_error(input: &str, offset: usize) -> OttlError {
    let sample: String = input[offset..].chars().take(16).collect();
    OttlError::new(format!("invalid text {sample:?} at {}", place(input, offset)))
}

/// `column N`, or `line L, column N` in a text of several lines.
pub fn place(input: &str, offset: usize) -> String {
    let (line, col) = column(input, offset);
    if input.contains('\n') {
        format!("line {line}, column {col}")
    } else {
        format!("column {col}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Kind> {
        lex(input).expect("lexes").into_iter().map(|token| token.kind).collect()
    }

    #[test]
    fn keywords_need_a_word_boundary_after_them_only() {
        assert_eq!(kinds("nil"), [Kind::Nil, Kind::Eof]);
        assert_eq!(kinds("nilx"), [Kind::Lowercase, Kind::Eof]);
        // After an upper-case token, `not` still starts at a boundary of the remaining text.
        assert_eq!(kinds("Anot"), [Kind::Uppercase, Kind::OpNot, Kind::Eof]);
        assert_eq!(
            kinds("IsMatch"),
            [Kind::Uppercase, Kind::Lowercase, Kind::Uppercase, Kind::Lowercase, Kind::Eof]
        );
    }

    #[test]
    fn numbers_bytes_and_floats() {
        assert_eq!(kinds("0x0a"), [Kind::Bytes, Kind::Eof]);
        assert_eq!(kinds("0x"), [Kind::Int, Kind::Lowercase, Kind::Eof]);
        assert_eq!(kinds("1."), [Kind::Float, Kind::Eof]);
        assert_eq!(kinds(".5e3"), [Kind::Float, Kind::Eof]);
        assert_eq!(kinds("1e5"), [Kind::Int, Kind::Lowercase, Kind::Eof]);
    }

    #[test]
    fn strings_take_go_escapes() {
        assert!(lex(r#""\/""#).is_err());
        assert!(lex(r#""\q""#).is_err());
        assert!(lex(r#""\'""#).is_err());
        assert!(lex(r#""\ud800""#).is_err());
        assert_eq!(lex(r#""\x41\u00e9\101""#).expect("lexes")[0].unquoted.as_deref(), Some("Aé\u{41}"));
        assert!(lex("\"a\nb\"").is_ok());
        assert!(lex("'single'").is_err());
        assert!(lex("\"unterminated").is_err());
    }
}
