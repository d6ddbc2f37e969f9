//! Resource indicators (RFC 8707) and audience-bound access tokens: `resource` on the
//! authorization, token and device requests, the token's audience, `invalid_target`, `aud` in
//! introspection, the audience check of validation, and RFC 9728 metadata per resource.

use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::config::Config;
use oauth_proto::device_verify::DeviceVerifyOutcome;
use oauth_proto::resource::ProtectedResource;
use oauth_proto::response::Response;

const IMAP: &str = "imap://mail.example.com";
const SMTP: &str = "smtp://mail.example.com";
const DAV: &str = "https://mail.example.com/dav";

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

fn resources() -> Vec<ProtectedResource> {
    let r = |resource: &str, scopes: &[&str]| ProtectedResource {
        resource: resource.to_owned(),
        scopes_supported: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_token_format: Default::default(),
    };
    vec![
        r(IMAP, &["mail"]),
        r(SMTP, &["mail"]),
        r(DAV, &["calendar", "contacts"]),
    ]
}

fn harness() -> Harness {
    Harness::new(Config {
        resources: resources(),
        ..Config::default()
    })
}

/// The authorization request of the public client `app`, with extra parameters.
fn app_query(extra: &str) -> String {
    format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}")
}

/// Code flow for `app` and `alice`: the token response.
fn app_flow(h: &mut Harness, authorize_extra: &str, token_extra: &str) -> Response {
    h.public_client();
    let code = h.code_for(&app_query(authorize_extra), "alice");
    h.token(&format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}{token_extra}"), None)
}

/// A token's audience, as a list.
fn aud(audience: &oauth_proto::access_token::Audience) -> Vec<&str> {
    audience.iter().collect()
}

fn access(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    json(r)["access_token"].as_str().unwrap().to_owned()
}

#[track_caller]
fn invalid_target(r: &Response) {
    assert_eq!(r.status, 400, "{}", r.body);
    let j = json(r);
    assert_eq!(j["error"], "invalid_target", "{}", r.body);
    assert!(!j["error_description"].as_str().unwrap().is_empty());
}

#[test]
fn without_configured_resources_tokens_have_no_audience_and_any_resource_is_invalid_target() {
    let mut h = Harness::default();
    let token = access(&app_flow(&mut h, "", ""));
    let claims = h.validate(&token).unwrap();
    assert!(claims.audience.is_empty());
    // With nothing configured, an unbound token passes the audience check anywhere.
    assert!(h
        .engine
        .validate_access_token_for(&token, IMAP, h.now, &h.store)
        .is_ok());
    // Any resource names nothing this server knows: the error goes back to the client.
    match h.authorize(&app_query(&format!("&resource={}", enc(IMAP)))) {
        AuthorizeOutcome::Redirect(r) => {
            assert_eq!(
                location_param(&r, "error").as_deref(),
                Some("invalid_target")
            )
        }
        other => panic!("{other:?}"),
    }
    let s = h.confidential_client();
    invalid_target(&h.token(
        &format!(
            "grant_type=client_credentials&scope=mail&resource={}",
            enc(IMAP)
        ),
        Some(&basic("web", s.expose())),
    ));
}

#[test]
fn a_resource_named_at_authorization_becomes_the_audience() {
    let mut h = harness();
    let token = access(&app_flow(&mut h, &format!("&resource={}", enc(IMAP)), ""));
    let claims = h.validate(&token).unwrap();
    assert_eq!(aud(&claims.audience), [IMAP]);
    let at = |h: &Harness, r: &str| {
        h.engine
            .validate_access_token_for(&token, r, h.now, &h.store)
    };
    assert_eq!(at(&h, IMAP).unwrap(), claims);
    assert_eq!(at(&h, SMTP), Err(TokenError::WrongAudience));
    assert_eq!(at(&h, DAV), Err(TokenError::WrongAudience));
    // Introspection says so (RFC 7662 `aud`, one resource as a string).
    let rs = h.resource_server();
    let j = json(&h.introspect(&format!("token={token}"), Some(&rs)));
    assert_eq!(j["aud"], IMAP);
}

