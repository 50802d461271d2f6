"""own_metrics pushed by the real OpenTelemetry SDK and its OTLP/HTTP exporters to the real linkmesh binary.

Counters are shaped like the two producers linkmesh reads (shared/reference/opamp-and-self-telemetry.md §4):
Alloy's self-metrics after otelcol.receiver.prometheus (`component_id` with the remotecfg module path, `_total`)
and the OpenTelemetry Collector's internal metrics (`receiver`/`processor`/`exporter` attributes). They go out
through `opentelemetry-exporter-otlp-proto-http` (protobuf, gzip) and `opentelemetry-exporter-otlp-json-http`
(OTLP/JSON), with the collector token as a bearer header, and the rates are read back from the topology API.

Expected rates are computed from the data points the exporter actually sent (their timestamps), so the test
needs no sleeps. Run: `pytest tests/python` after `cargo build` (or set LINKMESH_BIN).
"""

import os
import pathlib
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression
from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter as JsonMetricExporter
from opentelemetry.exporter.otlp.proto.http import Compression as ProtoCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as ProtoMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "python-test-admin-password"
CONFIG = """
activity_flush_interval = "30ms"
shutdown_timeout = "5s"

[collectors]
default_poll_interval = "2s"
min_poll_interval = "2s"
stale_after_missed_polls = 3
tick_interval = "50ms"
passivate_after = "600s"
"""
MODULE = "remotecfg/linkmesh_pipeline.default"
DEADLINE_SECONDS = 15


class Server:
    """The real binary on an ephemeral port, and an admin session on its REST API."""

    def __init__(self, workdir: pathlib.Path):
        binary = pathlib.Path(os.environ.get("LINKMESH_BIN", REPO / "target" / "debug" / "linkmesh"))
        if not binary.exists():
            pytest.fail(f"linkmesh binary not found at {binary}: run `cargo build` first or set LINKMESH_BIN")
        config = workdir / "linkmesh.toml"
        config.write_text(CONFIG)
        self.log_path = workdir / "server.log"
        env = dict(os.environ, LINKMESH_ADMIN_PASSWORD=ADMIN_PASSWORD, LINKMESH_LOG="info")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--config", str(config), "--data-dir", str(workdir / "data"),
             "--http-addr", "127.0.0.1:0", "--rpc-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=open(self.log_path, "w"), env=env, text=True,
        )
        for line in self.process.stdout:
            if line.startswith("listening on "):
                address = line[len("listening on "):].strip().split(",")[0]
                break
        else:
            pytest.fail(f"linkmesh exited before listening:\n{self.log_path.read_text()}")
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()
        self.base_url = f"http://{address}"
        self.session = requests.Session()
        login = self.session.post(f"{self.base_url}/api/v1/auth/login",
                                  json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def api(self, method, path, **kwargs):
        response = self.session.request(method, f"{self.base_url}/api/v1{path}", **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def collector(self, mode):
        created = self.api("POST", "/collectors", json={"name": f"py-{mode}-{time.monotonic_ns()}", "mode": mode})
        token = self.api("POST", f"/collectors/{created['id']}/token")["token"]
        return created["id"], token

    def topology(self, collector_id):
        return self.api("GET", f"/collectors/{collector_id}/topology")

    def wait_for(self, description, condition):
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.02)
        pytest.fail(f"timed out waiting for {description}")


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory() as workdir:
        running = Server(pathlib.Path(workdir))
        try:
            yield running
        finally:
            running.stop()


class Recording(MetricExporter):
    """Wraps a real OTLP exporter and keeps what it sent and how each export ended."""

    def __init__(self, inner, preferred_temporality=None):
        super().__init__(preferred_temporality=preferred_temporality)
        self.inner = inner
        self.sent = []
        self.results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.sent.append(metrics_data)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def points(metrics_data, name):
    """Data points of metric `name` in one export: [(attributes, start, time, value)]."""
    found = []
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes), p.start_time_unix_nano, p.time_unix_nano, p.value)
                              for p in metric.data.data_points]
    return found


