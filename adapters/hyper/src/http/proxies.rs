//! Which address a request comes from, behind the reverse proxies the administrator trusts.
//!
//! Every per-address limit (failed guesses, sign-ins, registrations, pages) keys on the client's
//! address. Behind a reverse proxy the TCP peer is the proxy, and every user would share its
//! address: one attacker would get everyone refused. So for a peer listed in `[server]
//! trusted_proxies` (CIDRs), the address is read from the forwarding headers that proxy adds:
//! `Forwarded` (RFC 7239) when present, else `X-Forwarded-For`.
//!
//! Those headers are lists, client first, each proxy appending the address it received from. Only
//! the entries appended by trusted proxies can be believed: anything further left may be whatever
//! the client sent. So the list is read from the right, skipping the addresses of trusted proxies,
//! and the first address that is not one is the client. A list of trusted addresses only, an
//! entry without an address (`for=unknown`, an obfuscated name) or a header that does not parse
//! leaves the answer at the last trusted hop, never at a value the client could have chosen.
//!
//! A peer not listed is the client itself, whatever headers it sends. With no `trusted_proxies`
//! (the default) the headers are never read.

use std::net::IpAddr;

use forwarded_header_value::ForwardedHeaderValue;
use hyper::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The networks whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `::1/128`) or single addresses (`127.0.0.1`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let nets = entries
            .iter()
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("[server] trusted_proxies: {e:?} is not an address or a CIDR")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let Some(chain) = chain(headers) else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop.forwarded_for_ip() {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return canonical(ip),
                None => return client,
            }
        }
        client
    }
}

/// The forwarding list: every `Forwarded` field joined, else every `X-Forwarded-For` field.
fn chain(headers: &HeaderMap) -> Option<ForwardedHeaderValue> {
    let joined = |name| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(forwarded) = joined(hyper::header::FORWARDED) {
        return ForwardedHeaderValue::from_forwarded(&forwarded).ok();
    }
    ForwardedHeaderValue::from_x_forwarded_for(&joined(X_FORWARDED_FOR)?).ok()
}

/// An IPv4-mapped IPv6 address as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_never_read() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(
            TrustedProxies::default().client_addr(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client_addr(ip("192.0.2.1"), &h),
            ip("192.0.2.1"),
            "an untrusted peer is the client, whatever it claims"
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "::1"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.1.1")]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(p.client_addr(ip("::1"), &h), ip("198.51.100.4"));
        let h = headers(&[
            (
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https",
            ),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            p.client_addr(ip("10.0.0.1"), &h),
            ip("2001:db8::7"),
            "Forwarded is preferred"
        );
    }

    #[test]
    fn nothing_the_client_controls_is_believed_when_the_chain_is_unusable() {
        let p = proxies(&["10.0.0.0/8"]);
        for value in ["10.2.2.2, 10.3.3.3", "garbage, 10.2.2.2"] {
            let h = headers(&[("x-forwarded-for", value)]);
            let got = p.client_addr(ip("10.0.0.1"), &h);
            assert!(p.trusts(got), "{value}: {got}");
        }
        let h = headers(&[("forwarded", "for=6.6.6.6, for=unknown")]);
        assert_eq!(p.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        assert_eq!(
            p.client_addr(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn mapped_addresses_match_ipv4_networks() {
        let p = proxies(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "192.0.2.5")]);
        assert_eq!(p.client_addr(ip("::ffff:127.0.0.1"), &h), ip("192.0.2.5"));
    }

    #[test]
    fn bad_entries_are_refused_with_their_text() {
        let err = TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }
}
