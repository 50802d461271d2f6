//! How `apply` records rollouts (`model/rollouts.rs`): every write that gives collectors new config
//! versions becomes one, a staged write holds the collectors of its later batches on the shared
//! item's previous revision, and the rollout commands release, pause, resume, complete, abort and
//! roll back. Pure like the rest of `apply`: the ids and times come in the commands.

use std::collections::BTreeMap;

use super::{not_found, ApplyError, Effect, FleetState};
use crate::model::audit::AuditBatch;
use crate::model::fleet_items::Attached;
use crate::model::pipeline::{Destination, Pipeline, Route, Source};
use crate::model::rollouts::{
    Batch, ItemChange, ItemKey, ItemValue, Rollout, RolloutState, StagedStrategy, Target, TargetProgress,
};
use crate::model::{Command, UnixMillis};
use crate::render::render_collector_config;

/// The shared items a collector is held back on, each at its previous revision (`None`: absent).
#[derive(Default)]
pub(super) struct HeldItems<'a> {
    pub pipelines: BTreeMap<&'a str, Option<&'a Pipeline>>,
    pub sources: BTreeMap<&'a str, Option<&'a Attached<Source>>>,
    pub destinations: BTreeMap<&'a str, Option<&'a Attached<Destination>>>,
    pub routes: BTreeMap<&'a str, Option<&'a Attached<Route>>>,
}

/// The shared item a write changes, if it is one a rollout can hold or revert.
fn item_key(command: &Command) -> Option<ItemKey> {
    Some(match command {
        Command::PutPipeline { pipeline, .. } => ItemKey::Pipeline(pipeline.id.clone()),
        Command::DeletePipeline { id, .. } => ItemKey::Pipeline(id.clone()),
        Command::PutFleetSource { source, .. } => ItemKey::FleetSource(source.id.clone()),
        Command::DeleteFleetSource { id, .. } => ItemKey::FleetSource(id.clone()),
        Command::PutFleetDestination { destination, .. } => ItemKey::FleetDestination(destination.id.clone()),
        Command::DeleteFleetDestination { id, .. } => ItemKey::FleetDestination(id.clone()),
        Command::PutFleetRoute { route, .. } => ItemKey::FleetRoute(route.id.clone()),
        Command::DeleteFleetRoute { id, .. } => ItemKey::FleetRoute(id.clone()),
        _ => return None,
    })
}

/// The change a write makes, in words, for writes that may give collectors new versions.
fn describe(command: &Command) -> Option<String> {
    let put = |create: bool| if create { "created" } else { "replaced" };
    Some(match command {
        Command::PutPipeline { pipeline, create, .. } => {
            format!("pipeline {:?} {}", pipeline.name, put(*create))
        }
        Command::DeletePipeline { id, .. } => format!("pipeline {id} deleted"),
        Command::PutFleetSource { source, create, .. } => {
            format!("fleet-wide source {:?} {}", source.name, put(*create))
        }
        Command::DeleteFleetSource { id, .. } => format!("fleet-wide source {id} deleted"),
        Command::PutFleetDestination { destination, create, .. } => {
            format!("fleet-wide destination {:?} {}", destination.name, put(*create))
        }
        Command::DeleteFleetDestination { id, .. } => format!("fleet-wide destination {id} deleted"),
        Command::PutFleetRoute { route, create, .. } => {
            format!("fleet-wide route {:?} {}", route.name, put(*create))
        }
        Command::DeleteFleetRoute { id, .. } => format!("fleet-wide route {id} deleted"),
        Command::PutSource { source, create, .. } => format!("source {:?} {}", source.name, put(*create)),
        Command::DeleteSource { id, .. } => format!("source {id} deleted"),
        Command::PutDestination { destination, create, .. } => {
            format!("destination {:?} {}", destination.name, put(*create))
        }
        Command::DeleteDestination { id, .. } => format!("destination {id} deleted"),
        Command::PutRoute { route, create, .. } => format!("route {:?} {}", route.name, put(*create)),
        Command::DeleteRoute { id, .. } => format!("route {id} deleted"),
        Command::SetCollectorLabels { collector_ids, .. } => match collector_ids.len() {
            1 => "collector labels changed".to_owned(),
            count => format!("labels of {count} collectors changed"),
        },
        Command::SetCollectorStabilityLevel { level, .. } => {
            format!("stability level set to {}", level.as_str())
        }
        _ => return None,
    })
}

