//! The client address of a request, as throttling, connection caps and audit see it (contract:
//! "Access lifecycle and audit").
//!
//! The TCP peer is the client unless it is one of `http.trusted_proxies`; only then is
//! `X-Forwarded-For` read, right to left, skipping hops that are trusted proxies too. The first hop
//! that is not one is the client: everything to its left was written by the client itself and proves
//! nothing. A hop that is not an address ends the walk at the last trusted address, so a garbled
//! header can only make linkmesh blame the proxy, never an address of the sender's choosing.
//!
//! Invariant: without a trusted peer, no header changes the result — a client cannot pick its own
//! address to dodge a throttle.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::{web, HttpRequest};
use ipnet::IpNet;

use super::AppState;

/// Hops of `X-Forwarded-For` examined at most; a longer chain of trusted proxies is not a real setup.
const MAX_FORWARDED_HOPS: usize = 32;

/// The client address of `request` under this node's `http.trusted_proxies`.
pub fn of(request: &HttpRequest) -> IpAddr {
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.config.http.trusted_proxies.as_slice())
        .unwrap_or_default();
    let peer = request.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
    let forwarded: Vec<&[u8]> =
        request.headers().get_all("x-forwarded-for").map(|value| value.as_bytes()).collect();
    resolve(peer, &forwarded, trusted)
}

/// The client address given the TCP peer, every `X-Forwarded-For` header value in arrival order, and
/// the trusted proxies. Pure, so it can be fuzzed.
pub fn resolve(peer: IpAddr, forwarded_for: &[&[u8]], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    let mut client = canonical(peer);
    if !is_trusted(&client) {
        return client;
    }
    // Several header lines are one list, in order (RFC 9110 §5.3); the nearest hop is the last.
    let hops = forwarded_for.iter().rev().flat_map(|value| value.rsplit(|byte| *byte == b','));
    for hop in hops.take(MAX_FORWARDED_HOPS) {
        let Some(address) = parse_hop(hop) else { break };
        client = address;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` element: an IPv4 or IPv6 address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`) or in brackets, surrounded by optional whitespace.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?.trim_matches([' ', '\t']);
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<Ipv6Addr>().ok().map(|address| canonical(IpAddr::V6(address)))
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports) as plain IPv4, so one client
/// has one key.
fn canonical(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

/// The key a per-client limit counts under: the address itself for IPv4, its /64 for IPv6 (one host
/// is routinely given a whole /64, so single IPv6 addresses cost an attacker nothing).
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|text| text.parse().expect("network")).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let client = resolve(ip("198.51.100.9"), &[b"203.0.113.1"], &nets(&["10.0.0.0/8"]));
        assert_eq!(client, ip("198.51.100.9"));
        assert_eq!(resolve(ip("10.0.0.1"), &[b"203.0.113.1"], &[]), ip("10.0.0.1"));
    }

    #[test]
    fn a_trusted_peer_yields_the_last_untrusted_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoofed_then_real = [b"1.1.1.1, 203.0.113.5".as_slice(), b"10.0.0.7"];
        assert_eq!(resolve(ip("10.0.0.2"), &spoofed_then_real, &trusted), ip("203.0.113.5"));
        assert_eq!(resolve(ip("10.0.0.2"), &[b" 203.0.113.5 "], &trusted), ip("203.0.113.5"));
        assert_eq!(resolve(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"), "no header: the proxy");
        assert_eq!(resolve(ip("10.0.0.2"), &[b"10.0.0.3, 10.0.0.4"], &trusted), ip("10.0.0.3"));
    }

    #[test]
    fn a_malformed_hop_stops_at_the_last_trusted_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(resolve(ip("10.0.0.2"), &[b"203.0.113.5, unknown"], &trusted), ip("10.0.0.2"));
        assert_eq!(resolve(ip("10.0.0.2"), &[b"203.0.113.5,, 10.0.0.9"], &trusted), ip("10.0.0.9"));
        assert_eq!(resolve(ip("10.0.0.2"), &[b"\xff\xfe"], &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(resolve(ip("10.0.0.2"), &[b"203.0.113.5:4711"], &trusted), ip("203.0.113.5"));
        assert_eq!(resolve(ip("10.0.0.2"), &[b"[2001:db8::5]:80"], &trusted), ip("2001:db8::5"));
        assert_eq!(resolve(ip("10.0.0.2"), &[b"[2001:db8::5]"], &trusted), ip("2001:db8::5"));
        assert_eq!(resolve(ip("::ffff:10.0.0.2"), &[b"::ffff:203.0.113.5"], &trusted), ip("203.0.113.5"));
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
