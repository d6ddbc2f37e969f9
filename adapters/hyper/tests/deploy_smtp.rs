//! The deployment guide's sending side (`docs/deployment.md`): Dovecot's submission service and
//! Postfix through Dovecot SASL, each configured from the guide's snippets, authenticating SMTP
//! clients with our tokens (`XOAUTH2` and `OAUTHBEARER`) through the userinfo endpoint of the
//! in-process server.
//!
//! Dovecot (`dovecot -F -c`) and Postfix (its `master -d` with its own configuration and queue
//! directories) run as child processes on loopback ports, no system service. Without them, or
//! without root (their privilege separation needs it), each test says so and passes, and fails
//! under `CI=true` (`.ci/run` installs `dovecot-submissiond` and `postfix`).

mod common;
mod deploy;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use deploy::*;
use oauth_server::admin::clients::{self, NewClient};
use oauth_server::admin::users;

const EMAIL: &str = "alice@example.com";
/// Not a token the server issued.
const FORGED: &str = "forged.token.value";

/// The tokens every SMTP test uses, from a server whose userinfo Dovecot asks.
struct Tokens {
    mail: String,
    revoked: String,
    calendar_only: String,
}

async fn tokens(s: &TestServer) -> Tokens {
    let app = s.running.app().clone();
    users::set_email(&*app.store, USER, Some(EMAIL))
        .await
        .unwrap();
    let client = clients::add(
        &*app.store,
        &app.engine,
        &NewClient {
            name: "Mail client".to_owned(),
            redirect_uris: vec![REDIRECT.to_owned()],
            public: true,
            scope: Some("mail email calendar".to_owned()),
            ..Default::default()
        },
        now(),
    )
    .await
    .unwrap()
    .client_id;
    let mail = user_token(s, &client, "mail email").await;
    let revoked = user_token(s, &client, "mail email").await;
    let calendar_only = user_token(s, &client, "calendar").await;
    let r = s
        .post_form(
            "/revoke",
            None,
            &[("token", &revoked), ("client_id", &client)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Tokens {
        mail,
        revoked,
        calendar_only,
    }
}

/// Runs every case against the SMTP server on `port`, each from its own loopback address (Dovecot
/// delays an address's logins more after each failure); `logs` explains a failure.
async fn check_logins(
    port: u16,
    first_source: u8,
    cases: &[(&str, &str, &str, bool)],
    logs: impl Fn() -> String,
) {
    let mut source = first_source;
    for mechanism in ["XOAUTH2", "OAUTHBEARER"] {
        for (what, user, token, accepted) in cases {
            source += 1;
            let answer = smtp_auth(port, source, mechanism, user, token).await;
            // Dovecot 2.3 reports a token that userinfo refuses as a temporary failure (454),
            // and a login name that does not match as a failed authentication (535).
            let expected: &[&str] = if *accepted { &["235"] } else { &["535", "454"] };
            assert!(
                expected.iter().any(|code| answer.starts_with(code)),
                "{mechanism}, {what}: {answer}\n{}",
                logs()
            );
        }
    }
}

fn components_missing(what: &[(&str, &str)]) -> bool {
    for (program, package) in what {
        let there = if program.starts_with('/') {
            Path::new(program).exists()
        } else {
            installed(program, "--version")
        };
        if !there {
            missing_component(package);
            return true;
        }
    }
    if !is_root() {
        missing_component("root, which the SMTP deployment tests run Dovecot and Postfix as");
        return true;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn dovecot_submission_authenticates_senders_with_our_tokens() {
    if components_missing(&[
        ("dovecot", "Dovecot (Debian's dovecot-core)"),
        (
            "/usr/lib/dovecot/submission-login",
            "Dovecot's submission service (Debian's dovecot-submissiond)",
        ),
    ]) {
        return;
    }
    let s = TestServer::start().await;
    let t = tokens(&s).await;

    let dir = TempDir::new("submission");
    let port = free_port();
    // Nothing listens there: authentication must not depend on the relay.
    let relay_port = free_port();
    let submission = replace(
        &snippet("dovecot-submission.conf"),
        "submission_relay_port = 25",
        &format!("submission_relay_port = {relay_port}"),
    );
    let extra = format!(
        "{submission}
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {port}
  }}
}}"
    );
    let _dovecot = start_dovecot(&dir, &format!("{}/userinfo", s.base), &extra);
    let logs = || dovecot_logs(&dir);
    wait_for_port(port, "Dovecot submission", logs);

    check_logins(
        port,
        20,
        &[
            ("a user's mail token", EMAIL, &t.mail, true),
            ("a revoked token", EMAIL, &t.revoked, false),
            ("another user's token", "bob@example.com", &t.mail, false),
            ("a calendar-only token", EMAIL, &t.calendar_only, false),
            ("a forged token", EMAIL, FORGED, false),
        ],
        logs,
    )
    .await;
}

