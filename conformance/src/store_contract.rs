//! The store contract suite: one set of cases every store must pass.
//!
//! Like dex's storage conformance tests, the cases are written once against the traits of
//! `oauth_proto::store` and run against every backend, so a new store is correct when this suite
//! passes, and the stores cannot drift apart. Each case is a generic function taking a [`Harness`]
//! (how to make a fresh store and look at its size); [`store_contract_tests!`](crate::store_contract_tests)
//! turns the whole list into one `#[test]` per case:
//!
//! ```ignore
//! conformance::store_contract_tests!(Harness {
//!     fresh: MemoryStore::new,
//!     len: |s| s.read().len(),
//!     footprint: |_| None,
//! });
//! ```
//!
//! The cases cover every record type, the three atomic read-modify-writes under real thread
//! contention (take a code, rotate a grant's refresh family (`rotation`, `refresh_public`), swap a
//! device record), counters and their
//! windows, every kind of revocation, client deletion, expiry purges (including the storage they
//! free, and registered clients nobody used), remembered consents (`consents`), the grants of a
//! browser session (`sessions`), a client read with a revocation status (`client_with_status`)
//! and large records.

mod client_with_status;
mod consents;
pub mod directory;
pub mod fixtures;
mod refresh_public;
mod rotation;
mod sessions;

pub use client_with_status::a_client_read_with_status_answers_as_the_two_reads;
pub use consents::{
    consents_are_bounded_per_subject, consents_are_kept_per_subject_and_client,
    consents_go_with_their_client,
};
pub use refresh_public::{
    a_public_refresh_reads_and_rotates_in_one_step, a_public_refresh_rotates_only_what_it_may,
    of_concurrent_public_refreshes_exactly_one_wins,
};
pub use rotation::{
    a_retried_rotation_keeps_the_token_presented_again,
    a_rotation_gives_an_adopted_family_its_hash,
    of_concurrent_retries_of_one_rotation_exactly_one_wins, refresh_rotation_is_a_compare_and_swap,
    rotation_extends_the_grant_to_cover_the_new_token,
    rotation_fails_for_revoked_grants_and_other_tokens,
};
pub use sessions::{
    a_sessions_grants_are_found_by_subject_and_sid, a_sessions_grants_come_in_bounded_pages,
};

use std::sync::Barrier;

use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, CodeTake, DeviceLookup, DeviceRecord, DeviceStatus, Effect, GrantId, Op,
    RefreshFamily, RefreshGrant, RefreshKey, Reply, RevocationStatus, RevocationView, Rotated,
    Store, SubjectRecord, Successor,
};

use fixtures::*;

/// How the suite makes and inspects one kind of store.
pub struct Harness<S> {
    /// Makes a new, empty store.
    pub fresh: fn() -> S,
    /// The number of records held, counted as `MemoryState::len` counts them.
    pub len: fn(&S) -> usize,
    /// For stores with files: compacts and returns the bytes the store occupies on disk.
    pub footprint: fn(&S) -> Option<u64>,
}

/// The bounds every case needs.
pub trait ContractStore: Store + RevocationView + Send + Sync {}
impl<S: Store + RevocationView + Send + Sync> ContractStore for S {}

/// Expands to one `#[test]` per contract case, each running against `$harness`.
#[macro_export]
macro_rules! store_contract_tests {
    ($harness:expr) => {
        $crate::store_contract_tests!($harness, when: true);
    };
    ($harness:expr, when: $ready:expr) => {
        $crate::store_contract_tests!(@cases $harness, $ready;
            every_record_round_trips,
            puts_replace_and_deletes_remove,
            a_clients_access_token_format_round_trips,
            effects_apply_in_order,
            unknown_keys_read_as_absent,
            a_code_is_taken_exactly_once,
            refresh_rotation_is_a_compare_and_swap,
            rotation_extends_the_grant_to_cover_the_new_token,
            rotation_fails_for_revoked_grants_and_other_tokens,
            a_rotation_gives_an_adopted_family_its_hash,
            a_retried_rotation_keeps_the_token_presented_again,
            of_concurrent_retries_of_one_rotation_exactly_one_wins,
            a_public_refresh_reads_and_rotates_in_one_step,
            a_public_refresh_rotates_only_what_it_may,
            of_concurrent_public_refreshes_exactly_one_wins,
            device_swap_is_a_compare_and_swap_on_revision,
            counters_count_within_their_window,
            revoking_a_grant_kills_refresh_and_access,
            revoking_access_keeps_refresh_tokens,
            a_refresh_read_carries_its_client_and_revocation_status,
            a_client_read_with_status_answers_as_the_two_reads,
            a_revocation_lands_after_the_grants_previous_one,
            revoking_a_subject_revokes_everything_it_approved,
            revoking_and_deleting_a_client,
            purge_drops_expired_and_revoked_records,
            unused_clients_expire_unless_marked_used,
            large_records_round_trip,
            concurrent_writers_see_their_own_writes,
            async_api_answers_like_sync_api,
            consents_are_kept_per_subject_and_client,
            consents_are_bounded_per_subject,
            consents_go_with_their_client,
            a_sessions_grants_are_found_by_subject_and_sid,
            a_sessions_grants_come_in_bounded_pages,
        );
    };
    (@cases $harness:expr, $ready:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if !$ready {
                    return;
                }
                $crate::store_contract::$case(&$harness);
            }
        )*
    };
}

fn exec<S: Store>(s: &S, op: Op) -> Reply {
    let shown = format!("{op:?}");
    s.execute(op).unwrap_or_else(|e| panic!("{shown}: {e}"))
}

fn apply<S: Store>(s: &S, effects: Vec<Effect>) {
    s.apply(effects).unwrap_or_else(|e| panic!("apply: {e}"));
}

