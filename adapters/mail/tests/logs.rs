//! The listeners' logs, captured at TRACE level: they say who authenticated and why an attempt
//! failed, and never carry a token or a raw SASL payload.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{oauthbearer, tokens, xoauth2, Servers, USER};
use oauth_mail_listeners::Limits;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends each line and reads one reply line per line sent.
async fn converse(addr: std::net::SocketAddr, lines: &[String]) -> Vec<String> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut replies = Vec::new();
    let mut greeting = String::new();
    stream.read_line(&mut greeting).await.unwrap();
    for line in lines {
        let mut bytes = line.clone().into_bytes();
        bytes.extend_from_slice(b"\r\n");
        stream.get_mut().write_all(&bytes).await.unwrap();
        loop {
            let mut reply = String::new();
            stream.read_line(&mut reply).await.unwrap();
            // Skip the extra lines of multi-line SMTP replies.
            if !reply.starts_with("250-") {
                replies.push(reply.trim_end().to_owned());
                break;
            }
        }
    }
    replies
}

#[tokio::test]
async fn logs_name_the_outcome_but_never_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: every listener task runs on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let servers = Servers::start(Limits::default()).await;
    let t = tokens();
    let imap = converse(
        servers.imap,
        &[
            format!(
                "a1 AUTHENTICATE OAUTHBEARER {}",
                oauthbearer(USER, &t.expired)
            ),
            "AQ==".to_owned(),
            format!("a2 AUTHENTICATE XOAUTH2 {}", xoauth2(USER, &t.valid)),
            "a3 LOGOUT".to_owned(),
        ],
    )
    .await;
    assert!(imap[2].starts_with("a2 OK "), "{imap:?}");
    let smtp = converse(
        servers.smtp,
        &[
            "EHLO client.test".to_owned(),
            "AUTH XOAUTH2".to_owned(),
            xoauth2(USER, &t.revoked),
            String::new(),
            "QUIT".to_owned(),
        ],
    )
    .await;
    assert!(smtp[3].starts_with("535 "), "{smtp:?}");
    servers.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("authenticated"), "{logs}");
    assert!(logs.contains("authentication failed"), "{logs}");
    assert!(logs.contains("Expired"), "the reason is logged: {logs}");
    assert!(logs.contains("Revoked"), "the reason is logged: {logs}");
    for secret in [
        &t.valid,
        &t.expired,
        &t.revoked,
        &oauthbearer(USER, &t.expired),
        &xoauth2(USER, &t.valid),
        &xoauth2(USER, &t.revoked),
    ] {
        // Any 16-character piece of a token or payload would be a leak.
        assert!(!logs.contains(&secret[..16]), "leaked {secret}: {logs}");
        assert!(
            !logs.contains(&secret[secret.len() - 16..]),
            "leaked: {logs}"
        );
    }
}
