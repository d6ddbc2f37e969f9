//! Contract cases for [`Op::RotateRefresh`](oauth_proto::store::Op::RotateRefresh): a
//! compare-and-swap on a grant's refresh family, from its current token to a successor, only for
//! a live grant. A first rotation sets the family's `previous` to the replaced token at the
//! successor's issue time; a retried one (`retry`, which replaces a successor whose answer was
//! lost) leaves `previous` as it was, so that the token presented again stays the one the grace
//! window knows. Both extend the grant to cover the new token ([`GRANT_EXTENSION`]), and of
//! concurrent rotations from one current token exactly one swaps.

use oauth_proto::store::{extended_grant_expiry, Effect, RefreshFamily, GRANT_EXTENSION};

use super::fixtures::{client, family_hash, grant, grant_id, refresh, successor};
use super::{
    apply, assert_never_rotates, family_of, get_refresh, issue, race, retry, rotate,
    rotated_family, ContractStore, Harness,
};

/// Two concurrent rotations of one current token: exactly one swaps, and the family then holds
/// the winner as current and the replaced token as previous, in place (no record per token). A
/// token rotated out cannot rotate again; the successor can.
pub fn refresh_rotation_is_a_compare_and_swap<S: ContractStore>(h: &Harness<S>) {
    const TOKENS: u64 = 24;
    let s = (h.fresh)();
    for n in 0..TOKENS {
        issue(&s, n, "app", "alice", &format!("rt-{n}"));
    }
    let records = (h.len)(&s);
    let wins = race(&s, TOKENS, |s, t, n| {
        let new = successor(&format!("rt-{n}-by-{t}"), 200, 6000);
        rotate(s, n, &format!("rt-{n}"), new)
    });
    for n in 0..TOKENS {
        let i = n as usize;
        assert!(
            wins[0][i] ^ wins[1][i],
            "token {n}: exactly one rotation wins"
        );
        let winner = format!("rt-{n}-by-{}", if wins[0][i] { 0 } else { 1 });
        let found = get_refresh(&s, n).expect("the family is kept");
        assert_eq!(
            found.family,
            rotated_family(n, &winner, (200, 6000), &format!("rt-{n}"), 200),
            "token {n}: the winner is current, the rotated token previous, the loser nowhere"
        );
        assert_eq!(
            found.grant.expires_at,
            6000 + GRANT_EXTENSION,
            "the grant lives as long as its newest token"
        );
    }
    assert_eq!((h.len)(&s), records, "rotations store no records");

    let winner = if wins[0][0] { "rt-0-by-0" } else { "rt-0-by-1" };
    let before = family_of(&s, 0);
    assert!(
        !rotate(&s, 0, "rt-0", successor("rt-0-again", 300, 7000)),
        "a second rotation from the same token fails"
    );
    assert_eq!(family_of(&s, 0), before, "and changes nothing");
    assert!(
        rotate(&s, 0, winner, successor("rt-0-third", 300, 7000)),
        "the chain continues from the successor"
    );
    assert_eq!(
        family_of(&s, 0),
        Some(rotated_family(0, "rt-0-third", (300, 7000), winner, 300))
    );
}

/// A rotation whose new token expires after the grant extends the grant to the token's expiry
/// plus [`GRANT_EXTENSION`]; one whose token the grant already covers leaves it as it is.
pub fn rotation_extends_the_grant_to_cover_the_new_token<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    issue(&s, 1, "app", "alice", "rt-0");
    let grant_expiry = |s: &S| get_refresh(s, 1).map(|r| r.grant.expires_at);
    let past = 6000 + GRANT_EXTENSION + 1;
    // (token expiry, grant expiry after the rotation, why)
    let steps = [
        (4000, 5000, "a token expiring before the grant leaves it"),
        (5000, 5000, "so does one expiring with it"),
        (
            6000,
            6000 + GRANT_EXTENSION,
            "a later token extends it by the step",
        ),
        (
            7000,
            6000 + GRANT_EXTENSION,
            "a token within the step leaves it",
        ),
        (
            past,
            past + GRANT_EXTENSION,
            "a token past the step extends it again",
        ),
    ];
    for (n, (token_expiry, grant_after, why)) in steps.into_iter().enumerate() {
        let before = grant_expiry(&s).expect("stored");
        assert_eq!(extended_grant_expiry(before, token_expiry), grant_after);
        let new = successor(&format!("rt-{}", n + 1), 200 + n as u64, token_expiry);
        assert!(rotate(&s, 1, &format!("rt-{n}"), new), "{why}: rotates");
        assert_eq!(grant_expiry(&s), Some(grant_after), "{why}");
    }
}

/// Nothing rotates for a revoked grant, an unknown grant, or a token that is not the family's
/// current one (another grant's, a made-up one, or the one rotated out), and the family is left
/// as it was.
pub fn rotation_fails_for_revoked_grants_and_other_tokens<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    issue(&s, 1, "app", "alice", "rt-1");
    issue(&s, 2, "app", "alice", "rt-2");
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 150,
            keep_until: 400,
        }],
    );
    assert_never_rotates(&s, 1, "rt-1", "app");
    let new = || successor("rt-x", 200, 6000);
    for (from, why) in [
        ("rt-1", "another grant's token"),
        ("made-up", "a made-up token"),
    ] {
        assert!(!rotate(&s, 2, from, new()), "{why}");
        assert!(!retry(&s, 2, from, new()), "{why}, retried");
        assert_eq!(
            family_of(&s, 2),
            Some(refresh("rt-2", 2, 100, 5000)),
            "{why}: unchanged"
        );
    }
    assert!(!rotate(&s, 9, "rt-2", new()), "grant 9 does not exist");
    assert_eq!(get_refresh(&s, 9), None);

    assert!(rotate(&s, 2, "rt-2", successor("rt-2b", 200, 6000)));
    let rotated = family_of(&s, 2);
    assert!(
        !rotate(&s, 2, "rt-2", new()),
        "the token rotated out is not current"
    );
    assert!(!retry(&s, 2, "rt-2", new()), "nor for a retry");
    assert_eq!(family_of(&s, 2), rotated, "unchanged");
    assert!(rotate(&s, 2, "rt-2b", successor("rt-2c", 210, 6000)));
}

