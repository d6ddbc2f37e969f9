//! Checklist section I (refresh tokens) and subject-wide revocation.

use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::Config;
use oauth_proto::response::Response;
use oauth_proto::secret::Secret;

const WEB_QUERY: &str = "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

fn err(r: &Response) -> String {
    json(r)["error"].as_str().unwrap_or_default().to_owned()
}

/// A confidential client's grant: (harness, secret, access token, refresh token).
fn web_grant() -> (Harness, Secret, String, String) {
    let mut h = Harness::default();
    let s = h.confidential_client();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    let j = json(&r);
    let (a, rt) = (
        j["access_token"].as_str().unwrap().to_owned(),
        j["refresh_token"].as_str().unwrap().to_owned(),
    );
    (h, s, a, rt)
}

fn refresh(h: &mut Harness, s: &Secret, rt: &str, extra: &str) -> Response {
    h.token(
        &format!("grant_type=refresh_token&refresh_token={rt}{extra}"),
        Some(&basic("web", s.expose())),
    )
}

#[test]
fn i83_refresh_token_is_bound_to_its_client() {
    let (mut h, _, _, rt) = web_grant();
    let other = h
        .add_client(
            "other",
            ClientKind::Confidential,
            &["https://o.example/cb"],
            &[GrantType::RefreshToken],
            "mail offline_access",
        )
        .unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&basic("other", other.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn i84_i85_scope_may_only_narrow_and_the_refresh_token_keeps_the_grant_scope() {
    let (mut h, s, _, rt) = web_grant();
    let r = refresh(&mut h, &s, &rt, "&scope=mail+admin");
    assert_eq!(err(&r), "invalid_scope");
    let r = refresh(&mut h, &s, &rt, "&scope=mail");
    assert_eq!(json(&r)["scope"], "mail");
    let r = refresh(&mut h, &s, &rt, "");
    assert_eq!(json(&r)["scope"], "mail offline_access");
}

#[test]
fn confidential_client_keeps_its_refresh_token_until_the_renewal_threshold() {
    let (mut h, s, _, rt) = web_grant();
    h.now += 86400;
    let r = refresh(&mut h, &s, &rt, "");
    assert_eq!(r.status, 200);
    assert!(
        json(&r).get("refresh_token").is_none(),
        "30-1 days left: no rotation"
    );
    // Less than 4 days left: a new one, with the full lifetime.
    h.now += 25 * 86400 + 1;
    let r = refresh(&mut h, &s, &rt, "");
    let new = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, rt);
    h.now += 20 * 86400;
    assert_eq!(
        refresh(&mut h, &s, &new, "").status,
        200,
        "the new token got a fresh 30 days"
    );
    assert_eq!(
        err(&refresh(&mut h, &s, &rt, "")),
        "invalid_grant",
        "the old one is rotated out"
    );
}

#[test]
fn i86_public_client_reuse_revokes_the_grant() {
    let mut h = Harness::default();
    h.public_client();
    let code = h.code_for("response_type=code&client_id=app&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "bob");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
        ),
        None,
    );
    let rt1 = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    h.now += 5;
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={rt1}&client_id=app"),
        None,
    );
    let j = json(&r);
    let rt2 = j["refresh_token"].as_str().unwrap().to_owned();
    let at2 = j["access_token"].as_str().unwrap().to_owned();
    h.now += 5;
    assert_eq!(
        err(&h.token(
            &format!("grant_type=refresh_token&refresh_token={rt1}&client_id=app"),
            None
        )),
        "invalid_grant"
    );
    assert_eq!(h.validate(&at2), Err(TokenError::Revoked));
    assert_eq!(
        err(&h.token(
            &format!("grant_type=refresh_token&refresh_token={rt2}&client_id=app"),
            None
        )),
        "invalid_grant"
    );
}

