//! The keys of a PostgreSQL deployment, in its database (`oauth_store_postgres`'s `keys` module
//! has the table, how the first keys are agreed on, the bound and what reading the table gives).
//!
//! The database holds the same two documents as the files: the JSON of `token-keys.json`
//! ([`KeyFile`]) and of `signing-keys.json` ([`signing`]). Every node loads them at start
//! ([`load_or_generate`]; the first node on an empty database stores the keys of its data
//! directory if it has key files, so a deployment moved from the file store keeps its tokens
//! valid, else fresh keys; nodes starting together agree on one set), and [`follow`] swaps a
//! running node's keys ([`Engine::set_keys`]) whenever `oauth-server key rotate|retire
//! --postgres` changes them: [`rotate`] and [`retire`] make the same changes as on the files,
//! in one transaction that tells every node. A token signed by the old keys keeps validating
//! everywhere (they stay in both sets until retired); new tokens are signed with the new ones at
//! every node within the follower's bound.
//!
//! Since the nodes run meanwhile, a rotation's time is when it was made, and a rotated-out key
//! may be retired an access token lifetime after it, as with the files.

use std::path::Path;
use std::sync::Arc;

use oauth_proto::config::Config;
use oauth_proto::jose::KeySet;
use oauth_proto::Engine;
use oauth_store_postgres::{PostgresStore, ServerKeys};

use super::{describe, rotate_signing, signing, KeyFile};

/// The keys as documents, for the database.
fn encode(file: &KeyFile, set: &KeySet) -> Result<ServerKeys, String> {
    Ok(ServerKeys {
        revision: 0,
        token_keys: serde_json::to_string_pretty(file).map_err(|e| e.to_string())?,
        signing_keys: signing::to_json(set)?,
    })
}

/// The keys the database's documents hold.
fn decode(stored: &ServerKeys) -> Result<(KeyFile, KeySet), String> {
    let file: KeyFile = serde_json::from_str(&stored.token_keys)
        .map_err(|e| format!("the database's token keys: {}", super::json_error(&e)))?;
    let set = signing::from_json(&stored.signing_keys)
        .map_err(|e| format!("the database's signing keys: {e}"))?;
    Ok((file, set))
}

/// The database's keys; when it has none, those of the key files in `dir` (a deployment moving
/// from the file store), or fresh ones, are stored first, unless another node starting at the
/// same moment stores its own, which this node then uses. With the revision read, which
/// [`follow`] starts from.
pub async fn load_or_generate(
    pg: &PostgresStore,
    dir: &Path,
) -> Result<(KeyFile, KeySet, i64), String> {
    let stored = match pg.keys().await.map_err(|e| e.to_string())? {
        Some(stored) => stored,
        None => {
            let file = super::read(dir)?;
            let from_files = file.is_some();
            let set = match signing::read(dir)? {
                Some(set) => set,
                None => signing::generate()?,
            };
            let offered = encode(&file.unwrap_or_else(KeyFile::generate), &set)?;
            let stored = pg
                .keys_or_insert(offered.clone())
                .await
                .map_err(|e| e.to_string())?;
            if stored.token_keys == offered.token_keys {
                if from_files {
                    tracing::info!(
                        dir = %dir.display(),
                        "stored the data directory's keys in the database"
                    );
                } else {
                    tracing::info!("generated the token and ID token signing keys in the database");
                }
            }
            stored
        }
    };
    let (file, set) = decode(&stored)?;
    Ok((file, set, stored.revision))
}

/// Keeps `engine`'s keys those of the database: each change after `revision` (made by a key
/// command, from any machine) replaces them, within the follower's bound. Keys that do not
/// decode, or that the engine refuses, leave the keys in use, with one error line in the log.
pub fn follow(pg: &PostgresStore, engine: &Engine, revision: i64) {
    let engine = engine.clone();
    pg.on_keys_changed(
        revision,
        Arc::new(move |stored: ServerKeys| {
            let applied = decode(&stored).and_then(|(file, set)| {
                let ring = file.ring()?;
                engine.set_keys(ring, set).map_err(|e| e.to_string())?;
                Ok(file.keys.first().map_or(0, |k| k.id))
            });
            match applied {
                Ok(key) => tracing::info!(
                    revision = stored.revision,
                    token_key = key,
                    "the keys changed in the database; now in use"
                ),
                Err(e) => tracing::error!(
                    revision = stored.revision,
                    "the keys changed in the database, but cannot be used (the old ones stay): {e}"
                ),
            }
        }),
    );
}

/// Changes the database's keys with `change` (on the decoded keys), in one transaction that
/// every node hears of.
async fn change<F>(pg: &PostgresStore, mut change: F) -> Result<String, String>
where
    F: FnMut(&mut KeyFile, &mut KeySet) -> Result<String, String> + Send + 'static,
{
    pg.change_keys(move |stored| {
        let (mut file, mut set) = decode(&stored)?;
        let said = change(&mut file, &mut set)?;
        Ok((encode(&file, &set)?, said))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// `key rotate --postgres`: a new HMAC token key and a new signing key for every algorithm,
/// used by every running node within the bound; the old ones keep verifying.
pub async fn rotate(pg: &PostgresStore, config: &Config, now: u64) -> Result<String, String> {
    let config = config.clone();
    change(pg, move |file, set| {
        let id = file.rotate(now);
        let kids = rotate_signing(set, &config, now)?;
        Ok(format!(
            "new token key {id}; new signing keys {kids}; the running servers use them within 1 s"
        ))
    })
    .await
}

/// `key retire ID --postgres`: as [`super::retire`], on the database's keys.
pub async fn retire(
    pg: &PostgresStore,
    id: &str,
    config: &Config,
    now: u64,
) -> Result<String, String> {
    let id = id.to_owned();
    let lifetime = config.access_token_ttl_secs;
    change(pg, move |file, set| {
        if let Ok(number) = id.parse::<u32>() {
            file.retire(number, now, lifetime)?;
            return Ok(format!("retired token key {number}"));
        }
        set.retire(&id, now).map_err(|e| e.to_string())?;
        Ok(format!("retired signing key {id}"))
    })
    .await
}

/// `key list --postgres`: the database's keys, as [`super::list`] shows the files'.
pub async fn list(pg: &PostgresStore) -> Result<String, String> {
    let stored = pg
        .keys()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the database holds no keys yet; start a server on it once")?;
    let (file, set) = decode(&stored)?;
    Ok(describe(&file, Some(&set)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_a_bad_one_is_reported_without_its_values() {
        let (file, set) = (KeyFile::generate(), signing::generate().unwrap());
        let stored = encode(&file, &set).unwrap();
        let (back, back_set) = decode(&stored).unwrap();
        assert_eq!(back.keys[0].secret, file.keys[0].secret);
        assert_eq!(back_set.jwks(), set.jwks());

        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
        for (token_keys, signing_keys) in [
            (
                format!(r#"{{"keys":[{{"id":"{secret}"}}]}}"#),
                stored.signing_keys.clone(),
            ),
            (
                stored.token_keys.clone(),
                format!(r#"{{"active":"{secret}"}}"#),
            ),
        ] {
            let bad = ServerKeys {
                revision: 2,
                token_keys,
                signing_keys,
            };
            let said = decode(&bad).expect_err("refused");
            assert!(!said.contains(secret), "{said}");
            assert!(said.contains("line 1"), "{said}");
        }
    }
}
