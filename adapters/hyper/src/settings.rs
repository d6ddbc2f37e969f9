//! Server settings and the configuration file.
//!
//! The file is TOML. Its top level holds the engine's settings exactly as
//! [`oauth_proto::config::Config`] names them (so the engine's validation and its
//! `deny_unknown_fields` apply unchanged); an optional `[server]` table holds the settings only the
//! server has ([`ServerSettings`]). Every field of both is optional. Command-line options override
//! the file.

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
    /// Window over which failed logins are counted.
    pub login_window_secs: u64,
    /// Login attempts one account accepts per window before refusing all of them.
    pub login_max_attempts_per_account: u32,
    /// Login attempts one client address may make per window.
    pub login_max_attempts_per_address: u32,
    /// Delay after the first failed login; it doubles with each failure in the window.
    pub login_delay_base_ms: u64,
    /// Upper bound on that delay.
    pub login_delay_max_ms: u64,
    /// Window over which failed guesses at the credential endpoints are counted per address.
    pub credential_failure_window_secs: u64,
    /// Failed client authentications and refused grants one address may cause per window at the
    /// token, introspection, revocation, device authorization and registration endpoints; past
    /// it the address gets 429 until its window ends.
    pub credential_max_failures_per_address: u32,
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
            login_window_secs: 900,
            login_max_attempts_per_account: 10,
            login_max_attempts_per_address: 100,
            login_delay_base_ms: 200,
            login_delay_max_ms: 5_000,
            credential_failure_window_secs: 900,
            credential_max_failures_per_address: 100,
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
            ("login_window_secs", self.login_window_secs),
            ("max_sessions", self.max_sessions as u64),
            (
                "login_max_attempts_per_account",
                self.login_max_attempts_per_account.into(),
            ),
            (
                "login_max_attempts_per_address",
                self.login_max_attempts_per_address.into(),
            ),
            (
                "credential_failure_window_secs",
                self.credential_failure_window_secs,
            ),
            (
                "credential_max_failures_per_address",
                self.credential_max_failures_per_address.into(),
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("[server] {name} must be greater than 0"));
            }
        }
        if self.max_header_bytes < 8192 {
            return Err("[server] max_header_bytes must be at least 8192".to_owned());
        }
        Ok(())
    }
}

/// The engine's and the server's settings, as read from a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileConfig {
    /// The engine's settings (top level of the file).
    pub engine: Config,
    /// The `[server]` table.
    pub server: ServerSettings,
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
        let engine = toml::Value::Table(table)
            .try_into::<Config>()
            .map_err(|e| e.to_string())?;
        Ok(FileConfig { engine, server })
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
            "issuer = \"https://auth.example.com\"\naccess_token_ttl_secs = 600\n\n[server]\nlisten = \"0.0.0.0:9000\"\nlogin_max_attempts_per_account = 3\n",
        )
        .unwrap();
        assert_eq!(c.engine.issuer, "https://auth.example.com");
        assert_eq!(c.engine.access_token_ttl_secs, 600);
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.server.login_max_attempts_per_account, 3);
        assert_eq!(c.server.request_timeout_secs, 30);
    }

    #[test]
    fn typos_are_errors() {
        assert!(FileConfig::parse("isuer = \"x\"").is_err());
        assert!(FileConfig::parse("[server]\nlisen = \"x\"").is_err());
    }
}