#[test]
fn i87_i88_refresh_fails_once_the_subject_is_revoked() {
    let (mut h, s, at, rt) = web_grant();
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
    assert_eq!(err(&refresh(&mut h, &s, &rt, "")), "invalid_grant");
    // New grants after the password change work, with the new credential version.
    h.now += 1;
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    let at = json(&r)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.validate(&at).unwrap().credential_version, 1);
}

#[test]
fn revoke_subject_drops_unredeemed_codes() {
    let mut h = Harness::default();
    let s = h.confidential_client();
    let code = h.code_for(WEB_QUERY, "alice");
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn i90_refresh_tokens_only_for_clients_allowed_the_grant() {
    let mut h = Harness::default();
    let s = h
        .add_client(
            "norefresh",
            ClientKind::Confidential,
            &["https://n.example/cb"],
            &[GrantType::AuthorizationCode],
            "mail",
        )
        .unwrap();
    let code = h.code_for("response_type=code&client_id=norefresh&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "alice");
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(&basic("norefresh", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json(&r).get("refresh_token").is_none());
}

#[test]
fn i91_refresh_tokens_expire() {
    let (mut h, s, _, rt) = web_grant();
    h.now += 30 * 86400;
    assert_eq!(err(&refresh(&mut h, &s, &rt, "")), "invalid_grant");
}

#[test]
fn i89_a_refresh_token_is_an_opaque_reference_and_a_tampered_one_is_invalid_grant() {
    let (mut h, s, _, rt) = web_grant();
    let flip = |i: usize| {
        let mut b = rt.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    for tampered in [
        flip(0),
        flip(rt.len() / 2),
        flip(rt.len() - 1),
        format!("{rt}A"),
        rt[..rt.len() - 1].to_owned(),
    ] {
        let r = refresh(&mut h, &s, &tampered, "");
        assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    }
    // Nothing was revoked by the attempts.
    let r = refresh(&mut h, &s, &rt, "");
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn i91_refresh_tokens_expire_after_a_configured_idle_period() {
    let day = 86400;
    let mut h = Harness::new(Config {
        refresh_token_ttl_secs: day,
        refresh_renewal_threshold_secs: day / 2,
        ..Config::default()
    });
    h.public_client();
    let s = h.confidential_client();
    let code = h.code_for(&format!("response_type=code&client_id=app&code_challenge={CHALLENGE}&code_challenge_method=S256"), "bob");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
        ),
        None,
    );
    let mut public_rt = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    let mut web_rt = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    // Used every 20 hours for a week, both stay alive well past one period.
    for _ in 0..9 {
        h.now += 20 * 3600;
        let r = h.token(
            &format!("grant_type=refresh_token&refresh_token={public_rt}&client_id=app"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        public_rt = json(&r)["refresh_token"].as_str().unwrap().to_owned();
        let r = refresh(&mut h, &s, &web_rt, "");
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(new) = json(&r)["refresh_token"].as_str() {
            web_rt = new.to_owned();
        }
    }
    // Then idle for one period: both are gone.
    h.now += day;
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={public_rt}&client_id=app"),
        None,
    );
    assert_eq!(err(&r), "invalid_grant");
    assert_eq!(err(&refresh(&mut h, &s, &web_rt, "")), "invalid_grant");
}

#[test]
fn purge_removes_expired_state() {
    let (mut h, _, _, _) = web_grant();
    let before = h.store.read().len();
    h.now += 31 * 86400;
    let stats = oauth_proto::store::Store::purge(&h.store, h.now).unwrap();
    assert!(stats.removed >= 3, "code, grant, refresh token: {stats:?}");
    assert_eq!(h.store.read().len(), before - stats.removed as usize);
}

#[test]
fn i88_a_code_approved_while_the_credentials_change_is_refused() {
    use oauth_proto::flow::Next;
    use oauth_proto::store::Store;
    let mut h = Harness::default();
    let s = h.confidential_client();
    let pending = h.pending(WEB_QUERY);
    let mut flow = h
        .engine
        .approve(pending, "alice", h.now, h.now)
        .expect("valid subject");
    // The race: the password change lands after the approval read the credential version and
    // before its code is stored, so the code outlives the revocation that deletes codes.
    let response = loop {
        match flow.step(&mut h.rng) {
            Next::Op(op, waiting) => {
                flow = waiting.answer(h.store.execute(op).expect("memory store"))
            }
            Next::Done(done) => {
                h.apply(h.engine.revoke_subject("alice", h.now));
                h.apply(done.effects);
                break done.output;
            }
        }
    };
    let oauth_proto::authorize::DecisionOutcome::Redirect(response) = response else {
        panic!("{response:?}")
    };
    let code = location_param(&response, "code").expect("a code was issued");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r).get("access_token").is_none());
}

#[test]
fn i88_a_grant_stored_after_a_racing_credential_change_cannot_refresh() {
    use oauth_proto::store::{Effect, Op, RefreshKey, Reply, Store};
    let (mut h, s, _, rt) = web_grant();
    let Ok(Reply::Refresh(Some(found))) = h.store.execute(Op::GetRefresh {
        key: RefreshKey::of(&rt),
    }) else {
        panic!("the refresh token is stored");
    };
    // The race: the password change lands between the redemption's checks and its writes, so the
    // new grant is stored, unrevoked, after the subject's credential version was bumped.
    h.apply(h.engine.revoke_subject("alice", h.now));
    h.apply(vec![
        Effect::PutGrant(found.grant.clone()),
        Effect::PutRefreshFamily(found.family.clone()),
    ]);
    let r = refresh(&mut h, &s, &rt, "");
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    let Ok(Reply::Refresh(Some(after))) = h.store.execute(Op::GetRefresh {
        key: RefreshKey::of(&rt),
    }) else {
        panic!("the refresh token is still stored");
    };
    assert!(
        after.grant.revoked_at.is_some(),
        "the stale grant is revoked"
    );
}

/// A public client's first refresh token, from a harness whose rotated tokens may be retried for
/// `grace` seconds.
fn public_grant_with_grace(grace: u64) -> (Harness, String) {
    let mut h = Harness::new(Config {
        refresh_reuse_grace_secs: grace,
        ..Config::default()
    });
    h.public_client();
    let code = h.code_for(&format!("response_type=code&client_id=app&code_challenge={CHALLENGE}&code_challenge_method=S256"), "bob");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
        ),
        None,
    );
    let rt = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    (h, rt)
}

