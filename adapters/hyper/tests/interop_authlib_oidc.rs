//! OpenID Connect interoperability with Python's `authlib`, whose relying-party code (not ours)
//! validates the discovery document and every ID token: signature from `jwks_uri`, issuer,
//! audience, expiry, nonce, `azp`, `at_hash`. Three clients sign in through the real pages (ES256
//! by default, RS256 and EdDSA registered with `id_token_signed_response_alg`); userinfo answers
//! the user's email; a refresh returns a new ID token. Then the signing keys are rotated and the
//! server restarted on the same store: the earlier ID tokens still verify against the new JWK
//! Set, and a new sign-in is signed by the new key.
//!
//! `tests/interop/authlib_oidc.py` is the relying party; it prints JSON observations that this
//! test asserts. Without `python3` and `authlib` the test says why and passes (fails under
//! `CI=true`; `.ci/run` installs them).

mod common;

use std::sync::Arc;

use common::*;
use oauth_proto::config::Config;
use oauth_proto::jose::Algorithm;
use oauth_proto::Engine;
use oauth_server::admin::{setup, users};
use oauth_server::app::App;
use oauth_server::http::server;
use oauth_server::store::AnyStore;
use serde_json::{json, Value};

const EMAIL: &str = "alice@example.com";

async fn relying_party(python: &str, input: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/authlib_oidc.py");
    run_json_script(python, script.as_ref(), None, &input, "authlib").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_validates_id_tokens_across_algorithms_refresh_and_key_rotation() {
    let Some(python) = python_with("authlib.oidc.core, joserfc, requests").await else {
        return;
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let config = Config {
        issuer: base.clone(),
        ..Config::default()
    };
    let engine = setup::admin_engine(config.clone()).unwrap();
    let store = Arc::new(AnyStore::memory());
    users::add(&*store, USER, PASSWORD, 1).await.unwrap();
    users::set_email(&*store, USER, Some(EMAIL)).await.unwrap();
    let settings = oauth_server::settings::ServerSettings {
        listen: format!("127.0.0.1:{port}"),
        ..test_settings()
    };
    let running = server::start(App::new(engine.clone(), store.clone(), settings.clone()))
        .await
        .unwrap();
    let input = json!({
        "base": base,
        "username": USER,
        "password": PASSWORD,
        "redirect_uri": REDIRECT,
        "phase": "first",
    });
    let o = relying_party(&python, input).await;
    running.shutdown().await;

    assert_eq!(o["jwks_uri"], json!(format!("{base}/jwks")), "{o:#}");
    assert!(o["discovery_checks"].as_u64().unwrap() >= 40, "{o:#}");
    let keys = engine.signing_keys();
    for (name, alg) in [
        ("default", Algorithm::Es256),
        ("RS256", Algorithm::Rs256),
        ("EdDSA", Algorithm::EdDsa),
    ] {
        let c = &o["clients"][name];
        assert_eq!(c["alg"], json!(alg.name()), "{name}: {c:#}");
        assert_eq!(
            c["kid"],
            json!(keys.signing_key(alg).unwrap().kid()),
            "{name}"
        );
        assert_eq!(c["sub"], json!(USER), "{name}");
        for flag in [
            "auth_url_has_nonce",
            "nonce_matches",
            "azp",
            "has_at_hash",
            "has_auth_time",
        ] {
            assert_eq!(c[flag], json!(true), "{name} {flag}: {c:#}");
        }
    }
    let d = &o["clients"]["default"];
    assert_eq!(d["userinfo_sub"], json!(USER), "{d:#}");
    assert_eq!(d["userinfo_email"], json!(EMAIL), "{d:#}");
    assert_eq!(d["refresh_new_id_token"], json!(true), "{d:#}");
    assert_eq!(d["refresh_sub"], json!(USER), "{d:#}");
    assert_eq!(d["refresh_same_auth_time"], json!(true), "{d:#}");
    assert_eq!(d["refresh_has_nonce"], json!(false), "{d:#}");
    assert_eq!(d["wrong_nonce_rejected"], json!(true), "{d:#}");

    // Rotate every signing key (as `oauth-server key rotate` does) and restart on the same store.
    let mut rotated = keys.clone();
    let mut random = |dest: &mut [u8]| getrandom::fill(dest).expect("OS randomness");
    for alg in Algorithm::ALL {
        rotated
            .rotate(alg, 1, config.access_token_ttl_secs, &mut random)
            .unwrap();
    }
    let new_kid = rotated
        .signing_key(Algorithm::Es256)
        .unwrap()
        .kid()
        .to_owned();
    let engine = Engine::new(config, engine.keys().clone(), rotated).unwrap();
    let running = server::start(App::new(engine, store, settings))
        .await
        .unwrap();
    let old: serde_json::Map<String, Value> = ["default", "RS256", "EdDSA"]
        .iter()
        .map(|name| {
            let c = &o["clients"][name];
            (name.to_string(), json!([c["client_id"], c["id_token"]]))
        })
        .collect();
    let input = json!({
        "base": base,
        "username": USER,
        "password": PASSWORD,
        "redirect_uri": REDIRECT,
        "phase": "second",
        "old": old,
    });
    let o = relying_party(&python, input).await;
    running.shutdown().await;
    assert_eq!(
        o["old_tokens_verify"],
        json!({"default": USER, "RS256": USER, "EdDSA": USER}),
        "{o:#}"
    );
    assert_eq!(o["new_kid"], json!(new_kid), "{o:#}");
    assert_eq!(o["new_sub"], json!(USER), "{o:#}");
    assert_eq!(o["new_nonce_matches"], json!(true), "{o:#}");
}
