//! The Alloy module a collector loads over remotecfg.
//!
//! remotecfg loads the content as a module: only component, `declare`, `argument` and `export` blocks
//! are allowed, and top-level exporters misbehave, so every component sits inside one
//! `declare "linkmesh_pipeline"` block that is instantiated once at the top level as
//! `linkmesh_pipeline "default"`. Component ids in [`RenderedAlloy::components`] are relative to that
//! instance (`otelcol.receiver.otlp.src_1`).
//!
//! Each source ends in an `otelcol.processor.transform` stamping `linkmesh.source.*`; the routes form
//! the chain described in [`super::plan`]: per route an optional `otelcol.processor.filter`
//! "match" (drops `not (condition)`), the pipeline's steps, the destinations, and for a final route an
//! `otelcol.processor.filter` "rest" (drops `condition`) feeding the next route.
//!
//! Credentials are string literals at positions this module generates (auth blocks), filled from
//! [`Credentials`]: markers in the stored module, values in the delivered one.

use std::collections::BTreeMap;

use super::alloy_block::{write_items, Block, Expr, Item};
use super::catalogue::{setting_bool, setting_integer, setting_list, setting_map, setting_str};
use super::plan::{
    self, attribute_actions, step_statements, Plan, PlannedDestination, PlannedRoute, PlannedSource,
    PlannedStep,
};
use super::secrets::Credentials;
use super::{alloy_syntax, nothing_configured, Heading, RenderInput, RenderedParts};
use crate::model::pipeline::Signal;
use crate::model::stability::StabilityLevel;

/// The `declare` block every pipeline component lives in.
pub const DECLARE_NAME: &str = "linkmesh_pipeline";
/// The label of the one instance of [`DECLARE_NAME`].
pub const INSTANCE_LABEL: &str = "default";

/// The module text and, per graph node id (`source:src_1`, …), the ids of the components rendered
/// for it, relative to the declare instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedAlloy {
    pub content: String,
    pub components: BTreeMap<String, Vec<String>>,
}

/// The module as stored: credential markers at credential positions.
pub fn render_alloy_module(input: &RenderInput<'_>) -> String {
    render_alloy(input, &Credentials::Markers).content
}

