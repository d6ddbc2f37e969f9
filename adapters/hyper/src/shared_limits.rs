//! The engine's limits on guessing and registering, kept for all nodes together when the server
//! runs on PostgreSQL (on the file and memory stores one process holds them all already).
//!
//! # Failed guesses: every node counts every node's failures
//!
//! Each node keeps its own limiter ([`oauth_proto::throttle`]) and counts its own failures at
//! once. Every [`INTERVAL`] (100 ms) it also takes the failures recorded since the last time
//! (coalesced per address and account: an address and an account digest, never a name) and sends
//! them in batches of at most [`BATCH`] (64) to every other node over PostgreSQL's `NOTIFY`
//! (`oauth_store_postgres`'s `failures` module); each node counts what it hears as its own.
//!
//! **The bound.** While the nodes reach the database, a failure counts on every node within one
//! interval plus the delivery (milliseconds). So an attacker spreading guesses over N nodes gets
//! the single-node budget (`pair_max_failures` guesses of one account from one address,
//! `address_max_failures` in all from one address), plus at most what each of the other N - 1
//! nodes lets through within one interval before it hears of the others' failures. Guesses made
//! further apart than an interval are counted exactly as on a single node. During an outage of
//! the database each node counts only its own (as if alone), and nothing lost accumulates: the
//! limiter forgets failures after its window anyway. Successes are not shared: they only forget
//! failures, so a node that did not hear of one delays a little longer, never refuses anyone.
//!
//! # Registrations: one quota for all nodes, in the database
//!
//! A registration is a database write anyway, so the per-address and total quotas
//! (`registrations_per_address`, `registrations_total` per `registration_window_secs`) are
//! taken there, in one transaction over two counter rows: **exact across any number of nodes**
//! (`oauth_store_postgres`'s `quota` module says why).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use oauth_proto::store::StoreError;
use oauth_proto::throttle::{SharedFailure, Throttle};
use oauth_store_postgres::{PostgresStore, Quota};

use crate::app::App;
use crate::clock;
use crate::pages::shared_sessions::address_bytes;
use crate::store::AnyStore;

/// How often a node sends the failures it recorded.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Failures per batch at most (one `NOTIFY` each, about 3 KB).
pub const BATCH: usize = 64;

/// The version prefix of a batch.
const BATCH_V1: &str = "1:";

fn encode(failures: &[SharedFailure]) -> String {
    let bytes: Vec<u8> = failures.iter().flat_map(|f| f.to_bytes()).collect();
    format!(
        "{BATCH_V1}{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    )
}

/// The failures of a batch; anything that does not read is skipped (a newer node's form).
fn decode(payload: &str) -> Vec<SharedFailure> {
    let Some(bytes) = payload.strip_prefix(BATCH_V1).and_then(|b| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b)
            .ok()
    }) else {
        return Vec::new();
    };
    bytes
        .chunks_exact(SharedFailure::BYTES)
        .filter_map(SharedFailure::from_bytes)
        .collect()
}

/// How long a starting node waits for the exchange to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

/// Starts sharing this node's failures with the other nodes on `pg`, and counting theirs (see
/// the module docs), and waits until it hears the others (5 s at most), so that a node counts
/// every failure made elsewhere from its first request on; runs as long as the runtime.
pub async fn share_failures(throttle: &Arc<Throttle>, pg: &PostgresStore) {
    throttle.share_failures();
    let hearing = throttle.clone();
    let exchange = pg.exchange_failures(Arc::new(move |payload: &str| {
        let now = clock::now();
        for failure in decode(payload) {
            hearing.record_remote_failure(&failure, now);
        }
    }));
    if !exchange.listening(LISTEN_WAIT).await {
        tracing::warn!(
            "not yet hearing the other nodes' failed guesses; counting this node's own until then"
        );
    }
    let throttle = throttle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                let batch = throttle.take_shared_failures(BATCH);
                if batch.is_empty() {
                    break;
                }
                if !exchange.send(encode(&batch)) {
                    tracing::debug!("failure batch dropped: the database is not reachable");
                }
                if batch.len() < BATCH {
                    break;
                }
            }
        }
    });
}

/// Takes one registration from `source`'s quota and the server's: in the database on
/// PostgreSQL (see the module docs), in the engine's limiter otherwise. `Ok(Err(secs))` when
/// used up, with the seconds until it renews.
pub async fn take_registration(
    app: &App,
    source: IpAddr,
    now: u64,
) -> Result<Result<(), u64>, StoreError> {
    let throttle = app.engine.throttle();
    match &*app.store {
        AnyStore::Postgres(pg) => {
            let c = throttle.config();
            let quota = Quota {
                per_address: c.registrations_per_address,
                total: c.registrations_total,
                window_secs: c.registration_window_secs,
            };
            pg.take_registration(address_bytes(source), quota, now)
                .await
        }
        _ => Ok(throttle.take_registration(source, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::throttle::ThrottleConfig;

    #[test]
    fn a_full_batch_fits_one_notification_and_reads_back() {
        let t = Throttle::new(ThrottleConfig::default());
        t.share_failures();
        for i in 0..BATCH as u8 {
            t.record_failure(IpAddr::from([192, 0, 2, i]), Some("alice"), 0);
        }
        let batch = t.take_shared_failures(BATCH);
        assert_eq!(batch.len(), BATCH);
        let payload = encode(&batch);
        assert!(
            payload.len() <= oauth_store_postgres::MAX_PAYLOAD,
            "{}",
            payload.len()
        );
        assert_eq!(decode(&payload), batch);
        assert!(decode("2:AAAA").is_empty(), "another version");
        assert!(decode("1:!!").is_empty());
    }
}
