//! [`FileStore`]: opening, the store traits, compaction and shutdown.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use parking_lot::{RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, Store, StoreError,
};
use oauth_store_memory::{purge_in_steps, purge_in_steps_async, MemoryState, Record};

use crate::compact::{self, CompactStats};
use crate::error::FileStoreError;
use crate::layout::Layout;
use crate::log::Log;
use crate::options::Options;
use crate::recover::{self, OpenReport};
use crate::shared::{Auto, Shared};
use crate::writer;

/// A durable store in one directory: memory answers, a journal remembers.
///
/// Every method that changes state returns only after the change is on disk (synced); concurrent
/// callers share syncs. Reads are answered from memory without IO. Only one `FileStore` may have a
/// directory open at a time (others get [`FileStoreError::Locked`]).
///
/// Reads may observe a change whose sync is still in flight. Any change made after such a read is
/// journaled after the change it saw, so a crash loses a suffix of the history, never a change
/// that a later durable one depended on. Call [`FileStore::sync`] to wait until everything seen so
/// far is durable.
#[derive(Debug)]
pub struct FileStore {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    lock: Option<File>,
    report: OpenReport,
}

/// A point-in-time view of the store's size and activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records held (as `MemoryState::len` counts them).
    pub records: usize,
    /// Generation of the journal being written.
    pub generation: u64,
    /// Size of that journal.
    pub journal_bytes: u64,
    /// Size of the last snapshot written or loaded (0 if none).
    pub snapshot_bytes: u64,
    /// Journal entries queued since the store was opened.
    pub appended: u64,
    /// Of those, how many are durable.
    pub durable: u64,
    /// Syncs (group commits) since the store was opened.
    pub syncs: u64,
    /// Compactions completed since the store was opened.
    pub compactions: u64,
    /// Why the last automatic compaction failed, if it did.
    pub last_compaction_error: Option<String>,
}

