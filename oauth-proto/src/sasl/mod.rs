//! SASL `OAUTHBEARER` (RFC 7628) and Google `XOAUTH2`: what a mail server (IMAP, SMTP, POP3,
//! ManageSieve) calls to accept this server's access tokens as login credentials.
//!
//! # Why it is here, and why it has no IO
//! Mail clients log in with OAuth by sending the access token inside a SASL exchange. Validating that
//! exchange is protocol work with sharp edges (an RFC 5801 GS2 header, `\x01`-separated key/value
//! pairs, an error *challenge* the client must acknowledge before the server may fail), and the
//! servers that got it wrong did so in the same ways: a temporary `4xx` instead of a permanent
//! failure, no RFC 7628 error challenge, the requested identity never compared with the token's
//! subject. So the whole exchange lives here, as data in and data out, and a listener only moves
//! lines: it decodes base64 ([`decode_client_line`]), feeds the bytes to a [`SaslExchange`], and
//! writes the reply text that [`Protocol`] gives for the resulting [`Step`]. Nothing here reads a
//! socket, a clock or a store; token validation is supplied by the caller through [`SaslValidator`]
//! (a closure over `Engine::validate_access_token` with the current time is enough).
//!
//! # The exchange
//! 1. [`SaslPolicy::offers`] tells whether to advertise a mechanism on this connection, and
//!    [`SaslExchange::new`] refuses to start one without TLS (RFC 7628 §3 and §5: a bearer token
//!    is a password that anyone who sees it can replay). [`SaslPolicy::allow_plaintext`] lifts that
//!    for tests only.
//! 2. With an initial response (SASL-IR, `AUTH ... <base64>`), call [`SaslExchange::step`] with it.
//!    Without one, call [`SaslExchange::no_initial_response`]: it yields the empty challenge to send,
//!    and the client's next line goes to `step`.
//! 3. `step` yields a [`Step`]: [`Step::Success`] (the [`Authenticated`] identity),
//!    [`Step::Failure`], or [`Step::Challenge`]. A challenge after a failed validation carries the
//!    RFC 7628 §3.2.2 error JSON (`{"status":"invalid_token",...}`, or XOAUTH2's
//!    `{"status":"401",...}`); the client must answer with `\x01` (OAUTHBEARER) or an empty line
//!    (XOAUTH2), and the next `step` fails the exchange. Any other answer, or a cancel (`*`), fails it
//!    too. Stepping a finished exchange is an [`ExchangeError`], not a panic.
//! 4. [`Step::counts_toward_lockout`] says, at most once per exchange and on the step where the
//!    failure became certain (the challenge, not the dummy reply, so a client that hangs up after
//!    the challenge still counts), whether to count a failed attempt. Count it against the
//!    connection's source address only, through the engine's one limiter
//!    (`Throttle::record_failure(peer, None, now)`), and ask `Throttle::check(peer, None, now)`
//!    before an exchange: never against the identity the client claimed, which an attacker picks
//!    freely (counting under it let anyone lock a user's valid token out by claiming the user, and
//!    let a guesser escape counting by claiming a new identity each time).
//!
//! # What a token must hold
//! A valid signature is not enough: [`SaslPolicy::default`] also requires a mail scope (any of
//! [`DEFAULT_MAIL_SCOPES`], else `insufficient_scope`) and a user (a `client_credentials` token
//! fails with [`FailureReason::NoUser`] and `invalid_token`), so an embedder gets both checks
//! without configuring anything.
//!
//! # Strictness
//! The parsers follow the ABNF of RFC 7628 §3.1 and RFC 5801 §4 and refuse everything else with a
//! typed [`ParseError`]; no input panics, and input longer than [`MAX_MESSAGE_LEN`] is refused
//! before it is looked at. Choices the RFCs leave open, made once here:
//! - Channel binding (`p=`) is refused: this server advertises no `-PLUS` mechanism. `y` is
//!   accepted (the client could bind but believes the server cannot, which is true).
//! - The non-standard GSS-API flag `F` is refused: OAUTHBEARER is not a GSS-API mechanism.
//! - The authzid must be UTF-8 without control characters (RFC 4013 prohibits them in SASL names),
//!   besides the RFC 5801 rule that `,` and `=` travel as `=2C` and `=3D`.
//! - Keys are case-sensitive, unknown keys are ignored, and a repeated key (known or not) is refused.
//! - RFC 7628 §4.4's `n,user=...` header is invalid (the authzid is `a=`), so it is refused.
//! - XOAUTH2 has exactly the shape `user=<mailbox>\x01auth=Bearer <token>\x01\x01`.
//! - A missing or empty `auth` (RFC 7628 §4.3 uses `auth=` to discover the server's
//!   `openid-configuration`) is answered with an error challenge, and does not count toward
//!   lockout; framing errors fail the exchange at once and do count.

mod bearer;
mod challenge;
mod error;
mod exchange;
mod gs2;
mod oauthbearer;
mod outcome;
mod policy;
mod reply;
mod wire;
mod xoauth2;

pub use bearer::parse_bearer_credentials;
pub use challenge::{Challenge, ErrorChallenge, OAuthBearerStatus, XOAuth2Status};
pub use error::ParseError;
pub use exchange::{ExchangeError, SaslExchange, StartError};
pub use gs2::{escape_saslname, unescape_saslname, CbFlag, Gs2Header};
pub use oauthbearer::{parse_oauthbearer, OAuthBearerMessage, OAuthBearerResponse};
pub use outcome::{Authenticated, Ending, Failure, FailureReason, Step};
pub use policy::{SaslPolicy, SaslValidator, DEFAULT_MAIL_SCOPES};
pub use reply::Protocol;
pub use wire::{decode_client_line, decode_initial_response, ClientInput};
pub use xoauth2::{parse_xoauth2, XOAuth2Response};

/// Longest decoded SASL message accepted, in bytes. An access token of this server is at most
/// [`crate::access_token::MAX_TOKEN_LEN`] characters, or [`crate::jose::access_token::MAX_JWT_LEN`]
/// for a JWT access token; the bound leaves room for other issuers' tokens while keeping a hostile
/// client from making the server buffer without limit.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// The two SASL mechanisms that carry a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `OAUTHBEARER`, RFC 7628.
    OAuthBearer,
    /// `XOAUTH2`, Google's older profile (not an RFC), still used by many clients.
    XOAuth2,
}

impl Mechanism {
    /// The registered mechanism name, as advertised in capabilities.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// The mechanism named by a client (`AUTHENTICATE <name>`); SASL names are case-insensitive.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("OAUTHBEARER") {
            Some(Mechanism::OAuthBearer)
        } else if name.eq_ignore_ascii_case("XOAUTH2") {
            Some(Mechanism::XOAuth2)
        } else {
            None
        }
    }
}
