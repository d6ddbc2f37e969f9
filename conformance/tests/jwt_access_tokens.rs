//! RFC 9068 JWT access tokens: opt-in per client and per resource (the HMAC format stays the
//! default), the header and claims of RFC 9068 §2, and validation exactly like the HMAC format's
//! (revocation of the grant, credential changes, expiry, audience), with the refusals of §4: wrong
//! `typ` (an ID token), unknown key, tampering, oversized tokens. Every grant issues a JWT when
//! the client opted in; introspection, revocation, userinfo and SASL take both formats.

use base64::Engine as _;
use conformance::*;
use oauth_proto::access_token::{AccessTokenFormat, TokenError};
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::{Config, IntrospectionPolicy};
use oauth_proto::http::HttpRequest;
use oauth_proto::jose::{jws, Algorithm, IdTokenClaims, KeySet};
use oauth_proto::random::CounterRandom;
use oauth_proto::resource::ProtectedResource;
use oauth_proto::response::Response;
use oauth_proto::sasl::{Mechanism, SaslExchange, SaslPolicy, Step};
use oauth_proto::store::Effect;
use oauth_proto::Engine;
use serde_json::{json as j, Value};

const ISSUER: &str = "http://127.0.0.1:8080";
const IMAP: &str = "imap://mail.example.com";
const SMTP: &str = "smtp://mail.example.com";
const REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// The decoded header and claims of a compact JWS.
fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let header = b64().decode(it.next().unwrap()).unwrap();
    let payload = b64().decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

fn set_format(h: &Harness, client_id: &str, format: AccessTokenFormat) {
    let mut client = h.client(client_id).expect("client exists");
    client.access_token_format = format;
    h.apply(vec![Effect::PutClient(client)]);
}

fn ok(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    json(r)
}

