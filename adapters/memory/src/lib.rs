//! An in-memory store for the `oauth-proto` engine.
//!
//! [`MemoryState`] is the store's logic as a plain data structure: it answers [`Op`]s and applies
//! [`Effect`]s exactly as the contract in `oauth_proto::store` describes, with no locking and no IO.
//! [`MemoryStore`] wraps it in a lock and implements the synchronous and asynchronous store traits
//! and the [`RevocationView`] that access token validation reads.
//!
//! Keeping the logic in `MemoryState` lets the file store reuse it unchanged: it journals the same
//! mutating ops and effects and replays them into a `MemoryState` at start-up, so both stores
//! answer every op identically by construction.
//!
//! The store also implements the reference server's [`Directory`] (its users and the listing of
//! clients), which the engine's contract leaves out. What a persistent store writes down of a
//! state, [`Record`] and [`Change`], is a versioned contract of its own (the `record` module);
//! the [`v1`] module reads the records of version 1 (one record per refresh token) and converts
//! them, so that refresh tokens issued before an upgrade keep working after it.
//!
//! Both stores purge one shard at a time with a fair unlock in between ([`purge_in_steps`],
//! [`fair_step`]), so a purge of a large store never holds up the requests waiting for the lock.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod record;
mod sharded;
mod state;
mod steps;
pub mod v1;

pub use record::{Change, Record, RECORD_VERSION};
pub use sharded::SHARDS;
pub use state::MemoryState;
pub use steps::{fair_step, purge_in_steps, purge_in_steps_async};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, Store, StoreError,
};

/// A thread-safe in-memory store. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `state`.
    pub fn from_state(state: MemoryState) -> Self {
        MemoryStore {
            state: RwLock::new(state),
        }
    }

    /// Read access to the state. (The lock is not poisoned by a panic: the state is never left
    /// half-updated, because every mutation completes before it can panic.)
    pub fn read(&self) -> RwLockReadGuard<'_, MemoryState> {
        self.state.read()
    }

    /// Write access to the state.
    pub fn write(&self) -> RwLockWriteGuard<'_, MemoryState> {
        self.state.write()
    }

    /// Purges one shard, then hands the lock to whoever waited for it ([`fair_step`]).
    fn purge_step(&self, now: u64, shard: usize) -> Result<PurgeStats, StoreError> {
        Ok(fair_step(self.write(), |state| {
            state.purge_shard(now, shard)
        }))
    }
}

impl Store for MemoryStore {
    fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        if op.mutates() {
            Ok(self.write().execute(op))
        } else {
            Ok(self.read().query(&op))
        }
    }

    fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let mut state = self.write();
        for effect in effects {
            state.apply(effect);
        }
        Ok(())
    }

    /// One shard at a time, releasing the lock in between ([`purge_in_steps`]).
    fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        purge_in_steps(|shard| self.purge_step(now, shard))
    }
}

impl AsyncStore for MemoryStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        Store::execute(self, op)
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        Store::apply(self, effects)
    }

    /// One shard at a time, releasing the lock and yielding in between ([`purge_in_steps_async`]).
    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        purge_in_steps_async(|shard| self.purge_step(now, shard)).await
    }
}

impl Directory for MemoryStore {
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.read().user(username))
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self.read().users())
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        Ok(self.read().clients())
    }

    async fn change(&self, users: Vec<UserChange>, effects: Vec<Effect>) -> Result<(), StoreError> {
        let mut state = self.write();
        for change in users {
            state.change_user(change);
        }
        for effect in effects {
            state.apply(effect);
        }
        Ok(())
    }
}

impl RevocationView for MemoryStore {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.read().access_revoked_at(grant_id)
    }

    fn credential_version(&self, subject: &str) -> u32 {
        self.read().credential_version(subject)
    }

    fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        let state = self.read();
        (
            state.access_revoked_at(grant_id),
            state.credential_version(subject),
        )
    }
}
