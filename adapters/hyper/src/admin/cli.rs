//! The command line: `serve` (the default) and the offline administration commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The reference OAuth 2.0 authorization server.
#[derive(Debug, Parser)]
#[command(name = "oauth-server", version, about, long_about = None)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage user accounts (while the server is stopped).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage registered clients (while the server is stopped).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the token and ID token signing keys (while the server is stopped; with --postgres,
    /// while the servers run: they use the new keys within 1 s).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the PostgreSQL database.
    #[command(subcommand)]
    Db(DbCommand),
}

/// Options of `serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file: engine settings at the top level, server settings in `[server]`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Issuer URL, e.g. the public https URL behind a reverse proxy [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Data directory (signing keys, persistent store) [default: ./oauth-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep everything in memory: nothing is read from or written to disk.
    #[arg(long, conflicts_with = "postgres")]
    pub memory: bool,
    /// Keep the state in this PostgreSQL database (`postgresql://user:password@host/db`), shared
    /// by every node given the same one [default: the configuration file's `[store] postgres`,
    /// else the file store in the data directory].
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// PEM certificates trusted, besides Mozilla's roots, to sign the database's certificate
    /// when the URL says `sslmode=require` (TLS, the certificate and host name verified)
    /// [default: the configuration file's `[store] postgres_ca_file`].
    #[arg(long, value_name = "PATH")]
    pub postgres_ca_file: Option<PathBuf>,
    /// Also serve an auth-only IMAP listener (loopback only) for checking mail clients' OAuth setup.
    #[arg(long, value_name = "ADDR")]
    pub imap_listen: Option<String>,
    /// Also serve an auth-only SMTP listener (loopback only) for checking mail clients' OAuth setup.
    #[arg(long, value_name = "ADDR")]
    pub smtp_listen: Option<String>,
}

/// Where the data directory is, for the administration commands.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data directory [default: ./oauth-data, or the configuration file's `[server] data_dir`].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The server's configuration file (for scopes and token lifetimes).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The PostgreSQL database instead of the data directory's store [default: the configuration
    /// file's `[store] postgres`]. No process owns it, so these commands work while servers run.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// PEM certificates trusted to sign the database's certificate with `sslmode=require`
    /// [default: the configuration file's `[store] postgres_ca_file`].
    #[arg(long, value_name = "PATH")]
    pub postgres_ca_file: Option<PathBuf>,
}