/// The code flow of the public client `app` for alice with `scope` and extra authorization
/// parameters: the token response.
fn code_flow(h: &mut Harness, scope: &str, extra: &str) -> Value {
    let query = format!("response_type=code&client_id=app&redirect_uri={REDIRECT}&scope={scope}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}");
    let code = h.code_for(&query, "alice");
    ok(&h.token(&format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"), None))
}

/// `app` with `openid mail offline_access`, set to JWT access tokens.
fn jwt_app(h: &Harness) {
    h.add_client(
        "app",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid mail offline_access",
    );
    set_format(h, "app", AccessTokenFormat::Jwt);
}

fn resources() -> Vec<ProtectedResource> {
    vec![
        ProtectedResource {
            resource: IMAP.to_owned(),
            scopes_supported: vec!["mail".to_owned()],
            access_token_format: AccessTokenFormat::Jwt,
        },
        ProtectedResource {
            resource: SMTP.to_owned(),
            scopes_supported: vec!["mail".to_owned()],
            access_token_format: AccessTokenFormat::Hmac,
        },
    ]
}

fn with_resources() -> Harness {
    Harness::new(Config {
        resources: resources(),
        ..Config::default()
    })
}

fn access(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn the_default_stays_the_hmac_format() {
    let mut h = Harness::default();
    let (token, _) = h.app_tokens();
    assert!(!token.contains('.'), "{token}");
    assert_eq!(
        h.client("app").unwrap().access_token_format,
        AccessTokenFormat::Hmac
    );
    // Resources that do not opt in change nothing either.
    let mut h = Harness::new(Config {
        resources: vec![ProtectedResource {
            access_token_format: AccessTokenFormat::Hmac,
            ..resources().remove(0)
        }],
        ..Config::default()
    });
    let (token, _) = h.app_tokens();
    assert!(!token.contains('.'), "{token}");
}

#[test]
fn header_and_claims_follow_rfc_9068() {
    let mut h = Harness::default();
    jwt_app(&h);
    let response = code_flow(&mut h, "openid+mail+offline_access", "");
    let token = access(&response);
    assert!(is_jwt(&token), "{token}");
    let (header, claims) = parts(&token);
    // §2.1: typ at+jwt, signed with RS256 (the set has an RS256 key), named by its kid.
    let keys = test_signing_keys();
    let rs256 = keys.signing_key(Algorithm::Rs256).unwrap();
    assert_eq!(
        header,
        j!({"alg": "RS256", "kid": rs256.kid(), "typ": "at+jwt"})
    );
    // The signature verifies with the published key alone.
    let verified = jws::verify_with(&token, rs256.verifying_key()).unwrap();
    assert_eq!(verified.typ.as_deref(), Some("at+jwt"));
    // §2.2: iss, exp, aud (the issuer: no resource), sub, client_id, iat, jti, scope, auth_time.
    let jti = claims["jti"].as_str().unwrap().to_owned();
    assert_eq!(
        claims,
        j!({
            "iss": ISSUER, "exp": T0 + 3600, "aud": ISSUER, "sub": "alice", "client_id": "app",
            "iat": T0, "jti": jti, "scope": "mail offline_access openid", "auth_time": T0
        })
    );
    // jti is unique per token: a refresh of the same grant gets another.
    let refresh = response["refresh_token"].as_str().unwrap();
    let again = ok(&h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    ));
    let (_, claims2) = parts(&access(&again));
    assert_ne!(claims2["jti"], claims["jti"]);
    assert_eq!(
        claims2["auth_time"], T0,
        "a refresh keeps the authentication time"
    );
    // The ID token issued beside it is a plain JWT, and its at_hash covers this access token.
    let id_token = response["id_token"].as_str().unwrap();
    let id = IdTokenClaims::decode(id_token, &keys).unwrap();
    assert_eq!(
        id.at_hash.as_deref(),
        Some(oauth_proto::jose::at_hash(Algorithm::Es256, &token).as_str())
    );
}

#[test]
fn validation_round_trips_like_the_hmac_format() {
    let mut h = Harness::default();
    jwt_app(&h);
    let token = access(&code_flow(&mut h, "mail+offline_access", ""));
    let claims = h.validate(&token).unwrap();
    // The same harness, the same flow, in the HMAC format: the same claims but the grant id.
    let mut plain = Harness::default();
    let (hmac, _) = plain.app_tokens();
    let hmac = plain.validate(&hmac).unwrap();
    assert_eq!(claims.subject, hmac.subject);
    assert_eq!(claims.client_id, hmac.client_id);
    assert_eq!(claims.scope, hmac.scope);
    assert_eq!(claims.issued_at, hmac.issued_at);
    assert_eq!(claims.expires_at, hmac.expires_at);
    assert_eq!(claims.credential_version, hmac.credential_version);
    assert_eq!(claims.audience, hmac.audience);
    assert!(
        claims.audience.is_empty(),
        "aud = the issuer reads as no audience"
    );
    // Expired at exp, as the HMAC format.
    h.now = T0 + 3599;
    assert!(h.validate(&token).is_ok());
    h.now = T0 + 3600;
    assert_eq!(h.validate(&token), Err(TokenError::Expired));
}

#[test]
fn a_resource_that_opts_in_gets_jwts_and_audience_rules_hold() {
    let mut h = with_resources();
    h.public_client();
    let enc = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    // For SMTP alone (HMAC): the HMAC format.
    let smtp = access(&code_flow(
        &mut h,
        "mail+offline_access",
        &format!("&resource={}", enc(SMTP)),
    ));
    assert!(!smtp.contains('.'));
    // For IMAP alone (JWT): a JWT whose aud is IMAP, as a string.
    let imap = access(&code_flow(
        &mut h,
        "mail+offline_access",
        &format!("&resource={}", enc(IMAP)),
    ));
    assert!(is_jwt(&imap));
    assert_eq!(parts(&imap).1["aud"], IMAP);
    // No resource named: the default audience is both, and one of them wants JWTs.
    let both = access(&code_flow(&mut h, "mail+offline_access", ""));
    assert!(is_jwt(&both));
    assert_eq!(parts(&both).1["aud"], j!([IMAP, SMTP]));
    let (e, now) = (&h.engine, h.now);
    assert!(e
        .validate_access_token_for(&imap, IMAP, now, &h.store)
        .is_ok());
    assert_eq!(
        e.validate_access_token_for(&imap, SMTP, now, &h.store),
        Err(TokenError::WrongAudience)
    );
    for r in [IMAP, SMTP] {
        assert!(e.validate_access_token_for(&both, r, now, &h.store).is_ok());
    }
    assert_eq!(
        e.validate_access_token_for(&both, "https://elsewhere.example", now, &h.store),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn unbound_jwts_pass_the_audience_check_only_while_no_resource_is_configured() {
    // Scope `calendar` is accepted by no configured resource: the token has no audience.
    let mut h = with_resources();
    h.add_client(
        "app",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode],
        "calendar",
    );
    set_format(&h, "app", AccessTokenFormat::Jwt);
    let token = access(&code_flow(&mut h, "calendar", ""));
    assert_eq!(parts(&token).1["aud"], ISSUER);
    assert!(h.validate(&token).unwrap().audience.is_empty());
    assert_eq!(
        h.engine
            .validate_access_token_for(&token, IMAP, h.now, &h.store),
        Err(TokenError::WrongAudience)
    );
    let mut open = Harness::default();
    jwt_app(&open);
    let token = access(&code_flow(&mut open, "mail", ""));
    assert!(open
        .engine
        .validate_access_token_for(&token, IMAP, open.now, &open.store)
        .is_ok());
}

#[test]
fn revoking_the_token_or_the_subject_kills_the_jwt() {
    let mut h = Harness::default();
    jwt_app(&h);
    let v = code_flow(&mut h, "mail+offline_access", "");
    let token = access(&v);
    assert!(h.validate(&token).is_ok());
    // RFC 7009 with the JWT itself: its grant's access is revoked, as for an HMAC token.
    assert_eq!(
        h.revoke(&format!("token={token}&client_id=app"), None)
            .status,
        200
    );
    assert_eq!(h.validate(&token), Err(TokenError::Revoked));
    // A new token of the same grant, then a credential change.
    h.now += 1;
    let refresh = v["refresh_token"].as_str().unwrap();
    let fresh = access(&ok(&h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    )));
    assert!(is_jwt(&fresh));
    assert!(h.validate(&fresh).is_ok());
    let effects = h.engine.revoke_subject("alice", h.now);
    h.apply(effects);
    assert_eq!(h.validate(&fresh), Err(TokenError::Revoked));
}

#[test]
fn introspection_answers_the_same_fields_for_both_formats() {
    let answer = |jwt: bool| {
        let mut h = Harness::new(Config {
            introspection: IntrospectionPolicy::ResourceServersOnly,
            ..Config::default()
        });
        let rs = h.resource_server();
        h.public_client();
        if jwt {
            set_format(&h, "app", AccessTokenFormat::Jwt);
        }
        let token = access(&code_flow(&mut h, "mail+offline_access", ""));
        assert_eq!(is_jwt(&token), jwt);
        let active = ok(&h.introspect(&format!("token={token}"), Some(&rs)));
        h.revoke(&format!("token={token}&client_id=app"), None);
        let revoked = ok(&h.introspect(&format!("token={token}"), Some(&rs)));
        (active, revoked)
    };
    let (jwt, jwt_revoked) = answer(true);
    let (hmac, _) = answer(false);
    assert_eq!(jwt["active"], true);
    assert_eq!(jwt, hmac);
    assert_eq!(jwt_revoked, j!({"active": false}));
}

#[test]
fn userinfo_and_sasl_take_jwts() {
    let mut h = Harness::default();
    jwt_app(&h);
    let token = access(&code_flow(&mut h, "openid+mail", ""));
    let request = HttpRequest {
        method: "GET".into(),
        authorization: Some(format!("Bearer {token}")),
        ..Default::default()
    };
    let flow = h.engine.userinfo(request, h.now);
    let r = h.run(flow);
    assert_eq!(ok(&r)["sub"], "alice");

    let policy = SaslPolicy::default();
    let validator = |t: &str| h.engine.validate_access_token(t, h.now, &h.store);
    for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2] {
        let msg = match mechanism {
            Mechanism::OAuthBearer => format!("n,a=alice,\x01auth=Bearer {token}\x01\x01"),
            _ => format!("user=alice\x01auth=Bearer {token}\x01\x01"),
        };
        let mut ex = SaslExchange::new(mechanism, true, &policy).unwrap();
        let step = ex
            .step(
                oauth_proto::sasl::ClientInput::Response(msg.into_bytes()),
                &policy,
                &validator,
            )
            .unwrap();
        let Step::Success(a) = step else {
            panic!("{mechanism:?}: expected success, got {step:?}")
        };
        assert_eq!(a.subject(), "alice");
        assert_eq!(a.client_id(), "app");
    }
}

#[test]
fn every_grant_issues_jwts_when_the_client_opted_in() {
    let mut h = Harness::default();
    // Code and refresh.
    jwt_app(&h);
    let v = code_flow(&mut h, "mail+offline_access", "");
    assert!(is_jwt(&access(&v)));
    let refresh = v["refresh_token"].as_str().unwrap();
    let r = ok(&h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=app"),
        None,
    ));
    assert!(is_jwt(&access(&r)));
    // Client credentials: sub is the client id, no auth_time.
    let secret = h.confidential_client();
    set_format(&h, "web", AccessTokenFormat::Jwt);
    let r = ok(&h.token(
        "grant_type=client_credentials&scope=mail",
        Some(&basic("web", secret.expose())),
    ));
    let token = access(&r);
    let (_, claims) = parts(&token);
    assert_eq!(claims["sub"], "web");
    assert_eq!(claims["client_id"], "web");
    assert!(claims.get("auth_time").is_none());
    let validated = h.validate(&token).unwrap();
    assert!(validated.is_client_credentials());
    // Device code.
    h.device_client();
    set_format(&h, "tv", AccessTokenFormat::Jwt);
    let (device_code, user_code) = h.start_device();
    let pending = match h.device_verify(&user_code) {
        oauth_proto::device_verify::DeviceVerifyOutcome::Consent(p) => p,
        other => panic!("{other:?}"),
    };
    h.device_approve(pending, "alice");
    h.now += 10;
    let r = ok(&h.poll(&device_code));
    let token = access(&r);
    assert!(is_jwt(&token));
    assert_eq!(h.validate(&token).unwrap().client_id, "tv");
}

