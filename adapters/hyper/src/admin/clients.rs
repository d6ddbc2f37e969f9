//! Client administration (`oauth-server client ...`), over the store contract.
//!
//! Clients added here are registered by the operator, so they are trusted with what they are given.
//! The client id is random (128 bits); a confidential client's secret is 256 random bits,
//! base64url, shown once and stored only as its SHA-256 hash (`oauth_proto::secret::Secret`).

use oauth_proto::backchannel_logout::{
    self, BACKCHANNEL_LOGOUT_SESSION_REQUIRED, BACKCHANNEL_LOGOUT_URI,
};
use oauth_proto::client::{AccessTokenFormat, ClientKind, ClientRecord};
use oauth_proto::client_metadata;
use oauth_proto::secret::Secret;
use oauth_proto::store::{AsyncStore, Effect, Op, Reply};
use oauth_proto::Engine;
use serde::Serialize;

use crate::rng::OsRandom;

/// What the operator asked for.
#[derive(Clone, Debug, Default)]
pub struct NewClient {
    /// Display name, shown on the consent page.
    pub name: String,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// A public client (no secret, PKCE mandatory).
    pub public: bool,
    /// Grant types; empty means `authorization_code` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// Scope; `None` means the configured default client scope.
    pub scope: Option<String>,
    /// A resource server (a mail server, an API): may introspect every token, not only its own
    /// (the default introspection policy, `resource_servers_only`). Confidential clients only.
    pub resource_server: bool,
    /// `native` or `web` (OpenID Connect Dynamic Registration §2), checked against the redirect
    /// URIs by the registration rules; `None` applies the general rules.
    pub application_type: Option<String>,
    /// The format of the client's access tokens (the HMAC format by default; RFC 9068 JWTs
    /// only when the operator says so, see `oauth_proto::jose::access_token`).
    pub access_token_format: AccessTokenFormat,
    /// Where its logout tokens go (OpenID Connect Back-Channel Logout), checked by the
    /// registration rules, and whether it needs `sid` in each.
    pub backchannel_logout: Option<BackchannelLogout>,
}

/// A client's back-channel logout registration (`backchannel_logout_uri`,
/// `backchannel_logout_session_required`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackchannelLogout {
    /// The URI logout tokens are POSTed to.
    pub uri: String,
    /// Only sessions with a `sid` are told.
    pub session_required: bool,
}

impl BackchannelLogout {
    /// The registration members, checked as a registration checks them (`Err` says why).
    fn members(
        this: Option<&BackchannelLogout>,
        engine: &Engine,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let mut body = serde_json::Map::new();
        if let Some(b) = this {
            body.insert(BACKCHANNEL_LOGOUT_URI.to_owned(), b.uri.clone().into());
            body.insert(
                BACKCHANNEL_LOGOUT_SESSION_REQUIRED.to_owned(),
                b.session_required.into(),
            );
        }
        let config = engine.config();
        let mut kept = serde_json::Map::new();
        backchannel_logout::validate(
            &body,
            &mut kept,
            config.backchannel_logout,
            config.max_metadata_string_len,
        )
        .map_err(|e| e.description.into_owned())?;
        Ok(kept)
    }
}

/// A change of an existing client's settings (`client set`); `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct Change {
    /// The format of its access tokens from now on.
    pub access_token_format: Option<AccessTokenFormat>,
}

/// The format named on the command line (`hmac`, `jwt`); the default when none is named.
pub fn access_token_format(name: Option<&str>) -> Result<AccessTokenFormat, String> {
    match name {
        None => Ok(AccessTokenFormat::default()),
        Some(name) => AccessTokenFormat::parse(name)
            .ok_or_else(|| format!("unknown access token format {name:?} (hmac or jwt)")),
    }
}

/// What `client add` prints: the only time the secret is shown.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The new client's id.
    pub client_id: String,
    /// The secret, for confidential clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Checks the request and builds the record and the one-time answer.
