//! The state shared by the store handle, the writer thread and compactions, and the write path.
//!
//! Every change follows one order: encode the entry (outside any lock), take the state's write lock,
//! change memory, queue the entry on the log, release the lock, then wait for the log to make the
//! entry durable. Because memory and log are updated under the same lock, journal order equals
//! memory order, which is what makes replay reproduce the state. Callers wait outside the lock, so
//! while one batch syncs, other callers keep changing memory and queueing the next batch.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use oauth_directory::UserChange;
use oauth_proto::store::{CodeTake, Effect, Op, PurgeStats, Reply};
use oauth_store_memory::{fair_step, MemoryState};

use crate::codec::{self, Changes, EntryRef};
use crate::error::FileStoreError;
use crate::layout::Layout;
use crate::log::Log;
use crate::options::Options;

/// Automatic compaction bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Auto {
    /// The running (or finished, not yet joined) compaction thread.
    pub handle: Option<JoinHandle<()>>,
    /// Set by `close`: start no more.
    pub closing: bool,
}

/// Everything the store's threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub layout: Layout,
    pub options: Options,
    pub state: RwLock<MemoryState>,
    pub log: Log,
    /// Serializes compactions.
    pub compacting: Mutex<()>,
    pub auto: Mutex<Auto>,
    pub generation: AtomicU64,
    pub journal_bytes: AtomicU64,
    pub snapshot_bytes: AtomicU64,
    pub syncs: AtomicU64,
    pub compactions: AtomicU64,
    pub last_compaction_error: Mutex<Option<String>>,
}

/// Whether a mutating op's reply means it changed the state. `MemoryState` changes nothing when a
/// take finds the code missing or used, or a swap fails; such ops are not journaled (so replays of
/// bad codes cannot grow the journal or cost a sync), and replay would not change anything for them.
fn changed(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Code(CodeTake::Taken(_))
            | Reply::Swapped(true)
            | Reply::RefreshRotated { rotated: true, .. }
            | Reply::Count(_)
    )
}

impl Shared {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, MemoryState> {
        // Not poisoned by a panic: MemoryState's methods finish every change before anything can
        // panic, so the state stays consistent.
        self.state.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, MemoryState> {
        self.state.write()
    }

    fn encode(&self, entry: &EntryRef<'_>) -> Result<Vec<u8>, FileStoreError> {
        // Room for the usual entry (a refresh rotation, a code take, a few effects): grown from
        // empty, the buffer was reallocated five times or so per entry.
        let mut bytes = Vec::with_capacity(256);
        codec::append(&mut bytes, entry, self.options.entry_limit())?;
        Ok(bytes)
    }

    /// Answers an op; returns the LSN the caller must wait for before replying (0: none).
    ///
    /// A mutating op that changed nothing still waits for everything queued before it: its answer
    /// ("used", "lost the swap") may rest on a change that is not durable yet.
    pub(crate) fn execute(&self, op: Op) -> Result<(Reply, u64), FileStoreError> {
        self.log.check()?;
        if !op.mutates() {
            return Ok((self.read().query(&op), 0));
        }
        let entry = self.encode(&EntryRef::Op(&op))?;
        let mut state = self.write();
        let reply = state.execute(op);
        let lsn = if changed(&reply) {
            self.log.append(&entry)?
        } else {
            self.log.appended()
        };
        Ok((reply, lsn))
    }

    /// Applies user changes, then effects, as one journal entry; returns the LSN to wait for.
    pub(crate) fn apply(
        &self,
        users: Vec<UserChange>,
        effects: Vec<Effect>,
    ) -> Result<u64, FileStoreError> {
        self.log.check()?;
        if users.is_empty() && effects.is_empty() {
            return Ok(0);
        }
        let entry = self.encode(&EntryRef::Effects(Changes {
            users: &users,
            effects: &effects,
        }))?;
        let mut state = self.write();
        let lsn = self.log.append(&entry)?;
        for change in users {
            state.change_user(change);
        }
        for effect in effects {
            state.apply(effect);
        }
        Ok(lsn)
    }

    /// Purges one shard (`MemoryState::purge_shard`); returns what was removed and the LSN to wait
    /// for. The store calls it for every shard, so the lock is never held for a whole purge.
    pub(crate) fn purge_shard(
        &self,
        now: u64,
        shard: usize,
    ) -> Result<(PurgeStats, u64), FileStoreError> {
        self.log.check()?;
        let entry = self.encode(&EntryRef::Purge {
            now,
            shard: Some(shard as u32),
        })?;
        // Memory and log change under one lock hold, as everywhere; the fair unlock hands the
        // lock to waiting requests before the next shard's step can take it again.
        fair_step(self.write(), |state| {
            let stats = state.purge_shard(now, shard);
            let lsn = if stats.removed > 0 {
                self.log.append(&entry)?
            } else {
                self.log.appended()
            };
            Ok((stats, lsn))
        })
    }
}
