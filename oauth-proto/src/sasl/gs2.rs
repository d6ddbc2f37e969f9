//! The RFC 5801 §4 GS2 header that starts every OAUTHBEARER client response.
//!
//! ```text
//! gs2-header      = [gs2-nonstd-flag ","] gs2-cb-flag "," [gs2-authzid] ","
//! gs2-cb-flag     = ("p=" cb-name) / "n" / "y"
//! gs2-authzid     = "a=" saslname
//! saslname        = 1*(UTF8-char-safe / "=2C" / "=3D")
//! ```
//! The authzid is the identity the client wants to act as; `,` and `=` inside it travel escaped.
//! The `F` flag and channel binding (`p=`) are refused (see the module docs of [`crate::sasl`]).

use super::ParseError;

/// The channel-binding flag of a GS2 header (`p=` is refused while parsing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CbFlag {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: the client supports channel binding but thinks the server does not.
    ClientSupports,
}

/// A parsed GS2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gs2Header {
    /// The channel-binding flag.
    pub cb_flag: CbFlag,
    /// The authorization identity (`a=`), unescaped.
    pub authzid: Option<String>,
}

impl Gs2Header {
    /// Parses a header from the start of `input` and returns it with the bytes after its final `,`.
    pub fn parse(input: &[u8]) -> Result<(Gs2Header, &[u8]), ParseError> {
        let (cb_flag, rest) = match input {
            [b'n', b',', rest @ ..] => (CbFlag::No, rest),
            [b'y', b',', rest @ ..] => (CbFlag::ClientSupports, rest),
            [b'p', b'=', ..] => return Err(ParseError::ChannelBindingUnsupported),
            _ => return Err(ParseError::BadGs2Header),
        };
        let (authzid, rest) = match rest {
            [b',', rest @ ..] => (None, rest),
            [b'a', b'=', rest @ ..] => {
                let end = rest
                    .iter()
                    .position(|&b| b == b',')
                    .ok_or(ParseError::BadGs2Header)?;
                (Some(unescape_saslname(&rest[..end])?), &rest[end + 1..])
            }
            _ => return Err(ParseError::BadGs2Header),
        };
        Ok((Gs2Header { cb_flag, authzid }, rest))
    }

    /// Appends the header (ending with its final `,`) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.cb_flag {
            CbFlag::No => b"n,",
            CbFlag::ClientSupports => b"y,",
        });
        if let Some(a) = &self.authzid {
            out.extend_from_slice(b"a=");
            out.extend_from_slice(escape_saslname(a).as_bytes());
        }
        out.push(b',');
    }
}

/// Decodes an RFC 5801 `saslname`: `=2C` is `,`, `=3D` is `=` (hex digits in either case, as ABNF
/// strings are case-insensitive); any other `=`, a raw `,`, an empty name, invalid UTF-8 or a
/// control character is [`ParseError::BadIdentity`].
pub fn unescape_saslname(raw: &[u8]) -> Result<String, ParseError> {
    if raw.is_empty() {
        return Err(ParseError::BadIdentity);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'=' => {
                let escape = raw.get(i + 1..i + 3).ok_or(ParseError::BadIdentity)?;
                if escape.eq_ignore_ascii_case(b"2C") {
                    out.push(b',');
                } else if escape.eq_ignore_ascii_case(b"3D") {
                    out.push(b'=');
                } else {
                    return Err(ParseError::BadIdentity);
                }
                i += 3;
            }
            b',' => return Err(ParseError::BadIdentity),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8(out).map_err(|_| ParseError::BadIdentity)?;
    check_identity(&name)?;
    Ok(name)
}

/// Encodes a name as an RFC 5801 `saslname` (`,` as `=2C`, `=` as `=3D`).
pub fn escape_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// An identity (authzid, XOAUTH2 user) must be non-empty and free of control characters (RFC 4013
/// §2.3 prohibits them; they would also let a client forge log lines).
pub(super) fn check_identity(name: &str) -> Result<(), ParseError> {
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(ParseError::BadIdentity);
    }
    Ok(())
}
