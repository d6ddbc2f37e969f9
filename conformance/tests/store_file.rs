//! The store contract against the file store, twice: as is (with automatic compaction at a small
//! threshold, so compactions run under the contract's concurrent load), and reopening itself every
//! few writes (alternately after a compaction), checking each time that the reopened state equals
//! the state before. Then file-store-specific tests: reopening, compaction, locking, permissions,
//! limits, group commit and the debris of interrupted compactions.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use conformance::store_contract::fixtures::{self, TempDir};
use conformance::store_contract::Harness;
use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, CodeTake, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, Store,
    StoreError, StoreErrorKind,
};
use oauth_store_file::{FileStore, FileStoreError, Options};

fn temp(tag: &str) -> TempDir {
    TempDir::new_in(env!("CARGO_TARGET_TMPDIR"), tag)
}

/// A file store in its own temporary directory, optionally closed and reopened every
/// `reopen_every` writes.
struct Tested {
    store: RwLock<Option<Arc<FileStore>>>,
    options: Options,
    reopen_every: u64,
    writes: AtomicU64,
    dir: TempDir,
}

impl Tested {
    fn new(options: Options, reopen_every: u64) -> Tested {
        let dir = temp("contract");
        let store = FileStore::open(dir.path(), options.clone()).expect("open");
        Tested {
            store: RwLock::new(Some(Arc::new(store))),
            options,
            reopen_every,
            writes: AtomicU64::new(0),
            dir,
        }
    }

    fn get(&self) -> Arc<FileStore> {
        self.store
            .read()
            .unwrap()
            .as_ref()
            .expect("store is open")
            .clone()
    }

    fn wrote(&self) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if self.reopen_every > 0 && n.is_multiple_of(self.reopen_every) {
            self.cycle((n / self.reopen_every).is_multiple_of(2));
        }
    }

    /// Closes and reopens the store (compacting first if asked); the state must survive exactly.
    fn cycle(&self, compact: bool) {
        let mut slot = self.store.write().unwrap();
        let mut shared = slot.take().expect("store is open");
        let store = loop {
            match Arc::try_unwrap(shared) {
                Ok(store) => break store,
                Err(still_shared) => {
                    shared = still_shared;
                    std::thread::yield_now();
                }
            }
        };
        let before = store.state().clone();
        if compact {
            store.compact().expect("compact");
        }
        store.close().expect("close");
        let reopened = FileStore::open(self.dir.path(), self.options.clone()).expect("reopen");
        assert_eq!(*reopened.state(), before, "state after reopening");
        *slot = Some(Arc::new(reopened));
    }
}

impl Store for Tested {
    fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        let mutates = op.mutates();
        let reply = Store::execute(&*self.get(), op);
        if mutates {
            self.wrote();
        }
        reply
    }

    fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let done = Store::apply(&*self.get(), effects);
        self.wrote();
        done
    }

    fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        let done = Store::purge(&*self.get(), now);
        self.wrote();
        done
    }
}

impl AsyncStore for Tested {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        let store = self.get();
        AsyncStore::execute(&*store, op).await
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        let store = self.get();
        AsyncStore::apply(&*store, effects).await
    }

    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        let store = self.get();
        AsyncStore::purge(&*store, now).await
    }
}

impl Directory for Tested {
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let store = self.get();
        store.user(username).await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let store = self.get();
        store.users().await
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let store = self.get();
        store.clients().await
    }

    async fn change(&self, users: Vec<UserChange>, effects: Vec<Effect>) -> Result<(), StoreError> {
        let store = self.get();
        let done = store.change(users, effects).await;
        drop(store);
        self.wrote();
        done
    }
}

impl RevocationView for Tested {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.get().access_revoked_at(grant_id)
    }

    fn credential_version(&self, subject: &str) -> u32 {
        self.get().credential_version(subject)
    }
}

fn small_threshold() -> Options {
    Options {
        compact_min_bytes: 64 << 10,
        ..Options::default()
    }
}

fn footprint(t: &Tested) -> Option<u64> {
    let store = t.get();
    store.compact().expect("compact");
    Some(store.disk_usage().expect("disk usage"))
}

