//! Which addresses a client metadata document may be fetched from, and the resolver that keeps
//! every connection to them.
//!
//! A client id URL is a stranger's choice, so fetching it must not reach what only this server
//! can reach (the draft's security considerations on server-side request forgery): the loopback
//! interface, private networks (RFC 1918, RFC 6598 shared space, IPv6 unique local), link-local
//! and multicast addresses, and every other special-purpose block of the IANA registries. IPv6
//! is allowed only inside global unicast (`2000::/3`), minus its special blocks (including the
//! transition prefixes 6to4, Teredo and NAT64, which embed an IPv4 address that would have to be
//! checked again).
//!
//! The check happens where the address is chosen: [`GuardedResolver`] is the HTTP connector's
//! resolver, so the connector connects to exactly the addresses that passed (no second lookup
//! between the check and the connection, which DNS rebinding would exploit). A URL whose host is
//! an IP literal never reaches a resolver, so [`literal_refused`] checks it before the request.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use ipnet::IpNet;

/// The IPv4 blocks never fetched from: the IANA IPv4 Special-Purpose Address Registry (RFC 6890
/// and its updates), private networks (RFC 1918), multicast and the reserved 240/4.
const IPV4_REFUSED: [&str; 15] = [
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (carrier-grade NAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata services live here)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and the limited broadcast address
];

/// The special blocks inside IPv6 global unicast (`2000::/3`); everything outside it (loopback,
/// unspecified, IPv4-mapped, unique local, link-local, multicast, the NAT64 prefixes...) is
/// refused anyway.
const IPV6_GLOBAL_REFUSED: [&str; 5] = [
    "2001::/23",     // IETF protocol assignments (Teredo, ORCHID, benchmarking...)
    "2001:db8::/32", // documentation
    "2002::/16",     // 6to4
    "3ffe::/16",     // the former 6bone
    "3fff::/20",     // documentation (RFC 9637)
];

struct Blocks {
    v4: Vec<IpNet>,
    v6_global: IpNet,
    v6: Vec<IpNet>,
}

static BLOCKS: LazyLock<Blocks> = LazyLock::new(|| {
    let parse = |s: &&str| s.parse::<IpNet>().expect("a literal CIDR block");
    Blocks {
        v4: IPV4_REFUSED.iter().map(parse).collect(),
        v6_global: parse(&"2000::/3"),
        v6: IPV6_GLOBAL_REFUSED.iter().map(parse).collect(),
    }
});

/// Whether a document may be fetched from `ip`: a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    let blocks = &*BLOCKS;
    match ip {
        IpAddr::V4(_) => !blocks.v4.iter().any(|b| b.contains(&ip)),
        IpAddr::V6(_) => {
            blocks.v6_global.contains(&ip) && !blocks.v6.iter().any(|b| b.contains(&ip))
        }
    }
}

/// For a URL whose host is an IP literal: whether that address is refused. `None` for a host
/// name, which the resolver checks.
pub fn literal_refused(host: &url::Host<&str>, allow_private: bool) -> Option<bool> {
    let ip = match host {
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(ip) => IpAddr::V4(*ip),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip),
    };
    Some(!allow_private && !is_public(ip))
}

/// Why [`GuardedResolver`] gave no address.
#[derive(Debug)]
pub enum ResolveError {
    /// The name resolved only to refused addresses.
    Refused,
    /// The name did not resolve.
    Lookup(std::io::Error),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Refused => f.write_str("the name resolves only to refused addresses"),
            ResolveError::Lookup(e) => write!(f, "the name did not resolve: {e}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The HTTP connector's resolver: the system's lookup, keeping only the addresses
/// [`is_public`] allows (all of them when `allow_private`, for tests).
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    /// Fetch from any address (the `allow_private_addresses` setting, for tests only).
    pub allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(ResolveError::Lookup)?;
            let allowed: Vec<SocketAddr> = found
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(ResolveError::Refused);
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_passes() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.5",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2001::1",
        ] {
            assert!(!is_public(refused.parse().unwrap()), "{refused}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literals_are_checked_names_are_left_to_the_resolver() {
        let url = url::Url::parse("https://127.0.0.1/c").unwrap();
        assert_eq!(literal_refused(&url.host().unwrap(), false), Some(true));
        assert_eq!(literal_refused(&url.host().unwrap(), true), Some(false));
        let url = url::Url::parse("https://[2606:4700::1111]/c").unwrap();
        assert_eq!(literal_refused(&url.host().unwrap(), false), Some(false));
        let url = url::Url::parse("https://app.example.com/c").unwrap();
        assert_eq!(literal_refused(&url.host().unwrap(), false), None);
    }
}
