//! Refresh tokens: the read, the public client's read-and-rotate, and the rotations.
//!
//! A refresh is the most frequent write of a deployment, so each of these is one statement in its
//! own transaction (one round trip) wherever it can be, and a public client's refresh is one
//! statement in all ([`Op::RefreshPublic`]).
//!
//! # Why each is race-free at READ COMMITTED
//!
//! (The rule that matters is in [`ops`](crate::ops): a conditional `UPDATE` that meets a row
//! another transaction is changing waits for it, then evaluates its `WHERE` again on the row's
//! newest committed version.)
//!
//! - [`Op::RotateRefresh`]: one statement ([`ROTATE`]). First `SELECT ... FROM grants WHERE
//!   grant_id = $1 AND revoked_at IS NULL FOR UPDATE`: it locks the grant row, and a revocation
//!   (which updates the same row) is therefore wholly before the rotation (after waiting for it,
//!   the lock re-checks the newest row version: no row, no swap) or wholly after it (it revokes
//!   the new token's grant too). Then `UPDATE refresh_tokens SET rotated_at, successor WHERE hash
//!   = old AND grant_id AND rotated_at IS NULL` and the grant lock held: the compare-and-swap on
//!   the token, of which exactly one concurrent rotation matches (a loser waits on the grant lock,
//!   then finds the row changed and re-checks `rotated_at IS NULL` on its newest version, which
//!   fails). Only what that update returned extends the grant (when the new token outlives it:
//!   `oauth_proto::store::GRANT_EXTENSION`, so most rotations write no grant row) and inserts the
//!   successor, so a rotation that matched nothing stores nothing, not even the grant's new expiry. A statement
//!   PostgreSQL aborted to break a deadlock runs again, as transactions do.
//! - [`Op::GetRefresh`] (one statement joining the token, its grant, the grant's client and the
//!   revocation status, so all in one snapshot) needs no lock: a revocation or a credential
//!   change (which revokes the subject's grants in the transaction that bumps the version) that
//!   commits after that snapshot is found by the rotation's grant lock (no live grant, no swap:
//!   the engine then refuses and revokes), and one that commits before it is in the snapshot,
//!   together with any grant a racing redemption stored after it (the engine refuses a grant
//!   older than the subject's credential version).
//! - [`Op::RefreshPublic`]: both in one statement ([`REFRESH_PUBLIC`]). Its `found` part is the
//!   read above, in the statement's snapshot, and it is what the op answers. The op's conditions
//!   on the token (active, not expired), its grant (not revoked, of the client named) and the
//!   client (registered) are checked on that read, and only a token that meets them goes on to
//!   [`ROTATE`]'s grant lock and compare-and-swap, which re-check what can change (the grant's
//!   revocation, the token's state) on the newest row versions. A client's deletion revokes its
//!   grants, so the lock catches one that commits after the snapshot too.
//! - [`Op::RetryRotation`]: the same grant lock, then the successor's compare-and-swap (`WHERE
//!   hash = successor AND grant_id AND rotated_at IS NULL`, so of a retry and a use of the
//!   successor, or of two retries, exactly one matches), then the old token's successor is
//!   repointed (`WHERE successor = $successor`), then the new token is inserted.
//!
//! # Found by the hash, never by the grant
//!
//! Every statement finds the token by `hash` (the primary key) and only then checks its grant,
//! written `(grant_id = ...) IS TRUE` so that the planner cannot match it to the
//! `refresh_tokens_grant` index: both lookups are estimated at one row, and a plan that took
//! that index (generic plans did) walks every token the grant ever had, since rotated tokens are
//! kept until they expire (for reuse detection). A refresh then cost more the older its grant:
//! after a few thousand rotations of one grant, several times a fresh one's. A test checks the
//! generic plan of each statement ([`BY_HASH`]).

use std::sync::Arc;

