//! XPath 1.0 as `github.com/antchfx/xpath` **v1.3.6** compiles it: whether `xpath.Compile` accepts an
//! expression, the check `validateXPath` in contrib v0.149.0's `pkg/ottl/ottlfuncs/func_remove_xml.go`
//! makes on the literal XPath of `GetXML`, `InsertXML`, `RemoveXML`, `ConvertAttributesToElementsXML`
//! and `ConvertTextToElementsXML` when a config loads. Nothing is evaluated.
//!
//! The rules follow that version's lexer, parser and build step, including where they are lax:
//!
//! - The parser reads one expression and ignores what follows it (`a)`, `a b` and `/ ]` compile),
//!   but the token after the last one it used is still scanned, so `a #` does not.
//! - Names are XML 1.0 names plus `*` inside a name (`a*b` is one name); a prefix (`p:a`) is allowed
//!   and ignored by function lookup (`fn:count(a)` is `count`).
//! - Functions are checked when the expression is built: unknown names and wrong argument counts are
//!   refused, but only the arguments a function uses are built (`true(foo())` compiles, while
//!   `lower-case()` does not). `matches` compiles a literal pattern with Go's `regexp`.
//! - A variable (`$v`) or the `namespace` axis builds to nothing: refused on its own, as a predicate or
//!   as the input of a predicate, accepted inside an operator or a path (`$v + 1`, `$v/a`).
//! - Scanner quirks kept: any Unicode decimal digit starts a number, and one that is not ASCII
//!   makes it unparsable; a NUL ends the expression; a multi-byte character after a name adds its
//!   leading bytes to the name (`count\u{a0}(a)` calls no known function).
//! - The ottlfuncs factories: an empty XPath is refused, except for the optional one of the two
//!   conversions, which stands for a valid default (checked in `functions`).
//! - Depth: more than 200 nested expressions (parentheses, predicates, arguments) is refused while
//!   parsing, more than 1024 nested nodes while building; long flat chains (`a/b/c/…`, `1+1+…`) count.
//!
//! The parser here recurses only through the nesting the 200 limit allows, step sequences
//! (`a/((b, c))`) are read with an explicit stack, the build walks an explicit stack, and the tree is
//! a flat arena, so no input overflows the stack.

use super::re2;

/// Deeper nesting than this is refused by the parser (`parseExpression`).
const MAX_PARSE_DEPTH: usize = 200;
/// Deeper node nesting than this is refused by the build step (`processNode`).
const MAX_BUILD_DEPTH: usize = 1024;

