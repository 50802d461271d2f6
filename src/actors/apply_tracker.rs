//! The collector actor's side of apply-status inference (`apply_status`): which delivery is being
//! watched, the scrape before it, what Alloy last ran, and whether Alloy's own report disagrees.
//! Plain data, driven by the actor's poll and push handlers.

use std::sync::Arc;

use crate::apply_status::{ApplySignals, ApplyWatch, Expectation, InferredOutcome, ReleaseSignals, Verdict};
use crate::model::RemoteConfigState;

/// Scrapes in a row that must disagree with Alloy's own report before the disagreement is shown:
/// the first one and one a metrics interval later (a cached-config reload after a refusal, or a
/// report sent just before the load finished, make one-scrape disagreements normal).
pub const DISAGREEING_SCRAPES_SHOWN: u32 = 2;

///
/// Boxed, and allocated only once there is something to follow (a delivery with an expectation, a
/// scrape): every resident actor holds one, and most never see a delivery between restarts.
#[derive(Debug, Default)]
pub struct ApplyTracker {
    state: Option<Box<TrackerState>>,
}

#[derive(Debug, Default)]
struct TrackerState {
    /// The newest scrape with apply signals: the baseline of the next delivery.
    latest_scrape: Option<ApplySignals>,
    watch: Option<ApplyWatch>,
    /// What Alloy last ran as far as linkmesh knows (a delivery seen applied).
    running: Option<Arc<Expectation>>,
    disagreeing_scrapes: u32,
    disagreement: Option<String>,
}

/// What a push changed.
#[derive(Debug, Default, PartialEq)]
pub struct TrackerNews {
    pub verdict: Option<(u64, Verdict)>,
    /// A disagreement with Alloy's report that just became shown.
    pub disagreement: Option<String>,
}

impl ApplyTracker {
    /// A new delivery of `expectation`. The previous scrape is its baseline only when the previous
    /// delivery's watch settled: otherwise a later change could be that delivery's doing.
    pub fn delivered(&mut self, expectation: Arc<Expectation>, release: Option<&'static ReleaseSignals>) {
        self.state.get_or_insert_default().delivered(expectation, release);
    }

    /// Alloy reported its release (again); applies to the delivery being watched.
    pub fn release_changed(&mut self, release: Option<&'static ReleaseSignals>) {
        if let Some(state) = &mut self.state {
            state.release_changed(release);
        }
    }

    /// Alloy itself reported the watched delivery applied (Alloy ≥ 1.12).
    pub fn reported_applied(&mut self) {
        if let Some(state) = &mut self.state {
            state.reported_applied();
        }
    }

    /// The scrapes of one push. `reported`: Alloy's own status for the current delivery, if any.
    pub fn scrapes(&mut self, scrapes: &[ApplySignals], reported: Option<RemoteConfigState>) -> TrackerNews {
        if scrapes.is_empty() {
            return TrackerNews::default();
        }
        self.state.get_or_insert_default().scrapes(scrapes, reported)
    }

    /// A shown disagreement with Alloy's report, if one persists.
    pub fn disagreement(&self) -> Option<&str> {
        self.state.as_deref()?.disagreement()
    }

    /// The watched delivery's version while no scrape has decided it yet.
    pub fn pending_version(&self) -> Option<u64> {
        self.state.as_deref()?.pending_version()
    }
}

impl TrackerState {
    fn delivered(&mut self, expectation: Arc<Expectation>, release: Option<&'static ReleaseSignals>) {
        let baseline_trusted = self.watch.as_ref().is_none_or(ApplyWatch::settled);
        let baseline = self.latest_scrape.clone().filter(|_| baseline_trusted);
        self.watch = Some(ApplyWatch::new(release, expectation, self.running.clone(), baseline));
        self.disagreeing_scrapes = 0;
        self.disagreement = None;
    }

    fn release_changed(&mut self, release: Option<&'static ReleaseSignals>) {
        if let Some(watch) = &mut self.watch {
            watch.set_release(release);
        }
    }

    fn reported_applied(&mut self) {
        if let Some(watch) = &self.watch {
            self.running = Some(watch.delivered().clone());
        }
    }

    fn scrapes(&mut self, scrapes: &[ApplySignals], reported: Option<RemoteConfigState>) -> TrackerNews {
        let mut news = TrackerNews::default();
        for scrape in scrapes {
            if self
                .latest_scrape
                .as_ref()
                .is_none_or(|latest| scrape.scraped_at_unix_nano > latest.scraped_at_unix_nano)
            {
                self.latest_scrape = Some(scrape.clone());
            }
            let Some(watch) = &mut self.watch else { continue };
            if let Some(verdict) = watch.observe(scrape).cloned() {
                if verdict.outcome == InferredOutcome::Applied {
                    self.running = Some(watch.delivered().clone());
                }
                news.verdict = Some((watch.delivered().version, verdict));
            }
            if let Some(shown) = self.check_report(reported) {
                news.disagreement = Some(shown);
            }
        }
        news
    }

