//! Form and query parameters (RFC 6749 Appendix B, §3.1, §3.2).
//!
//! Decoding follows Appendix B (`+` is a space, `%HH` an octet, then strict UTF-8). On top of it this
//! module applies the OAuth rules: a parameter sent twice is `invalid_request`, a parameter sent
//! empty counts as absent, and anything unknown is ignored.
//!
//! Every request decodes a form, so [`Params`] keeps all decoded names and values back to back in
//! one string and records where each ends: two allocations per form, whatever its length.

use crate::error::OAuthError;

/// Decoded parameters, in request order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Every decoded name and value, back to back, in request order.
    text: String,
    /// For each pair, where its name ends and where its value ends in `text` (the name starts where
    /// the previous value ended).
    ends: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Params {
    // Values carry secrets (`client_secret`, codes, tokens): only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs().map(|(k, _)| k))
            .finish()
    }
}

/// Appends the form-urldecoding of `part` to `out` (RFC 6749 Appendix B): `+` is a space, `%HH`
/// an octet (decoded by `percent-encoding`; a `%` not followed by two hex digits stands for
/// itself). No UTF-8 check. Splitting at `+` first is the same as mapping `+` to a space first, as
/// no `%HH` contains a `+`; a run without `%` is copied whole.
pub(crate) fn form_decode_into(part: &[u8], out: &mut Vec<u8>) {
    // Most values (tokens, ids, grant types) have neither: one word-at-a-time scan each, one copy.
    if !part.contains(&b'+') && !part.contains(&b'%') {
        out.extend_from_slice(part);
        return;
    }
    for (i, run) in part.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let decoded: std::borrow::Cow<'_, [u8]> = percent_encoding::percent_decode(run).into();
        out.extend_from_slice(&decoded);
    }
}

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body or a query string (RFC 6749 Appendix B):
    /// pairs split at `&` and the first `=`, `+` is a space, `%HH` an octet, and the octets must
    /// then be UTF-8. Invalid UTF-8 is `invalid_request`, never replaced: a `state` must come back
    /// byte for byte, and a secret must not match after lossy decoding.
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        let invalid =
            || OAuthError::invalid_request("the parameters are not valid form-urlencoded UTF-8");
        // Decoding never lengthens the input, so one buffer of its size holds everything.
        let mut bytes = Vec::with_capacity(input.len());
        let pairs = input.split(|&b| b == b'&').filter(|pair| !pair.is_empty());
        let mut ends = Vec::with_capacity(pairs.clone().count());
        for pair in pairs {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            form_decode_into(name, &mut bytes);
            let name_end = bytes.len();
            form_decode_into(value, &mut bytes);
            ends.push((name_end, bytes.len()));
        }
        // Each name and each value must be UTF-8 on its own: that is, the whole is UTF-8 and no
        // character straddles a boundary between two of them. One pass checks both.
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        if !ends.iter().all(|&(name_end, value_end)| {
            text.is_char_boundary(name_end) && text.is_char_boundary(value_end)
        }) {
            return Err(invalid());
        }
        Ok(Params { text, ends })
    }

    /// Every pair, in request order.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let name = self.text.get(start..name_end).unwrap_or("");
            let value = self.text.get(name_end..value_end).unwrap_or("");
            start = value_end;
            (name, value)
        })
    }

    /// The value of `name`: `None` when absent or empty, an error when sent more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found: Option<&str> = None;
        let mut count = 0;
        for (k, v) in self.pairs() {
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
        self.pairs().any(|(k, _)| k == name)
    }

    /// Every value of `name`, empty ones included, in request order: for the parameters a
    /// request may repeat (RFC 8707's `resource`), where [`Params::get`] refuses repetition.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoding this module had before it kept one buffer: `+` mapped first, then
    /// `percent_decode`, then UTF-8, per name and per value.
    fn reference(input: &[u8]) -> Option<Vec<(String, String)>> {
        fn decode(part: &[u8]) -> Option<String> {
            let spaced: Vec<u8> = part
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            String::from_utf8(percent_encoding::percent_decode(&spaced).collect()).ok()
        }
        input
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &[][..]),
                };
                Some((decode(name)?, decode(value)?))
            })
            .collect()
    }

    #[test]
    fn decodes_exactly_as_plus_then_percent_decoding_on_every_short_input() {
        // Every string of up to 5 bytes over an alphabet with each special case: `%` with and
        // without hex digits after it, `+`, `%2B`, separators, and a UTF-8 sequence that is only
        // valid when its two halves meet (split across name and value it must be refused).
        let alphabet: &[&[u8]] = &[
            b"%", b"+", b"2", b"B", b"g", b"&", b"=", b"%C3", b"%A9", b"\xc3",
        ];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = inputs.clone();
        for _ in 0..5 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for piece in alphabet {
                    let mut s = prefix.clone();
                    s.extend_from_slice(piece);
                    next.push(s);
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        for input in inputs {
            let ours = Params::parse(&input).ok().map(|p| {
                p.pairs()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            });
            assert_eq!(
                ours,
                reference(&input),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn get_contains_and_debug() {
        let p = Params::parse(b"a=1&b=&c&a=2&d=x%20y+z").unwrap();
        assert!(p.get("a").is_err());
        assert_eq!(p.get("b").unwrap(), None);
        assert!(p.contains("b") && p.contains("c") && !p.contains("e"));
        assert_eq!(p.get("d").unwrap(), Some("x y z"));
        assert_eq!(format!("{p:?}"), r#"["a", "b", "c", "a", "d"]"#);
    }
}
