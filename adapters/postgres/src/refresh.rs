//! Refresh tokens: the read, the public client's read-and-rotate, the rotation, and the write of
//! a new family.
//!
//! A refresh is the most frequent write of a deployment, so each of these is one statement (one
//! round trip, its own transaction), a public client's refresh is one statement in all
//! ([`Op::RefreshPublic`]), and the rotations waiting on a node at once share that one statement
//! and its commit ([`crate::batch`]): [`REFRESH_PUBLIC`] and [`ROTATE`] take arrays, one element
//! per rotation.
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
//! - [`Op::RotateRefresh`]: `UPDATE grants ... WHERE grant_id = r.grant_id AND refresh_current =
//!   r.current AND revoked_at IS NULL`, for each element `r` of the batch ([`ROTATE`]). It is the
//!   compare-and-swap, row by row (a batch changes nothing of it, see [`crate::batch`]): of
//!   concurrent rotations from one token, the first to lock the row swaps; every other one waits
//!   for it, re-checks its `WHERE` on the newest row version, whose current token is now
//!   another, and updates nothing. A revocation (of the grant, its client or its subject) updates the same
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
//!   the revocation status as scalar subqueries. For the ops of a batch it updated nothing for,
//!   [`GET_BY_GRANTS`] reads their families in a new snapshot, which the contract allows: the
//!   op's conditions only ever turn false, and the engine goes on from that read as after a
//!   `GetRefresh`.
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
use oauth_proto::client::ClientRecord;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    GrantId, Op, RefreshFamily, RefreshGrant, RefreshKey, Reply, RevocationStatus, StoreError,
    Successor, GRANT_EXTENSION,
};
use tokio_postgres::Row;

use crate::batch::Batched;
use crate::codec::{self, from_time, time};
use crate::ops::version;
use crate::sql::{execute, query, query_opt, Failure};

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
    found_after(r, &mut Clients::default())
}

/// The clients a batch's rows decoded so far, by their row's `body` and `unused_expires_at`: the
/// rows of a batch mostly name one client (the public client of a mail application), whose
/// record is then decoded once, not once per row.
#[derive(Default)]
struct Clients(Vec<(Vec<u8>, Option<i64>, Arc<ClientRecord>)>);

impl Clients {
    /// The client of the row `r` (which has one).
    fn of(&mut self, r: &Row) -> Result<Arc<ClientRecord>, StoreError> {
        let body: &[u8] = r.get("body");
        let unused: Option<i64> = r.get("unused_expires_at");
        if let Some((_, _, client)) = self.0.iter().find(|(b, u, _)| b == body && *u == unused) {
            return Ok(client.clone());
        }
        let client = Arc::new(codec::client(r)?);
        self.0.push((body.to_vec(), unused, client.clone()));
        Ok(client)
    }
}

