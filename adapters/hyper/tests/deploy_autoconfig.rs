//! The deployment guide's autoconfiguration file (`docs/deployment.md`, Thunderbird's
//! `config-v1.1.xml` with its `<oAuth2>` element) against a running server.
//!
//! The server runs in-process with the guide's issuer (`https://auth.example.com`), so the file
//! is checked exactly as the guide prints it: Python's `xml.etree` parses it (a file that is not
//! well-formed XML fails), and what it names must be what the server's metadata says. Without
//! Python the test says so and passes, and fails under `CI=true`.

mod common;
mod deploy;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use deploy::*;
use oauth_proto::config::Config;

const ISSUER: &str = "https://auth.example.com";

/// The members of the file that a mail client reads, as JSON, parsed by Python's standard XML
/// parser (which refuses XML that is not well-formed).
const READ: &str = r#"
import json, sys
import xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == "clientConfig", root.tag
provider = root.find("emailProvider")
oauth = provider.find("oAuth2")
print(json.dumps({
    "version": root.get("version"),
    "incoming": [s.findtext("authentication") for s in provider.findall("incomingServer")],
    "outgoing": [s.findtext("authentication") for s in provider.findall("outgoingServer")],
    "issuer": oauth.findtext("issuer"),
    "scope": oauth.findtext("scope"),
    "authURL": oauth.findtext("authURL"),
    "tokenURL": oauth.findtext("tokenURL"),
}))
"#;

fn read_autoconfig(xml: &str) -> serde_json::Value {
    let mut python = Command::new("python3")
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the autoconfig file does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn the_autoconfig_file_names_what_the_server_advertises() {
    if !installed("python3", "--version") {
        return missing_component("Python 3 (python3)");
    }
    let config = Config {
        issuer: ISSUER.to_owned(),
        throttle: test_throttle(),
        ..Config::default()
    };
    let s = TestServer::start_configured(config, test_settings(), REDIRECT).await;
    let r = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let metadata = r.json();

    let file = read_autoconfig(&snippet("config-v1.1.xml"));
    assert_eq!(file["version"], "1.1");
    for side in ["incoming", "outgoing"] {
        assert_eq!(file[side], serde_json::json!(["OAuth2"]), "{side}: {file}");
    }
    assert_eq!(file["issuer"], metadata["issuer"]);
    assert_eq!(file["authURL"], metadata["authorization_endpoint"]);
    assert_eq!(file["tokenURL"], metadata["token_endpoint"]);
    let supported = metadata["scopes_supported"].as_array().unwrap();
    for scope in file["scope"].as_str().unwrap().split(' ') {
        assert!(
            supported.iter().any(|s| s == scope),
            "{scope} is not in scopes_supported {supported:?}"
        );
    }
    // A client that has only this file registers itself, and uses PKCE.
    assert!(
        metadata["registration_endpoint"]
            .as_str()
            .is_some_and(|u| u.starts_with(ISSUER)),
        "{metadata}"
    );
    assert!(
        metadata["code_challenge_methods_supported"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m == "S256")),
        "{metadata}"
    );
    s.running.shutdown().await;
}
