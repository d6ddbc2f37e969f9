//! The deployment guide's reverse proxy (`docs/deployment.md`): Debian's nginx ends TLS in front
//! of the `oauth-server` binary, both configured from the guide's snippets (`oauth-server.toml`
//! and `nginx-site.conf`, with only addresses, ports and file paths replaced).
//!
//! The test makes a self-signed certificate for `auth.example.com` with the `openssl` command,
//! runs nginx (`nginx -p DIR -c CONF -g 'daemon off;'`) and the server as child processes on
//! loopback, and talks to them with curl, which resolves `auth.example.com` to the proxy and
//! checks the certificate, from chosen loopback source addresses. Without nginx, openssl or curl
//! the test says so and passes, and fails under `CI=true` (`.ci/run` installs them).

mod common;
mod deploy;

use std::process::Command;

use common::{enc, missing_component, CHALLENGE};
use deploy::*;

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
const HOST: &str = "auth.example.com";

/// One request with curl from the loopback address `source`; the status and the body.
fn curl(source: &str, url: &str, extra: &[&str], cacert: &std::path::Path) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--interface", source, "--cacert"])
        .arg(cacert)
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.trim().parse().expect("a status"), body.to_owned())
}

#[test]
fn nginx_ends_tls_and_the_server_limits_each_client_behind_it() {
    for (program, what) in [
        ("nginx", "nginx (Debian's nginx)"),
        ("openssl", "the openssl command (Debian's openssl)"),
        ("curl", "curl (Debian's curl)"),
    ] {
        if !installed(program, "-v") && !installed(program, "version") {
            return missing_component(what);
        }
    }
    let dir = TempDir::new("nginx");
    let d = dir.path().display();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "openssl: {made:?}");

    // The server, from the guide's configuration, with the limiter tightened for the test.
    let (proxy_port, server_port) = (free_port(), free_port());
    let issuer = format!("https://{HOST}:{proxy_port}");
    let config = replace(
        &replace(
            &snippet("oauth-server.toml"),
            "https://auth.example.com",
            &issuer,
        ),
        "127.0.0.1:8080",
        &format!("127.0.0.1:{server_port}"),
    );
    let config = format!(
        "{config}
[throttle]
address_free_failures = 2
address_max_failures = 5
base_delay_ms = 5
max_delay_ms = 20
"
    );
    std::fs::write(dir.path().join("oauth-server.toml"), config).unwrap();
    let _server = Running::spawn(
        Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("oauth-server.toml"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn"),
        &dir.path().join("server.stderr"),
    );
    wait_for_port(server_port, "oauth-server", || dir.read("server.stderr"));

    // nginx, with the guide's site inside the test's own surroundings.
    let site = [
        (
            "listen 443 ssl;",
            format!("listen 127.0.0.1:{proxy_port} ssl;"),
        ),
        (
            "/etc/ssl/certs/auth.example.com.pem",
            format!("{d}/cert.pem"),
        ),
        (
            "/etc/ssl/private/auth.example.com.key",
            format!("{d}/key.pem"),
        ),
        (
            "proxy_pass http://127.0.0.1:8080;",
            format!("proxy_pass http://127.0.0.1:{server_port};"),
        ),
    ]
    .iter()
    .fold(snippet("nginx-site.conf"), |text, (from, to)| {
        replace(&text, from, to)
    });
    let conf = format!(
        "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{
  worker_connections 64;
}}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{site}
}}
"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let _nginx = Running::spawn(
        Command::new("nginx")
            .arg("-p")
            .arg(format!("{d}/"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"]),
        &dir.path().join("nginx.stderr"),
    );
    let logs = || {
        format!(
            "{}{}{}",
            dir.read("nginx.stderr"),
            dir.read("error.log"),
            dir.read("server.stderr")
        )
    };
    wait_for_port(proxy_port, "nginx", logs);

    let resolve = format!("{HOST}:{proxy_port}:127.0.0.1");
    let via_proxy = |source: &str, path: &str, extra: &[&str]| {
        let mut args = vec!["--resolve", resolve.as_str()];
        args.extend_from_slice(extra);
        curl(source, &format!("{issuer}{path}"), &args, &cert)
    };

    // Discovery through the proxy: the https issuer, and every endpoint under it.
    let (status, body) = via_proxy("127.0.0.1", "/.well-known/oauth-authorization-server", &[]);
    assert_eq!(status, 200, "{body}\n{}", logs());
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["issuer"], issuer.as_str());
    for endpoint in ["authorization_endpoint", "token_endpoint"] {
        let url = metadata[endpoint].as_str().unwrap();
        assert!(url.starts_with(&format!("{issuer}/")), "{endpoint}: {url}");
    }

    // A mail client registers itself through the proxy; its sign-in page's cookie is `Secure`,
    // since the issuer is https although the server itself is reached over plain HTTP.
    let (status, body) = via_proxy(
        "127.0.0.1",
        "/register",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-raw",
            r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","application_type":"native","scope":"mail"}"#,
        ],
    );
    assert_eq!(status, 201, "{body}\n{}", logs());
    let registered: serde_json::Value = serde_json::from_str(&body).unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let headers = dir.path().join("authorize.headers");
    let (status, body) = via_proxy(
        "127.0.0.1",
        &format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&state=s&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(client_id),
            enc("http://127.0.0.1/cb")
        ),
        &["-D", headers.to_str().unwrap()],
    );
    assert_eq!(status, 200, "{body}");
    let headers = std::fs::read_to_string(&headers).unwrap();
    let cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {headers}"));
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Failed guesses (a refresh token for a client that does not exist) through the proxy.
    let guess = [
        "--data-raw",
        "grant_type=refresh_token&refresh_token=bogus&client_id=nobody",
    ];
    let statuses: Vec<u16> = (0..6)
        .map(|_| via_proxy("127.0.0.2", "/token", &guess).0)
        .collect();
    assert_eq!(
        statuses.last(),
        Some(&429),
        "127.0.0.2 is refused after its guesses: {statuses:?}\n{}",
        logs()
    );
    assert!(statuses[..5].iter().all(|s| *s != 429), "{statuses:?}");
    let forged_xff = [&guess[..], &["-H", "X-Forwarded-For: 198.51.100.7"][..]].concat();
    assert_eq!(
        via_proxy("127.0.0.2", "/token", &forged_xff).0,
        429,
        "a client's own X-Forwarded-For through the proxy does not make it someone else"
    );
    let forged = [&guess[..], &["-H", "Forwarded: for=198.51.100.7"][..]].concat();
    assert_eq!(
        via_proxy("127.0.0.2", "/token", &forged).0,
        429,
        "a client's own Forwarded header through the proxy does not make it someone else"
    );
    let (status, body) = via_proxy("127.0.0.1", "/token", &guess);
    assert_ne!(
        status, 429,
        "127.0.0.1 through the same proxy is served: {body}"
    );

    // A peer that is not the proxy is itself, whatever it says it forwards for.
    let direct = format!("http://127.0.0.1:{server_port}/token");
    let (status, body) = curl(
        "127.0.0.3",
        &direct,
        &[&guess[..], &["-H", "X-Forwarded-For: 127.0.0.2"][..]].concat(),
        &cert,
    );
    assert_ne!(status, 429, "127.0.0.3 is not 127.0.0.2: {body}");
    let (status, _) = curl(
        "127.0.0.2",
        &direct,
        &[&guess[..], &["-H", "X-Forwarded-For: 198.51.100.7"][..]].concat(),
        &cert,
    );
    assert_eq!(
        status, 429,
        "127.0.0.2 stays refused when it connects directly"
    );
}
