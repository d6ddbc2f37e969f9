//! The one limiter: failed guesses slow down and then stop the address that makes them, and never
//! lock out the user they are aimed at.
//!
//! A mail server's authorization server is guessed at all day: passwords on the sign-in page,
//! tokens over IMAP and SMTP, user codes on the device page, client secrets and refresh tokens at
//! the token endpoint. Every one of those places asks the same [`Throttle`] before it checks a
//! credential ([`Throttle::check`]) and tells it how the check went ([`Throttle::record_failure`],
//! [`Throttle::record_success`]). The engine owns one ([`Engine::throttle`](crate::Engine::throttle)),
//! so an embedder's IMAP listener and HTTP endpoints count against the same addresses.
//!
//! # What is counted, and what it does
//! Failures are counted under three keys, each forgotten `window_secs` after its *last* failure:
//!
//! | key | delays after | refuses after | why |
//! |---|---|---|---|
//! | the source address | `address_free_failures` | `address_max_failures` | one address guessing anything |
//! | address + account | `pair_free_failures` | `pair_max_failures` | one address guessing one account |
//! | the account alone | `account_free_failures` | never | many addresses guessing one account |
//!
//! A delay doubles with each failure past the free ones, from `base_delay_ms` up to
//! `max_delay_ms`; the caller waits it out before checking the credential. A refusal answers
//! without looking at the credential, for as long as the refusing key's failures are remembered.
//!
//! Only the address that failed, or that address for that account, is ever refused. Failures on an
//! account from elsewhere only add a bounded delay: a stranger who knows a user name can slow that
//! user's sign-ins by at most `max_delay_ms`, never lock them out (a permanent per-account lock is
//! a denial of service anyone can aim, as Keycloak's and Dovecot's users learned). Successes are
//! never counted, so an office behind one NAT address signs in as often as it likes; a success also
//! forgets the pair's and the account's failures, but never the address's (the same address may be
//! guessing other accounts). [`Throttle::clear_account`] forgets an account's failures (an unlock,
//! a password change).
//!
//! Registration is a quota, not a failure count: [`Throttle::take_registration`] admits
//! `registrations_per_address` per address and `registrations_total` in all per
//! `registration_window_secs`.
//!
//! # Addresses and accounts
//! An IPv4-mapped IPv6 address counts as its IPv4 address, and an IPv6 address as its /64 (one
//! customer's whole allocation), so an attacker cannot get a fresh budget by changing the low bits.
//! Accounts are kept as a 128-bit digest of the name, ASCII-lowercased (so `Alice` and `alice` count
//! together, and a long name costs no memory); callers name clients `client:<id>` so that they
//! cannot collide with user names.
//!
//! # Bounded memory
//! At most `max_tracked` keys are kept. When a new key would exceed that, the keys whose failures
//! are already forgotten are dropped, and if that is not enough, the half that failed longest ago.
//! Each key costs under 100 bytes, so the default bound is about 20 MB at worst.
//!
//! # Several nodes
//! The state is in memory, per process: a restart forgets it, and behind a load balancer each node
//! keeps its own counts, which alone would give an attacker one budget per node. So nodes can
//! share their failures: after [`Throttle::share_failures`], every failure recorded here is also
//! kept for the other nodes (coalesced per address and account, at most [`MAX_UNSHARED`] keys
//! waiting), the embedder takes them with [`Throttle::take_shared_failures`] and sends them as
//! [`SharedFailure`]s, and each other node counts them with [`Throttle::record_remote_failure`],
//! exactly as its own. The bound is then the embedder's: a guess counts everywhere once its
//! batch has arrived, so an attacker spreading guesses over N nodes gets at most the single-node
//! budget plus what each node lets through within one sending interval (the reference server on
//! PostgreSQL: 100 ms). Successes are not shared: a success only forgets failures (never makes
//! anyone refused), so a node that did not hear of it merely delays a little longer.
//!
//! An embedder calls [`Throttle::clear_account`] when an account's password changes or an
//! administrator unlocks it; the reference server on PostgreSQL does so on every node, for
//! password changes and `oauth-server user unlock` made anywhere (through the store's revocation
//! follower).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ConfigError;