mod as_is {
    use super::*;

    fn harness() -> Harness<Tested> {
        Harness {
            fresh: || Tested::new(small_threshold(), 0),
            len: |t| t.get().len(),
            footprint,
        }
    }

    conformance::store_contract_tests!(harness());
    conformance::directory_contract_tests!(harness());
}

mod reopening {
    use super::*;

    fn harness() -> Harness<Tested> {
        Harness {
            fresh: || Tested::new(Options::default(), 3),
            // Reopen before every count too, so each case's final state is checked after a reload.
            len: |t| {
                t.cycle(false);
                t.get().len()
            },
            footprint,
        }
    }

    conformance::store_contract_tests!(harness());
    conformance::directory_contract_tests!(harness());
}

fn open(dir: &Path) -> FileStore {
    FileStore::open(dir, Options::default()).expect("open")
}

/// A mixed workload touching every kind of record and every mutating op.
fn workload(s: &FileStore, round: u64) {
    use fixtures::*;
    let base = round * 1000;
    block_on(s.change(
        vec![UserChange::PutUser(user(&format!("user-{round}")))],
        vec![Effect::PutClient(client(&format!("app-{round}")))],
    ))
    .unwrap();
    for i in 0..20 {
        let n = base + i;
        let token = format!("rt-{n}");
        Store::apply(
            s,
            vec![
                Effect::PutGrant(grant(n, "app", "alice", 5000 + i)),
                Effect::PutRefreshFamily(refresh(&token, n, 100, 5000 + i)),
                Effect::PutCode(code(
                    &format!("code-{n}"),
                    n,
                    "app",
                    if i % 3 == 0 { "bob" } else { "alice" },
                    1000 + i * 10,
                )),
            ],
        )
        .unwrap();
        if i % 2 == 0 {
            assert_eq!(
                Store::execute(
                    s,
                    Op::RotateRefresh {
                        grant_id: grant_id(n),
                        from: hash(&token),
                        new: successor(&format!("{token}-b"), 200, 6000),
                        family: family_hash(n),
                        retry: false,
                    }
                )
                .unwrap(),
                Reply::Swapped(true)
            );
        }
        if i % 4 == 0 {
            let taken = Store::execute(
                s,
                Op::TakeCode {
                    hash: hash(&format!("code-{n}")),
                },
            )
            .unwrap();
            assert!(matches!(taken, Reply::Code(CodeTake::Taken(_))));
        }
        Store::execute(
            s,
            Op::Count {
                key: format!("k{}", i % 3),
                now: 100 + i,
                expires_at: 110 + i,
            },
        )
        .unwrap();
    }
    Store::apply(
        s,
        vec![
            Effect::RevokeGrant {
                grant_id: grant_id(base + 1),
                at: 300,
                keep_until: 900,
            },
            Effect::RevokeSubject {
                subject: "bob".into(),
                at: 310,
                keep_until: 950,
            },
            Effect::PutDevice(device(
                &format!("dev-{round}"),
                "app",
                approved("carol", base + 99),
                1200,
            )),
        ],
    )
    .unwrap();
    Store::purge(s, 1050).unwrap();
}

#[test]
fn acknowledged_writes_survive_close_and_reopen() {
    let dir = temp("reopen");
    let s = open(dir.path());
    workload(&s, 1);
    let before = s.state().clone();
    let appended = s.stats().appended;
    s.close().unwrap();

    let s = open(dir.path());
    assert_eq!(*s.state(), before);
    assert_eq!(s.open_report().entries, appended);
    assert_eq!(s.open_report().torn_bytes, 0);
    workload(&s, 2);
    let before = s.state().clone();
    drop(s); // dropping also flushes and releases the directory
    assert_eq!(*open(dir.path()).state(), before);
}

