//! Debian's Dovecot 2.3, configured from `docs/deployment.md`, validates our tokens through the
//! userinfo endpoint with its defaults (`introspection_mode = auth`, `username_attribute = email`).
//!
//! The test starts Dovecot as a child process (`dovecot -F -c`) with its own configuration, base
//! directory and loopback port, no system service; the passdb part of the configuration is the
//! guide's snippet, read from the guide, with only the issuer URL and the file path replaced. It
//! then logs in over IMAP with `XOAUTH2` and `OAUTHBEARER` (a raw socket client, SASL-IR) using
//! tokens from the in-process server: a user's mail token succeeds; revoked, expired, another
//! user's, calendar and `client_credentials` tokens are refused. Without Dovecot (or without root,
//! which Dovecot's privilege separation needs here) the test says so and passes, and fails under
//! `CI=true` (`.ci/run` installs `dovecot-imapd`).

mod common;
mod deploy;

use std::time::Duration;

use common::*;
use deploy::{
    dovecot_logs, free_port, installed, is_root, now, sasl_response, start_dovecot_imap,
    user_token, wait_for_port, Running, TempDir,
};
use oauth_proto::access_token::{self, AccessClaims};
use oauth_proto::store::NothingRevoked;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::users;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const EMAIL: &str = "alice@example.com";

/// A running Dovecot; stopped (SIGTERM to its master, which stops its children) when dropped.
struct Dovecot {
    // Declared first, dropped first: Dovecot stops before its directory goes.
    _running: Running,
    dir: TempDir,
    port: u16,
}

impl Dovecot {
    fn start(userinfo: &str) -> Dovecot {
        let dir = TempDir::new("dovecot");
        let port = free_port();
        let dovecot = Dovecot {
            _running: start_dovecot_imap(&dir, userinfo, port, ""),
            dir,
            port,
        };
        wait_for_port(port, "Dovecot", || dovecot.logs());
        dovecot
    }

    fn logs(&self) -> String {
        dovecot_logs(&self.dir)
    }

    /// One IMAP `AUTHENTICATE` with an initial response (SASL-IR), from the loopback address
    /// `source`; the tagged answer line. Each login comes from its own address: Dovecot delays
    /// an address's logins more after each failure (its auth penalty, up to 15 s).
    async fn login(&self, source: u8, mechanism: &str, user: &str, token: &str) -> String {
        let ir = sasl_response(mechanism, user, token, self.port);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
            .unwrap();
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
            .unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        let mut next_line = async |line: &mut String| {
            line.clear();
            tokio::time::timeout(Duration::from_secs(30), reader.read_line(line))
                .await
                .expect("Dovecot answers within 30 s")
                .unwrap()
        };
        next_line(&mut line).await;
        assert!(line.starts_with("* OK"), "greeting: {line}");
        writer
            .write_all(format!("a1 AUTHENTICATE {mechanism} {ir}\r\n").as_bytes())
            .await
            .unwrap();
        loop {
            let n = next_line(&mut line).await;
            assert!(n > 0, "Dovecot closed the connection: {}", self.logs());
            if line.starts_with('+') {
                // An error challenge (RFC 7628 §3.2.2): the client ends the exchange with an
                // empty response, and the server answers NO.
                writer.write_all(b"\r\n").await.unwrap();
            } else if line.starts_with("a1 ") {
                return line.trim_end().to_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dovecot_logs_in_with_our_tokens_through_userinfo_with_its_defaults() {
    if !installed("dovecot", "--version") {
        return missing_component("Dovecot (Debian's dovecot-imapd)");
    }
    if !is_root() {
        return missing_component("root, which the Dovecot test runs Dovecot as");
    }
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    users::set_email(&*app.store, USER, Some(EMAIL))
        .await
        .unwrap();
    let mail_client = clients::add(
        &*app.store,
        &app.engine,
        &NewClient {
            name: "Mail client".to_owned(),
            redirect_uris: vec![REDIRECT.to_owned()],
            public: true,
            scope: Some(format!("mail email calendar {}", oauth_proto::scope::MAIL)),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
    .client_id;

    let mail = user_token(&s, &mail_client, "mail email").await;
    let urn_mail = user_token(
        &s,
        &mail_client,
        &format!("{} email", oauth_proto::scope::MAIL),
    )
    .await;
    let revoked = user_token(&s, &mail_client, "mail email").await;
    let calendar = user_token(&s, &mail_client, "calendar email").await;
    let calendar_only = user_token(&s, &mail_client, "calendar").await;
    let r = s
        .token(
            &[("grant_type", "client_credentials"), ("scope", "mail")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let service = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = s
        .post_form(
            "/revoke",
            None,
            &[("token", &revoked), ("client_id", &mail_client)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Signed with the server's own key, for alice's real grant, but past its expiry.
    let expired = {
        let keys = app.engine.keys();
        let c = access_token::validate(&keys, &mail, now(), &NothingRevoked).unwrap();
        access_token::issue(
            &keys,
            &AccessClaims {
                issued_at: now() - 3600,
                expires_at: now() - 60,
                ..c
            },
        )
        .unwrap()
    };

    let dovecot = Dovecot::start(&format!("{}/userinfo", s.base));
    let mut source = 10;
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        for (what, user, token) in [
            ("a user's mail token", EMAIL, &mail),
            ("a user's token with the URN mail scope", EMAIL, &urn_mail),
        ] {
            source += 1;
            let answer = dovecot.login(source, mechanism, user, token).await;
            assert!(
                answer.starts_with("a1 OK"),
                "{mechanism}, {what}: {answer}\n{}",
                dovecot.logs()
            );
        }
        for (what, user, token) in [
            ("a revoked token", EMAIL, &revoked),
            ("an expired token", EMAIL, &expired),
            ("another user's token", "bob@example.com", &mail),
            ("a calendar token", EMAIL, &calendar),
            ("a calendar-only token", EMAIL, &calendar_only),
            ("a client_credentials token", EMAIL, &service),
            (
                "a client_credentials token as its client",
                &s.service_id,
                &service,
            ),
        ] {
            source += 1;
            let answer = dovecot.login(source, mechanism, user, token).await;
            assert!(
                answer.starts_with("a1 NO"),
                "{mechanism}, {what}: {answer}\n{}",
                dovecot.logs()
            );
        }
    }
}
