//! `/metrics` through the binary: the metrics listener of `[server] metrics_listen`, read with a
//! Prometheus parser nobody here wrote (Python's `prometheus_client`): requests counted by
//! endpoint and status by exactly the requests made, latency histograms whose buckets are
//! cumulative and end at `_count`, store operations timed, strangers refused, nothing on the
//! public listener, and on PostgreSQL the pool's gauges and the revocation view's lag, which grows
//! while the database is down and falls back once it is up.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth_store_postgres::testing::{missing_component, Cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Another loopback address: a peer not in the default `metrics_allow`.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Reads the exposition with `prometheus_client.parser` and prints each sample as JSON.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// A sample as the parser read it.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    family: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Whether Python's `prometheus_client` is there (`.ci/run` installs it).
fn parser_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing_component("Python's prometheus_client (pip install prometheus-client)");
    }
    ok
}

fn parse(exposition: &str) -> Vec<Sample> {
    let mut python = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// One HTTP/1.1 request from `from` (a local address) to `to`; the whole answer as text.
async fn http(from: IpAddr, to: SocketAddr, head: &str, body: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(to).await.expect("connect");
    let request = format!(
        "{head}\r\nHost: {to}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    answer
}

/// The status code of an answer.
fn status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

/// Scrapes the metrics listener from the loopback address and parses what it says.
async fn scrape(metrics: SocketAddr) -> Vec<Sample> {
    let answer = http(LOCAL, metrics, "GET /metrics HTTP/1.1", "").await;
    assert_eq!(status(&answer), 200, "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    parse(body)
}

/// A client_credentials token request with these credentials and body.
async fn token(to: SocketAddr, client: &(String, String), body: &str) -> String {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
    let head = format!(
        "POST /token HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded"
    );
    http(LOCAL, to, &head, body).await
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("oauth-metrics-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `oauth-server serve`, killed and reaped when dropped (even when a test fails).
struct Server {
    child: Child,
    public: SocketAddr,
    metrics: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` with a configuration file asking for a metrics listener on a free loopback
/// port, plus `store_args` (`--data DIR` or `--postgres URL --data DIR`).
fn serve(dir: &Path, store_args: &[&str]) -> Server {
    let config = dir.join("metrics.toml");
    std::fs::write(&config, "[server]\nmetrics_listen = \"127.0.0.1:0\"\n").unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(store_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut server = Server {
        child,
        public: SocketAddr::new(LOCAL, 0),
        metrics: SocketAddr::new(LOCAL, 0),
    };
    let mut stdout = BufReader::new(server.child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the server stopped before its metrics listener started: {printed}");
        }
        printed.push_str(&line);
        let line = line.trim();
        if let Some(a) = line.strip_prefix("oauth-server listening on http://") {
            server.public = a.parse().unwrap();
        }
        if let Some(a) = line
            .strip_prefix("metrics listening on http://")
            .and_then(|a| a.strip_suffix("/metrics"))
        {
            server.metrics = a.parse().unwrap();
            return server;
        }
    }
}

/// `oauth-server client add` for a client_credentials client; its id and secret.
fn add_client(store_args: &[&str]) -> (String, String) {
    let out = Command::new(BIN)
        .args([
            "client",
            "add",
            "--name",
            "Service",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mail",
        ])
        .args(store_args)
        .stdin(Stdio::null())
        .output()
        .expect("run oauth-server client add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        added["client_id"].as_str().unwrap().to_owned(),
        added["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// The value of the one sample named `name` with these labels, if there is one.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} appears twice");
    found.first().copied()
}

/// Every `oauth_http_requests_total` sample, by (endpoint, status).
fn request_counts(samples: &[Sample]) -> BTreeMap<(String, String), f64> {
    samples
        .iter()
        .filter(|s| s.name == "oauth_http_requests_total")
        .map(|s| {
            assert_eq!(s.kind, "counter");
            (
                (s.labels["endpoint"].clone(), s.labels["status"].clone()),
                s.value,
            )
        })
        .collect()
}

/// Checks one histogram series (`family` with `labels`): buckets in increasing `le`,
/// cumulative, the last `+Inf`, equal to `_count`; returns the count.
fn check_histogram(samples: &[Sample], family: &str, labels: (&str, &str)) -> f64 {
    let series: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.family == family && s.labels.get(labels.0).map(String::as_str) == Some(labels.1)
        })
        .collect();
    assert!(series.iter().all(|s| s.kind == "histogram"), "{series:?}");
    let buckets: Vec<(f64, f64)> = series
        .iter()
        .filter(|s| s.name == format!("{family}_bucket"))
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value))
        .collect();
    assert!(
        buckets.len() > 1,
        "{family} {labels:?} has no buckets: {series:?}"
    );
    for pair in buckets.windows(2) {
        assert!(pair[0].0 < pair[1].0, "bounds out of order: {buckets:?}");
        assert!(
            pair[0].1 <= pair[1].1,
            "buckets not cumulative: {buckets:?}"
        );
    }
    let (last_bound, last) = *buckets.last().unwrap();
    assert_eq!(last_bound, f64::INFINITY);
    let count = series
        .iter()
        .find(|s| s.name == format!("{family}_count"))
        .expect("_count")
        .value;
    let sum = series
        .iter()
        .find(|s| s.name == format!("{family}_sum"))
        .expect("_sum")
        .value;
    assert_eq!(
        last, count,
        "{family} {labels:?}: +Inf bucket against _count"
    );
    assert!(
        count > 0.0 && sum > 0.0,
        "{family} {labels:?}: {count} {sum}"
    );
    count
}

#[tokio::test]
async fn requests_are_counted_by_endpoint_and_status_and_timed() {
    if !parser_available() {
        return;
    }
    let dir = TempDir::new("counts");
    let data = dir.0.join("data");
    let data_args = ["--data", data.to_str().unwrap()];
    let client = add_client(&data_args);
    let server = serve(&dir.0, &data_args);

    let before = scrape(server.metrics).await;
    let good = token(
        server.public,
        &client,
        "grant_type=client_credentials&scope=mail",
    )
    .await;
    assert_eq!(status(&good), 200, "{good}");
    let bad_grant = token(server.public, &client, "grant_type=password").await;
    assert_eq!(status(&bad_grant), 400, "{bad_grant}");
    let wrong = (client.0.clone(), "not the secret".to_owned());
    let bad_secret = token(server.public, &wrong, "grant_type=client_credentials").await;
    assert_eq!(status(&bad_secret), 401, "{bad_secret}");
    // The public listener has no /metrics: it is an unknown path there.
    let public = http(LOCAL, server.public, "GET /metrics HTTP/1.1", "").await;
    assert_eq!(status(&public), 404, "{public}");
    let after = scrape(server.metrics).await;

    // Exactly those four requests moved the counters.
    let (was, now) = (request_counts(&before), request_counts(&after));
    let mut moved: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (key, n) in &now {
        let delta = n - was.get(key).copied().unwrap_or(0.0);
        if delta != 0.0 {
            moved.insert(key.clone(), delta);
        }
    }
    let expected: BTreeMap<(String, String), f64> = [
        (("token", "200"), 1.0),
        (("token", "400"), 1.0),
        (("token", "401"), 1.0),
        (("unmatched", "404"), 1.0),
    ]
    .into_iter()
    .map(|((e, s), n)| ((e.to_owned(), s.to_owned()), n))
    .collect();
    assert_eq!(moved, expected);

    // The latency histogram counted the same requests.
    let count_before = value(
        &before,
        "oauth_http_request_duration_seconds_count",
        &[("endpoint", "token")],
    )
    .unwrap_or(0.0);
    let count = check_histogram(
        &after,
        "oauth_http_request_duration_seconds",
        ("endpoint", "token"),
    );
    assert_eq!(count - count_before, 3.0);
    assert_eq!(
        check_histogram(
            &after,
            "oauth_http_request_duration_seconds",
            ("endpoint", "unmatched")
        ),
        1.0
    );

    // The store was asked for the client (a client_credentials request reads it with its
    // grant's revocation status, one op), and timed.
    check_histogram(
        &after,
        "oauth_store_operation_duration_seconds",
        ("operation", "get_client_with_status"),
    );

    // Process basics; nothing of PostgreSQL's on the file store.
    let started = value(&after, "process_start_time_seconds", &[]).expect("start time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started <= now && now - started < 600.0, "{started} {now}");
    assert!(value(&after, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));
    assert!(value(&after, "process_open_fds", &[]).is_some_and(|n| n > 0.0));
    assert!(after
        .iter()
        .all(|s| !s.name.starts_with("oauth_postgres")
            && s.name != "oauth_revocation_view_age_seconds"));
}

#[tokio::test]
async fn only_allowed_peers_may_read_the_metrics() {
    let dir = TempDir::new("peers");
    let data = dir.0.join("data");
    let server = serve(&dir.0, &["--data", data.to_str().unwrap()]);

    // A peer outside the default metrics_allow (127.0.0.1 and ::1) is refused.
    let refused = http(STRANGER, server.metrics, "GET /metrics HTTP/1.1", "").await;
    assert_eq!(status(&refused), 403, "{refused}");
    assert!(!refused.contains("oauth_http"), "{refused}");
    // The allowed one reads them; other paths and methods are not served.
    let allowed = http(LOCAL, server.metrics, "GET /metrics HTTP/1.1", "").await;
    assert_eq!(status(&allowed), 200, "{allowed}");
    assert!(
        allowed.contains("# TYPE oauth_http_requests_total counter"),
        "{allowed}"
    );
    let other = http(LOCAL, server.metrics, "GET /token HTTP/1.1", "").await;
    assert_eq!(status(&other), 404, "{other}");
    let post = http(LOCAL, server.metrics, "POST /metrics HTTP/1.1", "").await;
    assert_eq!(status(&post), 405, "{post}");
}

#[tokio::test]
async fn a_bad_allow_list_is_refused_at_start() {
    let dir = TempDir::new("bad-allow");
    let config = dir.0.join("bad.toml");
    std::fs::write(
        &config,
        "[server]\nmetrics_listen = \"127.0.0.1:0\"\nmetrics_allow = [\"10.0.0.0/33\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--memory", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metrics_allow"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scrapes until `pred` holds for the revocation view's age, or panics after `within`.
async fn wait_for_lag(metrics: SocketAddr, within: Duration, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let samples = scrape(metrics).await;
        let lag = value(&samples, "oauth_revocation_view_age_seconds", &[])
            .expect("a PostgreSQL node reports its revocation lag");
        if pred(lag) {
            return lag;
        }
        assert!(
            Instant::now() < deadline,
            "the revocation lag stayed at {lag}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// Not a tokio test: the cluster's set-up runs its own runtime.
#[test]
fn a_postgres_node_reports_its_pool_batches_and_revocation_lag() {
    if !parser_available() {
        return;
    }
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(what) => {
            missing_component(&what);
            return;
        }
    };
    let url = cluster.create_database().expect("create a database");
    let data = cluster.dir().join("server-data");
    let args = ["--postgres", url.as_str(), "--data", data.to_str().unwrap()];
    let client = add_client(&args[..2]);
    let server = serve(cluster.dir(), &args);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let answer = token(server.public, &client, "grant_type=client_credentials").await;
        assert_eq!(status(&answer), 200, "{answer}");
        let samples = scrape(server.metrics).await;
        let gauge = |name: &str| {
            let s = samples
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(s.kind, "gauge", "{s:?}");
            s.value
        };
        let (max, size, available, waiting) = (
            gauge("oauth_postgres_pool_max_size"),
            gauge("oauth_postgres_pool_size"),
            gauge("oauth_postgres_pool_available"),
            gauge("oauth_postgres_pool_waiting"),
        );
        assert!(size >= 1.0 && size <= max, "size {size} of {max}");
        assert!(available <= size, "available {available} of {size}");
        assert_eq!(waiting, 0.0);
        check_histogram(
            &samples,
            "oauth_store_operation_duration_seconds",
            ("operation", "get_client_with_status"),
        );
        // The batches of refresh-token rotations, by kind: none rotated yet.
        for family in [
            "oauth_postgres_rotation_batches",
            "oauth_postgres_batched_rotations",
            "oauth_postgres_split_batches",
        ] {
            for kind in ["public", "confidential"] {
                let name = format!("{family}_total");
                assert_eq!(
                    value(&samples, &name, &[("kind", kind)]),
                    Some(0.0),
                    "{name} {kind}"
                );
                assert!(samples
                    .iter()
                    .filter(|s| s.family == family)
                    .all(|s| s.kind == "counter"));
            }
        }
        // Caught up within the bound (a catch-up every 500 ms).
        let lag = gauge("oauth_revocation_view_age_seconds");
        assert!((0.0..2.0).contains(&lag), "lag {lag}");

        // With the database down the view stops catching up, and its age grows; once it is back
        // the follower catches up again.
        cluster.stop_server().expect("stop PostgreSQL");
        wait_for_lag(server.metrics, Duration::from_secs(20), |lag| lag > 2.0).await;
        cluster.start_server().expect("start PostgreSQL");
        wait_for_lag(server.metrics, Duration::from_secs(30), |lag| lag < 1.5).await;
    });
}
