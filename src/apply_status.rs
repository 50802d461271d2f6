//! Whether an Alloy collector runs the config it was delivered, where it does not say so itself.
//!
//! Alloy reports `remote_config_status` (APPLIED / FAILED with the error) only from 1.12 on. For
//! older releases linkmesh infers the outcome from what the collector's own metrics push shows
//! (`prometheus.exporter.self` in the enrollment config): the remotecfg service's figures and the
//! component controllers' counts and edges. What each figure means differs between releases, so the
//! inference reads them through [`releases::ALLOY_RELEASES`], a table written from Alloy's source at
//! each tag, and says "unknown" where that table says the figures cannot tell.
//!
//! - [`releases`]: the per-release signal table and version parsing.
//! - [`inference`]: [`ApplyWatch`], one delivery followed through the scrapes after it (pure).
//! - [`ApplySignals`]: what one scrape shows, read out of an OTLP push by
//!   `own_metrics::apply_signals`.
//!
//! Invariants: a verdict is drawn only from a change the delivery must have caused (the scrape
//! before the delivery is the baseline) or from a figure the table says is set only after a
//! successful load; when Alloy reports status itself, the report wins and the inference only
//! checks it (a disagreement is shown when it outlives one metrics interval).

pub mod inference;
pub mod releases;

use std::collections::BTreeSet;

pub use inference::{ApplyWatch, Expectation, InferredOutcome, Verdict};
pub use releases::{
    release_signals_for, reported_version, AlloyVersion, ReleaseSignals, ALLOY_RELEASES,
    ALLOY_VERSION_ATTRIBUTE,
};

/// The controller of Alloy's remotecfg service: `controller_path` and `controller_id` labels.
pub const REMOTECFG_CONTROLLER: (&str, &str) = ("/", "remotecfg");

/// The controller of linkmesh's `declare "linkmesh_pipeline"` instance inside the remotecfg module.
pub const PIPELINE_CONTROLLER: (&str, &str) = ("/remotecfg", "linkmesh_pipeline.default");

/// Alloy's label for content it received over remotecfg (`getHash`): FNV-1 32-bit, not FNV-1a, over
/// the exact bytes, as eight lowercase hex digits.
pub fn alloy_content_hash(content: &[u8]) -> String {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = content.iter().fold(OFFSET_BASIS, |hash, byte| hash.wrapping_mul(PRIME) ^ u32::from(*byte));
    format!("{hash:08x}")
}

/// Components of one controller by `health_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComponentHealth {
    pub healthy: u64,
    pub unhealthy: u64,
    /// `unknown` and `exited`.
    pub other: u64,
}

impl ComponentHealth {
    pub fn total(&self) -> u64 {
        self.healthy + self.unhealthy + self.other
    }

    pub fn add(&mut self, health_type: &str, count: u64) {
        match health_type {
            "healthy" => self.healthy += count,
            "unhealthy" => self.unhealthy += count,
            _ => self.other += count,
        }
    }
}

/// What one scrape of Alloy's own metrics shows about its remote config. `None` fields: the scrape
/// carried no such series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplySignals {
    /// When the collector took the scrape, by its own clock (the points' `time_unix_nano`).
    pub scraped_at_unix_nano: u64,
    /// `remotecfg_hash` label values whose gauge is 1.
    pub config_hashes: Option<BTreeSet<String>>,
    /// `remotecfg_last_load_success_timestamp_seconds`.
    pub fetch_time_seconds: Option<f64>,
    /// `alloy_component_controller_running_components` of [`REMOTECFG_CONTROLLER`].
    pub remotecfg_components: Option<ComponentHealth>,
    /// `alloy_component_controller_running_components` of [`PIPELINE_CONTROLLER`].
    pub pipeline_components: Option<ComponentHealth>,
    /// Component ids on the `alloy_component_graph_connection` edges of [`PIPELINE_CONTROLLER`].
    pub pipeline_edge_components: Option<BTreeSet<String>>,
}

impl ApplySignals {
    /// Whether the scrape carried anything the inference reads.
    pub fn is_empty(&self) -> bool {
        self.config_hashes.is_none()
            && self.fetch_time_seconds.is_none()
            && self.remotecfg_components.is_none()
            && self.pipeline_components.is_none()
            && self.pipeline_edge_components.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Go's `hash/fnv` `New32` (Alloy's `getHash`), computed with Go 1.26.
    #[test]
    fn content_hash_is_fnv1_32_as_alloy_labels_it() {
        assert_eq!(alloy_content_hash(b""), "811c9dc5");
        assert_eq!(alloy_content_hash(b"a"), "050c5d7e");
        assert_eq!(alloy_content_hash(b"linkmesh_pipeline \"default\" { }\n"), "313b618e");
        assert_eq!(alloy_content_hash(&[0, 1]), "117697cc");
    }
}
