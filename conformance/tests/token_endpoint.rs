//! Checklist sections A (framing), B (client authentication), E/F/G (code redemption), H (token
//! response), J (other grants) at the token endpoint.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use conformance::surface::json_request;
use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::{Config, RegistrationPolicy};
use oauth_proto::flow::{drive, Flow, Procedure};
use oauth_proto::http::HttpRequest;
use oauth_proto::pkce::{self, PkceMethod};
use oauth_proto::random::{CounterRandom, Random};
use oauth_proto::response::Response;
use oauth_proto::secret::Secret;
use oauth_proto::store::Op;

const WEB_QUERY: &str = "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
const WEB_REDIRECT: &str = "redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb";

fn setup() -> (Harness, Secret) {
    let h = Harness::default();
    h.public_client();
    let secret = h.confidential_client();
    (h, secret)
}

fn err(r: &Response) -> String {
    json(r)["error"].as_str().unwrap_or_default().to_owned()
}

fn redeem_body(code: &str) -> String {
    format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}&code_verifier={VERIFIER}")
}

#[test]
fn a3_token_endpoint_is_post_form_only() {
    let (mut h, s) = setup();
    let auth = basic("web", s.expose());
    let mut get = HttpRequest::form_post("grant_type=client_credentials").with_authorization(&auth);
    get.method = "GET".into();
    let flow = h.engine.token(get, h.now);
    assert_eq!(err(&h.run(flow)), "invalid_request");
    let mut json_body =
        HttpRequest::form_post("grant_type=client_credentials").with_authorization(&auth);
    json_body.content_type = Some("application/json".into());
    let flow = h.engine.token(json_body, h.now);
    assert_eq!(err(&h.run(flow)), "invalid_request");
    let mut charset =
        HttpRequest::form_post("grant_type=client_credentials").with_authorization(&auth);
    charset.content_type = Some("application/x-www-form-urlencoded; charset=UTF-8".into());
    let flow = h.engine.token(charset, h.now);
    assert_eq!(h.run(flow).status, 200);
}

#[test]
fn a8_a9_a10_error_shape() {
    let (mut h, _) = setup();
    let r = h.token("grant_type=%22%5C%0A%C3%A9", Some(&basic("web", "x")));
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let j = json(&r);
    assert_eq!(j["error"], "unsupported_grant_type");
    let d = j["error_description"].as_str().unwrap();
    assert!(
        d.chars()
            .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
        "{d}"
    );
    assert!(j.as_object().unwrap().values().all(|v| !v.is_null()));
}

#[test]
fn a6_repeated_parameter_is_invalid_request() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials&scope=mail&scope=mail",
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn b16_failed_basic_auth_is_401_with_challenge() {
    let (mut h, s) = setup();
    for auth in [
        basic("web", "wrong"),
        basic("nobody", s.expose()),
        "Basic !!!notbase64".to_owned(),
        "Basic d2Vi".to_owned(), // "web": no ':'
        "Bearer abc".to_owned(),
    ] {
        let r = h.token("grant_type=client_credentials", Some(&auth));
        assert_eq!(r.status, 401, "{auth}");
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=\"oauth\""));
        assert_eq!(err(&r), "invalid_client");
    }
}

