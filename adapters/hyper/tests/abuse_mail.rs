//! Abuse of the auth-only IMAP and SMTP listeners of `serve` (issue 15), each finding as an attack
//! from 127.0.0.2 while the user connects from 127.0.0.1:
//! 1. a token without a mail scope, or with no user (`client_credentials`), logs in;
//! 2. idle connections from one address take every slot;
//! 3. failures claiming an identity are never counted against their address, and junk attempts
//!    claiming a user lock that user's valid token out.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use oauth_proto::access_token::{self, AccessClaims};
use oauth_proto::config::Config;
use oauth_proto::scope::Scope;
use oauth_proto::store::{GrantId, RevocationView};
use oauth_proto::throttle::ThrottleConfig;
use oauth_server::admin::{setup, users};
use oauth_server::app::App;
use oauth_server::clock;
use oauth_server::mail::MailListeners;
use oauth_server::store::AnyStore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: &str = "127.0.0.2";
const HOME: &str = "127.0.0.1";

/// A line client connected from `source`.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(source: &str, addr: SocketAddr) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream: BufReader::new(stream),
        }
    }

    async fn send(&mut self, line: &str) {
        let bytes = format!("{line}\r\n");
        self.stream
            .get_mut()
            .write_all(bytes.as_bytes())
            .await
            .unwrap();
    }

    /// The next line without its CRLF, or "" at the end of the stream.
    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.stream.read_line(&mut line);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a reply within 10 s")
            .unwrap();
        line.trim_end_matches("\r\n").to_owned()
    }
}

