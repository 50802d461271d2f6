//! `AlloyCollector`: the remotecfg client state of one simulated Alloy, as a pure state machine.
//!
//! It follows `grafana/alloy` `internal/service/remotecfg` (`config_manager.go`, `remotecfg.go`;
//! facts: `shared/reference/remotecfg-and-connect.md` §3.3–3.4):
//!
//! - GetConfig carries the last non-empty `hash` a response carried, stored even when the content then
//!   fails to load (`fetchLoadRemoteConfig` calls `setRemoteHash` before loading; `getConfig` sends
//!   `getRemoteHash()`).
//! - A delivered content whose FNV-32 equals the last *received* one is skipped, loaded or not: a
//!   content that failed is not retried until a different one arrives. One equal to the last *loaded*
//!   one turns the status APPLIED without a reload. Any other is loaded: APPLIED (effective config =
//!   the exact bytes, unless empty), or FAILED with Alloy's diagnostics text, the previous config kept
//!   running (and reported as the effective config, unchanged) — or nothing running if nothing loaded.
//! - `not_modified` turns the status APPLIED only when the last received content is the loaded one.
//! - The status is sent when it differs from the one last sent (the first request always carries it);
//!   the effective config when it changed; after a delivery, an immediate second GetConfig reports
//!   what changed (`notifyStatusUpdate`).
//!
//! A load fails when the content contains one of the `--fail-when-contains` texts
//! ([`LoadFailures`]); the error text is shaped like the diagnostics Alloy's loader returns (see
//! [`LoadFailures::check`]) and is deterministic.
//!
//! Simplification: a failed call is only counted; the next tick re-sends whatever was not yet reported
//! (Alloy would also switch its status to FAILED with the transport error, and re-send an effective
//! config it had already sent).
//!
//! Memory: a few words per collector. The delivered content is kept only until its effective-config
//! report has been answered.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::collector::v1 as pb;

/// What the simulator claims to be, in `local_attributes` (as Alloy merges its system attributes).
pub const SIMULATED_ALLOY_VERSION: &str = "v1.12.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadStatus {
    Unset,
    Applied,
    Failed,
}

/// `remote_config_status` as Alloy keeps it: a status and its error text (empty unless FAILED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    status: LoadStatus,
    error: Option<Arc<str>>,
}

impl Status {
    const UNSET: Status = Status { status: LoadStatus::Unset, error: None };
    const APPLIED: Status = Status { status: LoadStatus::Applied, error: None };

    fn failed(error: String) -> Status {
        Status { status: LoadStatus::Failed, error: Some(error.into()) }
    }

    fn to_proto(&self) -> pb::RemoteConfigStatus {
        pb::RemoteConfigStatus {
            status: match self.status {
                LoadStatus::Unset => pb::RemoteConfigStatuses::Unset as i32,
                LoadStatus::Applied => pb::RemoteConfigStatuses::Applied as i32,
                LoadStatus::Failed => pb::RemoteConfigStatuses::Failed as i32,
            },
            error_message: self.error.as_deref().unwrap_or_default().to_owned(),
        }
    }
}

/// Texts that make a delivered config fail to load (`linkmesh simulate --fail-when-contains`).
#[derive(Debug, Default)]
pub struct LoadFailures {
    markers: Vec<String>,
}

