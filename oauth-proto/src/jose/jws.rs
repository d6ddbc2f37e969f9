//! JWS Compact Serialization (RFC 7515 §3.1, §5.1, §5.2): sign and verify.
//!
//! The compact form is base64url text joined by dots; only the signature is cryptography, and that
//! is the key's crate's. Signing always writes the protected header `{"alg", "kid", "typ"}`, so
//! every JWS names the key that signed it.
//!
//! Verification trusts nothing in the header but the `kid` it uses to look the key up: the key
//! decides the algorithm, and a header whose `alg` is not that key's is refused (no algorithm
//! confusion, no `none`, no HMAC with a public key as secret). Keys embedded or referenced in the
//! header (`jwk`, `jku`, `x5u`, `x5c`) are never used. A `crit` header is refused, since this
//! implementation understands no extension (RFC 7515 §4.1.11). Input is bounded before decoding.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::keys::{SigningKey, VerifyingKey};
use super::Algorithm;
use crate::random::Random;

/// Longest compact JWS accepted for verification, in bytes. An ID token or JWT access token is
/// well under 4 KiB; anything longer is refused before any decoding.
pub const MAX_JWS_LEN: usize = 16 * 1024;

/// Why a compact JWS was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than [`MAX_JWS_LEN`].
    TooLong,
    /// Not three base64url parts, or a header that is not the expected JSON.
    Malformed,
    /// The header's `alg` is not one this server verifies (`none`, `HS256`, ...).
    UnsupportedAlgorithm,
    /// The header names a critical extension (`crit`).
    CriticalExtension,
    /// The header has no `kid`, or names a key that is not in the set.
    UnknownKey,
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    AlgorithmMismatch,
    /// The signature does not verify.
    BadSignature,
}

impl fmt::Display for JwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwsError::TooLong => "the JWS is too long",
            JwsError::Malformed => "the JWS is malformed",
            JwsError::UnsupportedAlgorithm => "the JWS algorithm is not supported",
            JwsError::CriticalExtension => "the JWS uses a critical extension",
            JwsError::UnknownKey => "the JWS names no known key",
            JwsError::AlgorithmMismatch => "the JWS algorithm is not its key's",
            JwsError::BadSignature => "the JWS signature is invalid",
        })
    }
}

impl std::error::Error for JwsError {}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: Algorithm,
    kid: &'a str,
    typ: &'a str,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A verified JWS: its header's `typ` and `kid`, and the payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The header's `typ`, if any (e.g. `JWT`, `at+jwt`).
    pub typ: Option<String>,
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// The decoded payload.
    pub payload: Vec<u8>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Signs `payload` with `key` into a compact JWS whose header carries `alg`, `kid` and `typ`.
/// `random` only blinds RS256's private-key operation; ES256 and EdDSA draw nothing.
pub fn sign(key: &SigningKey, typ: &str, payload: &[u8], random: &mut dyn Random) -> String {
    let header = HeaderOut {
        alg: key.algorithm(),
        kid: key.kid(),
        typ,
    };
    // Serializing a struct of strings cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = b64().encode(header);
    out.push('.');
    b64().encode_string(payload, &mut out);
    let signature = key.sign(out.as_bytes(), random);
    out.push('.');
    b64().encode_string(signature, &mut out);
    out
}

/// Verifies a compact JWS, finding its key by the header's `kid` with `find`.
pub fn verify<'k>(
    jws: &str,
    find: impl Fn(&str) -> Option<&'k VerifyingKey>,
) -> Result<Verified, JwsError> {
    verify_parts(jws, |kid| find(kid?))
}

/// Verifies with one given key, for a JWS that need not name it (the RFC examples' headers carry
/// no `kid`); a `kid` that is present must still be the key's, and `alg` the key's algorithm.
pub fn verify_with(jws: &str, key: &VerifyingKey) -> Result<Verified, JwsError> {
    verify_parts(jws, |kid| match kid {
        Some(kid) if kid != key.kid() => None,
        _ => Some(key),
    })
}

fn verify_parts<'k>(
    jws: &str,
    find: impl FnOnce(Option<&str>) -> Option<&'k VerifyingKey>,
) -> Result<Verified, JwsError> {
    if jws.len() > MAX_JWS_LEN {
        return Err(JwsError::TooLong);
    }
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header = b64().decode(header_b64).map_err(|_| JwsError::Malformed)?;
    let header: HeaderIn = serde_json::from_slice(&header).map_err(|_| JwsError::Malformed)?;
    if header.crit.is_some() {
        return Err(JwsError::CriticalExtension);
    }
    let alg = Algorithm::from_name(&header.alg).ok_or(JwsError::UnsupportedAlgorithm)?;
    let key = find(header.kid.as_deref()).ok_or(JwsError::UnknownKey)?;
    if key.algorithm() != alg {
        return Err(JwsError::AlgorithmMismatch);
    }
    let signature = b64()
        .decode(signature_b64)
        .map_err(|_| JwsError::Malformed)?;
    let input_len = header_b64.len() + 1 + payload_b64.len();
    if !key.verify(&jws.as_bytes()[..input_len], &signature) {
        return Err(JwsError::BadSignature);
    }
    let payload = b64().decode(payload_b64).map_err(|_| JwsError::Malformed)?;
    Ok(Verified {
        typ: header.typ,
        kid: key.kid().to_owned(),
        payload,
    })
}
