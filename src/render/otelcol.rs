//! OpenTelemetry Collector YAML for `opamp` collectors.
//!
//! The route chain of [`super::plan`] is built from `forward` connectors, per signal:
//!
//! - `<signal>/src_x`: the source's receiver → `resource/src_x` (stamps `linkmesh.source.*`) → the
//!   connectors of every route the records reach first (route 1, plus route 2 if route 1 is not
//!   final, and so on);
//! - `<signal>/rte_x`: `forward/rte_x_<signal>` → `filter/rte_x_match` (drops `not (condition)`,
//!   absent for `true`) → the pipeline's steps → the route's destinations;
//! - `<signal>/rest_rte_x` (final routes with a later route only): `forward/rte_x_<signal>` →
//!   `filter/rte_x_rest` (drops `condition`) → the connectors of the next route(s).
//!
//! Loki destinations render as `otlphttp` to Loki's native OTLP endpoint (`<url>/otlp`): the contrib
//! `loki` exporter was removed from recent collector releases. Credentials go into `basicauth` /
//! `bearertokenauth` extensions, positions this module generates, filled from [`Credentials`]:
//! markers in the stored YAML, values in the delivered one. Every string scalar is JSON-quoted with
//! `$` doubled (delivered credentials included), so neither user text nor a secret can change the
//! YAML structure or trigger the collector's `${…}` expansion.

use std::collections::BTreeMap;

use super::alloy::KAFKA_PROTOCOL_VERSION;
use super::catalogue::{setting_bool, setting_integer, setting_list, setting_map, setting_str};
use super::plan::{
    self, attribute_actions, step_statements, Plan, PlannedDestination, PlannedRoute, PlannedSource,
    PlannedStep,
};
use super::secrets::{CredentialText, Credentials};
use super::yaml::Yaml;
use super::{nothing_configured, Heading, RenderInput, RenderedParts};
use crate::model::pipeline::Signal;

/// The YAML text and, per graph node id, the collector's ids of the components rendered for it
/// (`otlp/src_1`, `forward/rte_1_logs`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedOtelcol {
    pub content: String,
    pub components: BTreeMap<String, Vec<String>>,
}

/// The YAML as stored: credential markers at credential positions.
pub fn render_otelcol_yaml(input: &RenderInput<'_>) -> String {
    render_otelcol(input, &Credentials::Markers).content
}

/// The rendering has nothing to run: it is comments only (no source yet, or no route delivering a
/// signal). A collector cannot run it, and an OpAMP supervisor offered it could not start its
/// collector at all.
pub fn is_placeholder(content: &str) -> bool {
    content.lines().map(str::trim).all(|line| line.is_empty() || line.starts_with('#'))
}