impl LoadFailures {
    /// Empty texts are ignored (they would be in every config).
    pub fn new(markers: impl IntoIterator<Item = String>) -> Self {
        LoadFailures { markers: markers.into_iter().filter(|marker| !marker.is_empty()).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }

    /// The error Alloy would report for `content`, or `None` when it loads.
    ///
    /// Shaped like `diag.Diagnostics.AllMessages()` (grafana/alloy `syntax/diag/diag.go`): one
    /// `line:column: message` per failing component, joined by `"; "`. A component whose block holds
    /// a marker fails as the loader reports a component that cannot be built
    /// (`internal/runtime/internal/controller/loader.go`, `Loader.Apply`: "Failed to build component:"
    /// at the block's start; `node_builtin_component.go`, `evaluate`: "building component: …"); a
    /// marker outside any component is reported at its own position.
    pub fn check(&self, content: &str) -> Option<String> {
        if self.markers.is_empty() {
            return None;
        }
        let mut hits: Vec<(usize, &str)> = self
            .markers
            .iter()
            .flat_map(|marker| {
                content.match_indices(marker.as_str()).map(move |(at, _)| (at, marker.as_str()))
            })
            .collect();
        if hits.is_empty() {
            return None;
        }
        hits.sort_unstable();
        let blocks = component_blocks(content);
        // (position, message) per failing component, or per marker outside any component.
        let mut diagnostics: Vec<(usize, String)> = Vec::new();
        let mut failed_blocks: Vec<usize> = Vec::new();
        for (at, marker) in hits {
            let innermost = blocks
                .iter()
                .enumerate()
                .filter(|(_, block)| block.start <= at && at < block.end)
                .max_by_key(|(_, block)| block.start);
            match innermost {
                Some((index, _)) if failed_blocks.contains(&index) => {}
                Some((index, block)) => {
                    failed_blocks.push(index);
                    diagnostics.push((
                        block.start,
                        format!(
                            "{}: Failed to build component: building component: {}: simulated failure: \
                             the config contains {marker:?}",
                            position(content, block.start),
                            block.id
                        ),
                    ));
                }
                None => diagnostics.push((
                    at,
                    format!("{}: simulated failure: the config contains {marker:?}", position(content, at)),
                )),
            }
        }
        diagnostics.sort_by_key(|(at, _)| *at);
        Some(diagnostics.into_iter().map(|(_, message)| message).collect::<Vec<_>>().join("; "))
    }
}

/// A component block: `name.space "label" { … }` from its name's first byte to its closing brace.
struct Block {
    id: String,
    start: usize,
    end: usize,
}

/// The component blocks of an Alloy config (dotted name, optional label), nested ones included
/// (those inside a `declare`); strings and comments are skipped. Tolerant: an unclosed block runs to
/// the end.
fn component_blocks(content: &str) -> Vec<Block> {
    let bytes = content.as_bytes();
    let mut blocks = Vec::new();
    // One entry per open brace: the index in `blocks` when it opened a component block.
    let mut open: Vec<Option<usize>> = Vec::new();
    // The identifier and label seen since the last other token: (name, its start, label).
    let mut header: Option<(String, usize, Option<String>)> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = content[i..].find('\n').map_or(bytes.len(), |end| i + end);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = content[i + 2..].find("*/").map_or(bytes.len(), |end| i + 2 + end + 2);
                continue;
            }
            b'"' | b'`' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != byte {
                    if byte == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let text = content.get(start + 1..i.min(bytes.len())).unwrap_or_default().to_owned();
                i += 1;
                header = match header.take() {
                    Some((name, at, None)) => Some((name, at, Some(text))),
                    _ => None,
                };
                continue;
            }
            b'{' => {
                let component = header.take().filter(|(name, _, _)| name.contains('.'));
                open.push(component.map(|(name, start, label)| {
                    let id = match label {
                        Some(label) => format!("{name}.{label}"),
                        None => name,
                    };
                    blocks.push(Block { id, start, end: bytes.len() });
                    blocks.len() - 1
                }));
            }
            b'}' => {
                header = None;
                if let Some(Some(index)) = open.pop() {
                    blocks[index].end = i;
                }
            }
            _ if byte.is_ascii_alphabetic() || byte == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                header = Some((content[start..i].to_owned(), start, None));
                continue;
            }
            _ if byte.is_ascii_whitespace() => {}
            _ => header = None,
        }
        i += 1;
    }
    blocks
}

/// Alloy's `token.Position` of a byte offset in a file named "": `line:column`, both from 1, the
/// column in bytes.
fn position(content: &str, at: usize) -> String {
    let before = &content.as_bytes()[..at];
    let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
    let column = at - before.iter().rposition(|byte| *byte == b'\n').map_or(0, |newline| newline + 1) + 1;
    format!("{line}:{column}")
}

#[derive(Debug, Default)]
pub struct AlloyCollector {
    /// The last non-empty `hash` a response carried; sent back in every GetConfig.
    last_hash: Option<Box<str>>,
    /// FNV-32 of the content last received, loaded or not (`lastReceivedConfigHash`).
    received_fnv: Option<u32>,
    /// FNV-32 of the content last loaded (`lastLoadedConfigHash`).
    loaded_fnv: Option<u32>,
    /// The current status (`remoteConfigStatus`); `None` is UNSET.
    status: Option<Status>,
    /// The status last sent in a request that succeeded (`lastSentConfigStatus`).
    sent_status: Option<Status>,
    /// The loaded content, until a successful request reported it as the effective config.
    unreported_effective_config: Option<Box<str>>,
    failures: Option<Arc<LoadFailures>>,
}

