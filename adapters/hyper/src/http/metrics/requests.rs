//! Requests answered, by endpoint and status, and their latency, by endpoint.
//!
//! Both are tables of atomics indexed by the route (a small fixed set: the route table's endpoint
//! names, and `unmatched` for a path no route has) and, for the counts, the status code. So
//! recording a request resolves no label, takes no lock and allocates nothing: three relaxed
//! atomic additions at indexes known from the request. No value a client sends becomes a label:
//! a stranger asking for a million different paths adds to one series, `unmatched`.
//!
//! A scrape writes out only the series that have counted something.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::histogram::Histogram;
use crate::http::routes::Endpoint;

/// The `endpoint` label's values, indexed by [`slot`].
const ENDPOINTS: [&str; 14] = [
    "unmatched",
    "healthz",
    "stylesheet",
    "authorize",
    "token",
    "register",
    "client_configuration",
    "introspect",
    "revoke",
    "userinfo",
    "device_authorization",
    "device_verification",
    "metadata",
    "end_session",
];

/// The index of an endpoint's name in [`ENDPOINTS`] (`None`: no route matched).
fn slot(endpoint: Option<Endpoint>) -> usize {
    match endpoint {
        None => 0,
        Some(Endpoint::Healthz) => 1,
        Some(Endpoint::Stylesheet) => 2,
        Some(Endpoint::Authorize) => 3,
        Some(Endpoint::Token) => 4,
        Some(Endpoint::Register) => 5,
        Some(Endpoint::ClientConfiguration) => 6,
        Some(Endpoint::Introspect) => 7,
        Some(Endpoint::Revoke) => 8,
        Some(Endpoint::Userinfo) => 9,
        Some(Endpoint::DeviceAuthorization) => 10,
        Some(Endpoint::DeviceVerification) => 11,
        Some(Endpoint::Metadata) => 12,
        Some(Endpoint::EndSession) => 13,
    }
}

/// Status codes are three digits (hyper's `StatusCode` holds 100 to 999): one counter for each.
/// The rows are in the process's zeroed memory, touched only where a status occurs.
const STATUSES: usize = 1000;

struct Requests {
    counts: [[AtomicU64; STATUSES]; ENDPOINTS.len()],
    latency: [Histogram; ENDPOINTS.len()],
}

static REQUESTS: Requests = Requests {
    counts: [const { [const { AtomicU64::new(0) }; STATUSES] }; ENDPOINTS.len()],
    latency: [const { Histogram::new() }; ENDPOINTS.len()],
};

/// Counts a request answered with `status` after `elapsed` (`endpoint`: the route it matched).
#[inline]
pub(crate) fn record(endpoint: Option<Endpoint>, status: u16, elapsed: Duration) {
    let slot = slot(endpoint);
    if let Some(count) = REQUESTS.counts[slot].get(usize::from(status)) {
        count.fetch_add(1, Relaxed);
    }
    REQUESTS.latency[slot].observe(elapsed);
}

/// Writes `oauth_http_requests_total` and `oauth_http_request_duration_seconds`.
#[derive(Debug)]
pub(crate) struct RequestsCollector;

impl Collector for RequestsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "oauth_http_requests",
            "Requests answered, by endpoint (the route's name; unmatched: no route) and status code",
            None,
            MetricType::Counter,
        )?;
        for (name, counts) in ENDPOINTS.iter().zip(&REQUESTS.counts) {
            for (status, count) in counts.iter().enumerate() {
                let n = count.load(Relaxed);
                if n == 0 {
                    continue;
                }
                let mut digits = itoa::Buffer::new();
                let labels = [("endpoint", *name), ("status", digits.format(status))];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "oauth_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by endpoint",
            None,
            MetricType::Histogram,
        )?;
        for (name, latency) in ENDPOINTS.iter().zip(&REQUESTS.latency) {
            if let Some(snapshot) = latency.snapshot() {
                snapshot.encode(family.encode_family(&[("endpoint", *name)])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_own_name() {
        let endpoints = [
            None,
            Some(Endpoint::Healthz),
            Some(Endpoint::Stylesheet),
            Some(Endpoint::Authorize),
            Some(Endpoint::Token),
            Some(Endpoint::Register),
            Some(Endpoint::ClientConfiguration),
            Some(Endpoint::Introspect),
            Some(Endpoint::Revoke),
            Some(Endpoint::Userinfo),
            Some(Endpoint::DeviceAuthorization),
            Some(Endpoint::DeviceVerification),
            Some(Endpoint::Metadata),
            Some(Endpoint::EndSession),
        ];
        let mut slots: Vec<usize> = endpoints.iter().map(|e| slot(*e)).collect();
        assert_eq!(ENDPOINTS[slot(Some(Endpoint::Token))], "token");
        assert_eq!(ENDPOINTS[slot(None)], "unmatched");
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), ENDPOINTS.len());
    }
}
