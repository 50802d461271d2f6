//! own_metrics pushes: arbitrary OTLP protobuf and JSON, decoded and turned into per-component
//! counters and rates exactly as the receiver and the collector actor do.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::otlp_metrics(data);
});
