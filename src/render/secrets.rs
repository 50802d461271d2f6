//! Credentials in rendered text: markers in what is stored, values in what is delivered.
//!
//! A renderer writes a credential only at a position it generates itself (the auth block of a
//! destination) and asks [`Credentials`] for that destination's own value
//! ([`super::plan::PlannedDestination::credential`]). Stored text (config versions, `GET …/config`,
//! diffs) gets the marker `${linkmesh-secret:<destination id>:<key>}` there; the text delivered to
//! the collector gets the decrypted value, quoted like any other string of its format. Rendered text
//! is never scanned for markers: operator text that looks like one (in a URL, a step setting) stays
//! that literal text in both, so no operator can make a credential appear anywhere else.

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
}