fn get_client<S: Store>(s: &S, id: &str) -> Option<ClientRecord> {
    match exec(
        s,
        Op::GetClient {
            client_id: id.into(),
        },
    ) {
        Reply::Client(c) => c.map(std::sync::Arc::unwrap_or_clone),
        other => panic!("GetClient answered {other:?}"),
    }
}

/// What [`Op::RevocationStatus`] answers for `grant` and `subject`.
fn revocation_status<S: Store>(s: &S, grant: GrantId, subject: &str) -> RevocationStatus {
    let op = Op::RevocationStatus {
        grant_id: grant,
        subject: subject.into(),
    };
    match exec(s, op) {
        Reply::RevocationStatus {
            access_revoked_at,
            credential_version,
        } => RevocationStatus {
            access_revoked_at,
            credential_version,
        },
        other => panic!("RevocationStatus answered {other:?}"),
    }
}

/// What [`Op::GetRefresh`] answers for `key`.
fn get_refresh_by<S: Store>(s: &S, key: RefreshKey) -> Option<RefreshGrant> {
    match exec(s, Op::GetRefresh { key }) {
        Reply::Refresh(r) => r,
        other => panic!("GetRefresh answered {other:?}"),
    }
}

/// What [`Op::GetRefresh`] answers for the tokens of grant `grant` (a token in the current
/// format names its grant).
fn get_refresh<S: Store>(s: &S, grant: u64) -> Option<RefreshGrant> {
    get_refresh_by(s, RefreshKey::Grant(grant_id(grant)))
}

/// Grant `grant`'s refresh family as [`Op::GetRefresh`] answers it.
fn family_of<S: Store>(s: &S, grant: u64) -> Option<RefreshFamily> {
    get_refresh(s, grant).map(|r| r.family)
}

/// Grant `grant`'s family after rotations: current token `current` issued at `issued_at` and
/// expiring at `expires_at`, having replaced `previous` at `rotated_at`.
fn rotated_family(
    grant: u64,
    current: &str,
    (issued_at, expires_at): (u64, u64),
    previous: &str,
    rotated_at: u64,
) -> RefreshFamily {
    RefreshFamily {
        previous: Some(Rotated {
            hash: hash(previous),
            at: rotated_at,
        }),
        ..refresh(current, grant, issued_at, expires_at)
    }
}

fn take<S: Store>(s: &S, name: &str) -> CodeTake {
    match exec(s, Op::TakeCode { hash: hash(name) }) {
        Reply::Code(t) => t,
        other => panic!("TakeCode answered {other:?}"),
    }
}

/// [`Op::RotateRefresh`] of grant `grant` from the token `from` into `new`, with the family hash
/// of [`fixtures::family_hash`]; `retry` as the op's.
fn rotate_as<S: Store>(s: &S, grant: u64, from: &str, new: Successor, retry: bool) -> bool {
    let op = Op::RotateRefresh {
        grant_id: grant_id(grant),
        from: hash(from),
        new,
        family: family_hash(grant),
        retry,
    };
    match exec(s, op) {
        Reply::Swapped(b) => b,
        other => panic!("RotateRefresh answered {other:?}"),
    }
}

/// A first rotation of grant `grant` from `from` into `new` (`retry: false`).
fn rotate<S: Store>(s: &S, grant: u64, from: &str, new: Successor) -> bool {
    rotate_as(s, grant, from, new, false)
}

/// A retried rotation of grant `grant` from the lost successor `from` into `new` (`retry: true`).
fn retry<S: Store>(s: &S, grant: u64, from: &str, new: Successor) -> bool {
    rotate_as(s, grant, from, new, true)
}

/// Asks [`Op::RefreshPublic`] for grant `grant`'s token `presented` by `client_id`, into `new`.
fn refresh_public<S: Store>(
    s: &S,
    grant: u64,
    presented: &str,
    client_id: &str,
    new: Successor,
) -> (Option<RefreshGrant>, bool) {
    let op = Op::RefreshPublic {
        grant_id: grant_id(grant),
        presented: hash(presented),
        client_id: client_id.into(),
        new,
    };
    match exec(s, op) {
        Reply::RefreshRotated { found, rotated } => (found, rotated),
        other => panic!("RefreshPublic answered {other:?}"),
    }
}

/// Grant `grant`, revoked, keeps its current token `current` whatever is asked: neither a
/// rotation, nor a retried one, nor a public refresh by its client `client` swaps, and the
/// family is answered as it was.
fn assert_never_rotates<S: Store>(s: &S, grant: u64, current: &str, client: &str) {
    let before = get_refresh(s, grant).expect("a revoked grant is read until purged");
    assert!(
        before.grant.revoked_at.is_some(),
        "grant {grant} is revoked"
    );
    let new = |tag: &str| successor(&format!("{current}-{tag}"), 4000, 9000);
    assert!(
        !rotate(s, grant, current, new("rotated")),
        "grant {grant}: a revoked grant does not rotate"
    );
    assert!(
        !retry(s, grant, current, new("retried")),
        "grant {grant}: nor retries a rotation"
    );
    let (found, rotated) = refresh_public(s, grant, current, client, new("public"));
    assert!(!rotated, "grant {grant}: nor rotates for a public client");
    assert_eq!(
        found.as_ref(),
        Some(&before),
        "grant {grant}: answered as read"
    );
    assert_eq!(
        get_refresh(s, grant),
        Some(before),
        "grant {grant}: unchanged"
    );
}

/// Two threads, started together, each call `attempt(store, thread, n)` for every `n` below
/// `tokens`; returns each thread's answers.
fn race<S: Sync>(
    s: &S,
    tokens: u64,
    attempt: impl Fn(&S, u64, u64) -> bool + Sync,
) -> [Vec<bool>; 2] {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let workers = [0, 1].map(|t| {
            let (barrier, attempt) = (&barrier, &attempt);
            scope.spawn(move || {
                barrier.wait();
                (0..tokens).map(|n| attempt(s, t, n)).collect::<Vec<_>>()
            })
        });
        workers.map(|w| w.join().expect("racing thread panicked"))
    })
}

