//! What Alloy's own metrics say about a remote config, release by release: the signal table.
//!
//! Every row was read from Alloy's source at the tags it names (github.com/grafana/alloy, the
//! remotecfg service in `internal/service/remotecfg/` and the component controller in
//! `internal/runtime/internal/controller/`); each row lists the file and lines it comes from. Rows
//! cover 1.2.0 to 1.18.1, the newest tag read. A release outside the table gets no row, and no
//! inference relies on what the table does not say.
//!
//! Facts that hold in every row (same sources): the `hash` label of `remotecfg_hash` is FNV-1
//! 32-bit (`fnv.New32`, not 32a) in lowercase hex over the exact content bytes Alloy received;
//! `alloy_component_controller_running_components{controller_path, controller_id, health_type}`
//! counts the components of each controller by health at scrape time (the remotecfg service's
//! controller is `controller_path="/"`, `controller_id="remotecfg"`; linkmesh's declare instance
//! runs in `"/remotecfg"`, `"linkmesh_pipeline.default"`); a declare instance whose body fails to
//! load or evaluate is `unhealthy` until an evaluation succeeds (`CustomComponentNode.CurrentHealth`
//! is the least healthy of run and evaluation health); a graph that fails to build (unknown or
//! unstable component, bad reference) leaves the previous graph running (`Loader.Apply` returns
//! before replacing it), while a graph that builds but fails to evaluate replaces it.

use std::fmt;

/// An Alloy release as it reports itself (`collector.version`, Alloy's `build.Version`: `v1.10.2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlloyVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl AlloyVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        AlloyVersion { major, minor, patch }
    }

    /// `v1.10.2`, `1.10.2`, `v1.11.0-rc.1`, `v1.12.0-devel+abc`: the leading `major.minor.patch`.
    /// A pre-release or development build is read as the release it leads to, which is what its
    /// source is closest to; anything else is `None`.
    pub fn parse(text: &str) -> Option<AlloyVersion> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let mut number = || -> Option<u32> {
            let part = parts.next()?;
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let version = AlloyVersion::new(number()?, number()?, number()?);
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for AlloyVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// When `remotecfg_hash{hash}` is set, relative to loading the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashLabel {
    /// After the content loaded, the vector reset first: the one series names the running content.
    AfterLoadReset,
    /// Before the content is parsed (vector reset): the one series names the content last received,
    /// loaded or refused.
    BeforeLoad,
    /// After the content loaded, never reset: every content loaded since the process started keeps
    /// a series at 1, so only a series new since the delivery says something.
    AfterLoadAccumulating,
}

/// When `remotecfg_last_load_success_timestamp_seconds` is set (to the collector's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchTime {
    /// On every answered GetConfig, `not_modified` included: it moves every poll.
    EveryPoll,
    /// Only when a GetConfig answer carries content, before it is loaded: it moves when a delivery
    /// reaches the collector.
    ContentOnly,
}

/// What `remotecfg_last_load_successful` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastLoadSuccessful {
    /// 1 when the GetConfig call succeeded, before anything is parsed: says nothing about loading.
    FetchSucceeded,
    /// As `FetchSucceeded`, but a `not_modified` answer counts as a failure (0, and
    /// `remotecfg_load_failures_total` grows every poll).
    NotModifiedCountsAsFailure,
    /// 0 when the content was refused, then 1 again within the same fetch when the cached config
    /// reloads: a refusal is visible only to a scrape that falls in between.
    LoadResultThenCacheFallback,
}

/// One place in Alloy's source a row relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine {
    pub tag: &'static str,
    pub file: &'static str,
    pub lines: &'static str,
    pub says: &'static str,
}

/// The signals of one range of releases that behave alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseSignals {
    pub first: AlloyVersion,
    pub last: AlloyVersion,
    pub hash_label: HashLabel,
    pub fetch_time: FetchTime,
    pub last_load_successful: LastLoadSuccessful,
    /// Sends `remote_config_status` (APPLIED / FAILED with the error) on GetConfig.
    pub reports_status: bool,
    /// Sends back the hash of the last content answer, so the server can answer `not_modified`.
    pub echoes_hash: bool,
    /// Calls GetConfig over HTTP GET (Connect `WithHTTPGet`).
    pub get_transport: bool,
    /// Calls UnregisterCollector on shutdown.
    pub unregisters: bool,
    /// Exports `alloy_component_graph_connection{from,to}`.
    pub graph_connections: bool,
    /// `Update` returns the RegisterCollector error, so Alloy does not start while the remotecfg
    /// server is unreachable (the initial load fails: `updating service: unavailable`).
    pub refuses_to_start_unreachable: bool,
    pub sources: &'static [SourceLine],
}

