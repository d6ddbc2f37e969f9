//! The journal writer thread: one write and one sync per group of queued entries.
//!
//! It is the only code that writes the active journal, so appends need no file lock and the file
//! order is the LSN order. It also performs journal rotations for compaction (between two batches, so
//! a batch never straddles two journals) and starts automatic compactions when the journal outgrows
//! its threshold.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::compact;
use crate::error::FileStoreError;
use crate::journal::Journal;
use crate::shared::Shared;

/// Fails the log if the writer stops without being asked to (it would otherwise leave callers
/// waiting forever for a sync that never comes).
struct FailOnUnwind<'a>(&'a Shared);

impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.log.fail(FileStoreError::Closed);
        }
    }
}

/// Runs until the log is closed and drained, or a write fails.
pub(crate) fn run(shared: Arc<Shared>, mut journal: Journal) {
    let _guard = FailOnUnwind(&shared);
    while let Some(mut batch) = shared.log.take() {
        if batch.bytes.len() > crate::format::FRAME_HEADER {
            if let Err(e) = journal.append(&mut batch.bytes) {
                shared.log.fail(e);
                return;
            }
            shared.syncs.fetch_add(1, Ordering::Relaxed);
        }
        let mut rotated = None;
        if batch.rotate {
            let closed = journal.generation();
            match Journal::create(&shared.layout, closed + 1) {
                Ok(next) => {
                    journal = next;
                    rotated = Some(closed);
                }
                Err(e) => {
                    // The disk refuses to create files; the next journal write would likely fail
                    // as well. Stopping here keeps the rule simple: any journal IO error is fatal.
                    shared.log.fail(e);
                    return;
                }
            }
        }
        shared
            .generation
            .store(journal.generation(), Ordering::Relaxed);
        shared.journal_bytes.store(journal.len(), Ordering::Relaxed);
        shared.log.completed(batch.last, batch.bytes, rotated);
        if journal.len()
            >= shared
                .options
                .compact_threshold(shared.snapshot_bytes.load(Ordering::Relaxed))
        {
            compact::start_auto(&shared);
        }
    }
}
