//! What the embedder says about a user's sign-in, for the ID tokens issued from it: when
//! (`auth_time`, OpenID Connect Core §2), how (`amr`, RFC 8176) and in which browser session
//! (`sid`, OpenID Connect Back-Channel Logout 1.0 §2.1).
//!
//! The engine keeps no sessions, so all three come from the embedder at approval
//! ([`crate::Engine::approve`], [`crate::Engine::device_approve`], [`crate::Engine::proceed`])
//! and travel with the code, the device approval and the grant, so a refresh's ID token repeats
//! them (§12.2). An embedder that knows only the time passes a `u64` ([`From<u64>`]): the ID
//! tokens then carry no `amr` and no `sid`, rather than a guess.
//!
//! `acr` is not here on purpose: an authentication context class is a promise about assurance
//! that only a deployment's policy can make; this engine has none to state, so it asserts none
//! (and discovery advertises no `acr_values_supported`).
//!
//! The `sid` must not be the session's cookie: an ID token is read by the relying party (and
//! often logged by it), and a `sid` that were the cookie would let it take over the session. The
//! embedder passes a separate random public identifier of the session.

use crate::error::{ErrorCode, OAuthError};

/// At most this many `amr` values.
pub const MAX_AMR_VALUES: usize = 8;

/// At most this many bytes in one `amr` value (RFC 8176's registered values are short words).
pub const MAX_AMR_VALUE_BYTES: usize = 32;

/// At most this many bytes in a `sid`.
pub const MAX_SID_BYTES: usize = 128;

/// A user's sign-in: when, how, and in which session (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authentication {
    /// When the user authenticated (Unix seconds): the ID token's `auth_time`. A time after the
    /// decision is taken as the decision's time.
    pub auth_time: u64,
    /// How (RFC 8176 values such as `pwd`), in the order to state them; empty when unknown.
    pub amr: Vec<String>,
    /// The public identifier of the browser session (never its cookie), if there is one.
    pub sid: Option<String>,
}

impl From<u64> for Authentication {
    /// A sign-in known only by its time: no `amr`, no `sid`.
    fn from(auth_time: u64) -> Self {
        Authentication {
            auth_time,
            ..Authentication::default()
        }
    }
}

/// Printable ASCII without spaces, quotes or backslashes: what an `amr` value or `sid` may be.
fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

impl Authentication {
    /// Checks the embedder's values (`server_error` naming the bound: they are the embedder's,
    /// never a client's) and takes a future `auth_time` as `now`.
    pub(crate) fn checked(self, now: u64) -> Result<Authentication, OAuthError> {
        let bad = |what: &str| {
            OAuthError::new(
                ErrorCode::ServerError,
                format!("the sign-in's {what} is malformed"),
            )
        };
        if self.amr.len() > MAX_AMR_VALUES
            || !self.amr.iter().all(|v| is_token(v, MAX_AMR_VALUE_BYTES))
        {
            return Err(bad("amr"));
        }
        if self
            .sid
            .as_deref()
            .is_some_and(|s| !is_token(s, MAX_SID_BYTES))
        {
            return Err(bad("sid"));
        }
        Ok(Authentication {
            auth_time: self.auth_time.min(now),
            ..self
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bounds_and_clamps_the_time() {
        let ok = Authentication {
            auth_time: 50,
            amr: vec!["pwd".into()],
            sid: Some("abc-DEF_1".into()),
        };
        assert_eq!(ok.clone().checked(40).unwrap().auth_time, 40);
        assert_eq!(ok.clone().checked(60).unwrap().auth_time, 50);
        let bad_amr = Authentication {
            amr: vec!["p w d".into()],
            ..ok.clone()
        };
        assert!(bad_amr.checked(60).is_err());
        let many = Authentication {
            amr: vec!["pwd".into(); MAX_AMR_VALUES + 1],
            ..ok.clone()
        };
        assert!(many.checked(60).is_err());
        let long_sid = Authentication {
            sid: Some("s".repeat(MAX_SID_BYTES + 1)),
            ..ok
        };
        assert!(long_sid.checked(60).is_err());
        assert_eq!(Authentication::from(7).amr, Vec::<String>::new());
    }
}
