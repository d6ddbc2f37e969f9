//! Bearer token usage at a protected resource (RFC 6750): the call an HTTP server makes for every
//! request it protects.
//!
//! [`Engine::authenticate_bearer`] finds the token (the `Authorization: Bearer` header, scheme
//! matched case-insensitively, or an `access_token` form parameter on a non-GET
//! `application/x-www-form-urlencoded` request), refuses the URI query form (RFC 9700 §4.3.2) and a
//! token sent more than one way, validates it, checks the scope the resource needs, and on failure
//! gives the exact response RFC 6750 §3 asks for: 401 with a bare `Bearer realm=…` challenge when no
//! credentials came, 401 `invalid_token` for a bad one, 403 `insufficient_scope` with the needed
//! `scope`, 400 `invalid_request` for a malformed request. Every challenge attribute appears once.

use crate::access_token::{AccessClaims, TokenError};
use crate::engine::Engine;
use crate::error::ErrorCode;
use crate::params::Params;
use crate::response::Response;
use crate::scope::Scope;
use crate::store::RevocationView;

/// Why a protected-resource request was refused, with everything needed to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BearerError {
    /// No credentials at all: challenge without error attributes (RFC 6750 §3.1).
    Missing,
    /// Malformed request: several token methods, token in the query, bad header syntax.
    InvalidRequest(&'static str),
    /// The token failed validation.
    InvalidToken(TokenError),
    /// The token lacks scope the resource needs.
    InsufficientScope(Scope),
    /// A valid token that names no user (`client_credentials`) at a resource that describes
    /// users (the userinfo endpoint): `invalid_token`, the token is unusable here.
    NoUser,
}

impl BearerError {
    /// The response to send, with its `WWW-Authenticate` challenge.
    pub fn response(&self, realm: &str) -> Response {
        let realm = quote(realm);
        let (code, description, scope) = match self {
            BearerError::Missing => {
                return Response {
                    status: 401,
                    headers: vec![
                        (
                            "www-authenticate",
                            format!("Bearer realm=\"{realm}\"").into(),
                        ),
                        ("cache-control", "no-store".into()),
                    ],
                    body: String::new(),
                    error: None,
                };
            }
            BearerError::InvalidRequest(d) => (ErrorCode::InvalidRequest, *d, None),
            BearerError::InvalidToken(e) => (ErrorCode::InvalidToken, e.description(), None),
            BearerError::NoUser => (
                ErrorCode::InvalidToken,
                "the access token names no user",
                None,
            ),
            BearerError::InsufficientScope(s) => (
                ErrorCode::InsufficientScope,
                "the access token lacks the required scope",
                Some(s),
            ),
        };
        let mut challenge = format!(
            "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{description}\"",
            code.as_str()
        );
        if let Some(scope) = scope {
            challenge.push_str(&format!(", scope=\"{scope}\""));
        }
        let mut r = Response::json(
            code.status(),
            &serde_json::json!({ "error": code.as_str(), "error_description": description }),
        );
        r.headers.push(("www-authenticate", challenge.into()));
        r
    }
}

/// Keeps a realm inside its quoted-string: drops quotes, backslashes and control characters.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
pub(crate) fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The token of an `Authorization` header value: `None` for another scheme (no bearer credentials,
/// RFC 6750 §3.1), an error when the `Bearer` credentials are not one `b64token` (RFC 6750 §2.1).
pub(crate) fn header_token(header: &str) -> Result<Option<&str>, &'static str> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(Some(token))
    } else {
        Err("the Bearer credentials are malformed")
    }
}

/// Finds the bearer token of a request (RFC 6750 §2).
pub fn extract(
    method: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    query: &str,
    body: &[u8],
) -> Result<String, BearerError> {
    if !query.is_empty() {
        let q = Params::parse(query.as_bytes())
            .map_err(|_| BearerError::InvalidRequest("the query string is malformed"))?;
        if q.contains("access_token") {
            return Err(BearerError::InvalidRequest(
                "access tokens are not accepted in the query string",
            ));
        }
    }
    let form = !method.eq_ignore_ascii_case("GET")
        && content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
    let in_body = if form {
        let p = Params::parse(body)
            .map_err(|_| BearerError::InvalidRequest("the form body is malformed"))?;
        p.get("access_token")
            .map_err(|_| BearerError::InvalidRequest("access_token was sent more than once"))?
            .map(str::to_owned)
    } else {
        None
    };
    let in_header = match authorization {
        None => None,
        Some(h) => header_token(h)
            .map_err(BearerError::InvalidRequest)?
            .map(str::to_owned),
    };
    match (in_header, in_body) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "the access token was sent in more than one way",
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(BearerError::Missing),
    }
}

impl Engine {
    /// Authenticates a request to a protected resource: finds its bearer token, validates it, and
    /// checks that it grants `required` scope. On failure, [`BearerError::response`] is the answer.
    pub fn authenticate_bearer(
        &self,
        request: &crate::http::HttpRequest,
        required: &Scope,
        now: u64,
        view: &dyn RevocationView,
    ) -> Result<AccessClaims, BearerError> {
        let token = extract(
            &request.method,
            request.authorization.as_deref(),
            request.content_type.as_deref(),
            &request.query,
            &request.body,
        )?;
        let claims = self
            .validate_access_token(&token, now, view)
            .map_err(BearerError::InvalidToken)?;
        if !required.is_subset_of(&claims.scope) {
            return Err(BearerError::InsufficientScope(required.clone()));
        }
        Ok(claims)
    }
}
