//! Turning options into a running configuration: settings from the file and the command line,
//! signing keys, the engine, and the store.

use std::path::Path;

use oauth_proto::access_token::KeyRing;
use oauth_proto::Engine;

use crate::admin::cli::{DataArgs, ServeArgs};
use crate::admin::keys::{self, KeyFile};
use crate::settings::{FileConfig, ServerSettings, StoreSettings};
use crate::store::AnyStore;

/// What `serve` runs with.
pub struct Prepared {
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: AnyStore,
    /// Server settings.
    pub settings: ServerSettings,
    /// False when everything is kept in memory (by `--memory`, or for want of a persistent store).
    pub persistent: bool,
}

/// Settings for `serve`: defaults, then the file, then the command line.
pub fn serve_settings(args: &ServeArgs) -> Result<FileConfig, String> {
    let mut file = FileConfig::load(args.config.as_deref())?;
    if let Some(listen) = &args.listen {
        file.server.listen = listen.clone();
    }
    if let Some(issuer) = &args.issuer {
        file.engine.issuer = issuer.clone();
    } else if let Some(derived) = derived_issuer(&file) {
        file.engine.issuer = derived;
    }
    if let Some(data) = &args.data {
        file.server.data_dir = data.clone();
    }
    if let Some(url) = &args.postgres {
        file.store.postgres = Some(url.clone());
    }
    if let Some(ca_file) = &args.postgres_ca_file {
        file.store.postgres_ca_file = Some(ca_file.clone());
    }
    file.server.validate()?;
    file.engine.validate().map_err(|e| e.to_string())?;
    Ok(file)
}

/// With the default issuer but another specific listen address, the issuer follows the address
/// (so `--listen 127.0.0.1:9000` alone gives a working server). A wildcard address or port 0
/// names no URL, so the issuer stays as configured.
fn derived_issuer(file: &FileConfig) -> Option<String> {
    let defaults = FileConfig::default();
    if file.engine.issuer != defaults.engine.issuer || file.server.listen == defaults.server.listen
    {
        return None;
    }
    let addr: std::net::SocketAddr = file.server.listen.parse().ok()?;
    (!addr.ip().is_unspecified() && addr.port() != 0).then(|| format!("http://{addr}"))
}

/// Prepares `serve`: the access token keys and the ID token signing keys from (or generated
/// into) the data directory, unless `--memory`, which generates both in memory. The nodes of a
/// PostgreSQL deployment keep them in the database instead (the first one takes the data
/// directory's key files, if any), and each follows their changes while it runs (`keys::db`).
pub async fn prepare_serve(args: &ServeArgs) -> Result<Prepared, String> {
    let FileConfig {
        engine,
        server,
        store,
    } = serve_settings(args)?;
    let (store, persistent) = if args.memory {
        (AnyStore::memory(), false)
    } else if let Some(url) = &store.postgres {
        (
            AnyStore::connect_postgres(url, store.postgres_options()).await?,
            true,
        )
    } else {
        (AnyStore::open_persistent(&server.data_dir)?, true)
    };
    let (key_file, signing, revision) = match &store {
        AnyStore::Postgres(pg) => {
            let (file, signing, revision) =
                keys::db::load_or_generate(pg, &server.data_dir).await?;
            (file, signing, Some(revision))
        }
        _ if args.memory => (KeyFile::generate(), keys::signing::generate()?, None),
        _ => {
            let (file, signing) = keys::load_or_generate_all(&server.data_dir)?;
            (file, signing, None)
        }
    };
    let engine = Engine::new(engine, key_file.ring()?, signing).map_err(|e| e.to_string())?;
    if let (AnyStore::Postgres(pg), Some(revision)) = (&store, revision) {
        keys::db::follow(pg, &engine, revision);
    }
    Ok(Prepared {
        engine,
        store,
        settings: server,
        persistent,
    })
}

