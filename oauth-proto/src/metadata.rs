//! Authorization server metadata (RFC 8414) and protected resource metadata (RFC 9728).
//!
//! The document describes exactly what this engine does under its configuration: members follow
//! the settings (registration only when some registration is enabled, `plain` PKCE only when
//! allowed, `none` introspection auth only when public clients may introspect), every URL derives
//! from the configured issuer, and empty arrays are omitted (RFC 8414 §3.2). `grant_types_supported`
//! and `token_endpoint_auth_methods_supported` are always explicit, because their RFC defaults
//! (`implicit`, Basic only) would misdescribe this server.
//!
//! The OpenID Connect Discovery members say what the ID tokens are (see [`crate::openid`]):
//! `jwks_uri` (the public signing keys, [`Engine::jwks`]), the algorithms the engine has keys
//! for, `public` subjects, the claims it can return, and that request objects and the `claims`
//! parameter are not supported (`request_parameter_supported` defaults to false, but
//! `request_uri_parameter_supported` defaults to *true*, so all three are written out), and the
//! `end_session_endpoint` of RP-initiated logout ([`crate::end_session`]), and, when the
//! embedder delivers them, back-channel and front-channel logout with `sid`
//! ([`crate::backchannel_logout`], [`crate::frontchannel_logout`]). No
//! `acr_values_supported`: the ID tokens carry no `acr` (see [`crate::authentication`]).

use serde::Serialize;

use crate::client::GrantType;
use crate::config::RegistrationPolicy;
use crate::endpoints::{self, Endpoints};
use crate::engine::Engine;
use crate::jose::Algorithm;
use crate::response::Response;

const ALL_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

#[derive(Serialize)]
struct AsMetadata<'a> {
    issuer: &'a str,
    authorization_endpoint: &'a str,
    token_endpoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_endpoint: Option<&'a str>,
    introspection_endpoint: &'a str,
    introspection_endpoint_auth_methods_supported: &'a [&'a str],
    revocation_endpoint: &'a str,
    revocation_endpoint_auth_methods_supported: &'a [&'a str],
    device_authorization_endpoint: &'a str,
    userinfo_endpoint: &'a str,
    end_session_endpoint: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    backchannel_logout_supported: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    backchannel_logout_session_supported: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    frontchannel_logout_supported: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    frontchannel_logout_session_supported: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [String],
    response_types_supported: [&'a str; 1],
    response_modes_supported: [&'a str; 1],
    grant_types_supported: Vec<&'a str>,
    token_endpoint_auth_methods_supported: &'a [&'a str],
    code_challenge_methods_supported: Vec<&'a str>,
    authorization_response_iss_parameter_supported: bool,
    jwks_uri: &'a str,
    id_token_signing_alg_values_supported: Vec<Algorithm>,
    subject_types_supported: [&'a str; 1],
    claims_supported: &'a [&'a str],
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    claims_parameter_supported: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    client_id_metadata_document_supported: bool,
}

/// The claims this server can return, in ID tokens and from userinfo.
const CLAIMS_SUPPORTED: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "amr",
    "sid",
    "email",
    "email_verified",
    "preferred_username",
    "name",
];

#[derive(Serialize)]
struct ResourceMetadata<'a> {
    resource: &'a str,
    authorization_servers: [&'a str; 1],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    scopes_supported: &'a [String],
    bearer_methods_supported: [&'a str; 1],
}

/// A public JSON document: cacheable for a few minutes, unlike credential-bearing responses.
fn document(value: &impl Serialize) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("content-type", "application/json".into()),
            ("cache-control", "public, max-age=300".into()),
        ],
        body: serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()),
        error: None,
    }
}

