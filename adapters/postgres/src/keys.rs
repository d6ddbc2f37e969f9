//! The server's keys in the database, so that every node signs and verifies with the same ones
//! and a rotation reaches every running node.
//!
//! # What is stored
//!
//! One row of `server_keys` holds the two key documents the file deployment keeps in its data
//! directory, as the same JSON: the access tokens' HMAC keys (`token-keys.json`) and the ID token
//! signing keys (`signing-keys.json`), with a `revision` that every change increments. This crate
//! does not read them ([`ServerKeys`] carries the texts): the server that writes them decides
//! their form, as it does for the files.
//!
//! # Protection, and what reading the database gives
//!
//! The keys are stored as they are in the files, readable by the database role the nodes use,
//! and protected as the rest of the database is (its access rules, its backups, TLS or a unix
//! socket to it). Until now a copy of the database gave its reader hashes only (of tokens, codes
//! and secrets; password hashes to attack offline) and the revocation state. **With the keys in
//! it, whoever reads the `server_keys` table can forge access tokens and ID tokens for any user
//! and client until the keys are rotated and the old ones retired**, as whoever reads the key
//! files can today. So the database's credentials, its dumps and its replicas are as secret as
//! the key files; `oauth-server key rotate` followed by `key retire` once the old keys' tokens
//! expired is the remedy after a leak. (Encrypting the row under a key that every node reads
//! from a file would keep a database dump alone from forging, at the cost of a second secret to
//! distribute to every node; not done yet.)
//!
//! # Generation and changes
//!
//! [`PostgresStore::keys_or_insert`] is what a node runs at start: it offers the keys it has
//! just generated with `INSERT ... ON CONFLICT DO NOTHING` under the migration's advisory lock,
//! and reads the row back, in one transaction. Of nodes starting together on an empty table,
//! exactly one insert wins and every node reads the winner's keys.
//!
//! [`PostgresStore::change_keys`] (`oauth-server key rotate|retire --postgres`) locks the row
//! (`SELECT ... FOR UPDATE`, so concurrent changes apply one after the other), writes the new
//! documents with the next revision, and sends `NOTIFY` on [`CHANNEL`] in the same transaction,
//! delivered when (and only if) it commits.
//!
//! # How a change reaches every node, and the bound
//!
//! A node that called [`PostgresStore::on_keys_changed`] has its revocation follower
//! ([`follow`](crate::follow)) read the row whenever its revision is above the last one the
//! node saw: on the notification, on every periodic catch-up, and first thing after each
//! reconnection. **So a change made while a node reaches the database is in use at that node
//! within the follower's bound, 1 s** (normally milliseconds, through the notification; at worst
//! one catch-up interval, 500 ms, plus one query, when the notification was lost).

use std::sync::Arc;

use oauth_proto::store::StoreError;
use parking_lot::Mutex;
use tokio_postgres::{Client, Statement};

use deadpool_postgres::Transaction;

use crate::error::from_pool;
use crate::schema::MIGRATION_LOCK;
use crate::sql::{execute, query_opt, transaction, Failure, Outcome};
use crate::PostgresStore;

/// The channel key changes are announced on.
pub(crate) const CHANNEL: &str = "oauth_keys";

/// The keys as stored: the two JSON documents and the revision they were written with.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKeys {
    /// Incremented by every change; the first keys are revision 1.
    pub revision: i64,
    /// The access tokens' HMAC keys, the JSON of `token-keys.json`.
    pub token_keys: String,
    /// The ID token signing keys, the JSON of `signing-keys.json`.
    pub signing_keys: String,
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerKeys(revision {}, <redacted>)", self.revision)
    }
}

/// What a node is told when the keys changed.
pub type OnKeysChanged = Arc<dyn Fn(ServerKeys) + Send + Sync>;

/// A node's interest in key changes: the last revision it has and what to call with a newer one.
#[derive(Default)]
pub(crate) struct KeyWatch {
    state: Mutex<Option<(i64, OnKeysChanged)>>,
}

impl KeyWatch {
    /// The revision the node has, if it watches.
    fn seen(&self) -> Option<i64> {
        self.state.lock().as_ref().map(|(seen, _)| *seen)
    }

    /// Hands `keys` to the hook if they are newer than what the node has.
    fn offer(&self, keys: ServerKeys) {
        let hook = {
            let mut state = self.state.lock();
            match state.as_mut() {
                Some((seen, hook)) if keys.revision > *seen => {
                    *seen = keys.revision;
                    hook.clone()
                }
                _ => return,
            }
        };
        hook(keys);
    }

    /// Reads the row if it is newer than what the node has, and hands it over (the follower's
    /// catch-up; `statement` is [`NEWER`] prepared on the follower's connection).
    pub(crate) async fn catch_up(
        &self,
        client: &Client,
        statement: &Statement,
    ) -> Result<(), tokio_postgres::Error> {
        let Some(seen) = self.seen() else {
            return Ok(());
        };
        if let Some(row) = client.query_opt(statement, &[&seen]).await? {
            self.offer(from_row(&row));
        }
        Ok(())
    }
}

