//! `oauth-server` on PostgreSQL, through the binary: `db migrate`, the administration commands
//! with `--postgres` (while a server runs on the same database), `serve --postgres` answering a
//! token request, and clear errors for a wrong password, a missing URL and a database of a newer
//! schema. The cluster is a throwaway one the test starts (`oauth_store_postgres::testing`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth_store_postgres::testing::{missing_component, sql, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

fn cluster() -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(what) => {
            missing_component(&what);
            None
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run oauth-server")
}

/// Starts `oauth-server serve` on the database at `url`, keys in `data`, on a free loopback
/// port; returns the process and the address it listens on.
fn serve(url: &str, data: &std::path::Path) -> (std::process::Child, String) {
    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--postgres",
            url,
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = line
            .trim()
            .strip_prefix("oauth-server listening on http://")
        {
            return (server, a.to_owned());
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    panic!("the server did not start");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn post_token(addr: &str, client_id: &str, secret: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let body = "grant_type=client_credentials";
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn migrate_administer_and_serve_on_postgres() {
    let Some(cluster) = cluster() else {
        return;
    };
    let url = cluster.create_database().expect("create a database");

    let out = run(&["db", "migrate", "--postgres", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let newest = oauth_store_postgres::supported_version();
    assert!(
        text(&out.stdout).contains(&format!(
            "migrated the database from schema version 0 to {newest}"
        )),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["db", "migrate", "--postgres", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("nothing to do"),
        "{}",
        text(&out.stdout)
    );

    let (mut server, addr) = serve(&url, &cluster.dir().join("server-data"));

    // An administration command on the same database while the server runs.
    let out = run(&[
        "client",
        "add",
        "--name",
        "Mail server",
        "--grant-type",
        "client_credentials",
        "--scope",
        "mail",
        "--postgres",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let added: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("client add prints JSON");
    let id = added["client_id"].as_str().expect("client_id");
    let secret = added["client_secret"].as_str().expect("client_secret");

    // The running server reads the client the command wrote.
    let answer = post_token(&addr, id, secret);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"access_token\""), "{answer}");

    let out = run(&["client", "list", "--postgres", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(id), "{}", text(&out.stdout));
    let out = run(&["user", "list", "--postgres", &url]);
    assert!(text(&out.stdout).contains("admin"), "{}", text(&out.stdout));

    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().expect("wait").success());
}

#[test]
fn bad_database_settings_are_clear_errors() {
    let Some(cluster) = cluster() else {
        return;
    };
    let url = cluster.create_database().expect("create a database");

    let wrong = url.replacen("oauth:", "oauth:wrong", 1);
    let out = run(&["db", "migrate", "--postgres", &wrong]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong"), "no password in the message: {err}");

    let out = run(&["db", "migrate"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no database to migrate"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["db", "migrate", "--postgres", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    sql(&url, "INSERT INTO schema_version (version) VALUES (1000)").expect("a newer release");
    for args in [
        &["db", "migrate", "--postgres", &url][..],
        &["user", "list", "--postgres", &url],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--postgres",
            &url,
            "--data",
            "/nonexistent",
        ],
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!(
                "schema version 1000, newer than version {}",
                oauth_store_postgres::supported_version()
            )),
            "{args:?}: {err}"
        );
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status line, the `Set-Cookie` value's
/// session id if any, and the body.
fn exchange(addr: &str, request: &str) -> (String, Option<String>, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    let cookie = head.lines().find_map(|l| {
        let v = l.strip_prefix("set-cookie: oauth_session=")?;
        Some(v.split(';').next()?.to_owned())
    });
    (status, cookie, body.to_owned())
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    page[start..].split('"').next().unwrap_or("").to_owned()
}

/// Opens the sign-in page of `client` and posts `password` for alice; the answer's status line
/// and body.
fn sign_in(addr: &str, client: &str, password: &str) -> (String, String) {
    let query = format!(
        "response_type=code&client_id={client}&redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcb\
         &scope=mail&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
         &code_challenge_method=S256"
    );
    let (status, cookie, page) = exchange(
        addr,
        &format!("GET /authorize?{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(status.contains(" 200 "), "{status}\n{page}");
    let cookie = cookie.expect("a session cookie");
    let form = format!(
        "csrf={}&page={}&username=alice&password={}",
        hidden(&page, "csrf"),
        hidden(&page, "page"),
        password.replace(' ', "+")
    );
    let (status, _, body) = exchange(
        addr,
        &format!(
            "POST /authorize HTTP/1.1\r\nHost: {addr}\r\nCookie: oauth_session={cookie}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    (status, body)
}

/// `oauth-server user unlock` beside a running server on PostgreSQL: an address that guessed
/// alice's password ten times is refused for her, even with the right one, until the
/// administrator unlocks her; then her right password works at once. (With the file store the
/// command says there is nothing to unlock: no server can run while it holds the store.)
#[test]
fn user_unlock_reaches_a_running_server() {
    let Some(cluster) = cluster() else {
        return;
    };
    let url = cluster.create_database().expect("create a database");
    let mut add = Command::new(BIN)
        .args([
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--postgres",
            &url,
        ])
        .stdin(Stdio::piped())
        .output_with_stdin(b"alice's long password\n");
    assert!(add.status.success(), "{}", text(&add.stderr));
    add = run(&[
        "client",
        "add",
        "--name",
        "Mail app",
        "--public",
        "--redirect-uri",
        "http://127.0.0.1:4711/cb",
        "--scope",
        "mail",
        "--postgres",
        &url,
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let added: serde_json::Value = serde_json::from_slice(&add.stdout).expect("JSON");
    let client = added["client_id"].as_str().expect("client_id").to_owned();

    let (mut server, addr) = serve(&url, &cluster.dir().join("unlock-data"));

    for i in 0..10 {
        let (status, _) = sign_in(&addr, &client, &format!("guess {i}"));
        assert!(status.contains(" 200 "), "guess {i}: {status}");
    }
    let (status, _) = sign_in(&addr, &client, "alice's long password");
    assert!(status.contains(" 429 "), "refused for alice now: {status}");

    let out = run(&["user", "unlock", "alice", "--postgres", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("told every running server"),
        "{}",
        text(&out.stdout)
    );
    let started = Instant::now();
    loop {
        let (status, body) = sign_in(&addr, &client, "alice's long password");
        if status.contains(" 200 ") && body.contains("name=\"decision\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still refused after the unlock: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().expect("wait").success());
}

/// Runs a command with `input` on its standard input.
trait OutputWithStdin {
    fn output_with_stdin(&mut self, input: &[u8]) -> Output;
}

impl OutputWithStdin for Command {
    fn output_with_stdin(&mut self, input: &[u8]) -> Output {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run oauth-server");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}