pub fn render_otelcol(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> RenderedOtelcol {
    let parts = render_otelcol_parts(input, credentials);
    RenderedOtelcol { content: parts.content(input), components: parts.components }
}

/// [`render_otelcol`] split at its first line, the only one naming the collector.
pub(super) fn render_otelcol_parts(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> RenderedParts {
    let comment = |what: &'static str| RenderedParts {
        mode: input.mode,
        heading: Heading::Placeholder(what),
        rest: String::new(),
        components: BTreeMap::new(),
    };
    if nothing_configured(input) {
        return comment("no sources or routes configured");
    }
    let plan = Plan::new(input);
    if !plan.has_flow() {
        // A collector config needs at least one pipeline.
        return comment("no route delivers any signal of any source");
    }
    let mut config = Config::default();
    for source in &plan.sources {
        config.source(&plan, source);
    }
    for (index, route) in plan.routes.iter().enumerate() {
        config.route(&plan, index, route);
    }
    for destination in &plan.destinations {
        config.destination(destination, credentials);
    }

    let mut rest = String::new();
    for note in &plan.skipped {
        rest.push_str(&format!("# linkmesh: skipped: {note:?}\n"));
    }
    rest.push_str(&config.document().to_document());
    RenderedParts { mode: input.mode, heading: Heading::Config, rest, components: config.components }
}

/// The first line of an OpenTelemetry Collector config: a YAML comment naming the collector.
pub(super) fn heading_line(heading: Heading, collector_name: &str, collector_id: &str) -> String {
    match heading {
        Heading::Placeholder(what) => format!("# linkmesh: {what} for collector {collector_name:?}\n"),
        Heading::Config => format!(
            "# linkmesh: config of collector {collector_name:?} ({collector_id:?}); generated, local edits are \
             overwritten.\n"
        ),
    }
}

/// Sections in insertion order; every component id is unique by construction of the labels.
#[derive(Default)]
struct Config {
    receivers: Vec<(String, Yaml)>,
    processors: Vec<(String, Yaml)>,
    exporters: Vec<(String, Yaml)>,
    extensions: Vec<(String, Yaml)>,
    connectors: Vec<(String, Yaml)>,
    pipelines: Vec<(String, Yaml)>,
    components: BTreeMap<String, Vec<String>>,
}

fn pipeline(receivers: &[String], processors: &[String], exporters: &[String]) -> Yaml {
    Yaml::map()
        .with("receivers", Yaml::strs(receivers.iter().cloned()))
        .with("processors", Yaml::strs(processors.iter().cloned()))
        .with("exporters", Yaml::strs(exporters.iter().cloned()))
}

fn connector(route: &PlannedRoute<'_>, signal: Signal) -> String {
    format!("forward/{}_{}", route.label, signal.as_str())
}

/// The connectors records of `signal` reaching route `route_index` go to: the route's own and,
/// unless it is final, those of the routes after it.
fn route_entry(plan: &Plan<'_>, signal: Signal, route_index: usize) -> Vec<String> {
    let route = &plan.routes[route_index];
    let mut targets = vec![connector(route, signal)];
    if !route.route.is_final {
        if let Some(next) = plan.next_route(signal, route_index) {
            targets.extend(route_entry(plan, signal, next));
        }
    }
    targets
}

fn filter_processor(signals: &[Signal], conditions: &[String]) -> Yaml {
    let mut filter = Yaml::map().with("error_mode", Yaml::str("ignore"));
    for &signal in signals {
        let (section, field) = match signal {
            Signal::Logs => ("logs", "log_record"),
            Signal::Metrics => ("metrics", "datapoint"),
            Signal::Traces => ("traces", "span"),
        };
        filter.insert(section, Yaml::map().with(field, Yaml::strs(conditions.iter().cloned())));
    }
    filter
}

fn statements_section(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "log_statements",
        Signal::Metrics => "metric_statements",
        Signal::Traces => "trace_statements",
    }
}

/// The component id of a destination's exporter.
fn exporter_id(destination: &PlannedDestination) -> String {
    let kind = match destination.entry.type_name {
        "otlp_http" | "loki" => "otlphttp",
        "otlp_grpc" => "otlp",
        "prometheus_remote_write" => "prometheusremotewrite",
        "kafka" => "kafka",
        _ => "debug",
    };
    format!("{kind}/{}", destination.label)
}

fn step_id(step: &PlannedStep) -> String {
    let kind = match step.entry.type_name {
        "filter" => "filter",
        "attributes" => "attributes",
        "batch" => "batch",
        _ => "transform",
    };
    format!("{kind}/{}", step.label)
}

/// Loki's OTLP endpoint for a `loki` destination's `url` (a base URL or a push URL).
pub fn loki_otlp_endpoint(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let base = trimmed.strip_suffix("/loki/api/v1/push").unwrap_or(trimmed);
    format!("{base}/otlp")
}

impl Config {
    fn note(&mut self, node: &str, component: &str) {
        self.components.entry(node.to_owned()).or_default().push(component.to_owned());
    }

