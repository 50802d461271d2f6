//! `AlloyCollector`: the remotecfg client state of one simulated Alloy, as a pure state machine.
//!
//! It follows `grafana/alloy` `internal/service/remotecfg` (facts: `shared/reference/remotecfg-and-
//! connect.md` §3.3–3.4): GetConfig carries the last non-empty response hash; a delivered config whose
//! FNV-32 differs from the loaded one is "loaded" (status APPLIED) and reported at once by an extra
//! GetConfig carrying `remote_config_status` and `effective_config`; the status is sent only when it
//! changed since it was last sent (the first request always carries it).
//!
//! Simplification: a failed call is only counted; the next tick re-sends whatever was not yet reported
//! (Alloy would also switch its status to FAILED, which the server would then record).
//!
//! Memory: a few words per collector. The delivered content is kept only until its effective-config
//! report has been answered.

use std::collections::HashMap;

use crate::proto::collector::v1 as pb;

/// What the simulator claims to be, in `local_attributes` (as Alloy merges its system attributes).
pub const SIMULATED_ALLOY_VERSION: &str = "v1.12.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadStatus {
    Unset,
    Applied,
}

#[derive(Debug, Default)]
pub struct AlloyCollector {
    /// The last non-empty `hash` a response carried; sent back in every GetConfig.
    last_hash: Option<Box<str>>,
    /// FNV-32 of the content last loaded.
    loaded_fnv: Option<u32>,
    /// Whether the current status was sent in a request that succeeded.
    status_reported: bool,
    applied: bool,
    /// The loaded content, until a successful request reported it as the effective config.
    unreported_effective_config: Option<Box<str>>,
}

/// What a GetConfig request carried, so a success can mark exactly that as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    status: bool,
    effective_config: bool,
}

impl AlloyCollector {
    pub fn new() -> Self {
        AlloyCollector::default()
    }

    fn status(&self) -> LoadStatus {
        if self.applied {
            LoadStatus::Applied
        } else {
            LoadStatus::Unset
        }
    }

    pub fn last_hash(&self) -> Option<&str> {
        self.last_hash.as_deref()
    }

    /// The next GetConfig. `send_hash = false` always asks for the full config (a benchmark of the
    /// "changed config" path; Alloy itself always sends its last hash).
    pub fn get_config_request(
        &self,
        host_id: &str,
        local_attributes: &HashMap<String, String>,
        send_hash: bool,
        report_effective_config: bool,
    ) -> (pb::GetConfigRequest, Carried) {
        let carried = Carried {
            status: !self.status_reported,
            effective_config: report_effective_config && self.unreported_effective_config.is_some(),
        };
        let remote_config_status = carried.status.then(|| pb::RemoteConfigStatus {
            status: match self.status() {
                LoadStatus::Unset => pb::RemoteConfigStatuses::Unset as i32,
                LoadStatus::Applied => pb::RemoteConfigStatuses::Applied as i32,
            },
            error_message: String::new(),
        });
        let effective_config = if carried.effective_config {
            self.unreported_effective_config.as_deref().map(effective_config)
        } else {
            None
        };
        let request = pb::GetConfigRequest {
            id: host_id.to_owned(),
            hash: if send_hash {
                self.last_hash.as_deref().unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            local_attributes: local_attributes.clone(),
            remote_config_status,
            effective_config,
            ..Default::default()
        };
        (request, carried)
    }

    /// Applies a successful response to a request that carried `carried`. Returns true when Alloy would
    /// call GetConfig again at once to report a status or effective config that changed.
    pub fn on_response(&mut self, carried: Carried, response: &pb::GetConfigResponse) -> bool {
        if carried.status {
            self.status_reported = true;
        }
        if carried.effective_config {
            self.unreported_effective_config = None;
        }
        if response.not_modified {
            return false;
        }
        if !response.hash.is_empty() && self.last_hash.as_deref() != Some(response.hash.as_str()) {
            self.last_hash = Some(response.hash.as_str().into());
        }
        let fnv = fnv1_32(response.content.as_bytes());
        if self.loaded_fnv == Some(fnv) {
            return false;
        }
        self.loaded_fnv = Some(fnv);
        let status_changed = !self.applied;
        self.applied = true;
        if status_changed {
            self.status_reported = false;
        }
        self.unreported_effective_config = Some(response.content.as_str().into());
        true
    }

    /// Whether a report is still owed (the immediate extra GetConfig failed, say).
    pub fn has_unreported_changes(&self) -> bool {
        !self.status_reported || self.unreported_effective_config.is_some()
    }
}

/// Alloy's `effective_config`: one file, keyed by the empty name, with the exact loaded bytes.
fn effective_config(content: &str) -> pb::EffectiveConfig {
    pb::EffectiveConfig {
        config_map: Some(pb::AgentConfigMap {
            config_map: HashMap::from([(
                String::new(),
                pb::AgentConfigFile {
                    body: content.as_bytes().to_vec(),
                    content_type: "text/plain".to_owned(),
                },
            )]),
        }),
    }
}

/// The RegisterCollector Alloy sends on start (twice) and on every reload.
pub fn register_request(
    host_id: &str,
    name: &str,
    local_attributes: &HashMap<String, String>,
) -> pb::RegisterCollectorRequest {
    pb::RegisterCollectorRequest {
        id: host_id.to_owned(),
        name: name.to_owned(),
        local_attributes: local_attributes.clone(),
        ..Default::default()
    }
}

/// Alloy's system attributes merged under the user's (`collector.os`, `collector.version`).
pub fn default_local_attributes() -> HashMap<String, String> {
    HashMap::from([
        ("collector.os".to_owned(), "linux".to_owned()),
        ("collector.version".to_owned(), SIMULATED_ALLOY_VERSION.to_owned()),
        ("env".to_owned(), "simulated".to_owned()),
    ])
}

/// Go's `hash/fnv` New32 (FNV-1), which Alloy uses to compare delivered content with the loaded one.
pub fn fnv1_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash = hash.wrapping_mul(0x0100_0193);
        hash ^= u32::from(*byte);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(content: &str, hash: &str) -> pb::GetConfigResponse {
        pb::GetConfigResponse { content: content.to_owned(), hash: hash.to_owned(), not_modified: false }
    }

