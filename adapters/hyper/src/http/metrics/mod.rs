//! `/metrics`: the server's figures in the Prometheus text exposition format (version 0.0.4).
//!
//! # What is measured
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `oauth_http_requests_total` | counter | `endpoint` (the route's name, `unmatched` for no route), `status` |
//! | `oauth_http_request_duration_seconds` | histogram | `endpoint` |
//! | `oauth_store_operation_duration_seconds` | histogram | `operation` (`get_client`, `apply`, `purge`, `user`, ...) |
//! | `oauth_store_errors_total` | counter | `operation` |
//! | `oauth_postgres_pool_max_size`, `_size`, `_available`, `_waiting` | gauge | (PostgreSQL only) |
//! | `oauth_revocation_view_age_seconds` | gauge | (PostgreSQL only) time since the node's revocation view last caught up |
//! | `process_start_time_seconds`, `process_resident_memory_bytes`, `process_open_fds` | gauge | |
//!
//! Every label value comes from a small fixed set the server defines (route and operation
//! names, status codes), never from a request, so no client can grow the number of series. The
//! figures are the process's: one `oauth-server` process is one scrape target. (Tests that start
//! several servers in one process see them summed.)
//!
//! # The hot path
//!
//! This server spends some 60,000 instructions on a token request, so recording one must cost
//! next to nothing: the counters and histograms are statics of atomics indexed by route, status
//! and operation ([`requests`], [`store`], [`histogram`]), with no label lookup, lock or
//! allocation per request. The `prometheus-client` crate (the official Rust client) writes the
//! exposition when scraped, through collectors that read those atomics, the store's pool and
//! view, and `/proc`.
//!
//! # Who may read it
//!
//! Metrics show internals (traffic, failures, the database's state) that strangers need not
//! see, so they are not on the public listener at all: `/metrics` there is a 404 like any
//! unknown path. They are served on a listener of their own, off unless `[server]
//! metrics_listen` names an address (as Prometheus exporters and Keycloak's or Hydra's
//! management ports do), and on it only to peers in `[server] metrics_allow` (addresses or
//! CIDRs; default `127.0.0.1` and `::1`): anyone else gets 403. The peer is the TCP peer, never
//! a forwarding header. A separate listener, rather than an allow list on the public one, because
//! a reverse proxy on the same host makes every request from the internet a loopback peer there:
//! the public listener cannot tell the proxy's forwarded requests from a local scraper's.

mod histogram;
mod listener;
mod process;
mod requests;
pub(crate) mod store;

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::store::AnyStore;

pub(crate) use listener::{parse_allowed, start};
pub(crate) use requests::record;

/// The registry a scrape encodes: the collectors of the request, store and process figures.
fn registry(store: Arc<AnyStore>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(requests::RequestsCollector));
    registry.register_collector(Box::new(store::StoreCollector { store }));
    registry.register_collector(Box::new(process::ProcessCollector::new()));
    registry
}