/// [`found`] for a row of a batch, `clients` the clients its earlier rows decoded.
fn found_after(r: &Row, clients: &mut Clients) -> Result<RefreshGrant, StoreError> {
    let registered = r.get::<_, Option<&[u8]>>("body").is_some();
    let revoked: Option<i64> = r.get("access_revoked_at");
    let credential: Option<i64> = r.get("credential_version");
    Ok(RefreshGrant {
        family: codec::family(r)?,
        grant: codec::grant(r)?,
        client: registered.then(|| clients.of(r)).transpose()?,
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

/// [`Op::RefreshPublic`] for a batch ([`crate::batch`]; the module docs say why it is race-free):
/// arrays with one element per op, of `$1` the grants (distinct), `$2` the presented tokens'
/// hashes, `$3` the clients named, `$4` the successors' hashes, `$5` their issue times (the
/// rotation times), `$6` their expiries, `$7` the grants' expiries when they must be extended
/// ([`extension`]). A row for each op that rotated.
const REFRESH_PUBLIC: &str = concat!(
    "UPDATE grants g SET refresh_current = r.new, refresh_issued_at = r.issued_at,
         refresh_expires_at = r.expires_at, refresh_previous = g.refresh_current,
         refresh_previous_at = r.issued_at, ",
    extended_expiry!("g.", "r.expires_at", "r.extension"),
    " FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[], $5::int8[], $6::int8[],
                  $7::int8[])
              AS r(grant_id, presented, client_id, new, issued_at, expires_at, extension),
          clients c
     WHERE g.grant_id = ANY($1) AND g.grant_id = r.grant_id
       AND g.refresh_current = r.presented AND g.refresh_family IS NOT NULL
       AND g.revoked_at IS NULL AND r.issued_at < g.refresh_expires_at
       AND (g.client_id = r.client_id) IS TRUE AND c.client_id = r.client_id
     RETURNING ",
    family_columns!()
);

/// [`Op::GetRefresh`] for several grants at once, `$1`: what [`REFRESH_PUBLIC`] answers for the
/// ops of a batch that did not rotate.
const GET_BY_GRANTS: &str = concat!(
    "SELECT ",
    family_columns!(),
    " FROM grants g LEFT JOIN clients c ON c.client_id = g.client_id
     WHERE g.grant_id = ANY($1) AND g.refresh_current IS NOT NULL"
);

/// An op sorted by where it goes: a rotation as what its batch takes ([`crate::batch`]).
pub(crate) enum Batchable {
    /// An [`Op::RefreshPublic`].
    Public(PublicRefresh),
    /// An [`Op::RotateRefresh`].
    Rotation(Rotation),
    /// Any other op.
    Not(Op),
}

impl Batchable {
    /// Sorts `op`.
    pub(crate) fn of(op: Op) -> Self {
        match op {
            Op::RefreshPublic {
                grant_id,
                presented,
                client_id,
                new,
            } => Batchable::Public(PublicRefresh {
                grant_id,
                presented,
                client_id,
                new,
            }),
            Op::RotateRefresh {
                grant_id,
                from,
                new,
                family,
                retry,
            } => Batchable::Rotation(Rotation {
                grant_id,
                from,
                new,
                family,
                retry,
            }),
            other => Batchable::Not(other),
        }
    }
}

/// An [`Op::RefreshPublic`], batched with the others waiting ([`crate::batch`]).
pub(crate) struct PublicRefresh {
    pub(crate) grant_id: GrantId,
    pub(crate) presented: SecretHash,
    pub(crate) client_id: String,
    pub(crate) new: Successor,
}

impl Batched for PublicRefresh {
    fn key(&self) -> &[u8] {
        &self.grant_id.0
    }

    async fn run(client: &Client, batch: &[Self]) -> Result<Vec<Reply>, Failure> {
        let new = Successors::of(batch.iter().map(|op| &op.new));
        let rotated = query(
            client,
            "reading and rotating refresh families",
            REFRESH_PUBLIC,
            &[
                &column(batch, |op| &op.grant_id.0[..]),
                &column(batch, |op| &op.presented.0[..]),
                &column(batch, |op| op.client_id.as_bytes()),
                &new.hashes,
                &new.issued_at,
                &new.expires_at,
                &new.extension,
            ],
        )
        .await?;
        let mut replies: Vec<Option<Reply>> = vec![None; batch.len()];
        let mut clients = Clients::default();
        for row in &rotated {
            let found = found_after(row, &mut clients)?;
            let at = position(batch, &found.family.grant_id.0)?;
            replies[at] = Some(Reply::RefreshRotated {
                found: Some(found),
                rotated: true,
            });
        }
        // The ops that did not rotate: what `GetRefresh` answers for them now.
        let missed: Vec<&[u8]> = batch
            .iter()
            .zip(&replies)
            .filter(|(_, reply)| reply.is_none())
            .map(|(op, _)| &op.grant_id.0[..])
            .collect();
        if !missed.is_empty() {
            for row in query(
                client,
                "reading refresh families",
                GET_BY_GRANTS,
                &[&missed],
            )
            .await?
            {
                let found = found_after(&row, &mut clients)?;
                let at = position(batch, &found.family.grant_id.0)?;
                replies[at] = Some(Reply::RefreshRotated {
                    found: Some(found),
                    rotated: false,
                });
            }
        }
        Ok(replies
            .into_iter()
            .map(|reply| {
                reply.unwrap_or(Reply::RefreshRotated {
                    found: None,
                    rotated: false,
                })
            })
            .collect())
    }
}

/// [`Op::RotateRefresh`] for a batch ([`crate::batch`]; the module docs say why it is race-free):
/// arrays with one element per op, of `$1` the grants (distinct), `$2` their current tokens'
/// hashes, `$3` the successors' hashes, `$4` their issue times (the rotation times), `$5` their
/// expiries, `$6` the grants' expiries when they must be extended ([`extension`]), `$7` the
/// family hashes, `$8` whether each is a retry (which keeps `previous`). A row, the grant id,
/// for each op that swapped.
const ROTATE: &str = concat!(
    "UPDATE grants g SET refresh_current = r.new, refresh_issued_at = r.issued_at,
         refresh_expires_at = r.expires_at, refresh_family = r.family,
         refresh_previous = CASE WHEN r.retry THEN g.refresh_previous ELSE g.refresh_current END,
         refresh_previous_at = CASE WHEN r.retry THEN g.refresh_previous_at ELSE r.issued_at END, ",
    extended_expiry!("g.", "r.expires_at", "r.extension"),
    " FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int8[], $5::int8[], $6::int8[],
                  $7::bytea[], $8::bool[])
              AS r(grant_id, current, new, issued_at, expires_at, extension, family, retry)
     WHERE g.grant_id = ANY($1) AND g.grant_id = r.grant_id
       AND g.refresh_current = r.current AND g.revoked_at IS NULL
     RETURNING g.grant_id"
);

/// An [`Op::RotateRefresh`], batched with the others waiting ([`crate::batch`]).
pub(crate) struct Rotation {
    pub(crate) grant_id: GrantId,
    pub(crate) from: SecretHash,
    pub(crate) new: Successor,
    pub(crate) family: SecretHash,
    pub(crate) retry: bool,
}

impl Batched for Rotation {
    fn key(&self) -> &[u8] {
        &self.grant_id.0
    }

    async fn run(client: &Client, batch: &[Self]) -> Result<Vec<Reply>, Failure> {
        let new = Successors::of(batch.iter().map(|op| &op.new));
        let swapped = query(
            client,
            "rotating refresh families",
            ROTATE,
            &[
                &column(batch, |op| &op.grant_id.0[..]),
                &column(batch, |op| &op.from.0[..]),
                &new.hashes,
                &new.issued_at,
                &new.expires_at,
                &new.extension,
                &column(batch, |op| &op.family.0[..]),
                &column(batch, |op| op.retry),
            ],
        )
        .await?;
        let mut replies = vec![Reply::Swapped(false); batch.len()];
        for row in &swapped {
            replies[position(batch, row.get::<_, &[u8]>(0))?] = Reply::Swapped(true);
        }
        Ok(replies)
    }
}

/// One array parameter of a batch statement: `value` of each op.
fn column<'a, T, C>(batch: &'a [T], value: impl Fn(&'a T) -> C) -> Vec<C> {
    batch.iter().map(value).collect()
}

/// The array parameters of a batch's successors, as both batch statements take them.
struct Successors<'a> {
    hashes: Vec<&'a [u8]>,
    issued_at: Vec<i64>,
    expires_at: Vec<i64>,
    /// The grants' expiries when a rotation must extend them ([`extension`]).
    extension: Vec<i64>,
}

