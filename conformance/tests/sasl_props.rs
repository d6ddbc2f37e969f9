//! Properties of the SASL parsers and exchange: no input panics, and what the builders write the
//! parsers read back unchanged.

use oauth_proto::access_token::{AccessClaims, TokenError};
use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, escape_saslname, parse_oauthbearer, parse_xoauth2,
    unescape_saslname, CbFlag, ClientInput, Gs2Header, Mechanism, OAuthBearerMessage,
    OAuthBearerResponse, SaslExchange, SaslPolicy, Step, XOAuth2Response,
};
use oauth_proto::secret::Secret;
use quickcheck::{quickcheck, Arbitrary, Gen};

const B64TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

/// An RFC 6750 `b64token`.
#[derive(Clone, Debug)]
struct Token(String);

impl Arbitrary for Token {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = 1 + usize::arbitrary(g) % 200;
        let mut s: String = (0..len)
            .map(|_| *g.choose(B64TOKEN).unwrap() as char)
            .collect();
        s.push_str(&"=".repeat(usize::arbitrary(g) % 3));
        Token(s)
    }
}

/// A SASL name: non-empty, no control characters, biased toward `,` and `=`.
#[derive(Clone, Debug)]
struct Name(String);

impl Arbitrary for Name {
    fn arbitrary(g: &mut Gen) -> Self {
        let pool = [
            ',', '=', '@', 'a', 'Z', '0', ' ', 'é', '€', '😀', '2', 'C', '3', 'D', '\u{a0}',
        ];
        let len = 1 + usize::arbitrary(g) % 40;
        let mut s = String::new();
        for _ in 0..len {
            let c = if bool::arbitrary(g) {
                *g.choose(&pool).unwrap()
            } else {
                char::arbitrary(g)
            };
            if !c.is_control() {
                s.push(c);
            }
        }
        if s.is_empty() {
            s.push('x');
        }
        Name(s)
    }
}

/// A `host` value: `VCHAR` and `SP`.
#[derive(Clone, Debug)]
struct Host(String);

impl Arbitrary for Host {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = usize::arbitrary(g) % 60;
        Host(
            (0..len)
                .map(|_| (0x20 + u8::arbitrary(g) % 0x5F) as char)
                .collect(),
        )
    }
}

#[derive(Clone, Debug)]
struct ValidBearer(OAuthBearerResponse);

impl Arbitrary for ValidBearer {
    fn arbitrary(g: &mut Gen) -> Self {
        ValidBearer(OAuthBearerResponse {
            gs2: Gs2Header {
                cb_flag: if bool::arbitrary(g) {
                    CbFlag::No
                } else {
                    CbFlag::ClientSupports
                },
                authzid: Option::<Name>::arbitrary(g).map(|n| n.0),
            },
            host: Option::<Host>::arbitrary(g).map(|h| h.0),
            port: Option::<u16>::arbitrary(g),
            token: Secret::new(Token::arbitrary(g).0),
        })
    }
}

fn refuse(_: &str) -> Result<AccessClaims, TokenError> {
    Err(TokenError::Malformed)
}

/// Bytes near the grammar: fragments of valid messages mixed with arbitrary bytes.
fn nearly_valid(g: &mut Gen) -> Vec<u8> {
    let pieces: &[&[u8]] = &[
        b"n,", b"y,", b"p=", b"F,", b"a=", b",", b"=2C", b"=3D", b"=", b"\x01", b"auth=",
        b"Bearer ", b"host=", b"port=", b"143", b"user=", b"abc", b"\r\n", b"\xff", b"\x00",
    ];
    let n = usize::arbitrary(g) % 12;
    let mut out = Vec::new();
    for _ in 0..n {
        if bool::arbitrary(g) {
            out.extend_from_slice(g.choose(pieces).unwrap());
        } else {
            out.push(u8::arbitrary(g));
        }
    }
    out
}

#[derive(Clone, Debug)]
struct Fuzz(Vec<u8>);

impl Arbitrary for Fuzz {
    fn arbitrary(g: &mut Gen) -> Self {
        Fuzz(if bool::arbitrary(g) {
            nearly_valid(g)
        } else {
            Vec::<u8>::arbitrary(g)
        })
    }
}

quickcheck! {
    fn parsers_never_panic(input: Fuzz) -> bool {
        let _ = parse_oauthbearer(&input.0);
        let _ = parse_xoauth2(&input.0);
        let _ = unescape_saslname(&input.0);
        let _ = oauth_proto::sasl::parse_bearer_credentials(&input.0);
        let _ = decode_client_line(&input.0);
        let _ = decode_initial_response(&input.0);
        true
    }

    fn exchange_never_panics_and_ends_after_two_messages(first: Fuzz, second: Fuzz, xoauth2: bool) -> bool {
        let mechanism = if xoauth2 { Mechanism::XOAuth2 } else { Mechanism::OAuthBearer };
        let policy = SaslPolicy::default();
        let mut ex = SaslExchange::new(mechanism, true, &policy).unwrap();
        let a = ex.step(ClientInput::Response(first.0), &policy, &refuse);
        let b = ex.step(ClientInput::Response(second.0), &policy, &refuse);
        let c = ex.step(ClientInput::Cancel, &policy, &refuse);
        // A refusing validator never lets an exchange succeed, and at most two messages end it.
        !matches!(a, Ok(Step::Success(_))) && !matches!(b, Ok(Step::Success(_))) && c.is_err()
    }

    fn oauthbearer_round_trip(r: ValidBearer) -> bool {
        parse_oauthbearer(&r.0.encode()) == Ok(OAuthBearerMessage::Response(r.0))
    }

    fn xoauth2_round_trip(user: Name, token: Token) -> bool {
        let r = XOAuth2Response { user: user.0, token: Secret::new(token.0) };
        parse_xoauth2(&r.encode()) == Ok(r)
    }

    fn saslname_round_trip(name: Name) -> bool {
        let escaped = escape_saslname(&name.0);
        !escaped.contains(',') && unescape_saslname(escaped.as_bytes()) == Ok(name.0)
    }

    fn base64_line_round_trip(bytes: Vec<u8>) -> bool {
        use base64::Engine as _;
        let line = base64::engine::general_purpose::STANDARD.encode(&bytes);
        decode_client_line(line.as_bytes()) == ClientInput::Response(bytes)
    }
}
