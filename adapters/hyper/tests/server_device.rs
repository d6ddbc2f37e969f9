//! The device verification page over real HTTP (RFC 8628 §3.3): code entry, sign-in, consent,
//! approve and deny, and what the polling device gets; wrong codes, CSRF, the attempt limit.

mod common;

use common::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ISSUER: &str = "http://127.0.0.1:8080";

/// Registers a public client allowed the device grant; returns its id.
async fn device_client(s: &TestServer) -> String {
    let body = serde_json::json!({
        "token_endpoint_auth_method": "none",
        "grant_types": [DEVICE_GRANT, "refresh_token"],
        "client_name": "Living <Room> TV",
        "scope": "mail offline_access",
    });
    let r = s
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["client_id"].as_str().unwrap().to_owned()
}

/// Starts a device authorization; returns the answer.
async fn start(s: &TestServer, client_id: &str) -> serde_json::Value {
    let r = s
        .post_form(
            "/device_authorization",
            None,
            &[("client_id", client_id), ("scope", "mail offline_access")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn poll(s: &TestServer, client_id: &str, device_code: &str) -> Resp {
    s.token(
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

/// The path of a verification URI (the issuer is the configured one, not the test's address).
fn path_of(uri: &str) -> &str {
    uri.strip_prefix(ISSUER)
        .unwrap_or_else(|| panic!("{uri} is not under {ISSUER}"))
}

/// Opens the device page and enters `code`; returns the session cookie and the answer.
async fn enter(s: &TestServer, cookie: Option<&str>, code: &str) -> (String, Resp) {
    let page = s.get("/device", cookie).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = page
        .session_cookie()
        .or_else(|| cookie.map(str::to_owned))
        .unwrap();
    let r = s
        .post_form(
            "/device",
            Some(&cookie),
            &[("csrf", &page.hidden("csrf")), ("user_code", code)],
        )
        .await;
    (cookie, r)
}

/// Signs in on a device page's sign-in form; returns the new cookie and the consent page.
async fn sign_in(s: &TestServer, cookie: &str, form: &Resp) -> (String, Resp) {
    let r = s
        .post_form(
            "/device",
            Some(cookie),
            &[
                ("csrf", &form.hidden("csrf")),
                ("page", &form.hidden("page")),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let signed_in = r.session_cookie().expect("a new session id after sign-in");
    assert_ne!(signed_in, cookie);
    (signed_in, r)
}

async fn decide(s: &TestServer, cookie: &str, consent: &Resp, decision: &str) -> Resp {
    s.post_form(
        "/device",
        Some(cookie),
        &[
            ("csrf", &consent.hidden("csrf")),
            ("page", &consent.hidden("page")),
            ("decision", decision),
        ],
    )
    .await
}

/// The `value` of the input named `name`.
fn input_value(r: &Resp, name: &str) -> String {
    let at = r
        .body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} in {}", r.body));
    let rest = &r.body[at..];
    let start = rest.find("value=\"").unwrap() + "value=\"".len();
    let end = rest[start..].find('"').unwrap() + start;
    rest[start..end].replace("&quot;", "\"")
}

fn assert_page_headers(r: &Resp) {
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self';"), "{csp}");
    assert!(!csp.contains("script"), "{csp}");
}

#[tokio::test]
async fn device_flow_through_the_pages_approve() {
    let s = TestServer::start().await;
    let client_id = device_client(&s).await;
    let d = start(&s, &client_id).await;
    let user_code = d["user_code"].as_str().unwrap();
    let device_code = d["device_code"].as_str().unwrap();
    assert_eq!(d["verification_uri"], format!("{ISSUER}/device"));
    assert_eq!(
        poll(&s, &client_id, device_code).await.json()["error"],
        "authorization_pending"
    );

    // The complete URI prefills the code.
    let complete = d["verification_uri_complete"].as_str().unwrap();
    let page = s.get(path_of(complete), None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_page_headers(&page);
    assert!(page.body.contains("name=\"user_code\""));
    assert_eq!(input_value(&page, "user_code"), user_code);
    let cookie = page.session_cookie().unwrap();

    // Entering it leads to the sign-in form, then the consent view.
    let form = s
        .post_form(
            "/device",
            Some(&cookie),
            &[("csrf", &page.hidden("csrf")), ("user_code", user_code)],
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_page_headers(&form);
    assert!(form.body.contains("name=\"username\"") && form.body.contains("name=\"password\""));
    assert!(form.body.contains("Living &lt;Room&gt; TV"), "escaped");
    let (cookie, consent) = sign_in(&s, &cookie, &form).await;
    assert_page_headers(&consent);
    assert!(consent.body.contains("Living &lt;Room&gt; TV"));
    assert!(consent.body.contains(user_code), "the code, to compare");
    assert!(consent
        .body
        .contains("Only continue if you started this on your device"));
    assert!(
        consent.body.contains("<li>mail</li>") && consent.body.contains("<li>offline_access</li>")
    );
    assert!(consent.body.contains("name=\"decision\" value=\"approve\""));
    assert!(consent.body.contains("name=\"decision\" value=\"deny\""));

    let done = decide(&s, &cookie, &consent, "approve").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_page_headers(&done);
    assert!(done.body.contains("You may return to your device"));
    // The page is used once.
    let again = decide(&s, &cookie, &consent, "approve").await;
    assert_eq!(again.status, 400);

    // The device gets its tokens, exactly once.
    let t = poll(&s, &client_id, device_code).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.json();
    assert!(t["access_token"].is_string() && t["refresh_token"].is_string());
    assert_eq!(t["scope"], "mail offline_access");
    let again = poll(&s, &client_id, device_code).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");

    // The token belongs to the user who approved.
    let i = s.introspect(t["access_token"].as_str().unwrap()).await;
    assert_eq!(i.json()["active"], true, "{}", i.body);
    assert_eq!(i.json()["sub"], USER);

    // Still signed in: a second device goes straight to the consent view; the used code is invalid.
    let d2 = start(&s, &client_id).await;
    let (_, consent2) = enter(&s, Some(&cookie), d2["user_code"].as_str().unwrap()).await;
    assert_eq!(consent2.status, 200);
    assert!(consent2
        .body
        .contains("name=\"decision\" value=\"approve\""));
    assert!(!consent2.body.contains("name=\"password\""));
    let (_, used) = enter(&s, Some(&cookie), user_code).await;
    assert!(used.body.contains(oauth_server::pages::INVALID_CODE));
    s.running.shutdown().await;
}

#[tokio::test]
async fn device_flow_deny_gives_access_denied() {
    let s = TestServer::start().await;
    let client_id = device_client(&s).await;
    let d = start(&s, &client_id).await;
    let (cookie, form) = enter(&s, None, d["user_code"].as_str().unwrap()).await;
    let (cookie, consent) = sign_in(&s, &cookie, &form).await;
    let done = decide(&s, &cookie, &consent, "deny").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You denied access"));
    let t = poll(&s, &client_id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(t.status, 400);
    assert_eq!(t.json()["error"], "access_denied");
    s.running.shutdown().await;
}

#[tokio::test]
async fn wrong_codes_get_the_form_again_with_one_message() {
    let s = TestServer::start().await;
    let client_id = device_client(&s).await;
    let _d = start(&s, &client_id).await;
    let mut bodies = Vec::new();
    for code in ["BCDF-GHJK", "not a code"] {
        let (_, r) = enter(&s, None, code).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_page_headers(&r);
        assert!(r.body.contains(oauth_server::pages::INVALID_CODE));
        assert!(r.body.contains("name=\"user_code\""));
        assert_eq!(input_value(&r, "user_code"), code);
        bodies.push(r.body.replace(code, ""));
    }
    // Apart from the echoed code and the CSRF token, the answers are the same.
    let strip = |b: &str| b.split("name=\"csrf\"").next().unwrap().to_owned();
    assert_eq!(strip(&bodies[0]), strip(&bodies[1]));
    // A typed code is escaped when shown back.
    let (_, r) = enter(&s, None, "\"><b>x").await;
    assert!(r.body.contains("value=\"&quot;&gt;&lt;b&gt;x\""));
    s.running.shutdown().await;
}

#[tokio::test]
async fn device_forms_need_the_session_and_its_csrf_token() {
    let s = TestServer::start().await;
    let client_id = device_client(&s).await;
    let d = start(&s, &client_id).await;
    let code = d["user_code"].as_str().unwrap();
    let page = s.get("/device", None).await;
    let cookie = page.session_cookie().unwrap();
    let r = s
        .post_form(
            "/device",
            Some(&cookie),
            &[("csrf", "forged"), ("user_code", code)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Invalid form"));
    let r = s
        .post_form(
            "/device",
            None,
            &[("csrf", &page.hidden("csrf")), ("user_code", code)],
        )
        .await;
    assert_eq!(r.status, 403);
    // Sign-in and decision forms too.
    let (cookie, form) = enter(&s, Some(&cookie), code).await;
    let r = s
        .post_form(
            "/device",
            Some(&cookie),
            &[
                ("csrf", "forged"),
                ("page", &form.hidden("page")),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let (cookie, consent) = sign_in(&s, &cookie, &form).await;
    let r = s
        .post_form(
            "/device",
            Some(&cookie),
            &[
                ("csrf", &form.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "the pre-sign-in token is dead");
    // Another session cannot use this session's page.
    let (other, _) = enter(&s, None, "BCDF-GHJK").await;
    let other_page = s.get("/device", Some(&other)).await;
    let r = s
        .post_form(
            "/device",
            Some(&other),
            &[
                ("csrf", &other_page.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        poll(&s, &client_id, d["device_code"].as_str().unwrap())
            .await
            .json()["error"],
        "authorization_pending"
    );
    // The GET form sends nothing: 405 for other methods.
    let r = s.send("PUT", "/device", &[], b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    s.running.shutdown().await;
}

/// Wrong codes count against the address that types them: it is slowed, then refused, even for a
/// right code. Right codes are never counted, so one address (an office behind NAT) connects as
/// many devices as it likes, and another address is never refused for the guesser's failures.
#[tokio::test]
async fn wrong_code_entries_are_limited_per_address_and_right_ones_never_count() {
    let throttle = oauth_proto::throttle::ThrottleConfig {
        address_free_failures: 1,
        address_max_failures: 3,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    let client_id = device_client(&s).await;
    for i in 0..6 {
        let d = start(&s, &client_id).await;
        let (_, r) = enter(&s, None, d["user_code"].as_str().unwrap()).await;
        assert_eq!(r.status, 200, "device {i}: {}", r.body);
        assert!(r.body.contains("name=\"username\""), "device {i}");
    }

    s.set_source("127.0.0.2");
    let d = start(&s, &client_id).await;
    let page = s.get("/device", None).await;
    let cookie = page.session_cookie().unwrap();
    let csrf = page.hidden("csrf");
    for _ in 0..3 {
        let r = s
            .post_form(
                "/device",
                Some(&cookie),
                &[("csrf", &csrf), ("user_code", "BCDF-GHJK")],
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains(oauth_server::pages::INVALID_CODE));
    }
    let right = d["user_code"].as_str().unwrap();
    let r = s
        .post_form(
            "/device",
            Some(&cookie),
            &[("csrf", &csrf), ("user_code", right)],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many attempts"));
    assert!(!r.body.contains("name=\"username\""));

    s.set_source("127.0.0.1");
    let (_, r) = enter(&s, None, right).await;
    assert_eq!(
        r.status, 200,
        "the right code from another address: {}",
        r.body
    );
    assert!(r.body.contains("name=\"username\""));
    s.running.shutdown().await;
}
