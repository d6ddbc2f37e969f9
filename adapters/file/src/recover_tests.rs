//! Recovery of files written by other builds: version 1 files, another shard count, a future
//! version.

use std::path::{Path, PathBuf};

use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::scope::Scope;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    Effect, GrantId, GrantRecord, Op, RefreshFamily, RefreshKey, Reply, Rotated, Store, Successor,
};
use oauth_store_memory::{v1, Change, MemoryState, Record};

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

/// A header of format 2 with record version `record_version`, as the build before refresh
/// families wrote them (record version 1).
fn header_of_records(kind: FileKind, generation: u64, record_version: u32) -> Vec<u8> {
    let mut h = header(kind, generation, 2, oauth_store_memory::SHARDS as u32);
    h[24..28].copy_from_slice(&record_version.to_le_bytes());
    let crc = crc32fast::hash(&h[24..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
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
    assert_eq!(store.open_report().upgraded_files, 2);
    assert_eq!(*store.state(), expected);
    assert_eq!(
        store.stats().generation,
        3,
        "the version 1 files were replaced by a snapshot before any write"
    );
    assert!(dir.file(FileKind::Snapshot, 3).exists());
    assert!(!dir.file(FileKind::Snapshot, 1).exists());
    assert!(!dir.file(FileKind::Journal, 1).exists());
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

/// Record version 1 snapshot items and journal entries, written as that build wrote them.
// Decoded one at a time and consumed at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(serde::Serialize)]
enum V1Item {
    Record(v1::Record),
    End { records: u64 },
}

// Decoded one at a time and consumed at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(serde::Serialize)]
enum V1Entry {
    Op(v1::Op),
    Effects(Vec<v1::Change>),
}

fn grant_record(byte: u8) -> GrantRecord {
    GrantRecord {
        grant_id: GrantId([byte; 16]),
        client_id: "c".into(),
        subject: "u".into(),
        scope: Scope::parse("mail").unwrap(),
        credential_version: 0,
        created_at: 0,
        expires_at: 9000,
        revoked_at: None,
        resources: Vec::new(),
        auth_time: None,
        amr: Vec::new(),
        sid: None,
    }
}

fn public_client() -> ClientRecord {
    ClientRecord {
        client_id: "c".into(),
        name: "Mail app".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        secret_expires_at: None,
        auth_method: AuthMethod::None,
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: Scope::parse("mail").unwrap(),
        require_pkce: true,
        resource_server: false,
        registration_token_hash: None,
        created_at: 1,
        metadata: serde_json::Map::new(),
        unused_expires_at: None,
        access_token_format: Default::default(),
    }
}

fn token(name: &str, grant: u8, issued_at: u64, state: v1::RefreshState) -> v1::RefreshRecord {
    v1::RefreshRecord {
        hash: SecretHash::of(name),
        grant_id: GrantId([grant; 16]),
        issued_at,
        expires_at: issued_at + 5000,
        state,
    }
}

fn rotated(at: u64, into: &str) -> v1::RefreshState {
    v1::RefreshState::Rotated {
        at,
        successor: Some(SecretHash::of(into)),
    }
}

fn family_of(store: &FileStore, name: &str) -> Option<RefreshFamily> {
    let key = RefreshKey::Legacy(SecretHash::of(name));
    match Store::execute(store, Op::GetRefresh { key }).unwrap() {
        Reply::Refresh(found) => found.map(|f| f.family),
        other => panic!("{other:?}"),
    }
}

fn adopted(grant: u8, current: &str, issued_at: u64, previous: (&str, u64)) -> RefreshFamily {
    RefreshFamily {
        grant_id: GrantId([grant; 16]),
        family: None,
        current: SecretHash::of(current),
        issued_at,
        expires_at: issued_at + 5000,
        previous: Some(Rotated {
            hash: SecretHash::of(previous.0),
            at: previous.1,
        }),
    }
}

/// Checks what the version 1 directory of the test below answers, before and after reopening.
fn check_v1_refresh_tokens(store: &FileStore) {
    let a = adopted(0xa0, "a1", 10, ("a0", 10));
    assert_eq!(family_of(store, "a1"), Some(a.clone()), "the active token");
    assert_eq!(family_of(store, "a0"), Some(a), "the rotated one");
    let b = adopted(0xb0, "b2", 30, ("b0", 20));
    for name in ["b0", "b1", "b2"] {
        assert_eq!(family_of(store, name), Some(b.clone()), "{name}");
    }
    let c = adopted(0xc0, "c1", 40, ("c0", 40));
    assert_eq!(family_of(store, "c0"), Some(c.clone()));
    assert_eq!(family_of(store, "c1"), Some(c));
    assert_eq!(family_of(store, "never issued"), None);
}

#[test]
fn version_1_refresh_tokens_become_families_and_keep_working() {
    let dir = Dir::new("v1-refresh");
    // Snapshot 1, format 1 (record version 1): a public client, grant A with a token rotated
    // into an active one, grant B with one active token.
    let records = vec![
        v1::Record::Current(Record::Client(public_client())),
        v1::Record::Refresh(token("a1", 0xa0, 10, v1::RefreshState::Active)),
        v1::Record::Current(Record::Grant(grant_record(0xa0))),
        v1::Record::Refresh(token("a0", 0xa0, 1, rotated(10, "a1"))),
        v1::Record::Current(Record::Grant(grant_record(0xb0))),
        v1::Record::Refresh(token("b0", 0xb0, 2, v1::RefreshState::Active)),
    ];
    let count = records.len() as u64;
    let mut items: Vec<Vec<u8>> = records
        .into_iter()
        .map(|r| entry(&V1Item::Record(r)))
        .collect();
    items.push(entry(&V1Item::End { records: count }));
    write(
        &dir.file(FileKind::Snapshot, 1),
        &header(FileKind::Snapshot, 1, 1, 0),
        &[items.concat()],
    );
    // Journal 1, format 2 with record version 1: B rotated, then that rotation retried; grant C
    // issued, then refreshed by its public client in one step.
    let journal = [
        V1Entry::Op(v1::Op::Refresh(v1::RefreshOp::RotateRefresh {
            old: SecretHash::of("b0"),
            new: token("b1", 0xb0, 20, v1::RefreshState::Active),
        })),
        V1Entry::Op(v1::Op::Refresh(v1::RefreshOp::RetryRotation {
            old: SecretHash::of("b0"),
            successor: SecretHash::of("b1"),
            new: token("b2", 0xb0, 30, v1::RefreshState::Active),
        })),
        V1Entry::Effects(vec![
            v1::Change::Current(Change::Engine(Box::new(Effect::PutGrant(grant_record(
                0xc0,
            ))))),
            v1::Change::PutRefresh(token("c0", 0xc0, 3, v1::RefreshState::Active)),
        ]),
        V1Entry::Op(v1::Op::Refresh(v1::RefreshOp::RefreshPublic {
            hash: SecretHash::of("c0"),
            client_id: "c".into(),
            new: Successor {
                hash: SecretHash::of("c1"),
                issued_at: 40,
                expires_at: 5040,
            },
        })),
    ];
    write(
        &dir.file(FileKind::Journal, 1),
        &header_of_records(FileKind::Journal, 1, 1),
        &journal.iter().map(entry).collect::<Vec<_>>(),
    );

    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(store.open_report().upgraded_files, 2);
    assert_eq!(store.open_report().entries, 4);
    check_v1_refresh_tokens(&store);
    assert!(
        !dir.file(FileKind::Journal, 1).exists() && !dir.file(FileKind::Snapshot, 1).exists(),
        "replaced by a version 2 snapshot"
    );
    store.close().unwrap();

    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(store.open_report().upgraded_files, 0, "now version 2");
    check_v1_refresh_tokens(&store);
    // The first rotation of an adopted family gives it a family secret.
    let family = SecretHash::of("family secret");
    let rotate = Op::RotateRefresh {
        grant_id: GrantId([0xa0; 16]),
        from: SecretHash::of("a1"),
        new: Successor {
            hash: SecretHash::of("a2"),
            issued_at: 50,
            expires_at: 5050,
        },
        family,
        retry: false,
    };
    assert_eq!(
        Store::execute(&store, rotate).unwrap(),
        Reply::Swapped(true)
    );
    let a = family_of(&store, "a0").unwrap();
    assert_eq!((a.family, a.current), (Some(family), SecretHash::of("a2")));
    store.close().unwrap();
    let store = FileStore::open(&dir.0, Options::default()).unwrap();
    assert_eq!(family_of(&store, "a1"), Some(a));
}
