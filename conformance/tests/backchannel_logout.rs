//! `amr` and `sid` in ID tokens (RFC 8176; OpenID Connect Back-Channel Logout 1.0 §2.1), the
//! logout tokens of back-channel logout (§2.4), its registration members (§2.2) and discovery
//! (§2.1), through the engine.

use conformance::*;
use oauth_proto::authentication::Authentication;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::Config;
use oauth_proto::jose::logout_token::{LogoutTokenClaims, EVENT};
use oauth_proto::jose::{IdTokenClaims, VerifyingKey};
use oauth_proto::store::Effect;

const REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";

fn harness() -> Harness {
    Harness::new(Config {
        backchannel_logout: true,
        ..Config::default()
    })
}

fn rp(h: &Harness, id: &str) {
    h.add_client(
        id,
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email offline_access",
    );
}

/// Sets a client's back-channel logout members, as a registration would keep them.
fn with_logout_uri(h: &Harness, id: &str, uri: &str, session_required: bool) {
    let mut client = h.client(id).expect("client");
    client
        .metadata
        .insert("backchannel_logout_uri".into(), uri.into());
    client.metadata.insert(
        "backchannel_logout_session_required".into(),
        session_required.into(),
    );
    h.apply(vec![Effect::PutClient(client)]);
}

fn signed_in(h: &Harness) -> Authentication {
    Authentication {
        auth_time: h.now - 60,
        amr: vec!["pwd".into()],
        sid: Some("Vx1-session-7".into()),
    }
}

/// A code approved for alice in `authn`'s session, exchanged: the token response.
fn tokens(h: &mut Harness, client: &str, authn: Authentication) -> serde_json::Value {
    tokens_for(h, client, "alice", authn, "openid+offline_access")
}

/// A code for `scope` approved by `subject` in `authn`'s session, exchanged: the token response.
fn tokens_for(
    h: &mut Harness,
    client: &str,
    subject: &str,
    authn: Authentication,
    scope: &str,
) -> serde_json::Value {
    let query = format!(
        "response_type=code&client_id={client}&redirect_uri={REDIRECT}&scope={scope}\
         &code_challenge={CHALLENGE}&code_challenge_method=S256&nonce=n1"
    );
    let pending = h.pending(&query);
    let flow = h.engine.approve(pending, subject, authn, h.now).unwrap();
    let code = match h.run(flow) {
        oauth_proto::authorize::DecisionOutcome::Redirect(r) => location_param(&r, "code").unwrap(),
        other => panic!("{other:?}"),
    };
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id={client}\
             &redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    json(&r)
}

/// Verifies `token` with the published JWK Set only, as a relying party does; its claims.
fn verify_with_jwks(h: &Harness, token: &str) -> (serde_json::Value, serde_json::Value) {
    let jwks: serde_json::Value = serde_json::from_str(&h.engine.jwks().body).unwrap();
    let keys: Vec<VerifyingKey> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| VerifyingKey::from_jwk(&serde_json::from_value(k.clone()).unwrap()).unwrap())
        .collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let key = keys
        .iter()
        .find(|k| Some(k.kid()) == header["kid"].as_str())
        .expect("kid published");
    let verified = oauth_proto::jose::jws::verify_with(token, key).expect("signature verifies");
    (header, serde_json::from_slice(&verified.payload).unwrap())
}

