//! Issuing tokens: the shared tail of every grant.
//!
//! The access token is signed from borrowed claims and written straight into the token response,
//! whose JSON body is serialized once into a buffer sized for it. It is an HMAC token
//! ([`access_token`]) unless the client or a resource of its audience is set to RFC 9068 JWTs
//! ([`Engine::issues_jwt`]); then the same claims are signed with the engine's JWT access token
//! key ([`crate::jose::access_token`]), with `auth_time` when the grant knows it. When the scope
//! holds `openid` and the grant has a user, the response also carries the ID token signed over
//! that access token (see [`crate::openid`]).
//!
//! # Issue times come after the grant's last revocation
//! Times are whole seconds, and a revocation at `at` refuses the grant's access tokens issued at or
//! before `at` ([`access_token`](crate::access_token)). A token issued in the same second *after* a
//! revocation (an RFC 7009 revocation of an access token followed by a refresh, or of a
//! `client_credentials` token followed by a new one) would be born dead. So every grant reads the
//! grant's revocation status before issuing ([`Op::RevocationStatus`](crate::store::Op)) and hands
//! it over as [`Issue::access_revoked_at`]: the token is issued at
//! `max(now, access_revoked_at + 1)` (see [`issued_at`]), and expires a full lifetime after that.
//! The store does the mirror image when it records a revocation: it moves the revocation past the
//! last one it holds for the grant (`max(at, previous + 1)`), so a revocation made in the same
//! second after such a shifted issue still reaches it.
//!
//! Why this is race-free: the store orders the issuer's read and the revoker's write, and a flow's
//! `now` is fixed before its read. If the revocation is applied *before* the read, the read sees
//! it and the token is stamped after it: it lives. If it is applied *after* the read, the token was
//! stamped `now` or `previous + 1` from what the read saw, and the revocation is recorded at its
//! own `now` or later, and at least at `previous + 1`: it reaches the token unless the issuer's
//! clock had already passed the revoker's when both were read, that is unless the issue started
//! after the revocation did, which is the order the two then have. No write on the issuing path,
//! no lock across the two, no token format change.
//!
//! A shifted token claims an issue time up to a second per shift in the future, and expires a
//! full lifetime after that claim. Shifts need a revocation of a live token of the grant between
//! two issues, so only a client revoking and re-issuing its own tokens can pile them up, and only
//! for its own grant; every later revocation still reaches those tokens (the store keeps its
//! record the same extra time).

use serde::Serialize;

use crate::access_token::{self, Unsigned};
use crate::client::{ClientRecord, GrantType};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::Cx;
use crate::jose::access_token as jwt_access_token;
use crate::openid::{self, IdTokenFacts};
use crate::random::Random;
use crate::refresh_token::{self, FamilySecret};
use crate::response::Response;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::store::{Effect, GrantId, GrantRecord, RefreshFamily};

/// Random bytes in every code, refresh token and device code: 256 bits (RFC 6749 §10.10 asks ≥128).
pub(crate) const SECRET_BYTES: usize = 32;

/// A fresh random grant id.
pub(crate) fn new_grant_id(rng: &mut dyn Random) -> GrantId {
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    GrantId(id)
}

/// What a grant issues for one token response.
pub(crate) struct Issue<'a> {
    /// The grant the tokens belong to.
    pub(crate) grant_id: GrantId,
    /// The subject.
    pub(crate) subject: &'a str,
    /// The client.
    pub(crate) client_id: &'a str,
    /// Scope of the access token.
    pub(crate) scope: &'a Scope,
    /// The subject's credential version.
    pub(crate) credential_version: u32,
    /// When the grant's access was last revoked, as read from the store before issuing: the access
    /// token is issued after it (see the module docs).
    pub(crate) access_revoked_at: Option<u64>,
    /// The access token's audience (RFC 8707, see [`crate::resource`]).
    pub(crate) audience: &'a access_token::Audience,
    /// The resources the authorization named, kept in a new grant for its refreshes.
    pub(crate) authorized: &'a [String],
    /// For a grant with a user: what its ID token carries, issued when the scope holds `openid`.
    /// `None` for `client_credentials`.
    pub(crate) id_token: Option<IdTokenFacts<'a>>,
    /// The client's access token format; the token is a JWT when this or a resource of the
    /// audience says so ([`Engine::issues_jwt`]).
    pub(crate) format: access_token::AccessTokenFormat,
}

/// The issue time of an access token issued at `now` from a grant whose access was last revoked at
/// `access_revoked_at`: `now`, or the second after the revocation when that is later, so that the
/// token is never refused by a revocation that happened before it.
pub(crate) fn issued_at(now: u64, access_revoked_at: Option<u64>) -> u64 {
    match access_revoked_at {
        Some(at) if at >= now => at.saturating_add(1),
        _ => now,
    }
}

