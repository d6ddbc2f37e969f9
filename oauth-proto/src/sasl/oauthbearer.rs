//! The OAUTHBEARER client response (RFC 7628 §3.1).
//!
//! ```text
//! kvsep       = %x01
//! key         = 1*(ALPHA)
//! value       = *(VCHAR / SP / HTAB / CR / LF )
//! kvpair      = key "=" value kvsep
//! client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
//! ```
//! The lone-`kvsep` form is the client's dummy reply to an error challenge
//! ([`OAuthBearerMessage::Dummy`]). Known keys are `auth` (required), `host` and `port`; others are
//! ignored, but no key may repeat.

use std::collections::BTreeSet;

use super::gs2::Gs2Header;
use super::{parse_bearer_credentials, ParseError, MAX_MESSAGE_LEN};
use crate::secret::Secret;

const KVSEP: u8 = 0x01;

/// A parsed OAUTHBEARER client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OAuthBearerMessage {
    /// A client response carrying a token.
    Response(OAuthBearerResponse),
    /// A lone `\x01`: the acknowledgement of an error challenge.
    Dummy,
}

/// An OAUTHBEARER client response. `Debug` redacts the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthBearerResponse {
    /// The GS2 header (channel-binding flag and optional authzid).
    pub gs2: Gs2Header,
    /// The `host` the client believes it connected to.
    pub host: Option<String>,
    /// The `port` the client believes it connected to.
    pub port: Option<u16>,
    /// The bearer token from `auth`.
    pub token: Secret,
}

impl OAuthBearerResponse {
    /// The wire form: GS2 header, `\x01`, `host`, `port`, `auth` pairs, final `\x01` (the order of
    /// RFC 7628 §4.1). Round-trips through [`parse_oauthbearer`] when the fields are valid (a host of
    /// `VCHAR`/`SP`, a `b64token` token).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.gs2.encode(&mut out);
        out.push(KVSEP);
        if let Some(host) = &self.host {
            push_pair(&mut out, "host", host);
        }
        if let Some(port) = self.port {
            push_pair(&mut out, "port", &port.to_string());
        }
        push_pair(&mut out, "auth", &format!("Bearer {}", self.token.expose()));
        out.push(KVSEP);
        out
    }
}

fn push_pair(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(KVSEP);
}

/// Parses an OAUTHBEARER client message strictly.
pub fn parse_oauthbearer(input: &[u8]) -> Result<OAuthBearerMessage, ParseError> {
    match parse_parts(input)? {
        Parsed::Dummy => Ok(OAuthBearerMessage::Dummy),
        Parsed::Parts(p) => {
            let token = parse_bearer_credentials(p.auth.unwrap_or_default())?;
            Ok(OAuthBearerMessage::Response(OAuthBearerResponse {
                gs2: p.gs2,
                host: p.host,
                port: p.port,
                token: Secret::new(token),
            }))
        }
    }
}

/// A message whose framing is valid; `auth` is not yet checked, so that the exchange can still
/// answer a bad credential with a challenge and knows the authzid when it does.
pub(super) enum Parsed<'a> {
    Dummy,
    Parts(Parts<'a>),
}

pub(super) struct Parts<'a> {
    pub gs2: Gs2Header,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub auth: Option<&'a [u8]>,
}

pub(super) fn parse_parts(input: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if input.len() > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLong);
    }
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    if input == [KVSEP] {
        return Ok(Parsed::Dummy);
    }
    let (gs2, rest) = Gs2Header::parse(input)?;
    let mut rest = match rest {
        [KVSEP, rest @ ..] => rest,
        _ => return Err(ParseError::MissingSeparator),
    };
    let mut seen = BTreeSet::new();
    let mut parts = Parts {
        gs2,
        host: None,
        port: None,
        auth: None,
    };
    loop {
        match rest {
            [] => return Err(ParseError::Unterminated),
            [KVSEP] => return Ok(Parsed::Parts(parts)),
            [KVSEP, ..] => return Err(ParseError::TrailingData),
            _ => {}
        }
        let key_len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        if key_len == 0 || rest.get(key_len) != Some(&b'=') {
            return Err(ParseError::BadKey);
        }
        let key = &rest[..key_len];
        let after = &rest[key_len + 1..];
        let value_len = after
            .iter()
            .position(|&b| b == KVSEP)
            .ok_or(ParseError::Unterminated)?;
        let value = &after[..value_len];
        if !is_value(value) {
            return Err(ParseError::BadValue);
        }
        if !seen.insert(key) {
            return Err(ParseError::DuplicateKey);
        }
        match key {
            b"auth" => parts.auth = Some(value),
            // The value grammar is ASCII, so these conversions cannot fail.
            b"host" => parts.host = Some(String::from_utf8_lossy(value).into_owned()),
            b"port" => parts.port = Some(parse_port(value)?),
            _ => {}
        }
        rest = &after[value_len + 1..];
    }
}

/// `value = *(VCHAR / SP / HTAB / CR / LF)`.
pub(super) fn is_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| matches!(b, 0x21..=0x7E | b' ' | b'\t' | b'\r' | b'\n'))
}

fn parse_port(value: &[u8]) -> Result<u16, ParseError> {
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadPort);
    }
    value.iter().try_fold(0u16, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u16::from(d - b'0')))
            .ok_or(ParseError::BadPort)
    })
}
