//! Text from strangers, made safe to show and to log: names must look like what they are, and a log
//! field must stay one field on one line.

/// Characters that change how text is displayed without being visible themselves: bidirectional
/// controls (`invoice` + U+202E + `fdp.exe` shows as `invoiceexe.pdf`), zero-width and other invisible format
/// characters (two names that look identical), and fillers that render as blanks.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// Characters of untrusted text kept in a log field.
const MAX_LOGGED_CHARS: usize = 64;

/// `text` for a log field: control and deceptive characters as `\u{…}` escapes (so a newline or an
/// ANSI escape cannot forge a log line or recolour a terminal), backslashes doubled, and at most
/// [`MAX_LOGGED_CHARS`] characters followed by `…`.
pub fn loggable(text: &str) -> String {
    let mut logged = String::with_capacity(text.len().min(MAX_LOGGED_CHARS * 2));
    for (index, c) in text.chars().enumerate() {
        if index == MAX_LOGGED_CHARS {
            logged.push('…');
            break;
        }
        if c == '\\' {
            logged.push_str("\\\\");
        } else if c.is_control() || is_deceptive(c) {
            logged.extend(c.escape_unicode());
        } else {
            logged.push(c);
        }
    }
    logged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_invisible_characters_are_deceptive_and_letters_are_not() {
        for c in ['\u{202E}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{E0041}'] {
            assert!(is_deceptive(c), "{:?}", c);
        }
        for c in ['a', 'é', 'ß', '日', '-', ' ', '🙂'] {
            assert!(!is_deceptive(c), "{:?}", c);
        }
    }

    #[test]
    fn logged_text_stays_on_one_line_and_is_bounded() {
        assert_eq!(loggable("mallory\n2026 INFO forged"), "mallory\\u{a}2026 INFO forged");
        assert_eq!(loggable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(loggable("a\\u{a}"), "a\\\\u{a}", "a literal escape cannot pass for a real one");
        assert_eq!(loggable(&"x".repeat(100)).chars().count(), MAX_LOGGED_CHARS + 1);
    }
}