use deadpool_postgres::{Client, GenericClient, Transaction};
use oauth_proto::store::{
    RefreshGrant, RefreshRecord, Reply, RevocationStatus, StoreError, StoreErrorKind, Successor,
    GRANT_EXTENSION,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::codec::{self, from_time, time};
use crate::ops::version;
use crate::sql::{execute, query_opt, store_error, transaction, Failure, Outcome, ATTEMPTS};

/// The columns and joins of a refresh token's read: the token, its grant, the grant's client
/// and the revocation status of the grant and its subject (what `Op::GetClient` and
/// `Op::RevocationStatus` would read), for the token whose hash is `$1`.
macro_rules! read_refresh {
    () => {
        "SELECT r.hash, r.grant_id, r.issued_at, r.expires_at, r.rotated_at, r.successor,
                g.body AS grant_body, g.expires_at AS grant_expires_at,
                g.revoked_at AS grant_revoked_at, g.client_id AS grant_client_id,
                c.body, c.unused_expires_at,
                a.revoked_at AS access_revoked_at, s.credential_version
         FROM refresh_tokens r JOIN grants g ON g.grant_id = r.grant_id
              LEFT JOIN clients c ON c.client_id = g.client_id
              LEFT JOIN revoked_access a ON a.grant_id = r.grant_id
              LEFT JOIN subjects s ON s.subject = g.subject
         WHERE r.hash = $1"
    };
}

/// [`Op::GetRefresh`]: the token whose hash is `hash`, with its grant, client and status.
pub(crate) async fn read(
    db: &impl GenericClient,
    hash: &[u8],
) -> Result<Option<RefreshGrant>, Failure> {
    let row = query_opt(db, "reading a refresh token", read_refresh!(), &[&hash]).await?;
    Ok(row.map(|r| found(&r)).transpose()?)
}

/// A row of [`read_refresh!`] as [`Op::GetRefresh`]'s answer.
fn found(r: &Row) -> Result<RefreshGrant, StoreError> {
    let registered = r.get::<_, Option<&[u8]>>("body").is_some();
    let revoked: Option<i64> = r.get("access_revoked_at");
    let credential: Option<i64> = r.get("credential_version");
    Ok(RefreshGrant {
        token: codec::refresh(r)?,
        grant: codec::grant(r)?,
        client: registered
            .then(|| codec::client(r).map(Arc::new))
            .transpose()?,
        status: RevocationStatus {
            access_revoked_at: revoked.map(from_time),
            credential_version: credential.map_or(0, version),
        },
    })
}

/// [`Op::RefreshPublic`] in one statement (the module docs say why it is race-free): [`read_refresh!`]
/// as `found`, then [`ROTATE`]'s steps for a token that meets the op's conditions. `$1` the
/// presented token's hash, `$2` the client named, `$3` the successor's issue time (the rotation
/// time), `$4` its hash, `$5` its expiry, `$6` the grant's expiry when it must be extended
/// ([`extension`]). Always one row: `found`'s columns (null when the token is
/// unknown) and the rows the rotation changed.
const REFRESH_PUBLIC: &str = concat!(
    "WITH found AS (",
    read_refresh!(),
    "),
     live AS (
         SELECT grant_id FROM grants
         WHERE grant_id = (SELECT grant_id FROM found
                           WHERE rotated_at IS NULL AND $3 < expires_at
                             AND grant_revoked_at IS NULL AND grant_client_id = $2
                             AND body IS NOT NULL)
           AND revoked_at IS NULL
         FOR UPDATE),
     retired AS (
         UPDATE refresh_tokens SET rotated_at = $3, successor = $4
         WHERE hash = $1 AND (grant_id = (SELECT grant_id FROM live)) IS TRUE
           AND rotated_at IS NULL
         RETURNING grant_id),
     extended AS (
         UPDATE grants SET expires_at = $6
         WHERE grant_id IN (SELECT grant_id FROM retired) AND expires_at < $5
         RETURNING 1),
     stored AS (
         INSERT INTO refresh_tokens (hash, grant_id, issued_at, expires_at, rotated_at, successor)
         SELECT $4, grant_id, $3, $5, NULL, NULL FROM retired
         RETURNING 1)
     SELECT found.*, (SELECT count(*) FROM retired) AS retired,
            (SELECT count(*) FROM extended) AS extended, (SELECT count(*) FROM stored) AS stored
     FROM (SELECT) AS one LEFT JOIN found ON true"
);

/// [`Op::RefreshPublic`].
pub(crate) async fn refresh_public(
    client: &Client,
    hash: &[u8],
    client_id: &str,
    new: &Successor,
) -> Result<Reply, StoreError> {
    let params: [&(dyn ToSql + Sync); 6] = [
        &hash,
        &client_id.as_bytes(),
        &time(new.issued_at),
        &&new.hash.0[..],
        &time(new.expires_at),
        &extension(new.expires_at),
    ];
    let row = retried(
        client,
        "reading and rotating a refresh token",
        REFRESH_PUBLIC,
        &params,
    )
    .await?
    .ok_or_else(|| corrupt("the read-and-rotate statement answered no row".to_owned()))?;
    let rotated = changed(&row, "retired", "extended", "stored")?;
    let found = match row.get::<_, Option<&[u8]>>("hash") {
        Some(_) => Some(found(&row)?),
        None => None,
    };
    Ok(Reply::RefreshRotated { found, rotated })
}

/// [`Op::RotateRefresh`] (no `successor`) or [`Op::RetryRotation`] (the successor `old` was
/// rotated to), as the module docs explain.
pub(crate) async fn rotate(
    client: &mut Client,
    old: &[u8],
    successor: Option<&[u8]>,
    new: RefreshRecord,
) -> Result<Reply, StoreError> {
    if successor.is_none() {
        return rotate_once(client, old, &new).await.map(Reply::Swapped);
    }
    let swapped = transaction!(client, |tx| { rotate_in(&tx, old, successor, &new).await? })?;
    Ok(Reply::Swapped(swapped))
}

/// The rotation of `old` into `new`, in one statement (the module docs say why it is race-free).
/// `$1` grant, `$2` the new token's expiry, `$3` rotation time, `$4` new hash, `$5` old hash,
/// `$6`..`$9` the new token's issue time, expiry, rotation time and successor, `$10` the grant's
/// expiry when it must be extended ([`extension`]).
const ROTATE: &str = "WITH live AS (
         SELECT grant_id FROM grants WHERE grant_id = $1 AND revoked_at IS NULL FOR UPDATE),
     retired AS (
         UPDATE refresh_tokens SET rotated_at = $3, successor = $4
         WHERE hash = $5 AND (grant_id = $1) IS TRUE AND rotated_at IS NULL
           AND EXISTS (SELECT 1 FROM live)
         RETURNING grant_id),
     extended AS (
         UPDATE grants SET expires_at = $10
         WHERE grant_id IN (SELECT grant_id FROM retired) AND expires_at < $2
         RETURNING 1),
     stored AS (
         INSERT INTO refresh_tokens (hash, grant_id, issued_at, expires_at, rotated_at, successor)
         SELECT $4, grant_id, $6, $7, $8, $9 FROM retired
         RETURNING 1)
     SELECT (SELECT count(*) FROM retired) AS retired, (SELECT count(*) FROM extended) AS extended,
            (SELECT count(*) FROM stored) AS stored";

