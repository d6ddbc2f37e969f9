//! Helpers for the unit tests.

use oauth_proto::config::Config;
use oauth_proto::Engine;

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// An engine with the default configuration.
pub fn engine() -> Engine {
    crate::admin::setup::admin_engine(Config::default()).expect("default configuration is valid")
}
