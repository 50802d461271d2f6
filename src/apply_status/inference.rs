//! One delivery followed through the scrapes after it: [`ApplyWatch`].
//!
//! Alloy loads a delivered config in the GetConfig call that received it, so by the next scrape the
//! outcome is in its metrics; the hard part is knowing which scrapes come after the delivery, since
//! scrape times are the collector's clock. The watch never compares clocks. It keeps the last
//! scrape received before the delivery (the baseline) and draws a verdict only from
//!
//! - a figure that changed since the baseline in a way only loading the delivered content can
//!   cause (the delivery is the only content Alloy can have received since), or
//! - a figure the release table says is set only after a successful load, naming the delivered
//!   content (`remotecfg_hash` in releases that set it after loading), or
//! - "no change" in a scrape taken strictly after one that proves Alloy received the delivery
//!   (settled: Alloy parses and loads in the same call, before its next scrape).
//!
//! Signals that say "applied" and "failed" at once wait for a settled scrape, then give "unknown".
//! So do figures that cannot tell (a change that keeps the component set, in a release that labels
//! the hash before loading). A later scrape may still turn "unknown" into a verdict; a verdict is
//! final for its delivery.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::releases::{FetchTime, HashLabel, LastLoadSuccessful, ReleaseSignals};
use super::{ApplySignals, ComponentHealth};

/// Scrapes after the baseline without any sign that Alloy received the delivery before the watch
/// says "unknown". Alloy loads during the delivering call, so one or two scrapes normally show it.
pub const SCRAPES_BEFORE_UNKNOWN: u32 = 3;

/// How long before a scrape (both by the collector's clock) Alloy's last content fetch must have
/// started for the scrape to show the load finished. Alloy stamps the fetch, labels the hash (1.7–1.11)
/// and parses before the loader takes its lock, and a scrape's component counts wait for that lock;
/// only a scrape inside the parse can see the label but not the load. Parsing takes milliseconds.
pub const LOAD_DONE_AFTER_SECONDS: f64 = 5.0;

/// What linkmesh delivered (or knows Alloy ran before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub version: u64,
    /// [`super::alloy_content_hash`] of the delivered bytes, credentials in.
    pub content_hash: String,
    /// Component ids in linkmesh's declare body (empty: nothing configured, no declare instance).
    pub component_ids: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InferredOutcome {
    Applied,
    Failed,
    Unknown,
}

impl InferredOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InferredOutcome::Applied => "applied",
            InferredOutcome::Failed => "failed",
            InferredOutcome::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub outcome: InferredOutcome,
    /// One sentence for the operator: what the metrics showed.
    pub reason: String,
    /// The metric names the verdict rests on.
    pub signals: Vec<&'static str>,
    pub scraped_at_unix_nano: u64,
}

const HASH: &str = "remotecfg_hash";
const FETCH_TIME: &str = "remotecfg_last_load_success_timestamp_seconds";
const RUNNING: &str = "alloy_component_controller_running_components";
const EDGES: &str = "alloy_component_graph_connection";

/// One piece of evidence: the metric and what it says.
struct Evidence {
    signal: &'static str,
    says: String,
}

#[derive(Debug, Clone)]
pub struct ApplyWatch {
    release: Option<&'static ReleaseSignals>,
    delivered: Arc<Expectation>,
    /// The config Alloy ran before, when linkmesh knows it (its delivery was seen applied).
    previous: Option<Arc<Expectation>>,
    baseline: Option<ApplySignals>,
    /// Scrape time of the first scrape proving Alloy received the delivery.
    received_at: Option<u64>,
    last_scrape_at: Option<u64>,
    scrapes_seen: u32,
    verdict: Option<Verdict>,
}

