//! Any query string at the authorization endpoint: an error page, a redirect to the registered URI,
//! or a consent, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::access_token::{KeyRing, TokenKey};
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::flow::drive;
use oauth_proto::random::CounterRandom;
use oauth_proto::scope::Scope;
use oauth_proto::store::{Effect, Store};
use oauth_proto::Engine;
use oauth_store_memory::MemoryStore;

fuzz_target!(|data: &[u8]| {
    let keys = KeyRing::new(TokenKey::new(1, &[7u8; 32]).expect("key"), vec![]).expect("ring");
    // One ES256 key for every run: key generation is not what is fuzzed.
    static SIGNING: std::sync::OnceLock<oauth_proto::jose::KeySet> = std::sync::OnceLock::new();
    let signing = SIGNING
        .get_or_init(|| {
            oauth_proto::jose::KeySet::generate(
                &[oauth_proto::jose::Algorithm::Es256],
                &mut CounterRandom::new(1),
            )
            .expect("key")
        })
        .clone();
    let engine = Engine::new(Default::default(), keys, signing).expect("default config");
    let store = MemoryStore::new();
    store
        .apply(vec![Effect::PutClient(ClientRecord {
            client_id: "app".into(),
            name: "app".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: Scope::parse("mail").expect("scope"),
            require_pkce: true,
            resource_server: false,
            registration_token_hash: None,
            created_at: 0,
            metadata: Default::default(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        })])
        .expect("memory store");
    let outcome = drive(engine.authorize(data, 1_000_000), &store, &mut CounterRandom::new(1)).expect("memory store");
    if let AuthorizeOutcome::Redirect(r) = outcome {
        let location = r.header("location").expect("redirects have a location");
        assert!(location.starts_with("http://127.0.0.1"), "redirected off the registered URI: {location}");
    }
});