async fn rotate_once(client: &Client, old: &[u8], new: &RefreshRecord) -> Result<bool, StoreError> {
    let grant = &new.grant_id.0[..];
    let new_hash = &new.hash.0[..];
    let (rotated_at, successor) = codec::refresh_state(&new.state);
    let params: [&(dyn ToSql + Sync); 10] = [
        &grant,
        &time(new.expires_at),
        &time(new.issued_at),
        &new_hash,
        &old,
        &time(new.issued_at),
        &time(new.expires_at),
        &rotated_at,
        &successor,
        &extension(new.expires_at),
    ];
    match retried(client, "rotating a refresh token", ROTATE, &params).await? {
        Some(row) => changed(&row, "retired", "extended", "stored"),
        None => Ok(false),
    }
}

/// Runs a statement that is its own transaction, again when PostgreSQL aborted it to break a
/// deadlock (nothing of it was applied), up to [`ATTEMPTS`] times.
async fn retried(
    client: &Client,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let mut attempt = 1;
    loop {
        match query_opt(client, what, sql, params).await {
            Ok(row) => return Ok(row),
            Err(Failure::Db(_, ref e)) if crate::sql::is_retryable(e) && attempt < ATTEMPTS => {
                attempt += 1
            }
            Err(f) => return Err(store_error(f)),
        }
    }
}

