//! Client ID Metadata Documents, the server's part: fetching the document an `https` client id
//! names (draft-ietf-oauth-client-id-metadata-document).
//!
//! The engine checks what a document says ([`oauth_proto::client_id_document`]); fetching it is
//! the driver's job, answered through [`FlowStore`], the store every flow of the server runs
//! against: it answers [`Op::FetchClientDocument`] with [`Fetcher::fetch`] and passes every other
//! op to the store. The fetch is a stranger's request made from inside the server's network, so:
//!
//! | rule | how |
//! |---|---|
//! | no internal targets | the host is resolved by [`address::GuardedResolver`], which keeps only public unicast addresses; the connection goes to those exact addresses (no second lookup); an IP literal host is checked before the request. `allow_private_addresses` lifts this for tests only |
//! | https only, properly verified | rustls with Mozilla's roots (`webpki-roots`), plus `trusted_roots` PEM files; the connector refuses `http` |
//! | no redirects | a 3xx is a failure ([`FetchError::Redirected`]); nothing follows it |
//! | small | a `Content-Length` over 5 KB is refused before reading, and reading stops at 5 KB ([`FetchError::TooLarge`]) |
//! | quick | `connect_timeout_ms` for the TCP connection, `timeout_ms` (3 s each by default) for everything from the lookup to the last byte |
//! | few at once | at most `max_concurrent_fetches` (32) in flight; a fetch waits for a slot within its `timeout_ms`, so a flood of client ids costs the server a bounded number of connections |
//! | JSON | `application/json` or `application/*+json`, and a body that parses ([`FetchError::NotJson`]) |
//! | cached | per HTTP caching (`Cache-Control`, `Expires`, `Age`: `http-cache-semantics`, as a private cache), kept at least `min_cache_secs` (60 s: one sign-in asks for the document three times, and a client must not make every request a fetch) and at most `max_cache_secs` (24 h); failures for `failure_cache_secs` (10 s); at most `max_cached_documents` entries |
//! | no proxy | the connector is hyper-util's own: no `HTTP_PROXY` from the environment can route the fetch elsewhere |
//!
//! The client (resolver, TLS, no proxy) is [`crate::outbound`]'s, which back-channel logout
//! delivery uses too; the bounds above on time, concurrency and size are this module's.
//!
//! Why hyper-util's client and `hyper-rustls` rather than `reqwest`: the server already runs on
//! hyper and hyper-util, so this adds only the TLS layer; the resolver hook is the connector's
//! own `Service<Name>`; and there is no implicit proxy, redirect or decompression to turn off.

pub mod address;
mod cache;
mod fetch;

use std::path::PathBuf;
use std::sync::Arc;

use oauth_proto::client_id_document::{ClientDocument, FetchError};
use oauth_proto::store::{AsyncStore, Effect, Op, PurgeStats, Reply, StoreError};
use serde::{Deserialize, Serialize};

pub use fetch::Fetcher;

use crate::store::AnyStore;

/// The `[server.cimd]` table: how client metadata documents are fetched. Whether they are used
/// at all is the engine's `client_id_metadata_documents` (on by default in this server).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CimdSettings {
    /// Fetch from loopback, private and other special-purpose addresses too. For tests only: it
    /// lets anyone who can name a URL make this server send requests into its own network.
    pub allow_private_addresses: bool,
    /// PEM files of certificate authorities trusted for fetching, besides Mozilla's roots.
    pub trusted_roots: Vec<PathBuf>,
    /// Time allowed for the TCP connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time allowed for a whole fetch (lookup, connection, TLS, answer, body), in milliseconds.
    pub timeout_ms: u64,
    /// Least time a fetched document is kept, whatever its caching headers say.
    pub min_cache_secs: u64,
    /// Most time a fetched document is kept.
    pub max_cache_secs: u64,
    /// How long a failed fetch is remembered (the same answer without fetching again).
    pub failure_cache_secs: u64,
    /// Upper bound on the documents (and failures) kept.
    pub max_cached_documents: usize,
    /// Upper bound on fetches in flight at once; a fetch waits for a slot within `timeout_ms`.
    pub max_concurrent_fetches: usize,
}

impl Default for CimdSettings {
    fn default() -> Self {
        CimdSettings {
            allow_private_addresses: false,
            trusted_roots: Vec::new(),
            connect_timeout_ms: 3000,
            timeout_ms: 3000,
            min_cache_secs: 60,
            max_cache_secs: 86400,
            failure_cache_secs: 10,
            max_cached_documents: 1000,
            max_concurrent_fetches: 32,
        }
    }
}

impl CimdSettings {
    /// Checks the settings, loading the trusted roots; the first problem found is reported.
    pub fn validate(&self) -> Result<(), String> {
        if self.connect_timeout_ms == 0 || self.timeout_ms == 0 || self.max_concurrent_fetches == 0
        {
            return Err(
                "[server.cimd] connect_timeout_ms, timeout_ms and max_concurrent_fetches \
                 must be greater than 0"
                    .to_owned(),
            );
        }
        if self.min_cache_secs > self.max_cache_secs {
            return Err("[server.cimd] min_cache_secs must be at most max_cache_secs".to_owned());
        }
        Fetcher::new(self).map(|_| ())
    }
}

/// The store the server's flows run against: the store, plus the fetcher that answers
/// [`Op::FetchClientDocument`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FlowStore {
    store: Arc<AnyStore>,
    fetcher: Arc<Fetcher>,
}

impl FlowStore {
    /// `store` with the fetcher of `settings`. Settings that fail [`CimdSettings::validate`]
    /// (checked at start-up) give a fetcher that answers every fetch as unreachable, logged.
    pub fn new(store: Arc<AnyStore>, settings: &CimdSettings) -> Self {
        let fetcher = Fetcher::new(settings).unwrap_or_else(|e| {
            tracing::error!(error = %e, "client metadata documents cannot be fetched");
            Fetcher::unavailable(settings)
        });
        FlowStore {
            store,
            fetcher: Arc::new(fetcher),
        }
    }
}

impl AsyncStore for FlowStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        match op {
            Op::FetchClientDocument { url } => {
                Ok(Reply::ClientDocument(self.fetcher.fetch(&url).await))
            }
            op => self.store.execute(op).await,
        }
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        self.store.apply(effects).await
    }

    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        self.store.purge(now).await
    }
}

/// The answer for a failed fetch, logged: the client's developer learns the rule from the
/// error page, the operator from the log.
fn failed(url: &str, error: FetchError) -> ClientDocument {
    tracing::info!(url, ?error, "client metadata document refused");
    ClientDocument::failed(error)
}