///
/// The operator's client is checked by the same rules as a dynamic registration
/// ([`client_metadata::validate`]: redirect URIs, grant types, scope, sizes), from the metadata
/// the options describe, `application_type` included; only what an operator may decide on top is
/// added here (the default grant types `authorization_code` and `refresh_token`, a resource
/// server, no expiry).
pub fn build(
    engine: &Engine,
    new: &NewClient,
    now: u64,
) -> Result<(ClientRecord, Created), String> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err("the client name must not be empty".to_owned());
    }
    if new.public && new.resource_server {
        return Err(
            "a public client cannot be a resource server: introspection needs a secret".to_owned(),
        );
    }
    let grant_types: Vec<&str> = if new.grant_types.is_empty() {
        vec!["authorization_code", "refresh_token"]
    } else {
        new.grant_types.iter().map(String::as_str).collect()
    };
    let mut metadata = serde_json::json!({
        "client_name": name,
        "redirect_uris": new.redirect_uris,
        "grant_types": grant_types,
        "token_endpoint_auth_method": if new.public { "none" } else { "client_secret_basic" },
    });
    if let Some(scope) = &new.scope {
        metadata["scope"] = scope.as_str().into();
    }
    if let Some(application_type) = &new.application_type {
        metadata["application_type"] = application_type.as_str().into();
    }
    let serde_json::Value::Object(mut metadata) = metadata else {
        return Err("the client's metadata is not an object".to_owned());
    };
    metadata.extend(BackchannelLogout::members(
        new.backchannel_logout.as_ref(),
        engine,
    )?);
    let checked = client_metadata::validate(&metadata, engine.config())
        .map_err(|e| e.description.into_owned())?;
    let client_id = Secret::generate(&mut OsRandom, 16).expose().to_owned();
    let secret =
        (checked.kind == ClientKind::Confidential).then(|| Secret::generate(&mut OsRandom, 32));
    let record = ClientRecord {
        client_id: client_id.clone(),
        name: name.to_owned(),
        kind: checked.kind,
        secret_hash: secret.as_ref().map(Secret::hash),
        secret_expires_at: None,
        auth_method: checked.auth_method,
        redirect_uris: checked.redirect_uris,
        grant_types: checked.grant_types,
        scope: checked.scope,
        require_pkce: false,
        resource_server: new.resource_server,
        registration_token_hash: None,
        created_at: now,
        metadata: checked.metadata,
        // Added by an administrator: never expires unused.
        unused_expires_at: None,
        access_token_format: new.access_token_format,
    };
    let created = Created {
        client_id,
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    Ok((record, created))
}

/// Adds a client; returns what to show the operator.
pub async fn add(
    store: &impl AsyncStore,
    engine: &Engine,
    new: &NewClient,
    now: u64,
) -> Result<Created, String> {
    let (record, created) = build(engine, new, now)?;
    store
        .apply(vec![Effect::PutClient(record)])
        .await
        .map_err(|e| e.to_string())?;
    Ok(created)
}

/// Every client, sorted by id.
pub async fn list(store: &impl oauth_directory::Directory) -> Result<Vec<ClientRecord>, String> {
    let mut clients = store.clients().await.map_err(|e| e.to_string())?;
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(clients)
}

/// Changes an existing client's settings. Its tokens, secret and grants are untouched: tokens
/// already issued in one access token format stay valid, since validation takes both.
pub async fn set(store: &impl AsyncStore, client_id: &str, change: &Change) -> Result<(), String> {
    update(store, client_id, |client| {
        if let Some(format) = change.access_token_format {
            client.access_token_format = format;
        }
    })
    .await
}