#[test]
fn an_id_token_is_no_access_token() {
    let mut h = Harness::default();
    jwt_app(&h);
    let v = code_flow(&mut h, "openid+mail", "");
    let id_token = v["id_token"].as_str().unwrap();
    assert!(id_token.starts_with("eyJ"));
    // Signed by the same keys, but typ is JWT, not at+jwt.
    assert_eq!(h.validate(id_token), Err(TokenError::Malformed));
    assert_eq!(
        h.engine
            .validate_access_token_for(id_token, IMAP, h.now, &h.store),
        Err(TokenError::Malformed)
    );
    // The access token's own claims under our key: only the typ decides.
    let token = access(&v);
    let payload = b64().decode(token.split('.').nth(1).unwrap()).unwrap();
    let key = test_signing_keys();
    let key = key.signing_key(Algorithm::Rs256).unwrap();
    let with = |typ: &str| jws::sign(key, typ, &payload, &mut CounterRandom::new(3));
    assert!(h.validate(&with("at+jwt")).is_ok());
    assert!(h.validate(&with("application/at+jwt")).is_ok());
    for typ in ["JWT", "at+JWT", "logout+jwt", ""] {
        assert_eq!(h.validate(&with(typ)), Err(TokenError::Malformed), "{typ}");
    }
}

