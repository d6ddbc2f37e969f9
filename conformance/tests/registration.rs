//! Dynamic client registration (RFC 7591) and management (RFC 7592): checklist O (124-135),
//! 10 (no-store), 42/45-47 (redirect URI registration), and the vectors of section 1.5.

use conformance::surface::*;
use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::{Config, RegistrationPolicy};
use oauth_proto::secret::SecretHash;

const IAT: &str = "ey23f2.adfj230.af32-developer321";

/// RFC 7591 §3.1, first example (verbatim body).
const RFC_OPEN: &str = r#"{
 "redirect_uris": [
   "https://client.example.org/callback",
   "https://client.example.org/callback2"],
 "client_name": "My Example Client",
 "client_name#ja-Jpan-JP":
    "\u30AF\u30E9\u30A4\u30A2\u30F3\u30C8\u540D",
 "token_endpoint_auth_method": "client_secret_basic",
 "logo_uri": "https://client.example.org/logo.png",
 "jwks_uri": "https://client.example.org/my_public_keys.jwks",
 "example_extension_parameter": "example_value"
}"#;

/// RFC 7591 §3.1, second example (verbatim body, the JWK's `n` joined onto one line).
const RFC_IAT: &str = r#"{
   "redirect_uris": ["https://client.example.org/callback",
      "https://client.example.org/callback2"],
   "client_name": "My Example Client",
   "client_name#ja-Jpan-JP":
      "\u30AF\u30E9\u30A4\u30A2\u30F3\u30C8\u540D",
   "token_endpoint_auth_method": "client_secret_basic",
   "policy_uri": "https://client.example.org/policy.html",
   "jwks": {"keys": [{
      "e": "AQAB",
      "n": "nj3YJwsLUFl9BmpAbkOswCNVx17Eh9wMO-_AReZwBqfaWFcfGHrZXsIV2VMCNVNU8Tpb4obUaSXcRcQ-VMsfQPJm9IzgtRdAY8NN8Xb7PEcYyklBjvTtuPbpzIaqyiUepzUXNDFuAOOkrIol3WmflPUUgMKULBN0EUd1fpOD70pRM0rlp_gg_WNUKoW1V-3keYUJoXH9NztEDm_D2MQXj9eGOJJ8yPgGL8PAZMLe2R7jb9TxOCPDED7tY_TU4nFPlxptw59A42mldEmViXsKQt60s1SLboazxFKveqXC_jpLUt22OC6GUG63p-REw-ZOr3r845z50wMuzifQrMI9bQ",
      "kty": "RSA"
   }]},
   "example_extension_parameter": "example_value"
  }"#;

const NATIVE: &str = r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"client_name":"Thunderbird"}"#;

fn open_confidential() -> Config {
    Config {
        confidential_registration: RegistrationPolicy::Open,
        ..Config::default()
    }
}

fn with_iat() -> Config {
    Config {
        initial_access_tokens: vec![IAT.to_owned()].into(),
        ..Config::default()
    }
}

#[track_caller]
fn assert_error(r: &oauth_proto::response::Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let j = json(r);
    assert_eq!(j["error"], code, "{}", r.body);
    assert!(!j["error_description"].as_str().unwrap().is_empty());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
}

