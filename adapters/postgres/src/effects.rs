//! The effects (and the reference server's user changes): all of one `apply` in one transaction,
//! in their order, so a crash or a lost connection leaves all of them or none.
//!
//! Revocations return the `revoked_access` and `subjects` rows they leave, which are laid into
//! this node's revocation view once the transaction has committed (never before: a rolled-back
//! revocation must not refuse tokens here that every other node accepts).
//!
//! A transaction with a revoking effect first takes the revocation lock, so revocations commit
//! in the order of their sequence numbers, and ends with a `NOTIFY` that PostgreSQL delivers to
//! every node at commit; why both is in [`follow`](crate::follow).

use deadpool_postgres::{Client, GenericClient, Transaction};
use oauth_directory::UserChange;
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    CodeRecord, ConsentRecord, DeviceRecord, DeviceStatus, Effect, GrantRecord, StoreError,
    MAX_CONSENTS_PER_SUBJECT,
};
use tokio_postgres::Row;

use crate::codec::{self, body, time};
use crate::ops::version;
use crate::sql::{execute, query, transaction, Failure, Outcome};
use crate::view::{Revoked, Version, ViewChanges};

/// Applies `users` then `effects` in one transaction; returns what changed in the revocation view.
pub(crate) async fn apply(
    client: &mut Client,
    users: &[UserChange],
    effects: &[Effect],
) -> Result<ViewChanges, StoreError> {
    transaction!(client, |tx| apply_in(&tx, users, effects).await?)
}

async fn apply_in(
    tx: &Transaction<'_>,
    users: &[UserChange],
    effects: &[Effect],
) -> Result<Outcome<ViewChanges>, Failure> {
    let mut changes = ViewChanges::default();
    let revoking = effects.iter().any(revokes);
    if revoking {
        // Before any row lock, so every revoking transaction takes its locks in one order.
        execute(
            tx,
            "taking the revocation lock",
            "SELECT pg_advisory_xact_lock($1)",
            &[&crate::follow::REVOCATION_LOCK],
        )
        .await?;
    }
    for change in users {
        user_change(tx, change).await?;
    }
    for effect in effects {
        apply_one(tx, effect, &mut changes).await?;
    }
    if revoking {
        execute(
            tx,
            "notifying the other nodes",
            "SELECT pg_notify($1, '')",
            &[&crate::follow::CHANNEL],
        )
        .await?;
    }
    Ok(Outcome::Commit(changes))
}

/// Whether `effect` writes a row of `revoked_access` or `subjects` (takes a `revocation_seq`).
fn revokes(effect: &Effect) -> bool {
    match effect {
        Effect::DeleteClient { .. }
        | Effect::RevokeGrant { .. }
        | Effect::RevokeAccess { .. }
        | Effect::RevokeSubject { .. }
        | Effect::RevokeClient { .. } => true,
        Effect::PutClient(_)
        | Effect::MarkClientUsed { .. }
        | Effect::PutCode(_)
        | Effect::PutGrant(_)
        | Effect::PutRefreshFamily(_)
        | Effect::PutDevice(_)
        | Effect::ResetCounter { .. }
        | Effect::PutConsent(_)
        | Effect::DeleteConsent { .. } => false,
    }
}

async fn user_change(tx: &impl GenericClient, change: &UserChange) -> Result<(), Failure> {
    match change {
        UserChange::PutUser(user) => {
            execute(
                tx,
                "storing a user",
                "INSERT INTO users (username, body) VALUES ($1, $2)
                 ON CONFLICT (username) DO UPDATE SET body = EXCLUDED.body",
                &[&user.username.as_bytes(), &body(user)],
            )
            .await?;
        }
        UserChange::DeleteUser { username } => {
            execute(
                tx,
                "deleting a user",
                "DELETE FROM users WHERE username = $1",
                &[&username.as_bytes()],
            )
            .await?;
        }
    }
    Ok(())
}

