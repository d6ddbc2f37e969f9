//! Client ID Metadata Documents end to end: the server fetches documents from a local https
//! server (127.0.0.1, a certificate made for the test and trusted through
//! `[server.cimd] trusted_roots`), runs the code flow for a good one, and answers every bad one
//! with a clear error, never a hang, a redirect or a 5xx.

mod common;

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::*;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Bytes, Frame};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use oauth_proto::client_id_document::FetchError;
use oauth_proto::config::Config;
use oauth_server::cimd::{CimdSettings, Fetcher};
use oauth_server::settings::ServerSettings;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// The https server the documents come from.
struct DocumentServer {
    port: u16,
    /// A TCP port that accepts connections and never says anything.
    silent_port: u16,
    /// The certificate, as a PEM file for `trusted_roots`.
    root: PathBuf,
    /// How often `/good.json` was fetched.
    good_hits: Arc<AtomicUsize>,
    /// How many connections the silent port accepted.
    silent_accepted: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_file(&self.root);
    }
}

impl DocumentServer {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// The settings under which the OAuth server trusts this server and may fetch from it.
    fn settings(&self, allow_private_addresses: bool) -> ServerSettings {
        ServerSettings {
            cimd: CimdSettings {
                allow_private_addresses,
                trusted_roots: vec![self.root.clone()],
                connect_timeout_ms: 1000,
                timeout_ms: 1500,
                ..CimdSettings::default()
            },
            ..test_settings()
        }
    }

    async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let root = std::env::temp_dir().join(format!(
            "oauth-cimd-test-{}-{}.pem",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&root, certified.cert.pem()).unwrap();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        #[allow(deprecated)] // the ring provider, as the server's fetcher uses
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let good_hits = Arc::new(AtomicUsize::new(0));
        let hits = good_hits.clone();
        let serve = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let hits = hits.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let hits = hits.clone();
                        async move { Ok::<_, Infallible>(answer(req, port, &hits).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let silent_accepted = Arc::new(AtomicUsize::new(0));
        let accepted = silent_accepted.clone();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = silent.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(tcp);
            }
        });
        DocumentServer {
            port,
            silent_port,
            root,
            good_hits,
            silent_accepted,
            tasks: vec![serve, hold],
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn document(client_id: &str, auth_method: &str) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "CIMD Test App",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method,
        "scope": "mail offline_access",
    })
    .to_string()
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn reply(status: u16, content_type: &str, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "max-age=600")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// A body of `n` 1 KB chunks with no length announced (chunked), to test the reading cap.
struct Chunks(usize);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; 1024])))))
    }
}

async fn answer(req: Request<hyper::body::Incoming>, port: u16, hits: &AtomicUsize) -> Reply {
    let path = req.uri().path().to_owned();
    let me = format!("https://localhost:{port}{path}");
    let json = "application/json";
    match path.as_str() {
        "/good.json" => {
            hits.fetch_add(1, Ordering::SeqCst);
            reply(200, json, document(&me, "none"))
        }
        "/typed.json" => reply(
            200,
            "application/oauth-client-metadata+json; charset=utf-8",
            document(&me, "none"),
        ),
        "/redirect.json" => Response::builder()
            .status(302)
            .header("location", format!("https://localhost:{port}/good.json"))
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
        "/slow.json" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            reply(200, json, document(&me, "none"))
        }
        "/big.json" => reply(200, json, format!("{{\"pad\":\"{}\"}}", "a".repeat(6000))),
        "/big-chunked.json" => Response::builder()
            .status(200)
            .header("content-type", json)
            .body(Chunks(8).boxed())
            .unwrap(),
        "/html.json" => reply(200, "text/html", "<html></html>".to_owned()),
        "/broken.json" => reply(200, json, "{\"client_id\": ".to_owned()),
        "/mismatch.json" => reply(
            200,
            json,
            document(&format!("https://localhost:{port}/other.json"), "none"),
        ),
        "/secret.json" => reply(200, json, document(&me, "client_secret_basic")),
        _ => reply(404, "text/plain", "not here".to_owned()),
    }
}

fn engine_config() -> Config {
    Config {
        client_id_metadata_documents: true,
        ..Config::default()
    }
}

fn authorize_query(client_id: &str) -> String {
    format!(
        "response_type=code&client_id={}&redirect_uri={}&state=st&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(client_id),
        enc(REDIRECT)
    )
}

