//! Server settings and the configuration file.
//!
//! The file is TOML. Its top level holds the engine's settings exactly as
//! [`oauth_proto::config::Config`] names them (so the engine's validation and its
//! `deny_unknown_fields` apply unchanged); an optional `[server]` table holds the settings only the
//! server has ([`ServerSettings`]), and an optional `[store]` table chooses the store
//! ([`StoreSettings`]). Every field is optional. Command-line options override the file.

use std::path::{Path, PathBuf};

use oauth_proto::config::Config;
use serde::{Deserialize, Serialize};

/// Settings of the HTTP server itself (the `[server]` table of the configuration file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// Directory of the signing keys and the persistent store.
    pub data_dir: PathBuf,
    /// Time allowed for a client to send the request head.
    pub header_read_timeout_secs: u64,
    /// Time allowed for a whole request, body and answer included.
    pub request_timeout_secs: u64,
    /// Upper bound on the request head (request line and headers), in bytes (at least 8192).
    pub max_header_bytes: usize,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace_secs: u64,
    /// How often expired records are purged from the store and the session tables.
    pub purge_interval_secs: u64,
    /// How long a browser login session lasts.
    pub session_ttl_secs: u64,
    /// How long an authorization page stays usable.
    pub page_ttl_secs: u64,
    /// Upper bound on live browser sessions (and on pending pages), to bound memory.
    pub max_sessions: usize,
    /// Upper bound on the sessions nobody has signed in to yet from one client address (IPv6:
    /// one /64); past it the address gets 429 on the sign-in pages, and other addresses do not
    /// notice. At most `max_sessions`.
    pub max_anonymous_sessions_per_address: usize,
    /// Upper bound on the pages (requests waiting for a decision) of one client address. At most
    /// `max_sessions`.
    pub max_pages_per_address: usize,
    /// Upper bound on the pages of one browser session; a new page evicts the session's oldest.
    pub max_pages_per_session: usize,
    /// Reverse proxies (addresses or CIDRs) whose `Forwarded` / `X-Forwarded-For` headers name
    /// the client, so that per-address limits see clients rather than the proxy. Empty (the
    /// default): the headers are never read.
    pub trusted_proxies: Vec<String>,
    /// How client metadata documents are fetched (the `[server.cimd]` table).
    pub cimd: crate::cimd::CimdSettings,
    /// Address of the Prometheus `/metrics` listener; unset (the default): no metrics listener.
    /// Kept off the public listener, see `http::metrics`.
    pub metrics_listen: Option<String>,
    /// Peers (addresses or CIDRs) the metrics listener answers; anyone else gets 403.
    pub metrics_allow: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./oauth-data"),
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            max_header_bytes: 16 * 1024,
            shutdown_grace_secs: 20,
            purge_interval_secs: 60,
            session_ttl_secs: 8 * 3600,
            page_ttl_secs: 600,
            max_sessions: 100_000,
            max_anonymous_sessions_per_address: 100,
            max_pages_per_address: 200,
            max_pages_per_session: 16,
            trusted_proxies: Vec::new(),
            cimd: crate::cimd::CimdSettings::default(),
            metrics_listen: None,
            metrics_allow: vec!["127.0.0.1".to_owned(), "::1".to_owned()],
        }
    }
}

impl ServerSettings {
    /// Checks the settings; the first problem found is reported.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("purge_interval_secs", self.purge_interval_secs),
            ("session_ttl_secs", self.session_ttl_secs),
            ("page_ttl_secs", self.page_ttl_secs),
            ("max_sessions", self.max_sessions as u64),
            (
                "max_anonymous_sessions_per_address",
                self.max_anonymous_sessions_per_address as u64,
            ),
            ("max_pages_per_address", self.max_pages_per_address as u64),
            ("max_pages_per_session", self.max_pages_per_session as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("[server] {name} must be greater than 0"));
            }
        }
        for (name, v) in [
            (
                "max_anonymous_sessions_per_address",
                self.max_anonymous_sessions_per_address,
            ),
            ("max_pages_per_address", self.max_pages_per_address),
        ] {
            if v > self.max_sessions {
                return Err(format!("[server] {name} must be at most max_sessions"));
            }
        }
        if self.max_header_bytes < 8192 {
            return Err("[server] max_header_bytes must be at least 8192".to_owned());
        }
        crate::http::proxies::TrustedProxies::parse(&self.trusted_proxies)?;
        self.cimd.validate()?;
        crate::http::metrics::parse_allowed(&self.metrics_allow)?;
        Ok(())
    }
}

/// Which store the server runs on (the `[store]` table): the file store in the data directory
/// unless `postgres` names a database.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// A PostgreSQL connection URL (`postgresql://user:password@host/database`); nodes given the
    /// same one share their state. The file is the place for a password: on the command line
    /// (`--postgres`) it would show in `ps`.
    pub postgres: Option<String>,
    /// PEM certificates trusted, besides Mozilla's roots, to sign the database server's
    /// certificate when the URL says `sslmode=require`, which asks for TLS with the certificate
    /// and the host name verified (libpq's `verify-full`); without `sslmode=require` the
    /// connection is plain and this must not be set.
    pub postgres_ca_file: Option<std::path::PathBuf>,
    /// Connections this node keeps to the database at most (its pool; 16 when absent). Every
    /// node has its own pool and two listening connections besides, and PostgreSQL's
    /// `max_connections` (100 by default) bounds their sum plus the administration commands'
    /// connections: at least nodes times (this + 2), plus a few. A request waits for a free
    /// connection up to 5 s, then is answered 503.
    pub postgres_max_connections: Option<std::num::NonZeroUsize>,
}

