//! An auth-only IMAP listener (RFC 9051 / RFC 3501 subset): greeting, `CAPABILITY`, `NOOP`,
//! `LOGOUT`, and `AUTHENTICATE OAUTHBEARER|XOAUTH2` with or without SASL-IR (RFC 4959).
//!
//! It exists so that a mail client can check its OAuth setup; there are no mailboxes. `LOGIN` is
//! refused (`LOGINDISABLED` is advertised: passwords are not what this server checks), and every
//! other command is answered `BAD` (unknown or not offered) or, once authenticated, `NO [CANNOT]`.
//! Literals are not supported, which is allowed since none of the offered commands needs one.

use std::future::Future;
use std::sync::Arc;

use oauth_proto::sasl::{Mechanism, Protocol};
use tokio::net::TcpListener;
use tracing::debug;

use crate::auth::{authenticate, Outcome};
use crate::conn::{Conn, End};
use crate::context::{sanitize, MailContext, ServeError};
use crate::listener;

const CAPABILITIES: &str = "IMAP4rev1 AUTH=OAUTHBEARER AUTH=XOAUTH2 SASL-IR LOGINDISABLED";
const CAPABILITIES_AFTER_AUTH: &str = "IMAP4rev1";

/// Serves IMAP on `listener` until `shutdown` completes, then closes every session with `* BYE`.
///
/// Refuses to start ([`ServeError`]) unless the context's policy allows plaintext and the listener
/// is bound to a loopback address (see [`MailContext::check_listener`]).
pub async fn serve_imap(
    listener: TcpListener,
    ctx: Arc<MailContext>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let busy = "* BYE Too many connections, try again later".to_owned();
    listener::run(listener, ctx, shutdown, "imap", busy, session).await
}

async fn session(mut conn: Conn) {
    let result = serve(&mut conn).await;
    let last = match result {
        Ok(()) | Err(End::Eof) => None,
        Err(End::Io(e)) => {
            debug!(peer = %conn.peer(), error = %e, "session ended by an error");
            None
        }
        Err(End::TooLong) => {
            let _ = conn.send("* BAD Line too long").await;
            Some("* BYE Closing connection")
        }
        Err(End::Timeout) => Some("* BYE Autologout; idle for too long"),
        Err(End::Shutdown) => Some("* BYE Server shutting down"),
    };
    conn.close(last).await;
}

/// What a tag may be: `1*<any ASTRING-CHAR except "+">` (RFC 9051 §9).
fn valid_tag(tag: &[u8]) -> bool {
    !tag.is_empty()
        && tag
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && !b"(){%*\"\\+".contains(&b))
}

async fn serve(conn: &mut Conn) -> Result<(), End> {
    let host = conn.ctx().hostname().to_owned();
    conn.send(&format!("* OK [CAPABILITY {CAPABILITIES}] {host} ready"))
        .await?;
    let limits = conn.ctx().limits().clone();
    let mut authenticated = false;
    let mut failures = 0;
    for _ in 0..limits.max_commands {
        let line = conn.read_line().await?;
        let mut parts = line.splitn(3, |&b| b == b' ');
        let tag = parts.next().unwrap_or_default();
        if !valid_tag(tag) {
            conn.send("* BAD Missing or invalid tag").await?;
            continue;
        }
        let tag = String::from_utf8_lossy(tag).into_owned();
        let command = parts.next().unwrap_or_default().to_ascii_uppercase();
        let args = parts.next();
        if line.last() == Some(&b'}') {
            conn.send(&format!("{tag} BAD Literals are not supported"))
                .await?;
            continue;
        }
        match (command.as_slice(), args) {
            (b"CAPABILITY", None) => {
                let caps = if authenticated {
                    CAPABILITIES_AFTER_AUTH
                } else {
                    CAPABILITIES
                };
                conn.send(&format!("* CAPABILITY {caps}")).await?;
                conn.send(&format!("{tag} OK CAPABILITY completed")).await?;
            }
            (b"NOOP", None) => conn.send(&format!("{tag} OK NOOP completed")).await?,
            (b"LOGOUT", None) => {
                conn.send(&format!("* BYE {host} logging out")).await?;
                conn.send(&format!("{tag} OK LOGOUT completed")).await?;
                return Ok(());
            }
            (b"AUTHENTICATE", _) if authenticated => {
                conn.send(&format!("{tag} BAD Already authenticated"))
                    .await?;
            }
            (b"AUTHENTICATE", Some(args)) => {
                let mut words = args.split(|&b| b == b' ');
                let name = String::from_utf8_lossy(words.next().unwrap_or_default()).into_owned();
                let initial = words.next();
                if words.next().is_some() || initial == Some(b"") {
                    conn.send(&format!(
                        "{tag} BAD Syntax: AUTHENTICATE mechanism [initial-response]"
                    ))
                    .await?;
                    continue;
                }
                let Some(mechanism) = Mechanism::from_name(&name) else {
                    conn.send(&format!(
                        "{tag} NO [CANNOT] Unsupported authentication mechanism"
                    ))
                    .await?;
                    continue;
                };
                if failures >= limits.max_failures {
                    conn.send("* BYE Too many failed authentications").await?;
                    return Ok(());
                }
                match authenticate(conn, Protocol::Imap, mechanism, initial).await? {
                    Outcome::Success(who) => {
                        authenticated = true;
                        conn.set_authenticated();
                        let text = Protocol::Imap.success();
                        let text = text.strip_prefix("OK ").unwrap_or(text);
                        let identity = sanitize(who.identity());
                        conn.send(&format!(
                            "{tag} OK [CAPABILITY {CAPABILITIES_AFTER_AUTH}] {text}, authenticated as {identity}"
                        ))
                        .await?;
                    }
                    Outcome::Failure(reply) => {
                        failures += 1;
                        conn.send(&format!("{tag} {reply}")).await?;
                    }
                }
            }
            (b"LOGIN", _) => {
                conn.send(&format!(
                    "{tag} NO [PRIVACYREQUIRED] LOGIN is disabled; use AUTHENTICATE OAUTHBEARER or XOAUTH2"
                ))
                .await?;
            }
            (b"CAPABILITY" | b"NOOP" | b"LOGOUT", Some(_)) | (b"AUTHENTICATE", None) => {
                conn.send(&format!("{tag} BAD Syntax error in arguments"))
                    .await?;
            }
            _ if authenticated => {
                conn.send(&format!(
                    "{tag} NO [CANNOT] This server only checks authentication; it has no mailboxes"
                ))
                .await?;
            }
            _ => {
                conn.send(&format!("{tag} BAD Command unknown or not available"))
                    .await?;
            }
        }
    }
    conn.send("* BYE Too many commands on one connection")
        .await?;
    Ok(())
}
