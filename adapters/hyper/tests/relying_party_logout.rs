//! Telling relying parties that a session ended, over HTTP.
//!
//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a relying party with a
//! `backchannel_logout_uri` (a small HTTP receiver on 127.0.0.1, allowed by the test setting
//! `allow_private_addresses`, as the CIMD tests allow loopback) gets the logout token POSTed when
//! the browser signs out on `/logout`; the token verifies with `/jwks` and names the ID token's
//! `sid`. Without that setting the SSRF policy refuses the same loopback address and nothing is
//! sent. A hint from another session does not end this one. panva's `jose` (the JOSE library
//! under node's openid-client, `tests/interop/openid-client/logout_token.mjs`) accepts the logout
//! token as a relying party checks it, and refuses an ID token in its place.
//!
//! Revocation (Back-Channel Logout §2.7): after `/logout`, the session's refresh token without
//! `offline_access` is refused and its access token inactive, the one with it still works; also
//! with back-channel logout off and no client that registered a URI.
//!
//! Front-channel logout (OpenID Connect Front-Channel Logout 1.0): the page after the confirmed
//! logout frames the relying party's `frontchannel_logout_uri` with `iss` and the session's
//! `sid`, its CSP allows framing that origin only, and it links on to the registered
//! `post_logout_redirect_uri` with the `state`.

mod common;
mod receiver;

use std::time::Duration;

use common::*;
use oauth_proto::config::Config;

async fn server(allow_private_addresses: bool) -> TestServer {
    let mut settings = test_settings();
    settings.cimd.allow_private_addresses = allow_private_addresses;
    settings.cimd.timeout_ms = 2000;
    let config = Config {
        throttle: test_throttle(),
        backchannel_logout: true,
        frontchannel_logout: true,
        ..Config::default()
    };
    TestServer::start_configured(config, settings, REDIRECT).await
}

/// Registers a relying party with a back-channel logout URI; its client id.
async fn register_rp(s: &TestServer, logout_uri: &str) -> String {
    let rp = register(
        s,
        serde_json::json!({
            "backchannel_logout_uri": logout_uri,
            "backchannel_logout_session_required": true,
        }),
    )
    .await;
    assert_eq!(rp.1["backchannel_logout_uri"], logout_uri);
    rp.0
}

