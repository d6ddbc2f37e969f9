//! The revocation view this node answers access token validation from, without a round trip.
//!
//! It holds every row of `revoked_access` and every subject whose credential version is above 0,
//! loaded when the store opens and then updated two ways: from this node's own committed writes
//! (each revoking statement returns the rows it left, `RETURNING`, with their `revocation_seq`,
//! laid in here after the transaction commits), and from every node's writes as the follower
//! reads them ([`follow`](crate::follow)). An entry is replaced only by one with a higher
//! sequence number, so rows that arrive twice or out of order never roll a revocation back.
//! Entries whose `keep_until` has passed go when this node purges, as the rows do.
//!
//! # A view that has lost the database
//!
//! The view remembers when it was last known complete: the start of the follower's last
//! successful catch-up (or of the load). Once that is longer ago than `Options::view_max_age`
//! (30 s by default), the view is stale: it may lack revocations other nodes made meanwhile (a
//! node cut off from the database while the others still reach it), so it refuses every access
//! token, as revoked, until a catch-up succeeds again. A node keeps validating through a short
//! outage or a reconnect, and never accepts a token revoked elsewhere for longer than that bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use oauth_proto::store::GrantId;

/// An access revocation as stored: the time, until when it is kept, and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Revoked {
    pub(crate) at: u64,
    pub(crate) keep_until: u64,
    pub(crate) seq: i64,
}

/// A subject's credential version and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) version: u32,
    pub(crate) seq: i64,
}

/// What a committed write changed in the view.
#[derive(Debug, Default)]
pub(crate) struct ViewChanges {
    pub(crate) access: Vec<(GrantId, Revoked)>,
    pub(crate) subjects: Vec<(Vec<u8>, Version)>,
}

impl ViewChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.access.is_empty() && self.subjects.is_empty()
    }
}

#[derive(Debug, Default)]
struct Maps {
    access: HashMap<GrantId, Revoked>,
    subjects: HashMap<Vec<u8>, Version>,
}

/// The view, behind one lock (a read takes it once for both answers), and its freshness.
pub(crate) struct RevocationCache {
    maps: RwLock<Maps>,
    /// Told the name of every account whose failures the nodes must forget: a subject whose
    /// credentials changed (a password change), or an unlock ([`crate::PostgresStore::unlock`]).
    accounts_cleared: RwLock<Option<AccountsCleared>>,
    /// The instant the milliseconds below count from.
    base: Instant,
    /// When the view was last known complete, in milliseconds after `base`.
    confirmed_ms: AtomicU64,
    max_age: Duration,
}

impl std::fmt::Debug for RevocationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationCache")
            .field("maps", &self.maps)
            .field("age", &self.age())
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// What a node does when an account's failures are to be forgotten (clear its limiter's counts).
pub(crate) type AccountsCleared = Arc<dyn Fn(&str) + Send + Sync>;

impl RevocationCache {
    /// An empty view, complete as of now, stale once `max_age` passes without [`Self::confirm`].
    pub(crate) fn new(max_age: Duration) -> Self {
        RevocationCache {
            maps: RwLock::default(),
            accounts_cleared: RwLock::new(None),
            base: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            max_age,
        }
    }

    /// Records that the view holds every revocation committed before `at`.
    pub(crate) fn confirm(&self, at: Instant) {
        let ms =
            u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX);
        self.confirmed_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long ago the view was last known complete.
    pub(crate) fn age(&self) -> Duration {
        let confirmed =
            self.base + Duration::from_millis(self.confirmed_ms.load(Ordering::Relaxed));
        confirmed.elapsed()
    }

    fn stale(&self) -> bool {
        self.age() > self.max_age
    }

    /// Lays `changes` over the view, each entry only over an older one.
    /// Sets what is told of cleared accounts (see [`Self::account_cleared`]).
    pub(crate) fn on_accounts_cleared(&self, hook: AccountsCleared) {
        *self.accounts_cleared.write() = Some(hook);
    }

    /// Tells the hook, if any, that `account`'s failures are to be forgotten.
    pub(crate) fn account_cleared(&self, account: &[u8]) {
        let hook = self.accounts_cleared.read().clone();
        if let (Some(hook), Ok(account)) = (hook, std::str::from_utf8(account)) {
            hook(account);
        }
    }

    pub(crate) fn merge(&self, changes: ViewChanges) {
        if changes.is_empty() {
            return;
        }
        for (subject, _) in &changes.subjects {
            self.account_cleared(subject);
        }
        let mut maps = self.maps.write();
        for (grant, revoked) in changes.access {
            let entry = maps.access.entry(grant).or_insert(revoked);
            if entry.seq < revoked.seq {
                *entry = revoked;
            }
        }
        for (subject, version) in changes.subjects {
            let entry = maps.subjects.entry(subject).or_insert(version);
            if entry.seq < version.seq {
                *entry = version;
            }
        }
    }

    /// Drops the access revocations kept until `now` or before, as a purge drops their rows.
    pub(crate) fn purge(&self, now: u64) {
        self.maps.write().access.retain(|_, r| r.keep_until > now);
    }

    /// When the grant's access tokens were revoked; a stale view answers "all of them".
    pub(crate) fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        if self.stale() {
            return Some(u64::MAX);
        }
        self.maps.read().access.get(grant_id).map(|r| r.at)
    }

    pub(crate) fn credential_version(&self, subject: &str) -> u32 {
        self.maps
            .read()
            .subjects
            .get(subject.as_bytes())
            .map_or(0, |v| v.version)
    }

    pub(crate) fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        let stale = self.stale();
        let maps = self.maps.read();
        (
            if stale {
                Some(u64::MAX)
            } else {
                maps.access.get(grant_id).map(|r| r.at)
            },
            maps.subjects
                .get(subject.as_bytes())
                .map_or(0, |v| v.version),
        )
    }
}
