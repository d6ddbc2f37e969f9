//! What the embedder decides: how tokens are validated, and the server's settings.

use crate::access_token::{AccessClaims, TokenError};
use crate::scope::Scope;

/// Validates the bearer token of an exchange. The exchange never sees keys, clocks or stores: the
/// embedder supplies them here, typically as a closure
/// `|t: &str| engine.validate_access_token(t, now, &view)` (any
/// `Fn(&str) -> Result<AccessClaims, TokenError>` is a validator).
pub trait SaslValidator {
    /// Validates a token and returns its claims.
    fn validate(&self, token: &str) -> Result<AccessClaims, TokenError>;

    /// Whether the identity the client asked for (OAUTHBEARER authzid, XOAUTH2 `user`) may be used
    /// with a token issued to `claims.subject`. The default accepts only the subject itself;
    /// override it to accept aliases (e.g. other addresses of the same mailbox).
    fn accepts_identity(&self, requested: &str, claims: &AccessClaims) -> bool {
        requested == claims.subject
    }
}

impl<F> SaslValidator for F
where
    F: Fn(&str) -> Result<AccessClaims, TokenError>,
{
    fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self(token)
    }
}

/// A listener's SASL settings. The default is strict: TLS required, no scope required, no
/// host/port check, nothing extra in challenges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaslPolicy {
    /// `scope` to put in error challenges; when `None`, the `required_scope` (if any) is shown.
    pub challenge_scope: Option<String>,
    /// `openid-configuration` URL to put in OAUTHBEARER error challenges, so that clients can
    /// discover this authorization server (RFC 7628 §3.2.2).
    pub openid_configuration: Option<String>,
    /// Scope every token must carry (e.g. `mail`); a token without it fails with
    /// `insufficient_scope`.
    pub required_scope: Option<Scope>,
    /// This server's host name. When set, an OAUTHBEARER `host` that differs (ASCII
    /// case-insensitively) fails with `invalid_request` (RFC 7628 §3.1, checklist item 146).
    pub host: Option<String>,
    /// This listener's port. When set, an OAUTHBEARER `port` that differs fails with
    /// `invalid_request`.
    pub port: Option<u16>,
    /// Offer and accept the mechanisms without TLS. **For tests only**: RFC 7628 §3 and §5 require
    /// TLS, since the token is a replayable credential.
    pub allow_plaintext: bool,
}

impl SaslPolicy {
    /// Whether to advertise (and accept) a bearer mechanism on a connection: only over TLS, unless
    /// [`SaslPolicy::allow_plaintext`] is set.
    pub fn offers(&self, tls: bool) -> bool {
        tls || self.allow_plaintext
    }

    pub(super) fn challenge_scope(&self) -> Option<String> {
        self.challenge_scope
            .clone()
            .or_else(|| self.required_scope.as_ref().map(Scope::to_string))
    }
}
