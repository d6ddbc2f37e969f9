//! The server's keys and their files: the access tokens' HMAC keys and the ID tokens' signing keys.
//!
//! Access tokens are HMAC-signed (see `oauth_proto::access_token`), so that key is the server's most
//! sensitive secret. It lives in `token-keys.json` in the data directory, created with mode 0600 in
//! a directory of mode 0700. The file lists keys newest first: the first signs, the others still
//! verify tokens issued before a rotation, each with the time it was rotated out.
//!
//! The asymmetric ID token signing keys (ES256, RS256, EdDSA) live beside it in
//! `signing-keys.json` ([`signing`]), generated on first start as well.
//!
//! With PostgreSQL the same two documents live in the database instead ([`db`]), where every
//! node reads them and a rotation reaches the running nodes.
//!
//! The key commands ([`rotate`], [`retire`], [`list`]) run while the server is stopped, so the
//! time of a rotation is the time the old keys stopped signing. `oauth-server key rotate`
//! rotates both kinds at once; `oauth-server key retire ID` drops a rotated-out key once nothing
//! it signed can still be valid (an access token lifetime after its rotation), and refuses the
//! keys in use.

pub mod db;
pub mod signing;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oauth_proto::access_token::{KeyRing, TokenKey};
use oauth_proto::config::Config;
use oauth_proto::jose::{Algorithm, KeySet};
use serde::{Deserialize, Serialize};

use crate::rng::OsRandom;

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "token-keys.json";

/// One key as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id, carried in every token it signs.
    pub id: u32,
    /// 32 random bytes, unpadded base64url.
    pub secret: String,
    /// When it was rotated out (Unix seconds); none for the signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredKey({}, <redacted>)", self.id)
    }
}

/// The key file's content: newest (signing) key first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// The keys, newest first.
    pub keys: Vec<StoredKey>,
}

impl KeyFile {
    /// A file with one fresh key.
    pub fn generate() -> Self {
        KeyFile {
            keys: vec![fresh_key(1)],
        }
    }

    /// Adds a fresh signing key in front; the others keep verifying. `now` is when the old
    /// signing key stopped signing.
    pub fn rotate(&mut self, now: u64) -> u32 {
        self.stamp_unknown_retirements(now);
        if let Some(first) = self.keys.first_mut() {
            first.retired_at = Some(now);
        }
        let id = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        self.keys.insert(0, fresh_key(id));
        id
    }

    /// Rotated-out keys from a file written before rotation times were recorded are taken as
    /// rotated out `now`: the safe guess, which waits a full lifetime before retiring them.
    /// Returns whether any key was stamped.
    pub fn stamp_unknown_retirements(&mut self, now: u64) -> bool {
        let mut stamped = false;
        for k in self.keys.iter_mut().skip(1) {
            if k.retired_at.is_none() {
                k.retired_at = Some(now);
                stamped = true;
            }
        }
        stamped
    }

    /// Drops the rotated-out key `id` once `lifetime_secs` (the access token lifetime) has
    /// passed since its rotation; refuses the signing key.
    pub fn retire(&mut self, id: u32, now: u64, lifetime_secs: u64) -> Result<(), String> {
        let i = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| format!("no token key has id {id}"))?;
        if i == 0 {
            return Err(format!(
                "token key {id} signs access tokens; rotate first, then retire it later"
            ));
        }
        let until = self.keys[i]
            .retired_at
            .unwrap_or(now)
            .saturating_add(lifetime_secs);
        if now < until {
            return Err(format!(
                "token key {id} may still verify access tokens until {until} (Unix time); retire it after that"
            ));
        }
        self.keys.remove(i);
        Ok(())
    }

    /// The engine's key ring.
    pub fn ring(&self) -> Result<KeyRing, String> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&k.secret)
                .map_err(|_| format!("key {} is not base64url", k.id))?;
            keys.push(TokenKey::new(k.id, &secret).map_err(|e| e.to_string())?);
        }
        let mut keys = keys.into_iter();
        let signing = keys.next().ok_or("the key file lists no key")?;
        KeyRing::new(signing, keys.collect()).map_err(|e| e.to_string())
    }
}

fn fresh_key(id: u32) -> StoredKey {
    StoredKey {
        id,
        secret: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::rng::bytes::<32>()),
        retired_at: None,
    }
}

/// Creates the data directory (mode 0700) if it does not exist.
pub fn ensure_data_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