/// Sets (or, with `None`, removes) an existing client's back-channel logout registration,
/// checked by the registration rules first: a refused URI changes nothing.
pub async fn set_backchannel_logout(
    store: &impl AsyncStore,
    engine: &Engine,
    client_id: &str,
    registration: Option<&BackchannelLogout>,
) -> Result<(), String> {
    let members = BackchannelLogout::members(registration, engine)?;
    update(store, client_id, |client| {
        client.metadata.remove(BACKCHANNEL_LOGOUT_URI);
        client.metadata.remove(BACKCHANNEL_LOGOUT_SESSION_REQUIRED);
        client.metadata.extend(members);
    })
    .await
}

/// Reads the client `client_id`, changes it and writes it back.
async fn update(
    store: &impl AsyncStore,
    client_id: &str,
    change: impl FnOnce(&mut ClientRecord),
) -> Result<(), String> {
    let mut client = match store
        .execute(Op::GetClient {
            client_id: client_id.to_owned(),
        })
        .await
        .map_err(|e| e.to_string())?
    {
        Reply::Client(Some(c)) => std::sync::Arc::unwrap_or_clone(c),
        Reply::Client(None) => return Err(format!("no client {client_id}")),
        _ => return Err("the store answered GetClient with another reply".to_owned()),
    };
    change(&mut client);
    store
        .apply(vec![Effect::PutClient(client)])
        .await
        .map_err(|e| e.to_string())
}

