//! Recovery of files written by other builds: version 1 files, another shard count, a future
//! version.

use std::path::{Path, PathBuf};

use oauth_proto::scope::Scope;
use oauth_proto::store::{Effect, GrantId, GrantRecord, Store};
use oauth_store_memory::MemoryState;

use crate::codec::{self, Changes, EntryRef, SnapshotItemRef};
use crate::format::{self, FileKind, FRAME_HEADER};
use crate::{FileStore, FileStoreError, Options};

/// A directory under the system's temporary directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "oauth-file-recover-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn file(&self, kind: FileKind, generation: u64) -> PathBuf {
        self.0.join(format!("{}-{generation:020}", kind.name()))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A header of format `version` (1: the 24-byte base alone; 2: with the extension giving
/// `shards`).
fn header(kind: FileKind, generation: u64, version: u32, shards: u32) -> Vec<u8> {
    let mut h = format::file_header(kind, generation).to_vec();
    h[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    if version == 1 {
        h.truncate(24);
    } else {
        h[28..32].copy_from_slice(&shards.to_le_bytes());
        let crc = crc32fast::hash(&h[24..32]);
        h[32..36].copy_from_slice(&crc.to_le_bytes());
    }
    h
}

/// Writes a file: `header`, then one frame per entry.
fn write(path: &Path, header: &[u8], entries: &[Vec<u8>]) {
    let mut bytes = header.to_vec();
    for entry in entries {
        let mut frame = vec![0u8; FRAME_HEADER];
        frame.extend_from_slice(entry);
        format::seal(&mut frame);
        bytes.extend(frame);
    }
    std::fs::write(path, bytes).unwrap();
}

fn entry<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    codec::append(&mut buf, value, 1 << 20).unwrap();
    buf
}

/// Grants whose ids start with every byte, expiring at 50 (odd bytes) or 500 (even ones).
fn grants() -> Vec<Effect> {
    (0..=255u8)
        .map(|b| {
            let mut id = [b; 16];
            id[1] = 0xaa;
            Effect::PutGrant(GrantRecord {
                grant_id: GrantId(id),
                client_id: "c".into(),
                subject: "u".into(),
                scope: Scope::parse("mail").unwrap(),
                credential_version: 0,
                created_at: 0,
                expires_at: if b % 2 == 1 { 50 } else { 500 },
                revoked_at: None,
                resources: Vec::new(),
                auth_time: None,
                amr: Vec::new(),
                sid: None,
            })
        })
        .collect()
}

/// The state of `grants()` purged at 100: the even half.
fn purged() -> MemoryState {
    let mut expected = MemoryState::default();
    grants().into_iter().for_each(|e| expected.apply(e));
    expected.purge(100);
    assert_eq!(expected.len(), 128);
    expected
}

/// A journal of `grants()` and then the purge at 100 as `shards` steps, one per shard.
fn purge_journal(shards: u32) -> Vec<Vec<u8>> {
    let effects = grants();
    let mut entries = vec![entry(&EntryRef::Effects(Changes::effects(&effects)))];
    entries.extend((0..shards).map(|k| {
        entry(&EntryRef::Purge {
            now: 100,
            shard: Some(k),
        })
    }));
    entries
}

#[test]
fn purges_of_another_shard_count_replay_as_the_same_purge() {
    for shards in [16, 7, 1, 256] {
        let dir = Dir::new("shards");
        write(
            &dir.file(FileKind::Journal, 0),
            &header(FileKind::Journal, 0, 2, shards),
            &purge_journal(shards),
        );
        let store = FileStore::open(&dir.0, Options::default()).unwrap();
        assert_eq!(*store.state(), purged(), "{shards} shards");
        let foreign = shards as usize != oauth_store_memory::SHARDS;
        assert_eq!(
            store.stats().generation,
            u64::from(foreign),
            "a journal of another shard count is not appended to"
        );
        Store::apply(&store, vec![Effect::ResetCounter { key: "k".into() }]).unwrap();
        store.close().unwrap();
        let store = FileStore::open(&dir.0, Options::default()).unwrap();
        assert_eq!(*store.state(), purged(), "{shards} shards, reopened");
    }
}

#[test]
fn version_1_journals_and_snapshots_still_load() {
    let dir = Dir::new("v1");
    // Snapshot 1 holds a grant; journal 1 the grants and the purge by 256 shards, as version 1
    // wrote them (no shard count in the header).
    let mut extra = MemoryState::default();
    let mut id = [0u8; 16];
    id[0] = 0x77;
    let kept = Effect::PutGrant(GrantRecord {
        grant_id: GrantId(id),
        client_id: "c".into(),
        subject: "s".into(),
        scope: Scope::parse("mail").unwrap(),
        credential_version: 0,
        created_at: 0,
        expires_at: 900,
        revoked_at: None,
        resources: Vec::new(),
        auth_time: None,
        amr: Vec::new(),
        sid: None,
    });
    extra.apply(kept.clone());
    let mut snapshot: Vec<Vec<u8>> = extra
        .records()
        .map(|r| entry(&SnapshotItemRef::Record(&r)))
        .collect();
    snapshot.push(entry(&SnapshotItemRef::End { records: 1 }));
    let snapshot = vec![snapshot.concat()];
    write(
        &dir.file(FileKind::Snapshot, 1),
        &header(FileKind::Snapshot, 1, 1, 0),
        &snapshot,
    );
    write(
        &dir.file(FileKind::Journal, 1),
        &header(FileKind::Journal, 1, 1, 0),
        &purge_journal(256),
    );
    let mut expected = purged();
    expected.apply(kept);
    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(store.open_report().snapshot_records, 1);
    assert_eq!(*store.state(), expected);
    assert_eq!(
        store.stats().generation,
        2,
        "writes go to a version 2 journal"
    );
    store.compact().unwrap();
    store.close().unwrap();
    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(
        *store.state(),
        expected,
        "after compaction into version 2 files"
    );
}

#[test]
fn a_future_format_version_is_refused_with_a_clear_error() {
    let dir = Dir::new("future");
    write(
        &dir.file(FileKind::Journal, 0),
        &header(FileKind::Journal, 0, 3, 256),
        &purge_journal(1),
    );
    let err = FileStore::open(&dir.0, Options::default()).unwrap_err();
    assert!(
        matches!(&err, FileStoreError::UnsupportedVersion { found: 3, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("format version 3") && text.contains("reads versions 1 to 2"),
        "{text}"
    );
    // Nothing was touched: the journal is still there, unchanged in size.
    assert!(dir.file(FileKind::Journal, 0).exists());
    assert!(!dir.file(FileKind::Journal, 1).exists());
}
