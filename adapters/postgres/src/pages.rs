//! The reference server's browser sessions and waiting pages, shared by every node: a browser
//! whose requests a load balancer sends to different nodes finds its session and its pages on
//! each (`oauth-server`'s `pages::sessions` has what they mean).
//!
//! # What is stored
//!
//! `page_sessions` holds a session under the SHA-256 of its cookie value (the cookie is a
//! secret, so the database never sees it), with the signed-in user's name, or, for a session
//! nobody signed in to, the address it counts against, and its expiry. `pages` holds a page under
//! the SHA-256 of its id, with the hash of its session, the address it counts against, an
//! insertion number (to evict a session's oldest) and an opaque body the server encodes and
//! versions itself. Nothing here knows what a body says.
//!
//! # Bounds, race-free
//!
//! The bounds are those of the server's in-memory tables ([`PageLimits`]). Creating a session or a
//! page runs in one READ COMMITTED transaction that first takes a transaction-scoped advisory
//! lock on its source address (`pg_advisory_xact_lock(class, hashtext(address))`), then counts
//! the address's live rows and the table's, then inserts. The lock makes the creations of one
//! address run one at a time across all nodes, and each statement after it reads a snapshot
//! taken after the previous holder committed, so **the per-address bounds are exact whatever
//! the number of nodes** (two addresses whose hashes collide merely wait for each other). The
//! table's own bound (`max_entries`) is counted without that lock: concurrent creations from
//! different addresses may pass it together, so a table may exceed it by at most the number of
//! creations in flight at once, which the pool sizes bound (`max_connections` per node).
//! Counting the table reads at most `max_entries` rows of its index.
//!
//! A page is used once: [`PostgresStore::take_page`] is one `DELETE ... RETURNING`, which only
//! one transaction can win. Signing in (a new session id) moves the session's pages over in the
//! transaction that replaces the session row. Expired rows are invisible at once (every read
//! checks `expires_at`) and deleted by the store's purge in batches like every other table.

use oauth_proto::store::StoreError;

use crate::codec::{from_time, time};
use crate::error::from_pool;
use deadpool_postgres::Transaction;

use crate::sql::{execute, query_opt, transaction, Failure, Outcome};
use crate::PostgresStore;

/// The bounds on sessions and pages (the server's `[server]` settings).
#[derive(Clone, Copy, Debug)]
pub struct PageLimits {
    /// Live sessions at most, and live pages at most.
    pub max_entries: u64,
    /// Live sessions nobody signed in to, per source address.
    pub max_anonymous_per_address: u64,
    /// Live pages per source address.
    pub max_pages_per_address: u64,
    /// Pages per session; a new one evicts the session's oldest.
    pub max_pages_per_session: u64,
}

/// Why a session or page was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRefusal {
    /// The table holds `max_entries` live rows.
    Full,
    /// The source address holds as many as it may.
    Address,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The signed-in user.
    pub user: Option<String>,
    /// When the user signed in.
    pub signed_in_at: Option<u64>,
    /// The signed-in session's public `sid` (back-channel logout).
    pub oidc_sid: Option<String>,
    /// The clients given a code with `openid` from the session, oldest first.
    pub relying_parties: Vec<String>,
    /// For a session nobody signed in to: the address it counts against.
    pub anonymous_from: Option<Vec<u8>>,
    /// When it expires.
    pub expires_at: u64,
}

/// The advisory lock classes of session and page creation ("os" and "op" in ASCII).
const SESSION_LOCK: i32 = 0x6f73;
const PAGE_LOCK: i32 = 0x6f70;

