//! RE2 syntax as Go's `regexp/syntax` parses it (Go 1.26.8, `syntax.Perl` flags), which the
//! collectors compile every pattern with: [`check_regex`] says whether `regexp.Compile` accepts a
//! pattern, and if not, gives Go's error text. Rust's `regex` crate is not a stand-in: it accepts
//! `(?x)`, `\<`, `[a&&b]`, `\u{…}`, Unicode properties Go lacks and larger repetitions.
//!
//! The parser follows Go's own shift-reduce loop (`parser.rs`) over a stack of node summaries
//! (`node.rs`) rather than building a tree, so it uses no recursion and runs in linear time. Go
//! refuses a pattern in four ways, all covered:
//! - syntax: parentheses, `(?flags)` / `(?flags:…)`, group names (`(?P<name>…)`, `(?<name>…)`;
//!   duplicate names are accepted, as in Go), repetition operators and `{n,m}` counts, escapes
//!   (`class.rs`), classes, `\p{Name}` against Go's `unicode` tables (`unicode_names.rs`);
//! - `repeatIsValid`: nested counted repetitions multiplying past 1000 (`(a{100}){11}`);
//! - `maxHeight`: a tree deeper than 1000 (a thousand nested capturing groups);
//! - `maxSize`: a program over 128 MiB of instructions (`(?:x{3400}){1000}`).
//!
//! Known approximations, all in the tree shape that the last two limits are computed on: Go factors
//! common prefixes out of alternations (`ab|a` becomes `a(?:b|)`, a level deeper and smaller;
//! `(?:ab|ac)d` becomes `a[bc]d`, a level shallower), which is not modelled; Go folds case with the full
//! Unicode tables where this models ASCII (`(?i)[é]` stays a class here, Go makes it a literal, one
//! level of height apart), does not count runes in classes (`maxRunes`, 128 MiB of class ranges),
//! and caches sizes per node while literals keep growing. Only patterns within a node or so of the
//! height limit, or near the size limit, can be judged differently.

mod class;
mod error;
mod node;
mod parser;
mod unicode_names;

use std::fmt;

/// Why Go's `regexp.Compile` would refuse a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pub message: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for RegexError {}

