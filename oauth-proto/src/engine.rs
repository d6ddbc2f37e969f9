//! The engine: configuration and keys, and one entry point per kind of request.
//!
//! `Engine` is cheap to clone (an `Arc` inside) and immutable, so one instance serves every thread.
//! Entry points that need the store return a [`Flow`]; the rest return their answer directly.
//! Later protocol surfaces (registration, introspection, revocation, device flow, metadata) add
//! their entry points in `impl Engine` blocks of their own modules.

use std::sync::Arc;

use crate::access_token::{self, AccessClaims, KeyRing, TokenError};
use crate::authorize::{Authorize, Decide, PendingAuthorization};
use crate::config::{Config, ConfigError};
use crate::error::{ErrorCode, OAuthError};
use crate::flow::Flow;
use crate::http::HttpRequest;
use crate::jose::{Algorithm, KeySet};
use crate::redirect;
use crate::response::Response;
use crate::store::{Effect, RevocationView};
use crate::throttle::Throttle;
use crate::token::TokenEndpoint;

/// The authorization server engine.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    keys: KeyRing,
    signing: KeySet,
    throttle: Arc<Throttle>,
}

impl Engine {
    /// An engine with a validated configuration, its access token keys, and the asymmetric keys
    /// that sign ID tokens ([`crate::jose`]). The signing set must hold an active key for the
    /// default algorithm, ES256; ID tokens are offered with exactly the algorithms it has keys for.
    pub fn new(config: Config, keys: KeyRing, signing: KeySet) -> Result<Self, ConfigError> {
        config.validate()?;
        if signing.signing_key(Algorithm::default()).is_none() {
            return Err(ConfigError::new(
                "signing_keys",
                "the signing key set has no ES256 key, the default ID token algorithm",
            ));
        }
        let throttle = Arc::new(Throttle::new(config.throttle.clone()));
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                keys,
                signing,
                throttle,
            }),
        })
    }

    /// The ID token signing keys: the active ones sign, all of them (retired included) are
    /// published at the JWKS endpoint.
    pub fn signing_keys(&self) -> &KeySet {
        &self.inner.signing
    }

    /// The ID token signing algorithms this engine has an active key for, the default first.
    pub fn id_token_algorithms(&self) -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|a| self.inner.signing.signing_key(*a).is_some())
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The token keys.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
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
    /// `auth_time` is when the user authenticated (Unix seconds; the sign-in, not this decision,
    /// when a session was reused): it becomes the ID token's `auth_time` (a time after `now` is
    /// taken as `now`). The flow
    /// first reads the client again and checks the request against its current registration (see
    /// [`crate::authorize`]): a client changed or deleted since gets an error page, never a code.
    pub fn approve(
        &self,
        pending: PendingAuthorization,
        subject: &str,
        auth_time: u64,
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
                subject: Some((subject.to_owned(), auth_time.min(now))),
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
    pub fn validate_access_token(
        &self,
        token: &str,
        now: u64,
        view: &dyn RevocationView,
    ) -> Result<AccessClaims, TokenError> {
        access_token::validate(&self.inner.keys, token, now, view)
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