impl FileStore {
    /// Opens (or creates) the store in `dir`: takes the directory lock, removes debris of an
    /// interrupted compaction, loads the newest snapshot, replays the journals after it (cutting off
    /// a torn final frame), and starts the journal writer.
    ///
    /// Fails with [`FileStoreError::Locked`] if another store has `dir` open, and with
    /// [`FileStoreError::Corrupt`] (file and byte offset) if any synced data is damaged.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<FileStore, FileStoreError> {
        let layout = Layout::create(dir.as_ref())?;
        let lock = layout.lock()?;
        let opened = recover::open(&layout)?;
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(opened.journal.generation()),
            journal_bytes: AtomicU64::new(opened.journal.len()),
            snapshot_bytes: AtomicU64::new(opened.snapshot_bytes),
            layout,
            options,
            state: RwLock::new(opened.state),
            log: Log::default(),
            compacting: Mutex::new(()),
            auto: Mutex::new(Auto::default()),
            syncs: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            last_compaction_error: Mutex::new(None),
        });
        let worker = Arc::clone(&shared);
        let journal = opened.journal;
        let writer = std::thread::Builder::new()
            .name("oauth-store-journal".into())
            .spawn(move || writer::run(worker, journal))
            .map_err(|e| FileStoreError::io("start the journal writer for", dir.as_ref(), e))?;
        let store = FileStore {
            shared,
            writer: Some(writer),
            lock: Some(lock),
            report: opened.report,
        };
        if store.report.upgraded_files > 0 {
            // Converted from an older record version: a snapshot of this version replaces those
            // files before anyone writes (`recover`).
            store.compact()?;
        }
        Ok(store)
    }

    /// What opening found: snapshot loaded, entries replayed, torn bytes discarded.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.shared.layout.dir()
    }

    /// Read access to the in-memory state (for exports, checks and tests). Holding it blocks writers.
    pub fn state(&self) -> RwLockReadGuard<'_, MemoryState> {
        self.shared.read()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.state().len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every change made so far (by any caller) is durable.
    pub fn sync(&self) -> Result<(), FileStoreError> {
        self.shared.log.check()?;
        self.shared.log.wait(self.shared.log.appended())
    }

    /// Compacts now: writes a snapshot of the state and deletes the journals it replaces. The store
    /// keeps serving meanwhile. Call [`Store::purge`] first to leave expired records out.
    pub fn compact(&self) -> Result<CompactStats, FileStoreError> {
        compact::run(&self.shared)
    }

    /// Writes `records` (an export's, `oauth_store_memory::Record`) into the store, replacing
    /// records of the same keys: a compaction whose snapshot also holds them, so a crash leaves
    /// either all of them or none, then the same inserts into the live state. For a store no
    /// server is writing to (`oauth-server db import` holds the directory lock): a change made
    /// by another caller while it runs could be overwritten in memory by an imported record
    /// although the journal, replayed after the snapshot, keeps it.
    pub fn import(&self, records: Vec<Record>) -> Result<CompactStats, FileStoreError> {
        let stats = compact::run_with(&self.shared, &records)?;
        let mut state = self.shared.state.write();
        for record in records {
            state.insert(record);
        }
        Ok(stats)
    }

    /// Total bytes of the store's files on disk.
    pub fn disk_usage(&self) -> Result<u64, FileStoreError> {
        self.shared.layout.disk_usage()
    }

    /// Size and activity counters.
    pub fn stats(&self) -> Stats {
        let (appended, durable) = self.shared.log.positions();
        Stats {
            records: self.len(),
            generation: self.shared.generation.load(Ordering::Relaxed),
            journal_bytes: self.shared.journal_bytes.load(Ordering::Relaxed),
            snapshot_bytes: self.shared.snapshot_bytes.load(Ordering::Relaxed),
            appended,
            durable,
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            compactions: self.shared.compactions.load(Ordering::Relaxed),
            last_compaction_error: self
                .shared
                .last_compaction_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Shuts down gracefully: waits for a running compaction, writes and syncs everything queued,
    /// stops the writer and releases the directory lock. Dropping the store does the same but
    /// cannot report errors.
    pub fn close(mut self) -> Result<(), FileStoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), FileStoreError> {
        let compaction = {
            let mut auto = self.shared.auto.lock().unwrap_or_else(|e| e.into_inner());
            auto.closing = true;
            auto.handle.take()
        };
        if let Some(handle) = compaction {
            let _ = handle.join();
        }
        self.shared.log.close();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.lock.take();
        self.shared.log.check()
    }

    /// Purges one shard, keeping in `lsn` the LSN that every step so far is durable at.
    fn purge_step(
        &self,
        now: u64,
        shard: usize,
        lsn: &mut u64,
    ) -> Result<PurgeStats, FileStoreError> {
        let (stats, at) = self.shared.purge_shard(now, shard)?;
        *lsn = (*lsn).max(at);
        Ok(stats)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Store for FileStore {
    fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, lsn) = self.shared.execute(op)?;
        self.shared.log.wait(lsn)?;
        Ok(reply)
    }

    fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let lsn = self.shared.apply(Vec::new(), effects)?;
        Ok(self.shared.log.wait(lsn)?)
    }

    /// One shard at a time, releasing the lock in between; returns once every step is durable.
    fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        let mut lsn = 0;
        let stats = purge_in_steps(|shard| self.purge_step(now, shard, &mut lsn))?;
        self.shared.log.wait(lsn)?;
        Ok(stats)
    }
}

impl AsyncStore for FileStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, lsn) = self.shared.execute(op)?;
        self.shared.log.durable(lsn).await?;
        Ok(reply)
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let lsn = self.shared.apply(Vec::new(), effects)?;
        Ok(self.shared.log.durable(lsn).await?)
    }

    /// As [`Store::purge`], yielding to the executor between shards.
    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        let mut lsn = 0;
        let stats = purge_in_steps_async(|shard| self.purge_step(now, shard, &mut lsn)).await?;
        self.shared.log.durable(lsn).await?;
        Ok(stats)
    }
}

/// Users and their changes are journaled like the engine's effects: a `change` call is one entry.
impl Directory for FileStore {
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.shared.log.check()?;
        Ok(self.shared.read().user(username))
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.shared.log.check()?;
        Ok(self.shared.read().users())
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.shared.log.check()?;
        Ok(self.shared.read().clients())
    }

    async fn change(&self, users: Vec<UserChange>, effects: Vec<Effect>) -> Result<(), StoreError> {
        let lsn = self.shared.apply(users, effects)?;
        Ok(self.shared.log.durable(lsn).await?)
    }
}

impl RevocationView for FileStore {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.shared.read().access_revoked_at(grant_id)
    }

    fn credential_version(&self, subject: &str) -> u32 {
        self.shared.read().credential_version(subject)
    }

    fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        let state = self.shared.read();
        (
            state.access_revoked_at(grant_id),
            state.credential_version(subject),
        )
    }
}
