//! Rebuilding the state from disk: at start-up, and for compaction.
//!
//! The state is the newest snapshot `s` plus the journals `s, s+1, ...` replayed in order. Leftover
//! `.tmp` files and files older than `s` are the debris of an interrupted compaction; start-up
//! removes them (the older files only after the newer ones loaded). Only the tail of the newest journal may be
//! torn; there, damage that no valid frame follows is cut off and the file truncated to its last good
//! frame. Damage anywhere else, a gap in the journal generations or an undecodable entry stops the
//! start with [`FileStoreError::Corrupt`] naming the file and byte offset: the store never starts on
//! partial data.
//!
//! Files of record version 1 (before refresh families) are read through `oauth_store_memory::v1`,
//! which converts their records and replays their entries as version 2. The conversion is
//! deterministic, so a compaction's rebuild from the same files gets the same state; still,
//! [`FileStore::open`](crate::FileStore::open) writes a version 2 snapshot as soon as it read any
//! (before it accepts a write), so the old files go at once and a later build needs no conversion.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oauth_store_memory::{MemoryState, RECORD_VERSION};

use crate::codec::{self, Entry};
use crate::error::FileStoreError;
use crate::format::{self, FileKind, FrameReader, Header, HeaderError, Next, FRAME_HEADER};
use crate::journal::Journal;
use crate::layout::Layout;
use crate::pipeline;
use crate::snapshot;

/// What opening a store found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The generation of the snapshot loaded, if there was one.
    pub snapshot_generation: Option<u64>,
    /// Records loaded from it.
    pub snapshot_records: u64,
    /// Journals replayed.
    pub journals: u64,
    /// Journal entries replayed (one per mutating op, `apply` call or purge).
    pub entries: u64,
    /// Bytes of a torn final frame that were discarded (never acknowledged to anyone).
    pub torn_bytes: u64,
    /// Leftover files of an interrupted compaction that were removed.
    pub removed_files: usize,
    /// Files of an older record version (`oauth_store_memory::v1`) that were read and converted;
    /// when there were any, the store wrote a snapshot of the current version at once, which
    /// replaced them.
    pub upgraded_files: u64,
}

/// A state loaded at start-up, with the newest journal open for appending.
#[derive(Debug)]
pub(crate) struct Opened {
    pub state: MemoryState,
    pub journal: Journal,
    pub snapshot_bytes: u64,
    pub report: OpenReport,
}

/// Loads the state, truncating a torn tail of the newest journal, and tidies the directory.
pub(crate) fn open(layout: &Layout) -> Result<Opened, FileStoreError> {
    let listing = layout.list()?;
    // Temporary files are never read: a crash interrupted their writing.
    layout.remove(&listing.temps)?;
    let base = listing.snapshots.last().copied();
    let base_gen = base.unwrap_or(0);
    let journals: Vec<u64> = listing.journals.range(base_gen..).copied().collect();
    check_chain(layout, base_gen, &journals)?;

    let mut opened = load(layout, base, &journals)?;

    // Files older than the newest snapshot are left over from a compaction interrupted after it
    // published the snapshot. They go only now that the newer files have loaded, so a damaged
    // snapshot leaves them in place for whoever restores by hand.
    let obsolete: Vec<PathBuf> = listing
        .snapshots
        .range(..base_gen)
        .map(|g| layout.path(FileKind::Snapshot, *g))
        .chain(
            listing
                .journals
                .range(..base_gen)
                .map(|g| layout.path(FileKind::Journal, *g)),
        )
        .collect();
    layout.remove(&obsolete)?;
    opened.report.removed_files = listing.temps.len() + obsolete.len();
    Ok(opened)
}

