//! Token introspection (RFC 7662): checklist L (102-108), vectors of section 1.6.

use conformance::surface::*;
use conformance::*;
use oauth_proto::config::{Config, IntrospectionPolicy};
use oauth_proto::response::Response;

#[track_caller]
fn inactive(r: &Response) {
    assert_eq!(r.status, 200, "{}", r.body);
    // 105: exactly {"active":false}, nothing more.
    assert_eq!(json(r), serde_json::json!({"active": false}));
}

#[test]
fn describes_the_tokens_owner_not_the_caller() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    // RFC 7662 §2.1 second request shape: Basic + hint.
    let r = h.introspect(
        &format!("token={access}&token_type_hint=access_token"),
        Some(&rs),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = json(&r);
    // 107: a boolean, integers, a space-separated scope.
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], "app");
    assert_eq!(j["sub"], "alice");
    assert_eq!(j["username"], "alice");
    assert_eq!(j["scope"], "mail offline_access");
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["iat"], T0);
    assert_eq!(j["exp"], T0 + 3600);
    assert_eq!(j["iss"], "http://127.0.0.1:8080");
    assert!(j.get("aud").is_none(), "tokens carry no audience");

    let r = h.introspect(&format!("token={refresh}"), Some(&rs));
    let j = json(&r);
    assert_eq!(j["active"], true);
    assert_eq!(j["token_type"], "refresh_token");
    assert_eq!(j["client_id"], "app");
    assert_eq!(j["sub"], "alice");
    assert_eq!(j["exp"], T0 + 30 * 86400);
}

#[test]
fn the_hint_only_orders_the_search() {
    // 104: a wrong hint still finds the token; an unknown hint is ignored.
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    for (token, hint, kind) in [
        (&access, "refresh_token", "Bearer"),
        (&refresh, "access_token", "refresh_token"),
        (&access, "something_else", "Bearer"),
        (&refresh, "something_else", "refresh_token"),
    ] {
        let r = h.introspect(&format!("token={token}&token_type_hint={hint}"), Some(&rs));
        assert_eq!(json(&r)["token_type"], kind, "{hint}");
    }
}

#[test]
fn expired_revoked_unknown_malformed_and_other_kinds_are_inactive() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    // Malformed but decodable (undecodable bytes are a malformed request: invalid_request, A7).
    for token in [
        "abc",
        "2YotnFZFEjr1zCsicMWpAA",
        &"A".repeat(200),
        "%00%C3%BF",
    ] {
        inactive(&h.introspect(&format!("token={token}"), Some(&rs)));
    }
    // An authorization code is not a token (74).
    let query = format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    inactive(&h.introspect(&format!("token={code}"), Some(&rs)));
    // A tampered access token.
    let mut tampered = access.clone();
    tampered.replace_range(10..11, if &access[10..11] == "A" { "B" } else { "A" });
    inactive(&h.introspect(&format!("token={tampered}"), Some(&rs)));
    // Expired.
    h.now += 3600;
    inactive(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!(
        json(&h.introspect(&format!("token={refresh}"), Some(&rs)))["active"],
        true
    );
    // Rotated refresh token.
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    );
    let new = json(&r);
    inactive(&h.introspect(&format!("token={refresh}"), Some(&rs)));
    let new_access = new["access_token"].as_str().unwrap().to_owned();
    let new_refresh = new["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        json(&h.introspect(&format!("token={new_access}"), Some(&rs)))["active"],
        true
    );
    // Revoked through the embedder's call.
    h.now += 1;
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    inactive(&h.introspect(&format!("token={new_access}"), Some(&rs)));
    inactive(&h.introspect(&format!("token={new_refresh}"), Some(&rs)));
    // The refresh token's expiry.
    let mut h = Harness::default();
    let (_, refresh) = h.app_tokens();
    let rs = h.resource_server();
    h.now += 30 * 86400;
    inactive(&h.introspect(&format!("token={refresh}"), Some(&rs)));
}

