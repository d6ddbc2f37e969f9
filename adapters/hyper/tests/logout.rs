//! RP-initiated logout over HTTP (`/logout`, OpenID Connect RP-Initiated Logout 1.0): a signed-in
//! browser is asked first, its session ends only with the session's CSRF token, the old cookie
//! is worth nothing afterwards, and the browser goes to the client's registered
//! `post_logout_redirect_uri` with its `state`; an unregistered redirect is an error page, never
//! a redirect.

mod common;

use common::*;

const AFTER: &str = "http://127.0.0.1:4711/signed-out";

/// A relying party registered with a logout redirect; returns its client id.
async fn register_rp(s: &TestServer) -> String {
    let body = serde_json::json!({
        "client_name": "Webmail",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "post_logout_redirect_uris": [AFTER],
    })
    .to_string();
    let r = s
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["client_id"].as_str().unwrap().to_owned()
}

/// The hidden fields of the confirmation page, as a form.
fn confirm_form(page: &Resp, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        "client_id",
        "post_logout_redirect_uri",
        "state",
        "csrf",
        "confirm",
    ]
    .iter()
    .filter(|n| page.body.contains(&format!("name=\"{n}\"")))
    .map(|n| ((*n).to_owned(), page.hidden(n)))
    .collect();
    form.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    form
}

async fn post(s: &TestServer, cookie: &str, form: &[(String, String)]) -> Resp {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.post_form("/logout", Some(cookie), &pairs).await
}

/// Whether the session of `cookie` is still signed in: the authorization page then shows the
/// consent view rather than the sign-in form.
async fn signed_in(s: &TestServer, cookie: &str) -> bool {
    let page = s
        .get(
            &format!("/authorize?{}", s.authorize_query("x")),
            Some(cookie),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body.contains("name=\"decision\"")
}

#[tokio::test]
async fn a_confirmed_logout_ends_the_session_and_returns_to_the_client() {
    let s = TestServer::start().await;
    let rp = register_rp(&s).await;
    let (cookie, consent) = s.sign_in("st").await;
    assert!(consent.body.contains("Sign out"), "{}", consent.body);
    assert!(signed_in(&s, &cookie).await);

    let query = format!(
        "client_id={rp}&post_logout_redirect_uri={}&state=a%20b",
        enc(AFTER)
    );
    let page = s.get(&format!("/logout?{query}"), Some(&cookie)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    assert!(page.body.contains("Webmail"), "{}", page.body);
    // The page may only post to this server and to the client it then redirects to.
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:4711"),
        "{csp}"
    );
    // Showing the page ended nothing.
    assert!(signed_in(&s, &cookie).await);

    // Without the session's CSRF token: refused, still signed in.
    let mut forged = confirm_form(&page, &[]);
    forged.retain(|(k, _)| k != "csrf");
    let r = post(&s, &cookie, &forged).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(signed_in(&s, &cookie).await);

    // "Stay signed in".
    let r = post(&s, &cookie, &confirm_form(&page, &[("stay", "1")])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(signed_in(&s, &cookie).await);

    // Confirmed: 303 to the registered URI with the state, and a new anonymous session.
    let r = post(&s, &cookie, &confirm_form(&page, &[])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("{AFTER}?state=a+b").as_str())
    );
    let fresh = r.session_cookie().expect("a new session id");
    assert_ne!(fresh, cookie);
    assert!(
        !signed_in(&s, &cookie).await,
        "the old cookie still signs in"
    );
    assert!(!signed_in(&s, &fresh).await, "the new session is signed in");
}

#[tokio::test]
async fn without_a_session_there_is_nothing_to_ask() {
    let s = TestServer::start().await;
    let rp = register_rp(&s).await;
    let query = format!("client_id={rp}&post_logout_redirect_uri={}", enc(AFTER));
    let r = s.get(&format!("/logout?{query}"), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(AFTER));
    let r = s.get("/logout", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You are signed out"), "{}", r.body);
}

#[tokio::test]
async fn an_unregistered_redirect_is_an_error_page_never_a_redirect() {
    let s = TestServer::start().await;
    let rp = register_rp(&s).await;
    let (cookie, _) = s.sign_in("st").await;
    for query in [
        format!(
            "client_id={rp}&post_logout_redirect_uri={}",
            enc("https://evil.example/")
        ),
        format!("post_logout_redirect_uri={}", enc(AFTER)),
        format!("client_id=nobody&post_logout_redirect_uri={}", enc(AFTER)),
        "id_token_hint=not.a.token".to_owned(),
    ] {
        for cookie in [None, Some(cookie.as_str())] {
            let r = s.get(&format!("/logout?{query}"), cookie).await;
            assert_eq!(r.status, 400, "{query}: {}", r.body);
            assert!(r.header("location").is_none(), "{query}");
            assert!(r.body.contains("not valid"), "{}", r.body);
        }
    }
    assert!(
        signed_in(&s, &cookie).await,
        "an invalid request ended the session"
    );
}
