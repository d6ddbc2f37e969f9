//! Contract cases for [`Op::GrantsOfSession`]: the live grants a browser session approved, which a
//! session end revokes unless they carry `offline_access` (Back-Channel Logout §2.7). Found by
//! subject and `sid`, never another's; revoked and expired grants left out; in grant id order, a
//! page of at most [`MAX_SESSION_GRANTS`] at a time, the next page starting after a grant id.

use oauth_proto::store::{Effect, GrantId, Op, Reply, SessionGrant, MAX_SESSION_GRANTS};

use super::fixtures::{grant, grant_id, scope};
use super::{apply, exec, ContractStore, Harness};

fn page<S: ContractStore>(
    s: &S,
    subject: &str,
    sid: &str,
    now: u64,
    after: Option<GrantId>,
) -> Vec<SessionGrant> {
    match exec(
        s,
        Op::GrantsOfSession {
            subject: subject.into(),
            sid: sid.into(),
            now,
            after,
        },
    ) {
        Reply::SessionGrants(g) => g,
        other => panic!("GrantsOfSession answered {other:?}"),
    }
}

fn ids(page: &[SessionGrant]) -> Vec<GrantId> {
    page.iter().map(|g| g.grant_id).collect()
}

/// Grant `n` of `subject` (for client `mail`, expiring at 1000) approved in session `sid`, with
/// scope `s`.
fn in_session(n: u64, subject: &str, sid: Option<&str>, s: &str) -> Effect {
    let mut g = grant(n, "mail", subject, 1000);
    g.sid = sid.map(str::to_owned);
    g.scope = scope(s);
    Effect::PutGrant(g)
}

/// Only the subject's live grants of that session are answered, each with its scope.
pub fn a_sessions_grants_are_found_by_subject_and_sid<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    assert!(page(&s, "alice", "s1", 100, None).is_empty(), "nothing yet");
    apply(
        &s,
        vec![
            in_session(1, "alice", Some("s1"), "openid"),
            in_session(2, "alice", Some("s1"), "openid offline_access"),
            in_session(3, "alice", Some("s2"), "openid"),
            in_session(4, "bob", Some("s1"), "openid"),
            in_session(5, "alice", None, "openid"),
            in_session(6, "alice", Some("s1"), "openid email"),
        ],
    );
    // 6 is revoked; 7 expires at 150.
    let mut expiring = grant(7, "mail", "alice", 150);
    expiring.sid = Some("s1".into());
    expiring.scope = scope("openid");
    apply(
        &s,
        vec![
            Effect::PutGrant(expiring),
            Effect::RevokeGrant {
                grant_id: grant_id(6),
                at: 110,
                keep_until: 500,
            },
        ],
    );
    let mut want = vec![grant_id(1), grant_id(2), grant_id(7)];
    want.sort();
    let found = page(&s, "alice", "s1", 120, None);
    assert_eq!(
        ids(&found),
        want,
        "by grant id; not s2, not bob's, not none"
    );
    let two = found.iter().find(|g| g.grant_id == grant_id(2)).unwrap();
    assert_eq!(two.scope, scope("openid offline_access"));
    let mut live = vec![grant_id(1), grant_id(2)];
    live.sort();
    assert_eq!(
        ids(&page(&s, "alice", "s1", 150, None)),
        live,
        "expired at 150"
    );
    assert_eq!(ids(&page(&s, "alice", "s2", 120, None)), vec![grant_id(3)]);
    assert_eq!(ids(&page(&s, "bob", "s1", 120, None)), vec![grant_id(4)]);
    assert!(page(&s, "carol", "s1", 120, None).is_empty());
    assert!(page(&s, "alice", "s9", 120, None).is_empty());
    // A page after a grant id starts after it.
    assert_eq!(
        ids(&page(&s, "alice", "s1", 150, Some(live[0]))),
        &live[1..]
    );
    assert!(page(&s, "alice", "s1", 150, Some(live[1])).is_empty());
}

/// A page holds at most [`MAX_SESSION_GRANTS`]; the next page, after the last one, the rest.
pub fn a_sessions_grants_come_in_bounded_pages<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let n = MAX_SESSION_GRANTS as u64 + 5;
    apply(
        &s,
        (1..=n)
            .map(|i| in_session(i, "alice", Some("s1"), "openid"))
            .chain([in_session(n + 1, "alice", Some("s2"), "openid")])
            .collect(),
    );
    let mut all: Vec<GrantId> = (1..=n).map(grant_id).collect();
    all.sort();
    let first = page(&s, "alice", "s1", 100, None);
    assert_eq!(ids(&first), &all[..MAX_SESSION_GRANTS]);
    let rest = page(&s, "alice", "s1", 100, Some(first.last().unwrap().grant_id));
    assert_eq!(ids(&rest), &all[MAX_SESSION_GRANTS..]);
}