#[test]
fn tokens_of_a_subject_with_a_bumped_credential_version_stay_introspectable() {
    let mut h = Harness::default();
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    h.now += 1;
    let (access, _) = h.app_tokens();
    assert!(h.validate(&access).is_ok());
    let rs = h.resource_server();
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!(j["active"], true);
    assert_eq!(j["sub"], "alice");
}

#[test]
fn public_clients_see_only_their_own_tokens() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let j = json(&h.introspect(&format!("token={access}&client_id=app"), None));
    assert_eq!(j["active"], true);
    assert_eq!(
        json(&h.introspect(&format!("token={refresh}&client_id=app"), None))["active"],
        true
    );
    h.add_client(
        "other",
        oauth_proto::client::ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[oauth_proto::client::GrantType::AuthorizationCode],
        "mail",
    );
    inactive(&h.introspect(&format!("token={access}&client_id=other"), None));
    inactive(&h.introspect(&format!("token={refresh}&client_id=other"), None));
    // So does a confidential client that is not a resource server, under the default policy.
    let secret = h.confidential_client();
    inactive(&h.introspect(
        &format!("token={access}"),
        Some(&basic("web", secret.expose())),
    ));
}

#[test]
fn client_credentials_tokens_have_no_username() {
    let mut h = Harness::default();
    let secret = h.confidential_client();
    let r = h.token(
        "grant_type=client_credentials&scope=mail",
        Some(&basic("web", secret.expose())),
    );
    let access = json(&r)["access_token"].as_str().unwrap().to_owned();
    let rs = h.resource_server();
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!(j["active"], true);
    assert_eq!(j["sub"], "web");
    assert_eq!(j["client_id"], "web");
    assert!(j.get("username").is_none());
    // Even when the directory has a user of the client's name, with an email: a client's token
    // is never taken for that user's, and the directory is not even asked.
    put_user(&h, "web", Some("web@example.com"));
    let (ops, _) = ops_and_effects(&mut h, &format!("token={access}"), &rs);
    assert!(
        !ops.iter()
            .any(|op| matches!(op, oauth_proto::store::Op::UserClaims { .. })),
        "{ops:?}"
    );
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!(j["active"], true);
    assert!(
        j.get("username").is_none() && j.get("email").is_none(),
        "{j}"
    );
}

/// Puts a user into the harness store's directory (the memory store is also the reference
/// server's directory, which answers `Op::UserClaims`).
fn put_user(h: &Harness, name: &str, email: Option<&str>) {
    use conformance::store_contract::fixtures::block_on;
    use oauth_directory::{Directory, UserChange, UserRecord};
    let user = UserRecord {
        username: name.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: T0,
        email: email.map(str::to_owned),
        name: None,
    };
    block_on(h.store.change(vec![UserChange::PutUser(user)], Vec::new())).unwrap();
}

#[test]
fn user_tokens_name_the_user_and_its_email_from_the_directory() {
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    // Not in the directory: the subject names the user, and no email is claimed.
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!((&j["username"], j.get("email")), (&"alice".into(), None));

    put_user(&h, "alice", Some("alice@example.com"));
    for token in [&access, &refresh] {
        let j = json(&h.introspect(&format!("token={token}"), Some(&rs)));
        assert_eq!(j["active"], true);
        assert_eq!(j["sub"], "alice");
        assert_eq!(j["username"], "alice");
        assert_eq!(j["email"], "alice@example.com", "{j}");
    }
    // The address is read at each introspection: a change shows at once.
    put_user(&h, "alice", None);
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert!(j.get("email").is_none(), "{j}");
}

#[test]
fn a_user_name_that_is_an_address_is_the_users_email() {
    let mut h = Harness::default();
    h.public_client();
    put_user(&h, "bob@example.org", None);
    let query = format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "bob@example.org");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}"), None);
    let access = json(&r)["access_token"].as_str().unwrap().to_owned();
    let rs = h.resource_server();
    let j = json(&h.introspect(&format!("token={access}"), Some(&rs)));
    assert_eq!(j["username"], "bob@example.org");
    assert_eq!(j["email"], "bob@example.org");
}

