//! Resource indicators (RFC 8707) and the audience of access tokens.
//!
//! # Configuration
//! The administrator lists the protected resources ([`ProtectedResource`], the `[[resources]]`
//! tables of the configuration): each an identifier and the scopes it accepts. Identifiers are
//! absolute URIs without fragment (RFC 8707 §2), at most [`MAX_RESOURCE`] bytes, compared
//! exactly as written (RFC 8707 defines no normalization, and an exact match cannot be fooled by a
//! URI that normalizes to another resource's). A mail deployment names its SASL services by the
//! URI of the service on its host, `imap://mail.example.com`, `smtp://mail.example.com`,
//! `pop://mail.example.com`: a bare host name is not an absolute URI, so RFC 8707 leaves a client
//! no way to send it as `resource`, and the scheme keeps the IMAP and SMTP services of one host
//! apart. HTTP resources use their URL (`https://mail.example.com/jmap`).
//! A resource's scopes are compared as written: list both spellings of an aliased scope when
//! clients may use either (`mail` and `urn:ietf:params:oauth:scope:mail`, see [`crate::scope`]).
//!
//! A resource may also say `access_token_format = "jwt"`: tokens whose audience names it are then
//! RFC 9068 JWTs, which it can validate itself from the JWKS ([`crate::jose::access_token`]); the
//! HMAC format stays the default for speed. No resource may be the issuer itself, which a JWT
//! without audience names in its `aud`.
//!
//! With no resource configured (the default) nothing changes: tokens carry no audience and any
//! `resource` parameter is `invalid_target`, since it names no resource this server knows.
//!
//! # Which resources a token is for
//! A request may carry `resource` several times (RFC 8707 §2). Each value must be an absolute URI
//! without fragment, name a configured resource, and that resource must accept part of the scope
//! being granted (a resource with an empty scope list accepts any scope); anything else, and more
//! than [`MAX_AUDIENCE`] values, is `invalid_target`. Repeating a value is harmless.
//! - `/authorize` and the device authorization request record what they asked for in the code or
//!   device record, and through it in the grant: that is what was *authorized*.
//! - The token request may name resources again (the code exchange, the device code poll, a
//!   refresh): they must be within what was authorized, so a refresh may narrow the audience,
//!   never widen it. `client_credentials` may name any configured resource its scope allows.
//! - When neither the grant nor the token request named a resource, the token's audience is every
//!   configured resource that accepts part of its scope (RFC 8707 lets the server pick a default),
//!   so clients that know nothing of resource indicators (most mail clients) get tokens that still
//!   work at every mail service that has their scope, and at nothing else.
//!
//! # Tokens without audience
//! A token carries no audience when no resources were configured at issue (or none accepts its
//! scope). [`Engine::validate_access_token_for`](crate::Engine::validate_access_token_for)
//! accepts such a token only while no resource is configured: once the administrator lists
//! resources, an unbound token could otherwise be replayed at every one of them, which the
//! configuration exists to prevent. [`Engine::validate_access_token`](crate::Engine::validate_access_token)
//! does not look at the audience, as before.

use serde::{Deserialize, Serialize};

use crate::access_token::{AccessClaims, AccessTokenFormat, Audience, TokenError};
pub use crate::access_token::{MAX_AUDIENCE, MAX_RESOURCE};
use crate::config::ConfigError;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::scope::Scope;

/// Most protected resources a configuration may list: a token for all of them must still fit
/// the token format's audience.
pub const MAX_RESOURCES: usize = MAX_AUDIENCE;

/// A protected resource the administrator configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedResource {
    /// Its identifier (RFC 8707 §2): an absolute URI without fragment, such as
    /// `imap://mail.example.com` or `https://mail.example.com/jmap`.
    pub resource: String,
    /// The scopes it accepts, listed in its RFC 9728 metadata. Empty: it accepts any scope, and
    /// its metadata lists the server's `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// The format of tokens whose audience names this resource: `hmac` (the default) or `jwt`
    /// (RFC 9068, validated by the resource server from the JWKS; see
    /// [`crate::jose::access_token`]).
    #[serde(default, skip_serializing_if = "AccessTokenFormat::is_default")]
    pub access_token_format: AccessTokenFormat,
}

impl ProtectedResource {
    /// Whether the resource accepts part of `scope` (any scope when its list is empty).
    pub fn accepts(&self, scope: &Scope) -> bool {
        self.scopes_supported.is_empty() || self.scopes_supported.iter().any(|s| scope.contains(s))
    }
}

/// Whether `value` is a syntactically valid resource indicator: an absolute URI without fragment
/// (RFC 8707 §2), of 1 to [`MAX_RESOURCE`] bytes, written as a URI is (RFC 3986: printable ASCII,
/// no space; the URL parser would otherwise accept and escape what the client sent).
pub fn is_valid_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_RESOURCE
        && value.bytes().all(|b| b.is_ascii_graphic())
        && !value.contains('#')
        && url::Url::parse(value).is_ok_and(|u| u.fragment().is_none())
}

