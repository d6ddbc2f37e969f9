//! The ID token signing keys' file, `signing-keys.json`, beside `token-keys.json`.
//!
//! It holds the engine's [`StoredKeySet`]: one active private key per algorithm (ES256, RS256,
//! EdDSA) as PKCS#8, and the retired keys' public halves with the time until which what they
//! signed may still be valid. It is written like the token key file: owner-only (0600), in the
//! 0700 data directory, atomically. The keys are generated here, on first start, from the
//! operating system's randomness ([`OsRandom`]); the engine only computes with them.

use std::path::Path;

use oauth_proto::jose::{Algorithm, KeySet, StoredKeySet};

use crate::rng::OsRandom;

/// The signing key file's name inside the data directory.
pub const FILE_NAME: &str = "signing-keys.json";

/// Reads the signing key file, if there is one.
pub fn read(dir: &Path) -> Result<Option<KeySet>, String> {
    let p = dir.join(FILE_NAME);
    let Some(text) = super::read_text(&p)? else {
        return Ok(None);
    };
    from_json(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", p.display()))
}

/// The set a key document (the file's content) holds. A document that does not parse is
/// reported by position only: serde's message may quote a value, which may be a private key.
pub fn from_json(text: &str) -> Result<KeySet, String> {
    let stored: StoredKeySet = serde_json::from_str(text).map_err(|e| super::json_error(&e))?;
    KeySet::from_stored(&stored).map_err(|e| e.to_string())
}

/// The key document of a set (the file's content).
pub fn to_json(keys: &KeySet) -> Result<String, String> {
    let stored = keys.to_stored().map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&stored).map_err(|e| e.to_string())
}

/// Writes the signing key file atomically, readable only by the owner.
pub fn write(dir: &Path, keys: &KeySet) -> Result<(), String> {
    super::write_private(dir, FILE_NAME, &to_json(keys)?)
}

/// A fresh set: one key for each algorithm.
pub fn generate() -> Result<KeySet, String> {
    KeySet::generate(&Algorithm::ALL, &mut OsRandom).map_err(|e| e.to_string())
}

/// The signing keys of `dir`, generated on first start. Expects the directory to exist.
pub fn load_or_generate(dir: &Path) -> Result<KeySet, String> {
    if let Some(keys) = read(dir)? {
        return Ok(keys);
    }
    let keys = generate()?;
    write(dir, &keys)?;
    tracing::info!(path = %dir.join(FILE_NAME).display(), "generated new ID token signing keys");
    Ok(keys)
}
