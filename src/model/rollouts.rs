//! Rollouts: how a change to the fleet model reaches the collectors it alters.
//!
//! Every write that gives collectors new config versions is recorded as a rollout, with the version
//! each collector is to run, so its progress (pending, delivered, applied, failed, unknown) can be
//! followed. A change to a shared item (a pipeline, a fleet-wide source, destination or route) can be
//! *staged*: a first batch (a count or a percentage of the collectors it alters) gets it at once, the
//! others keep rendering the item's previous revision ([`Rollout::held`]) until the leader's driver
//! (`cluster/rollout_loop.rs`) releases the next batch, once every collector of the released ones
//! applied it (or, where its status cannot be known, after delivery plus the soak time). A collector
//! whose current remote status is FAILED pauses the rollout. Abort (while running or paused) and
//! rollback (any time, for the item's latest rollout) put the item's previous revision back, which
//! is itself a change, tracked as a rollout of its own.
//!
//! The progress rules are pure ([`Rollout::progress`]) and read the replicated record only, so the
//! driver on the leader and the API on any node count alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::collector::{CollectorMap, CollectorRecord, RemoteConfigState};
use super::fleet_items::Attached;
use super::pipeline::{Destination, Pipeline, Route, Source};
use super::UnixMillis;
use crate::apply_status::InferredOutcome;

/// Finished rollouts kept (the oldest finished ones go first; running and paused ones stay).
pub const MAX_FINISHED_ROLLOUTS: usize = 200;
/// The soak time when a staged write does not name one.
pub const DEFAULT_SOAK_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    Paused,
    Done,
    Aborted,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Done => "done",
            RolloutState::Aborted => "aborted",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, RolloutState::Running | RolloutState::Paused)
    }
}

/// The first batch of a staged rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstBatch {
    Count(u32),
    Percent(u8),
}

impl FirstBatch {
    /// How many of `total` collectors go first: at least one, at most all.
    pub fn size(self, total: usize) -> usize {
        let wanted = match self {
            FirstBatch::Count(count) => count as usize,
            FirstBatch::Percent(percent) => (total * usize::from(percent)).div_ceil(100),
        };
        wanted.clamp(1.min(total), total)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedStrategy {
    pub first_batch: FirstBatch,
    pub soak_ms: u64,
}

/// A shared item, as a rollout refers to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ItemKey {
    Pipeline(String),
    FleetSource(String),
    FleetDestination(String),
    FleetRoute(String),
}

impl ItemKey {
    pub fn describe(&self) -> String {
        match self {
            ItemKey::Pipeline(id) => format!("pipeline {id}"),
            ItemKey::FleetSource(id) => format!("fleet-wide source {id}"),
            ItemKey::FleetDestination(id) => format!("fleet-wide destination {id}"),
            ItemKey::FleetRoute(id) => format!("fleet-wide route {id}"),
        }
    }
}

/// One revision of a shared item (`None` in [`ItemChange`]: the item did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ItemValue {
    Pipeline(Pipeline),
    FleetSource(Attached<Source>),
    FleetDestination(Attached<Destination>),
    FleetRoute(Attached<Route>),
}

/// A shared item before and after the rollout's change: what abort and rollback put back, and what
/// a staged rollout's held collectors keep rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub key: ItemKey,
    pub previous: Option<ItemValue>,
    pub new: Option<ItemValue>,
}

/// The version one collector is to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Set when the collector's batch is released (its new version exists from then on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Where the collector stood when the rollout ended (done, aborted or superseded): a finished
    /// rollout keeps its record instead of following the collector's later versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TargetProgress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Collector id → the version it is to run.
    pub targets: BTreeMap<String, Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub state: RolloutState,
    /// What changed, in words (`pipeline "parse-nginx" replaced`).
    pub change: String,
    /// Who made the change (from the write's audit record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// `None`: all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemChange>,
    pub batches: Vec<Batch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// The rollout this one undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The rollout that undid this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<String>,
    /// The later change of the same item that ended this all-at-once rollout before every collector
    /// had applied it (nothing is held back in one, so the newer change simply takes over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

