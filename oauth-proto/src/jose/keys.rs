//! Signing keys (private) and verifying keys (public), one type each for every [`Algorithm`].
//!
//! The curve maths, signatures and key encodings all come from the RustCrypto crates: `p256`'s
//! ECDSA (RFC 6979 deterministic nonces), `ed25519-dalek`, and `rsa`'s RSASSA-PKCS1-v1_5. Keys
//! are stored as PKCS#8 (private) and SubjectPublicKeyInfo (public) DER, the crates' own
//! encodings. Every key's `kid` is its RFC 7638 JWK thumbprint, so it is derived, never chosen,
//! and the same key always gets the same `kid`.
//!
//! Randomness is an argument ([`Random`]), never read here: generating a key needs it, and so
//! does RS256 signing, whose private-key operation is blinded against timing side channels
//! (blinding does not change the deterministic signature value). ES256 and EdDSA signing draw
//! nothing.
//!
//! `Debug` of a signing key shows its algorithm and `kid`, never the secret.

use std::fmt;

use p256::ecdsa::signature::{RandomizedSigner, Signer, Verifier};
use p256::elliptic_curve::Generate as _;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::jwk::Jwk;
use super::rng::RandomRng;
use super::Algorithm;
use crate::random::Random;

/// Modulus size of generated RSA keys, in bits (RFC 7518 §3.3 requires at least 2048).
pub const RSA_BITS: usize = 2048;

/// Why a key could not be made, loaded or encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The DER (or JWK members) do not hold a valid key for the algorithm.
    Malformed(Algorithm),
    /// An RSA modulus smaller than 2048 bits.
    RsaTooSmall,
    /// The JWK's key type or curve is not one this server uses.
    UnsupportedJwk,
    /// The crate failed to generate or encode a key.
    Crypto(Algorithm),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(a) => write!(f, "not a valid {a} key"),
            KeyError::RsaTooSmall => write!(f, "RSA keys must have at least 2048 bits"),
            KeyError::UnsupportedJwk => write!(f, "unsupported JWK key type or curve"),
            KeyError::Crypto(a) => write!(f, "the {a} key could not be generated or encoded"),
        }
    }
}

impl std::error::Error for KeyError {}

#[derive(Clone)]
enum Secret {
    Es256(p256::ecdsa::SigningKey),
    Rs256(rsa::pkcs1v15::SigningKey<Sha256>),
    EdDsa(ed25519_dalek::SigningKey),
}

#[derive(Clone, PartialEq, Eq)]
enum Public {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(rsa::PublicKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

/// A private signing key with its algorithm and `kid`.
#[derive(Clone)]
pub struct SigningKey {
    secret: Secret,
    public: VerifyingKey,
}

/// A public verifying key with its algorithm and `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    public: Public,
    kid: String,
}

impl SigningKey {
    /// A fresh key for `alg`, from the driver's randomness.
    pub fn generate(alg: Algorithm, random: &mut dyn Random) -> Result<SigningKey, KeyError> {
        let mut rng = RandomRng(random);
        let secret = match alg {
            Algorithm::Es256 => Secret::Es256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            Algorithm::Rs256 => Secret::Rs256(
                rsa::pkcs1v15::SigningKey::random(&mut rng, RSA_BITS)
                    .map_err(|_| KeyError::Crypto(alg))?,
            ),
            Algorithm::EdDsa => Secret::EdDsa(ed25519_dalek::SigningKey::generate(&mut rng)),
        };
        Ok(SigningKey::from_secret(secret))
    }

    /// Loads a key for `alg` from its PKCS#8 DER encoding.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<SigningKey, KeyError> {
        let bad = |_| KeyError::Malformed(alg);
        let secret = match alg {
            Algorithm::Es256 => {
                Secret::Es256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
            Algorithm::Rs256 => {
                let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(bad)?;
                check_rsa_size(&key.to_public_key())?;
                Secret::Rs256(rsa::pkcs1v15::SigningKey::new(key))
            }
            Algorithm::EdDsa => {
                Secret::EdDsa(ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(bad)?)
            }
        };
        Ok(SigningKey::from_secret(secret))
    }

    fn from_secret(secret: Secret) -> SigningKey {
        let public = match &secret {
            Secret::Es256(k) => Public::Es256(*k.verifying_key()),
            Secret::Rs256(k) => Public::Rs256(k.as_ref().to_public_key()),
            Secret::EdDsa(k) => Public::EdDsa(k.verifying_key()),
        };
        SigningKey {
            secret,
            public: VerifyingKey::from_public(public),
        }
    }

