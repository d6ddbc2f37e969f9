//! Faults under load on a multi-node deployment (issue 19): `oauth-server` processes on one
//! throwaway PostgreSQL cluster (`oauth_store_postgres::testing`), as behind a load balancer.
//!
//! - A node killed with SIGKILL in the middle of a registration load loses no acknowledged write:
//!   every registration answered 201, by any node, is then usable at a surviving node, and the
//!   requests to the killed node fail at the connection level, never with a wrong answer. This is
//!   what "the write is committed before the answer" means for a client: the store commits each
//!   registration before the node writes its 201, so a crash can only lose unanswered requests.
//! - A PostgreSQL restart under a mixed load (client_credentials, introspection, refresh rotation)
//!   gives 503 with `Retry-After` during the outage, never a 500, a panic or a request outliving
//!   the bound; each node logs one line for the outage and recovers without being restarted.
//!
//! Every loop is bounded in time and in count; the nodes are stopped, the cluster torn down, on
//! any failure (drops).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth_store_postgres::testing::{missing_component, sql, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
/// The public URL of the deployment, the same for every node (the load balancer's).
const ISSUER: &str = "http://127.0.0.1:8080";
/// The longest any one request may take, outage or not: the store's connect timeout plus its
/// pool's wait timeout (5 s each by default), with room for a busy machine.
const REQUEST_BOUND: Duration = Duration::from_secs(12);

/// A running node, stopped with SIGTERM (if still alive) and reaped when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    /// SIGKILL: the process dies at once, whatever it was doing.
    fn kill9(&self) {
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

/// Starts a node on the database at `url` with the keys in `keys`; its stderr goes to `log`.
fn start_node(url: &str, keys: &Path, config: &Path, log: &Path) -> Node {
    let stderr = std::fs::File::create(log).expect("create the node's log");
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--issuer",
            ISSUER,
            "--postgres",
            url,
            "--data",
        ])
        .arg(keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start a node");
    // A `Node` at once: whatever fails below, its drop stops and reaps the process.
    let mut node = Node {
        child,
        base: String::new(),
    };
    let mut stdout = BufReader::new(node.child.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "the node exited: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        if let Some(addr) = line
            .trim()
            .strip_prefix("oauth-server listening on http://")
        {
            node.base = format!("http://{addr}");
            return node;
        }
        assert!(Instant::now() < deadline, "the node did not start");
    }
}

/// Runs an administration command on the database; its standard output.
fn admin(url: &str, args: &[&str], stdin: Option<&str>) -> String {
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

/// A cluster with one migrated database; `None` (skipped, or failed under CI) without PostgreSQL.
fn database() -> Option<(Cluster, String)> {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(what) => {
            missing_component(&what);
            return None;
        }
    };
    let url = cluster.create_database().expect("create a database");
    admin(&url, &["db", "migrate"], None);
    Some((cluster, url))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[derive(Debug)]
struct Resp {
    status: u16,
    body: String,
}

/// How a request ended short of an answer.
#[derive(Debug)]
enum Failed {
    /// The connection failed (refused, reset, closed before the answer).
    Connection(String),
    /// No answer within [`REQUEST_BOUND`].
    Timeout,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Connection(e) => write!(f, "connection failed: {e}"),
            Failed::Timeout => write!(f, "no answer within {REQUEST_BOUND:?}"),
        }
    }
}

/// The HTTP client of the test, speaking to any node.
#[derive(Clone)]
struct Http(Client<HttpConnector, Full<Bytes>>);

impl Http {
    fn new() -> Self {
        Http(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
    }

    /// Sends a request; the answer, or how it failed, within [`REQUEST_BOUND`].
    async fn try_send(
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
                .0
                .request(request)
                .await
                .map_err(|e| Failed::Connection(format!("{e:?}")))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Failed::Connection(format!("{e:?}")))?
                .to_bytes();
            Ok(Resp {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(REQUEST_BOUND, exchange)
            .await
            .unwrap_or(Err(Failed::Timeout))
    }

    /// A form POST to `base` + `path`, with Basic authentication and a session cookie if given.
    async fn try_form(
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

    async fn form(
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

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).expect("encode")[1..].to_owned()
}

// ---- SIGKILL under a registration load --------------------------------------------------------

/// Concurrent registering clients.
const REGISTRARS: usize = 12;
/// The load runs this long before the kill (at the earliest) ...
const BEFORE_KILL: Duration = Duration::from_millis(1500);
/// ... and this long after it.
const AFTER_KILL: Duration = Duration::from_millis(1500);
/// The whole load stops by then whatever happens.
const HARD_BOUND: Duration = Duration::from_secs(30);
/// A registrar stops after this many registrations whatever the time (a bound on the count).
const MAX_PER_REGISTRAR: usize = 400;

/// A registration answered 201: the node that answered, and the client's credentials.
struct Acknowledged {
    node: usize,
    after_kill: bool,
    client_id: String,
    client_secret: String,
}

/// What the registrars saw.
#[derive(Default)]
struct Registrations {
    acknowledged: Vec<Acknowledged>,
    /// Connection-level failures, per node.
    connection_failures: [usize; 3],
    /// Anything else: a wrong answer, a failure at a live node, a timeout.
    wrong: Vec<String>,
}

const REGISTRATION: &str = r#"{
    "client_name": "registered under load",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "mail"
}"#;

#[test]
fn sigkill_of_a_node_under_registration_load_loses_no_acknowledged_registration() {
    let Some((_cluster, url)) = database() else {
        return;
    };
    let dir = _cluster.dir();
    // Confidential clients register without an initial access token, and the registration quotas
    // (per address and in all: every request comes from 127.0.0.1) are generous, so that every
    // registration is a database write, none a 401 or a 429.
    let config = dir.join("node.toml");
    std::fs::write(
        &config,
        "confidential_registration = \"open\"\n[throttle]\n\
         registrations_per_address = 1000000\nregistrations_total = 1000000\n",
    )
    .expect("write the configuration");
    let keys = dir.join("shared-keys");
    let nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&url, &keys, &config, &dir.join(format!("node{i}.log"))))
        .collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    const VICTIM: usize = 2;