#[test]
fn b17_b20_b21_body_auth_failures_and_missing_auth() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials&client_id=web&client_secret=wrong",
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    // A confidential client naming itself without a secret is not authenticated.
    let r = h.token("grant_type=client_credentials&client_id=web", None);
    assert_eq!(err(&r), "invalid_client");
    let r = h.token(
        &format!(
            "grant_type=client_credentials&client_id=web&client_secret={}",
            s.expose()
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // G69: nothing at all.
    let r = h.token("grant_type=client_credentials", None);
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn b18_secret_in_query_refused() {
    let (mut h, s) = setup();
    let mut req = HttpRequest::form_post("grant_type=client_credentials&client_id=web");
    req.query = format!("client_secret={}", s.expose());
    let flow = h.engine.token(req, h.now);
    let r = h.run(flow);
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn b19_two_auth_methods_refused() {
    let (mut h, s) = setup();
    let r = h.token(
        &format!("grant_type=client_credentials&client_secret={}", s.expose()),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn b23_public_client_presenting_a_secret_is_refused() {
    let (mut h, _) = setup();
    let r = h.token(
        "grant_type=refresh_token&refresh_token=x&client_id=app&client_secret=guess",
        None,
    );
    assert_eq!(err(&r), "invalid_client");
}

#[test]
fn b_expired_client_secret_refused() {
    let (mut h, _) = setup();
    h.add_client(
        "exp",
        ClientKind::Confidential,
        &["https://e.example/cb"],
        &[GrantType::ClientCredentials],
        "mail",
    );
    let mut rec = h.client("exp").expect("stored");
    rec.secret_expires_at = Some(h.now);
    h.apply(vec![oauth_proto::store::Effect::PutClient(rec)]);
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("exp", "exp-secret-0123456789abcdef")),
    );
    assert_eq!(err(&r), "invalid_client");
}

#[test]
fn e50_code_expires_after_ten_minutes() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    h.now += 600;
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
    let code = h.code_for(WEB_QUERY, "alice");
    h.now += 599;
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn e52_codes_and_tokens_carry_at_least_256_bits() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    assert!(code.len() >= 43);
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert!(json(&r)["refresh_token"].as_str().unwrap().len() >= 43);
}

/// Runs `flow` with a counter RNG seeded `seed`, recording every draw the engine makes.
fn with_draws<P: Procedure>(h: &Harness, flow: Flow<P>, seed: u64) -> (P::Output, Vec<Vec<u8>>) {
    let mut source = CounterRandom::new(seed);
    let mut draws = Vec::new();
    let mut recording = |dest: &mut [u8]| {
        source.fill(dest);
        draws.push(dest.to_vec());
    };
    let out = drive(flow, &h.store, &mut recording).expect("memory store never fails");
    (out, draws)
}

/// Whether `value` is exactly one whole 256-bit draw of the injected randomness, base64url encoded.
#[track_caller]
fn assert_whole_draw(what: &str, value: &str, draws: &[Vec<u8>]) {
    let raw = URL_SAFE_NO_PAD
        .decode(value)
        .unwrap_or_else(|e| panic!("{what} is not base64url: {e}"));
    assert_eq!(raw.len(), 32, "{what} carries 256 bits");
    assert!(
        draws.contains(&raw),
        "{what} is one draw of the injected RNG, nothing derived: {draws:?}"
    );
}

#[test]
fn e52_every_credential_is_a_whole_256_bit_draw_of_the_injected_rng() {
    let mut h = Harness::new(Config {
        confidential_registration: RegistrationPolicy::Open,
        ..Config::default()
    });
    let s = h.confidential_client();
    h.device_client();
    // Authorization code.
    let pending = h.pending(WEB_QUERY);
    let flow = h.engine.approve(pending, "alice", h.now, h.now).unwrap();
    let (decision, draws) = with_draws(&h, flow, 100);
    let oauth_proto::authorize::DecisionOutcome::Redirect(r) = decision else {
        panic!("{decision:?}")
    };
    let code = location_param(&r, "code").unwrap();
    assert_whole_draw("the code", &code, &draws);
    // Refresh token.
    let flow = h.engine.token(
        HttpRequest::form_post(redeem_body(&code)).with_authorization(basic("web", s.expose())),
        h.now,
    );
    let (r, draws) = with_draws(&h, flow, 200);
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    // `rt.`, then the grant id (16 bytes), the grant's family secret (16), the token's own 256
    // bits (32) and a check (8): each secret part is a whole draw.
    let body = URL_SAFE_NO_PAD
        .decode(
            refresh
                .strip_prefix("rt.")
                .expect("a confidential client's token"),
        )
        .expect("base64url");
    assert_eq!(body.len(), 72);
    assert!(
        draws.contains(&body[16..32].to_vec()),
        "the family secret is one draw"
    );
    assert_whole_draw(
        "the refresh token's own part",
        &URL_SAFE_NO_PAD.encode(&body[32..64]),
        &draws,
    );
    // Device code.
    let flow = h
        .engine
        .device_authorization(HttpRequest::form_post("client_id=tv&scope=mail"), h.now);
    let (r, draws) = with_draws(&h, flow, 300);
    let device_code = json(&r)["device_code"].as_str().unwrap().to_owned();
    assert_whole_draw("the device code", &device_code, &draws);
    // Client secret and registration access token.
    let flow = h.engine.register(
        json_request(
            "POST",
            r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post","scope":"mail"}"#,
            None,
        ),
        h.now,
    );
    let (r, draws) = with_draws(&h, flow, 400);
    assert_eq!(r.status, 201, "{}", r.body);
    let j = json(&r);
    assert_whole_draw(
        "the client secret",
        j["client_secret"].as_str().unwrap(),
        &draws,
    );
    assert_whole_draw(
        "the registration access token",
        j["registration_access_token"].as_str().unwrap(),
        &draws,
    );
}

#[test]
fn e51_code_carries_its_client_subject_and_scope() {
    let (mut h, s) = setup();
    let code = h.code_for(&format!("{WEB_QUERY}&scope=mail"), "alice");
    // A scope sent with the token request cannot widen what the code was issued for.
    let r = h.token(
        &format!("{}&scope=mail+offline_access", redeem_body(&code)),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    assert_eq!(j["scope"], "mail");
    let claims = h.validate(j["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.client_id, "web");
    assert_eq!(claims.scope.to_string(), "mail");
    // The refresh token belongs to the same grant: it cannot reach beyond the code's scope either.
    let rt = j["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={rt}&scope=offline_access"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_scope");
}

#[test]
fn e53_the_code_is_independent_of_the_challenge_and_no_response_carries_it() {
    // Same seed, same subject, two different challenges: the same code, so the code cannot
    // carry anything about the challenge.
    let other_verifier = "3641a2d12d66101249cdf7a79c000c1f8c05d2aafcf14bf146497bed";
    let other_challenge = oauth_proto::pkce::s256_challenge(other_verifier);
    let mut codes = Vec::new();
    for challenge in [CHALLENGE, other_challenge.as_str()] {
        let (mut h, s) = setup();
        let query = WEB_QUERY.replace(CHALLENGE, challenge);
        let pending = h.pending(&query);
        let redirect = h.approve(pending, "alice");
        let location = redirect.header("location").unwrap().to_owned();
        assert!(!location.contains(challenge), "{location}");
        let code = location_param(&redirect, "code").unwrap();
        let verifier = if challenge == CHALLENGE {
            VERIFIER
        } else {
            other_verifier
        };
        let r = h.token(
            &format!(
                "grant_type=authorization_code&code={code}&{WEB_REDIRECT}&code_verifier={verifier}"
            ),
            Some(&basic("web", s.expose())),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(!r.body.contains(challenge), "{}", r.body);
        codes.push(code);
    }
    assert_eq!(codes[0], codes[1]);
}

#[test]
fn e54_a_code_is_an_opaque_reference_and_a_tampered_one_is_invalid_grant() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let mut bytes = code.clone().into_bytes();
    for i in [0, bytes.len() / 2, bytes.len() - 1] {
        let saved = bytes[i];
        bytes[i] = if saved == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes.clone()).unwrap();
        let r = h.token(&redeem_body(&tampered), Some(&basic("web", s.expose())));
        assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
        bytes[i] = saved;
    }
    // Appending or truncating is no better.
    for tampered in [format!("{code}A"), code[..code.len() - 1].to_owned()] {
        let r = h.token(&redeem_body(&tampered), Some(&basic("web", s.expose())));
        assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    }
    // The attempts did not burn the real code.
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn e53_code_reveals_nothing_of_the_challenge() {
    let (mut h, _) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    assert!(!code.contains("E9Mel"));
}

#[test]
fn f61_missing_verifier_is_invalid_request() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn f62_f65_wrong_verifier_is_invalid_grant() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}&code_verifier={wrong}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn f63_verifier_for_a_code_without_challenge_is_refused() {
    let mut h = Harness::new(oauth_proto::config::Config {
        require_pkce_for_confidential: false,
        ..Default::default()
    });
    let s = h.confidential_client();
    let code = h.code_for("response_type=code&client_id=web", "alice");
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn f64_method_is_the_one_recorded_with_the_code() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    // Sending the challenge itself as a "plain" verifier with a method parameter does not help.
    let r = h.token(&format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}&code_verifier={CHALLENGE}&code_challenge_method=plain"), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn g67_unknown_or_malformed_code() {
    let (mut h, s) = setup();
    for code in ["nope", "%00", "a%20b"] {
        let r = h.token(&redeem_body(code), Some(&basic("web", s.expose())));
        assert_eq!(
            (r.status, err(&r).as_str()),
            (400, "invalid_grant"),
            "{code}"
        );
    }
    let r = h.token(
        &format!("grant_type=authorization_code&{WEB_REDIRECT}&code_verifier={VERIFIER}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_request");
}

#[test]
fn g68_code_of_another_client() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let other = h
        .add_client(
            "other",
            ClientKind::Confidential,
            &["https://client.example.com/cb"],
            &[GrantType::AuthorizationCode],
            "mail",
        )
        .unwrap();
    let r = h.token(&redeem_body(&code), Some(&basic("other", other.expose())));
    assert_eq!(err(&r), "invalid_grant");
    // The code was burned by the attempt, but no tokens were issued and nothing was revoked.
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn g70_redirect_uri_must_be_repeated_identically() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb%2F&code_verifier={VERIFIER}"), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
    // Not sent at authorization: optional at the token endpoint, but checked when sent.
    let q = WEB_QUERY.replace("&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb", "");
    let code = h.code_for(&q, "alice");
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn g71_g72_replay_revokes_only_when_it_comes_from_the_owner_with_the_verifier() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    let access = json(&r)["access_token"].as_str().unwrap().to_owned();
    h.now += 1;
    // Replay with a wrong verifier: refused, nothing revoked.
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}&code_verifier={wrong}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
    assert!(h.validate(&access).is_ok());
    // Replay by the owner with the right verifier: everything from the code is revoked.
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
}

#[test]
fn f65_padded_or_standard_alphabet_challenge_never_matches() {
    let (mut h, _) = setup();
    let padded = format!("{CHALLENGE}=");
    let standard = CHALLENGE.replace('-', "+").replace('_', "/");
    assert_ne!(
        standard, CHALLENGE,
        "the vector has a character that differs"
    );
    assert!(pkce::verify(PkceMethod::S256, CHALLENGE, VERIFIER));
    for challenge in [&padded, &standard] {
        assert!(
            !pkce::verify(PkceMethod::S256, challenge, VERIFIER),
            "{challenge}"
        );
        // The authorization endpoint does not even record such a challenge.
        let enc = serde_urlencoded::to_string([("code_challenge", challenge.as_str())]).unwrap();
        let query = WEB_QUERY.replace(&format!("code_challenge={CHALLENGE}"), &enc);
        match h.authorize(&query) {
            AuthorizeOutcome::Redirect(r) => assert_eq!(
                location_param(&r, "error").as_deref(),
                Some("invalid_request"),
                "{challenge}"
            ),
            other => panic!("expected an error redirect for {challenge}, got {other:?}"),
        }
    }
}

#[test]
fn g69_a_public_client_names_itself_and_must_be_the_codes_client() {
    let (mut h, _) = setup();
    h.add_client(
        "app2",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "mail offline_access",
    );
    let query = format!(
        "response_type=code&client_id=app&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let code = h.code_for(&query, "alice");
    // Without client_id nobody is identified: invalid_request, and the code is not spent.
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_request"));
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Another public client presenting app's code, even with the right verifier.
    let code = h.code_for(&query, "alice");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app2&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r).get("access_token").is_none());
}

#[test]
fn g71_replay_revokes_the_access_token_of_a_client_without_refresh_tokens() {
    let (mut h, _) = setup();
    let s = h
        .add_client(
            "norefresh",
            ClientKind::Confidential,
            &["https://client.example.com/cb"],
            &[GrantType::AuthorizationCode],
            "mail",
        )
        .unwrap();
    let code = h.code_for(
        &WEB_QUERY.replace("client_id=web", "client_id=norefresh"),
        "alice",
    );
    let auth = basic("norefresh", s.expose());
    let r = h.token(&redeem_body(&code), Some(&auth));
    assert_eq!(r.status, 200, "{}", r.body);
    let access = json(&r)["access_token"].as_str().unwrap().to_owned();
    assert!(h.validate(&access).is_ok());
    h.now += 1;
    let r = h.token(&redeem_body(&code), Some(&auth));
    assert_eq!(err(&r), "invalid_grant");
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
}

#[test]
fn g72_replays_failing_client_auth_or_from_another_client_revoke_nothing() {
    let (mut h, s) = setup();
    let other = h
        .add_client(
            "other",
            ClientKind::Confidential,
            &["https://client.example.com/cb"],
            &[GrantType::AuthorizationCode],
            "mail",
        )
        .unwrap();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    let access = json(&r)["access_token"].as_str().unwrap().to_owned();
    h.now += 1;
    // The owner's id with a wrong secret: client authentication fails first.
    let r = h.token(&redeem_body(&code), Some(&basic("web", "wrong")));
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    assert!(h.validate(&access).is_ok());
    // Another, authenticated client with the right verifier.
    let r = h.token(&redeem_body(&code), Some(&basic("other", other.expose())));
    assert_eq!(err(&r), "invalid_grant");
    assert!(h.validate(&access).is_ok());
    // The owner without the verifier.
    let r = h.token(
        &format!("grant_type=authorization_code&code={code}&{WEB_REDIRECT}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
    assert!(h.validate(&access).is_ok());
    // Control: the owner with the verifier does revoke.
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
}

#[test]
fn g74_a_code_is_not_a_refresh_token_and_vice_versa() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={code}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_grant");
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let r = h.token(&redeem_body(&refresh), Some(&basic("web", s.expose())));
    assert_eq!(err(&r), "invalid_grant");
}

#[test]
fn g75_grant_type_errors() {
    let (mut h, s) = setup();
    let auth = basic("web", s.expose());
    assert_eq!(err(&h.token("scope=mail", Some(&auth))), "invalid_request");
    assert_eq!(
        err(&h.token("grant_type=urn%3Aexample%3Aunknown", Some(&auth))),
        "unsupported_grant_type"
    );
    // J94: the password grant is not offered.
    assert_eq!(
        err(&h.token(
            "grant_type=password&username=johndoe&password=A3ddj3w",
            Some(&auth)
        )),
        "unsupported_grant_type"
    );
    h.add_client(
        "codeonly",
        ClientKind::Confidential,
        &["https://x.example/cb"],
        &[GrantType::AuthorizationCode],
        "mail",
    );
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("codeonly", "codeonly-secret-0123456789abcdef")),
    );
    assert_eq!(err(&r), "unauthorized_client");
}

#[test]
fn h76_h77_h78_success_shape() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    let j = json(&r);
    assert_eq!(j["token_type"], "Bearer");
    assert!(j["expires_in"].is_u64());
    assert_eq!(j["scope"], "mail offline_access");
    let at = j["access_token"].as_str().unwrap();
    assert!(
        at.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)),
        "b64token alphabet"
    );
}

