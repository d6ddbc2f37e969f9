//! The ops: reads, and the atomic read-modify-writes in SQL.
//!
//! # Why each atomic op is race-free at READ COMMITTED
//!
//! Every transaction runs at PostgreSQL's default, READ COMMITTED. Its rule that matters here: an
//! `UPDATE` (or `INSERT ... ON CONFLICT DO UPDATE`) that finds a row another transaction is
//! changing waits for that transaction to end, then evaluates its `WHERE` again on the row's
//! newest committed version (and skips the row if it no longer matches). So a conditional
//! `UPDATE` is a compare-and-swap on the row, and the row count tells whether it swapped.
//!
//! - [`Op::TakeCode`]: `UPDATE codes SET used = true WHERE hash = $1 AND NOT used RETURNING body`.
//!   Of concurrent takers, the first to lock the row swaps it; every other one waits, re-reads the
//!   row as used, and updates nothing; it then reads the row (a new statement, so a new snapshot
//!   that sees the take) and answers `Used`. Only if the row is gone by then (purged, or its
//!   subject revoked) does it answer `Missing`, which is the truth at that moment.
//! - [`Op::RotateRefresh`]: one statement ([`ROTATE`], its own transaction: one round trip, the
//!   most frequent write of a deployment). First `SELECT ... FROM grants WHERE grant_id = $1 AND
//!   revoked_at IS NULL FOR UPDATE`: it locks the grant row, and a revocation (which updates the
//!   same row) is therefore wholly before the rotation (after waiting for it, the lock re-checks
//!   the newest row version: no row, no swap) or wholly after it (it revokes the new token's grant
//!   too). Then `UPDATE refresh_tokens SET rotated_at, successor WHERE hash = old AND grant_id AND
//!   rotated_at IS NULL` and the grant lock held: the compare-and-swap on the token, of which
//!   exactly one concurrent rotation matches (a loser waits on the grant lock, then finds the row
//!   changed and re-checks `rotated_at IS NULL` on its newest version, which fails). Only what that
//!   update returned extends the grant and inserts the successor, so a rotation that matched
//!   nothing stores nothing, not even the grant's new expiry. A statement PostgreSQL aborted to
//!   break a deadlock runs again, as transactions do.
//!   The read before it ([`Op::GetRefresh`], one statement joining the token, its grant, the
//!   grant's client and the revocation status, so all in one snapshot) needs no lock: a
//!   revocation or a credential change (which revokes the subject's grants in the transaction
//!   that bumps the version) that commits after that snapshot is found by the rotation's grant
//!   lock (no live grant, no swap: the engine then refuses and revokes), and one that commits
//!   before it is in the snapshot, together with any grant a racing redemption stored after it
//!   (the engine refuses a grant older than the subject's credential version).
//! - [`Op::RetryRotation`]: the same grant lock, then the successor's compare-and-swap (`WHERE
//!   hash = successor AND grant_id AND rotated_at IS NULL`, so of a retry and a use of the
//!   successor, or of two retries, exactly one matches), then the old token's successor is
//!   repointed (`WHERE successor = $successor`), then the new token is inserted.
//! - [`Op::SwapDevice`]: `UPDATE devices SET ... WHERE device_code_hash = $1 AND revision = $2`.
//! - [`Op::Count`]: `INSERT ... ON CONFLICT (key) DO UPDATE SET count = CASE ...`: PostgreSQL
//!   guarantees the insert-or-update outcome atomically for one key, so concurrent counts each
//!   see a distinct value.
//!
//! The transactions lock grant rows before token rows. Revocations of a subject or a client lock
//! several grants in one statement, in the order PostgreSQL scans them, so two of them can
//! deadlock with each other; PostgreSQL then aborts one, and [`transaction`] runs it again.

use std::sync::Arc;

use deadpool_postgres::{Client, Transaction};
use oauth_proto::store::{
    CodeRecord, CodeTake, ConsentRecord, DeviceLookup, DeviceRecord, GrantRecord, Op, RefreshGrant,
    RefreshRecord, Reply, RevocationStatus, SessionGrant, StoreError, SubjectRecord,
    MAX_SESSION_GRANTS,
};

use crate::codec::{self, body, decode, from_time, time};
use crate::error::out_of_range;
use crate::sql::{execute, query, query_opt, store_error, transaction, Failure, Outcome};

