//! OpenID Connect's `prompt`, `max_age`, `login_hint` and remembered consent through the
//! reference server's pages (issue 18): what a browser sees at `/authorize`.

mod common;

use common::*;
use oauth_server::admin::consents;

/// The authorization query of the public client with `extra` parameters.
fn query(ts: &TestServer, state: &str, extra: &str) -> String {
    format!("{}{extra}", ts.authorize_query(state))
}

/// Approves the consent page `page` (signed in as `cookie`); returns the redirect.
async fn approve(ts: &TestServer, cookie: &str, page: &Resp) -> Resp {
    let r = ts
        .post_form(
            "/authorize",
            Some(cookie),
            &[
                ("csrf", &page.hidden("csrf")),
                ("page", &page.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    r
}

/// Signs in and approves once; returns the signed-in session cookie.
async fn signed_in_and_approved(ts: &TestServer) -> String {
    let (cookie, page) = ts.sign_in("first").await;
    assert!(
        page.body.contains("decision"),
        "the consent page: {}",
        page.body
    );
    let r = approve(ts, &cookie, &page).await;
    assert!(r.location_param("code").is_some());
    cookie
}

/// The code of a redirect to the client, which must carry `state` and `iss`.
fn code_of(ts: &TestServer, r: &Resp, state: &str) -> String {
    assert!(
        matches!(r.status, 302 | 303),
        "expected a redirect, got {}: {}",
        r.status,
        r.body
    );
    assert!(r.header("location").unwrap().starts_with(&ts.redirect));
    assert_eq!(r.location_param("state").as_deref(), Some(state));
    assert_eq!(
        r.location_param("iss").as_deref(),
        Some(issuer(ts).as_str())
    );
    r.location_param("code")
        .unwrap_or_else(|| panic!("no code: {:?}", r.header("location")))
}

fn issuer(ts: &TestServer) -> String {
    ts.running.app().engine.config().issuer.clone()
}

fn is_sign_in_form(r: &Resp) -> bool {
    r.status == 200 && r.body.contains("name=\"password\"")
}

fn is_consent_page(r: &Resp) -> bool {
    r.status == 200 && r.body.contains("name=\"decision\"")
}

/// Posts the password on the sign-in form `page`.
async fn post_password(ts: &TestServer, cookie: &str, page: &Resp) -> Resp {
    ts.post_form(
        "/authorize",
        Some(cookie),
        &[
            ("csrf", &page.hidden("csrf")),
            ("page", &page.hidden("page")),
            ("username", USER),
            ("password", PASSWORD),
        ],
    )
    .await
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_and_makes_no_session() {
    let ts = TestServer::start().await;
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "s1", "&prompt=none")),
            None,
        )
        .await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with(&ts.redirect));
    assert_eq!(r.location_param("error").as_deref(), Some("login_required"));
    assert_eq!(r.location_param("state").as_deref(), Some("s1"));
    assert_eq!(
        r.location_param("iss").as_deref(),
        Some(issuer(&ts).as_str())
    );
    assert_eq!(
        r.session_cookie(),
        None,
        "no session for an answer without a page"
    );
    // A bad prompt is the request's error, sent back the same way.
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "s2", "&prompt=none+login")),
            None,
        )
        .await;
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("invalid_request")
    );
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "s3", "&max_age=-1")),
            None,
        )
        .await;
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn prompt_none_with_a_session_needs_a_remembered_consent_then_answers_with_a_code() {
    let ts = TestServer::start().await;
    let (cookie, consent) = ts.sign_in("first").await;
    // Signed in, never approved: consent_required, without a page.
    let silent = format!("/authorize?{}", query(&ts, "s2", "&prompt=none"));
    let r = ts.get(&silent, Some(&cookie)).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("consent_required")
    );
    assert_eq!(r.location_param("state").as_deref(), Some("s2"));
    approve(&ts, &cookie, &consent).await;
    // Approved once: the same request gets a code silently, and it redeems.
    let r = ts.get(&silent, Some(&cookie)).await;
    let code = code_of(&ts, &r, "s2");
    let t = ts
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &ts.public_id),
                ("redirect_uri", &ts.redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    // max_age shorter than the session's age: login_required. (The session is at most a few
    // seconds old; max_age=0 is exceeded once a second has passed.)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "s3", "&prompt=none&max_age=0")),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.location_param("error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn remembered_consent_skips_the_page_prompt_consent_shows_it_and_deny_withdraws_it() {
    let ts = TestServer::start().await;
    let cookie = signed_in_and_approved(&ts).await;
    // The mail client asks again with the same scope, then with less: no page.
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "again", "")),
            Some(&cookie),
        )
        .await;
    code_of(&ts, &r, "again");
    let narrower = format!(
        "response_type=code&client_id={}&redirect_uri={}&state=less&scope=mail\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        ts.public_id,
        enc(&ts.redirect)
    );
    let r = ts
        .get(&format!("/authorize?{narrower}"), Some(&cookie))
        .await;
    code_of(&ts, &r, "less");
    // prompt=consent: the page again. Denying there withdraws the remembered consent: the
    // next request shows the page.
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "ask", "&prompt=consent")),
            Some(&cookie),
        )
        .await;
    assert!(is_consent_page(&r), "{}", r.body);
    let denied = ts
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &r.hidden("csrf")),
                ("page", &r.hidden("page")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(
        denied.location_param("error").as_deref(),
        Some("access_denied")
    );
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "after", "")),
            Some(&cookie),
        )
        .await;
    assert!(is_consent_page(&r), "{}", r.body);
}

