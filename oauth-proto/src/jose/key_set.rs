//! The server's signing keys: one active key per algorithm, and the retired public keys that
//! still verify what the old keys signed.
//!
//! Rotation ([`KeySet::rotate`]) makes a new active key for an algorithm and keeps only the
//! *public* half of the old one, with the time until which something it signed may still be
//! valid (`verify_until`, from the longest lifetime of anything signed, which the driver knows).
//! The old private key is dropped at once: nothing signs with it again. Retirement
//! ([`KeySet::retire`]) removes a retired public key, and is refused for an active key and before
//! `verify_until`. The published JWK Set ([`KeySet::jwks`]) lists the active keys' and the retired
//! keys' public halves, so relying parties that cache it keep validating across a rotation.
//!
//! [`StoredKeySet`] is the form a driver writes to disk: PKCS#8 for active keys, SubjectPublicKeyInfo
//! for retired ones, both base64url; its `Debug` never shows the private keys. Loading recomputes
//! every `kid` and refuses a file whose stored `kid` does not match its key.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::jwk::JwkSet;
use super::keys::{KeyError, SigningKey, VerifyingKey};
use super::Algorithm;
use crate::random::Random;

/// A retired key's public half, kept for verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    /// The public key.
    pub key: VerifyingKey,
    /// When it stopped signing (Unix seconds).
    pub retired_at: u64,
    /// Until when something it signed may still be valid (Unix seconds).
    pub verify_until: u64,
}

/// Why a key set could not be built or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetError {
    /// A key could not be made, loaded or encoded.
    Key(KeyError),
    /// No active key.
    Empty,
    /// Two active keys for one algorithm.
    TwoActive(Algorithm),
    /// Two keys with one `kid`.
    DuplicateKid(String),
    /// A stored `kid` is not its key's thumbprint, or a stored key is not base64url.
    Corrupt(String),
    /// No key has this `kid`.
    UnknownKid(String),
    /// The key is active: rotate first.
    Active(String),
    /// Something the key signed may be valid until this time (Unix seconds).
    StillInUse {
        /// The key.
        kid: String,
        /// When it may be retired.
        until: u64,
    },
}

impl From<KeyError> for KeySetError {
    fn from(e: KeyError) -> Self {
        KeySetError::Key(e)
    }
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySetError::Key(e) => e.fmt(f),
            KeySetError::Empty => f.write_str("no active signing key"),
            KeySetError::TwoActive(a) => write!(f, "two active {a} keys"),
            KeySetError::DuplicateKid(k) => write!(f, "two keys with kid {k}"),
            KeySetError::Corrupt(k) => write!(f, "stored key {k} does not match its kid"),
            KeySetError::UnknownKid(k) => write!(f, "no signing key has kid {k}"),
            KeySetError::Active(k) => {
                write!(f, "key {k} is active; rotate first, then retire it later")
            }
            KeySetError::StillInUse { kid, until } => write!(
                f,
                "key {kid} may still verify tokens until {until} (Unix time); retire it after that"
            ),
        }
    }
}

impl std::error::Error for KeySetError {}

/// The active signing keys and the retired verifying keys.
#[derive(Clone, Debug)]
pub struct KeySet {
    active: Vec<SigningKey>,
    retired: Vec<RetiredKey>,
}

impl KeySet {
    /// A set from its parts: at least one active key, at most one per algorithm, `kid`s unique.
    pub fn new(active: Vec<SigningKey>, retired: Vec<RetiredKey>) -> Result<KeySet, KeySetError> {
        if active.is_empty() {
            return Err(KeySetError::Empty);
        }
        for (i, k) in active.iter().enumerate() {
            if active[..i].iter().any(|o| o.algorithm() == k.algorithm()) {
                return Err(KeySetError::TwoActive(k.algorithm()));
            }
        }
        let kids: Vec<&str> = active
            .iter()
            .map(SigningKey::kid)
            .chain(retired.iter().map(|r| r.key.kid()))
            .collect();
        for (i, kid) in kids.iter().enumerate() {
            if kids[..i].contains(kid) {
                return Err(KeySetError::DuplicateKid((*kid).to_owned()));
            }
        }
        Ok(KeySet { active, retired })
    }

    /// A fresh set with one active key for each of `algs`.
    pub fn generate(algs: &[Algorithm], random: &mut dyn Random) -> Result<KeySet, KeySetError> {
        let active = algs
            .iter()
            .map(|&a| SigningKey::generate(a, random))
            .collect::<Result<Vec<_>, _>>()?;
        KeySet::new(active, Vec::new())
    }

