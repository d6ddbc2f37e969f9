//! RFC 9068 JWT access tokens over real HTTP: the administrator sets a client to them with the
//! real binary (`client add|set --access-token-format`), the token endpoint then issues JWTs, and
//! `/userinfo`, `/introspect`, `/revoke` and the mail listeners' validation take them like HMAC
//! tokens.

mod binary;
mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use oauth_proto::access_token::AccessTokenFormat;
use oauth_server::admin::clients;
use serde_json::{json, Value};

use binary::{serve, stop, BIN};

fn is_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

fn typ(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["typ"].clone()
}

// ---- the real binary ----

fn run(args: &[&str], dir: &std::path::Path) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().next().unwrap_or("null")).unwrap_or(Value::Null)
}

/// A form POST with Basic authentication over a fresh connection: (status, JSON body).
fn post(addr: &str, path: &str, basic: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = serde_urlencoded::to_string(form).unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let json = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b.trim()).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, json)
}

#[test]
fn client_add_and_set_choose_the_format_of_the_tokens_the_binary_issues() {
    let dir = std::env::temp_dir().join(format!("oauth-server-jwt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let service = run(
        &[
            "client",
            "add",
            "--name",
            "Service",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mail",
            "--access-token-format",
            "jwt",
        ],
        &dir,
    );
    let rs = run(
        &[
            "client",
            "add",
            "--name",
            "Mail server",
            "--grant-type",
            "client_credentials",
            "--resource-server",
        ],
        &dir,
    );
    let id = service["client_id"].as_str().unwrap().to_owned();
    let service_auth = basic_header(&id, service["client_secret"].as_str().unwrap());
    let rs_auth = basic_header(
        rs["client_id"].as_str().unwrap(),
        rs["client_secret"].as_str().unwrap(),
    );
    let listed = Command::new(BIN)
        .args(["client", "list", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let line = listed.lines().find(|l| l.contains(&id)).unwrap();
    assert!(line.contains(r#""access_token_format":"jwt""#), "{line}");

    let binary::Served { child, addr, .. } = serve(&dir);
    let grant = [("grant_type", "client_credentials")];
    let (status, t) = post(&addr, "/token", &service_auth, &grant);
    assert_eq!(status, 200, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    assert!(is_jwt(&token), "{token}");
    assert_eq!(typ(&token), json!("at+jwt"));
    let (status, seen) = post(&addr, "/introspect", &rs_auth, &[("token", &token)]);
    assert_eq!(status, 200);
    assert_eq!(seen["active"], json!(true), "{seen}");
    assert_eq!(seen["client_id"], json!(id));
    assert_eq!(seen["scope"], json!("mail"));
    let (status, _) = post(&addr, "/revoke", &service_auth, &[("token", &token)]);
    assert_eq!(status, 200);
    let (_, seen) = post(&addr, "/introspect", &rs_auth, &[("token", &token)]);
    assert_eq!(seen, json!({"active": false}));
    stop(child);

    // Back to the HMAC format: the next token is one; the command refuses unknown formats.
    run(
        &["client", "set", &id, "--access-token-format", "hmac"],
        &dir,
    );
    let bad = Command::new(BIN)
        .args([
            "client",
            "set",
            &id,
            "--access-token-format",
            "paseto",
            "--data",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let binary::Served { child, addr, .. } = serve(&dir);
    let (status, t) = post(&addr, "/token", &service_auth, &grant);
    assert_eq!(status, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    assert!(!token.contains('.'), "{token}");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- in process: userinfo, introspection, revocation, the mail listeners' check ----

async fn userinfo(s: &TestServer, token: &str) -> Resp {
    let bearer = format!("Bearer {token}");
    s.send("GET", "/userinfo", &[("authorization", &bearer)], b"")
        .await
}

#[tokio::test]
async fn userinfo_introspect_and_revoke_take_a_jwt_from_the_token_endpoint() {
    let s = TestServer::start().await;
    let app = s.running.app().clone();
    // What `client set --access-token-format jwt` does (the binary's test above runs the command).
    let to_jwt = clients::Change {
        access_token_format: Some(AccessTokenFormat::Jwt),
    };
    clients::set(&*app.store, &s.public_id, &to_jwt)
        .await
        .unwrap();

    let token = s.user_token_response("st").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(is_jwt(&token), "{token}");

    let r = userinfo(&s, &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sub"], json!(USER));
    let seen = s.introspect_json(&token).await;
    assert_eq!(seen["active"], json!(true), "{seen}");
    assert_eq!(seen["sub"], json!(USER));
    assert_eq!(seen["client_id"], json!(s.public_id));
    let now = oauth_server::clock::now();
    assert!(app
        .engine
        .validate_access_token(&token, now, &*app.store)
        .is_ok());

    // Garbage JWT-looking tokens, and one over the 16 KiB bound (in a form body: the header
    // section is bounded at 16 KiB too): 401 invalid_token, never a server error.
    for bad in [format!("eyJ{}", "A".repeat(15_000)), "eyJ.x.y".to_owned()] {
        let r = userinfo(&s, &bad).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token"));
    }
    let long = format!("eyJ{}", "A".repeat(17_000));
    let body = serde_urlencoded::to_string([("access_token", long.as_str())]).unwrap();
    let r = s
        .send(
            "POST",
            "/userinfo",
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));

    let body =
        serde_urlencoded::to_string([("token", token.as_str()), ("client_id", &s.public_id)])
            .unwrap();
    let r = s
        .send(
            "POST",
            "/revoke",
            &[("content-type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = userinfo(&s, &token).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(s.introspect_json(&token).await, json!({"active": false}));
    assert!(app
        .engine
        .validate_access_token(&token, oauth_server::clock::now(), &*app.store)
        .is_err());
    s.running.shutdown().await;
}
