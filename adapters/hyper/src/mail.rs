//! The optional auth-only IMAP and SMTP listeners (`serve --imap-listen`, `--smtp-listen`).
//!
//! They let a mail client check its OAuth setup against this server: the client authenticates
//! with OAUTHBEARER or XOAUTH2 and the token is validated exactly as a mail server embedding the
//! engine would validate it (signature, expiry, revocation view; no store round trip). The
//! listeners speak plaintext, so `oauth-mail-listeners` only binds them to loopback addresses.
//!
//! Failed attempts count in the engine's one limiter ([`oauth_proto::throttle`], the `[throttle]`
//! settings), against the source address only, exactly as failed credentials at the HTTP
//! endpoints do: an address guessing tokens over IMAP is slowed and then refused everywhere, and a
//! user's valid token from another address always logs in, whatever identity the guesser claims.
//! The policy is `SaslPolicy::default()`'s: a mail scope and a user are required.
//!
//! # The listener's resource (RFC 8707)
//! A protected resource configured with the listener's scheme (`[[resources]]` with
//! `resource = "imap://mail.example.com"` for the IMAP listener, `smtp://…` for SMTP) is that
//! listener's audience ([`SaslPolicy::resource`]): once configured, a token issued for another
//! resource (a calendar, the other listener) is refused with `invalid_token`. No setting names it:
//! the scheme says which service an identifier is, which is why the guide uses these URIs. When
//! several identifiers have the listener's scheme, the one whose host is the issuer's is used;
//! when none of them is, the server refuses to start rather than guess. With no such resource the
//! listener accepts tokens without audience, as before resources existed.

use std::net::SocketAddr;
use std::sync::Arc;

use oauth_mail_listeners::{serve_imap, serve_smtp, MailContext, SaslPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock;

/// Running mail listeners.
pub struct MailListeners {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Where each listener listens, for the start-up message.
    pub addresses: Vec<(&'static str, SocketAddr)>,
}

impl MailListeners {
    /// Sends every open session a goodbye and waits for the listeners to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds and starts the requested listeners.
pub async fn start(
    app: Arc<App>,
    imap: Option<&str>,
    smtp: Option<&str>,
) -> Result<MailListeners, String> {
    let issuer = app.engine.config().issuer_base().to_owned();
    let validator: oauth_mail_listeners::Validator = Arc::new({
        let app = app.clone();
        move |token: &str| {
            app.engine
                .validate_access_token(token, clock::now(), &*app.store)
        }
    });
    let host = url::Url::parse(&issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    let configured: Vec<&str> = app
        .engine
        .config()
        .resources
        .iter()
        .map(|r| r.resource.as_str())
        .collect();
    let context = |scheme: &str| -> Result<Arc<MailContext>, String> {
        let policy = SaslPolicy {
            allow_plaintext: true,
            // The engine's discovery URL, which the route table serves (`routes`).
            openid_configuration: Some(app.engine.endpoints().openid_configuration),
            resource: listener_resource(&configured, scheme, &host)?,
            ..Default::default()
        };
        Ok(Arc::new(
            MailContext::new(validator.clone(), policy, host.clone())
                .with_throttle(app.engine.throttle().clone())
                .with_clock(Arc::new(clock::now)),
        ))
    };
    let (stop, stopped) = watch::channel(false);
    let mut listeners = MailListeners {
        stop,
        tasks: Vec::new(),
        addresses: Vec::new(),
    };
    for (name, addr) in [("imap", imap), ("smtp", smtp)] {
        let Some(addr) = addr else { continue };
        let ctx = context(name)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for {name} on {addr}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("{name} listener: {e}"))?;
        ctx.check_listener(&local)
            .map_err(|e| format!("{name} listener on {local}: {e}"))?;
        let mut rx = stopped.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let task = if name == "imap" {
            tokio::spawn(async move {
                if let Err(e) = serve_imap(listener, ctx, shutdown).await {
                    tracing::error!(error = %e, "imap listener stopped");
                }
            })
        } else {
            tokio::spawn(async move {
                if let Err(e) = serve_smtp(listener, ctx, shutdown).await {
                    tracing::error!(error = %e, "smtp listener stopped");
                }
            })
        };
        listeners.tasks.push(task);
        listeners.addresses.push((name, local));
    }
    Ok(listeners)
}

/// The protected resource a listener for `scheme` (`imap`, `smtp`) checks tokens against: the
/// configured identifier with that scheme, or among several, the one on `host` (the module docs).
fn listener_resource(
    configured: &[&str],
    scheme: &str,
    host: &str,
) -> Result<Option<String>, String> {
    let of_scheme: Vec<url::Url> = configured
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .filter(|u| u.scheme() == scheme)
        .collect();
    let chosen = match of_scheme.as_slice() {
        [] => return Ok(None),
        [only] => only,
        several => several
            .iter()
            .find(|u| u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)))
            .ok_or_else(|| {
                format!(
                    "several {scheme}:// resources are configured and none is on the issuer's \
                     host {host}: keep one for this server's {scheme} listener"
                )
            })?,
    };
    // The identifier as configured, not as re-serialized by the URL parser (which may add a `/`).
    Ok(configured
        .iter()
        .find(|r| url::Url::parse(r).is_ok_and(|u| u == *chosen))
        .map(|r| (*r).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::listener_resource;

    #[test]
    fn a_listener_checks_the_resource_of_its_scheme() {
        let configured = [
            "https://mail.example.com/dav",
            "imap://mail.example.com",
            "smtp://mail.example.com",
        ];
        assert_eq!(
            listener_resource(&configured, "imap", "mail.example.com").unwrap(),
            Some("imap://mail.example.com".to_owned())
        );
        assert_eq!(
            listener_resource(&configured, "smtp", "other.example").unwrap(),
            Some("smtp://mail.example.com".to_owned())
        );
        assert_eq!(
            listener_resource(&configured[..1], "imap", "x").unwrap(),
            None
        );
    }

    #[test]
    fn among_several_the_issuers_host_wins_and_no_match_is_refused() {
        let configured = ["imap://a.example", "imap://mail.example.com"];
        assert_eq!(
            listener_resource(&configured, "imap", "MAIL.example.com").unwrap(),
            Some("imap://mail.example.com".to_owned())
        );
        let refused = listener_resource(&configured, "imap", "c.example").unwrap_err();
        assert!(refused.contains("several imap:// resources"), "{refused}");
    }
}