/// Whether Go's `regexp.Compile` accepts `pattern`; the error carries Go's message
/// (`error parsing regexp: missing closing ): `(a``).
pub fn check_regex(pattern: &str) -> Result<(), RegexError> {
    parser::Parser::check(pattern).map_err(|error| RegexError { message: error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::check_regex;

    fn accepted(pattern: &str) -> bool {
        check_regex(pattern).is_ok()
    }

    fn error(pattern: &str) -> String {
        match check_regex(pattern) {
            Ok(()) => panic!("{pattern:?} was accepted"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn plain_patterns_are_accepted() {
        for pattern in ["", "a", "(?i)^err", "a|b|", "(a)(b)", "x*?y+?z??", "a{2}{", "a{,3}", "\\Q(*\\E*"] {
            assert!(accepted(pattern), "{pattern:?}: {:?}", check_regex(pattern));
        }
    }

    #[test]
    fn parentheses_must_balance() {
        assert_eq!(error("(a"), "error parsing regexp: missing closing ): `(a`");
        assert_eq!(error("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(error("(?:a"), "error parsing regexp: missing closing ): `(?:a`");
        assert!(accepted("()") && accepted("(?:)*") && accepted("(|)"));
    }

    #[test]
    fn flags_follow_go_syntax() {
        for pattern in ["(?i)a", "(?i-ms:a)", "(?-i)a", "(?U)a*", "(?)", "(?i-i)a", "(?:a)"] {
            assert!(accepted(pattern), "{pattern:?}");
        }
        assert_eq!(error("(?x)a"), "error parsing regexp: invalid or unsupported Perl syntax: `(?x`");
        for pattern in
            ["(?i-)a", "(?-)a", "(?--i)a", "(?", "(?i", "(?=a)", "(?!a)", "(?'n'a)", "(?P=n)", "(?P>n)"]
        {
            assert!(!accepted(pattern), "{pattern:?}");
        }
    }

    #[test]
    fn group_names_are_word_characters() {
        assert!(accepted("(?P<name_1>a)") && accepted("(?<n>a)") && accepted("(?P<1>a)"));
        assert!(accepted("(?P<a>x)(?P<a>y)"), "Go does not refuse duplicate names");
        assert_eq!(error("(?P<>a)"), "error parsing regexp: invalid named capture: `(?P<>`");
        assert_eq!(error("(?<a-b>a)"), "error parsing regexp: invalid named capture: `(?<a-b>`");
        assert_eq!(error("(?P<név>a)"), "error parsing regexp: invalid named capture: `(?P<név>`");
        assert_eq!(error("(?<=a)"), "error parsing regexp: invalid named capture: `(?<=a)`");
        assert!(!accepted("(?P<a") && !accepted("(?P<") && !accepted("(?<"));
    }

    #[test]
    fn repetition_operators_cannot_stack_or_stand_alone() {
        assert_eq!(error("a**"), "error parsing regexp: invalid nested repetition operator: `**`");
        assert_eq!(error("a+*"), "error parsing regexp: invalid nested repetition operator: `+*`");
        assert_eq!(error("a{2}??"), "error parsing regexp: invalid nested repetition operator: `{2}??`");
        assert_eq!(error("*a"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert_eq!(error("a|+"), "error parsing regexp: missing argument to repetition operator: `+`");
        assert_eq!(error("(?i)*"), "error parsing regexp: missing argument to repetition operator: `*`");
        assert!(accepted("a(?i)*") && accepted("a*(?i)*") && accepted("^*") && accepted("(a*)*"));
        assert!(accepted("a*\\Q\\E*"), "an empty \\Q\\E separates the operators, as in Go");
    }

    #[test]
    fn counted_repetition_bounds() {
        assert!(accepted("a{1000}") && accepted("a{0,1000}") && accepted("a{2,}") && accepted("a{0}"));
        assert_eq!(error("a{1001}"), "error parsing regexp: invalid repeat count: `{1001}`");
        assert_eq!(error("a{3,2}"), "error parsing regexp: invalid repeat count: `{3,2}`");
        assert!(!accepted("a{99999999999}") && !accepted("a{1,99999999999}"));
        assert!(accepted("a{01}") && accepted("a{1,02}") && accepted("a{"), "not a repeat: `{{` is literal");
        assert!(!accepted("{2}"), "a valid repeat with nothing to repeat");
    }

    #[test]
    fn nested_counted_repetitions_multiply() {
        assert!(accepted("(a{10}){100}") && accepted("((a{10}){10}){10}") && accepted("(a{1000}){0}x"));
        assert_eq!(error("(a{10}){101}"), "error parsing regexp: invalid repeat count: `{101}`");
        assert!(!accepted("((a{2}){1}){501}") && !accepted("(a{2,}){501}") && !accepted("((a{1000})*){2}b"));
        assert!(accepted("(a{1000}){0,1}") && accepted("(a{1000})*"), "a count of 1 is never checked");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let nested = |depth: usize, atom: &str| format!("{}{atom}{}", "(".repeat(depth), ")".repeat(depth));
        assert!(accepted(&nested(999, "a")) && accepted(&nested(999, "ab")));
        assert!(!accepted(&nested(1000, "a")) && !accepted(&nested(1001, "")));
        assert!(accepted(&nested(10_000, "").replace('(', "(?:")), "non-capturing groups add no node");
        assert_eq!(
            error(&"(".repeat(100_000)),
            format!("error parsing regexp: missing closing ): `{}`", "(".repeat(100_000))
        );
        assert!(error(&nested(100_000, "a")).contains("expression nests too deeply"));
    }

    #[test]
    fn programs_over_the_size_limit_are_refused() {
        assert!(!accepted(&format!("(?:{}){{1000}}", "a".repeat(3400))));
        assert!(!accepted(&"a{1000}".repeat(3400)));
        assert!(accepted(&format!("(?:{}){{1000}}", "a".repeat(3000))));
        assert!(accepted(&"a".repeat(4_000_000)), "a long literal alone is never measured");
    }

    #[test]
    fn escapes_follow_go() {
        for pattern in [
            "\\x41",
            "\\x{10FFFF}",
            "\\x{D800}",
            "\\x{0000041}",
            "\\0",
            "\\012",
            "\\12",
            "\\1234",
            "\\.",
            "\\_",
            "\\a\\f\\t\\n\\r\\v",
            "\\d\\D\\s\\S\\w\\W",
            "\\b\\B\\A\\z",
            "\\pL\\PL\\p{Greek}\\P{^Lu}",
            "\\Qa\\E",
            "\\<",
        ] {
            assert!(accepted(pattern), "{pattern:?}: {:?}", check_regex(pattern));
        }
        assert_eq!(error("\\Z"), "error parsing regexp: invalid escape sequence: `\\Z`");
        assert_eq!(error("\\x{110000}"), "error parsing regexp: invalid escape sequence: `\\x{110000`");
        assert_eq!(error("a\\"), "error parsing regexp: trailing backslash at end of expression: ``");
        for pattern in
            ["\\G", "\\1", "\\8", "\\e", "\\u0041", "\\x", "\\x4", "\\xG1", "\\x{}", "\\x{4", "\\C", "\\é"]
        {
            assert!(!accepted(pattern), "{pattern:?}");
        }
    }

    #[test]
    fn unicode_class_names_come_from_go_tables() {
        for pattern in [
            "\\p{greek}",
            "\\pl",
            "\\p{LU}",
            "\\p{Letter}",
            "\\p{Any}",
            "\\p{ASCII}",
            "\\p{Lc}",
            "[\\p{Han}]",
        ] {
            assert!(accepted(pattern), "{pattern:?}");
        }
        assert_eq!(
            error("\\p{Old_Italic}"),
            "error parsing regexp: invalid character class range: `\\p{Old_Italic}`"
        );
        for pattern in ["\\p{L&}", "\\p{IsGreek}", "\\p{^}", "\\p", "\\p{L", "\\pX", "\\p{Emoji}"] {
            assert!(!accepted(pattern), "{pattern:?}");
        }
    }

    #[test]
    fn character_classes_follow_go() {
        for pattern in [
            "[]a]",
            "[^]a]",
            "[a-]",
            "[-a]",
            "[[:alpha:]]",
            "[[:^alpha:]]",
            "[\\d-z]",
            "[a&&b]",
            "[\\]]",
            "[[]",
        ] {
            assert!(accepted(pattern), "{pattern:?}: {:?}", check_regex(pattern));
        }
        assert_eq!(error("[z-a]"), "error parsing regexp: invalid character class range: `z-a`");
        assert_eq!(error("[[:foo:]]"), "error parsing regexp: invalid character class range: `[:foo:]`");
        assert_eq!(error("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert!(!accepted("[[:a]b:]"), "Go looks for the `:]` past the class");
        for pattern in ["[]", "[^]", "[a-\\d]", "[\\b]", "[\\Q]\\E]", "[\\z]"] {
            assert!(!accepted(pattern), "{pattern:?}");
        }
    }
}