/// Registers a relying party with the code flow to [`REDIRECT`], `openid`, and the members of
/// `extra`; its client id and the registration's answer.
async fn register(s: &TestServer, extra: serde_json::Value) -> (String, serde_json::Value) {
    let mut body = serde_json::json!({
        "client_name": "Webmail",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "scope": "openid",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let body = body.to_string();
    let r = s
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let answer = r.json();
    (answer["client_id"].as_str().unwrap().to_owned(), answer)
}

/// Signs alice in for `rp`, approves, exchanges the code: the session cookie and the ID token.
async fn id_token_for(s: &TestServer, rp: &str) -> (String, String) {
    let query = format!(
        "response_type=code&client_id={rp}&redirect_uri={}&state=s&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let (cookie, page) = s.sign_in_with(&query).await;
    let t = s.approve_and_redeem(&cookie, &page, rp).await;
    (cookie, t["id_token"].as_str().unwrap().to_owned())
}

/// Confirms `/logout` with the hint: the answer.
async fn log_out(s: &TestServer, cookie: &str, hint: &str) -> Resp {
    let page = s
        .get(&format!("/logout?id_token_hint={hint}"), Some(cookie))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.hidden("csrf");
    s.post_form(
        "/logout",
        Some(cookie),
        &[("id_token_hint", hint), ("csrf", &csrf), ("confirm", "1")],
    )
    .await
}

/// `token`'s header and claims, verified with the server's `/jwks` only.
async fn verify(s: &TestServer, token: &str) -> (serde_json::Value, serde_json::Value) {
    receiver::verify(&s.get("/jwks", None).await.json(), token)
}

/// Signs in for a relying party with a loopback receiver, logs out on `/logout`, and waits for
/// the POST: the relying party's id, the ID token and its claims, and the logout token.
async fn logged_out(s: &TestServer) -> (String, String, serde_json::Value, String) {
    let (port, mut got) = receiver::start().await;
    let rp = register_rp(s, &format!("http://127.0.0.1:{port}/bc")).await;
    let (cookie, id_token) = id_token_for(s, &rp).await;
    let (_, id) = verify(s, &id_token).await;
    let sid = id["sid"].as_str().expect("a sid").to_owned();
    assert_ne!(sid, cookie, "the sid is not the session cookie");
    assert!(!cookie.contains(&sid) && !sid.contains(&cookie));

    let r = log_out(s, &cookie, &id_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("signed out"), "{}", r.body);
    let received = tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("the relying party is told within 10 s")
        .unwrap();
    // Once.
    assert!(tokio::time::timeout(Duration::from_millis(500), got.recv())
        .await
        .is_err());
    (rp, id_token, id, receiver::logout_token(&received))
}

#[tokio::test]
async fn logout_posts_a_verifiable_logout_token_with_the_sessions_sid() {
    let s = server(true).await;
    let (rp, _, id, logout_token) = logged_out(&s).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id.get("acr").is_none());
    let (header, claims) = verify(&s, &logout_token).await;
    let (iss, sid) = (id["iss"].as_str().unwrap(), id["sid"].as_str().unwrap());
    receiver::check_logout_token(&header, &claims, iss, &rp, "alice", sid);
}

/// The logout token as panva's `jose` (under node's openid-client) checks it: valid, with the
/// event, `sub` and the ID token's `sid`, no `nonce`; the ID token itself is no logout token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_partys_jose_library_accepts_the_logout_token() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/openid-client");
    if let Err(missing) = npm_ready(&dir, "openid-client").await {
        missing_component(&missing);
        return;
    }
    let s = server(true).await;
    let (rp, id_token, id, logout_token) = logged_out(&s).await;
    let input = serde_json::json!({
        "jwks_uri": format!("{}/jwks", s.base),
        "issuer": id["iss"],
        "audience": rp,
        "tokens": [logout_token, id_token],
    });
    let seen = run_json_script(
        "node",
        &dir.join("logout_token.mjs"),
        Some(&dir),
        &input,
        "jose logout token",
    )
    .await;
    let verdicts = seen.as_array().expect("one verdict per token");
    let ok = &verdicts[0];
    assert_eq!(ok["valid"], true, "{seen}");
    assert_eq!(ok["event"], true, "{seen}");
    assert_eq!(ok["nonce"], false, "{seen}");
    assert_eq!(ok["sub"], "alice", "{seen}");
    assert_eq!(ok["sid"], id["sid"], "{seen}");
    assert_eq!(ok["alg"], "ES256", "{seen}");
    assert_eq!(
        verdicts[1]["valid"], false,
        "an ID token is refused: {seen}"
    );
}

#[tokio::test]
async fn the_ssrf_policy_refuses_a_private_logout_uri() {
    let (port, mut got) = receiver::start().await;
    // The policy of client metadata documents: no loopback, no private network.
    let s = server(false).await;
    let rp = register_rp(&s, &format!("http://127.0.0.1:{port}/bc")).await;
    let (cookie, id_token) = id_token_for(&s, &rp).await;
    let r = log_out(&s, &cookie, &id_token).await;
    assert_eq!(
        r.status, 200,
        "the user's logout is not held up: {}",
        r.body
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(3), got.recv())
            .await
            .is_err(),
        "nothing may be sent to a loopback address"
    );
}