/// Locks `source`'s creations of the given class until the transaction ends.
const LOCK_SOURCE: &str = "SELECT pg_advisory_xact_lock($1, hashtext(encode($2, 'hex')))";

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// The live session whose id hashes to `id_hash`.
    pub async fn session(
        &self,
        id_hash: [u8; 32],
        now: u64,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.run(|shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            let row = query_opt(
                &client,
                "reading a session",
                "SELECT username, anonymous_from, expires_at, signed_in_at, oidc_sid,
                        relying_parties
                 FROM page_sessions WHERE id_hash = $1 AND expires_at > $2",
                &[&&id_hash[..], &time(now)],
            )
            .await
            .map_err(crate::sql::store_error)?;
            Ok(row.map(|r| session_row(&r)))
        })
        .await
    }

    /// Stores a new session nobody signed in to, counted against `source`, unless a bound
    /// refuses it (see the module docs).
    pub async fn create_session(
        &self,
        id_hash: [u8; 32],
        source: Vec<u8>,
        expires_at: u64,
        now: u64,
        limits: PageLimits,
    ) -> Result<Result<(), PageRefusal>, StoreError> {
        self.run(move |shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            transaction!(client, |tx| {
                create_session_in(&tx, &id_hash, &source, expires_at, now, limits).await?
            })
        })
        .await
    }

    /// Replaces the live session `old` by `new` (signing in or out): `row` says what to store,
    /// except what `keep` takes from the old row (the `sid` and clients of a session the same
    /// user continues); its pages move to `new`. Gives the old row and the stored one; `None`
    /// when `old` is gone or expired.
    pub async fn replace_session(
        &self,
        old: [u8; 32],
        new: [u8; 32],
        row: SessionRow,
        keep: fn(&SessionRow, SessionRow) -> SessionRow,
        now: u64,
    ) -> Result<Option<(SessionRow, SessionRow)>, StoreError> {
        self.run(move |shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            transaction!(client, |tx| {
                replace_session_in(&tx, &old, &new, row.clone(), keep, now).await?
            })
        })
        .await
    }

    /// Adds `client_id` to the clients of the live signed-in session `id_hash`, once, unless it
    /// lists `max` already: one statement, so concurrent additions on any nodes all count.
    pub async fn add_relying_party(
        &self,
        id_hash: [u8; 32],
        client_id: String,
        max: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            execute(
                &client,
                "adding a session's client",
                "UPDATE page_sessions SET relying_parties = array_append(relying_parties, $2)
                 WHERE id_hash = $1 AND expires_at > $3 AND username IS NOT NULL
                   AND NOT ($2 = ANY (relying_parties))
                   AND cardinality(relying_parties) < $4::bigint",
                &[
                    &&id_hash[..],
                    &client_id.as_bytes(),
                    &time(now),
                    &count(max),
                ],
            )
            .await
            .map_err(crate::sql::store_error)?;
            Ok(())
        })
        .await
    }

    /// Stores a page of session `session_hash` under `id_hash`, counted against `source`; a
    /// session at its bound loses its oldest page first (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_page(
        &self,
        id_hash: [u8; 32],
        session_hash: [u8; 32],
        source: Vec<u8>,
        body: Vec<u8>,
        expires_at: u64,
        now: u64,
        limits: PageLimits,
    ) -> Result<Result<(), PageRefusal>, StoreError> {
        self.run(move |shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            let page = NewPage {
                id_hash: &id_hash,
                session_hash: &session_hash,
                source: &source,
                body: &body,
                expires_at,
            };
            transaction!(client, |tx| put_page_in(&tx, &page, now, limits).await?)
        })
        .await
    }

    /// The body of the live page `id_hash` of session `session_hash`.
    pub async fn page(
        &self,
        id_hash: [u8; 32],
        session_hash: [u8; 32],
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.page_statement(
            "reading a page",
            "SELECT body FROM pages
             WHERE id_hash = $1 AND session_hash = $2 AND expires_at > $3",
            id_hash,
            session_hash,
            now,
        )
        .await
    }

    /// Removes the live page `id_hash` of session `session_hash` and gives its body: of
    /// concurrent takes on any nodes, one gets it.
    pub async fn take_page(
        &self,
        id_hash: [u8; 32],
        session_hash: [u8; 32],
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.page_statement(
            "taking a page",
            "DELETE FROM pages
             WHERE id_hash = $1 AND session_hash = $2 AND expires_at > $3
             RETURNING body",
            id_hash,
            session_hash,
            now,
        )
        .await
    }

    async fn page_statement(
        &self,
        what: &'static str,
        sql: &'static str,
        id_hash: [u8; 32],
        session_hash: [u8; 32],
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            let row = query_opt(
                &client,
                what,
                sql,
                &[&&id_hash[..], &&session_hash[..], &time(now)],
            )
            .await
            .map_err(crate::sql::store_error)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
        .await
    }
}

async fn create_session_in(
    tx: &Transaction<'_>,
    id_hash: &[u8; 32],
    source: &Vec<u8>,
    expires_at: u64,
    now: u64,
    limits: PageLimits,
) -> Result<Outcome<Result<(), PageRefusal>>, Failure> {
    execute(
        tx,
        "locking an address",
        LOCK_SOURCE,
        &[&SESSION_LOCK, source],
    )
    .await?;
    let counts = query_opt(
        tx,
        "counting sessions",
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM page_sessions
                     WHERE expires_at > $1 LIMIT $2) live),
                (SELECT count(*) FROM page_sessions
                     WHERE anonymous_from = $3 AND expires_at > $1)",
        &[&time(now), &count(limits.max_entries), source],
    )
    .await?;
    let (all, mine): (i64, i64) = counts.map_or((0, 0), |r| (r.get(0), r.get(1)));
    if all >= count(limits.max_entries) {
        return Ok(Outcome::Abandon(Err(PageRefusal::Full)));
    }
    if mine >= count(limits.max_anonymous_per_address) {
        return Ok(Outcome::Abandon(Err(PageRefusal::Address)));
    }
    execute(
        tx,
        "storing a session",
        "INSERT INTO page_sessions (id_hash, username, anonymous_from, expires_at)
         VALUES ($1, NULL, $2, $3)",
        &[&&id_hash[..], source, &time(expires_at)],
    )
    .await?;
    Ok(Outcome::Commit(Ok(())))
}