/// The subject a device authorization was approved by, as its column.
pub(crate) fn approved_subject(record: &DeviceRecord) -> Option<&[u8]> {
    match &record.status {
        DeviceStatus::Approved { subject, .. } => Some(subject.as_bytes()),
        _ => None,
    }
}

/// Inserts or replaces a client.
pub(crate) async fn put_client(tx: &impl GenericClient, c: &ClientRecord) -> Result<(), Failure> {
    execute(
        tx,
        "storing a client",
        "INSERT INTO clients (client_id, unused_expires_at, body) VALUES ($1, $2, $3)
         ON CONFLICT (client_id) DO UPDATE SET
             unused_expires_at = EXCLUDED.unused_expires_at, body = EXCLUDED.body",
        &[
            &c.client_id.as_bytes(),
            &c.unused_expires_at.map(time),
            &body(c),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts or replaces a code, taken (`used`) or not.
pub(crate) async fn put_code(
    tx: &impl GenericClient,
    c: &CodeRecord,
    used: bool,
) -> Result<(), Failure> {
    execute(
        tx,
        "storing a code",
        "INSERT INTO codes (hash, subject, expires_at, used, body)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (hash) DO UPDATE SET subject = EXCLUDED.subject,
             expires_at = EXCLUDED.expires_at, used = EXCLUDED.used, body = EXCLUDED.body",
        &[
            &&c.hash.0[..],
            &c.subject.as_bytes(),
            &time(c.expires_at),
            &used,
            &body(c),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts or replaces a grant.
pub(crate) async fn put_grant(tx: &impl GenericClient, g: &GrantRecord) -> Result<(), Failure> {
    execute(
        tx,
        "storing a grant",
        "INSERT INTO grants (grant_id, client_id, subject, expires_at, revoked_at, body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (grant_id) DO UPDATE SET client_id = EXCLUDED.client_id,
             subject = EXCLUDED.subject, expires_at = EXCLUDED.expires_at,
             revoked_at = EXCLUDED.revoked_at, body = EXCLUDED.body",
        &[
            &&g.grant_id.0[..],
            &g.client_id.as_bytes(),
            &g.subject.as_bytes(),
            &time(g.expires_at),
            &g.revoked_at.map(time),
            &body(g),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts or replaces a device authorization.
pub(crate) async fn put_device(tx: &impl GenericClient, d: &DeviceRecord) -> Result<(), Failure> {
    let revision =
        i64::try_from(d.revision).map_err(|_| crate::error::out_of_range("a device revision"))?;
    execute(
        tx,
        "storing a device authorization",
        "INSERT INTO devices
             (device_code_hash, user_code_hash, expires_at, revision, approved_subject, body)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (device_code_hash) DO UPDATE SET
             user_code_hash = EXCLUDED.user_code_hash, expires_at = EXCLUDED.expires_at,
             revision = EXCLUDED.revision, approved_subject = EXCLUDED.approved_subject,
             body = EXCLUDED.body",
        &[
            &&d.device_code_hash.0[..],
            &&d.user_code_hash.0[..],
            &time(d.expires_at),
            &revision,
            &approved_subject(d),
            &body(d),
        ],
    )
    .await?;
    Ok(())
}

/// The upsert of an access revocation: a grant that already has one gets the new one no earlier
/// than the second after it, kept that much longer (the contract's `Effect::RevokeGrant`),
/// computed in `numeric` and capped at `i64::MAX` so it cannot overflow.
macro_rules! revoke_access_conflict {
    () => {
        "
    ON CONFLICT (grant_id) DO UPDATE SET
        revoked_at = least(greatest(EXCLUDED.revoked_at::numeric, r.revoked_at::numeric + 1),
                           9223372036854775807)::bigint,
        keep_until = least(greatest(r.keep_until::numeric,
                                    EXCLUDED.keep_until::numeric
                                    + greatest(EXCLUDED.revoked_at::numeric,
                                               r.revoked_at::numeric + 1)
                                    - EXCLUDED.revoked_at::numeric),
                           9223372036854775807)::bigint,
        revocation_seq = EXCLUDED.revocation_seq
    RETURNING grant_id, revoked_at, keep_until, revocation_seq"
    };
}

/// Revokes the grants whose `$column` is `$1`, as `Effect::RevokeGrant` does each.
macro_rules! revoke_where {
    ($column:literal) => {
        concat!(
            "WITH marked AS (
                 UPDATE grants SET revoked_at = coalesce(revoked_at, $2) WHERE ",
            $column,
            " = $1
                 RETURNING grant_id)
             INSERT INTO revoked_access AS r (grant_id, revoked_at, keep_until, revocation_seq)
             SELECT grant_id, $2, $3, nextval('revocation_seq') FROM marked",
            revoke_access_conflict!()
        )
    };
}

fn revoked_rows(rows: Vec<Row>, changes: &mut ViewChanges) -> Result<(), Failure> {
    for row in rows {
        changes.access.push((
            codec::grant_id(row.get(0))?,
            Revoked {
                at: codec::from_time(row.get(1)),
                keep_until: codec::from_time(row.get(2)),
                seq: row.get(3),
            },
        ));
    }
    Ok(())
}

async fn apply_one(
    tx: &impl GenericClient,
    effect: &Effect,
    changes: &mut ViewChanges,
) -> Result<(), Failure> {
    match effect {
        Effect::PutClient(c) => put_client(tx, c).await?,
        Effect::MarkClientUsed { client_id } => {
            execute(
                tx,
                "marking a client used",
                "UPDATE clients SET unused_expires_at = NULL
                 WHERE client_id = $1 AND unused_expires_at IS NOT NULL",
                &[&client_id.as_bytes()],
            )
            .await?;
        }
        Effect::DeleteClient {
            client_id,
            at,
            keep_until,
        } => {
            execute(
                tx,
                "deleting a client",
                "DELETE FROM clients WHERE client_id = $1",
                &[&client_id.as_bytes()],
            )
            .await?;
            execute(
                tx,
                "deleting a client's consents",
                "DELETE FROM consents WHERE client_id = $1",
                &[&client_id.as_bytes()],
            )
            .await?;
            let rows = query(
                tx,
                "revoking a client's grants",
                revoke_where!("client_id"),
                &[&client_id.as_bytes(), &time(*at), &time(*keep_until)],
            )
            .await?;
            revoked_rows(rows, changes)?;
        }
        Effect::PutCode(c) => put_code(tx, c, false).await?,
        Effect::PutGrant(g) => put_grant(tx, g).await?,
        Effect::PutRefreshFamily(f) => crate::refresh::put_family(tx, f).await?,
        Effect::PutDevice(d) => put_device(tx, d).await?,
        Effect::RevokeGrant {
            grant_id,
            at,
            keep_until,
        } => {
            let rows = query(
                tx,
                "revoking a grant",
                concat!(
                    "WITH marked AS (
                         UPDATE grants SET revoked_at = coalesce(revoked_at, $2)
                         WHERE grant_id = $1)
                     INSERT INTO revoked_access AS r
                         (grant_id, revoked_at, keep_until, revocation_seq)
                     VALUES ($1, $2, $3, nextval('revocation_seq'))",
                    revoke_access_conflict!()
                ),
                &[&&grant_id.0[..], &time(*at), &time(*keep_until)],
            )
            .await?;
            revoked_rows(rows, changes)?;
        }
        Effect::RevokeAccess {
            grant_id,
            at,
            keep_until,
        } => {
            let rows = query(
                tx,
                "revoking access tokens",
                concat!(
                    "INSERT INTO revoked_access AS r
                         (grant_id, revoked_at, keep_until, revocation_seq)
                     VALUES ($1, $2, $3, nextval('revocation_seq'))",
                    revoke_access_conflict!()
                ),
                &[&&grant_id.0[..], &time(*at), &time(*keep_until)],
            )
            .await?;
            revoked_rows(rows, changes)?;
        }
        Effect::RevokeSubject {
            subject,
            at,
            keep_until,
        } => {
            let key = subject.as_bytes();
            let rows = query(
                tx,
                "bumping a credential version",
                "INSERT INTO subjects AS s (subject, credential_version, revocation_seq)
                 VALUES ($1, 1, nextval('revocation_seq'))
                 ON CONFLICT (subject) DO UPDATE SET
                     credential_version = (s.credential_version + 1) % 4294967296,
                     revocation_seq = EXCLUDED.revocation_seq
                 RETURNING credential_version, revocation_seq",
                &[&key],
            )
            .await?;
            for row in rows {
                changes.subjects.push((
                    key.to_vec(),
                    Version {
                        version: version(row.get(0)),
                        seq: row.get(1),
                    },
                ));
            }
            execute(
                tx,
                "dropping a subject's codes",
                "DELETE FROM codes WHERE subject = $1",
                &[&key],
            )
            .await?;
            execute(
                tx,
                "dropping a subject's device approvals",
                "DELETE FROM devices WHERE approved_subject = $1",
                &[&key],
            )
            .await?;
            let rows = query(
                tx,
                "revoking a subject's grants",
                revoke_where!("subject"),
                &[&key, &time(*at), &time(*keep_until)],
            )
            .await?;
            revoked_rows(rows, changes)?;
        }
        Effect::RevokeClient {
            client_id,
            at,
            keep_until,
        } => {
            let rows = query(
                tx,
                "revoking a client's grants",
                revoke_where!("client_id"),
                &[&client_id.as_bytes(), &time(*at), &time(*keep_until)],
            )
            .await?;
            revoked_rows(rows, changes)?;
        }
        Effect::ResetCounter { key } => {
            execute(
                tx,
                "resetting a counter",
                "DELETE FROM counters WHERE key = $1",
                &[&key.as_bytes()],
            )
            .await?;
        }
        Effect::PutConsent(c) => put_consent(tx, c).await?,
        Effect::DeleteConsent { subject, client_id } => {
            execute(
                tx,
                "forgetting a consent",
                "DELETE FROM consents WHERE subject = $1
                   AND ($2::bytea IS NULL OR client_id = $2)",
                &[
                    &subject.as_bytes(),
                    &client_id.as_deref().map(str::as_bytes),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Inserts or replaces a consent, then drops the subject's oldest beyond the bound. The
/// subject's advisory lock (a key derived from it) makes concurrent puts for one subject take
/// turns, so the bound holds exactly.
pub(crate) async fn put_consent(tx: &impl GenericClient, c: &ConsentRecord) -> Result<(), Failure> {
    execute(
        tx,
        "locking a subject's consents",
        "SELECT pg_advisory_xact_lock(hashtextextended('consents:' || encode($1, 'hex'), 0))",
        &[&c.subject.as_bytes()],
    )
    .await?;
    execute(
        tx,
        "storing a consent",
        "INSERT INTO consents (subject, client_id, granted_at, body) VALUES ($1, $2, $3, $4)
         ON CONFLICT (subject, client_id) DO UPDATE SET
             granted_at = EXCLUDED.granted_at, body = EXCLUDED.body",
        &[
            &c.subject.as_bytes(),
            &c.client_id.as_bytes(),
            &time(c.granted_at),
            &body(c),
        ],
    )
    .await?;
    let bound = i64::try_from(MAX_CONSENTS_PER_SUBJECT).unwrap_or(i64::MAX);
    execute(
        tx,
        "bounding a subject's consents",
        "DELETE FROM consents WHERE subject = $1 AND client_id NOT IN (
             SELECT client_id FROM consents WHERE subject = $1
             ORDER BY granted_at DESC, client_id DESC LIMIT $2)",
        &[&c.subject.as_bytes(), &bound],
    )
    .await?;
    Ok(())
}