#[test]
fn compaction_preserves_the_state_and_replaces_the_journal() {
    let dir = temp("compact");
    let s = open(dir.path());
    workload(&s, 1);
    let journal_before = s.stats().journal_bytes;
    let before = s.state().clone();
    let stats = s.compact().unwrap();
    assert_eq!(stats.generation, 1);
    assert_eq!(stats.records, before.len() as u64);
    assert_eq!(stats.removed_files, 1, "journal 0 is gone");
    assert_eq!(*s.state(), before, "compaction does not touch memory");
    let mut names = file_names(dir.path());
    names.retain(|n| n != "LOCK");
    assert_eq!(
        names,
        [
            "journal-00000000000000000001",
            "snapshot-00000000000000000001"
        ]
    );
    assert!(s.stats().journal_bytes < journal_before);

    workload(&s, 2);
    s.compact().unwrap();
    workload(&s, 3);
    let before = s.state().clone();
    s.close().unwrap();
    let s = open(dir.path());
    assert_eq!(*s.state(), before);
    assert_eq!(s.open_report().snapshot_generation, Some(2));
    assert!(s.open_report().snapshot_records > 0);
}

/// An import (an export's records) lands all at once through a snapshot, replaces records of the
/// same keys, keeps the records it does not name, and survives a reopen: the records of one store
/// written into another give the same state.
#[test]
fn an_import_writes_every_record_through_one_snapshot() {
    let from = temp("import-from");
    let source = open(from.path());
    workload(&source, 1);
    workload(&source, 2);
    let records: Vec<_> = source.state().records().collect();
    assert!(!records.is_empty());
    let exported = source.state().clone();
    source.close().unwrap();

    // Into an empty store: the same state, in memory and after a reopen.
    let into = temp("import-into");
    let target = open(into.path());
    let stats = target.import(records.clone()).unwrap();
    assert_eq!(stats.records, records.len() as u64);
    assert_eq!(*target.state(), exported);
    target.close().unwrap();
    let target = open(into.path());
    assert_eq!(*target.state(), exported);
    assert_eq!(target.open_report().snapshot_records, records.len() as u64);

    // Into a store with records of its own: those stay, the imported ones are added, and importing
    // the same records again changes nothing (same keys replaced).
    let other = temp("import-other");
    let mixed = open(other.path());
    workload(&mixed, 3);
    let own: Vec<_> = mixed.state().records().collect();
    mixed.import(records.clone()).unwrap();
    let after = mixed.state().clone();
    let kept: Vec<_> = after.records().collect();
    let own_keys_only = own.iter().filter(|r| {
        matches!(
            r,
            oauth_store_memory::Record::Client(_) | oauth_store_memory::Record::Grant(_)
        )
    });
    for record in records.iter().chain(own_keys_only) {
        assert!(
            kept.contains(record),
            "{record:?} is missing after the import"
        );
    }
    mixed.import(records).unwrap();
    assert_eq!(*mixed.state(), after);
    mixed.close().unwrap();
    assert_eq!(*open(other.path()).state(), after);
}

#[test]
fn automatic_compaction_keeps_the_files_proportional_to_live_state() {
    use fixtures::*;
    let dir = temp("auto");
    let options = Options {
        compact_min_bytes: 16 << 10,
        ..Options::default()
    };
    let s = FileStore::open(dir.path(), options.clone()).unwrap();
    // Churn: every round puts 50 codes that are already expired at the next purge.
    for round in 0..60u64 {
        let codes = (0..50)
            .map(|i| {
                Effect::PutCode(code(
                    &format!("c-{round}-{i}"),
                    i,
                    "app",
                    "alice",
                    round * 10 + 5,
                ))
            })
            .collect();
        Store::apply(&s, codes).unwrap();
        Store::purge(&s, round * 10 + 5).unwrap();
    }
    // 60 rounds wrote about 600 KiB of journal. While a compaction runs the journal keeps growing,
    // and the next write after it starts another; a few small writes later, what stays on disk is
    // within a few thresholds.
    let mut usage = s.disk_usage().unwrap();
    for _ in 0..200 {
        if usage < 3 * (16 << 10) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        Store::apply(&s, vec![Effect::PutClient(client("tick"))]).unwrap();
        usage = s.disk_usage().unwrap();
    }
    let stats = s.stats();
    assert!(usage < 3 * (16 << 10), "{usage} bytes on disk, {stats:?}");
    assert!(stats.compactions >= 3, "{stats:?}");
    assert_eq!(stats.last_compaction_error, None);
    let before = s.state().clone();
    s.close().unwrap();
    assert_eq!(
        *FileStore::open(dir.path(), options).unwrap().state(),
        before
    );
}

