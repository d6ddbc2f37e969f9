//! Browser sessions and the authorization pages in progress, kept in server memory.
//!
//! A session is created the first time a browser reaches an authorization page and named by a
//! random 256-bit id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the issuer is https).
//! It holds the CSRF token that every form must echo, and, after sign-in, the user. Signing in
//! replaces the session id, so an id planted before sign-in is worthless afterwards.
//!
//! A *page* is one request waiting for the user, and the session it belongs to: either an
//! authorization request (the engine's `PendingAuthorization` and the original query, so the
//! request is re-validated before the decision is applied) or a device request whose user code
//! was entered on the device verification page (the engine's `PendingDevice`). Forms name it by another random id; a page is only
//! usable from its own session, and only once.
//!
//! Both tables are keyed by the SHA-256 of the id (ids are never compared byte by byte), expire,
//! and are bounded in size. They live in memory: a restart signs everyone out, which is harmless.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use oauth_proto::authorize::PendingAuthorization;
use oauth_proto::device_verify::PendingDevice;
use oauth_proto::secret::SecretHash;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "oauth_session";

/// One browser session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token every form must carry.
    pub csrf: String,
    /// The signed-in user, if any.
    pub user: Option<String>,
    expires_at: u64,
}

impl Session {
    /// Constant-time check of a submitted CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        self.csrf.len() == submitted.len()
            && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// What a page waits for the user to decide.
#[derive(Clone, Debug)]
pub enum Pending {
    /// An authorization request at the authorization endpoint.
    Authorization {
        /// What the engine validated.
        pending: PendingAuthorization,
        /// The original request, re-run before the decision is applied.
        query: Vec<u8>,
    },
    /// A device request, found by the user code typed on the device verification page.
    Device(PendingDevice),
}

/// One request waiting for the user's decision.
#[derive(Clone, Debug)]
pub struct Page {
    /// The request.
    pub pending: Pending,
    session: SecretHash,
    expires_at: u64,
}

/// Lifetimes and bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Lifetime of a signed-in session.
    pub session_ttl: u64,
    /// Lifetime of an anonymous session and of a page.
    pub page_ttl: u64,
    /// Upper bound on each table.
    pub max_entries: usize,
}

/// The tables are full even after dropping expired entries.
#[derive(Debug)]
pub struct Full;

#[derive(Default)]
struct Tables {
    sessions: HashMap<SecretHash, Session>,
    pages: HashMap<SecretHash, Page>,
}

/// Sessions and pages.
pub struct Sessions {
    tables: Mutex<Tables>,
    limits: Limits,
}

