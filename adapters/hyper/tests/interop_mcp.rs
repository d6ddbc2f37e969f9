//! Interoperability with the MCP TypeScript SDK (`@modelcontextprotocol/sdk`), the client auth
//! that MCP clients (the other large population of self-registering public clients) run before
//! they talk to a protected MCP server.
//!
//! The server runs in-process with its issuer set to its real address and three configured
//! protected resources: two MCP servers co-located on its host (`{issuer}/mcp` and
//! `{issuer}/mcp-other`, both with scope `mcp:tools`, as when one reverse proxy serves them all)
//! and an IMAP service. `tests/interop/mcp/mcp_flow.mjs` gives the SDK's `auth()` only the MCP
//! server's URL: the SDK finds the resource's RFC 9728 document, the authorization server's
//! metadata, registers itself, sends the person to sign in (plain fetch posting the pages' forms),
//! exchanges the code with PKCE and the resource indicator, and refreshes. The script prints what
//! the SDK sent and saved; this test asserts it and introspects the tokens: their audience is the
//! MCP server alone and their scope only what its document lists. A second run turns on Client ID
//! Metadata Documents: the server's metadata says so, and the SDK uses the https URL of its
//! document (served by the test from loopback, with a certificate the server is told to trust) as
//! its client id instead of registering.
//!
//! The SDK is pinned in `tests/interop/mcp/package.json` and `package-lock.json`; the test runs
//! `npm ci` there when it is not installed (CI does it first, in `.ci/run`). Without node and npm
//! the test says so and passes, unless `CI=true`.

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use http_body_util::Full;
use hyper::body::Bytes;
use oauth_proto::config::Config;
use oauth_proto::resource::ProtectedResource;
use oauth_server::cimd::CimdSettings;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

const MCP_SCOPE: &str = "mcp:tools";
const IMAP: &str = "imap://mail.example.com";
/// The path of a second MCP server behind the same host, accepting the same scope: a token the
/// client did not bind to the first would be good at both.
const OTHER_MCP: &str = "/mcp-other";
/// The loopback redirect URI the SDK's client registers, as command-line MCP clients do.
const CALLBACK: &str = "http://127.0.0.1:33418/callback";

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/mcp")
}

/// Node with the pinned SDK installed (by `npm ci` when missing or another version), or why not;
/// checked once per test binary, so that two tests never run `npm ci` into one directory together.
async fn sdk_ready() -> Result<(), String> {
    static READY: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    READY.get_or_init(install_sdk).await.clone()
}

async fn install_sdk() -> Result<(), String> {
    npm_ready(&sdk_dir(), "@modelcontextprotocol/sdk").await
}

/// A server whose issuer is its real address, with the MCP servers and an IMAP service
/// configured; with `docs`, it accepts client metadata documents and trusts that server's
/// certificate to fetch them.
async fn server(docs: Option<&DocumentServer>) -> (TestServer, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mcp = format!("{base}/mcp");
    let mut config = Config {
        issuer: base.clone(),
        throttle: test_throttle(),
        client_id_metadata_documents: docs.is_some(),
        ..Config::default()
    };
    // A deployment serving MCP adds its scope, and gives it to clients that name none: a client
    // metadata document need not list a scope (the MCP client's here does not), and the SDK asks
    // for what the resource's document lists.
    config.scopes_supported.push(MCP_SCOPE.to_owned());
    config.default_client_scope = format!("{} {MCP_SCOPE}", config.default_client_scope);
    let resource = |r: &str, scope: &str| ProtectedResource {
        resource: r.to_owned(),
        scopes_supported: vec![scope.to_owned()],
        access_token_format: Default::default(),
    };
    config.resources = vec![
        resource(&mcp, MCP_SCOPE),
        resource(&format!("{base}{OTHER_MCP}"), MCP_SCOPE),
        resource(IMAP, "mail"),
    ];
    let mut settings = oauth_server::settings::ServerSettings {
        listen: format!("127.0.0.1:{port}"),
        ..test_settings()
    };
    if let Some(docs) = docs {
        settings.cimd = CimdSettings {
            // The document server is on loopback, which production refuses.
            allow_private_addresses: true,
            trusted_roots: vec![docs.root.clone()],
            ..CimdSettings::default()
        };
    }
    let s = TestServer::start_configured(config, settings, REDIRECT).await;
    assert_eq!(s.base, base);
    (s, mcp)
}

