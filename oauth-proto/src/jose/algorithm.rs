//! The JWS algorithms the server signs with: asymmetric only.
//!
//! `none` and the HMAC family (`HS256`, ...) are deliberately absent: an ID token signed with a
//! shared secret could be forged by every client holding that secret, and `none` is no signature.
//! Because this type cannot name them, a token whose header says `none` or `HS256` fails to parse
//! before any key is looked at (no algorithm confusion).

use std::fmt;

/// A JWS `alg` (RFC 7518 §3.1, RFC 8037 §3.1) this server can sign and verify with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4), deterministic nonces (RFC 6979). The default.
    #[default]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), 2048-bit keys or larger.
    Rs256,
    /// EdDSA on Ed25519 (RFC 8037 §3.1).
    EdDsa,
}

impl Algorithm {
    /// Every algorithm, the default first.
    pub const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa];

    /// The registered JOSE name (`ES256`, `RS256`, `EdDSA`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm registered under `name` (case-sensitive, RFC 7515 §4.1.1); `None` for
    /// anything else, including `none` and the HMAC algorithms.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Algorithm::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unsupported signing algorithm {name:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_symmetric_or_none_are_unknown() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
        }
        for bad in [
            "none", "None", "HS256", "HS384", "HS512", "es256", "PS256", "",
        ] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
        assert_eq!(Algorithm::default(), Algorithm::Es256);
        assert!(serde_json::from_str::<Algorithm>("\"HS256\"").is_err());
        assert_eq!(
            serde_json::from_str::<Algorithm>("\"EdDSA\"").unwrap(),
            Algorithm::EdDsa
        );
    }
}