/// The limiter's settings (the `[throttle]` table of a configuration file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// How long failures are remembered after a key's last one.
    pub window_secs: u64,
    /// Failures from one address answered without delay.
    pub address_free_failures: u32,
    /// Failures from one address after which it is refused.
    pub address_max_failures: u32,
    /// Failures from one address for one account answered without delay.
    pub pair_free_failures: u32,
    /// Failures from one address for one account after which that address is refused for it.
    pub pair_max_failures: u32,
    /// Failures on one account, from anywhere, answered without delay.
    pub account_free_failures: u32,
    /// The first delay; each further failure doubles it.
    pub base_delay_ms: u64,
    /// The longest delay.
    pub max_delay_ms: u64,
    /// The most keys remembered at once.
    pub max_tracked: usize,
    /// Registrations one address may make per `registration_window_secs`.
    pub registrations_per_address: u32,
    /// Registrations all addresses together may make per `registration_window_secs`.
    pub registrations_total: u32,
    /// The registration quota's window.
    pub registration_window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            window_secs: 900,
            address_free_failures: 10,
            address_max_failures: 100,
            pair_free_failures: 3,
            pair_max_failures: 10,
            account_free_failures: 5,
            base_delay_ms: 200,
            max_delay_ms: 5_000,
            max_tracked: 200_000,
            registrations_per_address: 20,
            registrations_total: 2_000,
            registration_window_secs: 3600,
        }
    }
}

impl ThrottleConfig {
    /// Checks the settings; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |setting: &'static str, msg: String| {
            Err(ConfigError::new(setting, format!("throttle: {msg}")))
        };
        if !(1..=86_400).contains(&self.window_secs) {
            return bad(
                "throttle.window_secs",
                format!(
                    "window_secs is {}, it must be between 1 and 86400",
                    self.window_secs
                ),
            );
        }
        if !(1..=86_400).contains(&self.registration_window_secs) {
            return bad(
                "throttle.registration_window_secs",
                format!(
                    "registration_window_secs is {}, it must be between 1 and 86400",
                    self.registration_window_secs
                ),
            );
        }
        for (name, setting, free, max) in [
            (
                "address",
                "throttle.address_max_failures",
                self.address_free_failures,
                self.address_max_failures,
            ),
            (
                "pair",
                "throttle.pair_max_failures",
                self.pair_free_failures,
                self.pair_max_failures,
            ),
        ] {
            if max == 0 || free > max {
                return bad(
                    setting,
                    format!(
                        "{name}_max_failures ({max}) must be at least 1 and at least \
                     {name}_free_failures ({free})"
                    ),
                );
            }
        }
        if self.base_delay_ms > self.max_delay_ms || self.max_delay_ms > 60_000 {
            return bad(
                "throttle.base_delay_ms",
                format!(
                "base_delay_ms ({}) must not exceed max_delay_ms ({}), which must not exceed 60000",
                self.base_delay_ms, self.max_delay_ms
            ),
            );
        }
        if !(1_000..=10_000_000).contains(&self.max_tracked) {
            return bad(
                "throttle.max_tracked",
                format!(
                    "max_tracked is {}, it must be between 1000 and 10000000",
                    self.max_tracked
                ),
            );
        }
        if self.registrations_per_address == 0
            || self.registrations_per_address > self.registrations_total
        {
            return bad(
                "throttle.registrations_per_address",
                format!(
                    "registrations_per_address ({}) must be at least 1 and at most \
                 registrations_total ({})",
                    self.registrations_per_address, self.registrations_total
                ),
            );
        }
        Ok(())
    }
}

/// What to do with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Check the credential, after waiting `delay` (zero when nothing failed lately).
    Proceed {
        /// How long to wait before checking.
        delay: Duration,
    },
    /// Refuse without checking the credential.
    Refuse {
        /// Whole seconds until the refusing key's failures are forgotten (at least 1).
        retry_after: u64,
    },
}

/// The address a source counts as, everywhere a limit is kept per address (this limiter, and the
/// adapters' per-address bounds on pages and connections): an IPv4-mapped IPv6 address as its IPv4
/// address, any other IPv6 address as its /64 (one customer's allocation: changing the low 64
/// bits is free), IPv4 as itself.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

type Source = IpAddr;

/// 128 bits of SHA-256 over the ASCII-lowercased account name.
type Account = [u8; 16];

