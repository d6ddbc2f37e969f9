//! What an exchange step yields: a challenge, success, or failure, and whether the attempt counts.
//!
//! Outcomes are values the driver must look at (`#[must_use]`), and none of them holds the token.
//!
//! # Counting failed attempts
//! An exchange reports at most one counted failure ([`Step::counts_toward_lockout`]), on the step
//! where its failure became certain: with an error challenge that is the challenge itself, so a
//! client that disconnects instead of acknowledging it is still counted, and a later cancel cannot
//! undo it. The report carries no key on purpose: the embedder counts it against the connection's
//! **source address** (`oauth_proto::throttle::Throttle::record_failure(peer, None, now)`), never
//! against the identity the client claimed. A claimed identity is the attacker's free choice: counting
//! under it let anyone lock a user's valid token out by claiming that user, and let a guesser
//! escape counting by claiming a new identity each time.

use super::{Challenge, Mechanism, ParseError};
use crate::access_token::{AccessClaims, TokenError};
use crate::scope::Scope;

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
    /// `host` or `port` differ from the server's (see [`SaslPolicy::host`](crate::sasl::SaslPolicy::host)).
    EndpointMismatch,
    /// The validator refused the token.
    InvalidToken(TokenError),
    /// The token is valid, but not for the identity the client asked for.
    IdentityMismatch,
    /// The token is valid, but carries none of [`SaslPolicy::accepted_scopes`](crate::sasl::SaslPolicy::accepted_scopes). Challenged with
    /// `insufficient_scope` (XOAUTH2 `"403"`).
    InsufficientScope,
    /// The token is valid, but names no user: a client obtained it for itself with
    /// `client_credentials`, and [`SaslPolicy::allow_client_credentials`](crate::sasl::SaslPolicy::allow_client_credentials) is off. Challenged with
    /// `invalid_token` (XOAUTH2 `"401"`), like a token for another identity: no scope the client
    /// could ask for would make it name a user, so `insufficient_scope` would mislead it.
    NoUser,
    /// The client cancelled before any failure.
    Cancelled,
}

impl FailureReason {
    /// Whether this failure counts toward lockout: guesses and garbage do; a cancel, a discovery
    /// request without a token, and a genuine token lacking scope, naming no user or issued for
    /// another resource (RFC 8707) do not (the credential is real and retrying it always gives the
    /// same answer, so nothing is guessed).
    pub fn counts_toward_lockout(self) -> bool {
        !matches!(
            self,
            FailureReason::NoToken
                | FailureReason::InsufficientScope
                | FailureReason::NoUser
                | FailureReason::InvalidToken(TokenError::WrongAudience)
                | FailureReason::Cancelled
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
    pub(super) counts: bool,
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

    /// Whether to count this failed attempt now (false when it does not count, or was already
    /// reported with the error challenge). See the [module docs](crate::sasl).
    pub fn counts_toward_lockout(&self) -> bool {
        self.counts
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
    /// [`SaslValidator::accepts_identity`](crate::sasl::SaslValidator::accepts_identity).
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
#[non_exhaustive]
pub enum Step {
    /// Send this challenge, then feed the client's answer to [`SaslExchange::step`](crate::sasl::SaslExchange::step).
    Challenge(Challenge),
    /// Authentication succeeded; the exchange is over.
    Success(Authenticated),
    /// Authentication failed; the exchange is over.
    Failure(Failure),
}

impl Step {
    /// Whether this step reports a failed attempt to count now, against the source address (true
    /// at most once per exchange; see the [module docs](crate::sasl)).
    pub fn counts_toward_lockout(&self) -> bool {
        match self {
            Step::Challenge(c) => c.counts_toward_lockout(),
            Step::Success(_) => false,
            Step::Failure(f) => f.counts_toward_lockout(),
        }
    }
}
