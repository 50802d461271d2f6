//! Alloy's own metrics as linkmesh receives them: the enrollment config's chain
//! `prometheus.exporter.self` → `prometheus.scrape` (30 s) → `otelcol.receiver.prometheus` →
//! `otelcol.exporter.otlphttp` (OTLP/HTTP protobuf, gzip by default) with the collector token.
//!
//! Shape (facts: `shared/reference/opamp-and-self-telemetry.md` §4.2): one resource per scrape target
//! (`service.name` = job, `service.instance.id` = instance), one scope (the Prometheus receiver), one
//! metric per family with a data point per label set. Component metrics carry `component_id` and
//! `component_path`; counters keep Prometheus' `_total`; controller, Go runtime, process, remotecfg
//! and scrape metrics come along as they do from a real Alloy. Values are pure functions of the
//! collector's seed and uptime: cumulative counters grow, so consecutive pushes give real rates.
//! Failure counters are present but stay at zero: a healthy fleet (increasing export failures turn
//! a collector `degraded`).

use std::collections::HashMap;
use std::io::Write as _;

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point, AggregationTemporality, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

/// The path the remotecfg module's components report in `component_path`.
const PIPELINE_PATH: &str = "/remotecfg/linkmesh_pipeline.default";
const SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const SIZE_BUCKETS: &[f64] = &[10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0];

/// Request body encoding of the pushes (`otelcol.exporter.otlphttp` compresses with gzip by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    None,
}

/// One scrape of a simulated Alloy.
pub struct ScrapeInput<'a> {
    pub host_id: &'a str,
    /// Varies rates between collectors (any number; the same seed gives the same rates).
    pub seed: u64,
    pub process_start_unix_nanos: u64,
    pub now_unix_nanos: u64,
}

/// The OTLP export request of one own_metrics push.
pub fn alloy_self_metrics(input: &ScrapeInput<'_>) -> ExportMetricsServiceRequest {
    let mut scrape = Scrape::new(input);
    scrape.pipeline_components();
    scrape.self_telemetry_chain();
    scrape.controller();
    scrape.remotecfg();
    scrape.go_runtime();
    scrape.process();
    scrape.scrape_health();
    let resource = Resource {
        attributes: vec![
            text("service.name", "integrations/alloy"),
            text("service.instance.id", input.host_id),
            text("server.address", "127.0.0.1"),
            text("server.port", "12345"),
            text("url.scheme", "http"),
            text("host.name", input.host_id),
        ],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
                        .to_owned(),
                    version: super::alloy_collector::SIMULATED_ALLOY_VERSION.to_owned(),
                    ..Default::default()
                }),
                metrics: scrape.metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Data points in a request (a histogram or summary point counts once).
pub fn count_data_points(request: &ExportMetricsServiceRequest) -> u64 {
    let points = request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .map(|metric| match &metric.data {
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(metric::Data::Sum(sum)) => sum.data_points.len(),
            Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::Summary(summary)) => summary.data_points.len(),
            None => 0,
        })
        .sum::<usize>();
    points as u64
}

/// The HTTP body of a push.
pub fn encode_body(
    request: &ExportMetricsServiceRequest,
    compression: Compression,
) -> std::io::Result<Vec<u8>> {
    let encoded = request.encode_to_vec();
    match compression {
        Compression::None => Ok(encoded),
        Compression::Gzip => {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(encoded.len() / 4), flate2::Compression::fast());
            encoder.write_all(&encoded)?;
            encoder.finish()
        }
    }
}

/// Pushes encoded before a benchmark's measured phase, so the load generator spends its share of the
/// machine on sending rather than on building and compressing scrapes: `classes` simulated processes
/// (seeds) × `steps` scrapes one second apart. The server reads nothing of the resource (the host
/// named in it is the class's), so collectors of one class send the same bytes; each collector walks
/// through the steps of its class, so counters grow and timestamps advance as with per-push scrapes.
pub struct PreparedPushes {
    /// Class-major: the body of `(class, step)` is at `class * steps + step`.
    bodies: Vec<bytes::Bytes>,
    points: Vec<u64>,
    classes: usize,
    steps: usize,
}

