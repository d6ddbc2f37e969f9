//! Contract cases for [`Op::RefreshPublic`](oauth_proto::store::Op::RefreshPublic): the read of
//! `Op::GetRefresh` and, in the same atomic step, the rotation of `Op::RotateRefresh`, only when
//! the presented token is the family's current one, unexpired at the new token's issue time, of a
//! live grant of the named, registered client. The answer is the read as it stands after the op
//! (after the rotation when there was one); of concurrent rotations from one current token (by
//! this op or the other), exactly one swaps.

use oauth_proto::store::{Effect, GRANT_EXTENSION};

use super::fixtures::{client, grant_id, hash, successor};
use super::{
    apply, family_of, get_refresh, issue, race, refresh_public, rotate, rotated_family,
    ContractStore, Harness,
};

/// The current token of a registered client's live grant is rotated, and the answer is the read
/// after it: the successor current, the presented token previous at the successor's issue time,
/// the family hash kept, the grant extended, the client and status as `GetRefresh` reads them.
pub fn a_public_refresh_reads_and_rotates_in_one_step<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let app = client("app");
    apply(&s, vec![Effect::PutClient(app.clone())]);
    issue(&s, 1, "app", "alice", "rt-1");
    let (found, rotated) = refresh_public(&s, 1, "rt-1", "app", successor("rt-1b", 200, 6000));
    assert!(rotated, "the current token of a registered client rotates");
    let found = found.expect("the family is answered");
    assert_eq!(
        found.family,
        rotated_family(1, "rt-1b", (200, 6000), "rt-1", 200)
    );
    assert_eq!(found.grant.expires_at, 6000 + GRANT_EXTENSION);
    assert_eq!(found.client.as_deref(), Some(&app));
    assert_eq!(
        Some(&found),
        get_refresh(&s, 1).as_ref(),
        "the read after the op"
    );

    // The token rotated out does not rotate again, and is answered with the family as it is.
    let (again, rotated) = refresh_public(&s, 1, "rt-1", "app", successor("rt-1x", 210, 7000));
    assert!(!rotated, "a rotated token does not rotate again");
    assert_eq!(again, Some(found), "answered as read, unchanged");
    let (next, rotated) = refresh_public(&s, 1, "rt-1b", "app", successor("rt-1c", 220, 7000));
    assert!(rotated, "the successor goes on the same way");
    assert_eq!(
        next.map(|f| f.family),
        Some(rotated_family(1, "rt-1c", (220, 7000), "rt-1b", 220))
    );
}

/// Nothing is rotated, and the family is answered as `GetRefresh` reads it (or not at all), for an
/// unknown grant, another client's token, a grant whose client is not registered or was deleted,
/// a token expired at the rotation time (at its expiry exactly), a revoked grant, a token that is
/// not the family's current one, and the token a rotation replaced.
pub fn a_public_refresh_rotates_only_what_it_may<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(
        &s,
        vec![
            Effect::PutClient(client("app")),
            Effect::PutClient(client("other")),
            Effect::PutClient(client("doomed")),
        ],
    );
    assert_eq!(
        refresh_public(&s, 9, "rt-9", "app", successor("x-9", 200, 6000)),
        (None, false),
        "an unknown grant"
    );
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "ghost", "alice", "rt-2");
    issue(&s, 3, "app", "alice", "rt-3");
    issue(&s, 4, "app", "alice", "rt-4");
    issue(&s, 5, "app", "alice", "rt-5");
    issue(&s, 6, "app", "alice", "rt-6");
    issue(&s, 7, "doomed", "alice", "rt-7");
    assert!(rotate(&s, 6, "rt-6", successor("rt-6b", 150, 5000)));
    apply(
        &s,
        vec![
            Effect::RevokeGrant {
                grant_id: grant_id(4),
                at: 150,
                keep_until: 400,
            },
            Effect::DeleteClient {
                client_id: "doomed".into(),
                at: 150,
                keep_until: 400,
            },
        ],
    );
    let refused = [
        (1, "rt-1", "other", 200, "another client's token"),
        (
            2,
            "rt-2",
            "ghost",
            200,
            "the grant's client is not registered",
        ),
        (
            3,
            "rt-3",
            "app",
            5000,
            "the token expires at the rotation time",
        ),
        (4, "rt-4", "app", 200, "the grant is revoked"),
        (5, "made-up", "app", 200, "the token is not the current one"),
        (6, "rt-6", "app", 200, "the token was rotated out"),
        (7, "rt-7", "doomed", 200, "the client was deleted"),
    ];
    for (grant, token, client_id, at, why) in refused {
        let before = get_refresh(&s, grant);
        assert!(before.is_some(), "{why}: grant {grant} is read");
        let new = successor(&format!("new-{grant}"), at, 6000);
        let (found, rotated) = refresh_public(&s, grant, token, client_id, new);
        assert!(!rotated, "{why}: not rotated");
        assert_eq!(found, before, "{why}: the read is answered");
        assert_eq!(
            get_refresh(&s, grant),
            before,
            "{why}: the family is unchanged"
        );
    }
    // Each refusal was for its one reason.
    let accepted = [
        (1, "rt-1", "app", 200, "the token's own client"),
        (3, "rt-3", "app", 4999, "a second before its expiry"),
        (6, "rt-6b", "app", 200, "the current token"),
    ];
    for (grant, token, client_id, at, why) in accepted {
        let new = format!("new-{grant}");
        let (_, rotated) = refresh_public(&s, grant, token, client_id, successor(&new, at, 6000));
        assert!(rotated, "{why}: rotates");
        assert_eq!(
            family_of(&s, grant).map(|f| f.current),
            Some(hash(&new)),
            "{why}"
        );
    }
}

/// Of concurrent rotations of one current token, by this op on both sides or against
/// [`Op::RotateRefresh`](oauth_proto::store::Op::RotateRefresh), exactly one swaps, and the
/// loser's token is nowhere in the family.
pub fn of_concurrent_public_refreshes_exactly_one_wins<S: ContractStore>(h: &Harness<S>) {
    const TOKENS: u64 = 24;
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    for n in 0..2 * TOKENS {
        issue(&s, n, "app", "alice", &format!("rt-{n}"));
    }
    // Grants 0..TOKENS: this op on both sides; TOKENS..2*TOKENS: against RotateRefresh.
    let wins = race(&s, 2 * TOKENS, |s, t, n| {
        let new = successor(&format!("rt-{n}-by-{t}"), 200, 6000);
        if n >= TOKENS && t == 1 {
            rotate(s, n, &format!("rt-{n}"), new)
        } else {
            refresh_public(s, n, &format!("rt-{n}"), "app", new).1
        }
    });
    for n in 0..2 * TOKENS {
        let i = n as usize;
        assert!(
            wins[0][i] ^ wins[1][i],
            "token {n}: exactly one rotation wins"
        );
        let winner = format!("rt-{n}-by-{}", if wins[0][i] { 0 } else { 1 });
        assert_eq!(
            family_of(&s, n),
            Some(rotated_family(
                n,
                &winner,
                (200, 6000),
                &format!("rt-{n}"),
                200
            )),
            "token {n}"
        );
    }
}
