//! Revocation reaches every token issued before it and none issued after it, whatever the second.
//!
//! Access tokens carry their issue time in whole seconds and a revocation kills those issued at or
//! before its time, so without care a token issued in the same second *after* a revocation is born
//! dead, and one issued in the same second after a *second* revocation survives it. These tests run
//! every revocation and every issue in one second (the clock never moves) and check both halves:
//! issued before a revocation: refused by validation and by introspection; issued after: valid.

use conformance::surface::*;
use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::config::{Config, RegistrationPolicy};
use oauth_proto::response::Response;
use oauth_proto::store::Store;

fn access_of(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    json(r)["access_token"].as_str().unwrap().to_owned()
}

/// Refreshes with `refresh` and keeps the rotated refresh token (`app` is a public client).
fn refreshed(h: &mut Harness, refresh: &mut String) -> String {
    let r = refresh_with(h, refresh);
    let access = access_of(&r);
    *refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    access
}

fn refresh_with(h: &mut Harness, refresh: &str) -> Response {
    h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    )
}

fn client_credentials(h: &mut Harness, auth: &str) -> String {
    access_of(&h.token("grant_type=client_credentials", Some(auth)))
}

#[track_caller]
fn alive(h: &mut Harness, rs: &str, token: &str) {
    assert!(h.validate(token).is_ok(), "{:?}", h.validate(token));
    let j = json(&h.introspect(&format!("token={token}"), Some(rs)));
    assert_eq!(j["active"], true, "{j}");
}

#[track_caller]
fn dead(h: &mut Harness, rs: &str, token: &str) {
    assert_eq!(h.validate(token), Err(TokenError::Revoked));
    let j = json(&h.introspect(&format!("token={token}"), Some(rs)));
    assert_eq!(j, serde_json::json!({"active": false}));
}

#[test]
fn an_access_revocation_then_a_refresh_in_the_same_second_gives_a_live_token() {
    let mut h = Harness::default();
    let rs = h.resource_server();
    let (access, refresh) = h.app_tokens();
    assert_eq!(
        h.revoke(&format!("token={access}&client_id=app"), None)
            .status,
        200
    );
    dead(&mut h, &rs, &access);
    let fresh = access_of(&refresh_with(&mut h, &refresh));
    alive(&mut h, &rs, &fresh);
    // The token issued after the revocation is still after it when validated later.
    h.now += 30;
    alive(&mut h, &rs, &fresh);
    dead(&mut h, &rs, &access);
}

#[test]
fn a_revoked_client_credentials_token_then_a_new_one_in_the_same_second_is_live() {
    let mut h = Harness::default();
    let rs = h.resource_server();
    let auth = basic("web", h.confidential_client().expose());
    let first = client_credentials(&mut h, &auth);
    assert_eq!(h.revoke(&format!("token={first}"), Some(&auth)).status, 200);
    dead(&mut h, &rs, &first);
    let second = client_credentials(&mut h, &auth);
    alive(&mut h, &rs, &second);
    dead(&mut h, &rs, &first);
}

#[test]
fn revocations_and_issues_interleaved_in_one_second_kill_exactly_the_earlier_tokens() {
    let mut h = Harness::default();
    let rs = h.resource_server();
    let auth = basic("web", h.confidential_client().expose());
    let (first_access, mut refresh) = h.app_tokens();
    let mut user_tokens = vec![first_access];
    let mut machine_tokens = vec![client_credentials(&mut h, &auth)];
    for _ in 0..6 {
        // Revoke the newest of each kind: every token issued so far dies, whichever second it
        // claims to have been issued in.
        let newest = user_tokens.last().unwrap().clone();
        assert_eq!(
            h.revoke(&format!("token={newest}&client_id=app"), None)
                .status,
            200
        );
        let newest = machine_tokens.last().unwrap().clone();
        assert_eq!(
            h.revoke(&format!("token={newest}"), Some(&auth)).status,
            200
        );
        for t in user_tokens
            .iter()
            .chain(&machine_tokens)
            .cloned()
            .collect::<Vec<_>>()
        {
            dead(&mut h, &rs, &t);
        }
        // Issue again: the new tokens live.
        user_tokens.push(refreshed(&mut h, &mut refresh));
        machine_tokens.push(client_credentials(&mut h, &auth));
        let (u, m) = (
            user_tokens.last().unwrap().clone(),
            machine_tokens.last().unwrap().clone(),
        );
        alive(&mut h, &rs, &u);
        alive(&mut h, &rs, &m);
    }
}