#[tokio::test]
async fn a_hint_from_another_session_does_not_end_this_one() {
    let (port, _got) = receiver::start().await;
    let s = server(true).await;
    let rp = register_rp(&s, &format!("http://127.0.0.1:{port}/bc")).await;
    let (old_cookie, old_token) = id_token_for(&s, &rp).await;
    assert_eq!(log_out(&s, &old_cookie, &old_token).await.status, 200);
    // A new session; the old session's ID token is no hint for it.
    let (cookie, _) = id_token_for(&s, &rp).await;
    let r = s
        .get(&format!("/logout?id_token_hint={old_token}"), Some(&cookie))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("another session"), "{}", r.body);
    // Still signed in: a logout without hint asks to sign out.
    let again = s.get("/logout", Some(&cookie)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("Sign out?"), "{}", again.body);
}

#[tokio::test]
async fn the_signed_out_page_frames_the_front_channel_logout_page_then_links_on() {
    let s = server(true).await;
    let fc = "http://127.0.0.1:4711/fc?app=1";
    let after = "http://127.0.0.1:4711/after";
    let (rp, answer) = register(
        &s,
        serde_json::json!({
            "frontchannel_logout_uri": fc,
            "frontchannel_logout_session_required": true,
            "post_logout_redirect_uris": [after],
        }),
    )
    .await;
    assert_eq!(answer["frontchannel_logout_uri"], fc);
    let (cookie, id_token) = id_token_for(&s, &rp).await;
    let (_, id) = verify(&s, &id_token).await;
    let sid = id["sid"].as_str().expect("a sid");

    let query = format!(
        "id_token_hint={id_token}&post_logout_redirect_uri={}&state=z",
        enc(after)
    );
    let page = s.get(&format!("/logout?{query}"), Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = s
        .post_form(
            "/logout",
            Some(&cookie),
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", after),
                ("state", "z"),
                ("csrf", &page.hidden("csrf")),
                ("confirm", "1"),
            ],
        )
        .await;
    // A page to frame the logout page in, not a redirect at once.
    assert_eq!(r.status, 200, "{}", r.body);
    let framed = format!(
        "{fc}&amp;iss={}&amp;sid={}",
        enc(id["iss"].as_str().unwrap()),
        enc(sid)
    );
    assert!(
        r.body.contains(&format!("<iframe src=\"{framed}\"")),
        "{framed} in {}",
        r.body
    );
    assert!(
        r.body
            .contains(&format!("<a href=\"{after}?state=z\">Continue</a>")),
        "{}",
        r.body
    );
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-src http://127.0.0.1:4711;"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // The session ended: the old cookie has nothing left to sign out.
    let again = s.get("/logout", Some(&cookie)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(!again.body.contains("Sign out?"), "{}", again.body);
    // A logout of nobody frames nothing, and pages frame nothing by default.
    assert!(!again.body.contains("<iframe"));
    assert!(!again
        .header("content-security-policy")
        .unwrap()
        .contains("frame-src"));
}

/// A client the user never approved is not one of the session's relying parties: any site can
/// send a signed-in browser to `/authorize` for its own client (self-registered with a
/// `backchannel_logout_uri`), and the consent page alone must neither tell that client who the
/// user is (the logout token's `sub`) nor take one of the session's bounded places.
#[tokio::test]
async fn a_client_shown_the_consent_page_only_is_not_told_of_the_logout() {
    let s = server(true).await;
    let (approved_port, mut approved_got) = receiver::start().await;
    let approved = register_rp(&s, &format!("http://127.0.0.1:{approved_port}/bc")).await;
    let (stranger_port, mut stranger_got) = receiver::start().await;
    let stranger = register_rp(&s, &format!("http://127.0.0.1:{stranger_port}/bc")).await;
    let (cookie, id_token) = id_token_for(&s, &approved).await;
    let query = format!(
        "response_type=code&client_id={stranger}&redirect_uri={}&state=s&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let consent = s.get(&format!("/authorize?{query}"), Some(&cookie)).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("approve"), "{}", consent.body);

    let r = log_out(&s, &cookie, &id_token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::timeout(Duration::from_secs(10), approved_got.recv())
        .await
        .expect("the approved relying party is told within 10 s")
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), stranger_got.recv())
            .await
            .is_err(),
        "a client the user never approved learns nothing of the session"
    );
}

