//! Endpoint paths and URLs, all derived from the configured issuer.
//!
//! One place names every path, so the HTTP adapter routes exactly what metadata advertises, and every
//! URL the engine hands out (metadata, `registration_client_uri`, `verification_uri`, the discovery
//! URL of SASL error challenges) is built from the issuer rather than from request headers: behind a
//! reverse proxy the configured issuer is the truth, and a forged `Host` header can change nothing.
//!
//! An adapter routes from [`Engine::endpoints`](crate::Engine::endpoints): the path of each URL
//! ([`Endpoints::path_of`]) is what it serves, so for an issuer with a path
//! (`https://example.com/auth`) every endpoint lives under that path (`/auth/token`), and the
//! well-known documents at the paths [`Engine::metadata_path`](crate::Engine::metadata_path) and its
//! siblings name. The suffixes below are private: nothing outside the engine types a path.

use crate::config::Config;

/// Path of the authorization endpoint.
pub(crate) const AUTHORIZE: &str = "/authorize";
/// Path of the token endpoint.
pub(crate) const TOKEN: &str = "/token";
/// Path of the dynamic registration endpoint (RFC 7591); `/register/{client_id}` is RFC 7592's
/// client configuration endpoint.
pub(crate) const REGISTER: &str = "/register";
/// Path of the introspection endpoint (RFC 7662).
pub(crate) const INTROSPECT: &str = "/introspect";
/// Path of the revocation endpoint (RFC 7009).
pub(crate) const REVOKE: &str = "/revoke";
/// Path of the device authorization endpoint (RFC 8628 §3.1).
pub(crate) const DEVICE_AUTHORIZATION: &str = "/device_authorization";
/// Path of the page where users enter a device's user code (RFC 8628 §3.3).
pub(crate) const DEVICE_VERIFICATION: &str = "/device";
/// Path of the userinfo endpoint (OpenID Connect Core §5.3).
pub(crate) const USERINFO: &str = "/userinfo";
/// Path of the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0).
pub(crate) const END_SESSION: &str = "/logout";
/// Path of the JWK Set of the ID token signing keys (`jwks_uri`, OpenID Connect Discovery §3).
pub(crate) const JWKS: &str = "/jwks";
/// Well-known suffix of authorization server metadata (RFC 8414 §3).
pub(crate) const WELL_KNOWN_AS: &str = "/.well-known/oauth-authorization-server";
/// Well-known suffix of OpenID Connect discovery, served with the same document.
pub(crate) const WELL_KNOWN_OPENID: &str = "/.well-known/openid-configuration";
/// Well-known suffix of protected resource metadata (RFC 9728 §3).
pub(crate) const WELL_KNOWN_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Absolute URLs of every endpoint, for one issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// `{issuer}/userinfo` (OpenID Connect Core §5.3; Dovecot's `introspection_url`).
    pub userinfo: String,
    /// `{issuer}/jwks`: the public ID token signing keys (`jwks_uri`).
    pub jwks: String,
    /// `{issuer}/logout`: the `end_session_endpoint` (RP-Initiated Logout).
    pub end_session: String,
    /// `{issuer}/.well-known/openid-configuration`: OpenID Connect discovery of this issuer, the
    /// URL SASL error challenges carry ([`SaslPolicy::openid_configuration`](crate::sasl::SaslPolicy)).
    /// It serves the RFC 8414 metadata document.
    pub openid_configuration: String,
}

impl Endpoints {
    /// The endpoints of the configured issuer (a trailing `/` of the issuer is not doubled).
    pub(crate) fn new(config: &Config) -> Self {
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
            userinfo: at(USERINFO),
            jwks: at(JWKS),
            end_session: at(END_SESSION),
            openid_configuration: at(WELL_KNOWN_OPENID),
        }
    }

    /// RFC 7592's client configuration endpoint of one client: `{issuer}/register/{client_id}`.
    /// Client ids the engine generates are base64url, so they need no escaping.
    pub fn client_configuration(&self, client_id: &str) -> String {
        format!("{}/{client_id}", self.registration)
    }

    /// The path part of an endpoint URL: what an adapter routes on. Empty for a URL that does not
    /// parse (never one of these: the issuer is validated with the configuration).
    pub fn path_of(url: &str) -> String {
        url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }
}

/// The issuer's path without a terminating `/` (empty for an issuer without a path).
pub(crate) fn issuer_path(config: &Config) -> String {
    Endpoints::path_of(&config.issuer)
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_with_a_path_puts_every_endpoint_under_it() {
        let config = Config {
            issuer: "https://example.com/auth/".to_owned(),
            ..Config::default()
        };
        let e = Endpoints::new(&config);
        let paths: Vec<String> = [
            &e.authorization,
            &e.token,
            &e.registration,
            &e.introspection,
            &e.revocation,
            &e.device_authorization,
            &e.device_verification,
            &e.userinfo,
            &e.jwks,
            &e.openid_configuration,
        ]
        .iter()
        .map(|u| Endpoints::path_of(u))
        .collect();
        assert_eq!(
            paths,
            [
                "/auth/authorize",
                "/auth/token",
                "/auth/register",
                "/auth/introspect",
                "/auth/revoke",
                "/auth/device_authorization",
                "/auth/device",
                "/auth/userinfo",
                "/auth/jwks",
                "/auth/.well-known/openid-configuration",
            ]
        );
        assert_eq!(issuer_path(&config), "/auth");
        assert_eq!(
            e.client_configuration("abc"),
            "https://example.com/auth/register/abc"
        );
    }

    #[test]
    fn an_issuer_without_a_path_has_root_endpoints() {
        let config = Config {
            issuer: "https://example.com".to_owned(),
            ..Config::default()
        };
        let e = Endpoints::new(&config);
        assert_eq!(Endpoints::path_of(&e.token), "/token");
        assert_eq!(
            e.openid_configuration,
            "https://example.com/.well-known/openid-configuration"
        );
        assert_eq!(issuer_path(&config), "");
    }
}
