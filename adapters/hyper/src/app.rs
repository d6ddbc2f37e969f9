//! The server's shared state: one value behind an `Arc`, handed to every request.

use std::sync::Arc;

use oauth_proto::Engine;

use crate::cimd::FlowStore;
use crate::http::proxies::TrustedProxies;
use crate::http::routes::Routes;
use crate::pages::sessions::{self, Limits, SessionStore};
use crate::settings::ServerSettings;
use crate::store::AnyStore;

/// Everything a request handler needs.
pub struct App {
    /// The protocol engine.
    pub engine: Engine,
    /// The store.
    pub store: Arc<AnyStore>,
    /// What flows run against: the store, and the fetcher of client metadata documents.
    pub flow_store: FlowStore,
    /// Server settings.
    pub settings: ServerSettings,
    /// Browser sessions and authorization pages in progress.
    pub sessions: Box<dyn SessionStore>,
    /// Cookies get `Secure` (the issuer is https).
    pub secure_cookies: bool,
    /// The reverse proxies whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    /// The route table, at the paths of the engine's issuer.
    pub routes: Routes,
    /// Delivers back-channel logout tokens.
    pub backchannel: Arc<crate::pages::backchannel::Deliverer>,
}

impl App {
    /// The state for an engine, a store and settings.
    pub fn new(engine: Engine, store: Arc<AnyStore>, settings: ServerSettings) -> Self {
        let secure_cookies = engine.config().issuer.starts_with("https:");
        // `ServerSettings::validate` has parsed the list already; an unvalidated bad entry trusts
        // nobody rather than somebody.
        let proxies = TrustedProxies::parse(&settings.trusted_proxies).unwrap_or_default();
        let routes = Routes::new(&engine);
        let flow_store = FlowStore::new(store.clone(), &settings.cimd);
        let limits = Limits::from_settings(&settings);
        let sessions = sessions::for_store(&engine, &store, &flow_store, limits);
        let backchannel = Arc::new(crate::pages::backchannel::Deliverer::new(&settings.cimd));
        App {
            engine,
            store,
            flow_store,
            settings,
            sessions,
            secure_cookies,
            proxies,
            routes,
            backchannel,
        }
    }
}
