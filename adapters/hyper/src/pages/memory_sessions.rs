//! The browser sessions and waiting pages of one server process, in its memory: the store of the
//! file and memory store servers (see [`crate::pages::sessions`] for what they hold).
//!
//! Both tables are keyed by the SHA-256 of the id (ids are never compared byte by byte), expire,
//! and live in memory: a restart signs everyone out, which is harmless.
//!
//! # Bounded against a flood
//! Anyone can create sessions and pages: one `GET /authorize` makes one of each. So besides the
//! global bound (`max_sessions`, for each table) every source address (IPv4 as itself, IPv6 by its
//! /64, as the engine's limiter counts them) has its own: at most `max_anonymous_sessions_per_address`
//! sessions nobody has signed in to, and at most `max_pages_per_address` pages. An address past
//! either gets [`Refused::Address`] (the pages answer 429) while every other address still gets
//! pages; without it, one address filled the global table in seconds and everyone got 503 for a
//! page lifetime. Signed-in sessions do not count against the address (a password was needed). A
//! session holds at most `max_pages_per_session` pages; a new one evicts its oldest, so a browser
//! re-sending one cookie cannot grow memory either.
//!
//! A page costs at most 640 bytes for a usual request (measured: 573, with OpenID Connect's
//! `prompt`, `max_age` and hints kept; 453 before them) and at most 1664 bytes with a `state` of
//! the largest accepted size, 1024 bytes (measured: 1565), its table entries included but not
//! the hash tables' spare capacity (the unit test `page_memory_is_small` holds these bounds).
//! Pages used to keep the raw query as well, so a 15 KB `state` cost about 30 KB. With the
//! defaults one address holds at most 200 usual pages, under 130 KB.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use oauth_proto::secret::SecretHash;
use oauth_proto::throttle::address_key;

use crate::pages::sessions::{
    ready, Answer, Limits, NewPage, Pending, Refused, Replaced, Session, SessionStore,
    MAX_RELYING_PARTIES,
};

/// One request waiting for the user's decision.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    /// The request.
    pub pending: Pending,
    session: SecretHash,
    expires_at: u64,
    /// The address it counts against.
    source: IpAddr,
}

impl Page {
    /// The bytes this page holds: the value itself, its strings, and its table entry (key and
    /// the per-session index entry).
    #[cfg(test)]
    pub fn approx_bytes(&self) -> usize {
        let heap = match &self.pending {
            Pending::Authorization(p) => p.heap_bytes(),
            Pending::Device(p) => p.heap_bytes(),
        };
        std::mem::size_of::<(SecretHash, Page)>() + heap + std::mem::size_of::<(u64, SecretHash)>()
    }
}

#[derive(Default)]
struct Tables {
    sessions: HashMap<SecretHash, Session>,
    pages: HashMap<SecretHash, Page>,
    /// Live anonymous sessions per source address.
    anonymous_by_source: HashMap<IpAddr, usize>,
    /// Pages per source address.
    pages_by_source: HashMap<IpAddr, usize>,
    /// Each session's pages, oldest first, by insertion number.
    pages_by_session: HashMap<SecretHash, Vec<(u64, SecretHash)>>,
    next_page: u64,
    /// When expired entries were last dropped (at most once a second on a refusal).
    last_purge: u64,
}

