//! Registered clients and what each may do.
//!
//! A client is confidential (it holds a secret, kept here only as a hash) or public (native and
//! browser apps, identified but never authenticated, RFC 6749 §2.1). The record carries everything the
//! engine checks per request: redirect URIs, grant types, scopes, PKCE policy.

use serde::{Deserialize, Serialize};

pub use crate::access_token::AccessTokenFormat;
use crate::scope::Scope;
use crate::secret::SecretHash;

/// Confidential or public (RFC 6749 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Holds a secret and authenticates at the token endpoint.
    Confidential,
    /// Cannot keep a secret: identified by `client_id`, PKCE mandatory, refresh tokens always rotated.
    Public,
}

/// The grant types the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// `refresh_token` (RFC 6749 §6).
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// `client_credentials` (RFC 6749 §4.4).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    /// Every grant type, in the order metadata lists them.
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: no authentication.
    None,
}

impl AuthMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

/// A registered client, as stores keep it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The client identifier.
    pub client_id: String,
    /// Human-readable name, shown on consent pages. Self-asserted for registered clients.
    pub name: String,
    /// Confidential or public.
    pub kind: ClientKind,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<SecretHash>,
    /// When the secret stops working (Unix seconds); `None` means never.
    pub secret_expires_at: Option<u64>,
    /// The registered token endpoint authentication method.
    pub auth_method: AuthMethod,
    /// Registered redirect URIs, matched exactly (loopback ports excepted).
    pub redirect_uris: Vec<String>,
    /// Grant types this client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes this client may request. Also the default when a request names none.
    pub scope: Scope,
    /// Require PKCE even though the client is confidential (public clients always need it).
    pub require_pkce: bool,
    /// Resource servers may introspect every token when introspection is restricted to them.
    pub resource_server: bool,
    /// SHA-256 of the RFC 7592 registration access token, for dynamically registered clients.
    pub registration_token_hash: Option<SecretHash>,
    /// When the client was created (Unix seconds).
    pub created_at: u64,
    /// Free-form metadata from dynamic registration, echoed back by RFC 7592 reads.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// For a dynamically registered client that has not obtained a token yet: when the store's
    /// purge drops it (Unix seconds). Cleared by [`Effect::MarkClientUsed`] the first time the
    /// token endpoint issues to it, so a registration nobody uses does not stay stored forever.
    /// `None` for clients in use and for clients an administrator added, which never expire.
    /// (Last, with a default: records stored before it existed decode as `None`.)
    ///
    /// [`Effect::MarkClientUsed`]: crate::store::Effect::MarkClientUsed
    #[serde(default)]
    pub unused_expires_at: Option<u64>,
    /// The format of the access tokens issued to this client: the HMAC format by default, or RFC
    /// 9068 JWTs ([`crate::jose::access_token`]). Set only by the administrator, never through
    /// dynamic registration: a JWT costs a public-key signature, which strangers should not be
    /// able to make the server spend. (Last, with a default: records stored before it existed,
    /// including the file store's positional ones, decode as the HMAC format; PostgreSQL keeps a
    /// client as its JSON body, so the field needed no migration there.)
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,
}

impl ClientRecord {
    /// True when the client may use the grant type.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// True for public clients.
    pub fn is_public(&self) -> bool {
        self.kind == ClientKind::Public
    }

    /// True for a client that describes itself: registered dynamically (it holds a registration
    /// access token) or known by its metadata document (an `https` URL as its id, see
    /// [`crate::client_id_document`]). Anyone may claim any redirect URI for such a client, so its
    /// authorization errors are never redirected at once.
    pub fn is_self_asserted(&self) -> bool {
        self.registration_token_hash.is_some()
            || crate::client_id_document::is_document_url(&self.client_id)
    }
}
