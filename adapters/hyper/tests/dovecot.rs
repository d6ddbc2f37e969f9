//! Debian's Dovecot 2.3, configured from `docs/deployment.md`, validates our tokens through the
//! userinfo endpoint with its defaults (`introspection_mode = auth`, `username_attribute = email`).
//!
//! The test starts Dovecot as a child process (`dovecot -F -c`) with its own configuration, base
//! directory and loopback port, no system service; the passdb part of the configuration is the
//! guide's snippet, read from the guide, with only the issuer URL and the file path replaced. It
//! then logs in over IMAP with `XOAUTH2` and `OAUTHBEARER` (a raw socket client, SASL-IR) using
//! tokens from the in-process server: a user's mail token succeeds; revoked, expired, another
//! user's, calendar and `client_credentials` tokens are refused. Without Dovecot (or without root,
//! which Dovecot's privilege separation needs here) the test says so and passes, and fails under
//! `CI=true` (`.ci/run` installs `dovecot-imapd`).

mod common;

use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use oauth_proto::access_token::{self, AccessClaims};
use oauth_proto::store::NothingRevoked;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::users;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const EMAIL: &str = "alice@example.com";
const GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deployment.md");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code block between `<!-- snippet: NAME -->` and `<!-- end snippet -->` in the guide.
fn snippet(guide: &str, name: &str) -> String {
    let start = guide
        .find(&format!("<!-- snippet: {name} -->"))
        .unwrap_or_else(|| panic!("the guide has no snippet {name}"));
    let rest = &guide[start..];
    let end = rest.find("<!-- end snippet -->").expect("snippet end");
    let block = &rest[..end];
    let open = block.find("```\n").expect("a code block") + 4;
    let close = block[open..].find("```").expect("a closed code block") + open;
    block[open..close].to_owned()
}

/// Replaces `from` in `text`, which must contain it: a guide edit cannot make a substitution
/// silently do nothing.
fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the snippet no longer contains {from}");
    text.replace(from, to)
}

/// The uid and gid of a system user, from `/etc/passwd`.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0] != name {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