/// Checks the configured resources (called by [`crate::config::Config::validate`]).
pub(crate) fn validate_config(
    resources: &[ProtectedResource],
    scopes_supported: &[String],
    issuer: &str,
) -> Result<(), ConfigError> {
    if resources.len() > MAX_RESOURCES {
        return Err(ConfigError::new(
            "resources",
            format!("at most {MAX_RESOURCES} resources can be configured"),
        ));
    }
    for (i, r) in resources.iter().enumerate() {
        if !is_valid_identifier(&r.resource) {
            return Err(ConfigError::new(
                "resources",
                format!(
                    "resource {:?} must be an absolute URI without fragment, at most {MAX_RESOURCE} \
                     bytes (RFC 8707), such as imap://mail.example.com",
                    r.resource
                ),
            ));
        }
        if r.resource == issuer {
            return Err(ConfigError::new(
                "resources",
                format!(
                    "resource {:?} is the issuer, which JWT access tokens without audience name \
                     as theirs (RFC 9068 §3)",
                    r.resource
                ),
            ));
        }
        if resources[..i].iter().any(|o| o.resource == r.resource) {
            return Err(ConfigError::new(
                "resources",
                format!("resource {:?} is listed twice", r.resource),
            ));
        }
        if let Some(s) = r
            .scopes_supported
            .iter()
            .find(|s| !scopes_supported.contains(s))
        {
            return Err(ConfigError::new(
                "resources",
                format!(
                    "resource {:?} lists scope {s:?}, which is not in scopes_supported",
                    r.resource
                ),
            ));
        }
    }
    Ok(())
}

fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// The `resource` values of a request, checked against the configuration and the scope being
/// granted, without repetitions. Empty when the request has none.
pub(crate) fn requested(
    params: &Params,
    configured: &[ProtectedResource],
    scope: &Scope,
) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for value in params.get_all("resource") {
        if !is_valid_identifier(value) {
            return Err(invalid_target(
                "resource must be an absolute URI without fragment (RFC 8707)",
            ));
        }
        let Some(found) = configured.iter().find(|r| r.resource == value) else {
            return Err(invalid_target("the resource is unknown to this server"));
        };
        if !found.accepts(scope) {
            return Err(invalid_target(
                "the resource accepts none of the requested scopes",
            ));
        }
        if !out.iter().any(|o| o == value) {
            if out.len() == MAX_AUDIENCE {
                return Err(invalid_target("too many resources in one request"));
            }
            out.push(value.to_owned());
        }
    }
    Ok(out)
}

/// The audience of a token issued at the token endpoint: the resources the token request names
/// (`requested`, already checked by [`requested`]), which must be within `authorized` (what the
/// authorization or device request named; empty when it named none, which authorizes every
/// configured resource); else `authorized`; else every configured resource accepting `scope`.
pub(crate) fn audience(
    requested: Vec<String>,
    authorized: &[String],
    configured: &[ProtectedResource],
    scope: &Scope,
) -> Result<Audience, OAuthError> {
    if !requested.is_empty() {
        if !authorized.is_empty() && !requested.iter().all(|r| authorized.contains(r)) {
            return Err(invalid_target(
                "the resource was not part of what was authorized",
            ));
        }
        return carried(Audience::new(requested));
    }
    if !authorized.is_empty() {
        return carried(Audience::new(authorized));
    }
    carried(Audience::new(
        configured
            .iter()
            .filter(|r| r.accepts(scope))
            .map(|r| &r.resource),
    ))
}

/// Identifiers come from the validated configuration, at most [`MAX_RESOURCES`] of them, so a
/// token can always carry them; the error is for a broken invariant, never a client's mistake.
fn carried(audience: Option<Audience>) -> Result<Audience, OAuthError> {
    audience.ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            "the configured resources cannot be carried by a token",
        )
    })
}

impl Engine {
    /// [`Engine::validate_access_token`] for the protected resource `resource` (its configured
    /// identifier) that the embedder serves: a token whose audience does not name it is
    /// [`TokenError::WrongAudience`]; a token without audience passes only while no resource is
    /// configured (see the module docs). The check runs after the signature, so a forged token
    /// still costs one HMAC and is never interpreted.
    pub fn validate_access_token_for(
        &self,
        token: &str,
        resource: &str,
        now: u64,
        view: &dyn crate::store::RevocationView,
    ) -> Result<AccessClaims, TokenError> {
        let unbound_accepted = self.config().resources.is_empty();
        crate::access_token::admit(
            self.verify_access_token(token, now)?,
            Some((resource, unbound_accepted)),
            view,
        )
    }

    /// Whether a token of a client set to `client_format`, for `audience`, is a JWT: the client
    /// opted in, or a configured resource of the audience did ([`crate::jose::access_token`]).
    pub(crate) fn issues_jwt(&self, client_format: AccessTokenFormat, audience: &Audience) -> bool {
        client_format == AccessTokenFormat::Jwt
            || (!audience.is_empty()
                && self.config().resources.iter().any(|r| {
                    r.access_token_format == AccessTokenFormat::Jwt
                        && audience.contains(&r.resource)
                }))
    }

    /// The configured protected resource `resource`, if any.
    pub fn protected_resource(&self, resource: &str) -> Option<&ProtectedResource> {
        self.config()
            .resources
            .iter()
            .find(|r| r.resource == resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_uris_without_fragment() {
        for ok in [
            "imap://mail.example.com",
            "smtp://mail.example.com:587",
            "https://mail.example.com/jmap",
            "urn:example:resource",
        ] {
            assert!(is_valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "mail.example.com",
            "/jmap",
            "https://mail.example.com/#x",
            "https://mail.example.com/#",
            "mailto:x@example.com#",
        ] {
            assert!(!is_valid_identifier(bad), "{bad}");
        }
        assert!(!is_valid_identifier(&format!(
            "https://example.com/{}",
            "a".repeat(MAX_RESOURCE)
        )));
    }
}