#[test]
fn id_tokens_carry_amr_and_sid_through_refresh() {
    let mut h = harness();
    rp(&h, "rp");
    let authn = signed_in(&h);
    let body = tokens(&mut h, "rp", authn);
    let (_, claims) = verify_with_jwks(&h, body["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["sid"], "Vx1-session-7");
    assert!(claims.get("acr").is_none(), "nothing real is known of acr");
    h.now += 100;
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=rp"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, again) = verify_with_jwks(&h, json(&r)["id_token"].as_str().unwrap());
    assert_eq!(again["amr"], serde_json::json!(["pwd"]));
    assert_eq!(again["sid"], "Vx1-session-7");
    assert_eq!(again["auth_time"], claims["auth_time"]);

    // Known only by its time: neither claim, rather than a guess.
    let authn = Authentication::from(h.now);
    let body = tokens(&mut h, "rp", authn);
    let (_, claims) = verify_with_jwks(&h, body["id_token"].as_str().unwrap());
    assert!(
        claims.get("amr").is_none() && claims.get("sid").is_none(),
        "{claims}"
    );
}

#[test]
fn a_malformed_sign_in_is_refused() {
    let mut h = harness();
    rp(&h, "rp");
    let query = format!(
        "response_type=code&client_id=rp&redirect_uri={REDIRECT}&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let bad = Authentication {
        sid: Some("has space".into()),
        ..signed_in(&h)
    };
    let pending = h.pending(&query);
    assert!(h.engine.approve(pending, "alice", bad, h.now).is_err());
}

#[test]
fn logout_tokens_say_who_and_which_session_and_verify_with_the_jwks() {
    let mut h = harness();
    rp(&h, "rp");
    rp(&h, "quiet");
    with_logout_uri(&h, "rp", "https://rp.example/bc", true);
    let authn = signed_in(&h);
    let body = tokens(&mut h, "rp", authn);
    let (_, id) = verify_with_jwks(&h, body["id_token"].as_str().unwrap());
    h.now += 10;
    let clients = ["rp".to_string(), "quiet".into(), "gone".into(), "rp".into()];
    let flow = h
        .engine
        .backchannel_logout("alice", Some("Vx1-session-7"), &clients, h.now);
    let notices = h.run(flow).notices;
    // Only the client with a backchannel_logout_uri, once.
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].client_id, "rp");
    assert_eq!(notices[0].uri, "https://rp.example/bc");
    let (header, claims) = verify_with_jwks(&h, &notices[0].logout_token);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], id["sid"], "the ID token's session");
    assert_eq!(claims["iat"], h.now);
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp > h.now && exp <= h.now + 300, "short-lived: {exp}");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }));
    assert!(claims.get("nonce").is_none());
    // The engine's decoder agrees, and no logout token passes for an ID token.
    let keys = h.engine.signing_keys();
    assert!(LogoutTokenClaims::decode(&notices[0].logout_token, &keys).is_ok());
    assert!(IdTokenClaims::decode(&notices[0].logout_token, &keys).is_err());
    // Each token is unique.
    let flow = h
        .engine
        .backchannel_logout("alice", Some("Vx1-session-7"), &clients, h.now);
    let again = h.run(flow).notices;
    let (_, second) = verify_with_jwks(&h, &again[0].logout_token);
    assert_ne!(second["jti"], claims["jti"]);

    // session_required and no sid: that client is not told.
    let flow = h.engine.backchannel_logout("alice", None, &clients, h.now);
    assert!(h.run(flow).notices.is_empty());
    // Turned off: nobody is.
    let mut off = Harness::default();
    rp(&off, "rp");
    with_logout_uri(&off, "rp", "https://rp.example/bc", false);
    let flow = off
        .engine
        .backchannel_logout("alice", Some("s"), &clients, off.now);
    assert!(off.run(flow).notices.is_empty());
}

fn register(h: &mut Harness, extra: &str) -> (u16, serde_json::Value) {
    let body = format!(
        r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
            "grant_types":["authorization_code"],"scope":"openid"{extra}}}"#
    );
    let r = h.register(&body, None);
    (r.status, json(&r))
}

