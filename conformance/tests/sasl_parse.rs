//! Every way an OAUTHBEARER or XOAUTH2 client message can be refused, one test each, plus the
//! wire decoding and the redaction of tokens from `Debug`.

use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, escape_saslname, parse_bearer_credentials,
    parse_oauthbearer, parse_xoauth2, unescape_saslname, CbFlag, ClientInput, Mechanism,
    OAuthBearerMessage, OAuthBearerResponse, ParseError, MAX_MESSAGE_LEN,
};

const TOKEN: &str = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

fn bearer(input: &[u8]) -> Result<OAuthBearerResponse, ParseError> {
    match parse_oauthbearer(input)? {
        OAuthBearerMessage::Response(r) => Ok(r),
        OAuthBearerMessage::Dummy => panic!("unexpected dummy"),
    }
}

fn with_header(header: &str) -> Vec<u8> {
    format!("{header}\x01auth=Bearer {TOKEN}\x01\x01").into_bytes()
}

fn with_pairs(pairs: &str) -> Vec<u8> {
    format!("n,,\x01{pairs}\x01").into_bytes()
}

// ---- GS2 header ----

#[test]
fn minimal_response_without_authzid() {
    let r = bearer(&with_header("n,,")).unwrap();
    assert_eq!(r.gs2.cb_flag, CbFlag::No);
    assert_eq!(r.gs2.authzid, None);
    assert_eq!(r.host, None);
    assert_eq!(r.port, None);
    assert_eq!(r.token.expose(), TOKEN);
}

#[test]
fn y_flag_is_accepted() {
    let r = bearer(&with_header("y,a=u,")).unwrap();
    assert_eq!(r.gs2.cb_flag, CbFlag::ClientSupports);
    assert_eq!(r.gs2.authzid.as_deref(), Some("u"));
}

#[test]
fn channel_binding_is_refused() {
    for h in ["p=tls-unique,,", "p=tls-server-end-point,a=u,", "p=,,"] {
        assert_eq!(
            bearer(&with_header(h)),
            Err(ParseError::ChannelBindingUnsupported),
            "{h}"
        );
    }
}

#[test]
fn nonstandard_f_flag_is_refused() {
    assert_eq!(bearer(&with_header("F,n,,")), Err(ParseError::BadGs2Header));
}

#[test]
fn malformed_gs2_headers() {
    for h in [
        "",
        "n",
        "n,",
        "N,,",
        "x,,",
        "n,a=u",
        "n,b=u,",
        "n,user=u,",
        "na,,",
        " n,,",
        "n,a,",
    ] {
        let input = with_header(h);
        assert_eq!(bearer(&input), Err(ParseError::BadGs2Header), "{h:?}");
    }
}

#[test]
fn gs2_header_must_be_followed_by_kvsep() {
    assert_eq!(
        bearer(b"n,,auth=Bearer abc\x01\x01"),
        Err(ParseError::MissingSeparator)
    );
    assert_eq!(bearer(b"n,,"), Err(ParseError::MissingSeparator));
}

#[test]
fn authzid_escapes_are_decoded() {
    let r = bearer(&with_header("n,a=a=2Cb=3Dc,")).unwrap();
    assert_eq!(r.gs2.authzid.as_deref(), Some("a,b=c"));
    // ABNF strings are case-insensitive, so lower-case hex is the same escape.
    let r = bearer(&with_header("n,a=x=2cy=3d,")).unwrap();
    assert_eq!(r.gs2.authzid.as_deref(), Some("x,y="));
}

#[test]
fn authzid_bad_escapes_are_refused() {
    for h in [
        "n,a=us=er,",
        "n,a=x=,",
        "n,a=x=2,",
        "n,a=x=41,",
        "n,a=x=2D,",
        "n,a==,",
        "n,a=x=3E,",
    ] {
        assert_eq!(bearer(&with_header(h)), Err(ParseError::BadIdentity), "{h}");
    }
}

#[test]
fn authzid_must_be_non_empty_utf8_without_controls() {
    assert_eq!(bearer(&with_header("n,a=,")), Err(ParseError::BadIdentity));
    assert_eq!(
        bearer(b"n,a=\xff\xfe,\x01auth=Bearer abc\x01\x01"),
        Err(ParseError::BadIdentity)
    );
    assert_eq!(
        bearer(b"n,a=a\x01b,\x01auth=Bearer abc\x01\x01"),
        Err(ParseError::BadIdentity)
    );
    assert_eq!(
        bearer(b"n,a=a\rb,\x01auth=Bearer abc\x01\x01"),
        Err(ParseError::BadIdentity)
    );
    assert_eq!(
        bearer(b"n,a=a\x7fb,\x01auth=Bearer abc\x01\x01"),
        Err(ParseError::BadIdentity)
    );
    let r = bearer("n,a=jürgen@exämple.org,\x01auth=Bearer abc\x01\x01".as_bytes()).unwrap();
    assert_eq!(r.gs2.authzid.as_deref(), Some("jürgen@exämple.org"));
}

