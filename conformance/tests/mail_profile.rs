//! The mail clients' public profile (draft-ietf-mailmaint-oauth-public): a native public client
//! registering itself the way Thunderbird does, the URN scopes, `application_type`, the loopback
//! rules of RFC 8252 §7.3 / §8.3, and `offline_access` only with a refresh token.

use conformance::*;
use oauth_proto::client::{ClientKind, GrantType};

const MAIL_URN: &str = "urn:ietf:params:oauth:scope:mail";

/// A Thunderbird-style registration: native, public, the mail URN scope, software identity.
const THUNDERBIRD: &str = r#"{
  "client_name": "Thunderbird",
  "redirect_uris": ["http://127.0.0.1/"],
  "token_endpoint_auth_method": "none",
  "grant_types": ["authorization_code", "refresh_token"],
  "response_types": ["code"],
  "application_type": "native",
  "scope": "urn:ietf:params:oauth:scope:mail",
  "software_id": "thunderbird-desktop",
  "software_version": "140.0"
}"#;

#[track_caller]
fn refused(r: &oauth_proto::response::Response, code: &str) -> String {
    assert_eq!(r.status, 400, "{}", r.body);
    let j = json(r);
    assert_eq!(j["error"], code, "{}", r.body);
    j["error_description"].as_str().unwrap().to_owned()
}

