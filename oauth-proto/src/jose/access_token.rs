//! JWT access tokens (RFC 9068): the opt-in second format of [`crate::access_token`].
//!
//! # Why a second format, and why opt-in
//! The HMAC tokens of [`crate::access_token`] are checked by this server alone (or whoever holds
//! its HMAC keys). A resource server run by someone else can only ask the introspection endpoint.
//! An RFC 9068 token is signed with one of the server's asymmetric keys ([`KeySet`]), so any
//! resource server can check it locally from the published JWK Set. The price is a public-key
//! signature per token issued and a signature check per request, one to three orders of
//! magnitude above an HMAC (see the engine bench), so the HMAC format stays the default and JWTs
//! are chosen per client (by the administrator, [`crate::client::ClientRecord::access_token_format`])
//! or per protected resource (`access_token_format = "jwt"` in its `[[resources]]` table): a token
//! is a JWT when its client opted in or any resource of its audience did.
//!
//! # What is signed
//! A compact JWS ([`super::jws`]) whose header is `{"alg", "kid", "typ": "at+jwt"}` (RFC 9068
//! §2.1). The algorithm is the configuration's `jwt_access_token_alg`, by default RS256 when the
//! key set has an active RS256 key (RFC 9068 §2.1 makes RS256 the one algorithm every conforming
//! resource server supports) and ES256 otherwise; never `none` or HMAC, which [`Algorithm`]
//! cannot name. The claims (RFC 9068 §2.2):
//! - `iss` the issuer; `iat` and `exp` the same times the HMAC token would carry;
//! - `aud` the token's resources (RFC 8707), a string for one and an array for several; a token
//!   without audience (no resource configured) names the issuer, as RFC 9068 §3 asks for a
//!   default, and reads back as a token without audience. So no resource may have the issuer as
//!   its identifier ([`crate::config::Config::validate`] refuses one);
//! - `sub` the user, or the client id for `client_credentials`; `client_id`; `scope`;
//! - `auth_time` when the grant knows when the user authenticated;
//! - `jti`: base64url of 32 bytes, the grant id (16), the subject's credential version (4,
//!   big-endian) and 12 random bytes. Unique per token (96 random bits), and it carries what the
//!   server itself needs to validate the token exactly like an HMAC one: the grant whose
//!   revocation kills it and the credential version a password change moves on. Resource
//!   servers treat it as opaque, as RFC 7519 says; no private claim is added.
//!
//! # Validation
//! Validation (`verify`, behind the engine's entry points) bounds the length ([`MAX_JWT_LEN`])
//! before decoding anything, reads only the header's `kid` and `alg` to find the key (which then
//! decides the algorithm), verifies the signature, and only then parses the claims. The header's
//! `typ` must be `at+jwt` (or `application/at+jwt`, RFC 9068 §4): an ID token signed by the same
//! keys is refused. `iss` must be this issuer. Expiry, audience and revocation are then checked
//! exactly as for an HMAC token, on the same [`AccessClaims`].
//!
//! # Revocation seen by others
//! This server revokes a JWT access token like an HMAC one (its grant, or its subject's
//! credential version). A resource server that validates locally from the JWKS cannot see a
//! revocation: the token stays valid there until `exp` (`access_token_ttl_secs`); resource
//! servers that need revocation at once ask `/introspect` instead.
//!
//! # Sans-IO
//! Signing is pure computation with the keys and the randomness (`jti`'s random bytes, RS256's
//! blinding) passed in; nothing here reads a clock.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::jws::{self, JwsError};
use super::{Algorithm, KeySet, SigningKey};
use crate::access_token::{self, AccessClaims, Audience, TokenError, Unsigned};
use crate::random::Random;
use crate::scope::Scope;
use crate::store::GrantId;

/// The `typ` header of a JWT access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// The media type form of [`TYP`], which RFC 9068 §4 asks resource servers to accept too.
const TYP_MEDIA: &str = "application/at+jwt";

/// Longest JWT access token issued or accepted, in bytes ([`jws::MAX_JWS_LEN`]). A typical one is
/// under a kilobyte even with RS256; only subjects, scopes and audiences near the format's limits
/// could reach it, and such a token is refused at issue rather than issued unusable.
pub const MAX_JWT_LEN: usize = jws::MAX_JWS_LEN;

/// Bytes of `jti`: grant id, credential version, random.
const JTI_BYTES: usize = 16 + 4 + 12;

/// Whether `token` is in this format rather than the HMAC one, from its first character alone: a
/// JWS of this server starts with the base64url of `{"`, `eyJ`, and an HMAC token with that of its
/// version byte (1 or 2), `A`. Nothing else is read, so the HMAC path pays one comparison. (A
/// future HMAC format version must stay below `0x78`, whose tokens would start with `e`.)
pub fn is_jwt(token: &str) -> bool {
    token.as_bytes().first() == Some(&b'e')
}

