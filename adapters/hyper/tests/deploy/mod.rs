//! What the deployment guide's tests (`tests/deploy_*.rs`) share: reading a snippet from
//! `docs/deployment.md`, a temporary directory and a child process that are cleaned up even when
//! the test fails, loopback ports, Debian's Dovecot started as a child, user tokens from the
//! in-process server, and a raw SMTP `AUTH` client.
//!
//! Every component runs as a child process of the test, on loopback, with its own configuration
//! and directories: no system service is touched.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{enc, TestServer, CHALLENGE, REDIRECT, VERIFIER};

pub const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deployment.md");

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code block between `<!-- snippet: NAME -->` and `<!-- end snippet -->` in the guide.
pub fn snippet(name: &str) -> String {
    let guide = std::fs::read_to_string(GUIDE).unwrap();
    let start = guide
        .find(&format!("<!-- snippet: {name} -->"))
        .unwrap_or_else(|| panic!("the guide has no snippet {name}"));
    let rest = &guide[start..];
    let end = rest.find("<!-- end snippet -->").expect("snippet end");
    let block = &rest[..end];
    let open = block.find("```").expect("a code block");
    let open = open + block[open..].find('\n').expect("a code block line") + 1;
    let close = block[open..].find("```").expect("a closed code block") + open;
    block[open..close].to_owned()
}

/// Replaces `from` in `text`, which must contain it: a guide edit cannot make a substitution
/// silently do nothing.
pub fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the snippet no longer contains {from}");
    text.replace(from, to)
}

/// Whether the test runs as root (Dovecot's and Postfix's privilege separation need it here).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0)
}

/// Whether `program` can be started (with `version_arg`, whatever it then answers).
pub fn installed(program: &str, version_arg: &str) -> bool {
    Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The uid and gid of a system user, from `/etc/passwd`.
pub fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0] != name {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

/// A directory of its own under the system's temporary directory (mode 0755, so that the
/// components' unprivileged processes reach below it), removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "oauth-deploy-{what}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The text of a file below the directory, empty if there is none.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`; `logs` explains a failure.
pub fn wait_for_port(port: u16, what: &str, logs: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process that gets SIGTERM (by its id) when dropped, then SIGKILL if it has not exited
/// within 10 s. It leads a process group of its own, as the masters started this way expect:
/// on SIGTERM they stop their children by signalling their group.
pub struct Running(pub Child);

impl Running {
    pub fn spawn(command: &mut Command, stderr: &Path) -> Running {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(stderr.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        Running(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's Dovecot with the guide's passdb snippets (pointed at `userinfo`) and `extra`
/// configuration, in `dir`, no protocol listening unless `extra` opens one. The base
/// directory, state, log and mail storage are below `dir`.
pub fn start_dovecot(dir: &TempDir, userinfo: &str, extra: &str) -> Running {
    start_dovecot_imap(dir, userinfo, 0, extra)
}

/// [`start_dovecot`] with IMAP (no TLS) on 127.0.0.1:`imap_port` (none if 0).
pub fn start_dovecot_imap(dir: &TempDir, userinfo: &str, imap_port: u16, extra: &str) -> Running {
    let (uid, gid) = system_user("dovecot").expect("Debian's dovecot user");
    assert!(system_user("dovenull").is_some(), "Debian's dovenull user");
    let d = dir.path().display();
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::os::unix::fs::chown(&mail, Some(uid), Some(gid)).unwrap();
    let ext = dir.path().join("dovecot-oauth2.conf.ext");
    let oauth2 = replace(
        &snippet("dovecot-oauth2.conf.ext"),
        "https://auth.example.com/userinfo",
        userinfo,
    );
    std::fs::write(&ext, oauth2).unwrap();
    let passdb = replace(
        &snippet("dovecot.conf"),
        "/etc/dovecot/dovecot-oauth2.conf.ext",
        ext.to_str().unwrap(),
    );
    // The test's own surroundings: directories, loopback only, no TLS, the mail storage.
    let conf = format!(
        "base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {uid}
mail_location = maildir:{d}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
{passdb}
{extra}"
    );
    let conf_path = dir.path().join("dovecot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    Running::spawn(
        Command::new("dovecot").arg("-F").arg("-c").arg(&conf_path),
        &dir.path().join("dovecot.stderr"),
    )
}

/// Dovecot's logs in `dir`, for failure messages.
pub fn dovecot_logs(dir: &TempDir) -> String {
    format!("{}{}", dir.read("dovecot.stderr"), dir.read("dovecot.log"))
}

/// Signs alice in, approves `scope` for `client_id`, and exchanges the code: the access token.
pub async fn user_token(s: &TestServer, client_id: &str, scope: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&state=dp&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(REDIRECT),
        enc(scope)
    );
    let (cookie, consent) = s.sign_in_with(&query).await;
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    let code = r.location_param("code").expect("a code");
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// The SASL initial response of `mechanism` (`XOAUTH2` or `OAUTHBEARER`, RFC 7628) for `user`
/// with `token`, base64.
pub fn sasl_response(mechanism: &str, user: &str, token: &str, port: u16) -> String {
    let message = match mechanism {
        "XOAUTH2" => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        _ => format!("n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01"),
    };
    base64::engine::general_purpose::STANDARD.encode(message)
}

/// One SMTP session to 127.0.0.1:`port` from the loopback address 127.0.0.`source`: `EHLO`, then
/// `AUTH mechanism` with an initial response; the final reply (its last line). The EHLO answer
/// must offer the mechanism. An error challenge (334, RFC 7628 §3.2.2) is answered with an empty
/// response, as the client must, and the server's final reply is returned.
pub async fn smtp_auth(port: u16, source: u8, mechanism: &str, user: &str, token: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
        .unwrap();
    let stream = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    // A reply: its lines up to the one whose code is followed by a space.
    let mut reply = async || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line))
                .await
                .expect("the SMTP server answers within 30 s")
                .unwrap();
            assert!(n > 0, "the SMTP server closed the connection after {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    };
    let greeting = reply().await;
    assert!(greeting.starts_with("220"), "greeting: {greeting}");
    writer.write_all(b"EHLO client.test\r\n").await.unwrap();
    let ehlo = reply().await;
    let offered = ehlo
        .lines()
        .find_map(|l| l.get(4..)?.strip_prefix("AUTH "))
        .unwrap_or_else(|| panic!("no AUTH in the EHLO answer: {ehlo}"));
    assert!(
        offered
            .split(' ')
            .any(|m| m.eq_ignore_ascii_case(mechanism)),
        "AUTH {offered} does not offer {mechanism}"
    );
    let ir = sasl_response(mechanism, user, token, port);
    writer
        .write_all(format!("AUTH {mechanism} {ir}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = reply().await;
    if answer.starts_with("334") {
        writer.write_all(b"\r\n").await.unwrap();
        answer = reply().await;
    }
    let _ = writer.write_all(b"QUIT\r\n").await;
    answer.lines().last().unwrap_or_default().to_owned()
}
