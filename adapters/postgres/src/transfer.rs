//! Moving a whole store in and out: every row as a [`Record`], the file store's own record
//! model, so that `oauth-server export` / `import` carry a deployment between the file store
//! and PostgreSQL in both directions.
//!
//! [`export`] reads every table in one REPEATABLE READ snapshot, so what it gives is one
//! consistent state even while nodes keep writing. [`import`] writes all the records in one
//! transaction (all or nothing); a record whose key already exists is replaced. Imported
//! revocations take new `revocation_seq` numbers under the revocation lock and are announced,
//! as any revocation is, so running nodes refuse the tokens they name within the usual bound.

use deadpool_postgres::{Client, GenericClient};
use oauth_directory::UserRecord;
use oauth_proto::store::{CodeRecord, ConsentRecord, DeviceRecord, StoreError, SubjectRecord};
use oauth_store_memory::Record;

use crate::codec::{self, body, decode, from_time, time};
use crate::effects::{put_client, put_code, put_consent, put_device, put_grant};
use crate::sql::{execute, query, transaction, Failure, Outcome};

/// Every record in the database, read in one snapshot.
pub(crate) async fn export(client: &mut Client) -> Result<Vec<Record>, StoreError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| crate::error::from_db("starting the export", e))?;
    let records = export_in(&tx).await.map_err(Failure::into_store)?;
    tx.commit()
        .await
        .map_err(|e| crate::error::from_db("ending the export", e))?;
    Ok(records)
}

async fn export_in(tx: &impl GenericClient) -> Result<Vec<Record>, Failure> {
    let mut records = Vec::new();
    for row in query(
        tx,
        "exporting clients",
        "SELECT body, unused_expires_at FROM clients ORDER BY client_id",
        &[],
    )
    .await?
    {
        records.push(Record::Client(codec::client(&row)?));
    }
    for row in query(
        tx,
        "exporting codes",
        "SELECT body, used FROM codes ORDER BY hash",
        &[],
    )
    .await?
    {
        records.push(Record::Code {
            record: decode::<CodeRecord>("code", row.get(0))?,
            used: row.get(1),
        });
    }
    for row in query(
        tx,
        "exporting grants",
        "SELECT body AS grant_body, expires_at AS grant_expires_at,
                revoked_at AS grant_revoked_at
         FROM grants ORDER BY grant_id",
        &[],
    )
    .await?
    {
        records.push(Record::Grant(codec::grant(&row)?));
    }
    for row in query(
        tx,
        "exporting refresh families",
        "SELECT grant_id, refresh_family, refresh_current, refresh_issued_at, refresh_expires_at,
                refresh_previous, refresh_previous_at
         FROM grants WHERE refresh_current IS NOT NULL ORDER BY grant_id",
        &[],
    )
    .await?
    {
        records.push(Record::RefreshFamily(codec::family(&row)?));
    }
    for row in query(
        tx,
        "exporting legacy refresh tokens",
        "SELECT hash, grant_id, expires_at FROM legacy_refresh_tokens ORDER BY hash",
        &[],
    )
    .await?
    {
        records.push(Record::LegacyRefresh {
            hash: codec::hash(row.get(0))?,
            grant_id: codec::grant_id(row.get(1))?,
            expires_at: from_time(row.get(2)),
        });
    }
    for row in query(
        tx,
        "exporting device authorizations",
        "SELECT body FROM devices ORDER BY device_code_hash",
        &[],
    )
    .await?
    {
        records.push(Record::Device(decode::<DeviceRecord>(
            "device",
            row.get(0),
        )?));
    }
    for row in query(
        tx,
        "exporting subjects",
        "SELECT subject, credential_version FROM subjects ORDER BY subject",
        &[],
    )
    .await?
    {
        records.push(Record::Subject {
            subject: text("a subject", row.get(0))?,
            record: SubjectRecord {
                credential_version: crate::ops::version(row.get(1)),
            },
        });
    }
    for row in query(
        tx,
        "exporting access revocations",
        "SELECT grant_id, revoked_at, keep_until FROM revoked_access ORDER BY grant_id",
        &[],
    )
    .await?
    {
        records.push(Record::RevokedAccess {
            grant_id: codec::grant_id(row.get(0))?,
            at: from_time(row.get(1)),
            keep_until: from_time(row.get(2)),
        });
    }
    for row in query(
        tx,
        "exporting counters",
        "SELECT key, count, expires_at FROM counters ORDER BY key",
        &[],
    )
    .await?
    {
        let count: i64 = row.get(1);
        records.push(Record::Counter {
            key: text("a counter key", row.get(0))?,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            expires_at: from_time(row.get(2)),
        });
    }
    for row in query(
        tx,
        "exporting users",
        "SELECT body FROM users ORDER BY username",
        &[],
    )
    .await?
    {
        records.push(Record::User(decode::<UserRecord>("user", row.get(0))?));
    }
    for row in query(
        tx,
        "exporting consents",
        "SELECT body FROM consents ORDER BY subject, client_id",
        &[],
    )
    .await?
    {
        records.push(Record::Consent(decode::<ConsentRecord>(
            "consent",
            row.get(0),
        )?));
    }
    Ok(records)
}