fn get_device<S: Store>(s: &S, by: DeviceLookup) -> Option<DeviceRecord> {
    match exec(s, Op::GetDevice { by }) {
        Reply::Device(d) => d,
        other => panic!("GetDevice answered {other:?}"),
    }
}

fn swap_device<S: Store>(s: &S, expected_revision: u64, record: DeviceRecord) -> bool {
    match exec(
        s,
        Op::SwapDevice {
            expected_revision,
            record,
        },
    ) {
        Reply::Swapped(b) => b,
        other => panic!("SwapDevice answered {other:?}"),
    }
}

fn count<S: Store>(s: &S, key: &str, now: u64, expires_at: u64) -> u32 {
    match exec(
        s,
        Op::Count {
            key: key.into(),
            now,
            expires_at,
        },
    ) {
        Reply::Count(n) => n,
        other => panic!("Count answered {other:?}"),
    }
}

fn subject<S: Store>(s: &S, name: &str) -> SubjectRecord {
    match exec(
        s,
        Op::GetSubject {
            subject: name.into(),
        },
    ) {
        Reply::Subject(r) => r,
        other => panic!("GetSubject answered {other:?}"),
    }
}

/// A grant with its refresh family (current token `token`, issued at 100, expiring at 5000), as
/// issuing from a code does.
fn issue<S: Store>(s: &S, n: u64, client: &str, subject: &str, token: &str) {
    apply(
        s,
        vec![
            Effect::PutGrant(grant(n, client, subject, 5000)),
            Effect::PutRefreshFamily(refresh(token, n, 100, 5000)),
        ],
    );
}

/// Every record type goes in through its effect and comes back out through its op unchanged.
pub fn every_record_round_trips<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let c = client("app");
    let code_record = code("code-1", 1, "app", "alice", 1000);
    let g = grant(2, "app", "alice", 5000);
    // A family as a rotation leaves it, so that every field is seen to round-trip.
    let r = rotated_family(2, "rt-2", (100, 5000), "rt-1", 100);
    let d = device("dev-1", "app", DeviceStatus::Pending, 1000);
    apply(
        &s,
        vec![
            Effect::PutClient(c.clone()),
            Effect::PutCode(code_record.clone()),
            Effect::PutGrant(g.clone()),
            Effect::PutRefreshFamily(r.clone()),
            Effect::PutDevice(d.clone()),
        ],
    );
    assert_eq!(get_client(&s, "app"), Some(c.clone()));
    assert_eq!(take(&s, "code-1"), CodeTake::Taken(code_record));
    assert_eq!(
        get_refresh(&s, 2),
        Some(RefreshGrant {
            family: r,
            grant: g,
            client: Some(std::sync::Arc::new(c)),
            status: RevocationStatus::default(),
        })
    );
    assert_eq!(
        get_device(&s, DeviceLookup::DeviceCode(hash("dev-1"))),
        Some(d.clone())
    );
    assert_eq!(
        get_device(&s, DeviceLookup::UserCode(hash("DEV-1"))),
        Some(d)
    );
    assert_eq!(subject(&s, "alice"), SubjectRecord::default());
    assert_eq!(count(&s, "login:alice", 100, 400), 1);
    // client, code, grant, refresh family, device, counter
    assert_eq!((h.len)(&s), 6);
}

/// Puts replace the record under the same key; deletes and resets remove it.
pub fn puts_replace_and_deletes_remove<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let mut c = client("app");
    apply(&s, vec![Effect::PutClient(c.clone())]);
    c.name = "Renamed".into();
    c.redirect_uris.push("https://app.example/other".into());
    apply(&s, vec![Effect::PutClient(c.clone())]);
    assert_eq!(get_client(&s, "app"), Some(c));
    assert_eq!((h.len)(&s), 1);

    assert_eq!(count(&s, "k", 100, 200), 1);
    assert_eq!(count(&s, "k", 100, 200), 2);
    apply(&s, vec![Effect::ResetCounter { key: "k".into() }]);
    assert_eq!(count(&s, "k", 100, 200), 1, "a reset counter starts again");

    // A grant's family replaces the one it had.
    issue(&s, 1, "app", "alice", "rt-1");
    let replaced = rotated_family(1, "rt-3", (300, 7000), "rt-2", 300);
    apply(&s, vec![Effect::PutRefreshFamily(replaced.clone())]);
    assert_eq!(family_of(&s, 1), Some(replaced));
    // client, counter, grant, one family
    assert_eq!((h.len)(&s), 4);
}

/// A client's access token format (the HMAC default, or JWT set by the administrator) comes back
/// as put, through a replacement each way and a compaction.
pub fn a_clients_access_token_format_round_trips<S: ContractStore>(h: &Harness<S>) {
    use oauth_proto::client::AccessTokenFormat;
    let s = (h.fresh)();
    let plain = client("plain");
    let mut jwt = client("jwt");
    jwt.access_token_format = AccessTokenFormat::Jwt;
    apply(
        &s,
        vec![
            Effect::PutClient(plain.clone()),
            Effect::PutClient(jwt.clone()),
        ],
    );
    assert_eq!(get_client(&s, "plain"), Some(plain.clone()));
    assert_eq!(get_client(&s, "jwt"), Some(jwt.clone()));
    let mut plain_now_jwt = plain;
    plain_now_jwt.access_token_format = AccessTokenFormat::Jwt;
    jwt.access_token_format = AccessTokenFormat::Hmac;
    apply(
        &s,
        vec![
            Effect::PutClient(plain_now_jwt.clone()),
            Effect::PutClient(jwt.clone()),
        ],
    );
    (h.footprint)(&s);
    assert_eq!(get_client(&s, "plain"), Some(plain_now_jwt));
    assert_eq!(get_client(&s, "jwt"), Some(jwt));
}

