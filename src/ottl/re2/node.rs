//! One entry of the parse stack: what Go's parser keeps of a `*Regexp` that can change a verdict.
//!
//! The parser never builds the tree. Each node carries the figures Go's limits are computed from,
//! folded in as the node is made: its height (`maxHeight`), its compiled size in instructions
//! (`calcSize`, for `maxSize`) and the largest product of counted repetitions on a path below it
//! (`repeatIsValid`). Literal runes are kept only as far as they decide how Go merges nodes.

/// Go's `maxHeight`: a deeper tree is "expression nests too deeply".
pub(super) const MAX_HEIGHT: u32 = 1000;

/// Go's `maxSize`: 128 MiB of 40-byte instructions.
pub(super) const MAX_SIZE: i64 = (128 << 20) / 40;

/// Go's limit on nested counted repetitions (`repeatIsValid(re, 1000)`).
pub(super) const MAX_REPEAT_PRODUCT: u64 = 1000;

/// Sizes are saturated here so that no arithmetic overflows; anything above `MAX_SIZE` is refused.
const SIZE_CEILING: i64 = 1 << 50;

/// Products are saturated here; anything above `MAX_REPEAT_PRODUCT` is refused.
const PRODUCT_CEILING: u64 = 1 << 20;

/// The operators Go distinguishes, in Go's order where the parser compares them
/// (`Literal < CharClass < AnyCharNotNl < AnyChar`, pseudo-operators last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Op {
    EmptyMatch,
    Literal,
    CharClass,
    AnyCharNotNl,
    AnyChar,
    /// `^ $ \A \z \b \B`: zero-width, never merged.
    Assertion,
    Capture,
    Star,
    Plus,
    Quest,
    Repeat {
        min: i32,
        max: i32,
    },
    Concat,
    Alternate,
    /// `opLeftParen`: an open group; `capturing` says whether `)` makes a capture node.
    LeftParen {
        capturing: bool,
    },
    VerticalBar,
}

impl Op {
    /// Go's `op >= opPseudo`.
    pub(super) fn is_pseudo(self) -> bool {
        matches!(self, Op::LeftParen { .. } | Op::VerticalBar)
    }
}

/// Go's `FoldCase` and the other flags that matter to literal merging (compared whole, as Go does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Flags(pub(super) u16);

impl Flags {
    pub(super) const FOLD_CASE: u16 = 1;
    pub(super) const ONE_LINE: u16 = 1 << 4;
    pub(super) const NON_GREEDY: u16 = 1 << 5;
    pub(super) const DOT_NL: u16 = 1 << 3;
    /// `syntax.Perl` without `ClassNL`/`PerlX`/`UnicodeGroups`, which never change here.
    pub(super) const PERL: Flags = Flags(Flags::ONE_LINE);

    pub(super) fn fold_case(self) -> bool {
        self.0 & Flags::FOLD_CASE != 0
    }

