//! Token revocation (RFC 7009): checklist M (109-115), vector of section 1.7, and the embedder's
//! direct revocation calls.

use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::response::Response;

#[track_caller]
fn ok(r: &Response) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

fn refresh_with(h: &mut Harness, refresh: &str) -> Response {
    h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    )
}

#[test]
fn revoking_a_refresh_token_ends_the_grant() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    // RFC 7009 §2.1 shape, for a public client naming itself (110).
    ok(&h.revoke(
        &format!("token={refresh}&token_type_hint=refresh_token&client_id=app"),
        None,
    ));
    // 114: immediate.
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    assert_eq!(
        json(&refresh_with(&mut h, &refresh))["error"],
        "invalid_grant"
    );
    assert_eq!(
        json(&h.introspect(&format!("token={refresh}"), Some(&rs)))["active"],
        false
    );
    assert_eq!(
        json(&h.introspect(&format!("token={access}"), Some(&rs)))["active"],
        false
    );
    // 112: revoking again is still 200.
    ok(&h.revoke(&format!("token={refresh}&client_id=app"), None));
}

#[test]
fn revoking_an_access_token_ends_the_grants_access_only() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    // 113: a wrong hint still finds it.
    ok(&h.revoke(
        &format!("token={access}&token_type_hint=refresh_token&client_id=app"),
        None,
    ));
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    h.now += 1;
    let r = refresh_with(&mut h, &refresh);
    assert_eq!(r.status, 200, "{}", r.body);
    let fresh = json(&r)["access_token"].as_str().unwrap().to_owned();
    assert!(h.validate(&fresh).is_ok());
    // Revoking the dead token again revokes nothing new.
    h.now += 1;
    ok(&h.revoke(&format!("token={access}&client_id=app"), None));
    assert!(h.validate(&fresh).is_ok());
}

#[test]
fn unknown_malformed_expired_and_unknown_hints_are_200() {
    let mut h = Harness::default();
    let (access, _) = h.app_tokens();
    for body in [
        "token=45ghiukldjahdnhzdauz&token_type_hint=refresh_token&client_id=app",
        "token=45ghiukldjahdnhzdauz&token_type_hint=bogus&client_id=app",
        &format!("token={}&client_id=app", "A".repeat(300)),
    ] {
        ok(&h.revoke(body, None));
    }
    h.now += 3600;
    ok(&h.revoke(&format!("token={access}&client_id=app"), None));
}

#[test]
fn another_clients_token_gets_200_and_is_left_valid() {
    // 111, with the recorded choice: the same empty 200 as for a dead token, and nothing revoked.
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let secret = h.confidential_client();
    let web = basic("web", secret.expose());
    h.add_client(
        "other",
        oauth_proto::client::ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[oauth_proto::client::GrantType::AuthorizationCode],
        "mail",
    );
    for (body, auth) in [
        (format!("token={access}"), Some(web.as_str())),
        (format!("token={refresh}"), Some(web.as_str())),
        (format!("token={refresh}&client_id=other"), None),
        (format!("token={access}&client_id=other"), None),
    ] {
        let r = h.revoke(&body, auth);
        ok(&r);
        assert!(r.body.is_empty(), "{body}: {}", r.body);
    }
    assert!(h.validate(&access).is_ok());
    assert_eq!(refresh_with(&mut h, &refresh).status, 200);
}

#[test]
fn revoking_another_clients_token_does_not_tell_whether_it_is_alive() {
    // The answer to another client's live token is byte for byte the answer to its dead one, so
    // /revoke cannot be used as a liveness oracle for tokens a client got hold of.
    let mut h = Harness::default();
    let secret = h.confidential_client();
    let web = basic("web", secret.expose());
    let (live_access, live_refresh) = h.app_tokens();
    let (dead_access, dead_refresh) = h.app_tokens();
    ok(&h.revoke(&format!("token={dead_refresh}&client_id=app"), None));
    assert_eq!(h.validate(&dead_access), Err(TokenError::Revoked));
    let answer = |h: &mut Harness, token: &str| {
        let r = h.revoke(&format!("token={token}"), Some(&web));
        (r.status, r.headers, r.body)
    };
    let unknown = answer(&mut h, "45ghiukldjahdnhzdauz");
    for token in [&live_access, &live_refresh, &dead_access, &dead_refresh] {
        assert_eq!(answer(&mut h, token), unknown, "{token}");
    }
    assert!(h.validate(&live_access).is_ok());
    assert_eq!(refresh_with(&mut h, &live_refresh).status, 200);
}

#[test]
fn callers_must_authenticate() {
    let mut h = Harness::default();
    let (_, refresh) = h.app_tokens();
    let secret = h.confidential_client();
    let r = h.revoke(&format!("token={refresh}"), None);
    assert_eq!(r.status, 401);
    assert_eq!(json(&r)["error"], "invalid_client");
    let r = h.revoke(&format!("token={refresh}"), Some(&basic("web", "wrong")));
    assert_eq!(r.status, 401);
    let r = h.revoke(&format!("token={refresh}&client_id=web"), None);
    assert_eq!(r.status, 401, "a confidential client must authenticate");
    let r = h.revoke(
        "token_type_hint=refresh_token",
        Some(&basic("web", secret.expose())),
    );
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["error"], "invalid_request");
    // The token survived all of it.
    h.now += 1;
    assert_eq!(refresh_with(&mut h, &refresh).status, 200);
}

