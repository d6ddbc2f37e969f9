//! Known-answer tests from `rfc-conformance.md` Part 1 that the engine core covers.

use conformance::*;
use oauth_proto::client::ClientKind;
use oauth_proto::client_auth::decode_basic;
use oauth_proto::params::Params;
use oauth_proto::pkce::{self, PkceMethod};

#[test]
fn rfc7636_appendix_b_s256() {
    let octets: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    use base64::Engine as _;
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(octets);
    assert_eq!(verifier, VERIFIER);
    use sha2::Digest;
    let hash: [u8; 32] = sha2::Sha256::digest(VERIFIER.as_bytes()).into();
    assert_eq!(
        hash,
        [
            19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8, 118, 168, 120,
            173, 109, 241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195
        ]
    );
    assert_eq!(pkce::s256_challenge(VERIFIER), CHALLENGE);
    assert!(pkce::verify(PkceMethod::S256, CHALLENGE, VERIFIER));
}

#[test]
fn rfc7636_appendix_a_base64url_without_padding() {
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([3u8, 236, 255, 224, 193]),
        "A-z_4ME"
    );
}

#[test]
fn oauth21_second_s256_pair() {
    let v = "3641a2d12d66101249cdf7a79c000c1f8c05d2aafcf14bf146497bed";
    assert_eq!(
        pkce::s256_challenge(v),
        "6fdkQaPm51l13DSukcAH3Mdx7_ntecHYd1vi3n0hMZY"
    );
}

#[test]
fn pkce_negative_cases() {
    // 42 characters: below 43*unreserved.
    assert!(!pkce::is_valid_verifier_syntax(
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX"
    ));
    assert!(!pkce::is_valid_verifier_syntax(&"a".repeat(129)));
    for bad in ["+", "/", "=", " "] {
        let v = format!("{}{bad}", &VERIFIER[..42]);
        assert!(!pkce::is_valid_verifier_syntax(&v), "{v}");
    }
    // A padded challenge never matches.
    assert!(!pkce::verify(
        PkceMethod::S256,
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        VERIFIER
    ));
    assert!(pkce::verify(PkceMethod::Plain, VERIFIER, VERIFIER));
}

#[test]
fn basic_vectors_b1_to_b4_decode() {
    let cases = [
        (
            "czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3",
            "s6BhdRkqt3",
            "7Fjfp0ZBr1KtDRbnfVdmIw",
        ),
        ("czZCaGRSa3F0MzpnWDFmQmF0M2JW", "s6BhdRkqt3", "gX1fBat3bV"),
        (
            "Y2xpZW50JTNBMTpwJTQwc3MrdyUyQnJkJTJGJUMzJUE5",
            "client:1",
            "p@ss w+rd/é",
        ),
        (
            "czZCaGRSa3F0Mzo3RmpmcDAlMkJaQnIxJTJGS3REUiUzRGJuZlZkbUl3",
            "s6BhdRkqt3",
            "7Fjfp0+ZBr1/KtDR=bnfVdmIw",
        ),
    ];
    for (b64, id, secret) in cases {
        let (got_id, got_secret) = decode_basic(&format!("Basic {b64}")).unwrap();
        assert_eq!(got_id, id);
        assert_eq!(got_secret.expose(), secret);
        assert_eq!(
            basic(id, secret),
            format!("Basic {b64}"),
            "our encoder matches the vector"
        );
    }
    // RFC 7617's own sanity vector.
    let (id, secret) = decode_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
    assert_eq!((id.as_str(), secret.expose()), ("Aladdin", "open sesame"));
}

#[test]
fn basic_naive_encodings_fail_authentication() {
    let mut h = Harness::default();
    // B3-naive: split at the first ':' gives user "client" and the rest as the password.
    let (id, secret) = decode_basic("Basic Y2xpZW50OjE6cEBzcyB3K3JkL8Op").unwrap();
    assert_eq!(id, "client");
    assert_eq!(secret.expose(), "1:p@ss w rd/é");
    // B4-naive: '+' decodes to a space, so the secret no longer matches.
    h.add_client(
        "s6BhdRkqt3",
        ClientKind::Confidential,
        &["https://client.example.com/cb"],
        &[oauth_proto::client::GrantType::ClientCredentials],
        "mail",
    );
    use oauth_proto::store::Effect;
    let mut record = h.client("s6BhdRkqt3").expect("stored");
    record.secret_hash = Some(oauth_proto::secret::SecretHash::of(
        "7Fjfp0+ZBr1/KtDR=bnfVdmIw",
    ));
    h.apply(vec![Effect::PutClient(record)]);
    let ok = h.token(
        "grant_type=client_credentials",
        Some("Basic czZCaGRSa3F0Mzo3RmpmcDAlMkJaQnIxJTJGS3REUiUzRGJuZlZkbUl3"),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let naive = h.token(
        "grant_type=client_credentials",
        Some("Basic czZCaGRSa3F0Mzo3RmpmcDArWkJyMS9LdERSPWJuZlZkbUl3"),
    );
    assert_eq!(naive.status, 401);
    assert_eq!(json(&naive)["error"], "invalid_client");
}

#[test]
fn rfc6749_appendix_b_form_decoding() {
    let p = Params::parse(b"v=+%25%26%2B%C2%A3%E2%82%AC").unwrap();
    assert_eq!(p.get("v").unwrap(), Some(" %&+£€"));
}

#[test]
fn rfc6749_4_1_1_authorization_request_and_4_1_2_response() {
    let mut h = Harness::default();
    h.add_client(
        "s6BhdRkqt3",
        ClientKind::Confidential,
        &["https://client.example.com/cb"],
        &[oauth_proto::client::GrantType::AuthorizationCode],
        "mail",
    );
    let pending = h.pending(&format!(
        "response_type=code&client_id=s6BhdRkqt3&state=xyz&redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256"
    ));
    assert_eq!(pending.redirect_uri(), "https://client.example.com/cb");
    let r = h.approve(pending, "johndoe");
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("https://client.example.com/cb?code="),
        "{location}"
    );
    assert!(
        location.contains("&state=xyz&iss=http%3A%2F%2F127.0.0.1%3A8080"),
        "{location}"
    );
}
