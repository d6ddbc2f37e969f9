//! The on-disk byte format: a file header, then checksummed frames.
//!
//! Every journal and snapshot starts with a 24-byte base header: an 8-byte magic naming the kind of
//! file, the format version (u32 LE), the file's generation (u64 LE, repeated from its name so a
//! renamed or copied file is caught) and a CRC-32 of those 20 bytes. The base header never changes
//! shape, so a file of any version is recognised, and one of a version this build does not know is
//! refused with its number ([`HeaderError::Version`]) rather than misread.
//!
//! Version 2 follows it with a 12-byte extension recording what the content depends on, so the
//! store's state and its files are one versioned contract instead of assumptions about this build:
//! the version of the records and changes inside (`oauth_store_memory::RECORD_VERSION`, u32 LE),
//! the number of shards the writer's purges went by (`oauth_store_memory::SHARDS`, u32 LE: a
//! journal's `Purge { shard: k }` entry means "part `k` of that many", which recovery replays as
//! such whatever this build's shard count) and a CRC-32 of those 8 bytes. Version 1 files (written
//! before the extension) hold version 1 records and purges of 256 shards, the only values that
//! build had; they are read as such. Files of record version 1 (before refresh families) are
//! decoded with `oauth_store_memory::v1` and converted as they load; a store that read any writes a
//! version 2 snapshot at once (`recover`). A journal whose header is not the current one is never
//! appended to: the store starts the next journal generation instead.
//!
//! The rest is frames. A frame is a 12-byte header (payload length u32 LE, CRC-32 of the payload
//! u32 LE, CRC-32 of those eight bytes u32 LE) and the payload. The header carries its own checksum
//! so that a damaged *length* is recognised as damage instead of being trusted: a flipped bit there
//! could otherwise make the rest of the file look like one record running past the end (that is, like
//! a torn write), and every valid record after it would be dropped without a word.
//!
//! Torn write or corruption? The journal writer syncs each frame before it writes the next one, so a
//! crash can only damage the last frame of the newest journal. Damage followed by no valid frame is
//! therefore a torn tail (discarded); damage followed by a valid frame is corruption of synced data
//! (an error naming the file and offset). [`valid_frame_after`] makes that call.

use std::io::{self, Read};

/// The format version this build writes. It reads this one and every earlier one (1).
pub const VERSION: u32 = 2;

/// Size of the base header every version starts with.
const BASE_HEADER: usize = 24;

/// Size of version 2's extension.
const EXTENSION: usize = 12;

/// Size of the header this build writes.
pub(crate) const FILE_HEADER: usize = BASE_HEADER + EXTENSION;

/// The shard count of every version 1 file.
const V1_SHARDS: u32 = 256;

/// Size of a frame header.
pub(crate) const FRAME_HEADER: usize = 12;

/// The largest frame payload written or accepted. Bigger batches are split into several frames,
/// each synced before the next is written, so the torn-tail rule above still holds.
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

/// Which kind of file a header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A write-ahead journal.
    Journal,
    /// A snapshot.
    Snapshot,
}

impl FileKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Journal => b"oauthjnl",
            FileKind::Snapshot => b"oauthsnp",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            FileKind::Journal => "journal",
            FileKind::Snapshot => "snapshot",
        }
    }
}

/// What a file's header says about its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The format version.
    pub version: u32,
    /// The version of the records and changes inside.
    pub record_version: u32,
    /// The shard count its purge entries refer to.
    pub shards: u32,
    /// The header's size: where the first frame starts.
    pub len: usize,
}

impl Header {
    /// The header this build writes.
    pub(crate) fn current() -> Header {
        Header {
            version: VERSION,
            record_version: oauth_store_memory::RECORD_VERSION,
            shards: oauth_store_memory::SHARDS as u32,
            len: FILE_HEADER,
        }
    }
}

