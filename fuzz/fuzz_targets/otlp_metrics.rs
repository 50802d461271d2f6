//! own_metrics pushes: arbitrary OTLP protobuf and JSON, decoded and turned into per-component
//! counters and rates exactly as the receiver and the collector actor do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkmesh::actors::throughput::{extract, ThroughputState};
use linkmesh::model::UnixMillis;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let decoded = ExportMetricsServiceRequest::decode(data)
        .ok()
        .or_else(|| serde_json::from_slice::<ExportMetricsServiceRequest>(data).ok());
    if let Some(request) = decoded {
        let batch = extract(&request);
        let mut window = ThroughputState::default();
        let _ = window.ingest(&batch, UnixMillis(1_700_000_000_000));
        let _ = window.ingest(&batch, UnixMillis(1_700_000_030_000));
        let _ = window.snapshot(true);
    }
});