fn public_refresh(h: &mut Harness, rt: &str) -> Response {
    h.token(
        &format!("grant_type=refresh_token&refresh_token={rt}&client_id=app"),
        None,
    )
}

fn new_refresh_token(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    json(r)["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn within_the_grace_window_a_lost_rotation_can_be_retried_once_its_successor_is_unused() {
    let (mut h, rt1) = public_grant_with_grace(30);
    h.now += 100;
    let lost = new_refresh_token(&public_refresh(&mut h, &rt1));
    // The answer carrying `lost` never arrived; the client retries with rt1.
    h.now += 29;
    let retried = public_refresh(&mut h, &rt1);
    let rt2 = new_refresh_token(&retried);
    assert_ne!(rt2, lost);
    let at2 = json(&retried)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.validate(&at2).map(|_| ()), Ok(()), "the grant lives on");
    // The chain goes on from the retry's token.
    h.now += 60;
    let rt3 = new_refresh_token(&public_refresh(&mut h, &rt2));
    // The token the client never got was rotated out: presented now, past its window, it is reuse.
    assert_eq!(err(&public_refresh(&mut h, &lost)), "invalid_grant");
    assert_eq!(h.validate(&at2), Err(TokenError::Revoked));
    assert_eq!(err(&public_refresh(&mut h, &rt3)), "invalid_grant");
}

