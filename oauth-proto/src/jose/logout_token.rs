//! The Logout Token of OpenID Connect Back-Channel Logout 1.0 (§2.4): a JWT the server POSTs to
//! a relying party's `backchannel_logout_uri` when a session ends.
//!
//! Its claims are a struct, as the ID token's are, so a logout token carries exactly what §2.4
//! asks: `iss`, `aud`, `iat`, `exp`, `jti`, the back-channel logout event, and `sub` and/or
//! `sid`, and never a `nonce` (§2.4 forbids one, so that a logout token can never pass for an ID
//! token). Its header's `typ` is `logout+jwt` (§2.4, recommended by RFC 8725 §3.11), which an ID
//! token never has; it is signed with the same keys as the client's ID tokens.
//!
//! [`LogoutTokenClaims::decode`] checks the signature, the `typ`, the event, the absence of
//! `nonce` and that `sub` or `sid` is present (§2.6 steps 3 to 6); the relying party's remaining
//! checks (issuer, audience, time, `jti` replay) depend on its state, so they are the caller's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id_token::Audience;
use super::jws::{self, JwsError};
use super::key_set::KeySet;
use super::keys::SigningKey;
use crate::random::Random;

/// The `typ` header of a logout token.
pub const TYP: &str = "logout+jwt";

/// The member of `events` that makes a JWT a logout token (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The claims of a logout token (§2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// Issuer identifier.
    pub iss: String,
    /// The user whose session ended, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The client id.
    pub aud: Audience,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expiry (Unix seconds): shortly after `iat`.
    pub exp: u64,
    /// A unique identifier, for the relying party's replay check.
    pub jti: String,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: Map<String, Value>,
    /// The session that ended, as the ID tokens from it stated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Why a logout token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutTokenError {
    /// The JWS was refused.
    Jws(JwsError),
    /// The header's `typ` is not `logout+jwt`.
    WrongType,
    /// The payload is not logout token claims: malformed, no back-channel logout event, a
    /// `nonce`, or neither `sub` nor `sid`.
    Claims,
}

impl std::fmt::Display for LogoutTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogoutTokenError::Jws(e) => e.fmt(f),
            LogoutTokenError::WrongType => f.write_str("the token is not a logout token"),
            LogoutTokenError::Claims => f.write_str("the logout token's claims are malformed"),
        }
    }
}

impl std::error::Error for LogoutTokenError {}

impl LogoutTokenClaims {
    /// The claims for `client_id` about the session `sid` of `sub`, issued at `now` and valid
    /// for `ttl` seconds; `jti` must be unique.
    pub fn new(
        issuer: &str,
        client_id: &str,
        sub: Option<&str>,
        sid: Option<&str>,
        jti: String,
        now: u64,
        ttl: u64,
    ) -> Self {
        let mut events = Map::new();
        events.insert(EVENT.to_owned(), Value::Object(Map::new()));
        LogoutTokenClaims {
            iss: issuer.to_owned(),
            sub: sub.map(str::to_owned),
            aud: Audience::One(client_id.to_owned()),
            iat: now,
            exp: now.saturating_add(ttl),
            jti,
            events,
            sid: sid.map(str::to_owned),
        }
    }

    /// The signed logout token: a compact JWS with `typ: logout+jwt`.
    pub fn sign(&self, key: &SigningKey, random: &mut dyn Random) -> String {
        // A struct of strings, numbers, options and a JSON map always serializes.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        jws::sign(key, TYP, &payload, random)
    }

    /// The claims of a logout token signed by a key of `keys`, after the checks in the module
    /// docs; the caller checks issuer, audience and time.
    pub fn decode(token: &str, keys: &KeySet) -> Result<LogoutTokenClaims, LogoutTokenError> {
        let verified =
            jws::verify(token, |kid| keys.verifying_key(kid)).map_err(LogoutTokenError::Jws)?;
        if verified.typ.as_deref() != Some(TYP) {
            return Err(LogoutTokenError::WrongType);
        }
        let raw: Map<String, Value> =
            serde_json::from_slice(&verified.payload).map_err(|_| LogoutTokenError::Claims)?;
        if raw.contains_key("nonce") {
            return Err(LogoutTokenError::Claims);
        }
        let claims: LogoutTokenClaims =
            serde_json::from_value(Value::Object(raw)).map_err(|_| LogoutTokenError::Claims)?;
        let event = claims.events.get(EVENT).is_some_and(Value::is_object);
        if !event || (claims.sub.is_none() && claims.sid.is_none()) {
            return Err(LogoutTokenError::Claims);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::{Algorithm, IdTokenClaims};
    use crate::random::CounterRandom;

    fn claims() -> LogoutTokenClaims {
        LogoutTokenClaims::new(
            "https://auth.example.com",
            "webmail",
            Some("alice"),
            Some("s1"),
            "j1".into(),
            1000,
            120,
        )
    }

    #[test]
    fn signs_and_decodes_with_every_algorithm() {
        let mut random = CounterRandom::new(31);
        let keys = KeySet::generate(&Algorithm::ALL, &mut random).unwrap();
        for alg in Algorithm::ALL {
            let token = claims().sign(keys.signing_key(alg).unwrap(), &mut random);
            assert_eq!(LogoutTokenClaims::decode(&token, &keys).unwrap(), claims());
            // Never an ID token: the typ differs, and the claims lack what an ID token needs.
            assert!(IdTokenClaims::decode(&token, &keys).is_err());
        }
        let json = serde_json::to_value(claims()).unwrap();
        assert_eq!(json["aud"], "webmail");
        assert_eq!(json["exp"], 1120);
        assert_eq!(json["events"][EVENT], serde_json::json!({}));
        assert!(json.get("nonce").is_none());
    }

    #[test]
    fn refuses_what_is_not_a_logout_token() {
        let mut random = CounterRandom::new(32);
        let keys = KeySet::generate(&[Algorithm::Es256], &mut random).unwrap();
        let key = keys.signing_key(Algorithm::Es256).unwrap();
        let sign = |value: Value, typ: &str, random: &mut CounterRandom| {
            jws::sign(key, typ, &serde_json::to_vec(&value).unwrap(), random)
        };
        let good = serde_json::to_value(claims()).unwrap();
        let mut nonce = good.clone();
        nonce["nonce"] = "n".into();
        let mut no_event = good.clone();
        no_event["events"] = serde_json::json!({});
        let mut nobody = good.clone();
        nobody.as_object_mut().unwrap().remove("sub");
        nobody.as_object_mut().unwrap().remove("sid");
        for bad in [nonce, no_event, nobody] {
            let token = sign(bad, TYP, &mut random);
            assert_eq!(
                LogoutTokenClaims::decode(&token, &keys),
                Err(LogoutTokenError::Claims)
            );
        }
        let id_typed = sign(good, "JWT", &mut random);
        assert_eq!(
            LogoutTokenClaims::decode(&id_typed, &keys),
            Err(LogoutTokenError::WrongType)
        );
    }
}