/// A running Dovecot; stopped (SIGTERM to its master, which stops its children) when dropped.
struct Dovecot {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Dovecot {
    fn start(userinfo: &str) -> Dovecot {
        let (uid, gid) = system_user("dovecot").expect("Debian's dovecot user");
        assert!(system_user("dovenull").is_some(), "Debian's dovenull user");
        let dir = std::env::temp_dir().join(format!(
            "oauth-dovecot-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mail = dir.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        // Dovecot's unprivileged processes must reach their sockets below the base directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&mail, Some(uid), Some(gid)).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };

        let guide = std::fs::read_to_string(GUIDE).unwrap();
        let ext = dir.join("dovecot-oauth2.conf.ext");
        let oauth2 = replace(
            &snippet(&guide, "dovecot-oauth2.conf.ext"),
            "https://auth.example.com/userinfo",
            userinfo,
        );
        std::fs::write(&ext, oauth2).unwrap();
        let passdb = replace(
            &snippet(&guide, "dovecot.conf"),
            "/etc/dovecot/dovecot-oauth2.conf.ext",
            ext.to_str().unwrap(),
        );
        let d = dir.display();
        // The test's own surroundings: directories, loopback port, no TLS, the mail storage.
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
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
{passdb}"
        );
        let conf_path = dir.join("dovecot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("dovecot starts");
        let dovecot = Dovecot { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Dovecot did not listen: {}",
                dovecot.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("stderr"), read("dovecot.log"))
    }

    /// One IMAP `AUTHENTICATE` with an initial response (SASL-IR), from the loopback address
    /// `source`; the tagged answer line. Each login comes from its own address: Dovecot delays
    /// an address's logins more after each failure (its auth penalty, up to 15 s).
    async fn login(&self, source: u8, mechanism: &str, user: &str, token: &str) -> String {
        let message = match mechanism {
            "XOAUTH2" => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            _ => format!(
                "n,a={user},\x01host=127.0.0.1\x01port={}\x01auth=Bearer {token}\x01\x01",
                self.port
            ),
        };
        let ir = base64::engine::general_purpose::STANDARD.encode(message);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))
            .unwrap();
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)))
            .await
            .unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        let mut next_line = async |line: &mut String| {
            line.clear();
            tokio::time::timeout(Duration::from_secs(30), reader.read_line(line))
                .await
                .expect("Dovecot answers within 30 s")
                .unwrap()
        };
        next_line(&mut line).await;
        assert!(line.starts_with("* OK"), "greeting: {line}");
        writer
            .write_all(format!("a1 AUTHENTICATE {mechanism} {ir}\r\n").as_bytes())
            .await
            .unwrap();
        loop {
            let n = next_line(&mut line).await;
            assert!(n > 0, "Dovecot closed the connection: {}", self.logs());
            if line.starts_with('+') {
                // An error challenge (RFC 7628 §3.2.2): the client ends the exchange with an
                // empty response, and the server answers NO.
                writer.write_all(b"\r\n").await.unwrap();
            } else if line.starts_with("a1 ") {
                return line.trim_end().to_owned();
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM to the master (our child, by its id): it stops its own children.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Signs alice in, approves `scope` for `client_id`, and exchanges the code: the access token.
async fn user_token(s: &TestServer, client_id: &str, scope: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client_id}&redirect_uri={}&state=dv&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
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

#[tokio::test(flavor = "multi_thread")]
async fn dovecot_logs_in_with_our_tokens_through_userinfo_with_its_defaults() {
    if Command::new("dovecot").arg("--version").output().is_err() {
        return missing_component("Dovecot (Debian's dovecot-imapd)");
    }
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return missing_component("root, which the Dovecot test runs Dovecot as");
    }
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    users::set_email(&*app.store, USER, Some(EMAIL))
        .await
        .unwrap();
    let mail_client = clients::add(
        &*app.store,
        &app.engine,
        &NewClient {
            name: "Mail client".to_owned(),
            redirect_uris: vec![REDIRECT.to_owned()],
            public: true,
            scope: Some(format!("mail email calendar {}", oauth_proto::scope::MAIL)),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
    .client_id;

    let mail = user_token(&s, &mail_client, "mail email").await;
    let urn_mail = user_token(
        &s,
        &mail_client,
        &format!("{} email", oauth_proto::scope::MAIL),
    )
    .await;
    let revoked = user_token(&s, &mail_client, "mail email").await;
    let calendar = user_token(&s, &mail_client, "calendar email").await;
    let calendar_only = user_token(&s, &mail_client, "calendar").await;
    let r = s
        .token(
            &[("grant_type", "client_credentials"), ("scope", "mail")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let service = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = s
        .post_form(
            "/revoke",
            None,
            &[("token", &revoked), ("client_id", &mail_client)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Signed with the server's own key, for alice's real grant, but past its expiry.
    let expired = {
        let keys = app.engine.keys();
        let c = access_token::validate(&keys, &mail, now(), &NothingRevoked).unwrap();
        access_token::issue(
            &keys,
            &AccessClaims {
                issued_at: now() - 3600,
                expires_at: now() - 60,
                ..c
            },
        )
        .unwrap()
    };

    let dovecot = Dovecot::start(&format!("{}/userinfo", s.base));
    let mut source = 10;
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        for (what, user, token) in [
            ("a user's mail token", EMAIL, &mail),
            ("a user's token with the URN mail scope", EMAIL, &urn_mail),
        ] {
            source += 1;
            let answer = dovecot.login(source, mechanism, user, token).await;
            assert!(
                answer.starts_with("a1 OK"),
                "{mechanism}, {what}: {answer}\n{}",
                dovecot.logs()
            );
        }
        for (what, user, token) in [
            ("a revoked token", EMAIL, &revoked),
            ("an expired token", EMAIL, &expired),
            ("another user's token", "bob@example.com", &mail),
            ("a calendar token", EMAIL, &calendar),
            ("a calendar-only token", EMAIL, &calendar_only),
            ("a client_credentials token", EMAIL, &service),
            (
                "a client_credentials token as its client",
                &s.service_id,
                &service,
            ),
        ] {
            source += 1;
            let answer = dovecot.login(source, mechanism, user, token).await;
            assert!(
                answer.starts_with("a1 NO"),
                "{mechanism}, {what}: {answer}\n{}",
                dovecot.logs()
            );
        }
    }
}
