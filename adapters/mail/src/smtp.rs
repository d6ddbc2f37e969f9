//! An auth-only SMTP listener (RFC 5321 with RFC 4954 `AUTH`): greeting, `EHLO`/`HELO`,
//! `AUTH OAUTHBEARER|XOAUTH2` with or without an initial response, `NOOP`, `RSET`, `HELP`, `QUIT`.
//!
//! It exists so that a mail client can check its OAuth setup for submission; it accepts no mail.
//! `MAIL`, `RCPT`, `DATA` and the other transaction commands get a permanent `502 5.5.1`, so that
//! nothing is ever queued or retried. `AUTH` needs `EHLO` first (RFC 4954 §4: it is an ESMTP
//! extension) and may succeed once per session.

use std::future::Future;
use std::sync::Arc;

use oauth_proto::sasl::{Mechanism, Protocol};
use tokio::net::TcpListener;
use tracing::debug;

use crate::auth::{authenticate, Outcome};
use crate::conn::{Conn, End};
use crate::context::{sanitize, MailContext, ServeError};
use crate::listener;

/// Serves SMTP on `listener` until `shutdown` completes, then closes every session with `421`.
///
/// Refuses to start ([`ServeError`]) unless the context's policy allows plaintext and the listener
/// is bound to a loopback address (see [`MailContext::check_listener`]).
pub async fn serve_smtp(
    listener: TcpListener,
    ctx: Arc<MailContext>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let busy = format!(
        "421 4.3.2 {} Too many connections, try again later",
        ctx.hostname()
    );
    listener::run(listener, ctx, shutdown, "smtp", busy, session).await
}

async fn session(mut conn: Conn) {
    let host = conn.ctx().hostname().to_owned();
    let last = match serve(&mut conn).await {
        Ok(()) | Err(End::Eof) => None,
        Err(End::Io(e)) => {
            debug!(peer = %conn.peer(), error = %e, "session ended by an error");
            None
        }
        Err(End::TooLong) => Some("500 5.5.6 Line too long, closing connection".to_owned()),
        Err(End::Timeout) => Some(format!("421 4.4.2 {host} Timeout, closing connection")),
        Err(End::Shutdown) => Some(format!("421 4.3.2 {host} Service shutting down")),
    };
    conn.close(last.as_deref()).await;
}

async fn serve(conn: &mut Conn) -> Result<(), End> {
    let host = conn.ctx().hostname().to_owned();
    conn.send(&format!(
        "220 {host} ESMTP OAuth check only, no mail accepted"
    ))
    .await?;
    let limits = conn.ctx().limits().clone();
    let mut extended = false;
    let mut authenticated = false;
    let mut failures = 0;
    for _ in 0..limits.max_commands {
        let line = conn.read_line().await?;
        let mut parts = line.splitn(2, |&b| b == b' ');
        let verb = parts.next().unwrap_or_default().to_ascii_uppercase();
        let args = parts.next().filter(|a| !a.is_empty());
        match (verb.as_slice(), args) {
            (b"EHLO", Some(client)) => {
                extended = true;
                let client = sanitize(&String::from_utf8_lossy(client));
                conn.send(&format!("250-{host} Hello {client}")).await?;
                conn.send("250-ENHANCEDSTATUSCODES").await?;
                conn.send("250 AUTH OAUTHBEARER XOAUTH2").await?;
            }
            (b"HELO", Some(_)) => {
                extended = false;
                conn.send(&format!("250 {host}")).await?;
            }
            (b"EHLO" | b"HELO", None) => {
                conn.send("501 5.5.4 Syntax: EHLO hostname").await?;
            }
            (b"AUTH", _) if !extended => {
                conn.send("503 5.5.1 Send EHLO first").await?;
            }
            (b"AUTH", _) if authenticated => {
                conn.send("503 5.5.1 Already authenticated").await?;
            }
            (b"AUTH", Some(args)) => {
                let mut words = args.split(|&b| b == b' ');
                let name = String::from_utf8_lossy(words.next().unwrap_or_default()).into_owned();
                let initial = words.next();
                if words.next().is_some() || initial == Some(b"") {
                    conn.send("501 5.5.4 Syntax: AUTH mechanism [initial-response]")
                        .await?;
                    continue;
                }
                let Some(mechanism) = Mechanism::from_name(&name) else {
                    conn.send("504 5.5.4 Unrecognized authentication type")
                        .await?;
                    continue;
                };
                if failures >= limits.max_failures {
                    conn.send(&format!(
                        "421 4.7.0 {host} Too many failed authentications, closing connection"
                    ))
                    .await?;
                    return Ok(());
                }
                match authenticate(conn, Protocol::Smtp, mechanism, initial).await? {
                    Outcome::Success(_) => {
                        authenticated = true;
                        conn.set_authenticated();
                        conn.send(Protocol::Smtp.success()).await?;
                    }
                    Outcome::Failure(reply) => {
                        failures += 1;
                        conn.send(&reply).await?;
                    }
                }
            }
            (b"AUTH", None) => {
                conn.send("501 5.5.4 Syntax: AUTH mechanism [initial-response]")
                    .await?;
            }
            (b"NOOP", _) => conn.send("250 2.0.0 OK").await?,
            (b"RSET", None) => conn.send("250 2.0.0 OK").await?,
            (b"QUIT", None) => {
                conn.send(&format!("221 2.0.0 {host} closing connection"))
                    .await?;
                return Ok(());
            }
            (b"HELP", _) => {
                conn.send("214 2.0.0 Auth-check server: EHLO, AUTH, NOOP, RSET, QUIT")
                    .await?;
            }
            (b"RSET" | b"QUIT", Some(_)) => {
                conn.send("501 5.5.4 Syntax error in parameters").await?;
            }
            (
                b"MAIL" | b"RCPT" | b"DATA" | b"BDAT" | b"VRFY" | b"EXPN" | b"ETRN" | b"TURN"
                | b"STARTTLS",
                _,
            ) => {
                conn.send("502 5.5.1 This server only checks authentication; it accepts no mail")
                    .await?;
            }
            _ => conn.send("500 5.5.2 Command unrecognized").await?,
        }
    }
    conn.send(&format!(
        "421 4.7.0 {host} Too many commands, closing connection"
    ))
    .await?;
    Ok(())
}
