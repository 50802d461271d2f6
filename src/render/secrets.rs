//! Credentials in rendered text: markers in what is stored, values in what is delivered.
//!
//! A renderer writes a credential only at a position it generates itself (the auth block of a
//! destination) and asks [`Credentials`] for that destination's own value
//! ([`super::plan::PlannedDestination::credential`]). Stored text (config versions, `GET …/config`,
//! diffs) gets the marker `${linkmesh-secret:<destination id>:<key>}` there; the text delivered to
//! the collector gets the decrypted value, quoted like any other string of its format. Rendered text
//! is never scanned for markers: operator text that looks like one (in a URL, a step setting) stays
//! that literal text in both, so no operator can make a credential appear anywhere else.
//!
//! Text a collector reports back (its effective config, error messages) may quote delivered
//! credentials; [`redact`] replaces every known value before such text is stored.

use std::collections::BTreeMap;
use std::fmt;

const OPEN: &str = "${linkmesh-secret:";
const CLOSE: &str = "}";

/// The marker stored in place of credential `key` of destination `destination_id`.
pub fn placeholder(destination_id: &str, key: &str) -> String {
    format!("{OPEN}{destination_id}:{key}{CLOSE}")
}

/// Decrypted credential values of one collector's destinations, by destination id, then key. Its
/// `Debug` shows only how many values it holds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialValues(BTreeMap<String, BTreeMap<String, String>>);

impl CredentialValues {
    pub fn insert(&mut self, destination_id: &str, key: &str, value: String) {
        self.0.entry(destination_id.to_owned()).or_default().insert(key.to_owned(), value);
    }

    pub fn get(&self, destination_id: &str, key: &str) -> Option<&str> {
        self.0.get(destination_id)?.get(key).map(String::as_str)
    }

    /// `(destination id, key, value)`, sorted by destination id, then key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.0.iter().flat_map(|(destination, values)| {
            values.iter().map(move |(key, value)| (destination.as_str(), key.as_str(), value.as_str()))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }
}

impl fmt::Debug for CredentialValues {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CredentialValues({} values)", self.iter().count())
    }
}

/// What a renderer writes at a credential position.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// Stored text: the marker.
    Markers,
    /// Delivered text: the decrypted value; a credential without one (it could not be decrypted) is
    /// delivered empty.
    Values(&'a CredentialValues),
}

/// The text at one credential position, before the format quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialText {
    /// A marker: the YAML renderer leaves its `$` unescaped so the stored text reads as written.
    Marker(String),
    /// A value: quoted and escaped like every other string (in YAML, `$` doubled).
    Value(String),
}

impl CredentialText {
    pub fn as_str(&self) -> &str {
        match self {
            CredentialText::Marker(text) | CredentialText::Value(text) => text,
        }
    }
}

impl Credentials<'_> {
    pub fn text(&self, destination_id: &str, key: &str) -> CredentialText {
        match self {
            Credentials::Markers => CredentialText::Marker(placeholder(destination_id, key)),
            Credentials::Values(values) => {
                CredentialText::Value(values.get(destination_id, key).unwrap_or_default().to_owned())
            }
        }
    }
}

/// Credential values shorter than this are not replaced by value: a two-letter password would
/// turn every occurrence of those letters into a marker. [`Redaction::short_value_left`] says when
/// one is still in the text, so the caller can withhold it instead.
pub const MIN_REDACTED_CHARS: usize = 4;

/// Text with credential values replaced by their markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub text: String,
    /// A credential value shorter than [`MIN_REDACTED_CHARS`] occurs in `text`.
    pub short_value_left: bool,
}