/// The authorization page for `client_id` is an error page (never a redirect, never a 5xx)
/// saying `says`, within the fetch timeout.
async fn refused(s: &TestServer, client_id: &str, says: &str) {
    let started = Instant::now();
    let page = s
        .get(&format!("/authorize?{}", authorize_query(client_id)), None)
        .await;
    assert_eq!(page.status, 400, "{client_id}: {}", page.body);
    assert!(page.header("location").is_none(), "{client_id}");
    assert!(
        page.body.contains(says),
        "{client_id}: {says:?} not in {}",
        page.body
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{client_id}");
}

#[tokio::test]
async fn a_document_client_signs_in_with_code_and_pkce() {
    let docs = DocumentServer::start().await;
    let s = TestServer::start_configured(engine_config(), docs.settings(true), REDIRECT).await;
    let meta = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(meta.json()["client_id_metadata_document_supported"], true);

    let client_id = docs.url("/good.json");
    let (cookie, consent) = s.sign_in_with(&authorize_query(&client_id)).await;
    assert!(
        consent
            .body
            .contains("published by <strong><code>localhost</code></strong>"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("CIMD Test App"));
    assert!(consent.body.contains("an application on this device"));
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with(REDIRECT));
    let code = r.location_param("code").unwrap();
    let t = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &client_id),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let token = t.json()["access_token"].as_str().unwrap().to_owned();
    let i = s.introspect(&token).await;
    assert_eq!(i.json()["active"], true, "{}", i.body);
    assert_eq!(i.json()["client_id"], client_id.as_str());
    // The authorization, the decision and the token request used one fetch (max-age=600).
    assert_eq!(docs.good_hits.load(Ordering::SeqCst), 1);

    // A more specific JSON media type is fine too.
    let (_, consent) = s
        .sign_in_with(&authorize_query(&docs.url("/typed.json")))
        .await;
    assert!(consent.body.contains("CIMD Test App"));
    s.running.shutdown().await;
}

#[tokio::test]
async fn every_bad_document_is_a_clear_error() {
    let docs = DocumentServer::start().await;
    let s = TestServer::start_configured(engine_config(), docs.settings(true), REDIRECT).await;
    for (path, says) in [
        (
            "/redirect.json",
            "answered with a redirect, which this server does not follow",
        ),
        ("/slow.json", "took too long"),
        ("/big.json", "larger than 5 KB"),
        ("/big-chunked.json", "larger than 5 KB"),
        ("/html.json", "not JSON served as application/json"),
        ("/broken.json", "not JSON served as application/json"),
        (
            "/mismatch.json",
            "is not exactly the URL it was fetched from",
        ),
        ("/secret.json", "must use token_endpoint_auth_method none"),
        ("/missing.json", "HTTP status 404, not 200"),
    ] {
        refused(&s, &docs.url(path), says).await;
    }
    // A server that accepts the connection and never answers.
    let silent = format!("https://localhost:{}/client.json", docs.silent_port);
    refused(&s, &silent, "took too long").await;
    // The token endpoint answers the same failures as invalid_client.
    let t = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "x"),
                ("client_id", &docs.url("/secret.json")),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 401, "{}", t.body);
    assert_eq!(t.json()["error"], "invalid_client");
    s.running.shutdown().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed_for_tests() {
    let docs = DocumentServer::start().await;
    let s = TestServer::start_configured(engine_config(), docs.settings(false), REDIRECT).await;
    // localhost resolves to the loopback interface; so does the literal.
    refused(&s, &docs.url("/good.json"), "does not fetch from").await;
    let literal = format!("https://127.0.0.1:{}/good.json", docs.port);
    refused(&s, &literal, "does not fetch from").await;
    assert_eq!(docs.good_hits.load(Ordering::SeqCst), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_unreachable() {
    let docs = DocumentServer::start().await;
    let mut settings = docs.settings(true);
    settings.cimd.trusted_roots.clear();
    let s = TestServer::start_configured(engine_config(), settings, REDIRECT).await;
    refused(&s, &docs.url("/good.json"), "could not be fetched").await;
    s.running.shutdown().await;
}

#[tokio::test]
async fn with_documents_off_a_url_client_id_is_unknown() {
    let docs = DocumentServer::start().await;
    let s = TestServer::start_configured(Config::default(), docs.settings(true), REDIRECT).await;
    let meta = s.get("/.well-known/oauth-authorization-server", None).await;
    assert!(meta
        .json()
        .get("client_id_metadata_document_supported")
        .is_none());
    let page = s
        .get(
            &format!("/authorize?{}", authorize_query(&docs.url("/good.json"))),
            None,
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("unknown client_id"));
    assert_eq!(docs.good_hits.load(Ordering::SeqCst), 0);
    s.running.shutdown().await;
}

#[tokio::test]
async fn fetches_in_flight_are_bounded() {
    let docs = DocumentServer::start().await;
    let mut settings = docs.settings(true).cimd;
    settings.max_concurrent_fetches = 1;
    let fetcher = Fetcher::new(&settings).unwrap();
    let first = format!("https://localhost:{}/a.json", docs.silent_port);
    let second = format!("https://localhost:{}/b.json", docs.silent_port);
    let check = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        docs.silent_accepted.load(Ordering::SeqCst)
    };
    let started = Instant::now();
    let (a, b, in_flight) = tokio::join!(fetcher.fetch(&first), fetcher.fetch(&second), check);
    assert_eq!(
        in_flight, 1,
        "the second fetch waits for the first one's slot"
    );
    // Waiting for a slot counts toward the timeout: both are over after one timeout.
    assert_eq!(
        (a.body(), b.body()),
        (Err(FetchError::Timeout), Err(FetchError::Timeout))
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
}
