//! `oauth-server`: the reference OAuth 2.0 authorization server.
//!
//! A thin adapter: hyper and tokio carry HTTP, and every protocol decision is made by the sans-IO
//! [`oauth_proto::Engine`]. This crate adds only what the engine leaves to its embedder on purpose,
//! in three parts and a few shared pieces:
//!
//! - [`http`]: sockets and limits, the route table, requests and replies, the JSON endpoints, and
//!   the client address behind trusted reverse proxies;
//! - [`pages`]: the pages people see (authorization, device verification), their sign-in with
//!   limits on guessing, and the browser sessions behind them;
//! - [`admin`]: the command line, the setup from options and the configuration file, and the
//!   offline commands on users, clients, keys and the store;
//! - shared by those: the server's state ([`app`]), its settings ([`settings`]), the store's choice
//!   ([`store`]), the clock and randomness ([`clock`], `rng`), password hashing (`password`),
//!   the optional IMAP/SMTP listeners ([`mail`]) and the log ([`log`]).
//!
//! The binary's entry point is [`run`]; tests start a server in-process with
//! [`http::server::start`]. Only what the binary, the integration tests and the fuzz targets name
//! is public; the rest is `pub(crate)`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod app;
pub mod cimd;
pub mod clock;
pub mod http;
pub mod log;
pub mod mail;
pub mod outbound;
pub mod pages;
pub(crate) mod password;
pub(crate) mod rng;
pub mod settings;
pub mod shared_limits;
pub mod store;

#[cfg(test)]
mod test_support;

use std::io::Write;
use std::sync::Arc;

use admin::cli::{self, Cli, Command, KeyCommand, ServeArgs};
use admin::{keys, setup, transfer, users};
use http::server;

/// Runs the command line; returns the process's error message on failure.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        None => serve(&ServeArgs::default()).await,
        Some(Command::Serve(args)) => serve(&args).await,
        Some(Command::User(cmd)) => {
            let data = match &cmd {
                cli::UserCommand::Add { data, .. }
                | cli::UserCommand::Passwd { data, .. }
                | cli::UserCommand::Set { data, .. }
                | cli::UserCommand::Del { data, .. }
                | cli::UserCommand::Unlock { data, .. }
                | cli::UserCommand::List { data }
                | cli::UserCommand::Consents { data, .. }
                | cli::UserCommand::RevokeConsent { data, .. } => data,
            };
            let (engine, store) = setup::prepare_admin(data)?;
            let stdin = std::io::stdin();
            let result = admin::user(
                &cmd,
                &store,
                &engine,
                &mut stdin.lock(),
                &mut std::io::stdout(),
            )
            .await;
            store.flush().await.map_err(|e| e.to_string())?;
            result
        }
        Some(Command::Client(cmd)) => {
            let data = match &cmd {
                cli::ClientCommand::Add { data, .. }
                | cli::ClientCommand::Set { data, .. }
                | cli::ClientCommand::List { data }
                | cli::ClientCommand::Del { data, .. } => data,
            };
            let (engine, store) = setup::prepare_admin(data)?;
            let result = admin::client(&cmd, &store, &engine, &mut std::io::stdout()).await;
            store.flush().await.map_err(|e| e.to_string())?;
            result
        }
        Some(Command::Db(cli::DbCommand::Migrate { data })) => {
            println!("{}", setup::migrate_database(&data).await?);
            Ok(())
        }
        Some(Command::Db(cli::DbCommand::Export { data })) => {
            let (_, store) = setup::prepare_admin(&data)?;
            let count = transfer::export(&store, &mut std::io::stdout().lock()).await?;
            eprintln!("exported {count} records");
            Ok(())
        }
        Some(Command::Db(cli::DbCommand::Import { file, data })) => {
            let (_, store) = setup::prepare_admin(&data)?;
            let count = if file.as_os_str() == "-" {
                transfer::import(&store, std::io::stdin().lock()).await?
            } else {
                let opened = std::fs::File::open(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                transfer::import(&store, std::io::BufReader::new(opened)).await?
            };
            println!("imported {count} records");
            Ok(())
        }
        Some(Command::Key(cmd)) => {
            let (KeyCommand::Rotate { data }
            | KeyCommand::Retire { data, .. }
            | KeyCommand::List { data }) = &cmd;
            // The token lifetimes decide when a rotated-out key may be retired.
            let config = settings::FileConfig::load(data.config.as_deref())?.engine;
            let said = match setup::key_database(data)? {
                Some(pg) => match &cmd {
                    KeyCommand::Rotate { .. } => {
                        keys::db::rotate(&pg, &config, clock::now()).await?
                    }
                    KeyCommand::Retire { id, .. } => {
                        keys::db::retire(&pg, id, &config, clock::now()).await?
                    }
                    KeyCommand::List { .. } => keys::db::list(&pg).await?,
                },
                None => {
                    let dir = setup::data_dir(data)?;
                    match &cmd {
                        KeyCommand::Rotate { .. } => keys::rotate(&dir, &config, clock::now())?,
                        KeyCommand::Retire { id, .. } => {
                            keys::retire(&dir, id, &config, clock::now())?
                        }
                        KeyCommand::List { .. } => keys::list(&dir)?,
                    }
                }
            };
            println!("{said}");
            Ok(())
        }
    }
}

/// `serve`: prepares everything, starts, prints where, and runs until SIGINT or SIGTERM.
pub async fn serve(args: &ServeArgs) -> Result<(), String> {
    let prepared = setup::prepare_serve(args).await?;
    let issuer = prepared.engine.config().issuer_base().to_owned();
    if let Some(password) = users::ensure_admin(&prepared.store, clock::now()).await? {
        // Shown once, on standard output only, never logged.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "created user admin with password {password}\n(shown once; change it with `oauth-server user passwd admin --password-stdin`)"
        );
    }
    if let store::AnyStore::Postgres(pg) = &prepared.store {
        // Password changes and unlocks made on any node (or by an administration command)
        // clear this node's failure counts for the account.
        let throttle = prepared.engine.throttle().clone();
        pg.on_accounts_cleared(Arc::new(move |account: &str| {
            throttle.clear_account(account)
        }));
        // Every node counts every node's failed guesses (`shared_limits` has the bound).
        shared_limits::share_failures(prepared.engine.throttle(), pg).await;
    }
    let store_kind = prepared.store.kind();
    let app = app::App::new(prepared.engine, Arc::new(prepared.store), prepared.settings);
    let running = server::start(app)
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let mail = mail::start(
        running.app().clone(),
        args.imap_listen.as_deref(),
        args.smtp_listen.as_deref(),
    )
    .await?;
    // A closed standard output (a supervisor that stopped reading) must not stop the server, so
    // write errors are ignored rather than panicking as `println!` would.
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "oauth-server listening on http://{}",
            running.local_addr()
        );
        for (name, addr) in &mail.addresses {
            let _ = writeln!(out, "{name} (auth only) listening on {addr}");
        }
        if let Some(addr) = running.metrics_addr() {
            let _ = writeln!(out, "metrics listening on http://{addr}/metrics");
        }
        let _ = writeln!(out, "issuer {issuer}");
        let _ = writeln!(
            out,
            "metadata {issuer}/.well-known/oauth-authorization-server"
        );
        let _ = out.flush();
    }
    tracing::info!(addr = %running.local_addr(), store = store_kind, persistent = prepared.persistent, "listening");
    server::shutdown_signal().await;
    tracing::info!("signal received");
    mail.shutdown().await;
    running.shutdown().await;
    Ok(())
}
