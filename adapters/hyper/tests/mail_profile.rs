//! The mail clients' public profile over real HTTP (draft-ietf-mailmaint-oauth-public): a
//! Thunderbird-style native client registers itself with the mail URN scope, signs the user in on
//! an ephemeral loopback port, and gets tokens; the loopback and `offline_access` rules hold.

mod common;

use common::*;

const MAIL_URN: &str = "urn:ietf:params:oauth:scope:mail";

async fn register(s: &TestServer, body: serde_json::Value) -> Resp {
    s.send(
        "POST",
        "/register",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// Signs `alice` in for `query` and approves; returns the code.
async fn approve(s: &TestServer, query: &str) -> String {
    let (cookie, consent) = s.sign_in_with(query).await;
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    // A self-registered client's redirect may be shown as a link rather than followed at once;
    // either way it carries the code.
    if let Some(code) = r.location_param("code") {
        return code;
    }
    let start = r.body.find("code=").expect("a code in the answer") + 5;
    let end = r.body[start..].find(['&', '"']).unwrap() + start;
    r.body[start..end].to_owned()
}

#[tokio::test]
async fn a_thunderbird_style_registration_signs_in_on_any_loopback_port() {
    let s = TestServer::start().await;
    let r = register(
        &s,
        serde_json::json!({
            "client_name": "Thunderbird",
            "redirect_uris": ["http://127.0.0.1/"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "application_type": "native",
            "scope": MAIL_URN,
            "software_id": "thunderbird-desktop",
            "software_version": "140.0",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reg = r.json();
    assert_eq!(reg["scope"], MAIL_URN);
    assert_eq!(reg["application_type"], "native");
    assert_eq!(reg["software_id"], "thunderbird-desktop");
    assert_eq!(reg["software_version"], "140.0");
    let client_id = reg["client_id"].as_str().unwrap();

    let redirect = "http://127.0.0.1:49152/";
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&state=tb&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(redirect),
        enc(MAIL_URN)
    );
    let code = approve(&s, &query).await;
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", client_id),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert_eq!(t["scope"], MAIL_URN);
    assert!(t["refresh_token"].is_string());
    s.running.shutdown().await;
}

#[tokio::test]
async fn loopback_names_port_zero_and_mismatched_application_types_are_refused() {
    let s = TestServer::start().await;
    for (uri, app) in [
        ("http://localhost/", None),
        ("http://127.0.0.1:0/", None),
        ("https://mail.example.com/cb", Some("native")),
        ("http://127.0.0.1/", Some("web")),
    ] {
        let mut body = serde_json::json!({
            "redirect_uris": [uri], "token_endpoint_auth_method": "none",
        });
        if let Some(app) = app {
            body["application_type"] = app.into();
        }
        let r = register(&s, body).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.body);
        let j = r.json();
        assert_eq!(j["error"], "invalid_redirect_uri", "{uri}");
        assert!(j["error_description"].as_str().unwrap().contains(uri));
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_registration_without_the_refresh_grant_never_sees_offline_access() {
    let s = TestServer::start().await;
    let r = register(
        &s,
        serde_json::json!({
            "redirect_uris": ["http://127.0.0.1/"], "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reg = r.json();
    let scope = reg["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|t| t == "offline_access"), "{scope}");
    let client_id = reg["client_id"].as_str().unwrap();
    let redirect = "http://127.0.0.1:50000/";
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&state=x&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(redirect)
    );
    let code = approve(&s, &query).await;
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", client_id),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t.get("refresh_token").is_none());
    let scope = t["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|t| t == "offline_access"), "{scope}");
    assert!(scope.split(' ').any(|t| t == MAIL_URN), "{scope}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn introspection_names_the_users_email_as_dovecot_expects() {
    let s = TestServer::start().await;
    let store = &*s.running.app().store;
    oauth_server::admin::users::set_email(store, USER, Some("alice@mail.example.com"))
        .await
        .unwrap();
    let code = approve(&s, &s.authorize_query("d")).await;
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &s.public_id),
                ("redirect_uri", &s.redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    let j = s.introspect_json(&access).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["username"], USER);
    assert_eq!(j["email"], "alice@mail.example.com");

    // A user named like the service client, with an address: the service's client_credentials
    // token still names no user.
    oauth_server::admin::users::create(
        store,
        &s.service_id,
        PASSWORD,
        oauth_server::admin::users::Details {
            email: Some("impostor@mail.example.com"),
            name: None,
        },
        1,
    )
    .await
    .unwrap();
    let r = s
        .token(
            &[("grant_type", "client_credentials")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    let machine = r.json()["access_token"].as_str().unwrap().to_owned();
    let j = s.introspect_json(&machine).await;
    assert_eq!(j["active"], true);
    assert!(
        j.get("username").is_none() && j.get("email").is_none(),
        "{j}"
    );
    s.running.shutdown().await;
}
