//! Shared harness of the multi-node tests (`multi_node*.rs`): `oauth-server` processes started
//! from the built binary on one PostgreSQL database, the administration commands run on that
//! database, and a small hyper client speaking to any node. Each test file keeps its own
//! deployment and scenario; only the plumbing they all need lives here.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth_store_postgres::testing::{missing_component, Cluster};

pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
/// The public URL of the deployment, the same for every node (the load balancer's).
pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const REDIRECT: &str = "http://127.0.0.1:4711/cb";
/// The RFC 7636 Appendix B verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// How to start a node: `oauth-server serve` on 127.0.0.1:0 with the issuer [`ISSUER`].
#[derive(Clone, Copy)]
pub struct Start<'a> {
    /// The database (`--postgres`); the file store without one.
    pub postgres: Option<&'a str>,
    /// The data directory (`--data`).
    pub data: &'a Path,
    /// The configuration file (`--config`), if any.
    pub config: Option<&'a Path>,
    /// The file the node's standard error goes to (discarded without one).
    pub log: Option<&'a Path>,
}

impl<'a> Start<'a> {
    /// A node on the database `url` with the data directory `data`, no configuration file, no log.
    pub fn on(url: &'a str, data: &'a Path) -> Self {
        Start {
            postgres: Some(url),
            data,
            config: None,
            log: None,
        }
    }

    pub fn config(self, config: &'a Path) -> Self {
        Start {
            config: Some(config),
            ..self
        }
    }

    pub fn log(self, log: &'a Path) -> Self {
        Start {
            log: Some(log),
            ..self
        }
    }
}

/// A running node, stopped with SIGTERM (if still alive) and reaped when dropped.
pub struct Node {
    pub child: Child,
    pub base: String,
    /// Where its standard error goes, shown when it exits before listening.
    log: Option<std::path::PathBuf>,
}

impl Node {
    /// Starts a node and waits until it listens.
    pub fn start(how: Start) -> Node {
        let mut node = Node::spawn(how);
        node.listening();
        node
    }

    /// Starts a node without waiting for it, so that several start at the same moment;
    /// [`Node::listening`] waits.
    pub fn spawn(how: Start) -> Node {
        let mut command = Command::new(BIN);
        command.arg("serve");
        if let Some(config) = how.config {
            command.arg("--config").arg(config);
        }
        command.args(["--listen", "127.0.0.1:0", "--issuer", ISSUER]);
        if let Some(url) = how.postgres {
            command.args(["--postgres", url]);
        }
        let stderr = match how.log {
            Some(log) => Stdio::from(std::fs::File::create(log).expect("create the node's log")),
            None => Stdio::null(),
        };
        let child = command
            .arg("--data")
            .arg(how.data)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start a node");
        // A `Node` at once: whatever fails after, its drop stops and reaps the process.
        Node {
            child,
            base: String::new(),
            log: how.log.map(Path::to_path_buf),
        }
    }

