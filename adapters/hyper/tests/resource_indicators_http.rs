//! Resource indicators (RFC 8707) over real HTTP: `resource` at the token endpoint binds the
//! token's audience, introspection returns it as `aud`, every malformed or unknown `resource` is a
//! 400 `invalid_target` (never a 5xx), and each configured resource has its own RFC 9728 document
//! listing only its scopes.

mod common;

use common::*;
use oauth_proto::config::Config;
use oauth_proto::resource::ProtectedResource;

const IMAP: &str = "imap://mail.example.com";
const DAV: &str = "https://mail.example.com/dav";

async fn server() -> TestServer {
    let resource = |r: &str, scopes: &[&str]| ProtectedResource {
        resource: r.to_owned(),
        scopes_supported: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_token_format: Default::default(),
    };
    let config = Config {
        throttle: test_throttle(),
        resources: vec![
            resource(IMAP, &["mail"]),
            resource(DAV, &["calendar", "contacts"]),
        ],
        ..Config::default()
    };
    TestServer::start_configured(config, test_settings(), REDIRECT).await
}

#[tokio::test]
async fn a_client_credentials_token_is_bound_to_the_named_resource() {
    let s = server().await;
    let service = (s.service_id.as_str(), s.service_secret.as_str());
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "mail"),
                ("resource", IMAP),
            ],
            Some(service),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", enc(&s.web_id), enc(&s.web_secret))
        )
    );
    let body = serde_urlencoded::to_string([("token", token.as_str())]).unwrap();
    let r = s
        .send(
            "POST",
            "/introspect",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["aud"], IMAP);
}

#[tokio::test]
async fn malformed_and_unknown_resources_are_invalid_target() {
    let s = server().await;
    let service = (s.service_id.as_str(), s.service_secret.as_str());
    let long = format!("https://mail.example.com/{}", "a".repeat(300));
    let cases: Vec<Vec<&str>> = vec![
        vec!["/jmap"],
        vec!["mail.example.com"],
        vec!["imap://mail.example.com#inbox"],
        vec![""],
        vec!["https://mail.example.com/a b"],
        vec![&long],
        vec!["imap://unknown.example", "imap://unknown.example"],
        vec![IMAP, "imap://unknown.example"],
        // Known, but it accepts none of the requested scope.
        vec![DAV],
    ];
    for resources in cases {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "mail")];
        form.extend(resources.iter().map(|r| ("resource", *r)));
        let r = s.token(&form, Some(service)).await;
        assert_eq!(r.status, 400, "{resources:?}: {}", r.body);
        let j = r.json();
        assert_eq!(j["error"], "invalid_target", "{resources:?}: {}", r.body);
        assert!(!j["error_description"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn each_resource_has_its_own_metadata_with_only_its_scopes() {
    let s = server().await;
    let r = s
        .get("/.well-known/oauth-protected-resource/dav", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["resource"], DAV);
    assert_eq!(
        j["scopes_supported"],
        serde_json::json!(["calendar", "contacts"])
    );
    let issuer = s
        .get("/.well-known/oauth-authorization-server", None)
        .await
        .json()["issuer"]
        .clone();
    assert_eq!(j["authorization_servers"], serde_json::json!([issuer]));
    let r = s
        .get(
            "/.well-known/oauth-protected-resource/imap/mail.example.com",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["resource"], IMAP);
    assert_eq!(r.json()["scopes_supported"], serde_json::json!(["mail"]));
    // The server's own document is still served, and an unknown resource path is a 404.
    let r = s.get("/.well-known/oauth-protected-resource", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .get("/.well-known/oauth-protected-resource/nothing", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}

/// The consent page says where the access may be used when the client named resources, and says
/// nothing of resources when it named none.
#[tokio::test]
async fn the_consent_page_names_the_requested_resources() {
    let s = server().await;
    let query = format!("{}&resource={}", s.authorize_query("st"), enc(IMAP));
    let (_, consent) = s.sign_in_with(&query).await;
    assert!(
        consent
            .body
            .contains("<li><code>imap://mail.example.com</code></li>"),
        "{}",
        consent.body
    );
    assert!(!consent.body.contains(DAV), "{}", consent.body);
    let (_, consent) = s.sign_in_with(&s.authorize_query("st")).await;
    assert!(!consent.body.contains("Only at:"), "{}", consent.body);
}
