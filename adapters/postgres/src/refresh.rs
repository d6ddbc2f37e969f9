//! Refresh tokens: the read, the public client's read-and-rotate, the rotation, and the write of
//! a new family.
//!
//! A refresh is the most frequent write of a deployment, so each of these is one statement (one
//! round trip, its own transaction), and a public client's refresh is one statement in all
//! ([`Op::RefreshPublic`]).
//!
//! # One family in the grant's row, found by the grant id the token names
//!
//! A grant's refresh tokens are one [`RefreshFamily`] kept in the `refresh_*` columns of the
//! grant's own row: the family-secret hash, the current token (hash, issue time, expiry) and the
//! token it replaced (hash, rotation time). A refresh token names its grant
//! (`oauth_proto::refresh_token`), so every statement finds the row by `grants_pkey`, and a
//! rotation is one `UPDATE` of that row. Reuse of an older token is told apart by the family
//! secret the token carries (the engine's job), so nothing of a rotated token but the one
//! previous is kept. The former design inserted a row per token, kept every rotated one until it
//! expired (three index entries each) and updated two rows per rotation; now a rotation changes
//! no indexed column (see below), so PostgreSQL makes it a HOT update: a new row version on the
//! same page, no index entry at all, one WAL record, pruned in place. That is what pgbench's own
//! one-row update costs, which is the bound a refresh is measured against (issue 19).
//!
//! The one indexed column a rotation may change is the grant's `expires_at` (`grants_expiry`):
//! only when the new token outlives the grant, and then by
//! [`GRANT_EXTENSION`](oauth_proto::store::GRANT_EXTENSION) past it, so a grant refreshed every
//! hour takes a non-HOT update about once a day. Otherwise the statement sets `expires_at` to its
//! own value, which PostgreSQL sees as unchanged (it compares the indexed columns' values). The
//! `grants` table has a fillfactor below 100 (migration 6) so that pages have room for those
//! new row versions.
//!
//! Tokens issued before families carry no grant id: [`RefreshKey::Legacy`] finds them by hash in
//! `legacy_refresh_tokens` (filled by migration 6, never inserted into again, purged as its rows
//! expire), which leads to the grant's row.
//!
//! # Why each is race-free at READ COMMITTED
//!
//! (The rule that matters is in [`ops`](crate::ops): a conditional `UPDATE` that meets a row
//! another transaction is changing waits for it, then evaluates its `WHERE` again on the row's
//! newest committed version.)
//!
//! - [`Op::RotateRefresh`]: one `UPDATE grants ... WHERE grant_id = $1 AND refresh_current =
//!   from AND revoked_at IS NULL` ([`ROTATE`]). It is the compare-and-swap: of concurrent
//!   rotations from one token, the first to lock the row swaps; every other one waits for it,
//!   re-checks its `WHERE` on the newest row version, whose current token is now another, and
//!   updates nothing. A revocation (of the grant, its client or its subject) updates the same
//!   row (`revoked_at`), so it is wholly before the rotation (which then finds `revoked_at` set:
//!   no swap) or wholly after it (and revokes the new token with its grant). The grant's
//!   extension is in the same row, so a rotation that matched nothing wrote nothing.
//! - [`Op::GetRefresh`] (one statement reading the grant's row, its client and the revocation
//!   status, so all in one snapshot) needs no lock: a revocation or a credential change (which
//!   revokes the subject's grants in the transaction that bumps the version) that commits after
//!   that snapshot is found by the rotation's `revoked_at IS NULL` on the newest row version (no
//!   swap: the engine then refuses), and one that commits before it is in the snapshot,
//!   together with any grant a racing redemption stored after it (the engine refuses a grant
//!   older than the subject's credential version).
//! - [`Op::RefreshPublic`]: [`ROTATE`]'s compare-and-swap with the op's other conditions in the
//!   same `WHERE` ([`REFRESH_PUBLIC`]): the current token unexpired, the grant of the client
//!   named, which is registered (`FROM clients`). No lock is taken before it and no CTE
//!   surrounds it: the grant's row is the only row written, so everything said of the rotation
//!   holds. A client's deletion revokes its grants, which updates the row, so one that commits
//!   while the rotation waits is seen by the re-check. Its `RETURNING` is [`GetRefresh`]'s
//!   answer after the rotation: the row's new version, the client as the statement read it, and
//!   the revocation status as scalar subqueries. When it updated nothing, [`GET_BY_GRANT`] reads
//!   the family in a new snapshot, which the contract allows: the op's conditions only ever turn
//!   false, and the engine goes on from that read as after a `GetRefresh`.
//! - [`Effect::PutRefreshFamily`](oauth_proto::store::Effect): an `UPDATE` of the grant's row
//!   in the effects' transaction, after the `PutGrant` that stored it.
//!
//! # Found by the grant's primary key, never by another index
//!
//! Every statement names the grant by `grant_id`, and the generic plans prepared statements end
//! up with must find it by `grants_pkey`. [`REFRESH_PUBLIC`] also compares the grant's client,
//! written `(client_id = ...) IS TRUE` so that the planner cannot match it to `grants_client`:
//! both are estimated at one row when clients have few grants, and a plan that walked a public
//! client's grants (it may have millions) would cost more the bigger the client. A test checks the
//! generic plan of each statement ([`BY_KEY`]).
//!
//! [`GetRefresh`]: Op::GetRefresh