    fn document(&self) -> Yaml {
        let section = |entries: &Vec<(String, Yaml)>| Yaml::Map(entries.clone());
        let mut document = Yaml::map().with("receivers", section(&self.receivers));
        document.insert("processors", section(&self.processors));
        document.insert("exporters", section(&self.exporters));
        if !self.connectors.is_empty() {
            document.insert("connectors", section(&self.connectors));
        }
        if !self.extensions.is_empty() {
            document.insert("extensions", section(&self.extensions));
        }
        let mut service = Yaml::map();
        if !self.extensions.is_empty() {
            service.insert("extensions", Yaml::strs(self.extensions.iter().map(|(id, _)| id.clone())));
        }
        service.insert("pipelines", section(&self.pipelines));
        document.with("service", service)
    }

    fn source(&mut self, plan: &Plan<'_>, source: &PlannedSource) {
        let node = source.node_id();
        let entry = source.entry;
        let settings = &source.source.settings;
        let label = &source.label;
        let (receiver_id, receiver) = match entry.type_name {
            "otlp" => (
                format!("otlp/{label}"),
                Yaml::map().with(
                    "protocols",
                    Yaml::map()
                        .with(
                            "grpc",
                            Yaml::map().with(
                                "endpoint",
                                Yaml::str(setting_str(entry, settings, "grpc_endpoint").unwrap_or_default()),
                            ),
                        )
                        .with(
                            "http",
                            Yaml::map().with(
                                "endpoint",
                                Yaml::str(setting_str(entry, settings, "http_endpoint").unwrap_or_default()),
                            ),
                        ),
                ),
            ),
            "prometheus_scrape" => {
                let interval = setting_str(entry, settings, "scrape_interval").unwrap_or_default();
                let mut job = Yaml::map()
                    .with("job_name", Yaml::str(plan::job_name(source)))
                    .with("scrape_interval", Yaml::str(interval.clone()));
                if let Some(timeout) = plan::scrape_timeout_for(&interval) {
                    job.insert("scrape_timeout", Yaml::str(timeout));
                }
                job.insert(
                    "metrics_path",
                    Yaml::str(setting_str(entry, settings, "metrics_path").unwrap_or_default()),
                );
                job.insert(
                    "static_configs",
                    Yaml::Seq(vec![
                        Yaml::map().with("targets", Yaml::strs(setting_list(entry, settings, "targets")))
                    ]),
                );
                (
                    format!("prometheus/{label}"),
                    Yaml::map().with("config", Yaml::map().with("scrape_configs", Yaml::Seq(vec![job]))),
                )
            }
            "hostmetrics" => {
                let mut scrapers: Vec<String> = setting_list(entry, settings, "scrapers")
                    .into_iter()
                    .filter(|scraper| super::catalogue::HOST_METRIC_SCRAPERS.contains(&scraper.as_str()))
                    .collect();
                scrapers.sort();
                scrapers.dedup();
                let scrapers =
                    Yaml::Map(scrapers.into_iter().map(|scraper| (scraper, Yaml::map())).collect());
                (
                    format!("hostmetrics/{label}"),
                    Yaml::map()
                        .with(
                            "collection_interval",
                            Yaml::str(
                                setting_str(entry, settings, "collection_interval").unwrap_or_default(),
                            ),
                        )
                        .with("scrapers", scrapers),
                )
            }
            "file_tail" => {
                let mut receiver =
                    Yaml::map().with("include", Yaml::strs(setting_list(entry, settings, "include")));
                let exclude = setting_list(entry, settings, "exclude");
                if !exclude.is_empty() {
                    receiver.insert("exclude", Yaml::strs(exclude));
                }
                (format!("filelog/{label}"), receiver)
            }
            "syslog" => {
                let transport = setting_str(entry, settings, "protocol").unwrap_or_else(|| "tcp".to_owned());
                let transport = if transport == "udp" { "udp" } else { "tcp" };
                (
                    format!("syslog/{label}"),
                    Yaml::map()
                        .with(
                            "protocol",
                            Yaml::str(setting_str(entry, settings, "format").unwrap_or_default()),
                        )
                        .with(
                            transport,
                            Yaml::map().with(
                                "listen_address",
                                Yaml::str(setting_str(entry, settings, "address").unwrap_or_default()),
                            ),
                        ),
                )
            }
            "journald" => {
                let units = setting_list(entry, settings, "units");
                let mut receiver = Yaml::map();
                if !units.is_empty() {
                    receiver.insert("units", Yaml::strs(units));
                }
                (format!("journald/{label}"), receiver)
            }
            _ => return,
        };
        self.receivers.push((receiver_id.clone(), receiver));
        self.note(&node, &receiver_id);

        let resource_id = format!("resource/{label}");
        let attributes: Vec<Yaml> = plan::source_stamp_attributes(&source.source)
            .into_iter()
            .map(|(key, value)| {
                Yaml::map()
                    .with("key", Yaml::str(key))
                    .with("value", Yaml::str(value))
                    .with("action", Yaml::str("upsert"))
            })
            .collect();
        self.processors.push((resource_id.clone(), Yaml::map().with("attributes", Yaml::Seq(attributes))));
        self.note(&node, &resource_id);

        for &signal in &source.routed_signals {
            let Some(&first) = plan.chain(signal).first() else { continue };
            let exporters = route_entry(plan, signal, first);
            self.pipelines.push((
                format!("{}/{label}", signal.as_str()),
                pipeline(std::slice::from_ref(&receiver_id), std::slice::from_ref(&resource_id), &exporters),
            ));
        }
    }

