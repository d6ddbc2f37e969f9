//! Endpoint paths and URLs, all derived from the configured issuer.
//!
//! One place names every path, so the HTTP adapter routes exactly what metadata advertises, and every
//! URL the engine hands out (metadata, `registration_client_uri`, `verification_uri`) is built from
//! the issuer rather than from request headers: behind a reverse proxy the configured issuer is the
//! truth, and a forged `Host` header can change nothing.

use crate::config::Config;

/// Path of the authorization endpoint.
pub const AUTHORIZE: &str = "/authorize";
/// Path of the token endpoint.
pub const TOKEN: &str = "/token";
/// Path of the dynamic registration endpoint (RFC 7591); `/register/{client_id}` is RFC 7592's
/// client configuration endpoint.
pub const REGISTER: &str = "/register";
/// Path of the introspection endpoint (RFC 7662).
pub const INTROSPECT: &str = "/introspect";
/// Path of the revocation endpoint (RFC 7009).
pub const REVOKE: &str = "/revoke";
/// Path of the device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// Path of the page where users enter a device's user code (RFC 8628 §3.3).
pub const DEVICE_VERIFICATION: &str = "/device";
/// Well-known suffix of authorization server metadata (RFC 8414 §3).
pub const WELL_KNOWN_AS: &str = "/.well-known/oauth-authorization-server";
/// Well-known suffix of OpenID Connect discovery, served with the same document.
pub const WELL_KNOWN_OPENID: &str = "/.well-known/openid-configuration";
/// Well-known suffix of protected resource metadata (RFC 9728 §3).
pub const WELL_KNOWN_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Absolute URLs of every endpoint, for one issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer exactly as configured (code-point identical, RFC 8414 §3.3).
    pub issuer: String,
    /// `{issuer}/authorize`.
    pub authorization: String,
    /// `{issuer}/token`.
    pub token: String,
    /// `{issuer}/register`.
    pub registration: String,
    /// `{issuer}/introspect`.
    pub introspection: String,
    /// `{issuer}/revoke`.
    pub revocation: String,
    /// `{issuer}/device_authorization`.
    pub device_authorization: String,
    /// `{issuer}/device`: the `verification_uri`.
    pub device_verification: String,
}

impl Endpoints {
    /// The endpoints of the configured issuer (a trailing `/` of the issuer is not doubled).
    pub fn new(config: &Config) -> Self {
        let base = config.issuer_base();
        let at = |path: &str| format!("{base}{path}");
        Endpoints {
            issuer: config.issuer.clone(),
            authorization: at(AUTHORIZE),
            token: at(TOKEN),
            registration: at(REGISTER),
            introspection: at(INTROSPECT),
            revocation: at(REVOKE),
            device_authorization: at(DEVICE_AUTHORIZATION),
            device_verification: at(DEVICE_VERIFICATION),
        }
    }

    /// RFC 7592's client configuration endpoint of one client: `{issuer}/register/{client_id}`.
    /// Client ids the engine generates are base64url, so they need no escaping.
    pub fn client_configuration(&self, client_id: &str) -> String {
        format!("{}/{client_id}", self.registration)
    }

    /// The path part of an endpoint URL (what an adapter behind a proxy routes on).
    pub fn path_of(url: &str) -> String {
        url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }
}

/// The issuer's path without a terminating `/` (empty for an issuer without a path).
pub(crate) fn issuer_path(config: &Config) -> String {
    url::Url::parse(&config.issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}
