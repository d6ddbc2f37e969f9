//! The shared state `oauth-server` keeps in PostgreSQL for its nodes, checked at the store: the
//! per-address bounds on sessions and pages hold exactly under concurrent creations from four
//! nodes, a session keeps only its newest pages, a page is taken once, signing in moves the pages,
//! expired rows are invisible and purged; the registration quota is exact under concurrency; a
//! failure batch sent by one node reaches the others and not itself. The cluster is a throwaway
//! one the test starts (`oauth_store_postgres::testing`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::store_contract::fixtures::block_on;
use oauth_proto::store::Store;
use oauth_store_postgres::testing::{missing_component, Cluster};
use oauth_store_postgres::{Options, PageLimits, PageRefusal, PostgresStore, Quota, SessionRow};

/// Four nodes' stores on one fresh database (and the cluster, kept alive).
fn nodes() -> Option<(Cluster, Vec<PostgresStore>)> {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(what) => {
            missing_component(&what);
            return None;
        }
    };
    let url = cluster.create_database().expect("create a database");
    let stores = (0..4)
        .map(|_| PostgresStore::connect_blocking(&url, options()).expect("open"))
        .collect();
    Some((cluster, stores))
}

/// Small pools and patient waits: the tests' clusters share a small machine.
fn options() -> Options {
    Options {
        max_connections: 4,
        wait_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

const LIMITS: PageLimits = PageLimits {
    max_entries: 1000,
    max_anonymous_per_address: 5,
    max_pages_per_address: 7,
    max_pages_per_session: 3,
};

fn id(n: u32) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

/// Runs `work(node, i)` for `i` in `0..n` on `n` threads, node `i % 4`; the answers in order.
fn concurrently<T: Send>(
    stores: &[PostgresStore],
    n: u32,
    work: impl Fn(&PostgresStore, u32) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let work = &work;
                let store = &stores[i as usize % stores.len()];
                scope.spawn(move || work(store, i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    })
}

#[test]
fn per_address_bounds_hold_exactly_across_nodes() {
    let Some((_cluster, stores)) = nodes() else {
        return;
    };
    let source = vec![192, 0, 2, 1];
    let made = concurrently(&stores, 40, |store, i| {
        block_on(store.create_session(id(i), source.clone(), 100, 0, LIMITS)).expect("store")
    });
    assert_eq!(made.iter().filter(|m| m.is_ok()).count(), 5, "{made:?}");
    assert!(made
        .iter()
        .all(|m| m.is_ok() || *m == Err(PageRefusal::Address)));
    // Another address is unaffected.
    let other = block_on(stores[1].create_session(id(100), vec![192, 0, 2, 2], 100, 0, LIMITS));
    assert_eq!(other.expect("store"), Ok(()));
    // Pages: 40 sessions' worth of pages from one address, 7 stored.
    let put = concurrently(&stores, 40, |store, i| {
        block_on(store.put_page(
            id(1000 + i),
            id(i),
            source.clone(),
            b"body".to_vec(),
            100,
            0,
            LIMITS,
        ))
        .expect("store")
    });
    assert_eq!(put.iter().filter(|p| p.is_ok()).count(), 7, "{put:?}");
    // Expired rows no longer count.
    let later = block_on(stores[2].create_session(id(200), source.clone(), 300, 100, LIMITS));
    assert_eq!(later.expect("store"), Ok(()));
    // The full table is refused as such.
    let full = PageLimits {
        max_entries: 2,
        ..LIMITS
    };
    let refused = block_on(stores[3].create_session(id(300), vec![10, 0, 0, 1], 300, 100, full));
    assert_eq!(refused.expect("store"), Ok(()));
    let refused = block_on(stores[3].create_session(id(301), vec![10, 0, 0, 2], 300, 100, full));
    assert_eq!(refused.expect("store"), Err(PageRefusal::Full));
}

#[test]
fn pages_are_newest_per_session_taken_once_and_follow_a_sign_in() {
    let Some((_cluster, stores)) = nodes() else {
        return;
    };
    let source = vec![192, 0, 2, 1];
    let session = id(1);
    block_on(stores[0].create_session(session, source.clone(), 100, 0, LIMITS))
        .expect("store")
        .expect("made");
    for p in 0..5 {
        block_on(stores[p as usize % 4].put_page(
            id(10 + p),
            session,
            source.clone(),
            vec![p as u8],
            100,
            0,
            LIMITS,
        ))
        .expect("store")
        .expect("stored");
    }
    for p in 0..5 {
        let page = block_on(stores[3].page(id(10 + p), session, 1)).expect("store");
        assert_eq!(page, (p >= 2).then(|| vec![p as u8]), "page {p}");
    }
    assert_eq!(
        block_on(stores[0].page(id(14), id(2), 1)).expect("store"),
        None,
        "another session's"
    );

    // Signing in replaces the session and moves its pages.
    let signed_in = SessionRow {
        user: Some("alice".into()),
        signed_in_at: Some(1),
        oidc_sid: Some("sid-1".into()),
        relying_parties: Vec::new(),
        anonymous_from: None,
        expires_at: 1000,
    };
    fn as_given(_: &SessionRow, new: SessionRow) -> SessionRow {
        new
    }
    let (before, stored) =
        block_on(stores[1].replace_session(session, id(2), signed_in.clone(), as_given, 1))
            .expect("store")
            .expect("replaced");
    assert_eq!((before.user, stored.clone()), (None, signed_in.clone()));
    assert!(
        block_on(stores[2].replace_session(session, id(3), signed_in.clone(), as_given, 1))
            .expect("store")
            .is_none()
    );
    assert_eq!(
        block_on(stores[2].session(session, 1)).expect("store"),
        None
    );
    assert_eq!(
        block_on(stores[3].session(id(2), 1)).expect("store"),
        Some(signed_in.clone())
    );

    // The session's clients (back-channel logout): added once each from any node, at most the
    // bound, even when the nodes add concurrently.
    concurrently(&stores, 16, |store, n| {
        block_on(store.add_relying_party(id(2), format!("c{}", n % 6), 4, 1)).expect("store")
    });
    let listed = block_on(stores[0].session(id(2), 1))
        .expect("store")
        .expect("live")
        .relying_parties;
    assert_eq!(listed.len(), 4, "{listed:?}");
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{listed:?}");
    // The row a replacement stores is the caller's rule applied to the old one, which comes
    // back too (whom to tell that the session ended).
    fn keep_old(old: &SessionRow, new: SessionRow) -> SessionRow {
        SessionRow {
            oidc_sid: old.oidc_sid.clone(),
            relying_parties: old.relying_parties.clone(),
            ..new
        }
    }
    let again = SessionRow {
        oidc_sid: None,
        ..signed_in.clone()
    };
    let (before, stored) = block_on(stores[2].replace_session(id(2), id(4), again, keep_old, 1))
        .expect("store")
        .expect("replaced");
    assert_eq!(before.relying_parties, listed);
    assert_eq!(stored.oidc_sid.as_deref(), Some("sid-1"));
    assert_eq!(
        block_on(stores[3].session(id(4), 1)).expect("store"),
        Some(stored)
    );
    let (_, back) =
        block_on(stores[0].replace_session(id(4), id(2), signed_in.clone(), as_given, 1))
            .expect("store")
            .expect("replaced");
    assert_eq!(back, signed_in);
    assert_eq!(
        block_on(stores[0].page(id(14), session, 1)).expect("store"),
        None
    );

    // Taken once, whichever nodes race for it.
    let taken = concurrently(&stores, 16, |store, _| {
        block_on(store.take_page(id(14), id(2), 1)).expect("store")
    });
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1);
    assert_eq!(
        block_on(stores[0].page(id(14), id(2), 1)).expect("store"),
        None
    );

    // Expired: invisible at once, deleted by the purge.
    assert_eq!(
        block_on(stores[0].page(id(13), id(2), 100)).expect("store"),
        None
    );
    let purged = Store::purge(&stores[0], 2000).expect("purge");
    assert!(purged.removed >= 2, "{purged:?}");
    assert_eq!(
        block_on(stores[0].take_page(id(13), id(2), 1)).expect("store"),
        None
    );
    assert_eq!(block_on(stores[0].session(id(2), 1)).expect("store"), None);
}

#[test]
fn the_registration_quota_is_exact_across_nodes() {
    let Some((_cluster, stores)) = nodes() else {
        return;
    };
    let quota = Quota {
        per_address: 5,
        total: 8,
        window_secs: 60,
    };
    let first = concurrently(&stores, 30, |store, _| {
        block_on(store.take_registration(vec![192, 0, 2, 1], quota, 0)).expect("store")
    });
    assert_eq!(first.iter().filter(|t| t.is_ok()).count(), 5, "{first:?}");
    assert!(
        first.iter().all(|t| matches!(t, Ok(()) | Err(60))),
        "{first:?}"
    );
    let second = concurrently(&stores, 30, |store, _| {
        block_on(store.take_registration(vec![192, 0, 2, 2], quota, 10)).expect("store")
    });
    assert_eq!(
        second.iter().filter(|t| t.is_ok()).count(),
        3,
        "what is left of the total"
    );
    // A new window.
    let renewed = block_on(stores[0].take_registration(vec![192, 0, 2, 1], quota, 60));
    assert_eq!(renewed.expect("store"), Ok(()));
}

#[test]
fn a_failure_batch_reaches_every_other_node_and_not_its_sender() {
    let Some((_cluster, stores)) = nodes() else {
        return;
    };
    let heard: Vec<Arc<Mutex<Vec<String>>>> = (0..3).map(|_| Arc::default()).collect();
    let exchanges: Vec<_> = heard
        .iter()
        .zip(&stores)
        .map(|(heard, store)| {
            let heard = heard.clone();
            store.exchange_failures(Arc::new(move |payload: &str| {
                heard.lock().unwrap().push(payload.to_owned());
            }))
        })
        .collect();
    for exchange in &exchanges {
        assert!(block_on(exchange.listening(Duration::from_secs(10))));
    }
    assert!(exchanges[0].send("1:batch".to_owned()));
    assert!(!exchanges[0].send("x".repeat(oauth_store_postgres::MAX_PAYLOAD + 1)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard[1..].iter().any(|h| h.lock().unwrap().is_empty()) {
        assert!(Instant::now() < deadline, "not delivered");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    for h in &heard[1..] {
        assert_eq!(*h.lock().unwrap(), ["1:batch"]);
    }
    assert!(
        heard[0].lock().unwrap().is_empty(),
        "its own batch is skipped"
    );
}