/// A family adopted without a family hash (from tokens issued before families) gets the one its
/// first rotation carries.
pub fn a_rotation_gives_an_adopted_family_its_hash<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let adopted = RefreshFamily {
        family: None,
        ..rotated_family(1, "legacy-current", (100, 5000), "legacy-old", 90)
    };
    apply(
        &s,
        vec![
            Effect::PutGrant(grant(1, "app", "alice", 5000)),
            Effect::PutRefreshFamily(adopted.clone()),
        ],
    );
    assert_eq!(family_of(&s, 1), Some(adopted));
    assert!(rotate(
        &s,
        1,
        "legacy-current",
        successor("rt-1", 200, 6000)
    ));
    let found = family_of(&s, 1).expect("kept");
    assert_eq!(found.family, Some(family_hash(1)), "the family hash is set");
    assert_eq!(
        found,
        rotated_family(1, "rt-1", (200, 6000), "legacy-current", 200)
    );
}

/// A retried rotation swaps from the current token (the successor whose answer was lost) like a
/// first one, and extends the grant, but leaves `previous` as it was: the token presented again,
/// with its original rotation time. It fails from any token but the current one, and for a
/// revoked grant.
pub fn a_retried_rotation_keeps_the_token_presented_again<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    apply(&s, vec![Effect::PutClient(client("app"))]);
    issue(&s, 1, "app", "alice", "rt-1");
    assert!(rotate(&s, 1, "rt-1", successor("rt-2", 200, 6000)));
    let lost = family_of(&s, 1);
    assert_eq!(
        lost,
        Some(rotated_family(1, "rt-2", (200, 6000), "rt-1", 200))
    );
    for (from, why) in [
        ("rt-9", "a token never issued"),
        ("rt-1", "the token presented again is not current"),
    ] {
        assert!(!retry(&s, 1, from, successor("rt-x", 210, 7000)), "{why}");
        assert_eq!(family_of(&s, 1), lost, "{why}: unchanged");
    }
    let later = 6000 + GRANT_EXTENSION + 10;
    assert!(retry(&s, 1, "rt-2", successor("rt-3", 210, later)));
    let found = get_refresh(&s, 1).expect("kept");
    assert_eq!(
        found.family,
        rotated_family(1, "rt-3", (210, later), "rt-1", 200),
        "previous keeps the token presented again and its rotation time"
    );
    assert_eq!(
        found.grant.expires_at,
        later + GRANT_EXTENSION,
        "a retry extends the grant like a rotation"
    );
    assert!(
        !retry(&s, 1, "rt-2", successor("rt-x", 220, 7000)),
        "the lost successor was replaced"
    );
    assert!(retry(&s, 1, "rt-3", successor("rt-4", 230, 7000)));
    assert_eq!(
        family_of(&s, 1),
        Some(rotated_family(1, "rt-4", (230, 7000), "rt-1", 200)),
        "however often retried"
    );
    assert!(rotate(&s, 1, "rt-4", successor("rt-5", 240, 7000)));
    assert_eq!(
        family_of(&s, 1),
        Some(rotated_family(1, "rt-5", (240, 7000), "rt-4", 240)),
        "a first rotation moves previous on"
    );
    apply(
        &s,
        vec![Effect::RevokeGrant {
            grant_id: grant_id(1),
            at: 250,
            keep_until: 400,
        }],
    );
    assert_never_rotates(&s, 1, "rt-5", "app");
}

/// Two retries of one lost rotation at once, or a retry against a first rotation from the same
/// successor: exactly one swaps, and `previous` is what the winner's kind of rotation leaves.
pub fn of_concurrent_retries_of_one_rotation_exactly_one_wins<S: ContractStore>(h: &Harness<S>) {
    const TOKENS: u64 = 50;
    let s = (h.fresh)();
    for n in 0..TOKENS {
        issue(&s, n, "app", "alice", &format!("rt-{n}"));
        let lost = successor(&format!("rt-{n}-lost"), 200, 6000);
        assert!(rotate(&s, n, &format!("rt-{n}"), lost));
    }
    // Grants below TOKENS / 2: two retries; the others: thread 1 rotates as a first rotation.
    let first_rotation = |n: u64, t: u64| n >= TOKENS / 2 && t == 1;
    let wins = race(&s, TOKENS, |s, t, n| {
        let new = successor(&format!("rt-{n}-by-{t}"), 210, 6000);
        let from = format!("rt-{n}-lost");
        if first_rotation(n, t) {
            rotate(s, n, &from, new)
        } else {
            retry(s, n, &from, new)
        }
    });
    for n in 0..TOKENS {
        let i = n as usize;
        assert!(wins[0][i] ^ wins[1][i], "token {n}: exactly one swaps");
        let winner = if wins[0][i] { 0 } else { 1 };
        let won = format!("rt-{n}-by-{winner}");
        let expected = if first_rotation(n, winner) {
            rotated_family(n, &won, (210, 6000), &format!("rt-{n}-lost"), 210)
        } else {
            rotated_family(n, &won, (210, 6000), &format!("rt-{n}"), 200)
        };
        assert_eq!(family_of(&s, n), Some(expected), "token {n}");
    }
}
