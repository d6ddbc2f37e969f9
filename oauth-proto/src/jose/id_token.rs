//! The OpenID Connect ID token (OIDC Core §2): typed claims that sign into a JWT, and `at_hash`.
//!
//! The claims are a struct, not a map, so an ID token carries exactly the members named here,
//! and `nonce` is the request's string echoed byte for byte (serde_json escapes it; nothing
//! normalizes it). Optional claims are omitted, never `null`. `aud` is written as a string when
//! there is one audience, as OIDC Core §2 allows and relying parties expect.
//!
//! [`IdTokenClaims::decode`] checks the signature against the key set and parses the claims; it
//! checks no time, issuer or audience, because what to check depends on the use (an
//! `id_token_hint` may be expired, OIDC Core §3.1.2.1), so the caller does.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::jws::{self, JwsError};
use super::key_set::KeySet;
use super::keys::SigningKey;
use super::Algorithm;
use crate::random::Random;

/// The `typ` header of an ID token.
pub const TYP: &str = "JWT";

/// One audience (the client id), or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, written as a string.
    One(String),
    /// Several audiences, written as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `client_id` is one of the audiences.
    pub fn contains(&self, client_id: &str) -> bool {
        match self {
            Audience::One(a) => a == client_id,
            Audience::Many(all) => all.iter().any(|a| a == client_id),
        }
    }
}

/// The claims of an ID token (OIDC Core §2, §3.1.3.6, Front-/Back-Channel Logout `sid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer identifier.
    pub iss: String,
    /// Subject: the user.
    pub sub: String,
    /// Audience: the client id.
    pub aud: Audience,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// When the user authenticated (Unix seconds); required when `max_age` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The authorization request's `nonce`, exactly as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authorized party: the client id the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Access token hash ([`at_hash`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Session id, for logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Authentication context class reference, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication method references (RFC 8176), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

/// Why an ID token could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The JWS was refused.
    Jws(JwsError),
    /// The header's `typ` is present and not `JWT`.
    WrongType,
    /// The payload is not ID token claims.
    Claims,
}

impl std::fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdTokenError::Jws(e) => e.fmt(f),
            IdTokenError::WrongType => f.write_str("the token is not an ID token"),
            IdTokenError::Claims => f.write_str("the ID token's claims are malformed"),
        }
    }
}

impl std::error::Error for IdTokenError {}

impl IdTokenClaims {
    /// The signed ID token: a compact JWS with `alg`, `kid` and `typ: JWT` in its header.
    /// `random` only blinds RS256; see [`jws::sign`].
    pub fn sign(&self, key: &SigningKey, random: &mut dyn Random) -> String {
        // A struct of strings, numbers and options always serializes.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        jws::sign(key, TYP, &payload, random)
    }

    /// The claims of an ID token signed by a key of `keys` (active or retired). Checks no time,
    /// issuer or audience: the caller does, for its use.
    pub fn decode(token: &str, keys: &KeySet) -> Result<IdTokenClaims, IdTokenError> {
        let verified =
            jws::verify(token, |kid| keys.verifying_key(kid)).map_err(IdTokenError::Jws)?;
        if verified.typ.as_deref().is_some_and(|t| t != TYP) {
            return Err(IdTokenError::WrongType);
        }
        serde_json::from_slice(&verified.payload).map_err(|_| IdTokenError::Claims)
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): base64url of the left half of the access token's hash, with
/// the hash of the ID token's `alg`: SHA-256 for ES256 and RS256, SHA-512 for EdDSA on Ed25519
/// (the OpenID Connect working group's answer for EdDSA, connect issue 1125).
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match alg {
        Algorithm::Es256 | Algorithm::Rs256 => {
            b64.encode(&Sha256::digest(access_token.as_bytes())[..16])
        }
        Algorithm::EdDsa => b64.encode(&Sha512::digest(access_token.as_bytes())[..32]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::CounterRandom;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://auth.example.com".into(),
            sub: "alice".into(),
            aud: Audience::One("webmail".into()),
            exp: 2000,
            iat: 1400,
            auth_time: Some(1390),
            nonce: Some("n-0S6_WzA2Mj \"é\u{1F600}\\".into()),
            azp: Some("webmail".into()),
            at_hash: Some(at_hash(Algorithm::Es256, "token")),
            sid: None,
            acr: None,
            amr: Some(vec!["pwd".into()]),
        }
    }

    #[test]
    fn signs_and_decodes_with_every_algorithm_and_echoes_the_nonce() {
        let mut random = CounterRandom::new(21);
        let keys = KeySet::generate(&Algorithm::ALL, &mut random).unwrap();
        for alg in Algorithm::ALL {
            let key = keys.signing_key(alg).unwrap();
            let token = claims().sign(key, &mut random);
            let back = IdTokenClaims::decode(&token, &keys).unwrap();
            assert_eq!(back, claims());
            let header: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg.name());
            assert_eq!(header["kid"], key.kid());
            assert_eq!(header["typ"], "JWT");
        }
    }

    #[test]
    fn optional_claims_are_omitted_and_aud_is_a_string() {
        let mut c = claims();
        c.nonce = None;
        c.sid = None;
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["aud"], "webmail");
        assert!(json.get("nonce").is_none());
        assert!(json.get("sid").is_none());
        assert!(json.get("acr").is_none());
        let many: IdTokenClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 2, "iat": 1
        }))
        .unwrap();
        assert!(many.aud.contains("b") && !many.aud.contains("c"));
    }

    #[test]
    fn a_token_from_another_key_set_is_refused() {
        let mut random = CounterRandom::new(22);
        let ours = KeySet::generate(&[Algorithm::Es256], &mut random).unwrap();
        let theirs = KeySet::generate(&[Algorithm::Es256], &mut random).unwrap();
        let token = claims().sign(theirs.signing_key(Algorithm::Es256).unwrap(), &mut random);
        assert_eq!(
            IdTokenClaims::decode(&token, &ours),
            Err(IdTokenError::Jws(JwsError::UnknownKey))
        );
    }
}
