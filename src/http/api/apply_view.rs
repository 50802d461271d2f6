//! `config.apply` of a Collector: whether it runs its delivered config, where that comes from
//! ("reported" by Alloy ≥ 1.12, "inferred" from its own metrics, or "none"), and what linkmesh
//! cannot know for its release. Pure: built from the record and the owner's live view.

use schemars::JsonSchema;
use serde::Serialize;

use crate::actors::collector_actor::LiveApply;
use crate::apply_status::releases::NEWEST_READ;
use crate::apply_status::{release_signals_for, reported_version, InferredOutcome, ALLOY_RELEASES};
use crate::model::{CollectorMode, CollectorRecord, InferredApply, RemoteConfigState, UnixMillis};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ApplyView {
    /// `applied`, `failed`, `applying` (reported only), `pending` (waiting for a scrape after the
    /// delivery), `unknown`, or `not_delivered`.
    pub state: &'static str,
    /// `reported` (Alloy's `remote_config_status`), `inferred` (its own metrics), or `none`.
    pub source: &'static str,
    /// The config version the state is about (the one last delivered).
    pub version: Option<u64>,
    pub reason: Option<String>,
    /// The metrics an inferred state rests on.
    pub signals: Vec<String>,
    /// Alloy's error text (reported failures only: older releases send none).
    pub error: Option<String>,
    pub decided_at: Option<String>,
    pub alloy_version: Option<String>,
    /// The row of the signal table used for this release (`1.8.0–1.11.3`); `null` outside it.
    pub alloy_release_row: Option<String>,
    /// What linkmesh cannot know about this collector's config, in sentences.
    pub limits: Vec<String>,
    /// Alloy's report and its own metrics have disagreed for more than a metrics interval.
    pub disagreement: Option<String>,
}

/// What the view is built from: the replicated record plus, when the owner answered, its live state.
pub struct ApplyInputs<'a> {
    pub record: &'a CollectorRecord,
    pub delivered_hash: Option<&'a str>,
    pub remote_status: Option<RemoteConfigState>,
    pub remote_error: Option<&'a str>,
    pub live: Option<&'a LiveApply>,
    pub local_alloy_version: Option<&'a str>,
    pub own_metrics_seen: bool,
}

impl ApplyView {
    pub fn build(inputs: &ApplyInputs<'_>) -> ApplyView {
        let record = inputs.record;
        let alloy_version = inputs.local_alloy_version.or_else(|| reported_version(&record.local_attributes));
        let release = release_signals_for(alloy_version);
        let mut view = ApplyView {
            state: "unknown",
            source: "none",
            version: None,
            reason: None,
            signals: Vec::new(),
            error: None,
            decided_at: None,
            alloy_version: alloy_version.map(str::to_owned),
            alloy_release_row: release.map(|release| release.range_label()),
            limits: Vec::new(),
            disagreement: inputs.live.and_then(|live| live.disagreement.clone()),
        };
        if record.mode == CollectorMode::AlloyRemotecfg {
            view.limits = limits(alloy_version, release.map(|release| release.reports_status));
        }
        let Some(delivered_hash) = inputs.delivered_hash else {
            view.state = "not_delivered";
            view.reason = Some("no config was delivered to this collector yet".to_owned());
            return view;
        };
        let delivered_version = record
            .config
            .history
            .iter()
            .rev()
            .find(|version| version.hash == delivered_hash)
            .map(|version| version.version);
        view.version = delivered_version;

        if let Some(state) = inputs.remote_status.filter(|state| *state != RemoteConfigState::Unset) {
            // Alloy said so itself: nothing about its release limits what is known.
            view.source = "reported";
            view.state = state.as_str();
            view.limits.clear();
            view.error =
                inputs.remote_error.filter(|_| state == RemoteConfigState::Failed).map(str::to_owned);
            return view;
        }
        view.disagreement = None;
        if record.mode != CollectorMode::AlloyRemotecfg {
            view.reason = Some("the collector reported no status for this config".to_owned());
            return view;
        }
        let live_inferred = inputs.live.and_then(|live| live.inferred.as_ref());
        let inferred = live_inferred.or(record.config.inferred.as_ref());
        if let Some(inferred) = inferred.filter(|inferred| Some(inferred.version) == delivered_version) {
            return inferred_view(view, inferred);
        }
        if !inputs.own_metrics_seen {
            view.reason = Some(
                "linkmesh receives none of this collector's own metrics to infer the status from: the enrollment \
                 config's own_metrics chain sends them"
                    .to_owned(),
            );
            return view;
        }
        let pending = inputs.live.and_then(|live| live.pending_version);
        if pending.is_some_and(|pending| Some(pending) == delivered_version) {
            view.source = "inferred";
            view.state = "pending";
            view.reason = Some(
                "waiting for a scrape of Alloy's own metrics taken after the delivery (the enrollment config \
                 scrapes every 30s)"
                    .to_owned(),
            );
            return view;
        }
        view.reason = Some(
            "linkmesh did not follow this delivery through Alloy's own metrics (it was delivered before this \
             node owned the collector, or before a restart); the next delivery will be"
                .to_owned(),
        );
        view
    }
}

fn inferred_view(mut view: ApplyView, inferred: &InferredApply) -> ApplyView {
    view.source = "inferred";
    view.state = inferred.outcome.as_str();
    view.reason = Some(inferred.reason.clone());
    view.signals = inferred.signals.clone();
    view.decided_at = Some(UnixMillis::to_rfc3339(inferred.at));
    if inferred.outcome == InferredOutcome::Failed {
        view.limits.push("Alloy did not say why: the error is in the collector's own log".to_owned());
    }
    view
}