impl Engine {
    /// Every endpoint URL, derived from the configured issuer.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.config())
    }

    /// True when dynamic registration accepts any kind of client.
    pub fn registration_enabled(&self) -> bool {
        let c = self.config();
        c.public_registration || c.confidential_registration != RegistrationPolicy::Off
    }

    /// The RFC 8414 metadata document, for `GET` at [`Engine::metadata_path`] (and at
    /// [`Engine::openid_configuration_path`] and [`Engine::openid_configuration_inserted_path`]).
    pub fn metadata(&self) -> Response {
        let c = self.config();
        let e = self.endpoints();
        let mut pkce = vec!["S256"];
        if c.allow_plain_pkce {
            pkce.push("plain");
        }
        document(&AsMetadata {
            issuer: &e.issuer,
            authorization_endpoint: &e.authorization,
            token_endpoint: &e.token,
            registration_endpoint: self.registration_enabled().then_some(&*e.registration),
            introspection_endpoint: &e.introspection,
            introspection_endpoint_auth_methods_supported: &ALL_METHODS,
            revocation_endpoint: &e.revocation,
            revocation_endpoint_auth_methods_supported: &ALL_METHODS,
            device_authorization_endpoint: &e.device_authorization,
            userinfo_endpoint: &e.userinfo,
            end_session_endpoint: &e.end_session,
            backchannel_logout_supported: c.backchannel_logout,
            backchannel_logout_session_supported: c.backchannel_logout,
            frontchannel_logout_supported: c.frontchannel_logout,
            frontchannel_logout_session_supported: c.frontchannel_logout,
            scopes_supported: &c.scopes_supported,
            response_types_supported: ["code"],
            response_modes_supported: ["query"],
            grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            token_endpoint_auth_methods_supported: &ALL_METHODS,
            code_challenge_methods_supported: pkce,
            authorization_response_iss_parameter_supported: true,
            jwks_uri: &e.jwks,
            id_token_signing_alg_values_supported: self.id_token_algorithms(),
            subject_types_supported: ["public"],
            claims_supported: &CLAIMS_SUPPORTED,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            claims_parameter_supported: false,
            client_id_metadata_document_supported: c.client_id_metadata_documents,
        })
    }

    /// The JWK Set at `jwks_uri` (RFC 7517 §5): the public halves of the active signing keys and
    /// of the rotated-out keys not yet retired, so ID tokens signed before a rotation still
    /// verify. [`crate::jose::Jwk`] has no member for private material, so nothing secret can
    /// appear here. Cacheable like the metadata.
    pub fn jwks(&self) -> Response {
        document(&self.signing_keys().jwks())
    }

    /// The RFC 9728 protected resource metadata of the resource server co-located with this
    /// authorization server (its resource identifier is the issuer): bearer tokens in the
    /// `Authorization` header only.
    pub fn protected_resource_metadata(&self) -> Response {
        let c = self.config();
        document(&ResourceMetadata {
            resource: &c.issuer,
            authorization_servers: [&c.issuer],
            scopes_supported: &c.scopes_supported,
            bearer_methods_supported: ["header"],
        })
    }

    /// The path of the metadata document (RFC 8414 §3.1): the issuer's path, without a terminating
    /// `/`, appended to `/.well-known/oauth-authorization-server`.
    pub fn metadata_path(&self) -> String {
        format!(
            "{}{}",
            endpoints::WELL_KNOWN_AS,
            endpoints::issuer_path(self.config())
        )
    }

    /// The OpenID Connect discovery path for the issuer (`{issuer path}/.well-known/openid-configuration`),
    /// which serves the same document for OIDC-only clients.
    pub fn openid_configuration_path(&self) -> String {
        format!(
            "{}{}",
            endpoints::issuer_path(self.config()),
            endpoints::WELL_KNOWN_OPENID
        )
    }

    /// The RFC 8414 §5 compatibility location of the same document for OIDC clients:
    /// `/.well-known/openid-configuration` inserted before the issuer's path, built like
    /// [`Engine::metadata_path`]. For an issuer without a path it is
    /// [`Engine::openid_configuration_path`].
    pub fn openid_configuration_inserted_path(&self) -> String {
        format!(
            "{}{}",
            endpoints::WELL_KNOWN_OPENID,
            endpoints::issuer_path(self.config())
        )
    }

    /// The RFC 9728 document of the configured protected resource `resource`
    /// ([`crate::resource`]): its identifier, this authorization server, and only the scopes it
    /// accepts (the server's `scopes_supported` when its list is empty), so that a client asks
    /// for what that resource needs and nothing more. `None` for a resource not configured.
    pub fn protected_resource_metadata_for(&self, resource: &str) -> Option<Response> {
        let c = self.config();
        let r = self.protected_resource(resource)?;
        let scopes = if r.scopes_supported.is_empty() {
            &c.scopes_supported
        } else {
            &r.scopes_supported
        };
        Some(document(&ResourceMetadata {
            resource: &r.resource,
            authorization_servers: [&c.issuer],
            scopes_supported: scopes,
            bearer_methods_supported: ["header"],
        }))
    }

    /// Where this server serves the document of a configured resource: for an `http` or `https`
    /// resource, `/.well-known/oauth-protected-resource` followed by the resource's path without
    /// a terminating `/` (RFC 9728 §3.1: where a client looks when the resource's host routes
    /// `/.well-known/` here, as a reverse proxy in front of both does); for another scheme
    /// (`imap://`, `smtp://`, which RFC 9728 gives no location), that prefix followed by
    /// `/{scheme}/{host}[:{port}]{path}`.
    pub fn protected_resource_metadata_path_for(&self, resource: &str) -> Option<String> {
        let r = self.protected_resource(resource)?;
        let url = url::Url::parse(&r.resource).ok()?;
        let path = url.path().trim_end_matches('/');
        Some(match url.scheme() {
            "http" | "https" => format!("{}{path}", endpoints::WELL_KNOWN_RESOURCE),
            scheme => {
                let host = url.host_str().unwrap_or_default();
                let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                let path = if path.starts_with('/') || path.is_empty() {
                    path.to_owned()
                } else {
                    format!("/{path}")
                };
                format!(
                    "{}/{scheme}/{host}{port}{path}",
                    endpoints::WELL_KNOWN_RESOURCE
                )
            }
        })
    }

    /// Every path of a protected resource document: the co-located resource's
    /// ([`Engine::protected_resource_metadata_path`]) and each configured resource's.
    pub fn protected_resource_metadata_paths(&self) -> Vec<String> {
        let mut paths = vec![self.protected_resource_metadata_path()];
        for r in &self.config().resources {
            if let Some(p) = self.protected_resource_metadata_path_for(&r.resource) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        paths
    }

    /// The protected resource document served at `path`: a configured resource's (which wins
    /// when its location is the co-located resource's, as for an `https` resource on the
    /// issuer's host without a path), else the co-located resource's at its path, else `None`.
    pub fn protected_resource_metadata_at(&self, path: &str) -> Option<Response> {
        let configured = self.config().resources.iter().find(|r| {
            self.protected_resource_metadata_path_for(&r.resource)
                .is_some_and(|p| p == path)
        });
        match configured {
            Some(r) => self.protected_resource_metadata_for(&r.resource),
            None => (path == self.protected_resource_metadata_path())
                .then(|| self.protected_resource_metadata()),
        }
    }

    /// The path of the protected resource metadata (RFC 9728 §3.1), built like
    /// [`Engine::metadata_path`].
    pub fn protected_resource_metadata_path(&self) -> String {
        format!(
            "{}{}",
            endpoints::WELL_KNOWN_RESOURCE,
            endpoints::issuer_path(self.config())
        )
    }
}
