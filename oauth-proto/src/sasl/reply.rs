//! The reply lines a mail server sends for each outcome, per protocol. Data only: the listener
//! writes them (adding the IMAP tag in front and CRLF after).
//!
//! Failures are permanent (`NO`, `535`, `-ERR`), never a temporary `4xx`: a bad token will not get
//! better by retrying, and a temporary code makes clients retry it forever. The codes:
//!
//! | outcome | IMAP (tagged) | SMTP | POP3 | ManageSieve |
//! |---|---|---|---|---|
//! | challenge | `+ <b64>` | `334 <b64>` | `+ <b64>` | `"<b64>"` |
//! | success | `OK ...` | `235 2.7.0 ...` | `+OK ...` | `OK "..."` |
//! | bad credentials | `NO [AUTHENTICATIONFAILED] ...` (RFC 5530) | `535 5.7.8 ...` (RFC 4954) | `-ERR [AUTH] ...` (RFC 3206) | `NO "..."` |
//! | identity, scope or no-user token refused | `NO [AUTHORIZATIONFAILED] ...` | `535 5.7.8 ...` | `-ERR [AUTH] ...` | `NO "..."` |
//! | cancelled (`*`) | `BAD ...` (RFC 3501 §6.2.2) | `501 5.7.0 ...` (RFC 4954 §4) | `-ERR ...` | `NO "..."` (RFC 5804 §2.1) |
//! | undecodable base64 | `BAD ...` | `501 5.5.2 ...` (RFC 4954 §4) | `-ERR ...` | `NO "..."` |
//! | no TLS | `NO [PRIVACYREQUIRED] ...` | `538 5.7.11 ...` (RFC 4954 §6) | `-ERR ...` | `NO (ENCRYPT-NEEDED) "..."` |

use super::{Challenge, Ending, Failure, FailureReason, ParseError, StartError, Step};

/// A mail protocol that carries SASL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IMAP (`AUTHENTICATE`); replies other than challenges follow the command's tag.
    Imap,
    /// SMTP submission (`AUTH`).
    Smtp,
    /// POP3 (`AUTH`).
    Pop3,
    /// ManageSieve (`AUTHENTICATE`).
    ManageSieve,
}

enum Class {
    Authentication,
    Authorization,
    Cancelled,
    Undecodable,
}

fn classify(failure: &Failure) -> Class {
    match (failure.ending(), failure.reason()) {
        (Ending::Cancelled, _) => Class::Cancelled,
        (Ending::Immediate, FailureReason::Malformed(ParseError::BadBase64)) => Class::Undecodable,
        (
            _,
            FailureReason::IdentityMismatch
            | FailureReason::InsufficientScope
            | FailureReason::NoUser,
        ) => Class::Authorization,
        _ => Class::Authentication,
    }
}

impl Protocol {
    /// The reply for any step.
    pub fn reply(self, step: &Step) -> String {
        match step {
            Step::Challenge(c) => self.challenge(c),
            Step::Success(_) => self.success().to_owned(),
            Step::Failure(f) => self.failure(f).to_owned(),
        }
    }

    /// The continuation line carrying a challenge (empty or error JSON), in base64.
    pub fn challenge(self, challenge: &Challenge) -> String {
        let b64 = challenge.to_base64();
        match self {
            Protocol::Imap | Protocol::Pop3 => format!("+ {b64}"),
            Protocol::Smtp => format!("334 {b64}"),
            Protocol::ManageSieve => format!("\"{b64}\""),
        }
    }

    /// The reply to a successful exchange.
    pub fn success(self) -> &'static str {
        match self {
            Protocol::Imap => "OK SASL authentication succeeded",
            Protocol::Smtp => "235 2.7.0 Authentication successful",
            Protocol::Pop3 => "+OK Authentication successful",
            Protocol::ManageSieve => "OK \"Authentication successful\"",
        }
    }

    /// The (permanent) reply to a failed exchange.
    pub fn failure(self, failure: &Failure) -> &'static str {
        match (self, classify(failure)) {
            (Protocol::Imap, Class::Authentication) => {
                "NO [AUTHENTICATIONFAILED] SASL authentication failed"
            }
            (Protocol::Imap, Class::Authorization) => {
                "NO [AUTHORIZATIONFAILED] The token does not grant access to this account"
            }
            (Protocol::Imap, Class::Cancelled) => "BAD Authentication cancelled",
            (Protocol::Imap, Class::Undecodable) => "BAD Invalid base64 data",
            (Protocol::Smtp, Class::Authentication | Class::Authorization) => {
                "535 5.7.8 Authentication credentials invalid"
            }
            (Protocol::Smtp, Class::Cancelled) => "501 5.7.0 Authentication cancelled",
            (Protocol::Smtp, Class::Undecodable) => "501 5.5.2 Cannot decode response",
            (Protocol::Pop3, Class::Authentication) => "-ERR [AUTH] Authentication failed",
            (Protocol::Pop3, Class::Authorization) => {
                "-ERR [AUTH] The token does not grant access to this account"
            }
            (Protocol::Pop3, Class::Cancelled) => "-ERR Authentication cancelled",
            (Protocol::Pop3, Class::Undecodable) => "-ERR Invalid base64 data",
            (Protocol::ManageSieve, Class::Authentication) => "NO \"Authentication failed\"",
            (Protocol::ManageSieve, Class::Authorization) => {
                "NO \"The token does not grant access to this account\""
            }
            (Protocol::ManageSieve, Class::Cancelled) => "NO \"Authentication cancelled\"",
            (Protocol::ManageSieve, Class::Undecodable) => "NO \"Invalid base64 data\"",
        }
    }

    /// The reply when an exchange may not start.
    pub fn refused(self, error: StartError) -> &'static str {
        match (self, error) {
            (Protocol::Imap, StartError::TlsRequired) => {
                "NO [PRIVACYREQUIRED] TLS is required for this mechanism"
            }
            (Protocol::Smtp, StartError::TlsRequired) => {
                "538 5.7.11 Encryption required for requested authentication mechanism"
            }
            (Protocol::Pop3, StartError::TlsRequired) => "-ERR TLS is required for this mechanism",
            (Protocol::ManageSieve, StartError::TlsRequired) => {
                "NO (ENCRYPT-NEEDED) \"TLS is required for this mechanism\""
            }
        }
    }
}
