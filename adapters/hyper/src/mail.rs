//! The optional auth-only IMAP and SMTP listeners (`serve --imap-listen`, `--smtp-listen`).
//!
//! They let a mail client check its OAuth setup against this server: the client authenticates
//! with OAUTHBEARER or XOAUTH2 and the token is validated exactly as a mail server embedding the
//! engine would validate it (signature, expiry, revocation view; no store round trip). The
//! listeners speak plaintext, so `oauth-mail-listeners` only binds them to loopback addresses.
//!
//! Failed attempts are counted here, in memory, per lockout key (the claimed identity, or the peer
//! address): after [`MAX_FAILURES`] within [`WINDOW`] the key is refused without validating until
//! the window ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth_mail_listeners::{serve_imap, serve_smtp, MailContext, SaslPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock;

/// Failures allowed per key within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// The counting window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// In-memory failure counts per lockout key, with the time each key's window started.
///
/// Expired keys are pruned when the map has doubled since the last prune, so each failure costs
/// O(1) amortized however many identities an attacker claims.
#[derive(Default)]
struct Failures(Mutex<FailureMap>);

#[derive(Default)]
struct FailureMap {
    counts: HashMap<String, (u32, Instant)>,
    prune_at: usize,
}

impl Failures {
    fn record(&self, key: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.counts.len() >= map.prune_at {
            map.counts
                .retain(|_, (_, start)| now.duration_since(*start) < WINDOW);
            map.prune_at = (map.counts.len() * 2).max(1024);
        }
        let entry = map.counts.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    fn locked(&self, key: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.counts
            .get(key)
            .is_some_and(|(n, start)| *n >= MAX_FAILURES && start.elapsed() < WINDOW)
    }
}

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
    let failures = Arc::new(Failures::default());
    let policy = SaslPolicy {
        allow_plaintext: true,
        openid_configuration: Some(format!("{issuer}/.well-known/openid-configuration")),
        ..Default::default()
    };
    let host = url::Url::parse(&issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned());
    let ctx = Arc::new(
        MailContext::new(validator, policy, host)
            .with_failure_hook(Arc::new({
                let f = failures.clone();
                move |key: &str| f.record(key)
            }))
            .with_lockout_check(Arc::new({
                let f = failures.clone();
                move |key: &str| f.locked(key)
            })),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_locked_after_the_maximum_failures() {
        let f = Failures::default();
        for _ in 0..MAX_FAILURES - 1 {
            f.record("sasl:alice");
        }
        assert!(!f.locked("sasl:alice"));
        f.record("sasl:alice");
        assert!(f.locked("sasl:alice"));
        assert!(!f.locked("sasl:bob"));
    }

    #[test]
    fn an_expired_window_starts_counting_again() {
        let f = Failures::default();
        let long_ago = Instant::now() - WINDOW - Duration::from_secs(1);
        f.0.lock()
            .unwrap()
            .counts
            .insert("sasl:alice".into(), (MAX_FAILURES, long_ago));
        assert!(!f.locked("sasl:alice"), "an expired window locks nothing");
        f.record("sasl:alice");
        assert_eq!(f.0.lock().unwrap().counts["sasl:alice"].0, 1);
    }

    #[test]
    fn many_claimed_identities_are_pruned_in_amortized_batches() {
        let f = Failures::default();
        for i in 0..5000 {
            f.record(&format!("sasl:user{i}"));
        }
        let map = f.0.lock().unwrap();
        assert_eq!(map.counts.len(), 5000, "nothing expired yet");
        assert!(
            map.prune_at > 5000 / 2,
            "prune threshold grows with the live set"
        );
    }
}
