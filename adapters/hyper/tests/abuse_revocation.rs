//! Issue 15, abuse resistance: revocation reaches every token (HTTP introspection, the validation
//! the mail listeners make, and an IMAP login), a token issued just after a revocation is not born
//! dead, and neither `/revoke` nor `/introspect` tells a client whether another client's token is
//! alive. Attackers connect from 127.0.0.2, users from 127.0.0.1.

mod common;

use base64::Engine as _;
use common::*;
use oauth_server::admin;
use oauth_server::admin::cli::{ClientCommand, DataArgs, UserCommand};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

fn data() -> DataArgs {
    DataArgs {
        data: None,
        config: None,
        postgres: None,
        postgres_ca_file: None,
    }
}

/// alice's (access, refresh) tokens for the public client.
async fn user_tokens(s: &TestServer) -> (String, String) {
    let j = s.user_token_response("st").await;
    (
        j["access_token"].as_str().unwrap().to_owned(),
        j["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn service_token(s: &TestServer) -> String {
    let r = s
        .token(
            &[("grant_type", "client_credentials")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// The check every mail listener makes for a SASL bearer token.
fn sasl_accepts(s: &TestServer, token: &str) -> bool {
    let app = s.running.app();
    app.engine
        .validate_access_token(token, oauth_server::clock::now(), &*app.store)
        .is_ok()
}

#[track_caller]
fn assert_dead(introspected: &serde_json::Value, sasl: bool) {
    assert_eq!(introspected, &serde_json::json!({"active": false}));
    assert!(!sasl, "the mail listeners must refuse it too");
}

/// One IMAP `AUTHENTICATE XOAUTH2` exchange: true when the server answered OK.
async fn imap_login(addr: std::net::SocketAddr, user: &str, token: &str) -> bool {
    let xoauth2 = base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
    let stream = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    w.write_all(format!("a1 AUTHENTICATE XOAUTH2 {xoauth2}\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap() == 0 {
            return false;
        }
        if line.starts_with("+ ") {
            // The failure challenge: answer it with an empty line to get the final NO.
            w.write_all(b"\r\n").await.unwrap();
            continue;
        }
        if line.starts_with("a1 ") {
            return line.starts_with("a1 OK");
        }
    }
}

#[tokio::test]
async fn client_del_refuses_the_clients_tokens_everywhere_at_once() {
    let s = TestServer::start().await;
    let mail = oauth_server::mail::start(s.running.app().clone(), Some("127.0.0.1:0"), None)
        .await
        .unwrap();
    let imap = mail.addresses.iter().find(|(n, _)| *n == "imap").unwrap().1;
    let token = service_token(&s).await;
    let (user_access, _) = user_tokens(&s).await;
    assert_eq!(s.introspect_json(&token).await["active"], true);
    assert!(sasl_accepts(&s, &token));
    assert_eq!(s.introspect_json(&user_access).await["active"], true);
    assert!(imap_login(imap, USER, &user_access).await);

    // The administrator's command, on the running server's store, in the same second: the
    // client_credentials client, then the mail app the user signed in with.
    let app = s.running.app();
    for id in [&s.service_id, &s.public_id] {
        let mut out = Vec::new();
        admin::client(
            &ClientCommand::Del {
                id: id.clone(),
                data: data(),
            },
            &*app.store,
            &app.engine,
            &mut out,
        )
        .await
        .unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("revoked its tokens"));
    }
    assert_dead(&s.introspect_json(&token).await, sasl_accepts(&s, &token));
    assert_dead(
        &s.introspect_json(&user_access).await,
        sasl_accepts(&s, &user_access),
    );
    assert!(!imap_login(imap, USER, &user_access).await);
    mail.shutdown().await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn user_passwd_and_user_del_refuse_the_users_tokens() {
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    let (access, refresh) = user_tokens(&s).await;
    assert_eq!(s.introspect_json(&access).await["active"], true);
    assert!(sasl_accepts(&s, &access));
    let mut out = Vec::new();
    admin::user(
        &UserCommand::Passwd {
            name: USER.to_owned(),
            password_stdin: true,
            data: data(),
        },
        &*app.store,
        &app.engine,
        &mut &b"a brand new long password\n"[..],
        &mut out,
    )
    .await
    .unwrap();
    assert_dead(&s.introspect_json(&access).await, sasl_accepts(&s, &access));
    assert_eq!(s.introspect_json(&refresh).await["active"], false);
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
    assert_eq!(r.json()["error"], "invalid_grant");

    // Signed in again with the new password... then deleted.
    let s2 = TestServer::start().await;
    let app2 = s2.running.app().clone();
    let (access, _) = user_tokens(&s2).await;
    assert!(sasl_accepts(&s2, &access));
    admin::user(
        &UserCommand::Del {
            name: USER.to_owned(),
            data: data(),
        },
        &*app2.store,
        &app2.engine,
        &mut &b""[..],
        &mut out,
    )
    .await
    .unwrap();
    assert_dead(
        &s2.introspect_json(&access).await,
        sasl_accepts(&s2, &access),
    );
    s.running.shutdown().await;
    s2.running.shutdown().await;
}

#[tokio::test]
async fn a_token_issued_right_after_a_revocation_is_alive() {
    // Revoke a client_credentials token and get a new one at once (in the same second, mostly):
    // the new one works, the old one does not. Then the same for a user's access token and a
    // refresh. Repeated, so that many rounds fall within one second.
    let s = TestServer::start().await;
    let (mut user_access, mut refresh) = user_tokens(&s).await;
    let service_auth = basic_header(&s.service_id, &s.service_secret);
    let mut machine = service_token(&s).await;
    for _ in 0..5 {
        let body = serde_urlencoded::to_string([("token", &machine)]).unwrap();
        let r = s
            .send(
                "POST",
                "/revoke",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &service_auth),
                ],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200);
        let fresh = service_token(&s).await;
        assert_eq!(s.introspect_json(&fresh).await["active"], true, "born dead");
        assert!(sasl_accepts(&s, &fresh));
        assert_dead(
            &s.introspect_json(&machine).await,
            sasl_accepts(&s, &machine),
        );
        machine = fresh;

        let body = serde_urlencoded::to_string([
            ("token", user_access.as_str()),
            ("client_id", &s.public_id),
        ])
        .unwrap();
        let r = s
            .send(
                "POST",
                "/revoke",
                &[("content-type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200);
        let t = s
            .token(
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &s.public_id),
                ],
                None,
            )
            .await;
        assert_eq!(t.status, 200, "{}", t.body);
        let fresh = t.json()["access_token"].as_str().unwrap().to_owned();
        refresh = t.json()["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(s.introspect_json(&fresh).await["active"], true, "born dead");
        assert!(sasl_accepts(&s, &fresh));
        assert_dead(
            &s.introspect_json(&user_access).await,
            sasl_accepts(&s, &user_access),
        );
        user_access = fresh;
    }
    s.running.shutdown().await;
}

/// A form POST from `from`, read to the end: (status, body).
async fn post_from(
    from: &str,
    s: &TestServer,
    path: &str,
    auth: &str,
    body: &str,
) -> (u16, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(s.running.local_addr()).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn revoke_and_introspect_do_not_tell_another_client_whether_a_token_is_alive() {
    let s = TestServer::start().await;
    // The victim's tokens: one live, one revoked.
    let (live, live_refresh) = user_tokens(&s).await;
    let (dead, dead_refresh) = user_tokens(&s).await;
    let body = serde_urlencoded::to_string([
        ("token", dead_refresh.as_str()),
        ("client_id", &s.public_id),
    ])
    .unwrap();
    let r = s
        .send(
            "POST",
            "/revoke",
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200);
    // The attacker: an ordinary confidential client (the service), from another address.
    let attacker = basic_header(&s.service_id, &s.service_secret);
    let mut answers = Vec::new();
    for token in [&live, &live_refresh, &dead, &dead_refresh, &"x".repeat(40)] {
        let form = format!("token={token}");
        let revoke = post_from("127.0.0.2", &s, "/revoke", &attacker, &form).await;
        let introspect = post_from("127.0.0.2", &s, "/introspect", &attacker, &form).await;
        answers.push((revoke, introspect));
    }
    for a in &answers {
        assert_eq!(a, &answers[4], "every foreign token gets the same answers");
    }
    assert_eq!(answers[4].0 .0, 200);
    assert_eq!(answers[4].1, (200, r#"{"active":false}"#.to_owned()));
    // And the live token was left alone.
    assert_eq!(s.introspect_json(&live).await["active"], true);
    assert!(sasl_accepts(&s, &live));
    s.running.shutdown().await;
}