/// One prepared push.
pub struct PreparedPush<'a> {
    pub body: &'a bytes::Bytes,
    pub points: u64,
}

impl PreparedPushes {
    /// Encodes every body; the first step is scraped at `first_scrape_unix_nanos`.
    pub fn build(
        classes: usize,
        steps: usize,
        compression: Compression,
        first_scrape_unix_nanos: u64,
    ) -> std::io::Result<Self> {
        let (classes, steps) = (classes.max(1), steps.max(1));
        let mut bodies = Vec::with_capacity(classes * steps);
        let mut points = Vec::with_capacity(classes * steps);
        for class in 0..classes {
            let host_id = format!("sim-class-{class}");
            // Processes started between 0 and 10 days before, so counters are large.
            let uptime = (class as u64).wrapping_mul(7_919) % 864_000 * 1_000_000_000;
            for step in 0..steps {
                let request = alloy_self_metrics(&ScrapeInput {
                    host_id: &host_id,
                    seed: class as u64,
                    process_start_unix_nanos: first_scrape_unix_nanos.saturating_sub(uptime),
                    now_unix_nanos: first_scrape_unix_nanos + step as u64 * 1_000_000_000,
                });
                points.push(count_data_points(&request));
                bodies.push(bytes::Bytes::from(encode_body(&request, compression)?));
            }
        }
        Ok(PreparedPushes { bodies, points, classes, steps })
    }

    /// What the push benchmark sends and its decode-only baseline decodes: 32 processes × 32 scrapes.
    pub fn for_benchmarks(compression: Compression, first_scrape_unix_nanos: u64) -> std::io::Result<Self> {
        PreparedPushes::build(32, 32, compression, first_scrape_unix_nanos)
    }

    /// The `round`-th push of collector `index`; `None` once its class has no step left (the
    /// caller builds that push itself: going back to step 0 would look like a restart).
    pub fn push(&self, index: usize, round: u64) -> Option<PreparedPush<'_>> {
        let step = usize::try_from(round).ok().filter(|step| *step < self.steps)?;
        let at = (index % self.classes) * self.steps + step;
        Some(PreparedPush { body: &self.bodies[at], points: self.points[at] })
    }

    /// Every body, in no particular order (the decode-only baseline decodes them).
    pub fn bodies(&self) -> &[bytes::Bytes] {
        &self.bodies
    }

    pub fn encoded_bytes(&self) -> usize {
        self.bodies.iter().map(bytes::Bytes::len).sum()
    }
}

/// An OTLP string attribute.
pub(super) fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn attributes(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(key, value)| text(key, value)).collect()
}

struct Scrape {
    start: u64,
    now: u64,
    uptime_s: f64,
    /// 0.5–1.5: this collector's traffic relative to the nominal rates.
    scale: f64,
    metrics: Vec<Metric>,
    by_name: HashMap<String, usize>,
}

impl Scrape {
    fn new(input: &ScrapeInput<'_>) -> Self {
        let start = input.process_start_unix_nanos.min(input.now_unix_nanos);
        Scrape {
            start,
            now: input.now_unix_nanos,
            uptime_s: (input.now_unix_nanos - start) as f64 / 1e9,
            scale: 0.5 + (input.seed % 101) as f64 / 100.0,
            metrics: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// The metric family `name`, created with `empty` on first use (points of a family share a metric).
    fn family(&mut self, name: &str, empty: impl FnOnce() -> metric::Data) -> &mut metric::Data {
        let index = match self.by_name.get(name) {
            Some(index) => *index,
            None => {
                self.metrics.push(Metric {
                    name: name.to_owned(),
                    data: Some(empty()),
                    ..Default::default()
                });
                self.by_name.insert(name.to_owned(), self.metrics.len() - 1);
                self.metrics.len() - 1
            }
        };
        // Every family is created with `Some` data just above.
        self.metrics[index].data.get_or_insert_with(|| metric::Data::Gauge(Gauge::default()))
    }

    fn number_point(&self, labels: &[(&str, &str)], value: f64, cumulative: bool) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: if cumulative { self.start } else { 0 },
            time_unix_nano: self.now,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        }
    }

