//! The store the server runs on, chosen at start-up.
//!
//! Handlers are written against one concrete type, [`AnyStore`], which delegates to the store
//! behind it: the crash-safe file store in the data directory by default, memory with `--memory`,
//! a PostgreSQL database shared by several nodes with `--postgres URL` (`[store] postgres`).
//! Adding a store (a networked one) is one variant here plus one arm in each `match`.
//!
//! `AnyStore` implements the engine's contract ([`AsyncStore`], [`RevocationView`]) and the
//! reference server's own [`Directory`] (its users and the client listing), which the engine's
//! contract leaves out so that an embedder's store need not carry them. Each of those calls is
//! timed for `/metrics` (`Timed`, by operation).

use std::path::Path;

use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, StoreError,
};
use oauth_store_file::{FileStore, Options};
use oauth_store_memory::MemoryStore;
use oauth_store_postgres::PostgresStore;

use crate::http::metrics::store::{Kind, Timed};

/// Every store the server can run on.
#[derive(Debug)]
// One store is made per process and lives behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    /// Nothing survives the process (`--memory`, and tests).
    Memory(MemoryStore),
    /// The crash-safe file store (the default).
    File(FileStore),
    /// PostgreSQL, shared by every node (`--postgres URL`).
    Postgres(PostgresStore),
    /// Fails every call, for the unit tests of the server's answers to store failures.
    #[cfg(test)]
    Failing,
}

/// Why the PostgreSQL store did not open, naming the setting when it is the CA file's fault.
pub fn postgres_open_error(e: oauth_store_postgres::OpenError) -> String {
    match e {
        oauth_store_postgres::OpenError::Tls(_) => {
            format!("[store] postgres_ca_file (--postgres-ca-file): {e}")
        }
        e => e.to_string(),
    }
}

/// The subdirectory of the data directory that holds the file store.
pub const STORE_DIR: &str = "store";

impl AnyStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        AnyStore::Memory(MemoryStore::new())
    }

    /// Opens the file store kept in `data_dir/store`. Its errors (another process holds the
    /// directory, a corrupt file with its offset, an IO error) come back as their message.
    pub fn open_persistent(data_dir: &Path) -> Result<Self, String> {
        let dir = data_dir.join(STORE_DIR);
        FileStore::open(&dir, Options::default())
            .map(AnyStore::File)
            .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))
    }

    /// Opens the PostgreSQL store at `url` (applying its migrations). Its errors (a bad URL, a
    /// refused login, a database of a newer schema) come back as their message, which never
    /// shows the URL's password.
    pub fn open_postgres(
        url: &str,
        options: oauth_store_postgres::Options,
    ) -> Result<Self, String> {
        PostgresStore::connect_blocking(url, options)
            .map(AnyStore::Postgres)
            .map_err(postgres_open_error)
    }

    /// Opens the PostgreSQL store at `url` as [`Self::open_postgres`] does, but on the runtime
    /// this is awaited on (`serve`'s): its connections and calls then run on the threads that
    /// serve the requests, instead of a runtime of the store's own, so a store call costs no
    /// hop between two runtimes' threads (each hop is a thread wake-up and a context switch,
    /// which on a busy machine cost more than the query).
    pub async fn connect_postgres(
        url: &str,
        options: oauth_store_postgres::Options,
    ) -> Result<Self, String> {
        PostgresStore::connect(url, options)
            .await
            .map(AnyStore::Postgres)
            .map_err(postgres_open_error)
    }

    /// Makes everything applied so far durable and releases the store (called at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(_) => Ok(()),
            AnyStore::File(s) => s.sync().map_err(StoreError::from),
            // Every apply committed its transaction before answering.
            AnyStore::Postgres(_) => Ok(()),
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::File(_) => "file",
            AnyStore::Postgres(_) => "postgres",
            #[cfg(test)]
            AnyStore::Failing => "failing",
        }
    }
}

impl AsyncStore for AnyStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        let timed = Timed::start(Kind::of(&op));
        timed.finish(match self {
            AnyStore::Memory(s) => AsyncStore::execute(s, op).await,
            AnyStore::File(s) => AsyncStore::execute(s, op).await,
            AnyStore::Postgres(s) => AsyncStore::execute(s, op).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let timed = Timed::start(Kind::Apply);
        timed.finish(match self {
            AnyStore::Memory(s) => AsyncStore::apply(s, effects).await,
            AnyStore::File(s) => AsyncStore::apply(s, effects).await,
            AnyStore::Postgres(s) => AsyncStore::apply(s, effects).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }

    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        let timed = Timed::start(Kind::Purge);
        timed.finish(match self {
            AnyStore::Memory(s) => AsyncStore::purge(s, now).await,
            AnyStore::File(s) => AsyncStore::purge(s, now).await,
            AnyStore::Postgres(s) => AsyncStore::purge(s, now).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }
}

impl Directory for AnyStore {
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let timed = Timed::start(Kind::User);
        timed.finish(match self {
            AnyStore::Memory(s) => s.user(username).await,
            AnyStore::File(s) => s.user(username).await,
            AnyStore::Postgres(s) => s.user(username).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let timed = Timed::start(Kind::Users);
        timed.finish(match self {
            AnyStore::Memory(s) => s.users().await,
            AnyStore::File(s) => s.users().await,
            AnyStore::Postgres(s) => s.users().await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let timed = Timed::start(Kind::Clients);
        timed.finish(match self {
            AnyStore::Memory(s) => s.clients().await,
            AnyStore::File(s) => s.clients().await,
            AnyStore::Postgres(s) => s.clients().await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }

    async fn change(&self, users: Vec<UserChange>, effects: Vec<Effect>) -> Result<(), StoreError> {
        let timed = Timed::start(Kind::Change);
        timed.finish(match self {
            AnyStore::Memory(s) => s.change(users, effects).await,
            AnyStore::File(s) => s.change(users, effects).await,
            AnyStore::Postgres(s) => s.change(users, effects).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        })
    }
}

impl RevocationView for AnyStore {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        match self {
            AnyStore::Memory(s) => s.access_revoked_at(grant_id),
            AnyStore::File(s) => s.access_revoked_at(grant_id),
            AnyStore::Postgres(s) => s.access_revoked_at(grant_id),
            #[cfg(test)]
            AnyStore::Failing => None,
        }
    }

    fn credential_version(&self, subject: &str) -> u32 {
        match self {
            AnyStore::Memory(s) => s.credential_version(subject),
            AnyStore::File(s) => s.credential_version(subject),
            AnyStore::Postgres(s) => s.credential_version(subject),
            #[cfg(test)]
            AnyStore::Failing => 0,
        }
    }

    fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        match self {
            AnyStore::Memory(s) => s.status(grant_id, subject),
            AnyStore::File(s) => s.status(grant_id, subject),
            AnyStore::Postgres(s) => s.status(grant_id, subject),
            #[cfg(test)]
            AnyStore::Failing => (None, 0),
        }
    }
}

#[cfg(test)]
fn down() -> StoreError {
    StoreError::unavailable("the test store is down")
}