/// The MCP client's metadata document (draft-ietf-oauth-client-id-metadata-document), served over
/// https from loopback with a certificate made for the test, as `tests/cimd.rs` does.
struct DocumentServer {
    port: u16,
    /// The certificate, as a PEM file for `trusted_roots`.
    root: PathBuf,
    /// How often the document was fetched.
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.root);
    }
}

impl DocumentServer {
    const PATH: &'static str = "/mcp-client.json";

    /// The document's URL: the client id.
    fn url(&self) -> String {
        format!("https://localhost:{}{}", self.port, Self::PATH)
    }

    async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let root = std::env::temp_dir().join(format!(
            "oauth-mcp-cimd-{}-{}.pem",
            std::process::id(),
            NEXT_ROOT.fetch_add(1, Ordering::Relaxed)
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client_id = format!("https://localhost:{port}{}", Self::PATH);
        let document = json!({
            "client_id": client_id,
            "client_name": "MCP SDK interop",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
        .to_string();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, document, hits) =
                    (acceptor.clone(), document.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let found = req.uri().path() == Self::PATH;
                        if found {
                            hits.fetch_add(1, Ordering::SeqCst);
                        }
                        let answer = hyper::Response::builder()
                            .status(if found { 200 } else { 404 })
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(if found {
                                document.clone()
                            } else {
                                String::new()
                            })))
                            .unwrap();
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        DocumentServer {
            port,
            root,
            hits,
            task,
        }
    }
}

static NEXT_ROOT: AtomicUsize = AtomicUsize::new(0);

/// Runs `mcp_flow.mjs` with `input`; its observations.
async fn run_flow(input: Value) -> Value {
    let dir = sdk_dir();
    run_json_script(
        "node",
        &dir.join("mcp_flow.mjs"),
        Some(&dir),
        &input,
        "MCP SDK",
    )
    .await
}

/// The requests the SDK made to `path` of the server, in order.
fn requests_to<'a>(requests: &'a Value, base: &str, path: &str) -> Vec<&'a Value> {
    let url = format!("{base}{path}");
    requests
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["url"] == url)
        .collect()
}

