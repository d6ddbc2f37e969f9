//! What the embedder decides: how tokens are validated, and the server's settings.
//!
//! # Why the defaults refuse tokens
//! A token without audience validates everywhere, and with no protected resource configured every
//! token is such a token ([`crate::resource`]), so a listener that checks only the signature lets
//! in a token granted for a calendar or a profile page, and a `client_credentials` token, which names no user at all,
//! logs in "as" its client id. A mail server embedding the engine must not have to remember to
//! close either hole, so [`SaslPolicy::default`] closes both: a token must carry a mail scope
//! ([`DEFAULT_MAIL_SCOPES`]), and it must name a user.
//!
//! # The audience
//! When the administrator configured this listener's service as a protected resource (RFC 8707,
//! e.g. `imap://mail.example.com`), set [`SaslPolicy::resource`] to that identifier: a token whose
//! audience does not name it fails with `invalid_token` (RFC 6750 §3.1: the token is not valid
//! *here*; no scope the client could ask for would fix it, so `insufficient_scope` would mislead
//! it), and so does a token without audience, which a server with resources configured no longer
//! issues for a mail scope. Leave it `None` when no resources are configured.

use crate::access_token::{AccessClaims, TokenError};
use crate::scope::Scope;

/// The scopes [`SaslPolicy::default`] accepts for mail: `mail` (this server's scope) and
/// `urn:ietf:params:oauth:scope:mail` (the IETF mailmaint draft's scope for mail access). A token
/// carrying either logs in; the first is the one named in `insufficient_scope` challenges.
pub const DEFAULT_MAIL_SCOPES: [&str; 2] = ["mail", "urn:ietf:params:oauth:scope:mail"];

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

/// A listener's SASL settings. The default is strict: TLS required, a mail scope required
/// ([`DEFAULT_MAIL_SCOPES`]), tokens without a user refused, no host/port check, no
/// `openid-configuration` in challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslPolicy {
    /// `scope` to put in every error challenge. When `None`, only an `insufficient_scope`
    /// challenge names a scope: the first of [`SaslPolicy::accepted_scopes`]. (The other
    /// challenges then keep the shape of RFC 7628 §4's examples; the scope is what a client needs
    /// to fix an `insufficient_scope` failure.)
    pub challenge_scope: Option<String>,
    /// `openid-configuration` URL to put in OAUTHBEARER error challenges, so that clients can
    /// discover this authorization server (RFC 7628 §3.2.2).
    pub openid_configuration: Option<String>,
    /// The scopes that grant mail access: a token must carry **at least one** of them, or it fails
    /// with `insufficient_scope` ([`super::FailureReason::InsufficientScope`]). The list is ordered:
    /// the first is the one named in challenges. An empty list accepts no token (there is no
    /// "any scope" setting: list the scopes your tokens carry). Default: [`DEFAULT_MAIL_SCOPES`].
    pub accepted_scopes: Vec<String>,
    /// Accept tokens that name no user: those a client obtained for itself with
    /// `client_credentials` ([`AccessClaims::is_client_credentials`]), whose subject is the client
    /// id. Off by default: such a token would log in "as" the client id, which is no mailbox's
    /// owner. When off they fail with [`super::FailureReason::NoUser`].
    pub allow_client_credentials: bool,
    /// This server's host name. When set, an OAUTHBEARER `host` that differs (ASCII
    /// case-insensitively) fails with `invalid_request` (RFC 7628 §3.1, checklist item 146).
    pub host: Option<String>,
    /// This listener's port. When set, an OAUTHBEARER `port` that differs fails with
    /// `invalid_request`.
    pub port: Option<u16>,
    /// This listener's protected resource identifier (RFC 8707), as configured in the engine's
    /// `resources`. When set, a token must name it in its audience (see the module docs).
    pub resource: Option<String>,
    /// Offer and accept the mechanisms without TLS. **For tests only**: RFC 7628 §3 and §5 require
    /// TLS, since the token is a replayable credential.
    pub allow_plaintext: bool,
}

impl Default for SaslPolicy {
    fn default() -> Self {
        SaslPolicy {
            challenge_scope: None,
            openid_configuration: None,
            accepted_scopes: DEFAULT_MAIL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            allow_client_credentials: false,
            host: None,
            port: None,
            resource: None,
            allow_plaintext: false,
        }
    }
}

impl SaslPolicy {
    /// Whether to advertise (and accept) a bearer mechanism on a connection: only over TLS, unless
    /// [`SaslPolicy::allow_plaintext`] is set.
    pub fn offers(&self, tls: bool) -> bool {
        tls || self.allow_plaintext
    }

    /// Whether a token's scope grants mail access: it holds at least one
    /// [`SaslPolicy::accepted_scopes`] entry.
    pub fn accepts_scope(&self, scope: &Scope) -> bool {
        self.accepted_scopes.iter().any(|s| scope.contains(s))
    }

    /// The `scope` of an error challenge for a failure of `reason` (see
    /// [`SaslPolicy::challenge_scope`]).
    pub(super) fn challenge_scope_for(&self, reason: super::FailureReason) -> Option<&str> {
        match (&self.challenge_scope, reason) {
            (Some(scope), _) => Some(scope),
            (None, super::FailureReason::InsufficientScope) => {
                self.accepted_scopes.first().map(String::as_str)
            }
            (None, _) => None,
        }
    }
}