/// A stored name back as the string it was.
fn text(what: &str, bytes: &[u8]) -> Result<String, Failure> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        Failure::Store(StoreError::new(
            oauth_proto::store::StoreErrorKind::Corrupt,
            format!("PostgreSQL: {what} is not UTF-8"),
        ))
    })
}

/// Writes every record in one transaction; returns how many.
pub(crate) async fn import(client: &mut Client, records: &[Record]) -> Result<usize, StoreError> {
    transaction!(client, |tx| import_in(&tx, records).await?)
}

async fn import_in(tx: &impl GenericClient, records: &[Record]) -> Result<Outcome<usize>, Failure> {
    let revoking = records
        .iter()
        .any(|r| matches!(r, Record::Subject { .. } | Record::RevokedAccess { .. }));
    if revoking {
        execute(
            tx,
            "taking the revocation lock",
            "SELECT pg_advisory_xact_lock($1)",
            &[&crate::follow::REVOCATION_LOCK],
        )
        .await?;
    }
    // A family is stored in its grant's row, so families go after every grant.
    let (families, others): (Vec<&Record>, Vec<&Record>) = records
        .iter()
        .partition(|r| matches!(r, Record::RefreshFamily(_)));
    for record in others.into_iter().chain(families) {
        import_one(tx, record).await?;
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
    Ok(Outcome::Commit(records.len()))
}

async fn import_one(tx: &impl GenericClient, record: &Record) -> Result<(), Failure> {
    match record {
        Record::Client(c) => put_client(tx, c).await,
        Record::Code { record, used } => put_code(tx, record, *used).await,
        Record::Grant(g) => put_grant(tx, g).await,
        Record::RefreshFamily(f) => crate::refresh::put_family(tx, f).await,
        // The one insert into the lookup of tokens issued before families: moving a store
        // carries the lookup along.
        Record::LegacyRefresh {
            hash,
            grant_id,
            expires_at,
        } => execute(
            tx,
            "importing a legacy refresh token",
            "INSERT INTO legacy_refresh_tokens (hash, grant_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (hash) DO UPDATE SET grant_id = EXCLUDED.grant_id,
                 expires_at = EXCLUDED.expires_at",
            &[&&hash.0[..], &&grant_id.0[..], &time(*expires_at)],
        )
        .await
        .map(drop),
        Record::Device(d) => put_device(tx, d).await,
        Record::Subject { subject, record } => execute(
            tx,
            "importing a subject",
            "INSERT INTO subjects (subject, credential_version, revocation_seq)
             VALUES ($1, $2, nextval('revocation_seq'))
             ON CONFLICT (subject) DO UPDATE SET
                 credential_version = EXCLUDED.credential_version,
                 revocation_seq = EXCLUDED.revocation_seq",
            &[&subject.as_bytes(), &i64::from(record.credential_version)],
        )
        .await
        .map(drop),
        Record::RevokedAccess {
            grant_id,
            at,
            keep_until,
        } => execute(
            tx,
            "importing an access revocation",
            "INSERT INTO revoked_access (grant_id, revoked_at, keep_until, revocation_seq)
             VALUES ($1, $2, $3, nextval('revocation_seq'))
             ON CONFLICT (grant_id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at,
                 keep_until = EXCLUDED.keep_until, revocation_seq = EXCLUDED.revocation_seq",
            &[&&grant_id.0[..], &time(*at), &time(*keep_until)],
        )
        .await
        .map(drop),
        Record::Counter {
            key,
            count,
            expires_at,
        } => execute(
            tx,
            "importing a counter",
            "INSERT INTO counters (key, count, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET count = EXCLUDED.count,
                 expires_at = EXCLUDED.expires_at",
            &[&key.as_bytes(), &i64::from(*count), &time(*expires_at)],
        )
        .await
        .map(drop),
        Record::User(user) => execute(
            tx,
            "importing a user",
            "INSERT INTO users (username, body) VALUES ($1, $2)
             ON CONFLICT (username) DO UPDATE SET body = EXCLUDED.body",
            &[&user.username.as_bytes(), &body(user)],
        )
        .await
        .map(drop),
        Record::Consent(c) => put_consent(tx, c).await,
    }
}
