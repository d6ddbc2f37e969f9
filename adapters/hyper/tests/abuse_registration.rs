//! Issue 15, finding 1: anonymous registration cannot be turned into storage. Reported against
//! the release binary: 2,000 anonymous registrations of 60 KB each from one address were all
//! accepted in 2.1 s and grew the data directory by 118 MB, kept forever.
//!
//! Here a server on the file store (the default) in a temporary directory takes a flood of 2,000
//! registration attempts from 127.0.0.2, alternating the reported 60 KB body with the largest
//! registration the server keeps; the data directory must grow by under 1 MB, the flood must be
//! answered 429 with `Retry-After` once the address's allowance is used up, and a registration
//! from 127.0.0.1 must still succeed.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth_proto::config::Config;
use oauth_proto::throttle::ThrottleConfig;
use oauth_server::admin::setup;
use oauth_server::app::App;
use oauth_server::http::server;
use oauth_server::settings::ServerSettings;
use oauth_server::store::AnyStore;

const ATTEMPTS: usize = 2_000;
/// Requests in flight at once from the attacker.
const PARALLEL: usize = 8;

/// A directory under the target's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes in the files under `dir`.
fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                du(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn client_from(source: &str) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(source.parse::<IpAddr>().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: serde_json::Value,
}

async fn register(http: &Client<HttpConnector, Full<Bytes>>, base: &str, body: Bytes) -> Answer {
    let request = hyper::Request::post(format!("{base}/register"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let resp = http.request(request).await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    }
}

/// A public client's registration with `members` added.
fn native(members: serde_json::Value) -> Bytes {
    let mut body = serde_json::json!({
        "redirect_uris": ["http://127.0.0.1/cb"],
        "token_endpoint_auth_method": "none",
    });
    body.as_object_mut()
        .unwrap()
        .extend(members.as_object().unwrap().clone());
    Bytes::from(body.to_string())
}

/// The reported body: 25 `client_name` variants of 2048 bytes, about 60 KB.
fn reported() -> Bytes {
    let name = "x".repeat(2048);
    let members: serde_json::Map<_, _> = (0..25)
        .map(|i| (format!("client_name#l{i}"), name.clone().into()))
        .collect();
    native(members.into())
}

/// Close to the most one registration may keep (8 KB of metadata by default).
fn largest_kept() -> Bytes {
    let name = "y".repeat(1900);
    let mut members = serde_json::Map::new();
    members.insert("client_name".into(), name.clone().into());
    for i in 0..3 {
        members.insert(format!("client_name#l{i}"), name.clone().into());
    }
    native(members.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_from_one_address_stores_almost_nothing() {
    let data = TempDir::new("abuse-registration");
    let store = AnyStore::open_persistent(&data.0).unwrap();
    let engine = setup::admin_engine(Config::default()).unwrap();
    let settings = ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        data_dir: data.0.clone(),
        ..ServerSettings::default()
    };
    let running = server::start(App::new(engine, Arc::new(store), settings))
        .await
        .unwrap();
    let base = format!("http://{}", running.local_addr());
    let before = du(&data.0);

    let (reported, largest) = (reported(), largest_kept());
    assert!(reported.len() > 50_000, "{}", reported.len());
    let attacker = client_from("127.0.0.2");
    let mut tasks = Vec::new();
    for lane in 0..PARALLEL {
        let (attacker, base) = (attacker.clone(), base.clone());
        let (reported, largest) = (reported.clone(), largest.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in (lane..ATTEMPTS).step_by(PARALLEL) {
                let body = if i % 2 == 0 {
                    reported.clone()
                } else {
                    largest.clone()
                };
                answers.push(register(&attacker, &base, body).await);
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert_eq!(answers.len(), ATTEMPTS);

    let allowance = ThrottleConfig::default().registrations_per_address as usize;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused_metadata = answers.iter().filter(|a| a.status == 400).count();
    let throttled: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(created <= allowance, "{created} registrations stored");
    assert!(
        created > 0,
        "the largest registration the server keeps is accepted"
    );
    assert_eq!(
        created + refused_metadata,
        allowance,
        "every attempt counts against the allowance"
    );
    assert_eq!(throttled.len(), ATTEMPTS - allowance);
    for a in &throttled {
        assert_eq!(a.body["error"], "invalid_request", "{}", a.body);
        assert!(a.body["error_description"]
            .as_str()
            .unwrap()
            .contains("too many client registrations"));
        let retry_after = a.retry_after.expect("Retry-After");
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
    }
    for a in answers.iter().filter(|a| a.status == 400) {
        assert_eq!(a.body["error"], "invalid_client_metadata", "{}", a.body);
    }

    let grown = du(&data.0) - before;
    assert!(
        grown < 1_000_000,
        "the data directory grew {grown} bytes for {ATTEMPTS} attempts"
    );

    // The user's registration from another address still succeeds.
    let user = register(
        &client_from("127.0.0.1"),
        &base,
        native(serde_json::json!({"client_name": "Thunderbird"})),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.body);
    assert!(user.body["client_id"].is_string());
    running.shutdown().await;
}
