//! End to end as a Thunderbird-style mail client (draft-ietf-mailmaint-oauth-public): a native
//! public client registers itself with the mail URN scope and a port-less loopback redirect,
//! signs the person in on an ephemeral loopback port of its own (RFC 8252 §7.3), exchanges the
//! code with PKCE, logs in over IMAP to the server's auth-only IMAP listener with that token
//! through Python's `imaplib` (a client nobody here wrote, speaking the `AUTHENTICATE`
//! continuation without SASL-IR), with `XOAUTH2` and with `OAUTHBEARER`, refreshes, and logs in
//! again with the refreshed token. A `http://localhost/` registration is refused, naming why.
//!
//! Without `python3` the test says so and passes, unless `CI=true`.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use oauth_proto::config::Config;
use oauth_proto::resource::ProtectedResource;
use serde_json::{json, Value};

const MAIL_URN: &str = "urn:ietf:params:oauth:scope:mail";
const IMAP: &str = "imap://mail.example.com";

/// Logs in with `imaplib` and prints the tagged answer of each attempt as JSON: argv is the port,
/// the user, then pairs of mechanism and token. A refused login is an answer, not a failure.
const IMAPLIB_LOGIN: &str = r#"
import imaplib, json, sys
port, user, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
out = []
for mech, token in zip(rest[::2], rest[1::2]):
    if mech == "XOAUTH2":
        blob = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        blob = f"n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01"
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=15)
    caps = list(imap.capabilities)
    try:
        typ, data = imap.authenticate(mech, lambda _challenge: blob.encode())
        out.append({"mech": mech, "ok": typ == "OK", "caps": caps,
                    "text": data[0].decode() if data and data[0] else ""})
        imap.logout()
    except imaplib.IMAP4.error as e:
        out.append({"mech": mech, "ok": False, "caps": caps, "text": str(e)})
        imap.shutdown()
print(json.dumps(out))
"#;

/// The Python interpreter, if it runs.
async fn python() -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import imaplib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    matches!(probe, Ok(s) if s.success()).then_some(python)
}