#[test]
fn a_second_open_of_the_directory_is_refused() {
    let dir = temp("lock");
    let first = open(dir.path());
    let err = FileStore::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(&err, FileStoreError::Locked { dir: d } if d == dir.path()),
        "{err}"
    );
    assert!(err.to_string().contains("in use"), "{err}");
    first.close().unwrap();
    open(dir.path()).close().unwrap();
}

#[cfg(unix)]
#[test]
fn the_directory_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp("perms");
    let s = open(dir.path());
    workload(&s, 1);
    s.compact().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700);
    for name in file_names(dir.path()) {
        assert_eq!(mode(&dir.path().join(&name)), 0o600, "{name}");
    }
}

#[test]
fn oversized_entries_are_refused_and_change_nothing() {
    use fixtures::*;
    let dir = temp("limit");
    let s = FileStore::open(
        dir.path(),
        Options {
            max_entry_bytes: 4096,
            ..Options::default()
        },
    )
    .unwrap();
    let mut big = client("big");
    big.metadata
        .insert("blob".into(), serde_json::Value::String("x".repeat(8192)));
    let err = Store::apply(
        &s,
        vec![Effect::PutClient(client("first")), Effect::PutClient(big)],
    )
    .unwrap_err();
    assert!(
        err.message().contains("exceeds the limit of 4096 bytes"),
        "{err}"
    );
    assert_eq!(err.kind(), StoreErrorKind::Overloaded);
    assert!(s.is_empty(), "nothing of the refused call was applied");
    Store::apply(&s, vec![Effect::PutClient(client("second"))]).unwrap();
    assert_eq!(s.len(), 1);
}

#[test]
fn answers_that_change_nothing_write_nothing() {
    use fixtures::*;
    let dir = temp("noop");
    let s = open(dir.path());
    Store::apply(
        &s,
        vec![
            Effect::PutCode(code("c", 1, "app", "alice", 1000)),
            Effect::PutGrant(grant(1, "app", "alice", 5000)),
            Effect::PutRefreshFamily(refresh("rt", 1, 100, 5000)),
        ],
    )
    .unwrap();
    Store::execute(&s, Op::TakeCode { hash: hash("c") }).unwrap();
    Store::execute(
        &s,
        Op::RotateRefresh {
            grant_id: grant_id(1),
            from: hash("rt"),
            new: successor("rt2", 200, 6000),
            family: family_hash(1),
            retry: false,
        },
    )
    .unwrap();
    let before = s.stats();
    for i in 0..100 {
        // Replayed and unknown codes, stale rotations and swaps, empty purges: an attacker's retries
        // must not grow the journal or cost syncs.
        Store::execute(&s, Op::TakeCode { hash: hash("c") }).unwrap();
        Store::execute(
            &s,
            Op::TakeCode {
                hash: hash(&format!("guess-{i}")),
            },
        )
        .unwrap();
        Store::execute(
            &s,
            Op::RotateRefresh {
                grant_id: grant_id(1),
                from: hash("rt"),
                new: successor("rt3", 300, 7000),
                family: family_hash(1),
                retry: false,
            },
        )
        .unwrap();
        Store::execute(
            &s,
            Op::SwapDevice {
                expected_revision: 0,
                record: device("none", "app", approved("x", 1), 900),
            },
        )
        .unwrap();
        Store::purge(&s, 10).unwrap();
        Store::apply(&s, vec![]).unwrap();
    }
    let after = s.stats();
    assert_eq!(
        (after.appended, after.syncs, after.journal_bytes),
        (before.appended, before.syncs, before.journal_bytes)
    );
}

