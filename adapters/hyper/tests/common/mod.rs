//! Shared test harness: a server started in-process on 127.0.0.1:0 with a memory store, seeded
//! with a user and clients, and a small HTTP/1.1 client over hyper.
#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth_proto::config::Config;
use oauth_proto::throttle::ThrottleConfig;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::{setup, users};
use oauth_server::app::App;
use oauth_server::http::server::{self, Running};
use oauth_server::settings::ServerSettings;
use oauth_server::store::AnyStore;

/// The RFC 7636 Appendix B verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "alice's long password";
pub const REDIRECT: &str = "http://127.0.0.1:4711/cb";

pub struct TestServer {
    pub running: Running,
    pub base: String,
    /// The public client's redirect URI.
    pub redirect: String,
    pub public_id: String,
    pub web_id: String,
    pub web_secret: String,
    pub service_id: String,
    pub service_secret: String,
    /// The client every request goes through; [`TestServer::set_source`] swaps it.
    http: std::sync::Mutex<Client<HttpConnector, Full<Bytes>>>,
}

/// A component a test needs (a browser, a Python client) is not installed. Outside CI the test
/// says so on stderr, past the harness's capture, and passes without running; with `CI=true` a
/// missing component fails the run, so CI never goes green on tests that did not run.
pub fn missing_component(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing, and CI=true requires every component (.ci/run installs it)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} is missing");
}

/// The `Authorization` header of HTTP Basic client authentication (RFC 6749 §2.3.1: both parts
/// form-urlencoded first).
pub fn basic_header(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The Python interpreter (`$PYTHON`, else `python3`) when it imports every one of `modules`
/// (comma-separated, as an `import` statement takes them); otherwise `None`, after
/// [`missing_component`] (which fails the test under `CI=true`).
pub async fn python_with(modules: &str) -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    if matches!(probe, Ok(s) if s.success()) {
        return Some(python);
    }
    missing_component(&format!(
        "{python} with {modules} (pip install authlib requests)"
    ));
    None
}

/// An HTTP client whose connections leave from `source` (the kernel's choice when `None`).
fn client_from(source: Option<std::net::IpAddr>) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(source);
    Client::builder(TokioExecutor::new()).build(connector)
}

pub fn test_settings() -> ServerSettings {
    ServerSettings {
        listen: "127.0.0.1:0".to_owned(),
        ..ServerSettings::default()
    }
}

