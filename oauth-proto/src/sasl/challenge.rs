//! Server challenges: the empty one that asks for a response, and the error JSON.
//!
//! RFC 7628 §3.2.2: when authentication fails the server does not fail at once; it sends a
//! challenge holding a JSON object with `status` (an RFC 6750 error code, REQUIRED), and optionally
//! the `scope` the token needs and the `openid-configuration` URL where a client discovers the
//! authorization server. XOAUTH2 sends the same kind of object with an HTTP-like status (`"401"`) and
//! `"schemes":"bearer"`. Keys are written in the order `status`, `schemes`, `scope`,
//! `openid-configuration`, which reproduces the byte vectors of RFC 7628 §4.3 and §4.4.

use base64::Engine as _;
use serde::Serialize;

/// `status` values of an OAUTHBEARER error challenge (RFC 6750 §3.1 codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OAuthBearerStatus {
    /// `invalid_request`: a parameter (e.g. `host`, `port`) is wrong.
    InvalidRequest,
    /// `invalid_token`: the token is missing, malformed, expired, revoked, or not for this identity.
    InvalidToken,
    /// `insufficient_scope`: the token lacks the scope the server requires.
    InsufficientScope,
}

impl OAuthBearerStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthBearerStatus::InvalidRequest => "invalid_request",
            OAuthBearerStatus::InvalidToken => "invalid_token",
            OAuthBearerStatus::InsufficientScope => "insufficient_scope",
        }
    }
}

/// `status` values of an XOAUTH2 error challenge (HTTP status codes as strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XOAuth2Status {
    /// `"400"`: a malformed credential.
    BadRequest,
    /// `"401"`: the token is missing, invalid, expired, revoked, or not for this user.
    Unauthorized,
    /// `"403"`: the token lacks the required scope.
    Forbidden,
}

impl XOAuth2Status {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            XOAuth2Status::BadRequest => "400",
            XOAuth2Status::Unauthorized => "401",
            XOAuth2Status::Forbidden => "403",
        }
    }
}

/// The JSON object of an error challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorChallenge<'a> {
    /// `status` (required).
    pub status: &'a str,
    /// `schemes` (XOAUTH2 sends `bearer`; RFC 7628 §4.4 shows it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemes: Option<&'a str>,
    /// `scope` the server needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    /// `openid-configuration`: the discovery URL of the authorization server.
    #[serde(
        rename = "openid-configuration",
        skip_serializing_if = "Option::is_none"
    )]
    pub openid_configuration: Option<&'a str>,
}

impl<'a> ErrorChallenge<'a> {
    /// An OAUTHBEARER error: `{"status":...,"scope":...,"openid-configuration":...}`.
    pub fn oauthbearer(
        status: OAuthBearerStatus,
        scope: Option<&'a str>,
        openid_configuration: Option<&'a str>,
    ) -> Self {
        ErrorChallenge {
            status: status.as_str(),
            schemes: None,
            scope,
            openid_configuration,
        }
    }

    /// An XOAUTH2 error: `{"status":"401","schemes":"bearer","scope":...}`.
    pub fn xoauth2(status: XOAuth2Status, scope: Option<&'a str>) -> Self {
        ErrorChallenge {
            status: status.as_str(),
            schemes: Some("bearer"),
            scope,
            openid_configuration: None,
        }
    }

    /// The raw JSON bytes (the SASL challenge before base64).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail; the fallback only keeps this panic-free.
        serde_json::to_vec(self).unwrap_or_else(|_| br#"{"status":"invalid_token"}"#.to_vec())
    }

    /// The JSON, base64-encoded as it travels in `+ `, `334 ` or a ManageSieve string.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_json())
    }
}

/// A challenge to send to the client, who then answers with its next message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    payload: Vec<u8>,
    counts: bool,
}

impl Challenge {
    pub(super) fn empty() -> Self {
        Challenge {
            payload: Vec::new(),
            counts: false,
        }
    }

    pub(super) fn error(json: Vec<u8>, counts: bool) -> Self {
        Challenge {
            payload: json,
            counts,
        }
    }

    /// The raw challenge: empty (asking for the client's response) or the error JSON.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload in base64, as sent on the wire (empty for the empty challenge).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.payload)
    }

    /// True for an error challenge: the exchange has failed and waits for the client's dummy reply.
    pub fn is_error(&self) -> bool {
        !self.payload.is_empty()
    }

    /// Whether this error challenge reports a failed attempt to count now (see
    /// [`super::Step::counts_toward_lockout`]).
    pub fn counts_toward_lockout(&self) -> bool {
        self.counts
    }
}
