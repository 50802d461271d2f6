//! The figures of Alloy's own metrics that tell whether a remote config loaded
//! ([`crate::apply_status::ApplySignals`]), read out of an OTLP push, one entry per scrape.
//!
//! A scrape is every point sharing a `time_unix_nano` (Prometheus stamps a whole scrape with one
//! time, and `otelcol.receiver.prometheus` keeps it). These gauges are not in the throughput table:
//! they are read here, accepted, and never rejected (a malformed one is simply not a signal).

use std::collections::{BTreeMap, BTreeSet};

#[cfg(test)]
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use super::metric_rules::{alloy_local_id, normalise_metric_name};
use super::push_view::{attribute, AttributeView, DataView, PushView};
use crate::apply_status::{ApplySignals, PIPELINE_CONTROLLER, REMOTECFG_CONTROLLER};

/// The scrapes in `request` that carry any of the figures, oldest first.
#[cfg(test)]
pub fn read_apply_signals(request: &ExportMetricsServiceRequest) -> Vec<ApplySignals> {
    read_apply_signals_in(&PushView::from_request(request))
}

/// The scrapes in a push's view that carry any of the figures, oldest first.
pub fn read_apply_signals_in(view: &PushView<'_>) -> Vec<ApplySignals> {
    let mut scrapes: BTreeMap<u64, ApplySignals> = BTreeMap::new();
    for metric in &view.metrics {
        let name = normalise_metric_name(metric.name);
        let DataView::Number { points, .. } = &metric.data else { continue };
        let read: fn(&mut ApplySignals, &[AttributeView<'_>], f64) = match name.as_ref() {
            "remotecfg_hash" => read_config_hash,
            "remotecfg_last_load_success_timestamp_seconds" => read_fetch_time,
            "alloy_component_controller_running_components" => read_running_components,
            "alloy_component_graph_connection" => read_graph_connection,
            _ => continue,
        };
        for point in view.points(points) {
            let Some(value) = point.value.filter(|value| value.is_finite()) else { continue };
            if point.time_unix_nano == 0 {
                continue;
            }
            let scrape = scrapes.entry(point.time_unix_nano).or_insert_with(|| ApplySignals {
                scraped_at_unix_nano: point.time_unix_nano,
                ..ApplySignals::default()
            });
            read(scrape, view.attributes(point), value);
        }
    }
    scrapes.into_values().filter(|scrape| !scrape.is_empty()).collect()
}

fn controller<'v>(attributes: &'v [AttributeView<'_>]) -> Option<(&'v str, &'v str)> {
    Some((attribute(attributes, "controller_path")?, attribute(attributes, "controller_id")?))
}

fn is_controller(found: (&str, &str), wanted: (&str, &str)) -> bool {
    found == wanted
}

fn read_config_hash(scrape: &mut ApplySignals, attributes: &[AttributeView<'_>], value: f64) {
    let hashes = scrape.config_hashes.get_or_insert_with(BTreeSet::new);
    if let Some(hash) = attribute(attributes, "hash").filter(|hash| !hash.is_empty()) {
        if value == 1.0 {
            hashes.insert(hash.to_owned());
        }
    }
}

fn read_fetch_time(scrape: &mut ApplySignals, _attributes: &[AttributeView<'_>], value: f64) {
    scrape.fetch_time_seconds = Some(value);
}

fn read_running_components(scrape: &mut ApplySignals, attributes: &[AttributeView<'_>], value: f64) {
    let Some(found) = controller(attributes) else { return };
    let Some(health_type) = attribute(attributes, "health_type") else { return };
    if value < 0.0 {
        return;
    }
    let count = value as u64;
    let target = if is_controller(found, REMOTECFG_CONTROLLER) {
        &mut scrape.remotecfg_components
    } else if is_controller(found, PIPELINE_CONTROLLER) {
        &mut scrape.pipeline_components
    } else {
        return;
    };
    target.get_or_insert_with(Default::default).add(health_type, count);
}

fn read_graph_connection(scrape: &mut ApplySignals, attributes: &[AttributeView<'_>], value: f64) {
    let Some(found) = controller(attributes) else { return };
    if !is_controller(found, PIPELINE_CONTROLLER) {
        return;
    }
    let components = scrape.pipeline_edge_components.get_or_insert_with(BTreeSet::new);
    if value <= 0.0 {
        return;
    }
    for end in ["from", "to"] {
        if let Some(id) = attribute(attributes, end) {
            components.insert(alloy_local_id(id).to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::metrics::v1::NumberDataPoint;

    use super::super::otlp_values::test_otlp::*;
    use super::*;
    use crate::apply_status::ComponentHealth;

    const SECOND: u64 = 1_000_000_000;
    const T0: u64 = 1_800_000_000 * SECOND;

    fn running(path: &str, id: &str, health: &str, time: u64, count: f64) -> NumberDataPoint {
        number(
            vec![text("controller_path", path), text("controller_id", id), text("health_type", health)],
            0,
            time,
            count,
        )
    }

    #[test]
    fn each_scrape_becomes_one_set_of_signals_in_time_order() {
        let request = request(vec![
            gauge(
                "remotecfg_hash",
                vec![
                    number(vec![text("hash", "0a1b2c3d")], 0, T0 + SECOND, 1.0),
                    number(vec![text("hash", "99999999")], 0, T0 + SECOND, 0.0),
                    number(vec![text("hash", "11111111")], 0, T0, 1.0),
                ],
            ),
            gauge(
                "remotecfg_last_load_success_timestamp_seconds",
                vec![number(vec![], 0, T0 + SECOND, 1.8e9)],
            ),
            gauge(
                "alloy_component_controller_running_components",
                vec![
                    running("/", "remotecfg", "healthy", T0 + SECOND, 0.0),
                    running("/", "remotecfg", "unhealthy", T0 + SECOND, 1.0),
                    running("/remotecfg", "linkmesh_pipeline.default", "healthy", T0 + SECOND, 5.0),
                    running("/remotecfg", "linkmesh_pipeline.default", "exited", T0 + SECOND, 1.0),
                    running("/", "", "healthy", T0 + SECOND, 4.0),
                ],
            ),
            gauge(
                "alloy_component_graph_connection",
                vec![
                    number(
                        vec![
                            text("controller_path", "/remotecfg"),
                            text("controller_id", "linkmesh_pipeline.default"),
                            text("from", "otelcol.receiver.otlp.src_1"),
                            text("to", "remotecfg/linkmesh_pipeline.default/otelcol.exporter.otlp.dst_1"),
                        ],
                        0,
                        T0 + SECOND,
                        1.0,
                    ),
                    number(
                        vec![
                            text("controller_path", "/"),
                            text("controller_id", ""),
                            text("from", "prometheus.scrape.linkmesh_self"),
                            text("to", "otelcol.receiver.prometheus.linkmesh"),
                        ],
                        0,
                        T0 + SECOND,
                        1.0,
                    ),
                ],
            ),
            gauge("unrelated", vec![number(vec![], 0, T0 + 5 * SECOND, 1.0)]),
        ]);
        let scrapes = read_apply_signals(&request);
        assert_eq!(scrapes.len(), 2, "{scrapes:#?}");
        assert_eq!(scrapes[0].scraped_at_unix_nano, T0);
        assert_eq!(scrapes[0].config_hashes, Some(["11111111".to_owned()].into()));
        let latest = &scrapes[1];
        assert_eq!(latest.config_hashes, Some(["0a1b2c3d".to_owned()].into()));
        assert_eq!(latest.fetch_time_seconds, Some(1.8e9));
        assert_eq!(latest.remotecfg_components, Some(ComponentHealth { healthy: 0, unhealthy: 1, other: 0 }));
        assert_eq!(latest.pipeline_components, Some(ComponentHealth { healthy: 5, unhealthy: 0, other: 1 }));
        assert_eq!(
            latest.pipeline_edge_components,
            Some(["otelcol.exporter.otlp.dst_1".to_owned(), "otelcol.receiver.otlp.src_1".to_owned()].into())
        );
    }

    #[test]
    fn pushes_without_these_figures_carry_no_signals() {
        let request = request(vec![counter(
            "otelcol_receiver_accepted_spans_total",
            vec![number(vec![text("component_id", "otelcol.receiver.otlp.src_1")], 0, T0, 3.0)],
        )]);
        assert!(read_apply_signals(&request).is_empty());
        let untimed = request_with_hash_at(0);
        assert!(read_apply_signals(&untimed).is_empty());
    }

    fn request_with_hash_at(time: u64) -> ExportMetricsServiceRequest {
        request(vec![gauge("remotecfg_hash", vec![number(vec![text("hash", "0a1b2c3d")], 0, time, 1.0)])])
    }
}