/// The engine's limiter with delays short enough for tests (5 ms doubling up to 20 ms).
pub fn test_throttle() -> ThrottleConfig {
    ThrottleConfig {
        base_delay_ms: 5,
        max_delay_ms: 20,
        ..ThrottleConfig::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(test_settings(), REDIRECT).await
    }

    pub async fn start_with(settings: ServerSettings, redirect: &str) -> Self {
        Self::start_throttled(test_throttle(), settings, redirect).await
    }

    /// As [`TestServer::start_with`], with these limiter settings.
    pub async fn start_throttled(
        throttle: ThrottleConfig,
        settings: ServerSettings,
        redirect: &str,
    ) -> Self {
        let config = Config {
            throttle,
            ..Config::default()
        };
        Self::start_configured(config, settings, redirect).await
    }

    /// As [`TestServer::start_with`], with this engine configuration.
    pub async fn start_configured(
        config: Config,
        settings: ServerSettings,
        redirect: &str,
    ) -> Self {
        let engine = setup::admin_engine(config).unwrap();
        let store = AnyStore::memory();
        users::add(&store, USER, PASSWORD, 1).await.unwrap();
        let public = clients::add(
            &store,
            &engine,
            &NewClient {
                name: "Native <Mail> App".to_owned(),
                redirect_uris: vec![redirect.to_owned()],
                public: true,
                scope: Some("mail offline_access".to_owned()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
        let web = clients::add(
            &store,
            &engine,
            &NewClient {
                name: "Web App".to_owned(),
                redirect_uris: vec!["https://web.example.com/cb".to_owned()],
                scope: Some("mail".to_owned()),
                // The tests introspect other clients' tokens with it.
                resource_server: true,
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
        let service = clients::add(
            &store,
            &engine,
            &NewClient {
                name: "Service".to_owned(),
                grant_types: vec!["client_credentials".to_owned()],
                scope: Some("mail".to_owned()),
                ..Default::default()
            },
            1,
        )
        .await
        .unwrap();
        let app = App::new(engine, Arc::new(store), settings);
        let running = server::start(app).await.unwrap();
        let base = format!("http://{}", running.local_addr());
        TestServer {
            running,
            base,
            redirect: redirect.to_owned(),
            public_id: public.client_id,
            web_id: web.client_id,
            web_secret: web.client_secret.unwrap(),
            service_id: service.client_id,
            service_secret: service.client_secret.unwrap(),
            http: std::sync::Mutex::new(client_from(None)),
        }
    }

    /// From now on, requests come from `ip` (any 127.x.y.z works on Linux): tests of attacks send
    /// the attacker's requests from 127.0.0.2 and the user's from 127.0.0.1.
    pub fn set_source(&self, ip: &str) {
        *self.http.lock().unwrap() = client_from(Some(ip.parse().unwrap()));
    }

    pub fn authorize_query(&self, state: &str) -> String {
        format!(
            "response_type=code&client_id={}&redirect_uri={}&state={state}&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256",
            self.public_id,
            enc(&self.redirect)
        )
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let http = self.http.lock().unwrap().clone();
        let resp = http
            .request(b.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Resp {
        let c = cookie.map(|c| format!("oauth_session={c}"));
        let headers: Vec<(&str, &str)> = c.iter().map(|c| ("cookie", c.as_str())).collect();
        self.send("GET", path, &headers, b"").await
    }

    pub async fn post_form(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Resp {
        let c = cookie.map(|c| format!("oauth_session={c}"));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(c) = &c {
            headers.push(("cookie", c));
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send("POST", path, &headers, body.as_bytes()).await
    }

    pub async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
        let auth = basic.map(|(id, secret)| basic_header(id, secret));
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send("POST", "/token", &headers, body.as_bytes()).await
    }

    /// Introspects `token` as the resource server `web` (RFC 7662).
    pub async fn introspect(&self, token: &str) -> Resp {
        let auth = basic_header(&self.web_id, &self.web_secret);
        let body = serde_urlencoded::to_string([("token", token)]).unwrap();
        self.send(
            "POST",
            "/introspect",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
            body.as_bytes(),
        )
        .await
    }

    /// [`Self::introspect`]'s answer, asserted to be a 200, as JSON.
    pub async fn introspect_json(&self, token: &str) -> serde_json::Value {
        let r = self.introspect(token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Signs in through the page; returns the signed-in session cookie and the consent page.
    pub async fn sign_in(&self, state: &str) -> (String, Resp) {
        self.sign_in_with(&self.authorize_query(state)).await
    }

    /// Signs alice in (with `state`), approves the public client and redeems the code with its
    /// PKCE verifier: the token response, asserted to be a 200.
    pub async fn user_token_response(&self, state: &str) -> serde_json::Value {
        let (cookie, consent) = self.sign_in(state).await;
        self.approve_and_redeem(&cookie, &consent, &self.public_id)
            .await
    }

    /// Approves on the `consent` page of the signed-in `cookie` and redeems the code for
    /// `client_id` (a public client whose request used [`REDIRECT`] and [`VERIFIER`]'s
    /// challenge): the token response, asserted to be a 200.
    pub async fn approve_and_redeem(
        &self,
        cookie: &str,
        consent: &Resp,
        client_id: &str,
    ) -> serde_json::Value {
        let r = self
            .post_form(
                "/authorize",
                Some(cookie),
                &[
                    ("csrf", &consent.hidden("csrf")),
                    ("page", &consent.hidden("page")),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let code = r.location_param("code").expect("a code");
        let t = self
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("client_id", client_id),
                    ("code_verifier", VERIFIER),
                ],
                None,
            )
            .await;
        assert_eq!(t.status, 200, "{}", t.body);
        t.json()
    }

    /// Signs in on the authorization page of `query`. A query without `prompt` gets
    /// `prompt=consent`, so the answer is the consent page even when the user approved the
    /// client before (remembered consent would otherwise redirect with a code at once).
    pub async fn sign_in_with(&self, query: &str) -> (String, Resp) {
        let query = if query.contains("prompt=") {
            query.to_owned()
        } else {
            format!("{query}&prompt=consent")
        };
        let page = self.get(&format!("/authorize?{query}"), None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let cookie = page.session_cookie().unwrap();
        let resp = self
            .post_form(
                "/authorize",
                Some(&cookie),
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("page", &page.hidden("page")),
                    ("username", USER),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        let signed_in = resp
            .session_cookie()
            .expect("a new session id after sign-in");
        assert_ne!(signed_in, cookie);
        (signed_in, resp)
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The value of a hidden form field.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("oauth_session="))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }

    /// A parameter of the `Location` header's query.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let loc = self.header("location")?;
        let query = loc.split_once('?')?.1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

pub fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

/// Whether `program --version` runs.
pub async fn runs(program: &str) -> bool {
    tokio::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Node with the npm packages `dir`'s lock file pins, installed by `npm ci` unless `package` is
/// already there at the version `package.json` pins; `Err` says what is missing.
pub async fn npm_ready(dir: &std::path::Path, package: &str) -> Result<(), String> {
    if !runs("node").await || !runs("npm").await {
        return Err("node and npm (Debian: apt-get install nodejs npm)".to_owned());
    }
    let read = |p: std::path::PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    let pinned = read(dir.join("package.json"))
        .and_then(|p| p["dependencies"][package].as_str().map(str::to_owned))
        .ok_or_else(|| format!("{package} pinned in {}/package.json", dir.display()))?;
    let installed = read(dir.join("node_modules").join(package).join("package.json"))
        .and_then(|p| p["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(pinned.as_str()) {
        return Ok(());
    }
    let out = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .await
        .map_err(|e| format!("npm ci: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{package} {pinned} (npm ci in {} failed: {})",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Runs `program script` (in `dir` when given) with `input` as JSON on its standard input, and
/// returns the JSON object it prints; panics with its output if it fails or takes over 90 s.
/// `what` names it in the messages.
pub async fn run_json_script(
    program: &str,
    script: &std::path::Path,
    dir: Option<&std::path::Path>,
    input: &serde_json::Value,
    what: &str,
) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(program);
    command
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(std::time::Duration::from_secs(90), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the {what} script did not finish in 90 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} script failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}