#[test]
fn confidential_client_revokes_its_client_credentials_tokens() {
    let mut h = Harness::default();
    let secret = h.confidential_client();
    let auth = basic("web", secret.expose());
    let access = json(&h.token("grant_type=client_credentials", Some(&auth)))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&h.revoke(
        &format!("token={access}&token_type_hint=access_token"),
        Some(&auth),
    ));
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    h.now += 1;
    let again = json(&h.token("grant_type=client_credentials", Some(&auth)))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(h.validate(&again).is_ok());
}

#[test]
fn embedder_revokes_a_subject_or_a_client() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    h.now += 1;
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    assert_eq!(
        json(&refresh_with(&mut h, &refresh))["error"],
        "invalid_grant"
    );

    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    h.now += 1;
    let effects = h.engine.revoke_client("app", h.now);
    h.apply(effects);
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    assert_eq!(
        json(&refresh_with(&mut h, &refresh))["error"],
        "invalid_grant"
    );
}

#[test]
fn m110_revocation_is_a_post_form_with_a_token() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let body = format!("token={refresh}&client_id=app");
    // GET (even with the form in the body), another media type, and no token: invalid_request.
    let mut get = conformance::surface::form(&body, None);
    get.method = "GET".into();
    let mut as_json = conformance::surface::form(&body, None);
    as_json.content_type = Some("application/json".into());
    for request in [get, as_json] {
        let flow = h.engine.revoke(request, h.now);
        let r = h.run(flow);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(json(&r)["error"], "invalid_request");
        assert!(!json(&r)["error_description"].as_str().unwrap().is_empty());
    }
    for body in ["client_id=app", "token=&client_id=app"] {
        let r = h.revoke(body, None);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(json(&r)["error"], "invalid_request", "{body}");
    }
    // Nothing was revoked by the refused requests.
    assert!(h.validate(&access).is_ok());
    // The same form, POSTed, revokes.
    ok(&h.revoke(&body, None));
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
}

#[test]
fn m113_an_unknown_or_wrong_hint_still_revokes_the_token() {
    for hint in ["bogus", "access_token", "", "REFRESH_TOKEN"] {
        let mut h = Harness::default();
        let (access, refresh) = h.app_tokens();
        ok(&h.revoke(
            &format!("token={refresh}&token_type_hint={hint}&client_id=app"),
            None,
        ));
        // Revoked as a refresh token whatever the hint said: the whole grant ends.
        assert_eq!(h.validate(&access), Err(TokenError::Revoked), "{hint}");
        h.now += 1;
        assert_eq!(
            json(&refresh_with(&mut h, &refresh))["error"],
            "invalid_grant",
            "{hint}"
        );
    }
}

/// Revoking an access token reads the caller's client with the token's revocation status, one op
/// (issue 19): the token is revoked, and revoking it again (already dead) asks the same one op and
/// changes nothing. A refresh token, not an access token, reads the caller alone, as before.
#[test]
fn revoking_an_access_token_asks_the_store_once() {
    use oauth_proto::store::Op;
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let with_status = Op::GetClientWithStatus {
        client_id: "app".into(),
        grant_id: h.validate(&access).unwrap().grant_id,
        subject: "alice".into(),
    };
    let body = format!("token={access}&client_id=app");
    let (r, asked) = h.revoke_asking(&body, None);
    ok(&r);
    assert_eq!(asked, vec![with_status.clone()]);
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    let (r, asked) = h.revoke_asking(&body, None);
    ok(&r);
    assert_eq!(asked, vec![with_status]);
    // Another client's token: the same one op and the same 200, nothing revoked.
    h.now += 1;
    let (other, _) = h.app_tokens();
    let secret = h.confidential_client();
    let (r, asked) = h.revoke_asking(
        &format!("token={other}"),
        Some(&basic("web", secret.expose())),
    );
    ok(&r);
    assert!(
        matches!(asked.as_slice(), [Op::GetClientWithStatus { client_id, .. }] if client_id == "web"),
        "{asked:?}"
    );
    assert!(h.validate(&other).is_ok());
    // A wrong secret is invalid_client after that op, before anything is looked at.
    let (r, _) = h.revoke_asking(&format!("token={other}"), Some(&basic("web", "wrong")));
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(h.validate(&other).is_ok());
    let (r, asked) = h.revoke_asking(&format!("token={refresh}&client_id=app"), None);
    ok(&r);
    assert!(
        matches!(
            asked.as_slice(),
            [Op::GetClient { .. }, Op::GetRefresh { .. }]
        ),
        "{asked:?}"
    );
}