#[test]
fn h80_scope_beyond_the_client_is_invalid_scope() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials&scope=mail+admin",
        Some(&basic("web", s.expose())),
    );
    assert_eq!(err(&r), "invalid_scope");
}

#[test]
fn h81_access_tokens_cannot_be_altered() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    let at = json(&r)["access_token"].as_str().unwrap().to_owned();
    let mut bytes = at.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        h.validate(&altered),
        Err(TokenError::BadSignature | TokenError::Malformed)
    ));
}

#[test]
fn h82_access_tokens_live_one_hour() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    let at = json(&r)["access_token"].as_str().unwrap().to_owned();
    h.now += 3599;
    assert!(h.validate(&at).is_ok());
    h.now += 1;
    assert_eq!(h.validate(&at), Err(TokenError::Expired));
}

#[test]
fn j92_j93_client_credentials_confidential_only_no_refresh() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    assert!(json(&r).get("refresh_token").is_none());
    h.add_client(
        "pub-cc",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::ClientCredentials],
        "mail",
    );
    let r = h.token("grant_type=client_credentials&client_id=pub-cc", None);
    assert_eq!(err(&r), "unauthorized_client");
}

#[test]
fn revoking_a_client_revokes_its_client_credentials_tokens() {
    let (mut h, s) = setup();
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    let at = json(&r)["access_token"].as_str().unwrap().to_owned();
    let effects = h.engine.revoke_client("web", h.now);
    h.apply(effects);
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
}

