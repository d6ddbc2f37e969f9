//! The store the server runs on, chosen at start-up.
//!
//! Handlers are written against one concrete type, [`AnyStore`], which delegates to the store
//! behind it. Adding a store (the crash-safe file store) is one variant here plus one arm in each
//! `match`, and [`AnyStore::open_persistent`] choosing it; nothing else in the server changes.

use std::path::Path;

use oauth_proto::store::{
    AsyncStore, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, StoreError,
};
use oauth_store_memory::MemoryStore;

/// Every store the server can run on.
#[derive(Debug)]
// One store is made per process and lives behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    /// Nothing survives the process (`--memory`, and tests).
    Memory(MemoryStore),
    /// Fails every call, for the unit tests of the server's answers to store failures.
    #[cfg(test)]
    Failing,
}

/// Why a persistent store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// This build has no persistent store yet.
    Unavailable,
    /// The store refused to open (locked by a running server, corrupt, IO error): its message.
    Failed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Unavailable => f.write_str("this build has no persistent store"),
            OpenError::Failed(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for OpenError {}

impl AnyStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        AnyStore::Memory(MemoryStore::new())
    }

    /// Opens the persistent store kept in `dir`. The file store plugs in here; until then this
    /// build has none and says so.
    pub fn open_persistent(_dir: &Path) -> Result<Self, OpenError> {
        Err(OpenError::Unavailable)
    }

    /// Makes everything applied so far durable and releases the store (called at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(_) => Ok(()),
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            #[cfg(test)]
            AnyStore::Failing => "failing",
        }
    }
}

impl AsyncStore for AnyStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        match self {
            AnyStore::Memory(s) => AsyncStore::execute(s, op).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        }
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => AsyncStore::apply(s, effects).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        }
    }

    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        match self {
            AnyStore::Memory(s) => AsyncStore::purge(s, now).await,
            #[cfg(test)]
            AnyStore::Failing => Err(down()),
        }
    }
}

impl RevocationView for AnyStore {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        match self {
            AnyStore::Memory(s) => s.access_revoked_at(grant_id),
            #[cfg(test)]
            AnyStore::Failing => None,
        }
    }

    fn credential_version(&self, subject: &str) -> u32 {
        match self {
            AnyStore::Memory(s) => s.credential_version(subject),
            #[cfg(test)]
            AnyStore::Failing => 0,
        }
    }
}

#[cfg(test)]
fn down() -> StoreError {
    StoreError("the test store is down".to_owned())
}
