//! Browser sessions and the authorization pages in progress, behind one small trait
//! ([`SessionStore`]) with two implementations: in this process's memory
//! ([`memory_sessions`](crate::pages::memory_sessions), for the file and memory stores) and in
//! PostgreSQL, shared by every node ([`shared_sessions`](crate::pages::shared_sessions)), so that
//! a browser whose requests a load balancer spreads over the nodes completes its flow.
//!
//! A session is created the first time a browser reaches an authorization page and named by a
//! random 256-bit id in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the issuer is https).
//! It holds the CSRF token that every form must echo, and, after sign-in, the user. Signing in
//! replaces the session id, so an id planted before sign-in is worthless afterwards.
//!
//! A *page* is one request waiting for the user, and the session it belongs to: either an
//! authorization request (the engine's `PendingAuthorization`; the engine re-checks it against the
//! client when the decision is applied, so the page need not keep the request itself) or a device
//! request whose user code was entered on the device verification page (the engine's
//! `PendingDevice`). Forms name it by another random id; a page is only usable from its own
//! session, and only once.
//!
//! A signed-in session also has a public identifier, its `sid` (OpenID Connect Back-Channel
//! Logout 1.0 §2.1): a separate random value drawn at sign-in, which the ID tokens issued from
//! the session carry. It is not the cookie (an ID token is read, and often logged, by the relying
//! party; the cookie signs in) and nothing derives one from the other. It stays while the same
//! user signs in again on the session (`prompt=login`, `max_age`), and a new user gets a new one.
//! The session also lists the clients it gave a code with `openid` (at most
//! [`MAX_RELYING_PARTIES`], the first ones kept): when the session ends, those with a
//! `backchannel_logout_uri` get a logout token ([`crate::pages::backchannel`]). A client is listed
//! once the user approved it (the consent page's approval, or a remembered consent) and before
//! its code leaves, so no ID token escapes the list; one whose request then ended otherwise may
//! get a logout token for a session it does not know, which it ignores (§2.6). Showing a client
//! the sign-in or consent page lists nothing: any site can send a signed-in browser to
//! `/authorize` for its own client, which must not learn the user's `sub` from a logout token
//! nor take the session's places.
//!
//! Both implementations keep the same bounds ([`Limits`]): at most `max_sessions` of each, per
//! source address at most `max_anonymous_sessions_per_address` sessions nobody signed in to and
//! `max_pages_per_address` pages (an address past them gets [`Refused::Address`], 429, while the
//! others still get pages), and per session `max_pages_per_session` pages, a new one evicting the
//! oldest. Each implementation's module docs say how it keeps them.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use oauth_proto::authorize::PendingAuthorization;
use oauth_proto::device_verify::PendingDevice;
use oauth_proto::store::StoreError;
use oauth_proto::Engine;
use subtle::ConstantTimeEq;

use crate::cimd::FlowStore;
use crate::settings::ServerSettings;
use crate::store::AnyStore;

/// The session cookie's name.
pub const COOKIE: &str = "oauth_session";

/// The clients a session remembers for back-channel logout, at most.
pub const MAX_RELYING_PARTIES: usize = 32;

/// The amr (RFC 8176) of a sign-in on these pages: the only way to sign in is a password.
pub const AMR_PASSWORD: &str = "pwd";

/// One browser session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token every form must carry.
    pub csrf: String,
    /// The signed-in user, if any.
    pub user: Option<String>,
    /// When the user signed in (an ID token's `auth_time`).
    pub signed_in_at: Option<u64>,
    /// The signed-in session's public identifier, an ID token's `sid` (see the module docs).
    pub oidc_sid: Option<String>,
    /// The clients given a code with `openid` from this session, at most
    /// [`MAX_RELYING_PARTIES`].
    pub relying_parties: Vec<String>,
    pub(crate) expires_at: u64,
    /// For a session nobody signed in to: the address it counts against.
    pub(crate) anonymous_from: Option<IpAddr>,
}

impl Session {
    /// The sign-in, as the ID tokens issued from this session state it (`None` when nobody is
    /// signed in): when, by password, and the session's `sid`.
    pub fn authentication(&self, now: u64) -> Option<oauth_proto::authentication::Authentication> {
        self.user.as_ref()?;
        Some(oauth_proto::authentication::Authentication {
            auth_time: self.signed_in_at.unwrap_or(now),
            amr: vec![AMR_PASSWORD.to_owned()],
            sid: self.oidc_sid.clone(),
        })
    }

    /// What a sign-in of `user` replacing this session keeps: the same user continues the
    /// session (its `sid` and clients); anyone else starts a new one, and this one ended.
    pub(crate) fn continued_by(&self, user: Option<&str>) -> (Option<String>, Vec<String>) {
        continuation(
            self.user.as_deref(),
            &self.oidc_sid,
            &self.relying_parties,
            user,
        )
    }

    /// What ended when this session was replaced by one of `user` (or signed out): its user,
    /// `sid` and clients, unless the same user continues it.
    pub(crate) fn ended_by(&self, user: Option<&str>) -> Option<Ended> {
        let old = self.user.as_deref()?;
        if user == Some(old) {
            return None;
        }
        Some(Ended {
            user: old.to_owned(),
            oidc_sid: self.oidc_sid.clone(),
            relying_parties: self.relying_parties.clone(),
        })
    }