    fn route(&mut self, plan: &Plan<'_>, index: usize, route: &PlannedRoute<'_>) {
        if route.signals.is_empty() {
            return;
        }
        let node = route.node_id();
        let label = &route.label;
        for &signal in &route.signals {
            let connector_id = connector(route, signal);
            self.connectors.push((connector_id.clone(), Yaml::map()));
            self.note(&node, &connector_id);
        }
        let match_id = format!("filter/{}", route.match_label());
        if route.has_match_filter() {
            let condition = plan::match_drop_condition(&route.route.condition);
            self.processors.push((match_id.clone(), filter_processor(&route.signals, &[condition])));
            self.note(&node, &match_id);
        }
        for step in &route.steps {
            if step.signals.is_empty() {
                continue;
            }
            let id = step_id(step);
            self.processors.push((id.clone(), step_processor(step)));
            self.note(&format!("step:{}:{}", route.route.id, step.index), &id);
        }
        let rest_id = format!("filter/{}", route.rest_label());
        if !route.rest_signals.is_empty() {
            let condition = plan::rest_drop_condition(&route.route.condition);
            self.processors.push((rest_id.clone(), filter_processor(&route.rest_signals, &[condition])));
            self.note(&node, &rest_id);
        }

        for &signal in &route.signals {
            let connector_id = connector(route, signal);
            let mut processors = Vec::new();
            if route.has_match_filter() {
                processors.push(match_id.clone());
            }
            processors.extend(route.steps_for(signal).map(step_id));
            let exporters: Vec<String> = plan.route_destinations(route, signal).map(exporter_id).collect();
            self.pipelines.push((
                format!("{}/{label}", signal.as_str()),
                pipeline(std::slice::from_ref(&connector_id), &processors, &exporters),
            ));
            if route.rest_signals.contains(&signal) {
                let next = plan
                    .next_route(signal, index)
                    .map(|next| route_entry(plan, signal, next))
                    .unwrap_or_default();
                self.pipelines.push((
                    format!("{}/rest_{label}", signal.as_str()),
                    pipeline(std::slice::from_ref(&connector_id), std::slice::from_ref(&rest_id), &next),
                ));
            }
        }
    }

