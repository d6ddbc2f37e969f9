//! Failure limits for the credential endpoints (token, introspection, revocation, device
//! authorization, registration and client configuration).
//!
//! Every answer there that shows a guess went wrong is counted per client address: a failed client
//! authentication (401) or a refused grant (`invalid_grant`: an unknown, expired or used code,
//! refresh token or device code). Answers a well-behaved client gets routinely
//! (`authorization_pending`, `slow_down`, an inactive introspection, a revocation of an unknown
//! token) are not counted. Past the limit within the window the address gets 429 with
//! `Retry-After` until its window ends, without its request being looked at, and one warning is
//! logged when the address is first locked.
//!
//! Client secrets, codes and tokens carry 256 random bits, so guessing is hopeless anyway; the
//! limit bounds the work and the noise a guesser causes and makes the attempt visible. The address
//! is the TCP peer's: forwarding headers are never read (see `conformance/README.md`, item 12).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many tracked addresses, new addresses are not tracked until old windows end.
const MAX_TRACKED: usize = 1_000_000;

/// Failure counts per address, each with the time its window started.
///
/// Expired entries are pruned when the map has doubled since the last prune, so each failure costs
/// O(1) amortized however many addresses send them.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    map: Mutex<FailureMap>,
}

#[derive(Default)]
struct FailureMap {
    counts: HashMap<IpAddr, (u32, Instant)>,
    prune_at: usize,
}

impl FailureLimiter {
    /// A limiter allowing `max` failures per address within `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        FailureLimiter {
            max,
            window,
            map: Mutex::new(FailureMap::default()),
        }
    }

    /// How long `addr` must still wait, if it is locked at the time `now` gives (read only when
    /// the address has failures on record, so a request from a clean address reads no clock).
    pub fn retry_after(&self, addr: IpAddr, now: impl FnOnce() -> Instant) -> Option<Duration> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (n, start) = map.counts.get(&addr)?;
        let left = self
            .window
            .checked_sub(now().saturating_duration_since(*start))?;
        (*n >= self.max && !left.is_zero()).then_some(left)
    }

    /// Counts one failure from `addr` at `now`; true when this failure reached the limit.
    pub fn record(&self, addr: IpAddr, now: Instant) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.counts.len() >= map.prune_at {
            let window = self.window;
            map.counts
                .retain(|_, (_, start)| now.saturating_duration_since(*start) < window);
            map.prune_at = (map.counts.len() * 2).max(1024);
        }
        if map.counts.len() >= MAX_TRACKED && !map.counts.contains_key(&addr) {
            return false;
        }
        let entry = map.counts.entry(addr).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0 == self.max
    }
}

/// Whether an engine answer at a credential endpoint counts as a failed guess.
pub fn counts_as_failure(resp: &oauth_proto::response::Response) -> bool {
    match resp.status {
        401 => true,
        400 => serde_json::from_str::<serde_json::Value>(&resp.body)
            .is_ok_and(|v| v["error"] == "invalid_grant"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::error::{ErrorCode, OAuthError};
    use oauth_proto::response::Response;

    #[test]
    fn b25_an_address_is_locked_after_the_maximum_failures_until_its_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "::1".parse().unwrap());
        let t0 = Instant::now();
        assert!(!limiter.record(a, t0));
        assert!(!limiter.record(a, t0));
        assert_eq!(limiter.retry_after(a, || t0), None);
        assert!(
            limiter.record(a, t0 + Duration::from_secs(10)),
            "the third locks"
        );
        assert_eq!(
            limiter.retry_after(a, || t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(limiter.retry_after(b, || t0), None, "per address");
        // The window ends 60 s after its first failure; counting starts again.
        assert_eq!(
            limiter.retry_after(a, || t0 + Duration::from_secs(60)),
            None
        );
        assert!(!limiter.record(a, t0 + Duration::from_secs(60)));
        assert_eq!(
            limiter.retry_after(a, || t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn b25_only_failed_guesses_count() {
        let err = |code| Response::error(&OAuthError::new(code, "x"));
        assert!(counts_as_failure(&err(ErrorCode::InvalidClient)));
        assert!(counts_as_failure(&err(ErrorCode::InvalidGrant)));
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidScope,
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::UnsupportedGrantType,
        ] {
            assert!(!counts_as_failure(&err(code)), "{code:?}");
        }
        assert!(!counts_as_failure(&Response::json(
            200,
            &serde_json::json!({"active": false})
        )));
    }
}
