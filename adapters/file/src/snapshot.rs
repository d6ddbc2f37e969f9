//! Snapshots: every live record, written in one go so the journals before it can be deleted.
//!
//! A snapshot is a file header, then frames of about 1 MiB holding length-prefixed records, the last
//! of which ends with an `End { records }` item. It is written to a `.tmp`, synced, and renamed into
//! place, so a snapshot under its final name is complete; any damage in it is corruption (there is
//! no torn tail to forgive), and a missing `End` means someone truncated it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use oauth_store_memory::{v1, MemoryState, Record};

use crate::codec::{self, SnapshotItem, SnapshotItemRef, V1SnapshotItem};
use crate::error::FileStoreError;
use crate::format::{self, FileKind, FrameReader, Next, FILE_HEADER, FRAME_HEADER, MAX_PAYLOAD};
use crate::layout::Layout;
use crate::pipeline;
use crate::recover::header_error;

/// Target size of a snapshot frame.
const CHUNK: usize = 1 << 20;

/// Writes `state` as snapshot `generation` and returns its size in bytes.
pub(crate) fn write(
    layout: &Layout,
    generation: u64,
    state: &MemoryState,
) -> Result<u64, FileStoreError> {
    let path = layout.path(FileKind::Snapshot, generation);
    let tmp = Layout::tmp(&path);
    layout.remove(std::slice::from_ref(&tmp))?;
    let file = Layout::create_file(&tmp)?;
    let io = |e| FileStoreError::io("write snapshot", &tmp, e);
    let mut out = BufWriter::with_capacity(CHUNK, file);
    out.write_all(&format::file_header(FileKind::Snapshot, generation))
        .map_err(io)?;
    let mut written = FILE_HEADER as u64;
    let mut frame = vec![0u8; FRAME_HEADER];
    let mut records = 0u64;
    for record in state.records() {
        // Records already passed the entry limit when they were journaled; a snapshot item only
        // needs to fit in a frame.
        codec::append(
            &mut frame,
            &SnapshotItemRef::Record(&record),
            MAX_PAYLOAD - 4,
        )?;
        records += 1;
        if frame.len() >= CHUNK {
            written += flush_frame(&mut out, &mut frame).map_err(io)?;
        }
    }
    codec::append(
        &mut frame,
        &SnapshotItemRef::End { records },
        MAX_PAYLOAD - 4,
    )?;
    written += flush_frame(&mut out, &mut frame).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    layout.publish(&tmp, &path)?;
    Ok(written)
}

fn flush_frame(out: &mut impl Write, frame: &mut Vec<u8>) -> std::io::Result<u64> {
    format::seal(frame);
    out.write_all(frame)?;
    let n = frame.len() as u64;
    frame.truncate(FRAME_HEADER);
    Ok(n)
}

/// What loading a snapshot found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loaded {
    /// Records in the file.
    pub records: u64,
    /// Its size.
    pub bytes: u64,
    /// The version of its records (`oauth_store_memory::RECORD_VERSION`, or 1: converted).
    pub record_version: u32,
}

/// Loads snapshot `generation` from `path` into `state`.
pub(crate) fn load(
    path: &Path,
    generation: u64,
    state: &mut MemoryState,
) -> Result<Loaded, FileStoreError> {
    pipeline::run(
        |emit| decode(path, generation, emit),
        |record| state.insert(record),
    )
}

/// Reads, verifies and decodes a snapshot, emitting the records of each frame. A snapshot of
/// record version 1 emits its refresh tokens converted (`oauth_store_memory::v1`) after its
/// other records: a grant's family is built from all of its tokens.
fn decode(
    path: &Path,
    generation: u64,
    emit: &mut dyn FnMut(Vec<Record>),
) -> Result<Loaded, FileStoreError> {
    let file = File::open(path).map_err(|e| FileStoreError::io("open snapshot", path, e))?;
    let io = |e| FileStoreError::io("read snapshot", path, e);
    let end = file.metadata().map_err(io)?.len();
    let mut rd = BufReader::with_capacity(CHUNK, file);
    let header = format::read_header(&mut rd, FileKind::Snapshot, generation)
        .map_err(io)?
        .map_err(|e| header_error(path, e))?;
    let mut frames = FrameReader::new(rd, header.len as u64, end);
    let mut payload = Vec::new();
    let mut records = 0u64;
    let mut v1_tokens = Vec::new();
    loop {
        let at = match frames.next(&mut payload).map_err(io)? {
            Next::Frame(at) => at,
            Next::End => {
                return Err(FileStoreError::corrupt(
                    path,
                    end,
                    "snapshot ends without its end marker",
                ))
            }
            Next::Damaged { offset, reason } => {
                return Err(FileStoreError::corrupt(path, offset, reason))
            }
        };
        let mut batch = Vec::new();
        let mut items = codec::entries(&payload).peekable();
        while let Some(item) = items.next() {
            let bad = |pos: usize, why: String| {
                FileStoreError::corrupt(path, at + (FRAME_HEADER + pos) as u64, why)
            };
            let (pos, bytes) = item.map_err(|pos| bad(pos, "bad item length".into()))?;
            let item = decode_item(bytes, header.record_version, &mut v1_tokens)
                .map_err(|e| bad(pos, format!("undecodable record: {e}")))?;
            match item {
                Item::Record(record) => {
                    records += 1;
                    batch.push(record);
                }
                Item::V1Token => records += 1,
                Item::End(expected) => {
                    if expected != records || items.peek().is_some() || frames.offset() != end {
                        return Err(bad(
                            pos,
                            format!(
                                "end marker counts {expected} records, found {records}, or data follows it"
                            ),
                        ));
                    }
                    emit(batch);
                    if !v1_tokens.is_empty() {
                        emit(v1::convert_refresh(v1_tokens));
                    }
                    return Ok(Loaded {
                        records,
                        bytes: end,
                        record_version: header.record_version,
                    });
                }
            }
        }
        emit(batch);
    }
}

/// A decoded snapshot item.
#[allow(clippy::large_enum_variant)] // One at a time, consumed at once.
enum Item {
    /// A record to load.
    Record(Record),
    /// A record version 1 refresh token, kept aside for conversion.
    V1Token,
    /// The end marker, with the number of records it counts.
    End(u64),
}

/// Decodes one snapshot item of record version `record_version`; a version 1 refresh token goes
/// to `v1_tokens` instead.
fn decode_item(
    bytes: &[u8],
    record_version: u32,
    v1_tokens: &mut Vec<v1::RefreshRecord>,
) -> Result<Item, String> {
    if record_version != 1 {
        return Ok(match codec::decode::<SnapshotItem>(bytes)? {
            SnapshotItem::Record(record) => Item::Record(record),
            SnapshotItem::End { records } => Item::End(records),
        });
    }
    Ok(match codec::decode::<V1SnapshotItem>(bytes)? {
        V1SnapshotItem::Record(v1::Record::Current(record)) => Item::Record(record),
        V1SnapshotItem::Record(v1::Record::Refresh(token)) => {
            v1_tokens.push(token);
            Item::V1Token
        }
        V1SnapshotItem::End { records } => Item::End(records),
    })
}