#[test]
fn saslname_escape_and_unescape() {
    assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
    assert_eq!(unescape_saslname(b"a=2Cb=3Dc").unwrap(), "a,b=c");
    assert_eq!(unescape_saslname(b"a,b"), Err(ParseError::BadIdentity));
    assert_eq!(unescape_saslname(b""), Err(ParseError::BadIdentity));
}

// ---- key/value pairs ----

#[test]
fn missing_auth() {
    assert_eq!(
        bearer(&with_pairs("host=h\x01")),
        Err(ParseError::MissingAuth)
    );
    assert_eq!(bearer(&with_pairs("")), Err(ParseError::MissingAuth));
    assert_eq!(
        bearer(&with_pairs("auth=\x01")),
        Err(ParseError::MissingAuth)
    );
}

#[test]
fn bad_auth_scheme() {
    for a in [
        "Basic dXNlcjpwYXNz",
        "Bearerabc",
        "MAC abc",
        "Bear abc",
        " Bearer abc",
        "\tBearer abc",
    ] {
        let pairs = format!("auth={a}\x01");
        assert_eq!(
            bearer(&with_pairs(&pairs)),
            Err(ParseError::BadAuthScheme),
            "{a:?}"
        );
    }
}

#[test]
fn scheme_is_case_insensitive_and_spaces_may_repeat() {
    for a in [
        "bearer abc",
        "BEARER abc",
        "bEaReR  abc",
        "Bearer     abc==",
    ] {
        let pairs = format!("auth={a}\x01");
        let r = bearer(&with_pairs(&pairs)).unwrap();
        assert!(r.token.expose().starts_with("abc"), "{a:?}");
    }
}