impl ReleaseSignals {
    pub fn contains(&self, version: AlloyVersion) -> bool {
        self.first <= version && version <= self.last
    }

    /// `1.7.3–1.11.3`, or one version.
    pub fn range_label(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}–{}", self.first, self.last)
        }
    }
}

const REMOTECFG: &str = "internal/service/remotecfg/remotecfg.go";
const CONFIG_MANAGER: &str = "internal/service/remotecfg/config_manager.go";
const REMOTECFG_METRICS: &str = "internal/service/remotecfg/metrics.go";
const CONTROLLER_METRICS: &str = "internal/runtime/internal/controller/metrics.go";

const V1_2_SOURCES: &[SourceLine] = &[
    SourceLine { tag: "v1.2.0", file: REMOTECFG, lines: "29-33", says: "getHash: fnv.New32, %x" },
    SourceLine {
        tag: "v1.2.0",
        file: REMOTECFG,
        lines: "287-295",
        says: "last_load_successful and the fetch timestamp are set when GetConfig answers, before parsing; failures_total counts failed calls",
    },
    SourceLine {
        tag: "v1.2.0",
        file: REMOTECFG,
        lines: "372-380, 390-398",
        says: "remotecfg_hash is reset and set only after LoadSource succeeded",
    },
    SourceLine {
        tag: "v1.2.0",
        file: CONTROLLER_METRICS,
        lines: "103-141",
        says: "running_components by health_type with controller_path/controller_id",
    },
];

const V1_5_SOURCES: &[SourceLine] = &[
    SourceLine {
        tag: "v1.5.0",
        file: REMOTECFG,
        lines: "366-383",
        says: "a not_modified answer also sets last_load_successful and the fetch timestamp",
    },
    SourceLine { tag: "v1.5.0", file: REMOTECFG, lines: "421", says: "GetConfig carries Hash: remoteHash" },
    SourceLine {
        tag: "v1.5.0",
        file: REMOTECFG,
        lines: "471-476, 487-493",
        says: "remotecfg_hash is still set after LoadSource succeeded",
    },
];

const V1_7_0_SOURCES: &[SourceLine] = &[
    SourceLine {
        tag: "v1.7.0",
        file: REMOTECFG,
        lines: "484-485",
        says: "setLastLoadedCfgHash (reset + set remotecfg_hash) runs before LoadSource: a refused config is labelled too",
    },
    SourceLine { tag: "v1.7.0", file: REMOTECFG, lines: "321", says: "client built WithHTTPGet" },
    SourceLine {
        tag: "v1.7.0",
        file: REMOTECFG,
        lines: "380-389",
        says: "the fetch timestamp still moves on not_modified answers",
    },
];

const V1_7_2_SOURCES: &[SourceLine] = &[SourceLine {
    tag: "v1.7.2",
    file: REMOTECFG,
    lines: "383-389",
    says: "only an answer with content sets last_load_successful and the timestamp; not_modified falls into the failure branch",
}];

const V1_7_3_SOURCES: &[SourceLine] = &[
    SourceLine {
        tag: "v1.7.3",
        file: REMOTECFG,
        lines: "383-389",
        says: "not_modified no longer counts as a failure; the timestamp moves only on content answers",
    },
    SourceLine {
        tag: "v1.8.0",
        file: REMOTECFG,
        lines: "356-360",
        says: "Update returns the RegisterCollector error",
    },
    SourceLine {
        tag: "v1.11.3",
        file: REMOTECFG,
        lines: "532-533",
        says: "remotecfg_hash still set before LoadSource",
    },
];

const V1_12_SOURCES: &[SourceLine] = &[
    SourceLine {
        tag: "v1.12.0",
        file: CONFIG_MANAGER,
        lines: "196-201, 354-355",
        says: "remotecfg_hash set after LoadSource succeeded, without a reset",
    },
    SourceLine {
        tag: "v1.12.0",
        file: CONFIG_MANAGER,
        lines: "281",
        says: "the fetch timestamp is set on a content answer, before loading",
    },
    SourceLine {
        tag: "v1.12.0",
        file: CONFIG_MANAGER,
        lines: "320-347",
        says:
            "a refused config sets last_load_successful to 0, reloads the cached config and sets it back to 1",
    },
    SourceLine {
        tag: "v1.12.0",
        file: REMOTECFG_METRICS,
        lines: "79-85",
        says: "remotecfg_last_received_hash is declared but never registered: it is not exported",
    },
    SourceLine {
        tag: "v1.12.0",
        file: REMOTECFG,
        lines: "283",
        says: "GetConfig carries RemoteConfigStatus",
    },
];