fn xoauth2(user: &str, token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// An access token for [`USER`] with `scope`, signed with the server's keys as the token endpoint
/// signs one after a code flow (a user's grant, not a client's own).
fn user_token(app: &App, client_id: &str, scope: &str) -> String {
    let now = clock::now();
    let claims = AccessClaims {
        grant_id: GrantId([42; 16]),
        subject: USER.to_owned(),
        client_id: client_id.to_owned(),
        scope: Scope::parse(scope).unwrap(),
        issued_at: now,
        expires_at: now + 3600,
        credential_version: RevocationView::credential_version(&*app.store, USER),
        audience: Default::default(),
    };
    access_token::issue(&app.engine.keys(), &claims).unwrap()
}

fn addresses(mail: &MailListeners) -> (SocketAddr, SocketAddr) {
    let find = |name| mail.addresses.iter().find(|(n, _)| *n == name).unwrap().1;
    (find("imap"), find("smtp"))
}

async fn start_mail(app: Arc<App>) -> MailListeners {
    oauth_server::mail::start(app, Some("127.0.0.1:0"), Some("127.0.0.1:0"))
        .await
        .unwrap()
}

/// One IMAP `AUTHENTICATE XOAUTH2` with an initial response on a new connection from `source`,
/// acknowledging an error challenge if one comes; the tagged reply.
async fn imap_login(source: &str, imap: SocketAddr, user: &str, token: &str) -> String {
    let mut c = Client::connect(source, imap).await;
    let greeting = c.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(&format!("a1 AUTHENTICATE XOAUTH2 {}", xoauth2(user, token)))
        .await;
    let mut reply = c.line().await;
    if reply.starts_with("+ ") {
        c.send("").await;
        reply = c.line().await;
    }
    reply
}

/// One SMTP `AUTH XOAUTH2` with an initial response on a new connection from `source`; the final
/// reply.
async fn smtp_login(source: &str, smtp: SocketAddr, user: &str, token: &str) -> String {
    let mut c = Client::connect(source, smtp).await;
    assert!(c.line().await.starts_with("220 "));
    c.send("EHLO client.test").await;
    while !c.line().await.starts_with("250 ") {}
    c.send(&format!("AUTH XOAUTH2 {}", xoauth2(user, token)))
        .await;
    let mut reply = c.line().await;
    if reply.starts_with("334 ") {
        c.send("").await;
        reply = c.line().await;
    }
    c.send("QUIT").await;
    reply
}

#[tokio::test]
async fn finding_1_only_users_mail_tokens_log_in() {
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    let mail = start_mail(app.clone()).await;
    let (imap, smtp) = addresses(&mail);

    // Tokens the server signed, granted only `profile` or only `calendar`: refused over both.
    for scope in ["profile", "calendar", "openid profile calendar contacts"] {
        let token = user_token(&app, &s.public_id, scope);
        let reply = imap_login(HOME, imap, USER, &token).await;
        assert_eq!(
            reply, "a1 NO [AUTHORIZATIONFAILED] The token does not grant access to this account",
            "{scope}"
        );
        let reply = smtp_login(HOME, smtp, USER, &token).await;
        assert_eq!(
            reply, "535 5.7.8 Authentication credentials invalid",
            "{scope}"
        );
    }

    // A client_credentials token from the token endpoint names no user: refused, whether it
    // claims the client id (as the old listener accepted) or the user.
    let r = s
        .token(
            &[("grant_type", "client_credentials"), ("scope", "mail")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let machine = r.json()["access_token"].as_str().unwrap().to_owned();
    for claimed in [s.service_id.as_str(), USER] {
        let reply = imap_login(HOME, imap, claimed, &machine).await;
        assert_eq!(
            reply, "a1 NO [AUTHORIZATIONFAILED] The token does not grant access to this account",
            "{claimed}"
        );
        let reply = smtp_login(HOME, smtp, claimed, &machine).await;
        assert_eq!(reply, "535 5.7.8 Authentication credentials invalid");
    }

    // The user's mail token logs in over both.
    let token = user_token(&app, &s.public_id, "mail offline_access");
    let reply = imap_login(HOME, imap, USER, &token).await;
    assert!(reply.starts_with("a1 OK "), "{reply}");
    assert!(
        reply.ends_with(&format!("authenticated as {USER}")),
        "{reply}"
    );
    let reply = smtp_login(HOME, smtp, USER, &token).await;
    assert_eq!(reply, "235 2.7.0 Authentication successful");
    mail.shutdown().await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn finding_2_one_address_cannot_take_every_slot() {
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    let mail = start_mail(app.clone()).await;
    let (imap, smtp) = addresses(&mail);

    // The attacker opens 65 idle connections: the first 10 are greeted, the rest refused.
    let mut idle = Vec::new();
    let mut greeted = 0;
    for _ in 0..65 {
        let mut c = Client::connect(ATTACKER, imap).await;
        let line = c.line().await;
        if line.starts_with("* OK") {
            greeted += 1;
            idle.push(c);
        } else {
            assert_eq!(line, "* BYE Too many connections, try again later");
        }
    }
    assert_eq!(greeted, 10, "at most 10 connections per address");
    let mut last = Client::connect(ATTACKER, imap).await;
    assert_eq!(
        last.line().await,
        "* BYE Too many connections, try again later",
        "the 66th is refused too"
    );

    // Meanwhile the user connects and authenticates over both listeners.
    let token = user_token(&app, &s.public_id, "mail");
    let reply = imap_login(HOME, imap, USER, &token).await;
    assert!(reply.starts_with("a1 OK "), "{reply}");
    let reply = smtp_login(HOME, smtp, USER, &token).await;
    assert_eq!(reply, "235 2.7.0 Authentication successful");
    drop(idle);
    mail.shutdown().await;
    s.running.shutdown().await;
}

/// The application with a throttle that acts after a few failures and waits milliseconds, not
/// seconds, so that the test runs fast.
async fn app_with_fast_throttle() -> Arc<App> {
    let config = Config {
        throttle: ThrottleConfig {
            address_free_failures: 3,
            address_max_failures: 10,
            base_delay_ms: 1,
            max_delay_ms: 20,
            ..ThrottleConfig::default()
        },
        ..Config::default()
    };
    let engine = setup::admin_engine(config).unwrap();
    let store = AnyStore::memory();
    users::add(&store, USER, PASSWORD, 1).await.unwrap();
    Arc::new(App::new(engine, Arc::new(store), test_settings()))
}

#[tokio::test]
async fn finding_3_failures_claiming_new_identities_count_against_the_address() {
    let app = app_with_fast_throttle().await;
    let mail = start_mail(app.clone()).await;
    let (imap, smtp) = addresses(&mail);

    // 60 junk attempts, each claiming a new identity: the address is refused long before the end.
    let mut refused_at = None;
    for i in 0..60 {
        let reply = imap_login(ATTACKER, imap, &format!("victim{i}"), &format!("junk{i}")).await;
        if reply == "a1 NO [AUTHENTICATIONFAILED] Too many failed attempts" {
            refused_at = Some(i);
            break;
        }
        assert_eq!(
            reply,
            "a1 NO [AUTHENTICATIONFAILED] SASL authentication failed"
        );
    }
    assert_eq!(refused_at, Some(10), "refused after address_max_failures");
    // Refused on the other listener too (one limiter), even with a valid token...
    let token = user_token(&app, "mail-client", "mail");
    let reply = smtp_login(ATTACKER, smtp, USER, &token).await;
    assert_eq!(
        reply,
        "535 5.7.8 Authentication credentials invalid (too many failed attempts)"
    );
    // ...while the user, from a clean address, logs in.
    let reply = imap_login(HOME, imap, USER, &token).await;
    assert!(reply.starts_with("a1 OK "), "{reply}");
    mail.shutdown().await;
}

#[tokio::test]
async fn finding_3_junk_claiming_a_user_never_locks_the_users_valid_token_out() {
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    let mail = start_mail(app.clone()).await;
    let (imap, smtp) = addresses(&mail);

    // Ten junk attempts claiming the user (the old per-identity lockout's limit), over both
    // listeners; the default throttle does not even slow the address yet.
    for i in 0..7 {
        let reply = imap_login(ATTACKER, imap, USER, &format!("junk{i}")).await;
        assert_eq!(
            reply,
            "a1 NO [AUTHENTICATIONFAILED] SASL authentication failed"
        );
    }
    for i in 0..3 {
        let reply = smtp_login(ATTACKER, smtp, USER, &format!("junk{i}")).await;
        assert_eq!(reply, "535 5.7.8 Authentication credentials invalid");
    }
    // The user's valid token still logs in, over both listeners.
    let token = user_token(&app, &s.public_id, "mail");
    let reply = imap_login(HOME, imap, USER, &token).await;
    assert!(reply.starts_with("a1 OK "), "{reply}");
    let reply = smtp_login(HOME, smtp, USER, &token).await;
    assert_eq!(reply, "235 2.7.0 Authentication successful");
    mail.shutdown().await;
    s.running.shutdown().await;
}
