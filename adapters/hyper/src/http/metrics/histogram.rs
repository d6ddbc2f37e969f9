//! A latency histogram of fixed buckets kept in atomics.
//!
//! `prometheus_client`'s own histogram takes a mutex for every observation; this one is an array
//! of counters, so recording a request is a binary search among eighteen bounds and two relaxed
//! atomic additions, with no lock and no allocation. The buckets are kept apart (not cumulative)
//! and the count is not kept at all: a scrape sums the buckets it read, so `_count` always equals
//! the `+Inf` bucket, even while requests are being recorded. The crate's encoder writes them out.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// The buckets' upper bounds, in nanoseconds: 25 µs to 10 s, about three per decade. A token
/// request takes some 50 µs of CPU; a PostgreSQL round trip a few hundred; a stuck store ends at
/// the request timeout (30 s by default), which `+Inf` holds.
const BOUNDS_NS: [u64; 18] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The buckets: one per bound, and `+Inf`.
const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// Observations of durations.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// How many observations fell in each bucket (at most its bound, above the previous one).
    buckets: [AtomicU64; BUCKETS],
    /// The sum of the observations, in nanoseconds (wraps after 584 years of summed latency,
    /// which a scraper would take for a restart).
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram (a `const`, so the server's histograms are plain statics).
    pub(crate) const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    #[inline]
    pub(crate) fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at or above the value (`le` is inclusive); past the last, `+Inf`.
        let i = BOUNDS_NS.partition_point(|&bound| bound < ns);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// What a scrape reads: the sum in seconds, the count, and each bucket's own count (the
    /// encoder makes them cumulative); `None` before the first observation.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let mut buckets = [(f64::INFINITY, 0); BUCKETS];
        let mut count = 0;
        for (i, (slot, bucket)) in buckets.iter_mut().zip(&self.buckets).enumerate() {
            let n = bucket.load(Relaxed);
            count += n;
            *slot = (
                BOUNDS_NS
                    .get(i)
                    .map_or(f64::INFINITY, |&ns| ns as f64 / 1e9),
                n,
            );
        }
        (count > 0).then(|| Snapshot {
            sum_secs: self.sum_ns.load(Relaxed) as f64 / 1e9,
            count,
            buckets,
        })
    }
}

/// A histogram as read at one scrape.
#[derive(Debug)]
pub(crate) struct Snapshot {
    sum_secs: f64,
    count: u64,
    buckets: [(f64, u64); BUCKETS],
}

impl Snapshot {
    /// Writes the `_bucket`, `_sum` and `_count` samples through the crate's encoder.
    pub(crate) fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum_secs, self.count, &self.buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_bucket_of_the_first_bound_at_or_above_them() {
        let h = Histogram::new();
        assert!(h.snapshot().is_none());
        h.observe(Duration::from_micros(25)); // exactly the first bound
        h.observe(Duration::from_nanos(25_001));
        h.observe(Duration::from_secs(60)); // past every bound
        let s = h.snapshot().unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0], (0.000025, 1));
        assert_eq!(s.buckets[1], (0.00005, 1));
        assert_eq!(s.buckets[BUCKETS - 1], (f64::INFINITY, 1));
        assert_eq!(s.buckets.iter().map(|b| b.1).sum::<u64>(), 3);
        assert!((s.sum_secs - 60.000050001).abs() < 1e-9);
    }
}