#[test]
fn callers_must_authenticate() {
    let mut h = Harness::default();
    let (access, _) = h.app_tokens();
    let secret = h.confidential_client();
    h.resource_server();
    // 103: no credentials at all -> 401, never a token status.
    let r = h.introspect(&format!("token={access}"), None);
    assert_eq!(r.status, 401);
    assert_eq!(json(&r)["error"], "invalid_client");
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    for auth in [
        basic("web", "wrong"),
        basic("nobody", "x"),
        "Basic !!!".to_owned(),
        bearer(&access),
    ] {
        let r = h.introspect(&format!("token={access}"), Some(&auth));
        assert_eq!(r.status, 401, "{auth}");
        assert_eq!(json(&r)["error"], "invalid_client");
    }
    // A confidential client must use its secret; naming itself is not enough (21).
    let r = h.introspect(&format!("token={access}&client_id=web"), None);
    assert_eq!(r.status, 401);
    // Body credentials work too (the resource server's).
    let r = h.introspect(
        &format!("token={access}&client_id=rs&client_secret=rs-secret-0123456789abcdef"),
        None,
    );
    assert_eq!(json(&r)["active"], true);
    // 102: token is required; repeated parameters and GET are invalid_request.
    let auth = basic("web", secret.expose());
    for body in ["", "token=", &format!("token={access}&token={access}")] {
        let r = h.introspect(body, Some(&auth));
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(json(&r)["error"], "invalid_request");
    }
    let mut get = form(&format!("token={access}"), Some(&auth));
    get.method = "GET".into();
    let flow = h.engine.introspect(get, h.now);
    assert_eq!(json(&h.run(flow))["error"], "invalid_request");
}

#[test]
fn resource_servers_only_is_the_default_policy() {
    // 108: only resource servers see every token; every other client sees its own tokens only, and
    // another client's live token looks exactly like a dead one.
    assert_eq!(
        Config::default().introspection,
        IntrospectionPolicy::ResourceServersOnly
    );
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let secret = h.confidential_client();
    let web = basic("web", secret.expose());
    let rs = h.resource_server();
    for token in [&access, &refresh] {
        let j = json(&h.introspect(&format!("token={token}"), Some(&rs)));
        assert_eq!(j["active"], true);
        assert_eq!(j["client_id"], "app");
        inactive(&h.introspect(&format!("token={token}"), Some(&web)));
    }
    // The ordinary confidential client still sees its own client_credentials token.
    let own = json(&h.token("grant_type=client_credentials", Some(&web)))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let j = json(&h.introspect(&format!("token={own}"), Some(&web)));
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], "web");
    // A public client cannot be a resource server: marked or not, it sees its own tokens only.
    let mut app = h.client("app").unwrap();
    app.resource_server = true;
    h.apply(vec![oauth_proto::store::Effect::PutClient(app)]);
    inactive(&h.introspect(&format!("token={own}&client_id=app"), None));
    assert_eq!(
        json(&h.introspect(&format!("token={access}&client_id=app"), None))["active"],
        true
    );
}

#[test]
fn any_confidential_client_policy() {
    // The former default, still available: every confidential client sees every token.
    let mut h = Harness::new(Config {
        introspection: IntrospectionPolicy::AnyConfidentialClient,
        ..Config::default()
    });
    let (access, _) = h.app_tokens();
    let secret = h.confidential_client();
    let j = json(&h.introspect(
        &format!("token={access}"),
        Some(&basic("web", secret.expose())),
    ));
    assert_eq!(j["active"], true);
    assert_eq!(j["client_id"], "app");
    // Public clients still see only their own.
    h.add_client(
        "other",
        oauth_proto::client::ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[oauth_proto::client::GrantType::AuthorizationCode],
        "mail",
    );
    inactive(&h.introspect(&format!("token={access}&client_id=other"), None));
    // Configurations written when it was called "default" still load.
    let old: IntrospectionPolicy = serde_json::from_str("\"default\"").unwrap();
    assert_eq!(old, IntrospectionPolicy::AnyConfidentialClient);
}