/// A client_credentials request asks the store one op: its client together with its grant's
/// revocation status (`Op::GetClientWithStatus`, issue 19), whatever it is answered; and the
/// status read with the client is the one the token is issued under.
#[test]
fn a_client_credentials_request_asks_the_store_once() {
    let (mut h, s) = setup();
    let with_status = |client_id: &str| {
        vec![Op::GetClientWithStatus {
            client_id: client_id.into(),
            grant_id: oauth_proto::token::client_credentials_grant_id(client_id),
            subject: client_id.into(),
        }]
    };
    let auth = basic("web", s.expose());
    let (r, asked) = h.token_asking("grant_type=client_credentials", Some(&auth));
    assert_eq!((r.status, asked), (200, with_status("web")), "{}", r.body);
    let first = json(&r)["access_token"].as_str().unwrap().to_owned();
    // Refusals ask no more, and answer as before.
    for (body, client_id, secret, status, error) in [
        ("", "web", "wrong", 401, "invalid_client"),
        ("", "nobody", "x", 401, "invalid_client"),
        ("&scope=admin", "web", s.expose(), 400, "invalid_scope"),
    ] {
        let body = format!("grant_type=client_credentials{body}");
        let (r, asked) = h.token_asking(&body, Some(&basic(client_id, secret)));
        assert_eq!((r.status, err(&r).as_str()), (status, error), "{body}");
        assert_eq!(asked, with_status(client_id), "{body}");
    }
    // The public client is refused the grant after the same one op.
    let (r, asked) = h.token_asking("grant_type=client_credentials&client_id=app", None);
    assert_eq!(err(&r), "unauthorized_client");
    assert_eq!(asked, with_status("app"));

    // Revoking the client in this second: the token issued before is dead, one issued after it
    // (still one op) is live, stamped after the revocation read with the client.
    let effects = h.engine.revoke_client("web", h.now);
    h.apply(effects);
    let (r, asked) = h.token_asking("grant_type=client_credentials", Some(&auth));
    assert_eq!((r.status, asked), (200, with_status("web")), "{}", r.body);
    let second = json(&r)["access_token"].as_str().unwrap().to_owned();
    assert_eq!(h.validate(&first), Err(TokenError::Revoked));
    assert!(h.validate(&second).is_ok());
    // A credential change of the client as a subject: a new token carries the new version.
    h.apply(h.engine.revoke_subject("web", h.now));
    assert_eq!(h.validate(&second), Err(TokenError::Revoked));
    let (r, asked) = h.token_asking("grant_type=client_credentials", Some(&auth));
    assert_eq!((r.status, asked), (200, with_status("web")), "{}", r.body);
    let third = json(&r)["access_token"].as_str().unwrap().to_owned();
    assert!(h.validate(&third).is_ok());
}

