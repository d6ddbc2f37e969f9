//! Any form body (and optional Authorization header) at the token endpoint, through the engine and
//! the memory store: the answer is a token or a 4xx OAuth error, never a panic or a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::access_token::{KeyRing, TokenKey};
use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::flow::drive;
use oauth_proto::http::HttpRequest;
use oauth_proto::random::CounterRandom;
use oauth_proto::scope::Scope;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{Effect, GrantId, GrantRecord, RefreshFamily, Store};
use oauth_proto::Engine;
use oauth_store_memory::MemoryStore;

/// The refresh token of "app"'s grant (see below).
const REFRESH: &str = "rtp.CQkJCQkJCQkJCQkJCQkJCQgICAgICAgICAgICAgICAgBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAWrmelo1WAfE";

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
    let web = ClientRecord {
        client_id: "web".into(),
        name: "web".into(),
        kind: ClientKind::Confidential,
        secret_hash: Some(SecretHash::of("secret")),
        secret_expires_at: None,
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec!["https://client.example.com/cb".into()],
        grant_types: GrantType::ALL.to_vec(),
        scope: Scope::parse("mail").expect("scope"),
        require_pkce: false,
        resource_server: false,
        registration_token_hash: None,
        created_at: 0,
        metadata: Default::default(),
        unused_expires_at: None,
        access_token_format: Default::default(),
    };
    // A public client "app" with a grant and its refresh token `REFRESH` (grant id [9; 16],
    // family secret [8; 16], random bytes [1; 32], then the check), so that inputs reach the
    // public client's one-step refresh (`Op::RefreshPublic`) and its rotation.
    let app = ClientRecord {
        client_id: "app".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        auth_method: AuthMethod::None,
        ..web.clone()
    };
    let grant: GrantRecord = serde_json::from_value(serde_json::json!({
        "grant_id": GrantId([9; 16]),
        "client_id": "app",
        "subject": "alice",
        "scope": Scope::parse("mail").expect("scope"),
        "credential_version": 0,
        "created_at": 0,
        "expires_at": 2_000_000,
        "revoked_at": null,
    }))
    .expect("a grant from its fields");
    let refresh = RefreshFamily {
        grant_id: grant.grant_id,
        family: Some(SecretHash::of_bytes(&[8; 16])),
        current: SecretHash::of(REFRESH),
        issued_at: 0,
        expires_at: 2_000_000,
        previous: None,
    };
    store
        .apply(vec![
            Effect::PutClient(web),
            Effect::PutClient(app),
            Effect::PutGrant(grant),
            Effect::PutRefreshFamily(refresh),
        ])
        .expect("memory store");
    let (auth, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (
            std::str::from_utf8(&data[..i]).ok().map(str::to_owned),
            &data[i + 1..],
        ),
        None => (None, data),
    };
    let mut request = HttpRequest::form_post(body.to_vec());
    request.authorization = auth;
    let response = drive(
        engine.token(request, 1_000_000),
        &store,
        &mut CounterRandom::new(1),
    )
    .expect("memory store");
    assert!(
        response.status == 200 || (400..500).contains(&response.status),
        "status {}",
        response.status
    );
});
