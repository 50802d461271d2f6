//! Request bodies as the network delivers them: gzip of any shape must inflate within the limit or fail
//! cleanly, never allocate past it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkmesh::http::body::{decode, ContentEncoding};

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(inflated) = decode(data.to_vec(), ContentEncoding::Gzip, LIMIT) {
        assert!(inflated.len() <= LIMIT);
    }
    let identity = decode(data.to_vec(), ContentEncoding::Identity, LIMIT).expect("identity never fails");
    assert_eq!(identity, data);
});
