//! Guessing, tried as an attacker would, from a second loopback address: the attacker's requests
//! leave from 127.0.0.2, the user's from 127.0.0.1. Failed guesses slow down and then stop the
//! address that makes them; they never lock the user out (issue 15, "lockouts deny the real
//! user").

mod common;

use common::*;
use oauth_proto::throttle::ThrottleConfig;

const ATTACKER: &str = "127.0.0.2";
const USER_ADDR: &str = "127.0.0.1";

/// Opens the authorization page and posts a password on it; returns the answer.
async fn try_password(s: &TestServer, password: &str) -> Resp {
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = page.session_cookie().unwrap();
    s.post_form(
        "/authorize",
        Some(&cookie),
        &[
            ("csrf", &page.hidden("csrf")),
            ("page", &page.hidden("page")),
            ("username", USER),
            ("password", password),
        ],
    )
    .await
}

fn signed_in(r: &Resp) -> bool {
    r.status == 200 && r.body.contains("name=\"decision\"")
}

#[tokio::test]
async fn wrong_passwords_from_one_address_never_refuse_the_right_one_from_another() {
    let s = TestServer::start().await;
    s.set_source(ATTACKER);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(try_password(&s, &format!("guess {i}")).await.status);
    }
    assert!(
        statuses.ends_with(&[429, 429]),
        "the guessing address is refused for alice: {statuses:?}"
    );
    let r = try_password(&s, PASSWORD).await;
    assert_eq!(r.status, 429, "even with the right password, from there");

    s.set_source(USER_ADDR);
    let r = try_password(&s, PASSWORD).await;
    assert!(
        signed_in(&r),
        "alice signs in from her own address: {}",
        r.body
    );
    // Her success forgot the account's failures, not the attacker's address's.
    s.set_source(ATTACKER);
    assert_eq!(try_password(&s, PASSWORD).await.status, 429);
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_address_guessing_many_accounts_is_refused_everywhere_and_only_it() {
    let throttle = ThrottleConfig {
        address_free_failures: 2,
        address_max_failures: 4,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    s.set_source(ATTACKER);
    let page = s
        .get(&format!("/authorize?{}", s.authorize_query("st")), None)
        .await;
    let cookie = page.session_cookie().unwrap();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = s
            .post_form(
                "/authorize",
                Some(&cookie),
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("page", &page.hidden("page")),
                    ("username", &format!("user{i}")),
                    ("password", "guess"),
                ],
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    // The same address is refused at the token endpoint, even with a right secret.
    let good = (s.service_id.as_str(), s.service_secret.as_str());
    let r = s
        .token(&[("grant_type", "client_credentials")], Some(good))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    // Everyone else is served.
    s.set_source(USER_ADDR);
    let r = s
        .token(&[("grant_type", "client_credentials")], Some(good))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(signed_in(&try_password(&s, PASSWORD).await));
    s.running.shutdown().await;
}

#[tokio::test]
async fn many_successful_sign_ins_from_one_address_are_never_counted() {
    let throttle = ThrottleConfig {
        address_free_failures: 1,
        address_max_failures: 2,
        pair_free_failures: 1,
        pair_max_failures: 2,
        ..test_throttle()
    };
    let s = TestServer::start_throttled(throttle, test_settings(), REDIRECT).await;
    for i in 0..8 {
        let r = try_password(&s, PASSWORD).await;
        assert!(signed_in(&r), "sign-in {i}: {}", r.body);
    }
    s.running.shutdown().await;
}

/// Behind a reverse proxy every request comes from the proxy's address. With the proxy listed in
/// `trusted_proxies`, limits key on the address it forwards for: one client's bogus refresh tokens
/// get that client refused, never the proxy (and so everyone).
#[tokio::test]
async fn behind_a_trusted_proxy_the_guesser_is_refused_and_everyone_else_served() {
    let throttle = ThrottleConfig {
        address_free_failures: 2,
        address_max_failures: 5,
        ..test_throttle()
    };
    let settings = oauth_server::settings::ServerSettings {
        trusted_proxies: vec!["127.0.0.1/32".to_owned()],
        ..test_settings()
    };
    let s = TestServer::start_throttled(throttle, settings, REDIRECT).await;
    let form = "application/x-www-form-urlencoded";
    let bogus = format!(
        "grant_type=refresh_token&refresh_token=bogus&client_id={}",
        s.public_id
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let h = [("content-type", form), ("x-forwarded-for", "203.0.113.66")];
        statuses.push(s.send("POST", "/token", &h, bogus.as_bytes()).await.status);
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429]);

    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", s.service_id, s.service_secret)
        )
    );
    let cc = b"grant_type=client_credentials";
    let h = [
        ("content-type", form),
        ("authorization", basic.as_str()),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    assert_eq!(s.send("POST", "/token", &h, cc).await.status, 200);
    let h = [
        ("content-type", form),
        ("authorization", basic.as_str()),
        ("forwarded", "for=203.0.113.66"),
    ];
    assert_eq!(
        s.send("POST", "/token", &h, cc).await.status,
        429,
        "the guesser stays refused whichever header names it"
    );

    // A peer that is not a trusted proxy cannot pose as someone else.
    s.set_source(ATTACKER);
    for _ in 0..5 {
        let h = [("content-type", form), ("x-forwarded-for", "198.51.100.7")];
        s.send("POST", "/token", &h, bogus.as_bytes()).await;
    }
    s.set_source(USER_ADDR);
    let h = [
        ("content-type", form),
        ("authorization", basic.as_str()),
        ("x-forwarded-for", "198.51.100.7"),
    ];
    assert_eq!(
        s.send("POST", "/token", &h, cc).await.status,
        200,
        "127.0.0.2's guesses were counted against 127.0.0.2"
    );
    s.running.shutdown().await;
}