fn read_text(p: &Path) -> Result<Option<String>, String> {
    match fs::read_to_string(p) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

/// Reads the key file, if there is one.
pub fn read(dir: &Path) -> Result<Option<KeyFile>, String> {
    let p = path(dir);
    read_text(&p)?
        .map(|text| serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()
}

/// Writes `text` to `dir/name` atomically (temporary file, fsync, rename), readable only by the
/// owner.
fn write_private(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let p = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let err = |e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, &p).map_err(err)?;
    Ok(())
}

/// Writes the key file atomically, readable only by the owner.
pub fn write(dir: &Path, file: &KeyFile) -> Result<(), String> {
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    write_private(dir, FILE_NAME, &text)
}

/// Both key files of `dir`, each generated on first start and checked on every start: the
/// access token keys and the ID token signing keys. The one place `serve` loads its keys from.
pub fn load_or_generate_all(dir: &Path) -> Result<(KeyFile, KeySet), String> {
    ensure_data_dir(dir)?;
    let file = match read(dir)? {
        Some(file) => file,
        None => {
            let file = KeyFile::generate();
            write(dir, &file)?;
            tracing::info!(path = %path(dir).display(), "generated a new token signing key");
            file
        }
    };
    Ok((file, signing::load_or_generate(dir)?))
}

/// The longest that anything an ID token signing key signs stays valid: ID tokens (and JWT
/// access tokens, when they come) live no longer than an access token.
fn signed_lifetime(config: &Config) -> u64 {
    config.access_token_ttl_secs
}

/// `key rotate`: a new HMAC token key and a new signing key for every algorithm; the old ones
/// keep verifying. Returns what was done, for the operator.
pub fn rotate(dir: &Path, config: &Config, now: u64) -> Result<String, String> {
    let mut file = read(dir)?.ok_or_else(|| no_keys(dir))?;
    let id = file.rotate(now);
    // A data directory from before signing keys existed gets its first ones.
    let mut signing = match signing::read(dir)? {
        Some(keys) => keys,
        None => signing::generate()?,
    };
    let kids = rotate_signing(&mut signing, config, now)?;
    // The signing keys first: if the second write fails, the old token key still signs.
    signing::write(dir, &signing)?;
    write(dir, &file)?;
    Ok(format!(
        "new token key {id}; new signing keys {kids}; restart the server to use them"
    ))
}

/// A new signing key for every algorithm, the old ones kept for verifying; their `alg kid`s.
fn rotate_signing(signing: &mut KeySet, config: &Config, now: u64) -> Result<String, String> {
    let mut kids = Vec::new();
    for alg in Algorithm::ALL {
        let kid = signing
            .rotate(alg, now, signed_lifetime(config), &mut OsRandom)
            .map_err(|e| e.to_string())?;
        kids.push(format!("{alg} {kid}"));
    }
    Ok(kids.join(", "))
}

/// `key retire ID`: drops a rotated-out key, a token key by its number or a signing key by its
/// `kid`, once nothing it signed can still be valid.
pub fn retire(dir: &Path, id: &str, config: &Config, now: u64) -> Result<String, String> {
    if let Ok(number) = id.parse::<u32>() {
        let mut file = read(dir)?.ok_or_else(|| no_keys(dir))?;
        let stamped = file.stamp_unknown_retirements(now);
        let result = file.retire(number, now, config.access_token_ttl_secs);
        if result.is_ok() || stamped {
            write(dir, &file)?;
        }
        return result.map(|()| format!("retired token key {number}"));
    }
    let mut signing = signing::read(dir)?.ok_or_else(|| no_keys(dir))?;
    signing.retire(id, now).map_err(|e| e.to_string())?;
    signing::write(dir, &signing)?;
    Ok(format!("retired signing key {id}"))
}

/// `key list`: every key, one a line, signing keys first.
pub fn list(dir: &Path) -> Result<String, String> {
    let file = read(dir)?.ok_or_else(|| no_keys(dir))?;
    Ok(describe(&file, signing::read(dir)?.as_ref()))
}

/// Every key, one a line, signing keys first.
fn describe(file: &KeyFile, signing: Option<&KeySet>) -> String {
    let mut out = Vec::new();
    for (i, k) in file.keys.iter().enumerate() {
        out.push(match (i, k.retired_at) {
            (0, _) => format!("token   {}  signing", k.id),
            (_, Some(t)) => format!("token   {}  rotated out at {t}", k.id),
            (_, None) => format!("token   {}  rotated out", k.id),
        });
    }
    if let Some(signing) = signing {
        for k in signing.active() {
            out.push(format!("{:<7} {}  signing", k.algorithm(), k.kid()));
        }
        for r in signing.retired() {
            out.push(format!(
                "{:<7} {}  rotated out at {}, verifies until {}",
                r.key.algorithm(),
                r.key.kid(),
                r.retired_at,
                r.verify_until
            ));
        }
    }
    out.join("\n")
}

/// A key document's parse error, by position only: serde's message may quote a value, which
/// may be a secret.
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "not a valid key document ({:?} error at line {}, column {})",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn no_keys(dir: &Path) -> String {
    format!(
        "{} has no key file yet; start the server once",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "oauth-server-keys-{name}-{}-{}",
            std::process::id(),
            crate::rng::token()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn generated_once_private_and_rotatable() {
        let dir = temp_dir("gen");
        let first = load_or_generate_all(&dir).unwrap().0;
        let mode = fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_generate_all(&dir).unwrap().0;
        assert_eq!(first.keys[0].secret, again.keys[0].secret);
        let mut rotated = again.clone();
        assert_eq!(rotated.rotate(100), 2);
        write(&dir, &rotated).unwrap();
        let back = read(&dir).unwrap().unwrap();
        assert_eq!(back.keys.len(), 2);
        assert_eq!(back.keys[0].id, 2);
        back.ring().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn start_rotate_and_retire_both_kinds() {
        let dir = temp_dir("rotate");
        let config = Config::default();
        let ttl = config.access_token_ttl_secs;
        let (_, first) = load_or_generate_all(&dir).unwrap();
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir.join(signing::FILE_NAME)), 0o600);
        assert_eq!(mode(&dir) & 0o077, 0);
        assert_eq!(first.active().len(), 3);
        // The second start loads the same keys.
        let (_, again) = load_or_generate_all(&dir).unwrap();
        assert_eq!(again.jwks(), first.jwks());
        let old_es = first
            .signing_key(Algorithm::Es256)
            .unwrap()
            .kid()
            .to_owned();

        let said = rotate(&dir, &config, 1000).unwrap();
        assert!(said.contains("new token key 2"), "{said}");
        let (tokens, rotated) = load_or_generate_all(&dir).unwrap();
        assert_eq!(mode(&dir.join(signing::FILE_NAME)), 0o600);
        assert_eq!(tokens.keys[0].id, 2);
        assert_eq!(tokens.keys[1].retired_at, Some(1000));
        tokens.ring().unwrap();
        // New active keys; the old public keys are still published.
        assert_ne!(rotated.signing_key(Algorithm::Es256).unwrap().kid(), old_es);
        assert!(rotated.verifying_key(&old_es).is_some());
        assert_eq!(rotated.jwks().keys.len(), 6);
        let listed = list(&dir).unwrap();
        assert!(listed.contains(&old_es) && listed.contains("token   2  signing"));

        // The keys in use are refused; the old ones only once what they signed has expired.
        let active = rotated
            .signing_key(Algorithm::EdDsa)
            .unwrap()
            .kid()
            .to_owned();
        assert!(retire(&dir, &active, &config, 1000 + ttl)
            .unwrap_err()
            .contains("active"));
        assert!(retire(&dir, "2", &config, 1000 + ttl).is_err());
        assert!(retire(&dir, &old_es, &config, 1000 + ttl - 1)
            .unwrap_err()
            .contains("until"));
        assert!(retire(&dir, "1", &config, 1000 + ttl - 1)
            .unwrap_err()
            .contains("until"));
        retire(&dir, &old_es, &config, 1000 + ttl).unwrap();
        retire(&dir, "1", &config, 1000 + ttl).unwrap();
        assert!(retire(&dir, "1", &config, 1000 + ttl).is_err());
        let (tokens, after) = load_or_generate_all(&dir).unwrap();
        assert_eq!(tokens.keys.len(), 1);
        assert!(after.verifying_key(&old_es).is_none());
        assert_eq!(after.jwks().keys.len(), 5);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir.join(signing::FILE_NAME)), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_rotated_before_times_were_recorded_waits_a_full_lifetime() {
        let dir = temp_dir("legacy");
        ensure_data_dir(&dir).unwrap();
        let mut file = KeyFile::generate();
        file.keys.push(fresh_key(7));
        write(&dir, &file).unwrap();
        let config = Config::default();
        let ttl = config.access_token_ttl_secs;
        assert!(retire(&dir, "7", &config, 500).is_err());
        // The refusal recorded the safe guess, so the wait ends one lifetime later.
        assert_eq!(read(&dir).unwrap().unwrap().keys[1].retired_at, Some(500));
        retire(&dir, "7", &config, 500 + ttl).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let f = KeyFile::generate();
        assert!(!format!("{f:?}").contains(&f.keys[0].secret));
    }
}
