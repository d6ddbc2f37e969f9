//! The reference server's directory contract (`oauth_directory::Directory`): its users and the
//! client listing, which the engine's store contract leaves out.
//!
//! A store that backs `oauth-server` runs these cases too; a store for an embedder with its own
//! user directory runs only the engine's ([`store_contract_tests!`](crate::store_contract_tests)).
//! [`directory_contract_tests!`](crate::directory_contract_tests) turns them into one `#[test]`
//! per case, from the same [`Harness`].

use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::store::{Effect, RevocationView, Store};

use super::fixtures::*;
use super::Harness;

/// The bounds every directory case needs.
pub trait DirectoryStore: Directory + Store + RevocationView + Send + Sync {}
impl<S: Directory + Store + RevocationView + Send + Sync> DirectoryStore for S {}

/// Expands to one `#[test]` per directory case, each running against `$harness`.
#[macro_export]
macro_rules! directory_contract_tests {
    ($harness:expr) => {
        $crate::directory_contract_tests!($harness, when: true);
    };
    ($harness:expr, when: $ready:expr) => {
        $crate::directory_contract_tests!(@cases $harness, $ready;
            users_round_trip_are_replaced_and_deleted,
            users_and_clients_are_listed_sorted,
            a_change_applies_users_then_effects_at_once,
            unknown_users_read_as_absent,
            users_survive_purges,
            large_users_round_trip,
            user_claims_are_answered_from_the_users,
        );
    };
    (@cases $harness:expr, $ready:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if !$ready {
                    return;
                }
                $crate::store_contract::directory::$case(&$harness);
            }
        )*
    };
}

fn change<S: Directory>(s: &S, users: Vec<UserChange>, effects: Vec<Effect>) {
    block_on(s.change(users, effects)).unwrap_or_else(|e| panic!("change: {e}"));
}

fn get<S: Directory>(s: &S, name: &str) -> Option<UserRecord> {
    block_on(s.user(name)).unwrap_or_else(|e| panic!("user: {e}"))
}

fn names<S: Directory>(s: &S) -> Vec<String> {
    block_on(s.users())
        .unwrap_or_else(|e| panic!("users: {e}"))
        .into_iter()
        .map(|u| u.username)
        .collect()
}

fn put(u: UserRecord) -> UserChange {
    UserChange::PutUser(u)
}

fn delete(name: &str) -> UserChange {
    UserChange::DeleteUser {
        username: name.into(),
    }
}

/// A user goes in and comes back unchanged; a put replaces it, a delete removes it.
pub fn users_round_trip_are_replaced_and_deleted<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    change(&s, vec![put(user("bob"))], vec![]);
    assert_eq!(get(&s, "bob"), Some(user("bob")));
    let mut u = user("bob");
    u.password_hash = "$argon2id$new".into();
    change(&s, vec![put(u.clone())], vec![]);
    assert_eq!(get(&s, "bob"), Some(u));
    assert_eq!((h.len)(&s), 1);
    change(&s, vec![delete("bob")], vec![]);
    assert_eq!(get(&s, "bob"), None);
    assert_eq!((h.len)(&s), 0);
}

/// Users are listed by name and clients by id, whatever the order they were written in.
pub fn users_and_clients_are_listed_sorted<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    change(
        &s,
        vec![put(user("zed")), put(user("abc")), put(user("mid"))],
        vec![
            Effect::PutClient(client("zed")),
            Effect::PutClient(client("abc")),
            Effect::PutClient(client("app")),
        ],
    );
    assert_eq!(names(&s), ["abc", "mid", "zed"]);
    let clients = block_on(s.clients()).expect("clients");
    let ids: Vec<_> = clients.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(ids, ["abc", "app", "zed"]);
    assert_eq!(clients[0], client("abc"));
}

/// One change applies its user changes in order, then its effects in order; the engine sees the
/// effects (here a subject revocation, as a password change carries).
pub fn a_change_applies_users_then_effects_at_once<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let mut moved = user("back");
    moved.created_at = 7;
    change(
        &s,
        vec![put(user("back")), delete("back"), put(moved.clone())],
        vec![Effect::RevokeSubject {
            subject: "back".into(),
            at: 100,
            keep_until: 200,
        }],
    );
    assert_eq!(get(&s, "back"), Some(moved));
    assert_eq!(s.credential_version("back"), 1);
    // Engine effects applied through the engine's own contract leave the users alone.
    Store::apply(&s, vec![Effect::ResetCounter { key: "k".into() }]).expect("apply");
    assert_eq!(names(&s), ["back"]);
}

/// Unknown users read as absent, and deleting one is no error.
pub fn unknown_users_read_as_absent<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    assert_eq!(get(&s, "nobody"), None);
    assert!(names(&s).is_empty());
    assert!(block_on(s.clients()).expect("clients").is_empty());
    change(&s, vec![delete("nobody")], vec![]);
    assert_eq!((h.len)(&s), 0);
}

/// `Op::UserClaims` is answered from the users (`UserRecord::claims`): the email set, or a user
/// name that is an address, and the display name; `None` for a subject that is no user; and a
/// change shows at once.
pub fn user_claims_are_answered_from_the_users<S: DirectoryStore>(h: &Harness<S>) {
    use oauth_proto::claims::UserClaims;
    use oauth_proto::store::{Op, Reply};
    let s = (h.fresh)();
    let claims = |s: &S, subject: &str| {
        let op = Op::UserClaims {
            subject: subject.to_owned(),
        };
        assert!(!op.mutates());
        match Store::execute(s, op).expect("user claims") {
            Reply::UserClaims(c) => c,
            other => panic!("answered {other:?}"),
        }
    };
    assert_eq!(claims(&s, "alice"), None);
    change(&s, vec![put(user("alice"))], vec![]);
    let expected = |name: &str, email: Option<&str>, display: Option<&str>| {
        Some(UserClaims {
            username: name.to_owned(),
            email: email.map(str::to_owned),
            name: display.map(str::to_owned),
        })
    };
    assert_eq!(
        claims(&s, "alice"),
        expected("alice", Some("alice@example.com"), Some("alice Example"))
    );
    // A display name without an email (the field before it) and neither: each stays in place.
    let mut bob = user("bob@example.org");
    bob.email = None;
    let mut carol = user("carol");
    carol.email = None;
    carol.name = None;
    change(&s, vec![put(bob), put(carol)], vec![]);
    assert_eq!(
        claims(&s, "bob@example.org"),
        expected(
            "bob@example.org",
            Some("bob@example.org"),
            Some("bob@example.org Example")
        )
    );
    assert_eq!(claims(&s, "carol"), expected("carol", None, None));
    change(&s, vec![delete("alice")], vec![]);
    assert_eq!(claims(&s, "alice"), None);
}

/// Users carry no expiry: no purge drops them.
pub fn users_survive_purges<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    change(&s, vec![put(user("alice"))], vec![]);
    assert_eq!(Store::purge(&s, u64::MAX).expect("purge").removed, 0);
    assert_eq!(get(&s, "alice"), Some(user("alice")));
}

/// A user with a 64 KiB password hash round-trips unchanged.
pub fn large_users_round_trip<S: DirectoryStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let mut u = user("alice");
    u.password_hash = "h".repeat(64 << 10);
    change(&s, vec![put(u.clone())], vec![]);
    assert_eq!(get(&s, "alice"), Some(u));
    let _ = (h.footprint)(&s);
    assert_eq!((h.len)(&s), 1);
}
