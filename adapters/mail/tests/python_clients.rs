//! The listeners against client libraries nobody here wrote: Python's `imaplib` and `smtplib`
//! (driven by `tests/clients.py`). A valid token authenticates with both mechanisms, with and
//! without an initial response; expired, revoked, foreign-signed and wrong-user tokens fail with
//! the right reply after the error challenge, which the client sees and answers.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{counting_throttle, tokens, Servers, LOCALHOST, OIDC, OTHER, USER};
use oauth_mail_listeners::Limits;
use serde_json::{json, Value};

fn run_python(input: Value) -> Option<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients.py");
    let mut child = match Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            // With CI=true a missing component fails the run instead of skipping silently.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "python3 is not available ({e}), and CI=true requires it"
            );
            println!("SKIPPED: python3 is not available ({e}); the mail client tests did not run");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "clients.py failed: {:?}", out.status);
    Some(serde_json::from_slice(&out.stdout).expect("clients.py prints JSON"))
}

fn case(name: &str, proto: &str, mech: &str, user: &str, token: &str, mode: &str) -> Value {
    json!({"name": name, "proto": proto, "mech": mech, "user": user, "token": token, "mode": mode})
}

/// The single challenge a failed case saw, parsed.
fn challenge(result: &Value) -> Value {
    let seen = result["challenges"].as_array().unwrap();
    assert_eq!(seen.len(), 1, "exactly one error challenge: {result}");
    serde_json::from_str(seen[0].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_and_smtplib_authenticate_with_real_tokens() {
    // The 28 failing cases below (4 bad tokens, 7 ways each) all count.
    const BAD_CASES: u32 = 28;
    let servers = Servers::start_with(Limits::default(), counting_throttle(BAD_CASES)).await;
    let t = tokens();
    let bad = [
        ("expired", USER, &t.expired),
        ("revoked", USER, &t.revoked),
        ("foreign", USER, &t.foreign),
        ("wronguser", OTHER, &t.valid),
    ];
    let mut cases = Vec::new();
    for mech in ["OAUTHBEARER", "XOAUTH2"] {
        cases.push(case(
            &format!("imap-{mech}-valid"),
            "imap",
            mech,
            USER,
            &t.valid,
            "auth",
        ));
        for mode in ["auth_ir", "auth_no_ir", "docmd"] {
            if mode == "docmd" && mech == "XOAUTH2" {
                continue;
            }
            let name = format!("smtp-{mech}-{mode}-valid");
            cases.push(case(&name, "smtp", mech, USER, &t.valid, mode));
        }
        for (what, user, token) in &bad {
            cases.push(case(
                &format!("imap-{mech}-{what}"),
                "imap",
                mech,
                user,
                token,
                "auth",
            ));
            for mode in ["auth_ir", "auth_no_ir", "docmd"] {
                if mode == "docmd" && mech == "XOAUTH2" {
                    continue;
                }
                let name = format!("smtp-{mech}-{mode}-{what}");
                cases.push(case(&name, "smtp", mech, user, token, mode));
            }
        }
    }
    cases.push(case(
        "imap-cancel",
        "imap",
        "OAUTHBEARER",
        USER,
        &t.valid,
        "cancel",
    ));
    let total = cases.len();
    let input = json!({
        "host": "127.0.0.1",
        "imap": servers.imap.port(),
        "smtp": servers.smtp.port(),
        "cases": cases,
    });
    let Some(results) = tokio::task::spawn_blocking(move || run_python(input))
        .await
        .unwrap()
    else {
        servers.stop().await;
        return;
    };
    assert_eq!(results.as_object().unwrap().len(), total);
    for (name, r) in results.as_object().unwrap() {
        assert!(r.get("error").is_none(), "{name}: {r}");
        if name.starts_with("imap") {
            let caps: Vec<&str> = r["capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            for cap in [
                "IMAP4REV1",
                "AUTH=OAUTHBEARER",
                "AUTH=XOAUTH2",
                "SASL-IR",
                "LOGINDISABLED",
            ] {
                assert!(caps.contains(&cap), "{name}: {caps:?}");
            }
            assert_eq!(r["logout"], "BYE", "{name}: {r}");
        } else {
            assert_eq!(r["ehlo"], 250, "{name}: {r}");
            // smtplib joins AUTH lines with a leading space.
            let auth = r["auth_feature"].as_str().unwrap().trim();
            assert_eq!(auth, "OAUTHBEARER XOAUTH2", "{name}: {r}");
            assert_eq!(r["mail"], 502, "{name}: no mail is accepted: {r}");
            assert_eq!(r["quit"], 221, "{name}: {r}");
        }
        let text = r["text"].as_str().unwrap();
        let xoauth2 = name.contains("XOAUTH2");
        if name.ends_with("-valid") {
            assert_eq!(r["ok"], true, "{name}: {r}");
            assert_eq!(r["challenges"], json!([]), "{name}: {r}");
            if name.starts_with("imap") {
                assert_eq!(r["typ"], "OK");
                assert_eq!(
                    text,
                    "[CAPABILITY IMAP4rev1] SASL authentication succeeded, authenticated as user@example.com"
                );
                assert_eq!(r["after"], "OK", "{name}: the session goes on");
            } else {
                assert_eq!(r["code"], 235, "{name}: {r}");
                assert_eq!(text, "2.7.0 Authentication successful");
            }
        } else if name == "imap-cancel" {
            assert_eq!(r["ok"], false);
            // imaplib raises on BAD; the wording around the server's text varies by version.
            assert!(
                text.contains("BAD") && text.contains("Authentication cancelled"),
                "{text}"
            );
        } else {
            assert_eq!(r["ok"], false, "{name}: {r}");
            let body = challenge(r);
            if xoauth2 {
                assert_eq!(
                    body,
                    json!({"status": "401", "schemes": "bearer"}),
                    "{name}"
                );
            } else {
                assert_eq!(
                    body,
                    json!({"status": "invalid_token", "openid-configuration": OIDC}),
                    "{name}"
                );
            }
            if name.starts_with("imap") {
                let expected = if name.ends_with("wronguser") {
                    // RFC 5530: the token is fine, but not for the identity asked for.
                    "[AUTHORIZATIONFAILED] The token does not grant access to this account"
                } else {
                    "[AUTHENTICATIONFAILED] SASL authentication failed"
                };
                assert_eq!(text, expected, "{name}");
            } else {
                assert_eq!(r["code"], 535, "{name}: {r}");
                assert_eq!(text, "5.7.8 Authentication credentials invalid", "{name}");
            }
        }
    }
    // Every failed attempt was counted, against the source address (the cancel was not).
    let bad_cases = results
        .as_object()
        .unwrap()
        .keys()
        .filter(|n| !n.ends_with("-valid") && *n != "imap-cancel")
        .count();
    assert_eq!(bad_cases, BAD_CASES as usize);
    assert!(servers.counted_exactly(LOCALHOST));
    servers.stop().await;
}
