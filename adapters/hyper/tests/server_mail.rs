//! The auth-only IMAP and SMTP listeners of `serve`, with a token the HTTP server issued.

mod common;

use base64::Engine as _;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn exchange(addr: std::net::SocketAddr, lines: &[String], replies: usize) -> Vec<String> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut out = Vec::new();
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    out.push(std::mem::take(&mut line));
    for l in lines {
        w.write_all(format!("{l}\r\n").as_bytes()).await.unwrap();
    }
    while out.len() <= replies {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            break;
        }
        out.push(line.clone());
    }
    out
}

/// An access token for the test user with `scope`, signed with the server's keys, as the token
/// endpoint would issue it after a code flow (its grant is a user's, not a client's own).
fn user_token(s: &TestServer, scope: &str) -> String {
    user_token_for(s, scope, &[])
}

/// [`user_token`] bound to `audience` (RFC 8707).
fn user_token_for(s: &TestServer, scope: &str, audience: &[&str]) -> String {
    let app = s.running.app();
    let claims = oauth_proto::access_token::AccessClaims {
        grant_id: oauth_proto::store::GrantId([42; 16]),
        subject: USER.to_owned(),
        client_id: s.public_id.clone(),
        scope: oauth_proto::scope::Scope::parse(scope).unwrap(),
        issued_at: oauth_server::clock::now(),
        expires_at: oauth_server::clock::now() + 3600,
        credential_version: oauth_proto::store::RevocationView::credential_version(
            &*app.store,
            USER,
        ),
        audience: oauth_proto::access_token::Audience::new(audience).unwrap(),
    };
    oauth_proto::access_token::issue(&app.engine.keys(), &claims).unwrap()
}

#[tokio::test]
async fn imap_and_smtp_accept_a_valid_token_and_refuse_a_revoked_one() {
    let s = TestServer::start().await;
    let mail = oauth_server::mail::start(
        s.running.app().clone(),
        Some("127.0.0.1:0"),
        Some("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let imap = mail.addresses.iter().find(|(n, _)| *n == "imap").unwrap().1;
    let smtp = mail.addresses.iter().find(|(n, _)| *n == "smtp").unwrap().1;
    let token = user_token(&s, "mail offline_access");
    let xoauth2 = base64::engine::general_purpose::STANDARD
        .encode(format!("user={USER}\x01auth=Bearer {token}\x01\x01"));

    let out = exchange(imap, &[format!("a1 AUTHENTICATE XOAUTH2 {xoauth2}")], 1).await;
    assert!(out[0].starts_with("* OK"), "{out:?}");
    assert!(out[1].starts_with("a1 OK"), "{out:?}");
    let out = exchange(
        smtp,
        &[
            "EHLO client".into(),
            format!("AUTH XOAUTH2 {xoauth2}"),
            "QUIT".into(),
        ],
        usize::MAX,
    )
    .await;
    assert!(out.iter().any(|l| l.starts_with("235 ")), "{out:?}");

    // Revoke the user (a password change): the same token now fails with a challenge, then a
    // permanent failure.
    let effects = s
        .running
        .app()
        .engine
        .revoke_subject(USER, oauth_server::clock::now());
    oauth_proto::store::AsyncStore::apply(&*s.running.app().store, effects)
        .await
        .unwrap();
    let out = exchange(
        imap,
        &[format!("a1 AUTHENTICATE XOAUTH2 {xoauth2}"), String::new()],
        2,
    )
    .await;
    assert!(out[1].starts_with("+ "), "{out:?}");
    assert!(out[2].starts_with("a1 NO"), "{out:?}");
    let out = exchange(
        smtp,
        &[
            "EHLO client".into(),
            format!("AUTH XOAUTH2 {xoauth2}"),
            String::new(),
            "QUIT".into(),
        ],
        usize::MAX,
    )
    .await;
    assert!(out.iter().any(|l| l.starts_with("334 ")), "{out:?}");
    assert!(out.iter().any(|l| l.starts_with("535 5.7.8")), "{out:?}");
    mail.shutdown().await;
    s.running.shutdown().await;
}

/// With `imap://` and `smtp://` resources configured, each listener accepts only tokens whose
/// audience names its own service: a token for the calendar, or for the other listener, is
/// refused, and a token without audience no longer logs in anywhere.
#[tokio::test]
async fn each_listener_checks_the_audience_of_its_configured_resource() {
    use oauth_proto::resource::ProtectedResource;
    let resource = |r: &str, scopes: &[&str]| ProtectedResource {
        resource: r.to_owned(),
        scopes_supported: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_token_format: Default::default(),
    };
    let (imap_id, smtp_id, dav_id) = (
        "imap://127.0.0.1",
        "smtp://127.0.0.1",
        "https://127.0.0.1/dav",
    );
    let config = oauth_proto::config::Config {
        throttle: test_throttle(),
        resources: vec![
            resource(imap_id, &["mail"]),
            resource(smtp_id, &["mail"]),
            resource(dav_id, &["mail", "calendar"]),
        ],
        ..oauth_proto::config::Config::default()
    };
    let s = TestServer::start_configured(config, test_settings(), REDIRECT).await;
    let mail = oauth_server::mail::start(
        s.running.app().clone(),
        Some("127.0.0.1:0"),
        Some("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let imap = mail.addresses.iter().find(|(n, _)| *n == "imap").unwrap().1;
    let smtp = mail.addresses.iter().find(|(n, _)| *n == "smtp").unwrap().1;
    let xoauth2 = |token: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(format!("user={USER}\x01auth=Bearer {token}\x01\x01"))
    };
    let imap_login = |token: String| async move {
        let out = exchange(
            imap,
            &[
                format!("a1 AUTHENTICATE XOAUTH2 {}", xoauth2(&token)),
                String::new(),
            ],
            1,
        )
        .await;
        out[1].starts_with("a1 OK")
    };
    let smtp_login = |token: String| async move {
        let out = exchange(
            smtp,
            &[
                "EHLO client".into(),
                format!("AUTH XOAUTH2 {}", xoauth2(&token)),
                String::new(),
                "QUIT".into(),
            ],
            usize::MAX,
        )
        .await;
        out.iter().any(|l| l.starts_with("235 "))
    };
    let for_imap = user_token_for(&s, "mail", &[imap_id]);
    let for_smtp = user_token_for(&s, "mail", &[smtp_id]);
    let for_both = user_token_for(&s, "mail", &[imap_id, smtp_id]);
    let for_dav = user_token_for(&s, "mail", &[dav_id]);
    let unbound = user_token(&s, "mail");
    assert!(imap_login(for_imap.clone()).await);
    assert!(!smtp_login(for_imap).await);
    assert!(smtp_login(for_smtp.clone()).await);
    assert!(!imap_login(for_smtp).await);
    assert!(imap_login(for_both.clone()).await);
    assert!(smtp_login(for_both).await);
    assert!(!imap_login(for_dav.clone()).await);
    assert!(!smtp_login(for_dav).await);
    assert!(!imap_login(unbound.clone()).await);
    assert!(!smtp_login(unbound).await);
    mail.shutdown().await;
}