#[test]
fn foreign_keys_tampering_and_oversized_tokens_are_refused() {
    let mut h = Harness::default();
    jwt_app(&h);
    let token = access(&code_flow(&mut h, "mail", ""));
    let [header, payload, signature]: [&str; 3] =
        token.split('.').collect::<Vec<_>>().try_into().unwrap();

    // The same claims signed by another server's RS256 key: its kid is unknown here.
    let theirs = KeySet::generate(&[Algorithm::Rs256], &mut CounterRandom::new(99)).unwrap();
    let key = theirs.signing_key(Algorithm::Rs256).unwrap();
    let forged = jws::sign(
        key,
        "at+jwt",
        &b64().decode(payload).unwrap(),
        &mut CounterRandom::new(1),
    );
    assert_eq!(h.validate(&forged), Err(TokenError::UnknownKey));
    // Their signature under our header (our kid): a bad signature.
    let swapped = format!("{header}.{payload}.{}", forged.rsplit('.').next().unwrap());
    assert_eq!(h.validate(&swapped), Err(TokenError::BadSignature));

    // Another subject in the payload, the signature kept.
    let (_, mut claims) = parts(&token);
    claims["sub"] = "mallory".into();
    let tampered = format!(
        "{header}.{}.{signature}",
        b64().encode(serde_json::to_vec(&claims).unwrap())
    );
    assert_eq!(h.validate(&tampered), Err(TokenError::BadSignature));
    // A header saying HS256 or none is refused before any key is used.
    for alg in ["HS256", "none"] {
        let bad = b64().encode(
            serde_json::to_vec(&j!({"alg": alg, "kid": parts(&token).0["kid"], "typ": "at+jwt"}))
                .unwrap(),
        );
        assert_eq!(
            h.validate(&format!("{bad}.{payload}.{signature}")),
            Err(TokenError::Malformed)
        );
    }
    // Longer than the bound: malformed without decoding; truncated: malformed too.
    let long = format!(
        "{token}{}",
        "A".repeat(oauth_proto::jose::access_token::MAX_JWT_LEN)
    );
    assert_eq!(h.validate(&long), Err(TokenError::Malformed));
    assert_eq!(
        h.validate(&token[..token.len() - 10]),
        Err(TokenError::BadSignature)
    );
    assert_eq!(h.validate("eyJ"), Err(TokenError::Malformed));
    // A token from another issuer using the same keys (a second engine, same keys).
    let other = Engine::new(
        Config {
            issuer: "https://other.example".into(),
            ..Config::default()
        },
        test_keys(),
        test_signing_keys(),
    )
    .unwrap();
    assert_eq!(
        other.validate_access_token(&token, h.now, &h.store),
        Err(TokenError::Malformed)
    );
    assert!(h.validate(&token).is_ok(), "the original is untouched");
}