#[test]
fn b19_a_client_assertion_next_to_another_method_is_refused() {
    let (mut h, s) = setup();
    let assertion = "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOiJIUzI1NiJ9.e30.x";
    // Basic + assertion, and client_secret_post + assertion: two methods.
    let r = h.token(
        &format!("grant_type=client_credentials&{assertion}"),
        Some(&basic("web", s.expose())),
    );
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_request"));
    let r = h.token(
        &format!(
            "grant_type=client_credentials&client_id=web&client_secret={}&{assertion}",
            s.expose()
        ),
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_request"));
    // An assertion alone authenticates nobody (the method is not supported).
    let r = h.token(
        &format!("grant_type=client_credentials&client_id=web&{assertion}"),
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    // The same credentials without the assertion work.
    let r = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn b22_an_empty_client_secret_is_no_secret() {
    let mut h = Harness::new(oauth_proto::config::Config {
        confidential_registration: oauth_proto::config::RegistrationPolicy::Open,
        ..Default::default()
    });
    // Issued secrets are never empty: 256 bits, base64url.
    let j = h.register_ok(r#"{"grant_types":["client_credentials"],"scope":"mail"}"#);
    let (id, secret) = (
        j["client_id"].as_str().unwrap().to_owned(),
        j["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(secret.len(), 43);
    // An empty client_secret counts as absent, so the confidential client is not authenticated.
    let r = h.token(
        &format!("grant_type=client_credentials&client_id={id}&client_secret="),
        None,
    );
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    // Nor does an empty Basic password authenticate it.
    let r = h.token("grant_type=client_credentials", Some(&basic(&id, "")));
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    let r = h.token("grant_type=client_credentials", Some(&basic(&id, &secret)));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Every response that carries a credential: JSON, no-store and no-cache, numbers as numbers,
/// every member at the top level and none of them `null`.
#[test]
fn a9_a10_credential_responses_are_no_store_json_without_nulls() {
    let (mut h, s) = setup();
    h.device_client();
    let code = h.code_for(WEB_QUERY, "alice");
    let token = h.token(&redeem_body(&code), Some(&basic("web", s.expose())));
    let device = h.device_authorization("client_id=tv&scope=mail", None);
    let registered = h.register(
        r#"{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"],"client_name":"N"}"#,
        None,
    );
    let cc = h.token(
        "grant_type=client_credentials",
        Some(&basic("web", s.expose())),
    );
    for (r, numbers) in [
        (&token, &["expires_in"][..]),
        (&cc, &["expires_in"][..]),
        (&device, &["expires_in", "interval"][..]),
        (&registered, &["client_id_issued_at"][..]),
    ] {
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"), "{}", r.body);
        assert_eq!(r.header("pragma"), Some("no-cache"), "{}", r.body);
        let j = json(r);
        let members = j.as_object().expect("a top-level object");
        assert!(members.values().all(|v| !v.is_null()), "{}", r.body);
        for n in numbers {
            assert!(members[*n].is_u64(), "{n} is a JSON number in {}", r.body);
        }
    }
    let j = json(&token);
    assert!(j["access_token"].is_string() && j["refresh_token"].is_string());
}

#[test]
fn a5_unknown_parameters_are_ignored_at_the_token_and_device_endpoints() {
    let (mut h, s) = setup();
    h.device_client();
    let r = h.token(
        "grant_type=client_credentials&foo=bar&resource_hint=x&nonce=",
        Some(&basic("web", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let code = h.code_for(WEB_QUERY, "alice");
    let r = h.token(
        &format!("{}&unknown=1&prompt=none", redeem_body(&code)),
        Some(&basic("web", s.expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h.device_authorization("client_id=tv&scope=mail&foo=bar&audience=x", None);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn b20_confidential_clients_authenticate_for_every_grant() {
    let (mut h, s) = setup();
    let code = h.code_for(WEB_QUERY, "alice");
    let auth = basic("web", s.expose());
    let refresh = json(&h.token(&redeem_body(&code), Some(&auth)))["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = h.code_for(WEB_QUERY, "alice");
    // Naming itself is not authenticating, whatever the grant.
    for body in [
        format!("{}&client_id=web", redeem_body(&code)),
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id=web"),
        "grant_type=client_credentials&client_id=web".to_owned(),
    ] {
        let r = h.token(&body, None);
        assert_eq!(
            (r.status, err(&r).as_str()),
            (401, "invalid_client"),
            "{body}"
        );
    }
    // The code and the refresh token were not used up by the refused attempts.
    let r = h.token(&redeem_body(&code), Some(&auth));
    assert_eq!(r.status, 200, "{}", r.body);
    h.now += 1;
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
        Some(&auth),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