#[tokio::test]
async fn prompt_login_and_max_age_zero_ask_for_the_password_again() {
    let ts = TestServer::start().await;
    let mut cookie = signed_in_and_approved(&ts).await;
    for (state, extra) in [("login", "&prompt=login"), ("age", "&max_age=0")] {
        if extra.contains("max_age") {
            // The session must be older than zero seconds.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
        let page = ts
            .get(
                &format!("/authorize?{}", query(&ts, state, extra)),
                Some(&cookie),
            )
            .await;
        assert!(is_sign_in_form(&page), "{extra}: {}", page.body);
        assert!(
            page.body.contains(&format!("value=\"{USER}\"")),
            "prefilled with the signed-in user: {}",
            page.body
        );
        // A wrong password does not pass.
        let wrong = ts
            .post_form(
                "/authorize",
                Some(&cookie),
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("page", &page.hidden("page")),
                    ("username", USER),
                    ("password", "not the password"),
                ],
            )
            .await;
        assert!(is_sign_in_form(&wrong), "{}", wrong.body);
        // The password again: the consent is remembered, so the code comes at once.
        let r = post_password(&ts, &cookie, &page).await;
        code_of(&ts, &r, state);
        cookie = r
            .session_cookie()
            .expect("a new session id after the sign-in");
    }
}

#[tokio::test]
async fn login_hint_prefills_the_user_name_escaped() {
    let ts = TestServer::start().await;
    let hint = "bob\"><script>x</script>@example.com";
    let page = ts
        .get(
            &format!(
                "/authorize?{}",
                query(&ts, "h", &format!("&login_hint={}", enc(hint)))
            ),
            None,
        )
        .await;
    assert!(is_sign_in_form(&page), "{}", page.body);
    assert!(!page.body.contains("<script>x"), "{}", page.body);
    assert!(
        page.body
            .contains("value=\"bob&quot;&gt;&lt;script&gt;x&lt;/script&gt;@example.com\""),
        "{}",
        page.body
    );
    let r = ts
        .get(
            &format!(
                "/authorize?{}",
                query(&ts, "h2", &format!("&login_hint={}", "a".repeat(256)))
            ),
            None,
        )
        .await;
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn the_administrator_revokes_a_consent_and_the_page_comes_back() {
    let ts = TestServer::start().await;
    let cookie = signed_in_and_approved(&ts).await;
    let store = &ts.running.app().store;
    let listed = consents::list(&**store, USER).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, ts.public_id);
    assert_eq!(listed[0].scope.as_str(), "mail offline_access");
    consents::revoke(&**store, USER, &ts.public_id)
        .await
        .unwrap();
    let r = ts
        .get(
            &format!("/authorize?{}", query(&ts, "back", "")),
            Some(&cookie),
        )
        .await;
    assert!(is_consent_page(&r), "{}", r.body);
    // Deleting the user forgets the consents too.
    approve(&ts, &cookie, &r).await;
    assert_eq!(consents::list(&**store, USER).await.unwrap().len(), 1);
    oauth_server::admin::users::delete(&**store, &ts.running.app().engine, USER, 2)
        .await
        .unwrap();
    assert!(consents::list(&**store, USER).await.unwrap().is_empty());
}