fn account_digest(name: &str) -> Account {
    let mut h = Sha256::new();
    for chunk in name.as_bytes().chunks(64) {
        h.update(chunk.to_ascii_lowercase());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Address(Source),
    Pair(Source, Account),
    Account(Account),
    Registrations(Source),
}

/// A key's count: failures forgotten `window` after `last`, or a quota counted from `start`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    count: u32,
    start: u64,
    last: u64,
}

impl Entry {
    fn new(now: u64) -> Self {
        Entry {
            count: 0,
            start: now,
            last: now,
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// The registrations of all addresses together: kept apart from `entries`, so that making
    /// room there can never reset it.
    all_registrations: Option<Entry>,
    /// Failures recorded here and not yet taken for the other nodes, when shared.
    unshared: Option<HashMap<(Source, Option<Account>), u32>>,
}

/// The most distinct (address, account) keys of failures waiting to be taken for other nodes;
/// a failure under a further key is counted here only. An attacker filling it is one address
/// guessing many accounts, which its own node refuses after `address_max_failures` anyway.
pub const MAX_UNSHARED: usize = 4096;

/// Failed guesses under one address (and account) that one node tells the others of (see the
/// module docs, "Several nodes"). It holds the address as the limiter counts it and the account
/// as its digest, never its name; its byte form is fixed-size and versioned by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedFailure {
    source: Source,
    account: Option<Account>,
    count: u32,
}

/// The first byte of [`SharedFailure::to_bytes`]: the form's version in the high nibble, then
/// whether an account follows and whether the address is IPv6.
const SHARED_V1: u8 = 0x10;
const SHARED_ACCOUNT: u8 = 0x01;
const SHARED_IPV6: u8 = 0x02;

impl SharedFailure {
    /// The length of the byte form: a flag byte, the address (16 bytes), the account digest
    /// (16 bytes) and the count (4 bytes, little-endian).
    pub const BYTES: usize = 37;

    /// How many failures this stands for.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The byte form, for sending to other nodes.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[0] = SHARED_V1;
        match self.source {
            IpAddr::V4(v4) => out[1..5].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => {
                out[0] |= SHARED_IPV6;
                out[1..17].copy_from_slice(&v6.octets());
            }
        }
        if let Some(account) = self.account {
            out[0] |= SHARED_ACCOUNT;
            out[17..33].copy_from_slice(&account);
        }
        out[33..37].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Reads the byte form; `None` for anything [`Self::to_bytes`] does not make (another
    /// version, a wrong length, a count of zero).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::BYTES] = bytes.try_into().ok()?;
        let flags = bytes[0];
        if flags & !(SHARED_ACCOUNT | SHARED_IPV6) != SHARED_V1 {
            return None;
        }
        let mut address = [0u8; 16];
        address.copy_from_slice(&bytes[1..17]);
        let source = if flags & SHARED_IPV6 != 0 {
            IpAddr::from(address)
        } else {
            if address[4..].iter().any(|&b| b != 0) {
                return None;
            }
            IpAddr::from([address[0], address[1], address[2], address[3]])
        };
        let mut account = [0u8; 16];
        account.copy_from_slice(&bytes[17..33]);
        let account = (flags & SHARED_ACCOUNT != 0).then_some(account);
        let count = u32::from_le_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        (count > 0).then_some(SharedFailure {
            source: address_key(source),
            account,
            count,
        })
    }
}

/// The limiter. `Send + Sync`: one instance serves every thread (see the module docs).
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    table: Mutex<Table>,
}