#[test]
fn registration_checks_and_echoes_the_logout_members() {
    let mut h = harness();
    let (status, body) = register(
        &mut h,
        r#","backchannel_logout_uri":"https://rp.example/logout?x=1","backchannel_logout_session_required":true"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["backchannel_logout_uri"],
        "https://rp.example/logout?x=1"
    );
    assert_eq!(body["backchannel_logout_session_required"], true);
    let (status, body) = register(
        &mut h,
        r#","backchannel_logout_uri":"http://127.0.0.1:9/bc""#,
    );
    assert_eq!(status, 201, "loopback http: {body}");

    for (extra, says) in [
        (
            r#","backchannel_logout_uri":"https://rp.example/bc#f""#,
            "fragment",
        ),
        (
            r#","backchannel_logout_uri":"http://rp.example/bc""#,
            "http",
        ),
        (
            r#","backchannel_logout_uri":"com.example.app:/bc""#,
            "https",
        ),
        (r#","backchannel_logout_uri":"/relative""#, "https"),
        (r#","backchannel_logout_uri":42"#, "string"),
        (
            r#","backchannel_logout_session_required":"yes""#,
            "true or false",
        ),
    ] {
        let (status, body) = register(&mut h, extra);
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{extra}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{extra}: {description}");
    }
    let long = format!(
        r#","backchannel_logout_uri":"https://rp.example/{}""#,
        "a".repeat(3000)
    );
    let (status, body) = register(&mut h, &long);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );

    // A server that does not send them refuses them, and says so.
    let mut off = Harness::default();
    let (status, body) = register(
        &mut off,
        r#","backchannel_logout_uri":"https://rp.example/bc""#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("does not send back-channel logout"));
}

#[test]
fn discovery_says_what_is_true() {
    let on: serde_json::Value = serde_json::from_str(&harness().engine.metadata().body).unwrap();
    assert_eq!(on["backchannel_logout_supported"], true);
    assert_eq!(on["backchannel_logout_session_supported"], true);
    assert!(on.get("acr_values_supported").is_none());
    let claims = on["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&"amr".into()) && claims.contains(&"sid".into()));
    assert!(!claims.contains(&"acr".into()));
    let off: serde_json::Value =
        serde_json::from_str(&Harness::default().engine.metadata().body).unwrap();
    assert!(off.get("backchannel_logout_supported").is_none());
}

#[test]
fn a_silent_code_carries_the_sessions_amr_and_sid() {
    let mut h = harness();
    rp(&h, "rp");
    // A first approval remembers the consent; the next request gets a code without a page.
    let authn = signed_in(&h);
    tokens(&mut h, "rp", authn.clone());
    let query = format!(
        "response_type=code&client_id=rp&redirect_uri={REDIRECT}&scope=openid+offline_access\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let pending = h.pending(&query);
    let who = oauth_proto::interaction::SignedIn {
        subject: "alice",
        auth_time: authn.auth_time,
        amr: &authn.amr,
        sid: authn.sid.as_deref(),
        fresh: false,
    };
    let flow = h.engine.proceed(pending, Some(who), h.now);
    let code = match h.run(flow) {
        oauth_proto::interaction::Step::Redirect(r) => location_param(&r, "code").expect("code"),
        other => panic!("{other:?}"),
    };
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=rp\
             &redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = verify_with_jwks(&h, json(&r)["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["sid"], "Vx1-session-7");

    // A malformed sign-in from the embedder is an error page, never a code.
    let pending = h.pending(&query);
    let bad = oauth_proto::interaction::SignedIn {
        sid: Some("two words"),
        ..who
    };
    let flow = h.engine.proceed(pending, Some(bad), h.now);
    assert!(matches!(
        h.run(flow),
        oauth_proto::interaction::Step::ErrorPage(e) if e.description.contains("sid")
    ));
}

#[test]
fn the_device_flow_states_amr_but_no_session() {
    let mut h = harness();
    h.add_client(
        "tv",
        ClientKind::Public,
        &[],
        &[GrantType::DeviceCode, GrantType::RefreshToken],
        "openid offline_access",
    );
    let j = json(&h.device_authorization("client_id=tv&scope=openid+offline_access", None));
    let device_code = j["device_code"].as_str().unwrap().to_owned();
    let oauth_proto::device_verify::DeviceVerifyOutcome::Consent(pending) =
        h.device_verify(j["user_code"].as_str().unwrap())
    else {
        panic!("consent");
    };
    let flow = h
        .engine
        .device_approve(pending, "alice", signed_in(&h), h.now)
        .unwrap();
    h.run(flow);
    h.now += 10;
    let body = json(&h.poll(&device_code));
    let (_, claims) = verify_with_jwks(&h, body["id_token"].as_str().expect("an ID token"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(
        claims.get("sid").is_none(),
        "the device was in no browser session"
    );
    h.now += 10;
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=tv"),
        None,
    );
    let (_, again) = verify_with_jwks(&h, json(&r)["id_token"].as_str().unwrap());
    assert_eq!(again["amr"], serde_json::json!(["pwd"]));
}

fn front_harness() -> Harness {
    Harness::new(Config {
        frontchannel_logout: true,
        ..Config::default()
    })
}

fn register_front(h: &mut Harness, extra: &str) -> (u16, serde_json::Value) {
    let body = format!(
        r#"{{"redirect_uris":["https://rp.example/cb","http://127.0.0.1:4711/cb"],
            "token_endpoint_auth_method":"none","grant_types":["authorization_code"],
            "scope":"openid"{extra}}}"#
    );
    let r = h.register(&body, None);
    (r.status, json(&r))
}

#[test]
fn front_channel_registration_keeps_the_clients_own_site() {
    let mut h = front_harness();
    for good in [
        r#","frontchannel_logout_uri":"https://rp.example/logout?x=1","frontchannel_logout_session_required":true"#,
        r#","frontchannel_logout_uri":"http://127.0.0.1:4711/fc""#,
    ] {
        let (status, body) = register_front(&mut h, good);
        assert_eq!(status, 201, "{good}: {body}");
        assert!(body["frontchannel_logout_uri"].is_string(), "{body}");
    }
    for (extra, says) in [
        // Another site than the redirect URIs': registering must not make the page frame it.
        (
            r#","frontchannel_logout_uri":"https://evil.example/fc""#,
            "redirect_uris",
        ),
        (
            r#","frontchannel_logout_uri":"https://rp.example:8443/fc""#,
            "redirect_uris",
        ),
        (
            r#","frontchannel_logout_uri":"http://127.0.0.1:9/fc""#,
            "redirect_uris",
        ),
        (
            r#","frontchannel_logout_uri":"https://rp.example/fc#x""#,
            "fragment",
        ),
        (
            r#","frontchannel_logout_uri":"http://rp.example/fc""#,
            "http",
        ),
        (
            r#","frontchannel_logout_session_required":1"#,
            "true or false",
        ),
    ] {
        let (status, body) = register_front(&mut h, extra);
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{extra}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{extra}: {description}");
    }
    let (status, body) = register_front(
        &mut Harness::default(),
        r#","frontchannel_logout_uri":"https://rp.example/fc""#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("does not send front-channel logout"));
}

#[test]
fn front_channel_frames_carry_iss_and_sid() {
    let mut h = front_harness();
    for (id, session_required) in [("rp", false), ("strict", true)] {
        rp(&h, id);
        let mut client = h.client(id).expect("client");
        client.metadata.insert(
            "frontchannel_logout_uri".into(),
            "https://rp.example/fc?from=op".into(),
        );
        client.metadata.insert(
            "frontchannel_logout_session_required".into(),
            session_required.into(),
        );
        h.apply(vec![Effect::PutClient(client)]);
    }
    rp(&h, "quiet");
    let clients = [
        "rp".to_string(),
        "strict".into(),
        "quiet".into(),
        "gone".into(),
    ];
    let flow = h.engine.frontchannel_logout(Some("s 1&x"), &clients, h.now);
    let frames = h.run(flow);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].client_id, "rp");
    // The query kept, `iss` and `sid` appended, form-encoded.
    assert_eq!(
        frames[0].url,
        "https://rp.example/fc?from=op&iss=http%3A%2F%2F127.0.0.1%3A8080&sid=s+1%26x"
    );
    // Without a sid: no iss and sid, and the client that requires them is left out.
    let flow = h.engine.frontchannel_logout(None, &clients, h.now);
    let frames = h.run(flow);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].url, "https://rp.example/fc?from=op");

    let on: serde_json::Value = serde_json::from_str(&h.engine.metadata().body).unwrap();
    assert_eq!(on["frontchannel_logout_supported"], true);
    assert_eq!(on["frontchannel_logout_session_supported"], true);
    let off: serde_json::Value =
        serde_json::from_str(&Harness::default().engine.metadata().body).unwrap();
    assert!(off.get("frontchannel_logout_supported").is_none());
    let flow = Harness::default()
        .engine
        .frontchannel_logout(Some("s"), &clients, h.now);
    assert!(h.run(flow).is_empty(), "turned off: no frames");
}

fn refreshes(h: &mut Harness, body: &serde_json::Value) -> u16 {
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=rp"),
        None,
    )
    .status
}

/// §2.7: the ended session's grants without offline_access are revoked (refresh and access
/// tokens), those with it stay, and so do other sessions' and other users' grants; whether or
/// not back-channel logout is on and any client is told.
#[test]
fn a_session_end_revokes_its_grants_without_offline_access() {
    for backchannel in [true, false] {
        let mut h = Harness::new(Config {
            backchannel_logout: backchannel,
            ..Config::default()
        });
        rp(&h, "rp");
        let session = signed_in(&h);
        let other_session = Authentication {
            sid: Some("other-session".into()),
            ..signed_in(&h)
        };
        let online = tokens_for(&mut h, "rp", "alice", session.clone(), "openid");
        let offline = tokens_for(
            &mut h,
            "rp",
            "alice",
            session.clone(),
            "openid+offline_access",
        );
        let elsewhere = tokens_for(&mut h, "rp", "alice", other_session, "openid");
        let bobs = tokens_for(&mut h, "rp", "bob", session, "openid");
        let access = online["access_token"].as_str().unwrap().to_owned();
        assert!(h.validate(&access).is_ok());
        h.now += 10;
        // No client is named: the revocation does not depend on telling anyone.
        let flow = h
            .engine
            .backchannel_logout("alice", Some("Vx1-session-7"), &[], h.now);
        let end = h.run(flow);
        assert!(end.notices.is_empty());
        assert_eq!(end.revoked.len(), 1, "{end:?}");
        assert!(!end.more);
        h.now += 1;
        assert!(h.validate(&access).is_err(), "its access token is refused");
        let r = h.token(
            &format!(
                "grant_type=refresh_token&refresh_token={}&client_id=rp",
                online["refresh_token"].as_str().unwrap()
            ),
            None,
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(json(&r)["error"], "invalid_grant");
        assert!(h
            .validate(offline["access_token"].as_str().unwrap())
            .is_ok());
        assert_eq!(refreshes(&mut h, &offline), 200, "offline_access stays");
        assert_eq!(refreshes(&mut h, &elsewhere), 200, "another session's");
        assert_eq!(refreshes(&mut h, &bobs), 200, "another user's");
        // Ending it again revokes nothing more; a session without sid names no grant.
        let flow = h
            .engine
            .backchannel_logout("alice", Some("Vx1-session-7"), &[], h.now);
        assert!(h.run(flow).revoked.is_empty());
        let flow = h.engine.backchannel_logout("alice", None, &[], h.now);
        assert!(h.run(flow).revoked.is_empty());
    }
}

/// The session's grants are read page by page, offline_access ones passed over, up to the
/// bound, which the outcome reports when reached.
#[test]
fn a_session_end_reads_its_grants_in_bounded_pages() {
    use conformance::store_contract::fixtures::{grant, scope};
    use oauth_proto::backchannel_logout::MAX_SESSION_GRANT_PAGES;
    use oauth_proto::store::MAX_SESSION_GRANTS;
    let grants = |n: u64, offline_every: u64| -> Vec<Effect> {
        (1..=n)
            .map(|i| {
                let mut g = grant(i, "rp", "alice", u64::MAX);
                g.sid = Some("s".into());
                let offline = offline_every > 0 && i % offline_every == 0;
                g.scope = scope(if offline {
                    "openid offline_access"
                } else {
                    "openid"
                });
                Effect::PutGrant(g)
            })
            .collect()
    };
    let mut h = harness();
    let n = MAX_SESSION_GRANTS as u64 * 2 + 7;
    h.apply(grants(n, 2));
    let flow = h.engine.backchannel_logout("alice", Some("s"), &[], h.now);
    let end = h.run(flow);
    assert_eq!(
        end.revoked.len() as u64,
        n - n / 2,
        "every page, offline ones kept"
    );
    assert!(!end.more);

    let mut h = harness();
    let bound = (MAX_SESSION_GRANTS * MAX_SESSION_GRANT_PAGES) as u64;
    h.apply(grants(bound + 1, 0));
    let flow = h.engine.backchannel_logout("alice", Some("s"), &[], h.now);
    let end = h.run(flow);
    assert_eq!(end.revoked.len() as u64, bound);
    assert!(end.more, "the grant past the bound is reported");
}
