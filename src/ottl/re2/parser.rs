//! Go's `regexp/syntax` parse loop (`parse`, `parsePerlFlags`, `repeat`, `concat`, `alternate`,
//! `swapVerticalBar`, `parseRightParen`) over a stack of [`Node`] summaries instead of a tree.

use super::class::{
    consumed, next_rune, parse_class, parse_escape, parse_perl_class_escape, parse_unicode_class,
    PosixCloseSearch,
};
use super::error::{ErrorCode, ParseError};
use super::node::{Flags, Node, Op, MAX_HEIGHT, MAX_REPEAT_PRODUCT, MAX_SIZE};

pub(super) struct Parser<'a> {
    whole: &'a str,
    flags: Flags,
    stack: Vec<Node>,
    /// Go's `numRegexp`: nodes allocated, not counting those taken back from the free list.
    allocated: u64,
    /// Nodes Go has put on its free list (`reuse`) and not taken back yet.
    free: u64,
    /// Go's `repeats`, the product of the counts of repetitions pushed while size is not tracked.
    repeats: i64,
    /// Whether Go has started to compute sizes (`p.size != nil`).
    tracking_size: bool,
    posix_close: PosixCloseSearch,
}

impl<'a> Parser<'a> {
    /// Parses `pattern` with `syntax.Perl` flags as `regexp.Compile` does.
    pub(super) fn check(pattern: &'a str) -> Result<(), ParseError> {
        let mut parser = Parser {
            whole: pattern,
            flags: Flags::PERL,
            stack: Vec::new(),
            allocated: 0,
            free: 0,
            repeats: 0,
            tracking_size: false,
            posix_close: PosixCloseSearch::default(),
        };
        parser.parse()
    }

    fn parse(&mut self) -> Result<(), ParseError> {
        let mut text = self.whole;
        // The text from the previous repetition operator on, when the previous item was one.
        let mut last_repeat: Option<&'a str> = None;
        while !text.is_empty() {
            let mut repeat = None;
            let byte = text.as_bytes()[0];
            match byte {
                b'(' if text.starts_with("(?") => text = self.parse_perl_flags(text)?,
                b'(' => {
                    self.push_op(Op::LeftParen { capturing: true })?;
                    text = &text[1..];
                }
                b'|' => {
                    self.parse_vertical_bar()?;
                    text = &text[1..];
                }
                b')' => {
                    self.parse_right_paren()?;
                    text = &text[1..];
                }
                b'^' | b'$' => {
                    self.push_op(Op::Assertion)?;
                    text = &text[1..];
                }
                b'.' => {
                    let op = if self.flags.0 & Flags::DOT_NL != 0 { Op::AnyChar } else { Op::AnyCharNotNl };
                    self.push_op(op)?;
                    text = &text[1..];
                }
                b'[' => {
                    let class = parse_class(text, self.flags.fold_case(), &mut self.posix_close)?;
                    self.allocate();
                    let mut node = Node::leaf(Op::CharClass, self.flags);
                    node.class_literal = class.literal;
                    self.push(node)?;
                    text = class.rest;
                }
                b'*' | b'+' | b'?' => {
                    let op = match byte {
                        b'*' => Op::Star,
                        b'+' => Op::Plus,
                        _ => Op::Quest,
                    };
                    let after = self.repeat(op, text, &text[1..], last_repeat)?;
                    repeat = Some(text);
                    text = after;
                }
                b'{' => match parse_repeat(text) {
                    None => {
                        self.literal(u32::from('{'))?;
                        text = &text[1..];
                    }
                    Some((min, max, after)) => {
                        if !(0..=1000).contains(&min) || max > 1000 || max >= 0 && min > max {
                            return Err(ParseError::new(ErrorCode::InvalidRepeatSize, consumed(text, after)));
                        }
                        let after = self.repeat(Op::Repeat { min, max }, text, after, last_repeat)?;
                        repeat = Some(text);
                        text = after;
                    }
                },
                b'\\' => text = self.parse_backslash(text)?,
                _ => {
                    let (rune, rest) = next_rune(text);
                    self.literal(rune)?;
                    text = rest;
                }
            }
            last_repeat = repeat;
        }
        self.concat()?;
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate()?;
        if self.stack.len() != 1 {
            return Err(ParseError::new(ErrorCode::MissingParen, self.whole));
        }
        Ok(())
    }

