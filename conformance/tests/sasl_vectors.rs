//! Known-answer tests for the SASL vectors of rfc-conformance.md §1.11 (RFC 7628 OAUTHBEARER) and
//! §1.12 (Google XOAUTH2), including the places where a document's displayed text disagrees with
//! its own base64: the base64 blob is the byte-exact truth.

use base64::Engine as _;
use oauth_proto::sasl::{
    decode_client_line, parse_oauthbearer, parse_xoauth2, CbFlag, ClientInput, Ending,
    ErrorChallenge, FailureReason, Gs2Header, Mechanism, OAuthBearerMessage, OAuthBearerResponse,
    OAuthBearerStatus, ParseError, Protocol, SaslExchange, SaslPolicy, Step, XOAuth2Response,
    XOAuth2Status,
};
use oauth_proto::secret::Secret;

fn b64(lines: &[&str]) -> Vec<u8> {
    let joined: String = lines.concat();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .expect("vector is base64")
}

fn enc(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// §4.1, IMAP (the blob as the RFC wraps it).
const IMAP_41: &[&str] = &[
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhv",
    "c3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyI",
    "HZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQ",
    "EB",
];
const IMAP_41_ONE_LINE: &str = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
const IMAP_41_BYTES: &[u8] = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
const TOKEN_41: &str = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

// §4.1, SMTP variant.
const SMTP_41: &[&str] = &[
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2Vy",
    "dmVyLmV4YW1wbGUuY29tAXBvcnQ9NTg3AWF1dGg9QmVhcmVyIHZGOWRmd",
    "DRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB",
];
const SMTP_41_BYTES: &[u8] = b"n,a=user@example.com,\x01host=server.example.com\x01port=587\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";

// §4.3, failed exchange.
const CLIENT_43: &[&str] = &[
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAW",
    "hvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9AQE=",
];
const CLIENT_43_BYTES: &[u8] =
    b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=\x01\x01";
const SERVER_43: &[&str] = &[
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxl",
    "X3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4",
    "YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9u",
    "In0=",
];
const SERVER_43_JSON: &[u8] = br#"{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}"#;
const SERVER_43_DISPLAYED_URL: &str = "https://example.com/.well-known/openid-config";
const SERVER_43_URL: &str = "https://example.com/.well-known/openid-configuration";

// §4.4, SMTP failed negotiation.
const CLIENT_44: &[&str] = &[
    "bix1c2VyPXNvbWV1c2VyQGV4YW1wbGUuY29tLAFhdXRoPUJlYXJl",
    "ciB2RjlkZnQ0cW1UYzJOdmIzUmxja0JoZEhSaGRtbHpkR0V1WTI5dENnPT0BAQ==",
];
const CLIENT_44_BYTES: &[u8] = b"n,user=someuser@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\x01\x01";
const SERVER_44: &[&str] = &[
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciBtYWMiL",
    "CJzY29wZSI6Imh0dHBzOi8vbWFpbC5leGFtcGxlLmNvbS8ifQ==",
];
const SERVER_44_JSON: &[u8] =
    br#"{"status":"invalid_token","schemes":"bearer mac","scope":"https://mail.example.com/"}"#;

// §1.12, XOAUTH2.
const XOAUTH2_CLIENT: &[&str] = &[
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52",
    "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==",
];
const XOAUTH2_CLIENT_BYTES: &[u8] =
    b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01";
const XOAUTH2_ERROR: &[&str] = &[
    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9t",
    "YWlsLmdvb2dsZS5jb20vIn0K",
];
const XOAUTH2_ERROR_BYTES: &[u8] =
    b"{\"status\":\"401\",\"schemes\":\"bearer mac\",\"scope\":\"https://mail.google.com/\"}\n";
const XOAUTH2_ERROR_DISPLAYED: &[u8] =
    br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
const XOAUTH2_POP_ERROR: &str =
    "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==";

fn plaintext_policy() -> SaslPolicy {
    SaslPolicy {
        allow_plaintext: true,
        ..SaslPolicy::default()
    }
}

fn never_called(
    _: &str,
) -> Result<oauth_proto::access_token::AccessClaims, oauth_proto::access_token::TokenError> {
    panic!("the validator must not be reached")
}

#[test]
fn rfc7628_4_1_imap_blob_decodes_to_the_documented_bytes() {
    assert_eq!(b64(IMAP_41), IMAP_41_BYTES);
    assert_eq!(b64(&[IMAP_41_ONE_LINE]), IMAP_41_BYTES);
    assert_eq!(enc(IMAP_41_BYTES), IMAP_41_ONE_LINE);
}

#[test]
fn rfc7628_4_1_imap_response_parses() {
    let OAuthBearerMessage::Response(r) = parse_oauthbearer(IMAP_41_BYTES).unwrap() else {
        panic!("not a response")
    };
    assert_eq!(
        r.gs2,
        Gs2Header {
            cb_flag: CbFlag::No,
            authzid: Some("user@example.com".into())
        }
    );
    assert_eq!(r.host.as_deref(), Some("server.example.com"));
    assert_eq!(r.port, Some(143));
    assert_eq!(r.token.expose(), TOKEN_41);
}

#[test]
fn rfc7628_4_1_imap_response_encodes_byte_exact() {
    let r = OAuthBearerResponse {
        gs2: Gs2Header {
            cb_flag: CbFlag::No,
            authzid: Some("user@example.com".into()),
        },
        host: Some("server.example.com".into()),
        port: Some(143),
        token: Secret::new(TOKEN_41),
    };
    assert_eq!(r.encode(), IMAP_41_BYTES);
    assert_eq!(enc(&r.encode()), IMAP_41_ONE_LINE);
}

#[test]
fn rfc7628_4_1_smtp_variant() {
    assert_eq!(b64(SMTP_41), SMTP_41_BYTES);
    let OAuthBearerMessage::Response(r) = parse_oauthbearer(SMTP_41_BYTES).unwrap() else {
        panic!("not a response")
    };
    assert_eq!(r.port, Some(587));
    assert_eq!(r.token.expose(), TOKEN_41);
    assert_eq!(r.encode(), SMTP_41_BYTES);
}

#[test]
fn rfc7628_4_1_imap_line_goes_through_decode_client_line() {
    let ClientInput::Response(bytes) = decode_client_line(IMAP_41_ONE_LINE.as_bytes()) else {
        panic!("not decoded")
    };
    assert_eq!(bytes, IMAP_41_BYTES);
}

#[test]
fn rfc7628_4_3_blobs_decode_to_the_documented_bytes() {
    assert_eq!(b64(CLIENT_43), CLIENT_43_BYTES);
    assert_eq!(b64(SERVER_43), SERVER_43_JSON);
    assert_eq!(b64(&["AQ=="]), b"\x01");
}

#[test]
fn rfc7628_4_3_discrepancy_blob_says_openid_configuration_not_openid_config() {
    let json: serde_json::Value = serde_json::from_slice(&b64(SERVER_43)).unwrap();
    assert_eq!(json["openid-configuration"], SERVER_43_URL);
    assert_ne!(json["openid-configuration"], SERVER_43_DISPLAYED_URL);
}

#[test]
fn rfc7628_4_3_client_without_token_is_missing_auth() {
    assert_eq!(
        parse_oauthbearer(CLIENT_43_BYTES),
        Err(ParseError::MissingAuth)
    );
    assert!(ParseError::MissingAuth.is_credential_error());
}

#[test]
fn rfc7628_4_3_error_json_is_byte_exact() {
    let e = ErrorChallenge::oauthbearer(
        OAuthBearerStatus::InvalidToken,
        Some("example_scope"),
        Some(SERVER_43_URL),
    );
    assert_eq!(e.to_json(), SERVER_43_JSON);
    assert_eq!(e.to_base64(), SERVER_43.concat());
}

#[test]
fn rfc7628_4_3_whole_imap_transcript() {
    let policy = SaslPolicy {
        challenge_scope: Some("example_scope".into()),
        openid_configuration: Some(SERVER_43_URL.into()),
        ..SaslPolicy::default()
    };
    let mut ex = SaslExchange::new(Mechanism::OAuthBearer, true, &policy).unwrap();
    // C: t1 AUTHENTICATE OAUTHBEARER <blob>
    let ir = oauth_proto::sasl::decode_initial_response(CLIENT_43.concat().as_bytes());
    let step = ex.step(ir, &policy, &never_called).unwrap();
    // S: + <error JSON>
    assert_eq!(
        Protocol::Imap.reply(&step),
        format!("+ {}", SERVER_43.concat())
    );
    let Step::Challenge(c) = &step else {
        panic!("expected a challenge")
    };
    assert_eq!(c.payload(), SERVER_43_JSON);
    assert!(c.is_error());
    assert!(
        !step.counts_toward_lockout(),
        "a discovery request does not count toward lockout"
    );
    // C: AQ==
    let step = ex
        .step(decode_client_line(b"AQ=="), &policy, &never_called)
        .unwrap();
    let Step::Failure(f) = &step else {
        panic!("expected failure")
    };
    assert_eq!(f.reason(), FailureReason::NoToken);
    assert_eq!(f.ending(), Ending::Acknowledged);
    assert_eq!(f.identity(), Some("user@example.com"));
    // S: t1 NO ...
    assert_eq!(
        Protocol::Imap.reply(&step),
        "NO [AUTHENTICATIONFAILED] SASL authentication failed"
    );
    assert!(ex.is_finished());
}

#[test]
fn rfc7628_4_4_blobs_decode_to_the_documented_bytes() {
    assert_eq!(b64(CLIENT_44), CLIENT_44_BYTES);
    assert_eq!(b64(SERVER_44), SERVER_44_JSON);
}

#[test]
fn rfc7628_4_4_discrepancy_user_is_not_a_gs2_authzid_and_is_rejected() {
    assert_eq!(
        parse_oauthbearer(CLIENT_44_BYTES),
        Err(ParseError::BadGs2Header)
    );
    let policy = plaintext_policy();
    let mut ex = SaslExchange::new(Mechanism::OAuthBearer, false, &policy).unwrap();
    let step = ex.step(
        decode_client_line(CLIENT_44.concat().as_bytes()),
        &policy,
        &never_called,
    );
    let step = step.unwrap();
    let Step::Failure(f) = &step else {
        panic!("a framing error fails at once")
    };
    assert_eq!(
        f.reason(),
        FailureReason::Malformed(ParseError::BadGs2Header)
    );
    assert_eq!(f.ending(), Ending::Immediate);
    assert!(
        step.counts_toward_lockout(),
        "a malformed message counts toward lockout"
    );
    assert_eq!(
        Protocol::Smtp.reply(&step),
        "535 5.7.8 Authentication credentials invalid"
    );
}

#[test]
fn rfc7628_4_4_discrepancy_token_differs_from_4_1() {
    let bytes = b64(CLIENT_44);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="));
    assert!(!text.contains(TOKEN_41));
}

#[test]
fn rfc7628_4_4_error_json_with_schemes_is_byte_exact() {
    let e = ErrorChallenge {
        status: OAuthBearerStatus::InvalidToken.as_str(),
        schemes: Some("bearer mac"),
        scope: Some("https://mail.example.com/"),
        openid_configuration: None,
    };
    assert_eq!(e.to_json(), SERVER_44_JSON);
    assert_eq!(e.to_base64(), SERVER_44.concat());
}

#[test]
fn xoauth2_client_blob_decodes_and_parses() {
    assert_eq!(b64(XOAUTH2_CLIENT), XOAUTH2_CLIENT_BYTES);
    let r = parse_xoauth2(XOAUTH2_CLIENT_BYTES).unwrap();
    assert_eq!(r.user, "someuser@example.com");
    assert_eq!(
        r.token.expose(),
        "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    );
}

#[test]
fn xoauth2_client_re_encodes_to_the_page_blob() {
    let r = XOAuth2Response {
        user: "someuser@example.com".into(),
        token: Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
    };
    assert_eq!(r.encode(), XOAUTH2_CLIENT_BYTES);
    assert_eq!(enc(&r.encode()), XOAUTH2_CLIENT.concat());
}

#[test]
fn xoauth2_error_blob_discrepancy_bearer_mac_and_trailing_lf() {
    let decoded = b64(XOAUTH2_ERROR);
    assert_eq!(decoded, XOAUTH2_ERROR_BYTES);
    assert_ne!(decoded, XOAUTH2_ERROR_DISPLAYED);
    // Our builder produces the page's displayed form (no `mac`, no LF)...
    let ours = ErrorChallenge::xoauth2(
        XOAuth2Status::Unauthorized,
        Some("https://mail.google.com/"),
    );
    assert_eq!(ours.to_json(), XOAUTH2_ERROR_DISPLAYED);
    // ...and, given the blob's fields, the blob itself apart from the LF.
    let blob_fields = ErrorChallenge {
        schemes: Some("bearer mac"),
        ..ours
    };
    let mut json = blob_fields.to_json();
    json.push(b'\n');
    assert_eq!(enc(&json), XOAUTH2_ERROR.concat());
}

#[test]
fn xoauth2_pop_error_blob() {
    assert_eq!(
        b64(&[XOAUTH2_POP_ERROR]),
        br#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#
    );
    assert_eq!(XOAuth2Status::BadRequest.as_str(), "400");
}

#[test]
fn xoauth2_dummy_is_empty_and_oauthbearer_dummy_is_kvsep() {
    assert_eq!(decode_client_line(b""), ClientInput::Response(Vec::new()));
    assert_eq!(decode_client_line(b"AQ=="), ClientInput::Response(vec![1]));
    assert_eq!(parse_oauthbearer(b"\x01"), Ok(OAuthBearerMessage::Dummy));
    assert_eq!(parse_xoauth2(b""), Err(ParseError::Empty));
}
