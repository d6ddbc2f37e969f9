//! The userinfo endpoint (OpenID Connect Core 1.0 §5.3) through the engine and the memory store:
//! bearer usage per RFC 6750 (checklist K), the claims each scope releases, and that a token
//! without a user is never described as one.

use conformance::*;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;

const RP_REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";

/// A public client `rp` that may ask for every scope these tests use.
fn rp(h: &Harness) {
    h.add_client(
        "rp",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode],
        "openid email profile mail calendar urn:ietf:params:oauth:scope:mail",
    );
}

/// alice's access token for `scope` (space-separated) through `rp`.
fn token_for(h: &mut Harness, scope: &str) -> String {
    let scope = scope.replace(' ', "+").replace(':', "%3A");
    let query = format!("response_type=code&client_id=rp&redirect_uri={RP_REDIRECT}&scope={scope}&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id=rp&redirect_uri={RP_REDIRECT}&code_verifier={VERIFIER}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    json(&r)["access_token"].as_str().unwrap().to_owned()
}

/// Puts a user into the harness store's directory, which answers `Op::UserClaims`.
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

fn get(token: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        authorization: Some(format!("Bearer {token}")),
        ..Default::default()
    }
}

fn userinfo(h: &mut Harness, request: HttpRequest) -> Response {
    let flow = h.engine.userinfo(request, h.now);
    h.run(flow)
}

#[track_caller]
fn refused(r: &Response, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(json(r)["error"], error, "{}", r.body);
    let challenge = r.header("www-authenticate").expect("a Bearer challenge");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(!r.body.contains("alice"), "{}", r.body);
}

#[test]
fn get_and_post_answer_the_users_claims_by_scope() {
    let mut h = Harness::default();
    rp(&h);
    put_user(&h, "alice", Some("alice@example.com"));
    let all = token_for(&mut h, "openid email profile mail");
    let r = userinfo(&mut h, get(&all));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        json(&r),
        serde_json::json!({
            "sub": "alice",
            "email": "alice@example.com",
            "email_verified": true,
            "preferred_username": "alice",
            "scope": "email mail openid profile urn:ietf:params:oauth:scope:mail",
        })
    );
    // RFC 6750 §2.2: the form-body parameter on a POST answers the same.
    let r = userinfo(
        &mut h,
        HttpRequest::form_post(format!("access_token={all}")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r)["email"], "alice@example.com");
    // The header on a POST too.
    let mut post = get(&all);
    post.method = "POST".into();
    assert_eq!(userinfo(&mut h, post).status, 200);
}

#[test]
fn each_claim_needs_its_scope() {
    let mut h = Harness::default();
    rp(&h);
    put_user(&h, "alice", Some("alice@example.com"));
    let mail = token_for(&mut h, "mail");
    let j = json(&userinfo(&mut h, get(&mail)));
    assert_eq!(
        j,
        serde_json::json!({"sub": "alice", "scope": "mail urn:ietf:params:oauth:scope:mail"})
    );
    let email = token_for(&mut h, "email");
    let j = json(&userinfo(&mut h, get(&email)));
    assert_eq!(j["email"], "alice@example.com");
    assert!(j.get("preferred_username").is_none(), "{j}");
    let profile = token_for(&mut h, "profile");
    let j = json(&userinfo(&mut h, get(&profile)));
    assert_eq!(j["preferred_username"], "alice");
    assert!(j.get("name").is_none(), "no display name was set: {j}");
    assert!(
        j.get("email").is_none() && j.get("email_verified").is_none(),
        "{j}"
    );
    // A display name is `name`, with `profile` only.
    put_named_user(&h, "alice", "Alice Example");
    let j = json(&userinfo(&mut h, get(&profile)));
    assert_eq!(
        (&j["name"], &j["preferred_username"]),
        (
            &serde_json::json!("Alice Example"),
            &serde_json::json!("alice")
        )
    );
    let j = json(&userinfo(&mut h, get(&email)));
    assert!(j.get("name").is_none(), "{j}");
}

/// [`put_user`] with a display name and no email.
fn put_named_user(h: &Harness, name: &str, display: &str) {
    use conformance::store_contract::fixtures::block_on;
    use oauth_directory::{Directory, UserChange};
    let mut user = block_on(h.store.user(name)).unwrap().unwrap_or_else(|| {
        put_user(h, name, None);
        block_on(h.store.user(name)).unwrap().unwrap()
    });
    user.name = Some(display.to_owned());
    block_on(h.store.change(vec![UserChange::PutUser(user)], Vec::new())).unwrap();
}