def cumulative_rate(recording, name, match):
    """Items per second between the last two exports, summed over the series whose attributes match."""
    before, after = recording.sent[-2], recording.sent[-1]
    total = 0.0
    for attributes, _, time_after, value_after in points(after, name):
        if not match(attributes):
            continue
        previous = [p for p in points(before, name) if p[0] == attributes]
        assert previous, f"{name} {attributes} missing from the earlier export"
        _, _, time_before, value_before = previous[0]
        total += (value_after - value_before) * 1e9 / (time_after - time_before)
    return total


def node(topology, node_id):
    for candidate in topology["nodes"]:
        if candidate["id"] == node_id:
            return candidate
    raise AssertionError(f"no node {node_id} in {topology}")


def provider_with(recording, resource):
    # The reader's own schedule never fires during the test: every export is a force_flush.
    reader = PeriodicExportingMetricReader(recording, export_interval_millis=3_600_000)
    return MeterProvider(resource=Resource.create(resource), metric_readers=[reader])


def flush(provider, recording):
    exports = len(recording.results)
    provider.force_flush()
    assert len(recording.results) == exports + 1, "force_flush did not export"
    return recording.results[-1]


def test_alloy_shaped_counters_over_gzipped_protobuf(server):
    collector_id, token = server.collector("alloy-remotecfg")
    exporter = ProtoMetricExporter(endpoint=f"{server.base_url}/v1/metrics",
                                   headers={"Authorization": f"Bearer {token}"},
                                   compression=ProtoCompression.Gzip)
    recording = Recording(exporter)
    provider = provider_with(recording, {"service.name": "prometheus.scrape.linkmesh_self",
                                         "service.instance.id": "127.0.0.1:12345"})
    meter = provider.get_meter("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver")

    def component(local_id, in_module=True, **extra):
        full = f"{MODULE}/{local_id}" if in_module else local_id
        return {"component_id": full, "component_path": f"/{MODULE}" if in_module else "/", **extra}

    receiver_grpc = component("otelcol.receiver.otlp.src_apps", transport="grpc")
    receiver_http = component("otelcol.receiver.otlp.src_apps", transport="http")
    tempo = component("otelcol.exporter.otlphttp.dst_tempo")
    self_scrape = component("prometheus.scrape.linkmesh_self", in_module=False)
    accepted_spans = meter.create_counter("otelcol_receiver_accepted_spans_total")
    accepted_logs = meter.create_counter("otelcol_receiver_accepted_log_records_total")
    sent_spans = meter.create_counter("otelcol_exporter_sent_spans_total")
    failed_spans = meter.create_counter("otelcol_exporter_send_failed_spans_total")
    forwarded = meter.create_counter("prometheus_forwarded_samples_total")
    edges = [("prometheus.exporter.self.default", "prometheus.scrape.linkmesh_self"),
             ("otelcol.receiver.otlp.src_apps", "otelcol.exporter.otlphttp.dst_tempo")]
    meter.create_observable_gauge(
        "alloy_component_graph_connection",
        callbacks=[lambda options: [Observation(1, {"from": a, "to": b, "controller_path": "/"}) for a, b in edges]])
    try:
        accepted_spans.add(5000, receiver_grpc)
        accepted_logs.add(2000, receiver_http)
        sent_spans.add(4990, tempo)
        failed_spans.add(10, tempo)
        forwarded.add(900, self_scrape)
        assert flush(provider, recording) == MetricExportResult.SUCCESS
        assert node(server.topology(collector_id), "local:otelcol.receiver.otlp.src_apps")["in_rate"] is None

        accepted_spans.add(3000, receiver_grpc)
        accepted_logs.add(1500, receiver_http)
        sent_spans.add(2990, tempo)
        failed_spans.add(10, tempo)
        forwarded.add(900, self_scrape)
        assert flush(provider, recording) == MetricExportResult.SUCCESS

        topology = server.topology(collector_id)
        in_module = lambda attributes: attributes["component_id"].endswith("src_apps")
        expected_in = (cumulative_rate(recording, "otelcol_receiver_accepted_spans_total", in_module)
                       + cumulative_rate(recording, "otelcol_receiver_accepted_log_records_total", in_module))
        receiver = node(topology, "local:otelcol.receiver.otlp.src_apps")
        assert receiver["in_rate"] == pytest.approx(expected_in, rel=1e-9)
        assert receiver["kind"] == "local" and receiver["type"] == "otelcol.receiver.otlp"
        exporter_node = node(topology, "local:otelcol.exporter.otlphttp.dst_tempo")
        everything = lambda attributes: True
        assert exporter_node["out_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_exporter_sent_spans_total", everything), rel=1e-9)
        assert exporter_node["error_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_exporter_send_failed_spans_total", everything), rel=1e-9)
        assert node(topology, "local:prometheus.exporter.self.default")["in_rate"] is None
        pairs = {(edge["from"], edge["to"]) for edge in topology["edges"]}
        assert ("local:prometheus.exporter.self.default", "local:prometheus.scrape.linkmesh_self") in pairs
        assert ("local:otelcol.receiver.otlp.src_apps", "local:otelcol.exporter.otlphttp.dst_tempo") in pairs
        assert topology["updated_at"] is not None

        events = server.wait_for("own_metrics_first_seen", lambda: [
            e for e in server.api("GET", f"/collectors/{collector_id}/events")["events"]
            if e["type"] == "own_metrics_first_seen"])
        assert len(events) == 1
        assert server.api("GET", f"/collectors/{collector_id}")["own_metrics_last_seen_at"] is not None
    finally:
        provider.shutdown()