#[test]
fn the_algorithm_is_configurable_among_the_keys_held() {
    let mut h = Harness::new(Config {
        jwt_access_token_alg: Some(Algorithm::EdDsa),
        ..Config::default()
    });
    jwt_app(&h);
    let token = access(&code_flow(&mut h, "mail", ""));
    assert_eq!(parts(&token).0["alg"], "EdDSA");
    assert!(h.validate(&token).is_ok());
    // A configured algorithm without a key is a configuration error, at start and at rotation.
    let es_only = KeySet::generate(&[Algorithm::Es256], &mut CounterRandom::new(7)).unwrap();
    let config = Config {
        jwt_access_token_alg: Some(Algorithm::Rs256),
        ..Config::default()
    };
    let e = Engine::new(config, test_keys(), es_only.clone()).unwrap_err();
    assert_eq!(e.setting(), "jwt_access_token_alg");
    assert!(h.engine.set_keys(test_keys(), es_only.clone()).is_err());
    // Without RS256 and nothing configured: ES256.
    let mut h = Harness::default();
    h.engine.set_keys(test_keys(), es_only).unwrap();
    jwt_app(&h);
    let token = access(&code_flow(&mut h, "mail", ""));
    assert_eq!(parts(&token).0["alg"], "ES256");
}

#[test]
fn no_resource_may_be_the_issuer_and_registration_cannot_choose_jwts_nor_undo_them() {
    let config = Config {
        resources: vec![ProtectedResource {
            resource: ISSUER.to_owned(),
            scopes_supported: vec![],
            access_token_format: AccessTokenFormat::Jwt,
        }],
        ..Config::default()
    };
    assert_eq!(config.validate().unwrap_err().setting(), "resources");
    // Open dynamic registration naming the format: the client still gets the default.
    let mut h = Harness::default();
    let v = h.register_ok(
        r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
            "access_token_format":"jwt"}"#,
    );
    let id = v["client_id"].as_str().unwrap().to_owned();
    let rat = format!(
        "Bearer {}",
        v["registration_access_token"].as_str().unwrap()
    );
    assert_eq!(
        h.client(&id).unwrap().access_token_format,
        AccessTokenFormat::Hmac
    );
    // Nor through an RFC 7592 update; and an update keeps what the administrator set.
    let update = |format: &str| {
        format!(
            r#"{{"client_id":"{id}","redirect_uris":["http://127.0.0.1/cb"],
                "token_endpoint_auth_method":"none","access_token_format":"{format}"}}"#
        )
    };
    let r = h.client_configuration(&id, "PUT", &update("jwt"), Some(&rat));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.client(&id).unwrap().access_token_format,
        AccessTokenFormat::Hmac
    );
    set_format(&h, &id, AccessTokenFormat::Jwt);
    let r = h.client_configuration(&id, "PUT", &update("hmac"), Some(&rat));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        h.client(&id).unwrap().access_token_format,
        AccessTokenFormat::Jwt
    );
}