#[test]
fn rfc7591_open_registration_vector() {
    let mut h = Harness::new(open_confidential());
    let r = h.register(RFC_OPEN, None);
    // 124, 10
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let j = json(&r);
    // 125: client_id, the secret with its expiry (0 = never), every registered member with defaults.
    let client_id = j["client_id"].as_str().unwrap();
    assert!(client_id.len() >= 22, "128 random bits");
    assert_eq!(j["client_id_issued_at"], T0);
    let secret = j["client_secret"].as_str().unwrap();
    assert_eq!(j["client_secret_expires_at"], 0);
    assert_eq!(
        j["redirect_uris"],
        serde_json::json!([
            "https://client.example.org/callback",
            "https://client.example.org/callback2"
        ])
    );
    assert_eq!(j["grant_types"], serde_json::json!(["authorization_code"]));
    assert_eq!(j["response_types"], serde_json::json!(["code"]));
    assert_eq!(j["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(j["client_name"], "My Example Client");
    assert_eq!(
        j["client_name#ja-Jpan-JP"],
        "\u{30AF}\u{30E9}\u{30A4}\u{30A2}\u{30F3}\u{30C8}\u{540D}"
    );
    assert_eq!(j["logo_uri"], "https://client.example.org/logo.png");
    assert_eq!(
        j["jwks_uri"],
        "https://client.example.org/my_public_keys.jwks"
    );
    // The default scope, without offline_access: no refresh_token grant was registered.
    assert_eq!(
        j["scope"],
        "calendar contacts email mail openid profile urn:ietf:params:oauth:scope:calendars \
         urn:ietf:params:oauth:scope:contacts urn:ietf:params:oauth:scope:mail"
    );
    // 127: unknown members are dropped.
    assert!(j.get("example_extension_parameter").is_none());
    assert_eq!(
        j["registration_client_uri"],
        format!("http://127.0.0.1:8080/register/{client_id}")
    );
    // Stored as hashes only; the client is confidential and not a resource server.
    let stored = h.client(client_id).unwrap();
    assert_eq!(stored.kind, ClientKind::Confidential);
    assert_eq!(stored.secret_hash, Some(SecretHash::of(secret)));
    let rat = j["registration_access_token"].as_str().unwrap();
    assert_eq!(stored.registration_token_hash, Some(SecretHash::of(rat)));
    assert!(!stored.resource_server);
    assert_eq!(stored.name, "My Example Client");
    assert!(
        !format!("{stored:?}").contains(secret),
        "no secret in Debug output"
    );
}

#[test]
fn rfc7591_initial_access_token_vector() {
    let mut h = Harness::new(with_iat());
    let r = h.register(RFC_IAT, Some(&bearer(IAT)));
    assert_eq!(r.status, 201, "{}", r.body);
    let j = json(&r);
    assert_eq!(j["jwks"]["keys"][0]["kty"], "RSA");
    assert_eq!(j["policy_uri"], "https://client.example.org/policy.html");
    assert!(j["client_secret"].is_string());
    // The scheme name is case-insensitive (95).
    assert_eq!(
        h.register(RFC_IAT, Some(&format!("bearer {IAT}"))).status,
        201
    );
    // Without the token, confidential registration needs one: 401 with a Bearer challenge.
    let r = h.register(RFC_IAT, None);
    assert_error(&r, 401, "invalid_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"oauth\""));
    // A wrong token is refused even for a public client that needs none.
    let r = h.register(NATIVE, Some(&bearer("not-the-token")));
    assert_error(&r, 401, "invalid_token");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[test]
fn registration_policies() {
    // Default: public open, confidential needs an initial access token (none configured).
    let mut h = Harness::default();
    assert_eq!(h.register(NATIVE, None).status, 201);
    assert_error(&h.register(RFC_OPEN, None), 401, "invalid_token");

    let mut h = Harness::new(Config {
        confidential_registration: RegistrationPolicy::Off,
        ..Config::default()
    });
    assert_error(&h.register(RFC_OPEN, None), 400, "invalid_client_metadata");
    assert_eq!(h.register(NATIVE, None).status, 201);

    let mut h = Harness::new(Config {
        public_registration: false,
        confidential_registration: RegistrationPolicy::Off,
        ..Config::default()
    });
    assert_error(&h.register(NATIVE, None), 400, "invalid_client_metadata");

    // Public registration off, but an initial access token admits it.
    let mut h = Harness::new(Config {
        public_registration: false,
        ..with_iat()
    });
    assert_error(&h.register(NATIVE, None), 401, "invalid_token");
    assert_eq!(h.register(NATIVE, Some(&bearer(IAT))).status, 201);
}

#[test]
fn public_native_client_registers_and_uses_the_code_flow() {
    let mut h = Harness::default();
    let j = h.register_ok(NATIVE);
    // 130: none = public, no secret issued.
    assert!(j.get("client_secret").is_none());
    assert!(j.get("client_secret_expires_at").is_none());
    assert_eq!(j["token_endpoint_auth_method"], "none");
    let id = j["client_id"].as_str().unwrap();
    let query = format!("response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    match h.authorize(&query) {
        AuthorizeOutcome::Consent(p) => assert_eq!(p.client_name(), "Thunderbird"),
        other => panic!("{other:?}"),
    }
    let code = h.code_for(&query, "alice");
    let r = h.token(&format!("grant_type=authorization_code&code={code}&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&code_verifier={VERIFIER}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(json(&r)["refresh_token"].is_string());
}

#[test]
fn confidential_client_authenticates_with_its_issued_secret() {
    let mut h = Harness::new(open_confidential());
    let j = h.register_ok(r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post","scope":"mail"}"#);
    // No redirect-flow grant: no redirect URIs needed, and no response types.
    assert_eq!(j["response_types"], serde_json::json!([]));
    let (id, secret) = (
        j["client_id"].as_str().unwrap(),
        j["client_secret"].as_str().unwrap(),
    );
    let r = h.token(
        &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json(&r)["scope"], "mail");
}

#[test]
fn ids_and_secrets_are_unique_and_never_chosen_by_the_client() {
    let mut h = Harness::new(open_confidential());
    let body = r#"{"client_id":"admin","client_secret":"chosen","grant_types":["client_credentials"],"client_id_issued_at":1}"#;
    let a = h.register_ok(body);
    let b = h.register_ok(body);
    // 126, 135
    assert_ne!(a["client_id"], "admin");
    assert_ne!(a["client_id"], b["client_id"]);
    assert_ne!(a["client_secret"], "chosen");
    assert_ne!(a["client_secret"], b["client_secret"]);
    assert_ne!(
        a["registration_access_token"],
        b["registration_access_token"]
    );
    assert_eq!(a["client_id_issued_at"], T0);
    assert!(h.client("admin").is_none());
}

#[test]
fn redirect_uri_rules() {
    let mut h = Harness::default();
    let reg = |h: &mut Harness, uris: &str| {
        h.register(
            &format!(r#"{{"token_endpoint_auth_method":"none","redirect_uris":{uris}}}"#),
            None,
        )
    };
    for ok in [
        r#"["https://client.example.org/cb"]"#,
        r#"["http://127.0.0.1/cb"]"#,
        r#"["http://[::1]:8080/cb"]"#,
        r#"["com.example.app:/oauth2redirect"]"#,
        r#"["https://client.example.org/cb?x=1"]"#,
    ] {
        assert_eq!(reg(&mut h, ok).status, 201, "{ok}");
    }
    for bad in [
        r#"["http://client.example.org/cb"]"#, // 45: http off loopback
        r#"["http://localhost/cb"]"#,          // RFC 8252 8.3: a name, not the loopback literal
        r#"["http://127.0.0.1:0/"]"#,          // port 0: nothing listens there
        r#"["https://client.example.org/cb#x"]"#, // 46: fragment
        r#"["https://client.example.org/cb#"]"#, // 46: empty fragment
        r#"["/cb"]"#,                          // 46: relative
        r#"["myapp:/cb"]"#,                    // 47: private-use scheme without a dot
        r#"["javascript:alert(1)"]"#,
        r#"["https://user:pw@client.example.org/cb"]"#,
        r#"[]"#,                              // 131: redirect flow without URIs
        r#""https://client.example.org/cb""#, // not an array
        r#"[42]"#,
    ] {
        assert_error(&reg(&mut h, bad), 400, "invalid_redirect_uri");
    }
    // 131: missing entirely.
    assert_error(
        &h.register(r#"{"token_endpoint_auth_method":"none"}"#, None),
        400,
        "invalid_redirect_uri",
    );
    // Bounded count (max_redirect_uris = 10).
    let many: Vec<String> = (0..11)
        .map(|i| format!("\"https://c.example/{i}\""))
        .collect();
    assert_error(
        &reg(&mut h, &format!("[{}]", many.join(","))),
        400,
        "invalid_redirect_uri",
    );
    let ten: Vec<String> = (0..10)
        .map(|i| format!("\"https://c.example/{i}\""))
        .collect();
    assert_eq!(reg(&mut h, &format!("[{}]", ten.join(","))).status, 201);
}

#[test]
fn metadata_rules() {
    let mut h = Harness::new(open_confidential());
    let cases = [
        // 129: grant and response types consistent.
        r#"{"redirect_uris":["https://c.example/cb"],"response_types":["token"]}"#,
        r#"{"redirect_uris":["https://c.example/cb"],"response_types":[]}"#,
        r#"{"grant_types":["client_credentials"],"response_types":["code"]}"#,
        // Forbidden and unknown grant types.
        r#"{"redirect_uris":["https://c.example/cb"],"grant_types":["implicit"]}"#,
        r#"{"grant_types":["password"]}"#,
        r#"{"grant_types":["urn:example:unknown"]}"#,
        r#"{"grant_types":[]}"#,
        r#"{"grant_types":"client_credentials"}"#,
        r#"{"grant_types":["refresh_token"]}"#,
        // A public client cannot use client_credentials.
        r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}"#,
        // Unsupported auth methods.
        r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt"}"#,
        r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":7}"#,
        // Scope within scopes_supported, well-formed.
        r#"{"grant_types":["client_credentials"],"scope":"mail admin"}"#,
        r#"{"grant_types":["client_credentials"],"scope":"mail \"x"}"#,
        // 128: jwks and jwks_uri together.
        r#"{"grant_types":["client_credentials"],"jwks":{"keys":[]},"jwks_uri":"https://c.example/jwks"}"#,
        r#"{"grant_types":["client_credentials"],"jwks":{"nokeys":1}}"#,
        r#"{"grant_types":["client_credentials"],"jwks_uri":"http://c.example/jwks"}"#,
        // Informative members: types, URIs, control characters, counts.
        r#"{"grant_types":["client_credentials"],"client_name":["x"]}"#,
        r#"{"grant_types":["client_credentials"],"client_name":"evil\nname"}"#,
        r#"{"grant_types":["client_credentials"],"logo_uri":"javascript:alert(1)"}"#,
        r#"{"grant_types":["client_credentials"],"client_uri#fr":"not a uri"}"#,
        r#"{"grant_types":["client_credentials"],"contacts":["a","b","c","d","e","f","g","h","i","j","k"]}"#,
        // The body must be a JSON object.
        r#"["not","an","object"]"#,
        r#"{"unterminated": "#,
    ];
    for body in cases {
        assert_error(&h.register(body, None), 400, "invalid_client_metadata");
    }
    // String lengths are bounded (max_metadata_string_len = 2048).
    let long = "x".repeat(2049);
    let body = format!(r#"{{"grant_types":["client_credentials"],"client_name":"{long}"}}"#);
    assert_error(&h.register(&body, None), 400, "invalid_client_metadata");
    let body = format!(
        r#"{{"grant_types":["client_credentials"],"client_name":"{}"}}"#,
        &long[1..]
    );
    assert_eq!(h.register(&body, None).status, 201);
    // Localized members with a bad tag are dropped like unknown ones.
    let j = h.register_ok(r#"{"grant_types":["client_credentials"],"client_name#a b":"x","client_name#de":"Beispiel","software_id":"s1","contacts":["ops@c.example"]}"#);
    assert!(j.get("client_name#a b").is_none());
    assert_eq!(j["client_name#de"], "Beispiel");
    assert_eq!(j["software_id"], "s1");
    assert_eq!(j["contacts"], serde_json::json!(["ops@c.example"]));
    // A client without a name is shown by its id.
    let id = j["client_id"].as_str().unwrap();
    assert_eq!(h.client(id).unwrap().name, id);
    // Device-only public clients need no redirect URI.
    let j = h.register_ok(r#"{"grant_types":["urn:ietf:params:oauth:grant-type:device_code","refresh_token"],"token_endpoint_auth_method":"none"}"#);
    assert_eq!(j["response_types"], serde_json::json!([]));
    let stored = h.client(j["client_id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored.grant_types,
        vec![GrantType::DeviceCode, GrantType::RefreshToken]
    );
}

#[test]
fn http_framing() {
    let mut h = Harness::default();
    let mut request = json_request("POST", NATIVE, None);
    request.content_type = Some("application/x-www-form-urlencoded".into());
    let flow = h.engine.register(request, h.now);
    assert_error(&h.run(flow), 400, "invalid_request");
    let flow = h.engine.register(json_request("GET", NATIVE, None), h.now);
    assert_error(&h.run(flow), 400, "invalid_request");
    let big = format!(r#"{{"client_name":"{}"}}"#, "x".repeat(70 * 1024));
    assert_error(&h.register(&big, None), 400, "invalid_request");
    // A charset parameter is fine.
    let mut request = json_request("POST", NATIVE, None);
    request.content_type = Some("application/json; charset=utf-8".into());
    let flow = h.engine.register(request, h.now);
    assert_eq!(h.run(flow).status, 201);
}

#[test]
fn rfc7592_read_update_delete() {
    let mut h = Harness::default();
    let j = h.register_ok(NATIVE);
    let id = j["client_id"].as_str().unwrap().to_owned();
    let rat = j["registration_access_token"].as_str().unwrap().to_owned();
    let auth = bearer(&rat);

    // Read.
    let r = h.client_configuration(&id, "GET", "", Some(&auth));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let read = json(&r);
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "Thunderbird");
    assert_eq!(read["registration_access_token"], rat.as_str());
    assert_eq!(
        read["registration_client_uri"],
        j["registration_client_uri"]
    );

    // Bad tokens: wrong, missing, wrong scheme, another client's id: all 401 invalid_token.
    assert_error(
        &h.client_configuration(&id, "GET", "", Some(&bearer("wrong"))),
        401,
        "invalid_token",
    );
    assert_error(
        &h.client_configuration(&id, "GET", "", None),
        401,
        "invalid_token",
    );
    assert_error(
        &h.client_configuration(&id, "GET", "", Some(&basic(&id, &rat))),
        401,
        "invalid_token",
    );
    assert_error(
        &h.client_configuration("someone-else", "GET", "", Some(&auth)),
        401,
        "invalid_token",
    );
    let other = h.register_ok(NATIVE);
    let other_auth = bearer(other["registration_access_token"].as_str().unwrap());
    assert_error(
        &h.client_configuration(&id, "GET", "", Some(&other_auth)),
        401,
        "invalid_token",
    );
    // A client registered by the operator (no registration token) cannot be managed.
    h.public_client();
    assert_error(
        &h.client_configuration("app", "GET", "", Some(&auth)),
        401,
        "invalid_token",
    );

    // Update: the whole metadata is replaced and validated like a registration.
    let update = format!(
        r#"{{"client_id":"{id}","redirect_uris":["http://127.0.0.1/new"],"token_endpoint_auth_method":"none","client_name":"Thunderbird 2"}}"#
    );
    let r = h.client_configuration(&id, "PUT", &update, Some(&auth));
    assert_eq!(r.status, 200, "{}", r.body);
    let updated = json(&r);
    assert_eq!(updated["client_name"], "Thunderbird 2");
    assert_eq!(
        updated["grant_types"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(
        h.client(&id).unwrap().redirect_uris,
        vec!["http://127.0.0.1/new"]
    );
    assert_eq!(h.client(&id).unwrap().created_at, T0);
    // Update failures.
    let no_id = r#"{"redirect_uris":["http://127.0.0.1/new"],"token_endpoint_auth_method":"none"}"#;
    assert_error(
        &h.client_configuration(&id, "PUT", no_id, Some(&auth)),
        400,
        "invalid_request",
    );
    let kind_change = format!(r#"{{"client_id":"{id}","redirect_uris":["http://127.0.0.1/new"]}}"#);
    assert_error(
        &h.client_configuration(&id, "PUT", &kind_change, Some(&auth)),
        400,
        "invalid_client_metadata",
    );
    let bad_uri = format!(
        r#"{{"client_id":"{id}","redirect_uris":["http://evil.example/cb"],"token_endpoint_auth_method":"none"}}"#
    );
    assert_error(
        &h.client_configuration(&id, "PUT", &bad_uri, Some(&auth)),
        400,
        "invalid_redirect_uri",
    );
    let secret = format!(
        r#"{{"client_id":"{id}","client_secret":"guess","redirect_uris":["http://127.0.0.1/new"],"token_endpoint_auth_method":"none"}}"#
    );
    assert_error(
        &h.client_configuration(&id, "PUT", &secret, Some(&auth)),
        400,
        "invalid_client_metadata",
    );
    assert_error(
        &h.client_configuration(&id, "PUT", &update, Some(&bearer("wrong"))),
        401,
        "invalid_token",
    );

    // Other methods.
    let r = h.client_configuration(&id, "POST", "", Some(&auth));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE"));
}

#[test]
fn rfc7592_delete_revokes_the_clients_grants() {
    let mut h = Harness::new(open_confidential());
    let j = h.register_ok(r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}"#);
    let id = j["client_id"].as_str().unwrap().to_owned();
    let auth = bearer(j["registration_access_token"].as_str().unwrap());
    let query = format!("response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let code = h.code_for(&query, "alice");
    let t = json(&h.token(&format!("grant_type=authorization_code&code={code}&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}"), None));
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(h.validate(&access).is_ok());

    // A confidential client's client_credentials tokens die too.
    let c = h.register_ok(r#"{"grant_types":["client_credentials"]}"#);
    let (cid, csecret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let cc = json(&h.token(
        "grant_type=client_credentials",
        Some(&basic(&cid, &csecret)),
    ));
    let cc_access = cc["access_token"].as_str().unwrap().to_owned();

    h.now += 5;
    let r = h.client_configuration(&id, "DELETE", "", Some(&auth));
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert!(h.client(&id).is_none());
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id={id}"),
        None,
    );
    assert_error(&r, 401, "invalid_client");
    // Deleted: the token no longer works for management either.
    assert_error(
        &h.client_configuration(&id, "GET", "", Some(&auth)),
        401,
        "invalid_token",
    );

    let cauth = bearer(c["registration_access_token"].as_str().unwrap());
    assert_eq!(
        h.client_configuration(&cid, "DELETE", "", Some(&cauth))
            .status,
        204
    );
    assert_eq!(h.validate(&cc_access), Err(TokenError::Revoked));
}

/// RFC 7591 §3.1.1 (verbatim body): the statement is displayed line-wrapped, which makes the JSON
/// string invalid as printed.
const RFC_STATEMENT: &str = r#"{
    "redirect_uris": [
      "https://client.example.org/callback",
      "https://client.example.org/callback2"
    ],
    "software_statement": "eyJhbGciOiJSUzI1NiJ9.
eyJzb2Z0d2FyZV9pZCI6IjROUkIxLTBYWkFCWkk5RTYtNVNNM1IiLCJjbGll
bnRfbmFtZSI6IkV4YW1wbGUgU3RhdGVtZW50LWJhc2VkIENsaWVudCIsImNs
aWVudF91cmkiOiJodHRwczovL2NsaWVudC5leGFtcGxlLm5ldC8ifQ.
GHfL4QNIrQwL18BSRdE595T9jbzqa06R9BT8w409x9oIcKaZo_mt15riEXHa
zdISUvDIZhtiyNrSHQ8K4TvqWxH6uJgcmoodZdPwmWRIEYbQDLqPNxREtYn0
5X3AR7ia4FRjQ2ojZjk5fJqJdQ-JcfxyhK-P8BAWBd6I2LLA77IG32xtbhxY
fHX7VhuU5ProJO8uvu3Ayv4XRhLZJY4yKfmyjiiKiPNe-Ia4SMy_d_QSWxsk
U5XIQl5Sa2YRPMbDRXttm2TfnZM1xx70DoYi8g6czz-CPGRi4SW_S2RKHIJf
IjoI3zTJ0Y2oe0_EJAiXbL6OyF9S5tKxDXV8JIndSA",
    "scope": "read write",
    "example_extension_parameter": "example_value"
  }"#;

#[test]
fn software_statements_are_not_supported_and_ignored() {
    let mut h = Harness::new(open_confidential());
    // As printed, the body is not JSON.
    assert_error(
        &h.register(RFC_STATEMENT, None),
        400,
        "invalid_client_metadata",
    );
    // Joined, it is; `read write` are not scopes of this server.
    let joined = RFC_STATEMENT.replace('\n', "");
    let r = h.register(&joined, None);
    assert_error(&r, 400, "invalid_client_metadata");
    assert!(json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("scope"));
    // With a known scope it registers, and the statement is neither trusted nor echoed: its
    // client_name does not appear.
    let r = h.register(&joined.replace("read write", "mail"), None);
    assert_eq!(r.status, 201, "{}", r.body);
    let j = json(&r);
    assert!(j.get("software_statement").is_none());
    assert!(j.get("client_name").is_none());
    assert_eq!(j["scope"], "mail");
}

#[test]
fn o128_jwks_and_jwks_uri_together_are_refused() {
    let mut h = Harness::new(open_confidential());
    let jwks = r#""jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    let jwks_uri = r#""jwks_uri":"https://c.example/jwks.json""#;
    // Each alone is accepted and echoed.
    let j = h.register_ok(&format!(
        r#"{{"grant_types":["client_credentials"],{jwks}}}"#
    ));
    assert_eq!(j["jwks"]["keys"][0]["kty"], "OKP");
    let j = h.register_ok(&format!(
        r#"{{"grant_types":["client_credentials"],{jwks_uri}}}"#
    ));
    assert_eq!(j["jwks_uri"], "https://c.example/jwks.json");
    // Both: invalid_client_metadata, saying why, and nothing is registered.
    let r = h.register(
        &format!(r#"{{"grant_types":["client_credentials"],{jwks},{jwks_uri}}}"#),
        None,
    );
    assert_error(&r, 400, "invalid_client_metadata");
    let description = json(&r)["error_description"].as_str().unwrap().to_owned();
    assert!(
        description.contains("jwks") && description.contains("jwks_uri"),
        "{description}"
    );
}

#[test]
fn o130_omitted_members_get_the_rfc_defaults() {
    let mut h = Harness::new(open_confidential());
    let j = h.register_ok(r#"{"redirect_uris":["https://c.example/cb"]}"#);
    // token_endpoint_auth_method client_secret_basic, so a confidential client with a secret.
    assert_eq!(j["token_endpoint_auth_method"], "client_secret_basic");
    assert!(j["client_secret"].is_string());
    assert_eq!(j["client_secret_expires_at"], 0);
    assert_eq!(j["grant_types"], serde_json::json!(["authorization_code"]));
    assert_eq!(j["response_types"], serde_json::json!(["code"]));
    let id = j["client_id"].as_str().unwrap();
    let stored = h.client(id).unwrap();
    assert_eq!(stored.kind, ClientKind::Confidential);
    assert_eq!(
        stored.auth_method,
        oauth_proto::client::AuthMethod::ClientSecretBasic
    );
    assert_eq!(stored.grant_types, vec![GrantType::AuthorizationCode]);
    // `none` is a public client: no secret is issued or stored.
    let j = h.register_ok(
        r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}"#,
    );
    assert!(j.get("client_secret").is_none());
    assert!(j.get("client_secret_expires_at").is_none());
    let stored = h.client(j["client_id"].as_str().unwrap()).unwrap();
    assert_eq!(stored.kind, ClientKind::Public);
    assert_eq!(stored.secret_hash, None);
}

#[test]
fn a6_redirect_uris_carrying_response_parameters_are_refused() {
    // The authorization response appends code, state, iss (or error, ...); a registered query
    // holding one of them would make the response carry it twice.
    let mut h = Harness::default();
    for name in [
        "code",
        "state",
        "iss",
        "error",
        "error_description",
        "error_uri",
    ] {
        let body = format!(
            r#"{{"token_endpoint_auth_method":"none","redirect_uris":["https://c.example/cb?a=1&{name}=x"]}}"#
        );
        assert_error(&h.register(&body, None), 400, "invalid_redirect_uri");
    }
    // Other query parameters stay allowed (and are kept, C31).
    let ok = r#"{"token_endpoint_auth_method":"none","redirect_uris":["https://c.example/cb?codes=1&statement=2"]}"#;
    assert_eq!(h.register(ok, None).status, 201);
}

#[test]
fn k100_malformed_bearer_credentials_at_registration_are_400() {
    let mut h = Harness::new(with_iat());
    for header in [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer tok\"en",
        "Bearer =abc",
    ] {
        let r = h.register(RFC_IAT, Some(header));
        assert_error(&r, 400, "invalid_request");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"oauth\", error=\"invalid_request\""),
            "{header:?}"
        );
    }
    // Another scheme carries no bearer credentials (RFC 6750 §3.1): a confidential registration
    // still needs its token (bare challenge), an open public one needs none.
    let r = h.register(RFC_IAT, Some("Basic YTpi"));
    assert_error(&r, 401, "invalid_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"oauth\""));
    assert_eq!(h.register(NATIVE, Some("Basic YTpi")).status, 201);
    // The client configuration endpoint parses its header the same way.
    let j = h.register_ok(NATIVE);
    let id = j["client_id"].as_str().unwrap().to_owned();
    assert_error(
        &h.client_configuration(&id, "GET", "", Some("Bearer a b")),
        400,
        "invalid_request",
    );
}

#[test]
fn initial_access_tokens_must_be_sendable_as_bearer_tokens() {
    for bad in [
        "has a space in it, 16+",
        "quote\"0123456789abcdef",
        "0123456789abcde",
    ] {
        let config = Config {
            initial_access_tokens: vec![bad.to_owned()].into(),
            ..with_iat()
        };
        assert!(config.validate().is_err(), "{bad:?}");
    }
    assert_eq!(with_iat().validate(), Ok(()));
}
