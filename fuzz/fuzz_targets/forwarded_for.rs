//! `X-Forwarded-For` as a client or a proxy chain may write it: resolving the client address never
//! panics, never believes a header from an untrusted peer, and a header without an address in it
//! leaves the peer as the client.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use linkmesh::config::human::parse_network;
use linkmesh::http::client_addr::resolve;

fuzz_target!(|data: &[u8]| {
    let values: Vec<&[u8]> = data.split(|byte| *byte == b'\n').collect();
    let trusted = [
        parse_network("10.0.0.0/8").expect("network"),
        parse_network("fd00::/8").expect("network"),
    ];
    let peer: IpAddr = "10.1.2.3".parse().expect("address");
    let stranger: IpAddr = "192.0.2.1".parse().expect("address");

    assert_eq!(resolve(stranger, &values, &trusted), stranger);
    let client = resolve(peer, &values, &trusted);
    if !data.iter().any(|byte| byte.is_ascii_hexdigit() || *byte == b':') {
        assert_eq!(client, peer, "no address in {data:?}");
    }
});