/// For the administration commands: the engine (for revocation and client policy) and the data
/// directory's persistent store. The key ring is a throwaway: these commands issue no tokens.
pub fn prepare_admin(args: &DataArgs) -> Result<(Engine, AnyStore), String> {
    let file = FileConfig::load(args.config.as_deref())?;
    let dir = args.data.clone().unwrap_or(file.server.data_dir);
    let engine = admin_engine(file.engine)?;
    let store = match postgres_url(args, &file.store) {
        Some(url) => AnyStore::open_postgres(url, postgres_options(args, &file.store))?,
        None => open_for_admin(&dir)?,
    };
    Ok((engine, store))
}

/// The database the administration commands work on: `--postgres`, else `[store] postgres`.
fn postgres_url<'a>(args: &'a DataArgs, store: &'a StoreSettings) -> Option<&'a str> {
    args.postgres.as_deref().or(store.postgres.as_deref())
}

/// The store's options for the administration commands: `--postgres-ca-file`, else
/// `[store] postgres_ca_file`.
fn postgres_options(args: &DataArgs, store: &StoreSettings) -> oauth_store_postgres::Options {
    StoreSettings {
        postgres_ca_file: args
            .postgres_ca_file
            .clone()
            .or_else(|| store.postgres_ca_file.clone()),
        ..store.clone()
    }
    .postgres_options()
}

/// `db migrate`: brings the database named by `--postgres` or `[store] postgres` to this
/// release's schema.
pub async fn migrate_database(args: &DataArgs) -> Result<String, String> {
    let file = FileConfig::load(args.config.as_deref())?;
    let url = postgres_url(args, &file.store).ok_or(
        "no database to migrate: give --postgres URL or [store] postgres in --config FILE",
    )?;
    let migrated = oauth_store_postgres::migrate(url, &postgres_options(args, &file.store))
        .await
        .map_err(crate::store::postgres_open_error)?;
    Ok(if migrated.from == migrated.to {
        format!(
            "the database is at schema version {}; nothing to do",
            migrated.to
        )
    } else {
        format!(
            "migrated the database from schema version {} to {}",
            migrated.from, migrated.to
        )
    })
}

/// An engine for administration (validated configuration, throwaway keys of both kinds).
pub fn admin_engine(config: oauth_proto::config::Config) -> Result<Engine, String> {
    let ring: KeyRing = KeyFile::generate().ring()?;
    Engine::new(config, ring, keys::signing::generate()?).map_err(|e| e.to_string())
}

fn open_for_admin(dir: &Path) -> Result<AnyStore, String> {
    AnyStore::open_persistent(dir)
}

/// The database the key commands work on, if any (`--postgres`, else `[store] postgres`).
pub fn key_database(
    args: &DataArgs,
) -> Result<Option<oauth_store_postgres::PostgresStore>, String> {
    let file = FileConfig::load(args.config.as_deref())?;
    postgres_url(args, &file.store)
        .map(|url| {
            oauth_store_postgres::PostgresStore::connect_blocking(
                url,
                postgres_options(args, &file.store),
            )
            .map_err(crate::store::postgres_open_error)
        })
        .transpose()
}

/// The data directory the key commands work on.
pub fn data_dir(args: &DataArgs) -> Result<std::path::PathBuf, String> {
    let file = FileConfig::load(args.config.as_deref())?;
    Ok(args.data.clone().unwrap_or(file.server.data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn command_line_overrides_the_file_and_is_validated() {
        let args = ServeArgs {
            listen: Some("127.0.0.1:0".to_owned()),
            issuer: Some("https://auth.example.com".to_owned()),
            memory: true,
            ..Default::default()
        };
        let f = serve_settings(&args).unwrap();
        assert_eq!(f.server.listen, "127.0.0.1:0");
        assert_eq!(f.engine.issuer, "https://auth.example.com");
        let bad = ServeArgs {
            issuer: Some("ftp://x".to_owned()),
            ..Default::default()
        };
        assert!(serve_settings(&bad).is_err());
        let p = prepare_serve(&args).await.unwrap();
        assert!(!p.persistent);
        let moved = ServeArgs {
            listen: Some("127.0.0.1:9000".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            serve_settings(&moved).unwrap().engine.issuer,
            "http://127.0.0.1:9000"
        );
    }
}