    fn destination(&mut self, planned: &PlannedDestination, credentials: &Credentials<'_>) {
        if planned.signals.is_empty() {
            return;
        }
        let node = planned.node_id();
        let entry = planned.entry;
        let settings = planned.settings();
        let label = &planned.label;
        let secret = |key: &str| match planned.credential(key, credentials) {
            CredentialText::Marker(marker) => Yaml::verbatim(marker),
            CredentialText::Value(value) => Yaml::str(value),
        };
        let has_basic = planned.has_basic_auth();
        let basic_auth = |config: &mut Config| -> String {
            let id = format!("basicauth/{label}");
            let extension = Yaml::map().with(
                "client_auth",
                Yaml::map().with("username", secret("username")).with("password", secret("password")),
            );
            config.extensions.push((id.clone(), extension));
            config.note(&node, &id);
            id
        };
        let exporter_id = exporter_id(planned);
        let exporter = match entry.type_name {
            "otlp_http" => {
                let mut exporter = Yaml::map().with(
                    "endpoint",
                    Yaml::str(setting_str(entry, settings, "endpoint").unwrap_or_default()),
                );
                let headers = setting_map(settings, "headers");
                if !headers.is_empty() {
                    exporter.insert(
                        "headers",
                        Yaml::Map(headers.into_iter().map(|(key, value)| (key, Yaml::str(value))).collect()),
                    );
                }
                let authenticator = if planned.has_credential("bearer_token") {
                    let id = format!("bearertokenauth/{label}");
                    self.extensions.push((id.clone(), Yaml::map().with("token", secret("bearer_token"))));
                    self.note(&node, &id);
                    Some(id)
                } else if has_basic {
                    Some(basic_auth(self))
                } else {
                    None
                };
                if let Some(authenticator) = authenticator {
                    exporter.insert("auth", Yaml::map().with("authenticator", Yaml::str(authenticator)));
                }
                exporter
            }
            "otlp_grpc" => {
                let mut exporter = Yaml::map().with(
                    "endpoint",
                    Yaml::str(setting_str(entry, settings, "endpoint").unwrap_or_default()),
                );
                if setting_bool(entry, settings, "insecure") {
                    exporter.insert("tls", Yaml::map().with("insecure", Yaml::Bool(true)));
                }
                exporter
            }
            "loki" => {
                let url = setting_str(entry, settings, "url").unwrap_or_default();
                let mut exporter = Yaml::map().with("endpoint", Yaml::str(loki_otlp_endpoint(&url)));
                if has_basic {
                    let authenticator = basic_auth(self);
                    exporter.insert("auth", Yaml::map().with("authenticator", Yaml::str(authenticator)));
                }
                exporter
            }
            "prometheus_remote_write" => {
                let mut exporter = Yaml::map()
                    .with("endpoint", Yaml::str(setting_str(entry, settings, "url").unwrap_or_default()));
                if has_basic {
                    let authenticator = basic_auth(self);
                    exporter.insert("auth", Yaml::map().with("authenticator", Yaml::str(authenticator)));
                }
                exporter
            }
            "kafka" => {
                let topic = setting_str(entry, settings, "topic").unwrap_or_default();
                let mut exporter = Yaml::map()
                    .with("brokers", Yaml::strs(setting_list(entry, settings, "brokers")))
                    .with("protocol_version", Yaml::str(KAFKA_PROTOCOL_VERSION));
                for signal in &planned.signals {
                    exporter.insert(signal.as_str(), Yaml::map().with("topic", Yaml::str(topic.clone())));
                }
                exporter
            }
            _ => Yaml::map()
                .with("verbosity", Yaml::str(setting_str(entry, settings, "verbosity").unwrap_or_default())),
        };
        self.exporters.push((exporter_id.clone(), exporter));
        // The exporter first: it is the component whose throughput the node shows.
        let components = self.components.entry(node).or_default();
        components.insert(0, exporter_id);
    }
}

