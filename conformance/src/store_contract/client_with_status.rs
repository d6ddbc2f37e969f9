//! Contract case for [`Op::GetClientWithStatus`]: a client and a grant's revocation status read
//! together (the one op of a `client_credentials` request, and of an access token's introspection
//! or revocation), answering exactly what [`Op::GetClient`] and [`Op::RevocationStatus`] answer
//! separately, whatever the client, the grant and the subject.

use std::sync::Arc;

use oauth_proto::client::ClientRecord;
use oauth_proto::store::{Effect, GrantId, Op, Reply, RevocationStatus};
use oauth_proto::token::client_credentials_grant_id;

use super::fixtures::{client, grant_id};
use super::{apply, exec, revocation_status, ContractStore, Harness};

/// The answer to `GetClientWithStatus`.
fn together<S: ContractStore>(
    s: &S,
    client_id: &str,
    grant: GrantId,
    subject: &str,
) -> (Option<Arc<ClientRecord>>, RevocationStatus) {
    let op = Op::GetClientWithStatus {
        client_id: client_id.into(),
        grant_id: grant,
        subject: subject.into(),
    };
    match exec(s, op) {
        Reply::ClientWithStatus { client, status } => (client, status),
        other => panic!("GetClientWithStatus answered {other:?}"),
    }
}

/// The answers to `GetClient` and `RevocationStatus`, asked one after the other.
fn apart<S: ContractStore>(
    s: &S,
    client_id: &str,
    grant: GrantId,
    subject: &str,
) -> (Option<Arc<ClientRecord>>, RevocationStatus) {
    let client = match exec(
        s,
        Op::GetClient {
            client_id: client_id.into(),
        },
    ) {
        Reply::Client(c) => c,
        other => panic!("GetClient answered {other:?}"),
    };
    (client, revocation_status(s, grant, subject))
}

/// Asks both ways for a `client_credentials` request of `client_id` (its grant, itself as the
/// subject), checks they agree, and returns the answer.
fn as_cc<S: ContractStore>(
    s: &S,
    client_id: &str,
) -> (Option<Arc<ClientRecord>>, RevocationStatus) {
    let grant = client_credentials_grant_id(client_id);
    let answer = together(s, client_id, grant, client_id);
    assert_eq!(answer, apart(s, client_id, grant, client_id), "{client_id}");
    answer
}

/// The client as `GetClient` answers it and the status as `RevocationStatus` answers it: for a
/// registered client, an unknown one, a revoked `client_credentials` grant, and a subject whose
/// credential version was bumped; the client, grant and subject asked independently of each other.
pub fn a_client_read_with_status_answers_as_the_two_reads<S: ContractStore>(h: &Harness<S>) {
    let s = (h.fresh)();
    let (app, other) = (client("app"), client("other"));
    apply(
        &s,
        vec![
            Effect::PutClient(app.clone()),
            Effect::PutClient(other.clone()),
        ],
    );
    // A registered client, nothing revoked.
    assert_eq!(
        as_cc(&s, "app"),
        (Some(Arc::new(app.clone())), RevocationStatus::default())
    );
    // An unknown client: no client, and the status of a grant and subject never revoked.
    assert_eq!(as_cc(&s, "nobody"), (None, RevocationStatus::default()));

    // Revoking the client revokes its client_credentials grant (as `Engine::revoke_client`
    // does); the client stays registered.
    apply(
        &s,
        vec![
            Effect::RevokeClient {
                client_id: "app".into(),
                at: 250,
                keep_until: 900,
            },
            Effect::RevokeGrant {
                grant_id: client_credentials_grant_id("app"),
                at: 250,
                keep_until: 900,
            },
        ],
    );
    let revoked = RevocationStatus {
        access_revoked_at: Some(250),
        credential_version: 0,
    };
    assert_eq!(as_cc(&s, "app"), (Some(Arc::new(app.clone())), revoked));
    assert_eq!(
        as_cc(&s, "other"),
        (Some(Arc::new(other.clone())), RevocationStatus::default()),
        "another client's grant is untouched"
    );

    // A subject whose credential version was bumped (twice), the client as changed since.
    let mut renamed = other.clone();
    renamed.name = "Renamed".into();
    apply(
        &s,
        vec![
            Effect::PutClient(renamed.clone()),
            Effect::RevokeSubject {
                subject: "other".into(),
                at: 300,
                keep_until: 900,
            },
            Effect::RevokeSubject {
                subject: "other".into(),
                at: 301,
                keep_until: 900,
            },
        ],
    );
    let (found, status) = as_cc(&s, "other");
    assert_eq!(found, Some(Arc::new(renamed)));
    assert_eq!(status.credential_version, 2);
    // Its grant has no record, so revoking the subject did not revoke it.
    assert_eq!(status.access_revoked_at, None);

    // The op answers for the grant and subject it names, not ones derived from the client.
    let mixed = together(&s, "nobody", client_credentials_grant_id("app"), "other");
    assert_eq!(
        mixed,
        (
            None,
            RevocationStatus {
                access_revoked_at: Some(250),
                credential_version: 2,
            }
        )
    );
    assert_eq!(
        mixed,
        apart(&s, "nobody", client_credentials_grant_id("app"), "other")
    );
    assert_eq!(
        together(&s, "app", grant_id(7), "alice"),
        (Some(Arc::new(app)), RevocationStatus::default())
    );
}
