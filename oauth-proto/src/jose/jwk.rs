//! Public JSON Web Keys (RFC 7517) and the published JWK Set, and RFC 7638 thumbprints.
//!
//! [`Jwk`] has no member for private or symmetric key material (`d`, `p`, `q`, `dp`, `dq`, `qi`,
//! `oth`, `k`): a JWK built here cannot carry a secret, whatever key it was made from, so the JWK
//! Set served at `jwks_uri` is public by construction. The members are the crates' own key parts
//! (SEC1 coordinates, RSA modulus and exponent, the Ed25519 public key), base64url-encoded.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{PublicParts, VerifyingKey};
use super::Algorithm;

/// A public JWK: `EC` (P-256), `RSA` or `OKP` (Ed25519).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// Curve (`P-256`, `Ed25519`); absent for RSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use: `sig` for every key published here.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// The one algorithm the key is used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<Algorithm>,
}

/// A JWK Set (RFC 7517 §5): what `jwks_uri` serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &Option<String>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.as_deref()?)
        .ok()
}

impl Jwk {
    /// The JWK of a public key's parts; with `key`, its `kid`, `use` and `alg` too.
    pub(crate) fn from_public(parts: &PublicParts, key: Option<&VerifyingKey>) -> Jwk {
        let mut jwk = match parts {
            PublicParts::P256 { x, y } => Jwk::bare("EC", Some("P-256"), Some(x), Some(y)),
            PublicParts::Ed25519 { x } => Jwk::bare("OKP", Some("Ed25519"), Some(x), None),
            PublicParts::Rsa { n, e } => Jwk {
                n: Some(b64(n)),
                e: Some(b64(e)),
                ..Jwk::bare("RSA", None, None, None)
            },
        };
        if let Some(key) = key {
            jwk.kid = Some(key.kid().to_owned());
            jwk.use_ = Some("sig".to_owned());
            jwk.alg = Some(key.algorithm());
        }
        jwk
    }

    fn bare(kty: &str, crv: Option<&str>, x: Option<&[u8]>, y: Option<&[u8]>) -> Jwk {
        Jwk {
            kty: kty.to_owned(),
            crv: crv.map(str::to_owned),
            x: x.map(b64),
            y: y.map(b64),
            n: None,
            e: None,
            kid: None,
            use_: None,
            alg: None,
        }
    }

    pub(crate) fn x_bytes(&self) -> Option<Vec<u8>> {
        unb64(&self.x)
    }

    pub(crate) fn y_bytes(&self) -> Option<Vec<u8>> {
        unb64(&self.y)
    }

    pub(crate) fn n_bytes(&self) -> Option<Vec<u8>> {
        unb64(&self.n)
    }

    pub(crate) fn e_bytes(&self) -> Option<Vec<u8>> {
        unb64(&self.e)
    }

    /// The RFC 7638 thumbprint: base64url SHA-256 of the required members, in lexicographic
    /// order, without whitespace (RFC 7638 §3.2, RFC 8037 §2). Each key type's required members
    /// are a struct whose fields are declared in that order, so serde_json writes the canonical
    /// form. An unknown key type hashes only `kty`.
    pub fn thumbprint(&self) -> String {
        #[derive(Serialize)]
        struct Ec<'a> {
            crv: &'a str,
            kty: &'a str,
            x: &'a str,
            y: &'a str,
        }
        #[derive(Serialize)]
        struct Rsa<'a> {
            e: &'a str,
            kty: &'a str,
            n: &'a str,
        }
        #[derive(Serialize)]
        struct Okp<'a> {
            crv: &'a str,
            kty: &'a str,
            x: &'a str,
        }
        #[derive(Serialize)]
        struct Other<'a> {
            kty: &'a str,
        }
        fn s(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        let kty = self.kty.as_str();
        let canonical = match kty {
            "EC" => serde_json::to_vec(&Ec {
                crv: s(&self.crv),
                kty,
                x: s(&self.x),
                y: s(&self.y),
            }),
            "RSA" => serde_json::to_vec(&Rsa {
                e: s(&self.e),
                kty,
                n: s(&self.n),
            }),
            "OKP" => serde_json::to_vec(&Okp {
                crv: s(&self.crv),
                kty,
                x: s(&self.x),
            }),
            _ => serde_json::to_vec(&Other { kty }),
        }
        .unwrap_or_default();
        b64(&Sha256::digest(&canonical))
    }
}
