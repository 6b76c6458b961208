//! Who the client is behind proxies. A load balancer is the TCP peer of every request; the client's
//! address is in `Forwarded` (RFC 7239) or `X-Forwarded-For`, which anyone can also forge. So the
//! headers count only when the peer is a proxy listed in `TOOLGATE_TRUSTED_PROXIES`, and then the
//! client is the rightmost address in the chain that is not itself a trusted proxy: everything to
//! its left was written by the client and may be made up.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose forwarding headers are believed (`TOOLGATE_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

/// The client's address as the server decided it: the TCP peer, or the address a trusted proxy
/// forwarded. The server puts it in each request's extensions; handlers and logs read it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddress(pub(crate) IpAddr);

impl TrustedProxies {
    pub(crate) fn new(networks: &[IpNet]) -> Self {
        Self(networks.to_vec())
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub(crate) fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        // `Forwarded` is the standard; a proxy that writes it is trusted for it first.
        let chain = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
        let Some(chain) = chain else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.into_iter().rev() {
            client = hop;
            if !self.contains(hop) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:10.0.0.1`, as dual-stack sockets report) is the IPv4
/// address, so one list entry covers both forms.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses in every `X-Forwarded-For` header, left to right; `None` when there is none, or
/// when an entry is not an address (then the chain cannot be trusted at all).
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        for entry in value.to_str().ok()?.split(',') {
            chain.push(parse_node(entry.trim())?);
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// The `for=` addresses of every `Forwarded` element, left to right (RFC 7239 §4); `None` when
/// there is none or one is not an address (an obfuscated identifier or `unknown`).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        for element in value.to_str().ok()?.split(',') {
            for pair in element.split(';') {
                let Some((name, node)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    chain.push(parse_node(node.trim().trim_matches('"'))?);
                }
            }
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:8080`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusting(list: &str) -> TrustedProxies {
        TrustedProxies::new(&crate::config::parse_trusted_proxies(list).unwrap())
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let none = TrustedProxies::default();
        let forged = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            none.client_address(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
        let lb = trusting("10.0.0.0/8");
        assert_eq!(
            lb.client_address(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = trusting("10.0.0.0/8, 192.168.0.5");
        // The client forged the leftmost entry; the balancer appended the real one.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 192.168.0.5")]);
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &chain),
            ip("198.51.100.7")
        );
        // Several headers form one chain, in order.
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &split),
            ip("198.51.100.7")
        );
        // Only trusted hops: the leftmost is the client.
        let internal = headers(&[("x-forwarded-for", "10.9.9.9, 192.168.0.5")]);
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &internal),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_address(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn forwarded_is_read_with_ports_quotes_and_ipv6() {
        let trusted = trusting("127.0.0.1");
        let forwarded = headers(&[(
            "forwarded",
            r#"for=6.6.6.6;proto=https, for="[2001:db8::17]:4711";by=127.0.0.1"#,
        )]);
        assert_eq!(
            trusted.client_address(ip("127.0.0.1"), &forwarded),
            ip("2001:db8::17")
        );
        let with_port = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(
            trusted.client_address(ip("127.0.0.1"), &with_port),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_malformed_chain_counts_as_none_and_mapped_addresses_match() {
        let trusted = trusting("127.0.0.1");
        let junk = headers(&[("x-forwarded-for", "not-an-address, 198.51.100.7")]);
        assert_eq!(
            trusted.client_address(ip("127.0.0.1"), &junk),
            ip("127.0.0.1")
        );
        let mapped = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            trusted.client_address(ip("::ffff:127.0.0.1"), &mapped),
            ip("198.51.100.7")
        );
    }
}
