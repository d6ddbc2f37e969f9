//! One SASL exchange, from the first client message to success or failure.
//!
//! [`SaslExchange`] is a small state machine: `Start` → (empty challenge) → `AwaitingResponse` →
//! `Done`, or → (error challenge) → `AwaitingDummy` → `Done`. Each transition consumes one
//! [`ClientInput`] and yields a [`Step`]; a finished exchange answers [`ExchangeError::Finished`].
//! The checks run in a fixed order (see `judge`), so the reason a failure reports is predictable.

use super::challenge::{Challenge, ErrorChallenge, OAuthBearerStatus, XOAuth2Status};
use super::oauthbearer::{self, Parsed};
use super::{
    parse_bearer_credentials, xoauth2, Authenticated, ClientInput, Ending, Failure, FailureReason,
    Mechanism, ParseError, SaslPolicy, SaslValidator, Step,
};
use crate::access_token::{AccessClaims, TokenError};

/// Why an exchange could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartError {
    /// The connection is not protected by TLS and the policy does not allow plaintext
    /// (RFC 7628 §3, §5; checklist item 144).
    TlsRequired,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bearer-token SASL mechanisms require TLS")
    }
}

impl std::error::Error for StartError {}

/// Misuse of an exchange by its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The exchange already ended in success or failure.
    Finished,
    /// [`SaslExchange::no_initial_response`] was called after the exchange had started.
    AlreadyStarted,
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExchangeError::Finished => "the SASL exchange is already finished",
            ExchangeError::AlreadyStarted => "the SASL exchange has already started",
        })
    }
}

impl std::error::Error for ExchangeError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Start,
    AwaitingResponse,
    AwaitingDummy(Failure),
    Done,
}

/// The state of one SASL exchange. See the [module docs](super) for the order of calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslExchange {
    mechanism: Mechanism,
    state: State,
}

