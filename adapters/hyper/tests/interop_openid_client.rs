//! OpenID Connect interoperability with node's `openid-client` (v6, Filip Skokan's certified
//! relying-party library), a strict client nobody here wrote: in OIDC mode its
//! `authorizationCodeGrant` requires an ID token and validates it (issuer, audience, expiry,
//! nonce, `azp`, and with `enableNonRepudiationChecks` the signature from `jwks_uri` in the
//! algorithm the client registered); `fetchUserInfo` checks the subject. Three public clients
//! register themselves (the default ES256, RS256 and EdDSA by `id_token_signed_response_alg`),
//! sign in through the real pages, fetch userinfo and refresh, getting a new ID token. Two clients
//! the administrator added then try silent authentication (`prompt=none`): with a session and
//! remembered consent openid-client gets a code and validates its ID token; without consent, or
//! without a session, it raises `consent_required` and `login_required`.
//!
//! `tests/interop/openid-client/oidc_flow.mjs` is the relying party; it prints JSON observations
//! that this test asserts. openid-client is pinned in that directory's `package.json` and
//! `package-lock.json`; the test runs `npm ci` there when it is not installed (`.ci/run` does it
//! first). Without node and npm the test says so and passes, unless `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use oauth_proto::config::Config;
use oauth_proto::jose::Algorithm;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::{setup, users};
use oauth_server::app::App;
use oauth_server::http::server;
use oauth_server::store::AnyStore;
use serde_json::json;

const EMAIL: &str = "alice@example.com";

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/openid-client")
}

/// Node with the pinned openid-client installed (by `npm ci` when missing or another version),
/// or what is missing.
async fn openid_client_ready() -> Result<(), String> {
    npm_ready(&client_dir(), "openid-client").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_validates_id_tokens_userinfo_and_refresh() {
    if let Err(missing) = openid_client_ready().await {
        missing_component(&missing);
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let engine = setup::admin_engine(Config {
        issuer: base.clone(),
        ..Config::default()
    })
    .unwrap();
    let store = Arc::new(AnyStore::memory());
    users::add(&*store, USER, PASSWORD, 1).await.unwrap();
    users::set_email(&*store, USER, Some(EMAIL)).await.unwrap();
    // `prompt=none` errors go back only to clients an administrator added (a self-registered
    // one gets the error page), so the silent authentication runs with two of those.
    let mut silent_clients = Vec::new();
    for name in ["Webmail", "Calendar"] {
        let created = clients::add(
            &*store,
            &engine,
            &NewClient {
                name: name.to_owned(),
                redirect_uris: vec![REDIRECT.to_owned()],
                public: true,
                scope: Some("openid email".to_owned()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
        silent_clients.push(created.client_id);
    }
    let settings = oauth_server::settings::ServerSettings {
        listen: format!("127.0.0.1:{port}"),
        ..test_settings()
    };
    let running = server::start(App::new(engine.clone(), store, settings))
        .await
        .unwrap();

    let input = json!({
        "issuer": base,
        "redirect_uri": REDIRECT,
        "username": USER,
        "password": PASSWORD,
        "algs": [null, "RS256", "EdDSA"],
        "silent_clients": silent_clients,
    });
    let dir = client_dir();
    let o = run_json_script(
        "node",
        &dir.join("oidc_flow.mjs"),
        Some(&dir),
        &input,
        "openid-client",
    )
    .await;
    running.shutdown().await;

    let keys = engine.signing_keys();
    for (name, alg) in [
        ("default", Algorithm::Es256),
        ("RS256", Algorithm::Rs256),
        ("EdDSA", Algorithm::EdDsa),
    ] {
        let c = &o["clients"][name];
        assert_eq!(c["alg"], json!(alg.name()), "{name}: {o:#}");
        assert_eq!(
            c["kid"],
            json!(keys.signing_key(alg).unwrap().kid()),
            "{name}"
        );
        assert_eq!(c["sub"], json!(USER), "{name}");
        assert!(c["aud"].is_string(), "{name}: {c:#}");
        assert_eq!(c["nonce_matches"], json!(true), "{name}: {c:#}");
        assert_eq!(c["has_at_hash"], json!(true), "{name}: {c:#}");
        assert!(c["auth_time"].is_u64(), "{name}: {c:#}");
        assert_eq!(c["userinfo_sub"], json!(USER), "{name}");
        assert_eq!(c["userinfo_email"], json!(EMAIL), "{name}");
        assert_eq!(c["refresh_has_id_token"], json!(true), "{name}: {c:#}");
        assert_eq!(c["refresh_new_id_token"], json!(true), "{name}: {c:#}");
        assert_eq!(c["refresh_sub"], json!(USER), "{name}: {c:#}");
        assert_eq!(c["refresh_same_auth_time"], json!(true), "{name}: {c:#}");
        assert_eq!(c["refresh_has_nonce"], json!(false), "{name}: {c:#}");
        // RP-initiated logout: the server asks, then sends the browser to the registered URI
        // with the state, and the old session no longer signs in.
        let l = &c["logout"];
        assert_eq!(l["confirm_status"], json!(200), "{name}: {l:#}");
        assert_eq!(l["confirm_asks"], json!(true), "{name}: {l:#}");
        assert_eq!(l["done_status"], json!(303), "{name}: {l:#}");
        let after = REDIRECT.replace("/cb", "/signed-out");
        assert_eq!(
            l["done_location"],
            json!(format!("{after}?state=bye")),
            "{name}: {l:#}"
        );
        assert_eq!(l["signed_out"], json!(true), "{name}: {l:#}");
    }

    // Silent authentication.
    let s = &o["silent"];
    assert_eq!(s["session"]["sub"], json!(USER), "{s:#}");
    assert_eq!(s["session"]["nonce_matches"], json!(true), "{s:#}");
    assert!(s["first_auth_time"].is_u64(), "{s:#}");
    // No new sign-in happened: the same authentication time.
    assert_eq!(s["session"]["auth_time"], s["first_auth_time"], "{s:#}");
    assert_eq!(s["no_consent"]["error"], json!("consent_required"), "{s:#}");
    assert_eq!(s["no_session"]["error"], json!("login_required"), "{s:#}");
}
