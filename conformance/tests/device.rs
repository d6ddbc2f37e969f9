//! Device authorization grant (RFC 8628): checklist P (136-143), 74 (separate code namespaces),
//! and the vectors of section 1.10.

use conformance::surface::*;
use conformance::*;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::Config;
use oauth_proto::device::{format_user_code, generate_user_code, normalize_user_code};
use oauth_proto::device_verify::{DeviceDecisionOutcome, DeviceVerifyOutcome, PendingDevice};
use oauth_proto::random::CounterRandom;
use oauth_proto::response::Response;
use oauth_proto::store::DeviceStatus;

#[track_caller]
fn error(r: &Response, code: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(json(r)["error"], code, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[track_caller]
fn consent(outcome: DeviceVerifyOutcome) -> PendingDevice {
    match outcome {
        DeviceVerifyOutcome::Consent(p) => p,
        other => panic!("expected consent, got {other:?}"),
    }
}

fn is_user_code(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 9
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || b"BCDFGHJKLMNPQRSTVWXZ".contains(c))
}

#[test]
fn device_authorization_response_shape() {
    // RFC 8628 §3.1 request and §3.2 response shape (137).
    let mut h = Harness::default();
    h.device_client();
    let r = h.device_authorization("client_id=tv&scope=mail", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = json(&r);
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert_eq!(j["device_code"].as_str().unwrap().len(), 43, "256 bits");
    let user_code = j["user_code"].as_str().unwrap();
    assert!(is_user_code(user_code), "{user_code}");
    assert_eq!(j["verification_uri"], "http://127.0.0.1:8080/device");
    assert_eq!(
        j["verification_uri_complete"],
        format!("http://127.0.0.1:8080/device?user_code={user_code}")
    );
    assert_eq!(j["expires_in"], 1800);
    assert_eq!(j["interval"], 5);
    let record = h.device_record(j["device_code"].as_str().unwrap()).unwrap();
    assert_eq!(record.status, DeviceStatus::Pending);
    assert_eq!(record.scope.to_string(), "mail");
    assert_eq!(record.expires_at, T0 + 1800);
    // The scope defaults to the client's.
    let r = h.device_authorization("client_id=tv", None);
    let code = json(&r)["device_code"].as_str().unwrap().to_owned();
    assert_eq!(
        h.device_record(&code).unwrap().scope.to_string(),
        "mail offline_access"
    );
}

#[test]
fn urls_follow_the_issuer() {
    let mut h = Harness::new(Config {
        issuer: "https://example.com/as".into(),
        device_code_ttl_secs: 600,
        device_poll_interval_secs: 2,
        ..Config::default()
    });
    h.device_client();
    let j = json(&h.device_authorization("client_id=tv", None));
    assert_eq!(j["verification_uri"], "https://example.com/as/device");
    assert!(j["verification_uri_complete"]
        .as_str()
        .unwrap()
        .starts_with("https://example.com/as/device?user_code="));
    assert_eq!(j["expires_in"], 600);
    assert_eq!(j["interval"], 2);
}

#[test]
fn device_authorization_request_checks() {
    // 136
    let mut h = Harness::default();
    h.device_client();
    h.public_client();
    let secret = h
        .add_client(
            "box",
            ClientKind::Confidential,
            &[],
            &[GrantType::DeviceCode],
            "mail",
        )
        .unwrap();
    // Unknown parameters are ignored; empty ones are absent.
    let r = h.device_authorization("client_id=tv&scope=&foo=bar", None);
    assert_eq!(r.status, 200, "{}", r.body);
    error(
        &h.device_authorization("client_id=tv&scope=mail&scope=mail", None),
        "invalid_request",
    );
    error(
        &h.device_authorization("scope=mail", None),
        "invalid_request",
    );
    error(
        &h.device_authorization("client_id=app", None),
        "unauthorized_client",
    );
    error(
        &h.device_authorization("client_id=tv&scope=calendar", None),
        "invalid_scope",
    );
    let r = h.device_authorization("client_id=nobody", None);
    assert_eq!(r.status, 401);
    assert_eq!(json(&r)["error"], "invalid_client");
    // Confidential clients authenticate as at the token endpoint.
    assert_eq!(h.device_authorization("client_id=box", None).status, 401);
    assert_eq!(
        h.device_authorization("", Some(&basic("box", "wrong")))
            .status,
        401
    );
    assert_eq!(
        h.device_authorization("", Some(&basic("box", secret.expose())))
            .status,
        200
    );
    let mut get = form("client_id=tv", None);
    get.method = "GET".into();
    let flow = h.engine.device_authorization(get, h.now);
    error(&h.run(flow), "invalid_request");
}

#[test]
fn full_flow_with_pending_slow_down_and_single_use() {
    let mut h = Harness::default();
    h.device_client();
    let (device_code, user_code) = h.start_device();
    // 138
    error(&h.poll(&device_code), "authorization_pending");
    // 139: too soon -> slow_down, and the interval grows by 5 s for good.
    h.now += 1;
    error(&h.poll(&device_code), "slow_down");
    assert_eq!(h.device_record(&device_code).unwrap().interval, 10);
    h.now += 6;
    let r = h.poll(&device_code);
    error(&r, "slow_down");
    assert!(json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("15 seconds"));
    assert_eq!(h.device_record(&device_code).unwrap().interval, 15);
    h.now += 15;
    error(&h.poll(&device_code), "authorization_pending");
    h.now += 14;
    error(&h.poll(&device_code), "slow_down");
    h.now += 20;
    error(&h.poll(&device_code), "authorization_pending");

    // 141-143: the user enters the code, in any case and with or without the dash.
    let typed = format!(" {} ", user_code.replace('-', "").to_lowercase());
    let pending = consent(h.device_verify(&typed));
    assert_eq!(pending.client_name(), "tv app");
    assert_eq!(pending.client_id(), "tv");
    assert_eq!(pending.scope().to_string(), "mail");
    assert_eq!(pending.user_code(), user_code);
    assert_eq!(
        h.device_approve(pending.clone(), "alice"),
        DeviceDecisionOutcome::Approved
    );
    // A second decision changes nothing.
    assert_eq!(
        h.device_approve(pending.clone(), "mallory"),
        DeviceDecisionOutcome::NotPending
    );
    assert_eq!(h.device_deny(pending), DeviceDecisionOutcome::NotPending);

    h.now += 20;
    let r = h.poll(&device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let j = json(&r);
    assert_eq!(j["scope"], "mail");
    let claims = h.validate(j["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.client_id, "tv");
    let refresh = j["refresh_token"].as_str().unwrap().to_owned();
    // 140: the device code is spent, even after the interval.
    h.now += 20;
    error(&h.poll(&device_code), "invalid_grant");
    assert_eq!(
        h.device_record(&device_code).unwrap().status,
        DeviceStatus::Consumed
    );
    // The user code cannot be entered again.
    assert!(matches!(
        h.device_verify(&user_code),
        DeviceVerifyOutcome::InvalidCode(_)
    ));
    // The refresh token works, and revoking it ends the device's grant.
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=tv"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let new_refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let r = h.revoke(&format!("token={new_refresh}&client_id=tv"), None);
    assert_eq!(r.status, 200);
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={new_refresh}&client_id=tv"),
        None,
    );
    error(&r, "invalid_grant");
}

#[test]
fn denied_and_expired() {
    let mut h = Harness::default();
    h.device_client();
    let (device_code, user_code) = h.start_device();
    let pending = consent(h.device_verify(&user_code));
    assert_eq!(
        h.device_deny(pending.clone()),
        DeviceDecisionOutcome::Denied
    );
    // 140
    error(&h.poll(&device_code), "access_denied");
    assert_eq!(
        h.device_approve(pending, "alice"),
        DeviceDecisionOutcome::NotPending
    );
    error(&h.poll(&device_code), "access_denied");

    let (device_code, user_code) = h.start_device();
    let pending = consent(h.device_verify(&user_code));
    h.now += 1800;
    error(&h.poll(&device_code), "expired_token");
    assert_eq!(h.device_verify(&user_code), DeviceVerifyOutcome::Expired);
    assert_eq!(
        h.device_approve(pending, "alice"),
        DeviceDecisionOutcome::Expired
    );
    error(&h.poll(&device_code), "expired_token");
}

#[test]
fn approval_is_immediate_and_tokens_are_issued_once() {
    // Approving and polling right away: no interval applies to the collecting poll.
    let mut h = Harness::default();
    h.add_client(
        "tv",
        ClientKind::Public,
        &[],
        &[GrantType::DeviceCode],
        "mail",
    );
    let (device_code, user_code) = h.start_device();
    let pending = consent(h.device_verify(&user_code));
    assert_eq!(
        h.device_approve(pending, "bob"),
        DeviceDecisionOutcome::Approved
    );
    let r = h.poll(&device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    // A client without the refresh grant gets no refresh token.
    assert!(json(&r).get("refresh_token").is_none());
    error(&h.poll(&device_code), "invalid_grant");
}

#[test]
fn another_clients_device_code_and_other_kinds_of_codes() {
    let mut h = Harness::default();
    h.device_client();
    h.add_client(
        "both",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[
            GrantType::DeviceCode,
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
        ],
        "mail offline_access",
    );
    let (device_code, _) = h.start_device();
    let before = h.device_record(&device_code).unwrap();
    let r = h.token(
        &format!("grant_type={DEVICE_GRANT}&device_code={device_code}&client_id=both"),
        None,
    );
    error(&r, "invalid_grant");
    assert_eq!(h.device_record(&device_code).unwrap(), before, "untouched");
    // The client must be allowed the device grant at the token endpoint too.
    h.public_client();
    let r = h.token(
        &format!("grant_type={DEVICE_GRANT}&device_code={device_code}&client_id=app"),
        None,
    );
    error(&r, "unauthorized_client");
    error(
        &h.token(&format!("grant_type={DEVICE_GRANT}&client_id=tv"), None),
        "invalid_request",
    );

    // 74: codes of one kind never work as another.
    let query = format!("response_type=code&client_id=both&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let poll_both = |h: &mut Harness, c: &str| {
        h.token(
            &format!("grant_type={DEVICE_GRANT}&device_code={c}&client_id=both"),
            None,
        )
    };
    error(&poll_both(&mut h, &code), "invalid_grant");
    let r = h.device_authorization("client_id=both&scope=mail", None);
    let j = json(&r);
    let both_device = j["device_code"].as_str().unwrap().to_owned();
    let both_user = j["user_code"].as_str().unwrap().replace('-', "");
    error(&poll_both(&mut h, &both_user), "invalid_grant");
    let as_code = |c: &str| {
        format!("grant_type=authorization_code&code={c}&client_id=both&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}")
    };
    error(&h.token(&as_code(&both_device), None), "invalid_grant");
    // The authorization code is still good after all that.
    let r = h.token(&as_code(&code), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    error(&poll_both(&mut h, &refresh), "invalid_grant");
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={both_device}&client_id=both"),
        None,
    );
    error(&r, "invalid_grant");
    // A device code is not introspectable as a token.
    let rs = h.resource_server();
    assert_eq!(
        json(&h.introspect(&format!("token={both_device}"), Some(&rs)))["active"],
        false
    );
}

#[test]
fn user_code_normalization_and_alphabet() {
    assert_eq!(
        normalize_user_code("WDJB-MJHT").as_deref(),
        Some("WDJBMJHT")
    );
    assert_eq!(
        normalize_user_code("wdjb-mjht").as_deref(),
        Some("WDJBMJHT")
    );
    assert_eq!(
        normalize_user_code(" wdjb mjht ").as_deref(),
        Some("WDJBMJHT")
    );
    assert_eq!(normalize_user_code("WDJBMJHT").as_deref(), Some("WDJBMJHT"));
    assert_eq!(
        normalize_user_code("W.D-J_B M/J:H T").as_deref(),
        Some("WDJBMJHT")
    );
    for bad in [
        "WDJB-MJH",
        "WDJB-MJHTX",
        "WDJA-MJHT",
        "WDJB-MJH1",
        "",
        "ŴDJB-MJHT",
        &"B".repeat(100),
    ] {
        assert_eq!(normalize_user_code(bad), None, "{bad}");
    }
    assert_eq!(format_user_code("WDJBMJHT"), "WDJB-MJHT");
    let mut rng = CounterRandom::new(42);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2000 {
        let code = generate_user_code(&mut rng);
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        seen.extend(code.bytes());
    }
    assert_eq!(seen.len(), 20, "every letter of the alphabet is used");
}

#[test]
fn approval_needs_a_subject_and_a_revoked_subject_gets_no_tokens() {
    let mut h = Harness::default();
    h.device_client();
    let (device_code, user_code) = h.start_device();
    let pending = consent(h.device_verify(&user_code));
    assert!(h
        .engine
        .device_approve(pending.clone(), "", h.now, h.now)
        .is_err());
    assert_eq!(
        h.device_approve(pending, "alice"),
        DeviceDecisionOutcome::Approved
    );
    // The subject's credentials are revoked before the device collects: no tokens.
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    error(&h.poll(&device_code), "invalid_grant");
}