impl SaslExchange {
    /// Starts an exchange on a connection; refused without TLS unless
    /// [`SaslPolicy::allow_plaintext`] is set.
    pub fn new(mechanism: Mechanism, tls: bool, policy: &SaslPolicy) -> Result<Self, StartError> {
        if !policy.offers(tls) {
            return Err(StartError::TlsRequired);
        }
        Ok(SaslExchange {
            mechanism,
            state: State::Start,
        })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// True once the exchange has succeeded or failed.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// For a client that sent no initial response: yields the empty challenge to send (IMAP `+ `,
    /// SMTP `334 `); the client's response then goes to [`SaslExchange::step`].
    pub fn no_initial_response(&mut self) -> Result<Step, ExchangeError> {
        match self.state {
            State::Start => {
                self.state = State::AwaitingResponse;
                Ok(Step::Challenge(Challenge::empty()))
            }
            State::Done => Err(ExchangeError::Finished),
            _ => Err(ExchangeError::AlreadyStarted),
        }
    }

    /// Feeds one client message: the initial response, the response to the empty challenge, or
    /// the acknowledgement of an error challenge.
    pub fn step(
        &mut self,
        input: ClientInput,
        policy: &SaslPolicy,
        validator: &dyn SaslValidator,
    ) -> Result<Step, ExchangeError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => Err(ExchangeError::Finished),
            State::AwaitingDummy(mut failure) => {
                failure.ending = match input {
                    ClientInput::Cancel => Ending::Cancelled,
                    ClientInput::Response(bytes) if self.is_dummy(&bytes) => Ending::Acknowledged,
                    _ => Ending::UnexpectedReply,
                };
                Ok(Step::Failure(failure))
            }
            State::Start | State::AwaitingResponse => Ok(match input {
                ClientInput::Cancel => self.fail_now(FailureReason::Cancelled, Ending::Cancelled),
                ClientInput::Invalid(e) => {
                    self.fail_now(FailureReason::Malformed(e), Ending::Immediate)
                }
                ClientInput::Response(bytes) => self.evaluate(&bytes, policy, validator),
            }),
        }
    }

    fn is_dummy(&self, bytes: &[u8]) -> bool {
        match self.mechanism {
            Mechanism::OAuthBearer => bytes == [0x01],
            Mechanism::XOAuth2 => bytes.is_empty(),
        }
    }

    fn evaluate(
        &mut self,
        bytes: &[u8],
        policy: &SaslPolicy,
        validator: &dyn SaslValidator,
    ) -> Step {
        let attempt = match self.mechanism {
            Mechanism::OAuthBearer => match oauthbearer::parse_parts(bytes) {
                Ok(Parsed::Parts(p)) => Attempt {
                    identity: p.gs2.authzid,
                    host: p.host,
                    port: p.port,
                    auth: p.auth.unwrap_or_default(),
                },
                Ok(Parsed::Dummy) => {
                    return self.fail_now(FailureReason::UnexpectedDummy, Ending::Immediate)
                }
                Err(e) => return self.fail_now(FailureReason::Malformed(e), Ending::Immediate),
            },
            Mechanism::XOAuth2 => match xoauth2::parse_parts(bytes) {
                Ok(p) => Attempt {
                    identity: Some(p.user),
                    host: None,
                    port: None,
                    auth: p.auth,
                },
                Err(e) => return self.fail_now(FailureReason::Malformed(e), Ending::Immediate),
            },
        };
        match judge(&attempt, policy, validator) {
            Ok(claims) => Step::Success(Authenticated {
                mechanism: self.mechanism,
                requested: attempt.identity,
                claims,
            }),
            Err(reason) => {
                let json = self.error_json(reason, policy);
                self.state = State::AwaitingDummy(Failure {
                    mechanism: self.mechanism,
                    reason,
                    ending: Ending::Acknowledged,
                    identity: attempt.identity,
                    counts: false,
                });
                Step::Challenge(Challenge::error(json, reason.counts_toward_lockout()))
            }
        }
    }

    /// Fails before the message yielded an identity (framing errors, cancel, undecodable line).
    fn fail_now(&mut self, reason: FailureReason, ending: Ending) -> Step {
        self.state = State::Done;
        Step::Failure(Failure {
            mechanism: self.mechanism,
            reason,
            ending,
            identity: None,
            counts: reason.counts_toward_lockout(),
        })
    }

    fn error_json(&self, reason: FailureReason, policy: &SaslPolicy) -> Vec<u8> {
        let scope = policy.challenge_scope_for(reason);
        match self.mechanism {
            Mechanism::OAuthBearer => {
                let status = match reason {
                    FailureReason::EndpointMismatch
                    | FailureReason::Malformed(ParseError::BadAuthScheme) => {
                        OAuthBearerStatus::InvalidRequest
                    }
                    FailureReason::InsufficientScope => OAuthBearerStatus::InsufficientScope,
                    _ => OAuthBearerStatus::InvalidToken,
                };
                ErrorChallenge::oauthbearer(status, scope, policy.openid_configuration.as_deref())
                    .to_json()
            }
            Mechanism::XOAuth2 => {
                let status = match reason {
                    FailureReason::Malformed(ParseError::BadAuthScheme) => {
                        XOAuth2Status::BadRequest
                    }
                    FailureReason::InsufficientScope => XOAuth2Status::Forbidden,
                    _ => XOAuth2Status::Unauthorized,
                };
                ErrorChallenge::xoauth2(status, scope).to_json()
            }
        }
    }
}

/// The parts of a client response both mechanisms share.
struct Attempt<'a> {
    identity: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    auth: &'a [u8],
}

/// Checks, in order: the credential's syntax, host and port, the token, its audience (when the
/// policy names a resource), that it names a user, the identity, the scope.
fn judge(
    attempt: &Attempt<'_>,
    policy: &SaslPolicy,
    validator: &dyn SaslValidator,
) -> Result<AccessClaims, FailureReason> {
    let token = parse_bearer_credentials(attempt.auth).map_err(|e| match e {
        ParseError::MissingAuth => FailureReason::NoToken,
        e => FailureReason::Malformed(e),
    })?;
    let host_differs = matches!((&policy.host, &attempt.host), (Some(ours), Some(theirs)) if !ours.eq_ignore_ascii_case(theirs));
    let port_differs =
        matches!((policy.port, attempt.port), (Some(ours), Some(theirs)) if ours != theirs);
    if host_differs || port_differs {
        return Err(FailureReason::EndpointMismatch);
    }
    let claims = validator
        .validate(token)
        .map_err(FailureReason::InvalidToken)?;
    if policy
        .resource
        .as_deref()
        .is_some_and(|r| !claims.is_for(r, false))
    {
        return Err(FailureReason::InvalidToken(TokenError::WrongAudience));
    }
    if claims.is_client_credentials() && !policy.allow_client_credentials {
        return Err(FailureReason::NoUser);
    }
    if let Some(requested) = &attempt.identity {
        if !validator.accepts_identity(requested, &claims) {
            return Err(FailureReason::IdentityMismatch);
        }
    }
    if !policy.accepts_scope(&claims.scope) {
        return Err(FailureReason::InsufficientScope);
    }
    Ok(claims)
}