    /// A Prometheus counter growing at `per_second` (scaled per collector) since process start.
    fn counter(&mut self, name: &str, labels: &[(&str, &str)], per_second: f64) {
        let value = (per_second * self.scale * self.uptime_s).floor();
        let point = self.number_point(labels, value, true);
        if let metric::Data::Sum(sum) = self.family(name, || {
            metric::Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        }) {
            sum.data_points.push(point);
        }
    }

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let point = self.number_point(labels, value, false);
        if let metric::Data::Gauge(gauge) = self.family(name, || metric::Data::Gauge(Gauge::default())) {
            gauge.data_points.push(point);
        }
    }

    /// A Prometheus histogram observed `per_second` times a second, mostly around the middle bucket.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], bounds: &[f64], per_second: f64) {
        let count = (per_second * self.scale * self.uptime_s).floor() as u64;
        let mut remaining = count;
        let mut bucket_counts = Vec::with_capacity(bounds.len() + 1);
        for _ in 0..bounds.len() {
            let share = remaining / 3;
            bucket_counts.push(share);
            remaining -= share;
        }
        bucket_counts.push(remaining);
        let point = HistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            count,
            sum: Some(count as f64 * bounds[bounds.len() / 2]),
            bucket_counts,
            explicit_bounds: bounds.to_vec(),
            ..Default::default()
        };
        if let metric::Data::Histogram(histogram) = self.family(name, || {
            metric::Data::Histogram(Histogram {
                data_points: Vec::new(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })
        }) {
            histogram.data_points.push(point);
        }
    }

    fn summary(&mut self, name: &str, per_second: f64, quantiles: &[(f64, f64)]) {
        let count = (per_second * self.uptime_s).floor() as u64;
        let point = SummaryDataPoint {
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            count,
            sum: count as f64 * quantiles.get(2).map_or(0.0, |(_, value)| *value),
            quantile_values: quantiles
                .iter()
                .map(|(quantile, value)| summary_data_point::ValueAtQuantile {
                    quantile: *quantile,
                    value: *value,
                })
                .collect(),
            ..Default::default()
        };
        if let metric::Data::Summary(summary) =
            self.family(name, || metric::Data::Summary(Summary::default()))
        {
            summary.data_points.push(point);
        }
    }

    /// The components of a rendered remotecfg pipeline: OTLP, Prometheus and Loki flows.
    fn pipeline_components(&mut self) {
        let path = PIPELINE_PATH;
        let otlp_in = "otelcol.receiver.otlp.src_1";
        for (signal, rate) in [("spans", 400.0), ("metric_points", 900.0), ("log_records", 250.0)] {
            for transport in ["grpc", "http"] {
                let labels = [
                    ("component_id", otlp_in),
                    ("component_path", path),
                    ("receiver", "otlp/otelcol.receiver.otlp.src_1"),
                    ("transport", transport),
                ];
                self.counter(&format!("otelcol_receiver_accepted_{signal}_total"), &labels, rate);
                self.counter(&format!("otelcol_receiver_refused_{signal}_total"), &labels, 0.0);
            }
        }
        let batch = "otelcol.processor.batch.default";
        for (signal, rate) in [("traces", 400.0), ("metrics", 900.0), ("logs", 250.0)] {
            let labels = [
                ("component_id", batch),
                ("component_path", path),
                ("processor", "batch/otelcol.processor.batch.default"),
                ("otel_signal", signal),
            ];
            self.counter("otelcol_processor_incoming_items_total", &labels, rate);
            self.counter("otelcol_processor_outgoing_items_total", &labels, rate);
        }
        let batch_labels = [
            ("component_id", batch),
            ("component_path", path),
            ("processor", "batch/otelcol.processor.batch.default"),
        ];
        self.histogram("otelcol_processor_batch_batch_send_size", &batch_labels, SIZE_BUCKETS, 5.0);
        self.counter("otelcol_processor_batch_timeout_trigger_send_total", &batch_labels, 4.0);
        self.counter("otelcol_processor_batch_batch_size_trigger_send_total", &batch_labels, 1.0);

        let otlp_out = "otelcol.exporter.otlphttp.dst_1";
        let exporter = [
            ("component_id", otlp_out),
            ("component_path", path),
            ("exporter", "otlphttp/otelcol.exporter.otlphttp.dst_1"),
        ];
        for (signal, rate) in [("spans", 400.0), ("metric_points", 900.0), ("log_records", 250.0)] {
            self.counter(&format!("otelcol_exporter_sent_{signal}_total"), &exporter, rate);
            self.counter(&format!("otelcol_exporter_send_failed_{signal}_total"), &exporter, 0.0);
            self.counter(&format!("otelcol_exporter_enqueue_failed_{signal}_total"), &exporter, 0.0);
        }
        self.gauge("otelcol_exporter_queue_size", &exporter, 3.0);
        self.gauge("otelcol_exporter_queue_capacity", &exporter, 1000.0);

        let scrape = [("component_id", "prometheus.scrape.src_2"), ("component_path", path)];
        self.counter("prometheus_forwarded_samples_total", &scrape, 1200.0);
        self.gauge("prometheus_scrape_targets_gauge", &scrape, 12.0);
        self.histogram("prometheus_fanout_latency", &scrape, SECONDS_BUCKETS, 2.0);
        for (url, targets) in [("node", "8"), ("kube-state-metrics", "2"), ("cadvisor", "2")] {
            let labels =
                [("component_id", "prometheus.scrape.src_2"), ("component_path", path), ("scrape_job", url)];
            self.gauge("prometheus_target_scrape_pool_targets", &labels, targets.parse().unwrap_or(1.0));
            self.counter("prometheus_target_scrapes_sample_out_of_order_total", &labels, 0.0);
        }

        let remote_write = [
            ("component_id", "prometheus.remote_write.dst_2"),
            ("component_path", path),
            ("url", "https://prometheus.example.com/api/v1/write"),
        ];
        self.counter("prometheus_remote_storage_samples_in_total", &remote_write, 1200.0);
        self.counter("prometheus_remote_storage_samples_total", &remote_write, 1200.0);
        self.counter("prometheus_remote_storage_samples_failed_total", &remote_write, 0.0);
        self.counter("prometheus_remote_storage_samples_dropped_total", &remote_write, 0.0);
        self.counter("prometheus_remote_storage_bytes_total", &remote_write, 90_000.0);
        self.counter("prometheus_remote_storage_metadata_total", &remote_write, 3.0);
        self.gauge("prometheus_remote_storage_shards", &remote_write, 1.0);
        self.gauge("prometheus_remote_storage_shards_max", &remote_write, 50.0);
        self.gauge("prometheus_remote_storage_shards_desired", &remote_write, 1.0);
        self.gauge(
            "prometheus_remote_storage_highest_timestamp_in_seconds",
            &remote_write,
            self.now as f64 / 1e9,
        );
        self.histogram(
            "prometheus_remote_storage_sent_batch_duration_seconds",
            &remote_write,
            SECONDS_BUCKETS,
            1.0,
        );

        for file in ["/var/log/syslog", "/var/log/auth.log", "/var/log/app/app.log"] {
            let labels =
                [("component_id", "loki.source.file.src_3"), ("component_path", path), ("path", file)];
            self.counter("loki_source_file_read_lines_total", &labels, 40.0);
            self.counter("loki_source_file_read_bytes_total", &labels, 6000.0);
            self.gauge("loki_source_file_file_bytes_total", &labels, 8.0e6);
        }
        self.gauge(
            "loki_source_file_files_active_total",
            &[("component_id", "loki.source.file.src_3"), ("component_path", path)],
            3.0,
        );
        let loki_write =
            [("component_id", "loki.write.dst_3"), ("component_path", path), ("host", "loki.example.com")];
        self.counter("loki_write_sent_entries_total", &loki_write, 120.0);
        self.counter("loki_write_sent_bytes_total", &loki_write, 18_000.0);
        self.counter("loki_write_dropped_entries_total", &loki_write, 0.0);
        self.histogram("loki_write_request_duration_seconds", &loki_write, SECONDS_BUCKETS, 1.0);

        for (from, to) in [
            ("otelcol.receiver.otlp.src_1", "otelcol.processor.batch.default"),
            ("otelcol.processor.batch.default", "otelcol.exporter.otlphttp.dst_1"),
            ("prometheus.scrape.src_2", "prometheus.remote_write.dst_2"),
            ("loki.source.file.src_3", "loki.write.dst_3"),
        ] {
            self.gauge(
                "alloy_component_graph_connection",
                &[("controller_path", path), ("controller_id", "remotecfg"), ("from", from), ("to", to)],
                1.0,
            );
        }
    }

    /// The enrollment config's own chain, at the root controller.
    fn self_telemetry_chain(&mut self) {
        let scrape = [("component_id", "prometheus.scrape.linkmesh_self"), ("component_path", "/")];
        self.counter("prometheus_forwarded_samples_total", &scrape, 10.0);
        self.gauge("prometheus_scrape_targets_gauge", &scrape, 1.0);
        let receiver = [
            ("component_id", "otelcol.receiver.prometheus.linkmesh"),
            ("component_path", "/"),
            ("receiver", "prometheus/otelcol.receiver.prometheus.linkmesh"),
            ("transport", "prometheus"),
        ];
        self.counter("otelcol_receiver_accepted_metric_points_total", &receiver, 10.0);
        self.counter("otelcol_receiver_refused_metric_points_total", &receiver, 0.0);
        let exporter = [
            ("component_id", "otelcol.exporter.otlphttp.linkmesh"),
            ("component_path", "/"),
            ("exporter", "otlphttp/otelcol.exporter.otlphttp.linkmesh"),
        ];
        self.counter("otelcol_exporter_sent_metric_points_total", &exporter, 10.0);
        self.counter("otelcol_exporter_send_failed_metric_points_total", &exporter, 0.0);
        self.gauge("otelcol_exporter_queue_size", &exporter, 0.0);
        self.gauge("otelcol_exporter_queue_capacity", &exporter, 1000.0);
        for (from, to) in [
            ("prometheus.exporter.self.default", "prometheus.scrape.linkmesh_self"),
            ("prometheus.scrape.linkmesh_self", "otelcol.receiver.prometheus.linkmesh"),
            ("otelcol.receiver.prometheus.linkmesh", "otelcol.exporter.otlphttp.linkmesh"),
        ] {
            self.gauge(
                "alloy_component_graph_connection",
                &[("controller_path", "/"), ("controller_id", ""), ("from", from), ("to", to)],
                1.0,
            );
        }
    }

    fn controller(&mut self) {
        for (controller_path, controller_id, running) in [("/", "", 5.0), (PIPELINE_PATH, "remotecfg", 8.0)] {
            let controller = [("controller_path", controller_path), ("controller_id", controller_id)];
            for (health, count) in
                [("healthy", running), ("unhealthy", 0.0), ("unknown", 0.0), ("exited", 0.0)]
            {
                let labels = [
                    ("controller_path", controller_path),
                    ("controller_id", controller_id),
                    ("health_type", health),
                ];
                self.gauge("alloy_component_controller_running_components", &labels, count);
            }
            self.gauge("alloy_component_controller_evaluating", &controller, 0.0);
            self.gauge("alloy_component_evaluation_queue_size", &controller, 0.0);
            self.histogram("alloy_component_evaluation_seconds", &controller, SECONDS_BUCKETS, 0.05);
            self.histogram("alloy_component_dependencies_wait_seconds", &controller, SECONDS_BUCKETS, 0.05);
        }
        self.gauge(
            "alloy_build_info",
            &[
                ("branch", "HEAD"),
                ("goarch", "amd64"),
                ("goos", "linux"),
                ("goversion", "go1.25.1"),
                ("revision", "8a5a1f3"),
                ("tags", "netgo,builtinassets,promtail_journal_enabled"),
                ("version", super::alloy_collector::SIMULATED_ALLOY_VERSION),
            ],
            1.0,
        );
        self.gauge("alloy_config_last_load_successful", &[], 1.0);
        self.counter("alloy_config_load_failures_total", &[], 0.0);
        self.gauge("alloy_config_hash", &[("sha256", "4f6e0b3a9c1d")], 1.0);
        self.gauge("alloy_resources_machine_rx_bytes_total", &[], 1.0e9);
        self.gauge("alloy_resources_machine_tx_bytes_total", &[], 2.0e9);
        self.gauge("alloy_resources_process_resident_memory_bytes", &[], 180.0e6);
        self.counter("alloy_resources_process_cpu_seconds_total", &[], 0.08);
    }

    fn remotecfg(&mut self) {
        self.gauge("remotecfg_last_load_successful", &[], 1.0);
        self.gauge("remotecfg_last_load_not_modified", &[], 1.0);
        self.counter("remotecfg_load_attempts_total", &[], 1.0 / 60.0);
        self.counter("remotecfg_load_failures_total", &[], 0.0);
        self.gauge("remotecfg_last_load_success_timestamp_seconds", &[], self.now as f64 / 1e9);
        self.gauge("remotecfg_hash", &[("hash", "5e1d0c2b")], 1.0);
        self.histogram("remotecfg_request_duration_seconds", &[], SECONDS_BUCKETS, 1.0 / 60.0);
    }

    fn go_runtime(&mut self) {
        self.summary(
            "go_gc_duration_seconds",
            0.2,
            &[(0.0, 0.00004), (0.25, 0.00008), (0.5, 0.0001), (0.75, 0.00015), (1.0, 0.003)],
        );
        self.gauge("go_goroutines", &[], 412.0);
        self.gauge("go_threads", &[], 18.0);
        self.gauge("go_info", &[("version", "go1.25.1")], 1.0);
        self.gauge("go_sched_gomaxprocs_threads", &[], 4.0);
        for (name, value) in [
            ("go_memstats_alloc_bytes", 92.0e6),
            ("go_memstats_buck_hash_sys_bytes", 2.1e6),
            ("go_memstats_gc_sys_bytes", 7.5e6),
            ("go_memstats_heap_alloc_bytes", 92.0e6),
            ("go_memstats_heap_idle_bytes", 40.0e6),
            ("go_memstats_heap_inuse_bytes", 110.0e6),
            ("go_memstats_heap_objects", 610_000.0),
            ("go_memstats_heap_released_bytes", 20.0e6),
            ("go_memstats_heap_sys_bytes", 150.0e6),
            ("go_memstats_last_gc_time_seconds", self.now as f64 / 1e9 - 3.0),
            ("go_memstats_mcache_inuse_bytes", 9600.0),
            ("go_memstats_mcache_sys_bytes", 15_600.0),
            ("go_memstats_mspan_inuse_bytes", 1.4e6),
            ("go_memstats_mspan_sys_bytes", 1.8e6),
            ("go_memstats_next_gc_bytes", 160.0e6),
            ("go_memstats_other_sys_bytes", 3.1e6),
            ("go_memstats_stack_inuse_bytes", 3.6e6),
            ("go_memstats_stack_sys_bytes", 3.6e6),
            ("go_memstats_sys_bytes", 170.0e6),
        ] {
            self.gauge(name, &[], value);
        }
        self.counter("go_memstats_alloc_bytes_total", &[], 12.0e6);
        self.counter("go_memstats_frees_total", &[], 90_000.0);
        self.counter("go_memstats_mallocs_total", &[], 91_000.0);
        self.counter("go_memstats_lookups_total", &[], 0.0);
    }

    fn process(&mut self) {
        self.counter("process_cpu_seconds_total", &[], 0.08);
        self.gauge("process_max_fds", &[], 1_048_576.0);
        self.gauge("process_open_fds", &[], 64.0);
        self.gauge("process_resident_memory_bytes", &[], 180.0e6);
        self.gauge("process_start_time_seconds", &[], self.start as f64 / 1e9);
        self.gauge("process_virtual_memory_bytes", &[], 2.4e9);
        self.gauge("process_virtual_memory_max_bytes", &[], 1.8e19);
        self.counter("process_network_receive_bytes_total", &[], 40_000.0);
        self.counter("process_network_transmit_bytes_total", &[], 120_000.0);
        for code in ["200", "500", "503"] {
            self.counter(
                "promhttp_metric_handler_requests_total",
                &[("code", code)],
                if code == "200" { 1.0 / 30.0 } else { 0.0 },
            );
        }
        self.gauge("promhttp_metric_handler_requests_in_flight", &[], 1.0);
    }

    /// What the Prometheus receiver adds per scrape.
    fn scrape_health(&mut self) {
        let points = self.metrics.len() as f64;
        self.gauge("up", &[], 1.0);
        self.gauge("scrape_duration_seconds", &[], 0.012);
        self.gauge("scrape_samples_scraped", &[], points);
        self.gauge("scrape_samples_post_metric_relabeling", &[], points);
        self.gauge("scrape_series_added", &[], 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(now_s: u64) -> ExportMetricsServiceRequest {
        alloy_self_metrics(&ScrapeInput {
            host_id: "host-1",
            seed: 7,
            process_start_unix_nanos: 1_000 * 1_000_000_000,
            now_unix_nanos: now_s * 1_000_000_000,
        })
    }

    fn value_of(request: &ExportMetricsServiceRequest, name: &str) -> f64 {
        let metric = request.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .find(|metric| metric.name == name)
            .expect("metric present");
        match &metric.data {
            Some(metric::Data::Sum(sum)) => match sum.data_points[0].value {
                Some(number_data_point::Value::AsDouble(value)) => value,
                _ => panic!("double expected"),
            },
            _ => panic!("sum expected"),
        }
    }

    #[test]
    fn a_scrape_has_the_size_of_a_real_alloy_and_groups_points_by_family() {
        let request = scrape(1_030);
        let points = count_data_points(&request);
        assert!((150..=400).contains(&points), "{points} points");
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        let mut names: Vec<&str> = metrics.iter().map(|metric| metric.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), metrics.len(), "one metric per family");
    }

    #[test]
    fn counters_are_cumulative_and_grow_between_pushes() {
        let first = value_of(&scrape(1_030), "otelcol_exporter_sent_spans_total");
        let second = value_of(&scrape(1_060), "otelcol_exporter_sent_spans_total");
        assert!(second > first && first > 0.0, "{first} -> {second}");
    }

    #[test]
    fn component_points_name_their_component() {
        let request = scrape(1_030);
        let metric = request.resource_metrics[0].scope_metrics[0]
            .metrics
            .iter()
            .find(|metric| metric.name == "loki_write_sent_entries_total")
            .expect("loki metric");
        let Some(metric::Data::Sum(sum)) = &metric.data else { panic!("sum expected") };
        let keys: Vec<&str> = sum.data_points[0].attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert!(keys.contains(&"component_id") && keys.contains(&"component_path"), "{keys:?}");
    }

    #[test]
    fn prepared_pushes_walk_their_class_in_time_and_stop_before_going_back() {
        let prepared = PreparedPushes::build(3, 4, Compression::None, 1_000_000_000_000).expect("build");
        assert_eq!(prepared.bodies().len(), 12);
        let decoded = |index: usize, round: u64| {
            let push = prepared.push(index, round).expect("prepared");
            let request = ExportMetricsServiceRequest::decode(push.body.as_ref()).expect("decode");
            assert_eq!(push.points, count_data_points(&request));
            request
        };
        let (first, next) = (decoded(4, 0), decoded(4, 1));
        let sent =
            |request: &ExportMetricsServiceRequest| value_of(request, "otelcol_exporter_sent_spans_total");
        assert!(sent(&next) > sent(&first), "counters grow from one step to the next");
        assert_eq!(decoded(1, 2), decoded(4, 2), "collectors 1 and 4 are of one class");
        assert_ne!(decoded(1, 2), decoded(2, 2));
        assert!(prepared.push(4, 4).is_none(), "no step 4: the caller builds it");
    }

    #[test]
    fn gzip_bodies_decode_to_the_same_request() {
        let request = scrape(1_030);
        let body = encode_body(&request, Compression::Gzip).expect("gzip");
        let mut decoder = flate2::read::GzDecoder::new(body.as_slice());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut plain).expect("gunzip");
        assert_eq!(ExportMetricsServiceRequest::decode(plain.as_slice()).expect("decode"), request);
    }
}