/// `aud`: one identifier as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Aud<S> {
    One(S),
    Many(Vec<S>),
}

#[derive(Serialize)]
struct ClaimsOut<'a> {
    iss: &'a str,
    exp: u64,
    aud: Aud<&'a str>,
    sub: &'a str,
    client_id: &'a str,
    iat: u64,
    jti: &'a str,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<u64>,
}

#[derive(Deserialize)]
struct ClaimsIn {
    iss: String,
    exp: u64,
    aud: Aud<String>,
    sub: String,
    client_id: String,
    iat: u64,
    jti: String,
    scope: String,
}

/// The key that signs JWT access tokens: the active key for `configured`, or when none is
/// configured, RS256's if the set has one and ES256's otherwise (see the module docs).
pub fn signing_key(keys: &KeySet, configured: Option<Algorithm>) -> Option<&SigningKey> {
    match configured {
        Some(alg) => keys.signing_key(alg),
        None => keys
            .signing_key(Algorithm::Rs256)
            .or_else(|| keys.signing_key(Algorithm::Es256)),
    }
}

/// Signs `claims` for `issuer` with `key` into a JWT access token, as the token endpoint does for
/// the clients and resources set to JWTs: the counterpart of [`access_token::issue`]. `auth_time`
/// is added when known; `random` gives `jti` its random part and blinds RS256.
pub fn issue(
    key: &SigningKey,
    issuer: &str,
    claims: &AccessClaims,
    auth_time: Option<u64>,
    random: &mut dyn Random,
) -> Result<String, TokenError> {
    sign(key, issuer, &Unsigned::of(claims), auth_time, random)
}

