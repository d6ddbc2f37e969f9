//! Issuing tokens: the shared tail of every grant.

use serde::Serialize;

use crate::access_token::{self, AccessClaims};
use crate::client::{ClientRecord, GrantType};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::Cx;
use crate::random::Random;
use crate::response::Response;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::store::{Effect, GrantId, GrantRecord, RefreshRecord, RefreshState};

/// Random bytes in every code, refresh token and device code: 256 bits (RFC 6749 §10.10 asks ≥128).
pub const SECRET_BYTES: usize = 32;

/// A fresh random grant id.
pub fn new_grant_id(rng: &mut dyn Random) -> GrantId {
    let mut id = [0u8; 16];
    rng.fill(&mut id);
    GrantId(id)
}

/// What a grant issues for one token response.
pub struct Issue<'a> {
    /// The grant the tokens belong to.
    pub grant_id: GrantId,
    /// The subject.
    pub subject: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// Scope of the access token.
    pub scope: &'a Scope,
    /// The subject's credential version.
    pub credential_version: u32,
}

/// Signs an access token valid from `now` for the configured lifetime.
pub fn access_token(
    engine: &Engine,
    now: u64,
    what: &Issue<'_>,
) -> Result<(String, u64), OAuthError> {
    let ttl = engine.config().access_token_ttl_secs;
    let claims = AccessClaims {
        grant_id: what.grant_id,
        subject: what.subject.to_owned(),
        client_id: what.client_id.to_owned(),
        scope: what.scope.clone(),
        issued_at: now,
        expires_at: now + ttl,
        credential_version: what.credential_version,
    };
    let token = access_token::issue(engine.keys(), &claims).map_err(|_| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "the granted scope is too long to issue",
        )
    })?;
    Ok((token, ttl))
}

/// The successful token response (RFC 6749 §5.1), always with `scope` (OAuth 2.1 §3.2.3).
pub fn token_response(
    access_token: &str,
    expires_in: u64,
    refresh: Option<&Secret>,
    scope: &Scope,
) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        access_token: &'a str,
        token_type: &'static str,
        expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
        scope: String,
    }
    Response::json(
        200,
        &Body {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: refresh.map(Secret::expose),
            scope: scope.to_string(),
        },
    )
}

/// The end of every grant that creates a new grant family (authorization code, device code): an
/// access token, and when the client may refresh, the grant record and its first refresh token.
/// Returns the token response.
pub fn new_grant(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    what: &Issue<'_>,
) -> Result<Response, OAuthError> {
    let now = cx.now();
    let (access, expires_in) = access_token(engine, now, what)?;
    let refresh = if client.allows(GrantType::RefreshToken) {
        let token = Secret::generate(cx.rng(), SECRET_BYTES);
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
        }));
        cx.effect(Effect::PutRefresh(RefreshRecord {
            hash: token.hash(),
            grant_id: what.grant_id,
            issued_at: now,
            expires_at,
            state: RefreshState::Active,
        }));
        Some(token)
    } else {
        None
    };
    Ok(token_response(
        &access,
        expires_in,
        refresh.as_ref(),
        what.scope,
    ))
}
