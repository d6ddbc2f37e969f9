//! End-to-end flows recorded as transcripts (see `conformance::transcript`).

use conformance::transcript::Transcript;
use conformance::*;
use oauth_proto::authorize::AuthorizeOutcome;

/// Runs a token request and records it.
fn token(h: &mut Harness, t: &mut Transcript, body: &str, auth: Option<&str>) -> serde_json::Value {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
    t.request(h.now, "POST /token", &headers, body);
    let r = h.token(body, auth);
    t.response(&r);
    json(&r)
}

#[test]
fn transcript_public_client_code_flow_refresh_and_reuse() {
    let mut h = Harness::default();
    let mut t = Transcript::default();
    h.public_client();
    t.note("A native app (public client, loopback redirect on an ephemeral port) with PKCE S256.");
    let query = format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Fcb&state=af0ifjsldkj&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256");
    t.request(h.now, &format!("GET /authorize?{query}"), &[], "");
    let outcome = h.authorize(&query);
    t.outcome(&outcome);
    let AuthorizeOutcome::Consent(pending) = outcome else {
        panic!("consent expected")
    };
    t.request(h.now, "approve for subject alice@example.com", &[], "");
    let r = h.approve(pending, "alice@example.com");
    t.response(&r);
    let code = location_param(&r, "code").unwrap();
    h.now += 3;
    let body = format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Fcb&code_verifier={VERIFIER}");
    let j = token(&mut h, &mut t, &body, None);
    let rt1 = j["refresh_token"].as_str().unwrap().to_owned();
    h.now += 3600;
    let j = token(
        &mut h,
        &mut t,
        &format!("grant_type=refresh_token&refresh_token={rt1}&client_id=app&scope=mail"),
        None,
    );
    assert!(j["refresh_token"].is_string());
    h.now += 60;
    t.note("The rotated-out refresh token is presented again: the whole grant is revoked.");
    token(
        &mut h,
        &mut t,
        &format!("grant_type=refresh_token&refresh_token={rt1}&client_id=app"),
        None,
    );
    t.check("public_client_code_flow");
}

#[test]
fn transcript_confidential_client_errors() {
    let mut h = Harness::default();
    let mut t = Transcript::default();
    let secret = h.confidential_client();
    let good = basic("web", secret.expose());
    token(
        &mut h,
        &mut t,
        "grant_type=client_credentials&scope=mail",
        Some(&good),
    );
    token(
        &mut h,
        &mut t,
        "grant_type=client_credentials",
        Some(&basic("web", "wrong")),
    );
    token(
        &mut h,
        &mut t,
        "grant_type=password&username=johndoe&password=A3ddj3w",
        Some(&good),
    );
    token(&mut h, &mut t, "scope=mail", Some(&good));
    token(
        &mut h,
        &mut t,
        "grant_type=client_credentials&scope=mail&scope=mail",
        Some(&good),
    );
    token(
        &mut h,
        &mut t,
        "grant_type=client_credentials&scope=admin",
        Some(&good),
    );
    token(&mut h, &mut t, "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb", Some(&good));
    t.check("confidential_client_errors");
}
