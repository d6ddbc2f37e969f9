//! PKCE (RFC 7636): challenge syntax and verification.
//!
//! `S256` is the only method accepted by default; `plain` is refused unless the configuration allows
//! it. The verifier is checked against the method recorded with the code, never one named in the
//! token request (RFC 7636 §4.5), and the final comparison is constant-time.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A code challenge method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkceMethod {
    /// `S256`: challenge = BASE64URL(SHA256(verifier)).
    S256,
    /// `plain`: challenge = verifier.
    #[serde(rename = "plain")]
    Plain,
}

impl PkceMethod {
    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "S256" => Some(PkceMethod::S256),
            "plain" => Some(PkceMethod::Plain),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::S256 => "S256",
            PkceMethod::Plain => "plain",
        }
    }
}

/// True for `43*128unreserved` (RFC 7636 §4.1, §4.2): the syntax of verifiers and challenges.
pub fn is_valid_verifier_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Computes the S256 challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks a verifier against a recorded challenge, in constant time.
pub fn verify(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    if !is_valid_verifier_syntax(verifier) {
        return false;
    }
    let computed = match method {
        PkceMethod::S256 => s256_challenge(verifier),
        PkceMethod::Plain => verifier.to_owned(),
    };
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}