/// Runs a flow by hand, returning the ops it asked and the effects it produced.
fn ops_and_effects(
    h: &mut Harness,
    body: &str,
    auth: &str,
) -> (Vec<oauth_proto::store::Op>, usize) {
    use oauth_proto::flow::Next;
    use oauth_proto::store::Store;
    let mut flow = h.engine.introspect(form(body, Some(auth)), h.now);
    let mut ops = Vec::new();
    loop {
        match flow.step(&mut h.rng) {
            Next::Op(op, waiting) => {
                ops.push(op.clone());
                flow = waiting.answer(h.store.execute(op).unwrap());
            }
            Next::Done(done) => return (ops, done.effects.len()),
        }
    }
}

#[test]
fn introspection_is_read_only_and_costs_one_lookup() {
    use oauth_proto::store::Op;
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    let (ops, effects) = ops_and_effects(&mut h, &format!("token={access}"), &rs);
    assert_eq!(effects, 0);
    assert!(
        matches!(
            ops.as_slice(),
            [Op::GetClientWithStatus { .. }, Op::UserClaims { .. }]
        ),
        "{ops:?}"
    );
    // A refresh token is recognized without a revocation lookup, whatever the hint.
    for hint in [
        "",
        "&token_type_hint=refresh_token",
        "&token_type_hint=access_token",
    ] {
        let (ops, effects) = ops_and_effects(&mut h, &format!("token={refresh}{hint}"), &rs);
        assert_eq!(effects, 0);
        assert!(
            matches!(
                ops.as_slice(),
                [
                    Op::GetClient { .. },
                    Op::GetRefresh { .. },
                    Op::UserClaims { .. }
                ]
            ),
            "{ops:?}"
        );
    }
}

