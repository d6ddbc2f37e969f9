//! File store benchmark: acknowledged (synced) effects per second against the disk's raw sync rate,
//! start-up replay of a million records, and memory per live refresh grant.
//!
//! Run with `cargo bench -p oauth-store-file`. Files go to Cargo's target tmp directory (on the
//! same disk as the build), never to a tmpfs. `BENCH_SECONDS` sets each throughput run's length
//! (default 3), `BENCH_RECORDS` the replay size (default 1,000,000).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oauth_proto::scope::Scope;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{Effect, GrantId, GrantRecord, RefreshFamily, Store};
use oauth_store_file::{FileStore, Options};

fn grant_id(n: u64) -> GrantId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    GrantId(id)
}

fn grant(n: u64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id(n),
        client_id: format!("client-{}", n % 50),
        subject: format!("user-{}", n % 100_000),
        scope: Scope::parse("openid profile email offline_access").expect("scope"),
        credential_version: 0,
        created_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        revoked_at: None,
        resources: Vec::new(),
        auth_time: None,
        amr: Vec::new(),
        sid: None,
    }
}

fn refresh(n: u64) -> RefreshFamily {
    RefreshFamily {
        grant_id: grant_id(n),
        family: Some(SecretHash::of(&format!("family secret {n}"))),
        current: SecretHash::of(&format!("refresh token {n}")),
        issued_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        previous: None,
    }
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Raw rate of "append one small record, fdatasync" on the same disk.
fn raw_sync_rate(base: &Path, seconds: f64) -> f64 {
    let path = base.join("raw-sync-probe");
    let _ = std::fs::remove_file(&path);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("probe file");
    let record = [0x5au8; 64];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        file.write_all(&record).expect("write");
        file.sync_data().expect("sync");
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    rate
}

/// One throughput measurement, interleaved with the raw sync probe.
struct Run {
    /// Acknowledged effects per second while writing.
    rate: f64,
    /// Raw append+fdatasync per second in the probe slices between.
    raw: f64,
    /// Effects per sync.
    per_sync: f64,
    /// CPU seconds per acknowledged effect.
    cpu_per_effect: f64,
}

/// Acknowledged effects per second with `writers` threads, each applying one effect per call.
///
/// The disk's sync latency drifts by an order of magnitude within seconds when anything else on
/// the machine writes, so the run is cut into slices that alternate with slices of the raw probe,
/// and both rates are summed over their own slices: they see the same conditions.
fn throughput(base: &Path, writers: u64, seconds: f64) -> Run {
    const SLICES: u32 = 6;
    let dir = fresh_dir(base, &format!("throughput-{writers}"));
    let store = FileStore::open(&dir, Options::default()).expect("open");
    let (stop, paused) = (AtomicBool::new(false), AtomicBool::new(true));
    let acked = AtomicU64::new(0);
    let (mut writing, mut counted, mut cpu) = (0.0, 0u64, 0.0);
    let (mut probing, mut probed) = (0.0, 0.0);
    let syncs_before = store.stats().syncs;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let (store, stop, paused, acked) = (&store, &stop, &paused, &acked);
            scope.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if paused.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let n = (w << 40) | i;
                    // Journaled and synced like any effect; without its grant, memory drops it.
                    Store::apply(store, vec![Effect::PutRefreshFamily(refresh(n))]).expect("apply");
                    acked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        for _ in 0..SLICES {
            let slice = seconds / f64::from(SLICES);
            let rate = raw_sync_rate(base, slice / 2.0);
            probed += rate * slice / 2.0;
            probing += slice / 2.0;
            let (before, started, cpu_before) =
                (acked.load(Ordering::Relaxed), Instant::now(), cpu_seconds());
            paused.store(false, Ordering::Relaxed);
            std::thread::sleep(Duration::from_secs_f64(slice));
            paused.store(true, Ordering::Relaxed);
            writing += started.elapsed().as_secs_f64();
            counted += acked.load(Ordering::Relaxed) - before;
            cpu += cpu_seconds() - cpu_before;
            std::thread::sleep(Duration::from_millis(20)); // let in-flight calls finish
        }
        stop.store(true, Ordering::Relaxed);
    });
    let syncs = store.stats().syncs - syncs_before;
    let total = acked.load(Ordering::Relaxed);
    store.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        rate: counted as f64 / writing,
        raw: probed / probing,
        per_sync: total as f64 / syncs.max(1) as f64,
        cpu_per_effect: cpu / counted.max(1) as f64,
    }
}

