//! The access-token signing keys and their file.
//!
//! Access tokens are HMAC-signed (see `oauth_proto::access_token`), so the key is the server's most
//! sensitive secret. It lives in `token-keys.json` in the data directory, created with mode 0600 in
//! a directory of mode 0700. The file lists keys newest first: the first signs, the others still
//! verify tokens issued before a rotation. `oauth-server key rotate` adds a new first key; an old
//! key can be dropped by hand once the access token lifetime has passed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oauth_proto::access_token::{KeyRing, TokenKey};
use serde::{Deserialize, Serialize};

/// The key file's name inside the data directory.
pub const FILE_NAME: &str = "token-keys.json";

/// One key as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Key id, carried in every token it signs.
    pub id: u32,
    /// 32 random bytes, unpadded base64url.
    pub secret: String,
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

    /// Adds a fresh signing key in front; the others keep verifying.
    pub fn rotate(&mut self) -> u32 {
        let id = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        self.keys.insert(0, fresh_key(id));
        id
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

/// Reads the key file, if there is one.
pub fn read(dir: &Path) -> Result<Option<KeyFile>, String> {
    let p = path(dir);
    match fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

/// Writes the key file atomically (temporary file, fsync, rename), readable only by the owner.
pub fn write(dir: &Path, file: &KeyFile) -> Result<(), String> {
    let p = path(dir);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let err = |e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    fs::rename(&tmp, &p).map_err(err)?;
    Ok(())
}

/// The key file of `dir`, generated on first start.
pub fn load_or_generate(dir: &Path) -> Result<KeyFile, String> {
    ensure_data_dir(dir)?;
    if let Some(file) = read(dir)? {
        return Ok(file);
    }
    let file = KeyFile::generate();
    write(dir, &file)?;
    tracing::info!(path = %path(dir).display(), "generated a new token signing key");
    Ok(file)
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
        let first = load_or_generate(&dir).unwrap();
        let mode = fs::metadata(dir.join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_generate(&dir).unwrap();
        assert_eq!(first.keys[0].secret, again.keys[0].secret);
        let mut rotated = again.clone();
        assert_eq!(rotated.rotate(), 2);
        write(&dir, &rotated).unwrap();
        let back = read(&dir).unwrap().unwrap();
        assert_eq!(back.keys.len(), 2);
        assert_eq!(back.keys[0].id, 2);
        back.ring().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let f = KeyFile::generate();
        assert!(!format!("{f:?}").contains(&f.keys[0].secret));
    }
}