    let runtime = runtime();
    let http = Http::new();
    let seen = Arc::new(Mutex::new(Registrations::default()));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    runtime.block_on(async {
        let registrars: Vec<_> = (0..REGISTRARS)
            .map(|r| {
                let (http, bases, seen, killed, stop) = (
                    http.clone(),
                    bases.clone(),
                    seen.clone(),
                    killed.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    for i in 0..MAX_PER_REGISTRAR {
                        if stop.load(Ordering::SeqCst) || started.elapsed() > HARD_BOUND {
                            break;
                        }
                        let node = (r + i) % 3;
                        let headers = [("content-type", "application/json".to_owned())];
                        let killed_before = killed.load(Ordering::SeqCst);
                        let answer = http
                            .try_send(
                                "POST",
                                format!("{}/register", bases[node]),
                                &headers,
                                REGISTRATION.to_owned(),
                            )
                            .await;
                        let mut seen = seen.lock().expect("lock");
                        match answer {
                            Ok(resp) if resp.status == 201 => {
                                let v: serde_json::Value = match serde_json::from_str(&resp.body) {
                                    Ok(v) => v,
                                    Err(e) => {
                                        seen.wrong.push(format!("node {node}: 201 {e}: {resp:?}"));
                                        continue;
                                    }
                                };
                                match (v["client_id"].as_str(), v["client_secret"].as_str()) {
                                    (Some(id), Some(secret)) => {
                                        seen.acknowledged.push(Acknowledged {
                                            node,
                                            after_kill: killed_before,
                                            client_id: id.to_owned(),
                                            client_secret: secret.to_owned(),
                                        })
                                    }
                                    _ => seen.wrong.push(format!("node {node}: 201 {resp:?}")),
                                }
                            }
                            Ok(resp) => seen.wrong.push(format!("node {node}: {resp:?}")),
                            Err(Failed::Connection(_))
                                if node == VICTIM && killed.load(Ordering::SeqCst) =>
                            {
                                seen.connection_failures[node] += 1;
                            }
                            Err(e) => seen.wrong.push(format!("node {node}: {e}")),
                        }
                    }
                })
            })
            .collect();

        // Mid-load: once the load ran a while and the victim acknowledged registrations.
        let deadline = started + HARD_BOUND;
        loop {
            let victim_acks = seen
                .lock()
                .expect("lock")
                .acknowledged
                .iter()
                .filter(|a| a.node == VICTIM)
                .count();
            if started.elapsed() >= BEFORE_KILL && victim_acks >= 10 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the victim acknowledged {victim_acks} registrations"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        killed.store(true, Ordering::SeqCst);
        nodes[VICTIM].kill9();
        tokio::time::sleep(AFTER_KILL).await;
        stop.store(true, Ordering::SeqCst);
        for registrar in registrars {
            registrar.await.expect("a registrar panicked");
        }
    });

    let seen = seen.lock().expect("lock");
    assert!(
        seen.wrong.is_empty(),
        "wrong answers or failures at live nodes:\n{}",
        seen.wrong.join("\n")
    );
    let by_node = |n: usize| seen.acknowledged.iter().filter(|a| a.node == n).count();
    let after_kill = seen.acknowledged.iter().filter(|a| a.after_kill).count();
    assert!(
        by_node(VICTIM) >= 10,
        "the victim acknowledged before its death"
    );
    assert!(after_kill > 0, "the survivors went on registering");
    assert!(
        seen.connection_failures[VICTIM] > 0,
        "requests went to the killed node and failed at the connection level"
    );

    // Every acknowledged registration is there: in the clients table, and usable at a survivor.
    let rows: usize = sql(&url, "SELECT count(*) FROM clients")
        .expect("count the clients")
        .expect("a count")
        .parse()
        .expect("a number");
    assert!(
        rows >= seen.acknowledged.len(),
        "{rows} clients stored, {} acknowledged",
        seen.acknowledged.len()
    );
    let lost: Vec<String> = runtime.block_on(async {
        let mut lost = Vec::new();
        for (i, a) in seen.acknowledged.iter().enumerate() {
            let survivor = &bases[i % 2];
            let r = http
                .form(
                    survivor,
                    "/token",
                    &[("grant_type", "client_credentials"), ("scope", "mail")],
                    Some((&a.client_id, &a.client_secret)),
                    None,
                )
                .await;
            if r.status != 200 {
                lost.push(format!(
                    "{} (acknowledged by node {}): {} {}",
                    a.client_id, a.node, r.status, r.body
                ));
            }
        }
        lost
    });
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged registrations lost:\n{}",
        lost.len(),
        seen.acknowledged.len(),
        lost.join("\n")
    );
    eprintln!(
        "registrations acknowledged: {} (by node: {}, {}, {}; after the kill: {after_kill}), \
         {rows} stored, {} connection failures at the killed node",
        seen.acknowledged.len(),
        by_node(0),
        by_node(1),
        by_node(VICTIM),
        seen.connection_failures[VICTIM]
    );
    drop(nodes);
}