/// Signs `claims` for `issuer` with `key`. `auth_time` is added when known. Fails with
/// [`TokenError::Malformed`] for claims the HMAC format could not carry either, or a token longer
/// than [`MAX_JWT_LEN`].
pub(crate) fn sign(
    key: &SigningKey,
    issuer: &str,
    claims: &Unsigned<'_>,
    auth_time: Option<u64>,
    random: &mut dyn Random,
) -> Result<String, TokenError> {
    if claims.subject.len() > access_token::MAX_SUBJECT
        || claims.client_id.len() > access_token::MAX_CLIENT_ID
        || claims.scope.as_str().len() > access_token::MAX_SCOPE
        || !claims.audience.is_encodable()
    {
        return Err(TokenError::Malformed);
    }
    let mut jti = [0u8; JTI_BYTES];
    jti[..16].copy_from_slice(&claims.grant_id.0);
    jti[16..20].copy_from_slice(&claims.credential_version.to_be_bytes());
    random.fill(&mut jti[20..]);
    let jti = b64().encode(jti);
    let resources: Vec<&str> = claims.audience.iter().collect();
    let aud = match resources.as_slice() {
        [] => Aud::One(issuer),
        [one] => Aud::One(*one),
        _ => Aud::Many(resources),
    };
    let out = ClaimsOut {
        iss: issuer,
        exp: claims.expires_at,
        aud,
        sub: claims.subject,
        client_id: claims.client_id,
        iat: claims.issued_at,
        jti: &jti,
        scope: claims.scope.as_str(),
        auth_time,
    };
    let payload = serde_json::to_vec(&out).map_err(|_| TokenError::Malformed)?;
    let token = jws::sign(key, TYP, &payload, random);
    if token.len() > MAX_JWT_LEN {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

/// Checks a JWT access token signed by a key of `keys` (active or retired) for `issuer`, valid at
/// `now`, and returns what it says. The revocation check is the caller's, as for the HMAC format
/// ([`access_token::check_revocation`]).
pub(crate) fn verify(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: u64,
) -> Result<AccessClaims, TokenError> {
    if token.len() > MAX_JWT_LEN {
        return Err(TokenError::Malformed);
    }
    let verified = jws::verify(token, |kid| keys.verifying_key(kid)).map_err(|e| match e {
        JwsError::UnknownKey => TokenError::UnknownKey,
        JwsError::BadSignature | JwsError::AlgorithmMismatch => TokenError::BadSignature,
        _ => TokenError::Malformed,
    })?;
    if !matches!(verified.typ.as_deref(), Some(TYP | TYP_MEDIA)) {
        return Err(TokenError::Malformed);
    }
    let claims = read_claims(&verified.payload, issuer).ok_or(TokenError::Malformed)?;
    if now >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The claims of a verified payload, or `None` when they are not what [`sign`] writes for
/// `issuer`.
fn read_claims(payload: &[u8], issuer: &str) -> Option<AccessClaims> {
    let c: ClaimsIn = serde_json::from_slice(payload).ok()?;
    if c.iss != issuer
        || c.sub.is_empty()
        || c.sub.len() > access_token::MAX_SUBJECT
        || c.client_id.len() > access_token::MAX_CLIENT_ID
    {
        return None;
    }
    let audience = match c.aud {
        Aud::One(one) if one == issuer => Audience::default(),
        Aud::One(one) => Audience::new([one])?,
        Aud::Many(many) if many.is_empty() => return None,
        Aud::Many(many) => Audience::new(many)?,
    };
    let jti: [u8; JTI_BYTES] = b64().decode(c.jti).ok()?.try_into().ok()?;
    let mut grant_id = [0u8; 16];
    grant_id.copy_from_slice(&jti[..16]);
    let credential_version = u32::from_be_bytes([jti[16], jti[17], jti[18], jti[19]]);
    Some(AccessClaims {
        grant_id: GrantId(grant_id),
        subject: c.sub,
        client_id: c.client_id,
        scope: Scope::parse(&c.scope).ok()?,
        issued_at: c.iat,
        expires_at: c.exp,
        credential_version,
        audience,
    })
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::CounterRandom;

    const ISSUER: &str = "https://auth.example.com";

    fn sign_for(keys: &KeySet, alg: Algorithm, audience: &Audience) -> String {
        let scope = Scope::parse("openid mail").unwrap();
        let claims = Unsigned {
            grant_id: GrantId([7; 16]),
            subject: "alice",
            client_id: "webmail",
            scope: &scope,
            issued_at: 1000,
            expires_at: 4600,
            credential_version: 3,
            audience,
        };
        let key = keys.signing_key(alg).unwrap();
        sign(key, ISSUER, &claims, Some(990), &mut CounterRandom::new(5)).unwrap()
    }

    #[test]
    fn round_trips_with_every_algorithm_and_audience_shape() {
        let keys = KeySet::generate(&Algorithm::ALL, &mut CounterRandom::new(1)).unwrap();
        for alg in Algorithm::ALL {
            for audience in [
                Audience::default(),
                Audience::new(["imap://mail.example.com"]).unwrap(),
                Audience::new(["imap://a.example", "smtp://a.example"]).unwrap(),
            ] {
                let token = sign_for(&keys, alg, &audience);
                assert!(is_jwt(&token));
                let back = verify(&keys, ISSUER, &token, 2000).unwrap();
                assert_eq!(back.grant_id, GrantId([7; 16]));
                assert_eq!(back.credential_version, 3);
                assert_eq!(back.audience, audience);
                assert_eq!(back.subject, "alice");
                assert_eq!(back.scope.as_str(), "mail openid");
                assert_eq!(
                    verify(&keys, ISSUER, &token, 4600),
                    Err(TokenError::Expired)
                );
                assert_eq!(
                    verify(&keys, "https://other.example", &token, 2000),
                    Err(TokenError::Malformed)
                );
            }
        }
    }

    #[test]
    fn the_default_key_is_rs256_when_there_is_one() {
        let all = KeySet::generate(&Algorithm::ALL, &mut CounterRandom::new(2)).unwrap();
        let es = KeySet::generate(&[Algorithm::Es256], &mut CounterRandom::new(3)).unwrap();
        assert_eq!(
            signing_key(&all, None).unwrap().algorithm(),
            Algorithm::Rs256
        );
        assert_eq!(
            signing_key(&es, None).unwrap().algorithm(),
            Algorithm::Es256
        );
        assert_eq!(
            signing_key(&all, Some(Algorithm::EdDsa))
                .unwrap()
                .algorithm(),
            Algorithm::EdDsa
        );
        assert!(signing_key(&es, Some(Algorithm::EdDsa)).is_none());
    }

    #[test]
    fn hmac_tokens_are_never_taken_for_jwts() {
        let keys = access_token::KeyRing::new(
            access_token::TokenKey::new(u32::MAX, &[1; 32]).unwrap(),
            vec![],
        )
        .unwrap();
        let claims = AccessClaims {
            grant_id: GrantId([0xff; 16]),
            subject: "s".into(),
            client_id: "c".into(),
            scope: Scope::parse("mail").unwrap(),
            issued_at: u64::MAX,
            expires_at: u64::MAX,
            credential_version: u32::MAX,
            audience: Audience::new(["imap://x"]).unwrap(),
        };
        let token = access_token::issue(&keys, &claims).unwrap();
        assert!(!is_jwt(&token));
    }
}