/// What an access token's introspection asks (issue 19): the caller's client with the token's
/// grant and subject revocation status, one op, then the user's claims; every other request asks
/// what it asked before, and caller authentication still answers first.
#[test]
fn an_access_token_is_introspected_with_one_store_op() {
    use oauth_proto::store::Op;
    let mut h = Harness::default();
    let (access, refresh) = h.app_tokens();
    let rs = h.resource_server();
    let secret = h.confidential_client();
    let web = basic("web", secret.expose());
    let grant_id = h.validate(&access).unwrap().grant_id;
    let with_status = |client_id: &str| Op::GetClientWithStatus {
        client_id: client_id.into(),
        grant_id,
        subject: "alice".into(),
    };
    let get_client = |client_id: &str| Op::GetClient {
        client_id: client_id.into(),
    };
    let claims = Op::UserClaims {
        subject: "alice".into(),
    };

    let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&rs));
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    assert_eq!(asked, vec![with_status("rs"), claims.clone()]);
    // A wrong hint still reads the status with the caller; the refresh lookup comes first.
    let (r, asked) = h.introspect_asking(
        &format!("token={access}&token_type_hint=refresh_token"),
        Some(&rs),
    );
    assert_eq!(json(&r)["token_type"], "Bearer", "{}", r.body);
    assert!(
        matches!(asked.as_slice(), [a, Op::GetRefresh { .. }, c] if *a == with_status("rs") && *c == claims),
        "{asked:?}"
    );
    // A caller that may not see the token asks the same one op and learns nothing.
    let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&web));
    inactive(&r);
    assert_eq!(asked, vec![with_status("web")]);
    // The public owner naming itself.
    let (r, asked) = h.introspect_asking(&format!("token={access}&client_id=app"), None);
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    assert_eq!(asked, vec![with_status("app"), claims.clone()]);

    // A client_credentials token: its own grant and the client as subject, and no user.
    let own = json(&h.token("grant_type=client_credentials", Some(&web)))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (r, asked) = h.introspect_asking(&format!("token={own}"), Some(&web));
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    let cc = Op::GetClientWithStatus {
        client_id: "web".into(),
        grant_id: oauth_proto::token::client_credentials_grant_id("web"),
        subject: "web".into(),
    };
    assert_eq!(asked, vec![cc]);

    // Caller authentication fails first, after the same one op, as before.
    for auth in [basic("rs", "wrong"), basic("nobody", "x")] {
        let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&auth));
        assert_eq!(
            (r.status, json(&r)["error"].as_str()),
            (401, Some("invalid_client"))
        );
        let caller = if auth == basic("rs", "wrong") {
            "rs"
        } else {
            "nobody"
        };
        assert_eq!(asked, vec![with_status(caller)]);
    }
    let (r, asked) = h.introspect_asking(&format!("token={access}"), None);
    assert_eq!((r.status, asked), (401, vec![]));

    // Anything but a valid access token reads the caller alone, as before.
    let (r, asked) = h.introspect_asking(&format!("token={refresh}"), Some(&rs));
    assert_eq!(json(&r)["token_type"], "refresh_token", "{}", r.body);
    assert!(
        matches!(asked.as_slice(), [a, Op::GetRefresh { .. }, c] if *a == get_client("rs") && *c == claims),
        "{asked:?}"
    );
    let mut tampered = access.clone();
    tampered.replace_range(10..11, if &access[10..11] == "A" { "B" } else { "A" });
    for token in ["abc", tampered.as_str()] {
        let (r, asked) = h.introspect_asking(&format!("token={token}"), Some(&rs));
        inactive(&r);
        assert!(
            matches!(asked.as_slice(), [a, Op::GetRefresh { .. }] if *a == get_client("rs")),
            "{asked:?}"
        );
    }
    // A missing or repeated token is still invalid_request, reported after authentication.
    for body in ["".to_owned(), format!("token={access}&token={access}")] {
        let (r, asked) = h.introspect_asking(&body, Some(&rs));
        assert_eq!(
            (r.status, json(&r)["error"].as_str()),
            (400, Some("invalid_request"))
        );
        assert_eq!(asked, vec![get_client("rs")], "{body}");
    }
    // Expired: known dead without the store.
    h.now += 3600;
    let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&rs));
    inactive(&r);
    assert_eq!(asked, vec![get_client("rs")]);
}

/// The status read with the caller is the one applied: a token of a revoked grant and one of a
/// subject whose credentials changed are inactive, each after one op, while a token issued
/// after the change is active.
#[test]
fn the_status_read_with_the_caller_decides_revoked_tokens() {
    use oauth_proto::store::Op;
    let mut h = Harness::default();
    let rs = h.resource_server();
    let one_op = |asked: &[Op]| matches!(asked, [Op::GetClientWithStatus { client_id, .. }] if client_id == "rs");

    // The grant's access revoked (by its client, through /revoke).
    let (access, refresh) = h.app_tokens();
    assert_eq!(
        h.revoke(&format!("token={access}&client_id=app"), None)
            .status,
        200
    );
    let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&rs));
    inactive(&r);
    assert!(one_op(&asked), "{asked:?}");
    assert_eq!(
        json(&h.introspect(&format!("token={refresh}"), Some(&rs)))["active"],
        true
    );

    // The subject's credentials changed (the embedder's call).
    h.now += 1;
    let (access, _) = h.app_tokens();
    assert_eq!(
        json(&h.introspect(&format!("token={access}"), Some(&rs)))["active"],
        true
    );
    h.now += 1;
    h.apply(h.engine.revoke_subject("alice", h.now));
    let (r, asked) = h.introspect_asking(&format!("token={access}"), Some(&rs));
    inactive(&r);
    assert!(one_op(&asked), "{asked:?}");
    // A token issued under the new credential version is active.
    h.now += 1;
    let (fresh, _) = h.app_tokens();
    let (r, asked) = h.introspect_asking(&format!("token={fresh}"), Some(&rs));
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    assert!(
        matches!(
            asked.as_slice(),
            [Op::GetClientWithStatus { .. }, Op::UserClaims { .. }]
        ),
        "{asked:?}"
    );
}