pub fn render_alloy(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> RenderedAlloy {
    let parts = render_alloy_parts(input, credentials);
    RenderedAlloy { content: parts.content(input), components: parts.components }
}

/// [`render_alloy`] split at its first line, the only one naming the collector.
pub(super) fn render_alloy_parts(input: &RenderInput<'_>, credentials: &Credentials<'_>) -> RenderedParts {
    if nothing_configured(input) {
        return RenderedParts {
            mode: input.mode,
            heading: Heading::Placeholder("no sources or routes configured"),
            rest: String::new(),
            components: BTreeMap::new(),
        };
    }
    let plan = Plan::new(input);
    let mut module = Module {
        plan: &plan,
        stability_level: input.stability_level,
        credentials,
        items: Vec::new(),
        components: BTreeMap::new(),
    };
    module.render();

    let mut rest = String::new();
    for note in &plan.skipped {
        rest.push_str(&format!("// linkmesh: skipped: {}\n", alloy_syntax::quote(note)));
    }
    rest.push_str(&format!("declare {} {{\n", alloy_syntax::quote(DECLARE_NAME)));
    write_items(&mut rest, &module.items, 2);
    rest.push_str("}\n\n");
    rest.push_str(&format!("{DECLARE_NAME} {} {{ }}\n", alloy_syntax::quote(INSTANCE_LABEL)));
    RenderedParts { mode: input.mode, heading: Heading::Config, rest, components: module.components }
}

/// The first line of an Alloy module: a comment naming the collector.
pub(super) fn heading_line(heading: Heading, collector_name: &str, collector_id: &str) -> String {
    match heading {
        Heading::Placeholder(what) => {
            format!("// linkmesh: {what} for collector {}\n", alloy_syntax::quote(collector_name))
        }
        Heading::Config => format!(
            "// linkmesh: config of collector {} ({}); generated, local edits are overwritten.\n",
            alloy_syntax::quote(collector_name),
            alloy_syntax::quote(collector_id)
        ),
    }
}

struct Module<'p, 'a> {
    plan: &'p Plan<'a>,
    stability_level: StabilityLevel,
    credentials: &'p Credentials<'p>,
    items: Vec<Item>,
    components: BTreeMap<String, Vec<String>>,
}

fn input_of(component: &str) -> String {
    format!("{component}.input")
}

fn id(name: &str, label: &str) -> String {
    format!("{name}.{label}")
}

impl<'p, 'a> Module<'p, 'a> {
    fn render(&mut self) {
        let plan = self.plan;
        for source in &plan.sources {
            self.source(source);
        }
        for (index, route) in plan.routes.iter().enumerate() {
            self.route(index, route);
        }
        for destination in &plan.destinations {
            self.destination(destination);
        }
    }

    fn add(&mut self, node: String, name: &str, block: Block) {
        let label = block.label.clone().unwrap_or_default();
        self.components.entry(node).or_default().push(id(name, &label));
        self.items.push(Item::Block(block));
    }

    /// A `debug` destination below the experimental level, where `otelcol.exporter.debug` is refused:
    /// the records are printed to Alloy's own log by generally-available components. Logs go through
    /// `otelcol.exporter.loki` to `loki.echo`, metrics through `otelcol.exporter.prometheus` to
    /// `prometheus.echo` (Alloy 1.13 and later; the stability check says so for older releases), spans
    /// become one log line each through `otelcol.connector.spanlogs`, then take the logs' way.
    fn echo_destination(&mut self, node: String, label: &str, signals: &[Signal]) {
        let logs_path = signals.iter().any(|signal| matches!(signal, Signal::Logs | Signal::Traces));
        let printers = [
            (logs_path, "otelcol.exporter.loki", "loki.echo"),
            (signals.contains(&Signal::Metrics), "otelcol.exporter.prometheus", "prometheus.echo"),
        ];
        for (needed, exporter, echo) in printers {
            if needed {
                let forward_to = Expr::refs(&[format!("{}.receiver", id(echo, label))]);
                self.add(
                    node.clone(),
                    exporter,
                    Block::labeled(exporter, label).attr("forward_to", forward_to),
                );
                self.add(node.clone(), echo, Block::labeled(echo, label));
            }
        }
        if signals.contains(&Signal::Traces) {
            let logs = input_of(&id("otelcol.exporter.loki", label));
            let connector = Block::labeled("otelcol.connector.spanlogs", label)
                .attr("spans", Expr::Raw("true".to_owned()))
                .block(Module::output_block(&[(Signal::Logs, vec![logs])]));
            self.add(node, "otelcol.connector.spanlogs", connector);
        }
    }

    fn comment(&mut self, text: String) {
        self.items.push(Item::Comment(text));
    }

    // ---- the route chain ----

    /// Where records of `signal` reaching route `route_index` go: the route's own input and, unless
    /// it is final, everything the next route takes; a final route passes the rest through its rest
    /// filter.
    fn route_entry(&self, signal: Signal, route_index: usize) -> Vec<String> {
        let route = &self.plan.routes[route_index];
        let mut targets = if route.has_match_filter() {
            vec![input_of(&id("otelcol.processor.filter", &route.match_label()))]
        } else {
            self.after_match(route, signal, None)
        };
        if route.route.is_final {
            if route.rest_signals.contains(&signal) {
                targets.push(input_of(&id("otelcol.processor.filter", &route.rest_label())));
            }
        } else if let Some(next) = self.plan.next_route(signal, route_index) {
            targets.extend(self.route_entry(signal, next));
        }
        targets
    }

    /// The inputs after the match filter, or after step `after_step` (by position in
    /// `route.steps`): the next step processing `signal`, else the destinations taking it.
    fn after_match(
        &self,
        route: &PlannedRoute<'_>,
        signal: Signal,
        after_step: Option<usize>,
    ) -> Vec<String> {
        let first_candidate = after_step.map_or(0, |position| position + 1);
        if let Some(step) = route.steps[first_candidate.min(route.steps.len())..]
            .iter()
            .find(|step| step.signals.contains(&signal))
        {
            return vec![input_of(&step_component(step))];
        }
        self.plan
            .route_destinations(route, signal)
            .map(|destination| input_of(&destination_input(destination, signal, self.stability_level)))
            .collect()
    }

    fn chain_entry(&self, signal: Signal) -> Vec<String> {
        self.plan.chain(signal).first().map(|&first| self.route_entry(signal, first)).unwrap_or_default()
    }

    fn output_block(signals: &[(Signal, Vec<String>)]) -> Block {
        let mut output = Block::new("output");
        for (signal, targets) in signals {
            if !targets.is_empty() {
                output = output.attr(signal.as_str(), Expr::refs(targets));
            }
        }
        output
    }

    // ---- sources ----

    fn source(&mut self, source: &PlannedSource) {
        let node = source.node_id();
        let label = source.label.as_str();
        let settings = &source.source.settings;
        let entry = source.entry;
        self.comment(format!(
            "source {} ({}, {})",
            alloy_syntax::quote(&source.source.name),
            source.source.id,
            entry.type_name
        ));
        let stamp_input = input_of(&id("otelcol.processor.transform", label));
        let stamped: Vec<(Signal, Vec<String>)> =
            entry.signals.iter().map(|&signal| (signal, vec![stamp_input.clone()])).collect();
        let prometheus_receiver = format!("{}.receiver", id("otelcol.receiver.prometheus", label));
        let loki_receiver = format!("{}.receiver", id("otelcol.receiver.loki", label));
        match entry.type_name {
            "otlp" => {
                let block = Block::labeled("otelcol.receiver.otlp", label)
                    .block(Block::new("grpc").attr(
                        "endpoint",
                        Expr::string(&setting_str(entry, settings, "grpc_endpoint").unwrap_or_default()),
                    ))
                    .block(Block::new("http").attr(
                        "endpoint",
                        Expr::string(&setting_str(entry, settings, "http_endpoint").unwrap_or_default()),
                    ))
                    .block(Self::output_block(&stamped));
                self.add(node.clone(), "otelcol.receiver.otlp", block);
            }
            "prometheus_scrape" => {
                let targets: Vec<Expr> = setting_list(entry, settings, "targets")
                    .iter()
                    .map(|target| Expr::Object(vec![("__address__".to_owned(), Expr::string(target))]))
                    .collect();
                let interval = setting_str(entry, settings, "scrape_interval").unwrap_or_default();
                let mut block = Block::labeled("prometheus.scrape", label)
                    .attr("targets", Expr::List(targets))
                    .attr("forward_to", Expr::refs(std::slice::from_ref(&prometheus_receiver)))
                    .attr("job_name", Expr::string(&plan::job_name(source)))
                    .attr("scrape_interval", Expr::string(&interval))
                    .attr(
                        "metrics_path",
                        Expr::string(&setting_str(entry, settings, "metrics_path").unwrap_or_default()),
                    );
                if let Some(timeout) = plan::scrape_timeout_for(&interval) {
                    block = block.attr("scrape_timeout", Expr::string(&timeout));
                }
                self.add(node.clone(), "prometheus.scrape", block);
                self.prometheus_receiver(&node, label, &stamped);
            }
            "hostmetrics" => {
                let collectors: Vec<&str> = setting_list(entry, settings, "scrapers")
                    .iter()
                    .filter_map(|scraper| node_exporter_collector(scraper))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let block = Block::labeled("prometheus.exporter.unix", label)
                    .attr("set_collectors", Expr::strings(&collectors));
                self.add(node.clone(), "prometheus.exporter.unix", block);
                let interval = setting_str(entry, settings, "collection_interval").unwrap_or_default();
                let mut block = Block::labeled("prometheus.scrape", label)
                    .attr("targets", Expr::Raw(format!("{}.targets", id("prometheus.exporter.unix", label))))
                    .attr("forward_to", Expr::refs(std::slice::from_ref(&prometheus_receiver)))
                    .attr("job_name", Expr::string(&plan::job_name(source)))
                    .attr("scrape_interval", Expr::string(&interval));
                if let Some(timeout) = plan::scrape_timeout_for(&interval) {
                    block = block.attr("scrape_timeout", Expr::string(&timeout));
                }
                self.add(node.clone(), "prometheus.scrape", block);
                self.prometheus_receiver(&node, label, &stamped);
            }
            "file_tail" => {
                let exclude = setting_list(entry, settings, "exclude");
                let exclude = match exclude.len() {
                    0 => None,
                    1 => Some(exclude[0].clone()),
                    // doublestar alternation: one `__path_exclude__` glob per target.
                    _ => Some(format!("{{{}}}", exclude.join(","))),
                };
                let targets: Vec<Expr> = setting_list(entry, settings, "include")
                    .iter()
                    .map(|include| {
                        let mut labels = vec![("__path__".to_owned(), Expr::string(include))];
                        if let Some(exclude) = &exclude {
                            labels.push(("__path_exclude__".to_owned(), Expr::string(exclude)));
                        }
                        Expr::Object(labels)
                    })
                    .collect();
                let block =
                    Block::labeled("local.file_match", label).attr("path_targets", Expr::List(targets));
                self.add(node.clone(), "local.file_match", block);
                let block = Block::labeled("loki.source.file", label)
                    .attr("targets", Expr::Raw(format!("{}.targets", id("local.file_match", label))))
                    .attr("forward_to", Expr::refs(std::slice::from_ref(&loki_receiver)));
                self.add(node.clone(), "loki.source.file", block);
                self.loki_receiver(&node, label, &stamped);
            }
            "syslog" => {
                let listener = Block::new("listener")
                    .attr(
                        "address",
                        Expr::string(&setting_str(entry, settings, "address").unwrap_or_default()),
                    )
                    .attr(
                        "protocol",
                        Expr::string(&setting_str(entry, settings, "protocol").unwrap_or_default()),
                    )
                    .attr(
                        "syslog_format",
                        Expr::string(&setting_str(entry, settings, "format").unwrap_or_default()),
                    );
                let block = Block::labeled("loki.source.syslog", label)
                    .attr("forward_to", Expr::refs(std::slice::from_ref(&loki_receiver)))
                    .block(listener);
                self.add(node.clone(), "loki.source.syslog", block);
                self.loki_receiver(&node, label, &stamped);
            }
            "journald" => {
                let matches: Vec<String> = setting_list(entry, settings, "units")
                    .iter()
                    .map(|unit| format!("_SYSTEMD_UNIT={unit}"))
                    .collect();
                let mut block = Block::labeled("loki.source.journal", label)
                    .attr("forward_to", Expr::refs(std::slice::from_ref(&loki_receiver)));
                if !matches.is_empty() {
                    // Matches on the same field are ORed by the journal.
                    block = block.attr("matches", Expr::string(&matches.join(" ")));
                }
                self.add(node.clone(), "loki.source.journal", block);
                self.loki_receiver(&node, label, &stamped);
            }
            _ => {}
        }

        let statements = plan::source_stamp_statements(&source.source);
        let mut stamp =
            Block::labeled("otelcol.processor.transform", label).attr("error_mode", Expr::string("ignore"));
        let mut outputs = Vec::new();
        for &signal in entry.signals {
            stamp = stamp.block(
                Block::new(statements_block(signal))
                    .attr("context", Expr::string("resource"))
                    .attr("statements", Expr::strings(&statements)),
            );
            if source.routed_signals.contains(&signal) {
                outputs.push((signal, self.chain_entry(signal)));
            }
        }
        stamp = stamp.block(Self::output_block(&outputs));
        self.add(node, "otelcol.processor.transform", stamp);
    }

    fn prometheus_receiver(&mut self, node: &str, label: &str, stamped: &[(Signal, Vec<String>)]) {
        let block = Block::labeled("otelcol.receiver.prometheus", label).block(Self::output_block(stamped));
        self.add(node.to_owned(), "otelcol.receiver.prometheus", block);
    }

    fn loki_receiver(&mut self, node: &str, label: &str, stamped: &[(Signal, Vec<String>)]) {
        let block = Block::labeled("otelcol.receiver.loki", label).block(Self::output_block(stamped));
        self.add(node.to_owned(), "otelcol.receiver.loki", block);
    }

    // ---- routes ----

    fn route(&mut self, index: usize, route: &PlannedRoute<'_>) {
        let node = route.node_id();
        let header = format!(
            "route {} ({}): priority {}, {}, condition {}",
            alloy_syntax::quote(&route.route.name),
            route.route.id,
            route.route.priority,
            if route.route.is_final { "final" } else { "not final" },
            alloy_syntax::quote(&route.route.condition),
        );
        self.comment(header);
        if route.signals.is_empty() {
            self.comment("no source reaches this route with a signal its destinations take".to_owned());
            return;
        }
        if !route.has_match_filter()
            && route.rest_signals.is_empty()
            && route.steps.iter().all(|step| step.signals.is_empty())
        {
            self.comment(
                "matches everything and has no steps: records go straight to its destinations".to_owned(),
            );
        }
        if route.has_match_filter() {
            let condition = plan::match_drop_condition(&route.route.condition);
            let outputs: Vec<(Signal, Vec<String>)> =
                route.signals.iter().map(|&signal| (signal, self.after_match(route, signal, None))).collect();
            let block = filter_block(
                &route.match_label(),
                &route.signals,
                std::slice::from_ref(&condition),
                &outputs,
            );
            self.add(node.clone(), "otelcol.processor.filter", block);
        }
        for (position, step) in route.steps.iter().enumerate() {
            if step.signals.is_empty() {
                continue;
            }
            let outputs: Vec<(Signal, Vec<String>)> = step
                .signals
                .iter()
                .map(|&signal| (signal, self.after_match(route, signal, Some(position))))
                .collect();
            let step_node = format!("step:{}:{}", route.route.id, step.index);
            let (name, block) = step_block(step, &outputs);
            self.add(step_node, name, block);
        }
        if !route.rest_signals.is_empty() {
            let condition = plan::rest_drop_condition(&route.route.condition);
            let outputs: Vec<(Signal, Vec<String>)> = route
                .rest_signals
                .iter()
                .map(|&signal| {
                    let next = self.plan.next_route(signal, index);
                    (signal, next.map(|next| self.route_entry(signal, next)).unwrap_or_default())
                })
                .collect();
            let block = filter_block(
                &route.rest_label(),
                &route.rest_signals,
                std::slice::from_ref(&condition),
                &outputs,
            );
            self.add(node, "otelcol.processor.filter", block);
        }
    }

    // ---- destinations ----

    fn destination(&mut self, planned: &PlannedDestination) {
        if planned.signals.is_empty() {
            return;
        }
        let node = planned.node_id();
        let destination = &planned.destination;
        let entry = planned.entry;
        let settings = planned.settings();
        let label = planned.label.as_str();
        let secret = |key: &str| Expr::string(planned.credential(key, self.credentials).as_str());
        let has_basic = planned.has_basic_auth();
        self.comment(format!(
            "destination {} ({}, {})",
            alloy_syntax::quote(&destination.name),
            destination.id,
            entry.type_name
        ));
        match entry.type_name {
            "otlp_http" => {
                let mut client = Block::new("client").attr(
                    "endpoint",
                    Expr::string(&setting_str(entry, settings, "endpoint").unwrap_or_default()),
                );
                let headers = setting_map(settings, "headers");
                if !headers.is_empty() {
                    client = client.attr("headers", Expr::string_map(&headers));
                }
                let auth = if planned.has_credential("bearer_token") {
                    Some(Block::labeled("otelcol.auth.bearer", label).attr("token", secret("bearer_token")))
                } else if has_basic {
                    Some(
                        Block::labeled("otelcol.auth.basic", label)
                            .attr("username", secret("username"))
                            .attr("password", secret("password")),
                    )
                } else {
                    None
                };
                if let Some(auth) = &auth {
                    let handler = format!("{}.handler", id(&auth.name, label));
                    client = client.attr("auth", Expr::Raw(handler));
                }
                // The exporter first: it is the component whose throughput the node shows.
                let block = Block::labeled("otelcol.exporter.otlphttp", label).block(client);
                self.add(node.clone(), "otelcol.exporter.otlphttp", block);
                if let Some(auth) = auth {
                    let name = auth.name.clone();
                    self.add(node, &name, auth);
                }
            }
            "otlp_grpc" => {
                let mut client = Block::new("client").attr(
                    "endpoint",
                    Expr::string(&setting_str(entry, settings, "endpoint").unwrap_or_default()),
                );
                if setting_bool(entry, settings, "insecure") {
                    client = client.block(Block::new("tls").attr("insecure", Expr::Raw("true".to_owned())));
                }
                let block = Block::labeled("otelcol.exporter.otlp", label).block(client);
                self.add(node, "otelcol.exporter.otlp", block);
            }
            "loki" => {
                let write = id("loki.write", label);
                let block = Block::labeled("otelcol.exporter.loki", label)
                    .attr("forward_to", Expr::refs(&[format!("{write}.receiver")]));
                self.add(node.clone(), "otelcol.exporter.loki", block);
                let url = loki_push_url(&setting_str(entry, settings, "url").unwrap_or_default());
                let mut endpoint = Block::new("endpoint").attr("url", Expr::string(&url));
                if has_basic {
                    endpoint = endpoint.block(
                        Block::new("basic_auth")
                            .attr("username", secret("username"))
                            .attr("password", secret("password")),
                    );
                }
                self.add(node, "loki.write", Block::labeled("loki.write", label).block(endpoint));
            }
            "prometheus_remote_write" => {
                let write = id("prometheus.remote_write", label);
                let block = Block::labeled("otelcol.exporter.prometheus", label)
                    .attr("forward_to", Expr::refs(&[format!("{write}.receiver")]));
                self.add(node.clone(), "otelcol.exporter.prometheus", block);
                let url = setting_str(entry, settings, "url").unwrap_or_default();
                let mut endpoint = Block::new("endpoint").attr("url", Expr::string(&url));
                if has_basic {
                    endpoint = endpoint.block(
                        Block::new("basic_auth")
                            .attr("username", secret("username"))
                            .attr("password", secret("password")),
                    );
                }
                self.add(
                    node,
                    "prometheus.remote_write",
                    Block::labeled("prometheus.remote_write", label).block(endpoint),
                );
            }
            "debug" if debug_exporter_allowed(self.stability_level) => {
                let block = Block::labeled("otelcol.exporter.debug", label).attr(
                    "verbosity",
                    Expr::string(&setting_str(entry, settings, "verbosity").unwrap_or_default()),
                );
                self.add(node, "otelcol.exporter.debug", block);
            }
            "debug" => self.echo_destination(node, label, &planned.signals),
            "kafka" => {
                let topic = setting_str(entry, settings, "topic").unwrap_or_default();
                let mut block = Block::labeled("otelcol.exporter.kafka", label)
                    .attr("protocol_version", Expr::string(KAFKA_PROTOCOL_VERSION))
                    .attr("brokers", Expr::strings(&setting_list(entry, settings, "brokers")));
                for signal in &planned.signals {
                    block = block.block(Block::new(signal.as_str()).attr("topic", Expr::string(&topic)));
                }
                self.add(node, "otelcol.exporter.kafka", block);
            }
            _ => {}
        }
    }
}

/// `otelcol.exporter.debug` is experimental in every Alloy release read (`alloy_stability.tsv`).
fn debug_exporter_allowed(level: StabilityLevel) -> bool {
    level == StabilityLevel::Experimental
}

/// The component whose `input` takes `signal` for a `debug` destination rendered with
/// generally-available components ([`Module::echo_destination`]).
fn echo_input(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "otelcol.exporter.loki",
        Signal::Metrics => "otelcol.exporter.prometheus",
        Signal::Traces => "otelcol.connector.spanlogs",
    }
}

