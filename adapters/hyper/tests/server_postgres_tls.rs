//! TLS to the database (issue 19): a throwaway cluster with `ssl = on` serving a certificate for
//! `localhost` and 127.0.0.1 that this test signs with a CA of its own
//! (`oauth_store_postgres::testing::Cluster::start_tls`).
//!
//! With `sslmode=require` and that CA the store connects, and every connection it holds (the
//! pool's, the revocation follower's, the failure exchange's) is encrypted in `pg_stat_ssl`;
//! without the CA, with another CA, or under a host name the certificate does not name, the
//! store does not open and says why; without `sslmode` the connection stays plain; a CA file
//! without `sslmode=require`, or one that holds no certificate, is a start-up error naming the
//! setting. Then `oauth-server serve` (`--postgres-ca-file`) and an administration command (the
//! configuration file's `[store] postgres_ca_file`) over TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth_store_postgres::testing::{missing_component, sql, Cluster};
use oauth_store_postgres::{OpenError, Options, PostgresStore};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

/// A CA and a server certificate it signed, PEM.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
}

fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "oauth test database CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params
}

/// A CA and a certificate for `localhost` and 127.0.0.1 signed by it.
fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params(), ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let server = params.signed_by(&server_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
    }
}

/// Another CA of the same name, which signed nothing the cluster serves.
fn other_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertifiedIssuer::self_signed(ca_params(), key)
        .unwrap()
        .pem()
}

/// The cluster with TLS, its database `tls`, and the CA's file; `None` when PostgreSQL is
/// missing (which fails under CI=true).
fn cluster() -> Option<(Cluster, PathBuf)> {
    let pki = pki();
    let cluster = match Cluster::start_tls(&pki.server_cert, &pki.server_key) {
        Ok(c) => c,
        Err(what) => {
            missing_component(&what);
            return None;
        }
    };
    sql(&cluster.url("postgres"), "CREATE DATABASE tls").expect("create the database");
    let ca_file = cluster.dir().join("client-ca.pem");
    std::fs::write(&ca_file, pki.ca).unwrap();
    Some((cluster, ca_file))
}

fn options(ca_file: Option<&Path>) -> Options {
    Options {
        ca_file: ca_file.map(Path::to_owned),
        connect_timeout: Duration::from_secs(3),
        ..Options::default()
    }
}

/// The error opening the store gives (it must not open).
fn refused(url: &str, ca_file: Option<&Path>) -> OpenError {
    match PostgresStore::connect_blocking(url, options(ca_file)) {
        Ok(_) => panic!("the store opened on {url}"),
        Err(e) => e,
    }
}

/// `(connections, encrypted ones)` of the store's sessions on the database `tls`, as the server
/// sees them (read over the unix socket, which is not the store's).
fn sessions(cluster: &Cluster) -> (u32, u32) {
    let row = sql(
        &cluster.url("postgres"),
        "SELECT count(*) || ',' || count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = 'tls' \
         AND a.application_name LIKE 'oauth-server%'",
    )
    .unwrap()
    .unwrap();
    let (all, encrypted) = row.split_once(',').unwrap();
    (all.parse().unwrap(), encrypted.parse().unwrap())
}