/// Where one collector of a released batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetProgress {
    /// Not delivered yet (its batch is not released, or it has not polled since).
    Pending,
    /// Delivered, no verdict yet.
    Delivered,
    Applied,
    Failed,
    /// Delivered longer than the soak time ago, and its status cannot be known.
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Counts {
    pub pending: usize,
    pub delivered: usize,
    pub applied: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Counts {
    pub fn add(&mut self, progress: TargetProgress) {
        match progress {
            TargetProgress::Pending => self.pending += 1,
            TargetProgress::Delivered => self.delivered += 1,
            TargetProgress::Applied => self.applied += 1,
            TargetProgress::Failed => self.failed += 1,
            TargetProgress::Unknown => self.unknown += 1,
        }
    }
}

/// Whether linkmesh can learn if a collector applied a config: it reports status itself (Alloy ≥
/// 1.12 does), or its own metrics reach linkmesh to infer it from.
fn status_knowable(record: &CollectorRecord) -> bool {
    let reports = record.config.remote_status.is_some_and(|status| status != RemoteConfigState::Unset);
    reports || record.own_metrics_seen()
}

/// Where `record` stands against `target`, at `now`. A collector that got a newer version since
/// (another change) is judged on the version it runs now.
pub fn target_progress(
    record: &CollectorRecord,
    target: &Target,
    soak_ms: u64,
    now: UnixMillis,
) -> TargetProgress {
    let Some(current) = record.current_config() else { return TargetProgress::Pending };
    if target.version.is_none_or(|version| version > current.version) {
        return TargetProgress::Pending;
    }
    if record.config.delivered_hash.as_deref() != Some(current.hash.as_str()) {
        return TargetProgress::Pending;
    }
    let config = &record.config;
    let reported_on_current = config.status_hash.as_deref() == Some(current.hash.as_str());
    match config.remote_status {
        Some(RemoteConfigState::Failed) if reported_on_current => return TargetProgress::Failed,
        Some(RemoteConfigState::Applied) if reported_on_current => return TargetProgress::Applied,
        _ => {}
    }
    if let Some(inferred) = config.inferred.as_ref().filter(|inferred| inferred.version == current.version) {
        match inferred.outcome {
            InferredOutcome::Applied => return TargetProgress::Applied,
            InferredOutcome::Failed => return TargetProgress::Failed,
            InferredOutcome::Unknown => {}
        }
    }
    let delivered_at = config.delivered_at.unwrap_or(current.created_at);
    let soaked = now.0.saturating_sub(delivered_at.0) >= soak_ms;
    let verdict_expected = status_knowable(record)
        && config.inferred.as_ref().is_none_or(|inferred| inferred.version != current.version);
    if soaked && !verdict_expected {
        TargetProgress::Unknown
    } else {
        TargetProgress::Delivered
    }
}

/// What the driver should do with a running rollout next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Wait,
    Pause { reason: String },
    Release { batch: usize },
    Complete,
}

impl Rollout {
    pub fn soak_ms(&self) -> u64 {
        self.staged.map_or(DEFAULT_SOAK_MS, |staged| staged.soak_ms)
    }

    /// Whether `collector_id` is held back on the item's previous revision.
    pub fn holds(&self, collector_id: &str) -> bool {
        self.state.is_active()
            && self
                .batches
                .iter()
                .any(|batch| batch.released_at.is_none() && batch.targets.contains_key(collector_id))
    }

