//! What the leader knows of each member's release: the feature level it can apply and its version,
//! reported with every lease renewal (`AdminCall::RenewLease`) and, for a node not yet a member, with
//! its join request (the `linkmesh-feature-level` header). Lives only in the leader's memory: a new
//! leader waits for one renewal from every member before it raises the level (`level_raiser.rs`).
//!
//! A report counts only while fresh ([`MemberLevels::fresh_level`]): a node restarted with an older
//! binary reports again within a quarter lease, and until then its last report ages out rather than
//! vouching for a release it no longer runs.
//!
//! The raise and an admission are decided under one lock ([`MemberLevels::decide`]), so a node of an
//! older release is never admitted while a raise it cannot follow is on its way to the log: either the
//! raiser sees the joiner's report and holds, or the admission sees the raised level and refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::feature_level::THIS_RELEASE;
use crate::model::FeatureLevel;

/// The header a joining node sends its release's feature level in (outside the signed join request,
/// whose fields older leaders check strictly). Absent: a release before levels, [`FeatureLevel::BASELINE`].
pub const JOIN_LEVEL_HEADER: &str = "linkmesh-feature-level";

/// How long a joiner's report holds a raise back while its join is under way.
pub const JOINER_REPORT_TTL: Duration = Duration::from_secs(60);

/// Makes this node report a lower level than its release knows, as a node of an older release
/// would: the cluster tests use it to hold a cluster below [`THIS_RELEASE`] (they cannot run an old
/// binary). Not for production: it changes what this node reports, not what it can apply.
pub const REPORT_LEVEL_ENV: &str = "LINKMESH_TEST_REPORT_FEATURE_LEVEL";

/// The feature level this node reports: [`THIS_RELEASE`], or lower under [`REPORT_LEVEL_ENV`].
pub fn this_node_reports() -> FeatureLevel {
    static REPORTED: OnceLock<FeatureLevel> = OnceLock::new();
    *REPORTED.get_or_init(|| {
        let lowered = std::env::var(REPORT_LEVEL_ENV).ok().and_then(|text| text.trim().parse::<u32>().ok());
        match lowered {
            Some(level) if level >= 1 && FeatureLevel(level) < THIS_RELEASE => {
                tracing::warn!(level, release = %THIS_RELEASE, "reporting a lower feature level than this release knows (testing only)");
                FeatureLevel(level)
            }
            _ => THIS_RELEASE,
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberReport {
    pub level: FeatureLevel,
    /// `None` from releases before levels, which did not report it.
    pub version: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
pub struct MemberLevels {
    reports: Mutex<BTreeMap<u64, MemberReport>>,
    decision: tokio::sync::Mutex<()>,
}

impl MemberLevels {
    pub fn record(&self, node_id: u64, level: FeatureLevel, version: Option<String>, at: Instant) {
        self.reports.lock().insert(node_id, MemberReport { level, version, at });
    }

    /// The last report of `node_id`, fresh or not (for the cluster view).
    pub fn report(&self, node_id: u64) -> Option<MemberReport> {
        self.reports.lock().get(&node_id).cloned()
    }

    /// The level `node_id` reported within `max_age` of `now`; `None` if it did not.
    pub fn fresh_level(&self, node_id: u64, now: Instant, max_age: Duration) -> Option<FeatureLevel> {
        let reports = self.reports.lock();
        let report = reports.get(&node_id)?;
        (now.saturating_duration_since(report.at) <= max_age).then_some(report.level)
    }

    /// The levels of nodes that are not members but reported within [`JOINER_REPORT_TTL`]: joins under
    /// way. Reports of nodes gone for longer are dropped.
    pub fn joiner_levels(&self, members: &BTreeSet<u64>, now: Instant) -> Vec<FeatureLevel> {
        let mut reports = self.reports.lock();
        reports.retain(|node_id, report| {
            members.contains(node_id) || now.saturating_duration_since(report.at) <= JOINER_REPORT_TTL
        });
        reports
            .iter()
            .filter(|(node_id, _)| !members.contains(node_id))
            .map(|(_, report)| report.level)
            .collect()
    }

    /// Held while a raise is decided and proposed, and while an admission records its joiner's level.
    pub async fn decide(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.decision.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_only_while_fresh() {
        let levels = MemberLevels::default();
        let start = crate::model::Clock::system().monotonic();
        levels.record(2, FeatureLevel(2), Some("0.1.0".to_owned()), start);
        let max_age = Duration::from_secs(5);
        assert_eq!(levels.fresh_level(2, start + Duration::from_secs(4), max_age), Some(FeatureLevel(2)));
        assert_eq!(levels.fresh_level(2, start + Duration::from_secs(6), max_age), None);
        assert_eq!(levels.fresh_level(3, start, max_age), None, "never reported");
        assert_eq!(levels.report(2).expect("kept for the view").version.as_deref(), Some("0.1.0"));
    }

    #[test]
    fn a_joiner_holds_the_level_until_it_is_a_member_or_its_report_is_old() {
        let levels = MemberLevels::default();
        let start = crate::model::Clock::system().monotonic();
        levels.record(1, FeatureLevel(2), None, start);
        levels.record(9, FeatureLevel::BASELINE, None, start);
        let members: BTreeSet<u64> = [1].into();
        assert_eq!(levels.joiner_levels(&members, start), vec![FeatureLevel::BASELINE]);
        let later = start + JOINER_REPORT_TTL + Duration::from_secs(1);
        assert!(levels.joiner_levels(&members, later).is_empty());
        assert!(levels.report(9).is_none(), "a joiner that never came is forgotten");
        assert!(levels.report(1).is_some(), "members' reports stay");
    }
}
