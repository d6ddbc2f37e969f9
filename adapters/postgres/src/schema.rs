//! The database schema and its versioned migrations.
//!
//! # Versions
//!
//! `schema_version` holds one row per applied migration. [`migrate`] runs at every start (and as
//! `oauth-server db migrate`): under a transaction-scoped advisory lock, so nodes starting
//! together migrate once, it applies every migration newer than the database's version, each with
//! its row, in one transaction: a failed migration leaves the database as it was. That
//! transaction runs without the store's `statement_timeout` (a request bound: an index build on a
//! large table, or a node waiting for another's migrations, may take longer). A database whose
//! version is newer than [`MIGRATIONS`] knows is refused ([`OpenError::NewerSchema`]): an older
//! release could misread what a newer one wrote. A new release adds a migration at the end of
//! [`MIGRATIONS`]; shipped migrations never change.
//!
//! Nodes of an older release that are already running when a newer one migrates are not
//! stopped, but a migration may change what their statements use (version 6 moved refresh
//! tokens into the grants' rows): until they are replaced, those statements fail and their
//! requests are answered 503, nothing is written wrongly. So an upgrade that adds a migration
//! replaces every node at once (stop the old nodes, then start the new ones), or accepts those
//! 503s for the few minutes of a rolling replacement.
//!
//! # Tables
//!
//! Each record kind has a table with typed columns for what SQL must find, compare or change
//! (hashes, ids, expiry times, the used flag of a code, a grant's refresh tokens, a device's
//! revision, revocation times) and a `body` holding the record as JSON for the rest. Bodies are
//! `bytea`, not `jsonb`: SQL never looks inside them, `jsonb` refuses a `\u0000` that a stranger may
//! put in a registered client's metadata, and it does not keep numbers exactly as written.
//!
//! Names, subjects, client ids and counter keys are `bytea` too (their UTF-8 bytes): PostgreSQL's
//! `text` cannot hold a NUL, which a stranger can send in a `client_id`, and `bytea` compares and
//! sorts by bytes, exactly as Rust's strings do, whatever the database's collation.
//!
//! Times are `bigint` Unix seconds; a time past `i64::MAX` (year 292 billion) is stored as
//! `i64::MAX`.
//!
//! # The revocation sequence
//!
//! Every change to the revocation view (a row of `revoked_access`, a subject's credential version)
//! takes the next value of the sequence `revocation_seq` into its row's `revocation_seq`. So a node
//! can catch up with what other nodes revoked by reading the rows whose number is above the
//! highest it has seen, and apply a row only over an older one. (Sequence numbers are taken before
//! commit; the revocation lock makes revocations commit in their order, so a catch-up never
//! misses a row below its high-water mark: see [`follow`](crate::follow).)

use deadpool_postgres::Client;

use crate::error::{from_db, OpenError};

/// One migration: the version it brings the database to and its statements.
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) sql: &'static str,
}

/// Every migration, oldest first. Never edit one that shipped; add the next.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: r#"
CREATE TABLE clients (
    client_id bytea PRIMARY KEY,
    unused_expires_at bigint,
    body bytea NOT NULL
);
CREATE INDEX clients_unused_expiry ON clients (unused_expires_at)
    WHERE unused_expires_at IS NOT NULL;

