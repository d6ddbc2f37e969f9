//! What a listener needs from its embedder: token validation, the SASL policy, a host name, the
//! lockout hooks, and limits.
//!
//! The listeners hold no keys, clock or store. The embedder supplies validation as a closure (the
//! same one it would give to [`oauth_proto::sasl::SaslExchange::step`]) and keeps the failed-attempt
//! counters itself, so that mail logins and HTTP token requests can share one lockout store.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oauth_proto::access_token::{AccessClaims, TokenError};
use oauth_proto::sasl::SaslPolicy;

/// Validates a bearer token (typically a closure over the engine's direct validation call with
/// the current time and the store's revocation view).
pub type Validator = Arc<dyn Fn(&str) -> Result<AccessClaims, TokenError> + Send + Sync>;

/// Called with the lockout key of every failed attempt that counts (see [`MailContext`]).
pub type FailureHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Answers whether a lockout key is currently locked out.
pub type LockoutCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Per-listener limits. The defaults suit a test facility on loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command or response line accepted, in bytes, without its line ending. A longer
    /// line is answered with an error and the connection is closed.
    pub max_line: usize,
    /// How long to wait for the client's next line before closing the connection.
    pub idle_timeout: Duration,
    /// Connections served at once; further clients are greeted with a refusal and closed.
    pub max_connections: usize,
    /// Commands accepted on one connection before it is closed.
    pub max_commands: usize,
    /// Failed authentications accepted on one connection before it is closed.
    pub max_failures: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            idle_timeout: Duration::from_secs(300),
            max_connections: 64,
            max_commands: 1000,
            max_failures: 3,
        }
    }
}

/// Everything a listener needs to check logins.
///
/// Lockout: every failed attempt that counts ([`oauth_proto::sasl::Step::lockout`]) is reported to
/// the failure hook under the key the exchange suggests (`sasl:<identity>`), or under
/// [`MailContext::peer_key`] (`peer:<ip>`) when the client claimed no identity. Before an exchange
/// starts, and again once the client's claimed identity is known, the lockout check is asked about
/// the peer key and the identity key; a locked-out key is refused with a permanent failure without
/// validating the token.
#[derive(Clone)]
pub struct MailContext {
    pub(crate) validator: Validator,
    pub(crate) policy: SaslPolicy,
    pub(crate) hostname: String,
    pub(crate) on_failure: FailureHook,
    pub(crate) locked_out: LockoutCheck,
    pub(crate) limits: Limits,
}

impl fmt::Debug for MailContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailContext")
            .field("policy", &self.policy)
            .field("hostname", &self.hostname)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why a listener refused to start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeError {
    /// The listeners speak plaintext only, and the policy does not allow plaintext SASL.
    PlaintextNotAllowed,
    /// The listeners speak plaintext only, so they bind to loopback only; this address is not.
    NotLoopback(SocketAddr),
    /// The listener's address could not be read.
    Io(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::PlaintextNotAllowed => f.write_str(
                "the mail listeners have no TLS: SaslPolicy::allow_plaintext must be set (tests only)",
            ),
            ServeError::NotLoopback(addr) => write!(
                f,
                "the mail listeners have no TLS and listen on loopback only, not on {addr}"
            ),
            ServeError::Io(e) => write!(f, "cannot read the listener's address: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl MailContext {
    /// A context with no lockout (nothing counted, nothing locked) and default [`Limits`].
    pub fn new(validator: Validator, policy: SaslPolicy, hostname: impl Into<String>) -> Self {
        MailContext {
            validator,
            policy,
            hostname: match sanitize(&hostname.into()) {
                h if h.is_empty() => "localhost".to_owned(),
                h => h,
            },
            on_failure: Arc::new(|_| {}),
            locked_out: Arc::new(|_| false),
            limits: Limits::default(),
        }
    }

    /// Sets the hook that counts failed attempts.
    pub fn with_failure_hook(mut self, hook: FailureHook) -> Self {
        self.on_failure = hook;
        self
    }

    /// Sets the check that tells whether a key is locked out.
    pub fn with_lockout_check(mut self, check: LockoutCheck) -> Self {
        self.locked_out = check;
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The SASL policy.
    pub fn policy(&self) -> &SaslPolicy {
        &self.policy
    }

    /// The host name used in greetings.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The lockout key for a peer that claimed no identity: `peer:<ip>` (the port is left out, since
    /// every connection has a new one).
    pub fn peer_key(peer: &SocketAddr) -> String {
        format!("peer:{}", peer.ip())
    }

    /// Checks that a listener may serve from `local`: plaintext allowed by the policy, and a
    /// loopback address. RFC 7628 §3 and §5 (checklist item 144) require TLS for OAUTHBEARER,
    /// because a bearer token is a replayable password; these listeners have no TLS, so they are a
    /// local test facility and nothing else.
    pub fn check_listener(&self, local: &SocketAddr) -> Result<(), ServeError> {
        if !self.policy.allow_plaintext {
            return Err(ServeError::PlaintextNotAllowed);
        }
        if !local.ip().is_loopback() {
            return Err(ServeError::NotLoopback(*local));
        }
        Ok(())
    }
}

/// Keeps only printable ASCII, so that text echoed into a protocol line cannot break its framing.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(255)
        .collect()
}
