//! `X-Forwarded-For` as a client or a proxy chain may write it (`linkmesh::fuzzing::forwarded_for`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::forwarded_for(data);
});