impl ApplyWatch {
    /// `baseline`: the newest scrape linkmesh had received when it delivered; `None` when it has
    /// none it can trust (no push yet, or an earlier delivery still undecided), which leaves only
    /// the figures that name the delivered content.
    pub fn new(
        release: Option<&'static ReleaseSignals>,
        delivered: Arc<Expectation>,
        previous: Option<Arc<Expectation>>,
        baseline: Option<ApplySignals>,
    ) -> Self {
        let last_scrape_at = baseline.as_ref().map(|scrape| scrape.scraped_at_unix_nano);
        ApplyWatch {
            release,
            delivered,
            previous,
            baseline,
            received_at: None,
            last_scrape_at,
            scrapes_seen: 0,
            verdict: None,
        }
    }

    pub fn delivered(&self) -> &Arc<Expectation> {
        &self.delivered
    }

    pub fn release(&self) -> Option<&'static ReleaseSignals> {
        self.release
    }

    /// The collector reported (another) version after the watch began.
    pub fn set_release(&mut self, release: Option<&'static ReleaseSignals>) {
        self.release = release;
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Whether the watch is past the point where its delivery could still be loading: a scrape
    /// showed it reached Alloy, or the watch gave any verdict (at the latest after
    /// [`SCRAPES_BEFORE_UNKNOWN`] scrapes). A later delivery can take its scrapes as a baseline.
    pub fn settled(&self) -> bool {
        self.received_at.is_some() || self.verdict.is_some()
    }

    /// Whether the watch reached "applied" or "failed" (no later scrape changes it).
    pub fn is_final(&self) -> bool {
        self.verdict.as_ref().is_some_and(|verdict| verdict.outcome != InferredOutcome::Unknown)
    }

    /// Takes one scrape (in any order; older or repeated scrapes are ignored). Returns the verdict
    /// when this scrape gave a new one.
    pub fn observe(&mut self, scrape: &ApplySignals) -> Option<&Verdict> {
        let at = scrape.scraped_at_unix_nano;
        if self.is_final() || self.last_scrape_at.is_some_and(|last| at <= last) || scrape.is_empty() {
            return None;
        }
        self.last_scrape_at = Some(at);
        self.scrapes_seen += 1;
        let receipt = self.received_at.is_some() || self.shows_receipt(scrape);
        let settled = self.received_at.is_some_and(|received| at > received)
            || (receipt && fetched_long_before(scrape));
        let (applied, failed) = self.evidence(scrape, settled);
        if self.received_at.is_none()
            && (self.shows_receipt(scrape) || !applied.is_empty() || !failed.is_empty())
        {
            self.received_at = Some(at);
        }
        let next = match (applied.is_empty(), failed.is_empty()) {
            (false, true) => Some(verdict(InferredOutcome::Applied, &applied, at)),
            (true, false) => Some(verdict(InferredOutcome::Failed, &failed, at)),
            (false, false) if settled => Some(self.disagreement(&applied, &failed, at)),
            (true, true) if settled => Some(self.cannot_tell(at)),
            (true, true) if self.received_at.is_none() && self.scrapes_seen >= SCRAPES_BEFORE_UNKNOWN => {
                Some(self.no_receipt(at))
            }
            _ => None,
        };
        let next =
            next.filter(|next| self.verdict.as_ref().is_none_or(|current| current.outcome != next.outcome))?;
        self.verdict = Some(next);
        self.verdict.as_ref()
    }

    /// Figures that move when a delivery reaches Alloy, before (or whether or not) it loads.
    fn shows_receipt(&self, scrape: &ApplySignals) -> bool {
        let Some(release) = self.release else { return false };
        let hash_received = release.hash_label == HashLabel::BeforeLoad
            && scrape
                .config_hashes
                .as_ref()
                .is_some_and(|hashes| hashes.contains(&self.delivered.content_hash));
        let fetched = release.fetch_time == FetchTime::ContentOnly
            && matches!(
                (self.baseline.as_ref().and_then(|baseline| baseline.fetch_time_seconds), scrape.fetch_time_seconds),
                (Some(before), Some(now)) if now != before
            );
        hash_received || fetched
    }

    /// Evidence for "applied" and for "failed" in this scrape. `settled`: taken strictly after a
    /// scrape that proved receipt, so "nothing changed" means something.
    fn evidence(&self, scrape: &ApplySignals, settled: bool) -> (Vec<Evidence>, Vec<Evidence>) {
        let mut applied = Vec::new();
        let mut failed = Vec::new();
        let baseline = self.baseline.as_ref();
        let version = self.delivered.version;

        if let (Some(release), Some(hashes)) = (self.release, scrape.config_hashes.as_ref()) {
            let named = hashes.contains(&self.delivered.content_hash);
            let meaningful = match release.hash_label {
                HashLabel::AfterLoadReset => true,
                HashLabel::AfterLoadAccumulating => baseline
                    .and_then(|baseline| baseline.config_hashes.as_ref())
                    .is_some_and(|before| !before.contains(&self.delivered.content_hash)),
                HashLabel::BeforeLoad => false,
            };
            if meaningful && named {
                applied.push(Evidence {
                    signal: HASH,
                    says: format!(
                        "remotecfg_hash names the content of version {version} (Alloy {} sets it only after loading)",
                        release.range_label()
                    ),
                });
            } else if meaningful && settled {
                failed.push(Evidence {
                    signal: HASH,
                    says: format!(
                        "Alloy received version {version} but remotecfg_hash does not name it (Alloy {} sets it only after loading)",
                        release.range_label()
                    ),
                });
            }
        }

        let module_before = baseline.and_then(|baseline| baseline.remotecfg_components);
        let module_now = scrape.remotecfg_components;
        if let Some(now) = module_now {
            if now.unhealthy > 0 {
                let turned = module_before.is_some_and(|before| before.unhealthy == 0 && before.total() > 0);
                if turned || settled {
                    failed.push(Evidence {
                        signal: RUNNING,
                        says: format!(
                            "the remotecfg module is unhealthy after version {version} reached Alloy (its declare body failed to load or evaluate)"
                        ),
                    });
                }
            } else if module_before.is_some_and(|before| before.unhealthy > 0) && self.recovery_means_loaded()
            {
                applied.push(Evidence {
                    signal: RUNNING,
                    says: format!(
                        "the remotecfg module turned healthy after version {version}: only a successful load clears a failed evaluation"
                    ),
                });
            }
        }
        let module_healthy = module_now.is_some_and(|now| now.unhealthy == 0 && now.total() > 0);

        let graph = self.graph_evidence(scrape, settled);
        match graph {
            Some(GraphMatch::Delivered(signal, says)) if module_healthy => {
                applied.push(Evidence { signal, says });
            }
            Some(GraphMatch::Other(signal, says)) => failed.push(Evidence { signal, says }),
            _ => {}
        }
        (applied, failed)
    }

    /// In releases that reload the cached config after a refusal, the module turns healthy again
    /// either way; an unknown release might be one of them.
    fn recovery_means_loaded(&self) -> bool {
        self.release.is_some_and(|release| {
            release.last_load_successful != LastLoadSuccessful::LoadResultThenCacheFallback
        })
    }

    /// Whether the pipeline's component count or edges show the delivered graph running, or another.
    /// A graph that loaded has exactly the delivered components, so once receipt is settled any
    /// other count (or an edge between components the delivery does not have) means it is not running.
    fn graph_evidence(&self, scrape: &ApplySignals, settled: bool) -> Option<GraphMatch> {
        let baseline = self.baseline.as_ref();
        let delivered = &self.delivered.component_ids;
        if delivered.is_empty() {
            return None;
        }
        let previous = self.previous.as_ref().map(|previous| &previous.component_ids);
        let version = self.delivered.version;

        if let Some(now) = scrape.pipeline_components.map(|health| health.total()) {
            let delivered_count = delivered.len() as u64;
            let before =
                baseline.and_then(|baseline| baseline.pipeline_components).map(|health| health.total());
            if now == delivered_count {
                let moved = before.is_some_and(|before| before != delivered_count);
                let distinct = previous.is_some_and(|previous| previous.len() as u64 != delivered_count);
                if moved || (settled && distinct) {
                    return Some(GraphMatch::Delivered(
                        RUNNING,
                        format!("the pipeline runs {now} components, as version {version} has"),
                    ));
                }
            } else if settled {
                return Some(GraphMatch::Other(
                    RUNNING,
                    format!(
                        "the pipeline runs {now} components after Alloy received version {version}, which has {delivered_count}: another graph is running"
                    ),
                ));
            }
        }

        let edges = scrape.pipeline_edge_components.as_ref().filter(|edges| !edges.is_empty())?;
        let matches_delivered = edges.is_subset(delivered);
        let matches_previous = previous.is_some_and(|previous| edges.is_subset(previous));
        let moved = baseline
            .and_then(|baseline| baseline.pipeline_edge_components.as_ref())
            .is_some_and(|before| before != edges);
        if matches_delivered && !matches_previous && (moved || settled) {
            return Some(GraphMatch::Delivered(
                EDGES,
                format!("the pipeline's graph edges connect only components of version {version}"),
            ));
        }
        if !matches_delivered && settled {
            return Some(GraphMatch::Other(
                EDGES,
                format!("the pipeline's graph edges connect components that version {version} does not have"),
            ));
        }
        None
    }

    fn disagreement(&self, applied: &[Evidence], failed: &[Evidence], at: u64) -> Verdict {
        let mut signals: Vec<&'static str> =
            applied.iter().chain(failed).map(|evidence| evidence.signal).collect();
        signals.dedup();
        Verdict {
            outcome: InferredOutcome::Unknown,
            reason: format!(
                "Alloy's metrics disagree about version {}: {}; but {}",
                self.delivered.version,
                join(applied),
                join(failed)
            ),
            signals,
            scraped_at_unix_nano: at,
        }
    }

    fn cannot_tell(&self, at: u64) -> Verdict {
        let mut signals = vec![HASH];
        if self.release.is_some_and(|release| release.fetch_time == FetchTime::ContentOnly) {
            signals.push(FETCH_TIME);
        }
        signals.push(RUNNING);
        let release = self
            .release
            .map_or_else(|| "this release".to_owned(), |release| format!("Alloy {}", release.range_label()));
        Verdict {
            outcome: InferredOutcome::Unknown,
            reason: format!(
                "Alloy received version {} and its module stayed healthy, but {release} does not show whether it loaded: the change keeps the pipeline's component set, and a config refused before evaluation leaves no trace",
                self.delivered.version
            ),
            signals,
            scraped_at_unix_nano: at,
        }
    }

    fn no_receipt(&self, at: u64) -> Verdict {
        let why = match self.release {
            None => "its release is unknown to linkmesh (no collector.version, or outside the table), so only changes in its component graph can tell",
            Some(release) if release.hash_label == HashLabel::AfterLoadReset => {
                "remotecfg_hash does not name it, which in this release means it was not loaded yet or was refused before evaluation"
            }
            Some(_) => "none of this release's figures moved since the delivery",
        };
        Verdict {
            outcome: InferredOutcome::Unknown,
            reason: format!(
                "{SCRAPES_BEFORE_UNKNOWN} scrapes since version {} was delivered show no sign of it: {why}",
                self.delivered.version
            ),
            signals: vec![HASH, RUNNING],
            scraped_at_unix_nano: at,
        }
    }
}

