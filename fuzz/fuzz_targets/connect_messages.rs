//! Every remotecfg message Alloy can send, decoded from arbitrary bytes in both Connect codecs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::connect_messages(data);
});
