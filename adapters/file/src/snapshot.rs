//! Snapshots: every live record, written in one go so the journals before it can be deleted.
//!
//! A snapshot is a file header, then frames of about 1 MiB holding length-prefixed records, the last
//! of which ends with an `End { records }` item. It is written to a `.tmp`, synced, and renamed into
//! place, so a snapshot under its final name is complete; any damage in it is corruption (there is
//! no torn tail to forgive), and a missing `End` means someone truncated it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use oauth_store_memory::{MemoryState, Record};

use crate::codec::{self, SnapshotItem, SnapshotItemRef};
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

/// Loads snapshot `generation` from `path` into `state`; returns (records, bytes).
pub(crate) fn load(
    path: &Path,
    generation: u64,
    state: &mut MemoryState,
) -> Result<(u64, u64), FileStoreError> {
    pipeline::run(
        |emit| decode(path, generation, emit),
        |record| state.insert(record),
    )
}

/// Reads, verifies and decodes a snapshot, emitting the records of each frame.
fn decode(
    path: &Path,
    generation: u64,
    emit: &mut dyn FnMut(Vec<Record>),
) -> Result<(u64, u64), FileStoreError> {
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
            let item = codec::decode::<SnapshotItem>(bytes)
                .map_err(|e| bad(pos, format!("undecodable record: {e}")))?;
            match item {
                SnapshotItem::Record(record) => batch.push(record),
                SnapshotItem::End { records: expected } => {
                    records += batch.len() as u64;
                    if expected != records || items.peek().is_some() || frames.offset() != end {
                        return Err(bad(
                            pos,
                            format!(
                                "end marker counts {expected} records, found {records}, or data follows it"
                            ),
                        ));
                    }
                    emit(batch);
                    return Ok((records, end));
                }
            }
        }
        records += batch.len() as u64;
        emit(batch);
    }
}
