//! Compaction: replace the journals with a snapshot of the state they add up to.
//!
//! 1. The writer closes journal `g` (after syncing it) and starts journal `g+1`; every entry
//!    appended after that point goes to `g+1`.
//! 2. The state as of the end of `g` is rebuilt *from the files* (newest snapshot + journals up to
//!    `g`) on the compacting thread. The live store keeps serving and writing meanwhile: compaction
//!    never takes the state lock. (The price is a second copy of the state in memory while it runs.)
//!    Rebuilding from disk also re-verifies every checksum of the files about to be deleted.
//! 3. That state is written as `snapshot-(g+1).tmp`, synced, renamed, and the directory synced.
//! 4. The files it was built from are deleted.
//!
//! A crash at any point leaves a loadable set: before step 3's rename the old snapshot and all
//! journals are intact (and `journal-(g+1)` simply follows `g`); after it, the new snapshot plus
//! `journal-(g+1)` is complete, and start-up deletes the obsolete files and any `.tmp`.
//!
//! Expired records are dropped by [`purge`](oauth_proto::store::Store::purge), which is journaled
//! like any change; call it before compacting (a server runs it periodically anyway), and the
//! snapshot holds only live records.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use oauth_store_memory::Record;

use crate::error::FileStoreError;
use crate::recover;
use crate::shared::Shared;
use crate::snapshot;

/// What a compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactStats {
    /// The generation of the new snapshot (and of the journal now being written).
    pub generation: u64,
    /// Records in the snapshot.
    pub records: u64,
    /// Its size in bytes.
    pub snapshot_bytes: u64,
    /// Files deleted (the snapshot and journals it replaces).
    pub removed_files: usize,
}

/// Compacts now, on this thread. Concurrent calls run one after the other.
pub(crate) fn run(shared: &Shared) -> Result<CompactStats, FileStoreError> {
    run_with(shared, &[])
}

/// [`run`], with `imported` records inserted (replacing records of the same keys) into the state
/// the snapshot is written from: the snapshot's rename publishes all of them at once or, before
/// it, none ([`FileStore::import`](crate::FileStore::import)).
pub(crate) fn run_with(
    shared: &Shared,
    imported: &[Record],
) -> Result<CompactStats, FileStoreError> {
    let _one = shared.compacting.lock().unwrap_or_else(|e| e.into_inner());
    let closed = shared.log.rotate()?;
    let (mut state, sources) = recover::rebuild(&shared.layout, closed)?;
    for record in imported {
        state.insert(record.clone());
    }
    let records = state.len() as u64;
    let bytes = snapshot::write(&shared.layout, closed + 1, &state)?;
    drop(state);
    shared.snapshot_bytes.store(bytes, Ordering::Relaxed);
    shared.layout.remove(&sources)?;
    shared.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(CompactStats {
        generation: closed + 1,
        records,
        snapshot_bytes: bytes,
        removed_files: sources.len(),
    })
}

/// Starts a background compaction unless one is running or the store is closing.
pub(crate) fn start_auto(shared: &Arc<Shared>) {
    if !shared.options.auto_compact {
        return;
    }
    let mut auto = shared.auto.lock().unwrap_or_else(|e| e.into_inner());
    if auto.closing || auto.handle.as_ref().is_some_and(|h| !h.is_finished()) {
        return;
    }
    if let Some(done) = auto.handle.take() {
        let _ = done.join();
    }
    let worker = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("oauth-store-compact".into())
        .spawn(move || {
            let outcome = run(&worker).err().map(|e| e.to_string());
            *worker
                .last_compaction_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = outcome;
        });
    match spawned {
        Ok(handle) => auto.handle = Some(handle),
        Err(e) => {
            *shared
                .last_compaction_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) =
                Some(format!("cannot start compaction thread: {e}"));
        }
    }
}
