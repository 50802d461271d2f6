//! An OTTL condition or statement as a user writes it (`linkmesh::fuzzing::ottl`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    linkmesh::fuzzing::ottl(data);
});
