//! Interoperability with Python's `authlib` (with `requests`), a client library nobody here wrote,
//! over the whole surface: discovery (validated by authlib's RFC 8414 model), dynamic registration,
//! authorization code + PKCE through the real pages, refresh with rotation, client credentials, the
//! device flow approved through the device page, introspection and revocation.
//!
//! The server runs in-process with its issuer set to its real address, so the client follows the
//! endpoints the metadata names. `tests/interop/authlib_flow.py` does the client side and prints
//! JSON observations that this test asserts. Without `python3` and `authlib` the test prints why and
//! passes (CI installs them: `pip install authlib requests`).

mod common;

use std::sync::Arc;

use common::*;
use oauth_proto::config::Config;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::{setup, users};
use oauth_server::app::App;
use oauth_server::http::server;
use oauth_server::store::AnyStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_discovery_registration_code_refresh_cc_device_introspect_revoke() {
    let Some(python) = python_with("authlib, requests").await else {
        return;
    };

    // The issuer must be the real address: pick a free port, then listen on it.
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
    let store = AnyStore::memory();
    users::add(&store, USER, PASSWORD, 1).await.unwrap();
    let service = clients::add(
        &store,
        &engine,
        &NewClient {
            name: "Service".to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            scope: Some("mail".to_owned()),
            // It introspects the user tokens of the client the flow registers.
            resource_server: true,
            ..Default::default()
        },
        1,
    )
    .await
    .unwrap();
    let settings = oauth_server::settings::ServerSettings {
        listen: format!("127.0.0.1:{port}"),
        ..test_settings()
    };
    let running = server::start(App::new(engine, Arc::new(store), settings))
        .await
        .unwrap();

    let input = serde_json::json!({
        "base": base,
        "username": USER,
        "password": PASSWORD,
        "redirect_uri": REDIRECT,
        "service_id": service.client_id,
        "service_secret": service.client_secret.unwrap(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/authlib_flow.py");
    let o = run_json_script(&python, script.as_ref(), None, &input, "authlib").await;
    running.shutdown().await;
    let check = |key: &str, want: serde_json::Value| {
        assert_eq!(o[key], want, "{key} in {o:#}");
    };
    use serde_json::json;

    check("issuer", json!(base));
    assert_eq!(o["metadata_validated"].as_array().unwrap().len(), 10);
    check(
        "device_authorization_endpoint",
        json!(format!("{base}/device_authorization")),
    );
    check("register_status", json!(201));
    check("registered_has_secret", json!(false));

    check("auth_url_has_s256", json!(true));
    check("consent_shows_client", json!(true));
    check("redirect_status", json!(303));
    check("redirect_to_registered_uri", json!(true));
    check("redirect_state_matches", json!(true));
    check("redirect_iss", json!(base));
    check("code_token_type", json!("Bearer"));
    check("code_has_refresh", json!(true));
    check("code_scope", json!("mail offline_access"));
    check("code_reuse_error", json!("invalid_grant"));
    check("refresh_rotated", json!(true));
    check("refresh_has_access", json!(true));

    check("cc_token_type", json!("Bearer"));
    check("cc_has_refresh", json!(false));
    check("cc_scope", json!("mail"));
    check("cc_wrong_secret_error", json!("invalid_client"));

    check(
        "device_fields",
        json!([
            "device_code",
            "expires_in",
            "interval",
            "user_code",
            "verification_uri",
            "verification_uri_complete"
        ]),
    );
    check("device_pending_error", json!("authorization_pending"));
    check("device_code_prefilled", json!(true));
    check("device_consent_shows_code", json!(true));
    check("device_page_says_return", json!(true));
    check("device_token_type", json!("Bearer"));
    check("device_scope", json!("mail"));
    check("device_reuse_error", json!("invalid_grant"));

    check("introspect_active", json!(true));
    check("introspect_sub", json!(USER));
    check("introspect_client_id", json!(true));
    check("introspect_scope", json!("mail offline_access"));
    check("introspect_device_sub", json!(USER));
    check("introspect_cc_active", json!(true));
    check("introspect_garbage_active", json!(false));

    check("revoke_status", json!(200));
    check("revoked_refresh_active", json!(false));
    check("refresh_after_revoke_error", json!("invalid_grant"));
    check("revoke_access_status", json!(200));
    check("revoked_access_active", json!(false));
    check("old_refresh_error", json!("invalid_grant"));
}