/// Effects of one `apply` take effect in their order.
pub fn effects_apply_in_order<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("gone")),
            Effect::DeleteClient {
                client_id: "gone".into(),
                at: 200,
                keep_until: 300,
            },
            Effect::PutClient(client("back")),
            Effect::PutGrant(grant(1, "app", "alice", 5000)),
            Effect::RevokeGrant {
                grant_id: grant_id(1),
                at: 150,
                keep_until: 400,
            },
        ],
    );
    assert_eq!(get_client(&s, "gone"), None);
    assert_eq!(get_client(&s, "back"), Some(client("back")));
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(150));
}

/// Unknown keys read as absent, and the atomic ops on them change nothing.
pub fn unknown_keys_read_as_absent<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    assert_eq!(get_client(&s, "nobody"), None);
    assert_eq!(get_refresh(&s, 9), None);
    assert_eq!(
        get_refresh_by(&s, RefreshKey::Legacy(hash("nothing"))),
        None,
        "a hash the store never held finds nothing"
    );
    assert_eq!(
        get_device(&s, DeviceLookup::UserCode(hash("NOTHING"))),
        None
    );
    assert_eq!(subject(&s, "nobody"), SubjectRecord::default());
    assert_eq!(take(&s, "nothing"), CodeTake::Missing);
    assert!(!rotate(&s, 9, "nothing", successor("next", 200, 5000)));
    assert!(!retry(&s, 9, "nothing", successor("next", 200, 5000)));
    assert_eq!(
        refresh_public(&s, 9, "nothing", "app", successor("next", 200, 5000)),
        (None, false)
    );
    assert!(!swap_device(
        &s,
        0,
        device("nothing", "app", DeviceStatus::Denied, 1000)
    ));
    assert_eq!(s.access_revoked_at(&grant_id(9)), None);
    assert_eq!(s.credential_version("nobody"), 0);
    assert_eq!((h.len)(&s), 1, "none of it stored anything");

    // A grant without refresh tokens has no family to answer.
    apply(&s, vec![Effect::PutGrant(grant(76, "app", "alice", 5000))]);
    assert_eq!(get_refresh(&s, 76), None, "a grant without refresh tokens");
    assert!(!rotate(&s, 76, "nothing", successor("next", 200, 5000)));
    assert_eq!(
        refresh_public(&s, 76, "nothing", "app", successor("next", 200, 5000)),
        (None, false)
    );
    // A family whose grant is not stored (unknown, or not yet: effects apply in order) is
    // dropped, and a grant stored after it finds none.
    apply(
        &s,
        vec![
            Effect::PutRefreshFamily(refresh("orphan", 77, 100, 5000)),
            Effect::PutRefreshFamily(refresh("early", 78, 100, 5000)),
            Effect::PutGrant(grant(78, "app", "alice", 5000)),
        ],
    );
    assert_eq!(get_refresh(&s, 77), None);
    assert_eq!(
        get_refresh(&s, 78),
        None,
        "the family came before its grant"
    );
    assert!(!rotate(&s, 78, "early", successor("next", 200, 5000)));
    assert_eq!(
        get_refresh(&s, 78),
        None,
        "and a rotation does not make one"
    );
    // client, grants 76 and 78
    assert_eq!((h.len)(&s), 3);
}

/// Of many threads taking one code at once, exactly one gets `Taken`; the rest get `Used`.
pub fn a_code_is_taken_exactly_once<S: ContractStore>(h: &Harness<S>) {
    const THREADS: usize = 16;
    const CODES: usize = 8;
    let s = (h.fresh)();
    let records: Vec<_> = (0..CODES)
        .map(|i| code(&format!("code-{i}"), i as u64, "app", "alice", 1000))
        .collect();
    apply(&s, records.iter().cloned().map(Effect::PutCode).collect());
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<Vec<CodeTake>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    (0..CODES)
                        .map(|i| take(&s, &format!("code-{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("taker panicked"))
            .collect()
    });
    for (i, record) in records.iter().enumerate() {
        let taken = outcomes
            .iter()
            .filter(|o| o[i] == CodeTake::Taken(record.clone()))
            .count();
        let used = outcomes
            .iter()
            .filter(|o| o[i] == CodeTake::Used(record.clone()))
            .count();
        assert_eq!((taken, used), (1, THREADS - 1), "code {i}");
    }
    assert_eq!(
        take(&s, "code-0"),
        CodeTake::Used(records[0].clone()),
        "a taken code stays taken"
    );
}

/// Device records change only by compare-and-swap on their revision.
pub fn device_swap_is_a_compare_and_swap_on_revision<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let d = device("dev", "app", DeviceStatus::Pending, 1000);
    apply(&s, vec![Effect::PutDevice(d.clone())]);
    let mut polled = d.clone();
    polled.last_poll = Some(110);
    polled.revision = 1;
    assert!(swap_device(&s, 0, polled.clone()));
    let mut stale = d.clone();
    stale.status = DeviceStatus::Denied;
    stale.revision = 1;
    assert!(!swap_device(&s, 0, stale), "revision 0 is stale");
    assert_eq!(
        get_device(&s, DeviceLookup::UserCode(hash("DEV"))),
        Some(polled.clone())
    );

    // Concurrent approvals and denials of the same revision: exactly one lands.
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    let wins: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (s, barrier, polled) = (&s, &barrier, &polled);
                scope.spawn(move || {
                    let mut next = polled.clone();
                    next.revision = 2;
                    next.status = if t % 2 == 0 {
                        approved(&format!("user-{t}"), t as u64)
                    } else {
                        DeviceStatus::Denied
                    };
                    barrier.wait();
                    usize::from(swap_device(s, 1, next))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("swapper panicked"))
            .sum()
    });
    assert_eq!(wins, 1);
    let now = get_device(&s, DeviceLookup::DeviceCode(hash("dev"))).expect("device kept");
    assert_eq!(now.revision, 2);
}