/// The grant's `expires_at` a rotation into a token expiring at `token_expires_at` sets when the
/// grant does not cover that token yet ([`GRANT_EXTENSION`]).
fn extension(token_expires_at: u64) -> i64 {
    time(token_expires_at.saturating_add(GRANT_EXTENSION))
}

/// Whether a rotation statement swapped, from the rows it changed: none, or exactly one token
/// rotated out and one successor stored (and the grant extended or not).
fn changed(row: &Row, token: &str, grant: &str, successor: &str) -> Result<bool, StoreError> {
    let counts: (i64, i64, i64) = (row.get(token), row.get(grant), row.get(successor));
    match counts {
        (0, 0, 0) => Ok(false),
        (1, 0 | 1, 1) => Ok(true),
        other => Err(corrupt(format!(
            "a rotation changed {other:?} rows (token, grant, successor)"
        ))),
    }
}

fn corrupt(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, message)
}

/// [`Op::RetryRotation`]'s compare-and-swap on the successor: `$1` its hash, `$2` the grant, `$3`
/// the rotation time, `$4` the new token's hash.
const RETIRE: &str = "UPDATE refresh_tokens SET rotated_at = $3, successor = $4
     WHERE hash = $1 AND (grant_id = $2) IS TRUE AND rotated_at IS NULL";

/// [`Op::RetryRotation`]'s repointing of the rotated token presented again: `$1` its hash, `$2`
/// the grant, `$3` the new token's hash, `$4` the successor it had.
const REPOINT: &str = "UPDATE refresh_tokens SET successor = $3
     WHERE hash = $1 AND (grant_id = $2) IS TRUE AND rotated_at IS NOT NULL AND successor = $4";

/// The statements that find a refresh token by its hash, by name, for the test that checks each
/// plan finds it by the primary key (see the module docs).
#[cfg(feature = "testing")]
pub(crate) const BY_HASH: [(&str, &str); 5] = [
    ("read", read_refresh!()),
    ("refresh_public", REFRESH_PUBLIC),
    ("rotate", ROTATE),
    ("retire", RETIRE),
    ("repoint", REPOINT),
];

/// The statements of [`rotate`], in its transaction.
async fn rotate_in(
    tx: &Transaction<'_>,
    old: &[u8],
    successor: Option<&[u8]>,
    new: &RefreshRecord,
) -> Result<Outcome<bool>, Failure> {
    let grant = &new.grant_id.0[..];
    let new_hash = &new.hash.0[..];
    let at = time(new.issued_at);
    let live = execute(
        tx,
        "extending a grant",
        "UPDATE grants SET expires_at = CASE WHEN expires_at < $2 THEN $3 ELSE expires_at END
         WHERE grant_id = $1 AND revoked_at IS NULL",
        &[&grant, &time(new.expires_at), &extension(new.expires_at)],
    )
    .await?;
    if live != 1 {
        return Ok(Outcome::Abandon(false));
    }
    // The token that is rotated out now: `old`, or on a retry the successor it got.
    let retired = execute(
        tx,
        "rotating a refresh token",
        RETIRE,
        &[&successor.unwrap_or(old), &grant, &at, &new_hash],
    )
    .await?;
    if retired != 1 {
        return Ok(Outcome::Abandon(false));
    }
    if let Some(successor) = successor {
        let repointed = execute(
            tx,
            "repointing a rotated refresh token",
            REPOINT,
            &[&old, &grant, &new_hash, &successor],
        )
        .await?;
        if repointed != 1 {
            return Ok(Outcome::Abandon(false));
        }
    }
    crate::effects::put_refresh(tx, new).await?;
    Ok(Outcome::Commit(true))
}
