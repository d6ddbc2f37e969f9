//! Purging expired records in bounded batches.
//!
//! Each batch is one statement in its own transaction that deletes at most [`BATCH`] rows of one
//! table (`DELETE ... WHERE ctid = ANY(ARRAY(SELECT ctid ... LIMIT n))`), found through the
//! table's expiry index; the loop goes on while a batch was full. So a purge never holds row locks
//! for more than one batch, and the requests in between run as usual. A dead grant's batch also
//! deletes the grant's legacy refresh tokens (`legacy_refresh_tokens`, by its grant index); its
//! refresh family is columns of its row and goes with it. The outer `WHERE` repeats the
//! expiry condition, so a row that a concurrent transaction changed meanwhile (a rotation
//! extending a grant) is checked again on its newest version and kept if it no longer qualifies.
//!
//! A family whose current token expired while its grant lives on (for at most
//! `GRANT_EXTENSION` after the token, unless the grant was stored with a longer life) is cleared
//! from the grant's row. No index can find those: one on `refresh_expires_at` would change at
//! every rotation and make it a non-HOT update (the point of the family's design, see
//! [`refresh`](crate::refresh)). So that step walks the grants in primary key order, [`BATCH`]
//! at a time from where the last batch ended: one pass over the grants per purge, as the memory
//! store's purge visits every record. Its `UPDATE` re-checks the expiry on the newest row
//! version, so a family a rotation renewed meanwhile stays.
//!
//! What goes is what the memory store drops (the contract's `purge`): codes, legacy refresh
//! tokens, device authorizations and counters that expired at or before `now` (and the reference
//! server's browser sessions and pages, [`pages`](crate::pages)); refresh families whose current
//! token expired; grants that expired or were revoked, with their families and legacy tokens;
//! legacy tokens whose grant is gone; access revocations kept until `now` or before; clients
//! registered dynamically and never used before their `unused_expires_at`, with their remembered
//! consents. Credential versions, users and other consents are never purged.

use deadpool_postgres::Client;
use oauth_proto::store::{PurgeStats, StoreError};

use tokio_postgres::types::ToSql;

use crate::codec::time;
use crate::sql::{execute, query_opt, store_error};

/// Rows deleted per statement at most.
pub(crate) const BATCH: i64 = 1000;

/// The batch statement deleting the rows of `$table` whose `$column` is at or before `$1`, at
/// most `$2` of them: a constant, written out at compile time (no SQL is built at run time).
macro_rules! expired {
    ($table:literal, $column:literal) => {
        concat!(
            "DELETE FROM ",
            $table,
            " WHERE ctid = ANY(ARRAY(SELECT ctid FROM ",
            $table,
            " WHERE ",
            $column,
            " <= $1 LIMIT $2)) AND ",
            $column,
            " <= $1"
        )
    };
}

/// The tables whose rows simply expire: what each batch is called, and its statement.
const EXPIRING: [(&str, &str); 7] = [
    ("purging codes", expired!("codes", "expires_at")),
    (
        "purging legacy refresh tokens",
        expired!("legacy_refresh_tokens", "expires_at"),
    ),
    (
        "purging device authorizations",
        expired!("devices", "expires_at"),
    ),
    (
        "purging access revocations",
        expired!("revoked_access", "keep_until"),
    ),
    ("purging counters", expired!("counters", "expires_at")),
    (
        "purging browser sessions",
        expired!("page_sessions", "expires_at"),
    ),
    ("purging pages", expired!("pages", "expires_at")),
];

/// The parameters of a batch: the time (`$1`, absent for statements that need none) and the
/// batch size (the last).
fn params(now: &Option<i64>) -> Vec<&(dyn ToSql + Sync)> {
    match now {
        Some(now) => vec![now, &BATCH],
        None => vec![&BATCH],
    }
}

/// Deletes in batches with `sql` until a batch is not full.
async fn batches(
    client: &Client,
    what: &'static str,
    sql: &str,
    now: Option<i64>,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let n = execute(client, what, sql, &params(&now))
            .await
            .map_err(store_error)?;
        removed += n;
        if n < BATCH as u64 {
            return Ok(removed);
        }
    }
}

/// Deletes dead grants with `sql` (which returns how many grants it deleted, how many of them
/// had a refresh family, and how many legacy refresh tokens it deleted) in batches until a batch
/// is not full; the same for unused clients and their consents (no families).
async fn grant_batches(
    client: &Client,
    what: &'static str,
    sql: &str,
    now: Option<i64>,
) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let row = query_opt(client, what, sql, &params(&now))
            .await
            .map_err(store_error)?;
        let (grants, families, tokens): (i64, i64, i64) =
            row.map_or((0, 0, 0), |r| (r.get(0), r.get(1), r.get(2)));
        removed += (grants + families + tokens) as u64;
        if grants < BATCH {
            return Ok(removed);
        }
    }
}