impl StoreSettings {
    /// The PostgreSQL store's options these settings ask for.
    pub fn postgres_options(&self) -> oauth_store_postgres::Options {
        let defaults = oauth_store_postgres::Options::default();
        oauth_store_postgres::Options {
            ca_file: self.postgres_ca_file.clone(),
            max_connections: self
                .postgres_max_connections
                .map_or(defaults.max_connections, |n| n.get()),
            ..defaults
        }
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("StoreSettings")
            .field("postgres", &self.postgres.as_ref().map(|_| "<set>"))
            .field("postgres_ca_file", &self.postgres_ca_file)
            .field("postgres_max_connections", &self.postgres_max_connections)
            .finish()
    }
}

/// The engine's and the server's settings, as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileConfig {
    /// The engine's settings (top level of the file).
    pub engine: Config,
    /// The `[server]` table.
    pub server: ServerSettings,
    /// The `[store]` table.
    pub store: StoreSettings,
}

impl Default for FileConfig {
    /// The engine's defaults, except that this server, which fetches client metadata documents
    /// itself ([`crate::cimd`]), accepts them (`client_id_metadata_documents`), and, delivering
    /// logout tokens itself ([`crate::pages::backchannel`]) and framing front-channel logout
    /// pages (`pages::logout`), offers both (`backchannel_logout`,
    /// `frontchannel_logout`).
    fn default() -> Self {
        FileConfig {
            engine: Config {
                client_id_metadata_documents: true,
                backchannel_logout: true,
                frontchannel_logout: true,
                ..Config::default()
            },
            server: ServerSettings::default(),
            store: StoreSettings::default(),
        }
    }
}

impl FileConfig {
    /// Parses the TOML text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let server = match table.remove("server") {
            Some(v) => v
                .try_into::<ServerSettings>()
                .map_err(|e| format!("[server]: {e}"))?,
            None => ServerSettings::default(),
        };
        let store = match table.remove("store") {
            Some(v) => v
                .try_into::<StoreSettings>()
                .map_err(|e| format!("[store]: {e}"))?,
            None => StoreSettings::default(),
        };
        // On unless the file says otherwise, as in `FileConfig::default`.
        table
            .entry("client_id_metadata_documents")
            .or_insert(toml::Value::Boolean(true));
        for on in ["backchannel_logout", "frontchannel_logout"] {
            table.entry(on).or_insert(toml::Value::Boolean(true));
        }
        let engine = toml::Value::Table(table)
            .try_into::<Config>()
            .map_err(|e| e.to_string())?;
        Ok(FileConfig {
            engine,
            server,
            store,
        })
    }

    /// Reads and parses a configuration file; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        match path {
            None => Ok(FileConfig::default()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                Self::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn engine_settings_at_top_level_and_server_table() {
        let c = FileConfig::parse(
            "issuer = \"https://auth.example.com\"\naccess_token_ttl_secs = 600\n\n[server]\nlisten = \"0.0.0.0:9000\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(c.engine.issuer, "https://auth.example.com");
        assert_eq!(c.engine.access_token_ttl_secs, 600);
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.server.trusted_proxies, ["10.0.0.0/8"]);
        assert_eq!(c.server.request_timeout_secs, 30);
    }

    #[test]
    fn per_address_page_bounds_are_validated() {
        let c = FileConfig::parse(
            "[server]\nmax_anonymous_sessions_per_address = 5\nmax_pages_per_address = 7\nmax_pages_per_session = 2\n",
        )
        .unwrap();
        assert_eq!(c.server.max_anonymous_sessions_per_address, 5);
        assert_eq!(c.server.max_pages_per_address, 7);
        assert_eq!(c.server.max_pages_per_session, 2);
        assert!(c.server.validate().is_ok());
        for bad in [
            "max_pages_per_session = 0",
            "max_anonymous_sessions_per_address = 0",
            "max_sessions = 10\nmax_pages_per_address = 11",
        ] {
            let c = FileConfig::parse(&format!("[server]\n{bad}\n")).unwrap();
            assert!(c.server.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_store_table_names_a_database_and_hides_its_password() {
        let c = FileConfig::parse(
            "[store]\npostgres = \"postgresql://oauth:secret@db.example/oauth\"\n",
        )
        .unwrap();
        assert_eq!(
            c.store.postgres.as_deref(),
            Some("postgresql://oauth:secret@db.example/oauth")
        );
        assert!(!format!("{c:?}").contains("secret"));
        assert!(FileConfig::parse("[store]\npostgress = \"x\"").is_err());
    }

    #[test]
    fn the_store_table_sizes_the_pool() {
        let defaults = oauth_store_postgres::Options::default();
        let c = FileConfig::parse("[store]\npostgres_max_connections = 5\n").unwrap();
        assert_eq!(c.store.postgres_options().max_connections, 5);
        assert_eq!(
            StoreSettings::default().postgres_options().max_connections,
            defaults.max_connections
        );
        let zero = FileConfig::parse("[store]\npostgres_max_connections = 0\n").unwrap_err();
        assert!(
            zero.contains("[store]") && zero.contains("nonzero"),
            "{zero}"
        );
    }

    #[test]
    fn typos_are_errors() {
        assert!(FileConfig::parse("isuer = \"x\"").is_err());
        assert!(FileConfig::parse("[server]\nlisen = \"x\"").is_err());
    }
}
