//! Contract cases for [`Op::RefreshPublic`]: the read of [`Op::GetRefresh`] and, in the same
//! atomic step, the rotation of [`Op::RotateRefresh`], only for an active, unexpired token of a
//! live grant of the named, registered client. The answer is the read as it was before the op;
//! of concurrent rotations of one token (this op or the other), exactly one swaps.

use oauth_proto::store::{
    Effect, Op, RefreshGrant, RefreshState, Reply, Successor, GRANT_EXTENSION,
};

use super::fixtures::{client, grant_id, hash, refresh};
use super::{
    apply, exec, get_refresh, issue, race, rotate, rotated, state_of, ContractStore, Harness,
};

/// Asks [`Op::RefreshPublic`] for `token` by `client_id`, into `new` issued at `at` and expiring
/// at 6000.
fn refresh_public<S: ContractStore>(
    s: &S,
    token: &str,
    client_id: &str,
    new: &str,
    at: u64,
) -> (Option<RefreshGrant>, bool) {
    let op = Op::RefreshPublic {
        hash: hash(token),
        client_id: client_id.into(),
        new: Successor {
            hash: hash(new),
            issued_at: at,
            expires_at: 6000,
        },
    };
    match exec(s, op) {
        Reply::RefreshRotated { found, rotated } => (found, rotated),
        other => panic!("RefreshPublic answered {other:?}"),
    }
}

/// A live token of a registered client is read as it was and rotated: the old token rotated at the
/// successor's issue time, the successor stored active in the same grant, the grant extended.
pub fn a_public_refresh_reads_and_rotates_in_one_step<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    issue(&s, 1, "app", "alice", "rt-1");
    let before = get_refresh(&s, "rt-1").expect("issued");
    let (found, swapped) = refresh_public(&s, "rt-1", "app", "rt-1b", 200);
    assert!(swapped, "a live token of a registered client rotates");
    assert_eq!(
        found,
        Some(before),
        "the answer is the read before the rotation"
    );
    assert_eq!(state_of(&s, "rt-1"), rotated(200, "rt-1b"));
    let new = get_refresh(&s, "rt-1b").expect("successor stored");
    assert_eq!(new.token.state, RefreshState::Active);
    assert_eq!(new.token.grant_id, grant_id(1));
    assert_eq!((new.token.issued_at, new.token.expires_at), (200, 6000));
    assert_eq!(new.grant.expires_at, 6000 + GRANT_EXTENSION);
    // The successor goes on the same way; the rotated token does not.
    let (found, swapped) = refresh_public(&s, "rt-1", "app", "rt-1x", 210);
    assert!(!swapped, "a rotated token does not rotate again");
    assert_eq!(
        found.map(|f| f.token.state),
        rotated(200, "rt-1b"),
        "and is answered as rotated"
    );
    assert_eq!(get_refresh(&s, "rt-1x"), None);
    assert!(refresh_public(&s, "rt-1b", "app", "rt-1c", 220).1);
}

/// Nothing is rotated, and the read is answered, for an unknown token, another client's token, a
/// token of an unregistered client, an expired token (at its expiry exactly) and a token of a
/// revoked grant.
pub fn a_public_refresh_rotates_only_what_it_may<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("app")),
            Effect::PutClient(client("other")),
        ],
    );
    assert_eq!(
        refresh_public(&s, "nothing", "app", "x-0", 200),
        (None, false)
    );
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "ghost", "alice", "rt-2");
    issue(&s, 3, "app", "alice", "rt-3");
    issue(&s, 4, "app", "alice", "rt-4");
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(4),
            at: 150,
            keep_until: 400,
        }],
    );
    let refused = [
        ("rt-1", "other", 200, "another client's token"),
        ("rt-2", "ghost", 200, "the grant's client is not registered"),
        (
            "rt-3",
            "app",
            5000,
            "the token expires at the rotation time",
        ),
        ("rt-4", "app", 200, "the grant is revoked"),
    ];
    for (n, (token, client_id, at, why)) in refused.into_iter().enumerate() {
        let before = get_refresh(&s, token);
        let new = format!("new-{n}");
        let (found, swapped) = refresh_public(&s, token, client_id, &new, at);
        assert!(!swapped, "{why}: not rotated");
        assert_eq!(found, before, "{why}: the read is answered");
        assert_eq!(
            get_refresh(&s, token),
            before,
            "{why}: the token is unchanged"
        );
        assert_eq!(get_refresh(&s, &new), None, "{why}: no successor");
    }
    assert!(
        refresh_public(&s, "rt-3", "app", "rt-3b", 4999).1,
        "a second before its expiry the token still rotates"
    );
}

/// Of concurrent rotations of one token, by this op on both sides or against
/// [`Op::RotateRefresh`], exactly one swaps, and the loser stores nothing.
pub fn of_concurrent_public_refreshes_exactly_one_wins<S: ContractStore>(h: &Harness<S>) {
    const TOKENS: u64 = 24;
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    for n in 0..2 * TOKENS {
        issue(&s, n, "app", "alice", &format!("rt-{n}"));
    }
    // Tokens 0..TOKENS: this op on both sides; TOKENS..2*TOKENS: against RotateRefresh.
    let wins = race(&s, 2 * TOKENS, |s, t, n| {
        let new = format!("rt-{n}-by-{t}");
        if n >= TOKENS && t == 1 {
            rotate(s, &format!("rt-{n}"), refresh(&new, n, 200, 6000))
        } else {
            refresh_public(s, &format!("rt-{n}"), "app", &new, 200).1
        }
    });
    for n in 0..2 * TOKENS {
        let i = n as usize;
        assert!(
            wins[0][i] ^ wins[1][i],
            "token {n}: exactly one rotation wins"
        );
        let (winner, loser) = if wins[0][i] { (0, 1) } else { (1, 0) };
        assert_eq!(
            state_of(&s, &format!("rt-{n}")),
            rotated(200, &format!("rt-{n}-by-{winner}"))
        );
        assert_eq!(
            get_refresh(&s, &format!("rt-{n}-by-{loser}")),
            None,
            "token {n}: the loser stored nothing"
        );
    }
}
