//! Properties of registration: no input makes it panic or answer 5xx, and whatever is accepted
//! obeys the redirect URI and display-name rules.

use conformance::*;
use quickcheck::{QuickCheck, TestResult};

fn register_uri(uri: &str) -> (u16, serde_json::Value) {
    let mut h = Harness::default();
    let body = serde_json::json!({"token_endpoint_auth_method": "none", "redirect_uris": [uri]});
    let r = h.register(&body.to_string(), None);
    (r.status, json(&r))
}

#[test]
fn accepted_redirect_uris_follow_the_rules() {
    fn prop(tail: String, scheme: u8) -> TestResult {
        let prefix = [
            "https://",
            "http://",
            "http://127.0.0.1",
            "com.example.app:",
            "myapp:",
            "",
        ][usize::from(scheme) % 6];
        let uri = format!("{prefix}{tail}");
        let (status, j) = register_uri(&uri);
        match status {
            201 => {
                let (scheme, rest) = uri.split_once(':').expect("absolute");
                let rest = rest.to_ascii_lowercase();
                let ok_scheme = match scheme.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "http" => ["//127.0.0.1", "//[::1]"]
                        .iter()
                        .any(|p| rest.starts_with(p)),
                    s => s.contains('.'),
                };
                TestResult::from_bool(
                    ok_scheme && !uri.contains('#') && j["redirect_uris"][0] == uri.as_str(),
                )
            }
            400 => TestResult::from_bool(
                j["error"] == "invalid_redirect_uri" || j["error"] == "invalid_client_metadata",
            ),
            _ => TestResult::failed(),
        }
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(String, u8) -> TestResult);
}

#[test]
fn arbitrary_bodies_never_fail_the_server() {
    fn prop(body: String) -> bool {
        let mut h = Harness::default();
        let r = h.register(&body, None);
        // Almost always 400; a body that happens to be valid metadata may register (201) or need
        // an initial access token (401). Never a server error.
        match r.status {
            400 | 401 => json(&r)["error"].is_string(),
            201 => json(&r)["client_id"].is_string(),
            _ => false,
        }
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(String) -> bool);
}

#[test]
fn names_are_echoed_exactly_or_refused() {
    fn prop(name: String) -> bool {
        let mut h = Harness::default();
        let body = serde_json::json!({
            "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://127.0.0.1/cb"],
            "client_name": name,
        });
        let r = h.register(&body.to_string(), None);
        let j = json(&r);
        match r.status {
            201 if name.is_empty() => j.get("client_name").is_none(),
            201 => j["client_name"] == name.as_str() && !name.chars().any(char::is_control),
            400 => j["error"] == "invalid_client_metadata",
            _ => false,
        }
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(String) -> bool);
}

#[test]
fn invisible_formatting_characters_are_refused_in_names() {
    let mut h = Harness::default();
    for name in [
        "Thunder\u{202E}bird",
        "Thunder\u{200B}bird",
        "\u{FEFF}Mail",
        "Mail\u{2066}",
    ] {
        let body = serde_json::json!({"token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/cb"], "client_name": name});
        let r = h.register(&body.to_string(), None);
        assert_eq!(r.status, 400, "{name:?}");
        assert_eq!(json(&r)["error"], "invalid_client_metadata");
    }
}
