//! Known-answer tests that need the private keys of the RFC examples, built from their JWK
//! members with the crates themselves (the public API loads keys only from PKCS#8, so the
//! examples' keys go through it): RFC 7515 A.2 (RS256, deterministic, so the exact signature is
//! reproduced), RFC 8037 A.4 (Ed25519, the same), and RFC 7515 A.3 (ES256: its published
//! signature used a random k, so it is verified, and our RFC 6979 signature over the same input
//! is checked for determinism and validity). The public-key-only vectors are in
//! `conformance/tests/jose_vectors.rs`.

use base64::Engine as _;
use p256::pkcs8::EncodePrivateKey;

use super::jws;
use super::keys::SigningKey;
use super::Algorithm;
use crate::random::CounterRandom;

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn big(s: &str) -> rsa::BoxedUint {
    rsa::BoxedUint::from_be_slice_vartime(&b64(s))
}

const PAYLOAD_B64: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// RFC 7515 Appendix A.2.1: the RSA key's members.
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_D: &str = "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
const A2_P: &str = "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
const A2_Q: &str = "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
/// RFC 7515 Appendix A.2.1: the JWS Signature.
const A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

#[test]
fn rfc7515_a2_rs256_signature_is_reproduced() {
    let key = rsa::PrivateKey::from_components(
        big(A2_N),
        big("AQAB"),
        big(A2_D),
        vec![big(A2_P), big(A2_Q)],
    )
    .unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let key = SigningKey::from_pkcs8_der(Algorithm::Rs256, der.as_bytes()).unwrap();
    let input = format!("eyJhbGciOiJSUzI1NiJ9.{PAYLOAD_B64}");
    // Blinding draws randomness but the value is the RFC's, whatever the randomness.
    for seed in [1, 2] {
        let sig = key.sign(input.as_bytes(), &mut CounterRandom::new(seed));
        assert_eq!(sig, b64(A2_SIG));
    }
    let compact = format!("{input}.{A2_SIG}");
    let verified = jws::verify_with(&compact, key.verifying_key()).unwrap();
    assert_eq!(verified.payload, b64(PAYLOAD_B64));
}

#[test]
fn rfc7515_a3_es256_verifies_and_ours_is_deterministic() {
    // RFC 7515 Appendix A.3.1: the P-256 key.
    let d = b64("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let ec = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
    let der = ec.to_pkcs8_der().unwrap();
    let key = SigningKey::from_pkcs8_der(Algorithm::Es256, der.as_bytes()).unwrap();
    let jwk = key.verifying_key().jwk();
    assert_eq!(
        jwk.x.as_deref(),
        Some("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU")
    );
    assert_eq!(
        jwk.y.as_deref(),
        Some("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0")
    );
    let input = format!("eyJhbGciOiJFUzI1NiJ9.{PAYLOAD_B64}");
    let published =
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    jws::verify_with(&format!("{input}.{published}"), key.verifying_key()).unwrap();
    // RFC 6979: the same key and input always give the same (valid) signature.
    let ours = key.sign(input.as_bytes(), &mut CounterRandom::new(1));
    assert_eq!(ours, key.sign(input.as_bytes(), &mut CounterRandom::new(2)));
    assert_eq!(ours.len(), 64);
    let ours = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ours);
    jws::verify_with(&format!("{input}.{ours}"), key.verifying_key()).unwrap();
}

#[test]
fn rfc8037_a4_ed25519_signature_is_reproduced() {
    // RFC 8037 Appendix A.1: the Ed25519 key; A.3: its thumbprint; A.4: the JWS.
    let d: [u8; 32] = b64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .try_into()
        .unwrap();
    let ed = ed25519_dalek::SigningKey::from_bytes(&d);
    let der = ed.to_pkcs8_der().unwrap();
    let key = SigningKey::from_pkcs8_der(Algorithm::EdDsa, der.as_bytes()).unwrap();
    assert_eq!(
        key.verifying_key().jwk().x.as_deref(),
        Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    );
    assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let sig =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
    assert_eq!(
        key.sign(input.as_bytes(), &mut CounterRandom::new(1)),
        b64(sig)
    );
    let verified = jws::verify_with(&format!("{input}.{sig}"), key.verifying_key()).unwrap();
    assert_eq!(verified.payload, b"Example of Ed25519 signing");
}