/// Whether antchfx/xpath v1.3.6's `Compile` accepts `expression`; the error says why not.
pub fn check_xpath(expression: &str) -> Result<(), String> {
    if expression.is_empty() {
        return Err("the expression is empty".to_owned());
    }
    let mut parser = Parser { lexer: Lexer::new(expression)?, nodes: Vec::new(), depth: 0 };
    let root = parser.expression()?;
    match build(&parser.nodes, root)? {
        Built::Nothing => Err("the expression builds to nothing (an undeclared variable)".to_owned()),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Comma,
    Slash,
    SlashSlash,
    At,
    Dot,
    DotDot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Star,
    Plus,
    Minus,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Bang,
    Dollar,
    Union,
    /// A name, `prefix:name` or `prefix:*`; `callable` when `(` follows (after spaces).
    Name {
        prefix: Option<Vec<u8>>,
        local: Vec<u8>,
        callable: bool,
    },
    /// `axis::`.
    Axis(Vec<u8>),
    Str(String),
    Number,
    End,
}

/// The scanner: one character of lookahead, tokens produced on demand, as upstream does, so an
/// invalid character after the end of the expression is seen only if its token is read.
struct Lexer<'a> {
    text: &'a str,
    /// Byte offset after `current`.
    pos: usize,
    /// The current character; `'\0'` at the end (and for a NUL in the text, which ends it).
    current: char,
    current_len: usize,
    /// The text is used up (`current` is not a NUL in it).
    ended: bool,
    token: Token,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Result<Self, String> {
        let mut lexer =
            Lexer { text, pos: 0, current: '\0', current_len: 1, ended: false, token: Token::End };
        lexer.next_char();
        lexer.advance()?;
        Ok(lexer)
    }

    fn next_char(&mut self) -> bool {
        match self.text[self.pos..].chars().next() {
            Some(c) => {
                self.current = c;
                self.current_len = c.len_utf8();
                self.pos += self.current_len;
                true
            }
            None => {
                self.current = '\0';
                self.current_len = 1;
                self.ended = true;
                false
            }
        }
    }

    fn skip_space(&mut self) {
        while self.current.is_whitespace() && self.next_char() {}
    }

    /// Reads the next token into `self.token`.
    fn advance(&mut self) -> Result<(), String> {
        self.skip_space();
        let single = match self.current {
            '\0' => Some(Token::End),
            ',' => Some(Token::Comma),
            '@' => Some(Token::At),
            '(' => Some(Token::LParen),
            ')' => Some(Token::RParen),
            '|' => Some(Token::Union),
            '*' => Some(Token::Star),
            '[' => Some(Token::LBracket),
            ']' => Some(Token::RBracket),
            '+' => Some(Token::Plus),
            '-' => Some(Token::Minus),
            '=' => Some(Token::Eq),
            '$' => Some(Token::Dollar),
            '#' => return Err("unknown token '#'".to_owned()),
            _ => None,
        };
        if let Some(token) = single {
            if token != Token::End {
                self.next_char();
            }
            self.token = token;
            return Ok(());
        }
        self.token = match self.current {
            '<' => self.maybe_followed('=', Token::Lt, Token::Le),
            '>' => self.maybe_followed('=', Token::Gt, Token::Ge),
            '!' => self.maybe_followed('=', Token::Bang, Token::Ne),
            '/' => self.maybe_followed('/', Token::Slash, Token::SlashSlash),
            '.' => {
                self.next_char();
                if self.current == '.' {
                    self.next_char();
                    Token::DotDot
                } else if is_go_digit(self.current) {
                    let start = self.pos - self.current_len - 1;
                    self.skip_digits();
                    self.number(start)?
                } else {
                    Token::Dot
                }
            }
            quote @ ('"' | '\'') => self.string(quote)?,
            c if is_go_digit(c) => {
                let start = self.pos - self.current_len;
                self.skip_digits();
                if self.current == '.' {
                    self.next_char();
                    self.skip_digits();
                }
                self.number(start)?
            }
            c if is_name_char(c) => self.name()?,
            c => return Err(format!("invalid character {c:?}")),
        };
        Ok(())
    }

    fn maybe_followed(&mut self, second: char, alone: Token, pair: Token) -> Token {
        self.next_char();
        if self.current == second {
            self.next_char();
            pair
        } else {
            alone
        }
    }

    fn skip_digits(&mut self) {
        while is_go_digit(self.current) {
            self.next_char();
        }
    }

    /// A number from `start` to the current character; Go's `ParseFloat` refuses one that overflows.
    /// Upstream scans any decimal digit but slices the text by a character count, so a number with a
    /// non-ASCII digit never parses.
    fn number(&self, start: usize) -> Result<Token, String> {
        let end = if self.ended { self.text.len() } else { self.pos - self.current_len };
        let digits = &self.text[start..end];
        if !digits.is_ascii() {
            return Err(format!("the number {digits} has a digit Go cannot parse"));
        }
        match digits.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Token::Number),
            _ => Err(format!("the number {digits} is out of range")),
        }
    }

    fn string(&mut self, quote: char) -> Result<Token, String> {
        let start = self.pos;
        loop {
            if !self.next_char() {
                return Err("unclosed string".to_owned());
            }
            if self.current == quote {
                let value = self.text[start..self.pos - 1].to_owned();
                self.next_char();
                return Ok(Token::Str(value));
            }
        }
    }

    /// A name from the current character. Upstream slices it by a byte count that includes all but
    /// the last byte of the character after it, so a multi-byte character after a name adds its
    /// leading bytes to the name (it then matches no function or keyword).
    fn scan_name(&mut self) -> Vec<u8> {
        let start = self.pos - self.current_len;
        let mut end = self.text.len();
        while is_name_char(self.current) {
            if !self.next_char() {
                end = self.text.len();
                break;
            }
            end = self.pos - 1;
        }
        self.text.as_bytes()[start..end].to_vec()
    }

    fn name(&mut self) -> Result<Token, String> {
        let mut local = self.scan_name();
        let mut prefix = None;
        let mut axis = false;
        if self.current == ':' {
            self.next_char();
            if self.current == ':' {
                self.next_char();
                axis = true;
            } else {
                prefix = Some(std::mem::take(&mut local));
                if self.current == '*' {
                    self.next_char();
                    local = b"*".to_vec();
                } else if is_name_char(self.current) {
                    local = self.scan_name();
                } else {
                    return Err("invalid qualified name".to_owned());
                }
            }
        } else {
            self.skip_space();
            if self.current == ':' {
                self.next_char();
                if self.current != ':' {
                    return Err("invalid qualified name".to_owned());
                }
                self.next_char();
                axis = true;
            }
        }
        self.skip_space();
        let callable = self.current == '(';
        Ok(if axis { Token::Axis(local) } else { Token::Name { prefix, local, callable } })
    }
}

/// Go's `unicode.IsDigit`: ASCII digits in Latin-1, any decimal digit (Nd) above it.
fn is_go_digit(c: char) -> bool {
    if (c as u32) < 0x100 {
        return c.is_ascii_digit();
    }
    let c = c as u32;
    DECIMAL_DIGITS.iter().any(|&(low, high)| low <= c && c <= high)
}

/// The decimal digits (general category Nd) above Latin-1, Unicode 15.0 (Go 1.26's `unicode`).
#[rustfmt::skip]
const DECIMAL_DIGITS: &[(u32, u32)] = &[
    (0x00660, 0x00669), (0x006F0, 0x006F9), (0x007C0, 0x007C9), (0x00966, 0x0096F), (0x009E6, 0x009EF),
    (0x00A66, 0x00A6F), (0x00AE6, 0x00AEF), (0x00B66, 0x00B6F), (0x00BE6, 0x00BEF), (0x00C66, 0x00C6F),
    (0x00CE6, 0x00CEF), (0x00D66, 0x00D6F), (0x00DE6, 0x00DEF), (0x00E50, 0x00E59), (0x00ED0, 0x00ED9),
    (0x00F20, 0x00F29), (0x01040, 0x01049), (0x01090, 0x01099), (0x017E0, 0x017E9), (0x01810, 0x01819),
    (0x01946, 0x0194F), (0x019D0, 0x019D9), (0x01A80, 0x01A89), (0x01A90, 0x01A99), (0x01B50, 0x01B59),
    (0x01BB0, 0x01BB9), (0x01C40, 0x01C49), (0x01C50, 0x01C59), (0x0A620, 0x0A629), (0x0A8D0, 0x0A8D9),
    (0x0A900, 0x0A909), (0x0A9D0, 0x0A9D9), (0x0A9F0, 0x0A9F9), (0x0AA50, 0x0AA59), (0x0ABF0, 0x0ABF9),
    (0x0FF10, 0x0FF19), (0x104A0, 0x104A9), (0x10D30, 0x10D39), (0x11066, 0x1106F), (0x110F0, 0x110F9),
    (0x11136, 0x1113F), (0x111D0, 0x111D9), (0x112F0, 0x112F9), (0x11450, 0x11459), (0x114D0, 0x114D9),
    (0x11650, 0x11659), (0x116C0, 0x116C9), (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959),
    (0x11C50, 0x11C59), (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x11F50, 0x11F59), (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9), (0x16B50, 0x16B59), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149), (0x1E2F0, 0x1E2F9),
    (0x1E4F0, 0x1E4F9), (0x1E950, 0x1E959), (0x1FBF0, 0x1FBF9),
];