const V1_13_SOURCES: &[SourceLine] = &[SourceLine {
    tag: "v1.13.0",
    file: REMOTECFG,
    lines: "158-163",
    says: "UnregisterCollector on shutdown",
}];

const V1_17_SOURCES: &[SourceLine] = &[SourceLine {
    tag: "v1.17.0",
    file: CONTROLLER_METRICS,
    lines: "73-77",
    says: "alloy_component_graph_connection{from,to} per controller",
}];

/// The table, oldest first, without gaps from 1.2.0 to 1.18.1.
pub const ALLOY_RELEASES: &[ReleaseSignals] = &[
    ReleaseSignals {
        first: AlloyVersion::new(1, 2, 0),
        last: AlloyVersion::new(1, 4, 3),
        hash_label: HashLabel::AfterLoadReset,
        fetch_time: FetchTime::EveryPoll,
        last_load_successful: LastLoadSuccessful::FetchSucceeded,
        reports_status: false,
        echoes_hash: false,
        get_transport: false,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: false,
        sources: V1_2_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 5, 0),
        last: AlloyVersion::new(1, 6, 1),
        hash_label: HashLabel::AfterLoadReset,
        fetch_time: FetchTime::EveryPoll,
        last_load_successful: LastLoadSuccessful::FetchSucceeded,
        reports_status: false,
        echoes_hash: true,
        get_transport: false,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: false,
        sources: V1_5_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 7, 0),
        last: AlloyVersion::new(1, 7, 1),
        hash_label: HashLabel::BeforeLoad,
        fetch_time: FetchTime::EveryPoll,
        last_load_successful: LastLoadSuccessful::FetchSucceeded,
        reports_status: false,
        echoes_hash: true,
        get_transport: true,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: false,
        sources: V1_7_0_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 7, 2),
        last: AlloyVersion::new(1, 7, 2),
        hash_label: HashLabel::BeforeLoad,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::NotModifiedCountsAsFailure,
        reports_status: false,
        echoes_hash: true,
        get_transport: true,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: false,
        sources: V1_7_2_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 7, 3),
        last: AlloyVersion::new(1, 7, 5),
        hash_label: HashLabel::BeforeLoad,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::FetchSucceeded,
        reports_status: false,
        echoes_hash: true,
        get_transport: true,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: false,
        sources: V1_7_3_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 8, 0),
        last: AlloyVersion::new(1, 11, 3),
        hash_label: HashLabel::BeforeLoad,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::FetchSucceeded,
        reports_status: false,
        echoes_hash: true,
        get_transport: true,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: true,
        sources: V1_7_3_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 12, 0),
        last: AlloyVersion::new(1, 12, 2),
        hash_label: HashLabel::AfterLoadAccumulating,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::LoadResultThenCacheFallback,
        reports_status: true,
        echoes_hash: true,
        get_transport: false,
        unregisters: false,
        graph_connections: false,
        refuses_to_start_unreachable: true,
        sources: V1_12_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 13, 0),
        last: AlloyVersion::new(1, 16, 3),
        hash_label: HashLabel::AfterLoadAccumulating,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::LoadResultThenCacheFallback,
        reports_status: true,
        echoes_hash: true,
        get_transport: false,
        unregisters: true,
        graph_connections: false,
        refuses_to_start_unreachable: true,
        sources: V1_13_SOURCES,
    },
    ReleaseSignals {
        first: AlloyVersion::new(1, 17, 0),
        last: AlloyVersion::new(1, 18, 1),
        hash_label: HashLabel::AfterLoadAccumulating,
        fetch_time: FetchTime::ContentOnly,
        last_load_successful: LastLoadSuccessful::LoadResultThenCacheFallback,
        reports_status: true,
        echoes_hash: true,
        get_transport: false,
        unregisters: true,
        graph_connections: true,
        refuses_to_start_unreachable: true,
        sources: V1_17_SOURCES,
    },
];

