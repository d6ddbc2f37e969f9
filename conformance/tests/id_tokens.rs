//! OpenID Connect ID tokens through the engine (OpenID Connect Core §2, §3.1.2, §3.1.3, §12.2;
//! Discovery §3; Registration §2): the code exchange, refresh and the device flow with `openid`,
//! the nonce, `at_hash`, the algorithm per client, the published keys, and refused requests.

use base64::Engine as _;
use conformance::*;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::jose::{Algorithm, IdTokenClaims, KeySet};
use oauth_proto::response::Response;
use sha2::Digest;

const REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";

/// A public client `rp` with code + refresh, scope `openid email profile offline_access`.
fn rp(h: &Harness) {
    h.add_client(
        "rp",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email profile offline_access",
    );
}

fn query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=rp&redirect_uri={REDIRECT}&state=s&code_challenge={CHALLENGE}\
         &code_challenge_method=S256{extra}"
    )
}

fn exchange(h: &mut Harness, client_id: &str, code: &str) -> Response {
    h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id={client_id}\
             &redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        ),
        None,
    )
}

/// Signs `subject` in at `auth_time`, approves at `h.now`, and returns the code.
fn code_at(h: &mut Harness, query: &str, subject: &str, auth_time: u64) -> String {
    let pending = h.pending(query);
    let flow = h
        .engine
        .approve(pending, subject, auth_time, h.now)
        .unwrap();
    match h.run(flow) {
        oauth_proto::authorize::DecisionOutcome::Redirect(r) => location_param(&r, "code").unwrap(),
        other => panic!("{other:?}"),
    }
}

fn b64json(part: &str) -> serde_json::Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The ID token's header and claims, after checking its signature against the published keys.
fn id_token(h: &Harness, body: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let token = body["id_token"].as_str().expect("an id_token");
    let jwks: serde_json::Value = serde_json::from_str(&h.engine.jwks().body).unwrap();
    // Verified against the keys as a relying party gets them: the JWK Set document.
    let keys: Vec<oauth_proto::jose::VerifyingKey> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            oauth_proto::jose::VerifyingKey::from_jwk(&serde_json::from_value(k.clone()).unwrap())
                .unwrap()
        })
        .collect();
    let header = b64json(token.split('.').next().unwrap());
    let kid = header["kid"].as_str().unwrap();
    let key = keys.iter().find(|k| k.kid() == kid).expect("kid published");
    let verified = oauth_proto::jose::jws::verify_with(token, key).expect("signature verifies");
    let claims: serde_json::Value = serde_json::from_slice(&verified.payload).unwrap();
    (header, claims)
}

/// `at_hash` computed here from the spec (OIDC Core §3.1.3.6), not by the engine's function.
fn sha256_half(access_token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(&sha2::Sha256::digest(access_token.as_bytes())[..16])
}

#[test]
fn code_exchange_with_openid_returns_a_signed_id_token() {
    let mut h = Harness::default();
    rp(&h);
    let nonce = "n-0S6_WzA2Mj%20%C3%A9%F0%9F%98%80%22"; // "n-0S6_WzA2Mj é😀\"" encoded
    let auth_time = h.now - 120;
    let code = code_at(
        &mut h,
        &query(&format!("&scope=openid+email&nonce={nonce}")),
        "alice",
        auth_time,
    );
    h.now += 5;
    let r = exchange(&mut h, "rp", &code);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = json(&r);
    let (header, claims) = id_token(&h, &body);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["azp"], "rp");
    assert_eq!(claims["iat"], h.now);
    assert_eq!(claims["exp"], h.now + 3600);
    assert_eq!(claims["auth_time"], auth_time);
    // Echoed exactly, byte for byte.
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj é\u{1F600}\"");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(claims["at_hash"], sha256_half(access));
    assert!(
        claims.get("sid").is_none(),
        "a sign-in known only by its time: no sid"
    );
    // The access token is unchanged by it.
    assert_eq!(h.validate(access).unwrap().subject, "alice");
    // The engine's own decoder agrees.
    let decoded =
        IdTokenClaims::decode(body["id_token"].as_str().unwrap(), &h.engine.signing_keys())
            .unwrap();
    assert_eq!(decoded.nonce.as_deref(), Some("n-0S6_WzA2Mj é\u{1F600}\""));
}