/// Counters count up within a window and restart when it has passed.
pub fn counters_count_within_their_window<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    assert_eq!(count(&s, "a", 100, 160), 1);
    assert_eq!(
        count(&s, "a", 120, 999),
        2,
        "a running window keeps its end"
    );
    assert_eq!(count(&s, "a", 159, 999), 3);
    assert_eq!(count(&s, "a", 160, 220), 1, "the window ended at 160");
    assert_eq!(count(&s, "b", 160, 220), 1, "keys are independent");

    const THREADS: usize = 8;
    const EACH: u32 = 25;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                (0..EACH).for_each(|_| {
                    count(&s, "c", 100, 1000);
                })
            });
        }
    });
    assert_eq!(
        count(&s, "c", 100, 1000),
        THREADS as u32 * EACH + 1,
        "no increment is lost"
    );
}

/// Revoking a grant kills its refresh tokens and makes the view report its access tokens revoked.
pub fn revoking_a_grant_kills_refresh_and_access<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "app", "alice", "rt-2");
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 300,
            keep_until: 900,
        }],
    );
    let r1 = get_refresh(&s, 1).expect("revoked grants are still readable until purged");
    assert_eq!(r1.grant.revoked_at, Some(300));
    assert_eq!(
        r1.family,
        refresh("rt-1", 1, 100, 5000),
        "the family as it was"
    );
    assert_never_rotates(&s, 1, "rt-1", "app");
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(300));
    assert_eq!(
        s.access_revoked_at(&grant_id(2)),
        None,
        "other grants untouched"
    );
    assert_eq!(get_refresh(&s, 2).map(|r| r.grant.revoked_at), Some(None));
    assert!(
        rotate(&s, 2, "rt-2", successor("rt-2b", 310, 6000)),
        "another grant still rotates"
    );
    // A second revocation keeps the first revocation time of the grant, and the access cut-off moves
    // forward only: to the later time, or to the second after the previous cut-off when that is not
    // earlier (see `a_revocation_lands_after_the_grants_previous_one`).
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 400,
            keep_until: 950,
        }],
    );
    assert_eq!(
        get_refresh(&s, 1).and_then(|r| r.grant.revoked_at),
        Some(300)
    );
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(400));
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 350,
            keep_until: 950,
        }],
    );
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(401));
}

/// A revocation of a grant that already has one lands no earlier than the second after it, and is
/// kept that much longer: an access token issued after the earlier revocation is stamped with that
/// second at the earliest (`oauth_proto::issue`), so only then does the later revocation, made in
/// the same second, reach it. Revocations at later times keep their own time.
pub fn a_revocation_lands_after_the_grants_previous_one<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    issue(&s, 1, "app", "alice", "rt-1");
    let revoke_access = |at, keep_until| Effect::RevokeAccess {
        grant_id: grant_id(1),
        at,
        keep_until,
    };
    apply(&s, vec![revoke_access(500, 1000)]);
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(500));
    apply(&s, vec![revoke_access(500, 1000)]);
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(501));
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 500,
            keep_until: 1000,
        }],
    );
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(502));
    // Kept as long as a token stamped 502 lives (1000 + 2), not forgotten at 1000.
    s.purge(1001).unwrap();
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(502));
    s.purge(1002).unwrap();
    assert_eq!(s.access_revoked_at(&grant_id(1)), None);
    // The client's whole-client revocation goes through the same rule.
    issue(&s, 2, "app", "alice", "rt-2");
    apply(
        &s,
        vec![Effect::RevokeAccess {
            grant_id: grant_id(2),
            at: 2000,
            keep_until: 3000,
        }],
    );
    apply(
        &s,
        vec![Effect::RevokeClient {
            client_id: "app".into(),
            at: 2000,
            keep_until: 3000,
        }],
    );
    assert_eq!(s.access_revoked_at(&grant_id(2)), Some(2001));
    // A later revocation keeps its own time.
    apply(
        &s,
        vec![Effect::RevokeAccess {
            grant_id: grant_id(2),
            at: 2600,
            keep_until: 3600,
        }],
    );
    assert_eq!(s.access_revoked_at(&grant_id(2)), Some(2600));
}

/// Revoking access tokens only leaves the refresh tokens working.
pub fn revoking_access_keeps_refresh_tokens<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    issue(&s, 1, "app", "alice", "rt-1");
    apply(
        &s,
        vec![Effect::RevokeAccess {
            grant_id: grant_id(1),
            at: 250,
            keep_until: 900,
        }],
    );
    assert_eq!(s.access_revoked_at(&grant_id(1)), Some(250));
    assert_eq!(get_refresh(&s, 1).map(|r| r.grant.revoked_at), Some(None));
    assert!(rotate(&s, 1, "rt-1", successor("rt-1b", 260, 6000)));
    assert_eq!(family_of(&s, 1).map(|f| f.current), Some(hash("rt-1b")));
}

