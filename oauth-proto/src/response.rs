//! HTTP responses as plain values, ready for any HTTP library to send.
//!
//! The engine decides status, headers and body; the adapter only copies them onto the wire. Every
//! response that carries a credential, and every token-endpoint error, has `Cache-Control: no-store`
//! and `Pragma: no-cache` (RFC 6749 §5.1; both are sent because RFC 6749 requires `Pragma` and
//! OAuth 2.1 only `Cache-Control`).

use serde::Serialize;

use crate::error::OAuthError;

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, in order. Names are lowercase.
    pub headers: Vec<(&'static str, String)>,
    /// Body (JSON, or empty for redirects).
    pub body: String,
}

impl Response {
    /// A JSON response with the no-store headers.
    pub fn json(status: u16, value: &impl Serialize) -> Self {
        // Serializing our own plain structs cannot fail; fall back to an empty object rather than panic.
        let body = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
        Response {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("cache-control", "no-store".to_owned()),
                ("pragma", "no-cache".to_owned()),
            ],
            body,
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
        // A 401 always carries a challenge (Basic unless the error names another); any other
        // status carries one only when the error names it (RFC 6750 §3: a 400 may).
        let challenge = match (err.status(), err.www_authenticate) {
            (_, Some(challenge)) => Some(challenge),
            (401, None) => Some(crate::client_auth::BASIC_CHALLENGE),
            _ => None,
        };
        if let Some(challenge) = challenge {
            r.headers.push(("www-authenticate", challenge.to_owned()));
        }
        r
    }

    /// A redirect to `location` with the given status (302 after a GET, 303 after a POSTed form).
    pub fn redirect(status: u16, location: String) -> Self {
        Response {
            status,
            headers: vec![
                ("location", location),
                ("cache-control", "no-store".to_owned()),
                ("pragma", "no-cache".to_owned()),
            ],
            body: String::new(),
        }
    }

    /// The value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl From<OAuthError> for Response {
    fn from(e: OAuthError) -> Self {
        Response::error(&e)
    }
}
