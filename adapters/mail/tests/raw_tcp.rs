//! The exact bytes of IMAP and SMTP exchanges over raw TCP: with and without an initial response,
//! the error challenge and its acknowledgement, cancel, an over-long line, garbage, the throttle
//! (failures counted against the source address), the limits, shutdown, and the refusal to start
//! without plaintext-on-loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    b64, counting_throttle, oauthbearer, policy, tokens, unb64, xoauth2, Servers, LOCALHOST, NOW,
    OIDC, OTHER, USER,
};
use oauth_mail_listeners::{serve_imap, serve_smtp, Limits, MailContext, ServeError};
use oauth_proto::sasl::SaslPolicy;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A line-level test client with a timeout on every read.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream: BufReader::new(stream),
        }
    }

    /// Connects from `source` (any 127.x.y.z works on Linux without setup).
    async fn connect_from(source: &str, addr: std::net::SocketAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream: BufReader::new(stream),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// The next line, with its CRLF (which every reply must have) checked and removed.
    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let read = self.stream.read_until(b'\n', &mut buf);
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("a reply within 5 s")
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        text.strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("reply not ending in CRLF: {text:?}"))
            .to_owned()
    }

    async fn expect(&mut self, line: &str) {
        assert_eq!(self.line().await, line);
    }

    /// The server closed the connection (cleanly: EOF, not a reset).
    async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let read = self.stream.read_to_end(&mut rest);
        let n = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("closed within 5 s")
            .expect("a clean close, not a reset");
        assert_eq!(
            n,
            0,
            "unexpected data: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

const IMAP_GREETING: &str =
    "* OK [CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER AUTH=XOAUTH2 SASL-IR LOGINDISABLED] mail.test ready";
const IMAP_OK: &str =
    "OK [CAPABILITY IMAP4rev1] SASL authentication succeeded, authenticated as user@example.com";
const IMAP_NO: &str = "NO [AUTHENTICATIONFAILED] SASL authentication failed";
const SMTP_GREETING: &str = "220 mail.test ESMTP OAuth check only, no mail accepted";

fn oauthbearer_challenge() -> String {
    let json = format!(r#"{{"status":"invalid_token","openid-configuration":"{OIDC}"}}"#);
    b64(json.as_bytes())
}

fn xoauth2_challenge() -> String {
    b64(br#"{"status":"401","schemes":"bearer"}"#)
}

async fn imap_client(servers: &Servers) -> Client {
    let mut c = Client::connect(servers.imap).await;
    c.expect(IMAP_GREETING).await;
    c
}

async fn smtp_client(servers: &Servers) -> Client {
    let mut c = Client::connect(servers.smtp).await;
    c.expect(SMTP_GREETING).await;
    c.send("EHLO client.test").await;
    c.expect("250-mail.test Hello client.test").await;
    c.expect("250-ENHANCEDSTATUSCODES").await;
    c.expect("250 AUTH OAUTHBEARER XOAUTH2").await;
    c
}

#[tokio::test]
async fn imap_exchanges_byte_for_byte() {
    // Expired, foreign, wrong user, revoked (counted at the challenge, before the cancel), bad
    // base64: five failures count; the cancels do not.
    let servers = Servers::start_with(Limits::default(), counting_throttle(5)).await;
    let t = tokens();

    // SASL-IR success, then the session's other commands.
    let mut c = imap_client(&servers).await;
    c.send("a1 CAPABILITY").await;
    c.expect("* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER AUTH=XOAUTH2 SASL-IR LOGINDISABLED")
        .await;
    c.expect("a1 OK CAPABILITY completed").await;
    c.send("a2 LOGIN user pass").await;
    c.expect("a2 NO [PRIVACYREQUIRED] LOGIN is disabled; use AUTHENTICATE OAUTHBEARER or XOAUTH2")
        .await;
    c.send(&format!(
        "a3 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(USER, &t.valid)
    ))
    .await;
    c.expect(&format!("a3 {IMAP_OK}")).await;
    c.send("a4 CAPABILITY").await;
    c.expect("* CAPABILITY IMAP4rev1").await;
    c.expect("a4 OK CAPABILITY completed").await;
    c.send("a5 authenticate xoauth2").await;
    c.expect("a5 BAD Already authenticated").await;
    c.send("a6 SELECT INBOX").await;
    c.expect("a6 NO [CANNOT] This server only checks authentication; it has no mailboxes")
        .await;
    c.send("a7 NOOP").await;
    c.expect("a7 OK NOOP completed").await;
    c.send("a8 LOGOUT").await;
    c.expect("* BYE mail.test logging out").await;
    c.expect("a8 OK LOGOUT completed").await;
    c.expect_closed().await;

    // Without SASL-IR: empty continuation, response, success.
    let mut c = imap_client(&servers).await;
    c.send("b1 AUTHENTICATE XOAUTH2").await;
    c.expect("+ ").await;
    c.send(&xoauth2(USER, &t.valid)).await;
    c.expect(&format!("b1 {IMAP_OK}")).await;

    // A bad token: the error challenge, the dummy reply, then NO.
    let mut c = imap_client(&servers).await;
    c.send("c1 AUTHENTICATE OAUTHBEARER").await;
    c.expect("+ ").await;
    c.send(&oauthbearer(USER, &t.expired)).await;
    c.expect(&format!("+ {}", oauthbearer_challenge())).await;
    c.send("AQ==").await;
    c.expect(&format!("c1 {IMAP_NO}")).await;
    // XOAUTH2 with SASL-IR: its dummy reply is an empty line.
    c.send(&format!(
        "c2 AUTHENTICATE XOAUTH2 {}",
        xoauth2(USER, &t.foreign)
    ))
    .await;
    c.expect(&format!("+ {}", xoauth2_challenge())).await;
    c.send("").await;
    c.expect(&format!("c2 {IMAP_NO}")).await;
    // The wrong user: authorization, not authentication, failed.
    c.send(&format!(
        "c3 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(OTHER, &t.valid)
    ))
    .await;
    c.expect(&format!("+ {}", oauthbearer_challenge())).await;
    c.send("AQ==").await;
    c.expect("c3 NO [AUTHORIZATIONFAILED] The token does not grant access to this account")
        .await;
    // Three failures on this connection: the next attempt closes it.
    c.send("c4 AUTHENTICATE OAUTHBEARER").await;
    c.expect("* BYE Too many failed authentications").await;
    c.expect_closed().await;

    // Cancel, before and after a challenge; bad base64; unknown mechanism; syntax.
    let mut c = imap_client(&servers).await;
    c.send("d1 AUTHENTICATE OAUTHBEARER").await;
    c.expect("+ ").await;
    c.send("*").await;
    c.expect("d1 BAD Authentication cancelled").await;
    c.send(&format!(
        "d2 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(USER, &t.revoked)
    ))
    .await;
    c.expect(&format!("+ {}", oauthbearer_challenge())).await;
    c.send("*").await;
    c.expect("d2 BAD Authentication cancelled").await;
    c.send("d3 AUTHENTICATE OAUTHBEARER !!!notbase64").await;
    c.expect("d3 BAD Invalid base64 data").await;
    c.send("d4 AUTHENTICATE PLAIN").await;
    c.expect("d4 NO [CANNOT] Unsupported authentication mechanism")
        .await;
    c.send("d5 AUTHENTICATE").await;
    c.expect("d5 BAD Syntax error in arguments").await;
    c.send("d6 LOGOUT").await;
    c.expect("* BYE mail.test logging out").await;
    c.expect("d6 OK LOGOUT completed").await;
    c.expect_closed().await;

    assert!(
        servers.counted_exactly(LOCALHOST),
        "expired, foreign, wrong user, revoked (counted at the challenge, before the cancel), bad \
         base64, all against the source address"
    );
    servers.stop().await;
}

#[tokio::test]
async fn smtp_exchanges_byte_for_byte() {
    let servers = Servers::start(Limits::default()).await;
    let t = tokens();

    // AUTH needs EHLO; initial-response success; no mail is accepted.
    let mut c = Client::connect(servers.smtp).await;
    c.expect(SMTP_GREETING).await;
    c.send(&format!("AUTH OAUTHBEARER {}", oauthbearer(USER, &t.valid)))
        .await;
    c.expect("503 5.5.1 Send EHLO first").await;
    c.send("HELO client.test").await;
    c.expect("250 mail.test").await;
    c.send("EHLO client.test").await;
    c.expect("250-mail.test Hello client.test").await;
    c.expect("250-ENHANCEDSTATUSCODES").await;
    c.expect("250 AUTH OAUTHBEARER XOAUTH2").await;
    c.send(&format!("AUTH OAUTHBEARER {}", oauthbearer(USER, &t.valid)))
        .await;
    c.expect("235 2.7.0 Authentication successful").await;
    c.send("AUTH XOAUTH2").await;
    c.expect("503 5.5.1 Already authenticated").await;
    for cmd in [
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
    ] {
        c.send(cmd).await;
        c.expect("502 5.5.1 This server only checks authentication; it accepts no mail")
            .await;
    }
    c.send("NOOP").await;
    c.expect("250 2.0.0 OK").await;
    c.send("RSET").await;
    c.expect("250 2.0.0 OK").await;
    c.send("WHAT").await;
    c.expect("500 5.5.2 Command unrecognized").await;
    c.send("QUIT").await;
    c.expect("221 2.0.0 mail.test closing connection").await;
    c.expect_closed().await;

    // Without an initial response: `334 `, then the response.
    let mut c = smtp_client(&servers).await;
    c.send("AUTH xoauth2").await;
    c.expect("334 ").await;
    c.send(&xoauth2(USER, &t.valid)).await;
    c.expect("235 2.7.0 Authentication successful").await;

    // Bad tokens: 334 challenge, the dummy reply, 535 5.7.8.
    let mut c = smtp_client(&servers).await;
    c.send("AUTH XOAUTH2").await;
    c.expect("334 ").await;
    c.send(&xoauth2(USER, &t.revoked)).await;
    c.expect(&format!("334 {}", xoauth2_challenge())).await;
    c.send("").await;
    c.expect("535 5.7.8 Authentication credentials invalid")
        .await;
    c.send(&format!(
        "AUTH OAUTHBEARER {}",
        oauthbearer(USER, &t.expired)
    ))
    .await;
    let challenge = c.line().await;
    let json = unb64(challenge.strip_prefix("334 ").unwrap());
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["status"], "invalid_token");
    c.send("AQ==").await;
    c.expect("535 5.7.8 Authentication credentials invalid")
        .await;
    // An unknown mechanism is not a failed attempt; a cancel is the third failure here.
    c.send("AUTH CRAM-MD5").await;
    c.expect("504 5.5.4 Unrecognized authentication type").await;
    c.send("AUTH OAUTHBEARER").await;
    c.expect("334 ").await;
    c.send("*").await;
    c.expect("501 5.7.0 Authentication cancelled").await;
    c.send("AUTH XOAUTH2").await;
    c.expect("421 4.7.0 mail.test Too many failed authentications, closing connection")
        .await;
    c.expect_closed().await;

    // Bad base64, as the initial response and as a continuation.
    let mut c = smtp_client(&servers).await;
    c.send("AUTH OAUTHBEARER ###").await;
    c.expect("501 5.5.2 Cannot decode response").await;
    c.send("AUTH OAUTHBEARER").await;
    c.expect("334 ").await;
    c.send("not base64!").await;
    c.expect("501 5.5.2 Cannot decode response").await;
    c.send("QUIT").await;
    c.expect("221 2.0.0 mail.test closing connection").await;
    c.expect_closed().await;
    servers.stop().await;
}

#[tokio::test]
async fn overlong_lines_are_refused_and_the_connection_closed() {
    let limits = Limits {
        max_line: 1024,
        ..Limits::default()
    };
    let servers = Servers::start(limits).await;
    let long = vec![b'A'; 200_000];

    let mut c = imap_client(&servers).await;
    c.send("a1 NOOP").await;
    c.expect("a1 OK NOOP completed").await;
    c.send_raw(b"a2 AUTHENTICATE OAUTHBEARER ").await;
    c.send_raw(&long).await;
    c.send_raw(b"\r\n").await;
    c.expect("* BAD Line too long").await;
    c.expect("* BYE Closing connection").await;
    c.expect_closed().await;

    let mut c = smtp_client(&servers).await;
    c.send_raw(b"AUTH XOAUTH2 ").await;
    c.send_raw(&long).await;
    c.expect("500 5.5.6 Line too long, closing connection")
        .await;
    c.expect_closed().await;

    // A continuation line is bounded too.
    let mut c = imap_client(&servers).await;
    c.send("a1 AUTHENTICATE XOAUTH2").await;
    c.expect("+ ").await;
    c.send_raw(&long).await;
    c.expect("* BAD Line too long").await;
    c.expect("* BYE Closing connection").await;
    c.expect_closed().await;
    servers.stop().await;
}

/// Deterministic pseudo-random bytes (no dependency needed).
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_never_breaks_a_session() {
    let servers = Servers::start(Limits::default()).await;
    let mut inputs: Vec<Vec<u8>> = [
        &b""[..],
        b"\0\0\0",
        b"\xff\xfe AUTHENTICATE OAUTHBEARER",
        b"a1",
        b"a1 ",
        b" NOOP",
        b"+ NOOP",
        b"a* NOOP",
        b"a1 AUTHENTICATE OAUTHBEARER =",
        b"a1 AUTHENTICATE OAUTHBEARER  x",
        b"a1 AUTHENTICATE XOAUTH2 AQ==",
        b"a1 AUTHENTICATE \xff\xff",
        b"a1 LOGIN {5}",
        b"AUTH OAUTHBEARER AQ==",
        b"AUTH",
        b"EHLO",
        b"\r\r\r",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    for seed in 1..60u64 {
        let mut line = garbage(seed, (seed as usize * 37) % 300);
        line.retain(|&b| b != b'\n');
        inputs.push(line);
    }
    // IMAP: every line gets an answer and the session survives to LOGOUT. Garbage that happens to
    // start an exchange would wait for a continuation; `*` ends it.
    let mut c = imap_client(&servers).await;
    for input in &inputs {
        c.send_raw(input).await;
        c.send_raw(b"\r\n").await;
        let mut reply = c.line().await;
        while reply.starts_with("+ ") || reply == "+" {
            c.send("*").await;
            reply = c.line().await;
        }
        assert!(
            reply.contains(" BAD ") || reply.contains(" NO ") || reply.contains(" OK "),
            "{reply}"
        );
    }
    c.send("z LOGOUT").await;
    c.expect("* BYE mail.test logging out").await;
    c.expect("z OK LOGOUT completed").await;
    c.expect_closed().await;

    // SMTP: likewise, up to QUIT.
    let mut c = smtp_client(&servers).await;
    for input in &inputs {
        c.send_raw(input).await;
        c.send_raw(b"\r\n").await;
        let mut reply = c.line().await;
        while reply.starts_with("334 ") {
            c.send("*").await;
            reply = c.line().await;
        }
        if reply.starts_with("421 ") {
            // Too many failed authentications on this connection: start another one.
            c.expect_closed().await;
            c = smtp_client(&servers).await;
            continue;
        }
        let code: u16 = reply[..3].parse().unwrap();
        assert!((500..600).contains(&code) || code == 250, "{reply}");
    }
    c.send("QUIT").await;
    c.expect("221 2.0.0 mail.test closing connection").await;
    c.expect_closed().await;
    servers.stop().await;
}

#[tokio::test]
async fn failures_count_against_the_address_and_a_refused_address_is_not_validated() {
    let servers = Servers::start_with(Limits::default(), counting_throttle(2)).await;
    let t = tokens();
    let mut c = imap_client(&servers).await;
    c.send(&format!(
        "a1 AUTHENTICATE XOAUTH2 {}",
        xoauth2(USER, &t.expired)
    ))
    .await;
    c.expect(&format!("+ {}", xoauth2_challenge())).await;
    c.send("").await;
    c.expect(&format!("a1 {IMAP_NO}")).await;
    // A failure with another claimed identity counts against the same address.
    c.send(&format!(
        "a2 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(OTHER, &t.valid)
    ))
    .await;
    c.expect(&format!("+ {}", oauthbearer_challenge())).await;
    // The attempt is counted when the challenge goes out, before the client answers it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(servers.counted_exactly(LOCALHOST));
    c.send("AQ==").await;
    c.expect("a2 NO [AUTHORIZATIONFAILED] The token does not grant access to this account")
        .await;

    // Once the address is refused, even a valid token is refused, permanently, on both
    // listeners, and never validated; the refusals are not counted again.
    let throttle = &servers.throttle;
    throttle.record_failure(LOCALHOST, None, NOW);
    let before = servers.validations();
    c.send(&format!(
        "a3 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(USER, &t.valid)
    ))
    .await;
    c.expect("a3 NO [AUTHENTICATIONFAILED] Too many failed attempts")
        .await;
    let mut s = smtp_client(&servers).await;
    s.send("AUTH XOAUTH2").await;
    s.expect("535 5.7.8 Authentication credentials invalid (too many failed attempts)")
        .await;
    assert_eq!(servers.validations(), before);
    let mut c = imap_client(&servers).await;
    c.send("b1 AUTHENTICATE OAUTHBEARER").await;
    c.expect("b1 NO [AUTHENTICATIONFAILED] Too many failed attempts")
        .await;
    assert!(matches!(
        throttle.check(LOCALHOST, None, NOW),
        oauth_proto::throttle::Verdict::Refuse { .. }
    ));
    servers.stop().await;
}

#[tokio::test]
async fn limits_timeouts_and_shutdown() {
    let limits = Limits {
        pre_auth_idle_timeout: Duration::from_millis(300),
        max_connections: 2,
        max_commands: 3,
        ..Limits::default()
    };
    let servers = Servers::start(limits).await;

    // Idle clients are logged out.
    let mut c = imap_client(&servers).await;
    c.expect("* BYE Autologout; idle for too long").await;
    c.expect_closed().await;
    drop(c);
    let mut c = Client::connect(servers.smtp).await;
    c.expect(SMTP_GREETING).await;
    c.expect("421 4.4.2 mail.test Timeout, closing connection")
        .await;
    c.expect_closed().await;

    // Commands per connection are capped.
    let mut c = imap_client(&servers).await;
    for tag in ["a1", "a2", "a3"] {
        c.send(&format!("{tag} NOOP")).await;
        c.expect(&format!("{tag} OK NOOP completed")).await;
    }
    c.expect("* BYE Too many commands on one connection").await;
    c.expect_closed().await;
    drop(c);
    // Let the closed sessions give their slots back.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Connections are capped: the third client is told so and closed.
    let mut first = imap_client(&servers).await;
    let _second = imap_client(&servers).await;
    let mut third = Client::connect(servers.imap).await;
    third
        .expect("* BYE Too many connections, try again later")
        .await;
    third.expect_closed().await;

    // Shutdown says goodbye to the clients still connected, and the listeners return Ok.
    first.send("a1 NOOP").await;
    first.expect("a1 OK NOOP completed").await;
    servers.stop().await;
    first.expect("* BYE Server shutting down").await;
    first.expect_closed().await;
}

#[tokio::test]
async fn idle_timeout_is_shorter_before_authentication() {
    let limits = Limits {
        pre_auth_idle_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let servers = Servers::start(limits).await;
    let t = tokens();
    let started = std::time::Instant::now();
    let mut stranger = imap_client(&servers).await;
    let mut user = imap_client(&servers).await;
    user.send(&format!(
        "a1 AUTHENTICATE OAUTHBEARER {}",
        oauthbearer(USER, &t.valid)
    ))
    .await;
    user.expect(&format!("a1 {IMAP_OK}")).await;
    stranger.expect("* BYE Autologout; idle for too long").await;
    stranger.expect_closed().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // The authenticated client, silent for longer than the pre-authentication timeout, stays.
    tokio::time::sleep(Duration::from_millis(500)).await;
    user.send("a2 NOOP").await;
    user.expect("a2 OK NOOP completed").await;

    // Likewise over SMTP.
    let mut stranger = smtp_client(&servers).await;
    stranger
        .expect("421 4.4.2 mail.test Timeout, closing connection")
        .await;
    stranger.expect_closed().await;
    let mut user = smtp_client(&servers).await;
    user.send(&format!("AUTH XOAUTH2 {}", xoauth2(USER, &t.valid)))
        .await;
    user.expect("235 2.7.0 Authentication successful").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    user.send("NOOP").await;
    user.expect("250 2.0.0 OK").await;
    servers.stop().await;
}

#[tokio::test]
async fn connections_are_capped_per_source_address() {
    let limits = Limits {
        max_connections_per_address: 2,
        ..Limits::default()
    };
    let servers = Servers::start(limits).await;
    let t = tokens();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect_from("127.0.0.2", servers.imap).await;
        c.expect(IMAP_GREETING).await;
        held.push(c);
    }
    let mut third = Client::connect_from("127.0.0.2", servers.imap).await;
    third
        .expect("* BYE Too many connections, try again later")
        .await;
    third.expect_closed().await;
    // The cap is per listener and per address: another address is served.
    let mut other = Client::connect_from("127.0.0.1", servers.imap).await;
    other.expect(IMAP_GREETING).await;
    other
        .send(&format!(
            "a1 AUTHENTICATE OAUTHBEARER {}",
            oauthbearer(USER, &t.valid)
        ))
        .await;
    other.expect(&format!("a1 {IMAP_OK}")).await;
    let mut smtp = Client::connect_from("127.0.0.2", servers.smtp).await;
    smtp.expect(SMTP_GREETING).await;
    // A closed connection gives its place back.
    let mut first = held.remove(0);
    first.send("z LOGOUT").await;
    first.expect("* BYE mail.test logging out").await;
    first.expect("z OK LOGOUT completed").await;
    first.expect_closed().await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = Client::connect_from("127.0.0.2", servers.imap).await;
    again.expect(IMAP_GREETING).await;
    servers.stop().await;
}

#[tokio::test]
async fn refuses_to_start_without_plaintext_on_loopback() {
    let validator: oauth_mail_listeners::Validator =
        Arc::new(|_: &str| Err(oauth_proto::access_token::TokenError::Malformed));
    let strict = Arc::new(MailContext::new(
        validator.clone(),
        SaslPolicy::default(),
        "mail.test",
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        serve_imap(listener, strict.clone(), std::future::pending::<()>()).await,
        Err(ServeError::PlaintextNotAllowed)
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        serve_smtp(listener, strict, std::future::pending::<()>()).await,
        Err(ServeError::PlaintextNotAllowed)
    );

    let ctx = Arc::new(MailContext::new(validator, policy(), "mail.test"));
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(
        serve_imap(listener, ctx.clone(), std::future::pending::<()>()).await,
        Err(ServeError::NotLoopback(addr))
    );
    assert!(ctx.check_listener(&"[::1]:143".parse().unwrap()).is_ok());
    assert!(ctx
        .check_listener(&"192.0.2.1:143".parse().unwrap())
        .is_err());
}