#[test]
fn concurrent_writers_share_syncs() {
    use fixtures::*;
    let dir = temp("group");
    let s = open(dir.path());
    const THREADS: u64 = 32;
    const EACH: u64 = 25;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                for i in 0..EACH {
                    Store::apply(
                        s,
                        vec![Effect::PutGrant(grant(t * 100 + i, "app", "alice", 5000))],
                    )
                    .unwrap();
                }
            });
        }
    });
    let stats = s.stats();
    assert_eq!(
        (stats.appended, stats.durable),
        (THREADS * EACH, THREADS * EACH)
    );
    assert!(
        stats.syncs < stats.appended,
        "{} syncs for {} acknowledged writes",
        stats.syncs,
        stats.appended
    );
    s.close().unwrap();
    assert_eq!(open(dir.path()).len(), (THREADS * EACH) as usize);
}

#[test]
fn debris_of_an_interrupted_compaction_is_cleared_at_start() {
    let dir = temp("debris");
    let s = open(dir.path());
    workload(&s, 1);
    s.close().unwrap();
    let journal0 = std::fs::read(dir.path().join("journal-00000000000000000000")).unwrap();

    // Crash after the new snapshot was published but before the old journal was deleted.
    let s = open(dir.path());
    s.compact().unwrap();
    workload(&s, 2);
    let expected = s.state().clone();
    s.close().unwrap();
    std::fs::write(dir.path().join("journal-00000000000000000000"), &journal0).unwrap();
    std::fs::write(
        dir.path().join("snapshot-00000000000000000002.tmp"),
        b"half a snapshot",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    let s = open(dir.path());
    assert_eq!(*s.state(), expected);
    assert_eq!(s.open_report().removed_files, 2);
    s.close().unwrap();
    let mut names = file_names(dir.path());
    names.retain(|n| n != "LOCK");
    assert_eq!(
        names,
        [
            "journal-00000000000000000001",
            "notes.txt",
            "snapshot-00000000000000000001"
        ]
    );
}

#[test]
fn a_crash_between_rotation_and_snapshot_loses_nothing() {
    let dir = temp("rotation");
    let s = open(dir.path());
    workload(&s, 1);
    s.close().unwrap();
    let journal0 = std::fs::read(dir.path().join("journal-00000000000000000000")).unwrap();
    let s = open(dir.path());
    s.compact().unwrap();
    workload(&s, 2);
    let expected = s.state().clone();
    s.close().unwrap();
    // Undo the snapshot and the deletion: journal 0 then journal 1, as right after the rotation.
    std::fs::remove_file(dir.path().join("snapshot-00000000000000000001")).unwrap();
    std::fs::write(dir.path().join("journal-00000000000000000000"), &journal0).unwrap();
    let s = open(dir.path());
    assert_eq!(*s.state(), expected);
    assert_eq!(
        (
            s.open_report().journals,
            s.open_report().snapshot_generation
        ),
        (2, None)
    );
    // The next compaction folds both journals into one snapshot.
    s.compact().unwrap();
    s.close().unwrap();
    assert_eq!(*open(dir.path()).state(), expected);
}

#[test]
fn a_missing_journal_stops_the_start() {
    let dir = temp("missing");
    let s = open(dir.path());
    workload(&s, 1);
    s.compact().unwrap();
    workload(&s, 2);
    s.close().unwrap();
    let journal = dir.path().join("journal-00000000000000000001");
    std::fs::remove_file(&journal).unwrap();
    let err = FileStore::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(&err, FileStoreError::Corrupt { path, .. } if *path == journal),
        "{err}"
    );
}

#[test]
fn async_callers_are_woken_after_the_sync() {
    use fixtures::*;
    let dir = temp("async");
    let s = Arc::new(open(dir.path()));
    let workers: Vec<_> = (0..8u64)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                block_on(async {
                    for i in 0..20 {
                        AsyncStore::apply(
                            &*s,
                            vec![Effect::PutGrant(grant(t * 100 + i, "app", "alice", 5000))],
                        )
                        .await
                        .unwrap();
                    }
                })
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let stats = s.stats();
    assert_eq!((stats.durable, stats.records), (160, 160));
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
