//! Escapes and character classes: Go's `parseEscape`, `parseUnicodeClass`, `parsePerlClassEscape`,
//! `parseNamedClass` and `parseClass`, as far as they accept or refuse.

use super::error::{ErrorCode, ParseError};
use super::unicode_names::is_unicode_class_name;

/// Go's `unicode.MaxRune`.
const MAX_RUNE: u32 = 0x10_FFFF;

/// What Go's `utf8.DecodeRuneInString` gives for an empty string.
const RUNE_ERROR: u32 = 0xFFFD;

/// The POSIX classes of Go's `perl_groups.go`, each also negated as `[:^name:]`.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "word", "xdigit",
];

/// The next rune of `text` and the rest; an empty text gives U+FFFD, as in Go.
pub(super) fn next_rune(text: &str) -> (u32, &str) {
    match text.chars().next() {
        Some(rune) => (u32::from(rune), &text[rune.len_utf8()..]),
        None => (RUNE_ERROR, text),
    }
}

/// The part of `whole` consumed before `rest` (`rest` is a suffix of `whole`).
pub(super) fn consumed<'a>(whole: &'a str, rest: &str) -> &'a str {
    &whole[..whole.len() - rest.len()]
}

fn is_ascii_alnum(rune: u32) -> bool {
    u8::try_from(rune).is_ok_and(|byte| byte.is_ascii_alphanumeric())
}

fn unhex(rune: u32) -> Option<u32> {
    char::from_u32(rune).and_then(|c| c.to_digit(16))
}

fn is_octal_digit(text: &str) -> bool {
    text.as_bytes().first().is_some_and(|byte| (b'0'..=b'7').contains(byte))
}

/// An escape that stands for one rune (`\n`, `\x41`, `\x{10FFFF}`, `\101`, `\.`); `escape` starts
/// with the backslash. Runes are `u32` because Go accepts surrogates such as `\x{D800}`.
pub(super) fn parse_escape(escape: &str) -> Result<(u32, &str), ParseError> {
    let after_backslash = &escape[1..];
    if after_backslash.is_empty() {
        return Err(ParseError::new(ErrorCode::TrailingBackslash, ""));
    }
    let (first, mut rest) = next_rune(after_backslash);
    let invalid = |rest: &str| ParseError::new(ErrorCode::InvalidEscape, consumed(escape, rest));
    match char::from_u32(first).unwrap_or('\u{FFFD}') {
        // A single non-zero digit would be a backreference, which RE2 does not have.
        '1'..='7' if !is_octal_digit(rest) => Err(invalid(rest)),
        digit @ '0'..='7' => {
            let mut value = u32::from(digit) - u32::from('0');
            for _ in 1..3 {
                if !is_octal_digit(rest) {
                    break;
                }
                value = value * 8 + u32::from(rest.as_bytes()[0] - b'0');
                rest = &rest[1..];
            }
            Ok((value, rest))
        }
        'x' => {
            if rest.is_empty() {
                return Err(invalid(rest));
            }
            let (opening, after_opening) = next_rune(rest);
            rest = after_opening;
            if opening == u32::from('{') {
                let mut value: u32 = 0;
                let mut digits = 0;
                loop {
                    if rest.is_empty() {
                        return Err(invalid(rest));
                    }
                    let (digit, after_digit) = next_rune(rest);
                    rest = after_digit;
                    if digit == u32::from('}') {
                        break;
                    }
                    let Some(digit_value) = unhex(digit) else { return Err(invalid(rest)) };
                    value = value * 16 + digit_value;
                    if value > MAX_RUNE {
                        return Err(invalid(rest));
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(invalid(rest));
                }
                return Ok((value, rest));
            }
            let (low, after_low) = next_rune(rest);
            rest = after_low;
            match (unhex(opening), unhex(low)) {
                (Some(high), Some(low)) => Ok((high * 16 + low, rest)),
                _ => Err(invalid(rest)),
            }
        }
        'a' => Ok((0x07, rest)),
        'f' => Ok((0x0C, rest)),
        'n' => Ok((0x0A, rest)),
        'r' => Ok((0x0D, rest)),
        't' => Ok((0x09, rest)),
        'v' => Ok((0x0B, rest)),
        // Escaped ASCII punctuation (and `\_`) is the character itself; letters, digits and
        // non-ASCII runes are refused (`\Z`, `\G`, `\e`, `\u`, `\é`).
        _ if first < 0x80 && !is_ascii_alnum(first) => Ok((first, rest)),
        _ => Err(invalid(rest)),
    }
}

/// `\pN`, `\p{Name}`, `\PN`, `\P{^Name}` at the start of `text`: `Ok(None)` when `text` does not
/// start with `\p` or `\P`, else the rest after it or why Go refuses the name.
pub(super) fn parse_unicode_class(text: &str) -> Result<Option<&str>, ParseError> {
    if !(text.starts_with("\\p") || text.starts_with("\\P")) {
        return Ok(None);
    }
    let (first, after_first) = next_rune(&text[2..]);
    let (sequence, name, rest) = if first != u32::from('{') {
        let sequence = consumed(text, after_first);
        (sequence, &sequence[2..], after_first)
    } else {
        let Some(end) = text.find('}') else {
            return Err(ParseError::new(ErrorCode::InvalidCharRange, text));
        };
        (&text[..=end], &text[3..end], &text[end + 1..])
    };
    let name = name.strip_prefix('^').unwrap_or(name);
    if !is_unicode_class_name(name) {
        return Err(ParseError::new(ErrorCode::InvalidCharRange, sequence));
    }
    Ok(Some(rest))
}

/// `\d \D \s \S \w \W` at the start of `text`: the rest after it.
pub(super) fn parse_perl_class_escape(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    (bytes.len() >= 2 && bytes[0] == b'\\' && b"dDsSwW".contains(&bytes[1])).then(|| &text[2..])
}

/// A parsed `[…]`.
pub(super) struct ParsedClass<'a> {
    pub(super) rest: &'a str,
    /// The literal Go's `push` turns the class into, when it holds one rune (`[a]`) or one ASCII
    /// letter in both cases (`[Aa]`, or `[a]` under `(?i)`): `(rune, fold_case)`.
    pub(super) literal: Option<(u32, bool)>,
}