fn command_time(command: &Command) -> UnixMillis {
    match command {
        Command::PutPipeline { at, .. }
        | Command::DeletePipeline { at, .. }
        | Command::PutFleetSource { at, .. }
        | Command::DeleteFleetSource { at, .. }
        | Command::PutFleetDestination { at, .. }
        | Command::DeleteFleetDestination { at, .. }
        | Command::PutFleetRoute { at, .. }
        | Command::DeleteFleetRoute { at, .. }
        | Command::PutSource { at, .. }
        | Command::DeleteSource { at, .. }
        | Command::PutDestination { at, .. }
        | Command::DeleteDestination { at, .. }
        | Command::PutRoute { at, .. }
        | Command::DeleteRoute { at, .. }
        | Command::SetCollectorLabels { at, .. }
        | Command::SetCollectorStabilityLevel { at, .. } => *at,
        _ => UnixMillis(0),
    }
}

fn precondition(problem: String) -> ApplyError {
    ApplyError::Precondition { problem }
}

impl FleetState {
    /// `apply`, recording a rollout for every write that gives collectors new versions.
    pub(super) fn apply_tracked(&mut self, command: &Command) -> Result<Vec<Effect>, ApplyError> {
        match command {
            Command::Staged { strategy, command } => self.apply_staged(strategy, command),
            Command::AdvanceRollout { id, batch, at } => {
                let rollout = self.rollout(id)?;
                if rollout.state != RolloutState::Running {
                    return Err(precondition(format!("rollout {id} is {}", rollout.state.as_str())));
                }
                if rollout.batches.iter().position(|batch| batch.released_at.is_none()) != Some(*batch) {
                    return Err(precondition(format!("batch {batch} of rollout {id} is not the next one")));
                }
                Ok(self.release(id, *batch, *at))
            }
            Command::PauseRollout { id, reason, at } => {
                let rollout = self.rollout_mut(id)?;
                if rollout.state != RolloutState::Running {
                    return Err(precondition(format!("rollout {id} is {}", rollout.state.as_str())));
                }
                rollout.state = RolloutState::Paused;
                rollout.paused_reason = Some(reason.clone());
                rollout.updated_at = *at;
                Ok(vec![])
            }
            Command::ResumeRollout { id, at } => {
                let rollout = self.rollout_mut(id)?;
                if rollout.state != RolloutState::Paused {
                    return Err(precondition(format!(
                        "rollout {id} is {}: only a paused rollout resumes",
                        rollout.state.as_str()
                    )));
                }
                rollout.state = RolloutState::Running;
                rollout.paused_reason = None;
                rollout.updated_at = *at;
                Ok(vec![])
            }
            Command::CompleteRollout { id, at } => {
                let rollout = self.rollout_mut(id)?;
                if rollout.state != RolloutState::Running
                    || rollout.batches.iter().any(|batch| batch.released_at.is_none())
                {
                    return Err(precondition(format!("rollout {id} has batches left or is not running")));
                }
                rollout.state = RolloutState::Done;
                rollout.updated_at = *at;
                self.settle(id, *at);
                self.rollouts.trim();
                Ok(vec![])
            }
            Command::RevertRollout { id, abort, at } => self.revert(id, *abort, *at),
            _ => {
                let Some(change) = describe(command) else { return self.apply_command(command) };
                let key = item_key(command);
                let superseded = match &key {
                    Some(key) => self.superseded_by_change(key)?,
                    None => None,
                };
                let previous = key.as_ref().and_then(|key| self.item_value(key));
                let effects = self.apply_command(command)?;
                let changed: Vec<String> = effects
                    .iter()
                    .filter_map(|effect| match effect {
                        Effect::CollectorRenderInputsChanged { collector_id } => Some(collector_id.clone()),
                        _ => None,
                    })
                    .collect();
                if !changed.is_empty() {
                    let at = command_time(command);
                    let item = key.map(|key| ItemChange { new: self.item_value(&key), key, previous });
                    let id = self.rollouts.new_id();
                    let rollout = Rollout {
                        id: id.clone(),
                        state: RolloutState::Running,
                        change,
                        started_by: None,
                        created_at: at,
                        updated_at: at,
                        staged: None,
                        item,
                        batches: vec![Batch { targets: BTreeMap::new(), released_at: Some(at) }],
                        paused_reason: None,
                        rollback_of: None,
                        rolled_back_by: None,
                        superseded_by: None,
                    };
                    self.rollouts.by_id.insert(id.clone(), rollout);
                    self.record_targets(&id, 0, &changed);
                    if let Some(old) = superseded {
                        self.supersede(&old, &id, at);
                    }
                }
                Ok(effects)
            }
        }
    }

    /// The active rollout of `key` a new change of it takes over, if any. An all-at-once rollout
    /// holds nothing back, so a newer change simply supersedes it (an operator fixing a typo need not
    /// wait for every collector to poll); a staged one holds collectors on the previous revision and
    /// must be resumed, aborted or rolled back first.
    fn superseded_by_change(&self, key: &ItemKey) -> Result<Option<String>, ApplyError> {
        match self.rollouts.active_for(key) {
            None => Ok(None),
            Some(active) if active.staged.is_none() => Ok(Some(active.id.clone())),
            Some(active) => Err(precondition(format!(
                "{} is being rolled out ({}, {}): resume, abort or roll it back first",
                key.describe(),
                active.id,
                active.state.as_str()
            ))),
        }
    }

