//! An issuer with a path (`http://127.0.0.1/auth`): the server serves every endpoint under that
//! path, at exactly the URLs its metadata advertises, and the discovery URL a SASL error challenge
//! carries answers with the metadata document.

use std::sync::Arc;

use base64::Engine as _;
use oauth_proto::config::Config;
use oauth_proto::endpoints::Endpoints;
use oauth_server::admin::setup;
use oauth_server::app::App;
use oauth_server::http::server;
use oauth_server::settings::ServerSettings;
use oauth_server::store::AnyStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ISSUER: &str = "http://127.0.0.1/auth";

async fn start() -> server::Running {
    let config = Config {
        issuer: ISSUER.to_owned(),
        ..Config::default()
    };
    let engine = setup::admin_engine(config).unwrap();
    let settings = ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        ..ServerSettings::default()
    };
    server::start(App::new(engine, Arc::new(AnyStore::memory()), settings))
        .await
        .unwrap()
}

/// One HTTP/1.1 request on its own connection: status and body.
async fn send(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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
async fn every_advertised_url_is_served_under_the_issuer_path() {
    let running = start().await;
    let addr = running.local_addr();
    let (status, body) = send(addr, "GET", "/.well-known/oauth-authorization-server/auth").await;
    assert_eq!(status, 200, "{body}");
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["issuer"], ISSUER);
    // Each endpoint the metadata names answers at its path: a POST-only endpoint refuses GET with
    // 405 (so the route exists), a page answers GET.
    for (key, method, want) in [
        ("authorization_endpoint", "GET", 400),
        ("token_endpoint", "GET", 405),
        ("introspection_endpoint", "GET", 405),
        ("revocation_endpoint", "GET", 405),
        ("device_authorization_endpoint", "GET", 405),
    ] {
        let url = metadata[key].as_str().unwrap();
        let path = Endpoints::path_of(url);
        assert!(path.starts_with("/auth/"), "{key}: {url}");
        assert_eq!(send(addr, method, &path).await.0, want, "{key}: {path}");
    }
    let (status, page) = send(addr, "GET", "/auth/device").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"href="static/style.css""#), "{page}");
    assert_eq!(send(addr, "GET", "/auth/static/style.css").await.0, 200);
    // The root paths are not this issuer's.
    for path in [
        "/token",
        "/authorize",
        "/.well-known/oauth-authorization-server",
    ] {
        assert_eq!(send(addr, "GET", path).await.0, 404, "{path}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn the_discovery_url_of_a_sasl_challenge_is_served() {
    let running = start().await;
    let mail = oauth_server::mail::start(running.app().clone(), Some("127.0.0.1:0"), None)
        .await
        .unwrap();
    let imap = mail.addresses[0].1;
    let stream = TcpStream::connect(imap).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut greeting = String::new();
    r.read_line(&mut greeting).await.unwrap();
    // OAUTHBEARER's error challenge names the discovery URL (RFC 7628 §3.2.2).
    let bad = base64::engine::general_purpose::STANDARD
        .encode("n,a=alice,\x01auth=Bearer not-a-token\x01\x01");
    w.write_all(format!("a1 AUTHENTICATE OAUTHBEARER {bad}\r\n").as_bytes())
        .await
        .unwrap();
    let mut challenge = String::new();
    r.read_line(&mut challenge).await.unwrap();
    let encoded = challenge.trim_end().strip_prefix("+ ").expect(&challenge);
    let json: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let url = json["openid-configuration"].as_str().unwrap();
    assert_eq!(url, format!("{ISSUER}/.well-known/openid-configuration"));
    let (status, body) = send(running.local_addr(), "GET", &Endpoints::path_of(url)).await;
    assert_eq!(status, 200, "{url}: {body}");
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["issuer"], ISSUER);
    mail.shutdown().await;
    running.shutdown().await;
}