#[test]
fn without_resource_the_token_is_for_every_resource_accepting_its_scope() {
    let mut h = harness();
    let token = access(&app_flow(&mut h, "", ""));
    let claims = h.validate(&token).unwrap();
    assert_eq!(aud(&claims.audience), [IMAP, SMTP]);
    assert_eq!(
        h.engine
            .validate_access_token_for(&token, DAV, h.now, &h.store),
        Err(TokenError::WrongAudience)
    );
    let rs = h.resource_server();
    let j = json(&h.introspect(&format!("token={token}"), Some(&rs)));
    assert_eq!(j["aud"], serde_json::json!([IMAP, SMTP]));
}

#[test]
fn the_code_exchange_may_narrow_but_not_widen_what_was_authorized() {
    let mut h = harness();
    let both = format!("&resource={}&resource={}", enc(IMAP), enc(SMTP));
    let token = access(&app_flow(
        &mut h,
        &both,
        &format!("&resource={}", enc(SMTP)),
    ));
    assert_eq!(aud(&h.validate(&token).unwrap().audience), [SMTP]);

    let mut h = harness();
    invalid_target(&app_flow(
        &mut h,
        &format!("&resource={}", enc(IMAP)),
        &format!("&resource={}", enc(SMTP)),
    ));
}

#[test]
fn a_refresh_may_narrow_the_audience_within_the_grant() {
    let mut h = harness();
    let r = app_flow(&mut h, &format!("&resource={}", enc(IMAP)), "");
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let r = h.token(
        &format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=app&resource={}",
            enc(SMTP)
        ),
        None,
    );
    invalid_target(&r);
    // The refused request rotated nothing: the same refresh token still works, and keeps the
    // grant's audience.
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    );
    let token = access(&r);
    assert_eq!(aud(&h.validate(&token).unwrap().audience), [IMAP]);

    // A grant that named no resource authorized every resource its scope reaches.
    let mut h = harness();
    let r = app_flow(&mut h, "", "");
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let r = h.token(
        &format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=app&resource={}",
            enc(SMTP)
        ),
        None,
    );
    assert_eq!(aud(&h.validate(&access(&r)).unwrap().audience), [SMTP]);
}

#[test]
fn client_credentials_may_name_any_resource_its_scope_reaches() {
    let mut h = harness();
    let s = h.confidential_client();
    let auth = basic("web", s.expose());
    let r = h.token(
        &format!(
            "grant_type=client_credentials&scope=mail&resource={}",
            enc(SMTP)
        ),
        Some(&auth),
    );
    assert_eq!(aud(&h.validate(&access(&r)).unwrap().audience), [SMTP]);
    // The DAV resource accepts none of `mail`.
    invalid_target(&h.token(
        &format!(
            "grant_type=client_credentials&scope=mail&resource={}",
            enc(DAV)
        ),
        Some(&auth),
    ));
}