    /// The PKCS#8 DER encoding, for the driver to store; wiped from memory when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let alg = self.algorithm();
        let doc = match &self.secret {
            Secret::Es256(k) => k.to_pkcs8_der(),
            Secret::Rs256(k) => k.as_ref().to_pkcs8_der(),
            Secret::EdDsa(k) => k.to_pkcs8_der(),
        }
        .map_err(|_| KeyError::Crypto(alg))?;
        Ok(doc.to_bytes())
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    /// The key id (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The raw JWS signature over `input` (RFC 7518 §3.3, §3.4: `R || S` for ES256; RFC 8037).
    pub(crate) fn sign(&self, input: &[u8], random: &mut dyn Random) -> Vec<u8> {
        match &self.secret {
            Secret::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            Secret::Rs256(k) => {
                let sig: rsa::pkcs1v15::Signature = k.sign_with_rng(&mut RandomRng(random), input);
                Box::<[u8]>::from(sig).into_vec()
            }
            Secret::EdDsa(k) => k.sign(input).to_bytes().to_vec(),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, kid {}, <redacted>)",
            self.algorithm(),
            self.kid()
        )
    }
}

impl VerifyingKey {
    fn from_public(public: Public) -> VerifyingKey {
        let kid = Jwk::from_public(&public_parts(&public), None).thumbprint();
        VerifyingKey { public, kid }
    }

    /// Loads a key for `alg` from its SubjectPublicKeyInfo DER encoding.
    pub fn from_public_key_der(alg: Algorithm, der: &[u8]) -> Result<VerifyingKey, KeyError> {
        let bad = |_| KeyError::Malformed(alg);
        let public = match alg {
            Algorithm::Es256 => {
                Public::Es256(p256::ecdsa::VerifyingKey::from_public_key_der(der).map_err(bad)?)
            }
            Algorithm::Rs256 => {
                let key = rsa::PublicKey::from_public_key_der(der).map_err(bad)?;
                check_rsa_size(&key)?;
                Public::Rs256(key)
            }
            Algorithm::EdDsa => {
                Public::EdDsa(ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(bad)?)
            }
        };
        Ok(VerifyingKey::from_public(public))
    }

    /// A public key from a JWK's members (RFC 7517, 7518 §6, 8037 §2): `EC` on `P-256`, `RSA`,
    /// or `OKP` on `Ed25519`. Private members, if any, are ignored; `alg` and `use`, when present,
    /// must be the key type's algorithm and `sig`.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, KeyError> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::UnsupportedJwk);
        }
        let public = public_from_jwk(jwk)?;
        let key = VerifyingKey::from_public(public);
        if jwk.alg.is_some_and(|a| a != key.algorithm()) {
            return Err(KeyError::UnsupportedJwk);
        }
        Ok(key)
    }

    /// The SubjectPublicKeyInfo DER encoding.
    pub fn to_public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        let alg = self.algorithm();
        match &self.public {
            Public::Es256(k) => k.to_public_key_der(),
            Public::Rs256(k) => k.to_public_key_der(),
            Public::EdDsa(k) => k.to_public_key_der(),
        }
        .map(|doc| doc.into_vec())
        .map_err(|_| KeyError::Crypto(alg))
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.public {
            Public::Es256(_) => Algorithm::Es256,
            Public::Rs256(_) => Algorithm::Rs256,
            Public::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The key id (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK, with `kid`, `use: sig` and `alg`.
    pub fn jwk(&self) -> Jwk {
        Jwk::from_public(&public_parts(&self.public), Some(self))
    }

    /// Whether `signature` is this key's JWS signature over `input`. Ed25519 is verified
    /// strictly (no malleable or small-order encodings).
    pub(crate) fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        match &self.public {
            Public::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify(input, &sig).is_ok()),
            Public::Rs256(k) => rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|sig| {
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone())
                    .verify(input, &sig)
                    .is_ok()
            }),
            Public::EdDsa(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify_strict(input, &sig).is_ok()),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({}, kid {})", self.algorithm(), self.kid)
    }
}

fn check_rsa_size(key: &rsa::PublicKey) -> Result<(), KeyError> {
    if key.n().bit_width_vartime() < RSA_BITS as u32 {
        return Err(KeyError::RsaTooSmall);
    }
    Ok(())
}

