//! Running statements: every one prepared once per connection (the pool's statement cache) and
//! given its values as parameters, never spliced into the text; and transactions that PostgreSQL
//! aborted to break a deadlock run again.

use deadpool_postgres::GenericClient;
use oauth_proto::store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::from_db;
pub(crate) use crate::error::is_retryable;

/// How often a transaction aborted by a deadlock or serialization failure is tried in all.
pub(crate) const ATTEMPTS: u32 = 5;

/// A failure inside a transaction: the driver's (maybe worth a retry) or the store's own.
pub(crate) enum Failure {
    Db(&'static str, tokio_postgres::Error),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Failure::Db(what, e) => from_db(what, e),
            Failure::Store(e) => e,
        }
    }
}

/// Runs the statement `sql` and returns its rows.
pub(crate) async fn query(
    db: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, Failure> {
    let statement = db
        .prepare_cached(sql)
        .await
        .map_err(|e| Failure::Db(what, e))?;
    db.query(&statement, params)
        .await
        .map_err(|e| Failure::Db(what, e))
}

/// Runs the statement `sql` and returns its row, if any.
pub(crate) async fn query_opt(
    db: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, Failure> {
    Ok(query(db, what, sql, params).await?.into_iter().next())
}

/// Runs the statement `sql` and returns how many rows it changed.
pub(crate) async fn execute(
    db: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Failure> {
    let statement = db
        .prepare_cached(sql)
        .await
        .map_err(|e| Failure::Db(what, e))?;
    db.execute(&statement, params)
        .await
        .map_err(|e| Failure::Db(what, e))
}

/// What a transaction's body decided.
pub(crate) enum Outcome<T> {
    /// Commit, then answer `T`.
    Commit(T),
    /// Roll back (a compare-and-swap that did not match), then answer `T`.
    Abandon(T),
}

/// Runs `$body` (an expression that awaits, with the transaction bound to `$tx`, and gives a
/// `Result<Outcome<T>, Failure>`) in a READ COMMITTED transaction on `$client`, and commits or
/// rolls back as it decides; a transaction that PostgreSQL aborted for a deadlock or a
/// serialization failure runs again, up to [`ATTEMPTS`] times (nothing of an aborted transaction
/// was applied). Gives `Result<T, StoreError>`.
///
/// A macro rather than a function taking a closure: a closure over a borrowed transaction that
/// returns a future cannot be proven `Send` for every lifetime, which spawning needs.
macro_rules! transaction {
    ($client:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        loop {
            let result: Result<_, $crate::sql::Failure> = async {
                let $tx = $client
                    .transaction()
                    .await
                    .map_err(|e| $crate::sql::Failure::Db("starting a transaction", e))?;
                match $body {
                    $crate::sql::Outcome::Commit(answer) => {
                        $tx.commit()
                            .await
                            .map_err(|e| $crate::sql::Failure::Db("committing", e))?;
                        Ok(answer)
                    }
                    $crate::sql::Outcome::Abandon(answer) => {
                        $tx.rollback()
                            .await
                            .map_err(|e| $crate::sql::Failure::Db("rolling back", e))?;
                        Ok(answer)
                    }
                }
            }
            .await;
            match result {
                Err($crate::sql::Failure::Db(_, ref e))
                    if $crate::sql::is_retryable(e) && attempt < $crate::sql::ATTEMPTS =>
                {
                    attempt += 1
                }
                other => break other.map_err($crate::sql::store_error),
            }
        }
    }};
}
pub(crate) use transaction;

/// A failure outside a transaction as a store error.
pub(crate) fn store_error(f: Failure) -> StoreError {
    f.into_store()
}
