//! OAuth error responses (RFC 6749 §4.1.2.1, §5.2 and the extensions' codes).
//!
//! An [`OAuthError`] is a value, never a panic: every refusal carries its RFC error code, an
//! `error_description` a developer can act on, and the HTTP status the endpoint must use. Descriptions
//! are sanitized to the `NQSCHAR` set the RFC allows, so echoing part of a request can never break the
//! JSON or a header.

use std::borrow::Cow;

/// The RFC error codes the engine emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// `authorization_pending` (RFC 8628)
    AuthorizationPending,
    /// `slow_down` (RFC 8628)
    SlowDown,
    /// `expired_token` (RFC 8628)
    ExpiredToken,
    /// `unsupported_token_type` (RFC 7009)
    UnsupportedTokenType,
    /// `invalid_redirect_uri` (RFC 7591)
    InvalidRedirectUri,
    /// `invalid_client_metadata` (RFC 7591)
    InvalidClientMetadata,
    /// `invalid_token` (RFC 6750, RFC 7592)
    InvalidToken,
    /// `insufficient_scope` (RFC 6750)
    InsufficientScope,
    /// `invalid_target` (RFC 8707 §2): a `resource` that is malformed, unknown to this server, or
    /// outside what was authorized.
    InvalidTarget,
    /// `request_not_supported` (OpenID Connect Core §3.1.2.6): the request carried a request
    /// object (`request`), which this server does not take.
    RequestNotSupported,
    /// `request_uri_not_supported` (OpenID Connect Core §3.1.2.6): the request carried
    /// `request_uri`, which this server does not take.
    RequestUriNotSupported,
    /// `login_required` (OpenID Connect Core §3.1.2.6): `prompt=none`, and the user must sign in
    /// (no session, one older than `max_age`, or another user than the `id_token_hint` names).
    LoginRequired,
    /// `consent_required` (OpenID Connect Core §3.1.2.6): `prompt=none`, and the user has not
    /// approved this client for this scope before.
    ConsentRequired,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
        }
    }

    /// The HTTP status a JSON endpoint answers this error with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error: code, description, and how to answer it over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The RFC error code.
    pub code: ErrorCode,
    /// A sanitized, human-readable description.
    pub description: Cow<'static, str>,
    /// Set when the client authenticated with the `Authorization` header and failed: the
    /// `WWW-Authenticate` challenge to send with the 401.
    pub www_authenticate: Option<&'static str>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: sanitize(description.into()),
            www_authenticate: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    /// `invalid_client` answered with 401 and a Basic challenge.
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            www_authenticate: Some(crate::client_auth::BASIC_CHALLENGE),
            ..Self::new(ErrorCode::InvalidClient, d)
        }
    }

    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }

    /// The HTTP status for a JSON endpoint.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

/// Keeps only `NQSCHAR` (`%x20-21 / %x23-5B / %x5D-7E`), replacing anything else with `?`, and
/// bounds the length, so a description is always safe in JSON, a query string and a header.
fn sanitize(d: Cow<'static, str>) -> Cow<'static, str> {
    let ok = |c: char| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
    if d.len() <= 300 && d.chars().all(ok) {
        return d;
    }
    Cow::Owned(
        d.chars()
            .take(300)
            .map(|c| if ok(c) { c } else { '?' })
            .collect(),
    )
}