    fn not_modified(hash: &str) -> pb::GetConfigResponse {
        pb::GetConfigResponse { content: String::new(), hash: hash.to_owned(), not_modified: true }
    }

    #[test]
    fn first_poll_carries_unset_status_and_no_hash() {
        let collector = AlloyCollector::new();
        let (request, _) = collector.get_config_request("host-1", &default_local_attributes(), true, true);
        assert_eq!(request.hash, "");
        assert_eq!(request.id, "host-1");
        let status = request.remote_config_status.expect("first request carries the status");
        assert_eq!(status.status, pb::RemoteConfigStatuses::Unset as i32);
        assert!(request.effective_config.is_none());
    }

    #[test]
    fn a_new_config_is_reported_applied_at_once_then_polls_carry_only_the_hash() {
        let mut collector = AlloyCollector::new();
        let attributes = default_local_attributes();
        let (_, carried) = collector.get_config_request("h", &attributes, true, true);
        assert!(collector.on_response(carried, &changed("// config", "abc")), "extra call expected");

        let (report, carried) = collector.get_config_request("h", &attributes, true, true);
        assert_eq!(report.hash, "abc");
        assert_eq!(
            report.remote_config_status.expect("status").status,
            pb::RemoteConfigStatuses::Applied as i32
        );
        let files = report.effective_config.expect("effective").config_map.expect("map").config_map;
        assert_eq!(files[""].body, b"// config");
        assert!(!collector.on_response(carried, &not_modified("abc")));
        assert!(!collector.has_unreported_changes());

        let (poll, _) = collector.get_config_request("h", &attributes, true, true);
        assert_eq!(poll.hash, "abc");
        assert!(poll.remote_config_status.is_none());
        assert!(poll.effective_config.is_none());
    }

    #[test]
    fn the_same_content_again_is_not_reloaded_or_reported() {
        let mut collector = AlloyCollector::new();
        let attributes = default_local_attributes();
        let (_, carried) = collector.get_config_request("h", &attributes, false, true);
        assert!(collector.on_response(carried, &changed("x", "1")));
        let (request, carried) = collector.get_config_request("h", &attributes, false, true);
        assert_eq!(request.hash, "", "send_hash = false always asks for the full config");
        assert!(!collector.on_response(carried, &changed("x", "1")));
        assert!(!collector.has_unreported_changes());
    }

    #[test]
    fn a_failed_report_is_carried_by_the_next_poll() {
        let mut collector = AlloyCollector::new();
        let attributes = default_local_attributes();
        let (_, carried) = collector.get_config_request("h", &attributes, true, true);
        collector.on_response(carried, &changed("v1", "1"));
        // The extra call fails: nothing is marked reported.
        let _ = collector.get_config_request("h", &attributes, true, true);
        assert!(collector.has_unreported_changes());
        let (retry, _) = collector.get_config_request("h", &attributes, true, true);
        assert!(retry.remote_config_status.is_some());
        assert!(retry.effective_config.is_some());
    }

    #[test]
    fn fnv1_matches_go_hash_fnv_new32() {
        // Go: fmt.Sprintf("%x", fnv.New32().Sum32()) of "" and "a".
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
    }
}