/// `isName` upstream: the XML 1.0 letters and name characters of its two tables, and `*`.
fn is_name_char(c: char) -> bool {
    c != ':' && c != '/' && (c == '*' || in_table(FIRST, c) || in_table(SECOND, c))
}

fn in_table(table: &[(u32, u32, u32)], c: char) -> bool {
    let c = c as u32;
    table.iter().any(|&(low, high, stride)| low <= c && c <= high && (c - low).is_multiple_of(stride))
}

/// The `first` table of upstream's `parse.go` (XML 1.0 BaseChar and Ideographic, and `:`): low,
/// high, stride.
#[rustfmt::skip]
const FIRST: &[(u32, u32, u32)] = &[
    (0x003A, 0x003A, 1), (0x0041, 0x005A, 1), (0x005F, 0x005F, 1), (0x0061, 0x007A, 1),
    (0x00C0, 0x00D6, 1), (0x00D8, 0x00F6, 1), (0x00F8, 0x00FF, 1), (0x0100, 0x0131, 1),
    (0x0134, 0x013E, 1), (0x0141, 0x0148, 1), (0x014A, 0x017E, 1), (0x0180, 0x01C3, 1),
    (0x01CD, 0x01F0, 1), (0x01F4, 0x01F5, 1), (0x01FA, 0x0217, 1), (0x0250, 0x02A8, 1),
    (0x02BB, 0x02C1, 1), (0x0386, 0x0386, 1), (0x0388, 0x038A, 1), (0x038C, 0x038C, 1),
    (0x038E, 0x03A1, 1), (0x03A3, 0x03CE, 1), (0x03D0, 0x03D6, 1), (0x03DA, 0x03E0, 2),
    (0x03E2, 0x03F3, 1), (0x0401, 0x040C, 1), (0x040E, 0x044F, 1), (0x0451, 0x045C, 1),
    (0x045E, 0x0481, 1), (0x0490, 0x04C4, 1), (0x04C7, 0x04C8, 1), (0x04CB, 0x04CC, 1),
    (0x04D0, 0x04EB, 1), (0x04EE, 0x04F5, 1), (0x04F8, 0x04F9, 1), (0x0531, 0x0556, 1),
    (0x0559, 0x0559, 1), (0x0561, 0x0586, 1), (0x05D0, 0x05EA, 1), (0x05F0, 0x05F2, 1),
    (0x0621, 0x063A, 1), (0x0641, 0x064A, 1), (0x0671, 0x06B7, 1), (0x06BA, 0x06BE, 1),
    (0x06C0, 0x06CE, 1), (0x06D0, 0x06D3, 1), (0x06D5, 0x06D5, 1), (0x06E5, 0x06E6, 1),
    (0x0905, 0x0939, 1), (0x093D, 0x093D, 1), (0x0958, 0x0961, 1), (0x0985, 0x098C, 1),
    (0x098F, 0x0990, 1), (0x0993, 0x09A8, 1), (0x09AA, 0x09B0, 1), (0x09B2, 0x09B2, 1),
    (0x09B6, 0x09B9, 1), (0x09DC, 0x09DD, 1), (0x09DF, 0x09E1, 1), (0x09F0, 0x09F1, 1),
    (0x0A05, 0x0A0A, 1), (0x0A0F, 0x0A10, 1), (0x0A13, 0x0A28, 1), (0x0A2A, 0x0A30, 1),
    (0x0A32, 0x0A33, 1), (0x0A35, 0x0A36, 1), (0x0A38, 0x0A39, 1), (0x0A59, 0x0A5C, 1),
    (0x0A5E, 0x0A5E, 1), (0x0A72, 0x0A74, 1), (0x0A85, 0x0A8B, 1), (0x0A8D, 0x0A8D, 1),
    (0x0A8F, 0x0A91, 1), (0x0A93, 0x0AA8, 1), (0x0AAA, 0x0AB0, 1), (0x0AB2, 0x0AB3, 1),
    (0x0AB5, 0x0AB9, 1), (0x0ABD, 0x0AE0, 35), (0x0B05, 0x0B0C, 1), (0x0B0F, 0x0B10, 1),
    (0x0B13, 0x0B28, 1), (0x0B2A, 0x0B30, 1), (0x0B32, 0x0B33, 1), (0x0B36, 0x0B39, 1),
    (0x0B3D, 0x0B3D, 1), (0x0B5C, 0x0B5D, 1), (0x0B5F, 0x0B61, 1), (0x0B85, 0x0B8A, 1),
    (0x0B8E, 0x0B90, 1), (0x0B92, 0x0B95, 1), (0x0B99, 0x0B9A, 1), (0x0B9C, 0x0B9C, 1),
    (0x0B9E, 0x0B9F, 1), (0x0BA3, 0x0BA4, 1), (0x0BA8, 0x0BAA, 1), (0x0BAE, 0x0BB5, 1),
    (0x0BB7, 0x0BB9, 1), (0x0C05, 0x0C0C, 1), (0x0C0E, 0x0C10, 1), (0x0C12, 0x0C28, 1),
    (0x0C2A, 0x0C33, 1), (0x0C35, 0x0C39, 1), (0x0C60, 0x0C61, 1), (0x0C85, 0x0C8C, 1),
    (0x0C8E, 0x0C90, 1), (0x0C92, 0x0CA8, 1), (0x0CAA, 0x0CB3, 1), (0x0CB5, 0x0CB9, 1),
    (0x0CDE, 0x0CDE, 1), (0x0CE0, 0x0CE1, 1), (0x0D05, 0x0D0C, 1), (0x0D0E, 0x0D10, 1),
    (0x0D12, 0x0D28, 1), (0x0D2A, 0x0D39, 1), (0x0D60, 0x0D61, 1), (0x0E01, 0x0E2E, 1),
    (0x0E30, 0x0E30, 1), (0x0E32, 0x0E33, 1), (0x0E40, 0x0E45, 1), (0x0E81, 0x0E82, 1),
    (0x0E84, 0x0E84, 1), (0x0E87, 0x0E88, 1), (0x0E8A, 0x0E8D, 3), (0x0E94, 0x0E97, 1),
    (0x0E99, 0x0E9F, 1), (0x0EA1, 0x0EA3, 1), (0x0EA5, 0x0EA7, 2), (0x0EAA, 0x0EAB, 1),
    (0x0EAD, 0x0EAE, 1), (0x0EB0, 0x0EB0, 1), (0x0EB2, 0x0EB3, 1), (0x0EBD, 0x0EBD, 1),
    (0x0EC0, 0x0EC4, 1), (0x0F40, 0x0F47, 1), (0x0F49, 0x0F69, 1), (0x10A0, 0x10C5, 1),
    (0x10D0, 0x10F6, 1), (0x1100, 0x1100, 1), (0x1102, 0x1103, 1), (0x1105, 0x1107, 1),
    (0x1109, 0x1109, 1), (0x110B, 0x110C, 1), (0x110E, 0x1112, 1), (0x113C, 0x1140, 2),
    (0x114C, 0x1150, 2), (0x1154, 0x1155, 1), (0x1159, 0x1159, 1), (0x115F, 0x1161, 1),
    (0x1163, 0x1169, 2), (0x116D, 0x116E, 1), (0x1172, 0x1173, 1), (0x1175, 0x119E, 41),
    (0x11A8, 0x11AB, 3), (0x11AE, 0x11AF, 1), (0x11B7, 0x11B8, 1), (0x11BA, 0x11BA, 1),
    (0x11BC, 0x11C2, 1), (0x11EB, 0x11F0, 5), (0x11F9, 0x11F9, 1), (0x1E00, 0x1E9B, 1),
    (0x1EA0, 0x1EF9, 1), (0x1F00, 0x1F15, 1), (0x1F18, 0x1F1D, 1), (0x1F20, 0x1F45, 1),
    (0x1F48, 0x1F4D, 1), (0x1F50, 0x1F57, 1), (0x1F59, 0x1F5B, 2), (0x1F5D, 0x1F5D, 1),
    (0x1F5F, 0x1F7D, 1), (0x1F80, 0x1FB4, 1), (0x1FB6, 0x1FBC, 1), (0x1FBE, 0x1FBE, 1),
    (0x1FC2, 0x1FC4, 1), (0x1FC6, 0x1FCC, 1), (0x1FD0, 0x1FD3, 1), (0x1FD6, 0x1FDB, 1),
    (0x1FE0, 0x1FEC, 1), (0x1FF2, 0x1FF4, 1), (0x1FF6, 0x1FFC, 1), (0x2126, 0x2126, 1),
    (0x212A, 0x212B, 1), (0x212E, 0x212E, 1), (0x2180, 0x2182, 1), (0x3007, 0x3007, 1),
    (0x3021, 0x3029, 1), (0x3041, 0x3094, 1), (0x30A1, 0x30FA, 1), (0x3105, 0x312C, 1),
    (0x4E00, 0x9FA5, 1), (0xAC00, 0xD7A3, 1),
];
/// The `second` table of upstream's `parse.go` (XML 1.0 CombiningChar, Digit, Extender, `-`, `.`).
#[rustfmt::skip]
const SECOND: &[(u32, u32, u32)] = &[
    (0x002D, 0x002E, 1), (0x0030, 0x0039, 1), (0x00B7, 0x00B7, 1), (0x02D0, 0x02D1, 1),
    (0x0300, 0x0345, 1), (0x0360, 0x0361, 1), (0x0387, 0x0387, 1), (0x0483, 0x0486, 1),
    (0x0591, 0x05A1, 1), (0x05A3, 0x05B9, 1), (0x05BB, 0x05BD, 1), (0x05BF, 0x05BF, 1),
    (0x05C1, 0x05C2, 1), (0x05C4, 0x0640, 124), (0x064B, 0x0652, 1), (0x0660, 0x0669, 1),
    (0x0670, 0x0670, 1), (0x06D6, 0x06DC, 1), (0x06DD, 0x06DF, 1), (0x06E0, 0x06E4, 1),
    (0x06E7, 0x06E8, 1), (0x06EA, 0x06ED, 1), (0x06F0, 0x06F9, 1), (0x0901, 0x0903, 1),
    (0x093C, 0x093C, 1), (0x093E, 0x094C, 1), (0x094D, 0x094D, 1), (0x0951, 0x0954, 1),
    (0x0962, 0x0963, 1), (0x0966, 0x096F, 1), (0x0981, 0x0983, 1), (0x09BC, 0x09BC, 1),
    (0x09BE, 0x09BF, 1), (0x09C0, 0x09C4, 1), (0x09C7, 0x09C8, 1), (0x09CB, 0x09CD, 1),
    (0x09D7, 0x09D7, 1), (0x09E2, 0x09E3, 1), (0x09E6, 0x09EF, 1), (0x0A02, 0x0A3C, 58),
    (0x0A3E, 0x0A3F, 1), (0x0A40, 0x0A42, 1), (0x0A47, 0x0A48, 1), (0x0A4B, 0x0A4D, 1),
    (0x0A66, 0x0A6F, 1), (0x0A70, 0x0A71, 1), (0x0A81, 0x0A83, 1), (0x0ABC, 0x0ABC, 1),
    (0x0ABE, 0x0AC5, 1), (0x0AC7, 0x0AC9, 1), (0x0ACB, 0x0ACD, 1), (0x0AE6, 0x0AEF, 1),
    (0x0B01, 0x0B03, 1), (0x0B3C, 0x0B3C, 1), (0x0B3E, 0x0B43, 1), (0x0B47, 0x0B48, 1),
    (0x0B4B, 0x0B4D, 1), (0x0B56, 0x0B57, 1), (0x0B66, 0x0B6F, 1), (0x0B82, 0x0B83, 1),
    (0x0BBE, 0x0BC2, 1), (0x0BC6, 0x0BC8, 1), (0x0BCA, 0x0BCD, 1), (0x0BD7, 0x0BD7, 1),
    (0x0BE7, 0x0BEF, 1), (0x0C01, 0x0C03, 1), (0x0C3E, 0x0C44, 1), (0x0C46, 0x0C48, 1),
    (0x0C4A, 0x0C4D, 1), (0x0C55, 0x0C56, 1), (0x0C66, 0x0C6F, 1), (0x0C82, 0x0C83, 1),
    (0x0CBE, 0x0CC4, 1), (0x0CC6, 0x0CC8, 1), (0x0CCA, 0x0CCD, 1), (0x0CD5, 0x0CD6, 1),
    (0x0CE6, 0x0CEF, 1), (0x0D02, 0x0D03, 1), (0x0D3E, 0x0D43, 1), (0x0D46, 0x0D48, 1),
    (0x0D4A, 0x0D4D, 1), (0x0D57, 0x0D57, 1), (0x0D66, 0x0D6F, 1), (0x0E31, 0x0E31, 1),
    (0x0E34, 0x0E3A, 1), (0x0E46, 0x0E46, 1), (0x0E47, 0x0E4E, 1), (0x0E50, 0x0E59, 1),
    (0x0EB1, 0x0EB1, 1), (0x0EB4, 0x0EB9, 1), (0x0EBB, 0x0EBC, 1), (0x0EC6, 0x0EC6, 1),
    (0x0EC8, 0x0ECD, 1), (0x0ED0, 0x0ED9, 1), (0x0F18, 0x0F19, 1), (0x0F20, 0x0F29, 1),
    (0x0F35, 0x0F39, 2), (0x0F3E, 0x0F3F, 1), (0x0F71, 0x0F84, 1), (0x0F86, 0x0F8B, 1),
    (0x0F90, 0x0F95, 1), (0x0F97, 0x0F97, 1), (0x0F99, 0x0FAD, 1), (0x0FB1, 0x0FB7, 1),
    (0x0FB9, 0x0FB9, 1), (0x20D0, 0x20DC, 1), (0x20E1, 0x3005, 3876), (0x302A, 0x302F, 1),
    (0x3031, 0x3035, 1), (0x3099, 0x309A, 1), (0x309D, 0x309E, 1), (0x30FC, 0x30FE, 1),
];