#[test]
fn without_openid_or_without_nonce() {
    let mut h = Harness::default();
    rp(&h);
    let code = h.code_for(&query("&scope=email"), "alice");
    let body = json(&exchange(&mut h, "rp", &code));
    assert!(body.get("id_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());

    let code = h.code_for(&query("&scope=openid"), "alice");
    let body = json(&exchange(&mut h, "rp", &code));
    let (_, claims) = id_token(&h, &body);
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(claims["auth_time"], h.now);
}

#[test]
fn refresh_returns_a_new_id_token_without_nonce_and_with_the_same_auth_time() {
    let mut h = Harness::default();
    rp(&h);
    let auth_time = h.now - 30;
    let code = code_at(
        &mut h,
        &query("&scope=openid+offline_access&nonce=abc"),
        "alice",
        auth_time,
    );
    let first = json(&exchange(&mut h, "rp", &code));
    let (_, first_claims) = id_token(&h, &first);
    assert_eq!(first_claims["nonce"], "abc");
    h.now += 600;
    let refresh = first["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=rp"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let second = json(&r);
    let (_, claims) = id_token(&h, &second);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "rp");
    assert_eq!(claims["iat"], h.now);
    assert_eq!(claims["auth_time"], auth_time);
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(
        claims["at_hash"],
        sha256_half(second["access_token"].as_str().unwrap())
    );
    assert_ne!(second["id_token"], first["id_token"]);

    // A refresh narrowed to a scope without openid has none.
    h.now += 1;
    let refresh = second["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!(
            "grant_type=refresh_token&refresh_token={refresh}&client_id=rp&scope=offline_access"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json(&r).get("id_token").is_none());
}

#[test]
fn device_flow_with_openid_returns_an_id_token() {
    let mut h = Harness::default();
    h.add_client(
        "tv",
        ClientKind::Public,
        &[],
        &[GrantType::DeviceCode, GrantType::RefreshToken],
        "openid mail offline_access",
    );
    let r = h.device_authorization("client_id=tv&scope=openid+mail", None);
    let j = json(&r);
    let device_code = j["device_code"].as_str().unwrap().to_owned();
    let user_code = j["user_code"].as_str().unwrap().to_owned();
    let oauth_proto::device_verify::DeviceVerifyOutcome::Consent(pending) =
        h.device_verify(&user_code)
    else {
        panic!("consent");
    };
    let signed_in = h.now - 7;
    let flow = h
        .engine
        .device_approve(pending, "alice", signed_in, h.now)
        .unwrap();
    h.run(flow);
    h.now += 10;
    let r = h.poll(&device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = json(&r);
    let (_, claims) = id_token(&h, &body);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "tv");
    assert_eq!(claims["auth_time"], signed_in);
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["at_hash"],
        sha256_half(body["access_token"].as_str().unwrap())
    );
    // Its refresh keeps the authentication time.
    h.now += 100;
    let refresh = body["refresh_token"].as_str().unwrap();
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=tv"),
        None,
    );
    let (_, claims) = id_token(&h, &json(&r));
    assert_eq!(claims["auth_time"], signed_in);
}

#[test]
fn client_credentials_never_gets_an_id_token() {
    let mut h = Harness::default();
    let secret = h.add_client(
        "svc",
        ClientKind::Confidential,
        &[],
        &[GrantType::ClientCredentials],
        "openid mail",
    );
    let r = h.token(
        "grant_type=client_credentials&scope=openid",
        Some(&basic("svc", secret.unwrap().expose())),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json(&r).get("id_token").is_none());
}

#[test]
fn the_algorithm_follows_the_client_registration() {
    let mut h = Harness::default();
    for (alg, hash_len) in [("RS256", 16), ("EdDSA", 32), ("ES256", 16)] {
        let reg = h.register_ok(&format!(
            r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
                "grant_types":["authorization_code"],"scope":"openid",
                "id_token_signed_response_alg":"{alg}"}}"#
        ));
        assert_eq!(reg["id_token_signed_response_alg"], alg);
        let client_id = reg["client_id"].as_str().unwrap();
        let q = format!(
            "response_type=code&client_id={client_id}&redirect_uri={REDIRECT}&scope=openid\
             &code_challenge={CHALLENGE}&code_challenge_method=S256&nonce=x"
        );
        let code = h.code_for(&q, "alice");
        let r = exchange(&mut h, client_id, &code);
        assert_eq!(r.status, 200, "{}", r.body);
        let body = json(&r);
        let (header, claims) = id_token(&h, &body);
        assert_eq!(header["alg"], alg);
        let kid = h
            .engine
            .signing_keys()
            .signing_key(Algorithm::from_name(alg).unwrap())
            .unwrap()
            .kid()
            .to_owned();
        assert_eq!(header["kid"], kid);
        // at_hash is the left half of the alg's hash: SHA-256 for ES256/RS256, SHA-512 for EdDSA.
        let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims["at_hash"].as_str().unwrap())
            .unwrap();
        assert_eq!(at_hash.len(), hash_len, "{alg}");
    }
}

#[test]
fn symmetric_none_and_unknown_algorithms_are_refused_at_registration() {
    let mut h = Harness::default();
    for alg in [
        r#""HS256""#,
        r#""HS512""#,
        r#""none""#,
        r#""PS256""#,
        r#""es256""#,
        "256",
        "null",
    ] {
        let r = h.register(
            &format!(
                r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
                    "id_token_signed_response_alg":{alg}}}"#
            ),
            None,
        );
        let j = json(&r);
        if alg == "null" {
            // An absent member: the default.
            assert_eq!(r.status, 201, "{}", r.body);
            continue;
        }
        assert_eq!(r.status, 400, "{alg}: {}", r.body);
        assert_eq!(j["error"], "invalid_client_metadata", "{alg}");
    }
}

