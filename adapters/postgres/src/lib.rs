//! A PostgreSQL store for the `oauth-proto` engine: many stateless `oauth-server` nodes share
//! one database.
//!
//! It answers the whole store contract of `oauth_proto::store` ([`AsyncStore`], [`Store`] and
//! the [`RevocationView`]) and the reference server's [`Directory`](oauth_directory::Directory),
//! and passes the same contract suite as the memory and file stores
//! (`conformance/tests/store_postgres.rs`).
//!
//! # Choices
//!
//! | what | choice | why |
//! | --- | --- | --- |
//! | driver | `tokio-postgres` with the `deadpool-postgres` pool | the plain, well-kept asynchronous driver (the one `postgres` and most pools build on) and a small pool with a statement cache per connection; `sqlx` would bring its own runtime layer and query macros that want a database at build time, for nothing this store needs |
//! | statements | every statement a constant, prepared once per connection, values only as parameters | no SQL is ever built from input, so no input can change a statement ([`sql`](crate::sql)) |
//! | atomic ops | conditional `UPDATE`s and `INSERT ... ON CONFLICT` at READ COMMITTED, acting on the row count | each is a compare-and-swap on one row; why that is race-free is in the [`ops`](crate::ops) module docs |
//! | effects | one transaction per `apply` | a crash or a lost connection leaves all of a request's writes or none |
//! | deadlocks | a transaction aborted for a deadlock or serialization failure runs again (5 tries) | revocations of a subject or a client lock many grants at once |
//! | storage | typed columns for what SQL reads, the rest of a record as JSON in `bytea` | see [`schema`](crate::schema) |
//! | keys | `bytea` for names and ids | `text` cannot hold a NUL a stranger may send, and sorts by collation |
//! | migrations | versioned, applied at start under an advisory lock; a newer database is refused | [`schema`](crate::schema); [`migrate`] is `oauth-server db migrate` |
//! | purge | batches of 1000 rows, one statement each | never holds locks for long ([`purge`](crate::purge)) |
//! | revocation view | in memory, loaded at start, updated by this node's committed writes and by a follower that every node's revocations reach: `LISTEN`/`NOTIFY` plus a catch-up by `revocation_seq` every 500 ms | validation without a round trip; **a revocation at one node is refused by every node within 1 s** while it reaches the database ([`follow`](crate::follow)) |
//! | database unreachable | the view is kept for 30 s (`Options::view_max_age`), then refuses every access token until a catch-up succeeds | a short outage or failover does not stop validation; a node cut off from the database while others revoke never accepts a revoked token for longer than that ([`view`](crate::view)) |
//! | failures | database down, unreachable or too slow: a [`StoreError`](oauth_proto::store::StoreError) (the server answers 503), never a panic; the pool reconnects by itself | [`error`](crate::error) |
//! | moving stores | [`PostgresStore::export`] reads every table in one snapshot as the file store's [`Record`](oauth_store_memory::Record)s; [`PostgresStore::import`] writes records in one transaction | one record model for `oauth-server export` / `import` between the file store and PostgreSQL ([`transfer`](crate::transfer)) |
//! | TLS | not yet: connect over a unix socket or a trusted network | the next slice |
//! | browser sessions and pages | tables keyed by the SHA-256 of the cookie and page ids; per-address bounds exact under an advisory lock per address | a browser whose requests alternate between nodes completes its flow ([`pages`](crate::pages)) |
//! | failed guesses | each node's batches sent to every other node over `NOTIFY` | every node's limiter counts every node's failures within one batch interval ([`failures`](crate::failures)) |
//! | registration quota | two rows of `counters`, taken in one transaction | exact across nodes ([`quota`](crate::quota)) |
//!
//! # What is not here yet (issue 19)
//!
//! Signing keys in the database (today the nodes share the key files of one data directory),
//! TLS to the database.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod effects;
mod error;
mod failures;
mod follow;
mod ops;
mod pages;
mod purge;
mod quota;
mod schema;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;
mod view;

pub use error::OpenError;
pub use failures::{FailureExchange, OnRemote, MAX_PAYLOAD, QUEUE};
pub use pages::{PageLimits, PageRefusal, SessionRow};
pub use quota::Quota;
pub use schema::{supported_version, Migrated};
pub use store::{migrate, Options, PostgresStore};

#[allow(unused_imports)]
use oauth_proto::store::{AsyncStore, RevocationView, Store};
