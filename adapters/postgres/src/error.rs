//! How the driver's and the pool's failures become the store contract's [`StoreError`], and the
//! errors of opening a store ([`OpenError`]), which an operator reads at start-up.
//!
//! Why the kinds are chosen as they are: a lost connection, a refused connection, a database
//! shutting down or a deadlock the server broke are all [`StoreErrorKind::Unavailable`] (retrying
//! later may work, and the reference server answers 503); a pool with no free connection within
//! its wait time, a statement cancelled by `statement_timeout` and a key over PostgreSQL's index
//! limit are [`StoreErrorKind::Overloaded`]; a stored body that no longer decodes is
//! [`StoreErrorKind::Corrupt`]. The driver's error stays attached as the source, so the operator's
//! log line names the SQLSTATE and the server's message. Neither ever contains a statement's
//! parameters, so no secret (they are hashes anyway) reaches a log through them.

use deadpool_postgres::PoolError;
use oauth_proto::store::{StoreError, StoreErrorKind};
use tokio_postgres::error::SqlState;

/// A driver error as a store error of the right kind.
pub(crate) fn from_db(what: &str, e: tokio_postgres::Error) -> StoreError {
    let kind = match e.code() {
        Some(code) if *code == SqlState::QUERY_CANCELED => StoreErrorKind::Overloaded,
        Some(code) if *code == SqlState::PROGRAM_LIMIT_EXCEEDED => StoreErrorKind::Overloaded,
        Some(code) if *code == SqlState::TOO_MANY_CONNECTIONS => StoreErrorKind::Overloaded,
        _ => StoreErrorKind::Unavailable,
    };
    StoreError::new(kind, format!("PostgreSQL: {what}: {}", describe(&e))).with_source(e)
}

/// The driver's error with the server's own words: `tokio_postgres::Error` shows a server error
/// as just "db error", keeping the SQLSTATE and message in its source; and any other error with
/// its cause, which it also keeps apart (why a TLS handshake or a connection failed).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// A pool failure as a store error: no connection within the wait time is overload; a
/// connection that cannot be made is unavailability.
pub(crate) fn from_pool(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => from_db("connecting", e),
        PoolError::Timeout(which) => StoreError::new(
            StoreErrorKind::Overloaded,
            format!("PostgreSQL: no connection from the pool in time ({which:?})"),
        ),
        other => StoreError::unavailable(format!("PostgreSQL connection pool: {other}")),
    }
}

/// A stored body that does not decode.
pub(crate) fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("PostgreSQL: stored {what} does not decode: {e}"),
    )
    .with_source(e)
}

/// A value the schema cannot hold (a revision past `i64::MAX`); the caller broke the contract.
pub(crate) fn out_of_range(what: &str) -> StoreError {
    StoreError::contract_violation(format!("PostgreSQL: {what} is out of the stored range"))
}

/// Whether a failed transaction is worth running again: PostgreSQL aborted it to break a
/// deadlock or a serialization conflict, and nothing of it was applied.
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Opening a store (or migrating its database) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The connection URL does not parse.
    BadUrl(tokio_postgres::Error),
    /// The database could not be reached, or refused the login.
    Connect(StoreError),
    /// The database's schema is newer than this build knows: a newer `oauth-server` migrated it.
    /// Running an older build against it could misread or damage records, so it is refused.
    NewerSchema {
        /// The version found in the database.
        found: i32,
        /// The newest version this build knows.
        supported: i32,
    },
    /// A migration or the loading of the revocation view failed.
    Database(StoreError),
    /// The store was opened outside a tokio runtime, or its own runtime could not start.
    Runtime(String),
    /// TLS cannot be set up as asked: the CA file cannot be read or holds no usable
    /// certificate, or it is given without `sslmode=require` (the `tls` module).
    Tls(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::BadUrl(e) => {
                write!(f, "the PostgreSQL URL is not valid: {}", describe(e))
            }
            OpenError::Connect(e) => write!(f, "cannot connect to PostgreSQL: {e}"),
            OpenError::NewerSchema { found, supported } => write!(
                f,
                "the database has schema version {found}, newer than version {supported} that \
                 this oauth-server knows: it was migrated by a newer release; run that release \
                 (or newer) against it"
            ),
            OpenError::Database(e) => write!(f, "preparing the PostgreSQL database failed: {e}"),
            OpenError::Runtime(e) => write!(f, "the PostgreSQL store has no runtime: {e}"),
            OpenError::Tls(e) => write!(f, "TLS to PostgreSQL: {e}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::BadUrl(e) => Some(e),
            OpenError::Connect(e) | OpenError::Database(e) => Some(e),
            OpenError::NewerSchema { .. } | OpenError::Runtime(_) | OpenError::Tls(_) => None,
        }
    }
}
