//! Purge benchmark: how long a purge of a large memory store keeps other requests waiting.
//!
//! A purge visits every record under the store's write lock. This bench fills a store with
//! grants and their refresh families (each as after a rotation), then purges it while another
//! thread reads refresh families (`Op::GetRefresh`, what every refresh request does first) in a
//! loop, and reports the slowest read during the purge and the purge's own time, for a purge under
//! one lock hold (`MemoryState::purge`, what the store did before) and for the store's purge, which
//! goes one shard at a time and releases the lock in between.
//!
//! Run: `cargo bench -p conformance --bench purge`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use oauth_proto::scope::Scope;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    Effect, GrantId, GrantRecord, Op, RefreshFamily, RefreshKey, Reply, Rotated, Store,
};
use oauth_store_memory::{MemoryState, MemoryStore};

/// A way to purge the store at a time; returns how many records went.
type Purge = fn(&MemoryStore, u64) -> u64;

/// A store of `grants` grants with a refresh family each; a tenth of them expired at `now`.
/// Returns the store and the keys of up to a thousand live families.
fn filled(grants: u64, now: u64) -> (MemoryStore, Vec<RefreshKey>) {
    let mut state = MemoryState::default();
    let mut probes = Vec::new();
    for i in 0..grants {
        let digest = SecretHash::of(&format!("grant {i}")).0;
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        let grant_id = GrantId(id);
        let expires_at = if i % 10 == 0 { now - 1 } else { now + 3600 };
        state.apply(Effect::PutGrant(GrantRecord {
            grant_id,
            client_id: "mail-client".into(),
            subject: format!("user{}", i % 1000),
            scope: Scope::parse("mail offline_access").expect("scope"),
            credential_version: 0,
            created_at: 0,
            expires_at,
            revoked_at: None,
            resources: Vec::new(),
            auth_time: None,
            amr: Vec::new(),
            sid: None,
        }));
        state.apply(Effect::PutRefreshFamily(RefreshFamily {
            grant_id,
            family: Some(SecretHash::of(&format!("family {i}"))),
            current: SecretHash::of(&format!("refresh {i} 1")),
            issued_at: 0,
            expires_at,
            previous: Some(Rotated {
                hash: SecretHash::of(&format!("refresh {i} 0")),
                at: 0,
            }),
        }));
        if i % 10 != 0 && probes.len() < 1000 {
            probes.push(RefreshKey::Grant(grant_id));
        }
    }
    (MemoryStore::from_state(state), probes)
}

/// Purges with `purge` while a second thread reads; returns the purge's time and the slowest read.
fn run(grants: u64, purge: impl FnOnce(&MemoryStore, u64) -> u64) -> (Duration, Duration, u64) {
    let now = 1_000_000;
    let (store, probes) = filled(grants, now);
    let store = Arc::new(store);
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done, started) = (store.clone(), done.clone(), started.clone());
        thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            let mut i = 0;
            while !done.load(Ordering::Acquire) {
                let key = probes[i % probes.len()];
                i += 1;
                let t = Instant::now();
                let reply = Store::execute(&*store, Op::GetRefresh { key }).expect("read");
                slowest = slowest.max(t.elapsed());
                assert!(matches!(reply, Reply::Refresh(Some(_))), "a live family");
                started.store(true, Ordering::Release);
            }
            slowest
        })
    };
    while !started.load(Ordering::Acquire) {
        std::hint::spin_loop();
    }
    let t = Instant::now();
    let removed = purge(&store, now);
    let took = t.elapsed();
    done.store(true, Ordering::Release);
    let slowest = reader.join().expect("reader");
    (took, slowest, removed)
}

fn main() {
    println!("purge of a memory store while another thread reads refresh families");
    println!(
        "{:>9} {:>22} {:>12} {:>16} {:>9}",
        "grants", "purge", "purge time", "slowest read", "removed"
    );
    for grants in [100_000, 1_000_000] {
        let cases: [(&str, Purge); 2] = [
            ("one lock hold (before)", |s, now| {
                s.write().purge(now).removed
            }),
            ("shard by shard", |s, now| {
                Store::purge(s, now).expect("purge").removed
            }),
        ];
        for (name, purge) in cases {
            let (took, slowest, removed) = run(grants, purge);
            println!(
                "{grants:>9} {name:>22} {:>9.1} ms {:>13.2} ms {removed:>9}",
                took.as_secs_f64() * 1e3,
                slowest.as_secs_f64() * 1e3
            );
        }
    }
}