    /// Ends rollout `old`, taken over by `new`.
    fn supersede(&mut self, old: &str, new: &str, at: UnixMillis) {
        if let Some(rollout) = self.rollouts.by_id.get_mut(old) {
            rollout.state = RolloutState::Done;
            rollout.superseded_by = Some(new.to_owned());
            rollout.updated_at = at;
        }
        self.settle(old, at);
    }

    /// Records where each collector of rollout `id` stands at `at`, as it ends: its progress stays
    /// what it was then, whatever later changes give the collectors (a target settled already keeps
    /// its outcome).
    fn settle(&mut self, id: &str, at: UnixMillis) {
        let Some(rollout) = self.rollouts.by_id.get(id) else { return };
        let outcomes: Vec<(usize, String, TargetProgress)> = rollout
            .progress(&self.collectors, at)
            .map(|(batch, collector_id, progress)| (batch, collector_id.to_owned(), progress))
            .collect();
        let Some(rollout) = self.rollouts.by_id.get_mut(id) else { return };
        for (batch, collector_id, progress) in outcomes {
            if let Some(target) = rollout.batches[batch].targets.get_mut(&collector_id) {
                target.outcome.get_or_insert(progress);
            }
        }
    }

    /// Names the signed-in actor of an audited write on the rollouts it started.
    pub(super) fn note_rollout_starter(&mut self, next_id_before: u64, audit: &AuditBatch) {
        let Some(record) = audit.records.iter().rev().find(|record| record.outcome == "ok") else { return };
        for rollout in self.rollouts.by_id.values_mut() {
            let number = rollout.id.trim_start_matches("ro_").parse::<u64>().unwrap_or(0);
            if number > next_id_before && rollout.started_by.is_none() {
                rollout.started_by = Some(record.actor.clone());
            }
        }
    }

    fn rollout(&self, id: &str) -> Result<&Rollout, ApplyError> {
        self.rollouts.by_id.get(id).ok_or_else(|| not_found("rollout", id))
    }

    fn rollout_mut(&mut self, id: &str) -> Result<&mut Rollout, ApplyError> {
        self.rollouts.by_id.get_mut(id).ok_or_else(|| not_found("rollout", id))
    }

    /// The current revision of a shared item.
    pub fn item_value(&self, key: &ItemKey) -> Option<ItemValue> {
        let items = &self.fleet_items;
        match key {
            ItemKey::Pipeline(id) => self.pipelines.get(id).cloned().map(ItemValue::Pipeline),
            ItemKey::FleetSource(id) => items.sources.get(id).cloned().map(ItemValue::FleetSource),
            ItemKey::FleetDestination(id) => {
                items.destinations.get(id).cloned().map(ItemValue::FleetDestination)
            }
            ItemKey::FleetRoute(id) => items.routes.get(id).cloned().map(ItemValue::FleetRoute),
        }
    }