#[test]
fn the_device_request_binds_the_audience() {
    let mut h = harness();
    h.device_client();
    invalid_target(&h.device_authorization(
        &format!(
            "client_id=tv&scope=mail&resource={}",
            enc("imap://other.example")
        ),
        None,
    ));
    let r = h.device_authorization(
        &format!("client_id=tv&scope=mail&resource={}", enc(IMAP)),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    let device_code = j["device_code"].as_str().unwrap().to_owned();
    let user_code = j["user_code"].as_str().unwrap().to_owned();
    assert_eq!(h.device_record(&device_code).unwrap().resources, [IMAP]);
    let DeviceVerifyOutcome::Consent(pending) = h.device_verify(&user_code) else {
        panic!("expected consent");
    };
    h.device_approve(pending, "alice");
    let token = access(&h.poll(&device_code));
    assert_eq!(aud(&h.validate(&token).unwrap().audience), [IMAP]);
}

#[test]
fn malformed_resource_values_are_invalid_target() {
    let mut h = harness();
    let s = h.confidential_client();
    let auth = basic("web", s.expose());
    let too_long = format!("https://mail.example.com/{}", "a".repeat(300));
    for bad in [
        "/jmap".to_owned(),
        "mail.example.com".to_owned(),
        format!("{IMAP}#inbox"),
        format!("{DAV}#"),
        "".to_owned(),
        "https://".to_owned(),
        too_long,
    ] {
        let body = format!(
            "grant_type=client_credentials&scope=mail&resource={}",
            enc(&bad)
        );
        invalid_target(&h.token(&body, Some(&auth)));
    }
    // Repeated: an unknown one among known ones, and the same unknown one twice.
    for body in [
        format!(
            "grant_type=client_credentials&scope=mail&resource={}&resource={}",
            enc(IMAP),
            enc("imap://unknown.example")
        ),
        format!(
            "grant_type=client_credentials&scope=mail&resource={u}&resource={u}",
            u = enc("imap://unknown.example")
        ),
    ] {
        invalid_target(&h.token(&body, Some(&auth)));
    }
    // A known one repeated is one resource.
    let r = h.token(
        &format!(
            "grant_type=client_credentials&scope=mail&resource={i}&resource={i}",
            i = enc(IMAP)
        ),
        Some(&auth),
    );
    assert_eq!(aud(&h.validate(&access(&r)).unwrap().audience), [IMAP]);
}

#[test]
fn each_resource_has_metadata_listing_only_its_scopes() {
    let h = harness();
    let e = &h.engine;
    let doc = |path: &str| json(&e.protected_resource_metadata_at(path).unwrap());
    assert_eq!(
        e.protected_resource_metadata_path_for(DAV).as_deref(),
        Some("/.well-known/oauth-protected-resource/dav")
    );
    let dav = doc("/.well-known/oauth-protected-resource/dav");
    assert_eq!(dav["resource"], DAV);
    assert_eq!(
        dav["scopes_supported"],
        serde_json::json!(["calendar", "contacts"])
    );
    assert_eq!(
        dav["authorization_servers"],
        serde_json::json!(["http://127.0.0.1:8080"])
    );
    let imap_path = e.protected_resource_metadata_path_for(IMAP).unwrap();
    assert_eq!(
        imap_path,
        "/.well-known/oauth-protected-resource/imap/mail.example.com"
    );
    let imap = doc(&imap_path);
    assert_eq!(imap["resource"], IMAP);
    assert_eq!(imap["scopes_supported"], serde_json::json!(["mail"]));
    // The co-located resource's document is still there, and unknown paths have none.
    assert_eq!(
        doc("/.well-known/oauth-protected-resource")["resource"],
        "http://127.0.0.1:8080"
    );
    assert!(e
        .protected_resource_metadata_at("/.well-known/oauth-protected-resource/nothing")
        .is_none());
    assert!(e
        .protected_resource_metadata_for("imap://other.example")
        .is_none());
    assert_eq!(e.protected_resource_metadata_paths().len(), 4);
}

#[test]
fn once_resources_are_configured_unbound_tokens_fail_the_audience_check() {
    // A token issued before the administrator configured resources has no audience: it still
    // validates without an audience check until it expires, but not at a named resource.
    let mut before = Harness::default();
    let token = access(&app_flow(&mut before, "", ""));
    let mut after = harness();
    after.store = before.store;
    after.now = before.now;
    assert!(after.validate(&token).is_ok());
    assert_eq!(
        after
            .engine
            .validate_access_token_for(&token, IMAP, after.now, &after.store),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn the_configuration_refuses_bad_resources() {
    let refused = |resources: Vec<ProtectedResource>| {
        Config {
            resources,
            ..Config::default()
        }
        .validate()
        .unwrap_err()
    };
    let r = |resource: &str, scopes: &[&str]| ProtectedResource {
        resource: resource.to_owned(),
        scopes_supported: scopes.iter().map(|s| (*s).to_owned()).collect(),
        access_token_format: Default::default(),
    };
    for bad in ["mail.example.com", "/jmap", "imap://mail.example.com#x", ""] {
        let e = refused(vec![r(bad, &[])]);
        assert_eq!(e.setting(), "resources");
        assert!(e.message().contains("absolute URI"), "{e}");
    }
    assert!(refused(vec![r(IMAP, &[]), r(IMAP, &[])])
        .message()
        .contains("listed twice"));
    assert!(refused(vec![r(IMAP, &["nonesuch"])])
        .message()
        .contains("not in scopes_supported"));
    let many = (0..=oauth_proto::resource::MAX_RESOURCES)
        .map(|i| r(&format!("imap://h{i}.example"), &[]))
        .collect();
    assert!(refused(many).message().contains("at most"));
    let config: Config = serde_json::from_str(
        r#"{"resources":[{"resource":"imap://mail.example.com","scopes_supported":["mail"]}]}"#,
    )
    .unwrap();
    assert_eq!(config.validate(), Ok(()));
}