/// Loads snapshot `base` (if any) and replays `journals`, the last one tolerating a torn tail.
fn load(layout: &Layout, base: Option<u64>, journals: &[u64]) -> Result<Opened, FileStoreError> {
    let mut report = OpenReport::default();
    let mut state = MemoryState::default();
    let mut snapshot_bytes = 0;
    if let Some(g) = base {
        let loaded = snapshot::load(&layout.path(FileKind::Snapshot, g), g, &mut state)?;
        report.snapshot_generation = Some(g);
        report.snapshot_records = loaded.records;
        report.upgraded_files += u64::from(loaded.record_version < RECORD_VERSION);
        snapshot_bytes = loaded.bytes;
    }
    let Some((&last, older)) = journals.split_last() else {
        let generation = base.unwrap_or(0);
        if base.is_some() {
            // Compaction creates journal `g` before snapshot `g`, so it cannot be missing: someone
            // deleted it, and with it every change since the snapshot.
            let path = layout.path(FileKind::Journal, generation);
            return Err(FileStoreError::corrupt(
                path,
                0,
                "journal is missing (its snapshot exists)",
            ));
        }
        let journal = Journal::create(layout, generation)?;
        return Ok(Opened {
            state,
            journal,
            snapshot_bytes,
            report,
        });
    };
    for &g in older {
        let done = replay(&layout.path(FileKind::Journal, g), g, &mut state, false)?;
        report.entries += done.entries;
        report.upgraded_files += u64::from(done.header.record_version < RECORD_VERSION);
    }
    let path = layout.path(FileKind::Journal, last);
    let done = replay(&path, last, &mut state, true)?;
    report.entries += done.entries;
    report.upgraded_files += u64::from(done.header.record_version < RECORD_VERSION);
    report.journals = journals.len() as u64;
    if done.torn_bytes > 0 {
        report.torn_bytes = done.torn_bytes;
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(done.valid_len).and_then(|()| f.sync_all()))
            .map_err(|e| FileStoreError::io("truncate torn journal tail of", &path, e))?;
    }
    // Appending to a journal whose header is not this build's would mix entries of two shard counts
    // (or formats) under one header: such a journal is closed as it is, and the next one started.
    let journal = if done.header == Header::current() {
        Journal::reopen(layout, last, done.valid_len)?
    } else {
        Journal::create(layout, last + 1)?
    };
    Ok(Opened {
        state,
        journal,
        snapshot_bytes,
        report,
    })
}

/// Compaction's rebuild: the state as of the end of journal `upto` (already closed and synced), from
/// the newest snapshot at or before it. Returns the state and the files it was built from.
pub(crate) fn rebuild(
    layout: &Layout,
    upto: u64,
) -> Result<(MemoryState, Vec<PathBuf>), FileStoreError> {
    let listing = layout.list()?;
    let base = listing.snapshots.range(..=upto).next_back().copied();
    let base_gen = base.unwrap_or(0);
    let journals: Vec<u64> = listing.journals.range(base_gen..=upto).copied().collect();
    check_chain(layout, base_gen, &journals)?;
    if journals.last() != Some(&upto) {
        return Err(FileStoreError::corrupt(
            layout.path(FileKind::Journal, upto),
            0,
            "journal is missing",
        ));
    }
    let mut state = MemoryState::default();
    let mut sources = Vec::new();
    if let Some(g) = base {
        let path = layout.path(FileKind::Snapshot, g);
        snapshot::load(&path, g, &mut state)?;
        sources.push(path);
    }
    for &g in &journals {
        let path = layout.path(FileKind::Journal, g);
        replay(&path, g, &mut state, false)?;
        sources.push(path);
    }
    Ok((state, sources))
}

/// Journals must run without gaps from the snapshot's generation on.
fn check_chain(layout: &Layout, base: u64, journals: &[u64]) -> Result<(), FileStoreError> {
    for (expected, &found) in (base..).zip(journals) {
        if found != expected {
            let path = layout.path(FileKind::Journal, expected);
            return Err(FileStoreError::corrupt(
                path,
                0,
                format!("journal is missing (journal {found} exists, so data would be lost)"),
            ));
        }
    }
    Ok(())
}

/// Entries handed from the decoding thread to the applying one at a time.
const BATCH: usize = 1024;

struct Replayed {
    entries: u64,
    valid_len: u64,
    torn_bytes: u64,
    /// What the journal's header said.
    header: Header,
}

/// Replays one journal into `state`. With `tolerate_tail`, damage that no valid frame follows is
/// reported as torn bytes instead of an error.
fn replay(
    path: &Path,
    generation: u64,
    state: &mut MemoryState,
    tolerate_tail: bool,
) -> Result<Replayed, FileStoreError> {
    pipeline::run(
        |emit| decode_journal(path, generation, tolerate_tail, emit),
        |entry| replay_entry(state, entry),
    )
}