/// What linkmesh cannot know for an Alloy collector of this release.
fn limits(alloy_version: Option<&str>, reports_status: Option<bool>) -> Vec<String> {
    let first = ALLOY_RELEASES.first().map_or_else(String::new, |row| row.first.to_string());
    match (alloy_version, reports_status) {
        (_, Some(true)) => Vec::new(),
        (_, Some(false)) => vec![
            "this Alloy release reports neither apply status nor error text (Alloy does from 1.12): the status is \
             inferred from its own metrics"
                .to_owned(),
        ],
        (None, None) => vec![
            "Alloy did not report its version (releases before 1.3 do not): only changes in its component graph \
             are read"
                .to_owned(),
        ],
        (Some(version), None) => vec![format!(
            "Alloy {version} is outside the releases whose source linkmesh read ({first}–{NEWEST_READ}): only \
             changes in its component graph are read"
        )],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::apply_status::ALLOY_VERSION_ATTRIBUTE;
    use crate::model::config_text::ConfigText;
    use crate::model::{CollectorMode, CollectorRecord};

    fn record(version: &str) -> CollectorRecord {
        let mut record = CollectorRecord::new(
            "c1".to_owned(),
            "edge".to_owned(),
            CollectorMode::AlloyRemotecfg,
            BTreeMap::new(),
            UnixMillis(1),
        );
        record.local_attributes.insert(ALLOY_VERSION_ATTRIBUTE.to_owned(), version.to_owned());
        record.record_rendered("h1".to_owned(), "alloy", ConfigText::new("v1"), UnixMillis(2));
        record.record_rendered("h2".to_owned(), "alloy", ConfigText::new("v2"), UnixMillis(3));
        record
    }

    fn inputs<'a>(record: &'a CollectorRecord, live: Option<&'a LiveApply>) -> ApplyInputs<'a> {
        ApplyInputs {
            record,
            delivered_hash: Some("h2"),
            remote_status: None,
            remote_error: None,
            live,
            local_alloy_version: None,
            own_metrics_seen: true,
        }
    }

    fn inferred(version: u64, outcome: InferredOutcome) -> InferredApply {
        InferredApply {
            version,
            outcome,
            reason: "the remotecfg module is unhealthy".to_owned(),
            signals: vec!["alloy_component_controller_running_components".to_owned()],
            at: UnixMillis(5),
        }
    }

    #[test]
    fn alloys_own_report_wins_over_the_inference() {
        let mut record = record("v1.14.0");
        record.local_attributes.clear();
        let live = LiveApply { inferred: Some(inferred(2, InferredOutcome::Failed)), ..LiveApply::default() };
        let view = ApplyView::build(&ApplyInputs {
            remote_status: Some(RemoteConfigState::Failed),
            remote_error: Some("component otelcol.exporter.debug is experimental"),
            ..inputs(&record, Some(&live))
        });
        assert_eq!((view.state, view.source, view.version), ("failed", "reported", Some(2)));
        assert_eq!(view.error.as_deref(), Some("component otelcol.exporter.debug is experimental"));
        assert!(view.limits.is_empty());
    }

    #[test]
    fn an_inference_about_the_delivered_version_is_shown_as_inferred_without_error_text() {
        let record = record("v1.10.2");
        let live = LiveApply { inferred: Some(inferred(2, InferredOutcome::Failed)), ..LiveApply::default() };
        let view = ApplyView::build(&inputs(&record, Some(&live)));
        assert_eq!((view.state, view.source), ("failed", "inferred"));
        assert_eq!(view.alloy_release_row.as_deref(), Some("1.8.0–1.11.3"));
        assert!(view.error.is_none());
        assert!(view.limits.iter().any(|limit| limit.contains("Alloy does from 1.12")), "{:?}", view.limits);
        assert!(view.limits.iter().any(|limit| limit.contains("own log")), "{:?}", view.limits);

        let stale =
            LiveApply { inferred: Some(inferred(1, InferredOutcome::Applied)), ..LiveApply::default() };
        let view = ApplyView::build(&inputs(&record, Some(&stale)));
        assert_eq!((view.state, view.source), ("unknown", "none"));
    }

    #[test]
    fn a_delivery_not_yet_decided_is_pending_and_no_own_metrics_is_unknown() {
        let record = record("v1.5.0");
        let pending = LiveApply { pending_version: Some(2), ..LiveApply::default() };
        let view = ApplyView::build(&inputs(&record, Some(&pending)));
        assert_eq!((view.state, view.source), ("pending", "inferred"));

        let view = ApplyView::build(&ApplyInputs { own_metrics_seen: false, ..inputs(&record, None) });
        assert_eq!((view.state, view.source), ("unknown", "none"));
        assert!(view
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("none of this collector's own metrics")));

        let view = ApplyView::build(&ApplyInputs { delivered_hash: None, ..inputs(&record, None) });
        assert_eq!(view.state, "not_delivered");
    }

    #[test]
    fn releases_outside_the_table_say_what_is_read() {
        let record = record("v1.1.0");
        let view = ApplyView::build(&inputs(&record, None));
        assert!(view.alloy_release_row.is_none());
        assert!(view.limits[0].contains("outside the releases"), "{:?}", view.limits);
        let mut unversioned = record.clone();
        unversioned.local_attributes.clear();
        let view = ApplyView::build(&inputs(&unversioned, None));
        assert!(view.limits[0].contains("did not report its version"), "{:?}", view.limits);
    }
}
