//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of `NQCHAR`.
//!
//! A [`Scope`] is kept sorted and free of duplicates, so that subset checks are cheap and the same set
//! always prints the same way (tokens embed it, and a byte-stable form keeps them stable too).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of scope tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSyntaxError;

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Scope(Vec::new())
    }

    /// Parses a space-delimited scope string. Each token must be `1*NQCHAR`
    /// (`%x21 / %x23-5B / %x5D-7E`); runs of spaces are tolerated, other whitespace is not.
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        let mut tokens = Vec::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_nqchar) {
                return Err(ScopeSyntaxError);
            }
            tokens.push(token.to_owned());
        }
        Ok(Self::from_tokens(tokens))
    }

    /// Builds a scope from tokens already known to be valid (sorts and deduplicates).
    pub fn from_tokens(mut tokens: Vec<String>) -> Self {
        tokens.sort_unstable();
        tokens.dedup();
        Scope(tokens)
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.0.binary_search(t).is_ok())
    }

    /// True when the token is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.0.binary_search_by(|t| t.as_str().cmp(token)).is_ok()
    }

    /// The tokens, sorted.
    pub fn tokens(&self) -> &[String] {
        &self.0
    }

    /// True when there is no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tokens of `self` that are not in `other`.
    pub fn difference<'a>(&'a self, other: &'a Scope) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |t| other.0.binary_search(t).is_err())
            .map(String::as_str)
    }
}

/// `NQCHAR = %x21 / %x23-5B / %x5D-7E` (RFC 6749 Appendix A).
pub fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(|_| serde::de::Error::custom("invalid scope syntax"))
    }
}

/// The scope a request asks for: the `scope` parameter, or everything `allowed` when it is absent
/// (RFC 6749 §3.3 lets the server pick a documented default). A malformed scope, or one naming a
/// token outside `allowed`, is `invalid_scope`.
pub fn requested(param: Option<&str>, allowed: &Scope) -> Result<Scope, crate::error::OAuthError> {
    use crate::error::OAuthError;
    let scope = match param {
        Some(s) => Scope::parse(s).map_err(|_| OAuthError::invalid_scope("scope is malformed"))?,
        None => allowed.clone(),
    };
    if let Some(extra) = scope.difference(allowed).next() {
        return Err(OAuthError::invalid_scope(format!(
            "scope {extra} is not allowed for this client"
        )));
    }
    Ok(scope)
}