fn step_processor(step: &PlannedStep) -> Yaml {
    let entry = step.entry;
    let settings = &step.step.settings;
    match entry.type_name {
        "filter" => filter_processor(&step.signals, &setting_list(entry, settings, "conditions")),
        "attributes" => {
            let actions = attribute_actions(entry, settings)
                .into_iter()
                .map(|(action, key, value)| {
                    let mut item = Yaml::map().with("key", Yaml::str(key));
                    if let Some(value) = value {
                        item.insert("value", Yaml::str(value));
                    }
                    item.with("action", Yaml::str(action))
                })
                .collect();
            Yaml::map().with("actions", Yaml::Seq(actions))
        }
        "batch" => {
            let mut batch = Yaml::map();
            if let Some(timeout) = setting_str(entry, settings, "timeout") {
                batch.insert("timeout", Yaml::str(timeout));
            }
            if let Some(size) = setting_integer(entry, settings, "send_batch_size") {
                batch.insert("send_batch_size", Yaml::Int(size));
            }
            batch
        }
        // transform and mask
        _ => {
            let mut transform = Yaml::map().with("error_mode", Yaml::str("ignore"));
            for &signal in &step.signals {
                transform.insert(
                    statements_section(signal),
                    Yaml::Seq(vec![Yaml::map()
                        .with("context", Yaml::str(plan::record_context(signal)))
                        .with("statements", Yaml::strs(step_statements(step, signal)))]),
                );
            }
            transform
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{settings_for_test, Destination, Route, SealedSecret, Source};
    use crate::model::CollectorMode;
    use crate::render::TestModel;
    use serde_json::json;

    fn render(sources: &[Source], routes: &[Route], destinations: &[Destination]) -> RenderedOtelcol {
        let model = TestModel {
            sources: sources.to_vec(),
            routes: routes.to_vec(),
            destinations: destinations.to_vec(),
            pipelines: Vec::new(),
            ..TestModel::default()
        };
        render_otelcol(&model.input(CollectorMode::Opamp), &Credentials::Markers)
    }

    fn source() -> Source {
        Source {
            name: "files".to_owned(),
            settings: settings_for_test(json!({"include": ["/var/log/*.log"]})),
            resource_attributes: [("cost$center".to_owned(), "${env:HOME}".to_owned())].into_iter().collect(),
            ..Source::for_test("src_files", "file_tail")
        }
    }

    fn route(id: &str, priority: u32, condition: &str, is_final: bool, destination: &str) -> Route {
        Route::for_test(id, priority, condition, is_final, &[destination])
    }

    fn loki() -> Destination {
        Destination {
            name: "loki".to_owned(),
            settings: settings_for_test(json!({"url": "https://logs.example.com/loki/api/v1/push"})),
            credentials: [("username".to_owned(), SealedSecret(vec![1]))].into_iter().collect(),
            ..Destination::for_test("dst_loki", "loki")
        }
    }

    fn debug() -> Destination {
        Destination { name: "debug".to_owned(), ..Destination::for_test("dst_debug", "debug") }
    }

    #[test]
    fn only_a_rendering_without_pipelines_is_a_placeholder() {
        assert!(is_placeholder(&render(&[], &[], &[]).content), "nothing configured");
        assert!(is_placeholder(&render(&[source()], &[], &[]).content), "no route");
        let runnable =
            render(&[source()], &[route("rte_a", 10, "true", true, "dst_debug")], &[debug()]).content;
        assert!(runnable.starts_with("# linkmesh: "), "a real config opens with a comment too");
        assert!(!is_placeholder(&runnable));
    }

    #[test]
    fn a_final_route_feeds_the_next_route_through_its_rest_pipeline() {
        let rendered = render(
            &[source()],
            &[
                route("rte_a", 10, "severity_number >= 17", true, "dst_loki"),
                route("rte_b", 20, "true", true, "dst_debug"),
            ],
            &[loki(), debug()],
        )
        .content;
        let expected_pipelines = r#"    logs/src_files:
      receivers: ["filelog/src_files"]
      processors: ["resource/src_files"]
      exporters: ["forward/rte_a_logs"]
    logs/rte_a:
      receivers: ["forward/rte_a_logs"]
      processors: ["filter/rte_a_match"]
      exporters: ["otlphttp/dst_loki"]
    logs/rest_rte_a:
      receivers: ["forward/rte_a_logs"]
      processors: ["filter/rte_a_rest"]
      exporters: ["forward/rte_b_logs"]
    logs/rte_b:
      receivers: ["forward/rte_b_logs"]
      processors: []
      exporters: ["debug/dst_debug"]
"#;
        assert!(rendered.contains(expected_pipelines), "{rendered}");
        assert!(rendered.contains(r#"log_record: ["not (severity_number >= 17)"]"#), "{rendered}");
        assert!(rendered.contains(r#"log_record: ["severity_number >= 17"]"#), "{rendered}");
    }

    #[test]
    fn a_non_final_route_lets_the_source_feed_the_next_route_too() {
        let rendered = render(
            &[source()],
            &[route("rte_a", 10, "true", false, "dst_loki"), route("rte_b", 20, "true", true, "dst_debug")],
            &[loki(), debug()],
        )
        .content;
        assert!(
            rendered.contains(r#"exporters: ["forward/rte_a_logs", "forward/rte_b_logs"]"#),
            "{rendered}"
        );
        assert!(!rendered.contains("rest_"), "{rendered}");
    }

    #[test]
    fn loki_goes_to_its_otlp_endpoint_with_basic_auth_placeholders() {
        let rendered =
            render(&[source()], &[route("rte_a", 10, "true", true, "dst_loki")], &[loki()]).content;
        assert!(rendered.contains(r#"endpoint: "https://logs.example.com/otlp""#), "{rendered}");
        assert!(rendered.contains(r#"username: "${linkmesh-secret:dst_loki:username}""#), "{rendered}");
        assert!(rendered.contains(r#"extensions: ["basicauth/dst_loki"]"#), "{rendered}");
        assert!(rendered.contains(r#"authenticator: "basicauth/dst_loki""#), "{rendered}");
    }

    #[test]
    fn user_text_cannot_expand_variables() {
        let rendered =
            render(&[source()], &[route("rte_a", 10, "true", true, "dst_debug")], &[debug()]).content;
        assert!(rendered.contains(r#"key: "cost$$center""#), "{rendered}");
        assert!(rendered.contains(r#"value: "$${env:HOME}""#), "{rendered}");
    }

    #[test]
    fn a_signal_no_destination_takes_renders_no_pipeline() {
        let prometheus = Source {
            settings: settings_for_test(json!({"targets": ["a:9100"], "scrape_interval": "5s"})),
            ..Source::for_test("src_prom", "prometheus_scrape")
        };
        let rendered = render(&[prometheus], &[route("rte_a", 10, "true", true, "dst_loki")], &[loki()]);
        assert_eq!(
            rendered.content,
            "# linkmesh: no route delivers any signal of any source for collector \"edge-1\"\n"
        );
    }

    #[test]
    fn components_are_reported_per_graph_node() {
        let rendered = render(
            &[source()],
            &[
                route("rte_a", 10, "severity_number >= 17", true, "dst_loki"),
                route("rte_b", 20, "true", true, "dst_debug"),
            ],
            &[loki(), debug()],
        );
        assert_eq!(rendered.components["source:src_files"], ["filelog/src_files", "resource/src_files"]);
        assert_eq!(
            rendered.components["route:rte_a"],
            ["forward/rte_a_logs", "filter/rte_a_match", "filter/rte_a_rest"]
        );
        assert_eq!(rendered.components["destination:dst_loki"], ["otlphttp/dst_loki", "basicauth/dst_loki"]);
    }

    #[test]
    fn loki_endpoints_are_normalised() {
        assert_eq!(loki_otlp_endpoint("http://l:3100/"), "http://l:3100/otlp");
        assert_eq!(loki_otlp_endpoint("http://l:3100/loki/api/v1/push"), "http://l:3100/otlp");
    }
}