/// `imaplib` logins at `port`, one per `(mechanism, token)`.
async fn imaplib_logins(python: &str, port: u16, logins: &[(&str, &str)]) -> Vec<Value> {
    let mut cmd = tokio::process::Command::new(python);
    cmd.args(["-c", IMAPLIB_LOGIN, &port.to_string(), USER]);
    for (mech, token) in logins {
        cmd.args([mech, token]);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("imaplib finished in 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "imaplib failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

async fn register(s: &TestServer, body: Value) -> Resp {
    s.send(
        "POST",
        "/register",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await
}

/// Signs the test user in on the page of `query` and approves: the server's answer.
async fn sign_in_and_approve(s: &TestServer, query: &str) -> Resp {
    let (cookie, consent) = s.sign_in_with(query).await;
    assert!(consent.body.contains("Thunderbird"), "{}", consent.body);
    s.post_form(
        "/authorize",
        Some(&cookie),
        &[
            ("csrf", &consent.hidden("csrf")),
            ("page", &consent.hidden("page")),
            ("decision", "approve"),
        ],
    )
    .await
}

/// A port the kernel just handed out on loopback, as the client's redirect listener would get.
fn ephemeral_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thunderbird_style_client_registers_signs_in_on_loopback_and_logs_in_over_imap() {
    let Some(python) = python().await else {
        missing_component("python3 (the IMAP client is its imaplib)");
        return;
    };
    // The IMAP service is a configured resource accepting both spellings of the mail scope.
    let config = Config {
        throttle: test_throttle(),
        resources: vec![ProtectedResource {
            resource: IMAP.to_owned(),
            scopes_supported: vec!["mail".to_owned(), MAIL_URN.to_owned()],
            access_token_format: Default::default(),
        }],
        ..Config::default()
    };
    let s = TestServer::start_configured(config, test_settings(), REDIRECT).await;
    let mail = oauth_server::mail::start(s.running.app().clone(), Some("127.0.0.1:0"), None)
        .await
        .unwrap();
    let imap_port = mail
        .addresses
        .iter()
        .find(|(n, _)| *n == "imap")
        .unwrap()
        .1
        .port();

    // Registration as the draft's native client does it.
    let r = register(
        &s,
        json!({
            "client_name": "Thunderbird",
            "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": format!("{MAIL_URN} offline_access"),
            "software_id": "thunderbird-desktop",
            "software_version": "140.0.1",
        }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reg = r.json();
    assert_eq!(reg["application_type"], "native", "{reg}");
    assert_eq!(reg["redirect_uris"], json!(["http://127.0.0.1/"]), "{reg}");
    assert_eq!(reg["software_id"], "thunderbird-desktop", "{reg}");
    assert_eq!(reg["software_version"], "140.0.1", "{reg}");
    assert_eq!(
        reg["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(reg.get("client_secret").is_none(), "{reg}");
    let scopes: Vec<&str> = reg["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&MAIL_URN), "{reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_owned();

    // Authorization on the port the client's listener got, which the registration never named.
    let redirect = format!("http://127.0.0.1:{}/", ephemeral_port());
    let state = "tb-state";
    let query = format!(
        "response_type=code&client_id={}&redirect_uri={}&state={state}&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(&client_id),
        enc(&redirect),
        enc(&format!("{MAIL_URN} offline_access"))
    );
    let answer = sign_in_and_approve(&s, &query).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = answer.header("location").unwrap();
    assert!(location.starts_with(&format!("{redirect}?")), "{location}");
    assert_eq!(answer.location_param("state").as_deref(), Some(state));
    let code = answer.location_param("code").unwrap();

    // The code, with the verifier and the same port-specific redirect URI.
    let r = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
                ("redirect_uri", &redirect),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let scopes: Vec<&str> = t["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&MAIL_URN), "{t}");
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    let info = s.introspect_json(&access).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["username"], USER, "{info}");
    assert_eq!(info["client_id"], client_id.as_str(), "{info}");
    // A client that names no resource gets every resource its scope reaches: the IMAP service.
    assert_eq!(info["aud"], IMAP, "{info}");

    // IMAP with that token, both mechanisms, plus a forged token that must be refused.
    // Another last character (replacing it with a fixed one would forge nothing one time in 64).
    let last = if access.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &access[..access.len() - 1]);
    let out = imaplib_logins(
        &python,
        imap_port,
        &[
            ("XOAUTH2", &access),
            ("OAUTHBEARER", &access),
            ("XOAUTH2", &forged),
        ],
    )
    .await;
    for o in &out[..2] {
        assert_eq!(o["ok"], true, "{out:?}");
        assert!(o["text"].as_str().unwrap().contains(USER), "{out:?}");
        assert!(o["caps"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("AUTH={}", o["mech"].as_str().unwrap()))));
    }
    assert_eq!(out[2]["ok"], false, "{out:?}");

    // Refresh, then IMAP with the refreshed token.
    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let scopes: Vec<&str> = t["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&MAIL_URN), "{t}");
    assert!(t["refresh_token"].as_str().is_some_and(|r| r != refresh));
    let refreshed = t["access_token"].as_str().unwrap().to_owned();
    let out = imaplib_logins(&python, imap_port, &[("OAUTHBEARER", &refreshed)]).await;
    assert_eq!(out[0]["ok"], true, "{out:?}");

    // The same client on a name rather than the loopback address is not its redirect URI.
    let query = format!(
        "response_type=code&client_id={}&redirect_uri={}&state=x&scope={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(&client_id),
        enc(&format!("http://localhost:{}/", ephemeral_port())),
        enc(MAIL_URN)
    );
    let r = s.get(&format!("/authorize?{query}"), None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("location").is_none());

    // `http://localhost/` at registration: refused, saying why (RFC 8252 §8.3).
    let r = register(
        &s,
        json!({
            "client_name": "Thunderbird",
            "application_type": "native",
            "redirect_uris": ["http://localhost/"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": MAIL_URN,
        }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let j = r.json();
    assert_eq!(j["error"], "invalid_redirect_uri", "{j}");
    let why = j["error_description"].as_str().unwrap();
    assert!(
        why.contains("http://localhost/") && why.contains("127.0.0.1"),
        "{why}"
    );

    mail.shutdown().await;
    s.running.shutdown().await;
}
