//! The engine: configuration and keys, and one entry point per kind of request.
//!
//! `Engine` is cheap to clone (an `Arc` inside), so one instance serves every thread. Its
//! configuration is immutable; its keys can be replaced while it runs ([`Engine::set_keys`]), so
//! that a key rotation made elsewhere (another node of a shared database, an administration
//! command) reaches a running server without a restart. The keys sit behind an `ArcSwap`: every
//! request reads them without a lock or a shared reference count (an `arc_swap` guard), which
//! keeps the access token validation path as it was; a replacement is rare and may be slow.
//! A request that read the keys just before a replacement finishes with them: both sets are
//! valid (a rotation keeps the old keys for verifying), so either side of a swap is consistent.
//! Entry points that need the store return a [`Flow`]; the rest return their answer directly.
//! Later protocol surfaces (registration, introspection, revocation, device flow, metadata) add
//! their entry points in `impl Engine` blocks of their own modules.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::access_token::{self, AccessClaims, KeyRing, TokenError};
use crate::authentication::Authentication;
use crate::authorize::{Authorize, Decide, PendingAuthorization};
use crate::config::{Config, ConfigError};
use crate::error::{ErrorCode, OAuthError};
use crate::flow::Flow;
use crate::http::HttpRequest;
use crate::jose::access_token as jwt_access_token;
use crate::jose::{Algorithm, KeySet};
use crate::redirect;
use crate::response::Response;
use crate::store::{Effect, RevocationView};
use crate::throttle::Throttle;
use crate::token::TokenEndpoint;

/// The signing set must hold an active key for the default ID token algorithm, and one for the
/// configured JWT access token algorithm, if one is configured.
fn check_signing(config: &Config, signing: &KeySet) -> Result<(), ConfigError> {
    if signing.signing_key(Algorithm::default()).is_none() {
        return Err(ConfigError::new(
            "signing_keys",
            "the signing key set has no ES256 key, the default ID token algorithm",
        ));
    }
    if let Some(alg) = config.jwt_access_token_alg {
        if signing.signing_key(alg).is_none() {
            return Err(ConfigError::new(
                "jwt_access_token_alg",
                format!("jwt_access_token_alg is {alg}, but the signing key set has no {alg} key"),
            ));
        }
    }
    Ok(())
}

/// The authorization server engine.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    keys: ArcSwap<Keys>,
    throttle: Arc<Throttle>,
}

/// The keys in use at one moment: replaced together, so a reader sees both from one setting.
#[derive(Debug)]
struct Keys {
    ring: KeyRing,
    signing: KeySet,
}

/// The access token keys at the moment [`Engine::keys`] was called.
struct RingSnapshot(Guard<Arc<Keys>>);

impl Deref for RingSnapshot {
    type Target = KeyRing;
    fn deref(&self) -> &KeyRing {
        &self.0.ring
    }
}

/// The ID token signing keys at the moment [`Engine::signing_keys`] was called.
struct SigningSnapshot(Guard<Arc<Keys>>);

impl Deref for SigningSnapshot {
    type Target = KeySet;
    fn deref(&self) -> &KeySet {
        &self.0.signing
    }
}