/// A client given a code at once from a remembered consent is one of the session's relying
/// parties, as one approved on the consent page is.
#[tokio::test]
async fn a_client_given_a_code_from_remembered_consent_is_told_of_the_logout() {
    let s = server(true).await;
    let (port, mut got) = receiver::start().await;
    let remembered = register_rp(&s, &format!("http://127.0.0.1:{port}/bc")).await;
    let (cookie, id_token) = id_token_for(&s, &remembered).await;
    assert_eq!(log_out(&s, &cookie, &id_token).await.status, 200);
    tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("told of the first session's end")
        .unwrap();

    // A new session, approved for another client; then a code at once for the first one.
    let (other, _) = register(&s, serde_json::json!({})).await;
    let (cookie, id_token) = id_token_for(&s, &other).await;
    let query = format!(
        "response_type=code&client_id={remembered}&redirect_uri={}&state=s&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let r = s.get(&format!("/authorize?{query}"), Some(&cookie)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location_param("code").is_some(), "a code at once");

    assert_eq!(log_out(&s, &cookie, &id_token).await.status, 200);
    let received = tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("the client given a code at once is told within 10 s")
        .unwrap();
    let (_, claims) = verify(&s, &receiver::logout_token(&received)).await;
    assert_eq!(claims["aud"], remembered.as_str());
}

/// Approves `rp` for `scope` on the consent page of a signed-in browser (`cookie`): the token
/// response for the code.
async fn tokens_in_session(
    s: &TestServer,
    cookie: &str,
    rp: &str,
    scope: &str,
) -> serde_json::Value {
    let query = format!(
        "response_type=code&client_id={rp}&redirect_uri={}&state=s&scope={}\
         &code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=consent",
        enc(REDIRECT),
        enc(scope)
    );
    let page = s.get(&format!("/authorize?{query}"), Some(cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    s.approve_and_redeem(cookie, &page, rp).await
}

/// Back-Channel Logout §2.7 over HTTP: after `/logout`, the session's refresh token without
/// `offline_access` is refused (`invalid_grant`) and its access token is inactive; the one with
/// `offline_access` still refreshes. Whether or not back-channel logout is on, and with no
/// client that registered a URI: the revocation does not depend on delivery.
#[tokio::test]
async fn logout_revokes_the_sessions_refresh_tokens_without_offline_access() {
    for backchannel_logout in [true, false] {
        let config = Config {
            throttle: test_throttle(),
            backchannel_logout,
            ..Config::default()
        };
        let s = TestServer::start_configured(config, test_settings(), REDIRECT).await;
        let (rp, _) = register(
            &s,
            serde_json::json!({
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid offline_access",
            }),
        )
        .await;
        let query = format!(
            "response_type=code&client_id={rp}&redirect_uri={}&state=s&scope=openid\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(REDIRECT)
        );
        let (cookie, _) = s.sign_in_with(&query).await;
        let online = tokens_in_session(&s, &cookie, &rp, "openid").await;
        let offline = tokens_in_session(&s, &cookie, &rp, "openid offline_access").await;
        assert!(offline["scope"]
            .as_str()
            .is_some_and(|sc| sc.contains("offline_access")));
        let refresh = |t: &serde_json::Value| t["refresh_token"].as_str().unwrap().to_owned();
        let access = |t: &serde_json::Value| t["access_token"].as_str().unwrap().to_owned();
        assert_eq!(s.introspect_json(&access(&online)).await["active"], true);

        let hint = online["id_token"].as_str().unwrap();
        let r = log_out(&s, &cookie, hint).await;
        assert_eq!(r.status, 200, "{}", r.body);

        let r = s
            .token(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh(&online)),
                    ("client_id", &rp),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant");
        assert_eq!(s.introspect_json(&access(&online)).await["active"], false);

        assert_eq!(s.introspect_json(&access(&offline)).await["active"], true);
        let r = s
            .token(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh(&offline)),
                    ("client_id", &rp),
                ],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "offline_access stays: {}", r.body);
    }
}