/// `db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Bring the PostgreSQL database's schema to this release's version (servers also do it
    /// when they start); refuses a database migrated by a newer release.
    Migrate {
        /// Where the database is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write every record of the store (the data directory's, or PostgreSQL's with --postgres)
    /// to standard output as JSON lines.
    Export {
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Write the records of an export (`db export`) into the PostgreSQL database, in one
    /// transaction; records of the same keys are replaced.
    Import {
        /// The export to read (`-` for standard input).
        file: PathBuf,
        /// Where the database is.
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        /// The user name (also the OAuth subject).
        name: String,
        /// Read the password from standard input (the only way, so it stays out of `ps`).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The user's email address, which introspection reports as `email` (without it, a user
        /// name that is an address counts as the email).
        #[arg(long, value_name = "ADDR")]
        email: Option<String>,
        /// The user's display name ("Alice Example"), which userinfo reports as `name`.
        #[arg(long = "name", value_name = "NAME")]
        display_name: Option<String>,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a user's password and revoke all of the user's tokens.
    Passwd {
        /// The user name.
        name: String,
        /// Read the new password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a user's details (its email address, its display name); revokes nothing.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
        .args(["email", "no_email", "display_name", "no_name"])))]
    Set {
        /// The user name.
        name: String,
        /// Set the email address.
        #[arg(long, value_name = "ADDR", conflicts_with = "no_email")]
        email: Option<String>,
        /// Remove the email address.
        #[arg(long)]
        no_email: bool,
        /// Set the display name.
        #[arg(long = "name", value_name = "NAME", conflicts_with = "no_name")]
        display_name: Option<String>,
        /// Remove the display name.
        #[arg(long)]
        no_name: bool,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a user and revoke all of the user's tokens.
    Del {
        /// The user name.
        name: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Make every running server forget the user's failed sign-ins and token guesses (with
    /// `--postgres`, where servers run while this command does; a file store's server is
    /// stopped while this runs, and a restart forgets every count anyway). Revokes nothing.
    Unlock {
        /// The user name.
        name: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// List users.
    List {
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the clients a user approved, whose next request for the same scope or less needs
    /// no consent page.
    Consents {
        /// The user name.
        name: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Forget a user's consent for a client: the consent page shows again at the client's next
    /// request (tokens already issued stay).
    RevokeConsent {
        /// The user name.
        name: String,
        /// The client id (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        client: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
}

/// A client's back-channel logout registration (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Clone, Default, Args)]
pub struct LogoutArgs {
    /// Where logout tokens are POSTed when a session that gave the client an ID token ends:
    /// https (or http on a loopback IP literal), no fragment, as in a dynamic registration.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Tell the client only of sessions with a `sid` (`backchannel_logout_session_required`).
    #[arg(long, requires = "backchannel_logout_uri")]
    pub backchannel_logout_session_required: bool,
}

impl LogoutArgs {
    /// The registration the options describe, if any.
    pub fn registration(&self) -> Option<crate::admin::clients::BackchannelLogout> {
        self.backchannel_logout_uri
            .as_ref()
            .map(|uri| crate::admin::clients::BackchannelLogout {
                uri: uri.clone(),
                session_required: self.backchannel_logout_session_required,
            })
    }
}

/// `client ...`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints `{"client_id": ..., "client_secret": ...}` (the secret only now).
    Add {
        /// Display name shown on the consent page.
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A public client (native or browser app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// A grant type (repeat for several) [default: authorization_code and refresh_token].
        #[arg(long = "grant-type", value_name = "TYPE")]
        grant_types: Vec<String>,
        /// Space-separated scope the client may request [default: the configured default].
        #[arg(long)]
        scope: Option<String>,
        /// A resource server (e.g. the mail server): may introspect every token, where other
        /// clients see only their own. Confidential clients only.
        #[arg(long)]
        resource_server: bool,
        /// `native` (loopback and private-use scheme redirects only) or `web` (https only), as
        /// in a dynamic registration [default: neither; the general redirect rules].
        #[arg(long, value_name = "TYPE")]
        application_type: Option<String>,
        /// The format of the client's access tokens: `hmac` (the default, fastest) or `jwt`
        /// (RFC 9068, which resource servers validate from the JWKS).
        #[arg(long, value_name = "FORMAT", value_parser = ["hmac", "jwt"])]
        access_token_format: Option<String>,
        /// Back-channel logout.
        #[command(flatten)]
        logout: LogoutArgs,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a client's settings.
    Set {
        /// The client id (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// The format of the client's access tokens from now on: `hmac` or `jwt` (RFC 9068).
        /// Tokens already issued stay valid in their format.
        #[arg(long, value_name = "FORMAT", value_parser = ["hmac", "jwt"])]
        access_token_format: Option<String>,
        /// Back-channel logout.
        #[command(flatten)]
        logout: LogoutArgs,
        /// Stop telling the client of ended sessions (removes its back-channel logout URI).
        #[arg(long, conflicts_with = "backchannel_logout_uri")]
        no_backchannel_logout: bool,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// List clients.
    List {
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a client and revoke everything issued to it.
    Del {
        /// The client id (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// New keys of both kinds (the access tokens' HMAC key and the ID token signing keys); the
    /// old keys keep verifying what they signed.
    Rotate {
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Drop a rotated-out key (a token key's number or a signing key's kid) once nothing it
    /// signed can still be valid; the keys in use are refused.
    Retire {
        /// The token key's number or the signing key's kid (see `key list`). A kid is base64url
        /// and may start with `-`, which is taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the keys: which sign, which were rotated out and when.
    List {
        /// Where the data is.
        #[command(flatten)]
        data: DataArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_key_commands() {
        let c = Cli::try_parse_from(["oauth-server", "key", "retire", "kPrK_qmx", "--data", "/d"])
            .unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Key(KeyCommand::Retire { ref id, .. })) if id == "kPrK_qmx"
        ));
        assert!(Cli::try_parse_from(["oauth-server", "key", "retire"]).is_err());
        for args in [
            &["oauth-server", "client", "del", "-Zc9", "--data", "d"][..],
            &[
                "oauth-server",
                "user",
                "revoke-consent",
                "alice",
                "-Zc9",
                "--data",
                "d",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        // A kid is base64url: one in 64 starts with '-'.
        let dash = Cli::try_parse_from(["oauth-server", "key", "retire", "-9xQ_a", "--data", "d"])
            .unwrap();
        assert!(matches!(
            dash.command,
            Some(Command::Key(KeyCommand::Retire { ref id, .. })) if id == "-9xQ_a"
        ));
        Cli::try_parse_from(["oauth-server", "key", "list"]).unwrap();
        let set = Cli::try_parse_from([
            "oauth-server",
            "client",
            "set",
            "-Zc9",
            "--access-token-format",
            "jwt",
        ])
        .unwrap();
        assert!(matches!(
            set.command,
            Some(Command::Client(ClientCommand::Set { ref id, access_token_format: Some(ref f), .. }))
                if id == "-Zc9" && f == "jwt"
        ));
        assert!(Cli::try_parse_from([
            "oauth-server",
            "client",
            "set",
            "x",
            "--access-token-format",
            "paseto",
        ])
        .is_err());
        Cli::try_parse_from(["oauth-server", "key", "rotate", "--config", "c.toml"]).unwrap();
        // Back-channel logout: the URI with or without session_required; session_required alone
        // or a URI with its removal is refused.
        let add = |extra: &[&str]| {
            let mut args = vec!["oauth-server", "client", "add", "--name", "n"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        let uri = ["--backchannel-logout-uri", "https://a.example/bc"];
        let parsed = add(&[&uri[..], &["--backchannel-logout-session-required"]].concat()).unwrap();
        assert!(matches!(
            parsed.command,
            Some(Command::Client(ClientCommand::Add { ref logout, .. }))
                if logout.registration().is_some_and(|r| r.session_required)
        ));
        assert!(add(&["--backchannel-logout-session-required"]).is_err());
        let set = |extra: &[&str]| {
            let mut args = vec!["oauth-server", "client", "set", "x"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args)
        };
        assert!(set(&["--no-backchannel-logout"]).is_ok());
        assert!(set(&uri).is_ok());
        assert!(set(&[&uri[..], &["--no-backchannel-logout"]].concat()).is_err());
    }

    #[test]
    fn parses_the_documented_forms() {
        let c = Cli::try_parse_from(["oauth-server"]).unwrap();
        assert!(c.command.is_none());
        let c = Cli::try_parse_from([
            "oauth-server",
            "client",
            "add",
            "--name",
            "N",
            "--redirect-uri",
            "https://a/cb",
            "--redirect-uri",
            "https://b/cb",
            "--public",
            "--grant-type",
            "authorization_code",
            "--scope",
            "mail",
            "--data",
            "/tmp/x",
        ])
        .unwrap();
        let rs = Cli::try_parse_from([
            "oauth-server",
            "client",
            "add",
            "--name",
            "Mail server",
            "--grant-type",
            "client_credentials",
            "--resource-server",
        ])
        .unwrap();
        assert!(matches!(
            rs.command,
            Some(Command::Client(ClientCommand::Add {
                resource_server: true,
                ..
            }))
        ));
        match c.command {
            Some(Command::Client(ClientCommand::Add {
                redirect_uris,
                public,
                ..
            })) => {
                assert_eq!(redirect_uris.len(), 2);
                assert!(public);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["oauth-server", "user", "add", "bob"]).is_err());
        Cli::try_parse_from(["oauth-server", "user", "add", "bob", "--password-stdin"]).unwrap();
        Cli::try_parse_from([
            "oauth-server",
            "serve",
            "--memory",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        Cli::try_parse_from(["oauth-server", "serve", "--postgres", "postgresql:///oauth"])
            .unwrap();
        assert!(Cli::try_parse_from([
            "oauth-server",
            "serve",
            "--memory",
            "--postgres",
            "postgresql:///oauth"
        ])
        .is_err());
        let db = Cli::try_parse_from([
            "oauth-server",
            "db",
            "migrate",
            "--postgres",
            "postgresql:///oauth",
        ])
        .unwrap();
        assert!(matches!(
            db.command,
            Some(Command::Db(DbCommand::Migrate { data })) if data.postgres.is_some()
        ));
        Cli::try_parse_from([
            "oauth-server",
            "user",
            "list",
            "--postgres",
            "postgresql:///o",
        ])
        .unwrap();
    }
}