fn decrement(map: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(n) = map.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl Tables {
    fn insert_session(&mut self, key: SecretHash, session: Session) {
        if let Some(source) = session.anonymous_from {
            *self.anonymous_by_source.entry(source).or_default() += 1;
        }
        if let Some(old) = self.sessions.insert(key, session) {
            // Ids are 256-bit random draws; a collision is not expected, but keep the counts true.
            if let Some(source) = old.anonymous_from {
                decrement(&mut self.anonymous_by_source, source);
            }
        }
    }

    fn remove_session(&mut self, key: &SecretHash) -> Option<Session> {
        let session = self.sessions.remove(key)?;
        if let Some(source) = session.anonymous_from {
            decrement(&mut self.anonymous_by_source, source);
        }
        Some(session)
    }

    fn insert_page(&mut self, key: SecretHash, page: Page) {
        *self.pages_by_source.entry(page.source).or_default() += 1;
        self.next_page += 1;
        self.pages_by_session
            .entry(page.session)
            .or_default()
            .push((self.next_page, key));
        if let Some(old) = self.pages.insert(key, page) {
            decrement(&mut self.pages_by_source, old.source);
        }
    }

    fn remove_page(&mut self, key: &SecretHash) -> Option<Page> {
        let page = self.pages.remove(key)?;
        decrement(&mut self.pages_by_source, page.source);
        if let Some(list) = self.pages_by_session.get_mut(&page.session) {
            list.retain(|(_, k)| k != key);
            if list.is_empty() {
                self.pages_by_session.remove(&page.session);
            }
        }
        Some(page)
    }

    fn purge(&mut self, now: u64) {
        let sessions: Vec<SecretHash> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &sessions {
            self.remove_session(k);
        }
        let pages: Vec<SecretHash> = self
            .pages
            .iter()
            .filter(|(_, p)| p.expires_at <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &pages {
            self.remove_page(k);
        }
        self.last_purge = now;
    }

    /// Drops expired entries when a bound is reached, at most once a second: a flooding address
    /// refused again and again must not make every refusal a walk over the tables.
    fn purge_once(&mut self, now: u64) {
        if now > self.last_purge {
            self.purge(now);
        }
    }
}

/// Sessions and pages, in memory.
pub(crate) struct MemorySessions {
    tables: Mutex<Tables>,
    limits: Limits,
}

impl MemorySessions {
    /// Empty tables.
    pub fn new(limits: Limits) -> Self {
        MemorySessions {
            tables: Mutex::new(Tables::default()),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Every mutation below completes before anything can panic, so a poisoned lock still
        // guards consistent tables.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session named by a cookie value.
    pub fn get(&self, id: &str, now: u64) -> Option<Session> {
        let t = self.lock();
        t.sessions
            .get(&SecretHash::of(id))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// A new anonymous session for a browser at `client`: its id (for the cookie) and itself.
    pub fn create(&self, now: u64, client: IpAddr) -> Result<(String, Session), Refused> {
        let source = address_key(client);
        let mut t = self.lock();
        let max = self.limits.max_entries;
        if t.sessions.len() >= max {
            t.purge_once(now);
            if t.sessions.len() >= max {
                return Err(Refused::Full);
            }
        }
        let per_address = self.limits.max_anonymous_per_address;
        if t.anonymous_by_source.get(&source).copied().unwrap_or(0) >= per_address {
            t.purge_once(now);
            if t.anonymous_by_source.get(&source).copied().unwrap_or(0) >= per_address {
                return Err(Refused::Address);
            }
        }
        let id = crate::rng::token();
        let session = Session {
            csrf: crate::rng::token(),
            user: None,
            signed_in_at: None,
            oidc_sid: None,
            relying_parties: Vec::new(),
            expires_at: now + self.limits.page_ttl,
            anonymous_from: Some(source),
        };
        t.insert_session(SecretHash::of(&id), session.clone());
        Ok((id, session))
    }

    /// Signs `user` in on the session `old_id` (see [`SessionStore::sign_in`]).
    pub fn sign_in(&self, old_id: &str, user: &str, now: u64) -> Option<Replaced> {
        self.replace(old_id, Some(user), None, now)
    }

    /// Signs the user of session `old_id` out (see [`SessionStore::sign_out`]).
    pub fn sign_out(&self, old_id: &str, now: u64, client: IpAddr) -> Option<Replaced> {
        self.replace(old_id, None, Some(address_key(client)), now)
    }

    fn replace(
        &self,
        old_id: &str,
        user: Option<&str>,
        anonymous_from: Option<IpAddr>,
        now: u64,
    ) -> Option<Replaced> {
        let mut t = self.lock();
        let old = SecretHash::of(old_id);
        let previous = t.remove_session(&old)?;
        if previous.expires_at <= now {
            return None;
        }
        let id = crate::rng::token();
        let new = SecretHash::of(&id);
        let (oidc_sid, relying_parties) = previous.continued_by(user);
        let session = Session {
            csrf: crate::rng::token(),
            user: user.map(str::to_owned),
            signed_in_at: user.map(|_| now),
            oidc_sid,
            relying_parties,
            expires_at: now
                + if user.is_some() {
                    self.limits.session_ttl
                } else {
                    self.limits.page_ttl
                },
            anonymous_from,
        };
        t.insert_session(new, session.clone());
        if let Some(list) = t.pages_by_session.remove(&old) {
            for (_, key) in &list {
                if let Some(page) = t.pages.get_mut(key) {
                    page.session = new;
                }
            }
            t.pages_by_session.insert(new, list);
        }
        Some(Replaced {
            id,
            session,
            ended: previous.ended_by(user),
        })
    }

    /// Adds `client_id` to the clients of the live signed-in session `id`.
    pub fn add_relying_party(&self, id: &str, client_id: &str, now: u64) {
        let mut t = self.lock();
        if let Some(s) = t
            .sessions
            .get_mut(&SecretHash::of(id))
            .filter(|s| s.expires_at > now && s.user.is_some())
        {
            if s.relying_parties.len() < MAX_RELYING_PARTIES
                && !s.relying_parties.iter().any(|c| c == client_id)
            {
                s.relying_parties.push(client_id.to_owned());
            }
        }
    }

    /// Stores a page for the session, counted against `client`; returns the page's id. A
    /// session at its bound loses its oldest page.
    pub fn put_page(
        &self,
        session_id: &str,
        pending: Pending,
        now: u64,
        client: IpAddr,
    ) -> Result<String, Refused> {
        let source = address_key(client);
        let session = SecretHash::of(session_id);
        let mut t = self.lock();
        let oldest = t
            .pages_by_session
            .get(&session)
            .filter(|list| list.len() >= self.limits.max_pages_per_session)
            .and_then(|list| list.first())
            .map(|(_, key)| *key);
        if let Some(key) = oldest {
            t.remove_page(&key);
        }
        let max = self.limits.max_entries;
        if t.pages.len() >= max {
            t.purge_once(now);
            if t.pages.len() >= max {
                return Err(Refused::Full);
            }
        }
        let per_address = self.limits.max_pages_per_address;
        if t.pages_by_source.get(&source).copied().unwrap_or(0) >= per_address {
            t.purge_once(now);
            if t.pages_by_source.get(&source).copied().unwrap_or(0) >= per_address {
                return Err(Refused::Address);
            }
        }
        let id = crate::rng::token();
        t.insert_page(
            SecretHash::of(&id),
            Page {
                pending,
                session,
                expires_at: now + self.limits.page_ttl,
                source,
            },
        );
        Ok(id)
    }

    /// The live page `id` of session `session_id`.
    pub fn page(&self, id: &str, session_id: &str, now: u64) -> Option<Page> {
        let t = self.lock();
        t.pages
            .get(&SecretHash::of(id))
            .filter(|p| p.expires_at > now && p.session == SecretHash::of(session_id))
            .cloned()
    }

    /// Removes and returns the live page `id` of session `session_id` (a decision is applied once).
    pub fn take_page(&self, id: &str, session_id: &str, now: u64) -> Option<Page> {
        let mut t = self.lock();
        let key = SecretHash::of(id);
        let ok = t
            .pages
            .get(&key)
            .is_some_and(|p| p.expires_at > now && p.session == SecretHash::of(session_id));
        if ok {
            t.remove_page(&key)
        } else {
            None
        }
    }

    /// Drops expired sessions and pages.
    pub fn purge(&self, now: u64) {
        self.lock().purge(now);
    }
}

impl SessionStore for MemorySessions {
    fn get<'a>(&'a self, id: &'a str, now: u64) -> Answer<'a, Option<Session>> {
        ready(Ok(MemorySessions::get(self, id, now)))
    }

    fn create(&self, now: u64, client: IpAddr) -> Answer<'_, Result<(String, Session), Refused>> {
        ready(Ok(MemorySessions::create(self, now, client)))
    }

    fn sign_in<'a>(
        &'a self,
        old_id: &'a str,
        user: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Replaced>> {
        ready(Ok(MemorySessions::sign_in(self, old_id, user, now)))
    }

    fn sign_out<'a>(
        &'a self,
        old_id: &'a str,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Option<Replaced>> {
        ready(Ok(MemorySessions::sign_out(self, old_id, now, client)))
    }

    fn add_relying_party<'a>(
        &'a self,
        id: &'a str,
        client_id: &'a str,
        now: u64,
    ) -> Answer<'a, ()> {
        MemorySessions::add_relying_party(self, id, client_id, now);
        ready(Ok(()))
    }

    fn put_page<'a>(
        &'a self,
        session_id: &'a str,
        page: NewPage<'a>,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Result<String, Refused>> {
        let pending = match page {
            NewPage::Authorization { pending, .. } => Pending::Authorization(pending),
            NewPage::Device(pending) => Pending::Device(pending),
        };
        ready(Ok(MemorySessions::put_page(
            self, session_id, pending, now, client,
        )))
    }

    fn page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>> {
        ready(Ok(
            MemorySessions::page(self, id, session_id, now).map(|p| p.pending)
        ))
    }

    fn take_page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>> {
        ready(Ok(
            MemorySessions::take_page(self, id, session_id, now).map(|p| p.pending)
        ))
    }

    fn purge(&self, now: u64) {
        MemorySessions::purge(self, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::flow::drive_async;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    /// About what a page of a usual authorization request costs, in bytes (see the module docs).
    const PAGE_BYTES_TYPICAL: usize = 640;

    /// About what a page costs at most, with a `state` of 1024 bytes, in bytes.
    const PAGE_BYTES_MAX_STATE: usize = 1664;

    /// A pending authorization as the engine makes it, with a `state` of `state_len` bytes.
    fn pending_with_state(state_len: usize) -> Pending {
        crate::test_support::block_on(async {
            let engine = crate::test_support::engine();
            let store = crate::store::AnyStore::memory();
            let client = crate::admin::clients::add(
                &store,
                &engine,
                &crate::admin::clients::NewClient {
                    name: "Thunderbird Mail".to_owned(),
                    redirect_uris: vec!["http://127.0.0.1/cb".to_owned()],
                    public: true,
                    scope: Some("mail offline_access".to_owned()),
                    ..Default::default()
                },
                1,
            )
            .await
            .unwrap();
            let query = format!(
                "response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcb&scope=mail+offline_access&state={}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
                client.client_id,
                "s".repeat(state_len)
            );
            let flow = engine.authorize(query.as_bytes(), 1);
            match drive_async(flow, &store, &mut crate::rng::OsRandom)
                .await
                .unwrap()
            {
                oauth_proto::authorize::AuthorizeOutcome::Consent(p) => Pending::Authorization(p),
                other => panic!("{other:?}"),
            }
        })
    }

    fn pending() -> Pending {
        pending_with_state(16)
    }

    fn limits(max: usize) -> Limits {
        Limits {
            session_ttl: 100,
            page_ttl: 10,
            max_entries: max,
            max_anonymous_per_address: max,
            max_pages_per_address: max,
            max_pages_per_session: max,
        }
    }

    fn tables(max: usize) -> MemorySessions {
        MemorySessions::new(limits(max))
    }

    #[test]
    fn sign_in_rotates_the_id_and_keeps_pages() {
        let s = tables(10);
        let (id, session) = s.create(0, A).unwrap();
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("nope"));
        let page = s.put_page(&id, pending(), 0, A).unwrap();
        let in_ = s.sign_in(&id, "alice", 1).unwrap();
        let (new_id, signed) = (in_.id, in_.session);
        assert_ne!(new_id, id);
        assert_ne!(signed.csrf, session.csrf);
        assert!(s.get(&id, 1).is_none(), "old id is dead");
        assert_eq!(s.get(&new_id, 1).unwrap().user.as_deref(), Some("alice"));
        assert!(s.page(&page, &id, 1).is_none());
        assert!(s.page(&page, &new_id, 1).is_some());
        let out = s.sign_out(&new_id, 2, A).unwrap();
        let (out_id, out) = (out.id, out.session);
        assert!(out.user.is_none());
        assert!(s.get(&new_id, 2).is_none());
        assert!(s.page(&page, &out_id, 2).is_some());
        let new_id = s.sign_in(&out_id, "bob", 3).unwrap().id;
        assert!(s.take_page(&page, &new_id, 1).is_some());
        assert!(s.take_page(&page, &new_id, 1).is_none(), "used once");
    }

    #[test]
    fn the_sid_lasts_the_users_session_and_the_clients_are_bounded() {
        let s = tables(10);
        let (id, anonymous) = s.create(0, A).unwrap();
        assert_eq!(anonymous.oidc_sid, None);
        let alice = s.sign_in(&id, "alice", 1).unwrap();
        assert_eq!(alice.ended, None, "nobody was signed in");
        let sid = alice.session.oidc_sid.clone().unwrap();
        assert_ne!(sid, alice.id, "the sid is not the cookie");
        for n in 0..MAX_RELYING_PARTIES + 5 {
            s.add_relying_party(&alice.id, &format!("c{}", n % (MAX_RELYING_PARTIES + 3)), 2);
        }
        s.add_relying_party(&alice.id, "c0", 2);
        let listed = s.get(&alice.id, 2).unwrap().relying_parties;
        assert_eq!(listed.len(), MAX_RELYING_PARTIES);
        assert_eq!(listed[0], "c0");
        // Alice signing in again (prompt=login) continues the session.
        let again = s.sign_in(&alice.id, "alice", 3).unwrap();
        assert_eq!(again.session.oidc_sid.as_deref(), Some(sid.as_str()));
        assert_eq!(again.session.relying_parties, listed);
        assert_eq!(again.ended, None);
        // Bob signing in over it ends alice's session: a new sid, no clients.
        let bob = s.sign_in(&again.id, "bob", 4).unwrap();
        assert_ne!(bob.session.oidc_sid.as_deref(), Some(sid.as_str()));
        assert!(bob.session.relying_parties.is_empty());
        let ended = bob.ended.unwrap();
        assert_eq!(
            (ended.user.as_str(), ended.oidc_sid.as_deref()),
            ("alice", Some(sid.as_str()))
        );
        assert_eq!(ended.relying_parties, listed);
        // Signing out ends bob's; an anonymous session lists no client.
        let out = s.sign_out(&bob.id, 5, A).unwrap();
        assert_eq!(out.ended.unwrap().oidc_sid, bob.session.oidc_sid);
        s.add_relying_party(&out.id, "c1", 5);
        assert!(s.get(&out.id, 5).unwrap().relying_parties.is_empty());
    }

    #[test]
    fn pages_belong_to_their_session_and_expire() {
        let s = tables(10);
        let (a, _) = s.create(0, A).unwrap();
        let (b, _) = s.create(0, A).unwrap();
        let page = s.put_page(&a, pending(), 0, A).unwrap();
        assert!(s.page(&page, &b, 1).is_none());
        assert!(s.page(&page, &a, 10).is_none(), "expired");
        assert!(s.get(&a, 10).is_none());
    }

    #[test]
    fn bounded() {
        let s = MemorySessions::new(Limits {
            max_anonymous_per_address: 10,
            ..limits(2)
        });
        s.create(0, A).unwrap();
        s.create(0, B).unwrap();
        assert_eq!(s.create(0, A).unwrap_err(), Refused::Full);
        assert!(s.create(20, A).is_ok(), "expired entries make room");
    }

    #[test]
    fn one_address_cannot_take_the_tables_from_the_others() {
        let s = MemorySessions::new(Limits {
            max_anonymous_per_address: 3,
            max_pages_per_address: 4,
            ..limits(100)
        });
        let ids: Vec<String> = (0..3).map(|_| s.create(0, B).unwrap().0).collect();
        assert_eq!(s.create(0, B).unwrap_err(), Refused::Address);
        // Another address, and the same host's other IPv6 /64s, are unaffected.
        assert!(s.create(0, A).is_ok());
        for (i, id) in ids.iter().enumerate() {
            s.put_page(id, pending(), 0, B).unwrap();
            if i < 1 {
                s.put_page(id, pending(), 0, B).unwrap();
            }
        }
        assert_eq!(
            s.put_page(&ids[0], pending(), 0, B).unwrap_err(),
            Refused::Address
        );
        let (a, _) = s.create(0, A).unwrap();
        assert!(s.put_page(&a, pending(), 0, A).is_ok());
        // Signing in takes a session out of the anonymous count; expiry frees the rest.
        s.sign_in(&ids[0], "alice", 1).unwrap();
        assert!(s.create(1, B).is_ok());
        assert!(s.create(11, B).is_ok(), "expired ones no longer count");
        assert!(s.put_page(&a, pending(), 11, B).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let s = MemorySessions::new(Limits {
            max_anonymous_per_address: 1,
            ..limits(100)
        });
        let v6 = |t: &str| t.parse::<IpAddr>().unwrap();
        s.create(0, v6("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            s.create(0, v6("2001:db8:1:2:ffff::9")).unwrap_err(),
            Refused::Address
        );
        assert!(s.create(0, v6("2001:db8:1:3::1")).is_ok());
        s.create(0, v6("::ffff:192.0.2.1")).unwrap();
        assert_eq!(s.create(0, v6("192.0.2.1")).unwrap_err(), Refused::Address);
    }

    #[test]
    fn a_session_keeps_only_its_newest_pages() {
        let s = MemorySessions::new(Limits {
            max_pages_per_session: 3,
            ..limits(100)
        });
        let (id, _) = s.create(0, A).unwrap();
        let pages: Vec<String> = (0..5)
            .map(|_| s.put_page(&id, pending(), 0, A).unwrap())
            .collect();
        assert!(s.page(&pages[0], &id, 1).is_none(), "oldest evicted");
        assert!(s.page(&pages[1], &id, 1).is_none());
        for p in &pages[2..] {
            assert!(s.page(p, &id, 1).is_some());
        }
        let t = s.lock();
        assert_eq!(t.pages.len(), 3);
        assert_eq!(t.pages_by_source.get(&A), Some(&3));
    }

    #[test]
    fn page_memory_is_small() {
        let page = |state_len| Page {
            pending: pending_with_state(state_len),
            session: SecretHash::of("s"),
            expires_at: 0,
            source: A,
        };
        let typical = page(32).approx_bytes();
        let largest = page(oauth_proto::authorize::MAX_STATE_BYTES).approx_bytes();
        assert!(typical <= PAGE_BYTES_TYPICAL, "{typical}");
        assert!(largest <= PAGE_BYTES_MAX_STATE, "{largest}");
        assert!(largest >= oauth_proto::authorize::MAX_STATE_BYTES);
    }
}