impl<'a> Successors<'a> {
    fn of(new: impl Iterator<Item = &'a Successor>) -> Self {
        let mut s = Successors {
            hashes: Vec::new(),
            issued_at: Vec::new(),
            expires_at: Vec::new(),
            extension: Vec::new(),
        };
        for n in new {
            s.hashes.push(&n.hash.0[..]);
            s.issued_at.push(time(n.issued_at));
            s.expires_at.push(time(n.expires_at));
            s.extension.push(extension(n.expires_at));
        }
        s
    }
}

/// Where in `batch` the op of grant `grant_id` is.
fn position<T: Batched>(batch: &[T], grant_id: &[u8]) -> Result<usize, StoreError> {
    batch
        .iter()
        .position(|op| op.key() == grant_id)
        .ok_or_else(|| {
            StoreError::contract_violation(
                "PostgreSQL store: a batch of rotations answered a grant it was not given",
            )
        })
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
pub(crate) const BY_KEY: [(&str, &str); 6] = [
    ("get_by_grant", GET_BY_GRANT),
    ("get_by_grants", GET_BY_GRANTS),
    ("get_by_legacy", GET_BY_LEGACY),
    ("refresh_public", REFRESH_PUBLIC),
    ("rotate", ROTATE),
    ("put_family", PUT_FAMILY),
];
