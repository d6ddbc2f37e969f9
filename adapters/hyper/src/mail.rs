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
    let policy = SaslPolicy {
        allow_plaintext: true,
        // The engine's discovery URL, which the route table serves (`routes`).
        openid_configuration: Some(app.engine.endpoints().openid_configuration),
        ..Default::default()
    };
    let host = url::Url::parse(&issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    let ctx = Arc::new(
        MailContext::new(validator, policy, host)
            .with_throttle(app.engine.throttle().clone())
            .with_clock(Arc::new(clock::now)),
    );
    let (stop, stopped) = watch::channel(false);
    let mut listeners = MailListeners {
        stop,
        tasks: Vec::new(),
        addresses: Vec::new(),
    };
    for (name, addr) in [("imap", imap), ("smtp", smtp)] {
        let Some(addr) = addr else { continue };
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
        let ctx = ctx.clone();
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
