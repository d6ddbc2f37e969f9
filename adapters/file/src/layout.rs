//! The data directory: file names, owner-only permissions, the directory lock and fsyncs.
//!
//! The directory holds `snapshot-<gen>` and `journal-<gen>` files (generation as 20 decimal digits,
//! so names sort in generation order), `*.tmp` files being written, and the `LOCK` file. The state is
//! the newest snapshot `s` (or nothing, for `s = 0`) plus journals `s, s+1, ...` replayed in order;
//! every older file is obsolete. Files only ever appear complete under their final name: they are
//! written as `.tmp`, synced, renamed, and the directory is synced, so a crash leaves either the old
//! set of files or the new one, plus perhaps a `.tmp` to delete.
//!
//! The stored records hold only hashes of secrets, but they still reveal who uses which client, so
//! the directory is created `0700` and every file `0600`. An exclusive `flock` on `LOCK`, held for
//! the store's lifetime, keeps a second process (or a second store in this process) from opening the
//! same directory and interleaving journal writes; the kernel drops it if the process dies.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::FileStoreError;
use crate::format::FileKind;

/// Name of the lock file.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// How long a busy directory lock is retried before the store reports it held (see
/// [`Layout::lock`]).
pub(crate) const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

const TMP: &str = ".tmp";

/// The files of one data directory.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
}

/// What a directory holds.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Generations of complete snapshots.
    pub snapshots: BTreeSet<u64>,
    /// Generations of journals.
    pub journals: BTreeSet<u64>,
    /// Leftover temporary files.
    pub temps: Vec<PathBuf>,
}

impl Layout {
    /// The layout of `dir`, which is created (owner-only) if missing.
    pub(crate) fn create(dir: &Path) -> Result<Layout, FileStoreError> {
        if !dir.is_dir() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| FileStoreError::io("create directory", dir, e))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a journal or snapshot.
    pub(crate) fn path(&self, kind: FileKind, generation: u64) -> PathBuf {
        self.dir.join(format!("{}-{generation:020}", kind.name()))
    }

    /// Path of the temporary file that becomes `path`.
    pub(crate) fn tmp(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(TMP);
        PathBuf::from(name)
    }

    /// Takes the exclusive directory lock, or reports who holds it.
    ///
    /// A lock just released can still look held for a moment: a process that spawns a child
    /// (`fork`, then `exec`) gives the child copies of its descriptors until the `exec` closes
    /// them, and an `flock` lives as long as any copy. So a busy lock is tried again for up to
    /// [`LOCK_PATIENCE`] before it is reported; a store really held by another process is still
    /// refused, just not instantly.
    pub(crate) fn lock(&self) -> Result<File, FileStoreError> {
        let path = self.dir.join(LOCK_FILE);
        let file = owner_only(OpenOptions::new().read(true).write(true).create(true))
            .open(&path)
            .map_err(|e| FileStoreError::io("open lock file", &path, e))?;
        let start = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(FileStoreError::Locked {
                        dir: self.dir.clone(),
                    })
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(FileStoreError::io("lock", &path, e))
                }
            }
        }
    }

    /// Lists the directory's journals, snapshots and leftovers. Unknown files are ignored.
    pub(crate) fn list(&self) -> Result<Listing, FileStoreError> {
        let mut listing = Listing::default();
        let read = fs::read_dir(&self.dir).map_err(|e| FileStoreError::io("list", &self.dir, e))?;
        for entry in read {
            let entry = entry.map_err(|e| FileStoreError::io("list", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(base) = name.strip_suffix(TMP) {
                if parse(base).is_some() {
                    listing.temps.push(entry.path());
                }
                continue;
            }
            match parse(name) {
                Some((FileKind::Journal, g)) => listing.journals.insert(g),
                Some((FileKind::Snapshot, g)) => listing.snapshots.insert(g),
                None => false,
            };
        }
        Ok(listing)
    }

    /// Creates a new file (which must not exist) readable and writable by the owner only.
    pub(crate) fn create_file(path: &Path) -> Result<File, FileStoreError> {
        owner_only(OpenOptions::new().read(true).write(true).create_new(true))
            .open(path)
            .map_err(|e| FileStoreError::io("create", path, e))
    }

    /// Renames a synced temporary file to its final name and syncs the directory.
    pub(crate) fn publish(&self, tmp: &Path, path: &Path) -> Result<(), FileStoreError> {
        fs::rename(tmp, path).map_err(|e| FileStoreError::io("rename", tmp, e))?;
        self.sync()
    }

    /// Removes files (those already gone are fine), then syncs the directory once if any was.
    pub(crate) fn remove(&self, paths: &[PathBuf]) -> Result<(), FileStoreError> {
        let mut removed = false;
        for path in paths {
            match fs::remove_file(path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FileStoreError::io("remove", path, e)),
            }
        }
        if removed {
            self.sync()?;
        }
        Ok(())
    }

    /// Syncs the directory, making creations, renames and removals in it durable.
    pub(crate) fn sync(&self) -> Result<(), FileStoreError> {
        sync_dir(&self.dir)
    }

    /// Total size of the store's files.
    pub(crate) fn disk_usage(&self) -> Result<u64, FileStoreError> {
        let listing = self.list()?;
        let files = listing
            .journals
            .iter()
            .map(|g| self.path(FileKind::Journal, *g))
            .chain(
                listing
                    .snapshots
                    .iter()
                    .map(|g| self.path(FileKind::Snapshot, *g)),
            )
            .chain(listing.temps);
        let mut total = 0;
        for path in files {
            total += match fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => return Err(FileStoreError::io("stat", &path, e)),
            };
        }
        Ok(total)
    }
}

fn parse(name: &str) -> Option<(FileKind, u64)> {
    let (kind, digits) = if let Some(d) = name.strip_prefix("journal-") {
        (FileKind::Journal, d)
    } else {
        (FileKind::Snapshot, name.strip_prefix("snapshot-")?)
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind, digits.parse().ok()?))
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

fn sync_dir(dir: &Path) -> Result<(), FileStoreError> {
    // Directories can be opened and synced on Unix; elsewhere renames are durable on their own
    // terms and opening a directory fails, so there is nothing to do.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FileStoreError::io("sync directory", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let layout = Layout {
            dir: PathBuf::from("/d"),
        };
        let p = layout.path(FileKind::Journal, 42);
        assert_eq!(p, PathBuf::from("/d/journal-00000000000000000042"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse(name), Some((FileKind::Journal, 42)));
        assert_eq!(
            parse("snapshot-18446744073709551615"),
            Some((FileKind::Snapshot, u64::MAX))
        );
        assert_eq!(parse("journal-42"), None);
        assert_eq!(parse("journal-0000000000000000004x"), None);
        assert_eq!(parse("LOCK"), None);
        assert_eq!(
            Layout::tmp(&p),
            PathBuf::from("/d/journal-00000000000000000042.tmp")
        );
    }
}