    /// Constant-time check of a submitted CSRF token.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        self.csrf.len() == submitted.len()
            && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// The `sid` and clients of a session of `old_user` replaced by one of `new_user`: kept when the
/// same user signs in again (a session signed in before sessions had a `sid` gets one), a new
/// `sid` for another user, neither when signed out.
pub(crate) fn continuation(
    old_user: Option<&str>,
    old_sid: &Option<String>,
    old_parties: &[String],
    new_user: Option<&str>,
) -> (Option<String>, Vec<String>) {
    match (new_user, old_user) {
        (Some(new), Some(old)) if new == old => (
            old_sid.clone().or_else(|| Some(crate::rng::token())),
            old_parties.to_vec(),
        ),
        (Some(_), _) => (Some(crate::rng::token()), Vec::new()),
        (None, _) => (None, Vec::new()),
    }
}

/// A signed-in session that ended (signed out, or replaced by another user's sign-in): whom
/// to tell (back-channel logout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The user who was signed in.
    pub user: String,
    /// The session's `sid`.
    pub oidc_sid: Option<String>,
    /// The clients given a code with `openid` from it.
    pub relying_parties: Vec<String>,
}

/// A session replaced by a sign-in or a sign-out: its new id (for the cookie), itself, and
/// what ended, if a user's session did.
#[derive(Clone, Debug)]
pub struct Replaced {
    /// The new id.
    pub id: String,
    /// The new session.
    pub session: Session,
    /// The signed-in session that ended, if any.
    pub ended: Option<Ended>,
}

/// What a page waits for the user to decide.
#[derive(Clone, Debug)]
pub enum Pending {
    /// An authorization request at the authorization endpoint (the engine re-checks it against
    /// the client when the decision is applied).
    Authorization(PendingAuthorization),
    /// A device request, found by the user code typed on the device verification page.
    Device(PendingDevice),
}

/// A page to store, with what another node needs to make it again.
#[derive(Debug)]
pub enum NewPage<'a> {
    /// An authorization request, and the query it came from.
    Authorization {
        /// The request.
        pending: PendingAuthorization,
        /// The query string of `GET /authorize` that made it.
        query: &'a [u8],
    },
    /// A device request (it carries its user code).
    Device(PendingDevice),
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
    /// Upper bound on the anonymous sessions of one source address.
    pub max_anonymous_per_address: usize,
    /// Upper bound on the pages of one source address.
    pub max_pages_per_address: usize,
    /// Upper bound on the pages of one session (a new one evicts the oldest).
    pub max_pages_per_session: usize,
}

impl Limits {
    /// The limits the server settings give.
    pub fn from_settings(s: &ServerSettings) -> Self {
        Limits {
            session_ttl: s.session_ttl_secs,
            page_ttl: s.page_ttl_secs,
            max_entries: s.max_sessions,
            max_anonymous_per_address: s.max_anonymous_sessions_per_address,
            max_pages_per_address: s.max_pages_per_address,
            max_pages_per_session: s.max_pages_per_session,
        }
    }
}

/// Why a session or page was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The tables are full even after dropping expired entries (503).
    Full,
    /// This source address has as many as it may have (429); others are unaffected.
    Address,
}

/// What a [`SessionStore`] call gives: a store failure is the server's (503).
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// An answer known at once.
pub(crate) fn ready<'a, T: Send + 'a>(value: Result<T, StoreError>) -> Answer<'a, T> {
    Box::pin(std::future::ready(value))
}

/// Where sessions and pages are kept (see the module docs).
pub trait SessionStore: Send + Sync {
    /// The live session named by a cookie value.
    fn get<'a>(&'a self, id: &'a str, now: u64) -> Answer<'a, Option<Session>>;

    /// A new anonymous session for a browser at `client`: its id (for the cookie) and itself.
    fn create(&self, now: u64, client: IpAddr) -> Answer<'_, Result<(String, Session), Refused>>;

    /// Signs `user` in on the session `old_id`: the session gets a new id and CSRF token, and
    /// keeps its pages (and its `sid` and clients when `user` was already signed in on it).
    /// `None` if the old one is gone.
    fn sign_in<'a>(
        &'a self,
        old_id: &'a str,
        user: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Replaced>>;

    /// Signs the user of session `old_id` out ("not you?", logout): the session gets a new id
    /// and CSRF token, no user, and keeps its pages; being anonymous again, it counts against
    /// `client`. `None` if the old one is gone.
    fn sign_out<'a>(
        &'a self,
        old_id: &'a str,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Option<Replaced>>;

    /// Adds `client_id` to the clients of the live signed-in session `id` (once; ignored past
    /// [`MAX_RELYING_PARTIES`]).
    fn add_relying_party<'a>(&'a self, id: &'a str, client_id: &'a str, now: u64)
        -> Answer<'a, ()>;

    /// Stores a page for the session, counted against `client`; returns the page's id. A
    /// session at its bound loses its oldest page.
    fn put_page<'a>(
        &'a self,
        session_id: &'a str,
        page: NewPage<'a>,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Result<String, Refused>>;

    /// The live page `id` of session `session_id`.
    fn page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>>;

    /// Removes and returns the live page `id` of session `session_id` (a decision is applied
    /// once).
    fn take_page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>>;

    /// Drops expired sessions and pages (the database's are purged with the store).
    fn purge(&self, now: u64);
}

/// The session store for a server on `store`: PostgreSQL's tables when it runs on PostgreSQL,
/// this process's memory otherwise. `flows` is what the server's flows run against (a page kept
/// in PostgreSQL is made again through it).
pub fn for_store(
    engine: &Engine,
    store: &Arc<AnyStore>,
    flows: &FlowStore,
    limits: Limits,
) -> Box<dyn SessionStore> {
    match &**store {
        AnyStore::Postgres(pg) => Box::new(crate::pages::shared_sessions::SharedSessions::new(
            pg.clone(),
            engine.clone(),
            flows.clone(),
            limits,
        )),
        _ => Box::new(crate::pages::memory_sessions::MemorySessions::new(limits)),
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
