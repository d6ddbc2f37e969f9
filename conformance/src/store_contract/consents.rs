//! Contract cases for remembered consents ([`ConsentRecord`]): kept per subject and client,
//! newest first, bounded per subject, gone with their client, never expiring on their own.

use oauth_proto::client::ClientRecord;
use oauth_proto::store::{ConsentRecord, Effect, Op, Reply, MAX_CONSENTS_PER_SUBJECT};

use super::fixtures::{client, scope};
use super::{apply, exec, ContractStore, Harness};

fn consent(subject: &str, client_id: &str, s: &str, granted_at: u64) -> ConsentRecord {
    ConsentRecord {
        subject: subject.into(),
        client_id: client_id.into(),
        scope: scope(s),
        granted_at,
    }
}

fn consents<S: ContractStore>(s: &S, subject: &str) -> Vec<ConsentRecord> {
    match exec(
        s,
        Op::Consents {
            subject: subject.into(),
        },
    ) {
        Reply::Consents(c) => c,
        other => panic!("Consents answered {other:?}"),
    }
}

fn clients_of(list: &[ConsentRecord]) -> Vec<&str> {
    list.iter().map(|c| c.client_id.as_str()).collect()
}

/// A consent is one record per subject and client, replaced by the next approval, read newest
/// first, forgotten one by one or all of a subject at once, and never purged for its age.
pub fn consents_are_kept_per_subject_and_client<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    assert!(consents(&s, "alice").is_empty(), "unknown subject: none");
    apply(
        &s,
        vec![
            Effect::PutConsent(consent("alice", "mail", "openid", 10)),
            Effect::PutConsent(consent("alice", "cal", "openid profile", 20)),
            Effect::PutConsent(consent("bob", "mail", "openid", 5)),
        ],
    );
    assert_eq!((h.len)(&s), 3);
    assert_eq!(
        consents(&s, "alice"),
        vec![
            consent("alice", "cal", "openid profile", 20),
            consent("alice", "mail", "openid", 10),
        ]
    );
    // A second approval of the same client replaces the first (and is the newest now).
    apply(
        &s,
        vec![Effect::PutConsent(consent(
            "alice",
            "mail",
            "email openid",
            30,
        ))],
    );
    assert_eq!((h.len)(&s), 3);
    let alice = consents(&s, "alice");
    assert_eq!(clients_of(&alice), ["mail", "cal"]);
    assert_eq!(alice[0].scope, scope("email openid"));
    // No expiry of their own: a purge at any time keeps them.
    s.purge(u64::MAX).expect("purge");
    assert_eq!(clients_of(&consents(&s, "alice")), ["mail", "cal"]);
    // Forgetting one, then one that is not there (no error), then all of a subject.
    apply(
        &s,
        vec![
            Effect::DeleteConsent {
                subject: "alice".into(),
                client_id: Some("cal".into()),
            },
            Effect::DeleteConsent {
                subject: "alice".into(),
                client_id: Some("never".into()),
            },
        ],
    );
    assert_eq!(clients_of(&consents(&s, "alice")), ["mail"]);
    apply(
        &s,
        vec![Effect::DeleteConsent {
            subject: "alice".into(),
            client_id: None,
        }],
    );
    assert!(consents(&s, "alice").is_empty());
    assert_eq!(
        consents(&s, "bob"),
        vec![consent("bob", "mail", "openid", 5)],
        "another subject's stay"
    );
    assert_eq!((h.len)(&s), 1);
}

/// A subject keeps at most [`MAX_CONSENTS_PER_SUBJECT`]: the oldest go (by `granted_at`, then
/// by client id), whichever order they were written in.
pub fn consents_are_bounded_per_subject<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let over = MAX_CONSENTS_PER_SUBJECT as u64 + 5;
    // Written newest first in one apply, then the rest one by one: both paths bound.
    let mut batch: Vec<Effect> = (over / 2..over)
        .rev()
        .map(|i| Effect::PutConsent(consent("alice", &format!("c{i:03}"), "openid", 100 + i)))
        .collect();
    batch.push(Effect::PutConsent(consent("bob", "c000", "openid", 1)));
    apply(&s, batch);
    for i in 0..over / 2 {
        apply(
            &s,
            vec![Effect::PutConsent(consent(
                "alice",
                &format!("c{i:03}"),
                "openid",
                100 + i,
            ))],
        );
    }
    let alice = consents(&s, "alice");
    assert_eq!(alice.len(), MAX_CONSENTS_PER_SUBJECT);
    assert_eq!(
        alice[0].client_id,
        format!("c{:03}", over - 1),
        "newest first"
    );
    assert_eq!(
        alice.last().map(|c| c.client_id.as_str()),
        Some("c005"),
        "the five oldest went"
    );
    assert_eq!(
        consents(&s, "bob").len(),
        1,
        "another subject's are not touched"
    );
    assert_eq!((h.len)(&s), MAX_CONSENTS_PER_SUBJECT + 1);
    // Equal times: the smaller client id is the older.
    let t = (h.fresh)();
    let mut tied: Vec<Effect> = (0..MAX_CONSENTS_PER_SUBJECT)
        .map(|i| Effect::PutConsent(consent("carol", &format!("t{i:03}"), "openid", 7)))
        .collect();
    tied.push(Effect::PutConsent(consent("carol", "s-first", "openid", 7)));
    apply(&t, tied);
    let carol = consents(&t, "carol");
    assert_eq!(carol.len(), MAX_CONSENTS_PER_SUBJECT);
    assert!(carol.iter().all(|c| c.client_id != "s-first"), "{carol:?}");
    assert_eq!(
        carol[0].client_id,
        format!("t{:03}", MAX_CONSENTS_PER_SUBJECT - 1)
    );
}

/// Deleting a client forgets every user's consent for it, and so does the purge that drops a
/// registered client nobody used; consents for clients the store does not hold (known by
/// their metadata document) stay.
pub fn consents_go_with_their_client<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let unused = ClientRecord {
        unused_expires_at: Some(1000),
        access_token_format: Default::default(),
        ..client("registered")
    };
    apply(
        &s,
        vec![
            Effect::PutClient(client("mail")),
            Effect::PutClient(unused),
            Effect::PutConsent(consent("alice", "mail", "openid", 1)),
            Effect::PutConsent(consent("bob", "mail", "openid", 1)),
            Effect::PutConsent(consent("alice", "registered", "openid", 2)),
            Effect::PutConsent(consent("alice", "https://app.example/doc", "openid", 3)),
        ],
    );
    apply(
        &s,
        vec![Effect::DeleteClient {
            client_id: "mail".into(),
            at: 10,
            keep_until: 20,
        }],
    );
    assert_eq!(
        clients_of(&consents(&s, "alice")),
        ["https://app.example/doc", "registered"]
    );
    assert!(consents(&s, "bob").is_empty());
    let stats = s.purge(1000).expect("purge");
    assert_eq!(stats.removed, 2, "the unused client and its consent");
    assert_eq!(
        clients_of(&consents(&s, "alice")),
        ["https://app.example/doc"]
    );
}