/// The attribute Alloy reports its release in (`collector.version`, from 1.3 on).
pub const ALLOY_VERSION_ATTRIBUTE: &str = "collector.version";

/// The release a collector reported among its attributes, as text.
pub fn reported_version(attributes: &std::collections::BTreeMap<String, String>) -> Option<&str> {
    attributes.get(ALLOY_VERSION_ATTRIBUTE).map(String::as_str)
}

/// The newest release whose source the table was read from.
pub const NEWEST_READ: AlloyVersion = AlloyVersion::new(1, 18, 1);

/// The row of `version`; `None` below 1.2.0 and above [`NEWEST_READ`] (not read, so not trusted).
pub fn release_signals(version: AlloyVersion) -> Option<&'static ReleaseSignals> {
    ALLOY_RELEASES.iter().find(|row| row.contains(version))
}

/// The row of a reported `collector.version`, when it parses and the table covers it.
pub fn release_signals_for(reported: Option<&str>) -> Option<&'static ReleaseSignals> {
    release_signals(AlloyVersion::parse(reported?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `following` is the release right after `version` (next patch or next minor's .0).
    fn next_patch_or_minor(version: AlloyVersion, following: AlloyVersion) -> bool {
        following.major == version.major
            && ((following.minor == version.minor && following.patch == version.patch + 1)
                || (following.minor == version.minor + 1 && following.patch == 0))
    }

    #[test]
    fn versions_parse_as_alloy_reports_them() {
        assert_eq!(AlloyVersion::parse("v1.10.2"), Some(AlloyVersion::new(1, 10, 2)));
        assert_eq!(AlloyVersion::parse("1.12.0"), Some(AlloyVersion::new(1, 12, 0)));
        assert_eq!(AlloyVersion::parse("v1.11.0-rc.1"), Some(AlloyVersion::new(1, 11, 0)));
        assert_eq!(AlloyVersion::parse("v1.12.0-devel+a1b2c3"), Some(AlloyVersion::new(1, 12, 0)));
        for bad in ["", "v", "1.10", "v1.10.x", "1.10.2.3", "latest", "v-1.2.3"] {
            assert_eq!(AlloyVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_table_covers_every_release_from_1_2_to_the_newest_read_without_gaps() {
        assert_eq!(ALLOY_RELEASES[0].first, AlloyVersion::new(1, 2, 0));
        assert_eq!(ALLOY_RELEASES.last().map(|row| row.last), Some(NEWEST_READ));
        for row in ALLOY_RELEASES {
            assert!(row.first <= row.last, "{}", row.range_label());
            assert!(!row.sources.is_empty(), "{} cites no source", row.range_label());
        }
        for pair in ALLOY_RELEASES.windows(2) {
            assert!(
                next_patch_or_minor(pair[0].last, pair[1].first),
                "gap or overlap between {} and {}",
                pair[0].range_label(),
                pair[1].range_label()
            );
        }
    }

    #[test]
    fn lookups_follow_the_source_reading() {
        let row = |text: &str| release_signals_for(Some(text)).expect(text);
        assert_eq!(row("v1.2.0").hash_label, HashLabel::AfterLoadReset);
        assert!(row("v1.5.1").echoes_hash && !row("v1.4.3").echoes_hash);
        assert_eq!(row("v1.7.0").hash_label, HashLabel::BeforeLoad);
        assert_eq!(row("v1.7.1").fetch_time, FetchTime::EveryPoll);
        assert_eq!(row("v1.7.2").last_load_successful, LastLoadSuccessful::NotModifiedCountsAsFailure);
        assert_eq!(row("v1.10.2").hash_label, HashLabel::BeforeLoad);
        assert!(row("v1.10.2").refuses_to_start_unreachable && !row("v1.7.5").refuses_to_start_unreachable);
        assert!(row("v1.11.3").get_transport && !row("v1.12.0").get_transport);
        assert!(row("v1.12.0").reports_status && !row("v1.11.3").reports_status);
        assert_eq!(row("v1.12.2").hash_label, HashLabel::AfterLoadAccumulating);
        assert!(row("v1.13.0").unregisters && !row("v1.12.2").unregisters);
        assert!(row("v1.17.0").graph_connections && !row("v1.16.3").graph_connections);
        assert!(release_signals_for(Some("v1.1.1")).is_none());
        assert!(release_signals_for(Some("v1.19.0")).is_none());
        assert!(release_signals_for(None).is_none());
        assert!(release_signals_for(Some("nightly")).is_none());
    }
}
