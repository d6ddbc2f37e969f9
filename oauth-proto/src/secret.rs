//! Secrets and their hashes.
//!
//! Every credential the engine issues (authorization codes, refresh tokens, device codes, user codes,
//! client secrets, registration access tokens) is a high-entropy random string that is shown once and
//! stored only as its SHA-256 hash ([`SecretHash`]). Because the raw values carry at least 256 bits of
//! entropy, a fast hash is the right tool: there is nothing to brute-force, and lookups stay O(1).
//! Comparisons of hashes use `subtle` so timing reveals nothing. [`Secret`] wraps a raw value and
//! redacts it from `Debug`, so a stray `{:?}` in a log never prints a credential.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::random::Random;

/// A raw secret value (token, code, client secret). `Debug` prints `Secret(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a raw secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Draws `bytes` random bytes and encodes them as unpadded base64url (the RFC 6750 `b64token`
    /// alphabet and the RFC 6749 Appendix B identity set, so no encoding step can corrupt it).
    pub fn generate(rng: &mut dyn Random, bytes: usize) -> Self {
        // Every secret the engine draws is 32 bytes or less: draw those on the stack.
        let mut small = [0u8; 64];
        let mut large = Vec::new();
        let buf: &mut [u8] = match small.get_mut(..bytes) {
            Some(buf) => buf,
            None => {
                large.resize(bytes, 0);
                &mut large
            }
        };
        rng.fill(buf);
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
    }

    /// The raw value, to be shown once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash under which stores keep this secret.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SHA-256 of a secret: the only form in which stores keep codes, tokens and client secrets.
#[derive(Clone, Copy, Eq, Serialize, Deserialize)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// Hashes a raw secret.
    pub fn of(raw: &str) -> Self {
        Self::of_bytes(raw.as_bytes())
    }

    /// Hashes raw secret bytes.
    pub fn of_bytes(raw: &[u8]) -> Self {
        SecretHash(Sha256::digest(raw).into())
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Hex form, for file names and keys; it reveals nothing about the secret.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

// Consistent with `PartialEq`: equal hashes have equal bytes, so they hash alike.
impl std::hash::Hash for SecretHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A prefix is enough to tell records apart in a debug dump.
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}