/// Answers one op on `client`.
pub(crate) async fn execute_op(client: &mut Client, op: Op) -> Result<Reply, StoreError> {
    match op {
        Op::TakeCode { hash } => take_code(client, &hash.0).await.map(Reply::Code),
        Op::RotateRefresh { old, new } => rotate(client, &old.0, None, new).await,
        Op::RetryRotation {
            old,
            successor,
            new,
        } => rotate(client, &old.0, Some(&successor.0), new).await,
        other => read(client, other).await.map_err(store_error),
    }
}

async fn read(client: &mut Client, op: Op) -> Result<Reply, Failure> {
    let db: &Client = client;
    Ok(match op {
        Op::GetClient { client_id } => {
            let row = query_opt(
                db,
                "reading a client",
                "SELECT body, unused_expires_at FROM clients WHERE client_id = $1",
                &[&client_id.as_bytes()],
            )
            .await?;
            Reply::Client(row.map(|r| codec::client(&r)).transpose()?.map(Arc::new))
        }
        Op::GetSubject { subject } => {
            let row = query_opt(
                db,
                "reading a subject",
                "SELECT credential_version FROM subjects WHERE subject = $1",
                &[&subject.as_bytes()],
            )
            .await?;
            Reply::Subject(SubjectRecord {
                credential_version: row.map_or(0, |r| version(r.get(0))),
            })
        }
        // The token, its grant, the grant's client and the revocation status of the grant and
        // its subject: what `Op::GetClient` and `Op::RevocationStatus` would read, in the same
        // statement (one round trip, one snapshot).
        Op::GetRefresh { hash } => {
            let row = query_opt(
                db,
                "reading a refresh token",
                "SELECT r.hash, r.grant_id, r.issued_at, r.expires_at, r.rotated_at, r.successor,
                        g.body AS grant_body, g.expires_at AS grant_expires_at,
                        g.revoked_at AS grant_revoked_at,
                        c.body, c.unused_expires_at,
                        a.revoked_at AS access_revoked_at, s.credential_version
                 FROM refresh_tokens r JOIN grants g ON g.grant_id = r.grant_id
                      LEFT JOIN clients c ON c.client_id = g.client_id
                      LEFT JOIN revoked_access a ON a.grant_id = r.grant_id
                      LEFT JOIN subjects s ON s.subject = g.subject
                 WHERE r.hash = $1",
                &[&&hash.0[..]],
            )
            .await?;
            Reply::Refresh(
                row.map(|r| {
                    let registered = r.get::<_, Option<&[u8]>>("body").is_some();
                    let revoked: Option<i64> = r.get("access_revoked_at");
                    let credential: Option<i64> = r.get("credential_version");
                    Ok::<_, StoreError>(RefreshGrant {
                        token: codec::refresh(&r)?,
                        grant: codec::grant(&r)?,
                        client: registered
                            .then(|| codec::client(&r).map(Arc::new))
                            .transpose()?,
                        status: RevocationStatus {
                            access_revoked_at: revoked.map(from_time),
                            credential_version: credential.map_or(0, version),
                        },
                    })
                })
                .transpose()?,
            )
        }
        Op::GetDevice { by } => {
            let row = match by {
                DeviceLookup::DeviceCode(h) => {
                    query_opt(
                        db,
                        "reading a device authorization",
                        "SELECT body FROM devices WHERE device_code_hash = $1",
                        &[&&h.0[..]],
                    )
                    .await?
                }
                DeviceLookup::UserCode(h) => {
                    query_opt(
                        db,
                        "reading a device authorization",
                        "SELECT body FROM devices WHERE user_code_hash = $1
                         ORDER BY expires_at DESC, device_code_hash LIMIT 1",
                        &[&&h.0[..]],
                    )
                    .await?
                }
            };
            Reply::Device(
                row.map(|r| decode::<DeviceRecord>("device authorization", r.get(0)))
                    .transpose()?,
            )
        }
        Op::SwapDevice {
            expected_revision,
            record,
        } => {
            let expected =
                i64::try_from(expected_revision).map_err(|_| out_of_range("a device revision"))?;
            let revision =
                i64::try_from(record.revision).map_err(|_| out_of_range("a device revision"))?;
            let swapped = execute(
                db,
                "swapping a device authorization",
                "UPDATE devices SET user_code_hash = $2, expires_at = $3, revision = $4,
                        approved_subject = $5, body = $6
                 WHERE device_code_hash = $1 AND revision = $7",
                &[
                    &&record.device_code_hash.0[..],
                    &&record.user_code_hash.0[..],
                    &time(record.expires_at),
                    &revision,
                    &crate::effects::approved_subject(&record),
                    &body(&record),
                    &expected,
                ],
            )
            .await?;
            Reply::Swapped(swapped == 1)
        }
        Op::Count {
            key,
            now,
            expires_at,
        } => {
            let row = query_opt(
                db,
                "counting",
                "INSERT INTO counters AS c (key, count, expires_at) VALUES ($1, 1, $3)
                 ON CONFLICT (key) DO UPDATE SET
                     count = CASE WHEN c.expires_at <= $2 THEN 1
                                  ELSE least(c.count + 1, 4294967295) END,
                     expires_at = CASE WHEN c.expires_at <= $2 THEN EXCLUDED.expires_at
                                       ELSE c.expires_at END
                 RETURNING count",
                &[&key.as_bytes(), &time(now), &time(expires_at)],
            )
            .await?;
            let count: i64 = row.map_or(0, |r| r.get(0));
            Reply::Count(u32::try_from(count).unwrap_or(u32::MAX))
        }
        Op::RevocationStatus { grant_id, subject } => {
            let row = query_opt(
                db,
                "reading the revocation status",
                "SELECT (SELECT revoked_at FROM revoked_access WHERE grant_id = $1),
                        (SELECT credential_version FROM subjects WHERE subject = $2)",
                &[&&grant_id.0[..], &subject.as_bytes()],
            )
            .await?;
            let (revoked, credential): (Option<i64>, Option<i64>) =
                row.map_or((None, None), |r| (r.get(0), r.get(1)));
            Reply::RevocationStatus {
                access_revoked_at: revoked.map(from_time),
                credential_version: credential.map_or(0, version),
            }
        }
        // The store is also the reference server's directory: it answers from its users.
        Op::UserClaims { subject } => {
            let row = query_opt(
                db,
                "reading a user's claims",
                "SELECT body FROM users WHERE username = $1",
                &[&subject.as_bytes()],
            )
            .await?;
            let user = row
                .map(|r| decode::<oauth_directory::UserRecord>("user", r.get(0)))
                .transpose()?;
            Reply::UserClaims(user.map(|u| u.claims()))
        }
        Op::Consents { subject } => {
            let rows = query(
                db,
                "reading a subject's consents",
                "SELECT body FROM consents WHERE subject = $1
                 ORDER BY granted_at DESC, client_id DESC",
                &[&subject.as_bytes()],
            )
            .await?;
            Reply::Consents(
                rows.iter()
                    .map(|r| decode::<ConsentRecord>("consent", r.get(0)))
                    .collect::<Result<_, _>>()?,
            )
        }
        // By the subject index; the session is in the grant's body (no column of its own: a
        // session ends far less often than tokens are used, and one user's live grants are few),
        // so the bodies are filtered here, in grant id order, until a page is full.
        Op::GrantsOfSession {
            subject,
            sid,
            now,
            after,
        } => {
            let after = after.map(|a| a.0.to_vec());
            let rows = query(
                db,
                "reading a session's grants",
                "SELECT body FROM grants
                 WHERE subject = $1 AND revoked_at IS NULL AND expires_at > $2
                       AND ($3::bytea IS NULL OR grant_id > $3)
                 ORDER BY grant_id",
                &[&subject.as_bytes(), &time(now), &after],
            )
            .await?;
            let mut page = Vec::new();
            for row in &rows {
                let grant = decode::<GrantRecord>("grant", row.get(0))?;
                if grant.sid.as_deref() == Some(sid.as_str()) {
                    page.push(SessionGrant {
                        grant_id: grant.grant_id,
                        scope: grant.scope,
                    });
                    if page.len() == MAX_SESSION_GRANTS {
                        break;
                    }
                }
            }
            Reply::SessionGrants(page)
        }
        // Documents are fetched by the driver, never by a store.
        Op::FetchClientDocument { .. } => {
            Reply::ClientDocument(oauth_proto::client_id_document::ClientDocument::failed(
                oauth_proto::client_id_document::FetchError::NotFetched,
            ))
        }
        Op::TakeCode { .. } | Op::RotateRefresh { .. } | Op::RetryRotation { .. } => {
            return Err(Failure::Store(StoreError::contract_violation(
                "an atomic op was routed as a read",
            )))
        }
    })
}