/// The follower's statement: the row, if newer than `$1`.
pub(crate) const NEWER: &str =
    "SELECT revision, token_keys, signing_keys FROM server_keys WHERE id = 1 AND revision > $1";

fn from_row(row: &tokio_postgres::Row) -> ServerKeys {
    let text = |i: usize| String::from_utf8_lossy(row.get::<_, &[u8]>(i)).into_owned();
    ServerKeys {
        revision: row.get(0),
        token_keys: text(1),
        signing_keys: text(2),
    }
}

async fn read(tx: &Transaction<'_>, lock: bool) -> Result<Option<ServerKeys>, Failure> {
    let sql = if lock {
        "SELECT revision, token_keys, signing_keys FROM server_keys WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT revision, token_keys, signing_keys FROM server_keys WHERE id = 1"
    };
    Ok(query_opt(tx, "reading the keys", sql, &[])
        .await?
        .map(|row| from_row(&row)))
}

impl PostgresStore {
    /// The keys, if a node has stored them.
    pub async fn keys(&self) -> Result<Option<ServerKeys>, StoreError> {
        self.run(|shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            transaction!(client, |tx| Outcome::Commit(read(&tx, false).await?))
        })
        .await
    }

    /// The stored keys; when there are none yet, `generated` (`token_keys` and `signing_keys`;
    /// its revision is ignored) is stored first, unless another node stores its own at the same
    /// moment, whose keys are then the answer (see the module docs).
    pub async fn keys_or_insert(&self, generated: ServerKeys) -> Result<ServerKeys, StoreError> {
        self.run(|shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            transaction!(client, |tx| {
                execute(
                    &tx,
                    "taking the migration lock",
                    "SELECT pg_advisory_xact_lock($1)",
                    &[&MIGRATION_LOCK],
                )
                .await?;
                execute(
                    &tx,
                    "storing the first keys",
                    "INSERT INTO server_keys (id, revision, token_keys, signing_keys)
                     VALUES (1, 1, $1, $2) ON CONFLICT (id) DO NOTHING",
                    &[
                        &generated.token_keys.as_bytes(),
                        &generated.signing_keys.as_bytes(),
                    ],
                )
                .await?;
                match read(&tx, false).await? {
                    Some(keys) => Outcome::Commit(keys),
                    None => {
                        return Err(Failure::Store(StoreError::contract_violation(
                            "PostgreSQL: the keys just stored are not there",
                        )))
                    }
                }
            })
        })
        .await
    }

    /// Changes the stored keys: `change` gets them and answers the new ones with what to tell
    /// the operator, or refuses with a message, which changes nothing. Every node watching
    /// ([`Self::on_keys_changed`]) uses the new keys within the bound of the module docs. No keys
    /// stored yet is refused the same way. `change` may run again if PostgreSQL aborts the
    /// transaction (a deadlock or serialization failure).
    pub async fn change_keys<F>(&self, change: F) -> Result<Result<String, String>, StoreError>
    where
        F: FnMut(ServerKeys) -> Result<(ServerKeys, String), String> + Send + 'static,
    {
        self.run(|shared| async move {
            let mut change = change;
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            transaction!(client, |tx| change_in(&tx, &mut change).await?)
        })
        .await
    }

    /// Calls `hook` with the keys each time they change after `revision` (the revision the node
    /// loaded), on the follower's task: see the module docs for when and the bound.
    pub fn on_keys_changed(&self, revision: i64, hook: OnKeysChanged) {
        *self.shared.keys.state.lock() = Some((revision, hook));
    }
}

async fn change_in<F>(
    tx: &Transaction<'_>,
    change: &mut F,
) -> Result<Outcome<Result<String, String>>, Failure>
where
    F: FnMut(ServerKeys) -> Result<(ServerKeys, String), String>,
{
    let Some(current) = read(tx, true).await? else {
        return Ok(Outcome::Abandon(Err(
            "the database holds no keys yet; start a server on it once".to_owned(),
        )));
    };
    let (new, said) = match change(current) {
        Ok(changed) => changed,
        Err(refused) => return Ok(Outcome::Abandon(Err(refused))),
    };
    execute(
        tx,
        "writing the keys",
        "UPDATE server_keys SET revision = revision + 1, token_keys = $1, signing_keys = $2
         WHERE id = 1",
        &[&new.token_keys.as_bytes(), &new.signing_keys.as_bytes()],
    )
    .await?;
    execute(
        tx,
        "announcing the new keys",
        "SELECT pg_notify($1, '')",
        &[&CHANNEL],
    )
    .await?;
    Ok(Outcome::Commit(Ok(said)))
}