    /// Each collector's progress (collectors deleted since are left out).
    pub fn progress<'a>(
        &'a self,
        collectors: &'a CollectorMap,
        now: UnixMillis,
    ) -> impl Iterator<Item = (usize, &'a str, TargetProgress)> + 'a {
        self.batches.iter().enumerate().flat_map(move |(index, batch)| {
            batch.targets.iter().filter_map(move |(id, target)| {
                let record = collectors.get(id)?;
                let progress = if let Some(outcome) = target.outcome {
                    outcome
                } else if batch.released_at.is_none() {
                    TargetProgress::Pending
                } else {
                    target_progress(record, target, self.soak_ms(), now)
                };
                Some((index, id.as_str(), progress))
            })
        })
    }

    pub fn counts(&self, collectors: &CollectorMap, now: UnixMillis) -> Counts {
        let mut counts = Counts::default();
        for (_, _, progress) in self.progress(collectors, now) {
            counts.add(progress);
        }
        counts
    }

    /// The driver's rule for a running rollout: pause on a FAILED collector of a released batch;
    /// release the next batch once every released collector that is connected applied (or is
    /// unknown after the soak); complete when nothing is left. A collector that does not poll
    /// (offline, stale, never connected) does not hold a batch back: it gets its version when it
    /// comes back.
    pub fn next_step(&self, collectors: &CollectorMap, now: UnixMillis) -> NextStep {
        if self.state != RolloutState::Running {
            return NextStep::Wait;
        }
        let mut failed = Vec::new();
        let mut waiting = false;
        for (index, id, progress) in self.progress(collectors, now) {
            if self.batches[index].released_at.is_none() {
                continue;
            }
            let Some(record) = collectors.get(id) else { continue };
            match progress {
                TargetProgress::Failed => failed.push(record),
                TargetProgress::Pending | TargetProgress::Delivered if record.status.expects_polls() => {
                    waiting = true;
                }
                _ => {}
            }
        }
        if let Some(first) = failed.first() {
            let error = first.config.remote_error.as_deref().unwrap_or("no error message");
            let others =
                if failed.len() > 1 { format!(" (and {} more)", failed.len() - 1) } else { String::new() };
            return NextStep::Pause {
                reason: format!("collector {:?} failed to apply its config: {error}{others}", first.name),
            };
        }
        if waiting {
            return NextStep::Wait;
        }
        match self.batches.iter().position(|batch| batch.released_at.is_none()) {
            Some(batch) => NextStep::Release { batch },
            None => NextStep::Complete,
        }
    }
}

/// The rollouts, by id, and the counter new ids come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollouts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_id: BTreeMap<String, Rollout>,
    #[serde(default)]
    pub next_id: u64,
}

impl Rollouts {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.next_id == 0
    }

    /// Ids sort in creation order (`ro_000001` …).
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("ro_{:06}", self.next_id)
    }

    pub fn active(&self) -> impl Iterator<Item = &Rollout> {
        self.by_id.values().filter(|rollout| rollout.state.is_active())
    }

    /// The active rollout of `key`, if any.
    pub fn active_for(&self, key: &ItemKey) -> Option<&Rollout> {
        self.active().find(|rollout| rollout.item.as_ref().is_some_and(|item| &item.key == key))
    }

    /// Drops the oldest finished rollouts beyond [`MAX_FINISHED_ROLLOUTS`].
    pub fn trim(&mut self) {
        let finished: Vec<String> = self
            .by_id
            .values()
            .filter(|rollout| !rollout.state.is_active())
            .map(|rollout| rollout.id.clone())
            .collect();
        let excess = finished.len().saturating_sub(MAX_FINISHED_ROLLOUTS);
        for id in finished.into_iter().take(excess) {
            self.by_id.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_batch_is_at_least_one_and_at_most_all() {
        assert_eq!(FirstBatch::Percent(10).size(200), 20);
        assert_eq!(FirstBatch::Percent(10).size(5), 1);
        assert_eq!(FirstBatch::Percent(1).size(0), 0);
        assert_eq!(FirstBatch::Count(0).size(3), 1);
        assert_eq!(FirstBatch::Count(50).size(3), 3);
    }
}
