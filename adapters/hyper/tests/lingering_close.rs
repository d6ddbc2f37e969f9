//! Issue 15, lingering close: a client that writes its whole (too large) body before reading, as
//! Python's `urllib` does, reads the server's 413 instead of a reset connection.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// Sends a request with a body of `len` bytes, all of it, and only then reads the answer.
async fn write_all_then_read(s: &TestServer, len: usize) -> std::io::Result<String> {
    let socket = TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse().unwrap())?;
    let mut stream = socket.connect(s.running.local_addr()).await?;
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        stream.write_all(&chunk[..n]).await?;
        sent += n;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_sends_5_mb_before_reading_gets_the_413() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        let answer = write_all_then_read(&s, 5_000_000)
            .await
            .expect("the connection is closed cleanly, not reset");
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(answer.contains("invalid_request"), "{answer}");
    }
    s.running.shutdown().await;
}

#[tokio::test]
async fn python_urllib_reads_the_413() {
    let probe = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        missing_component("python3");
        return;
    }
    let s = TestServer::start().await;
    let script = format!(
        r#"
import urllib.request, urllib.error
req = urllib.request.Request("{}/token", data=b"a" * 5_000_000,
    headers={{"Content-Type": "application/x-www-form-urlencoded"}})
try:
    urllib.request.urlopen(req, timeout=20)
    print("no error")
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#,
        s.base
    );
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("413 ") && stdout.contains("invalid_request"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.running.shutdown().await;
}