    /// The active key for `alg`, if the set has one.
    pub fn signing_key(&self, alg: Algorithm) -> Option<&SigningKey> {
        self.active.iter().find(|k| k.algorithm() == alg)
    }

    /// The active keys.
    pub fn active(&self) -> &[SigningKey] {
        &self.active
    }

    /// The retired keys, oldest first.
    pub fn retired(&self) -> &[RetiredKey] {
        &self.retired
    }

    /// The public key named `kid`, active or retired.
    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.active
            .iter()
            .map(SigningKey::verifying_key)
            .chain(self.retired.iter().map(|r| &r.key))
            .find(|k| k.kid() == kid)
    }

    /// The public JWK Set: the active keys, then the retired ones still kept.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .active
                .iter()
                .map(|k| k.verifying_key().jwk())
                .chain(self.retired.iter().map(|r| r.key.jwk()))
                .collect(),
        }
    }

    /// Replaces the active key for `alg` with a fresh one (or adds one, if the set had none for
    /// `alg`). The old key's public half is kept until `now + longest_lifetime_secs`, the longest
    /// that anything it signed can stay valid. Returns the new key's `kid`.
    pub fn rotate(
        &mut self,
        alg: Algorithm,
        now: u64,
        longest_lifetime_secs: u64,
        random: &mut dyn Random,
    ) -> Result<String, KeySetError> {
        let fresh = SigningKey::generate(alg, random)?;
        let kid = fresh.kid().to_owned();
        if let Some(i) = self.active.iter().position(|k| k.algorithm() == alg) {
            let old = std::mem::replace(&mut self.active[i], fresh);
            self.retired.push(RetiredKey {
                key: old.verifying_key().clone(),
                retired_at: now,
                verify_until: now.saturating_add(longest_lifetime_secs),
            });
        } else {
            self.active.push(fresh);
        }
        Ok(kid)
    }

    /// Drops the retired public key `kid`, once nothing it signed can still be valid.
    pub fn retire(&mut self, kid: &str, now: u64) -> Result<RetiredKey, KeySetError> {
        if self.active.iter().any(|k| k.kid() == kid) {
            return Err(KeySetError::Active(kid.to_owned()));
        }
        let i = self
            .retired
            .iter()
            .position(|r| r.key.kid() == kid)
            .ok_or_else(|| KeySetError::UnknownKid(kid.to_owned()))?;
        let until = self.retired[i].verify_until;
        if now < until {
            return Err(KeySetError::StillInUse {
                kid: kid.to_owned(),
                until,
            });
        }
        Ok(self.retired.remove(i))
    }

    /// The storable form.
    pub fn to_stored(&self) -> Result<StoredKeySet, KeySetError> {
        let active = self
            .active
            .iter()
            .map(|k| {
                Ok(StoredActive {
                    alg: k.algorithm(),
                    kid: k.kid().to_owned(),
                    pkcs8: b64().encode(k.to_pkcs8_der()?.as_slice()),
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let retired = self
            .retired
            .iter()
            .map(|r| {
                Ok(StoredRetired {
                    alg: r.key.algorithm(),
                    kid: r.key.kid().to_owned(),
                    spki: b64().encode(r.key.to_public_key_der()?),
                    retired_at: r.retired_at,
                    verify_until: r.verify_until,
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(StoredKeySet { active, retired })
    }

    /// Loads the stored form, checking every `kid` against its key.
    pub fn from_stored(stored: &StoredKeySet) -> Result<KeySet, KeySetError> {
        let corrupt = |kid: &str| KeySetError::Corrupt(kid.to_owned());
        let mut active = Vec::with_capacity(stored.active.len());
        for s in &stored.active {
            let der = zeroize::Zeroizing::new(b64().decode(&s.pkcs8).map_err(|_| corrupt(&s.kid))?);
            let key = SigningKey::from_pkcs8_der(s.alg, &der)?;
            if key.kid() != s.kid {
                return Err(corrupt(&s.kid));
            }
            active.push(key);
        }
        let mut retired = Vec::with_capacity(stored.retired.len());
        for s in &stored.retired {
            let der = b64().decode(&s.spki).map_err(|_| corrupt(&s.kid))?;
            let key = VerifyingKey::from_public_key_der(s.alg, &der)?;
            if key.kid() != s.kid {
                return Err(corrupt(&s.kid));
            }
            retired.push(RetiredKey {
                key,
                retired_at: s.retired_at,
                verify_until: s.verify_until,
            });
        }
        KeySet::new(active, retired)
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// A key set as a driver stores it (e.g. as JSON in an owner-only file).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKeySet {
    /// The active keys, private.
    pub active: Vec<StoredActive>,
    /// The retired keys, public only.
    #[serde(default)]
    pub retired: Vec<StoredRetired>,
}

impl fmt::Debug for StoredKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let active: Vec<String> = self
            .active
            .iter()
            .map(|a| format!("{} {} <redacted>", a.alg, a.kid))
            .collect();
        f.debug_struct("StoredKeySet")
            .field("active", &active)
            .field("retired", &self.retired)
            .finish()
    }
}

/// An active key as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredActive {
    /// Its algorithm.
    pub alg: Algorithm,
    /// Its `kid`, checked on load.
    pub kid: String,
    /// PKCS#8 DER, base64url.
    pub pkcs8: String,
}

impl fmt::Debug for StoredActive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredActive({}, {}, <redacted>)", self.alg, self.kid)
    }
}

/// A retired key as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRetired {
    /// Its algorithm.
    pub alg: Algorithm,
    /// Its `kid`, checked on load.
    pub kid: String,
    /// SubjectPublicKeyInfo DER, base64url.
    pub spki: String,
    /// When it stopped signing (Unix seconds).
    pub retired_at: u64,
    /// Until when something it signed may still be valid (Unix seconds).
    pub verify_until: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::CounterRandom;

    fn set(random: &mut CounterRandom) -> KeySet {
        KeySet::generate(&Algorithm::ALL, random).unwrap()
    }

    #[test]
    fn rotation_keeps_the_old_public_key_until_retired() {
        let mut random = CounterRandom::new(11);
        let mut keys = set(&mut random);
        let old = keys.signing_key(Algorithm::Es256).unwrap().clone();
        let new_kid = keys
            .rotate(Algorithm::Es256, 1000, 600, &mut random)
            .unwrap();
        assert_eq!(keys.signing_key(Algorithm::Es256).unwrap().kid(), new_kid);
        assert_ne!(new_kid, old.kid());
        // The old key still verifies and is still published; the others did not move.
        assert_eq!(keys.verifying_key(old.kid()), Some(old.verifying_key()));
        assert_eq!(keys.jwks().keys.len(), 4);
        assert_eq!(keys.active().len(), 3);
        // Refused while what it signed may be valid, and for the active key.
        assert_eq!(
            keys.retire(old.kid(), 1599).unwrap_err(),
            KeySetError::StillInUse {
                kid: old.kid().to_owned(),
                until: 1600
            }
        );
        assert_eq!(
            keys.retire(&new_kid, 5000).unwrap_err(),
            KeySetError::Active(new_kid.clone())
        );
        assert!(matches!(
            keys.retire("nope", 5000),
            Err(KeySetError::UnknownKid(_))
        ));
        let gone = keys.retire(old.kid(), 1600).unwrap();
        assert_eq!(gone.retired_at, 1000);
        assert_eq!(keys.verifying_key(old.kid()), None);
        assert_eq!(keys.jwks().keys.len(), 3);
    }

    #[test]
    fn stored_form_round_trips_and_refuses_tampering() {
        let mut random = CounterRandom::new(12);
        let mut keys = set(&mut random);
        keys.rotate(Algorithm::Rs256, 10, 20, &mut random).unwrap();
        let stored = keys.to_stored().unwrap();
        let json = serde_json::to_string(&stored).unwrap();
        let back = KeySet::from_stored(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.jwks(), keys.jwks());
        assert_eq!(back.retired(), keys.retired());
        let shown = format!("{stored:?}");
        for a in &stored.active {
            assert!(!shown.contains(&a.pkcs8), "{shown}");
        }
        let mut wrong_kid = stored.clone();
        wrong_kid.active[0].kid = stored.active[1].kid.clone();
        assert!(matches!(
            KeySet::from_stored(&wrong_kid),
            Err(KeySetError::Corrupt(_))
        ));
        let mut swapped = stored.clone();
        swapped.active[0].alg = Algorithm::EdDsa;
        assert!(KeySet::from_stored(&swapped).is_err());
        let mut two = stored.clone();
        two.active.push(stored.active[0].clone());
        assert!(KeySet::from_stored(&two).is_err());
    }

    #[test]
    fn an_empty_set_or_two_keys_for_one_algorithm_are_refused() {
        let mut random = CounterRandom::new(13);
        assert_eq!(KeySet::new(vec![], vec![]).unwrap_err(), KeySetError::Empty);
        let a = SigningKey::generate(Algorithm::EdDsa, &mut random).unwrap();
        let b = SigningKey::generate(Algorithm::EdDsa, &mut random).unwrap();
        assert_eq!(
            KeySet::new(vec![a, b], vec![]).unwrap_err(),
            KeySetError::TwoActive(Algorithm::EdDsa)
        );
    }
}