/// A public key's JWK members as raw bytes, from the crates' own encodings.
pub(crate) enum PublicParts {
    /// `EC` `P-256`: the affine coordinates, 32 bytes each.
    P256 { x: Vec<u8>, y: Vec<u8> },
    /// `RSA`: modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// `OKP` `Ed25519`: the 32-byte public key.
    Ed25519 { x: Vec<u8> },
}

fn public_parts(public: &Public) -> PublicParts {
    match public {
        Public::Es256(k) => {
            let point = k.to_sec1_point(false);
            PublicParts::P256 {
                x: point.x().map(|x| x.to_vec()).unwrap_or_default(),
                y: point.y().map(|y| y.to_vec()).unwrap_or_default(),
            }
        }
        Public::Rs256(k) => PublicParts::Rsa {
            n: k.n_bytes().into_vec(),
            e: k.e_bytes().into_vec(),
        },
        Public::EdDsa(k) => PublicParts::Ed25519 {
            x: k.to_bytes().to_vec(),
        },
    }
}

fn public_from_jwk(jwk: &Jwk) -> Result<Public, KeyError> {
    let bad = KeyError::UnsupportedJwk;
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some("P-256")) => {
            let (x, y) = (jwk.x_bytes().ok_or(bad.clone())?, jwk.y_bytes().ok_or(bad)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(KeyError::Malformed(Algorithm::Es256));
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map(Public::Es256)
                .map_err(|_| KeyError::Malformed(Algorithm::Es256))
        }
        ("RSA", None) => {
            let (n, e) = (jwk.n_bytes().ok_or(bad.clone())?, jwk.e_bytes().ok_or(bad)?);
            let malformed = |_| KeyError::Malformed(Algorithm::Rs256);
            let key = rsa::PublicKey::new(
                rsa::BoxedUint::from_be_slice_vartime(&n),
                rsa::BoxedUint::from_be_slice_vartime(&e),
            )
            .map_err(malformed)?;
            check_rsa_size(&key)?;
            Ok(Public::Rs256(key))
        }
        ("OKP", Some("Ed25519")) => {
            let x: [u8; 32] = jwk
                .x_bytes()
                .ok_or(bad)?
                .try_into()
                .map_err(|_| KeyError::Malformed(Algorithm::EdDsa))?;
            ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map(Public::EdDsa)
                .map_err(|_| KeyError::Malformed(Algorithm::EdDsa))
        }
        _ => Err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::CounterRandom;

    #[test]
    fn every_algorithm_round_trips_through_der_and_signs() {
        let mut random = CounterRandom::new(7);
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg, &mut random).unwrap();
            assert_eq!(key.algorithm(), alg);
            let der = key.to_pkcs8_der().unwrap();
            let back = SigningKey::from_pkcs8_der(alg, &der).unwrap();
            assert_eq!(back.kid(), key.kid());
            let spki = key.verifying_key().to_public_key_der().unwrap();
            let public = VerifyingKey::from_public_key_der(alg, &spki).unwrap();
            assert_eq!(&public, key.verifying_key());
            let sig = key.sign(b"input", &mut random);
            assert!(public.verify(b"input", &sig));
            assert!(!public.verify(b"inpuT", &sig));
            let mut flipped = sig.clone();
            flipped[3] ^= 1;
            assert!(!public.verify(b"input", &flipped));
            assert!(!public.verify(b"input", &sig[..sig.len() - 1]));
            // Deterministic: the same input gives the same signature, whatever the randomness.
            assert_eq!(key.sign(b"input", &mut CounterRandom::new(99)), sig);
            // The JWK carries the same key.
            assert_eq!(VerifyingKey::from_jwk(&public.jwk()).unwrap(), public);
        }
    }

    #[test]
    fn a_key_loaded_as_another_algorithm_is_refused() {
        let mut random = CounterRandom::new(1);
        let es = SigningKey::generate(Algorithm::Es256, &mut random).unwrap();
        let der = es.to_pkcs8_der().unwrap();
        assert_eq!(
            SigningKey::from_pkcs8_der(Algorithm::EdDsa, &der).unwrap_err(),
            KeyError::Malformed(Algorithm::EdDsa)
        );
        assert!(SigningKey::from_pkcs8_der(Algorithm::Rs256, &der).is_err());
        assert!(SigningKey::from_pkcs8_der(Algorithm::Es256, b"junk").is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut random = CounterRandom::new(3);
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg, &mut random).unwrap();
            let shown = format!("{key:?}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains(key.kid()));
            assert!(shown.len() < 120, "{shown}");
        }
    }
}
