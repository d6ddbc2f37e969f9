//! Slow clients and shutdown, over raw TCP so the test controls every byte.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_all(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mut settings = test_settings();
    settings.header_read_timeout_secs = 1;
    let s = TestServer::start_with(settings, REDIRECT).await;
    let mut stream = TcpStream::connect(s.running.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let answer = read_all(&mut stream, Duration::from_secs(10)).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "closed by the header timeout"
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let mut settings = test_settings();
    settings.request_timeout_secs = 1;
    let s = TestServer::start_with(settings, REDIRECT).await;
    let mut stream = TcpStream::connect(s.running.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=")
        .await
        .unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""));
    s.running.shutdown().await;
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_refuses_new_ones() {
    let s = TestServer::start().await;
    let addr = s.running.local_addr();
    let body = b"grant_type=client_credentials";
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let shutdown = tokio::spawn(s.running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shutdown.is_finished(), "waits for the request in flight");
    stream.write_all(&body[5..]).await.unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "the request was answered: {answer}"
    );
    assert!(answer.contains("\"error\":"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
