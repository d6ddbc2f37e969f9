//! Interoperability of RFC 9068 JWT access tokens with a resource-server library nobody here
//! wrote: Python authlib's `JWTBearerTokenValidator` checks our tokens from our `/jwks` (found
//! through the metadata's `jwks_uri`) for our issuer and its resource, refuses them at another
//! resource, and refuses a tampered token and an HMAC token.
//!
//! The server runs in-process with its issuer set to its real address and two resources: an API
//! that opted into JWT access tokens and an IMAP service that keeps the HMAC format. The tokens
//! are a `client_credentials` token for the API (a JWT because the resource opted in), a user's
//! token through the real pages for a client the administrator set to JWTs, and the service's
//! token for IMAP (HMAC). `tests/interop/authlib_jwt.py` validates them and prints what authlib
//! accepted. Without `python3` and `authlib` the test prints why and passes, except with `CI=true`
//! (CI installs them: `pip install authlib requests`).

mod common;

use base64::Engine as _;
use common::*;
use oauth_proto::access_token::AccessTokenFormat;
use oauth_proto::config::Config;
use oauth_proto::resource::ProtectedResource;
use oauth_server::admin::clients::{self, Change};
use serde_json::{json, Value};

const API: &str = "https://api.example.com/";
const IMAP: &str = "imap://mail.example.com";

async fn service_token(s: &TestServer, resource: &str) -> String {
    let r = s
        .token(
            &[("grant_type", "client_credentials"), ("resource", resource)],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_validates_our_jwt_access_tokens_from_our_jwks() {
    let Some(python) = python_with("authlib.oauth2.rfc9068, joserfc, requests").await else {
        return;
    };

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let resource = |id: &str, format| ProtectedResource {
        resource: id.to_owned(),
        scopes_supported: vec!["mail".to_owned()],
        access_token_format: format,
    };
    let config = Config {
        issuer: base.clone(),
        resources: vec![
            resource(API, AccessTokenFormat::Jwt),
            resource(IMAP, AccessTokenFormat::Hmac),
        ],
        throttle: test_throttle(),
        ..Config::default()
    };
    let settings = oauth_server::settings::ServerSettings {
        listen: format!("127.0.0.1:{port}"),
        ..test_settings()
    };
    let s = TestServer::start_configured(config, settings, REDIRECT).await;
    let app = s.running.app().clone();
    let to_jwt = Change {
        access_token_format: Some(AccessTokenFormat::Jwt),
    };
    clients::set(&*app.store, &s.public_id, &to_jwt)
        .await
        .unwrap();

    let service = service_token(&s, API).await;
    let user = s.user_token_response("st").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let hmac = service_token(&s, IMAP).await;
    assert!(!hmac.contains('.'), "IMAP kept the HMAC format: {hmac}");
    // The service token with another scope in its payload, the signature kept.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = service.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("mail admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/authlib_jwt.py");
    let input = json!({
        "base": base,
        "resource": API,
        "tokens": {"service": service, "user": user, "hmac": hmac, "tampered": tampered},
    });
    let o = run_json_script(&python, &script, None, &input, "authlib JWT").await;
    s.running.shutdown().await;

    assert_eq!(o["jwks_uri"], json!(format!("{base}/jwks")), "{o:#}");
    let rs256 = app
        .engine
        .signing_keys()
        .signing_key(oauth_proto::jose::Algorithm::Rs256)
        .unwrap()
        .kid()
        .to_owned();
    let service = &o["service"];
    assert_eq!(
        service["header"],
        json!({"alg": "RS256", "kid": rs256, "typ": "at+jwt"}),
        "{o:#}"
    );
    let c = &service["claims"];
    assert_eq!(c["iss"], json!(base), "{o:#}");
    assert_eq!(c["aud"], json!(API), "{o:#}");
    assert_eq!(c["sub"], json!(s.service_id), "{o:#}");
    assert_eq!(c["client_id"], json!(s.service_id), "{o:#}");
    assert_eq!(c["scope"], json!("mail"), "{o:#}");
    assert!(
        c["jti"].is_string() && c["iat"].is_u64() && c["exp"].is_u64(),
        "{o:#}"
    );
    assert!(service["other_resource"]["error"].is_string(), "{o:#}");

    let user = &o["user"]["claims"];
    assert_eq!(user["sub"], json!(USER), "{o:#}");
    assert_eq!(user["client_id"], json!(s.public_id), "{o:#}");
    assert_eq!(user["aud"], json!([API, IMAP]), "{o:#}");
    assert!(user["auth_time"].is_u64(), "{o:#}");
    assert!(o["user"]["other_resource"]["error"].is_string(), "{o:#}");

    for refused in ["hmac", "tampered"] {
        assert!(o[refused]["error"].is_string(), "{refused}: {o:#}");
        assert!(o[refused].get("claims").is_none(), "{refused}: {o:#}");
    }
}
