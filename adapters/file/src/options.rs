//! Tuning knobs of the file store, with defaults that suit a single authorization server.

use crate::format::MAX_PAYLOAD;

/// How a [`FileStore`](crate::FileStore) compacts and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Compact in the background when the journal outgrows the threshold below (default `true`).
    /// [`FileStore::compact`](crate::FileStore::compact) works either way.
    pub auto_compact: bool,
    /// The journal may always grow to this many bytes before an automatic compaction (default
    /// 64 MiB): below it, rewriting the snapshot costs more than replaying the journal.
    pub compact_min_bytes: u64,
    /// Past `compact_min_bytes`, the journal may grow to this many times the last snapshot's size
    /// (default 1). With 1, the files stay within about twice the live state plus
    /// `compact_min_bytes`, and each compaction rewrites at most as much as was appended since the last.
    pub compact_ratio: u32,
    /// The largest encoded op or `apply` call accepted (default 16 MiB, at most 64 MiB). Larger
    /// ones fail with [`FileStoreError::TooLarge`](crate::FileStoreError::TooLarge) and change nothing.
    pub max_entry_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auto_compact: true,
            compact_min_bytes: 64 << 20,
            compact_ratio: 1,
            max_entry_bytes: 16 << 20,
        }
    }
}

impl Options {
    /// The journal size at which an automatic compaction starts, given the last snapshot's size.
    pub(crate) fn compact_threshold(&self, snapshot_bytes: u64) -> u64 {
        self.compact_min_bytes
            .max(snapshot_bytes.saturating_mul(u64::from(self.compact_ratio)))
    }

    /// The entry limit actually enforced (an entry must fit in one frame).
    pub(crate) fn entry_limit(&self) -> usize {
        self.max_entry_bytes.min(MAX_PAYLOAD - 4)
    }
}
