//! Abuse of the authorization and device pages (issue 15 "anonymous page views lock everyone
//! out", issue 16 "approval trusts its input", and the open redirector of RFC 9700 §4.11.2). The
//! attacker's requests leave from 127.0.0.2, the user's from 127.0.0.1.

mod common;

use common::*;
use oauth_server::settings::ServerSettings;

const ATTACKER: &str = "127.0.0.2";
const USER_ADDR: &str = "127.0.0.1";

/// A sign-in page of the public client.
async fn authorize_page(s: &TestServer, cookie: Option<&str>, state: &str) -> Resp {
    s.get(&format!("/authorize?{}", s.authorize_query(state)), cookie)
        .await
}

/// Signs in on the page of `query` and approves; the code from the redirect.
async fn sign_in_and_approve(s: &TestServer, query: &str) -> Resp {
    let (cookie, consent) = s.sign_in_with(query).await;
    s.post_form(
        "/authorize",
        Some(&cookie),
        &[
            ("csrf", &consent.hidden("csrf")),
            ("page", &consent.hidden("page")),
            ("decision", "approve"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_flood_of_anonymous_page_views_locks_out_only_the_flooding_address() {
    let s = TestServer::start_with(
        ServerSettings {
            max_sessions: 50,
            max_anonymous_sessions_per_address: 10,
            max_pages_per_address: 20,
            ..test_settings()
        },
        REDIRECT,
    )
    .await;
    s.set_source(ATTACKER);
    let mut refused = 0;
    for i in 0..60 {
        let r = authorize_page(&s, None, &format!("flood{i}")).await;
        match r.status {
            200 => assert!(i < 10, "request {i} got a page"),
            429 => {
                refused += 1;
                assert!(r.body.contains("Too many sign-ins from your network"));
                assert_eq!(r.header("retry-after"), Some("600"));
                assert!(r.session_cookie().is_none());
            }
            other => panic!("request {i}: {other} {}", r.body),
        }
    }
    assert_eq!(refused, 50);
    assert_eq!(s.get("/device", None).await.status, 429);
    // Everyone else still gets pages, and can finish signing in.
    s.set_source(USER_ADDR);
    assert_eq!(s.get("/device", None).await.status, 200);
    let r = sign_in_and_approve(&s, &s.authorize_query("user")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location_param("code").is_some());
    s.running.shutdown().await;
}

#[tokio::test]
async fn one_cookie_keeps_only_its_newest_pages_and_one_address_only_so_many() {
    let s = TestServer::start_with(
        ServerSettings {
            max_pages_per_session: 4,
            max_pages_per_address: 10,
            ..test_settings()
        },
        REDIRECT,
    )
    .await;
    s.set_source(ATTACKER);
    let first = authorize_page(&s, None, "p0").await;
    let cookie = first.session_cookie().unwrap();
    let mut last = None;
    for i in 1..20 {
        let r = authorize_page(&s, Some(&cookie), &format!("p{i}")).await;
        assert_eq!(
            r.status, 200,
            "one session may view pages forever: {}",
            r.body
        );
        last = Some(r);
    }
    // The first page was evicted; the newest still works.
    let stale = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &first.hidden("csrf")),
                ("page", &first.hidden("page")),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(stale.status, 400);
    assert!(stale.body.contains("This request has expired"));
    let last = last.unwrap();
    let fresh = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &last.hidden("csrf")),
                ("page", &last.hidden("page")),
                ("username", USER),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    // Many cookies from one address: at most 10 pages in all (4 are held by the session above,
    // now signed in; its pages still count against the address that made them).
    let mut pages = 0;
    let mut status = 200;
    while status == 200 {
        let r = authorize_page(&s, None, "more").await;
        status = r.status;
        pages += usize::from(status == 200);
        assert!(pages <= 6, "more pages than the address may hold");
    }
    assert_eq!((status, pages), (429, 6));
    s.set_source(USER_ADDR);
    assert_eq!(authorize_page(&s, None, "user").await.status, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_oversized_state_is_refused_and_nothing_is_kept() {
    let s = TestServer::start().await;
    s.set_source(ATTACKER);
    let big = "s".repeat(15 * 1024);
    let r = authorize_page(&s, None, &big).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        r.location_param("error_description").as_deref(),
        Some("state is longer than 1024 bytes")
    );
    assert_eq!(r.location_param("state"), None);
    assert!(r.header("location").unwrap().len() < 400);
    assert!(r.session_cookie().is_none(), "no session, no page");
    // The largest accepted state still works.
    let ok = authorize_page(&s, None, &"s".repeat(1024)).await;
    assert_eq!(ok.status, 200);
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_self_registered_clients_errors_are_a_page_with_a_link_not_a_redirect() {
    let s = TestServer::start().await;
    s.set_source(ATTACKER);
    let reg = s
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            br#"{"redirect_uris":["https://evil.example/landing"],"token_endpoint_auth_method":"none","client_name":"Evil"}"#,
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    let id = reg.json()["client_id"].as_str().unwrap().to_owned();
    // The victim follows the attacker's link.
    s.set_source(USER_ADDR);
    let lure = format!(
        "/authorize?client_id={id}&response_type=Your+account+is+locked%2C+call+555&state=x"
    );
    let r = s.get(&lure, None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.header("location").is_none(),
        "never redirected on its own"
    );
    assert!(r.body.contains("Return to evil.example"), "{}", r.body);
    assert!(
        r.body.contains(
            "href=\"https://evil.example/landing?error=unsupported_response_type&amp;error_description="
        ),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("locked"),
        "no request text on the page or in the link"
    );
    // An administrator's client keeps the RFC 6749 §4.1.2.1 redirect, with a fixed description.
    let r = s
        .get(
            &format!(
                "/authorize?client_id={}&response_type=Your+account+is+locked&state=x",
                s.public_id
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location_param("error").as_deref(),
        Some("unsupported_response_type")
    );
    assert!(!r.header("location").unwrap().contains("locked"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_redirect_uri_removed_while_the_user_decides_gets_no_code_and_no_redirect() {
    use oauth_proto::store::{AsyncStore, Effect, Op, Reply};
    let s = TestServer::start().await;
    let (cookie, consent) = s.sign_in("st").await;
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
    client.redirect_uris = vec!["http://127.0.0.1:4711/elsewhere".to_owned()];
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
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("nothing was granted"), "{}", r.body);
    s.running.shutdown().await;
}
