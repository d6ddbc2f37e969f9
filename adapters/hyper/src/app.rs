//! The server's shared state: one value behind an `Arc`, handed to every request.

use std::sync::Arc;

use oauth_proto::Engine;

use crate::limits::FailureLimiter;
use crate::sessions::{Limits, Sessions};
use crate::settings::ServerSettings;
use crate::store::AnyStore;

/// Everything a request handler needs.
pub struct App {
    /// The protocol engine.
    pub engine: Engine,
    /// The store.
    pub store: Arc<AnyStore>,
    /// Server settings.
    pub settings: ServerSettings,
    /// Browser sessions and authorization pages in progress.
    pub sessions: Sessions,
    /// Cookies get `Secure` (the issuer is https).
    pub secure_cookies: bool,
    /// Failed guesses at the credential endpoints, per client address.
    pub credential_failures: FailureLimiter,
}

impl App {
    /// The state for an engine, a store and settings.
    pub fn new(engine: Engine, store: Arc<AnyStore>, settings: ServerSettings) -> Self {
        let secure_cookies = engine.config().issuer.starts_with("https:");
        let sessions = Sessions::new(Limits {
            session_ttl: settings.session_ttl_secs,
            page_ttl: settings.page_ttl_secs,
            max_entries: settings.max_sessions,
        });
        let credential_failures = FailureLimiter::new(
            settings.credential_max_failures_per_address,
            std::time::Duration::from_secs(settings.credential_failure_window_secs),
        );
        App {
            engine,
            store,
            settings,
            sessions,
            secure_cookies,
            credential_failures,
        }
    }
}