#[test]
fn a_thunderbird_style_registration_gets_tokens_for_the_mail_urn_scope() {
    let mut h = Harness::default();
    let j = h.register_ok(THUNDERBIRD);
    assert_eq!(j["scope"], MAIL_URN);
    assert_eq!(j["application_type"], "native");
    assert_eq!(j["software_id"], "thunderbird-desktop");
    assert_eq!(j["software_version"], "140.0");
    let id = j["client_id"].as_str().unwrap();
    // Kept: a read of the client configuration echoes them too.
    let stored = h.client(id).unwrap();
    assert_eq!(stored.metadata["application_type"], "native");
    assert_eq!(stored.metadata["software_version"], "140.0");

    // Any loopback port (RFC 8252 §7.3).
    let redirect = "http%3A%2F%2F127.0.0.1%3A49152%2F";
    let query = format!("response_type=code&client_id={id}&redirect_uri={redirect}&scope=urn%3Aietf%3Aparams%3Aoauth%3Ascope%3Amail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id={id}&redirect_uri={redirect}&code_verifier={VERIFIER}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = json(&r);
    assert_eq!(
        t["scope"], MAIL_URN,
        "the token carries the spelling asked for"
    );
    assert!(t["refresh_token"].is_string());
    let claims = h.validate(t["access_token"].as_str().unwrap()).unwrap();
    assert!(claims.scope.contains(MAIL_URN));
}

#[test]
fn the_urn_scopes_and_their_short_aliases_are_supported_by_default() {
    let mut h = Harness::default();
    let j = h.register_ok(
        r#"{"redirect_uris":["http://127.0.0.1/"],"token_endpoint_auth_method":"none",
            "grant_types":["authorization_code","refresh_token"]}"#,
    );
    let scope = j["scope"].as_str().unwrap();
    for token in [
        "mail",
        "contacts",
        "calendar",
        MAIL_URN,
        "urn:ietf:params:oauth:scope:contacts",
        "urn:ietf:params:oauth:scope:calendars",
        "offline_access",
    ] {
        assert!(scope.split(' ').any(|t| t == token), "{token} in {scope}");
    }
    let r = h.register(
        r#"{"redirect_uris":["http://127.0.0.1/"],"token_endpoint_auth_method":"none",
            "scope":"urn:ietf:params:oauth:scope:calendars urn:ietf:params:oauth:scope:contacts mail"}"#,
        None,
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn application_type_is_honoured_against_the_redirect_uris() {
    let mut h = Harness::new(oauth_proto::config::Config {
        confidential_registration: oauth_proto::config::RegistrationPolicy::Open,
        ..Default::default()
    });
    let reg = |h: &mut Harness, app: &str, uri: &str| {
        h.register(
            &serde_json::json!({"application_type": app, "redirect_uris": [uri],
                "token_endpoint_auth_method": "none"})
            .to_string(),
            None,
        )
    };
    for (app, uri) in [
        ("native", "http://127.0.0.1/cb"),
        ("native", "http://[::1]/cb"),
        ("native", "com.example.mail:/oauth2"),
        ("web", "https://mail.example.com/cb"),
    ] {
        let r = reg(&mut h, app, uri);
        assert_eq!(r.status, 201, "{app} {uri}: {}", r.body);
        assert_eq!(json(&r)["application_type"], app);
    }
    for (app, uri) in [
        ("native", "https://mail.example.com/cb"),
        ("web", "http://127.0.0.1/cb"),
        ("web", "com.example.mail:/oauth2"),
    ] {
        let d = refused(&reg(&mut h, app, uri), "invalid_redirect_uri");
        assert!(d.contains(uri), "{d}");
    }
    let d = refused(
        &reg(&mut h, "desktop", "http://127.0.0.1/cb"),
        "invalid_client_metadata",
    );
    assert!(d.contains("application_type"), "{d}");
    let r = h.register(
        r#"{"application_type":["native"],"redirect_uris":["http://127.0.0.1/"],"token_endpoint_auth_method":"none"}"#,
        None,
    );
    refused(&r, "invalid_client_metadata");
}

#[test]
fn localhost_and_port_zero_are_refused_at_registration() {
    let mut h = Harness::default();
    for uri in [
        "http://localhost/",
        "http://localhost:8080/cb",
        "http://127.0.0.1:0/",
        "http://[::1]:0/cb",
        "https://mail.example.com:0/cb",
    ] {
        let body =
            serde_json::json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"});
        let d = refused(&h.register(&body.to_string(), None), "invalid_redirect_uri");
        assert!(d.contains(uri), "{d}");
    }
}

#[test]
fn offline_access_only_with_the_refresh_token_grant() {
    let mut h = Harness::default();
    // Without grant_types: authorization_code only, so no offline_access by default.
    let j = h.register_ok(
        r#"{"redirect_uris":["http://127.0.0.1/"],"token_endpoint_auth_method":"none"}"#,
    );
    assert_eq!(j["grant_types"], serde_json::json!(["authorization_code"]));
    let scope = j["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|t| t == "offline_access"), "{scope}");
    assert!(scope.split(' ').any(|t| t == MAIL_URN), "{scope}");
    // Naming it without the grant is a contradiction.
    let d = refused(
        &h.register(
            r#"{"redirect_uris":["http://127.0.0.1/"],"token_endpoint_auth_method":"none","scope":"mail offline_access"}"#,
            None,
        ),
        "invalid_client_metadata",
    );
    assert!(
        d.contains("offline_access") && d.contains("refresh_token"),
        "{d}"
    );

    // Its token answer: no refresh token, and so no offline_access either.
    let id = j["client_id"].as_str().unwrap();
    let query = format!("response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2F&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2F&code_verifier={VERIFIER}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json(&r).get("refresh_token").is_none());
}

#[test]
fn a_token_answer_never_grants_offline_access_without_a_refresh_token() {
    // A client stored with offline_access but without the refresh grant (registered before the
    // rule, or added by hand) asks for it: the answer carries no refresh token, so its scope
    // says no offline_access, and neither does the access token.
    let mut h = Harness::default();
    h.add_client(
        "old",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode],
        "mail offline_access",
    );
    let query = format!("response_type=code&client_id=old&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id=old&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = json(&r);
    assert!(t.get("refresh_token").is_none());
    assert_eq!(t["scope"], "mail");
    let claims = h.validate(t["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.scope.as_str(), "mail");
}
