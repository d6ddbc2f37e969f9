//! The parsed HTTP request the JSON endpoints take, and the checks every one of them applies.
//!
//! An adapter fills [`HttpRequest`] from whatever HTTP library it uses; the engine does the rest:
//! method, content type, body size, form decoding, and refusing a `client_secret` in the query
//! string (RFC 6749 §2.3.1: credentials never travel in the URI).

use std::sync::OnceLock;

use crate::client_auth::{self, Presented};
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

/// A form request as a flow's procedure holds it. A flow runs its procedure again after every store
/// answer, and neither the form nor the client credentials in it can change in between, so both are
/// decoded on the first run and every replay reuses them (decoding was a third of a
/// `client_credentials` request's engine time).
pub(crate) struct FormRequest {
    request: HttpRequest,
    max_body: usize,
    form: OnceLock<Result<Params, OAuthError>>,
    presented: OnceLock<Result<Presented, OAuthError>>,
}

impl FormRequest {
    /// Holds `request`, whose body may be at most `max_body` bytes.
    pub(crate) fn new(request: HttpRequest, max_body: usize) -> Self {
        FormRequest {
            request,
            max_body,
            form: OnceLock::new(),
            presented: OnceLock::new(),
        }
    }

    /// The request itself.
    pub(crate) fn request(&self) -> &HttpRequest {
        &self.request
    }

    /// As [`HttpRequest::form`], decoded once.
    pub(crate) fn form(&self) -> Result<&Params, OAuthError> {
        self.form
            .get_or_init(|| self.request.form(self.max_body))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// As [`client_auth::presented`] over this request's header and form, decoded once.
    pub(crate) fn presented(&self) -> Result<&Presented, OAuthError> {
        let params = self.form()?;
        self.presented
            .get_or_init(|| client_auth::presented(self.request.authorization.as_deref(), params))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl std::fmt::Debug for FormRequest {
    // Only the request's own (redacting) Debug: the decoded form holds secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.request.fmt(f)
    }
}
