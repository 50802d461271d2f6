//! own_metrics pushes in protobuf: the borrowed decoder (`own_metrics::wire`) accepts exactly what prost
//! accepts and reads the same metrics, points and attributes from them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::otlp_wire(data);
});
