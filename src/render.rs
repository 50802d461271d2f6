//! Rendering: pure functions from the fleet model of one collector to the text it receives.
//!
//! No I/O, clocks or randomness: the same model renders byte-identical output, so the config hash
//! changes exactly when the config does.

pub mod alloy_syntax;
pub mod enrollment;

use sha2::{Digest, Sha256};

use crate::model::{CollectorMode, CollectorRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Alloy,
    Otelcol,
}

impl ConfigFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigFormat::Alloy => "alloy",
            ConfigFormat::Otelcol => "otelcol",
        }
    }
}

/// What a collector receives: content, its hash and the version it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedConfig {
    pub version: u64,
    pub format: ConfigFormat,
    pub content: String,
    /// Hex SHA-256 of `content`; opaque to collectors (Alloy echoes it back).
    pub hash: String,
}

/// Renders the config a collector should run.
///
/// Until the fleet model (sources, routes, destinations) exists every collector receives a comment.
/// It must not be empty: Alloy treats empty content as "keep running the previous config".
pub fn render_collector_config(record: &CollectorRecord) -> RenderedConfig {
    let (format, content) = match record.mode {
        CollectorMode::AlloyRemotecfg => (
            ConfigFormat::Alloy,
            format!(
                "// linkmesh: no sources or routes configured for collector {}\n",
                alloy_syntax::quote(&record.name)
            ),
        ),
        CollectorMode::Opamp => (
            ConfigFormat::Otelcol,
            format!(
                "# linkmesh: no sources or routes configured for collector {:?}\n",
                record.name
            ),
        ),
    };
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    RenderedConfig {
        version: record.config.version,
        format,
        content,
        hash,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::UnixMillis;

    fn record(name: &str) -> CollectorRecord {
        CollectorRecord::new(
            "col_1".into(),
            name.into(),
            CollectorMode::AlloyRemotecfg,
            BTreeMap::new(),
            UnixMillis(1),
        )
    }

    #[test]
    fn empty_model_renders_a_non_empty_stable_comment() {
        let first = render_collector_config(&record("edge-1"));
        let second = render_collector_config(&record("edge-1"));
        assert_eq!(
            first.content,
            "// linkmesh: no sources or routes configured for collector \"edge-1\"\n"
        );
        assert_eq!(first, second);
        assert_eq!(first.hash.len(), 64);
        assert_ne!(first.hash, render_collector_config(&record("edge-2")).hash);
    }

    #[test]
    fn a_name_cannot_break_out_of_the_comment() {
        let rendered = render_collector_config(&record("x\"\nlogging { level = \"debug\" }"));
        assert_eq!(rendered.content.lines().count(), 1);
    }
}