/// Waits (bounded) until the store's sessions named `application_name` show up.
fn wait_for_session(cluster: &Cluster, application_name: &str) {
    let statement = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tls' \
         AND application_name = '{application_name}'"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sql(&cluster.url("postgres"), &statement)
        .unwrap()
        .as_deref()
        != Some("1")
    {
        assert!(
            Instant::now() < deadline,
            "no session {application_name} appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until the store's sessions of a dropped store have ended.
fn wait_until_gone(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions(cluster).0 != 0 {
        assert!(
            Instant::now() < deadline,
            "the store's sessions did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_store_connects_over_verified_tls_only() {
    let Some((cluster, ca_file)) = cluster() else {
        return;
    };
    let tls_url = format!("{}&sslmode=require", cluster.tcp_url("tls"));

    // With the CA: every connection is encrypted.
    let store = PostgresStore::connect_blocking(&tls_url, options(Some(&ca_file)))
        .expect("the store opens over TLS");
    assert_eq!(store.count_records_blocking().unwrap(), 0);
    let exchange = store.exchange_failures(std::sync::Arc::new(|_: &str| {}));
    assert!(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(exchange.listening(Duration::from_secs(10))));
    wait_for_session(&cluster, "oauth-server revocations");
    let (all, encrypted) = sessions(&cluster);
    // The pool's connection, the follower's and the failure exchange's at least.
    assert!(all >= 3, "{all} sessions");
    assert_eq!(encrypted, all, "every session of the store uses TLS");
    drop(exchange);
    drop(store);
    wait_until_gone(&cluster);

    // Mozilla's roots alone do not know the test's CA.
    let e = refused(&tls_url, None).to_string();
    assert!(e.contains("certificate"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");

    // Another CA of the same name does not vouch for the server's certificate.
    let other = cluster.dir().join("other-ca.pem");
    std::fs::write(&other, other_ca()).unwrap();
    let e = refused(&tls_url, Some(&other)).to_string();
    assert!(e.contains("invalid peer certificate: BadSignature"), "{e}");

    // The right CA, but a host name the certificate does not name.
    let wrong_name = tls_url.replacen("@localhost:", "@db.example.com:", 1);
    let e = refused(&wrong_name, Some(&ca_file)).to_string();
    assert!(
        e.contains("certificate not valid for name \"db.example.com\""),
        "{e}"
    );

    // No sslmode: plain, as before, even though the server offers TLS.
    let plain = PostgresStore::connect_blocking(&cluster.tcp_url("tls"), options(None))
        .expect("the store opens without TLS");
    wait_for_session(&cluster, "oauth-server revocations");
    let (all, encrypted) = sessions(&cluster);
    assert!(all >= 2, "{all} sessions");
    assert_eq!(encrypted, 0, "no session uses TLS without sslmode=require");
    drop(plain);
    let disabled = format!("{}&sslmode=disable", cluster.tcp_url("tls"));
    let plain = PostgresStore::connect_blocking(&disabled, options(None))
        .expect("sslmode=disable is accepted");
    drop(plain);

    // A CA file without sslmode=require would leave the connection plain: refused.
    let e = refused(&cluster.tcp_url("tls"), Some(&ca_file));
    assert!(matches!(e, OpenError::Tls(_)), "{e}");
    assert!(e.to_string().contains("sslmode=require"), "{e}");

    // A CA file that is missing, or holds no certificate.
    let missing = cluster.dir().join("no-such-ca.pem");
    let e = refused(&tls_url, Some(&missing));
    assert!(matches!(e, OpenError::Tls(_)), "{e}");
    assert!(e.to_string().contains("no-such-ca.pem"), "{e}");
    let empty = cluster.dir().join("empty-ca.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = refused(&tls_url, Some(&empty));
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends `request` to `addr` and returns the whole answer.
fn exchange(addr: &str, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The server process, killed when the test ends however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_server_runs_on_a_database_over_tls() {
    let Some((cluster, ca_file)) = cluster() else {
        return;
    };
    let url = format!("{}&sslmode=require", cluster.tcp_url("tls"));
    let ca = ca_file.to_str().unwrap();

    // A CA file that holds no certificate stops the start with the setting named.
    let empty = cluster.dir().join("empty-ca.pem");
    std::fs::write(&empty, "").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--postgres", &url])
        .arg("--postgres-ca-file")
        .arg(&empty)
        .arg("--data")
        .arg(cluster.dir().join("bad-data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("postgres_ca_file"), "{err}");
    assert!(err.contains("holds no PEM certificate"), "{err}");

    // An administration command over TLS, the database and the CA named in the configuration
    // file's [store] table.
    let config = cluster.dir().join("oauth.toml");
    std::fs::write(
        &config,
        format!("[store]\npostgres = \"{url}\"\npostgres_ca_file = \"{ca}\"\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "client",
            "add",
            "--name",
            "Mail server",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mail",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = added["client_id"].as_str().unwrap();
    let secret = added["client_secret"].as_str().unwrap();

    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--postgres", &url])
        .args(["--postgres-ca-file", ca, "--data"])
        .arg(cluster.dir().join("server-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut addr = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while addr.is_none() && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        addr = line
            .trim()
            .strip_prefix("oauth-server listening on http://")
            .map(str::to_owned);
    }
    let addr = addr.expect("the server started");

    let discovery = exchange(
        &addr,
        &format!(
            "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: {addr}\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert!(discovery.starts_with("HTTP/1.1 200"), "{discovery}");
    assert!(discovery.contains("\"token_endpoint\""), "{discovery}");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = "grant_type=client_credentials";
    let token = exchange(
        &addr,
        &format!(
            "POST /token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(token.starts_with("HTTP/1.1 200"), "{token}");
    assert!(token.contains("\"access_token\""), "{token}");

    // The server's sessions are encrypted too.
    let (all, encrypted) = sessions(&cluster);
    assert!(all >= 2, "{all} sessions");
    assert_eq!(encrypted, all, "every session of the server uses TLS");
    drop(server);
}
