//! What an exchange step yields: a challenge, success, or failure, and the lockout report.
//!
//! Outcomes are values the driver must look at (`#[must_use]`), and none of them holds the token.

use super::{Challenge, Mechanism, ParseError};
use crate::access_token::{AccessClaims, TokenError};
use crate::scope::Scope;

/// A failed attempt the embedder should count toward lockout (under the store's
/// `Op::Count { key, expires_at }`). An exchange reports at most one, on the step where its
/// failure became certain: with an error challenge that is the challenge itself, so a client that
/// disconnects instead of acknowledging it is still counted, and a later cancel cannot undo it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lockout {
    pub(super) key: Option<String>,
}

impl Lockout {
    /// The suggested counter key, `sasl:<identity>` with the identity the client claimed (authzid or
    /// XOAUTH2 `user`) ASCII-lowercased, so case variants count together. `None` when the client
    /// claimed no identity: count under the peer's address instead.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// Why an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The message (or the line carrying it) is malformed.
    Malformed(ParseError),
    /// A lone `\x01` came as the first message (RFC 7628 §3.2.3 lets the server fail at once).
    UnexpectedDummy,
    /// No token (missing or empty `auth`): a client discovering the server's configuration.
    NoToken,
    /// `host` or `port` differ from the server's (see [`SaslPolicy::host`]).
    EndpointMismatch,
    /// The validator refused the token.
    InvalidToken(TokenError),
    /// The token is valid, but not for the identity the client asked for.
    IdentityMismatch,
    /// The token is valid, but lacks [`SaslPolicy::required_scope`].
    InsufficientScope,
    /// The client cancelled before any failure.
    Cancelled,
}

impl FailureReason {
    /// Whether this failure counts toward lockout: guesses and garbage do; a cancel, a discovery
    /// request without a token, and a genuine token lacking scope do not.
    pub fn counts_toward_lockout(self) -> bool {
        !matches!(
            self,
            FailureReason::NoToken | FailureReason::InsufficientScope | FailureReason::Cancelled
        )
    }
}

/// How a failed exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The client's message failed the exchange at once, without an error challenge.
    Immediate,
    /// The client acknowledged the error challenge as required (`\x01` or an empty message).
    Acknowledged,
    /// The client answered the error challenge with something other than the acknowledgement.
    UnexpectedReply,
    /// The client cancelled (`*`).
    Cancelled,
}

/// A failed exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Failure {
    pub(super) mechanism: Mechanism,
    pub(super) reason: FailureReason,
    pub(super) ending: Ending,
    pub(super) identity: Option<String>,
    pub(super) lockout: Option<Lockout>,
}

impl Failure {
    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Why it failed. After an error challenge this is the reason of the challenge, whatever the
    /// client answered.
    pub fn reason(&self) -> FailureReason {
        self.reason
    }

    /// How it ended.
    pub fn ending(&self) -> Ending {
        self.ending
    }

    /// The identity the client claimed, if its message got that far.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The attempt to count now, if any (`None` when it was already reported with the challenge).
    pub fn lockout(&self) -> Option<&Lockout> {
        self.lockout.as_ref()
    }
}

/// A successful exchange: the token's claims and the identity the client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Authenticated {
    pub(super) mechanism: Mechanism,
    pub(super) requested: Option<String>,
    pub(super) claims: AccessClaims,
}

impl Authenticated {
    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The identity the client asked for (OAUTHBEARER authzid, XOAUTH2 `user`), already accepted by
    /// [`SaslValidator::accepts_identity`].
    pub fn requested_identity(&self) -> Option<&str> {
        self.requested.as_deref()
    }

    /// The identity to log in as: the requested one, or the token's subject when none was given.
    pub fn identity(&self) -> &str {
        self.requested.as_deref().unwrap_or(&self.claims.subject)
    }

    /// The token's subject.
    pub fn subject(&self) -> &str {
        &self.claims.subject
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// The token's scope.
    pub fn scope(&self) -> &Scope {
        &self.claims.scope
    }

    /// All the token's claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Send this challenge, then feed the client's answer to [`SaslExchange::step`].
    Challenge(Challenge),
    /// Authentication succeeded; the exchange is over.
    Success(Authenticated),
    /// Authentication failed; the exchange is over.
    Failure(Failure),
}

impl Step {
    /// The failed attempt to count now, if any (see [`Lockout`]).
    pub fn lockout(&self) -> Option<&Lockout> {
        match self {
            Step::Challenge(c) => c.lockout(),
            Step::Success(_) => None,
            Step::Failure(f) => f.lockout(),
        }
    }
}