#[test]
fn bad_b64token() {
    for a in [
        "Bearer",
        "Bearer ",
        "Bearer abc def",
        "Bearer a=b",
        "Bearer ==",
        "Bearer abc ",
        "Bearer ab\tc",
        "Bearer a,b",
        "Bearer a\"b",
    ] {
        let pairs = format!("auth={a}\x01");
        assert_eq!(
            bearer(&with_pairs(&pairs)),
            Err(ParseError::BadToken),
            "{a:?}"
        );
    }
    assert_eq!(
        parse_bearer_credentials(b"Bearer -._~+/AZaz09=="),
        Ok("-._~+/AZaz09==")
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let twice_auth = "auth=Bearer a\x01auth=Bearer b\x01";
    assert_eq!(
        bearer(&with_pairs(twice_auth)),
        Err(ParseError::DuplicateKey)
    );
    let twice_host = format!("host=a\x01host=a\x01auth=Bearer {TOKEN}\x01");
    assert_eq!(
        bearer(&with_pairs(&twice_host)),
        Err(ParseError::DuplicateKey)
    );
    let twice_unknown = format!("mthd=POST\x01mthd=GET\x01auth=Bearer {TOKEN}\x01");
    assert_eq!(
        bearer(&with_pairs(&twice_unknown)),
        Err(ParseError::DuplicateKey)
    );
}

#[test]
fn unknown_keys_are_ignored_and_keys_are_case_sensitive() {
    let pairs = format!("mthd=POST\x01path=/\x01qs=\x01Auth=x\x01auth=Bearer {TOKEN}\x01");
    assert_eq!(bearer(&with_pairs(&pairs)).unwrap().token.expose(), TOKEN);
    // `AUTH` is an unknown key, so `auth` is missing.
    let pairs = format!("AUTH=Bearer {TOKEN}\x01");
    assert_eq!(bearer(&with_pairs(&pairs)), Err(ParseError::MissingAuth));
}

#[test]
fn bad_keys() {
    for p in [
        "=x\x01",
        "1auth=x\x01",
        "au-th=x\x01",
        "auth\x01",
        "auth x\x01",
        "a\x01",
    ] {
        assert_eq!(bearer(&with_pairs(p)), Err(ParseError::BadKey), "{p:?}");
    }
}

#[test]
fn bad_values() {
    for v in ["h\x00", "h\x02", "\x7f", "é", "\x1b[31m"] {
        let pairs = format!("host={v}\x01auth=Bearer {TOKEN}\x01");
        assert_eq!(
            bearer(&with_pairs(&pairs)),
            Err(ParseError::BadValue),
            "{v:?}"
        );
    }
    // SP, HTAB, CR and LF are allowed in values.
    let pairs = format!("host=a b\tc\r\nd\x01auth=Bearer {TOKEN}\x01");
    assert_eq!(
        bearer(&with_pairs(&pairs)).unwrap().host.as_deref(),
        Some("a b\tc\r\nd")
    );
}

#[test]
fn unterminated_messages() {
    let no_final = format!("n,,\x01auth=Bearer {TOKEN}\x01");
    assert_eq!(bearer(no_final.as_bytes()), Err(ParseError::Unterminated));
    let no_kvsep = format!("n,,\x01auth=Bearer {TOKEN}");
    assert_eq!(bearer(no_kvsep.as_bytes()), Err(ParseError::Unterminated));
    assert_eq!(bearer(b"n,,\x01"), Err(ParseError::Unterminated));
}

#[test]
fn trailing_data_after_final_kvsep() {
    let mut input = with_header("n,,");
    input.push(b'x');
    assert_eq!(bearer(&input), Err(ParseError::TrailingData));
    let mut input = with_header("n,,");
    input.push(0x01);
    assert_eq!(bearer(&input), Err(ParseError::TrailingData));
}

#[test]
fn ports() {
    for (p, want) in [("0", 0), ("143", 143), ("0143", 143), ("65535", 65535)] {
        let pairs = format!("port={p}\x01auth=Bearer {TOKEN}\x01");
        assert_eq!(bearer(&with_pairs(&pairs)).unwrap().port, Some(want), "{p}");
    }
    for p in [
        "", "abc", "-1", "+1", "65536", "99999", "000143", "1 ", " 1", "1.0",
    ] {
        let pairs = format!("port={p}\x01auth=Bearer {TOKEN}\x01");
        assert_eq!(
            bearer(&with_pairs(&pairs)),
            Err(ParseError::BadPort),
            "{p:?}"
        );
    }
}

#[test]
fn empty_and_dummy_and_oversize() {
    assert_eq!(parse_oauthbearer(b""), Err(ParseError::Empty));
    assert_eq!(parse_oauthbearer(b"\x01"), Ok(OAuthBearerMessage::Dummy));
    assert_eq!(
        parse_oauthbearer(b"\x01\x01"),
        Err(ParseError::BadGs2Header)
    );

    // A well-formed message of exactly the limit parses; one byte more is refused unexamined.
    let head = format!("n,,\x01auth=Bearer {TOKEN}\x01x=");
    let pad = MAX_MESSAGE_LEN - head.len() - 2;
    let at_limit = format!("{head}{}\x01\x01", "v".repeat(pad));
    assert_eq!(at_limit.len(), MAX_MESSAGE_LEN);
    assert!(bearer(at_limit.as_bytes()).is_ok());
    let over = format!("{head}{}\x01\x01", "v".repeat(pad + 1));
    assert_eq!(bearer(over.as_bytes()), Err(ParseError::TooLong));
    assert_eq!(parse_xoauth2(over.as_bytes()), Err(ParseError::TooLong));
}

// ---- XOAUTH2 ----

#[test]
fn xoauth2_layout_is_fixed() {
    let ok = format!("user=u@example.com\x01auth=Bearer {TOKEN}\x01\x01");
    let r = parse_xoauth2(ok.as_bytes()).unwrap();
    assert_eq!(r.user, "u@example.com");
    assert_eq!(r.token.expose(), TOKEN);

    let cases: &[(&str, ParseError)] = &[
        (
            "auth=Bearer abc\x01user=u\x01\x01",
            ParseError::BadXOAuth2Layout,
        ),
        (
            "n,,\x01user=u\x01auth=Bearer abc\x01\x01",
            ParseError::BadXOAuth2Layout,
        ),
        (
            "USER=u\x01auth=Bearer abc\x01\x01",
            ParseError::BadXOAuth2Layout,
        ),
        (
            "user=u\x01host=h\x01auth=Bearer abc\x01\x01",
            ParseError::BadXOAuth2Layout,
        ),
        ("user=u\x01\x01", ParseError::BadXOAuth2Layout),
        ("user=u", ParseError::Unterminated),
        ("user=u\x01auth=Bearer abc", ParseError::Unterminated),
        ("user=u\x01auth=Bearer abc\x01", ParseError::Unterminated),
        (
            "user=u\x01auth=Bearer abc\x01\x01\x01",
            ParseError::TrailingData,
        ),
        (
            "user=u\x01auth=Bearer abc\x01\x01x",
            ParseError::TrailingData,
        ),
        ("user=\x01auth=Bearer abc\x01\x01", ParseError::BadIdentity),
        (
            "user=a\rb\x01auth=Bearer abc\x01\x01",
            ParseError::BadIdentity,
        ),
        ("user=u\x01auth=\x01\x01", ParseError::MissingAuth),
        (
            "user=u\x01auth=Basic abc\x01\x01",
            ParseError::BadAuthScheme,
        ),
        ("user=u\x01auth=Bearer a b\x01\x01", ParseError::BadToken),
        ("user=u\x01auth=Bearer ab\x00\x01\x01", ParseError::BadValue),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse_xoauth2(input.as_bytes()).map(|r| r.user),
            Err(*want),
            "{input:?}"
        );
    }
    assert_eq!(
        parse_xoauth2(b"user=\xff\x01auth=Bearer abc\x01\x01").map(|r| r.user),
        Err(ParseError::BadIdentity)
    );
}

