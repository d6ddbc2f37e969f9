//! Authorization server metadata (RFC 8414) and protected resource metadata (RFC 9728):
//! checklist N (116-123), and 66 (PKCE detectable).

use conformance::*;
use oauth_proto::config::{Config, IntrospectionPolicy, RegistrationPolicy};

fn metadata(config: Config) -> serde_json::Value {
    let h = Harness::new(config);
    let r = h.engine.metadata();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    json(&r)
}

fn https(issuer: &str) -> Config {
    Config {
        issuer: issuer.to_owned(),
        ..Config::default()
    }
}

#[test]
fn every_url_derives_from_the_issuer() {
    let m = metadata(https("https://mail.example.com"));
    assert_eq!(m["issuer"], "https://mail.example.com");
    assert_eq!(
        m["authorization_endpoint"],
        "https://mail.example.com/authorize"
    );
    assert_eq!(m["token_endpoint"], "https://mail.example.com/token");
    assert_eq!(
        m["registration_endpoint"],
        "https://mail.example.com/register"
    );
    assert_eq!(
        m["introspection_endpoint"],
        "https://mail.example.com/introspect"
    );
    assert_eq!(m["revocation_endpoint"], "https://mail.example.com/revoke");
    assert_eq!(
        m["device_authorization_endpoint"],
        "https://mail.example.com/device_authorization"
    );
    // Checklist 1: every URL is https when the issuer is.
    for (k, v) in m.as_object().unwrap() {
        if let Some(s) = v
            .as_str()
            .filter(|_| k.ends_with("endpoint") || k == "issuer")
        {
            assert!(s.starts_with("https://mail.example.com"), "{k} = {s}");
        }
    }
}

#[test]
fn issuer_with_a_path_behind_a_proxy() {
    // 116: the well-known path is inserted before the issuer's path, a trailing / removed first.
    let h = Harness::new(https("https://example.com/issuer1/"));
    assert_eq!(
        h.engine.metadata_path(),
        "/.well-known/oauth-authorization-server/issuer1"
    );
    assert_eq!(
        h.engine.openid_configuration_path(),
        "/issuer1/.well-known/openid-configuration"
    );
    // The RFC 8414 §5 compatibility copy for OIDC clients, inserted like the RFC 8414 path.
    assert_eq!(
        h.engine.openid_configuration_inserted_path(),
        "/.well-known/openid-configuration/issuer1"
    );
    assert_eq!(
        h.engine.protected_resource_metadata_path(),
        "/.well-known/oauth-protected-resource/issuer1"
    );
    let m = json(&h.engine.metadata());
    // 117: issuer is code-point identical to the configured one.
    assert_eq!(m["issuer"], "https://example.com/issuer1/");
    assert_eq!(m["token_endpoint"], "https://example.com/issuer1/token");
    assert_eq!(
        h.engine.endpoints().client_configuration("abc"),
        "https://example.com/issuer1/register/abc"
    );

    let h = Harness::new(https("https://example.com"));
    assert_eq!(
        h.engine.metadata_path(),
        "/.well-known/oauth-authorization-server"
    );
    assert_eq!(
        h.engine.openid_configuration_path(),
        "/.well-known/openid-configuration"
    );
    assert_eq!(
        h.engine.openid_configuration_inserted_path(),
        "/.well-known/openid-configuration"
    );
}

