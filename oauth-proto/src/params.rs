//! Form and query parameters (RFC 6749 Appendix B, §3.1, §3.2).
//!
//! Decoding follows Appendix B (`+` is a space, `%HH` an octet, then strict UTF-8). On top of it this
//! module applies the OAuth rules: a parameter sent twice is `invalid_request`, a parameter sent
//! empty counts as absent, and anything unknown is ignored.

use crate::error::OAuthError;

/// Decoded parameters, in request order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl std::fmt::Debug for Params {
    // Values carry secrets (`client_secret`, codes, tokens): only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body or a query string (RFC 6749 Appendix B):
    /// pairs split at `&` and the first `=`, `+` is a space, `%HH` an octet, and the octets must
    /// then be UTF-8. Invalid UTF-8 is `invalid_request`, never replaced: a `state` must come back
    /// byte for byte, and a secret must not match after lossy decoding.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        fn decode(part: &[u8]) -> Result<String, OAuthError> {
            let spaced: Vec<u8> = part
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            String::from_utf8(percent_encoding::percent_decode(&spaced).collect()).map_err(|_| {
                OAuthError::invalid_request("the parameters are not valid form-urlencoded UTF-8")
            })
        }
        input
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &[][..]),
                };
                Ok((decode(name)?, decode(value)?))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Params)
    }

    /// The value of `name`: `None` when absent or empty, an error when sent more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found: Option<&str> = None;
        let mut count = 0;
        for (k, v) in &self.0 {
            if k == name {
                count += 1;
                if !v.is_empty() {
                    found = Some(v);
                }
            }
        }
        if count > 1 {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} was sent more than once"
            )));
        }
        Ok(found)
    }

    /// Like [`Params::get`], but absence is `invalid_request`.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| {
            OAuthError::invalid_request(format!("missing required parameter {name}"))
        })
    }

    /// True when `name` appears at all, even empty.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}
