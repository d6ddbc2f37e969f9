//! The store's side: each operation's latency and failures by kind, and, on PostgreSQL, the
//! connection pool, the batches of refresh-token rotations and the revocation view's lag.
//!
//! [`Timed`] wraps every call the server makes on its store ([`crate::store::AnyStore`]): the
//! engine's reads (`get_client`, `take_code`, ...), its writes (`apply`), the purge, and the
//! directory's calls (`user`, `change`, ...). Like the request counts, the tables are indexed by
//! the operation's kind, a fixed set, so timing a call is two clock reads and a few atomic
//! additions. A call abandoned midway (its request timed out) is recorded with the time it had
//! taken, so a stuck store shows in the slowest buckets rather than nowhere.
//!
//! The pool and the view are read when scraped, from the store itself: deadpool's
//! `Pool::status()` (connections open, idle, and tasks waiting for one) and the time since the
//! revocation view was last known complete
//! ([`oauth_store_postgres::PostgresStore::revocation_lag`], normally under the 500 ms catch-up
//! interval; past 30 s the node refuses every access token).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use oauth_proto::store::{Op, StoreError};
use oauth_store_postgres::BatchCounts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::histogram::Histogram;
use crate::store::AnyStore;

/// The kinds of store call (the `operation` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    GetClient,
    GetClientWithStatus,
    GetSubject,
    TakeCode,
    GetRefresh,
    RefreshPublic,
    RotateRefresh,
    GetDevice,
    SwapDevice,
    Count,
    RevocationStatus,
    UserClaims,
    FetchClientDocument,
    Consents,
    GrantsOfSession,
    Apply,
    Purge,
    User,
    Users,
    Clients,
    Change,
    Other,
}

/// The `operation` label's values, in [`Kind`]'s order (`kind as usize` indexes them).
const KINDS: [&str; 22] = [
    "get_client",
    "get_client_with_status",
    "get_subject",
    "take_code",
    "get_refresh",
    "refresh_public",
    "rotate_refresh",
    "get_device",
    "swap_device",
    "count",
    "revocation_status",
    "user_claims",
    "fetch_client_document",
    "consents",
    "grants_of_session",
    "apply",
    "purge",
    "user",
    "users",
    "clients",
    "change",
    "other",
];

impl Kind {
    /// The kind of an engine read.
    pub(crate) fn of(op: &Op) -> Self {
        match op {
            Op::GetClient { .. } => Kind::GetClient,
            Op::GetClientWithStatus { .. } => Kind::GetClientWithStatus,
            Op::GetSubject { .. } => Kind::GetSubject,
            Op::TakeCode { .. } => Kind::TakeCode,
            Op::GetRefresh { .. } => Kind::GetRefresh,
            Op::RefreshPublic { .. } => Kind::RefreshPublic,
            Op::RotateRefresh { .. } => Kind::RotateRefresh,
            Op::GetDevice { .. } => Kind::GetDevice,
            Op::SwapDevice { .. } => Kind::SwapDevice,
            Op::Count { .. } => Kind::Count,
            Op::RevocationStatus { .. } => Kind::RevocationStatus,
            Op::UserClaims { .. } => Kind::UserClaims,
            // Answered by the server's fetcher before the store (`crate::cimd`); timed here only
            // if it reaches the store.
            Op::FetchClientDocument { .. } => Kind::FetchClientDocument,
            Op::Consents { .. } => Kind::Consents,
            Op::GrantsOfSession { .. } => Kind::GrantsOfSession,
            // An operation the engine gains later is timed as `other` until it is named here, so
            // adding one to the engine does not stop this server from building.
            #[allow(unreachable_patterns)]
            _ => Kind::Other,
        }
    }
}

struct StoreMetrics {
    latency: [Histogram; KINDS.len()],
    errors: [AtomicU64; KINDS.len()],
}

static STORE: StoreMetrics = StoreMetrics {
    latency: [const { Histogram::new() }; KINDS.len()],
    errors: [const { AtomicU64::new(0) }; KINDS.len()],
};

/// One store call being timed: recorded when dropped, whether it finished or was abandoned.
pub(crate) struct Timed {
    kind: Kind,
    start: Instant,
}

