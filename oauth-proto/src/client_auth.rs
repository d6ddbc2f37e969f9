//! Client authentication at the token-style endpoints (RFC 6749 §2.3).
//!
//! Three methods: `client_secret_basic` (the `Authorization: Basic` header, whose user and password
//! are form-urldecoded after base64 decoding, RFC 6749 §2.3.1), `client_secret_post` (both in the
//! body) and `none` (a public client names itself with `client_id`). Using two methods at once, or a
//! secret in the query string, is `invalid_request`. Every authentication failure is
//! `invalid_client` with a 401 and a `WWW-Authenticate: Basic` challenge, whichever way the client
//! tried, because RFC 7235 requires a challenge on every 401. Secrets are compared as SHA-256 hashes
//! in constant time. Client secrets carry 256 random bits, so brute force is hopeless by construction
//! (RFC 6749 §2.3.1's brute-force MUST is met by entropy; the adapters rate-limit as well).
//!
//! What a request presents is hashed once ([`Presented::secret_hash`]); the raw secret is not kept,
//! and a flow's replays compare the stored hash without hashing again.

use std::borrow::Cow;

use base64::Engine as _;

use crate::client::{AuthMethod, ClientKind, ClientRecord};
use crate::error::OAuthError;
use crate::params::Params;
use crate::secret::{Secret, SecretHash};

/// The challenge sent with every `invalid_client` 401.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"oauth\", charset=\"UTF-8\"";

/// What the client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Presented {
    /// The claimed client id.
    pub client_id: String,
    /// The SHA-256 of the secret, if one was presented (all that verification needs).
    pub secret_hash: Option<SecretHash>,
    /// How it was presented.
    pub method: AuthMethod,
}

impl std::fmt::Debug for Presented {
    // Even a hash prefix of a presented (possibly mistyped, low-entropy) secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("client_id", &self.client_id)
            .field("secret_hash", &self.secret_hash.map(|_| "<redacted>"))
            .field("method", &self.method)
            .finish()
    }
}

/// Decodes an `Authorization: Basic` value into a form-urldecoded client id and secret
/// (RFC 6749 §2.3.1, RFC 7617 §2): base64, split at the first `:`, decode each half.
pub fn decode_basic(header: &str) -> Result<(String, Secret), OAuthError> {
    decode_basic_with(header, |s| Secret::new(s))
}

/// As [`decode_basic`], handing the decoded secret to `secret` (which hashes it, or keeps it)
/// instead of copying it. The decoded base64 buffer becomes the client id when the id needed no
/// form-decoding, so the usual header costs one allocation.
fn decode_basic_with<T>(
    header: &str,
    secret: impl FnOnce(&str) -> T,
) -> Result<(String, T), OAuthError> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only the Basic authentication scheme is supported",
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| OAuthError::invalid_client("the Basic credentials are not valid base64"))?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| OAuthError::invalid_client("the Basic credentials are not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| OAuthError::invalid_client("the Basic credentials have no ':' separator"))?;
    let id = form_decode(user).ok_or_else(|| {
        OAuthError::invalid_client("the Basic user name is not form-urlencoded UTF-8")
    })?;
    let pass = form_decode(pass).ok_or_else(|| {
        OAuthError::invalid_client("the Basic password is not form-urlencoded UTF-8")
    })?;
    if id.is_empty() {
        return Err(OAuthError::invalid_client("the Basic user name is empty"));
    }
    let secret = secret(&pass);
    let id = match id {
        // The user name is the start of `text`, unchanged: keep it in place.
        Cow::Borrowed(user) => {
            let len = user.len();
            text.truncate(len);
            text
        }
        Cow::Owned(decoded) => decoded,
    };
    Ok((id, secret))
}

/// Form-urldecodes one component (RFC 6749 Appendix B): `+` is a space, `%HH` an octet, then UTF-8.
/// Borrows when there is nothing to decode.
fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        return Some(Cow::Borrowed(s));
    }
    let mut decoded = Vec::with_capacity(s.len());
    crate::params::form_decode_into(s.as_bytes(), &mut decoded);
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

/// Collects the client's credentials from the header and the body, refusing ambiguity.
pub fn presented(authorization: Option<&str>, body: &Params) -> Result<Presented, OAuthError> {
    let body_id = body.get("client_id")?;
    let body_secret = body.get("client_secret")?;
    // RFC 7521/7523 assertions are not supported, but one sent next to another method is still a
    // second method (RFC 6749 §2.3), and alone it authenticates nobody.
    let assertion =
        body.get("client_assertion")?.is_some() || body.get("client_assertion_type")?.is_some();
    if assertion && (authorization.is_some() || body_secret.is_some()) {
        return Err(OAuthError::invalid_request(
            "the client used more than one authentication method (client_assertion and another)",
        ));
    }
    if assertion {
        return Err(OAuthError::invalid_client(
            "client assertions are not supported; use client_secret_basic, client_secret_post \
             or none",
        ));
    }
    if let Some(header) = authorization {
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client used more than one authentication method (Basic and client_secret)",
            ));
        }
        let (client_id, secret_hash) = decode_basic_with(header, SecretHash::of)?;
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client(
                "client_id in the body differs from the Basic user",
            ));
        }
        return Ok(Presented {
            client_id,
            secret_hash: Some(secret_hash),
            method: AuthMethod::ClientSecretBasic,
        });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(Presented {
            client_id: id.to_owned(),
            secret_hash: Some(SecretHash::of(secret)),
            method: AuthMethod::ClientSecretPost,
        }),
        (Some(id), None) => Ok(Presented {
            client_id: id.to_owned(),
            secret_hash: None,
            method: AuthMethod::None,
        }),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret was sent without client_id",
        )),
        // RFC 6749 §4.1.3: an unauthenticated client must name itself.
        (None, None) => Err(OAuthError::invalid_request(
            "client_id is required when the client does not authenticate",
        )),
    }
}

/// Checks presented credentials against the stored client (`None` when the id is unknown).
pub fn verify<'c>(
    presented: &Presented,
    client: Option<&'c ClientRecord>,
    now: u64,
) -> Result<&'c ClientRecord, OAuthError> {
    let client = client.ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    match (client.kind, &presented.secret_hash) {
        (ClientKind::Public, None) => Ok(client),
        (ClientKind::Public, Some(_)) => Err(OAuthError::invalid_client(
            "the client is public and has no secret to present",
        )),
        (ClientKind::Confidential, None) => Err(OAuthError::invalid_client(
            "the client is confidential and must authenticate",
        )),
        (ClientKind::Confidential, Some(presented_hash)) => {
            let matches = client.secret_hash.is_some_and(|h| h.ct_eq(presented_hash));
            if !matches {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
            if client.secret_expires_at.is_some_and(|t| now >= t) {
                return Err(OAuthError::invalid_client("the client secret has expired"));
            }
            Ok(client)
        }
    }
}