def test_otel_collector_shaped_counters_over_json_degrade_and_recover(server):
    collector_id, token = server.collector("opamp")
    # A remotecfg poll makes the collector `connected`, so export failures can degrade it.
    poll = requests.post(f"{server.base_url}/collector.v1.CollectorService/GetConfig",
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                         json={"id": "py-host"})
    assert poll.status_code == 200, poll.text
    server.wait_for("connected", lambda: server.api("GET", f"/collectors/{collector_id}")["status"] == "connected")

    exporter = JsonMetricExporter(endpoint=f"{server.base_url}/v1/metrics",
                                  headers={"Authorization": f"Bearer {token}"})
    recording = Recording(exporter)
    provider = provider_with(recording, {"service.name": "otelcol-contrib",
                                         "service.instance.id": "0190f3c4-5e6a-7b8c-9d0e-1f2a3b4c5d6e"})
    receiver_meter = provider.get_meter("go.opentelemetry.io/collector/receiver/receiverhelper")
    processor_meter = provider.get_meter("go.opentelemetry.io/collector/processor/processorhelper")
    exporter_meter = provider.get_meter("go.opentelemetry.io/collector/exporter/exporterhelper")
    accepted = receiver_meter.create_counter("otelcol_receiver_accepted_spans")
    incoming = processor_meter.create_counter("otelcol_processor_incoming_items")
    outgoing = processor_meter.create_counter("otelcol_processor_outgoing_items")
    sent = exporter_meter.create_counter("otelcol_exporter_sent_spans")
    send_failed = exporter_meter.create_counter("otelcol_exporter_send_failed_spans")
    queue = {"size": 7}
    exporter_meter.create_observable_gauge(
        "otelcol_exporter_queue_size",
        callbacks=[lambda options: [Observation(queue["size"], {"exporter": "otlphttp/dst_tempo", "data_type": "traces"})]])
    receiver = {"receiver": "otlp/src_apps", "transport": "grpc"}
    batch = {"processor": "batch/rte_all_step_0", "otel.signal": "traces"}
    tempo = {"exporter": "otlphttp/dst_tempo"}
    status = lambda: server.api("GET", f"/collectors/{collector_id}")["status"]
    try:
        accepted.add(600, receiver)
        incoming.add(600, batch)
        outgoing.add(590, batch)
        sent.add(580, tempo)
        send_failed.add(10, tempo)
        assert flush(provider, recording) == MetricExportResult.SUCCESS

        accepted.add(1200, receiver)
        incoming.add(1200, batch)
        outgoing.add(1190, batch)
        sent.add(1180, tempo)
        send_failed.add(10, tempo)
        assert flush(provider, recording) == MetricExportResult.SUCCESS

        topology = server.topology(collector_id)
        everything = lambda attributes: True
        batch_node = node(topology, "local:processor:batch/rte_all_step_0")
        assert batch_node["type"] == "batch"
        assert batch_node["in_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_processor_incoming_items", everything), rel=1e-9)
        assert batch_node["out_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_processor_outgoing_items", everything), rel=1e-9)
        tempo_node = node(topology, "local:exporter:otlphttp/dst_tempo")
        assert tempo_node["queue_size"] == 7
        assert tempo_node["error_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_exporter_send_failed_spans", everything), rel=1e-9)
        assert topology["collector"]["received_rate"] == pytest.approx(
            cumulative_rate(recording, "otelcol_receiver_accepted_spans", everything), rel=1e-9)
        server.wait_for("degraded", lambda: status() == "degraded")

        # Failures stop: the next push brings the collector back.
        accepted.add(100, receiver)
        sent.add(100, tempo)
        assert flush(provider, recording) == MetricExportResult.SUCCESS
        server.wait_for("connected again", lambda: status() == "connected")
    finally:
        provider.shutdown()