/// A refresh token's read carries what a refresh would otherwise ask for separately: its
/// grant's client as `Op::GetClient` answers it, and the revocation status of the grant and its
/// subject as `Op::RevocationStatus` answers it, as they stand when the token is read.
pub fn a_refresh_read_carries_its_client_and_revocation_status<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let app = client("app");
    apply(&s, vec![Effect::PutClient(app.clone())]);
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "unregistered", "bob", "rt-2");
    let status = |grant: u64, subject: &str| revocation_status(&s, grant_id(grant), subject);
    let found = get_refresh(&s, 1).expect("issued");
    assert_eq!(found.client.as_deref(), Some(&app));
    assert_eq!(found.status, RevocationStatus::default());
    let found = get_refresh(&s, 2).expect("issued");
    assert_eq!(
        found.client, None,
        "a grant's client that is not registered"
    );
    assert_eq!(found.status, status(2, "bob"));
    // The client as changed since, and each revocation as it lands.
    let mut renamed = app.clone();
    renamed.name = "Renamed".into();
    apply(&s, vec![Effect::PutClient(renamed.clone())]);
    apply(
        &s,
        vec![Effect::RevokeAccess {
            grant_id: grant_id(1),
            at: 250,
            keep_until: 900,
        }],
    );
    let found = get_refresh(&s, 1).expect("access revocations keep refresh tokens");
    assert_eq!(found.client.as_deref(), Some(&renamed));
    assert_eq!(
        found.status,
        RevocationStatus {
            access_revoked_at: Some(250),
            credential_version: 0,
        }
    );
    assert_eq!(found.status, status(1, "alice"));
    apply(
        &s,
        vec![Effect::RevokeSubject {
            subject: "alice".into(),
            at: 300,
            keep_until: 900,
        }],
    );
    let found = get_refresh(&s, 1).expect("revoked grants are still readable until purged");
    assert_eq!(found.status.credential_version, 1);
    assert_eq!(found.status, status(1, "alice"));
    assert_eq!(
        get_refresh(&s, 2).map(|r| r.status),
        Some(RevocationStatus::default()),
        "another subject's grant is untouched"
    );
}

/// Revoking a subject bumps its credential version, revokes its grants, and drops its unredeemed
/// codes and approved device authorizations; other subjects are untouched.
pub fn revoking_a_subject_revokes_everything_it_approved<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("app")),
            Effect::PutClient(client("other")),
        ],
    );
    issue(&s, 1, "app", "alice", "rt-a1");
    issue(&s, 2, "other", "alice", "rt-a2");
    issue(&s, 3, "app", "bob", "rt-b");
    apply(
        &s,
        vec![
            Effect::PutCode(code("code-a", 4, "app", "alice", 1000)),
            Effect::PutCode(code("code-b", 5, "app", "bob", 1000)),
            Effect::PutDevice(device("dev-a", "app", approved("alice", 6), 1000)),
            Effect::PutDevice(device("dev-b", "app", approved("bob", 7), 1000)),
            Effect::PutDevice(device("dev-p", "app", DeviceStatus::Pending, 1000)),
        ],
    );
    apply(
        &s,
        vec![Effect::RevokeSubject {
            subject: "alice".into(),
            at: 500,
            keep_until: 1100,
        }],
    );
    assert_eq!(s.credential_version("alice"), 1);
    assert_eq!(subject(&s, "alice").credential_version, 1);
    assert_eq!(s.credential_version("bob"), 0);
    for (token, grant, client) in [("rt-a1", 1, "app"), ("rt-a2", 2, "other")] {
        assert_eq!(
            get_refresh(&s, grant).and_then(|r| r.grant.revoked_at),
            Some(500)
        );
        assert_eq!(s.access_revoked_at(&grant_id(grant)), Some(500));
        assert_never_rotates(&s, grant, token, client);
    }
    assert_eq!(get_refresh(&s, 3).map(|r| r.grant.revoked_at), Some(None));
    assert_eq!(
        take(&s, "code-a"),
        CodeTake::Missing,
        "alice's code is gone"
    );
    assert!(
        matches!(take(&s, "code-b"), CodeTake::Taken(_)),
        "bob's code is not"
    );
    assert_eq!(
        get_device(&s, DeviceLookup::DeviceCode(hash("dev-a"))),
        None
    );
    assert_eq!(get_device(&s, DeviceLookup::UserCode(hash("DEV-A"))), None);
    assert!(get_device(&s, DeviceLookup::UserCode(hash("DEV-B"))).is_some());
    assert!(get_device(&s, DeviceLookup::UserCode(hash("DEV-P"))).is_some());
    apply(
        &s,
        vec![Effect::RevokeSubject {
            subject: "alice".into(),
            at: 600,
            keep_until: 1200,
        }],
    );
    assert_eq!(
        s.credential_version("alice"),
        2,
        "every revocation bumps the version"
    );
}

/// Revoking a client revokes all its grants; deleting it also removes the client.
pub fn revoking_and_deleting_a_client<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("app")),
            Effect::PutClient(client("other")),
        ],
    );
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "app", "bob", "rt-2");
    issue(&s, 3, "other", "alice", "rt-3");
    apply(
        &s,
        vec![Effect::RevokeClient {
            client_id: "app".into(),
            at: 300,
            keep_until: 900,
        }],
    );
    assert!(
        get_client(&s, "app").is_some(),
        "revoking a client keeps the client"
    );
    for (token, grant) in [("rt-1", 1), ("rt-2", 2)] {
        assert_eq!(
            get_refresh(&s, grant).and_then(|r| r.grant.revoked_at),
            Some(300)
        );
        assert_eq!(s.access_revoked_at(&grant_id(grant)), Some(300));
        assert_never_rotates(&s, grant, token, "app");
    }
    assert_eq!(get_refresh(&s, 3).map(|r| r.grant.revoked_at), Some(None));

    issue(&s, 4, "other", "carol", "rt-4");
    apply(
        &s,
        vec![Effect::DeleteClient {
            client_id: "other".into(),
            at: 400,
            keep_until: 1000,
        }],
    );
    assert_eq!(get_client(&s, "other"), None);
    assert!(get_client(&s, "app").is_some());
    for (token, grant) in [("rt-3", 3), ("rt-4", 4)] {
        let found =
            get_refresh(&s, grant).expect("a deleted client's grants are read until purged");
        assert_eq!(found.grant.revoked_at, Some(400));
        assert_eq!(found.client, None, "the client is deleted");
        assert_eq!(s.access_revoked_at(&grant_id(grant)), Some(400));
        assert_never_rotates(&s, grant, token, "other");
    }
}

