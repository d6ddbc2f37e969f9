//! HTTP responses as plain values, ready for any HTTP library to send.
//!
//! The engine decides status, headers and body; the adapter only copies them onto the wire. Every
//! response that carries a credential, and every token-endpoint error, has `Cache-Control: no-store`
//! and `Pragma: no-cache` (RFC 6749 §5.1; both are sent because RFC 6749 requires `Pragma` and
//! OAuth 2.1 only `Cache-Control`).
//!
//! Header values are [`Cow`]s: almost all of them are constants (`application/json`, `no-store`),
//! which cost nothing per response; only computed ones (a `Location`, a challenge naming a realm)
//! are owned strings.

use std::borrow::Cow;

use serde::Serialize;

use crate::error::{ErrorCode, OAuthError};

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, in order. Names are lowercase.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// Body (JSON, or empty for redirects).
    pub body: String,
    /// The RFC error code the body carries, when it is an error: what a driver reads instead of
    /// parsing the body again (e.g. [`Response::is_failed_guess`]).
    pub error: Option<ErrorCode>,
}

impl Response {
    /// A JSON response with the no-store headers.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        // serde_json::to_string's own starting size.
        Self::json_sized(status, value, 128)
    }

    /// As [`Response::json`], serializing into a body of `size` bytes to start with (so a caller
    /// that knows the size avoids the buffer's regrowths).
    pub(crate) fn json_sized(status: u16, value: &impl Serialize, size: usize) -> Self {
        let mut buf = Vec::with_capacity(size);
        // Serializing our own plain structs cannot fail (and JSON is UTF-8); fall back to an empty
        // object rather than panic.
        let body = match serde_json::to_writer(&mut buf, value) {
            Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| "{}".to_owned()),
            Err(_) => "{}".to_owned(),
        };
        // Room for the challenge an error adds.
        let mut headers = Vec::with_capacity(4);
        headers.extend([
            ("content-type", Cow::Borrowed("application/json")),
            ("cache-control", Cow::Borrowed("no-store")),
            ("pragma", Cow::Borrowed("no-cache")),
        ]);
        Response {
            status,
            headers,
            body,
            error: None,
        }
    }

    /// A JSON error per RFC 6749 §5.2 (with the `WWW-Authenticate` challenge for a 401).
    pub fn error(err: &OAuthError) -> Self {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            error_description: &'a str,
        }
        let mut r = Response::json(
            err.status(),
            &Body {
                error: err.code.as_str(),
                error_description: &err.description,
            },
        );
        r.error = Some(err.code);
        // A 401 always carries a challenge (Basic unless the error names another); any other
        // status carries one only when the error names it (RFC 6750 §3: a 400 may).
        let challenge = match (err.status(), err.www_authenticate) {
            (_, Some(challenge)) => Some(challenge),
            (401, None) => Some(crate::client_auth::BASIC_CHALLENGE),
            _ => None,
        };
        if let Some(challenge) = challenge {
            r.headers
                .push(("www-authenticate", Cow::Borrowed(challenge)));
        }
        r
    }

    /// A redirect to `location` with the given status (302 after a GET, 303 after a POSTed form).
    pub fn redirect(status: u16, location: String) -> Self {
        Response {
            status,
            headers: vec![
                ("location", Cow::Owned(location)),
                ("cache-control", Cow::Borrowed("no-store")),
                ("pragma", Cow::Borrowed("no-cache")),
            ],
            body: String::new(),
            error: None,
        }
    }

    /// Whether this answer tells of a failed guess at a credential, which a driver counts against
    /// the caller's address ([`crate::throttle::Throttle::record_failure`]): a failed client
    /// authentication (`invalid_client`), a refused grant (`invalid_grant`: an unknown, expired or
    /// used code, refresh token or device code), or a wrong bearer token where one is the
    /// credential (`invalid_token`: an initial access token at registration, a registration access
    /// token at client configuration). Answers a well-behaved client gets routinely
    /// (`authorization_pending`, `slow_down`, an inactive introspection, a revocation of an unknown
    /// token) are not failed guesses.
    pub fn is_failed_guess(&self) -> bool {
        matches!(
            self.error,
            Some(ErrorCode::InvalidClient | ErrorCode::InvalidGrant | ErrorCode::InvalidToken)
        )
    }

    /// The value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl From<OAuthError> for Response {
    fn from(e: OAuthError) -> Self {
        Response::error(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b25_only_failed_guesses_count() {
        let err = |code| Response::error(&OAuthError::new(code, "x"));
        assert!(err(ErrorCode::InvalidClient).is_failed_guess());
        assert!(err(ErrorCode::InvalidGrant).is_failed_guess());
        assert!(err(ErrorCode::InvalidToken).is_failed_guess());
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidScope,
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::UnsupportedGrantType,
        ] {
            assert!(!err(code).is_failed_guess(), "{code:?}");
        }
        assert!(!Response::json(200, &serde_json::json!({"active": false})).is_failed_guess());
        assert_eq!(err(ErrorCode::SlowDown).error, Some(ErrorCode::SlowDown));
    }
}
