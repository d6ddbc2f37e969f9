//! What a listener needs from its embedder: token validation, the SASL policy, a host name, the
//! failure limiter and its clock, and limits.
//!
//! The listeners hold no keys or store. The embedder supplies validation as a closure (the same one
//! it would give to [`oauth_proto::sasl::SaslExchange::step`]) and, to share one limiter between
//! mail logins and HTTP credential checks, the engine's [`Throttle`] (`engine.throttle()`). The
//! throttle is sans-IO, so it needs the time: a [`Clock`] closure, the system clock by default
//! (tests give a fixed one).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth_proto::access_token::{AccessClaims, TokenError};
use oauth_proto::sasl::SaslPolicy;
use oauth_proto::throttle::{Throttle, ThrottleConfig};

/// Validates a bearer token (typically a closure over the engine's direct validation call with
/// the current time and the store's revocation view).
pub type Validator = Arc<dyn Fn(&str) -> Result<AccessClaims, TokenError> + Send + Sync>;

/// The current time in Unix seconds, for the throttle.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Per-listener limits.
///
/// The defaults are what a mail server must enforce against strangers: a client that has not
/// authenticated gets [`Limits::pre_auth_idle_timeout`] (30 s) to say something, and one address
/// may hold [`Limits::max_connections_per_address`] (10) of the [`Limits::max_connections`] (64)
/// slots, so idle connections from one address cannot take every slot from everyone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest command or response line accepted, in bytes, without its line ending. A longer
    /// line is answered with an error and the connection is closed.
    pub max_line: usize,
    /// How long an authenticated client may stay silent (or not read) before its connection is
    /// closed.
    pub idle_timeout: Duration,
    /// How long a client that has not authenticated yet may stay silent before its connection is
    /// closed; shorter than [`Limits::idle_timeout`], since a stranger's idle connection holds a
    /// slot for nothing. Also bounds each read and write until the client authenticates.
    pub pre_auth_idle_timeout: Duration,
    /// Connections served at once; further clients are greeted with a refusal and closed.
    pub max_connections: usize,
    /// Connections served at once from one source address (an IPv6 address counts as its /64, an
    /// IPv4-mapped one as its IPv4 address); further clients from it are greeted with the same
    /// refusal and closed.
    pub max_connections_per_address: usize,
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
            pre_auth_idle_timeout: Duration::from_secs(30),
            max_connections: 64,
            max_connections_per_address: 10,
            max_commands: 1000,
            max_failures: 3,
        }
    }
}

/// Everything a listener needs to check logins.
///
/// # Failed attempts count against the source address, never the claimed identity
/// Before each exchange the listener asks the [`Throttle`] about the connection's source address
/// (`check(peer, None, now)`): a refused address gets the permanent "too many failed attempts"
/// failure without its token being looked at, and a delayed one waits the delay out first. Every
/// failed attempt that counts ([`oauth_proto::sasl::Step::counts_toward_lockout`]) is then recorded
/// against that address (`record_failure(peer, None, now)`). The identity a client claims (authzid,
/// XOAUTH2 `user`) plays no part: it is the attacker's free choice, so counting under it let anyone
/// lock a user's valid token out by claiming the user, and let a guesser go uncounted by claiming a
/// new identity each time. A valid token from a clean address always authenticates.
///
/// By default the context has a throttle of its own ([`ThrottleConfig::default`]); give it the
/// engine's ([`MailContext::with_throttle`]) so that mail and HTTP failures count together.
#[derive(Clone)]
pub struct MailContext {
    pub(crate) validator: Validator,
    pub(crate) policy: SaslPolicy,
    pub(crate) hostname: String,
    pub(crate) throttle: Arc<Throttle>,
    pub(crate) clock: Clock,
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
    /// A context with default [`Limits`], a throttle of its own with the default settings, and the
    /// system clock.
    pub fn new(validator: Validator, policy: SaslPolicy, hostname: impl Into<String>) -> Self {
        MailContext {
            validator,
            policy,
            hostname: match sanitize(&hostname.into()) {
                h if h.is_empty() => "localhost".to_owned(),
                h => h,
            },
            throttle: Arc::new(Throttle::new(ThrottleConfig::default())),
            clock: Arc::new(system_now),
            limits: Limits::default(),
        }
    }

    /// Counts failed attempts in `throttle`, typically the engine's (`engine.throttle().clone()`),
    /// so that an address guessing over IMAP is slowed and refused at the HTTP endpoints too.
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// Reads the time (Unix seconds) for the throttle from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
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

    /// The throttle failed attempts count in.
    pub fn throttle(&self) -> &Arc<Throttle> {
        &self.throttle
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

/// Unix seconds from the system clock (0 before 1970, which only a broken clock reports).
fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Keeps only printable ASCII, so that text echoed into a protocol line cannot break its framing.
pub(crate) fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(255)
        .collect()
}