use std::sync::Arc;

use deadpool_postgres::{Client, GenericClient};
#[cfg(doc)]
use oauth_proto::store::Op;
use oauth_proto::store::{
    RefreshFamily, RefreshGrant, RefreshKey, Reply, RevocationStatus, StoreError, Successor,
    GRANT_EXTENSION,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::codec::{self, from_time, time};
use crate::ops::version;
use crate::sql::{execute, query_opt, store_error, Failure};

/// The columns of a family's read: the family and the grant (of the row `g`), the grant's client
/// (of the row `c`) and the revocation status of the grant and its subject, as `Op::GetClient`
/// and `Op::RevocationStatus` would read them.
macro_rules! family_columns {
    () => {
        "g.grant_id, g.refresh_family, g.refresh_current, g.refresh_issued_at,
         g.refresh_expires_at, g.refresh_previous, g.refresh_previous_at,
         g.body AS grant_body, g.expires_at AS grant_expires_at,
         g.revoked_at AS grant_revoked_at, c.body, c.unused_expires_at,
         (SELECT a.revoked_at FROM revoked_access a WHERE a.grant_id = g.grant_id)
             AS access_revoked_at,
         (SELECT s.credential_version FROM subjects s WHERE s.subject = g.subject)
             AS credential_version"
    };
}

/// [`Op::GetRefresh`] for [`RefreshKey::Grant`]: `$1` the grant.
const GET_BY_GRANT: &str = concat!(
    "SELECT ",
    family_columns!(),
    " FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id
     WHERE g.grant_id = $1 AND g.refresh_current IS NOT NULL"
);

/// [`Op::GetRefresh`] for [`RefreshKey::Legacy`]: `$1` the hash of a token issued before
/// families.
const GET_BY_LEGACY: &str = concat!(
    "SELECT ",
    family_columns!(),
    " FROM legacy_refresh_tokens l JOIN grants g ON g.grant_id = l.grant_id
          LEFT JOIN clients c ON c.client_id = g.client_id
     WHERE l.hash = $1 AND g.refresh_current IS NOT NULL"
);

/// [`Op::GetRefresh`].
pub(crate) async fn read(
    db: &impl GenericClient,
    key: &RefreshKey,
) -> Result<Option<RefreshGrant>, Failure> {
    let row = match key {
        RefreshKey::Grant(grant) => {
            query_opt(
                db,
                "reading a refresh family",
                GET_BY_GRANT,
                &[&&grant.0[..]],
            )
            .await?
        }
        RefreshKey::Legacy(hash) => {
            query_opt(
                db,
                "reading the refresh family of an older token",
                GET_BY_LEGACY,
                &[&&hash.0[..]],
            )
            .await?
        }
    };
    Ok(row.map(|r| found(&r)).transpose()?)
}

/// A row of [`family_columns!`] as [`Op::GetRefresh`]'s answer.
fn found(r: &Row) -> Result<RefreshGrant, StoreError> {
    let registered = r.get::<_, Option<&[u8]>>("body").is_some();
    let revoked: Option<i64> = r.get("access_revoked_at");
    let credential: Option<i64> = r.get("credential_version");
    Ok(RefreshGrant {
        family: codec::family(r)?,
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

/// The grant's `expires_at` after a rotation into a token expiring at `$exp`: extended to
/// `$ext` when the grant does not cover the token yet, else its own value (which keeps the update
/// HOT). Written once for both rotations.
macro_rules! extended_expiry {
    ($grant:literal, $exp:literal, $ext:literal) => {
        concat!(
            "expires_at = CASE WHEN ",
            $grant,
            "expires_at < ",
            $exp,
            " THEN ",
            $ext,
            " ELSE ",
            $grant,
            "expires_at END"
        )
    };
}

/// [`Op::RefreshPublic`] in one statement (the module docs say why it is race-free): `$1` the
/// grant, `$2` the presented token's hash, `$3` the client named, `$4` the successor's hash,
/// `$5` its issue time (the rotation time), `$6` its expiry, `$7` the grant's expiry when it
/// must be extended ([`extension`]). One row when it rotated, none otherwise.
const REFRESH_PUBLIC: &str = concat!(
    "UPDATE grants g SET refresh_current = $4, refresh_issued_at = $5, refresh_expires_at = $6,
         refresh_previous = g.refresh_current, refresh_previous_at = $5, ",
    extended_expiry!("g.", "$6", "$7"),
    " FROM clients c
     WHERE g.grant_id = $1 AND g.refresh_current = $2 AND g.refresh_family IS NOT NULL
       AND g.revoked_at IS NULL AND $5 < g.refresh_expires_at
       AND (g.client_id = $3) IS TRUE AND c.client_id = $3
     RETURNING ",
    family_columns!()
);

/// [`Op::RefreshPublic`].
pub(crate) async fn refresh_public(
    client: &Client,
    grant_id: &[u8],
    presented: &[u8],
    client_id: &str,
    new: &Successor,
) -> Result<Reply, StoreError> {
    let params: [&(dyn ToSql + Sync); 7] = [
        &grant_id,
        &presented,
        &client_id.as_bytes(),
        &&new.hash.0[..],
        &time(new.issued_at),
        &time(new.expires_at),
        &extension(new.expires_at),
    ];
    let rotated = query_opt(
        client,
        "reading and rotating a refresh family",
        REFRESH_PUBLIC,
        &params,
    )
    .await
    .map_err(store_error)?;
    if let Some(row) = rotated {
        return Ok(Reply::RefreshRotated {
            found: Some(found(&row)?),
            rotated: true,
        });
    }
    let row = query_opt(
        client,
        "reading a refresh family",
        GET_BY_GRANT,
        &[&grant_id],
    )
    .await
    .map_err(store_error)?;
    Ok(Reply::RefreshRotated {
        found: row.map(|r| found(&r)).transpose()?,
        rotated: false,
    })
}

/// [`Op::RotateRefresh`] in one statement (the module docs say why it is race-free): `$1` the
/// grant, `$2` the current token's hash, `$3` the successor's hash, `$4` its issue time (the
/// rotation time), `$5` its expiry, `$6` the grant's expiry when it must be extended
/// ([`extension`]), `$7` the family hash, `$8` whether it is a retry (which keeps `previous`).
const ROTATE: &str = concat!(
    "UPDATE grants SET refresh_current = $3, refresh_issued_at = $4, refresh_expires_at = $5,
         refresh_family = $7,
         refresh_previous = CASE WHEN $8 THEN refresh_previous ELSE refresh_current END,
         refresh_previous_at = CASE WHEN $8 THEN refresh_previous_at ELSE $4 END, ",
    extended_expiry!("", "$5", "$6"),
    " WHERE grant_id = $1 AND refresh_current = $2 AND revoked_at IS NULL"
);

/// [`Op::RotateRefresh`].
pub(crate) async fn rotate(
    client: &Client,
    grant_id: &[u8],
    from: &[u8],
    new: &Successor,
    family: &[u8],
    retry: bool,
) -> Result<Reply, StoreError> {
    let params: [&(dyn ToSql + Sync); 8] = [
        &grant_id,
        &from,
        &&new.hash.0[..],
        &time(new.issued_at),
        &time(new.expires_at),
        &extension(new.expires_at),
        &family,
        &retry,
    ];
    let swapped = execute(client, "rotating a refresh family", ROTATE, &params)
        .await
        .map_err(store_error)?;
    Ok(Reply::Swapped(swapped == 1))
}

/// `Effect::PutRefreshFamily`: `$1` the grant, then the family's columns in their order.
const PUT_FAMILY: &str = "UPDATE grants SET refresh_family = $2, refresh_current = $3,
         refresh_issued_at = $4, refresh_expires_at = $5, refresh_previous = $6,
         refresh_previous_at = $7
     WHERE grant_id = $1";

/// `Effect::PutRefreshFamily`: stores `family` in its grant's row, replacing the one it had; a
/// family whose grant is not stored is dropped (no row, nothing written).
pub(crate) async fn put_family(
    db: &impl GenericClient,
    family: &RefreshFamily,
) -> Result<(), Failure> {
    let previous = family.previous.as_ref();
    execute(
        db,
        "storing a refresh family",
        PUT_FAMILY,
        &[
            &&family.grant_id.0[..],
            &family.family.as_ref().map(|h| &h.0[..]),
            &&family.current.0[..],
            &time(family.issued_at),
            &time(family.expires_at),
            &previous.map(|p| &p.hash.0[..]),
            &previous.map(|p| time(p.at)),
        ],
    )
    .await?;
    Ok(())
}

/// The grant's `expires_at` a rotation into a token expiring at `token_expires_at` sets when the
/// grant does not cover that token yet ([`GRANT_EXTENSION`]).
fn extension(token_expires_at: u64) -> i64 {
    time(token_expires_at.saturating_add(GRANT_EXTENSION))
}

/// The statements that find a grant's row, by name, for the test that checks each plan finds it
/// by the primary key (see the module docs).
#[cfg(feature = "testing")]
pub(crate) const BY_KEY: [(&str, &str); 5] = [
    ("get_by_grant", GET_BY_GRANT),
    ("get_by_legacy", GET_BY_LEGACY),
    ("refresh_public", REFRESH_PUBLIC),
    ("rotate", ROTATE),
    ("put_family", PUT_FAMILY),
];