#[test]
fn a_user_the_directory_does_not_know_is_its_subject_alone() {
    let mut h = Harness::default();
    rp(&h);
    let t = token_for(&mut h, "email profile");
    let j = json(&userinfo(&mut h, get(&t)));
    assert_eq!(
        j,
        serde_json::json!({"sub": "alice", "preferred_username": "alice", "scope": "email profile"})
    );
    // A user name that is an address is its email, verified like every administrator-set one.
    put_user(&h, "bob@example.org", None);
    let query = format!("response_type=code&client_id=rp&redirect_uri={RP_REDIRECT}&scope=email&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "bob@example.org");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id=rp&redirect_uri={RP_REDIRECT}&code_verifier={VERIFIER}"), None);
    let t = json(&r)["access_token"].as_str().unwrap().to_owned();
    let j = json(&userinfo(&mut h, get(&t)));
    assert_eq!(j["email"], "bob@example.org");
    assert_eq!(j["email_verified"], true);
}

#[test]
fn a_urn_mail_token_lists_the_short_alias_too() {
    let mut h = Harness::default();
    rp(&h);
    let t = token_for(&mut h, "urn:ietf:params:oauth:scope:mail calendar");
    let j = json(&userinfo(&mut h, get(&t)));
    assert_eq!(
        j["scope"],
        "calendar mail urn:ietf:params:oauth:scope:calendars urn:ietf:params:oauth:scope:mail"
    );
}

#[test]
fn a_client_credentials_token_names_no_user() {
    let mut h = Harness::default();
    let secret = h.confidential_client();
    // Even when a user has the client's name.
    put_user(&h, "web", Some("web@example.com"));
    let r = h.token(
        "grant_type=client_credentials&scope=mail",
        Some(&basic("web", secret.expose())),
    );
    let t = json(&r)["access_token"].as_str().unwrap().to_owned();
    let r = userinfo(&mut h, get(&t));
    refused(&r, 401, "invalid_token");
    assert!(!r.body.contains("web"), "{}", r.body);
}

#[test]
fn revoked_expired_forged_and_missing_tokens() {
    let mut h = Harness::default();
    rp(&h);
    put_user(&h, "alice", Some("alice@example.com"));
    let t = token_for(&mut h, "email");

    // K99: no credentials, a bare challenge without error.
    let r = userinfo(
        &mut h,
        HttpRequest {
            method: "GET".into(),
            ..Default::default()
        },
    );
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=") && !challenge.contains("error="),
        "{challenge}"
    );

    // K100: altered, unknown and malformed tokens.
    let mut altered = t.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    for bad in [String::from_utf8(altered).unwrap(), "AAAA".to_owned()] {
        refused(&userinfo(&mut h, get(&bad)), 401, "invalid_token");
    }

    // Expired: one second past its lifetime.
    let claims = h.validate(&t).unwrap();
    let now = h.now;
    h.now = claims.expires_at;
    refused(&userinfo(&mut h, get(&t)), 401, "invalid_token");
    h.now = now;

    // K96/K97: the query form and two methods at once are invalid_request.
    let mut q = get(&t);
    q.query = format!("access_token={t}");
    refused(&userinfo(&mut h, q), 400, "invalid_request");
    let mut both = HttpRequest::form_post(format!("access_token={t}"));
    both.authorization = Some(format!("Bearer {t}"));
    refused(&userinfo(&mut h, both), 400, "invalid_request");

    // Revoked at the revocation endpoint: refused at once.
    assert_eq!(userinfo(&mut h, get(&t)).status, 200);
    let r = h.revoke(&format!("token={t}&client_id=rp"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    refused(&userinfo(&mut h, get(&t)), 401, "invalid_token");
}

#[test]
fn metadata_advertises_the_routed_userinfo_endpoint() {
    let h = Harness::default();
    let j = json(&h.engine.metadata());
    assert_eq!(j["userinfo_endpoint"], h.engine.endpoints().userinfo);
    assert!(h.engine.endpoints().userinfo.ends_with("/userinfo"));
}