def test_delta_temporality_over_gzipped_json(server):
    collector_id, token = server.collector("opamp")
    recording = Recording(
        JsonMetricExporter(endpoint=f"{server.base_url}/v1/metrics", headers={"Authorization": f"Bearer {token}"},
                           compression=JsonCompression.GZIP,
                           preferred_temporality={Counter: AggregationTemporality.DELTA}),
        preferred_temporality={Counter: AggregationTemporality.DELTA})
    provider = provider_with(recording, {"service.name": "otelcol-contrib"})
    sent = provider.get_meter("exporterhelper").create_counter("otelcol_exporter_sent_log_records")
    try:
        sent.add(300, {"exporter": "otlphttp/dst_loki"})
        assert flush(provider, recording) == MetricExportResult.SUCCESS
        sent.add(450, {"exporter": "otlphttp/dst_loki"})
        assert flush(provider, recording) == MetricExportResult.SUCCESS
        [(_, start, end, value)] = points(recording.sent[-1], "otelcol_exporter_sent_log_records")
        assert value == 450, "the exporter sent a delta"
        loki = node(server.topology(collector_id), "local:exporter:otlphttp/dst_loki")
        assert loki["out_rate"] == pytest.approx(value * 1e9 / (end - start), rel=1e-9)
    finally:
        provider.shutdown()


def test_a_wrong_or_rotated_token_fails_the_export_and_changes_nothing(server):
    collector_id, token = server.collector("alloy-remotecfg")
    wrong = Recording(ProtoMetricExporter(endpoint=f"{server.base_url}/v1/metrics",
                                          headers={"Authorization": "Bearer lmct_not-a-real-token"}))
    provider = provider_with(wrong, {"service.name": "alloy"})
    counter = provider.get_meter("m").create_counter("otelcol_exporter_sent_spans_total")
    attributes = {"component_id": "otelcol.exporter.otlphttp.dst_x"}
    try:
        counter.add(1, attributes)
        assert flush(provider, wrong) == MetricExportResult.FAILURE
    finally:
        provider.shutdown()
    assert server.topology(collector_id)["updated_at"] is None

    right = Recording(ProtoMetricExporter(endpoint=f"{server.base_url}/v1/metrics",
                                          headers={"Authorization": f"Bearer {token}"}))
    provider = provider_with(right, {"service.name": "alloy"})
    counter = provider.get_meter("m").create_counter("otelcol_exporter_sent_spans_total")
    try:
        counter.add(10, attributes)
        assert flush(provider, right) == MetricExportResult.SUCCESS
        before = server.topology(collector_id)
        assert before["updated_at"] is not None
        server.api("POST", f"/collectors/{collector_id}/token")  # rotate: the exporter's token is now stale
        counter.add(10, attributes)
        assert flush(provider, right) == MetricExportResult.FAILURE
        assert server.topology(collector_id) == before
    finally:
        provider.shutdown()