/// Signs an access token for `what`, valid from `now` (or just after the grant's last revocation,
/// see [`issued_at`]) for the configured lifetime, and answers with the successful token response (RFC 6749 §5.1), always with `scope` (OAuth 2.1 §3.2.3),
/// with `refresh` when there is one, and with `id_token` when the scope holds `openid` and the
/// grant has a user (`random` only blinds an RS256 signature).
pub(crate) fn token_response(
    engine: &Engine,
    now: u64,
    what: &Issue<'_>,
    refresh: Option<&Secret>,
    random: &mut dyn Random,
) -> Result<Response, OAuthError> {
    #[derive(Serialize)]
    struct Body<'a> {
        access_token: &'a str,
        token_type: &'static str,
        expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
        scope: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id_token: Option<&'a str>,
    }
    let ttl = engine.config().access_token_ttl_secs;
    let issued_at = issued_at(now, what.access_revoked_at);
    let claims = Unsigned {
        grant_id: what.grant_id,
        subject: what.subject,
        client_id: what.client_id,
        scope: what.scope,
        issued_at,
        // `expires_in` stays the configured lifetime: a token shifted past a revocation lives a
        // second or so longer than the client is told, never shorter.
        expires_at: issued_at.saturating_add(ttl),
        credential_version: what.credential_version,
        audience: what.audience,
    };
    let refresh_token = refresh.map(Secret::expose);
    let scope = what.scope.as_str();
    let id_token = what
        .id_token
        .filter(|_| what.scope.contains(openid::OPENID));
    let respond = |access_token: &str, random: &mut dyn Random| {
        let id_token = id_token
            .map(|facts| {
                openid::sign(
                    engine,
                    what.subject,
                    what.client_id,
                    issued_at,
                    access_token,
                    &facts,
                    random,
                )
            })
            .transpose()?;
        let id_token = id_token.as_deref();
        // The member names, punctuation and a 20-digit number take under 128 bytes.
        let size = 128
            + access_token.len()
            + refresh_token.map_or(0, str::len)
            + scope.len()
            + id_token.map_or(0, |t| t.len() + 16);
        let body = Body {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token,
            scope,
            id_token,
        };
        Ok(Response::json_sized(200, &body, size))
    };
    let too_long = |_| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "the granted scope is too long to issue",
        )
    };
    if engine.issues_jwt(what.format, what.audience) {
        let auth_time = what.id_token.and_then(|f| f.auth_time);
        let token = engine.jwt_access_token_key(|key| {
            let key = key.ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::ServerError,
                    "the server has no key to sign JWT access tokens with",
                )
            })?;
            let issuer = &engine.config().issuer;
            jwt_access_token::sign(key, issuer, &claims, auth_time, random).map_err(too_long)
        })?;
        return respond(&token, random);
    }
    access_token::sign(&engine.keys(), &claims, |token| respond(token, random)).map_err(too_long)?
}

/// The end of every grant that creates a new grant family (authorization code, device code): an
/// access token, and when the client may refresh, the grant record and its first refresh token.
/// Returns the token response.
pub(crate) fn new_grant(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    what: &Issue<'_>,
) -> Result<Response, OAuthError> {
    let now = cx.now();
    let refresh = if client.allows(GrantType::RefreshToken) {
        let family = FamilySecret::generate(cx.rng());
        let token = refresh_token::mint(cx.rng(), what.grant_id, &family, client.is_public());
        let expires_at = now + engine.config().refresh_token_ttl_secs;
        cx.effect(Effect::PutGrant(GrantRecord {
            grant_id: what.grant_id,
            client_id: client.client_id.clone(),
            subject: what.subject.to_owned(),
            scope: what.scope.clone(),
            credential_version: what.credential_version,
            created_at: now,
            expires_at,
            revoked_at: None,
            resources: what.authorized.to_vec(),
            auth_time: what.id_token.and_then(|f| f.auth_time),
            amr: what.id_token.map(|f| f.amr.to_vec()).unwrap_or_default(),
            sid: what.id_token.and_then(|f| f.sid).map(str::to_owned),
        }));
        cx.effect(Effect::PutRefreshFamily(RefreshFamily {
            grant_id: what.grant_id,
            family: Some(family.hash()),
            current: token.hash(),
            issued_at: now,
            expires_at,
            previous: None,
        }));
        Some(token)
    } else {
        None
    };
    // `offline_access` asks for a refresh token (OpenID Connect Core §11): an answer without one
    // does not grant it (a client registered before registration enforced this may still hold it).
    if refresh.is_none() {
        if let Some(scope) = what.scope.without(crate::scope::OFFLINE_ACCESS) {
            let narrowed = Issue {
                scope: &scope,
                ..*what
            };
            return token_response(engine, now, &narrowed, None, cx.rng());
        }
    }
    token_response(engine, now, what, refresh.as_ref(), cx.rng())
}