/// A stored credential version (kept below 2^32 by the wrapping increment).
pub(crate) fn version(stored: i64) -> u32 {
    u32::try_from(stored).unwrap_or(u32::MAX)
}

async fn take_code(client: &mut Client, hash: &[u8]) -> Result<CodeTake, StoreError> {
    let db: &Client = client;
    let taken = query_opt(
        db,
        "taking a code",
        "UPDATE codes SET used = true WHERE hash = $1 AND NOT used RETURNING body",
        &[&hash],
    )
    .await
    .map_err(store_error)?;
    if let Some(row) = taken {
        return Ok(CodeTake::Taken(decode::<CodeRecord>("code", row.get(0))?));
    }
    let used = query_opt(
        db,
        "reading a used code",
        "SELECT body FROM codes WHERE hash = $1",
        &[&hash],
    )
    .await
    .map_err(store_error)?;
    Ok(match used {
        Some(row) => CodeTake::Used(decode::<CodeRecord>("code", row.get(0))?),
        None => CodeTake::Missing,
    })
}

/// [`Op::RotateRefresh`] (no `successor`) or [`Op::RetryRotation`] (the successor `old` was
/// rotated to), as the module docs explain.
async fn rotate(
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
/// `$1` grant, `$2` the grant's new expiry, `$3` rotation time, `$4` new hash, `$5` old hash,
/// `$6`..`$9` the new token's issue time, expiry, rotation time and successor.
const ROTATE: &str = "WITH live AS (
         SELECT grant_id FROM grants WHERE grant_id = $1 AND revoked_at IS NULL FOR UPDATE),
     retired AS (
         UPDATE refresh_tokens SET rotated_at = $3, successor = $4
         WHERE hash = $5 AND grant_id = $1 AND rotated_at IS NULL
           AND EXISTS (SELECT 1 FROM live)
         RETURNING grant_id),
     extended AS (
         UPDATE grants SET expires_at = greatest(expires_at, $2)
         WHERE grant_id IN (SELECT grant_id FROM retired)
         RETURNING 1),
     stored AS (
         INSERT INTO refresh_tokens (hash, grant_id, issued_at, expires_at, rotated_at, successor)
         SELECT $4, grant_id, $6, $7, $8, $9 FROM retired
         RETURNING 1)
     SELECT (SELECT count(*) FROM retired), (SELECT count(*) FROM extended),
            (SELECT count(*) FROM stored)";

