//! JOSE known-answer vectors through the engine's public API (`oauth_proto::jose`), and the
//! guarantee that the published JWK Set holds no private or symmetric key material.
//!
//! Public keys come from the RFCs' JWK members (`VerifyingKey::from_jwk`); the published
//! signatures must verify, and any change to them must not. The vectors that need the RFCs'
//! private keys (reproducing the RS256 and Ed25519 signatures byte for byte) are unit tests in
//! `oauth-proto/src/jose/vectors.rs`.

use oauth_proto::jose::jws::{self, JwsError};
use oauth_proto::jose::{at_hash, Algorithm, Jwk, KeySet, VerifyingKey};
use oauth_proto::random::CounterRandom;

const PAYLOAD_B64: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const PAYLOAD: &str =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

fn jwk(json: &str) -> Jwk {
    serde_json::from_str(json).unwrap()
}

/// RFC 7515 Appendix A.2: RS256.
fn a2_key() -> VerifyingKey {
    VerifyingKey::from_jwk(&jwk(r#"{"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#)).unwrap()
}
const A2_JWS_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

/// RFC 7515 Appendix A.3: ES256.
fn a3_key() -> VerifyingKey {
    VerifyingKey::from_jwk(&jwk(r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#)).unwrap()
}
const A3_JWS_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

/// RFC 8037 Appendix A.1/A.4: Ed25519.
fn rfc8037_key() -> VerifyingKey {
    VerifyingKey::from_jwk(&jwk(
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    ))
    .unwrap()
}
const RFC8037_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn tamper_last_char(s: &str) -> String {
    let mut t = s.to_owned();
    let last = t.pop().unwrap();
    t.push(if last == 'A' { 'B' } else { 'A' });
    t
}

#[test]
fn rfc7515_a2_rs256_published_signature_verifies() {
    let key = a2_key();
    assert_eq!(key.algorithm(), Algorithm::Rs256);
    let compact = format!("eyJhbGciOiJSUzI1NiJ9.{PAYLOAD_B64}.{A2_JWS_SIG}");
    let verified = jws::verify_with(&compact, &key).unwrap();
    assert_eq!(verified.payload, PAYLOAD.as_bytes());
    assert_eq!(
        jws::verify_with(&tamper_last_char(&compact), &key),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn rfc7515_a3_es256_published_signature_verifies() {
    let key = a3_key();
    assert_eq!(key.algorithm(), Algorithm::Es256);
    let compact = format!("eyJhbGciOiJFUzI1NiJ9.{PAYLOAD_B64}.{A3_JWS_SIG}");
    let verified = jws::verify_with(&compact, &key).unwrap();
    assert_eq!(verified.payload, PAYLOAD.as_bytes());
    assert_eq!(
        jws::verify_with(&tamper_last_char(&compact), &key),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn rfc8037_a4_ed25519_published_signature_verifies_and_a3_thumbprint() {
    let key = rfc8037_key();
    assert_eq!(key.algorithm(), Algorithm::EdDsa);
    // RFC 8037 A.3: the thumbprint, which is also our kid.
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let verified = jws::verify_with(RFC8037_JWS, &key).unwrap();
    assert_eq!(verified.payload, b"Example of Ed25519 signing");
    assert_eq!(
        jws::verify_with(&tamper_last_char(RFC8037_JWS), &key),
        Err(JwsError::BadSignature)
    );
}

#[test]
fn rfc7638_thumbprint_example() {
    // RFC 7638 §3.1; the optional members do not change it.
    let key = jwk(
        r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
    );
    assert_eq!(
        key.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // Our kid for that key is the same thumbprint.
    assert_eq!(
        VerifyingKey::from_jwk(&key).unwrap().kid(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn at_hash_vectors() {
    // OpenID Connect Core 1.0 Appendix A.3 (RS256, SHA-256). Cross-checked with python3:
    // base64.urlsafe_b64encode(hashlib.sha256(t).digest()[:16]) == b"77QmUPtjPfzWtF2AnpK9RQ=="
    let spec_token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_eq!(
        at_hash(Algorithm::Rs256, spec_token),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    assert_eq!(
        at_hash(Algorithm::Es256, spec_token),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    // EdDSA on Ed25519 hashes with SHA-512 and keeps 256 bits (OpenID connect issue 1125; the
    // value published by the oidc-token-hash package). Cross-checked with python3:
    // base64.urlsafe_b64encode(hashlib.sha512(t).digest()[:32]).rstrip(b"=")
    let t = "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_qw5jl3lthwpMjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw";
    assert_eq!(at_hash(Algorithm::Rs256, t), "x7vk7f6BvQj0jQHYFIk4ag");
    assert_eq!(
        at_hash(Algorithm::EdDsa, t),
        "EGEAhGYyfuwDaVTifvrWSoD5MSy_5hZPy6I7Vm-7pTQ"
    );
}

#[test]
fn none_hmac_and_algorithm_confusion_are_refused() {
    // RFC 7515 A.5: the unsecured JWS.
    let none = format!("eyJhbGciOiJub25lIn0.{PAYLOAD_B64}.");
    assert_eq!(
        jws::verify_with(&none, &a3_key()),
        Err(JwsError::UnsupportedAlgorithm)
    );
    // RFC 7515 A.1: HS256, refused before any key is used.
    let hs = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert_eq!(
        jws::verify_with(hs, &a2_key()),
        Err(JwsError::UnsupportedAlgorithm)
    );
    // The RS256 example presented to the EC key: the key decides the algorithm.
    let rs = format!("eyJhbGciOiJSUzI1NiJ9.{PAYLOAD_B64}.{A2_JWS_SIG}");
    assert_eq!(
        jws::verify_with(&rs, &a3_key()),
        Err(JwsError::AlgorithmMismatch)
    );
    // A critical header extension ({"alg":"ES256","crit":["exp"],"exp":1}) is refused.
    let crit =
        format!("eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiZXhwIl0sImV4cCI6MX0.{PAYLOAD_B64}.{A3_JWS_SIG}");
    assert_eq!(
        jws::verify_with(&crit, &a3_key()),
        Err(JwsError::CriticalExtension)
    );
    // Too long, and malformed forms.
    let long = format!("{}.{}.{}", "e".repeat(jws::MAX_JWS_LEN), "e", "e");
    assert_eq!(jws::verify_with(&long, &a3_key()), Err(JwsError::TooLong));
    for bad in ["", "a.b", "a.b.c.d", "!!.e.e", "e30.e30.!!"] {
        assert!(jws::verify_with(bad, &a3_key()).is_err(), "{bad}");
    }
}

#[test]
fn a_jws_verified_by_kid_must_name_a_known_key() {
    let mut random = CounterRandom::new(5);
    let keys = KeySet::generate(&Algorithm::ALL, &mut random).unwrap();
    let key = keys.signing_key(Algorithm::Es256).unwrap();
    let token = jws::sign(key, "JWT", b"{}", &mut random);
    let found = jws::verify(&token, |kid| keys.verifying_key(kid)).unwrap();
    assert_eq!(found.kid, key.kid());
    assert_eq!(found.typ.as_deref(), Some("JWT"));
    // The RFC's ES256 example has no kid: a key set cannot find its key.
    let unnamed = format!("eyJhbGciOiJFUzI1NiJ9.{PAYLOAD_B64}.{A3_JWS_SIG}");
    assert_eq!(
        jws::verify(&unnamed, |kid| keys.verifying_key(kid)).unwrap_err(),
        JwsError::UnknownKey
    );
}

/// Private or symmetric JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const FORBIDDEN: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn assert_public_only(value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (name, v) in map {
                assert!(!FORBIDDEN.contains(&name.as_str()), "JWKS member {name}");
                assert_public_only(v);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(assert_public_only),
        _ => {}
    }
}

#[test]
fn the_published_jwks_never_holds_private_or_symmetric_key_material() {
    let mut random = CounterRandom::new(9);
    let mut keys = KeySet::generate(&Algorithm::ALL, &mut random).unwrap();
    for alg in Algorithm::ALL {
        keys.rotate(alg, 100, 600, &mut random).unwrap();
    }
    let jwks = serde_json::to_value(keys.jwks()).unwrap();
    let published = jwks["keys"].as_array().unwrap();
    assert_eq!(published.len(), 6);
    assert_public_only(&jwks);
    for key in published {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].is_string());
        assert!(["ES256", "RS256", "EdDSA"].contains(&key["alg"].as_str().unwrap()));
        assert_ne!(key["kty"], "oct");
    }
    // Nor does the JSON contain any private key's bytes, in any encoding the store uses.
    let text = jwks.to_string();
    for active in keys.to_stored().unwrap().active {
        assert!(!text.contains(&active.pkcs8[..40.min(active.pkcs8.len())]));
    }
    // Parsing a JWK that does carry `d` ignores it: the key read back is public only.
    let private = jwk(
        r#"{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    );
    let republished =
        serde_json::to_value(VerifyingKey::from_jwk(&private).unwrap().jwk()).unwrap();
    assert_public_only(&republished);
}