/// Postfix's main.cf and master.cf around the guide's snippet: its own directories, one `smtpd`
/// on 127.0.0.1:`port`, no chroot, the log in a file.
fn write_postfix_config(dir: &TempDir, port: u16) -> std::path::PathBuf {
    let d = dir.path().display();
    let etc = dir.path().join("postfix");
    std::fs::create_dir_all(&etc).unwrap();
    let (uid, gid) = system_user("postfix").expect("Debian's postfix user");
    // Postfix makes what is below its queue directory, not the directory itself.
    std::fs::create_dir_all(dir.path().join("queue")).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    let main = format!(
        "compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.example.test
mydestination =
mynetworks = 127.0.0.1/32
smtpd_peername_lookup = no
alias_maps =
alias_database =
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
{}",
        snippet("postfix-main.cf")
    );
    std::fs::write(etc.join("main.cf"), main).unwrap();
    let master = format!(
        "127.0.0.1:{port} inet n - n - - smtpd
anvil unix - - n - 1 anvil
proxymap unix - - n - - proxymap
postlog unix-dgram n - n - 1 postlogd
"
    );
    std::fs::write(etc.join("master.cf"), master).unwrap();
    etc
}

#[tokio::test(flavor = "multi_thread")]
async fn postfix_authenticates_senders_through_dovecot_sasl() {
    if components_missing(&[
        ("dovecot", "Dovecot (Debian's dovecot-core)"),
        ("/usr/sbin/postconf", "Postfix (Debian's postfix)"),
    ]) {
        return;
    }
    let s = TestServer::start().await;
    let t = tokens(&s).await;

    let dir = TempDir::new("postfix");
    let port = free_port();
    let etc = write_postfix_config(&dir, port);
    let logs = || {
        format!(
            "{}{}{}",
            dir.read("postfix.log"),
            dir.read("master.stderr"),
            dovecot_logs(&dir)
        )
    };
    // `postfix check` creates the queue directories with their owners and modes, among them
    // `private`, where Dovecot makes the auth socket: Dovecot starts first, since an smtpd that
    // finds no socket exits and Postfix then waits before starting another.
    let check = Command::new("postfix")
        .arg("-c")
        .arg(&etc)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "postfix check: {check:?}\n{}",
        logs()
    );
    let queue = dir.path().join("queue");
    let auth_socket = replace(
        &snippet("dovecot-postfix-auth.conf"),
        "/var/spool/postfix",
        queue.to_str().unwrap(),
    );
    let _dovecot = start_dovecot(&dir, &format!("{}/userinfo", s.base), &auth_socket);
    let socket = queue.join("private/auth");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "Dovecot made no auth socket: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let daemons = Command::new("postconf")
        .args(["-d", "-h", "daemon_directory"])
        .output()
        .unwrap();
    let daemons = String::from_utf8(daemons.stdout).unwrap();
    let _postfix = Running::spawn(
        Command::new(Path::new(daemons.trim()).join("master"))
            .arg("-c")
            .arg(&etc)
            .arg("-d"),
        &dir.path().join("master.stderr"),
    );
    wait_for_port(port, "Postfix", logs);

    check_logins(
        port,
        40,
        &[
            ("a user's mail token", EMAIL, &t.mail, true),
            ("a revoked token", EMAIL, &t.revoked, false),
            ("another user's token", "bob@example.com", &t.mail, false),
            ("a forged token", EMAIL, FORGED, false),
        ],
        logs,
    )
    .await;
}