#[test]
fn an_algorithm_without_a_key_is_refused_at_registration() {
    let keys = KeySet::generate(
        &[Algorithm::Es256],
        &mut oauth_proto::random::CounterRandom::new(5),
    )
    .unwrap();
    let engine =
        oauth_proto::Engine::new(oauth_proto::config::Config::default(), test_keys(), keys)
            .unwrap();
    let mut h = Harness {
        engine,
        ..Harness::default()
    };
    let metadata: serde_json::Value = serde_json::from_str(&h.engine.metadata().body).unwrap();
    assert_eq!(
        metadata["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    let r = h.register(
        r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
            "id_token_signed_response_alg":"RS256"}"#,
        None,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(json(&r)["error"], "invalid_client_metadata");
    // And an engine needs its default ES256 key.
    let ed_only = KeySet::generate(
        &[Algorithm::EdDsa],
        &mut oauth_proto::random::CounterRandom::new(6),
    )
    .unwrap();
    let refused =
        oauth_proto::Engine::new(oauth_proto::config::Config::default(), test_keys(), ed_only)
            .unwrap_err();
    assert_eq!(refused.setting(), "signing_keys");
}

#[test]
fn nonce_bounds_and_repetition() {
    let mut h = Harness::default();
    rp(&h);
    let ok = "n".repeat(255);
    assert_eq!(
        h.pending(&query(&format!("&scope=openid&nonce={ok}")))
            .nonce(),
        Some(ok.as_str())
    );
    for bad in [
        format!("&scope=openid&nonce={}", "n".repeat(256)),
        "&scope=openid&nonce=a&nonce=b".to_owned(),
    ] {
        let r = match h.authorize(&query(&bad)) {
            oauth_proto::authorize::AuthorizeOutcome::Redirect(r) => r,
            other => panic!("{bad}: {other:?}"),
        };
        assert_eq!(
            location_param(&r, "error").as_deref(),
            Some("invalid_request"),
            "{bad}"
        );
        assert_eq!(location_param(&r, "state").as_deref(), Some("s"));
    }
}

#[test]
fn request_objects_and_the_claims_parameter_are_refused() {
    let mut h = Harness::default();
    rp(&h);
    for (extra, error) in [
        ("&request=eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
        (
            "&request_uri=https%3A%2F%2Frp.example%2Fr",
            "request_uri_not_supported",
        ),
        (
            "&claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%7D%7D",
            "invalid_request",
        ),
    ] {
        let r = match h.authorize(&query(&format!("&scope=openid{extra}"))) {
            oauth_proto::authorize::AuthorizeOutcome::Redirect(r) => r,
            other => panic!("{extra}: {other:?}"),
        };
        assert_eq!(
            location_param(&r, "error").as_deref(),
            Some(error),
            "{extra}"
        );
        assert!(location_param(&r, "error_description").is_some());
    }
}

#[test]
fn discovery_and_the_jwks_publish_public_keys_only() {
    let h = Harness::default();
    let m: serde_json::Value = serde_json::from_str(&h.engine.metadata().body).unwrap();
    assert_eq!(m["jwks_uri"], "http://127.0.0.1:8080/jwks");
    assert_eq!(
        m["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256", "EdDSA"])
    );
    assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
    for claim in [
        "sub",
        "iss",
        "aud",
        "auth_time",
        "nonce",
        "at_hash",
        "email",
    ] {
        assert!(
            m["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim}"
        );
    }
    assert_eq!(m["request_parameter_supported"], false);
    assert_eq!(m["request_uri_parameter_supported"], false);
    assert_eq!(m["claims_parameter_supported"], false);

    let mut keys = h.engine.signing_keys().clone();
    // A rotated-out key stays published until retired.
    let old = keys.signing_key(Algorithm::Es256).unwrap().kid().to_owned();
    keys.rotate(
        Algorithm::Es256,
        h.now,
        3600,
        &mut oauth_proto::random::CounterRandom::new(9),
    )
    .unwrap();
    let engine =
        oauth_proto::Engine::new(oauth_proto::config::Config::default(), test_keys(), keys)
            .unwrap();
    let r = engine.jwks();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let jwks: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let published = jwks["keys"].as_array().unwrap();
    assert_eq!(published.len(), 4);
    assert!(published.iter().any(|k| k["kid"] == old.as_str()));
    for key in published {
        let members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(!members.contains(&private), "{private} in {key}");
        }
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string() && key["alg"].is_string());
    }
    // Nor does any private key's encoding appear anywhere in the document.
    let stored = engine.signing_keys().to_stored().unwrap();
    for active in &stored.active {
        assert!(!r.body.contains(&active.pkcs8));
    }
}