impl Sessions {
    /// Empty tables.
    pub fn new(limits: Limits) -> Self {
        Sessions {
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

    /// A new anonymous session: its id (for the cookie) and itself.
    pub fn create(&self, now: u64) -> Result<(String, Session), Full> {
        let mut t = self.lock();
        self.make_room(&mut t, now)?;
        let id = crate::rng::token();
        let session = Session {
            csrf: crate::rng::token(),
            user: None,
            expires_at: now + self.limits.page_ttl,
        };
        t.sessions.insert(SecretHash::of(&id), session.clone());
        Ok((id, session))
    }

    /// Signs `user` in on the session `old_id`: the session gets a new id and CSRF token, and
    /// keeps its pages. Returns the new id and session, or `None` if the old one is gone.
    pub fn sign_in(&self, old_id: &str, user: &str, now: u64) -> Option<(String, Session)> {
        self.replace(old_id, Some(user), now)
    }

    /// Signs the user of session `old_id` out ("not you?"): the session gets a new id and CSRF
    /// token, no user, and keeps its pages. `None` if the old one is gone.
    pub fn sign_out(&self, old_id: &str, now: u64) -> Option<(String, Session)> {
        self.replace(old_id, None, now)
    }

    fn replace(&self, old_id: &str, user: Option<&str>, now: u64) -> Option<(String, Session)> {
        let mut t = self.lock();
        let old = SecretHash::of(old_id);
        t.sessions.remove(&old).filter(|s| s.expires_at > now)?;
        let id = crate::rng::token();
        let new = SecretHash::of(&id);
        let session = Session {
            csrf: crate::rng::token(),
            user: user.map(str::to_owned),
            expires_at: now
                + if user.is_some() {
                    self.limits.session_ttl
                } else {
                    self.limits.page_ttl
                },
        };
        t.sessions.insert(new, session.clone());
        for page in t.pages.values_mut() {
            if page.session == old {
                page.session = new;
            }
        }
        Some((id, session))
    }

    /// Stores a page for the session; returns the page's id.
    pub fn put_page(&self, session_id: &str, pending: Pending, now: u64) -> Result<String, Full> {
        let mut t = self.lock();
        self.make_room(&mut t, now)?;
        let id = crate::rng::token();
        t.pages.insert(
            SecretHash::of(&id),
            Page {
                pending,
                session: SecretHash::of(session_id),
                expires_at: now + self.limits.page_ttl,
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
            t.pages.remove(&key)
        } else {
            None
        }
    }

    /// Drops expired sessions and pages.
    pub fn purge(&self, now: u64) {
        let mut t = self.lock();
        Self::purge_locked(&mut t, now);
    }

    fn purge_locked(t: &mut Tables, now: u64) {
        t.sessions.retain(|_, s| s.expires_at > now);
        t.pages.retain(|_, p| p.expires_at > now);
    }

    fn make_room(&self, t: &mut Tables, now: u64) -> Result<(), Full> {
        let max = self.limits.max_entries;
        if t.sessions.len() >= max || t.pages.len() >= max {
            Self::purge_locked(t, now);
        }
        if t.sessions.len() >= max || t.pages.len() >= max {
            return Err(Full);
        }
        Ok(())
    }
}

/// The session cookie's value in a `Cookie` header, if present.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value for a session id.
pub fn set_cookie(id: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::scope::Scope;

    fn pending() -> Pending {
        Pending::Authorization {
            pending: pending_authorization(),
            query: b"q".to_vec(),
        }
    }

    fn pending_authorization() -> PendingAuthorization {
        PendingAuthorization {
            client_id: "c".to_owned(),
            client_name: "C".to_owned(),
            redirect_uri: "https://a.example/cb".to_owned(),
            redirect_uri_sent: true,
            scope: Scope::empty(),
            state: None,
            challenge: None,
        }
    }

    fn tables(max: usize) -> Sessions {
        Sessions::new(Limits {
            session_ttl: 100,
            page_ttl: 10,
            max_entries: max,
        })
    }

    #[test]
    fn sign_in_rotates_the_id_and_keeps_pages() {
        let s = tables(10);
        let (id, session) = s.create(0).unwrap();
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("nope"));
        let page = s.put_page(&id, pending(), 0).unwrap();
        let (new_id, signed) = s.sign_in(&id, "alice", 1).unwrap();
        assert_ne!(new_id, id);
        assert_ne!(signed.csrf, session.csrf);
        assert!(s.get(&id, 1).is_none(), "old id is dead");
        assert_eq!(s.get(&new_id, 1).unwrap().user.as_deref(), Some("alice"));
        assert!(s.page(&page, &id, 1).is_none());
        assert!(s.page(&page, &new_id, 1).is_some());
        let (out_id, out) = s.sign_out(&new_id, 2).unwrap();
        assert!(out.user.is_none());
        assert!(s.get(&new_id, 2).is_none());
        assert!(s.page(&page, &out_id, 2).is_some());
        let (new_id, _) = s.sign_in(&out_id, "bob", 3).unwrap();
        assert!(s.take_page(&page, &new_id, 1).is_some());
        assert!(s.take_page(&page, &new_id, 1).is_none(), "used once");
    }

    #[test]
    fn pages_belong_to_their_session_and_expire() {
        let s = tables(10);
        let (a, _) = s.create(0).unwrap();
        let (b, _) = s.create(0).unwrap();
        let page = s.put_page(&a, pending(), 0).unwrap();
        assert!(s.page(&page, &b, 1).is_none());
        assert!(s.page(&page, &a, 10).is_none(), "expired");
        assert!(s.get(&a, 10).is_none());
    }

    #[test]
    fn bounded() {
        let s = tables(2);
        s.create(0).unwrap();
        s.create(0).unwrap();
        assert!(s.create(0).is_err());
        assert!(s.create(20).is_ok(), "expired entries make room");
    }

    #[test]
    fn cookies() {
        assert_eq!(
            cookie_value("a=1; oauth_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", COOKIE), None);
        assert!(set_cookie("x", 5, true).ends_with("; Secure"));
        assert!(set_cookie("x", 5, false).contains("HttpOnly; SameSite=Lax"));
    }
}