type NodeId = usize;

/// The parse tree, shaped as upstream's so the build step sees the same nesting.
#[derive(Debug)]
enum Node {
    Root,
    Axis {
        axis: Vec<u8>,
        input: Option<NodeId>,
    },
    Filter {
        input: NodeId,
        condition: NodeId,
    },
    Function {
        name: Vec<u8>,
        args: Vec<NodeId>,
    },
    Operator {
        left: NodeId,
        right: NodeId,
    },
    Variable,
    /// A string literal (`Some`) or a number (`None`).
    Constant(Option<String>),
    Group(NodeId),
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    nodes: Vec<Node>,
    depth: usize,
}

/// The binary operator the token is, with its precedence (higher binds tighter).
fn binary_precedence(token: &Token) -> Option<u8> {
    match token {
        Token::Name { prefix: None, local, .. } => match local.as_slice() {
            b"or" => Some(0),
            b"and" => Some(1),
            b"div" | b"mod" => Some(5),
            _ => None,
        },
        Token::Eq | Token::Ne => Some(2),
        Token::Lt | Token::Le | Token::Gt | Token::Ge => Some(3),
        Token::Plus | Token::Minus => Some(4),
        Token::Star => Some(5),
        _ => None,
    }
}

fn is_node_type(prefix: &Option<Vec<u8>>, local: &[u8]) -> bool {
    prefix.is_none() && matches!(local, b"node" | b"text" | b"processing-instruction" | b"comment")
}

