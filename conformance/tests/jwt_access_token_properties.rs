//! Properties of RFC 9068 JWT access tokens over arbitrary claims (quickcheck): the engine
//! validates what `jose::access_token::issue` signs as exactly the claims signed, until expiry and
//! never after; every token is an RFC 6750 `b64token`; any single-byte change is refused; and any
//! string that looks like a JWT is an error, never a panic.

use conformance::*;
use oauth_proto::access_token::{AccessClaims, Audience, TokenError, MAX_CLIENT_ID, MAX_SUBJECT};
use oauth_proto::config::Config;
use oauth_proto::jose::access_token as jwt;
use oauth_proto::jose::Algorithm;
use oauth_proto::random::CounterRandom;
use oauth_proto::scope::Scope;
use oauth_proto::store::GrantId;
use quickcheck::{QuickCheck, TestResult};

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCES: [&str; 3] = [
    "imap://mail.example.com",
    "https://mail.example.com/jmap",
    "smtp://mail.example.com",
];

fn qc(tests: u64) -> QuickCheck {
    QuickCheck::new().tests(tests).max_tests(tests * 10)
}

/// Claims from arbitrary parts, or `None` for parts no token can carry (the engine bounds them
/// before issuing).
fn claims(
    subject: String,
    client: String,
    scope: Vec<String>,
    audience: u8,
    iat: u32,
    ttl: u16,
    version: u32,
) -> Option<AccessClaims> {
    let scope: Vec<String> = scope
        .into_iter()
        .map(|t| {
            t.chars()
                .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                .collect()
        })
        .filter(|t: &String| !t.is_empty())
        .collect();
    if subject.is_empty() || subject.len() > MAX_SUBJECT || client.len() > MAX_CLIENT_ID {
        return None;
    }
    let audience: Vec<&str> = RESOURCES
        .iter()
        .enumerate()
        .filter(|(i, _)| audience & (1 << i) != 0)
        .map(|(_, r)| *r)
        .collect();
    Some(AccessClaims {
        grant_id: GrantId([iat as u8; 16]),
        subject,
        client_id: client,
        scope: Scope::from_tokens(scope),
        issued_at: iat as u64,
        expires_at: iat as u64 + ttl as u64 + 1,
        credential_version: version,
        audience: Audience::new(audience)?,
    })
}

fn issue(alg: Algorithm, c: &AccessClaims, seed: u64) -> String {
    let keys = test_signing_keys();
    let key = keys.signing_key(alg).unwrap();
    jwt::issue(key, ISSUER, c, None, &mut CounterRandom::new(seed)).unwrap()
}

/// An engine for `ISSUER` with the test keys, and a store in which nothing is revoked and every
/// subject's credential version is `0`.
fn harness() -> Harness {
    Harness::new(Config::default())
}

#[test]
fn issued_jwts_validate_as_their_claims_until_expiry_and_never_after() {
    fn prop(
        subject: String,
        client: String,
        scope: Vec<String>,
        audience: u8,
        iat: u32,
        ttl: u16,
        at: u16,
    ) -> TestResult {
        let Some(c) = claims(subject, client, scope, audience, iat, ttl, 0) else {
            return TestResult::discard();
        };
        let h = harness();
        let token = issue(Algorithm::EdDsa, &c, iat as u64);
        let now = c.issued_at + (at as u64 % (c.expires_at - c.issued_at));
        let ok = h
            .engine
            .validate_access_token(&token, now, &h.store)
            .as_ref()
            == Ok(&c);
        let expired = h
            .engine
            .validate_access_token(&token, c.expires_at, &h.store)
            == Err(TokenError::Expired);
        // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        let b64token = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        TestResult::from_bool(ok && expired && b64token)
    }
    qc(500).quickcheck(prop as fn(String, String, Vec<String>, u8, u32, u16, u16) -> TestResult);
}

#[test]
fn rs256_jwts_round_trip_too() {
    fn prop(subject: String, scope: Vec<String>, audience: u8, version: u32) -> TestResult {
        let Some(c) = claims(subject, "app".into(), scope, audience, 1000, 100, version) else {
            return TestResult::discard();
        };
        let token = issue(Algorithm::Rs256, &c, version as u64);
        // The harness's store has every subject at credential version 0: a token carrying
        // another version is one whose subject's credentials changed since.
        let h = harness();
        let expected = if version == 0 {
            Ok(c)
        } else {
            Err(TokenError::Revoked)
        };
        TestResult::from_bool(h.engine.validate_access_token(&token, 1000, &h.store) == expected)
    }
    qc(40).quickcheck(prop as fn(String, Vec<String>, u8, u32) -> TestResult);
}

#[test]
fn any_single_byte_change_to_a_jwt_makes_it_invalid() {
    fn prop(subject: String, scope: Vec<String>, pos: usize, byte: u8) -> TestResult {
        let Some(c) = claims(subject, "client".into(), scope, 1, 1000, 100, 0) else {
            return TestResult::discard();
        };
        let h = harness();
        let token = issue(Algorithm::EdDsa, &c, 1);
        let mut bytes = token.clone().into_bytes();
        let i = pos % bytes.len();
        if bytes[i] == byte {
            return TestResult::discard();
        }
        bytes[i] = byte;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        TestResult::from_bool(
            h.engine
                .validate_access_token(&changed, 1000, &h.store)
                .is_err(),
        )
    }
    qc(1000).quickcheck(prop as fn(String, Vec<String>, usize, u8) -> TestResult);
}

#[test]
fn any_string_that_looks_like_a_jwt_is_an_error_never_a_panic() {
    fn prop(header: String, payload: Vec<u8>, signature: Vec<u8>, dots: u8) -> bool {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut token = format!(
            "eyJ{}.{}.{}",
            b64.encode(header),
            b64.encode(payload),
            b64.encode(signature)
        );
        for _ in 0..dots % 3 {
            token.push('.');
        }
        let h = harness();
        h.engine
            .validate_access_token(&token, 1000, &h.store)
            .is_err()
    }
    qc(2000).quickcheck(prop as fn(String, Vec<u8>, Vec<u8>, u8) -> bool);
}