/// The Kafka protocol version both formats announce (brokers since 2.0 understand it).
pub const KAFKA_PROTOCOL_VERSION: &str = "2.0.0";

/// The component whose `input` a route sends `signal` to for this destination.
fn destination_input(destination: &PlannedDestination, signal: Signal, level: StabilityLevel) -> String {
    let name = match destination.entry.type_name {
        "otlp_http" => "otelcol.exporter.otlphttp",
        "otlp_grpc" => "otelcol.exporter.otlp",
        "loki" => "otelcol.exporter.loki",
        "prometheus_remote_write" => "otelcol.exporter.prometheus",
        "kafka" => "otelcol.exporter.kafka",
        _ if debug_exporter_allowed(level) => "otelcol.exporter.debug",
        _ => echo_input(signal),
    };
    id(name, &destination.label)
}

fn step_component(step: &PlannedStep) -> String {
    let name = match step.entry.type_name {
        "filter" => "otelcol.processor.filter",
        "attributes" => "otelcol.processor.attributes",
        "batch" => "otelcol.processor.batch",
        // transform and mask
        _ => "otelcol.processor.transform",
    };
    id(name, &step.label)
}

/// The Loki push API URL for a `loki` destination's `url` (a base URL or already a push URL).
pub fn loki_push_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/loki/api/v1/push") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/loki/api/v1/push")
    }
}