/// The query parameters of `url`.
fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(q).unwrap()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts what the SDK did from discovery to refresh, and what its tokens are, given how it
/// identified itself: by registering (`client_metadata_url` `None`) or by its metadata document's
/// URL.
async fn check_flow(s: &TestServer, mcp: &str, client_metadata_url: Option<&str>) {
    let base = s.base.clone();
    let mut input = json!({
        "resource": mcp,
        "redirect_uri": CALLBACK,
        "username": USER,
        "password": PASSWORD,
    });
    if let Some(url) = client_metadata_url {
        input["client_metadata_url"] = url.into();
    }
    let o = run_flow(input).await;
    let requests = &o["requests"];

    // Discovery starts at the resource: its RFC 9728 document, at the resource's path, names this
    // server, whose RFC 8414 metadata the SDK then reads.
    let first = &requests[0];
    assert_eq!(
        first["url"],
        format!("{base}/.well-known/oauth-protected-resource/mcp"),
        "{o:#}"
    );
    assert_eq!(first["status"], 200, "{o:#}");
    let metadata = requests_to(requests, &base, "/.well-known/oauth-authorization-server");
    assert_eq!(metadata.first().map(|r| &r["status"]), Some(&json!(200)));
    assert_eq!(o["first"], "REDIRECT");

    // Dynamic registration of a public client, with only the resource's scope; or none, the
    // document's URL being the client id.
    let register = requests_to(requests, &base, "/register");
    let client_id = match client_metadata_url {
        None => {
            assert_eq!(register.len(), 1, "{o:#}");
            assert_eq!(register[0]["status"], 201);
            assert_eq!(register[0]["body"]["scope"], MCP_SCOPE);
            assert_eq!(register[0]["body"]["redirect_uris"], json!([CALLBACK]));
            assert!(o["registered"].get("client_secret").is_none(), "{o:#}");
            o["registered"]["client_id"].as_str().unwrap().to_owned()
        }
        Some(url) => {
            assert!(register.is_empty(), "{o:#}");
            url.to_owned()
        }
    };
    assert_eq!(o["registered"]["client_id"], client_id.as_str(), "{o:#}");

    // The authorization request: code, PKCE S256, the resource, only its scope.
    let auth_url = o["authorization_url"].as_str().unwrap();
    assert!(
        auth_url.starts_with(&format!("{base}/authorize?")),
        "{auth_url}"
    );
    let q = query(auth_url);
    assert_eq!(param(&q, "response_type"), Some("code"));
    assert_eq!(param(&q, "client_id"), Some(client_id.as_str()));
    assert_eq!(param(&q, "code_challenge_method"), Some("S256"));
    assert!(param(&q, "code_challenge").is_some_and(|c| c.len() == 43));
    assert_eq!(param(&q, "resource"), Some(mcp));
    assert_eq!(param(&q, "scope"), Some(MCP_SCOPE));
    assert_eq!(param(&q, "redirect_uri"), Some(CALLBACK));
    assert_eq!(o["consent_shows_client"], true);
    assert_eq!(o["approval_status"], 303);
    let callback = o["callback"].as_str().unwrap();
    assert!(callback.starts_with(&format!("{CALLBACK}?")), "{callback}");
    assert_eq!(param(&query(callback), "iss"), Some(base.as_str()));

    // The code exchange carried the verifier and the resource.
    let token_requests = requests_to(requests, &base, "/token");
    assert_eq!(token_requests.len(), 1, "{o:#}");
    let exchange = &token_requests[0]["body"];
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["resource"], mcp);
    assert_eq!(exchange["client_id"], client_id.as_str());
    assert!(exchange["code_verifier"]
        .as_str()
        .is_some_and(|v| v.len() >= 43));
    assert_eq!(token_requests[0]["status"], 200);
    assert_eq!(o["exchange"], "AUTHORIZED");
    let tokens = &o["tokens"];
    assert!(tokens["token_type"]
        .as_str()
        .unwrap()
        .eq_ignore_ascii_case("bearer"));
    assert_eq!(tokens["scope"], MCP_SCOPE);
    assert!(tokens["refresh_token"].is_string(), "{o:#}");

    // The token is for the MCP server alone: introspection names it as the audience, and the
    // engine refuses it at the other MCP server (which accepts the same scope) and at IMAP.
    let access = tokens["access_token"].as_str().unwrap();
    let info = s.introspect_json(access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["aud"], mcp, "{info}");
    assert_eq!(info["scope"], MCP_SCOPE, "{info}");
    assert_eq!(info["client_id"], client_id.as_str(), "{info}");
    assert_eq!(info["username"], USER, "{info}");
    let app = s.running.app();
    let now = oauth_server::clock::now();
    assert!(app
        .engine
        .validate_access_token_for(access, mcp, now, &*app.store)
        .is_ok());
    for elsewhere in [format!("{base}{OTHER_MCP}"), IMAP.to_owned()] {
        assert_eq!(
            app.engine
                .validate_access_token_for(access, &elsewhere, now, &*app.store)
                .unwrap_err(),
            oauth_proto::access_token::TokenError::WrongAudience,
            "{elsewhere}"
        );
    }

    // Refresh, with the resource again, and no new sign-in.
    assert_eq!(o["refresh"], "AUTHORIZED");
    assert_eq!(o["redirects_after_refresh"], 1);
    let refresh = requests_to(&o["refresh_requests"], &base, "/token");
    assert_eq!(refresh.len(), 1, "{o:#}");
    assert_eq!(refresh[0]["status"], 200);
    assert_eq!(refresh[0]["body"]["grant_type"], "refresh_token");
    assert_eq!(refresh[0]["body"]["resource"], mcp);
    let refreshed = &o["refreshed"];
    // (The access token may equal the first: same claims in the same second.)
    assert!(refreshed["access_token"].is_string(), "{o:#}");
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let info = s
        .introspect_json(refreshed["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["aud"], mcp, "{info}");
    assert_eq!(info["scope"], MCP_SCOPE, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_discovers_registers_authorizes_for_the_resource_and_refreshes() {
    if let Err(what) = sdk_ready().await {
        missing_component(&what);
        return;
    }
    let (s, mcp) = server(None).await;
    check_flow(&s, &mcp, None).await;
    s.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_uses_its_client_metadata_document_url_instead_of_registering() {
    if let Err(what) = sdk_ready().await {
        missing_component(&what);
        return;
    }
    let docs = DocumentServer::start().await;
    let (s, mcp) = server(Some(&docs)).await;
    let meta = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(meta.json()["client_id_metadata_document_supported"], true);
    check_flow(&s, &mcp, Some(&docs.url())).await;
    assert!(docs.hits.load(Ordering::SeqCst) >= 1);
    s.running.shutdown().await;
}
