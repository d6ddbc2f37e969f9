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
//! - [`Op::GetRefresh`], [`Op::RefreshPublic`] and [`Op::RotateRefresh`]: see
//!   [`refresh`](crate::refresh).
//! - [`Op::SwapDevice`]: `UPDATE devices SET ... WHERE device_code_hash = $1 AND revision = $2`.
//! - [`Op::Count`]: `INSERT ... ON CONFLICT (key) DO UPDATE SET count = CASE ...`: PostgreSQL
//!   guarantees the insert-or-update outcome atomically for one key, so concurrent counts each
//!   see a distinct value.
//!
//! Revocations of a subject or a client lock
//! several grants in one statement, in the order PostgreSQL scans them, so two of them can
//! deadlock with each other; PostgreSQL then aborts one, and [`transaction`] runs it again.

use std::sync::Arc;

use deadpool_postgres::Client;
use oauth_proto::store::{
    CodeRecord, CodeTake, ConsentRecord, DeviceLookup, DeviceRecord, GrantRecord, Op, Reply,
    RevocationStatus, SessionGrant, StoreError, SubjectRecord, MAX_SESSION_GRANTS,
};

use crate::codec::{self, body, decode, from_time, time};
use crate::error::out_of_range;
use crate::sql::{execute, query, query_opt, store_error, Failure};

/// Answers one op on `client`, but the rotations, which [`crate::batch`] runs.
pub(crate) async fn execute_op(client: &mut Client, op: Op) -> Result<Reply, StoreError> {
    match op {
        Op::TakeCode { hash } => take_code(client, &hash.0).await.map(Reply::Code),
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
        // What `Op::GetClient` and `Op::RevocationStatus` read, in one statement (one round
        // trip, one snapshot): the client's row, if any, joined to a single row so the statement
        // always answers one, with the revocation status as scalar subqueries.
        Op::GetClientWithStatus {
            client_id,
            grant_id,
            subject,
        } => {
            let row = query_opt(
                db,
                "reading a client and a revocation status",
                "SELECT c.body, c.unused_expires_at,
                        (SELECT revoked_at FROM revoked_access WHERE grant_id = $2)
                            AS access_revoked_at,
                        (SELECT credential_version FROM subjects WHERE subject = $3)
                            AS credential_version
                 FROM (VALUES (1)) AS one LEFT JOIN clients c ON c.client_id = $1",
                &[&client_id.as_bytes(), &&grant_id.0[..], &subject.as_bytes()],
            )
            .await?;
            let row = row.ok_or_else(|| {
                StoreError::contract_violation(
                    "reading a client and a revocation status answered no row",
                )
            })?;
            let registered = row.get::<_, Option<&[u8]>>("body").is_some();
            let revoked: Option<i64> = row.get("access_revoked_at");
            let credential: Option<i64> = row.get("credential_version");
            Reply::ClientWithStatus {
                client: registered
                    .then(|| codec::client(&row).map(Arc::new))
                    .transpose()?,
                status: RevocationStatus {
                    access_revoked_at: revoked.map(from_time),
                    credential_version: credential.map_or(0, version),
                },
            }
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
        Op::GetRefresh { key } => Reply::Refresh(crate::refresh::read(db, &key).await?),
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
        Op::TakeCode { .. } | Op::RefreshPublic { .. } | Op::RotateRefresh { .. } => {
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
