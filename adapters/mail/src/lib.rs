//! Auth-only IMAP and SMTP listeners that let a real mail client check its OAuth setup against
//! this authorization server's access tokens.
//!
//! # Why
//! `oauth-proto::sasl` holds the whole SASL `OAUTHBEARER` / `XOAUTH2` exchange with no IO. These
//! listeners are the smallest servers that put it on a socket: enough IMAP (greeting, `CAPABILITY`,
//! `AUTHENTICATE` with and without SASL-IR, `NOOP`, `LOGOUT`) and SMTP (greeting, `EHLO`, `AUTH`
//! with and without an initial response, `NOOP`, `RSET`, `QUIT`) for a mail client, or a client
//! library, to say whether a token is accepted. There are no mailboxes and no mail is accepted.
//! The SASL parsing, the error challenges and the reply texts are all `oauth-proto`'s; this crate
//! only moves lines.
//!
//! # Plaintext, therefore loopback only
//! RFC 7628 §3 and §5 (checklist item 144) allow `OAUTHBEARER` only over TLS: a bearer token is a
//! password anyone who sees it can replay. These listeners have no TLS, so [`serve_imap`] and
//! [`serve_smtp`] refuse to start ([`ServeError`]) unless the [`SaslPolicy`] sets
//! `allow_plaintext` **and** the listener is bound to a loopback address. They are a test
//! facility for one machine, never a public service.
//!
//! # Embedding
//! ```no_run
//! # use std::sync::Arc;
//! # use oauth_mail_listeners::{serve_imap, serve_smtp, MailContext};
//! # use oauth_proto::sasl::SaslPolicy;
//! # async fn run(validator: oauth_mail_listeners::Validator, engine: &oauth_proto::Engine) -> Result<(), Box<dyn std::error::Error>> {
//! let policy = SaslPolicy { allow_plaintext: true, ..SaslPolicy::default() };
//! // The engine's limiter: an address failing over IMAP is slowed and refused over HTTP too.
//! let ctx = MailContext::new(validator, policy, "localhost").with_throttle(engine.throttle().clone());
//! let ctx = Arc::new(ctx);
//! let imap = tokio::net::TcpListener::bind("127.0.0.1:1143").await?;
//! let smtp = tokio::net::TcpListener::bind("127.0.0.1:1587").await?;
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let mut a = stopped.clone();
//! let mut b = stopped;
//! let imap = tokio::spawn(serve_imap(imap, ctx.clone(), async move { let _ = a.wait_for(|s| *s).await; }));
//! let smtp = tokio::spawn(serve_smtp(smtp, ctx, async move { let _ = b.wait_for(|s| *s).await; }));
//! // ... later:
//! stop.send(true)?;
//! imap.await??;
//! smtp.await??;
//! # Ok(()) }
//! ```
//!
//! # What a mail server must enforce, by default
//! Everything below holds without configuring anything; the settings only tune it.
//! - **Only mail tokens, only users' tokens.** [`SaslPolicy::default`] accepts a token only if it
//!   carries a mail scope (`mail` or `urn:ietf:params:oauth:scope:mail`; else `insufficient_scope`)
//!   and names a user (a `client_credentials` token is refused with `invalid_token`).
//! - **Failed logins count against the source address only**, in the engine's one limiter
//!   ([`MailContext::with_throttle`]): past a few failures an address waits before each attempt,
//!   then is refused without its token being looked at. The identity a client claims is never a
//!   counter key, so nobody can lock a user out by claiming the user, and a valid token from a
//!   clean address always authenticates (see [`MailContext`]).
//! - **Bounded connections.** [`Limits::max_connections`] in all and
//!   [`Limits::max_connections_per_address`] (10) per source address; a client that has not
//!   authenticated is dropped after [`Limits::pre_auth_idle_timeout`] (30 s) of silence, an
//!   authenticated one after [`Limits::idle_timeout`].
//! - Lines are bounded ([`Limits::max_line`]), commands and failed logins per connection are
//!   capped, and no input panics. Logs (`tracing`) carry the peer, mechanism, claimed identity and
//!   failure reason, never a token or a raw SASL payload.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
mod conn;
mod context;
mod imap;
mod line;
mod listener;
mod smtp;

pub use context::{Clock, Limits, MailContext, ServeError, Validator};
pub use imap::serve_imap;
pub use smtp::serve_smtp;

#[doc(no_inline)]
pub use oauth_proto::sasl::SaslPolicy;
