//! The parsed HTTP request the JSON endpoints take, and the checks every one of them applies.
//!
//! An adapter fills [`HttpRequest`] from whatever HTTP library it uses; the engine does the rest:
//! method, content type, body size, form decoding, and refusing a `client_secret` in the query
//! string (RFC 6749 §2.3.1: credentials never travel in the URI).

use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;

/// The parts of an HTTP request the engine looks at.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Raw query string (without `?`), empty when none.
    pub query: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    // Bodies and Authorization headers carry secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl HttpRequest {
    /// A form POST, for tests and embedders that call the engine directly.
    pub fn form_post(body: impl Into<Vec<u8>>) -> Self {
        HttpRequest {
            method: "POST".to_owned(),
            content_type: Some("application/x-www-form-urlencoded".to_owned()),
            body: body.into(),
            ..Default::default()
        }
    }

    /// Adds an `Authorization` header.
    pub fn with_authorization(mut self, value: impl Into<String>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// The decoded form body of a POST, after the checks every form endpoint applies.
    pub fn form(&self, max_body: usize) -> Result<Params, OAuthError> {
        if !self.method.eq_ignore_ascii_case("POST") {
            return Err(OAuthError::invalid_request(
                "this endpoint only accepts POST",
            ));
        }
        let media_type = self
            .content_type
            .as_deref()
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        if self.body.len() > max_body {
            return Err(OAuthError::invalid_request("the request body is too large"));
        }
        if !self.query.is_empty() {
            let query = Params::parse(self.query.as_bytes())?;
            if query.contains("client_secret") {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "client_secret must not be sent in the query string",
                ));
            }
        }
        Params::parse(&self.body)
    }
}
