//! The `auth` value of both mechanisms: an HTTP `Authorization` credential with the `Bearer` scheme.
//!
//! RFC 7628 §3.1 puts the RFC 6750 §2.1 credential in `auth`:
//! ```text
//! credentials = "Bearer" 1*SP b64token
//! b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//! The scheme is case-insensitive (RFC 9110 §11.1); nothing may follow the token.

use super::ParseError;

/// Extracts the token from `Bearer <b64token>`. An empty value is [`ParseError::MissingAuth`], another
/// scheme [`ParseError::BadAuthScheme`], a missing or ill-formed token [`ParseError::BadToken`].
pub fn parse_bearer_credentials(value: &[u8]) -> Result<&str, ParseError> {
    if value.is_empty() {
        return Err(ParseError::MissingAuth);
    }
    let (scheme, rest) = value.split_at(value.len().min(6));
    if !scheme.eq_ignore_ascii_case(b"Bearer") || !matches!(rest.first(), None | Some(b' ')) {
        return Err(ParseError::BadAuthScheme);
    }
    let token = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
    if !is_b64token(token) {
        return Err(ParseError::BadToken);
    }
    // b64token is ASCII, so this cannot fail; mapping keeps the function panic-free regardless.
    std::str::from_utf8(token).map_err(|_| ParseError::BadToken)
}

fn is_b64token(token: &[u8]) -> bool {
    let body = token
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        .count();
    body > 0 && token[body..].iter().all(|&b| b == b'=')
}