impl Timed {
    /// Starts timing a call of `kind`.
    #[inline]
    pub(crate) fn start(kind: Kind) -> Self {
        Timed {
            kind,
            start: Instant::now(),
        }
    }

    /// Ends the timing with the call's result, counting it as an error if it is one.
    #[inline]
    pub(crate) fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            if let Some(errors) = STORE.errors.get(self.kind as usize) {
                errors.fetch_add(1, Relaxed);
            }
        }
        result
    }
}

impl Drop for Timed {
    #[inline]
    fn drop(&mut self) {
        if let Some(latency) = STORE.latency.get(self.kind as usize) {
            latency.observe(self.start.elapsed());
        }
    }
}

/// Writes `oauth_store_operation_duration_seconds`, `oauth_store_errors_total`, and on
/// PostgreSQL the pool's gauges and `oauth_revocation_view_age_seconds`.
#[derive(Debug)]
pub(crate) struct StoreCollector {
    pub(crate) store: Arc<AnyStore>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(
            "oauth_store_operation_duration_seconds",
            "Time the store took to answer a call, by operation",
            None,
            MetricType::Histogram,
        )?;
        for (name, latency) in KINDS.iter().zip(&STORE.latency) {
            if let Some(snapshot) = latency.snapshot() {
                snapshot.encode(family.encode_family(&[("operation", *name)])?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "oauth_store_errors",
            "Store calls that failed (the store down, too slow, or refusing), by operation",
            None,
            MetricType::Counter,
        )?;
        for (name, errors) in KINDS.iter().zip(&STORE.errors) {
            let n = errors.load(Relaxed);
            if n > 0 {
                ConstCounter::new(n).encode(family.encode_family(&[("operation", *name)])?)?;
            }
        }
        if let AnyStore::Postgres(pg) = &*self.store {
            let status = pg.pool_status();
            for (name, help, value) in [
                (
                    "oauth_postgres_pool_max_size",
                    "Connections the pool may open",
                    status.max_size,
                ),
                (
                    "oauth_postgres_pool_size",
                    "Connections the pool has open",
                    status.size,
                ),
                (
                    "oauth_postgres_pool_available",
                    "Open connections idle in the pool",
                    status.available,
                ),
                (
                    "oauth_postgres_pool_waiting",
                    "Calls waiting for a connection",
                    status.waiting,
                ),
            ] {
                let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
                gauge.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
            }
            let batches = pg.rotation_batches();
            for (name, help, count) in [
                (
                    "oauth_postgres_rotation_batches",
                    "Statements that carried refresh-token rotations (each one transaction), \
                     by kind of rotation",
                    (|c: &BatchCounts| c.batches) as fn(&BatchCounts) -> u64,
                ),
                (
                    "oauth_postgres_batched_rotations",
                    "Refresh-token rotations those statements carried, by kind of rotation \
                     (divided by the batches: their mean size)",
                    |c: &BatchCounts| c.rotations,
                ),
                (
                    "oauth_postgres_split_batches",
                    "Batches of rotations aborted to break a deadlock with a revocation, whose \
                     rotations then ran one by one",
                    |c: &BatchCounts| c.split,
                ),
            ] {
                let mut family =
                    encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                for (kind, counts) in [
                    ("public", &batches.public),
                    ("confidential", &batches.confidential),
                ] {
                    ConstCounter::new(count(counts))
                        .encode(family.encode_family(&[("kind", kind)])?)?;
                }
            }
            let lag = ConstGauge::new(pg.revocation_lag().as_secs_f64());
            lag.encode(encoder.encode_descriptor(
                "oauth_revocation_view_age_seconds",
                "Time since this node's revocation view was last known to hold every revocation \
                 (its last catch-up with the database); past 30 s it refuses every access token",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_names_itself() {
        assert_eq!(KINDS[Kind::GetClient as usize], "get_client");
        assert_eq!(KINDS[Kind::UserClaims as usize], "user_claims");
        assert_eq!(KINDS[Kind::Change as usize], "change");
        assert_eq!(Kind::Other as usize, KINDS.len() - 1);
    }
}