    pub(super) fn with_fold_case(self, fold_case: bool) -> Flags {
        if fold_case {
            Flags(self.0 | Flags::FOLD_CASE)
        } else {
            Flags(self.0 & !Flags::FOLD_CASE)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub(super) op: Op,
    pub(super) flags: Flags,
    /// For a literal: how many runes it holds.
    pub(super) literal_runes: u64,
    /// For a one-rune literal: the rune (case-folded to its smallest form under `FoldCase`).
    pub(super) single_rune: Option<u32>,
    /// For a character class: the literal Go turns it into when pushed (`[a]`, `[Aa]`), if known.
    pub(super) class_literal: Option<(u32, bool)>,
    /// For a concatenation or alternation: how many operands it holds after flattening.
    pub(super) operands: u64,
    pub(super) height: u32,
    pub(super) size: i64,
    /// The largest product of counted repetitions on a path from here down (1 when there is none).
    pub(super) repeat_product: u64,
}

impl Node {
    pub(super) fn leaf(op: Op, flags: Flags) -> Node {
        Node {
            op,
            flags,
            literal_runes: 0,
            single_rune: None,
            class_literal: None,
            operands: 0,
            height: 1,
            size: 1,
            repeat_product: 1,
        }
    }

    pub(super) fn literal(rune: u32, flags: Flags) -> Node {
        Node { literal_runes: 1, single_rune: Some(rune), ..Node::leaf(Op::Literal, flags) }
    }

    /// Go's `isCharClass`: what `a|b` may merge into one class.
    pub(super) fn is_char_class(&self) -> bool {
        match self.op {
            Op::Literal => self.literal_runes == 1,
            Op::CharClass | Op::AnyCharNotNl | Op::AnyChar => true,
            _ => false,
        }
    }

    /// Appends the runes of literal `other` (Go's `maybeConcat`).
    pub(super) fn absorb_literal(&mut self, other: &Node) {
        self.literal_runes = self.literal_runes.saturating_add(other.literal_runes);
        self.single_rune = None;
        self.size = to_size(self.literal_runes);
    }

    /// A unary operator (capture, star, plus, quest, counted repetition) over `sub`.
    pub(super) fn wrap(op: Op, flags: Flags, sub: &Node) -> Node {
        let sub_size = sub.size;
        let size = match op {
            Op::Capture | Op::Star => sub_size.saturating_add(2),
            Op::Plus | Op::Quest => sub_size.saturating_add(1),
            Op::Repeat { min, max: -1 } => {
                if min == 0 {
                    sub_size.saturating_add(2)
                } else {
                    i64::from(min).saturating_mul(sub_size).saturating_add(1)
                }
            }
            Op::Repeat { min, max } => {
                i64::from(max).saturating_mul(sub_size).saturating_add(i64::from(max - min))
            }
            _ => 1,
        };
        let repeat_product = match op {
            // `x{0}` ends every path through it: Go does not look below it.
            Op::Repeat { max: 0, .. } => 1,
            Op::Repeat { min, max } => {
                let count = if max < 0 { min } else { max };
                let factor = u64::try_from(count).unwrap_or(0).max(1);
                factor.saturating_mul(sub.repeat_product).min(PRODUCT_CEILING)
            }
            _ => sub.repeat_product,
        };
        Node {
            height: sub.height.saturating_add(1),
            size: size.clamp(1, SIZE_CEILING),
            repeat_product,
            ..Node::leaf(op, flags)
        }
    }

    /// A concatenation or alternation of `subs` (at least two), flattening operands of the same
    /// operator as Go's `collapse` does.
    pub(super) fn collapse(op: Op, flags: Flags, subs: &[Node]) -> Node {
        let mut operands: u64 = 0;
        let mut operand_sizes: i64 = 0;
        let mut operand_height: u32 = 0;
        let mut repeat_product: u64 = 1;
        for sub in subs {
            repeat_product = repeat_product.max(sub.repeat_product);
            if sub.op == op {
                operands = operands.saturating_add(sub.operands);
                operand_height = operand_height.max(sub.height.saturating_sub(1));
                let joins = if op == Op::Alternate { to_size(sub.operands.saturating_sub(1)) } else { 0 };
                operand_sizes = operand_sizes.saturating_add(sub.size.saturating_sub(joins));
            } else {
                operands = operands.saturating_add(1);
                operand_height = operand_height.max(sub.height);
                operand_sizes = operand_sizes.saturating_add(sub.size);
            }
        }
        let size = if op == Op::Alternate {
            operand_sizes.saturating_add(to_size(operands.saturating_sub(1)))
        } else {
            operand_sizes
        };
        Node {
            operands,
            height: operand_height.saturating_add(1),
            size: size.clamp(1, SIZE_CEILING),
            repeat_product,
            ..Node::leaf(op, flags)
        }
    }
}

fn to_size(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(SIZE_CEILING).min(SIZE_CEILING)
}