/// Reads, verifies and decodes one journal, emitting the entries of each frame.
fn decode_journal(
    path: &Path,
    generation: u64,
    tolerate_tail: bool,
    emit: &mut dyn FnMut(Vec<Entry>),
) -> Result<Replayed, FileStoreError> {
    let file = File::open(path).map_err(|e| FileStoreError::io("open journal", path, e))?;
    let io = |e| FileStoreError::io("read journal", path, e);
    let end = file.metadata().map_err(io)?.len();
    let mut rd = BufReader::with_capacity(1 << 20, file);
    let header = format::read_header(&mut rd, FileKind::Journal, generation)
        .map_err(io)?
        .map_err(|e| header_error(path, e))?;
    let mut frames = FrameReader::new(rd, header.len as u64, end);
    let mut payload = Vec::new();
    let mut entries = 0;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let next = frames.next(&mut payload).map_err(io)?;
        if !matches!(next, Next::Frame(_)) {
            emit(std::mem::take(&mut batch));
        }
        match next {
            Next::Frame(at) => {
                for item in codec::entries(&payload) {
                    let bad = |pos: usize, why: String| {
                        FileStoreError::corrupt(path, at + (FRAME_HEADER + pos) as u64, why)
                    };
                    let (pos, bytes) = item.map_err(|pos| bad(pos, "bad entry length".into()))?;
                    let mut entry = codec::decode_entry(bytes, header.record_version)
                        .map_err(|e| bad(pos, format!("undecodable entry: {e}")))?;
                    if let Entry::Purge { of, .. } = &mut entry {
                        *of = header.shards;
                    }
                    batch.push(entry);
                    entries += 1;
                }
                // Frames of a lone writer hold one entry each; hand over in bigger batches.
                if batch.len() >= BATCH {
                    emit(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            }
            Next::End => {
                return Ok(Replayed {
                    entries,
                    valid_len: end,
                    torn_bytes: 0,
                    header,
                })
            }
            Next::Damaged { offset, reason } => {
                if !tolerate_tail {
                    return Err(FileStoreError::corrupt(path, offset, reason));
                }
                if let Some(next) = valid_frame_from(path, offset)? {
                    return Err(FileStoreError::corrupt(
                        path,
                        offset,
                        format!(
                            "{reason}, and a valid frame follows at offset {next}, so this is not a torn write"
                        ),
                    ));
                }
                return Ok(Replayed {
                    entries,
                    valid_len: offset,
                    torn_bytes: end - offset,
                    header,
                });
            }
        }
    }
}

/// Applies one journal entry exactly as the live store did.
pub(crate) fn replay_entry(state: &mut MemoryState, entry: Entry) {
    match entry {
        Entry::Op(op) => {
            state.execute(op);
        }
        Entry::Effects(changes) => changes.into_iter().for_each(|c| state.apply_change(c)),
        Entry::OpV1(op) => state.execute_v1(op),
        Entry::EffectsV1(changes) => changes.into_iter().for_each(|c| state.apply_v1(c)),
        Entry::Purge {
            now, shard: None, ..
        } => {
            state.purge(now);
        }
        Entry::Purge {
            now,
            shard: Some(shard),
            of,
        } => {
            state.purge_part(now, shard as usize, of as usize);
        }
    }
}

/// The offset of a valid frame starting after `offset`, if the file has one.
fn valid_frame_from(path: &Path, offset: u64) -> Result<Option<u64>, FileStoreError> {
    let mut rest = Vec::new();
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_end(&mut rest)
        })
        .map_err(|e| FileStoreError::io("read journal", path, e))?;
    Ok(format::valid_frame_after(&rest).map(|p| offset + p as u64))
}

/// Turns a bad file header into the matching error.
pub(crate) fn header_error(path: &Path, e: HeaderError) -> FileStoreError {
    match e {
        HeaderError::Bad(reason) => FileStoreError::corrupt(path, 0, reason),
        HeaderError::Version(found) => FileStoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
        },
        HeaderError::RecordVersion(found) => FileStoreError::UnsupportedRecordVersion {
            path: path.to_path_buf(),
            found,
        },
    }
}

#[cfg(test)]
#[path = "recover_tests.rs"]
mod tests;