/// Encodes the current file header.
pub(crate) fn file_header(kind: FileKind, generation: u64) -> [u8; FILE_HEADER] {
    let current = Header::current();
    let mut h = [0u8; FILE_HEADER];
    h[..8].copy_from_slice(kind.magic());
    h[8..12].copy_from_slice(&current.version.to_le_bytes());
    h[12..20].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h[24..28].copy_from_slice(&current.record_version.to_le_bytes());
    h[28..32].copy_from_slice(&current.shards.to_le_bytes());
    let crc = crc32fast::hash(&h[24..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is wrong with a file header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Damaged, foreign or mismatched; the text says which.
    Bad(String),
    /// Intact, but written by a format version this build does not know.
    Version(u32),
    /// Intact, but holding records of a version this build does not know (it reads 1 up to
    /// `oauth_store_memory::RECORD_VERSION`).
    RecordVersion(u32),
}

/// Reads and checks a file header (of any version this build reads) from the start of `rd`,
/// leaving `rd` at the first frame.
pub(crate) fn read_header(
    rd: &mut impl Read,
    kind: FileKind,
    generation: u64,
) -> io::Result<Result<Header, HeaderError>> {
    let mut h = [0u8; FILE_HEADER];
    let got = read_up_to(rd, &mut h[..BASE_HEADER])?;
    let version = match check_file_header(&h[..got], kind, generation) {
        Ok(version) => version,
        Err(e) => return Ok(Err(e)),
    };
    if version == 1 {
        return Ok(Ok(Header {
            version,
            record_version: 1,
            shards: V1_SHARDS,
            len: BASE_HEADER,
        }));
    }
    let got = read_up_to(rd, &mut h[BASE_HEADER..])?;
    Ok(
        check_extension(&h[BASE_HEADER..BASE_HEADER + got]).map(|(record_version, shards)| {
            Header {
                version,
                record_version,
                shards,
                len: FILE_HEADER,
            }
        }),
    )
}

/// Reads as many bytes as the reader has, up to `buf.len()`.
pub(crate) fn read_up_to(rd: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match rd.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Checks version 2's extension; returns the record version and the shard count.
fn check_extension(e: &[u8]) -> Result<(u32, u32), HeaderError> {
    if e.len() < EXTENSION {
        return Err(HeaderError::Bad("file is shorter than its header".into()));
    }
    if crc32fast::hash(&e[..8]).to_le_bytes() != e[8..12] {
        return Err(HeaderError::Bad("file header checksum mismatch".into()));
    }
    let record_version = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
    let shards = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
    if !(1..=oauth_store_memory::RECORD_VERSION).contains(&record_version) {
        return Err(HeaderError::RecordVersion(record_version));
    }
    if shards == 0 {
        return Err(HeaderError::Bad(
            "file header gives a shard count of 0".into(),
        ));
    }
    Ok((record_version, shards))
}

/// Checks a base file header against the expected kind and generation; returns its version,
/// which this build reads.
fn check_file_header(h: &[u8], kind: FileKind, generation: u64) -> Result<u32, HeaderError> {
    if h.len() < BASE_HEADER {
        return Err(HeaderError::Bad("file is shorter than its header".into()));
    }
    if crc32fast::hash(&h[..20]).to_le_bytes() != h[20..24] {
        if &h[..8] != kind.magic() {
            return Err(HeaderError::Bad(format!("not a {} file", kind.name())));
        }
        return Err(HeaderError::Bad("file header checksum mismatch".into()));
    }
    if &h[..8] != kind.magic() {
        return Err(HeaderError::Bad(format!("not a {} file", kind.name())));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if !(1..=VERSION).contains(&version) {
        return Err(HeaderError::Version(version));
    }
    let found = u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);
    if found != generation {
        return Err(HeaderError::Bad(format!(
            "header says generation {found}, file name says {generation}"
        )));
    }
    Ok(version)
}

/// Fills in the frame header of `frame`, whose first [`FRAME_HEADER`] bytes were reserved for it and
/// whose remaining bytes are the payload.
pub(crate) fn seal(frame: &mut [u8]) {
    let (header, payload) = frame.split_at_mut(FRAME_HEADER);
    let len = payload.len() as u32;
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let hcrc = crc32fast::hash(&header[..8]);
    header[8..12].copy_from_slice(&hcrc.to_le_bytes());
}

/// Decodes a frame header: the payload length and its checksum, if the header is intact.
fn parse_frame_header(h: &[u8]) -> Option<(usize, u32)> {
    let hcrc = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if crc32fast::hash(&h[..8]) != hcrc {
        return None;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len > 0 && len <= MAX_PAYLOAD).then_some((len, crc))
}

/// The outcome of reading one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// A verified frame; its payload is in the buffer, and it started at this offset.
    Frame(u64),
    /// The clean end of the file.
    End,
    /// The bytes from this offset on are not a valid frame.
    Damaged {
        /// Where the bad frame starts.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Reads frames one by one, verifying each.
pub(crate) struct FrameReader<R> {
    rd: R,
    offset: u64,
    end: u64,
}

impl<R: Read> FrameReader<R> {
    /// Reads from `rd`, which is positioned at `offset` of a file of `end` bytes.
    pub(crate) fn new(rd: R, offset: u64, end: u64) -> Self {
        FrameReader { rd, offset, end }
    }

    /// The offset just past the last good frame.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next frame's payload into `payload`.
    pub(crate) fn next(&mut self, payload: &mut Vec<u8>) -> io::Result<Next> {
        let remaining = self.end - self.offset;
        if remaining == 0 {
            return Ok(Next::End);
        }
        let damaged = |reason| {
            Ok(Next::Damaged {
                offset: self.offset,
                reason,
            })
        };
        if remaining < FRAME_HEADER as u64 {
            return damaged("incomplete frame header");
        }
        let mut h = [0u8; FRAME_HEADER];
        self.rd.read_exact(&mut h)?;
        let Some((len, crc)) = parse_frame_header(&h) else {
            return damaged("frame header checksum mismatch");
        };
        if (len as u64) > remaining - FRAME_HEADER as u64 {
            return damaged("frame runs past the end of the file");
        }
        payload.clear();
        payload.resize(len, 0);
        self.rd.read_exact(payload)?;
        if crc32fast::hash(payload) != crc {
            return damaged("frame checksum mismatch");
        }
        let at = self.offset;
        self.offset += (FRAME_HEADER + len) as u64;
        Ok(Next::Frame(at))
    }
}

/// The offset of the first valid frame that starts anywhere in `bytes` after position 0, if any.
/// Used only after damage was found, to tell a torn tail (nothing valid follows) from corruption.
pub(crate) fn valid_frame_after(bytes: &[u8]) -> Option<usize> {
    (1..bytes.len().saturating_sub(FRAME_HEADER - 1)).find(|&p| {
        let Some((len, crc)) = parse_frame_header(&bytes[p..p + FRAME_HEADER]) else {
            return false;
        };
        let start = p + FRAME_HEADER;
        bytes.len() - start >= len && crc32fast::hash(&bytes[start..start + len]) == crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; FRAME_HEADER];
        f.extend_from_slice(payload);
        seal(&mut f);
        f
    }

    fn read_all(bytes: &[u8]) -> (Vec<Vec<u8>>, Next) {
        let mut r = FrameReader::new(bytes, 0, bytes.len() as u64);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match r.next(&mut buf).unwrap() {
                Next::Frame(_) => out.push(buf.clone()),
                other => return (out, other),
            }
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut file = frame(b"one");
        file.extend(frame(b"two"));
        let (frames, end) = read_all(&file);
        assert_eq!(frames, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(end, Next::End);
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let mut file = frame(b"first frame");
        let second = file.len();
        file.extend(frame(b"second frame"));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x40;
            let (frames, end) = read_all(&bad);
            let Next::Damaged { offset, .. } = end else {
                panic!("flip at {i} undetected")
            };
            if i < second {
                assert_eq!((frames.len(), offset), (0, 0));
                // The second frame is intact, so this is corruption, not a torn tail.
                assert_eq!(valid_frame_after(&bad), Some(second));
            } else {
                assert_eq!((frames.len(), offset), (1, second as u64));
                assert_eq!(valid_frame_after(&bad[second..]), None);
            }
        }
    }

    #[test]
    fn truncation_anywhere_is_a_torn_tail() {
        let mut file = frame(b"first");
        let second = file.len();
        file.extend(frame(b"second, which will be torn"));
        for cut in second + 1..file.len() {
            let (frames, end) = read_all(&file[..cut]);
            assert_eq!(frames.len(), 1);
            assert!(matches!(end, Next::Damaged { offset, .. } if offset == second as u64));
            assert_eq!(valid_frame_after(&file[second..cut]), None);
        }
    }

    #[test]
    fn zeros_are_not_a_frame() {
        assert_eq!(valid_frame_after(&[0u8; 4096]), None);
        let (frames, end) = read_all(&[0u8; 64]);
        assert!(frames.is_empty());
        assert!(matches!(end, Next::Damaged { offset: 0, .. }));
    }

    fn read(h: &[u8], kind: FileKind, generation: u64) -> Result<Header, HeaderError> {
        let mut rd = h;
        read_header(&mut rd, kind, generation).unwrap()
    }

    /// The base header with `version`, its checksum recomputed.
    fn with_version(mut h: [u8; FILE_HEADER], version: u32) -> [u8; FILE_HEADER] {
        h[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&h[..20]);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The extension with `record_version` and `shards`, its checksum recomputed.
    fn with_extension(mut h: [u8; FILE_HEADER], record_version: u32, shards: u32) -> [u8; 36] {
        h[24..28].copy_from_slice(&record_version.to_le_bytes());
        h[28..32].copy_from_slice(&shards.to_le_bytes());
        let crc = crc32fast::hash(&h[24..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
        h
    }

    #[test]
    fn file_headers_are_checked() {
        let h = file_header(FileKind::Journal, 7);
        assert_eq!(read(&h, FileKind::Journal, 7), Ok(Header::current()));
        assert_eq!(
            Header::current(),
            Header {
                version: 2,
                record_version: oauth_store_memory::RECORD_VERSION,
                shards: oauth_store_memory::SHARDS as u32,
                len: 36
            }
        );
        assert!(matches!(
            read(&h, FileKind::Snapshot, 7),
            Err(HeaderError::Bad(_))
        ));
        assert!(matches!(
            read(&h, FileKind::Journal, 8),
            Err(HeaderError::Bad(_))
        ));
        assert!(matches!(
            read(&h[..10], FileKind::Journal, 7),
            Err(HeaderError::Bad(_))
        ));
        assert!(matches!(
            read(&h[..30], FileKind::Journal, 7),
            Err(HeaderError::Bad(_))
        ));
        let mut flipped = h;
        flipped[13] ^= 1;
        assert!(matches!(
            read(&flipped, FileKind::Journal, 7),
            Err(HeaderError::Bad(_))
        ));
        for at in 24..36 {
            let mut flipped = h;
            flipped[at] ^= 4;
            assert!(
                matches!(
                    read(&flipped, FileKind::Journal, 7),
                    Err(HeaderError::Bad(_))
                ),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn a_future_format_version_is_refused_by_number() {
        for version in [3, 0, u32::MAX] {
            let h = with_version(file_header(FileKind::Journal, 7), version);
            assert_eq!(
                read(&h, FileKind::Journal, 7),
                Err(HeaderError::Version(version))
            );
        }
        for future in [oauth_store_memory::RECORD_VERSION + 1, 0] {
            let h = with_extension(file_header(FileKind::Snapshot, 1), future, 256);
            assert_eq!(
                read(&h, FileKind::Snapshot, 1),
                Err(HeaderError::RecordVersion(future)),
                "records of an unknown version"
            );
        }
        let h = with_extension(file_header(FileKind::Snapshot, 1), 1, 256);
        assert_eq!(
            read(&h, FileKind::Snapshot, 1).map(|h| h.record_version),
            Ok(1),
            "records of version 1 are read (and converted)"
        );
        let h = with_extension(file_header(FileKind::Snapshot, 1), 1, 0);
        assert!(matches!(
            read(&h, FileKind::Snapshot, 1),
            Err(HeaderError::Bad(_))
        ));
    }

    #[test]
    fn version_1_headers_read_as_256_shards_of_version_1_records() {
        // A version 1 file: the 24-byte base header, then frames at once.
        let v1 = with_version(file_header(FileKind::Journal, 3), 1);
        let mut file = v1[..24].to_vec();
        file.extend_from_slice(b"first frame bytes");
        let mut rd = &file[..];
        let header = read_header(&mut rd, FileKind::Journal, 3).unwrap();
        assert_eq!(
            header,
            Ok(Header {
                version: 1,
                record_version: 1,
                shards: 256,
                len: 24
            })
        );
        assert_eq!(
            rd, b"first frame bytes",
            "the reader stops at the first frame"
        );
    }

    #[test]
    fn another_shard_count_is_read_as_written() {
        let h = with_extension(file_header(FileKind::Journal, 3), 1, 16);
        let header = read(&h, FileKind::Journal, 3).unwrap();
        assert_eq!(header.shards, 16);
        assert_ne!(header, Header::current());
    }
}