    /// What `collector_id` is held back on: the previous revisions of the active rollouts whose
    /// unreleased batches hold it (except rollout `ignored`).
    pub(super) fn held_items(&self, collector_id: &str, ignored: Option<&str>) -> HeldItems<'_> {
        let mut held = HeldItems::default();
        let holding = self
            .rollouts
            .active()
            .filter(|rollout| Some(rollout.id.as_str()) != ignored && rollout.holds(collector_id));
        for change in holding.filter_map(|rollout| rollout.item.as_ref()) {
            let previous = change.previous.as_ref();
            match &change.key {
                ItemKey::Pipeline(id) => {
                    let value = previous.and_then(|value| match value {
                        ItemValue::Pipeline(pipeline) => Some(pipeline),
                        _ => None,
                    });
                    held.pipelines.insert(id.as_str(), value);
                }
                ItemKey::FleetSource(id) => {
                    let value = previous.and_then(|value| match value {
                        ItemValue::FleetSource(source) => Some(source),
                        _ => None,
                    });
                    held.sources.insert(id.as_str(), value);
                }
                ItemKey::FleetDestination(id) => {
                    let value = previous.and_then(|value| match value {
                        ItemValue::FleetDestination(destination) => Some(destination),
                        _ => None,
                    });
                    held.destinations.insert(id.as_str(), value);
                }
                ItemKey::FleetRoute(id) => {
                    let value = previous.and_then(|value| match value {
                        ItemValue::FleetRoute(route) => Some(route),
                        _ => None,
                    });
                    held.routes.insert(id.as_str(), value);
                }
            }
        }
        held
    }

    /// Records the version each of `collector_ids` runs now as its target in `batch`.
    fn record_targets(&mut self, id: &str, batch: usize, collector_ids: &[String]) {
        let targets: Vec<(String, Target)> = collector_ids
            .iter()
            .map(|collector_id| {
                let current = self.collectors.get(collector_id).and_then(|record| record.current_config());
                let target = Target {
                    version: current.map(|config| config.version),
                    hash: current.map(|config| config.hash.clone()),
                    outcome: None,
                };
                (collector_id.clone(), target)
            })
            .collect();
        if let Some(batch) =
            self.rollouts.by_id.get_mut(id).and_then(|rollout| rollout.batches.get_mut(batch))
        {
            batch.targets.extend(targets);
        }
    }

    /// Releases `batch` of rollout `id`: its collectors render the item's new revision.
    fn release(&mut self, id: &str, batch: usize, at: UnixMillis) -> Vec<Effect> {
        let Some(rollout) = self.rollouts.by_id.get_mut(id) else { return vec![] };
        rollout.updated_at = at;
        let Some(released) = rollout.batches.get_mut(batch) else { return vec![] };
        released.released_at = Some(at);
        let collector_ids: Vec<String> = released.targets.keys().cloned().collect();
        let effects = self.rerender_many(&collector_ids, at);
        self.record_targets(id, batch, &collector_ids);
        effects
    }

    /// A staged change of a shared item: every collector it reaches is held on the previous revision
    /// while the change applies, then those whose config it alters are split into a first batch
    /// (released now) and the rest.
    fn apply_staged(
        &mut self,
        strategy: &StagedStrategy,
        command: &Command,
    ) -> Result<Vec<Effect>, ApplyError> {
        let staged_kind = matches!(
            command,
            Command::PutPipeline { create: false, .. }
                | Command::PutFleetSource { .. }
                | Command::DeleteFleetSource { .. }
                | Command::PutFleetDestination { .. }
                | Command::DeleteFleetDestination { .. }
                | Command::PutFleetRoute { .. }
                | Command::DeleteFleetRoute { .. }
        );
        let (Some(key), Some(change), true) = (item_key(command), describe(command), staged_kind) else {
            return Err(ApplyError::InvalidReference {
                field: "rollout".into(),
                problem: "only changes to existing pipelines and to fleet-wide items can be staged".into(),
            });
        };
        let superseded = self.superseded_by_change(&key)?;
        let at = command_time(command);
        let saved = self.rollouts.clone();
        let affected = self.affected_collectors(command);
        let id = self.rollouts.new_id();
        let everyone = Batch {
            targets: affected.iter().map(|collector_id| (collector_id.clone(), Target::default())).collect(),
            released_at: None,
        };
        let rollout = Rollout {
            id: id.clone(),
            state: RolloutState::Running,
            change: format!("{change} (staged)"),
            started_by: None,
            created_at: at,
            updated_at: at,
            staged: Some(*strategy),
            item: Some(ItemChange { previous: self.item_value(&key), new: None, key: key.clone() }),
            batches: vec![everyone],
            paused_reason: None,
            rollback_of: None,
            rolled_back_by: None,
            superseded_by: None,
        };
        self.rollouts.by_id.insert(id.clone(), rollout);
        if let Err(error) = self.apply_command(command) {
            self.rollouts = saved;
            return Err(error);
        }
        if let Some(old) = superseded {
            self.supersede(&old, &id, at);
        }
        let new = self.item_value(&key);
        let mut changing: Vec<String> = affected
            .into_iter()
            .filter(|collector_id| {
                let Some(record) = self.collectors.get(collector_id) else { return false };
                let released = render_collector_config(&self.render_input_holding(record, Some(&id)));
                record.current_config().is_none_or(|current| current.hash != released.hash)
            })
            .collect();
        changing.sort();
        let first = strategy.first_batch.size(changing.len());
        let rest = changing.split_off(first);
        let batch = |collector_ids: Vec<String>| Batch {
            targets: collector_ids
                .into_iter()
                .map(|collector_id| (collector_id, Target::default()))
                .collect(),
            released_at: None,
        };
        let Some(rollout) = self.rollouts.by_id.get_mut(&id) else { return Ok(vec![]) };
        if let Some(item) = rollout.item.as_mut() {
            item.new = new;
        }
        rollout.batches = [changing, rest].into_iter().filter(|ids| !ids.is_empty()).map(batch).collect();
        if rollout.batches.is_empty() {
            rollout.state = RolloutState::Done;
            return Ok(vec![]);
        }
        Ok(self.release(&id, 0, at))
    }

    /// The write that puts rollout `id`'s item back at its previous revision.
    pub fn revert_command(&self, id: &str, at: UnixMillis) -> Result<Command, ApplyError> {
        let rollout = self.rollout(id)?;
        let Some(change) = &rollout.item else {
            return Err(precondition(format!(
                "rollout {id} ({}) changed no shared item: undo it by editing the collector",
                rollout.change
            )));
        };
        if self.item_value(&change.key) != change.new {
            return Err(precondition(format!(
                "{} changed again after rollout {id}: roll back the later change first",
                change.key.describe()
            )));
        }
        let exists = change.new.is_some();
        Ok(match (&change.key, &change.previous) {
            (ItemKey::Pipeline(_), Some(ItemValue::Pipeline(pipeline))) => {
                Command::PutPipeline { pipeline: pipeline.clone(), create: !exists, at }
            }
            (ItemKey::Pipeline(id), _) => Command::DeletePipeline { id: id.clone(), at },
            (ItemKey::FleetSource(_), Some(ItemValue::FleetSource(attached))) => Command::PutFleetSource {
                source: attached.item.clone(),
                selector: attached.selector.clone(),
                create: !exists,
                at,
            },
            (ItemKey::FleetSource(id), _) => Command::DeleteFleetSource { id: id.clone(), at },
            (ItemKey::FleetDestination(id), Some(ItemValue::FleetDestination(attached))) => {
                let current_keys =
                    self.fleet_items.destinations.get(id).map(|current| &current.item.credentials);
                let remove_credentials = current_keys
                    .into_iter()
                    .flat_map(|keys| keys.keys())
                    .filter(|key| !attached.item.credentials.contains_key(*key))
                    .cloned()
                    .collect();
                Command::PutFleetDestination {
                    destination: attached.item.clone(),
                    selector: attached.selector.clone(),
                    remove_credentials,
                    create: !exists,
                    at,
                }
            }
            (ItemKey::FleetDestination(id), _) => Command::DeleteFleetDestination { id: id.clone(), at },
            (ItemKey::FleetRoute(_), Some(ItemValue::FleetRoute(attached))) => Command::PutFleetRoute {
                route: attached.item.clone(),
                selector: attached.selector.clone(),
                create: !exists,
                at,
            },
            (ItemKey::FleetRoute(id), _) => Command::DeleteFleetRoute { id: id.clone(), at },
        })
    }

    /// Abort (a running or paused rollout) or roll back (any, if it is the item's latest change):
    /// the item's previous revision goes back for every collector, as a change of its own.
    fn revert(&mut self, id: &str, abort: bool, at: UnixMillis) -> Result<Vec<Effect>, ApplyError> {
        let rollout = self.rollout(id)?;
        if abort && !rollout.state.is_active() {
            return Err(precondition(format!(
                "rollout {id} is {}: only a running or paused rollout is aborted (roll it back instead)",
                rollout.state.as_str()
            )));
        }
        if let Some(by) = &rollout.rolled_back_by {
            return Err(precondition(format!("rollout {id} was already rolled back by {by}")));
        }
        let revert = self.revert_command(id, at)?;
        let saved = self.rollouts.clone();
        let next_before = self.rollouts.next_id;
        if let Some(rollout) = self.rollouts.by_id.get_mut(id) {
            if rollout.state.is_active() {
                rollout.state = RolloutState::Aborted;
            }
            rollout.updated_at = at;
        }
        self.settle(id, at);
        let effects = match self.apply_tracked(&revert) {
            Ok(effects) => effects,
            Err(error) => {
                self.rollouts = saved;
                return Err(error);
            }
        };
        let undoing =
            (self.rollouts.next_id > next_before).then(|| format!("ro_{:06}", self.rollouts.next_id));
        if let Some(undoing) = &undoing {
            if let Some(new) = self.rollouts.by_id.get_mut(undoing) {
                new.rollback_of = Some(id.to_owned());
                new.change = format!("{} (rollback of {id})", new.change);
            }
        }
        if let Some(rollout) = self.rollouts.by_id.get_mut(id) {
            rollout.rolled_back_by =
                Some(undoing.unwrap_or_else(|| "a change that altered no config".to_owned()));
        }
        self.rollouts.trim();
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config_text::ConfigText;
    use crate::model::pipeline::{Route, Signal, Source, Step};
    use crate::model::rollouts::FirstBatch;
    use crate::model::CollectorMode;

    fn pipeline(level: &str) -> Pipeline {
        Pipeline::for_test(
            "p",
            &[Signal::Logs],
            vec![Step::for_test("attributes", serde_json::json!({"insert": {"level": level}}))],
        )
    }

    /// Ten collectors whose routes use pipeline `p`.
    fn fleet() -> FleetState {
        let mut state = FleetState::default();
        state
            .apply(&Command::PutPipeline { pipeline: pipeline("v1"), create: true, at: UnixMillis(1) })
            .expect("p");
        for index in 0..10 {
            let id = format!("c{index}");
            let create = Command::CreateCollector {
                id: id.clone(),
                name: id.clone(),
                mode: CollectorMode::AlloyRemotecfg,
                remote_attributes: BTreeMap::new(),
                at: UnixMillis(1),
                stability_level: Default::default(),
            };
            state.apply(&create).expect("collector");
            let source = Source::for_test("s", "otlp");
            state
                .apply(&Command::PutSource {
                    collector_id: id.clone(),
                    source,
                    create: true,
                    at: UnixMillis(1),
                })
                .expect("source");
            let destination = Destination::for_test("d", "debug");
            state
                .apply(&Command::PutDestination {
                    collector_id: id.clone(),
                    destination,
                    remove_credentials: vec![],
                    create: true,
                    at: UnixMillis(1),
                })
                .expect("destination");
            let route =
                Route { pipeline_id: Some("p".into()), ..Route::for_test("r", 1, "true", true, &["d"]) };
            state
                .apply(&Command::PutRoute { collector_id: id, route, create: true, at: UnixMillis(1) })
                .expect("route");
        }
        state
    }

    fn versions(state: &FleetState) -> Vec<u64> {
        state.collectors.values().map(|record| record.config.version).collect()
    }

    /// A write's check scope has the change applied to the render inputs, not rendered: the preview
    /// scope (`validate_only`) renders it.
    #[test]
    fn a_check_scope_applies_a_change_without_rendering_it() {
        let state = fleet();
        let change = Command::PutPipeline { pipeline: pipeline("v2"), create: false, at: UnixMillis(5) };
        let (checked, affected) = state.check_scope(&change).expect("check scope");
        let (previewed, same) = state.preview_scope(&change).expect("preview scope");
        assert_eq!((affected.len(), &affected), (10, &same));
        assert_eq!(checked.pipelines["p"], previewed.pipelines["p"], "the change is applied in both");
        for id in &affected {
            assert_eq!(checked.collectors[id].config.version, state.collectors[id].config.version);
            assert_eq!(previewed.collectors[id].config.version, state.collectors[id].config.version + 1);
        }
    }

    /// Ten collectors a fleet-wide change reaches keep one copy of their new config's text after its
    /// first line (which names each), in memory and after a snapshot's round trip.
    #[test]
    fn a_change_reaching_many_collectors_stores_one_copy_of_their_text() {
        use crate::model::labels::Selector;
        let mut state = FleetState::default();
        for index in 0..10 {
            let id = format!("c{index}");
            let create = Command::CreateCollector {
                id: id.clone(),
                name: id,
                mode: CollectorMode::Opamp,
                remote_attributes: BTreeMap::new(),
                at: UnixMillis(1),
                stability_level: Default::default(),
            };
            state.apply(&create).expect("collector");
        }
        let everyone = Selector::everything();
        let writes = [
            Command::PutFleetSource {
                source: Source::for_test("fs", "otlp"),
                selector: everyone.clone(),
                create: true,
                at: UnixMillis(2),
            },
            Command::PutFleetDestination {
                destination: Destination::for_test("fd", "debug"),
                selector: everyone.clone(),
                remove_credentials: Vec::new(),
                create: true,
                at: UnixMillis(3),
            },
            Command::PutFleetRoute {
                route: Route::for_test("fr", 10, "true", true, &["fd"]),
                selector: everyone,
                create: true,
                at: UnixMillis(4),
            },
        ];
        for write in &writes {
            state.apply(write).expect("fleet-wide write");
        }
        let texts = |state: &FleetState| -> Vec<ConfigText> {
            state
                .collectors
                .values()
                .map(|record| record.current_config().expect("config").content.clone())
                .collect()
        };
        let stored = texts(&state);
        assert_eq!(stored.len(), 10);
        assert!(!crate::render::otelcol::is_placeholder(&stored[0].to_text()), "a config to run: {stored:?}");
        assert!(stored.iter().all(|text| text.shares_rest_with(&stored[0])), "one copy");
        assert!(stored.iter().skip(1).all(|text| *text != stored[0]), "each names its collector");
        let encoded = rmp_serde::to_vec_named(&state).expect("encodes");
        let decoded: FleetState =
            crate::model::config_text::sharing(|| rmp_serde::from_slice(&encoded)).expect("decodes");
        let loaded = texts(&decoded);
        assert_eq!(loaded, stored);
        assert!(loaded.iter().all(|text| text.shares_rest_with(&loaded[0])), "one copy after loading");
    }

    /// A write's scope copies the active rollouts, not the finished ones (up to 200, each with a
    /// target per collector it reached); one naming a rollout sees them all.
    #[test]
    fn a_write_scope_copies_the_active_rollouts_only() {
        let mut state = fleet();
        let before = state.rollouts.by_id.len();
        for (at, revision) in [(5, "v2"), (6, "v3")] {
            let change =
                Command::PutPipeline { pipeline: pipeline(revision), create: false, at: UnixMillis(at) };
            state.apply(&change).expect("change");
        }
        let ids: Vec<String> = state.rollouts.by_id.keys().skip(before).cloned().collect();
        assert_eq!(ids.len(), 2);
        assert!(!state.rollouts.by_id[&ids[0]].state.is_active(), "superseded by the second change");
        assert!(state.rollouts.by_id[&ids[1]].state.is_active());

        let change = Command::PutPipeline { pipeline: pipeline("v4"), create: false, at: UnixMillis(7) };
        let (checked, _) = state.check_scope(&change).expect("check scope");
        assert!(!checked.rollouts.by_id.contains_key(&ids[0]), "the finished rollout is not copied");
        let (scoped, _) = state.preview_scope(&change).expect("preview scope");
        assert!(!scoped.rollouts.by_id.contains_key(&ids[0]));
        let mut applied = state.clone();
        applied.apply(&change).expect("apply");
        assert_eq!(scoped.rollouts.next_id, applied.rollouts.next_id, "the scope numbers rollouts alike");
        for id in scoped.rollouts.by_id.keys() {
            assert_eq!(scoped.rollouts.by_id[id], applied.rollouts.by_id[id], "{id} as the state has it");
        }

        let revert = Command::RevertRollout { id: ids[1].clone(), abort: false, at: UnixMillis(8) };
        let (scoped, _) = state.check_scope(&revert).expect("a revert of the running rollout");
        assert!(scoped.rollouts.by_id.contains_key(&ids[0]), "a command naming a rollout sees them all");
    }

    #[test]
    fn a_staged_change_reaches_its_first_batch_then_the_rest_and_a_rollback_restores_everyone() {
        let mut state = fleet();
        let before = versions(&state);
        let original: Vec<String> = state
            .collectors
            .values()
            .map(|r| r.current_config().map(|c| c.hash.clone()).unwrap_or_default())
            .collect();
        let staged = Command::Staged {
            strategy: StagedStrategy { first_batch: FirstBatch::Percent(20), soak_ms: 0 },
            command: Box::new(Command::PutPipeline {
                pipeline: pipeline("v2"),
                create: false,
                at: UnixMillis(5),
            }),
        };
        let effects = state.apply(&staged).expect("staged");
        assert_eq!(effects.len(), 2, "20% of ten go first");
        let rollout = state.rollouts.by_id.values().last().expect("rollout").clone();
        assert_eq!(rollout.batches.iter().map(|b| b.targets.len()).collect::<Vec<_>>(), [2, 8]);
        let bumped = versions(&state).iter().zip(&before).filter(|(now, was)| now > was).count();
        assert_eq!(bumped, 2, "held collectors keep their version");
        let again = Command::PutPipeline { pipeline: pipeline("v3"), create: false, at: UnixMillis(6) };
        assert!(matches!(state.apply(&again), Err(ApplyError::Precondition { .. })), "one rollout per item");

        let replica = state.clone();
        state
            .apply(&Command::AdvanceRollout { id: rollout.id.clone(), batch: 1, at: UnixMillis(7) })
            .expect("advance");
        assert!(versions(&state).iter().zip(&before).all(|(now, was)| now > was), "everyone has the change");
        let mut other = replica;
        other
            .apply(&Command::AdvanceRollout { id: rollout.id.clone(), batch: 1, at: UnixMillis(7) })
            .expect("same");
        assert_eq!(other, state, "deterministic");

        state
            .apply(&Command::RevertRollout { id: rollout.id.clone(), abort: true, at: UnixMillis(8) })
            .expect("abort");
        let reverted: Vec<String> = state
            .collectors
            .values()
            .map(|r| r.current_config().map(|c| c.hash.clone()).unwrap_or_default())
            .collect();
        assert_eq!(reverted, original, "the previous revision again, for every collector");
        let aborted = &state.rollouts.by_id[&rollout.id];
        assert_eq!(aborted.state, RolloutState::Aborted);
        let undo = aborted.rolled_back_by.clone().expect("undone by a rollout");
        assert_eq!(state.rollouts.by_id[&undo].rollback_of.as_deref(), Some(rollout.id.as_str()));
        assert_eq!(state.pipelines["p"], pipeline("v1"));
    }

    #[test]
    fn a_paused_rollout_keeps_holding_and_a_failed_revert_changes_nothing() {
        let mut state = fleet();
        let before = versions(&state);
        let staged = Command::Staged {
            strategy: StagedStrategy { first_batch: FirstBatch::Count(1), soak_ms: 0 },
            command: Box::new(Command::PutPipeline {
                pipeline: pipeline("v2"),
                create: false,
                at: UnixMillis(5),
            }),
        };
        state.apply(&staged).expect("staged");
        let id = state.rollouts.by_id.keys().last().cloned().expect("id");
        state
            .apply(&Command::PauseRollout { id: id.clone(), reason: "c0 failed".into(), at: UnixMillis(6) })
            .expect("pause");
        assert!(state
            .apply(&Command::AdvanceRollout { id: id.clone(), batch: 1, at: UnixMillis(7) })
            .is_err());
        let held = versions(&state).iter().zip(&before).filter(|(now, was)| now == was).count();
        assert_eq!(held, 9, "nine collectors still render the previous pipeline");
        state.apply(&Command::ResumeRollout { id: id.clone(), at: UnixMillis(8) }).expect("resume");
        // A rollout whose recorded revision no longer matches the item is not rolled back, and the
        // refusal changes nothing.
        state.rollouts.by_id.get_mut(&id).and_then(|r| r.item.as_mut()).expect("item").new = None;
        let tampered = state.clone();
        assert!(state
            .apply(&Command::RevertRollout { id: id.clone(), abort: false, at: UnixMillis(9) })
            .is_err());
        assert_eq!(state, tampered);
    }

    #[test]
    fn a_newer_change_takes_over_an_all_at_once_rollout_but_not_a_staged_one() {
        let mut state = fleet();
        let change = |level: &str, at: u64| Command::PutPipeline {
            pipeline: pipeline(level),
            create: false,
            at: UnixMillis(at),
        };
        state.apply(&change("v2", 5)).expect("all at once");
        let first = state.rollouts.by_id.keys().last().cloned().expect("first");
        assert_eq!(state.rollouts.by_id[&first].state, RolloutState::Running, "no collector applied it yet");
        state.apply(&change("v3", 6)).expect("a typo fixed before every collector polled");
        let second = state.rollouts.by_id.keys().last().cloned().expect("second");
        let superseded = &state.rollouts.by_id[&first];
        assert_eq!(superseded.state, RolloutState::Done);
        assert_eq!(superseded.superseded_by.as_deref(), Some(second.as_str()));
        assert_eq!(state.rollouts.by_id[&second].state, RolloutState::Running);
        // Rolling back the superseded one would skip the newer change: refused, nothing changed.
        let before = state.clone();
        assert!(state.apply(&Command::RevertRollout { id: first, abort: false, at: UnixMillis(7) }).is_err());
        assert_eq!(state, before);

        let staged = Command::Staged {
            strategy: StagedStrategy { first_batch: FirstBatch::Count(1), soak_ms: 0 },
            command: Box::new(change("v4", 8)),
        };
        state.apply(&staged).expect("a staged change also takes over the all-at-once one");
        assert_eq!(state.rollouts.by_id[&second].state, RolloutState::Done);
        let before = state.clone();
        let refused = state.apply(&change("v5", 9));
        assert!(
            matches!(&refused, Err(ApplyError::Precondition { problem }) if problem.contains("resume, abort or roll it back first")),
            "{refused:?}"
        );
        assert_eq!(state, before, "a staged rollout holds collectors back: it is settled first");
    }

    #[test]
    fn a_finished_rollout_keeps_the_progress_it_ended_with() {
        let mut state = fleet();
        state
            .apply(&Command::PutPipeline { pipeline: pipeline("v2"), create: false, at: UnixMillis(5) })
            .expect("all at once");
        let id = state.rollouts.by_id.keys().last().cloned().expect("id");
        // Every collector runs its new version and said so.
        for record in state.collectors.values_mut() {
            let hash = record.current_config().map(|config| config.hash.clone());
            record.config.delivered_hash = hash.clone();
            record.config.status_hash = hash;
            record.config.remote_status = Some(crate::model::RemoteConfigState::Applied);
        }
        state.apply(&Command::CompleteRollout { id: id.clone(), at: UnixMillis(6) }).expect("complete");
        let applied = state.rollouts.by_id[&id].counts(&state.collectors, UnixMillis(7));
        assert_eq!(applied.applied, 10);
        // A later change the collectors have not even received yet does not rewrite that record.
        state
            .apply(&Command::PutPipeline { pipeline: pipeline("v3"), create: false, at: UnixMillis(8) })
            .expect("next change");
        assert_eq!(state.rollouts.by_id[&id].counts(&state.collectors, UnixMillis(9)), applied);
        let next = state.rollouts.by_id.keys().last().cloned().expect("next");
        assert_eq!(state.rollouts.by_id[&next].counts(&state.collectors, UnixMillis(9)).applied, 0);
    }
}