/// One batch of the walk that clears expired refresh families (see the module docs): `$1` now,
/// `$2` the last grant id of the previous batch (empty for the first), `$3` the batch size.
/// Answers the batch's last grant id, its size, and how many families it cleared.
const EXPIRED_FAMILIES: &str = "WITH batch AS (
         SELECT grant_id FROM grants WHERE grant_id > $2 ORDER BY grant_id LIMIT $3),
     cleared AS (
         UPDATE grants g SET refresh_family = NULL, refresh_current = NULL,
             refresh_issued_at = NULL, refresh_expires_at = NULL, refresh_previous = NULL,
             refresh_previous_at = NULL
         FROM batch b
         WHERE g.grant_id = b.grant_id AND g.refresh_expires_at <= $1
         RETURNING 1)
     SELECT (SELECT grant_id FROM batch ORDER BY grant_id DESC LIMIT 1),
            (SELECT count(*) FROM batch),
            (SELECT count(*) FROM cleared)";

/// Clears the refresh families whose current token expired at or before `now`, walking the
/// grants a batch at a time.
async fn expired_families(client: &Client, now: i64) -> Result<u64, StoreError> {
    let mut removed = 0;
    let mut after: Vec<u8> = Vec::new();
    loop {
        let row = query_opt(
            client,
            "purging expired refresh families",
            EXPIRED_FAMILIES,
            &[&now, &after, &BATCH],
        )
        .await
        .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(removed);
        };
        let (last, walked, cleared): (Option<Vec<u8>>, i64, i64) =
            (row.get(0), row.get(1), row.get(2));
        removed += cleared as u64;
        match last {
            Some(last) if walked == BATCH => after = last,
            _ => return Ok(removed),
        }
    }
}

/// Purges everything that expired at or before `now`.
pub(crate) async fn purge(client: &Client, now: u64) -> Result<PurgeStats, StoreError> {
    let now = time(now);
    let mut removed = 0;
    for (what, sql) in EXPIRING {
        removed += batches(client, what, sql, Some(now)).await?;
    }
    removed += expired_families(client, now).await?;
    removed += grant_batches(
        client,
        "purging expired grants",
        "WITH dead AS (
             DELETE FROM grants WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM grants WHERE expires_at <= $1 LIMIT $2)) AND expires_at <= $1
             RETURNING grant_id, refresh_current),
         tokens AS (
             DELETE FROM legacy_refresh_tokens WHERE grant_id IN (SELECT grant_id FROM dead)
             RETURNING 1)
         SELECT (SELECT count(*) FROM dead), (SELECT count(refresh_current) FROM dead),
                (SELECT count(*) FROM tokens)",
        Some(now),
    )
    .await?;
    removed += grant_batches(
        client,
        "purging revoked grants",
        "WITH dead AS (
             DELETE FROM grants WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM grants WHERE revoked_at IS NOT NULL LIMIT $1))
               AND revoked_at IS NOT NULL
             RETURNING grant_id, refresh_current),
         tokens AS (
             DELETE FROM legacy_refresh_tokens WHERE grant_id IN (SELECT grant_id FROM dead)
             RETURNING 1)
         SELECT (SELECT count(*) FROM dead), (SELECT count(refresh_current) FROM dead),
                (SELECT count(*) FROM tokens)",
        None,
    )
    .await?;
    removed += batches(
        client,
        "purging legacy refresh tokens of missing grants",
        "DELETE FROM legacy_refresh_tokens r WHERE ctid = ANY(ARRAY(
             SELECT t.ctid FROM legacy_refresh_tokens t
             WHERE NOT EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = t.grant_id)
             LIMIT $1))
           AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.grant_id = r.grant_id)",
        None,
    )
    .await?;
    // A purged client's remembered consents go in the same statement (the clients' rows say
    // which, and they are gone after it); counted like a grant's legacy refresh tokens.
    removed += grant_batches(
        client,
        "purging unused clients",
        "WITH gone AS (
             DELETE FROM clients WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM clients WHERE unused_expires_at <= $1 LIMIT $2))
               AND unused_expires_at <= $1
             RETURNING client_id),
         consents AS (
             DELETE FROM consents WHERE client_id IN (SELECT client_id FROM gone)
             RETURNING 1)
         SELECT (SELECT count(*) FROM gone), 0::bigint, (SELECT count(*) FROM consents)",
        Some(now),
    )
    .await?;
    Ok(PurgeStats { removed })
}