impl Engine {
    /// An engine with a validated configuration, its access token keys, and the asymmetric keys
    /// that sign ID tokens ([`crate::jose`]). The signing set must hold an active key for the
    /// default algorithm, ES256; ID tokens are offered with exactly the algorithms it has keys for.
    pub fn new(config: Config, keys: KeyRing, signing: KeySet) -> Result<Self, ConfigError> {
        config.validate()?;
        check_signing(&config, &signing)?;
        let throttle = Arc::new(Throttle::new(config.throttle.clone()));
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                keys: ArcSwap::from_pointee(Keys {
                    ring: keys,
                    signing,
                }),
                throttle,
            }),
        })
    }

    /// Replaces the access token keys and the ID token signing keys of this engine and of every
    /// clone of it, for the requests that read them from now on (see the module docs): how a
    /// rotation made while the server runs reaches it. Refused, keeping the keys in use, when
    /// the signing set lacks an ES256 key, as [`Engine::new`] refuses it.
    pub fn set_keys(&self, keys: KeyRing, signing: KeySet) -> Result<(), ConfigError> {
        check_signing(&self.inner.config, &signing)?;
        self.inner.keys.store(Arc::new(Keys {
            ring: keys,
            signing,
        }));
        Ok(())
    }

    /// The ID token signing keys in use: the active ones sign, all of them (retired included)
    /// are published at the JWKS endpoint. A snapshot: hold it for one request, not longer.
    pub fn signing_keys(&self) -> impl Deref<Target = KeySet> {
        SigningSnapshot(self.inner.keys.load())
    }

    /// The ID token signing algorithms this engine has an active key for, the default first.
    pub fn id_token_algorithms(&self) -> Vec<Algorithm> {
        let keys = self.signing_keys();
        Algorithm::ALL
            .into_iter()
            .filter(|a| keys.signing_key(*a).is_some())
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The access token keys in use. A snapshot: hold it for one request, not longer.
    pub fn keys(&self) -> impl Deref<Target = KeyRing> {
        RingSnapshot(self.inner.keys.load())
    }

    /// The limiter every credential check consults (see [`crate::throttle`]): one per engine, so
    /// an embedder's mail listeners and HTTP endpoints count against the same addresses.
    pub fn throttle(&self) -> &Arc<Throttle> {
        &self.inner.throttle
    }

    /// Starts an authorization request from its query string (GET) or form body (POST).
    pub fn authorize(&self, query: &[u8], now: u64) -> Flow<Authorize> {
        Flow::new(
            Authorize {
                engine: self.clone(),
                query: query.to_vec(),
            },
            now,
        )
    }

    /// Approves a pending authorization for an authenticated subject: issues a code and redirects
    /// (303, since approval follows a POSTed form). The subject must be 1 to 1024 bytes.
    /// `authn` is the sign-in ([`Authentication`], or just its time as a `u64`): when the user
    /// authenticated (the sign-in, not this decision, when a session was reused; a time after
    /// `now` is taken as `now`), how, and in which browser session, for the ID token's
    /// `auth_time`, `amr` and `sid`. The flow
    /// first reads the client again and checks the request against its current registration (see
    /// [`crate::authorize`]): a client changed or deleted since gets an error page, never a code.
    pub fn approve(
        &self,
        pending: PendingAuthorization,
        subject: &str,
        authn: impl Into<Authentication>,
        now: u64,
    ) -> Result<Flow<Decide>, OAuthError> {
        if subject.is_empty() || subject.len() > access_token::MAX_SUBJECT {
            return Err(OAuthError::new(
                ErrorCode::ServerError,
                "the subject must be 1 to 1024 bytes",
            ));
        }
        Ok(Flow::new(
            Decide {
                engine: self.clone(),
                pending,
                subject: Some((subject.to_owned(), authn.into().checked(now)?)),
                forget: None,
            },
            now,
        ))
    }

    /// The user refused: redirect with `access_denied` (303), after the same check of the client
    /// as [`Engine::approve`] (a client gone or without this redirect URI gets an error page).
    pub fn deny(&self, pending: PendingAuthorization, now: u64) -> Flow<Decide> {
        Flow::new(
            Decide {
                engine: self.clone(),
                pending,
                subject: None,
                forget: None,
            },
            now,
        )
    }

    /// Starts a token endpoint request.
    pub fn token(&self, request: HttpRequest, now: u64) -> Flow<TokenEndpoint> {
        Flow::new(
            TokenEndpoint {
                engine: self.clone(),
                request: crate::http::FormRequest::new(request, self.config().max_body_bytes),
            },
            now,
        )
    }

    /// Validates an access token: the direct call a mail or HTTP server makes for every request.
    /// No store round trip: the signature, expiry and the in-memory revocation view decide.
    /// Both formats are accepted: the HMAC tokens ([`access_token`]) and the JWTs of clients or
    /// resources set to them ([`crate::jose::access_token`]), alike in every check.
    pub fn validate_access_token(
        &self,
        token: &str,
        now: u64,
        view: &dyn RevocationView,
    ) -> Result<AccessClaims, TokenError> {
        access_token::admit(self.verify_access_token(token, now)?, None, view)
    }

    /// An access token's signature, claims and expiry, of either format, without the
    /// revocation check ([`access_token::check_revocation`]).
    pub(crate) fn verify_access_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<AccessClaims, TokenError> {
        let keys = self.inner.keys.load();
        if jwt_access_token::is_jwt(token) {
            jwt_access_token::verify(&keys.signing, &self.inner.config.issuer, token, now)
        } else {
            access_token::verify(&keys.ring, token, now)
        }
    }

    /// The key that signs JWT access tokens now ([`jwt_access_token::signing_key`]).
    pub(crate) fn jwt_access_token_key<R>(
        &self,
        with: impl FnOnce(Option<&crate::jose::SigningKey>) -> R,
    ) -> R {
        let keys = self.inner.keys.load();
        with(jwt_access_token::signing_key(
            &keys.signing,
            self.inner.config.jwt_access_token_alg,
        ))
    }

    /// Effects that revoke everything of a subject (password change, account disabled): its
    /// credential version moves on, so every access token it holds fails validation at once, and
    /// all its grants, codes and device approvals are revoked.
    pub fn revoke_subject(&self, subject: &str, now: u64) -> Vec<Effect> {
        vec![Effect::RevokeSubject {
            subject: subject.to_owned(),
            at: now,
            keep_until: self.revocation_keep_until(now),
        }]
    }

    /// Effects that revoke every grant of a client, including its `client_credentials` tokens.
    pub fn revoke_client(&self, client_id: &str, now: u64) -> Vec<Effect> {
        let keep_until = self.revocation_keep_until(now);
        vec![
            Effect::RevokeClient {
                client_id: client_id.to_owned(),
                at: now,
                keep_until,
            },
            Effect::RevokeGrant {
                grant_id: crate::token::client_credentials_grant_id(client_id),
                at: now,
                keep_until,
            },
        ]
    }

    /// How long a revocation made at `at` must stay visible: until every access token issued up to
    /// then has expired.
    pub fn revocation_keep_until(&self, at: u64) -> u64 {
        at + self.inner.config.access_token_ttl_secs + 1
    }

    /// An error redirect carrying `error`, `error_description`, `state` and `iss` (RFC 9207).
    pub(crate) fn error_redirect(
        &self,
        status: u16,
        redirect_uri: &str,
        state: Option<&str>,
        e: &OAuthError,
    ) -> Response {
        match self.error_location(redirect_uri, state, e) {
            Some(location) => Response::redirect(status, location),
            None => Response::error(&OAuthError::new(
                ErrorCode::ServerError,
                "the redirect URI cannot carry parameters",
            )),
        }
    }

    /// The redirect URI with `error`, `error_description`, `state` and `iss` added; `None` when
    /// the URI cannot carry parameters.
    pub(crate) fn error_location(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        e: &OAuthError,
    ) -> Option<String> {
        let mut params = vec![
            ("error", e.code.as_str()),
            ("error_description", &*e.description),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", &self.inner.config.issuer));
        redirect::with_params(redirect_uri, &params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_token::{Audience, TokenError, TokenKey};
    use crate::random::CounterRandom;
    use crate::scope::Scope;
    use crate::store::{GrantId, NothingRevoked};

    fn claims() -> AccessClaims {
        AccessClaims {
            grant_id: GrantId([9; 16]),
            subject: "alice".to_owned(),
            client_id: "app".to_owned(),
            scope: Scope::parse("mail").unwrap(),
            issued_at: 100,
            expires_at: 200,
            credential_version: 0,
            audience: Audience::default(),
        }
    }

    #[test]
    fn set_keys_reaches_every_clone_and_keeps_a_snapshot_whole() {
        let mut random = CounterRandom::new(1);
        let signing = KeySet::generate(&[Algorithm::Es256], &mut random).unwrap();
        let one = TokenKey::new(1, &[1; 32]).unwrap();
        let two = TokenKey::new(2, &[2; 32]).unwrap();
        let engine = Engine::new(
            Config::default(),
            KeyRing::new(one.clone(), vec![]).unwrap(),
            signing.clone(),
        )
        .unwrap();
        let serving = engine.clone();
        let before = engine.keys();
        let old = access_token::issue(&before, &claims()).unwrap();

        engine
            .set_keys(KeyRing::new(two.clone(), vec![one]).unwrap(), signing)
            .unwrap();
        // The old token still validates at every clone; new tokens are signed by key 2.
        assert!(serving
            .validate_access_token(&old, 150, &NothingRevoked)
            .is_ok());
        let new = access_token::issue(&serving.keys(), &claims()).unwrap();
        let only_two = KeyRing::new(two, vec![]).unwrap();
        assert!(access_token::validate(&only_two, &new, 150, &NothingRevoked).is_ok());
        // The snapshot taken before the swap is unchanged: it does not know key 2.
        assert_eq!(
            access_token::validate(&before, &new, 150, &NothingRevoked),
            Err(TokenError::UnknownKey)
        );

        // A set without the default algorithm is refused and changes nothing.
        let without = KeySet::generate(&[Algorithm::EdDsa], &mut random).unwrap();
        assert!(engine.set_keys(only_two, without).is_err());
        assert!(serving
            .validate_access_token(&old, 150, &NothingRevoked)
            .is_ok());
        assert_eq!(serving.id_token_algorithms(), vec![Algorithm::Es256]);
    }
}