/// Deletes a client and revokes everything issued to it.
pub async fn delete(
    store: &impl AsyncStore,
    engine: &Engine,
    client_id: &str,
    now: u64,
) -> Result<(), String> {
    let exists = match store
        .execute(Op::GetClient {
            client_id: client_id.to_owned(),
        })
        .await
        .map_err(|e| e.to_string())?
    {
        Reply::Client(c) => c.is_some(),
        _ => return Err("the store answered GetClient with another reply".to_owned()),
    };
    if !exists {
        return Err(format!("no client {client_id}"));
    }
    let mut effects = engine.revoke_client(client_id, now);
    effects.push(Effect::DeleteClient {
        client_id: client_id.to_owned(),
        at: now,
        keep_until: engine.revocation_keep_until(now),
    });
    store.apply(effects).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{block_on, engine};
    use oauth_proto::client::GrantType;
    use oauth_store_memory::MemoryStore;

    fn web() -> NewClient {
        NewClient {
            name: "Web app".to_owned(),
            redirect_uris: vec!["https://app.example.com/cb".to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn confidential_client_gets_a_secret_stored_as_hash() {
        let store = MemoryStore::new();
        let engine = engine();
        block_on(async {
            let created = add(&store, &engine, &web(), 5).await.unwrap();
            let secret = created.client_secret.clone().unwrap();
            assert!(secret.len() >= 43, "256 bits in base64url");
            let clients = list(&store).await.unwrap();
            assert_eq!(clients.len(), 1);
            let c = &clients[0];
            assert_eq!(c.client_id, created.client_id);
            assert_eq!(c.secret_hash, Some(Secret::new(secret).hash()));
            assert_eq!(
                c.grant_types,
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            );
            let json = serde_json::to_value(&created).unwrap();
            assert!(json["client_secret"].is_string());

            delete(&store, &engine, &created.client_id, 6)
                .await
                .unwrap();
            assert!(list(&store).await.unwrap().is_empty());
            assert!(delete(&store, &engine, &created.client_id, 6)
                .await
                .is_err());
        });
    }

    #[test]
    fn resource_server_flag_reaches_the_record() {
        let engine = engine();
        let (plain, _) = build(&engine, &web(), 1).unwrap();
        assert!(!plain.resource_server);
        let (rs, _) = build(
            &engine,
            &NewClient {
                resource_server: true,
                ..web()
            },
            1,
        )
        .unwrap();
        assert!(rs.resource_server);
    }

    #[test]
    fn the_access_token_format_is_set_at_add_and_changed_by_set() {
        let store = MemoryStore::new();
        let engine = engine();
        block_on(async {
            let jwt = NewClient {
                access_token_format: access_token_format(Some("jwt")).unwrap(),
                ..web()
            };
            let created = add(&store, &engine, &jwt, 5).await.unwrap();
            let plain = add(&store, &engine, &web(), 5).await.unwrap();
            let format = |id: String| {
                let store = &store;
                async move {
                    let c = list(store).await.unwrap();
                    c.into_iter()
                        .find(|c| c.client_id == id)
                        .unwrap()
                        .access_token_format
                }
            };
            assert_eq!(
                format(created.client_id.clone()).await,
                AccessTokenFormat::Jwt
            );
            assert_eq!(
                format(plain.client_id.clone()).await,
                AccessTokenFormat::Hmac
            );
            let to_jwt = Change {
                access_token_format: Some(AccessTokenFormat::Jwt),
            };
            set(&store, &plain.client_id, &to_jwt).await.unwrap();
            assert_eq!(
                format(plain.client_id.clone()).await,
                AccessTokenFormat::Jwt
            );
            // Nothing named: nothing changes.
            set(&store, &plain.client_id, &Change::default())
                .await
                .unwrap();
            assert_eq!(
                format(plain.client_id.clone()).await,
                AccessTokenFormat::Jwt
            );
            assert!(set(&store, "nobody", &to_jwt).await.is_err());
        });
        assert!(access_token_format(Some("paseto")).is_err());
        assert_eq!(access_token_format(None), Ok(AccessTokenFormat::Hmac));
    }

    #[test]
    fn public_client_has_no_secret() {
        let engine = engine();
        let (record, created) = build(
            &engine,
            &NewClient {
                public: true,
                ..web()
            },
            1,
        )
        .unwrap();
        assert!(created.client_secret.is_none());
        assert!(record.secret_hash.is_none());
        assert!(serde_json::to_value(&created)
            .unwrap()
            .get("client_secret")
            .is_none());
    }

    #[test]
    fn refusals() {
        let engine = engine();
        let refuse = |n: NewClient| assert!(build(&engine, &n, 1).is_err(), "{n:?}");
        refuse(NewClient {
            redirect_uris: vec![],
            ..web()
        });
        refuse(NewClient {
            public: true,
            grant_types: vec!["client_credentials".to_owned()],
            ..web()
        });
        refuse(NewClient {
            grant_types: vec!["password".to_owned()],
            ..web()
        });
        refuse(NewClient {
            public: true,
            resource_server: true,
            ..web()
        });
        refuse(NewClient {
            scope: Some("root".to_owned()),
            ..web()
        });
        refuse(NewClient {
            redirect_uris: vec!["https://a.example/cb#x".to_owned()],
            ..web()
        });
        refuse(NewClient {
            name: " ".to_owned(),
            ..web()
        });
        // The rules of dynamic registration apply here too, being the same code: hidden
        // characters in the name, offline_access without a refresh token...
        refuse(NewClient {
            name: "Bank\u{202E}ppa".to_owned(),
            ..web()
        });
        refuse(NewClient {
            grant_types: vec!["authorization_code".to_owned()],
            scope: Some("mail offline_access".to_owned()),
            ..web()
        });
        // ... and checklist 45-47's redirect URI rules (localhost and port 0 included).
        for bad in [
            "http://localhost/cb",
            "http://127.0.0.1:0/cb",
            "http://web.example.com/cb",
            "myapp:/cb",
            "/cb",
            "https://user@web.example.com/cb",
        ] {
            refuse(NewClient {
                redirect_uris: vec![bad.to_owned()],
                ..web()
            });
        }
        for good in [
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/cb",
        ] {
            build(
                &engine,
                &NewClient {
                    redirect_uris: vec![good.to_owned()],
                    ..web()
                },
                1,
            )
            .unwrap();
        }
        // application_type holds the operator to the same redirect rules as a registration.
        let typed = |application_type: &str, uri: &str| {
            build(
                &engine,
                &NewClient {
                    application_type: Some(application_type.to_owned()),
                    redirect_uris: vec![uri.to_owned()],
                    ..web()
                },
                1,
            )
        };
        assert!(typed("native", "http://127.0.0.1/cb").is_ok());
        assert!(typed("native", "com.example.app:/cb").is_ok());
        assert!(typed("native", "https://app.example.com/cb").is_err());
        assert!(typed("web", "https://app.example.com/cb").is_ok());
        assert!(typed("web", "http://127.0.0.1/cb").is_err());
        assert!(typed("desktop", "https://app.example.com/cb").is_err());
        // client_credentials only needs no redirect URI.
        build(
            &engine,
            &NewClient {
                redirect_uris: vec![],
                grant_types: vec!["client_credentials".to_owned()],
                ..web()
            },
            1,
        )
        .unwrap();
    }

    #[test]
    fn back_channel_logout_is_registered_checked_changed_and_removed() {
        let engine = crate::admin::setup::admin_engine(oauth_proto::config::Config {
            backchannel_logout: true,
            ..Default::default()
        })
        .unwrap();
        let logout = |uri: &str, session_required| {
            Some(BackchannelLogout {
                uri: uri.to_owned(),
                session_required,
            })
        };
        let store = MemoryStore::new();
        block_on(async {
            let with = NewClient {
                backchannel_logout: logout("https://app.example.com/bc", true),
                ..web()
            };
            let created = add(&store, &engine, &with, 1).await.unwrap();
            let read = |id: String| {
                let store = &store;
                async move {
                    match store.execute(Op::GetClient { client_id: id }).await {
                        Ok(Reply::Client(Some(c))) => c.metadata.clone(),
                        other => panic!("{other:?}"),
                    }
                }
            };
            let kept = read(created.client_id.clone()).await;
            assert_eq!(kept[BACKCHANNEL_LOGOUT_URI], "https://app.example.com/bc");
            assert_eq!(kept[BACKCHANNEL_LOGOUT_SESSION_REQUIRED], true);
            // The registration rules: a fragment, or http off loopback, is refused, and the
            // client keeps what it had.
            for bad in ["https://app.example.com/bc#f", "http://app.example.com/bc"] {
                let e = set_backchannel_logout(
                    &store,
                    &engine,
                    &created.client_id,
                    logout(bad, false).as_ref(),
                )
                .await
                .unwrap_err();
                assert!(e.contains("backchannel_logout_uri"), "{e}");
            }
            assert_eq!(read(created.client_id.clone()).await, kept);
            let loopback = logout("http://127.0.0.1:9/bc", false);
            set_backchannel_logout(&store, &engine, &created.client_id, loopback.as_ref())
                .await
                .unwrap();
            let changed = read(created.client_id.clone()).await;
            assert_eq!(changed[BACKCHANNEL_LOGOUT_URI], "http://127.0.0.1:9/bc");
            assert_eq!(changed[BACKCHANNEL_LOGOUT_SESSION_REQUIRED], false);
            set_backchannel_logout(&store, &engine, &created.client_id, None)
                .await
                .unwrap();
            let removed = read(created.client_id.clone()).await;
            assert!(!removed.contains_key(BACKCHANNEL_LOGOUT_URI));
            assert!(!removed.contains_key(BACKCHANNEL_LOGOUT_SESSION_REQUIRED));
            let nobody = set_backchannel_logout(&store, &engine, "nobody", None).await;
            assert!(nobody.is_err());
        });
        let bad = NewClient {
            backchannel_logout: logout("https://app.example.com/bc#x", false),
            ..web()
        };
        assert!(build(&engine, &bad, 1).is_err());
        // A server that does not deliver them refuses them.
        let with = NewClient {
            backchannel_logout: logout("https://app.example.com/bc", false),
            ..web()
        };
        let e = build(&crate::test_support::engine(), &with, 1).unwrap_err();
        assert!(e.contains("does not send back-channel logout"), "{e}");
    }
}
