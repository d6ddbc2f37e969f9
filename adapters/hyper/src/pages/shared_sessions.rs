//! Browser sessions and waiting pages in PostgreSQL, shared by every node
//! (`oauth_store_postgres`'s `pages` module has the tables and why their bounds hold across
//! nodes).
//!
//! # What is stored, and what is not
//!
//! The database keeps a session under the SHA-256 of its cookie value and a page under the
//! SHA-256 of its id: neither secret is ever stored. The session's CSRF token is not stored
//! either: it is derived from the cookie value (the SHA-256 of `csrf:` and the id, in hex), so
//! any node that sees the cookie knows it, and it changes with the id at sign-in as the memory
//! store's does.
//!
//! A page's body is small and versioned ([`PAGE_V1`], then a kind byte):
//! - an authorization page keeps the query string of its `GET /authorize`, and a node that needs
//!   the page runs the engine's authorization step on it again, which gives the same pending
//!   request (checked against the client as it is now, as the decision does anyway). So the page
//!   holds whatever the request carried (a `nonce`, resources), with no second copy of the
//!   engine's rules; its size is the request line's, bounded by `max_header_bytes`. A query is
//!   no secret: the browser carried it in the URL.
//! - a device page keeps nothing but its kind. Its user code is a secret the store keeps only
//!   hashed, so it travels in the page id instead (`<random>.<user code>`, in the browser's form
//!   only, where the page shows the code anyway): a node reads it from the id it is given and
//!   runs the engine's verification step again. The id's hash binds the code to the page.
//!
//! A page whose request no longer verifies (its client deleted, its device request decided or
//! expired) is gone, as an expired one is.

use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::device_verify::DeviceVerifyOutcome;
use oauth_proto::flow::drive_async;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::StoreError;
use oauth_proto::throttle::address_key;
use oauth_proto::Engine;
use oauth_store_postgres::{PageLimits, PageRefusal, PostgresStore, SessionRow};
use std::net::IpAddr;

use crate::cimd::FlowStore;
use crate::pages::sessions::{
    continuation, Answer, Limits, NewPage, Pending, Refused, Replaced, Session, SessionStore,
    MAX_RELYING_PARTIES,
};
use crate::rng::OsRandom;

/// The first byte of a page body: the form's version.
const PAGE_V1: u8 = 1;
/// The second: what the page waits for.
const KIND_AUTHORIZATION: u8 = 1;
const KIND_DEVICE: u8 = 2;

/// Sessions and pages in the database.
pub(crate) struct SharedSessions {
    db: PostgresStore,
    engine: Engine,
    flows: FlowStore,
    limits: Limits,
}