/// A purge drops every record that expired at or before `now`, dead grants (expired, revoked, or
/// of a deleted client) with their refresh families, and revocation entries past their
/// `keep_until`; a live grant keeps its family; the record count and the storage footprint
/// shrink accordingly, and live records stay.
pub fn purge_drops_expired_and_revoked_records<S: ContractStore>(h: &Harness<S>) {
    const BULK: u64 = 2000;
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("app")),
            Effect::PutClient(client("gone")),
        ],
    );
    apply(
        &s,
        vec![
            Effect::PutCode(code("live-code", 1, "app", "alice", 2000)),
            Effect::PutCode(code("old-code", 2, "app", "alice", 1000)),
        ],
    );
    for chunk in 0..BULK / 100 {
        let codes = (chunk * 100..(chunk + 1) * 100)
            .map(|i| Effect::PutCode(code(&format!("bulk-{i}"), 100 + i, "app", "alice", 900)))
            .collect();
        apply(&s, codes);
    }
    let mut expired_grant = grant(11, "app", "alice", 1000);
    expired_grant.created_at = 50;
    apply(
        &s,
        vec![
            Effect::PutGrant(grant(10, "app", "alice", 2000)),
            Effect::PutRefreshFamily(rotated_family(10, "live-rt", (900, 2000), "old-rt", 900)),
            Effect::PutGrant(expired_grant),
            Effect::PutRefreshFamily(refresh("orphaned-rt", 11, 100, 2000)),
            Effect::PutGrant(grant(12, "app", "alice", 2000)),
            Effect::PutRefreshFamily(refresh("revoked-rt", 12, 100, 2000)),
            Effect::RevokeGrant {
                grant_id: grant_id(12),
                at: 800,
                keep_until: 1500,
            },
            Effect::PutGrant(grant(13, "gone", "alice", 2000)),
            Effect::PutRefreshFamily(refresh("deleted-rt", 13, 100, 2000)),
            Effect::DeleteClient {
                client_id: "gone".into(),
                at: 800,
                keep_until: 1500,
            },
            Effect::PutDevice(device("live-dev", "app", DeviceStatus::Pending, 2000)),
            Effect::PutDevice(device("old-dev", "app", DeviceStatus::Pending, 500)),
            Effect::RevokeSubject {
                subject: "nobody".into(),
                at: 800,
                keep_until: 900,
            },
        ],
    );
    assert_eq!(count(&s, "live-counter", 100, 2000), 1);
    assert_eq!(count(&s, "old-counter", 100, 1000), 1);
    // clients 1, codes 2 + BULK, grants 4, refresh families 4, devices 2, subjects 1, revoked
    // access 2, counters 2
    let before = 18 + BULK as usize;
    assert_eq!((h.len)(&s), before);
    let footprint_before = (h.footprint)(&s);

    let stats = s.purge(1000).expect("purge");
    // left: client, live code, grant 10 and its family, live device, subject, revoked access of
    // grants 12 and 13 (kept until 1500), live counter
    assert_eq!((h.len)(&s), 9);
    assert_eq!(stats.removed, (before - 9) as u64);
    assert_eq!(take(&s, "old-code"), CodeTake::Missing);
    assert_eq!(take(&s, "bulk-7"), CodeTake::Missing);
    assert!(matches!(take(&s, "live-code"), CodeTake::Taken(_)));
    assert_eq!(
        family_of(&s, 10),
        Some(rotated_family(10, "live-rt", (900, 2000), "old-rt", 900)),
        "a live grant keeps its family"
    );
    for (gone, why) in [(11, "expired"), (12, "revoked"), (13, "deleted client")] {
        assert_eq!(get_refresh(&s, gone), None, "grant {gone} ({why})");
        assert!(
            !rotate(
                &s,
                gone,
                &format!("x-{gone}"),
                successor("after", 1000, 3000)
            ),
            "grant {gone} ({why})"
        );
    }
    apply(&s, vec![Effect::PutGrant(grant(11, "app", "alice", 3000))]);
    assert_eq!(
        get_refresh(&s, 11),
        None,
        "the family went with its grant, not just out of sight"
    );
    assert!(get_device(&s, DeviceLookup::UserCode(hash("LIVE-DEV"))).is_some());
    assert_eq!(
        get_device(&s, DeviceLookup::UserCode(hash("OLD-DEV"))),
        None
    );
    assert_eq!(
        s.access_revoked_at(&grant_id(12)),
        Some(800),
        "kept until 1500"
    );
    assert_eq!(
        s.credential_version("nobody"),
        1,
        "credential versions are never purged"
    );
    assert_eq!(count(&s, "old-counter", 1000, 3000), 1);
    assert_eq!(count(&s, "live-counter", 1000, 3000), 2);

    if let (Some(big), Some(small)) = (footprint_before, (h.footprint)(&s)) {
        assert!(
            small * 4 < big,
            "storage shrinks with the records: {big} bytes before, {small} after"
        );
    }

    assert_eq!(
        s.purge(1000).expect("purge").removed,
        0,
        "nothing left to purge"
    );
    let stats = s.purge(1500).expect("purge");
    assert_eq!(
        stats.removed, 2,
        "the revocation entries of grants 12 and 13 end at 1500"
    );
    assert_eq!(s.access_revoked_at(&grant_id(12)), None);
    assert_eq!(s.access_revoked_at(&grant_id(13)), None);
}