CREATE TABLE codes (
    hash bytea PRIMARY KEY,
    subject bytea NOT NULL,
    expires_at bigint NOT NULL,
    used boolean NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX codes_expiry ON codes (expires_at);
CREATE INDEX codes_subject ON codes (subject);

CREATE TABLE grants (
    grant_id bytea PRIMARY KEY,
    client_id bytea NOT NULL,
    subject bytea NOT NULL,
    expires_at bigint NOT NULL,
    revoked_at bigint,
    body bytea NOT NULL
);
CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX grants_subject ON grants (subject);
CREATE INDEX grants_expiry ON grants (expires_at);
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    hash bytea PRIMARY KEY,
    grant_id bytea NOT NULL,
    issued_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    rotated_at bigint,
    successor bytea
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE devices (
    device_code_hash bytea PRIMARY KEY,
    user_code_hash bytea NOT NULL,
    expires_at bigint NOT NULL,
    revision bigint NOT NULL,
    approved_subject bytea,
    body bytea NOT NULL
);
CREATE INDEX devices_user_code ON devices (user_code_hash);
CREATE INDEX devices_expiry ON devices (expires_at);
CREATE INDEX devices_approved_subject ON devices (approved_subject)
    WHERE approved_subject IS NOT NULL;

CREATE SEQUENCE revocation_seq;

CREATE TABLE subjects (
    subject bytea PRIMARY KEY,
    credential_version bigint NOT NULL,
    revocation_seq bigint NOT NULL
);
CREATE INDEX subjects_revocation_seq ON subjects (revocation_seq);

CREATE TABLE revoked_access (
    grant_id bytea PRIMARY KEY,
    revoked_at bigint NOT NULL,
    keep_until bigint NOT NULL,
    revocation_seq bigint NOT NULL
);
CREATE INDEX revoked_access_keep ON revoked_access (keep_until);
CREATE INDEX revoked_access_revocation_seq ON revoked_access (revocation_seq);

CREATE TABLE counters (
    key bytea PRIMARY KEY,
    count bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX counters_expiry ON counters (expires_at);

CREATE TABLE users (
    username bytea PRIMARY KEY,
    body bytea NOT NULL
);
"#,
    },
    Migration {
        // The reference server's browser sessions and the pages waiting for a decision
        // ([`pages`](crate::pages)), so that a browser whose requests alternate between nodes
        // completes its flow. Only hashes of the session and page ids are kept.
        version: 2,
        sql: r#"
CREATE TABLE page_sessions (
    id_hash bytea PRIMARY KEY,
    username bytea,
    signed_in_at bigint,
    anonymous_from bytea,
    expires_at bigint NOT NULL
);
CREATE INDEX page_sessions_expiry ON page_sessions (expires_at);
CREATE INDEX page_sessions_anonymous ON page_sessions (anonymous_from)
    WHERE anonymous_from IS NOT NULL;

CREATE TABLE pages (
    id_hash bytea PRIMARY KEY,
    session_hash bytea NOT NULL,
    source bytea NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    expires_at bigint NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX pages_session ON pages (session_hash, seq);
CREATE INDEX pages_source ON pages (source);
CREATE INDEX pages_expiry ON pages (expires_at);
"#,
    },
    Migration {
        // The server's keys ([`keys`](crate::keys)): one row, the two key documents as JSON.
        version: 3,
        sql: r#"
CREATE TABLE server_keys (
    id smallint PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL,
    token_keys bytea NOT NULL,
    signing_keys bytea NOT NULL
);
"#,
    },
    Migration {
        // Remembered consents (OpenID Connect: consent remembered per user and client), at most
        // `MAX_CONSENTS_PER_SUBJECT` per subject; they go with their client.
        version: 4,
        sql: r#"
CREATE TABLE consents (
    subject bytea NOT NULL,
    client_id bytea NOT NULL,
    granted_at bigint NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (subject, client_id)
);
CREATE INDEX consents_client ON consents (client_id);
"#,
    },
    Migration {
        // Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a signed-in session's
        // public `sid` (random, not derived from the cookie) and the clients it gave a code with
        // `openid` (at most the server's bound, kept by the statement that adds one).
        version: 5,
        sql: r#"
ALTER TABLE page_sessions
    ADD COLUMN oidc_sid text,
    ADD COLUMN relying_parties bytea[] NOT NULL DEFAULT '{}';
"#,
    },
    Migration {
        // A grant's refresh tokens are one family kept in the grant's row ([`refresh`]
        // (crate::refresh) says why): its family-secret hash, current token and the token that
        // one replaced, in columns no index covers, so a rotation is one in-place (HOT) update.
        // A lower fillfactor keeps room on each page for those updates' new row versions.
        //
        // Tokens issued before families are adopted: each grant's active token becomes its
        // current one (the newest, should there be several), and the rotated token whose
        // successor it is becomes its previous one (the earliest rotated, should a retry have
        // repointed two: the one whose holder never saw the other), with no family secret. The
        // old table stays as the lookup of every such token, active or rotated, from its hash to
        // its grant ([`RefreshKey::Legacy`](oauth_proto::store::RefreshKey)), until it expires:
        // nothing is inserted into it again, and only what that lookup and the purge use is kept.
        version: 6,
        sql: r#"
ALTER TABLE grants
    ADD COLUMN refresh_family bytea,
    ADD COLUMN refresh_current bytea,
    ADD COLUMN refresh_issued_at bigint,
    ADD COLUMN refresh_expires_at bigint,
    ADD COLUMN refresh_previous bytea,
    ADD COLUMN refresh_previous_at bigint;
ALTER TABLE grants SET (fillfactor = 85);

UPDATE grants g SET refresh_current = a.hash, refresh_issued_at = a.issued_at,
       refresh_expires_at = a.expires_at, refresh_previous = a.previous,
       refresh_previous_at = a.previous_at
FROM (SELECT DISTINCT ON (t.grant_id) t.grant_id, t.hash, t.issued_at, t.expires_at,
             p.hash AS previous, p.rotated_at AS previous_at
      FROM refresh_tokens t
           LEFT JOIN refresh_tokens p
               ON p.successor = t.hash AND p.grant_id = t.grant_id AND p.rotated_at IS NOT NULL
      WHERE t.rotated_at IS NULL
      ORDER BY t.grant_id, t.issued_at DESC, t.hash, p.rotated_at, p.hash) a
WHERE g.grant_id = a.grant_id;

ALTER TABLE refresh_tokens RENAME TO legacy_refresh_tokens;
ALTER TABLE legacy_refresh_tokens
    DROP COLUMN issued_at,
    DROP COLUMN rotated_at,
    DROP COLUMN successor;
ALTER INDEX refresh_tokens_pkey RENAME TO legacy_refresh_tokens_pkey;
ALTER INDEX refresh_tokens_grant RENAME TO legacy_refresh_tokens_grant;
ALTER INDEX refresh_tokens_expiry RENAME TO legacy_refresh_tokens_expiry;
"#,
    },
];

/// The newest schema version this build knows.
pub fn supported_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The advisory lock key that serializes migrations between nodes ("oauthmig" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x6f61_7574_686d_6967;

/// What `migrate` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The version the database had (0 for an empty database).
    pub from: i32,
    /// The version it has now.
    pub to: i32,
}

/// Brings the database to [`supported_version`], or refuses a newer one.
pub(crate) async fn migrate(client: &mut Client) -> Result<Migrated, OpenError> {
    migrate_to(client, supported_version()).await
}

/// Brings the database to version `to` (at most [`supported_version`]), or refuses a newer one
/// than this build knows. Only the tests of a migration stop short of the newest version.
pub(crate) async fn migrate_to(
    client: &mut tokio_postgres::Client,
    to: i32,
) -> Result<Migrated, OpenError> {
    let db = |what: &'static str| move |e| OpenError::Database(from_db(what, e));
    let tx = client
        .transaction()
        .await
        .map_err(db("starting the migration"))?;
    // The store's `statement_timeout` bounds requests, not migrations: on a large database a
    // migration's index build may run longer, and nodes starting together wait here for the first
    // one's migrations. Only this transaction lifts it. It also keeps `CREATE TABLE IF NOT
    // EXISTS`'s notice ("already exists, skipping") out of every start's log.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL client_min_messages = warning")
        .await
        .map_err(db("setting up the migration's transaction"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db("taking the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db("creating schema_version"))?;
    let from: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .map_err(db("reading schema_version"))?
        .get(0);
    let supported = supported_version();
    if from > supported {
        return Err(OpenError::NewerSchema {
            found: from,
            supported,
        });
    }
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > from && m.version <= to)
    {
        tx.batch_execute(migration.sql)
            .await
            .map_err(db("applying a migration"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&migration.version],
        )
        .await
        .map_err(db("recording a migration"))?;
    }
    tx.commit().await.map_err(db("committing the migration"))?;
    Ok(Migrated {
        from,
        to: from.max(to.min(supported)),
    })
}