async fn rotate_once(client: &Client, old: &[u8], new: &RefreshRecord) -> Result<bool, StoreError> {
    let grant = &new.grant_id.0[..];
    let new_hash = &new.hash.0[..];
    let (rotated_at, successor) = codec::refresh_state(&new.state);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &grant,
        &time(new.expires_at),
        &time(new.issued_at),
        &new_hash,
        &old,
        &time(new.issued_at),
        &time(new.expires_at),
        &rotated_at,
        &successor,
    ];
    let mut attempt = 1;
    loop {
        match query_opt(client, "rotating a refresh token", ROTATE, &params).await {
            Ok(row) => {
                let counts: (i64, i64, i64) =
                    row.map_or((0, 0, 0), |r| (r.get(0), r.get(1), r.get(2)));
                return match counts {
                    (0, 0, 0) => Ok(false),
                    (1, 1, 1) => Ok(true),
                    other => Err(StoreError::new(
                        oauth_proto::store::StoreErrorKind::Corrupt,
                        format!("a rotation changed {other:?} rows (token, grant, successor)"),
                    )),
                };
            }
            Err(Failure::Db(_, ref e))
                if crate::sql::is_retryable(e) && attempt < crate::sql::ATTEMPTS =>
            {
                attempt += 1
            }
            Err(f) => return Err(store_error(f)),
        }
    }
}

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
        "UPDATE grants SET expires_at = greatest(expires_at, $2)
         WHERE grant_id = $1 AND revoked_at IS NULL",
        &[&grant, &time(new.expires_at)],
    )
    .await?;
    if live != 1 {
        return Ok(Outcome::Abandon(false));
    }
    // The token that is rotated out now: `old`, or on a retry the successor it got.
    let retired = execute(
        tx,
        "rotating a refresh token",
        "UPDATE refresh_tokens SET rotated_at = $3, successor = $4
         WHERE hash = $1 AND grant_id = $2 AND rotated_at IS NULL",
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
            "UPDATE refresh_tokens SET successor = $3
             WHERE hash = $1 AND grant_id = $2 AND rotated_at IS NOT NULL
               AND successor = $4",
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
