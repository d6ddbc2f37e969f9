//! The ID token of a token response (OpenID Connect Core §3.1.3.3, §3.1.3.6, §12.2).
//!
//! When the granted scope holds `openid` and the grant has a user (authorization code, device
//! code, refresh), the token response carries an `id_token` beside the access token, signed with
//! the client's `id_token_signed_response_alg` (ES256 unless it registered RS256 or EdDSA) by the
//! engine's active key for that algorithm ([`crate::jose::KeySet`]). Its claims:
//! - `iss` the issuer, `sub` the subject, `aud` and `azp` the client id;
//! - `iat` the access token's issue time, `exp` an access token lifetime later (the longest that
//!   anything the signing keys sign stays valid, which key retirement relies on);
//! - `auth_time` when the user authenticated, carried by the code, the device approval and the
//!   grant, so a refresh repeats the original one (§12.2); absent for grants stored before ID
//!   tokens, whose authentication time is unknown;
//! - `nonce` exactly as the authorization request sent it, only from the code exchange (a
//!   refresh's ID token has none, §12.2; the device flow has no nonce);
//! - `at_hash` of the access token issued with it ([`crate::jose::at_hash`]);
//! - `amr` (RFC 8176) and `sid` (Back-Channel Logout §2.1) as the embedder reported the sign-in
//!   ([`crate::authentication`]), carried like `auth_time`; `sid` only from a browser session
//!   (code flow and its refreshes, not the device flow). No `acr`: nothing here knows one.
//!
//! An ID token also comes back as `id_token_hint` (of an authorization request and of a logout):
//! one function checks it for both (`verify_hint`).
//! `client_credentials` has no user, so it never gets an ID token, whatever its scope.

use serde_json::{Map, Value};

use crate::client::ClientRecord;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::jose::{at_hash, Algorithm, Audience, IdTokenClaims};
use crate::random::Random;

/// The longest `id_token_hint` accepted, in bytes: an ID token of this server is well under a
/// kilobyte, even signed with RS256.
pub const MAX_ID_TOKEN_HINT_BYTES: usize = 8192;

/// The claims of an `id_token_hint`: an ID token signed by one of this server's keys (rotated-out
/// ones included) for this issuer. Its expiry is not checked: a hint names who the relying party
/// believes is signed in, which stays true after the token expired (OIDC Core §3.1.2.1,
/// RP-Initiated Logout §2). Each failure is `invalid_request` saying which check failed.
pub(crate) fn verify_hint(
    token: &str,
    keys: &crate::jose::KeySet,
    issuer: &str,
) -> Result<IdTokenClaims, OAuthError> {
    if token.len() > MAX_ID_TOKEN_HINT_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "id_token_hint is longer than {MAX_ID_TOKEN_HINT_BYTES} bytes"
        )));
    }
    let claims = IdTokenClaims::decode(token, keys).map_err(|_| {
        OAuthError::invalid_request(
            "id_token_hint is not an ID token signed by this server (unknown key, bad \
             signature or malformed)",
        )
    })?;
    if claims.iss != issuer {
        return Err(OAuthError::invalid_request(
            "id_token_hint was issued by another issuer",
        ));
    }
    Ok(claims)
}

/// The OpenID Connect scope that asks for an ID token.
pub const OPENID: &str = "openid";

/// The client metadata member naming the ID token algorithm (OpenID Connect Registration §2).
pub const ID_TOKEN_ALG: &str = "id_token_signed_response_alg";

/// What an ID token carries besides the grant's subject and client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdTokenFacts<'a> {
    /// The signing algorithm the client registered (or the default).
    pub(crate) alg: Algorithm,
    /// The authorization request's `nonce`, only on the code exchange.
    pub(crate) nonce: Option<&'a str>,
    /// When the user authenticated, if known.
    pub(crate) auth_time: Option<u64>,
    /// How (RFC 8176); empty when unknown.
    pub(crate) amr: &'a [String],
    /// The browser session, if any.
    pub(crate) sid: Option<&'a str>,
}

impl<'a> IdTokenFacts<'a> {
    /// The facts for `client`'s ID tokens.
    pub(crate) fn new(
        client: &ClientRecord,
        nonce: Option<&'a str>,
        auth_time: Option<u64>,
        amr: &'a [String],
        sid: Option<&'a str>,
    ) -> Self {
        IdTokenFacts {
            alg: id_token_alg(client),
            nonce,
            auth_time,
            amr,
            sid,
        }
    }
}

/// The algorithm `client` registered for its ID tokens: its `id_token_signed_response_alg`, or
/// ES256 when it named none. Registration accepts only the algorithms the engine has keys for,
/// so an unknown value here can only come from a record written by hand; it reads as the default.
pub fn id_token_alg(client: &ClientRecord) -> Algorithm {
    client
        .metadata
        .get(ID_TOKEN_ALG)
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .unwrap_or_default()
}

/// Refuses a registration naming an `id_token_signed_response_alg` this engine has no key for
/// (`invalid_client_metadata`); [`crate::client_metadata::validate`] already refused the names
/// that are no asymmetric algorithm at all.
pub(crate) fn check_registered_alg(
    engine: &Engine,
    metadata: &Map<String, Value>,
) -> Result<(), OAuthError> {
    let named = metadata
        .get(ID_TOKEN_ALG)
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name);
    match named {
        Some(alg) if engine.signing_keys().signing_key(alg).is_none() => Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("id_token_signed_response_alg {alg} is not offered by this server"),
        )),
        _ => Ok(()),
    }
}

/// The signed ID token for an access token issued at `issued_at` to `client_id` for `subject`.
pub(crate) fn sign(
    engine: &Engine,
    subject: &str,
    client_id: &str,
    issued_at: u64,
    access_token: &str,
    facts: &IdTokenFacts<'_>,
    random: &mut dyn Random,
) -> Result<String, OAuthError> {
    let keys = engine.signing_keys();
    let key = keys.signing_key(facts.alg).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            "the server has no key for this client's id_token_signed_response_alg",
        )
    })?;
    let config = engine.config();
    let claims = IdTokenClaims {
        iss: config.issuer.clone(),
        sub: subject.to_owned(),
        aud: Audience::One(client_id.to_owned()),
        exp: issued_at.saturating_add(config.access_token_ttl_secs),
        iat: issued_at,
        auth_time: facts.auth_time,
        nonce: facts.nonce.map(str::to_owned),
        azp: Some(client_id.to_owned()),
        at_hash: Some(at_hash(facts.alg, access_token)),
        sid: facts.sid.map(str::to_owned),
        acr: None,
        amr: (!facts.amr.is_empty()).then(|| facts.amr.to_vec()),
    };
    Ok(claims.sign(key, random))
}
