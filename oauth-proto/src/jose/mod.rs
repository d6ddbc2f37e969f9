//! JOSE for the OpenID provider: asymmetric signing keys, JWK Sets, JWS, and the ID token.
//!
//! # What is here
//! - [`Algorithm`]: ES256 (the default), RS256 and EdDSA (Ed25519). Never `none`, never HMAC:
//!   an ID token must be verifiable by anyone from the published keys and forgeable by no client.
//! - [`SigningKey`] / [`VerifyingKey`]: keys whose `kid` is their RFC 7638 thumbprint, stored as
//!   PKCS#8 / SubjectPublicKeyInfo DER.
//! - [`KeySet`]: one active key per algorithm, rotation that keeps the old public keys until what
//!   they signed has expired, retirement, and the public [`JwkSet`] (RFC 7517).
//! - [`jws`]: compact serialization, sign and verify; every header carries its `kid`.
//! - [`IdTokenClaims`] and [`at_hash`]: the ID token (OIDC Core §2).
//! - [`access_token`]: RFC 9068 JWT access tokens, for clients and resources set to them.
//!
//! # Why RustCrypto, not a JOSE crate
//! The signatures, curves and key encodings are RustCrypto's (`p256` with `ecdsa`,
//! `ed25519-dalek`, `rsa`, `sha2`): pure Rust, no OpenSSL, maintained, on the same `digest` and
//! `rand_core` versions as the `sha2` and `hmac` this crate already uses. The JOSE crates were
//! weighed and not taken: `josekit` needs OpenSSL; `jsonwebtoken` reads the system clock to
//! validate `exp` (this engine never reads a clock) and brings a second crypto backend; RustCrypto's
//! own `jose-jws`/`jose-jwk` are early (0.1) and behind the current crate versions. What is left
//! to write here is only the JOSE framing, base64url text and JSON members (via `base64` and
//! `serde_json`), which has no cryptography in it.
//!
//! # Sans-IO
//! Signing is pure computation with the key passed in. ES256 uses RFC 6979 deterministic nonces
//! and Ed25519 is deterministic, so neither draws randomness; RSASSA-PKCS1-v1_5 is deterministic
//! too, but its private-key operation is blinded against timing side channels with the driver's
//! [`Random`](crate::random::Random), which does not change the signature. Key generation draws
//! from the same injected source. Nothing here reads a clock: times are arguments.

pub mod access_token;
mod algorithm;
pub mod id_token;
pub mod jwk;
pub mod jws;
pub mod key_set;
pub mod keys;
pub mod logout_token;
mod rng;

pub use algorithm::Algorithm;
pub use id_token::{at_hash, Audience, IdTokenClaims};
pub use jwk::{Jwk, JwkSet};
pub use key_set::{KeySet, KeySetError, RetiredKey, StoredKeySet};
pub use keys::{KeyError, SigningKey, VerifyingKey};

#[cfg(test)]
mod vectors;