impl Parser<'_> {
    fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn next(&mut self) -> Result<(), String> {
        self.lexer.advance()
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<(), String> {
        if self.lexer.token != token {
            return Err(format!("expected {what}"));
        }
        self.next()
    }

    fn descendant_or_self(&mut self, input: Option<NodeId>) -> NodeId {
        self.add(Node::Axis { axis: b"descendant-or-self".to_vec(), input })
    }

    fn expression(&mut self) -> Result<NodeId, String> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return Err(format!("nested more than {MAX_PARSE_DEPTH} deep"));
        }
        let node = self.binary()?;
        self.depth -= 1;
        Ok(node)
    }

    /// `or`, `and`, equality, relational, additive and multiplicative expressions, all
    /// left-associative, by operator precedence over a stack rather than one call a level.
    fn binary(&mut self) -> Result<NodeId, String> {
        let mut operands = vec![self.unary()?];
        let mut operators: Vec<u8> = Vec::new();
        while let Some(precedence) = binary_precedence(&self.lexer.token) {
            while operators.last().is_some_and(|&top| top >= precedence) {
                self.reduce(&mut operands, &mut operators);
            }
            operators.push(precedence);
            self.next()?;
            operands.push(self.unary()?);
        }
        while !operators.is_empty() {
            self.reduce(&mut operands, &mut operators);
        }
        Ok(operands[0])
    }

    fn reduce(&mut self, operands: &mut Vec<NodeId>, operators: &mut Vec<u8>) {
        operators.pop();
        let right = operands.pop().unwrap_or_default();
        let left = operands.pop().unwrap_or_default();
        let node = self.add(Node::Operator { left, right });
        operands.push(node);
    }

    fn unary(&mut self) -> Result<NodeId, String> {
        let mut negate = false;
        while self.lexer.token == Token::Minus {
            self.next()?;
            negate = !negate;
        }
        let mut node = self.path()?;
        while self.lexer.token == Token::Union {
            self.next()?;
            let right = self.path()?;
            node = self.add(Node::Operator { left: node, right });
        }
        if negate {
            let minus_one = self.add(Node::Constant(None));
            node = self.add(Node::Operator { left: node, right: minus_one });
        }
        Ok(node)
    }

    fn is_primary(&self) -> bool {
        match &self.lexer.token {
            Token::Str(_) | Token::Number | Token::Dollar | Token::LParen => true,
            Token::Name { prefix, local, callable } => *callable && !is_node_type(prefix, local),
            _ => false,
        }
    }

    fn path(&mut self) -> Result<NodeId, String> {
        if !self.is_primary() {
            return self.location_path();
        }
        let mut node = self.primary()?;
        if self.lexer.token == Token::LBracket {
            let condition = self.predicate()?;
            node = self.add(Node::Filter { input: node, condition });
        }
        match self.lexer.token {
            Token::Slash => {
                self.next()?;
                self.relative_path(Some(node))
            }
            Token::SlashSlash => {
                self.next()?;
                let input = self.descendant_or_self(Some(node));
                self.relative_path(Some(input))
            }
            _ => Ok(node),
        }
    }

    fn predicate(&mut self) -> Result<NodeId, String> {
        self.expect(Token::LBracket, "'['")?;
        let condition = self.expression()?;
        self.expect(Token::RBracket, "']'")?;
        Ok(condition)
    }

    fn location_path(&mut self) -> Result<NodeId, String> {
        match self.lexer.token {
            Token::Slash => {
                self.next()?;
                let root = self.add(Node::Root);
                let starts_step = matches!(
                    self.lexer.token,
                    Token::Dot
                        | Token::DotDot
                        | Token::At
                        | Token::Axis(_)
                        | Token::Star
                        | Token::Name { .. }
                );
                if starts_step {
                    self.relative_path(Some(root))
                } else {
                    Ok(root)
                }
            }
            Token::SlashSlash => {
                self.next()?;
                let root = self.add(Node::Root);
                let input = self.descendant_or_self(Some(root));
                self.relative_path(Some(input))
            }
            _ => self.relative_path(None),
        }
    }

    fn relative_path(&mut self, input: Option<NodeId>) -> Result<NodeId, String> {
        let mut node = self.step(input)?;
        loop {
            match self.lexer.token {
                Token::SlashSlash => {
                    self.next()?;
                    let input = self.descendant_or_self(Some(node));
                    node = self.step(Some(input))?;
                }
                Token::Slash => {
                    self.next()?;
                    node = self.step(Some(node))?;
                }
                _ => return Ok(node),
            }
        }
    }

    /// A step, or a sequence of steps `(a, b)` (nested to any depth, kept on a stack of the
    /// sequences still open: each holds the union of its steps so far).
    fn step(&mut self, input: Option<NodeId>) -> Result<NodeId, String> {
        let mut open: Vec<Option<NodeId>> = Vec::new();
        loop {
            if self.lexer.token == Token::LParen {
                self.next()?;
                open.push(None);
                continue;
            }
            let mut node = self.simple_step(input)?;
            loop {
                let Some(so_far) = open.last_mut() else { return Ok(node) };
                let union = match *so_far {
                    None => node,
                    Some(left) => {
                        self.nodes.push(Node::Operator { left, right: node });
                        self.nodes.len() - 1
                    }
                };
                *so_far = Some(union);
                if self.lexer.token == Token::Comma {
                    self.next()?;
                    break;
                }
                self.expect(Token::RParen, "')'")?;
                node = open.pop().flatten().unwrap_or(union);
            }
        }
    }

    fn simple_step(&mut self, input: Option<NodeId>) -> Result<NodeId, String> {
        let mut node = match self.lexer.token {
            Token::Dot | Token::DotDot => {
                let axis: &[u8] = if self.lexer.token == Token::Dot { b"self" } else { b"parent" };
                let node = self.add(Node::Axis { axis: axis.to_vec(), input });
                self.next()?;
                if self.lexer.token != Token::LBracket {
                    return Ok(node);
                }
                node
            }
            _ => {
                let axis = match &self.lexer.token {
                    Token::At => {
                        self.next()?;
                        b"attribute".to_vec()
                    }
                    Token::Axis(name) => {
                        let name = name.clone();
                        self.next()?;
                        name
                    }
                    _ => b"child".to_vec(),
                };
                self.node_test(input, axis)?
            }
        };
        while self.lexer.token == Token::LBracket {
            let condition = self.predicate()?;
            node = self.add(Node::Filter { input: node, condition });
        }
        Ok(node)
    }

    fn node_test(&mut self, input: Option<NodeId>, axis: Vec<u8>) -> Result<NodeId, String> {
        match &self.lexer.token {
            Token::Name { prefix, local, callable } if *callable && is_node_type(prefix, local) => {
                let instruction = local.as_slice() == b"processing-instruction";
                self.next()?;
                self.expect(Token::LParen, "'('")?;
                if instruction && self.lexer.token != Token::RParen {
                    if !matches!(self.lexer.token, Token::Str(_)) {
                        return Err("processing-instruction() takes a string literal".to_owned());
                    }
                    self.next()?;
                }
                self.expect(Token::RParen, "')'")?;
            }
            Token::Name { .. } | Token::Star => self.next()?,
            _ => return Err("expression must evaluate to a node-set".to_owned()),
        }
        Ok(self.add(Node::Axis { axis, input }))
    }

    fn primary(&mut self) -> Result<NodeId, String> {
        match &self.lexer.token {
            Token::Str(value) => {
                let value = value.clone();
                self.next()?;
                Ok(self.add(Node::Constant(Some(value))))
            }
            Token::Number => {
                self.next()?;
                Ok(self.add(Node::Constant(None)))
            }
            Token::Dollar => {
                self.next()?;
                if !matches!(self.lexer.token, Token::Name { .. }) {
                    return Err("a variable needs a name after '$'".to_owned());
                }
                self.next()?;
                Ok(self.add(Node::Variable))
            }
            Token::LParen => {
                self.next()?;
                let mut node = self.expression()?;
                if !matches!(self.nodes[node], Node::Constant(_)) {
                    node = self.add(Node::Group(node));
                }
                self.expect(Token::RParen, "')'")?;
                Ok(node)
            }
            Token::Name { local, .. } => {
                let name = local.clone();
                self.next()?;
                self.expect(Token::LParen, "'('")?;
                let mut args = Vec::new();
                if self.lexer.token != Token::RParen {
                    loop {
                        args.push(self.expression()?);
                        if self.lexer.token == Token::RParen {
                            break;
                        }
                        self.expect(Token::Comma, "',' or ')'")?;
                    }
                }
                self.expect(Token::RParen, "')'")?;
                Ok(self.add(Node::Function { name, args }))
            }
            _ => Err("expected an expression".to_owned()),
        }
    }
}

