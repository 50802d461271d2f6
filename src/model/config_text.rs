//! The text of one stored config version, kept as its first line and the rest.
//!
//! The first line is the only one that names the collector (`render::Heading`); a fleet-wide change
//! renders the rest once for every collector whose render input differs only in name and id
//! (`render::SharedRenders`), and each of those versions holds that one copy. Ten thousand collectors
//! keeping [`MAX_CONFIG_VERSIONS`](super::collector::MAX_CONFIG_VERSIONS) versions hold each
//! fleet-wide version's text about once instead of ten thousand times.
//!
//! Serialized as the whole text, as before the split: snapshots, backups and the API are unchanged.
//! Decoding inside [`sharing`] (a snapshot being read) splits each text at its first line break and
//! shares rests that are equal, so a node that loads a snapshot holds what the node that wrote it did.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone)]
pub struct ConfigText {
    /// Up to and including the first line break (all of a text without one).
    heading: Box<str>,
    rest: Arc<str>,
}

impl ConfigText {
    /// A text of its own; inside [`sharing`], its rest is shared with equal ones decoded before.
    pub fn new(text: &str) -> ConfigText {
        let split = text.find('\n').map_or(text.len(), |line_break| line_break + 1);
        let (heading, rest) = text.split_at(split);
        let rest = SHARING.with(|sharing| match sharing.borrow_mut().as_mut() {
            Some(seen) => match seen.get(rest) {
                Some(shared) => shared.clone(),
                None => {
                    let rest: Arc<str> = Arc::from(rest);
                    seen.insert(rest.clone());
                    rest
                }
            },
            None => Arc::from(rest),
        });
        ConfigText { heading: Box::from(heading), rest }
    }

    /// `heading` then `rest`, the rest shared with every other text holding it.
    pub fn from_parts(heading: &str, rest: Arc<str>) -> ConfigText {
        ConfigText { heading: Box::from(heading), rest }
    }

    fn len(&self) -> usize {
        self.heading.len() + self.rest.len()
    }

    /// The whole text.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.len());
        text.push_str(&self.heading);
        text.push_str(&self.rest);
        text
    }

    /// Whether both hold the very same rest.
    #[cfg(test)]
    pub fn shares_rest_with(&self, other: &ConfigText) -> bool {
        Arc::ptr_eq(&self.rest, &other.rest)
    }

    /// Whether this is `text`, compared without joining.
    #[cfg(test)]
    fn is(&self, text: &str) -> bool {
        text.len() == self.len()
            && text.as_bytes()[..self.heading.len()] == *self.heading.as_bytes()
            && text.as_bytes()[self.heading.len()..] == *self.rest.as_bytes()
    }
}

/// Equal texts are equal however they were split.
impl PartialEq for ConfigText {
    fn eq(&self, other: &ConfigText) -> bool {
        self.len() == other.len()
            && self
                .heading
                .bytes()
                .chain(self.rest.bytes())
                .eq(other.heading.bytes().chain(other.rest.bytes()))
    }
}

impl Eq for ConfigText {}

impl fmt::Display for ConfigText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.heading)?;
        formatter.write_str(&self.rest)
    }
}

impl fmt::Debug for ConfigText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_text(), formatter)
    }
}

thread_local! {
    /// The rests decoded so far on this thread, while [`sharing`] runs.
    static SHARING: RefCell<Option<HashSet<Arc<str>>>> = const { RefCell::new(None) };
    /// One buffer per thread to join a text in while serializing (a snapshot serializes every version
    /// of every collector).
    static JOINED: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `decode` with equal rests shared among the texts it decodes on this thread.
pub fn sharing<T>(decode: impl FnOnce() -> T) -> T {
    struct Reset(Option<HashSet<Arc<str>>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let outer = self.0.take();
            SHARING.with(|sharing| *sharing.borrow_mut() = outer);
        }
    }
    let outer = SHARING.with(|sharing| sharing.borrow_mut().replace(HashSet::new()));
    let _reset = Reset(outer);
    decode()
}

impl Serialize for ConfigText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JOINED.with(|joined| match joined.try_borrow_mut() {
            Ok(mut joined) => {
                joined.clear();
                joined.push_str(&self.heading);
                joined.push_str(&self.rest);
                let result = serializer.serialize_str(&joined);
                // Large texts do not keep their buffer.
                if joined.capacity() > 1 << 20 {
                    *joined = String::new();
                }
                result
            }
            Err(_) => serializer.serialize_str(&self.to_text()),
        })
    }
}

impl<'de> Deserialize<'de> for ConfigText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ConfigText, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(ConfigText::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_reads_back_whole_however_it_was_split() {
        let rest: Arc<str> = Arc::from("receivers:\n  otlp: {}\n");
        let joined = ConfigText::from_parts("# collector a\n", rest.clone());
        let whole = ConfigText::new("# collector a\nreceivers:\n  otlp: {}\n");
        assert_eq!(joined, whole);
        assert_eq!(joined.to_text(), whole.to_string());
        assert!(joined.is("# collector a\nreceivers:\n  otlp: {}\n"));
        assert!(!joined.is("# collector b\nreceivers:\n  otlp: {}\n"));
        assert_ne!(joined, ConfigText::from_parts("# collector b\n", rest));
        for text in ["", "no line break", "\n", "one\n", "one\ntwo"] {
            let decoded = ConfigText::new(text);
            assert_eq!((decoded.to_text().as_str(), decoded.len()), (text, text.len()));
            assert!(decoded.is(text));
        }
    }

    #[test]
    fn serialized_as_the_whole_text_and_rests_shared_when_decoded_while_sharing() {
        let texts: Vec<ConfigText> =
            ["# a\nsame\n", "# b\nsame\n", "# c\nother\n"].into_iter().map(ConfigText::new).collect();
        let encoded = serde_json::to_string(&texts).expect("encodes");
        assert_eq!(encoded, r##"["# a\nsame\n","# b\nsame\n","# c\nother\n"]"##);
        let alone: Vec<ConfigText> = serde_json::from_str(&encoded).expect("decodes");
        assert_eq!(alone, texts);
        assert!(!Arc::ptr_eq(&alone[0].rest, &alone[1].rest), "outside sharing, each its own");
        let shared: Vec<ConfigText> = sharing(|| serde_json::from_str(&encoded)).expect("decodes");
        assert_eq!(shared, texts);
        assert!(Arc::ptr_eq(&shared[0].rest, &shared[1].rest), "equal rests are one");
        assert!(!Arc::ptr_eq(&shared[0].rest, &shared[2].rest));
        let after: Vec<ConfigText> = serde_json::from_str(&encoded).expect("decodes");
        assert!(!Arc::ptr_eq(&after[0].rest, &after[1].rest), "sharing ends with its scope");
        let packed = rmp_serde::to_vec_named(&texts).expect("msgpack");
        let unpacked: Vec<ConfigText> = rmp_serde::from_slice(&packed).expect("msgpack");
        assert_eq!(unpacked, texts);
    }
}