/// A dynamically registered client expires unless it was marked used ([`Effect::MarkClientUsed`]);
/// a client without `unused_expires_at` (added by an administrator) never does.
pub fn unused_clients_expire_unless_marked_used<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let unused = |id: &str| ClientRecord {
        unused_expires_at: Some(1000),
        access_token_format: Default::default(),
        ..client(id)
    };
    apply(
        &s,
        vec![
            Effect::PutClient(client("admin-added")),
            Effect::PutClient(unused("never-used")),
            Effect::PutClient(unused("used")),
            Effect::PutClient(unused("used-late")),
        ],
    );
    apply(
        &s,
        vec![
            Effect::MarkClientUsed {
                client_id: "used".into(),
            },
            // An unknown (say, deleted) client is no error, and creates nothing.
            Effect::MarkClientUsed {
                client_id: "deleted".into(),
            },
        ],
    );
    assert_eq!((h.len)(&s), 4);
    assert_eq!(get_client(&s, "deleted"), None);
    let used = get_client(&s, "used").expect("stored");
    assert_eq!(used.unused_expires_at, None, "marking clears the expiry");
    assert_eq!(
        used,
        client("used"),
        "and changes nothing else about the record"
    );

    assert_eq!(s.purge(999).expect("purge").removed, 0, "not expired yet");
    apply(
        &s,
        vec![Effect::MarkClientUsed {
            client_id: "used-late".into(),
        }],
    );
    let stats = s.purge(1000).expect("purge");
    assert_eq!(stats.removed, 1, "only the never used client goes");
    assert_eq!(get_client(&s, "never-used"), None);
    for kept in ["admin-added", "used", "used-late"] {
        assert!(get_client(&s, kept).is_some(), "{kept}");
    }
    assert_eq!((h.len)(&s), 3);
    assert_eq!(s.purge(u64::MAX).expect("purge").removed, 0);
}

/// Large records round-trip unchanged: a client with a megabyte of metadata and a thousand
/// redirect URIs, a scope of 500 tokens.
pub fn large_records_round_trip<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let mut c = client("big");
    c.redirect_uris = (0..1000)
        .map(|i| format!("https://big.example/callback/{i}"))
        .collect();
    c.metadata.insert(
        "logo".into(),
        serde_json::Value::String("x".repeat(1 << 20)),
    );
    c.metadata.insert(
        "nested".into(),
        serde_json::json!({"list": [1, 2, 3, 255, -1, 1.5, null, true], "obj": {"k": "v"}, "bytes": [0, 1, 254]}),
    );
    let wide = (0..500)
        .map(|i| format!("scope:{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut g = grant(1, "big", "alice", 5000);
    g.scope = scope(&wide);
    apply(
        &s,
        vec![
            Effect::PutClient(c.clone()),
            Effect::PutGrant(g.clone()),
            Effect::PutRefreshFamily(refresh("rt", 1, 100, 5000)),
        ],
    );
    assert_eq!(get_client(&s, "big"), Some(c));
    assert_eq!(get_refresh(&s, 1).map(|r| r.grant), Some(g));
    let _ = (h.footprint)(&s);
    assert_eq!((h.len)(&s), 3);
}

/// Concurrent writers each see their own writes at once, and none is lost.
pub fn concurrent_writers_see_their_own_writes<S: ContractStore>(h: &Harness<S>) {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let s = (h.fresh)();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                for i in 0..EACH {
                    let n = t * 1000 + i;
                    let token = format!("rt-{n}");
                    issue(s, n, "app", &format!("user-{t}"), &token);
                    assert_eq!(
                        family_of(s, n).map(|f| f.current),
                        Some(hash(&token)),
                        "read your own write"
                    );
                    if i % 2 == 0 {
                        let next = format!("{token}-b");
                        assert!(rotate(s, n, &token, successor(&next, 200, 6000)));
                        assert_eq!(family_of(s, n).map(|f| f.current), Some(hash(&next)));
                    }
                }
            });
        }
    });
    // grants and their families: a rotation changes a family in place
    assert_eq!((h.len)(&s), (THREADS * EACH * 2) as usize);
}

/// The asynchronous API answers exactly like the synchronous one.
pub fn async_api_answers_like_sync_api<S: ContractStore + AsyncStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    block_on(async {
        AsyncStore::apply(
            &s,
            vec![
                Effect::PutClient(client("app")),
                Effect::PutGrant(grant(1, "app", "alice", 5000)),
                Effect::PutRefreshFamily(refresh("rt", 1, 100, 5000)),
                Effect::PutCode(code("c", 2, "app", "alice", 900)),
            ],
        )
        .await
        .expect("async apply");
        let reply = AsyncStore::execute(
            &s,
            Op::RotateRefresh {
                grant_id: grant_id(1),
                from: hash("rt"),
                new: successor("rt2", 200, 6000),
                family: family_hash(1),
                retry: false,
            },
        )
        .await;
        assert_eq!(reply.expect("async rotate"), Reply::Swapped(true));
        let op = Op::RefreshPublic {
            grant_id: grant_id(1),
            presented: hash("rt2"),
            client_id: "app".into(),
            new: successor("rt3", 300, 7000),
        };
        let reply = AsyncStore::execute(&s, op)
            .await
            .expect("async public refresh");
        let key = RefreshKey::Grant(grant_id(1));
        let read = AsyncStore::execute(&s, Op::GetRefresh { key })
            .await
            .expect("async read");
        let Reply::Refresh(Some(found)) = read else {
            panic!("GetRefresh answered {read:?}")
        };
        assert_eq!(
            reply,
            Reply::RefreshRotated {
                found: Some(found),
                rotated: true
            }
        );
        let reply = AsyncStore::execute(&s, Op::TakeCode { hash: hash("c") }).await;
        assert!(matches!(reply, Ok(Reply::Code(CodeTake::Taken(_)))));
        let stats = AsyncStore::purge(&s, 1000).await.expect("async purge");
        assert_eq!(stats.removed, 1);
    });
    assert_eq!(
        family_of(&s, 1),
        Some(rotated_family(1, "rt3", (300, 7000), "rt2", 300))
    );
    // client, grant, family
    assert_eq!((h.len)(&s), 3);
}