/// What a node builds to, as far as the build step looks at it.
#[derive(Debug, Clone, PartialEq)]
enum Built {
    /// No query (a variable, the `namespace` axis): asking it anything fails the build.
    Nothing,
    /// A group around nothing: its value type cannot be asked.
    GroupOfNothing,
    /// A string literal (`Some`) or a number.
    Constant(Option<String>),
    Query,
}

const VALID_AXES: &[&[u8]] = &[
    b"ancestor",
    b"ancestor-or-self",
    b"attribute",
    b"child",
    b"descendant",
    b"descendant-or-self",
    b"following",
    b"following-sibling",
    b"parent",
    b"preceding",
    b"preceding-sibling",
    b"self",
    b"namespace",
];

enum Task {
    /// Build a node at a depth; `in_filter` when it is the input of a predicate, which turns off
    /// the `//name` shortcut.
    Enter { id: NodeId, in_filter: bool, depth: usize },
    /// Combine the results of a node's built children.
    Exit { id: NodeId, children: usize },
}

/// The build step (`processNode`), over an explicit stack: upstream's depth limit is far deeper
/// than a thread's stack allows a recursive walk in a debug build.
fn build(nodes: &[Node], root: NodeId) -> Result<Built, String> {
    let mut tasks = vec![Task::Enter { id: root, in_filter: false, depth: 1 }];
    let mut results: Vec<Built> = Vec::new();
    while let Some(task) = tasks.pop() {
        match task {
            Task::Enter { id, in_filter, depth } => {
                if depth > MAX_BUILD_DEPTH {
                    return Err(format!(
                        "the expression is too complex (nested more than {MAX_BUILD_DEPTH} deep)"
                    ));
                }
                let children = children(nodes, id, in_filter, depth)?;
                tasks.push(Task::Exit { id, children: children.len() });
                for &(child, in_filter) in children.iter().rev() {
                    tasks.push(Task::Enter { id: child, in_filter, depth: depth + 1 });
                }
            }
            Task::Exit { id, children } => {
                let built = results.split_off(results.len().saturating_sub(children));
                results.push(finish(&nodes[id], &built)?);
            }
        }
    }
    Ok(results.pop().unwrap_or(Built::Nothing))
}

