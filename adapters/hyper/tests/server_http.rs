//! The server over real HTTP: pages, the code flow with PKCE, the token endpoint, limits, headers.

mod common;

use oauth_proto::throttle::ThrottleConfig;

use common::*;

#[tokio::test]
async fn healthz_and_security_headers() {
    let s = TestServer::start().await;
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok\n");
    for r in [r, s.get("/nope", None).await] {
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
    let css = s.get("/static/style.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = TestServer::start().await;
    let r = s.get("/nope", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "invalid_request");
    let r = s.get("/token", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["error"], "invalid_request");
    let r = s.send("DELETE", "/authorize", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = s.send("POST", "/healthz", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let s = TestServer::start().await;
    let big = vec![b'a'; 64 * 1024 + 1];
    let r = s
        .send(
            "POST",
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            &big,
        )
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "invalid_request");
    s.running.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let s = TestServer::start().await;
    let huge = "x".repeat(20 * 1024);
    let r = s.send("GET", "/healthz", &[("x-big", &huge)], b"").await;
    assert!(r.status == 431 || r.status == 400, "{}", r.status);
    s.running.shutdown().await;
}

#[tokio::test]
async fn unknown_client_and_bad_redirect_get_an_error_page_not_a_redirect() {
    let s = TestServer::start().await;
    let r = s
        .get("/authorize?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&state=x", None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("unknown client_id"));
    let r = s
        .get(&format!("/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", s.public_id), None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("not registered"));
    // With a verified redirect URI, other errors go back to the client.
    let r = s
        .get(
            &format!(
                "/authorize?response_type=token&client_id={}&redirect_uri={}&state=s1",
                s.public_id,
                enc(REDIRECT)
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(r.location_param("state").as_deref(), Some("s1"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn authorization_page_renders_the_login_form() {
    let s = TestServer::start().await;
    let r = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script"));
    assert!(r.body.contains("name=\"username\"") && r.body.contains("name=\"password\""));
    assert!(
        r.body.contains("Native &lt;Mail&gt; App"),
        "client name escaped"
    );
    assert!(r.body.contains("<meta name=\"viewport\""));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http issuer");
    s.running.shutdown().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let s = TestServer::start().await;
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let cookie = page.session_cookie().unwrap();
    let mut answers = Vec::new();
    for (user, pw) in [(USER, "not the password"), ("mallory", "not the password")] {
        let r = s
            .post_form(
                "/authorize",
                Some(&cookie),
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("page", &page.hidden("page")),
                    ("username", user),
                    ("password", pw),
                ],
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.session_cookie().is_none(), "no sign-in");
        let start = r.body.find("<p class=\"error\"").unwrap();
        let end = r.body[start..].find("</p>").unwrap() + start;
        answers.push(r.body[start..end].to_owned());
        assert!(r.body.contains("name=\"password\""), "the form again");
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].contains("user name or password is wrong"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn login_attempts_are_limited_per_address_and_account() {
    let throttle = ThrottleConfig {
        pair_free_failures: 1,
        pair_max_failures: 2,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let cookie = page.session_cookie().unwrap();
    let attempt = |pw: &'static str| {
        let (csrf, pid, cookie) = (page.hidden("csrf"), page.hidden("page"), cookie.clone());
        let s = &s;
        async move {
            s.post_form(
                "/authorize",
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("page", &pid),
                    ("username", USER),
                    ("password", pw),
                ],
            )
            .await
        }
    };
    assert_eq!(attempt("wrong one").await.status, 200);
    assert_eq!(attempt("wrong two").await.status, 200);
    let locked = attempt(PASSWORD).await;
    assert_eq!(
        locked.status, 429,
        "even the right password is refused now, from this address"
    );
    assert!(locked.body.contains("Too many failed sign-in attempts"));
    assert!(locked.session_cookie().is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_session_are_refused() {
    let s = TestServer::start().await;
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let cookie = page.session_cookie().unwrap();
    let pid = page.hidden("page");
    let login = |csrf: String, cookie: Option<String>| {
        let (s, pid) = (&s, pid.clone());
        async move {
            s.post_form(
                "/authorize",
                cookie.as_deref(),
                &[
                    ("csrf", &csrf),
                    ("page", &pid),
                    ("username", USER),
                    ("password", PASSWORD),
                ],
            )
            .await
        }
    };
    let r = login("forged".to_owned(), Some(cookie.clone())).await;
    assert_eq!(r.status, 403);
    assert!(r.session_cookie().is_none());
    let r = login(page.hidden("csrf"), None).await;
    assert_eq!(r.status, 403);
    // Another browser's session cannot use this page even with its own valid token.
    let other = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let r = login(other.hidden("csrf"), other.session_cookie()).await;
    assert_eq!(r.status, 400, "the page belongs to the first session");
    // Decisions need the token too.
    let (signed_in, consent) = s.sign_in("st").await;
    let r = s
        .post_form(
            "/authorize",
            Some(&signed_in),
            &[
                ("csrf", "x"),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("location").is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn code_flow_with_pkce_then_refresh() {
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("state-123").await;
    assert!(consent.body.contains("Native &lt;Mail&gt; App"));
    assert!(consent.body.contains("127.0.0.1"), "redirect host shown");
    assert!(
        consent.body.contains("<li>mail</li>") && consent.body.contains("<li>offline_access</li>")
    );
    assert!(consent.body.contains("Signed in as <strong>alice</strong>"));
    let csp = consent.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:4711;"),
        "{csp}"
    );

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
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with(REDIRECT));
    assert_eq!(r.location_param("state").as_deref(), Some("state-123"));
    assert_eq!(
        r.location_param("iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );
    let code = r.location_param("code").unwrap();

    // The page is used up.
    let again = s
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
    assert_eq!(again.status, 400);

    let t = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &s.public_id),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let j = t.json();
    let access = j["access_token"].as_str().unwrap().to_owned();
    let refresh = j["refresh_token"].as_str().unwrap().to_owned();
    let claims = s
        .running
        .app()
        .engine
        .validate_access_token(&access, oauth_server::clock::now(), &*s.running.app().store)
        .unwrap();
    assert_eq!(claims.subject, USER);

    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &s.public_id),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(
        r.json()["refresh_token"].as_str().unwrap(),
        refresh,
        "public clients rotate"
    );

    // A second authorization in the same browser asks nothing: the user is signed in and
    // approved this client for this scope (remembered consent, issue 18), so the code comes at
    // once.
    let r = s
        .get(
            &format!("/authorize?{}", s.authorize_query("again")),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location_param("state").as_deref(), Some("again"));
    assert!(r.location_param("code").is_some());
    s.running.shutdown().await;
}

#[tokio::test]
async fn deny_sends_access_denied() {
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("st-deny").await;
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location_param("error").as_deref(), Some("access_denied"));
    assert_eq!(r.location_param("state").as_deref(), Some("st-deny"));
    assert!(r.location_param("code").is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_client_deleted_while_the_user_decides_gets_no_code() {
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("st").await;
    let app = s.running.app();
    oauth_server::admin::clients::delete(
        &*app.store,
        &app.engine,
        &s.public_id,
        oauth_server::clock::now(),
    )
    .await
    .unwrap();
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
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn client_credentials_with_basic_auth() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[("grant_type", "client_credentials"), ("scope", "mail")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token_type"], "Bearer");
    let r = s
        .token(
            &[("grant_type", "client_credentials")],
            Some((&s.service_id, "wrong")),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    // A confidential web client authenticates the same way at the code exchange.
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("code_verifier", VERIFIER),
            ],
            Some((&s.web_id, &s.web_secret)),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    s.running.shutdown().await;
}

#[tokio::test]
async fn someone_else_can_sign_in_from_the_consent_page() {
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("st").await;
    assert!(consent.body.contains("Not alice?"));
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("switch_user", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("name=\"password\""),
        "the sign-in form again"
    );
    let anonymous = r.session_cookie().expect("a new session id");
    assert!(s.get("/healthz", None).await.status == 200);
    // The signed-in session is gone: its id cannot approve any more.
    let again = s
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
    assert_eq!(again.status, 403);
    // And the new anonymous session cannot decide before signing in.
    let r2 = s
        .post_form(
            "/authorize",
            Some(&anonymous),
            &[
                ("csrf", &r.hidden("csrf")),
                ("page", &r.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r2.status, 403);
    assert!(r2.header("location").is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn a3_get_never_reaches_the_credential_endpoints() {
    let s = TestServer::start().await;
    let query = format!(
        "?grant_type=client_credentials&client_id={}&client_secret={}&token=x",
        s.service_id, s.service_secret
    );
    for path in ["/token", "/introspect", "/revoke", "/device_authorization"] {
        let r = s.get(&format!("{path}{query}"), None).await;
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.header("allow"), Some("POST"), "{path}");
        assert_eq!(r.json()["error"], "invalid_request", "{path}");
        assert!(!r.body.contains("access_token"), "{path}");
    }
    // POST, but not a form: refused too.
    let r = s
        .send(
            "POST",
            "/token",
            &[("content-type", "application/json")],
            br#"{"grant_type":"client_credentials"}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a11_no_cors_on_the_authorization_endpoint() {
    let s = TestServer::start().await;
    let origin = ("origin", "https://evil.example");
    let get = s
        .send(
            "GET",
            &format!("/authorize?{}", s.authorize_query("st")),
            &[origin],
            b"",
        )
        .await;
    assert_eq!(get.status, 200);
    let preflight = s
        .send(
            "OPTIONS",
            "/authorize",
            &[
                origin,
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            b"",
        )
        .await;
    assert_eq!(preflight.status, 405);
    let (cookie, consent) = s.sign_in("st").await;
    let post = s
        .send(
            "POST",
            "/authorize",
            &[
                origin,
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &format!("oauth_session={cookie}")),
            ],
            serde_urlencoded::to_string([
                ("csrf", consent.hidden("csrf")),
                ("page", consent.hidden("page")),
                ("decision", "deny".to_owned()),
            ])
            .unwrap()
            .as_bytes(),
        )
        .await;
    assert_eq!(post.status, 303);
    for r in [&get, &preflight, &post] {
        assert!(
            !r.headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "{:?}",
            r.headers
        );
    }
    s.running.shutdown().await;
}

/// Forwarding headers from a peer that is not a trusted proxy are never read: a direct client
/// cannot change the issuer or the URLs the server names, nor pose as many addresses to get
/// around the per-address limits.
#[tokio::test]
async fn a12_spoofed_forwarding_headers_change_nothing() {
    let throttle = ThrottleConfig {
        address_free_failures: 1,
        address_max_failures: 2,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    let spoof = |i: usize| {
        let ip = format!("203.0.113.{i}");
        vec![
            ("x-forwarded-for", ip.clone()),
            ("x-real-ip", ip.clone()),
            (
                "forwarded",
                format!("for={ip};proto=https;host=evil.example"),
            ),
            ("x-forwarded-host", "evil.example".to_owned()),
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-prefix", "/evil".to_owned()),
            ("x-client-cert", "MIIB...".to_owned()),
        ]
    };
    let with = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> { extra.to_vec() };

    // The issuer and every URL in metadata and in redirects stay the configured ones.
    let headers = with(&spoof(1));
    let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.push(("host", "evil.example"));
    let m = s
        .send("GET", "/.well-known/oauth-authorization-server", &h, b"")
        .await;
    assert_eq!(m.status, 200);
    assert!(
        !m.body.contains("evil") && !m.body.contains("https"),
        "{}",
        m.body
    );
    assert_eq!(m.json()["issuer"], "http://127.0.0.1:8080");
    let r = s
        .send(
            "GET",
            &format!(
                "/authorize?response_type=token&client_id={}&redirect_uri={}",
                s.public_id,
                enc(REDIRECT)
            ),
            &h,
            b"",
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location_param("iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );

    // The sign-in limit per address counts the TCP peer, whatever the headers claim.
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let cookie = format!("oauth_session={}", page.session_cookie().unwrap());
    let mut statuses = Vec::new();
    for i in 0..3 {
        let headers = spoof(10 + i);
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.push(("cookie", &cookie));
        h.push(("content-type", "application/x-www-form-urlencoded"));
        let body = serde_urlencoded::to_string([
            ("csrf", page.hidden("csrf")),
            ("page", page.hidden("page")),
            ("username", format!("user{i}")),
            ("password", "wrong".to_owned()),
        ])
        .unwrap();
        statuses.push(
            s.send("POST", "/authorize", &h, body.as_bytes())
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);

    // The limiter is one for every endpoint: the address that failed at sign-in is refused at
    // the token endpoint too, whatever addresses the headers claim.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let headers = spoof(20 + i);
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.push(("content-type", "application/x-www-form-urlencoded"));
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret=guess{i}",
            s.service_id
        );
        statuses.push(s.send("POST", "/token", &h, body.as_bytes()).await.status);
    }
    assert_eq!(statuses, [429, 429, 429]);
    s.running.shutdown().await;
}

#[tokio::test]
async fn b25_a13_failed_guesses_at_the_credential_endpoints_are_limited_per_address() {
    let throttle = ThrottleConfig {
        address_free_failures: 1,
        address_max_failures: 3,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    let good = (s.service_id.as_str(), s.service_secret.as_str());
    // Routine answers do not count: a right secret, a bad scope, an unknown grant type.
    for _ in 0..3 {
        let r = s
            .token(&[("grant_type", "client_credentials")], Some(good))
            .await;
        assert_eq!(r.status, 200);
        let r = s
            .token(
                &[("grant_type", "client_credentials"), ("scope", "root")],
                Some(good),
            )
            .await;
        assert_eq!(r.json()["error"], "invalid_scope");
    }
    // Wrong secrets (401) and guessed codes (invalid_grant) do.
    let r = s
        .token(
            &[("grant_type", "client_credentials")],
            Some((&s.service_id, "guess")),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "guessed"),
                ("client_id", &s.public_id),
            ],
            None,
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = s
        .send(
            "POST",
            "/introspect",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("token=x&client_id={}&client_secret=guess", s.web_id).as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    // Now even the right secret is refused, at every credential endpoint, with Retry-After.
    let r = s
        .token(&[("grant_type", "client_credentials")], Some(good))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_request");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    for path in [
        "/revoke",
        "/introspect",
        "/device_authorization",
        "/register",
    ] {
        let r = s
            .send(
                "POST",
                path,
                &[("content-type", "application/x-www-form-urlencoded")],
                b"token=x",
            )
            .await;
        assert_eq!(r.status, 429, "{path}");
    }
    // Other endpoints are not affected.
    let r = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(r.status, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn c35_c37_every_page_forbids_framing_referrers_and_outside_resources() {
    let s = TestServer::start().await;
    let login = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let error = s
        .get("/authorize?response_type=code&client_id=nobody", None)
        .await;
    let (cookie, consent) = s.sign_in("st").await;
    let forged = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", "x"),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    let redirect = s
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
    let device = s.get("/device", None).await;
    let pages = [
        ("login", &login, 200),
        ("error", &error, 400),
        ("consent", &consent, 200),
        ("forged form", &forged, 403),
        ("redirect", &redirect, 303),
        ("device", &device, 200),
    ];
    for (name, r, status) in pages {
        assert_eq!(r.status, status, "{name}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{name}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{name}");
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{name}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{name}: {csp}");
        assert!(!csp.contains("script"), "{name}: {csp}");
        // Nothing is loaded from elsewhere: no scripts, images or frames, one local stylesheet.
        for tag in ["<script", "<img", "<iframe", "<object", "<embed", " src="] {
            assert!(!r.body.contains(tag), "{name} has {tag}");
        }
        for href in r.body.split("href=\"").skip(1) {
            // Relative to the issuer's path, under which every page and the stylesheet live:
            // the stylesheet, and the consent views' link to this server's sign-out page.
            assert!(
                href.starts_with("static/style.css\"") || href.starts_with("logout\""),
                "{name}: {href}"
            );
        }
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn c36_a_decision_refused_after_the_form_is_a_303_redirect() {
    use oauth_proto::store::{AsyncStore, Effect, Op, Reply};
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("st-303").await;
    // The operator narrows the client's scope while the user decides: the re-validated request
    // now fails with invalid_scope, which goes back to the client.
    let store = &*s.running.app().store;
    let Reply::Client(Some(client)) = store
        .execute(Op::GetClient {
            client_id: s.public_id.clone(),
        })
        .await
        .unwrap()
    else {
        panic!("the public client exists")
    };
    let mut client = std::sync::Arc::unwrap_or_clone(client);
    client.scope = oauth_proto::scope::Scope::parse("mail").unwrap();
    store.apply(vec![Effect::PutClient(client)]).await.unwrap();
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
    assert_eq!(r.status, 303, "never 302 or 307 after a POSTed form");
    assert_eq!(r.location_param("error").as_deref(), Some("invalid_scope"));
    assert_eq!(r.location_param("state").as_deref(), Some("st-303"));
    assert!(r.location_param("code").is_none());
    s.running.shutdown().await;
}

#[tokio::test]
async fn c38_hostile_request_values_are_escaped_on_the_pages() {
    let s = TestServer::start().await;
    let hostile = "\"><script>alert(1)</script>";
    // A hostile client_id or redirect_uri reaches an error page, escaped or not at all.
    for query in [
        format!("response_type=code&client_id={}", enc(hostile)),
        format!(
            "response_type=code&client_id={}&redirect_uri={}",
            s.public_id,
            enc(&format!("https://evil.example/{hostile}"))
        ),
    ] {
        let r = s.get(&format!("/authorize?{query}"), None).await;
        assert_eq!(r.status, 400, "{query}");
        assert!(r.header("location").is_none());
        assert!(!r.body.contains("<script"), "{}", r.body);
    }
    // A hostile state is never rendered, and comes back encoded in the Location header only.
    let query = format!(
        "response_type=code&client_id={}&redirect_uri={}&state={}&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256",
        s.public_id,
        enc(REDIRECT),
        enc(hostile)
    );
    let (cookie, consent) = s.sign_in_with(&query).await;
    assert!(!consent.body.contains("<script"));
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
    assert_eq!(r.status, 303);
    let loc = r.header("location").unwrap();
    assert!(
        !loc.contains('<') && !loc.contains('"') && !loc.contains(' '),
        "{loc}"
    );
    assert_eq!(r.location_param("state").as_deref(), Some(hostile));
    s.running.shutdown().await;
}

/// No endpoint follows a URL from a parameter: the only redirects are authorization responses to
/// a registered redirect URI.
#[tokio::test]
async fn d49_no_endpoint_redirects_to_a_url_taken_from_a_parameter() {
    let s = TestServer::start().await;
    let evil = enc("https://evil.example/x");
    let query = format!(
        "redirect_uri={evil}&return_to={evil}&next={evil}&continue={evil}&post_logout_redirect_uri={evil}&url={evil}&client_id={}",
        s.public_id
    );
    let paths = [
        "/authorize",
        "/device",
        "/token",
        "/introspect",
        "/revoke",
        "/register",
        "/device_authorization",
        "/healthz",
        "/.well-known/oauth-authorization-server",
        "/logout",
        "/error",
        "/continue",
    ];
    for path in paths {
        for method in ["GET", "POST"] {
            let r = s
                .send(
                    method,
                    &format!("{path}?{query}"),
                    &[("content-type", "application/x-www-form-urlencoded")],
                    query.as_bytes(),
                )
                .await;
            assert!(
                r.header("location").is_none(),
                "{method} {path}: {r:?}",
                r = r.status
            );
            assert!(
                !(300..400).contains(&r.status),
                "{method} {path}: {}",
                r.status
            );
        }
    }
    s.running.shutdown().await;
}