/// User + system CPU seconds of this process so far (Linux), to tell work from waiting on a busy machine.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() as f64 / 100.0
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let records: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("file-store-bench");
    std::fs::create_dir_all(&base).expect("bench directory");
    println!("file store benchmark in {}", base.display());
    if std::env::var("BENCH_PHASE").as_deref() == Ok("load") {
        // Profiling aid: time opening the directory a previous run left with BENCH_KEEP=1.
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let store = FileStore::open(
            base.join("replay"),
            Options {
                auto_compact: false,
                ..Options::default()
            },
        )
        .expect("open");
        println!(
            "opened {} records in {:.2} s ({:.2} s CPU)",
            store.len(),
            started.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
        return;
    }

    let phase = std::env::var("BENCH_PHASE").unwrap_or_default();
    println!(
        "writers  acknowledged effects/s  raw append+fdatasync/s  ratio  effects/sync  CPU/effect"
    );
    let writer_counts: &[u64] = if phase == "build" { &[] } else { &[1, 16, 64] };
    for &writers in writer_counts {
        let run = throughput(&base, writers, seconds);
        println!(
            "{writers:>7}  {:>22.0}  {:>22.0}  {:>5.1}x  {:>12.1}  {:>7.1} µs",
            run.rate,
            run.raw,
            run.rate / run.raw,
            run.per_sync,
            run.cpu_per_effect * 1e6
        );
    }

    if phase == "throughput" {
        return;
    }

    // Replay: `records` records as apply calls of [PutGrant, PutRefreshFamily] (one live refresh
    // grant each).
    let dir = fresh_dir(&base, "replay");
    let grants = records / 2;
    let options = Options {
        auto_compact: false,
        ..Options::default()
    };
    let store = FileStore::open(&dir, options.clone()).expect("open");
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..64 {
            let (store, next) = (&store, &next);
            scope.spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= grants {
                    break;
                }
                Store::apply(
                    store,
                    vec![
                        Effect::PutGrant(grant(n)),
                        Effect::PutRefreshFamily(refresh(n)),
                    ],
                )
                .expect("apply");
            });
        }
    });
    let stats = store.stats();
    println!(
        "wrote {} records in {grants} acknowledged calls, 64 writers: {:.1} s, journal {:.1} MiB ({:.0} bytes/record)",
        stats.records,
        started.elapsed().as_secs_f64(),
        stats.journal_bytes as f64 / 1048576.0,
        stats.journal_bytes as f64 / stats.records as f64
    );
    store.close().expect("close");
    if std::env::var("BENCH_PHASE").as_deref() == Ok("build") {
        // Profiling aid: leave the journal for BENCH_PHASE=load.
        return;
    }

    let (started, cpu) = (Instant::now(), cpu_seconds());
    let store = FileStore::open(&dir, options.clone()).expect("reopen");
    let replay = started.elapsed().as_secs_f64();
    println!(
        "start-up replay of the journal ({} records, {} entries): {replay:.2} s ({:.2} s CPU on 2 threads)",
        store.len(),
        store.open_report().entries,
        cpu_seconds() - cpu
    );
    let compacted = Instant::now();
    let snapshot = store.compact().expect("compact");
    println!(
        "compaction to a snapshot: {:.2} s, {:.1} MiB ({:.0} bytes/record)",
        compacted.elapsed().as_secs_f64(),
        snapshot.snapshot_bytes as f64 / 1048576.0,
        snapshot.snapshot_bytes as f64 / snapshot.records as f64
    );
    store.close().expect("close");

    let before = resident_bytes();
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let store = FileStore::open(&dir, options).expect("reopen");
    let load = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    println!(
        "start-up load of the snapshot ({} records): {load:.2} s ({:.2} s CPU on 2 threads)",
        store.len(),
        cpu_seconds() - cpu
    );
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "memory per live refresh grant (grant + refresh family): {:.0} bytes resident ({:.0} MiB for {grants})",
            (a.saturating_sub(b)) as f64 / grants as f64,
            (a.saturating_sub(b)) as f64 / 1048576.0
        ),
        _ => println!("memory per live refresh grant: /proc/self/statm not available"),
    }
    println!(
        "  (struct sizes: GrantRecord {} B, RefreshFamily {} B, before map overhead and heap strings)",
        std::mem::size_of::<GrantRecord>(),
        std::mem::size_of::<RefreshFamily>()
    );
    store.close().expect("close");
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