/// A `page_sessions` row read by its columns, in [`PostgresStore::session`]'s order.
fn session_row(r: &tokio_postgres::Row) -> SessionRow {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    SessionRow {
        user: r.get::<_, Option<&[u8]>>(0).map(text),
        anonymous_from: r.get::<_, Option<&[u8]>>(1).map(<[u8]>::to_vec),
        expires_at: from_time(r.get(2)),
        signed_in_at: r.get::<_, Option<i64>>(3).map(from_time),
        oidc_sid: r.get(4),
        relying_parties: r.get::<_, Vec<&[u8]>>(5).into_iter().map(text).collect(),
    }
}

async fn replace_session_in(
    tx: &Transaction<'_>,
    old: &[u8; 32],
    new: &[u8; 32],
    row: SessionRow,
    keep: fn(&SessionRow, SessionRow) -> SessionRow,
    now: u64,
) -> Result<Outcome<Option<(SessionRow, SessionRow)>>, Failure> {
    let gone = query_opt(
        tx,
        "ending a session",
        "DELETE FROM page_sessions WHERE id_hash = $1 AND expires_at > $2
         RETURNING username, anonymous_from, expires_at, signed_in_at, oidc_sid, relying_parties",
        &[&&old[..], &time(now)],
    )
    .await?;
    let Some(gone) = gone else {
        return Ok(Outcome::Abandon(None));
    };
    let previous = session_row(&gone);
    let row = keep(&previous, row);
    let parties: Vec<&[u8]> = row.relying_parties.iter().map(String::as_bytes).collect();
    execute(
        tx,
        "storing a session",
        "INSERT INTO page_sessions (id_hash, username, anonymous_from, expires_at, signed_in_at,
                                    oidc_sid, relying_parties)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &&new[..],
            &row.user.as_ref().map(String::as_bytes),
            &row.anonymous_from,
            &time(row.expires_at),
            &row.signed_in_at.map(time),
            &row.oidc_sid,
            &parties,
        ],
    )
    .await?;
    execute(
        tx,
        "moving a session's pages",
        "UPDATE pages SET session_hash = $2 WHERE session_hash = $1",
        &[&&old[..], &&new[..]],
    )
    .await?;
    Ok(Outcome::Commit(Some((previous, row))))
}

/// What [`PostgresStore::put_page`] stores.
struct NewPage<'a> {
    id_hash: &'a [u8; 32],
    session_hash: &'a [u8; 32],
    source: &'a Vec<u8>,
    body: &'a Vec<u8>,
    expires_at: u64,
}

async fn put_page_in(
    tx: &Transaction<'_>,
    page: &NewPage<'_>,
    now: u64,
    limits: PageLimits,
) -> Result<Outcome<Result<(), PageRefusal>>, Failure> {
    execute(
        tx,
        "locking an address",
        LOCK_SOURCE,
        &[&PAGE_LOCK, page.source],
    )
    .await?;
    let keep = count(limits.max_pages_per_session.saturating_sub(1));
    execute(
        tx,
        "evicting a session's oldest pages",
        "DELETE FROM pages WHERE id_hash IN (
             SELECT id_hash FROM pages WHERE session_hash = $1
             ORDER BY seq DESC OFFSET $2)",
        &[&&page.session_hash[..], &keep],
    )
    .await?;
    let counts = query_opt(
        tx,
        "counting pages",
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM pages
                     WHERE expires_at > $1 LIMIT $2) live),
                (SELECT count(*) FROM pages WHERE source = $3 AND expires_at > $1)",
        &[&time(now), &count(limits.max_entries), page.source],
    )
    .await?;
    let (all, mine): (i64, i64) = counts.map_or((0, 0), |r| (r.get(0), r.get(1)));
    // A refusal keeps the eviction: the session asked for a newer page than its oldest.
    if all >= count(limits.max_entries) {
        return Ok(Outcome::Commit(Err(PageRefusal::Full)));
    }
    if mine >= count(limits.max_pages_per_address) {
        return Ok(Outcome::Commit(Err(PageRefusal::Address)));
    }
    execute(
        tx,
        "storing a page",
        "INSERT INTO pages (id_hash, session_hash, source, expires_at, body)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &&page.id_hash[..],
            &&page.session_hash[..],
            page.source,
            &time(page.expires_at),
            page.body,
        ],
    )
    .await?;
    Ok(Outcome::Commit(Ok(())))
}
