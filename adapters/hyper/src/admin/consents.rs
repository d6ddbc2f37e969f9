//! `user consents` and `user revoke-consent`: the consents a user gave clients, which the
//! authorization page remembers so a client's next request for the same scope or less needs no
//! consent page (`oauth_proto::interaction`). Revoking one brings the page back at the client's
//! next request; the tokens already issued stay (revoke them with `user passwd` or `client del`).
//! Deleting the user or the client drops its consents too.

use oauth_directory::Directory;
use oauth_proto::store::{ConsentRecord, Effect, Op, Reply};

/// The consents of user `name`, newest first.
pub async fn list(store: &impl Directory, name: &str) -> Result<Vec<ConsentRecord>, String> {
    match store
        .execute(Op::Consents {
            subject: name.to_owned(),
        })
        .await
        .map_err(|e| e.to_string())?
    {
        Reply::Consents(c) => Ok(c),
        _ => Err("the store answered Consents with another reply".to_owned()),
    }
}

/// Forgets the consent user `name` gave `client_id`; an error when there is none.
pub async fn revoke(store: &impl Directory, name: &str, client_id: &str) -> Result<(), String> {
    if !list(store, name)
        .await?
        .iter()
        .any(|c| c.client_id == client_id)
    {
        return Err(format!("{name} has no remembered consent for {client_id}"));
    }
    let forget = Effect::DeleteConsent {
        subject: name.to_owned(),
        client_id: Some(client_id.to_owned()),
    };
    store
        .change(Vec::new(), vec![forget])
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::scope::Scope;
    use oauth_store_memory::MemoryStore;

    #[test]
    fn listed_newest_first_and_revoked_one_by_one() {
        let store = MemoryStore::new();
        let consent = |client: &str, at| ConsentRecord {
            subject: "alice".into(),
            client_id: client.into(),
            scope: Scope::parse("openid").unwrap(),
            granted_at: at,
        };
        crate::test_support::block_on(async {
            store
                .change(
                    Vec::new(),
                    vec![
                        Effect::PutConsent(consent("mail", 1)),
                        Effect::PutConsent(consent("cal", 2)),
                    ],
                )
                .await
                .unwrap();
            let ids =
                |l: Vec<ConsentRecord>| l.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
            assert_eq!(ids(list(&store, "alice").await.unwrap()), ["cal", "mail"]);
            revoke(&store, "alice", "mail").await.unwrap();
            assert_eq!(ids(list(&store, "alice").await.unwrap()), ["cal"]);
            let again = revoke(&store, "alice", "mail").await.unwrap_err();
            assert!(again.contains("no remembered consent"), "{again}");
            assert!(list(&store, "bob").await.unwrap().is_empty());
        });
    }
}
