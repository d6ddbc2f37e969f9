//! Between records and rows: times, bodies, and the columns overlaid on a body.
//!
//! A body is the record as it was put. Where SQL changes a field later (a grant's expiry and
//! revocation, a client's `unused_expires_at`), the column is the truth and is laid over the
//! body when read, unless it still holds what the body's value stores as (so a time past
//! `i64::MAX` keeps its exact value).

use serde::{de::DeserializeOwned, Serialize};

use oauth_proto::client::ClientRecord;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{GrantId, GrantRecord, RefreshFamily, Rotated, StoreError};
use tokio_postgres::Row;

use crate::error::corrupt;

/// A time as stored: Unix seconds, at most `i64::MAX`.
pub(crate) fn time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A stored time (never negative; a negative one reads as 0).
pub(crate) fn from_time(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

/// A record as its body.
pub(crate) fn body<T: Serialize>(record: &T) -> Vec<u8> {
    // Records are plain data with string map keys: serializing them to JSON cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

/// A body back as its record.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

/// A stored 32-byte hash.
pub(crate) fn hash(bytes: &[u8]) -> Result<SecretHash, StoreError> {
    <[u8; 32]>::try_from(bytes).map(SecretHash).map_err(|_| {
        StoreError::new(
            oauth_proto::store::StoreErrorKind::Corrupt,
            "PostgreSQL: a stored hash is not 32 bytes",
        )
    })
}

/// A stored grant id.
pub(crate) fn grant_id(bytes: &[u8]) -> Result<GrantId, StoreError> {
    <[u8; 16]>::try_from(bytes).map(GrantId).map_err(|_| {
        StoreError::new(
            oauth_proto::store::StoreErrorKind::Corrupt,
            "PostgreSQL: a stored grant id is not 16 bytes",
        )
    })
}

/// `value` unless `column` holds something else than `value` stores as.
fn overlay(value: u64, column: i64) -> u64 {
    if time(value) == column {
        value
    } else {
        from_time(column)
    }
}

/// A client from its row (`body`, `unused_expires_at`).
pub(crate) fn client(row: &Row) -> Result<ClientRecord, StoreError> {
    let mut c: ClientRecord = decode("client", row.get("body"))?;
    let unused: Option<i64> = row.get("unused_expires_at");
    c.unused_expires_at = match (c.unused_expires_at, unused) {
        (_, None) => None,
        (Some(v), Some(col)) => Some(overlay(v, col)),
        (None, Some(col)) => Some(from_time(col)),
    };
    Ok(c)
}

/// A grant from its row (`grant_body`, `grant_expires_at`, `grant_revoked_at`).
pub(crate) fn grant(row: &Row) -> Result<GrantRecord, StoreError> {
    let mut g: GrantRecord = decode("grant", row.get("grant_body"))?;
    g.expires_at = overlay(g.expires_at, row.get("grant_expires_at"));
    let revoked: Option<i64> = row.get("grant_revoked_at");
    g.revoked_at = match (g.revoked_at, revoked) {
        (_, None) => None,
        (Some(v), Some(col)) => Some(overlay(v, col)),
        (None, Some(col)) => Some(from_time(col)),
    };
    Ok(g)
}

/// A grant's refresh family from its row (`grant_id`, `refresh_family`, `refresh_current`,
/// `refresh_issued_at`, `refresh_expires_at`, `refresh_previous`, `refresh_previous_at`): all of
/// it is columns of the grant's row, read only where `refresh_current` is set.
pub(crate) fn family(row: &Row) -> Result<RefreshFamily, StoreError> {
    let current: Option<&[u8]> = row.get("refresh_current");
    let issued_at: Option<i64> = row.get("refresh_issued_at");
    let expires_at: Option<i64> = row.get("refresh_expires_at");
    let incomplete = || {
        StoreError::new(
            oauth_proto::store::StoreErrorKind::Corrupt,
            "PostgreSQL: a grant's refresh family is incomplete",
        )
    };
    let (Some(current), Some(issued_at), Some(expires_at)) = (current, issued_at, expires_at)
    else {
        return Err(incomplete());
    };
    let previous: Option<&[u8]> = row.get("refresh_previous");
    let previous_at: Option<i64> = row.get("refresh_previous_at");
    let previous = match (previous, previous_at) {
        (Some(h), Some(at)) => Some(Rotated {
            hash: hash(h)?,
            at: from_time(at),
        }),
        (None, _) => None,
        (Some(_), None) => return Err(incomplete()),
    };
    Ok(RefreshFamily {
        grant_id: grant_id(row.get("grant_id"))?,
        family: row
            .get::<_, Option<&[u8]>>("refresh_family")
            .map(hash)
            .transpose()?,
        current: hash(current)?,
        issued_at: from_time(issued_at),
        expires_at: from_time(expires_at),
        previous,
    })
}