#[test]
fn xoauth2_user_is_verbatim() {
    let input = "user=a,b=c@exämple.org\x01auth=Bearer abc\x01\x01";
    assert_eq!(
        parse_xoauth2(input.as_bytes()).unwrap().user,
        "a,b=c@exämple.org"
    );
}

// ---- wire ----

#[test]
fn wire_decoding() {
    assert_eq!(decode_client_line(b"*"), ClientInput::Cancel);
    assert_eq!(decode_client_line(b"AQ=="), ClientInput::Response(vec![1]));
    assert_eq!(decode_client_line(b""), ClientInput::Response(vec![]));
    assert_eq!(
        decode_client_line(b"="),
        ClientInput::Invalid(ParseError::BadBase64)
    );
    assert_eq!(
        decode_client_line(b"AQ"),
        ClientInput::Invalid(ParseError::BadBase64)
    );
    assert_eq!(
        decode_client_line(b"A Q=="),
        ClientInput::Invalid(ParseError::BadBase64)
    );
    assert_eq!(
        decode_client_line(b"**"),
        ClientInput::Invalid(ParseError::BadBase64)
    );
    assert_eq!(decode_initial_response(b"="), ClientInput::Response(vec![]));
    assert_eq!(
        decode_initial_response(b"AQ=="),
        ClientInput::Response(vec![1])
    );
    assert_eq!(
        decode_initial_response(b"*"),
        ClientInput::Invalid(ParseError::BadBase64)
    );
    // 65,538 decoded bytes: one base64 quantum past the limit.
    let long = vec![b'A'; (MAX_MESSAGE_LEN / 3 + 1) * 4];
    assert_eq!(
        decode_client_line(&long),
        ClientInput::Invalid(ParseError::TooLong)
    );
    let longer = vec![b'A'; (MAX_MESSAGE_LEN / 3 + 2) * 4];
    assert_eq!(
        decode_client_line(&longer),
        ClientInput::Invalid(ParseError::TooLong)
    );
    let at_limit = vec![b'A'; MAX_MESSAGE_LEN / 3 * 4];
    assert!(matches!(
        decode_client_line(&at_limit),
        ClientInput::Response(_)
    ));
}

#[test]
fn mechanism_names() {
    assert_eq!(
        Mechanism::from_name("oauthbearer"),
        Some(Mechanism::OAuthBearer)
    );
    assert_eq!(Mechanism::from_name("XOAUTH2"), Some(Mechanism::XOAuth2));
    assert_eq!(Mechanism::from_name("PLAIN"), None);
    assert_eq!(Mechanism::OAuthBearer.name(), "OAUTHBEARER");
    assert_eq!(Mechanism::XOAuth2.name(), "XOAUTH2");
}

// ---- redaction ----

#[test]
fn tokens_never_appear_in_debug_output() {
    let input = with_header("n,a=u,");
    let parsed = parse_oauthbearer(&input).unwrap();
    assert!(!format!("{parsed:?}").contains("vF9dft4"), "{parsed:?}");
    let x = parse_xoauth2(format!("user=u\x01auth=Bearer {TOKEN}\x01\x01").as_bytes()).unwrap();
    assert!(!format!("{x:?}").contains("vF9dft4"), "{x:?}");
    let line = decode_client_line(b"bixhPXUsAWF1dGg9QmVhcmVyIHZGOWRmdDQBAQ==");
    let shown = format!("{line:?}");
    assert!(
        !shown.contains("vF9dft4") && !shown.contains("QmVhcmVy"),
        "{shown}"
    );
}
