//! The registration quota of all nodes together, kept in the database.
//!
//! A registration is a database write anyway, so the quota is taken where it is stored:
//! [`PostgresStore::take_registration`] runs one READ COMMITTED transaction over two rows of
//! `counters`, the address's and the total's, each a window that starts at its first
//! registration (as the in-memory limiter counts). It upserts each row in turn (an `INSERT ...
//! ON CONFLICT DO UPDATE`, which locks the row and starts a new window when the old one ended),
//! so concurrent takes on any nodes wait for each other on the rows they share; then it adds one
//! to both only if neither is used up. **So the quota is exact across any number of nodes**: in
//! a window, at most `per_address` registrations from one address and `total` from all are
//! admitted. The rows are locked in one order (address, then total), so two takes never
//! deadlock; the store's purge drops rows whose window ended.

use oauth_proto::store::StoreError;

use deadpool_postgres::Transaction;

use crate::codec::{from_time, time};
use crate::error::from_pool;
use crate::sql::{execute, query_opt, transaction, Failure, Outcome};
use crate::PostgresStore;

/// The counter key of the total: no address key has this form.
const TOTAL: &[u8] = b"oauth-server/registrations/all";

/// The counter key of one address (its bytes as the limiter counts them).
fn address_key(source: &[u8]) -> Vec<u8> {
    let mut key = b"oauth-server/registrations/".to_vec();
    key.extend_from_slice(source);
    key
}

/// A registration quota: how many per window.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// From one address.
    pub per_address: u32,
    /// From all addresses together.
    pub total: u32,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl PostgresStore {
    /// Takes one registration from the quota of `source` (an address as the limiter counts it,
    /// as bytes) and from the total, at `now`; when either is used up nothing is taken and the
    /// answer is the seconds until it renews (see the module docs).
    pub async fn take_registration(
        &self,
        source: Vec<u8>,
        quota: Quota,
        now: u64,
    ) -> Result<Result<(), u64>, StoreError> {
        self.run(move |shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            let key = address_key(&source);
            transaction!(client, |tx| take_in(&tx, &key, quota, now).await?)
        })
        .await
    }
}

async fn take_in(
    tx: &Transaction<'_>,
    key: &[u8],
    quota: Quota,
    now: u64,
) -> Result<Outcome<Result<(), u64>>, Failure> {
    let ends = time(now.saturating_add(quota.window_secs));
    let mut wait = None;
    for (key, max) in [(key, quota.per_address), (TOTAL, quota.total)] {
        let row = query_opt(
            tx,
            "reading a registration quota",
            "INSERT INTO counters AS c (key, count, expires_at) VALUES ($1, 0, $2)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN c.expires_at <= $3 THEN 0 ELSE c.count END,
                 expires_at = CASE WHEN c.expires_at <= $3 THEN EXCLUDED.expires_at
                                   ELSE c.expires_at END
             RETURNING count, expires_at",
            &[&key, &ends, &time(now)],
        )
        .await?;
        let (count, expires_at): (i64, i64) = row.map_or((0, ends), |r| (r.get(0), r.get(1)));
        if count >= i64::from(max) {
            let secs = from_time(expires_at).saturating_sub(now).max(1);
            wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
        }
    }
    if let Some(secs) = wait {
        // The new windows the upserts may have started stand; nothing was taken.
        return Ok(Outcome::Commit(Err(secs)));
    }
    execute(
        tx,
        "taking a registration",
        "UPDATE counters SET count = count + 1 WHERE key = $1 OR key = $2",
        &[&key, &TOTAL],
    )
    .await?;
    Ok(Outcome::Commit(Ok(())))
}
