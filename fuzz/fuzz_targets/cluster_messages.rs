//! What a peer sends on the cluster port and the JSON inside it (`linkmesh::fuzzing::cluster_messages`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::cluster_messages(data);
});
