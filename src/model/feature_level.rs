//! The cluster's feature level: which commands and which snapshot encoding every member can read.
//!
//! During a rolling upgrade old and new releases run side by side and replicate one log. A command
//! or encoding new in a release must not reach the log (or a snapshot) while a member that cannot
//! decode it is still in the cluster: that member would stop at the entry, and an old leader would
//! refuse what a new follower forwards. So every release states the highest level it knows
//! ([`THIS_RELEASE`]); the replicated state holds the level the cluster runs at; the leader raises it
//! ([`Command::RaiseFeatureLevel`]) only once every member has reported a level at least as high
//! ([`next_level`]); and a command that needs a higher level than the cluster runs is refused before
//! it is proposed (`ApplyError::NeedsFeatureLevel`). The level never goes down: a downgrade is a
//! restore from a backup (docs/operations.md).
//!
//! Levels:
//! - 1: every command of the releases before levels existed (nodes that report no level know it).
//! - 2: `RaiseFeatureLevel` itself, `CreateCollectors` (the batch create), binary snapshots.
//! - 3: collector events in the history tree (`model/history.rs`, ADR 0009), and snapshot files that
//!   carry that tree (format version 2). Reaching it moves every collector's events there.
//! - 4: OpAMP enrollment tokens and the commands that use them (`model/enrollment_tokens.rs`,
//!   ADR 0010), the collector fields they set (bound instance uid, enrolling token, credential
//!   generation), `RequestRestart` and the restart count, and the OpAMP event types `enrolled`,
//!   `own_metrics_offered`, `restart_requested`, `restart_outcome` and `config_applying`.
//!
//! [`Command::RaiseFeatureLevel`]: super::Command::RaiseFeatureLevel

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureLevel(pub u32);

impl FeatureLevel {
    /// What every release before feature levels knows; a state or a report without a level is at it.
    pub const BASELINE: FeatureLevel = FeatureLevel(1);
    /// The level of the batch create and of binary snapshots.
    pub const BATCH_AND_BINARY_SNAPSHOTS: FeatureLevel = FeatureLevel(2);
    /// The level of collector events kept on disk (`model/history.rs`).
    pub const HISTORY_ON_DISK: FeatureLevel = FeatureLevel(3);
    /// The level of OpAMP enrollment (`model/enrollment_tokens.rs`).
    pub const OPAMP_ENROLLMENT: FeatureLevel = FeatureLevel(4);

    pub fn is_baseline(&self) -> bool {
        *self == FeatureLevel::BASELINE
    }
}

impl Default for FeatureLevel {
    fn default() -> Self {
        FeatureLevel::BASELINE
    }
}

impl std::fmt::Display for FeatureLevel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

/// The highest level this release can apply and encode.
pub const THIS_RELEASE: FeatureLevel = FeatureLevel::OPAMP_ENROLLMENT;

/// Pure: the level the cluster may move to now, if higher than `current`. `members` is each member's
/// reported level, `None` while its report is unknown (never heard from since this leader started):
/// any unknown member holds the level where it is. Never above what this release knows.
pub fn next_level(
    current: FeatureLevel,
    members: impl IntoIterator<Item = Option<FeatureLevel>>,
) -> Option<FeatureLevel> {
    let mut lowest = THIS_RELEASE;
    let mut any = false;
    for reported in members {
        lowest = lowest.min(reported?);
        any = true;
    }
    (any && lowest > current).then_some(lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_rises_only_when_every_member_reported_at_least_that_level() {
        let one = FeatureLevel::BASELINE;
        let two = FeatureLevel(2);
        assert_eq!(next_level(one, [Some(two), Some(two), Some(two)]), Some(two));
        assert_eq!(next_level(one, [Some(two), Some(one), Some(two)]), None, "an old member holds it");
        assert_eq!(next_level(one, [Some(two), None, Some(two)]), None, "an unknown member holds it");
        assert_eq!(next_level(two, [Some(two), Some(two)]), None, "already there");
        assert_eq!(next_level(one, std::iter::empty()), None, "no members, no decision");
    }

    #[test]
    fn the_level_never_passes_what_this_release_knows_nor_goes_down() {
        let newer = FeatureLevel(THIS_RELEASE.0 + 5);
        assert_eq!(next_level(FeatureLevel::BASELINE, [Some(newer), Some(newer)]), Some(THIS_RELEASE));
        assert_eq!(next_level(THIS_RELEASE, [Some(FeatureLevel::BASELINE)]), None);
    }

    #[test]
    fn a_level_is_a_bare_number_on_the_wire() {
        assert_eq!(serde_json::to_string(&FeatureLevel(2)).expect("serialize"), "2");
        assert_eq!(serde_json::from_str::<FeatureLevel>("1").expect("decode"), FeatureLevel::BASELINE);
    }
}
