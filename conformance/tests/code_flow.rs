//! The authorization code flow end to end through the engine and the memory store.

use conformance::*;
use oauth_proto::access_token::TokenError;

const PUBLIC_QUERY: &str = "response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcb&state=xyz&scope=mail+offline_access&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

#[test]
fn public_client_code_pkce_refresh() {
    let mut h = Harness::default();
    h.public_client();
    let pending = h.pending(PUBLIC_QUERY);
    assert_eq!(pending.redirect_uri(), "http://127.0.0.1:49152/cb");
    let redirect = h.approve(pending, "alice");
    assert_eq!(redirect.status, 303);
    assert_eq!(location_param(&redirect, "state").as_deref(), Some("xyz"));
    assert_eq!(
        location_param(&redirect, "iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );
    let code = location_param(&redirect, "code").unwrap();

    let body = format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcb&code_verifier={VERIFIER}");
    let r = h.token(&body, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let j = json(&r);
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 3600);
    assert_eq!(j["scope"], "mail offline_access");
    let access = j["access_token"].as_str().unwrap().to_owned();
    let refresh = j["refresh_token"].as_str().unwrap().to_owned();
    let claims = h.validate(&access).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.client_id, "app");

    // Replay of the code: refused, and the tokens issued from it are revoked.
    let r = h.token(&body, None);
    assert_eq!(json(&r)["error"], "invalid_grant");
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    );
    assert_eq!(json(&r)["error"], "invalid_grant");
}

#[test]
fn public_refresh_rotates_and_reuse_revokes_the_grant() {
    let mut h = Harness::default();
    h.public_client();
    let code = h.code_for(PUBLIC_QUERY, "alice");
    h.now += 1;
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A49152%2Fcb&code_verifier={VERIFIER}"), None);
    let first = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    h.now += 10;
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={first}&client_id=app&scope=mail"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    assert_eq!(j["scope"], "mail");
    let second = j["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let access = j["access_token"].as_str().unwrap().to_owned();
    assert!(h.validate(&access).is_ok());
    // The new refresh token keeps the full grant scope.
    h.now += 10;
    let r = h.token(&format!("grant_type=refresh_token&refresh_token={second}&client_id=app&scope=mail+offline_access"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let third = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    // Reusing the rotated one revokes everything.
    h.now += 10;
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={first}&client_id=app"),
        None,
    );
    assert_eq!(json(&r)["error"], "invalid_grant");
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={third}&client_id=app"),
        None,
    );
    assert_eq!(json(&r)["error"], "invalid_grant");
}

#[test]
fn confidential_client_credentials_and_basic_auth() {
    let mut h = Harness::default();
    let secret = h.confidential_client();
    let r = h.token(
        "grant_type=client_credentials&scope=mail",
        Some(&basic("web", secret.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    assert!(j.get("refresh_token").is_none());
    let claims = h.validate(j["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.subject, "web");
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", "wrong")),
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic realm="));
    assert_eq!(json(&r)["error"], "invalid_client");
}