/// The children a node builds, with the checks made before them.
fn children(
    nodes: &[Node],
    id: NodeId,
    in_filter: bool,
    depth: usize,
) -> Result<Vec<(NodeId, bool)>, String> {
    Ok(match &nodes[id] {
        Node::Constant(_) | Node::Root | Node::Variable => Vec::new(),
        Node::Axis { axis, input } => {
            if !VALID_AXES.contains(&axis.as_slice()) {
                return Err(format!("unknown axis {}", String::from_utf8_lossy(axis)));
            }
            match input {
                None => Vec::new(),
                // `//name`: a child step over a descendant-or-self step builds the latter's input.
                Some(input) => match &nodes[*input] {
                    Node::Axis { axis: inner, input: grand_input }
                        if !in_filter && axis == b"child" && inner.as_slice() == b"descendant-or-self" =>
                    {
                        grand_input.iter().map(|&grand_input| (grand_input, false)).collect()
                    }
                    _ => vec![(*input, false)],
                },
            }
        }
        Node::Filter { input, condition } => vec![(*input, true), (*condition, in_filter)],
        Node::Operator { left, right } => vec![(*left, false), (*right, false)],
        Node::Group(input) => vec![(*input, false)],
        Node::Function { name, args } => {
            let used = function_arguments(name, args.len())?;
            if name == b"normalize-space" && args.is_empty() && depth + 1 > MAX_BUILD_DEPTH {
                // It builds `self::node()` in place of the argument.
                return Err("the expression is too complex".to_owned());
            }
            args.iter().take(used).map(|&arg| (arg, false)).collect()
        }
    })
}

