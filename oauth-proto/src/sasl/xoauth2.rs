//! The XOAUTH2 client response (Google's Gmail IMAP/POP/SMTP documentation; not an RFC).
//!
//! ```text
//! "user=" mailbox %x01 "auth=Bearer " token %x01 %x01
//! ```
//! There is no GS2 header, no host or port, and no other key: the layout is fixed, so it is parsed as
//! exactly that. `user` is taken verbatim (no RFC 5801 escaping) and must be UTF-8 without control
//! characters; `auth` follows the same value grammar and `Bearer` rule as OAUTHBEARER. The reply to an
//! error challenge is an empty message, not `\x01`.

use super::gs2::check_identity;
use super::oauthbearer::is_value;
use super::{parse_bearer_credentials, ParseError, MAX_MESSAGE_LEN};
use crate::secret::Secret;

/// A parsed XOAUTH2 client response. `Debug` redacts the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XOAuth2Response {
    /// The mailbox the client logs in as.
    pub user: String,
    /// The bearer token.
    pub token: Secret,
}

impl XOAuth2Response {
    /// The wire form, `user=<user>\x01auth=Bearer <token>\x01\x01`.
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "user={}\x01auth=Bearer {}\x01\x01",
            self.user,
            self.token.expose()
        )
        .into_bytes()
    }
}

/// Parses an XOAUTH2 client response strictly.
pub fn parse_xoauth2(input: &[u8]) -> Result<XOAuth2Response, ParseError> {
    let parts = parse_parts(input)?;
    let token = parse_bearer_credentials(parts.auth)?;
    Ok(XOAuth2Response {
        user: parts.user,
        token: Secret::new(token),
    })
}

/// A message whose layout is valid; `auth` is not yet checked (see the OAUTHBEARER counterpart).
pub(super) struct Parts<'a> {
    pub user: String,
    pub auth: &'a [u8],
}

pub(super) fn parse_parts(input: &[u8]) -> Result<Parts<'_>, ParseError> {
    if input.len() > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLong);
    }
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    let rest = input
        .strip_prefix(b"user=")
        .ok_or(ParseError::BadXOAuth2Layout)?;
    let (user, rest) = split_value(rest)?;
    let user = String::from_utf8(user.to_vec()).map_err(|_| ParseError::BadIdentity)?;
    check_identity(&user)?;
    let rest = rest
        .strip_prefix(b"auth=")
        .ok_or(ParseError::BadXOAuth2Layout)?;
    let (auth, rest) = split_value(rest)?;
    if !is_value(auth) {
        return Err(ParseError::BadValue);
    }
    match rest {
        [0x01] => Ok(Parts { user, auth }),
        [] => Err(ParseError::Unterminated),
        _ => Err(ParseError::TrailingData),
    }
}

fn split_value(input: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let end = input
        .iter()
        .position(|&b| b == 0x01)
        .ok_or(ParseError::Unterminated)?;
    Ok((&input[..end], &input[end + 1..]))
}
