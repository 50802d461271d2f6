//! The catalogue: every source, processing step and destination type linkmesh can render.

use crate::model::pipeline::{Settings, Signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Source,
    Step,
    Destination,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Source => "source",
            EntryKind::Step => "step",
            EntryKind::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    String,
    Integer,
    Boolean,
    /// A Go-style duration string such as `"30s"`.
    Duration,
    StringList,
    StringMap,
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    pub name: &'static str,
    pub kind: SettingKind,
    pub required: bool,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct CatalogueEntry {
    pub kind: EntryKind,
    pub type_name: &'static str,
    pub description: &'static str,
    pub signals: &'static [Signal],
    pub settings: &'static [SettingSpec],
    /// Write-only credential keys the entry accepts (sealed at rest, filled at delivery).
    pub credentials: &'static [&'static str],
}

/// A validation failure naming the offending field (`settings.endpoint`, `credentials.password`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

pub fn entries() -> &'static [CatalogueEntry] {
    &[]
}

pub fn entry(kind: EntryKind, type_name: &str) -> Option<&'static CatalogueEntry> {
    entries().iter().find(|entry| entry.kind == kind && entry.type_name == type_name)
}

/// Checks `settings` and the credential keys against the entry's schema.
pub fn validate(
    kind: EntryKind,
    type_name: &str,
    _settings: &Settings,
    _credential_keys: &[&str],
) -> Result<&'static CatalogueEntry, FieldError> {
    entry(kind, type_name).ok_or_else(|| FieldError {
        field: "type".to_owned(),
        problem: format!("unknown {} type {type_name:?}", kind.as_str()),
    })
}