/// The scrape was taken long enough after Alloy's last content fetch (a delivery it has received)
/// that the load of that content is over.
fn fetched_long_before(scrape: &ApplySignals) -> bool {
    let scraped_at = scrape.scraped_at_unix_nano as f64 / 1e9;
    scrape.fetch_time_seconds.is_some_and(|fetched| scraped_at - fetched >= LOAD_DONE_AFTER_SECONDS)
}

enum GraphMatch {
    Delivered(&'static str, String),
    Other(&'static str, String),
}

fn verdict(outcome: InferredOutcome, evidence: &[Evidence], at: u64) -> Verdict {
    let mut signals: Vec<&'static str> = evidence.iter().map(|evidence| evidence.signal).collect();
    signals.dedup();
    Verdict { outcome, reason: join(evidence), signals, scraped_at_unix_nano: at }
}

fn join(evidence: &[Evidence]) -> String {
    evidence.iter().map(|evidence| evidence.says.as_str()).collect::<Vec<_>>().join("; ")
}

/// Health counts with all components healthy (tests, fixtures).
pub fn all_healthy(count: u64) -> ComponentHealth {
    ComponentHealth { healthy: count, ..ComponentHealth::default() }
}

#[cfg(test)]
mod tests {
    use super::super::alloy_content_hash;
    use super::super::releases::release_signals_for;
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;
    const OLD: &str = "declare \"linkmesh_pipeline\" { old }";
    const NEW: &str = "declare \"linkmesh_pipeline\" { new }";

    fn ids(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn expectation(version: u64, content: &str, components: &[&str]) -> Arc<Expectation> {
        Arc::new(Expectation {
            version,
            content_hash: alloy_content_hash(content.as_bytes()),
            component_ids: ids(components),
        })
    }

    const OLD_IDS: &[&str] = &["otelcol.receiver.otlp.src_1", "otelcol.exporter.otlp.dst_1"];
    const NEW_IDS: &[&str] = &[
        "otelcol.receiver.otlp.src_1",
        "otelcol.processor.filter.rte_1_match",
        "otelcol.exporter.otlp.dst_1",
    ];
    const SAME_SIZE_IDS: &[&str] = &["otelcol.receiver.otlp.src_1", "otelcol.exporter.otlphttp.dst_1"];

    /// A scrape at `at` showing `hashes`, the last content fetch at `fetch_time` seconds after T0, the
    /// remotecfg module healthy or not, and `pipeline` components.
    fn scrape(
        at: u64,
        hashes: &[&str],
        fetch_time: f64,
        module_unhealthy: bool,
        pipeline: u64,
    ) -> ApplySignals {
        ApplySignals {
            scraped_at_unix_nano: at,
            config_hashes: Some(
                hashes.iter().map(|content| alloy_content_hash(content.as_bytes())).collect(),
            ),
            fetch_time_seconds: Some((T0 / SECOND) as f64 + fetch_time),
            remotecfg_components: Some(if module_unhealthy {
                ComponentHealth { unhealthy: 1, ..ComponentHealth::default() }
            } else {
                all_healthy(1)
            }),
            pipeline_components: Some(all_healthy(pipeline)),
            pipeline_edge_components: None,
        }
    }

    fn watch(version: &str, new_ids: &[&str], baseline: Option<ApplySignals>) -> ApplyWatch {
        ApplyWatch::new(
            release_signals_for(Some(version)),
            expectation(2, NEW, new_ids),
            Some(expectation(1, OLD, OLD_IDS)),
            baseline,
        )
    }

    fn outcome_after(watch: &mut ApplyWatch, scrapes: &[ApplySignals]) -> Option<InferredOutcome> {
        for scrape in scrapes {
            watch.observe(scrape);
        }
        watch.verdict().map(|verdict| verdict.outcome)
    }

    #[test]
    fn releases_that_label_after_loading_show_applied_in_the_first_scrape() {
        for version in ["v1.3.0", "v1.6.1"] {
            let mut watch = watch(version, SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
            let verdict = watch.observe(&scrape(T0 + 30 * SECOND, &[NEW], 160.0, false, 2)).cloned();
            let verdict = verdict.expect(version);
            assert_eq!(verdict.outcome, InferredOutcome::Applied, "{version}: {}", verdict.reason);
            assert_eq!(verdict.signals, vec![HASH]);
        }
    }

    #[test]
    fn a_module_that_turns_unhealthy_after_the_delivery_failed_in_every_release() {
        for version in ["v1.2.0", "v1.6.1", "v1.7.0", "v1.10.2", "v1.11.3"] {
            let mut watch = watch(version, SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
            // 1.7–1.11 label the refused content; 1.2–1.6 keep the old label.
            let before_load =
                watch.release().is_some_and(|release| release.hash_label == HashLabel::BeforeLoad);
            let label = if before_load { NEW } else { OLD };
            let verdict = watch.observe(&scrape(T0 + 30 * SECOND, &[label], 160.0, true, 2)).cloned();
            assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Failed), "{version}");
        }
    }

    #[test]
    fn before_load_labels_prove_receipt_and_an_unchanged_count_of_a_smaller_graph_means_refused() {
        // 1.10 labels the content before parsing it. Content refused before evaluation (a parse
        // error) leaves the module's health alone; the pipeline still runs the previous version's 2
        // components, not the 3 of the delivered one.
        let mut watch = watch("v1.10.2", NEW_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        let received = scrape(T0 + 30 * SECOND, &[NEW], 160.0, false, 2);
        assert!(
            watch.observe(&received).is_none(),
            "the first scrape showing the label may predate the load"
        );
        let settled = scrape(T0 + 60 * SECOND, &[NEW], 160.0, false, 2);
        let verdict = watch.observe(&settled).cloned().expect("settled");
        assert_eq!(verdict.outcome, InferredOutcome::Failed, "{}", verdict.reason);
        assert!(
            verdict.reason.contains("runs 2 components after Alloy received version 2, which has 3"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn a_scrape_long_enough_after_the_fetch_decides_at_once() {
        // The delivery was fetched at T0+20s; the scrape at T0+30s is past any parse.
        let mut watch = watch("v1.10.2", NEW_IDS, Some(scrape(T0, &[OLD], 0.0, false, 2)));
        let verdict = watch.observe(&scrape(T0 + 30 * SECOND, &[NEW], 20.0, false, 2)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Failed));

        // Fetched one second before the scrape: the scrape may have caught the parse.
        let mut watch = self::watch("v1.10.2", NEW_IDS, Some(scrape(T0, &[OLD], 0.0, false, 2)));
        assert!(watch.observe(&scrape(T0 + 30 * SECOND, &[NEW], 29.0, false, 2)).is_none());
        let verdict = watch.observe(&scrape(T0 + 60 * SECOND, &[NEW], 29.0, false, 2)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Failed));
    }

    #[test]
    fn a_component_count_that_moves_to_the_new_graph_with_a_healthy_module_is_applied() {
        let mut watch = watch("v1.10.2", NEW_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        let verdict = watch.observe(&scrape(T0 + 30 * SECOND, &[NEW], 160.0, false, 3)).cloned();
        let verdict = verdict.expect("a change");
        assert_eq!(verdict.outcome, InferredOutcome::Applied, "{}", verdict.reason);
        assert_eq!(verdict.signals, vec![RUNNING]);
    }

    #[test]
    fn an_unchanged_component_set_in_a_release_labelling_before_loading_is_unknown() {
        let mut watch = watch("v1.10.2", SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        assert!(watch.observe(&scrape(T0 + 30 * SECOND, &[NEW], 160.0, false, 2)).is_none());
        let verdict = watch.observe(&scrape(T0 + 60 * SECOND, &[NEW], 160.0, false, 2)).cloned();
        let verdict = verdict.expect("settled");
        assert_eq!(verdict.outcome, InferredOutcome::Unknown);
        assert!(verdict.reason.contains("does not show whether it loaded"), "{}", verdict.reason);
    }

    #[test]
    fn cache_fallback_in_1_12_hides_health_but_the_missing_hash_series_says_failed() {
        // 1.12: refused → last_load_successful 0, cached config reloaded, module healthy again; no
        // series for the new content. The fetch timestamp moved: Alloy received it.
        let mut watch = watch("v1.12.2", SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        assert!(watch.observe(&scrape(T0 + 30 * SECOND, &[OLD], 160.0, false, 2)).is_none());
        let verdict = watch.observe(&scrape(T0 + 60 * SECOND, &[OLD], 160.0, false, 2)).cloned();
        let verdict = verdict.expect("settled");
        assert_eq!(verdict.outcome, InferredOutcome::Failed, "{}", verdict.reason);
        assert_eq!(verdict.signals, vec![HASH]);
    }

    #[test]
    fn in_1_12_a_new_hash_series_is_applied_but_a_series_left_from_an_earlier_load_says_nothing() {
        let mut fresh = watch("v1.14.0", SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        let verdict = fresh.observe(&scrape(T0 + 30 * SECOND, &[OLD, NEW], 160.0, false, 2)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Applied));

        // NEW was loaded once before (rolled back and forth): its series never went away.
        let mut stale = watch("v1.14.0", SAME_SIZE_IDS, Some(scrape(T0, &[NEW, OLD], 100.0, false, 2)));
        assert!(stale.observe(&scrape(T0 + 30 * SECOND, &[NEW, OLD], 160.0, false, 2)).is_none());
        let verdict = stale.observe(&scrape(T0 + 60 * SECOND, &[NEW, OLD], 160.0, false, 2)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Unknown));
    }

    #[test]
    fn recovery_from_a_failed_evaluation_means_loaded_except_where_the_cache_reloads() {
        let failed_before = Some(scrape(T0, &[OLD], 100.0, true, 2));
        let mut old_release = watch("v1.9.0", SAME_SIZE_IDS, failed_before.clone());
        let verdict = old_release.observe(&scrape(T0 + 30 * SECOND, &[NEW], 160.0, false, 2)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Applied));

        let mut cache_release = watch("v1.12.0", SAME_SIZE_IDS, failed_before);
        assert!(cache_release.observe(&scrape(T0 + 30 * SECOND, &[OLD], 100.0, false, 2)).is_none());
    }

    #[test]
    fn graph_edges_of_1_17_tell_which_graph_runs() {
        let mut baseline = scrape(T0, &[OLD], 100.0, false, 2);
        baseline.pipeline_edge_components = Some(ids(OLD_IDS));
        let mut watch = watch("v1.17.0", NEW_IDS, Some(baseline));
        let mut now = scrape(T0 + 30 * SECOND, &[OLD], 100.0, false, 2);
        now.pipeline_components = None;
        now.config_hashes = None;
        now.pipeline_edge_components = Some(ids(NEW_IDS));
        let verdict = watch.observe(&now).cloned().expect("edges moved");
        assert_eq!(verdict.outcome, InferredOutcome::Applied, "{}", verdict.reason);
        assert_eq!(verdict.signals, vec![EDGES]);
    }

    #[test]
    fn without_a_baseline_only_figures_naming_the_content_count() {
        let mut unknown_release = ApplyWatch::new(None, expectation(2, NEW, NEW_IDS), None, None);
        for offset in 1..=2 {
            assert!(unknown_release.observe(&scrape(T0 + offset * SECOND, &[NEW], 1.0, true, 3)).is_none());
        }
        let verdict = unknown_release.observe(&scrape(T0 + 3 * SECOND, &[NEW], 1.0, true, 3)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Unknown));

        let mut labelled_after_loading = watch("v1.4.0", NEW_IDS, None);
        let verdict = labelled_after_loading.observe(&scrape(T0, &[NEW], 1.0, false, 3)).cloned();
        assert_eq!(verdict.map(|verdict| verdict.outcome), Some(InferredOutcome::Applied));
    }

    #[test]
    fn older_and_repeated_scrapes_are_ignored_and_a_verdict_is_final() {
        let baseline = scrape(T0, &[OLD], 100.0, false, 2);
        let mut watch = watch("v1.5.0", SAME_SIZE_IDS, Some(baseline.clone()));
        assert!(watch.observe(&baseline).is_none());
        assert!(watch.observe(&scrape(T0 - SECOND, &[NEW], 1.0, false, 2)).is_none());
        assert_eq!(
            outcome_after(&mut watch, &[scrape(T0 + SECOND, &[NEW], 1.0, false, 2)]),
            Some(InferredOutcome::Applied)
        );
        assert!(watch.observe(&scrape(T0 + 2 * SECOND, &[OLD], 1.0, true, 2)).is_none());
        assert_eq!(watch.verdict().map(|verdict| verdict.outcome), Some(InferredOutcome::Applied));
    }

    #[test]
    fn no_sign_of_receipt_for_three_scrapes_is_unknown_and_a_later_sign_still_decides() {
        let mut watch = watch("v1.3.0", SAME_SIZE_IDS, Some(scrape(T0, &[OLD], 100.0, false, 2)));
        let mut last = None;
        for offset in 1..=u64::from(SCRAPES_BEFORE_UNKNOWN) {
            last = watch.observe(&scrape(T0 + offset * 30 * SECOND, &[OLD], 100.0, false, 2)).cloned();
        }
        let verdict = last.expect("unknown after three scrapes");
        assert_eq!(verdict.outcome, InferredOutcome::Unknown);
        assert!(verdict.reason.contains("does not name it"), "{}", verdict.reason);
        assert_eq!(
            outcome_after(&mut watch, &[scrape(T0 + 200 * SECOND, &[NEW], 100.0, false, 2)]),
            Some(InferredOutcome::Applied)
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::super::releases::ALLOY_RELEASES;
        use super::*;

        fn health() -> impl Strategy<Value = Option<ComponentHealth>> {
            proptest::option::of(
                (0u64..4, 0u64..2, 0u64..2).prop_map(|(healthy, unhealthy, other)| ComponentHealth {
                    healthy,
                    unhealthy,
                    other,
                }),
            )
        }

        proptest! {
            /// Scrapes that repeat the baseline's figures (later, and not naming the delivered
            /// content) never yield "applied" or "failed": without a change there is no sign.
            #[test]
            fn figures_that_never_move_never_give_a_verdict(
                row in proptest::option::of(0..ALLOY_RELEASES.len()),
                old_hash_present in any::<bool>(),
                fetch_time in proptest::option::of(0.0f64..1e9),
                module in health(),
                pipeline in health(),
                edges in proptest::option::of(proptest::sample::subsequence(NEW_IDS.to_vec(), 0..=3)),
                scrapes in 1u32..8,
            ) {
                let baseline = ApplySignals {
                    scraped_at_unix_nano: T0,
                    config_hashes: old_hash_present.then(|| [alloy_content_hash(OLD.as_bytes())].into()),
                    fetch_time_seconds: fetch_time,
                    remotecfg_components: module,
                    pipeline_components: pipeline,
                    pipeline_edge_components: edges.map(|edges| ids(&edges)),
                };
                let mut watch = ApplyWatch::new(
                    row.map(|row| &ALLOY_RELEASES[row]),
                    expectation(2, NEW, NEW_IDS),
                    Some(expectation(1, OLD, OLD_IDS)),
                    Some(baseline.clone()),
                );
                for offset in 1..=u64::from(scrapes) {
                    let later = ApplySignals { scraped_at_unix_nano: T0 + offset * 30 * SECOND, ..baseline.clone() };
                    watch.observe(&later);
                    let outcome = watch.verdict().map(|verdict| verdict.outcome);
                    prop_assert!(
                        outcome.is_none() || outcome == Some(InferredOutcome::Unknown),
                        "{:?} from unchanged figures", watch.verdict()
                    );
                }
            }
        }
    }
}