/// What a GetConfig request carried, so a success can mark exactly that as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    status: Option<Status>,
    effective_config: bool,
    /// Whether this collector reports effective configs at all (Alloy >= 1.12).
    reports_effective_config: bool,
}

impl AlloyCollector {
    pub fn new() -> Self {
        AlloyCollector::default()
    }

    /// A collector that fails to load any config `failures` matches.
    pub fn with_load_failures(failures: Arc<LoadFailures>) -> Self {
        AlloyCollector { failures: (!failures.is_empty()).then_some(failures), ..AlloyCollector::default() }
    }

    fn status(&self) -> &Status {
        self.status.as_ref().unwrap_or(&Status::UNSET)
    }

    fn set_status(&mut self, status: Status) {
        self.status = Some(status);
    }

    fn status_unsent(&self) -> bool {
        self.sent_status.as_ref() != Some(self.status())
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
            status: self.status_unsent().then(|| self.status().clone()),
            effective_config: report_effective_config && self.unreported_effective_config.is_some(),
            reports_effective_config: report_effective_config,
        };
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
            remote_config_status: carried.status.as_ref().map(Status::to_proto),
            effective_config,
            ..Default::default()
        };
        (request, carried)
    }

    /// Applies a successful response to a request that carried `carried` (`fetchLoadRemoteConfig`).
    /// Returns true when Alloy would call GetConfig again at once to report a status or effective
    /// config that changed (`notifyStatusUpdate`).
    pub fn on_response(&mut self, carried: Carried, response: &pb::GetConfigResponse) -> bool {
        if let Some(status) = carried.status {
            self.sent_status = Some(status);
        }
        if carried.effective_config {
            self.unreported_effective_config = None;
        }
        if response.not_modified {
            // APPLIED only when the content last received is the one running, so a config that
            // failed and is still served keeps its FAILED status.
            if self.loaded_fnv.is_some() && self.loaded_fnv == self.received_fnv {
                self.set_status(Status::APPLIED);
            }
            return self.has_unreported_changes();
        }
        if !response.hash.is_empty() && self.last_hash.as_deref() != Some(response.hash.as_str()) {
            self.last_hash = Some(response.hash.as_str().into());
        }
        let fnv = fnv1_32(response.content.as_bytes());
        if self.received_fnv == Some(fnv) {
            return self.has_unreported_changes();
        }
        self.received_fnv = Some(fnv);
        if self.loaded_fnv == Some(fnv) {
            self.set_status(Status::APPLIED);
            return self.has_unreported_changes();
        }
        match self.failures.as_deref().and_then(|failures| failures.check(&response.content)) {
            Some(error) => {
                // The previous config (if any) is reloaded from Alloy's cache and keeps running: the
                // loaded hash and the effective config do not change.
                self.set_status(Status::failed(error));
            }
            None => {
                self.loaded_fnv = Some(fnv);
                self.set_status(Status::APPLIED);
                // `parseAndLoad` returns early on empty content: the effective config stays.
                if !response.content.is_empty() && carried.reports_effective_config {
                    self.unreported_effective_config = Some(response.content.as_str().into());
                }
            }
        }
        self.has_unreported_changes()
    }

    /// Whether a report is still owed (`hasPendingUpdates`; the immediate extra GetConfig failed, say).
    pub fn has_unreported_changes(&self) -> bool {
        self.status_unsent() || self.unreported_effective_config.is_some()
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

    fn failing(markers: &[&str]) -> AlloyCollector {
        AlloyCollector::with_load_failures(Arc::new(LoadFailures::new(markers.iter().map(|m| m.to_string()))))
    }

    /// One poll answered with `response`, as the fleet makes it; the request and whether Alloy would
    /// report at once.
    fn poll(
        collector: &mut AlloyCollector,
        response: &pb::GetConfigResponse,
    ) -> (pb::GetConfigRequest, bool) {
        let (request, carried) = collector.get_config_request("h", &default_local_attributes(), true, true);
        let report_now = collector.on_response(carried, response);
        (request, report_now)
    }

    fn sent_status(request: &pb::GetConfigRequest) -> Option<(pb::RemoteConfigStatuses, String)> {
        request.remote_config_status.as_ref().map(|status| {
            (
                pb::RemoteConfigStatuses::try_from(status.status).expect("known status"),
                status.error_message.clone(),
            )
        })
    }

    fn sent_effective(request: &pb::GetConfigRequest) -> Option<String> {
        request.effective_config.as_ref().map(|effective| {
            let files = &effective.config_map.as_ref().expect("map").config_map;
            String::from_utf8(files[""].body.clone()).expect("utf-8")
        })
    }

    const GOOD: &str = "otelcol.receiver.otlp \"in\" {\n  http { }\n}\n";
    const BAD: &str = "otelcol.receiver.otlp \"in\" {\n  http { }\n}\n\notelcol.exporter.debug \"out\" {\n  verbosity = \"boom\"\n}\n";
    const BAD_ERROR: &str =
        "5:1: Failed to build component: building component: otelcol.exporter.debug.out: \
                             simulated failure: the config contains \"boom\"";

    /// A collector running GOOD (reported), then delivered BAD: the immediate report.
    fn failed_after_good() -> (AlloyCollector, pb::GetConfigRequest) {
        let mut collector = failing(&["boom"]);
        poll(&mut collector, &changed(GOOD, "h1"));
        poll(&mut collector, &not_modified("h1"));
        let (_, report_now) = poll(&mut collector, &changed(BAD, "h2"));
        assert!(report_now, "a failed load is reported at once (config_manager.go, notifyStatusUpdate)");
        let (report, carried) = collector.get_config_request("h", &default_local_attributes(), true, true);
        assert!(!collector.on_response(carried, &not_modified("h2")));
        (collector, report)
    }

    #[test]
    fn a_failed_load_is_reported_failed_with_the_error_and_the_previous_config_keeps_running() {
        // config_manager.go, fetchLoadRemoteConfig: parseAndLoad fails ⇒
        // setRemoteConfigStatus(FAILED, getErrorMessage(err)), then the cached config is reloaded; the
        // effective config is only replaced by a successful parseAndLoad, so it is not re-sent.
        let (_, report) = failed_after_good();
        assert_eq!(sent_status(&report), Some((pb::RemoteConfigStatuses::Failed, BAD_ERROR.to_owned())));
        assert_eq!(sent_effective(&report), None, "GOOD still runs and was already reported");
    }

    #[test]
    fn after_a_failure_the_next_poll_sends_the_hash_of_the_failed_response() {
        // config_manager.go, fetchLoadRemoteConfig: setRemoteHash(gcr.Hash) before loading;
        // remotecfg.go, getConfig: Hash = getRemoteHash().
        let (mut collector, report) = failed_after_good();
        assert_eq!(report.hash, "h2");
        let (poll, _) = poll(&mut collector, &not_modified("h2"));
        assert_eq!(poll.hash, "h2");
    }

    #[test]
    fn a_config_still_served_after_it_failed_stays_failed_and_is_not_retried() {
        // config_manager.go, fetchLoadRemoteConfig: on errNotModified the status turns APPLIED only
        // when lastLoadedConfigHash == lastReceivedConfigHash; a content equal to the last received one
        // is skipped ("matched the last received one"), so a failed content is never loaded again.
        let (mut collector, _) = failed_after_good();
        let (request, report_now) = poll(&mut collector, &not_modified("h2"));
        assert_eq!(sent_status(&request), None, "FAILED was sent already and did not change");
        assert!(!report_now);
        let (_, report_now) = poll(&mut collector, &changed(BAD, "h2"));
        assert!(!report_now, "not reloaded, nothing to report");
        let (request, _) = poll(&mut collector, &not_modified("h2"));
        assert_eq!(sent_status(&request), None);
        assert_eq!(collector.status().status, LoadStatus::Failed);
    }

    #[test]
    fn a_later_config_that_loads_is_reported_applied_once_with_its_effective_config() {
        // config_manager.go, fetchLoadRemoteConfig: success ⇒ setRemoteConfigStatus(APPLIED, "");
        // getRemoteConfigStatusForRequest sends the status only when it differs from the last sent.
        let (mut collector, _) = failed_after_good();
        let fixed = BAD.replace("boom", "basic");
        let (_, report_now) = poll(&mut collector, &changed(&fixed, "h3"));
        assert!(report_now);
        let (report, _) = poll(&mut collector, &not_modified("h3"));
        assert_eq!(sent_status(&report), Some((pb::RemoteConfigStatuses::Applied, String::new())));
        assert_eq!(sent_effective(&report).as_deref(), Some(fixed.as_str()));
        let (next, report_now) = poll(&mut collector, &not_modified("h3"));
        assert_eq!((sent_status(&next), sent_effective(&next), report_now), (None, None, false));
    }

    #[test]
    fn a_rollback_to_the_running_config_is_applied_without_a_reload() {
        // config_manager.go, fetchLoadRemoteConfig: a content equal to lastLoadedConfigHash ⇒
        // APPLIED ("matched the last loaded one"), no parseAndLoad, so no new effective config.
        let (mut collector, _) = failed_after_good();
        let (_, report_now) = poll(&mut collector, &changed(GOOD, "h4"));
        assert!(report_now);
        let (report, _) = poll(&mut collector, &not_modified("h4"));
        assert_eq!(sent_status(&report), Some((pb::RemoteConfigStatuses::Applied, String::new())));
        assert_eq!(sent_effective(&report), None);
    }

    #[test]
    fn a_first_config_that_fails_leaves_nothing_running() {
        // config_manager.go, fetchLoadRemoteConfig: no cached config to restore when
        // lastLoadedConfigHash is empty; grafana/alloy#2873.
        let mut collector = failing(&["boom"]);
        let (first, report_now) = poll(&mut collector, &changed(BAD, "h1"));
        assert_eq!(sent_status(&first), Some((pb::RemoteConfigStatuses::Unset, String::new())));
        assert!(report_now);
        let (report, _) = poll(&mut collector, &not_modified("h1"));
        assert_eq!(sent_status(&report), Some((pb::RemoteConfigStatuses::Failed, BAD_ERROR.to_owned())));
        assert_eq!(sent_effective(&report), None);
    }

    #[test]
    fn a_second_failure_with_the_same_error_text_is_not_sent_again() {
        // config_manager.go, getRemoteConfigStatusForRequest compares status and error_message.
        let (mut collector, _) = failed_after_good();
        let also_bad = format!("{BAD}// another revision\n");
        let (_, report_now) = poll(&mut collector, &changed(&also_bad, "h5"));
        assert!(!report_now, "same status, same error: nothing new to report");
        let (request, _) = poll(&mut collector, &not_modified("h5"));
        assert_eq!((request.hash.as_str(), sent_status(&request)), ("h5", None));
    }

    #[test]
    fn empty_content_is_applied_and_keeps_the_effective_config() {
        // config_manager.go, parseAndLoad returns nil for empty content before setEffectiveConfig
        // (grafana/alloy#5718).
        let mut collector = AlloyCollector::new();
        poll(&mut collector, &changed(GOOD, "h1"));
        poll(&mut collector, &not_modified("h1"));
        let (_, report_now) = poll(&mut collector, &changed("", "h2"));
        assert!(!report_now, "APPLIED already sent, effective config unchanged");
    }

    #[test]
    fn without_effective_config_reports_a_new_config_is_reported_once() {
        let mut collector = AlloyCollector::new();
        let attributes = default_local_attributes();
        let mut calls = |response: &pb::GetConfigResponse| {
            let (_, carried) = collector.get_config_request("h", &attributes, true, false);
            collector.on_response(carried, response)
        };
        assert!(calls(&changed(GOOD, "h1")));
        assert!(!calls(&not_modified("h1")));
        assert!(!calls(&changed("// v2", "h2")), "APPLIED already sent; no effective config to send");
    }

    #[test]
    fn the_error_names_each_failing_component_at_its_block_like_alloy_diagnostics() {
        // syntax/diag/diag.go: Diagnostic.Error is "pos: message", AllMessages joins with "; ";
        // loader.go: "Failed to build component: …" at the block's start position.
        let config = "declare \"pipeline\" {\n  otelcol.processor.attributes \"p_1\" {\n    action {\n      \
                      value = \"boom\"\n    }\n  }\n  otelcol.exporter.otlp \"x\" {\n    // boom, {\n    \
                      endpoint = \"a{b\"\n  }\n}\npipeline \"default\" { }\n// boom\n";
        let failures = LoadFailures::new(["boom".to_owned(), String::new()]);
        let error = failures.check(config).expect("fails");
        assert_eq!(
            error,
            "2:3: Failed to build component: building component: otelcol.processor.attributes.p_1: \
             simulated failure: the config contains \"boom\"; \
             7:3: Failed to build component: building component: otelcol.exporter.otlp.x: \
             simulated failure: the config contains \"boom\"; \
             13:4: simulated failure: the config contains \"boom\""
        );
        assert_eq!(failures.check(config), Some(error), "deterministic");
        assert_eq!(failures.check("otelcol.exporter.otlp \"x\" { }"), None);
        assert_eq!(LoadFailures::new([String::new()]).check(config), None, "an empty text matches nothing");
    }

    #[test]
    fn fnv1_matches_go_hash_fnv_new32() {
        // Go: fmt.Sprintf("%x", fnv.New32().Sum32()) of "" and "a".
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
    }
}
