//! The file store's typed errors.
//!
//! Every way a start or a write can fail has its own variant, so callers can tell "someone else has
//! this directory open" from "this file is damaged at byte 4096" from "the disk refused a write".
//! Damage is always reported with the file and the byte offset, because the person reading the
//! message is deciding whether to restore a backup.
//!
//! Write failures are sticky: once the journal could not be written or synced, the store's memory
//! may be ahead of its files, so it refuses all further work with [`FileStoreError::Failed`] (after
//! a failed fsync the kernel may already have dropped the dirty pages, so retrying cannot be
//! trusted). Reopening recovers from what is on disk.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use oauth_proto::store::{StoreError, StoreErrorKind};

/// Why the file store could not open, read or write.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileStoreError {
    /// A file system operation failed.
    Io {
        /// What was being done (e.g. "sync journal").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another store (in this or another process) has the directory open.
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// A file is damaged where a crash cannot have damaged it (anywhere but the unsynced tail of
    /// the newest journal), or a file the data depends on is missing. Nothing was dropped: the
    /// store refuses to start rather than serve partial data.
    Corrupt {
        /// The damaged (or missing) file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A file was written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in its header.
        found: u32,
    },
    /// A file holds records of a newer (or unknown) version (`oauth_store_memory::RECORD_VERSION`).
    UnsupportedRecordVersion {
        /// The file.
        path: PathBuf,
        /// The record version found in its header.
        found: u32,
    },
    /// One op or one `apply` call encodes to more bytes than [`Options::max_entry_bytes`](crate::Options::max_entry_bytes).
    TooLarge {
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A record could not be encoded.
    Encode(String),
    /// An earlier write failed; the store accepts no more work. Reopen it to recover from disk.
    Failed(Arc<FileStoreError>),
    /// The store is shutting down.
    Closed,
}

impl FileStoreError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileStoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        FileStoreError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FileStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileStoreError::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
            FileStoreError::Locked { dir } => write!(
                f,
                "data directory {} is in use by another store (lock file {} is held)",
                dir.display(),
                dir.join(crate::layout::LOCK_FILE).display()
            ),
            FileStoreError::Corrupt {
                path,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "{} is damaged at byte offset {offset}: {reason}",
                    path.display()
                )
            }
            FileStoreError::UnsupportedVersion { path, found } => write!(
                f,
                "{} has format version {found}; this build reads versions 1 to {} \
                 (a newer build wrote it, or the header is damaged)",
                path.display(),
                crate::format::VERSION
            ),
            FileStoreError::UnsupportedRecordVersion { path, found } => write!(
                f,
                "{} holds records of version {found}; this build reads version {}",
                path.display(),
                oauth_store_memory::RECORD_VERSION
            ),
            FileStoreError::TooLarge { bytes, limit } => {
                write!(
                    f,
                    "entry of {bytes} bytes exceeds the limit of {limit} bytes"
                )
            }
            FileStoreError::Encode(msg) => write!(f, "cannot encode record: {msg}"),
            FileStoreError::Failed(cause) => {
                write!(
                    f,
                    "store stopped after an earlier write failure ({cause}); reopen it"
                )
            }
            FileStoreError::Closed => f.write_str("store is closed"),
        }
    }
}

impl std::error::Error for FileStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileStoreError::Io { source, .. } => Some(source),
            FileStoreError::Failed(cause) => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl FileStoreError {
    /// The engine-facing kind of this failure.
    fn kind(&self) -> StoreErrorKind {
        match self {
            FileStoreError::Corrupt { .. }
            | FileStoreError::UnsupportedVersion { .. }
            | FileStoreError::UnsupportedRecordVersion { .. } => StoreErrorKind::Corrupt,
            FileStoreError::TooLarge { .. } => StoreErrorKind::Overloaded,
            FileStoreError::Failed(cause) => cause.kind(),
            FileStoreError::Io { .. }
            | FileStoreError::Locked { .. }
            | FileStoreError::Encode(_)
            | FileStoreError::Closed => StoreErrorKind::Unavailable,
        }
    }
}

/// Keeps the typed error as the source, its kind, and its message (which names the file, offset
/// or limit).
impl From<FileStoreError> for StoreError {
    fn from(e: FileStoreError) -> Self {
        StoreError::new(e.kind(), e.to_string()).with_source(e)
    }
}