    /// A backslash outside a class: an assertion, `\Q…\E`, a class (`\pL`, `\d`) or one rune.
    fn parse_backslash(&mut self, text: &'a str) -> Result<&'a str, ParseError> {
        match text.as_bytes().get(1) {
            Some(b'A' | b'b' | b'B' | b'z') => {
                self.push_op(Op::Assertion)?;
                return Ok(&text[2..]);
            }
            // Any byte: RE2 refuses it.
            Some(b'C') => return Err(ParseError::new(ErrorCode::InvalidEscape, &text[..2])),
            Some(b'Q') => {
                let quoted = &text[2..];
                let (literal, rest) = match quoted.find("\\E") {
                    Some(end) => (&quoted[..end], &quoted[end + 2..]),
                    None => (quoted, ""),
                };
                for rune in literal.chars() {
                    self.literal(u32::from(rune))?;
                }
                return Ok(rest);
            }
            _ => {}
        }
        // Go allocates the class node before it knows whether this is a class.
        self.allocate();
        if let Some(rest) = parse_unicode_class(text)? {
            self.push(Node::leaf(Op::CharClass, self.flags))?;
            return Ok(rest);
        }
        if let Some(rest) = parse_perl_class_escape(text) {
            self.push(Node::leaf(Op::CharClass, self.flags))?;
            return Ok(rest);
        }
        self.free += 1;
        let (rune, rest) = parse_escape(text)?;
        self.literal(rune)?;
        Ok(rest)
    }

    /// `(?` at the start of `text`: a named group, a non-capturing group, or a flag change.
    fn parse_perl_flags(&mut self, text: &'a str) -> Result<&'a str, ParseError> {
        let bytes = text.as_bytes();
        let python_name = bytes.len() > 4 && bytes[2] == b'P' && bytes[3] == b'<';
        let perl_name = bytes.len() > 3 && bytes[2] == b'<';
        if python_name || perl_name {
            let name_start = if python_name { 4 } else { 3 };
            let Some(end) = text.find('>') else {
                return Err(ParseError::new(ErrorCode::InvalidNamedCapture, text));
            };
            let name = &text[name_start..end];
            if name.is_empty() || !name.bytes().all(|byte| byte == b'_' || byte.is_ascii_alphanumeric()) {
                return Err(ParseError::new(ErrorCode::InvalidNamedCapture, &text[..=end]));
            }
            self.push_op(Op::LeftParen { capturing: true })?;
            return Ok(&text[end + 1..]);
        }

        let mut rest = &text[2..];
        let mut flags = self.flags;
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(flag) = rest.chars().next() {
            rest = &rest[flag.len_utf8()..];
            match flag {
                'i' => {
                    flags.0 |= Flags::FOLD_CASE;
                    saw_flag = true;
                }
                'm' => {
                    flags.0 &= !Flags::ONE_LINE;
                    saw_flag = true;
                }
                's' => {
                    flags.0 |= Flags::DOT_NL;
                    saw_flag = true;
                }
                'U' => {
                    flags.0 |= Flags::NON_GREEDY;
                    saw_flag = true;
                }
                '-' if !negated => {
                    // Go inverts the flags so that the setters above clear them, then inverts back.
                    negated = true;
                    flags.0 = !flags.0;
                    saw_flag = false;
                }
                ':' | ')' => {
                    if negated {
                        if !saw_flag {
                            break;
                        }
                        flags.0 = !flags.0;
                    }
                    if flag == ':' {
                        self.push_op(Op::LeftParen { capturing: false })?;
                    }
                    self.flags = flags;
                    return Ok(rest);
                }
                _ => break,
            }
        }
        Err(ParseError::new(ErrorCode::InvalidPerlOp, consumed(text, rest)))
    }

    /// Applies a repetition operator to the top of the stack. `before` starts at the operator and
    /// `after` follows it; returns the text after an optional non-greedy `?`.
    fn repeat(
        &mut self,
        op: Op,
        before: &'a str,
        mut after: &'a str,
        last_repeat: Option<&'a str>,
    ) -> Result<&'a str, ParseError> {
        let mut flags = self.flags;
        if let Some(non_greedy) = after.strip_prefix('?') {
            after = non_greedy;
            flags.0 ^= Flags::NON_GREEDY;
        }
        if let Some(last_repeat) = last_repeat {
            // `a**` and `a++` are refused: Perl would read the second as possessive.
            return Err(ParseError::new(ErrorCode::InvalidRepeatOp, consumed(last_repeat, after)));
        }
        let missing_argument = || ParseError::new(ErrorCode::MissingRepeatArgument, consumed(before, after));
        let Some(sub) = self.stack.last().copied() else { return Err(missing_argument()) };
        if sub.op.is_pseudo() {
            return Err(missing_argument());
        }
        self.allocate();
        let node = Node::wrap(op, flags, &sub);
        if let Some(top) = self.stack.last_mut() {
            *top = node;
        }
        self.check_limits(&node)?;
        if let Op::Repeat { min, max } = op {
            if (min >= 2 || max >= 2) && node.repeat_product > MAX_REPEAT_PRODUCT {
                return Err(ParseError::new(ErrorCode::InvalidRepeatSize, consumed(before, after)));
            }
        }
        Ok(after)
    }

    fn parse_vertical_bar(&mut self) -> Result<(), ParseError> {
        self.concat()?;
        if !self.swap_vertical_bar() {
            self.push_op(Op::VerticalBar)?;
        }
        Ok(())
    }

    fn parse_right_paren(&mut self) -> Result<(), ParseError> {
        self.concat()?;
        if self.swap_vertical_bar() {
            self.stack.pop();
        }
        self.alternate()?;
        let unexpected = || ParseError::new(ErrorCode::UnexpectedParen, self.whole);
        if self.stack.len() < 2 {
            return Err(unexpected());
        }
        let (Some(inner), Some(paren)) = (self.stack.pop(), self.stack.pop()) else {
            return Err(unexpected());
        };
        let Op::LeftParen { capturing } = paren.op else { return Err(unexpected()) };
        self.flags = paren.flags;
        if capturing {
            // Go turns the paren node itself into the capture.
            self.push(Node::wrap(Op::Capture, paren.flags, &inner))
        } else {
            self.push(inner)
        }
    }

    /// Go's `swapVerticalBar`: merges `x|y` of two single characters or classes into one class, or
    /// moves the alternative just parsed below the `|` on top of the stack.
    fn swap_vertical_bar(&mut self) -> bool {
        let n = self.stack.len();
        if n >= 3
            && self.stack[n - 2].op == Op::VerticalBar
            && self.stack[n - 1].is_char_class()
            && self.stack[n - 3].is_char_class()
        {
            let (right, left) = (self.stack[n - 1], self.stack[n - 3]);
            let (simpler, complex) = if right.op > left.op { (left, right) } else { (right, left) };
            let same_literal = complex.op == Op::Literal
                && simpler.single_rune == complex.single_rune
                && simpler.single_rune.is_some()
                && simpler.flags == complex.flags;
            let merged = if same_literal || complex.op == Op::AnyChar || complex.op == Op::AnyCharNotNl {
                complex
            } else {
                Node::leaf(Op::CharClass, complex.flags)
            };
            self.stack[n - 3] = merged;
            self.stack.pop();
            self.free += 1;
            return true;
        }
        if n >= 2 && self.stack[n - 2].op == Op::VerticalBar {
            self.stack.swap(n - 1, n - 2);
            return true;
        }
        false
    }

    /// Replaces the nodes above the topmost `(` or `|` by their concatenation.
    fn concat(&mut self) -> Result<(), ParseError> {
        self.maybe_concat(None);
        let start = self.operands_start();
        let operands = self.stack.split_off(start);
        if operands.is_empty() {
            self.allocate();
            return self.push(Node::leaf(Op::EmptyMatch, self.flags));
        }
        let node = self.collapse(&operands, Op::Concat);
        self.push(node)
    }

    /// Replaces the nodes above the topmost `(` by their alternation.
    fn alternate(&mut self) -> Result<(), ParseError> {
        let start = self.operands_start();
        let operands = self.stack.split_off(start);
        if operands.is_empty() {
            self.allocate();
            return self.push(Node::leaf(Op::EmptyMatch, self.flags));
        }
        let node = self.collapse(&operands, Op::Alternate);
        self.push(node)
    }

    fn operands_start(&self) -> usize {
        self.stack.iter().rposition(|node| node.op.is_pseudo()).map_or(0, |pseudo| pseudo + 1)
    }

    fn collapse(&mut self, operands: &[Node], op: Op) -> Node {
        if let [only] = operands {
            return *only;
        }
        self.allocate();
        let flattened = operands.iter().filter(|operand| operand.op == op).count();
        self.free += u64::try_from(flattened).unwrap_or(u64::MAX);
        // Go also factors common prefixes out of an alternation; that only makes it smaller.
        Node::collapse(op, self.flags, operands)
    }

    fn literal(&mut self, rune: u32) -> Result<(), ParseError> {
        self.allocate();
        let rune = if self.flags.fold_case() { min_fold_rune(rune) } else { rune };
        self.push(Node::literal(rune, self.flags))
    }

    fn push_op(&mut self, op: Op) -> Result<(), ParseError> {
        self.allocate();
        self.push(Node::leaf(op, self.flags))
    }

    /// Go's `push`: a class of one rune becomes a literal (merged into the literal below when it
    /// can), literals below are merged, then the limits are checked.
    fn push(&mut self, mut node: Node) -> Result<(), ParseError> {
        if let (Op::CharClass, Some((rune, fold_case))) = (node.op, node.class_literal) {
            let flags = self.flags.with_fold_case(fold_case);
            if self.maybe_concat(Some((rune, flags))) {
                return Ok(());
            }
            node = Node::literal(rune, flags);
        } else {
            self.maybe_concat(None);
        }
        self.stack.push(node);
        self.check_limits(&node)
    }

    /// Go's `maybeConcat`: merges the two literals on top of the stack; with `next`, the freed top
    /// node becomes that one-rune literal and `true` is returned.
    fn maybe_concat(&mut self, next: Option<(u32, Flags)>) -> bool {
        let n = self.stack.len();
        if n < 2 {
            return false;
        }
        let (below, top) = (self.stack[n - 2], self.stack[n - 1]);
        if below.op != Op::Literal
            || top.op != Op::Literal
            || below.flags.fold_case() != top.flags.fold_case()
        {
            return false;
        }
        self.stack[n - 2].absorb_literal(&top);
        if let Some((rune, flags)) = next {
            self.stack[n - 1] = Node::literal(rune, flags);
            return true;
        }
        self.stack.pop();
        self.free += 1;
        false
    }

    fn allocate(&mut self) {
        if self.free > 0 {
            self.free -= 1;
        } else {
            self.allocated += 1;
        }
    }

    /// Go's `checkLimits` for a node just pushed or repeated (`numRunes` is not modelled).
    fn check_limits(&mut self, node: &Node) -> Result<(), ParseError> {
        self.check_size(node)?;
        if node.height > MAX_HEIGHT {
            return Err(ParseError::new(ErrorCode::NestingDepth, self.whole));
        }
        Ok(())
    }

    /// Go's `checkSize`: sizes are only compared once the allocation count times the product of
    /// the repetition counts seen could exceed the limit.
    fn check_size(&mut self, node: &Node) -> Result<(), ParseError> {
        let too_large = || ParseError::new(ErrorCode::Large, self.whole);
        if !self.tracking_size {
            if self.repeats == 0 {
                self.repeats = 1;
            }
            if let Op::Repeat { min, max } = node.op {
                let count = i64::from(if max == -1 { min } else { max }).max(1);
                self.repeats = if count > MAX_SIZE / self.repeats { MAX_SIZE } else { self.repeats * count };
            }
            if i64::try_from(self.allocated).unwrap_or(i64::MAX) < MAX_SIZE / self.repeats {
                return Ok(());
            }
            self.tracking_size = true;
            if self.stack.iter().any(|entry| entry.size > MAX_SIZE) {
                return Err(too_large());
            }
        }
        if node.size > MAX_SIZE {
            return Err(too_large());
        }
        Ok(())
    }
}

/// Go's `minFoldRune` for ASCII: the upper-case letter. Other runes are kept (see the module docs).
fn min_fold_rune(rune: u32) -> u32 {
    u8::try_from(rune).map_or(rune, |byte| u32::from(byte.to_ascii_uppercase()))
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `text`: `(min, max, rest)` with `max == -1` for no
/// upper bound and `-1` for a number too large; `None` when `{` is a literal.
fn parse_repeat(text: &str) -> Option<(i32, i32, &str)> {
    let (min, mut rest) = parse_int(text.strip_prefix('{')?)?;
    let mut min = min;
    let max;
    if let Some(after_comma) = rest.strip_prefix(',') {
        rest = after_comma;
        if rest.starts_with('}') {
            max = -1;
        } else {
            let (parsed_max, after_max) = parse_int(rest)?;
            rest = after_max;
            max = parsed_max;
            if max < 0 {
                min = -1;
            }
        }
    } else {
        max = min;
    }
    let rest = rest.strip_prefix('}')?;
    Some((min, max, rest))
}

/// A decimal number without leading zeros; `-1` when it reaches 10^8 (Go's overflow guard).
fn parse_int(text: &str) -> Option<(i32, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits >= 2 && text.starts_with('0') {
        return None;
    }
    let mut value: i32 = 0;
    for byte in text[..digits].bytes() {
        if value >= 100_000_000 {
            value = -1;
            break;
        }
        value = value * 10 + i32::from(byte - b'0');
    }
    Some((value, &text[digits..]))
}