    /// Waits until the node listens (30 s at most); sets `base`.
    pub fn listening(&mut self) {
        let mut stdout = BufReader::new(self.child.stdout.take().expect("stdout"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).expect("read") > 0,
                "the node exited{}",
                self.log
                    .as_ref()
                    .map(|log| format!(": {}", std::fs::read_to_string(log).unwrap_or_default()))
                    .unwrap_or_default()
            );
            if let Some(addr) = line
                .trim()
                .strip_prefix("oauth-server listening on http://")
            {
                self.base = format!("http://{addr}");
                return;
            }
            assert!(Instant::now() < deadline, "the node did not start");
        }
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill9(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -9 the node");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Runs an administration command on the database; its standard output.
pub fn admin(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--postgres", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run oauth-server");
    if let Some(input) = stdin {
        writeln!(child.stdin.take().expect("stdin"), "{input}").expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The client id and secret `client add` printed.
pub fn client_of(json: &str) -> (String, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(json).expect("client add prints JSON");
    (
        v["client_id"].as_str().expect("client_id").to_owned(),
        v["client_secret"].as_str().map(str::to_owned),
    )
}

/// `s` percent-encoded for a query or form value.
pub fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).expect("encode")[1..].to_owned()
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The value of the hidden form field `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    /// The session cookie the answer sets.
    pub fn session_cookie(&self) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("oauth_session="))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
            .expect("a session cookie")
    }
}

impl Resp {
    /// The code in the redirect (303) this answer must be.
    pub fn code(&self) -> String {
        assert_eq!(self.status, 303, "{}", self.body);
        let location = self.headers["location"].to_str().expect("location");
        let query = location.split_once('?').expect("a query").1;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("query");
        pairs
            .into_iter()
            .find_map(|(k, v)| (k == "code").then_some(v))
            .expect("a code")
    }
}

/// How a request ended short of an answer.
#[derive(Debug)]
pub enum Failed {
    /// The connection failed (refused, reset, closed before the answer).
    Connection(String),
    /// No answer within the client's bound.
    Timeout(Duration),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Connection(e) => write!(f, "connection failed: {e}"),
            Failed::Timeout(bound) => write!(f, "no answer within {bound:?}"),
        }
    }
}

/// The HTTP client of a test, speaking to any node; with a bound, a request without an answer
/// in time fails with [`Failed::Timeout`].
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    bound: Option<Duration>,
}

impl Http {
    /// A client that waits as long as the node takes.
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            bound: None,
        }
    }

    /// A client giving each request at most `bound`.
    pub fn bounded(bound: Duration) -> Self {
        Http {
            bound: Some(bound),
            ..Http::new()
        }
    }

    /// Sends a request; the answer, or how it failed.
    pub async fn try_send(
        &self,
        method: &str,
        url: String,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<Resp, Failed> {
        let mut b = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        let request = b.body(Full::new(Bytes::from(body))).expect("request");
        let exchange = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| Failed::Connection(format!("{e:?}")))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Failed::Connection(format!("{e:?}")))?
                .to_bytes();
            Ok(Resp {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        match self.bound {
            Some(bound) => tokio::time::timeout(bound, exchange)
                .await
                .unwrap_or(Err(Failed::Timeout(bound))),
            None => exchange.await,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        url: String,
        headers: &[(&str, String)],
        body: String,
    ) -> Resp {
        self.try_send(method, url, headers, body)
            .await
            .unwrap_or_else(|e| panic!("the node does not answer: {e}"))
    }

    /// A form POST to `base` + `path`, with Basic authentication and a session cookie if given.
    pub async fn try_form(
        &self,
        base: &str,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        cookie: Option<&str>,
    ) -> Result<Resp, Failed> {
        let mut headers = vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )];
        if let Some((id, secret)) = basic {
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(id),
                enc(secret)
            ));
            headers.push(("authorization", format!("Basic {credentials}")));
        }
        if let Some(c) = cookie {
            headers.push(("cookie", format!("oauth_session={c}")));
        }
        let body = serde_urlencoded::to_string(form).expect("form");
        self.try_send("POST", format!("{base}{path}"), &headers, body)
            .await
    }

    /// Opens `base`/authorize?`query` (which must show the sign-in page) and signs [`USER`] in
    /// there; the answer to the sign-in (the consent page, or the redirect when the consent is
    /// remembered).
    pub async fn sign_in(&self, base: &str, query: &str) -> Resp {
        let page = self
            .send(
                "GET",
                format!("{base}/authorize?{query}"),
                &[],
                String::new(),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let cookie = page.session_cookie();
        self.form(
            base,
            "/authorize",
            &[
                ("csrf", &page.hidden("csrf")),
                ("page", &page.hidden("page")),
                ("username", USER),
                ("password", PASSWORD),
            ],
            None,
            Some(&cookie),
        )
        .await
    }

    /// Approves on the consent page `consent` (with its session cookie); the answer.
    pub async fn approve(&self, base: &str, consent: &Resp) -> Resp {
        let cookie = consent.session_cookie();
        self.form(
            base,
            "/authorize",
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
            None,
            Some(&cookie),
        )
        .await
    }

    pub async fn form(
        &self,
        base: &str,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        cookie: Option<&str>,
    ) -> Resp {
        self.try_form(base, path, form, basic, cookie)
            .await
            .unwrap_or_else(|e| panic!("the node does not answer: {e}"))
    }
}

/// A throwaway PostgreSQL cluster (`oauth_store_postgres::testing`); `None` (the test skipped,
/// or failed under CI) without PostgreSQL.
pub fn cluster() -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(what) => {
            missing_component(&what);
            None
        }
    }
}

/// A cluster with one migrated database, and its URL; `None` as for [`cluster`].
pub fn database() -> Option<(Cluster, String)> {
    let cluster = cluster()?;
    let url = cluster.create_database().expect("create a database");
    admin(&url, &["db", "migrate"], None);
    Some((cluster, url))
}

/// Adds [`USER`] with [`PASSWORD`] to the database.
pub fn add_user(url: &str) {
    admin(
        url,
        &["user", "add", USER, "--password-stdin"],
        Some(PASSWORD),
    );
}

/// Adds a confidential resource server with client_credentials and `mail`; its id and secret.
pub fn add_resource_server(url: &str) -> (String, String) {
    let (id, secret) = client_of(&admin(
        url,
        &[
            "client",
            "add",
            "--name",
            "Mail server",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mail",
            "--resource-server",
        ],
        None,
    ));
    (id, secret.expect("a confidential client has a secret"))
}

/// Adds a public app with the code flow to [`REDIRECT`] and `scope`; its id.
pub fn add_app(url: &str, scope: &str) -> String {
    let (id, _) = client_of(&admin(
        url,
        &[
            "client",
            "add",
            "--name",
            "Mail app",
            "--public",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            scope,
        ],
        None,
    ));
    id
}