#[test]
fn deleting_a_client_refuses_every_token_issued_before_in_the_same_second() {
    let config = Config {
        confidential_registration: RegistrationPolicy::Open,
        ..Config::default()
    };
    let mut h = Harness::new(config);
    let rs = h.resource_server();
    let c = h.register_ok(r#"{"grant_types":["client_credentials"]}"#);
    let (cid, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let cauth = basic(&cid, &secret);
    let token = client_credentials(&mut h, &cauth);
    alive(&mut h, &rs, &token);
    let management = bearer(c["registration_access_token"].as_str().unwrap());
    assert_eq!(
        h.client_configuration(&cid, "DELETE", "", Some(&management))
            .status,
        204
    );
    dead(&mut h, &rs, &token);
    // The deleted client gets nothing new.
    assert_eq!(
        h.token("grant_type=client_credentials", Some(&cauth))
            .status,
        401
    );
}

#[test]
fn the_embedders_revocations_refuse_every_token_issued_before_in_the_same_second() {
    // revoke_client: the client's user tokens and its client_credentials tokens.
    let mut h = Harness::default();
    let rs = h.resource_server();
    let auth = basic("web", h.confidential_client().expose());
    let machine = client_credentials(&mut h, &auth);
    let (user, refresh) = h.app_tokens();
    let effects = h.engine.revoke_client("web", h.now);
    h.apply(effects);
    dead(&mut h, &rs, &machine);
    alive(&mut h, &rs, &user);
    let effects = h.engine.revoke_client("app", h.now);
    h.apply(effects);
    dead(&mut h, &rs, &user);
    assert_eq!(
        json(&refresh_with(&mut h, &refresh))["error"],
        "invalid_grant"
    );

    // revoke_subject (password change, deleted user): every token of the subject.
    let mut h = Harness::default();
    let rs = h.resource_server();
    let (user, refresh) = h.app_tokens();
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    dead(&mut h, &rs, &user);
    assert_eq!(
        json(&refresh_with(&mut h, &refresh))["error"],
        "invalid_grant"
    );
    // A new sign-in in the same second gives a live token.
    let (fresh, _) = h.app_tokens();
    alive(&mut h, &rs, &fresh);
}

#[test]
fn revoking_a_grant_after_shifted_issues_in_the_same_second_kills_them_until_they_expire() {
    // A token issued right after a revocation may claim a later second; a revocation made after it
    // in the same second must still reach it, for as long as it would otherwise be valid.
    let mut h = Harness::default();
    let rs = h.resource_server();
    let (access, mut refresh) = h.app_tokens();
    let mut newest = access;
    for _ in 0..2 {
        assert_eq!(
            h.revoke(&format!("token={newest}&client_id=app"), None)
                .status,
            200
        );
        dead(&mut h, &rs, &newest);
        newest = refreshed(&mut h, &mut refresh);
        alive(&mut h, &rs, &newest);
    }
    assert_eq!(
        h.revoke(&format!("token={refresh}&client_id=app"), None)
            .status,
        200
    );
    dead(&mut h, &rs, &newest);
    let claims = oauth_proto::access_token::validate(
        &h.engine.keys(),
        &newest,
        h.now,
        &oauth_proto::store::NothingRevoked,
    )
    .unwrap();
    // Purging just before it expires forgets nothing it needs.
    h.now = claims.expires_at - 1;
    h.store.purge(h.now).unwrap();
    assert_eq!(h.validate(&newest), Err(TokenError::Revoked));
}
