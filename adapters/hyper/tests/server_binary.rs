//! The real binary: start-up output, serving, SIGTERM, `--help`, and the admin commands' errors.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod binary;

use binary::{serve, stop, BIN};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("oauth-server-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_prints_where_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited early: {printed:?}"
        );
        printed.push(line.clone());
        if let Some(a) = line
            .trim()
            .strip_prefix("oauth-server listening on http://")
        {
            break a.to_owned();
        }
        assert!(Instant::now() < deadline);
    };
    let text = printed.concat();
    assert!(text.contains("created user admin with password "), "{text}");
    let mut rest = String::new();
    let mut line = String::new();
    for _ in 0..2 {
        line.clear();
        stdout.read_line(&mut line).unwrap();
        rest.push_str(&line);
    }
    assert!(
        rest.contains("/.well-known/oauth-authorization-server"),
        "{rest}"
    );

    // The key file was created, private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("token-keys.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let r = http_get(&addr, "/healthz");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = http_get(
        &addr,
        "/authorize?client_id=x&code=SECRETCODE&response_type=code",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("path=/healthz") && logs.contains("status=200"),
        "{logs}"
    );
    assert!(
        !logs.contains("SECRETCODE"),
        "no query strings in logs: {logs}"
    );
    assert!(!logs.contains(
        text.split("password ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    ));
    assert!(logs.contains("store flushed"), "{logs}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["user", "--help"],
        &["user", "add", "--help"],
        &["user", "passwd", "--help"],
        &["user", "del", "--help"],
        &["user", "list", "--help"],
        &["client", "--help"],
        &["client", "add", "--help"],
        &["client", "list", "--help"],
        &["client", "del", "--help"],
        &["key", "rotate", "--help"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

fn run(args: &[&str], dir: &std::path::Path, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_commands_persist_and_refuse_a_directory_a_server_holds() {
    let dir = temp_dir("admin");
    let out = run(
        &["user", "add", "bob", "--password-stdin"],
        &dir,
        "bob's long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &[
            "client",
            "add",
            "--name",
            "Mail App",
            "--redirect-uri",
            "https://app.example.com/cb",
        ],
        &dir,
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    assert!(client["client_secret"].as_str().unwrap().len() >= 43);
    let out = run(&["user", "list"], &dir, "");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("bob\t"));

    // A server holds the directory: administration is refused with a clear error, and the server
    // does not create an admin user because one already exists.
    let served = serve(&dir);
    let printed = &served.printed;
    assert!(!printed.contains("created user admin"), "{printed}");
    let out = run(&["client", "list"], &dir, "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the store"), "{err}");
    stop(served.child);

    // After the server stopped, everything is still there.
    let out = run(&["client", "list"], &dir, "");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&client_id));
    let out = run(&["user", "del", "bob"], &dir, "");
    assert!(out.status.success());
    let out = run(&["user", "list"], &dir, "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    let _ = std::fs::remove_dir_all(&dir);
}