/// The ways a value can appear in text a collector reports: as is, inside an Alloy string, inside a
/// JSON or YAML double-quoted string, and that with `$` doubled (the OTel Collector's escape).
fn encodings(value: &str) -> Vec<String> {
    let alloy = super::alloy_syntax::quote(value);
    let json = serde_json::Value::from(value).to_string();
    let mut forms = vec![
        value.to_owned(),
        alloy[1..alloy.len() - 1].to_owned(),
        json[1..json.len() - 1].to_owned(),
        json[1..json.len() - 1].replace('$', "$$"),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Replaces every occurrence of every credential value of at least [`MIN_REDACTED_CHARS`]
/// characters (in each of its encodings) with the marker of its credential. Occurrences that overlap
/// (one value inside or across another) become one run of their markers, so no part of either stays;
/// a value shared by several credentials gets the marker of the first by destination id and key. The
/// markers of these credentials are kept as they are, so redacting redacted text changes nothing.
pub fn redact(text: &str, values: &CredentialValues) -> Redaction {
    let mut markers: Vec<String> = Vec::new();
    let mut needles: Vec<(String, String)> = Vec::new();
    let mut short: Vec<String> = Vec::new();
    for (destination_id, key, value) in values.iter() {
        let marker = placeholder(destination_id, key);
        if value.chars().count() >= MIN_REDACTED_CHARS {
            for form in encodings(value) {
                if !needles.iter().any(|(needle, _)| *needle == form) {
                    needles.push((form, marker.clone()));
                }
            }
        } else if !value.is_empty() {
            short.extend(encodings(value));
        }
        markers.push(marker);
    }

    // (start, end, replacement) of every occurrence, overlapping ones included; a kept marker
    // sorts before a value occurrence of the same span.
    let mut found: Vec<(usize, usize, bool, &str)> = markers
        .iter()
        .flat_map(|marker| {
            occurrences(text, marker).map(move |start| (start, start + marker.len(), false, marker.as_str()))
        })
        .collect();
    found.extend(needles.iter().flat_map(|(needle, marker)| {
        occurrences(text, needle).map(move |start| (start, start + needle.len(), true, marker.as_str()))
    }));
    found.sort_by_key(|&(start, end, is_value, _)| (start, std::cmp::Reverse(end), is_value));
    // An occurrence inside another (a value inside a longer value or inside a kept marker) goes
    // with it: sorted by start, then longest first, it is inside when it ends before the furthest
    // end seen so far.
    let mut furthest_end = 0;
    found.retain(|&(_, end, _, _)| {
        let outside = end > furthest_end;
        furthest_end = furthest_end.max(end);
        outside
    });

    let mut redacted = String::with_capacity(text.len());
    let mut short_value_left = false;
    let mut keep_text = |kept: &str, redacted: &mut String| {
        short_value_left |= short.iter().any(|value| kept.contains(value.as_str()));
        redacted.push_str(kept);
    };
    let mut kept_from = 0;
    let mut index = 0;
    while index < found.len() {
        let (start, mut end, _, _) = found[index];
        let mut run: Vec<&str> = Vec::new();
        // Occurrences overlapping the run so far join it.
        while index < found.len() && found[index].0 < end {
            let (_, occurrence_end, _, replacement) = found[index];
            end = end.max(occurrence_end);
            if !run.contains(&replacement) {
                run.push(replacement);
            }
            index += 1;
        }
        keep_text(&text[kept_from..start], &mut redacted);
        redacted.extend(run);
        kept_from = end;
    }
    keep_text(&text[kept_from..], &mut redacted);
    Redaction { text: redacted, short_value_left }
}

/// Start offsets of every occurrence of `needle` in `text`, overlapping ones included.
fn occurrences<'t>(text: &'t str, needle: &'t str) -> impl Iterator<Item = usize> + 't {
    let mut from = 0;
    std::iter::from_fn(move || {
        let start = from + text.get(from..)?.find(needle)?;
        // The next search starts one character later: overlapping occurrences count too.
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        Some(start)
    })
}

/// The kinds of linkmesh token a collector may echo back in what it reports (the supervisor's
/// effective config holds the own-metrics headers it was offered in clear).
const TOKEN_KINDS: [&str; 4] = ["lmct_", "lmoc_", "lmet_", "lmsat_"];
/// What replaces a token's characters after its kind prefix.
pub const REDACTED_TOKEN: &str = "<redacted>";

/// `text` with the characters of every linkmesh token in it (a kind prefix followed by base64url or
/// id characters) replaced by [`REDACTED_TOKEN`]; the kind prefix stays, so the operator sees which
/// credential was there.
pub fn redact_linkmesh_tokens(text: &str) -> std::borrow::Cow<'_, str> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let boundary = text[..at].chars().next_back().is_none_or(|c| !is_token_char(c));
        match TOKEN_KINDS.iter().find(|kind| boundary && rest.starts_with(**kind)) {
            Some(kind) => {
                let body =
                    rest[kind.len()..].find(|c: char| !is_token_char(c)).unwrap_or(rest.len() - kind.len());
                if body == 0 {
                    at += kind.len();
                    continue;
                }
                out.push_str(&text[copied..at + kind.len()]);
                out.push_str(REDACTED_TOKEN);
                at += kind.len() + body;
                copied = at;
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_name_the_destination_and_key_and_values_come_from_that_destination_only() {
        let mut values = CredentialValues::default();
        values.insert("dst_1", "password", "one".to_owned());
        values.insert("dst_2", "password", "two".to_owned());
        assert_eq!(
            Credentials::Markers.text("dst_1", "password"),
            CredentialText::Marker("${linkmesh-secret:dst_1:password}".to_owned())
        );
        assert_eq!(Credentials::Values(&values).text("dst_2", "password").as_str(), "two");
        assert_eq!(Credentials::Values(&values).text("dst_3", "password").as_str(), "");
        assert_eq!(Credentials::Values(&values).text("dst_1", "username").as_str(), "");
    }

    #[test]
    fn debug_output_never_shows_a_value() {
        let mut values = CredentialValues::default();
        values.insert("dst_1", "password", "s3cr3t-value".to_owned());
        let shown = format!("{values:?} {:?}", Credentials::Values(&values));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    fn known(entries: &[(&str, &str, &str)]) -> CredentialValues {
        let mut values = CredentialValues::default();
        for (destination, key, value) in entries {
            values.insert(destination, key, (*value).to_owned());
        }
        values
    }

    #[test]
    fn every_occurrence_in_every_encoding_becomes_the_marker() {
        let values = known(&[("dst_1", "password", "pa\"ss$word")]);
        let text = "a pa\"ss$word b \"pa\\\"ss$word\" c \"pa\\\"ss$$word\"";
        let redacted = redact(text, &values);
        let marker = "${linkmesh-secret:dst_1:password}";
        assert_eq!(redacted.text, format!("a {marker} b \"{marker}\" c \"{marker}\""));
        assert!(!redacted.short_value_left);
    }

    #[test]
    fn repeated_secrets_get_one_marker_and_every_copy_is_replaced() {
        let values = known(&[("dst_a", "password", "same-secret"), ("dst_b", "token", "same-secret")]);
        let redacted = redact("same-secret/same-secret", &values);
        assert_eq!(redacted.text, "${linkmesh-secret:dst_a:password}/${linkmesh-secret:dst_a:password}");
    }

    #[test]
    fn overlapping_and_nested_values_leave_nothing_behind() {
        // One value inside another, and two values overlapping at their ends.
        let values = known(&[
            ("d", "password", "hunter2hunter2"),
            ("d", "username", "hunter2"),
            ("e", "password", "abcdef"),
            ("e", "username", "defghi"),
        ]);
        let redacted = redact("x hunter2hunter2 y hunter2 z abcdefghi!", &values);
        assert_eq!(
            redacted.text,
            "x ${linkmesh-secret:d:password} y ${linkmesh-secret:d:username} \
             z ${linkmesh-secret:e:password}${linkmesh-secret:e:username}!"
        );
        // A value repeating itself overlaps its own occurrences.
        let repeating = known(&[("r", "token", "aaaa")]);
        assert_eq!(redact("baaaaab", &repeating).text, "b${linkmesh-secret:r:token}b");
    }

    #[test]
    fn values_inside_markers_and_redacted_text_stay_unchanged() {
        let values = known(&[("dst_1", "password", "secret"), ("dst_1", "username", "linkmesh")]);
        let once = redact("password = \"secret\" user linkmesh", &values);
        assert_eq!(
            once.text,
            "password = \"${linkmesh-secret:dst_1:password}\" user ${linkmesh-secret:dst_1:username}"
        );
        assert_eq!(redact(&once.text, &values), once);
    }

    #[test]
    fn short_values_are_not_replaced_but_reported() {
        let values = known(&[("d", "username", "bob"), ("d", "password", "abcd")]);
        let redacted = redact("user bob, pass abcd", &values);
        assert_eq!(redacted.text, "user bob, pass ${linkmesh-secret:d:password}");
        assert!(redacted.short_value_left);
        let clean = redact("pass abcd only", &values);
        assert!(!clean.short_value_left);
        // Empty values are no secret at all.
        let empty = values_with_empty();
        assert_eq!(redact("anything", &empty).text, "anything");
        assert!(!redact("anything", &empty).short_value_left);
    }

    fn values_with_empty() -> CredentialValues {
        known(&[("d", "password", "")])
    }

    #[test]
    fn non_ascii_text_and_values_are_cut_only_at_char_boundaries() {
        let values = known(&[("d", "password", "pässwörd")]);
        let redacted = redact("ü pässwörd ☃", &values);
        assert_eq!(redacted.text, "ü ${linkmesh-secret:d:password} ☃");
    }

    #[test]
    fn linkmesh_tokens_echoed_back_keep_only_their_kind() {
        let echoed = "headers:\n  Authorization: Bearer lmoc_col_0a1b_9f8e7d\nother: lmet_AbC-12_x, xlmct_no";
        assert_eq!(
            redact_linkmesh_tokens(echoed),
            "headers:\n  Authorization: Bearer lmoc_<redacted>\nother: lmet_<redacted>, xlmct_no"
        );
        assert!(matches!(redact_linkmesh_tokens("no token; lmct_ alone"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(redact_linkmesh_tokens("é lmsat_k"), "é lmsat_<redacted>");
    }
}