/// An address as the database keeps it: as the limiter counts it, 4 or 16 bytes.
pub(crate) fn address_bytes(ip: IpAddr) -> Vec<u8> {
    match address_key(ip) {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn address_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The CSRF token of the session named `id` (see the module docs).
fn csrf_of(id: &str) -> String {
    SecretHash::of(&format!("csrf:{id}")).to_hex()
}

fn session(id: &str, row: SessionRow) -> Session {
    Session {
        csrf: csrf_of(id),
        user: row.user,
        signed_in_at: row.signed_in_at,
        oidc_sid: row.oidc_sid,
        relying_parties: row.relying_parties,
        expires_at: row.expires_at,
        anonymous_from: row.anonymous_from.as_deref().and_then(address_of),
    }
}

/// The row replacing `old`: `new`, with the `sid` and clients [`continuation`] keeps.
fn keep(old: &SessionRow, new: SessionRow) -> SessionRow {
    let (oidc_sid, relying_parties) = continuation(
        old.user.as_deref(),
        &old.oidc_sid,
        &old.relying_parties,
        new.user.as_deref(),
    );
    SessionRow {
        oidc_sid,
        relying_parties,
        ..new
    }
}

fn refused(r: PageRefusal) -> Refused {
    match r {
        PageRefusal::Full => Refused::Full,
        PageRefusal::Address => Refused::Address,
    }
}

/// A page's body (see the module docs).
fn body(page: &NewPage<'_>) -> Vec<u8> {
    match page {
        NewPage::Authorization { query, .. } => {
            let mut body = Vec::with_capacity(2 + query.len());
            body.extend_from_slice(&[PAGE_V1, KIND_AUTHORIZATION]);
            body.extend_from_slice(query);
            body
        }
        NewPage::Device(_) => vec![PAGE_V1, KIND_DEVICE],
    }
}

/// What a page body and its id say to run again.
#[derive(Debug, PartialEq, Eq)]
enum Stored<'a> {
    Authorization(&'a [u8]),
    Device(&'a str),
}

fn stored<'a>(id: &'a str, body: &'a [u8]) -> Option<Stored<'a>> {
    match body {
        [PAGE_V1, KIND_AUTHORIZATION, query @ ..] => Some(Stored::Authorization(query)),
        [PAGE_V1, KIND_DEVICE] => id.split_once('.').map(|(_, code)| Stored::Device(code)),
        _ => None,
    }
}

fn limits(l: &Limits) -> PageLimits {
    PageLimits {
        max_entries: l.max_entries as u64,
        max_anonymous_per_address: l.max_anonymous_per_address as u64,
        max_pages_per_address: l.max_pages_per_address as u64,
        max_pages_per_session: l.max_pages_per_session as u64,
    }
}

impl SharedSessions {
    pub(crate) fn new(db: PostgresStore, engine: Engine, flows: FlowStore, limits: Limits) -> Self {
        SharedSessions {
            db,
            engine,
            flows,
            limits,
        }
    }

    async fn replace(
        &self,
        old_id: &str,
        user: Option<&str>,
        anonymous_from: Option<IpAddr>,
        now: u64,
    ) -> Result<Option<Replaced>, StoreError> {
        let id = crate::rng::token();
        let ttl = if user.is_some() {
            self.limits.session_ttl
        } else {
            self.limits.page_ttl
        };
        let row = SessionRow {
            user: user.map(str::to_owned),
            signed_in_at: user.map(|_| now),
            oidc_sid: None,
            relying_parties: Vec::new(),
            anonymous_from: anonymous_from.map(address_bytes),
            expires_at: now + ttl,
        };
        let old = SecretHash::of(old_id).0;
        let new = SecretHash::of(&id).0;
        let Some((previous, row)) = self.db.replace_session(old, new, row, keep, now).await? else {
            return Ok(None);
        };
        let ended = session(old_id, previous).ended_by(user);
        let session = session(&id, row);
        Ok(Some(Replaced { id, session, ended }))
    }

    /// Runs the engine again on what the page keeps (see the module docs); `None` when the
    /// request no longer verifies.
    async fn resolve(
        &self,
        id: &str,
        body: &[u8],
        now: u64,
    ) -> Result<Option<Pending>, StoreError> {
        match stored(id, body) {
            Some(Stored::Authorization(query)) => {
                let flow = self.engine.authorize(query, now);
                match drive_async(flow, &self.flows, &mut OsRandom).await? {
                    AuthorizeOutcome::Consent(p) => Ok(Some(Pending::Authorization(p))),
                    _ => Ok(None),
                }
            }
            Some(Stored::Device(code)) => {
                let flow = self.engine.device_verify(code, now);
                match drive_async(flow, &self.flows, &mut OsRandom).await? {
                    DeviceVerifyOutcome::Consent(p) => Ok(Some(Pending::Device(p))),
                    _ => Ok(None),
                }
            }
            None => Ok(None),
        }
    }
}

impl SessionStore for SharedSessions {
    fn get<'a>(&'a self, id: &'a str, now: u64) -> Answer<'a, Option<Session>> {
        Box::pin(async move {
            let row = self.db.session(SecretHash::of(id).0, now).await?;
            Ok(row.map(|row| session(id, row)))
        })
    }

    fn create(&self, now: u64, client: IpAddr) -> Answer<'_, Result<(String, Session), Refused>> {
        Box::pin(async move {
            let id = crate::rng::token();
            let row = SessionRow {
                user: None,
                signed_in_at: None,
                oidc_sid: None,
                relying_parties: Vec::new(),
                anonymous_from: Some(address_bytes(client)),
                expires_at: now + self.limits.page_ttl,
            };
            let source = address_bytes(client);
            let made = self
                .db
                .create_session(
                    SecretHash::of(&id).0,
                    source,
                    row.expires_at,
                    now,
                    limits(&self.limits),
                )
                .await?;
            Ok(made.map_err(refused).map(|()| {
                let session = session(&id, row);
                (id, session)
            }))
        })
    }

    fn sign_in<'a>(
        &'a self,
        old_id: &'a str,
        user: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Replaced>> {
        Box::pin(self.replace(old_id, Some(user), None, now))
    }

    fn sign_out<'a>(
        &'a self,
        old_id: &'a str,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Option<Replaced>> {
        Box::pin(self.replace(old_id, None, Some(client), now))
    }

    fn add_relying_party<'a>(
        &'a self,
        id: &'a str,
        client_id: &'a str,
        now: u64,
    ) -> Answer<'a, ()> {
        Box::pin(self.db.add_relying_party(
            SecretHash::of(id).0,
            client_id.to_owned(),
            MAX_RELYING_PARTIES as u64,
            now,
        ))
    }

    fn put_page<'a>(
        &'a self,
        session_id: &'a str,
        page: NewPage<'a>,
        now: u64,
        client: IpAddr,
    ) -> Answer<'a, Result<String, Refused>> {
        Box::pin(async move {
            let mut id = crate::rng::token();
            if let NewPage::Device(pending) = &page {
                id.push('.');
                id.push_str(pending.user_code());
            }
            let put = self
                .db
                .put_page(
                    SecretHash::of(&id).0,
                    SecretHash::of(session_id).0,
                    address_bytes(client),
                    body(&page),
                    now + self.limits.page_ttl,
                    now,
                    limits(&self.limits),
                )
                .await?;
            Ok(put.map_err(refused).map(|()| id))
        })
    }

    fn page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>> {
        Box::pin(async move {
            let key = (SecretHash::of(id).0, SecretHash::of(session_id).0);
            match self.db.page(key.0, key.1, now).await? {
                Some(body) => self.resolve(id, &body, now).await,
                None => Ok(None),
            }
        })
    }

    fn take_page<'a>(
        &'a self,
        id: &'a str,
        session_id: &'a str,
        now: u64,
    ) -> Answer<'a, Option<Pending>> {
        Box::pin(async move {
            let key = (SecretHash::of(id).0, SecretHash::of(session_id).0);
            match self.db.take_page(key.0, key.1, now).await? {
                Some(body) => self.resolve(id, &body, now).await,
                None => Ok(None),
            }
        })
    }

    fn purge(&self, _now: u64) {
        // The store's purge deletes expired sessions and pages with its other tables.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_small_versioned_and_keep_no_secret() {
        let query = b"response_type=code&client_id=c&state=s";
        let stored_body = [&[PAGE_V1, KIND_AUTHORIZATION][..], &query[..]].concat();
        assert_eq!(
            stored("random", &stored_body),
            Some(Stored::Authorization(&query[..]))
        );
        assert_eq!(
            stored("random.WDJB-MJHT", &[PAGE_V1, KIND_DEVICE]),
            Some(Stored::Device("WDJB-MJHT"))
        );
        assert_eq!(stored("random", &[PAGE_V1, KIND_DEVICE]), None, "no code");
        assert_eq!(
            stored("random", &[2, KIND_AUTHORIZATION]),
            None,
            "a newer form"
        );
        assert_eq!(stored("random", &[PAGE_V1, 9]), None);
        assert_eq!(stored("random", &[]), None);
    }

    #[test]
    fn the_csrf_token_follows_the_session_id() {
        let (a, b) = (crate::rng::token(), crate::rng::token());
        assert_eq!(csrf_of(&a), csrf_of(&a));
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert_ne!(
            csrf_of(&a),
            SecretHash::of(&a).to_hex(),
            "not the stored key"
        );
    }

    #[test]
    fn addresses_are_kept_as_the_limiter_counts_them() {
        let v6: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        assert_eq!(address_bytes(v6).len(), 16);
        assert_eq!(address_of(&address_bytes(v6)), Some(address_key(v6)));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_bytes(mapped), vec![192, 0, 2, 1]);
        assert_eq!(address_of(&[1, 2, 3]), None);
    }
}