/// A function's argument count checked, and how many leading arguments it builds.
fn function_arguments(name: &[u8], count: usize) -> Result<usize, String> {
    let arity = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{}() takes {what}, got {count}", String::from_utf8_lossy(name)))
        }
    };
    Ok(match name {
        b"lower-case" | b"string-length" | b"not" | b"count" | b"sum" | b"ceiling" | b"floor" | b"round"
        | b"reverse" => {
            arity(count >= 1, "at least one argument")?;
            1
        }
        b"starts-with" | b"ends-with" | b"contains" => {
            arity(count >= 2, "at least two arguments")?;
            2
        }
        b"matches" | b"substring-before" | b"substring-after" | b"string-join" => {
            arity(count == 2, "two arguments")?;
            2
        }
        b"substring" => {
            arity(count >= 2, "at least two arguments")?;
            if count == 3 {
                3
            } else {
                2
            }
        }
        b"replace" | b"translate" => {
            arity(count == 3, "three arguments")?;
            3
        }
        b"name" | b"local-name" | b"namespace-uri" | b"boolean" | b"number" | b"string" => {
            arity(count <= 1, "at most one argument")?;
            count
        }
        b"normalize-space" => count.min(1),
        b"concat" => {
            arity(count >= 2, "at least two arguments")?;
            count
        }
        b"true" | b"false" | b"last" | b"position" => 0,
        _ => return Err(format!("unknown function {}()", String::from_utf8_lossy(name))),
    })
}

/// What a node builds to, from what its children built to.
fn finish(node: &Node, children: &[Built]) -> Result<Built, String> {
    let child = |index: usize| children.get(index).cloned().unwrap_or(Built::Query);
    Ok(match node {
        Node::Constant(value) => Built::Constant(value.clone()),
        Node::Root | Node::Operator { .. } => Built::Query,
        Node::Variable => Built::Nothing,
        Node::Axis { axis, .. } if axis == b"namespace" => Built::Nothing,
        Node::Axis { .. } => Built::Query,
        Node::Filter { .. } => {
            if matches!(child(1), Built::Nothing | Built::GroupOfNothing) {
                return Err("a predicate that builds to nothing (an undeclared variable)".to_owned());
            }
            if child(0) == Built::Nothing {
                return Err("a predicate on nothing (an undeclared variable)".to_owned());
            }
            Built::Query
        }
        Node::Function { name, .. } => {
            if name == b"matches" {
                match child(1) {
                    Built::Constant(Some(pattern)) => re2::check_regex(&pattern)
                        .map_err(|error| format!("matches(): invalid pattern: {}", error.message))?,
                    Built::Constant(None) => return Err("matches(): the pattern is a number".to_owned()),
                    _ => {}
                }
            }
            Built::Query
        }
        Node::Group(_) => match child(0) {
            Built::Nothing | Built::GroupOfNothing => Built::GroupOfNothing,
            _ => Built::Query,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::check_xpath;

    #[test]
    fn accepts_what_compile_accepts() {
        for expression in [
            "/",
            "//@*",
            "/a/b/c",
            "//a[@id='x']/b",
            "a[1]",
            "a[last()]",
            "a[position() > 1 and @b != \"c\"]",
            "./a | ../b",
            "child::a/descendant-or-self::node()/text()",
            "ancestor-or-self::*",
            "count(//a) + 1 div 2 mod 3 * -4",
            "concat('a', 'b', c)",
            "substring(a, 1, 2)",
            "normalize-space()",
            "fn:count(a)",
            "p:a/p:*",
            "processing-instruction('x')",
            "a*b",
            ".5 = 1.",
            "(a)[1]",
            "a/(b, (c, d))",
            "$v + 1",
            "$v/a",
            "($v)",
            "true(unknown())",
            "lower-case(a, b, c)",
            "matches(a, '^x+$')",
            // What follows the expression is not parsed, only its first token scanned.
            "a)",
            "a b",
            "/ ]",
            "a ! b",
            // A NUL ends the expression.
            ".5\0",
            "a\0#",
            "a]]",
            "1e5",
        ] {
            assert_eq!(check_xpath(expression), Ok(()), "{expression}");
        }
    }

    #[test]
    fn refuses_what_compile_refuses() {
        for expression in [
            "",
            "//",
            "a[",
            "a[1",
            ")",
            "@",
            "foo()",
            "lower-case()",
            "contains(a)",
            "matches(a)",
            "matches(a, '(')",
            "matches(a, 1)",
            "replace(a, b)",
            "string-join(a)",
            "concat(a)",
            "name(a, b)",
            "bogus::a",
            "namespace::a",
            "$v",
            "a[$v]",
            "$v[1]",
            "a[($v)]",
            "'unclosed",
            "a #",
            "a : b",
            "p:",
            "$",
            "a/@(b)",
            "processing-instruction(1)",
            "a | 1 |",
        ] {
            assert!(check_xpath(expression).is_err(), "{expression}");
        }
    }

    #[test]
    fn depth_is_bounded_without_overflowing_the_stack() {
        let nested = |depth: usize| format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(check_xpath(&nested(199)), Ok(()));
        assert!(check_xpath(&nested(200)).is_err());
        assert!(check_xpath(&nested(100_000)).is_err());
        let predicates = format!("a{}", "[b".repeat(5000));
        assert!(check_xpath(&predicates).is_err());
        // A chain of steps is nested in the tree: more than 1024 nodes deep fails the build.
        assert_eq!(check_xpath(&vec!["a"; 1000].join("/")), Ok(()));
        assert!(check_xpath(&vec!["a"; 1100].join("/")).is_err());
        assert!(check_xpath(&vec!["1"; 100_000].join("+")).is_err());
        // Step sequences do not nest in the tree and have no limit upstream.
        let sequence = format!("a/{}b{}", "(".repeat(50_000), ")".repeat(50_000));
        assert_eq!(check_xpath(&sequence), Ok(()));
    }

    #[test]
    fn a_non_ascii_digit_starts_a_number_that_never_parses() {
        for expression in ["\u{660}", "1\u{660}", ".\u{660}", "a[\u{ff11}]"] {
            assert!(check_xpath(expression).is_err(), "{expression}");
        }
        // Inside a name it is a name character.
        assert_eq!(check_xpath("a\u{660}"), Ok(()));
    }

    #[test]
    fn numbers_that_overflow_a_float_are_refused() {
        assert_eq!(check_xpath(&"9".repeat(308)), Ok(()));
        assert!(check_xpath(&"9".repeat(400)).is_err());
    }
}