/// Remembers where Go's search for the `:]` of a POSIX class name came up empty, so that a pattern
/// of many `[[:` does not make the search quadratic.
#[derive(Default)]
pub(super) struct PosixCloseSearch {
    /// The longest remaining text known to hold no `:]`.
    longest_without: usize,
}

impl PosixCloseSearch {
    fn find(&mut self, text: &str) -> Option<usize> {
        if text.len() <= self.longest_without {
            return None;
        }
        let found = text.find(":]");
        if found.is_none() {
            self.longest_without = text.len();
        }
        found
    }
}

/// A character class; `class` starts with `[`.
pub(super) fn parse_class<'a>(
    class: &'a str,
    fold_case: bool,
    posix_close: &mut PosixCloseSearch,
) -> Result<ParsedClass<'a>, ParseError> {
    let mut text = &class[1..];
    let negated = text.starts_with('^');
    if negated {
        text = &text[1..];
    }
    // Ranges of plain characters, while the class holds nothing else (for `literal`).
    let mut plain_ranges: Option<Vec<(u32, u32)>> = (!negated).then(Vec::new);
    let mut first = true;
    while text.is_empty() || !text.starts_with(']') || first {
        first = false;
        if text.len() > 2 && text.starts_with("[:") {
            if let Some(close) = posix_close.find(&text[2..]) {
                let name = &text[..close + 4];
                let bare = &name[2..name.len() - 2];
                if !POSIX_CLASSES.contains(&bare.strip_prefix('^').unwrap_or(bare)) {
                    return Err(ParseError::new(ErrorCode::InvalidCharRange, name));
                }
                text = &text[close + 4..];
                plain_ranges = None;
                continue;
            }
        }
        if let Some(rest) = parse_unicode_class(text)? {
            text = rest;
            plain_ranges = None;
            continue;
        }
        if let Some(rest) = parse_perl_class_escape(text) {
            text = rest;
            plain_ranges = None;
            continue;
        }
        let range_start = text;
        let (low, after_low) = parse_class_char(text, class)?;
        text = after_low;
        let mut high = low;
        let bytes = text.as_bytes();
        if bytes.len() >= 2 && bytes[0] == b'-' && bytes[1] != b']' {
            let (range_high, after_high) = parse_class_char(&text[1..], class)?;
            text = after_high;
            if range_high < low {
                return Err(ParseError::new(ErrorCode::InvalidCharRange, consumed(range_start, text)));
            }
            high = range_high;
        }
        if let Some(ranges) = plain_ranges.as_mut() {
            ranges.push((low, high));
        }
    }
    let rest = &text[1..];
    let literal = plain_ranges.and_then(|ranges| single_literal(ranges, fold_case));
    Ok(ParsedClass { rest, literal })
}

fn parse_class_char<'a>(text: &'a str, class: &str) -> Result<(u32, &'a str), ParseError> {
    if text.is_empty() {
        return Err(ParseError::new(ErrorCode::MissingBracket, class));
    }
    if text.starts_with('\\') {
        return parse_escape(text);
    }
    Ok(next_rune(text))
}

/// Whether a class of these plain ranges is one of the shapes Go's `push` rewrites as a literal.
/// Only ASCII case folding is modelled; other classes stay classes (which only shifts the height of
/// the tree by one level, see the module docs).
fn single_literal(mut ranges: Vec<(u32, u32)>, fold_case: bool) -> Option<(u32, bool)> {
    ranges.sort_unstable();
    let mut runes: Vec<u32> = Vec::with_capacity(2);
    for (low, high) in ranges {
        for rune in low..=high {
            if runes.last() != Some(&rune) {
                runes.push(rune);
            }
            if runes.len() > 2 {
                return None;
            }
        }
    }
    // `k` and `s` fold to three runes (the Kelvin sign, the long s), so they never form a pair.
    let foldable_letter = |rune: u32| {
        u8::try_from(rune).is_ok_and(|byte| byte.is_ascii_alphabetic() && !b"kKsS".contains(&byte))
    };
    let upper = |rune: u32| u8::try_from(rune).map_or(rune, |byte| u32::from(byte.to_ascii_uppercase()));
    match runes.as_slice() {
        [rune] if fold_case && foldable_letter(*rune) => Some((upper(*rune), true)),
        [rune]
            if !fold_case || *rune < 0x80 && !u8::try_from(*rune).is_ok_and(|b| b.is_ascii_alphabetic()) =>
        {
            Some((*rune, false))
        }
        [upper_rune, lower_rune]
            if foldable_letter(*upper_rune)
                && upper(*lower_rune) == *upper_rune
                && upper_rune != lower_rune =>
        {
            Some((*upper_rune, true))
        }
        _ => None,
    }
}