impl Throttle {
    /// An empty limiter with these settings (validated by the engine's configuration check).
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle {
            config,
            table: Mutex::new(Table::default()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Every change completes before anything could panic, so a poisoned table is consistent.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to do with an attempt from `source`, for `account` when it names one (a user name, or
    /// `client:<id>`), at `now`. Call it before checking the credential.
    pub fn check(&self, source: IpAddr, account: Option<&str>, now: u64) -> Verdict {
        let c = &self.config;
        let source = address_key(source);
        let account = account.map(account_digest);
        let table = self.lock();
        let failures = |key: Key| table.failures(key, now, c.window_secs);
        let (a, a_last) = failures(Key::Address(source));
        let (p, p_last) = account.map_or((0, 0), |acc| failures(Key::Pair(source, acc)));
        let (n, _) = account.map_or((0, 0), |acc| failures(Key::Account(acc)));
        drop(table);
        let refused_until = [
            (a >= c.address_max_failures).then_some(a_last),
            (p >= c.pair_max_failures).then_some(p_last),
        ]
        .into_iter()
        .flatten()
        .map(|last| last + c.window_secs)
        .max();
        if let Some(until) = refused_until {
            return Verdict::Refuse {
                retry_after: until.saturating_sub(now).max(1),
            };
        }
        let delay = [
            a.saturating_sub(c.address_free_failures),
            p.saturating_sub(c.pair_free_failures),
            n.saturating_sub(c.account_free_failures),
        ]
        .into_iter()
        .max()
        .map_or(Duration::ZERO, |excess| self.delay(excess));
        Verdict::Proceed { delay }
    }

    /// The delay after `excess` failures past the free ones: none for 0, then doubling.
    fn delay(&self, excess: u32) -> Duration {
        if excess == 0 {
            return Duration::ZERO;
        }
        let factor = 1u64 << (excess - 1).min(30);
        Duration::from_millis(
            self.config
                .base_delay_ms
                .saturating_mul(factor)
                .min(self.config.max_delay_ms),
        )
    }

    /// Counts a failed guess from `source` (for `account`, when it names one) at `now`. True when
    /// this failure is the one that gets the address (or the address for this account) refused,
    /// so a driver can log that once.
    pub fn record_failure(&self, source: IpAddr, account: Option<&str>, now: u64) -> bool {
        let c = &self.config;
        let source = address_key(source);
        let account = account.map(account_digest);
        let mut table = self.lock();
        if let Some(unshared) = &mut table.unshared {
            let key = (source, account);
            if unshared.len() < MAX_UNSHARED || unshared.contains_key(&key) {
                let n = unshared.entry(key).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
        let mut refused = table.fail(Key::Address(source), now, c, 1) == c.address_max_failures;
        if let Some(acc) = account {
            refused |= table.fail(Key::Pair(source, acc), now, c, 1) == c.pair_max_failures;
            table.fail(Key::Account(acc), now, c, 1);
        }
        refused
    }

    /// From now on, keeps every failure recorded here for [`Self::take_shared_failures`] too
    /// (see the module docs, "Several nodes").
    pub fn share_failures(&self) {
        self.lock().unshared.get_or_insert_with(HashMap::new);
    }

    /// Takes at most `max` of the failures recorded here since the last call, to send to the
    /// other nodes. Empty unless [`Self::share_failures`] was called.
    pub fn take_shared_failures(&self, max: usize) -> Vec<SharedFailure> {
        let mut table = self.lock();
        let Some(unshared) = &mut table.unshared else {
            return Vec::new();
        };
        let keys: Vec<_> = unshared.keys().take(max).copied().collect();
        keys.into_iter()
            .filter_map(|key| {
                let count = unshared.remove(&key)?;
                Some(SharedFailure {
                    source: key.0,
                    account: key.1,
                    count,
                })
            })
            .collect()
    }

    /// Counts failures another node recorded (and sent with [`Self::take_shared_failures`]) as
    /// if they had happened here at `now`; they are not kept for sharing again.
    pub fn record_remote_failure(&self, failure: &SharedFailure, now: u64) {
        let c = &self.config;
        let n = failure.count;
        let mut table = self.lock();
        table.fail(Key::Address(failure.source), now, c, n);
        if let Some(acc) = failure.account {
            table.fail(Key::Pair(failure.source, acc), now, c, n);
            table.fail(Key::Account(acc), now, c, n);
        }
    }

    /// A credential checked out: forgets the failures of `source` for `account` and of `account`
    /// (never those of the address itself). Nothing to do without an account.
    pub fn record_success(&self, source: IpAddr, account: Option<&str>, _now: u64) {
        let Some(acc) = account.map(account_digest) else {
            return;
        };
        let source = address_key(source);
        let mut table = self.lock();
        table.entries.remove(&Key::Pair(source, acc));
        table.entries.remove(&Key::Account(acc));
    }

    /// Forgets every failure recorded for `account`, from every address (an administrator's
    /// unlock, a password change). It visits every key: meant for rare administrative calls.
    pub fn clear_account(&self, account: &str) {
        let acc = account_digest(account);
        self.lock().entries.retain(|key, _| match key {
            Key::Pair(_, a) | Key::Account(a) => *a != acc,
            _ => true,
        });
    }

    /// Takes one registration from the allowance of `source` and from the total; when either is
    /// used up, nothing is taken and the answer is the seconds until it renews.
    pub fn take_registration(&self, source: IpAddr, now: u64) -> Result<(), u64> {
        let c = &self.config;
        let window = c.registration_window_secs;
        let per_address = Key::Registrations(address_key(source));
        let mut table = self.lock();
        let live = |e: Option<Entry>| e.filter(|e| now < e.start + window);
        for (entry, max) in [
            (
                live(table.entries.get(&per_address).copied()),
                c.registrations_per_address,
            ),
            (live(table.all_registrations), c.registrations_total),
        ] {
            if let Some(e) = entry.filter(|e| e.count >= max) {
                return Err((e.start + window).saturating_sub(now).max(1));
            }
        }
        table.make_room(&per_address, now, c);
        let t = &mut *table;
        for entry in [
            t.entries.entry(per_address).or_insert(Entry::new(now)),
            t.all_registrations.get_or_insert(Entry::new(now)),
        ] {
            if now >= entry.start + window {
                *entry = Entry::new(now);
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = entry.last.max(now);
        }
        Ok(())
    }

    /// How many keys are remembered (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Table {
    /// A key's live failures and the time of its last one.
    fn failures(&self, key: Key, now: u64, window: u64) -> (u32, u64) {
        match self.entries.get(&key) {
            Some(e) if now < e.last + window => (e.count, e.last),
            _ => (0, 0),
        }
    }

    /// Counts `n` failures under `key`; returns its live count.
    fn fail(&mut self, key: Key, now: u64, c: &ThrottleConfig, n: u32) -> u32 {
        let window = c.window_secs;
        self.make_room(&key, now, c);
        let e = self.entries.entry(key).or_insert(Entry::new(now));
        if now >= e.last + window {
            *e = Entry::new(now);
        }
        e.count = e.count.saturating_add(n);
        e.last = e.last.max(now);
        e.count
    }

    /// Before inserting `key`: if the table is full, drop what is forgotten, and if that is not
    /// enough, the half of the keys whose last event is oldest. Each drop frees room for as many
    /// insertions as it visited keys, so inserting costs O(log n) amortized.
    fn make_room(&mut self, key: &Key, now: u64, c: &ThrottleConfig) {
        let max = c.max_tracked;
        if self.entries.len() < max || self.entries.contains_key(key) {
            return;
        }
        // Nothing is forgotten sooner than the longer of the two windows says.
        let window = c.window_secs.max(c.registration_window_secs);
        self.entries.retain(|_, e| now < e.last + window);
        if self.entries.len() < max * 3 / 4 {
            return;
        }
        let mut lasts: Vec<u64> = self.entries.values().map(|e| e.last).collect();
        let middle = lasts.len() / 2;
        let (_, cut, _) = lasts.select_nth_unstable(middle);
        let cut = *cut;
        self.entries.retain(|_, e| e.last > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            window_secs: 100,
            address_free_failures: 2,
            address_max_failures: 6,
            pair_free_failures: 1,
            pair_max_failures: 3,
            account_free_failures: 2,
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            max_tracked: 1_000,
            registrations_per_address: 2,
            registrations_total: 3,
            registration_window_secs: 50,
        }
    }

    fn proceed(ms: u64) -> Verdict {
        Verdict::Proceed {
            delay: Duration::from_millis(ms),
        }
    }

    #[test]
    fn defaults_are_valid() {
        ThrottleConfig::default().validate().unwrap();
        config().validate().unwrap();
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            ThrottleConfig {
                window_secs: 0,
                ..config()
            },
            ThrottleConfig {
                pair_free_failures: 4,
                ..config()
            },
            ThrottleConfig {
                base_delay_ms: 2_000,
                ..config()
            },
            ThrottleConfig {
                registrations_per_address: 4,
                ..config()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_clean_address_proceeds_at_once() {
        let t = Throttle::new(config());
        assert_eq!(t.check(ip("192.0.2.1"), Some("alice"), 0), proceed(0));
        assert_eq!(t.tracked(), 0, "checking stores nothing");
    }

    #[test]
    fn an_address_guessing_one_account_is_refused_for_it_and_nobody_else_is() {
        let t = Throttle::new(config());
        let (attacker, user) = (ip("192.0.2.66"), ip("192.0.2.1"));
        let refused: Vec<bool> = (0..3)
            .map(|_| t.record_failure(attacker, Some("alice"), 10))
            .collect();
        assert_eq!(refused, [false, false, true], "the third gets it refused");
        assert_eq!(
            t.check(attacker, Some("alice"), 10),
            Verdict::Refuse { retry_after: 100 }
        );
        // Three failures on alice: one past her free two, so her own address waits a little.
        assert_eq!(t.check(user, Some("alice"), 10), proceed(100));
        // The attacker may still try another account (with its address's delay).
        assert_eq!(t.check(attacker, Some("bob"), 10), proceed(100));
        // Forgotten a window after the last failure.
        assert_eq!(t.check(attacker, Some("alice"), 110), proceed(0));
    }

    #[test]
    fn an_account_attacked_from_everywhere_is_delayed_never_refused() {
        let t = Throttle::new(config());
        for i in 0..200u32 {
            let from = IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]);
            t.record_failure(from, Some("alice"), 5);
        }
        assert_eq!(
            t.check(ip("192.0.2.1"), Some("alice"), 5),
            proceed(1_000),
            "capped at max_delay_ms"
        );
        t.record_success(ip("192.0.2.1"), Some("alice"), 6);
        assert_eq!(t.check(ip("192.0.2.1"), Some("alice"), 6), proceed(0));
    }

    #[test]
    fn an_address_failing_everywhere_is_delayed_then_refused() {
        let t = Throttle::new(config());
        let a = ip("198.51.100.7");
        let mut seen = Vec::new();
        for i in 0..6 {
            t.record_failure(a, Some(&format!("user{i}")), 20);
            seen.push(t.check(a, None, 20));
        }
        assert_eq!(
            seen,
            [
                proceed(0),
                proceed(0),
                proceed(100),
                proceed(200),
                proceed(400),
                Verdict::Refuse { retry_after: 100 }
            ]
        );
        assert_eq!(t.check(a, None, 119), Verdict::Refuse { retry_after: 1 });
        assert_eq!(t.check(a, None, 120), proceed(0));
    }

    #[test]
    fn successes_are_never_counted_and_forget_the_account_but_not_the_address() {
        let t = Throttle::new(config());
        let office = ip("203.0.113.5");
        for _ in 0..50 {
            t.record_success(office, Some("alice"), 1);
            t.record_success(office, None, 1);
        }
        assert_eq!(t.check(office, Some("carol"), 1), proceed(0));
        for _ in 0..6 {
            t.record_failure(office, Some("mallory"), 2);
        }
        t.record_success(office, Some("mallory"), 2);
        assert!(matches!(t.check(office, None, 2), Verdict::Refuse { .. }));
    }

    #[test]
    fn clear_account_forgets_it_from_every_address() {
        let t = Throttle::new(config());
        t.record_failure(ip("192.0.2.1"), Some("Alice"), 1);
        t.record_failure(ip("192.0.2.2"), Some("alice"), 1);
        t.record_failure(ip("192.0.2.2"), Some("ALICE"), 1);
        t.record_failure(ip("192.0.2.2"), Some("alice"), 1);
        assert!(matches!(
            t.check(ip("192.0.2.2"), Some("alice"), 1),
            Verdict::Refuse { .. }
        ));
        t.clear_account("alice");
        // Only the address's own three failures are left: one past its free two.
        assert_eq!(t.check(ip("192.0.2.2"), Some("alice"), 1), proceed(100));
        assert_eq!(t.tracked(), 2, "the two addresses' own counts stay");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::new(config());
        for i in 0..6u16 {
            t.record_failure(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i]), None, 1);
        }
        assert!(matches!(
            t.check(ip("2001:db8:0:1:ffff::1"), None, 1),
            Verdict::Refuse { .. }
        ));
        assert_eq!(t.check(ip("2001:db8:0:2::1"), None, 1), proceed(0));
        for _ in 0..6 {
            t.record_failure(ip("::ffff:192.0.2.9"), None, 1);
        }
        assert!(matches!(
            t.check(ip("192.0.2.9"), None, 1),
            Verdict::Refuse { .. }
        ));
    }

    #[test]
    fn registrations_per_address_and_in_all() {
        let t = Throttle::new(config());
        let (a, b, c) = (ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3"));
        assert_eq!(t.take_registration(a, 0), Ok(()));
        assert_eq!(t.take_registration(a, 10), Ok(()));
        assert_eq!(t.take_registration(a, 20), Err(30), "a's two are used");
        assert_eq!(t.take_registration(b, 20), Ok(()));
        assert_eq!(t.take_registration(c, 20), Err(30), "three in all");
        assert_eq!(t.take_registration(a, 50), Ok(()), "a new window");
    }

    #[test]
    fn a_flood_of_keys_never_resets_the_total_registration_quota() {
        let t = Throttle::new(config());
        for i in 0..3u32 {
            t.take_registration(IpAddr::from([192, 0, 2, i as u8]), 0)
                .unwrap();
        }
        for i in 0..5_000u32 {
            t.record_failure(IpAddr::from((i + 1000).to_be_bytes()), None, 1);
        }
        assert_eq!(t.take_registration(ip("198.51.100.1"), 2), Err(48));
    }

    #[test]
    fn addresses_count_as_ipv4_or_their_ipv6_slash_64() {
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let t = Throttle::new(config());
        for i in 0..20_000u32 {
            let from = IpAddr::from(i.to_be_bytes());
            t.record_failure(from, Some(&format!("user{i}")), u64::from(i / 100));
            assert!(t.tracked() <= 1_000 + 2, "{}", t.tracked());
        }
        // The newest failures are kept.
        let last = IpAddr::from(19_999u32.to_be_bytes());
        assert_eq!(t.check(last, None, 199), proceed(0));
        t.record_failure(last, None, 199);
        t.record_failure(last, None, 199);
        assert_eq!(t.check(last, None, 199), proceed(100));
    }

    #[test]
    fn failures_shared_by_one_node_count_at_another() {
        let (a, b) = (Throttle::new(config()), Throttle::new(config()));
        assert!(
            a.take_shared_failures(64).is_empty(),
            "nothing kept unless shared"
        );
        a.record_failure(ip("192.0.2.1"), Some("alice"), 0);
        assert!(a.take_shared_failures(64).is_empty());
        a.share_failures();
        for _ in 0..2 {
            a.record_failure(ip("192.0.2.1"), Some("Alice"), 0);
        }
        a.record_failure(ip("2001:db8::1"), None, 0);
        let mut sent = a.take_shared_failures(64);
        assert!(a.take_shared_failures(64).is_empty(), "taken once");
        sent.sort_by_key(|f| f.count());
        assert_eq!(sent.iter().map(|f| f.count()).collect::<Vec<_>>(), [1, 2]);
        for f in &sent {
            let bytes = f.to_bytes();
            let back = SharedFailure::from_bytes(&bytes).unwrap();
            assert_eq!(&back, f);
            b.record_remote_failure(&back, 0);
        }
        // b counts a's two failures of the pair: one more refuses (pair_max_failures is 3).
        assert_eq!(b.check(ip("192.0.2.1"), Some("alice"), 1), proceed(100));
        assert!(b.record_failure(ip("192.0.2.1"), Some("alice"), 1));
        assert!(matches!(
            b.check(ip("192.0.2.1"), Some("alice"), 1),
            Verdict::Refuse { .. }
        ));
        assert!(
            b.take_shared_failures(64).is_empty(),
            "remote ones are not sent again"
        );
        assert_eq!(b.check(ip("2001:db8::2"), None, 1), proceed(0));
    }

    #[test]
    fn shared_failures_are_bounded_and_strictly_read() {
        let t = Throttle::new(config());
        t.share_failures();
        for i in 0..(MAX_UNSHARED as u32 + 10) {
            t.record_failure(IpAddr::from(i.to_be_bytes()), None, 0);
        }
        assert_eq!(t.take_shared_failures(usize::MAX).len(), MAX_UNSHARED);
        t.record_failure(ip("192.0.2.1"), None, 0);
        let good = t.take_shared_failures(1)[0].to_bytes();
        assert!(SharedFailure::from_bytes(&good[1..]).is_none(), "length");
        for (at, value) in [(0, 0x20), (0, 0x14), (6, 1), (33, 0)] {
            let mut bad = good;
            bad[at] = value;
            if at == 33 {
                bad[33..37].copy_from_slice(&[0; 4]);
            }
            assert!(SharedFailure::from_bytes(&bad).is_none(), "{at} {value}");
        }
        let v6 = SharedFailure {
            source: ip("2001:db8::1"),
            account: None,
            count: 1,
        };
        assert_eq!(
            SharedFailure::from_bytes(&v6.to_bytes()).unwrap().source,
            ip("2001:db8::")
        );
    }
}