/// node_exporter's collector for a hostmetrics scraper name.
fn node_exporter_collector(scraper: &str) -> Option<&'static str> {
    Some(match scraper {
        "cpu" => "cpu",
        "memory" => "meminfo",
        "disk" => "diskstats",
        "filesystem" => "filesystem",
        "load" => "loadavg",
        "network" => "netdev",
        _ => return None,
    })
}

fn statements_block(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "log_statements",
        Signal::Metrics => "metric_statements",
        Signal::Traces => "trace_statements",
    }
}

fn filter_block(
    label: &str,
    signals: &[Signal],
    conditions: &[String],
    outputs: &[(Signal, Vec<String>)],
) -> Block {
    let mut block =
        Block::labeled("otelcol.processor.filter", label).attr("error_mode", Expr::string("ignore"));
    for &signal in signals {
        let (name, field) = match signal {
            Signal::Logs => ("logs", "log_record"),
            Signal::Metrics => ("metrics", "datapoint"),
            Signal::Traces => ("traces", "span"),
        };
        block = block.block(Block::new(name).attr(field, Expr::strings(conditions)));
    }
    block.block(Module::output_block(outputs))
}

fn step_block(step: &PlannedStep, outputs: &[(Signal, Vec<String>)]) -> (&'static str, Block) {
    let entry = step.entry;
    let settings = &step.step.settings;
    let label = step.label.as_str();
    match entry.type_name {
        "filter" => {
            let conditions = setting_list(entry, settings, "conditions");
            ("otelcol.processor.filter", filter_block(label, &step.signals, &conditions, outputs))
        }
        "attributes" => {
            let mut block = Block::labeled("otelcol.processor.attributes", label);
            for (action, key, value) in attribute_actions(entry, settings) {
                let mut action_block = Block::new("action").attr("key", Expr::string(&key));
                if let Some(value) = value {
                    action_block = action_block.attr("value", Expr::string(&value));
                }
                block = block.block(action_block.attr("action", Expr::string(action)));
            }
            ("otelcol.processor.attributes", block.block(Module::output_block(outputs)))
        }
        "batch" => {
            let mut block = Block::labeled("otelcol.processor.batch", label);
            if let Some(timeout) = setting_str(entry, settings, "timeout") {
                block = block.attr("timeout", Expr::string(&timeout));
            }
            if let Some(size) = setting_integer(entry, settings, "send_batch_size") {
                block = block.attr("send_batch_size", Expr::Raw(size.to_string()));
            }
            ("otelcol.processor.batch", block.block(Module::output_block(outputs)))
        }
        // transform and mask: OTTL statements in each signal's record context.
        _ => {
            let mut block = Block::labeled("otelcol.processor.transform", label)
                .attr("error_mode", Expr::string("ignore"));
            for &signal in &step.signals {
                let statements = step_statements(step, signal);
                block = block.block(
                    Block::new(statements_block(signal))
                        .attr("context", Expr::string(plan::record_context(signal)))
                        .attr("statements", Expr::strings(&statements)),
                );
            }
            ("otelcol.processor.transform", block.block(Module::output_block(outputs)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::{
        settings_for_test, Destination, Pipeline, Route, SealedSecret, Source, Step,
    };
    use crate::model::CollectorMode;
    use crate::render::TestModel;
    use serde_json::json;

    fn model() -> TestModel {
        TestModel {
            sources: vec![Source { name: "app".to_owned(), ..Source::for_test("src_app", "otlp") }],
            routes: vec![
                Route {
                    name: "errors".to_owned(),
                    pipeline_id: Some("pl_mask".to_owned()),
                    ..Route::for_test(
                        "rte_err",
                        10,
                        "attributes[\"level\"] == \"error\"",
                        true,
                        &["dst_loki"],
                    )
                },
                Route {
                    name: "all".to_owned(),
                    ..Route::for_test("rte_all", 20, "true", true, &["dst_debug"])
                },
            ],
            destinations: vec![
                Destination {
                    name: "loki".to_owned(),
                    settings: settings_for_test(json!({"url": "http://loki:3100"})),
                    credentials: [("password".to_owned(), SealedSecret(vec![1, 2, 3]))].into_iter().collect(),
                    ..Destination::for_test("dst_loki", "loki")
                },
                Destination { name: "debug".to_owned(), ..Destination::for_test("dst_debug", "debug") },
            ],
            pipelines: vec![Pipeline {
                name: "mask".to_owned(),
                ..Pipeline::for_test(
                    "pl_mask",
                    &[Signal::Logs],
                    vec![Step::for_test("mask", json!({"emails": true}))],
                )
            }],
            ..TestModel::default()
        }
    }

    fn input(model: &TestModel) -> RenderInput<'_> {
        model.input(CollectorMode::AlloyRemotecfg)
    }

    #[test]
    fn everything_sits_in_one_declare_instantiated_once() {
        let model = model();
        let content = render_alloy_module(&input(&model));
        let top_level: Vec<&str> = content
            .lines()
            .filter(|line| !line.starts_with(' ') && !line.starts_with("//") && !line.is_empty())
            .collect();
        assert_eq!(top_level, ["declare \"linkmesh_pipeline\" {", "}", "linkmesh_pipeline \"default\" { }"]);
        assert!(!content.contains("logging"));
    }

    #[test]
    fn a_final_route_splits_matched_records_from_the_rest() {
        let model = model();
        let content = render_alloy_module(&input(&model));
        assert!(
            content.contains("log_record = [\"not (attributes[\\\"level\\\"] == \\\"error\\\")\"]"),
            "{content}"
        );
        assert!(
            content.contains("log_record = [\"attributes[\\\"level\\\"] == \\\"error\\\"\"]"),
            "{content}"
        );
        // The source feeds the errors route's match filter and its rest filter; only the rest goes on.
        assert!(
            content.contains(
                "logs    = [\n        otelcol.processor.filter.rte_err_match.input,\n        otelcol.processor.filter.rte_err_rest.input,\n      ]"
            ),
            "{content}"
        );
        // Metrics and traces skip the logs-only route entirely.
        assert!(content.contains("metrics = [otelcol.exporter.prometheus.dst_debug.input]"), "{content}");
    }

    #[test]
    fn credentials_are_placeholders_inside_strings() {
        let model = model();
        let content = render_alloy_module(&input(&model));
        assert!(content.contains("password = \"${linkmesh-secret:dst_loki:password}\""), "{content}");
        assert!(content.contains("url = \"http://loki:3100/loki/api/v1/push\""), "{content}");
    }

    #[test]
    fn components_are_reported_per_graph_node() {
        let model = model();
        let rendered = render_alloy(&input(&model), &Credentials::Markers);
        assert_eq!(
            rendered.components.get("destination:dst_loki").cloned().unwrap_or_default(),
            ["otelcol.exporter.loki.dst_loki", "loki.write.dst_loki"]
        );
        assert_eq!(
            rendered.components.get("step:rte_err:0").cloned().unwrap_or_default(),
            ["otelcol.processor.transform.rte_err_step_0"]
        );
        for components in rendered.components.values() {
            for component in components {
                let (name, label) = component.rsplit_once('.').unwrap_or_default();
                assert!(
                    rendered.content.contains(&format!("{name} \"{label}\" {{")),
                    "{component} not rendered"
                );
            }
        }
    }

    #[test]
    fn nothing_configured_is_a_comment() {
        let mut model = model();
        model.routes.clear();
        assert_eq!(
            render_alloy_module(&input(&model)),
            "// linkmesh: no sources or routes configured for collector \"edge-1\"\n"
        );
    }

    #[test]
    fn loki_push_urls_are_normalised() {
        assert_eq!(loki_push_url("http://l:3100/"), "http://l:3100/loki/api/v1/push");
        assert_eq!(loki_push_url("http://l:3100/loki/api/v1/push"), "http://l:3100/loki/api/v1/push");
    }
}
