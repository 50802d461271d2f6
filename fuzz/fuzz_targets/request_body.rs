//! Request bodies as the network delivers them: gzip of any shape must inflate within the limit or fail
//! cleanly, never allocate past it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::request_body(data);
});
