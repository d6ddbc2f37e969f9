//! Scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens of `NQCHAR`.
//!
//! A [`Scope`] is kept in one canonical form: its distinct tokens, sorted, joined by single spaces.
//! So the same set always prints the same way (tokens embed it, and a byte-stable form keeps them
//! stable too), equality is string equality, subset checks are a merge of two sorted lists, and
//! printing, serializing, signing or copying a scope is one string operation rather than one per
//! token (scopes are parsed, copied and printed on every token request).

//!
//! # The mail clients' scopes
//! The mail clients' public profile (draft-ietf-mailmaint-oauth-public) names its scopes as URNs:
//! [`MAIL`], [`CONTACTS`] and [`CALENDARS`]. The short names `mail`, `contacts` and `calendar`
//! that this server offered before are kept as aliases: both spellings are supported by default,
//! a client asks for either and its token carries exactly what it asked for (no rewriting, so the
//! scope a client sees in its token answer is the one it requested), and a resource checks for
//! either ([`Scope::contains_any`]; the SASL default policy accepts `mail` or [`MAIL`]).
//! [`OFFLINE_ACCESS`] asks for a refresh token (OpenID Connect Core §11): it is granted only
//! with one.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `urn:ietf:params:oauth:scope:mail`: IMAP, POP and SMTP submission (draft-ietf-mailmaint-oauth-public).
pub const MAIL: &str = "urn:ietf:params:oauth:scope:mail";
/// `urn:ietf:params:oauth:scope:contacts`: address books (CardDAV).
pub const CONTACTS: &str = "urn:ietf:params:oauth:scope:contacts";
/// `urn:ietf:params:oauth:scope:calendars`: calendars (CalDAV).
pub const CALENDARS: &str = "urn:ietf:params:oauth:scope:calendars";
/// `offline_access`: the client wants a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A set of scope tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope(String);

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeSyntaxError;

impl Scope {
    /// The empty scope.
    pub fn empty() -> Self {
        Scope(String::new())
    }

    /// Parses a space-delimited scope string. Each token must be `1*NQCHAR`
    /// (`%x21 / %x23-5B / %x5D-7E`); runs of spaces are tolerated, other whitespace is not.
    pub fn parse(s: &str) -> Result<Self, ScopeSyntaxError> {
        if is_canonical(s)? {
            return Ok(Scope(s.to_owned()));
        }
        Ok(Self::join(s.split(' ').filter(|t| !t.is_empty()).collect()))
    }

    /// As [`Scope::parse`], reusing `s` when it is already in canonical form.
    fn parse_owned(s: String) -> Result<Self, ScopeSyntaxError> {
        if is_canonical(&s)? {
            return Ok(Scope(s));
        }
        Self::parse(&s)
    }

    /// Builds a scope from tokens already known to be valid (sorts and deduplicates).
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        Self::join(tokens.iter().map(String::as_str).collect())
    }

    fn join(mut tokens: Vec<&str>) -> Self {
        tokens.sort_unstable();
        tokens.dedup();
        Scope(tokens.join(" "))
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.difference(other).next().is_none()
    }

    /// True when the token is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.tokens().any(|t| t == token)
    }

    /// True when any of `tokens` is in the set (a scope and its aliases).
    pub fn contains_any(&self, tokens: &[&str]) -> bool {
        tokens.iter().any(|t| self.contains(t))
    }

    /// The set without `token`, or `None` when it did not contain it.
    pub fn without(&self, token: &str) -> Option<Scope> {
        self.contains(token)
            .then(|| Scope::join(self.tokens().filter(|t| *t != token).collect()))
    }

    /// The tokens, sorted.
    pub fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split(' ').filter(|t| !t.is_empty())
    }

    /// The canonical form: the sorted, distinct tokens joined by single spaces (empty for the
    /// empty scope). It is what [`Display`](std::fmt::Display) prints and what tokens carry.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when there is no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tokens of `self` that are not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a Scope) -> impl Iterator<Item = &'a str> + 'a {
        // Both lists are sorted: walk them together.
        let mut theirs = other.tokens().peekable();
        self.tokens().filter(move |t| {
            while theirs.next_if(|o| o < t).is_some() {}
            theirs.peek() != Some(t)
        })
    }
}

/// Whether `s` is already canonical (valid tokens, single spaces, strictly ascending), or an
/// error when a token is not `1*NQCHAR`.
fn is_canonical(s: &str) -> Result<bool, ScopeSyntaxError> {
    let mut canonical = !s.starts_with(' ') && !s.ends_with(' ');
    let mut previous: Option<&str> = None;
    for token in s.split(' ') {
        if token.is_empty() {
            canonical = false;
            continue;
        }
        if !token.bytes().all(is_nqchar) {
            return Err(ScopeSyntaxError);
        }
        canonical &= previous.is_none_or(|p| p < token);
        previous = Some(token);
    }
    Ok(canonical)
}

/// `NQCHAR = %x21 / %x23-5B / %x5D-7E` (RFC 6749 Appendix A).
pub fn is_nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse_owned(s).map_err(|_| serde::de::Error::custom("invalid scope syntax"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_to_the_sorted_distinct_tokens() {
        for (input, canonical) in [
            ("", ""),
            ("   ", ""),
            ("mail", "mail"),
            ("b a", "a b"),
            ("  a  b a ", "a b"),
            ("a b", "a b"),
            ("a a", "a"),
            ("B a", "B a"),
        ] {
            let scope = Scope::parse(input).unwrap();
            assert_eq!(scope.as_str(), canonical, "{input:?}");
            assert_eq!(scope.to_string(), canonical);
            assert_eq!(Scope::parse_owned(input.to_owned()).unwrap(), scope);
            let tokens: Vec<String> = scope.tokens().map(str::to_owned).collect();
            assert_eq!(Scope::from_tokens(tokens), scope);
        }
        for bad in ["a\tb", "a\"", "a\\b", "é"] {
            assert_eq!(Scope::parse(bad), Err(ScopeSyntaxError), "{bad:?}");
        }
    }

    #[test]
    fn set_operations() {
        let s = |t: &str| Scope::parse(t).unwrap();
        let all = s("a c e g");
        assert!(s("").is_subset_of(&all));
        assert!(s("a g").is_subset_of(&all));
        assert!(!s("a b").is_subset_of(&all));
        assert!(!s("h").is_subset_of(&all));
        assert!(!all.is_subset_of(&s("")));
        assert_eq!(
            s("0 a b c d h").difference(&all).collect::<Vec<_>>(),
            ["0", "b", "d", "h"]
        );
        assert!(all.contains("e") && !all.contains("b") && !all.contains(""));
        assert!(s("").is_empty() && !all.is_empty());
        assert_eq!(all.without("c"), Some(s("a e g")));
        assert_eq!(all.without("b"), None);
        assert_eq!(s("c").without("c"), Some(Scope::empty()));
        assert!(all.contains_any(&["b", "g"]) && !all.contains_any(&["b", "h"]));
    }
}