    fn check_report(&mut self, reported: Option<RemoteConfigState>) -> Option<String> {
        let watch = self.watch.as_ref()?;
        let verdict = watch.verdict()?;
        let contradicts = matches!(
            (reported, verdict.outcome),
            (Some(RemoteConfigState::Applied), InferredOutcome::Failed)
                | (Some(RemoteConfigState::Failed), InferredOutcome::Applied)
        );
        if !contradicts {
            self.disagreeing_scrapes = 0;
            self.disagreement = None;
            return None;
        }
        self.disagreeing_scrapes += 1;
        if self.disagreeing_scrapes != DISAGREEING_SCRAPES_SHOWN {
            return None;
        }
        let reported = reported.map_or("nothing", RemoteConfigState::as_str);
        let text = format!(
            "Alloy reports version {} {reported}, but its own metrics say {}: {}",
            watch.delivered().version,
            verdict.outcome.as_str(),
            verdict.reason
        );
        self.disagreement = Some(text.clone());
        Some(text)
    }

    fn disagreement(&self) -> Option<&str> {
        self.disagreement.as_deref()
    }

    fn pending_version(&self) -> Option<u64> {
        let watch = self.watch.as_ref()?;
        watch.verdict().is_none().then(|| watch.delivered().version)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::apply_status::inference::all_healthy;
    use crate::apply_status::{alloy_content_hash, release_signals_for, ComponentHealth};

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    fn expectation(version: u64, content: &str) -> Arc<Expectation> {
        Arc::new(Expectation {
            version,
            content_hash: alloy_content_hash(content.as_bytes()),
            component_ids: BTreeSet::from(["otelcol.receiver.otlp.src_1".to_owned()]),
        })
    }

    fn scrape(at: u64, content: &str, unhealthy: bool) -> ApplySignals {
        ApplySignals {
            scraped_at_unix_nano: at,
            config_hashes: Some([alloy_content_hash(content.as_bytes())].into()),
            fetch_time_seconds: Some(1.0),
            remotecfg_components: Some(if unhealthy {
                ComponentHealth { unhealthy: 1, ..ComponentHealth::default() }
            } else {
                all_healthy(1)
            }),
            pipeline_components: Some(all_healthy(1)),
            pipeline_edge_components: None,
        }
    }

    #[test]
    fn the_scrape_before_a_delivery_is_its_baseline_and_a_verdict_follows() {
        let mut tracker = ApplyTracker::default();
        let release = release_signals_for(Some("v1.9.0"));
        tracker.scrapes(&[scrape(T0, "one", false)], None);
        tracker.delivered(expectation(2, "two"), release);
        assert_eq!(tracker.pending_version(), Some(2));
        let news = tracker.scrapes(&[scrape(T0 + 30 * SECOND, "two", true)], None);
        let (version, verdict) = news.verdict.expect("verdict");
        assert_eq!((version, verdict.outcome), (2, InferredOutcome::Failed));
        assert_eq!(tracker.pending_version(), None);
    }

    #[test]
    fn a_delivery_before_the_previous_one_reached_alloy_gets_no_baseline() {
        let mut tracker = ApplyTracker::default();
        let release = release_signals_for(Some("v1.9.0"));
        tracker.scrapes(&[scrape(T0, "one", false)], None);
        tracker.delivered(expectation(2, "two"), release);
        tracker.delivered(expectation(3, "three"), release);
        // Turning unhealthy could be version 2's doing: no verdict for 3 from that change alone.
        let news = tracker.scrapes(&[scrape(T0 + 30 * SECOND, "two", true)], None);
        assert!(news.verdict.is_none(), "{news:?}");
    }

    #[test]
    fn a_disagreement_with_alloys_report_is_shown_once_it_outlives_a_scrape() {
        let mut tracker = ApplyTracker::default();
        let release = release_signals_for(Some("v1.14.0"));
        tracker.scrapes(&[scrape(T0, "one", false)], None);
        tracker.delivered(expectation(2, "two"), release);
        let applied = Some(RemoteConfigState::Applied);
        let first = tracker.scrapes(&[scrape(T0 + 30 * SECOND, "one", true)], applied);
        assert_eq!(first.verdict.map(|(_, verdict)| verdict.outcome), Some(InferredOutcome::Failed));
        assert!(first.disagreement.is_none() && tracker.disagreement().is_none());
        let second = tracker.scrapes(&[scrape(T0 + 60 * SECOND, "one", true)], applied);
        let shown = second.disagreement.expect("shown after a second scrape");
        assert!(
            shown.starts_with("Alloy reports version 2 applied, but its own metrics say failed"),
            "{shown}"
        );
        assert!(tracker.scrapes(&[scrape(T0 + 90 * SECOND, "one", true)], applied).disagreement.is_none());
        assert!(tracker.disagreement().is_some());
        tracker.scrapes(&[scrape(T0 + 120 * SECOND, "one", true)], Some(RemoteConfigState::Failed));
        assert!(tracker.disagreement().is_none());
    }
}