#[test]
fn required_and_explicit_members() {
    let m = metadata(Config::default());
    // 118, 121, 122, 123, 66
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(m["response_modes_supported"], serde_json::json!(["query"]));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["revocation_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(m["scopes_supported"].as_array().unwrap().len(), 10);
    // The userinfo endpoint exists (oauth-proto/src/userinfo.rs), so it is advertised.
    assert_eq!(m["userinfo_endpoint"], "http://127.0.0.1:8080/userinfo");
    // ID tokens are signed with the keys published at jwks_uri (conformance/tests/id_tokens.rs).
    assert_eq!(m["jwks_uri"], "http://127.0.0.1:8080/jwks");
    // RP-initiated logout (conformance/tests/end_session.rs).
    assert_eq!(m["end_session_endpoint"], "http://127.0.0.1:8080/logout");
    // Nothing this engine does not do.
    for absent in [
        "token_endpoint_auth_signing_alg_values_supported",
        "request_object_signing_alg_values_supported",
        "frontchannel_logout_supported",
        "backchannel_logout_supported",
    ] {
        assert!(m.get(absent).is_none(), "{absent}");
    }
    // 9: no null members anywhere.
    assert!(m.as_object().unwrap().values().all(|v| !v.is_null()));
}

#[test]
fn members_follow_the_configuration() {
    let m = metadata(Config {
        allow_plain_pkce: true,
        public_registration: false,
        confidential_registration: RegistrationPolicy::Off,
        introspection: IntrospectionPolicy::ResourceServersOnly,
        scopes_supported: vec![],
        default_client_scope: String::new(),
        ..Config::default()
    });
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    assert!(
        m.get("registration_endpoint").is_none(),
        "registration is off"
    );
    // 119: empty arrays are omitted.
    assert!(m.get("scopes_supported").is_none());
    // Every client may introspect its own tokens, so public clients' `none` is listed too.
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    // Registration of confidential clients alone still advertises the endpoint.
    let m = metadata(Config {
        public_registration: false,
        confidential_registration: RegistrationPolicy::InitialAccessToken,
        initial_access_tokens: vec!["0123456789abcdef0123".to_owned()].into(),
        ..Config::default()
    });
    assert_eq!(m["registration_endpoint"], "http://127.0.0.1:8080/register");
}

#[test]
fn metadata_iss_matches_the_authorization_response_iss() {
    // 123: the `iss` parameter equals metadata `issuer` byte for byte.
    let mut h = Harness::default();
    h.public_client();
    let issuer = json(&h.engine.metadata())["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let pending = h.pending(&query);
    let redirect = h.approve(pending, "alice");
    assert_eq!(
        location_param(&redirect, "iss").as_deref(),
        Some(issuer.as_str())
    );
}

#[test]
fn protected_resource_metadata() {
    let h = Harness::new(https("https://mail.example.com"));
    let r = h.engine.protected_resource_metadata();
    assert_eq!(r.status, 200);
    let m = json(&r);
    assert_eq!(m["resource"], "https://mail.example.com");
    assert_eq!(
        m["authorization_servers"],
        serde_json::json!(["https://mail.example.com"])
    );
    assert_eq!(m["bearer_methods_supported"], serde_json::json!(["header"]));
    assert!(m["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"mail".into()));
}

#[test]
fn n117_issuer_must_be_a_url_without_query_or_fragment() {
    for bad in [
        "https://example.com/issuer1?x=1",
        "https://example.com/issuer1#frag",
        "https://example.com/?",
        "ftp://example.com",
        "example.com",
        "",
    ] {
        let e = oauth_proto::Engine::new(https(bad), test_keys(), conformance::test_signing_keys());
        assert!(e.is_err(), "{bad:?} was accepted");
    }
    // Whatever is accepted is published as given, code point for code point (no normalization:
    // no trailing slash added or removed, no case folding of the path).
    for good in [
        "https://example.com",
        "https://example.com/",
        "https://example.com/Issuer1",
        "https://example.com:8443/a/b/",
    ] {
        assert_eq!(metadata(https(good))["issuer"], good);
    }
}

#[test]
fn a1_the_issuer_is_https_and_http_only_on_loopback() {
    for ok in [
        "https://auth.example.com",
        "https://auth.example.com:8443/tenant",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080",
        "http://localhost:8080",
    ] {
        assert_eq!(https(ok).validate(), Ok(()), "{ok}");
    }
    for bad in [
        "http://auth.example.com",
        "http://192.0.2.7:8080",
        "http://[2001:db8::1]/",
        "http://localhost.example.com",
        "ftp://auth.example.com",
        "auth.example.com",
    ] {
        assert!(https(bad).validate().is_err(), "{bad}");
        assert!(
            oauth_proto::Engine::new(https(bad), test_keys(), conformance::test_signing_keys())
                .is_err(),
            "{bad}"
        );
    }
}