#[test]
fn past_the_grace_window_a_rotated_token_is_reuse() {
    let (mut h, rt1) = public_grant_with_grace(30);
    h.now += 100;
    let rt2 = new_refresh_token(&public_refresh(&mut h, &rt1));
    h.now += 30;
    let r = public_refresh(&mut h, &rt1);
    assert_eq!(err(&r), "invalid_grant");
    assert!(json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(
        err(&public_refresh(&mut h, &rt2)),
        "invalid_grant",
        "the grant is revoked"
    );
}

#[test]
fn within_the_grace_window_a_rotated_token_whose_successor_was_used_is_reuse() {
    let (mut h, rt1) = public_grant_with_grace(30);
    h.now += 100;
    let rt2 = new_refresh_token(&public_refresh(&mut h, &rt1));
    h.now += 1;
    let rt3 = new_refresh_token(&public_refresh(&mut h, &rt2));
    // rt1 again, inside its window: but its successor has been used, so whoever holds rt1 is not
    // the client retrying a lost answer.
    h.now += 1;
    assert_eq!(err(&public_refresh(&mut h, &rt1)), "invalid_grant");
    assert_eq!(
        err(&public_refresh(&mut h, &rt3)),
        "invalid_grant",
        "the grant is revoked"
    );
}

#[test]
fn without_a_grace_window_an_immediate_retry_is_reuse() {
    let (mut h, rt1) = public_grant_with_grace(0);
    let rt2 = new_refresh_token(&public_refresh(&mut h, &rt1));
    assert_eq!(err(&public_refresh(&mut h, &rt1)), "invalid_grant");
    assert_eq!(err(&public_refresh(&mut h, &rt2)), "invalid_grant");
}

#[test]
fn a_retry_is_refused_once_the_grant_is_revoked() {
    let (mut h, rt1) = public_grant_with_grace(30);
    h.now += 100;
    new_refresh_token(&public_refresh(&mut h, &rt1));
    let effects = h.engine.revoke_subject("bob", h.now);
    h.apply(effects);
    h.now += 1;
    assert_eq!(err(&public_refresh(&mut h, &rt1)), "invalid_grant");
}

#[test]
fn the_grace_window_is_bounded() {
    for grace in [301, u64::MAX] {
        let config = Config {
            refresh_reuse_grace_secs: grace,
            ..Config::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("refresh_reuse_grace_secs"));
    }
}

/// The ops a token request asks the store, in order, by name.
fn token_ops(h: &mut Harness, body: &str, authorization: Option<&str>) -> Vec<String> {
    op_names(&h.token_asking(body, authorization).1)
}

#[test]
fn a_refresh_reads_once_then_rotates() {
    // The token's read carries the client and the revocation status: one read, then the swap. A
    // public client's plain refresh reads and rotates in one op (`refresh_public.rs`); one that
    // narrows the scope takes the two.
    let (mut h, rt) = public_grant_with_grace(0);
    let body = format!("grant_type=refresh_token&refresh_token={rt}&client_id=app&scope=mail");
    assert_eq!(
        token_ops(&mut h, &body, None),
        ["GetRefresh", "RotateRefresh"]
    );
    // A confidential client below the renewal threshold keeps its token: one read.
    let (mut h, s, _, rt) = web_grant();
    let auth = basic("web", s.expose());
    let body = format!("grant_type=refresh_token&refresh_token={rt}");
    assert_eq!(token_ops(&mut h, &body, Some(&auth)), ["GetRefresh"]);
    // Another client presenting the token is read as itself (and refused the token).
    let other = h
        .add_client(
            "other",
            ClientKind::Confidential,
            &["https://o.example/cb"],
            &[GrantType::RefreshToken],
            "mail offline_access",
        )
        .unwrap();
    let other = basic("other", other.expose());
    assert_eq!(
        token_ops(&mut h, &body, Some(&other)),
        ["GetRefresh", "GetClient"]
    );
    assert_eq!(err(&refresh(&mut h, &s, &rt, "")), "");
    assert_eq!(
        err(&h.token(&body, Some(&other))),
        "invalid_grant",
        "the token stays bound to its client"
    );
    // A request without a token reads only the client, and is refused after it.
    assert_eq!(
        token_ops(&mut h, "grant_type=refresh_token", Some(&auth)),
        ["GetClient"]
    );
}
