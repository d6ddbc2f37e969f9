//! Finding what a presented token is, for introspection and revocation.
//!
//! Access tokens are self-contained: their signature, fields and expiry are checked without the
//! store ([`access_token::verify`]), which also tells which grant and subject the token names; one
//! [`Op::RevocationStatus`](crate::store::Op::RevocationStatus) for those then answers whether the
//! grant's access or the subject's credentials were revoked ([`access_token::check_revocation`]).
//! The check without the store depends only on the token, the keys and the flow's fixed clock, so a
//! [`TokenLookup`] makes it once per request and the flow's replays reuse it. Refresh tokens are
//! looked up by hash. Authorization codes and device codes live in stores of their own and are never
//! found here.
//!
//! `token_type_hint` only orders the search (RFC 7662 §2.1, RFC 7009 §2.1); an unknown hint is
//! ignored.

use std::sync::OnceLock;

use crate::access_token::{self, AccessClaims, TokenError};
use crate::ask::{self, Halt};
use crate::engine::Engine;
use crate::flow::Cx;
use crate::params::Params;
use crate::store::{RefreshGrant, RefreshState};

/// What a presented token turned out to be.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// A valid access token: signature, expiry and revocation checked.
    Access(&'a AccessClaims),
    /// A refresh token on record, active or not (see [`refresh_active`]).
    Refresh(&'a RefreshGrant),
    /// Unknown, malformed, expired or revoked.
    Nothing,
}

/// True when the refresh token may still be used.
pub(crate) fn refresh_active(found: &RefreshGrant, now: u64) -> bool {
    found.token.state == RefreshState::Active
        && found.grant.revoked_at.is_none()
        && now < found.token.expires_at
}

/// One request's token lookup: remembers the store-free access token check across replays.
#[derive(Default)]
pub(crate) struct TokenLookup {
    verified: OnceLock<Result<AccessClaims, TokenError>>,
}

impl std::fmt::Debug for TokenLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenLookup")
    }
}

impl TokenLookup {
    /// `Some` when the token is an access token (valid or not), `None` when it is not one at all.
    fn access<'f>(
        &'f self,
        engine: &Engine,
        cx: &mut Cx<'_>,
        token: &str,
    ) -> Result<Option<Found<'f>>, Halt> {
        let now = cx.now();
        let claims = match self
            .verified
            .get_or_init(|| engine.verify_access_token(token, now))
        {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Ok(Some(Found::Nothing)),
            Err(_) => return Ok(None),
        };
        let status = ask::revocation_status(cx, claims.grant_id, &claims.subject)?;
        Ok(Some(
            match access_token::check_revocation(claims, &status) {
                Ok(()) => Found::Access(claims),
                Err(_) => Found::Nothing,
            },
        ))
    }

    /// Looks the token up, refresh tokens first when the hint says `refresh_token`.
    pub(crate) fn find<'f, 'a: 'f>(
        &'f self,
        engine: &Engine,
        cx: &mut Cx<'a>,
        params: &Params,
        token: &str,
    ) -> Result<Found<'f>, Halt> {
        let refresh_first = params.get("token_type_hint")? == Some("refresh_token");
        let found = if refresh_first {
            match refresh(cx, token)? {
                Some(f) => Some(f),
                None => self.access(engine, cx, token)?,
            }
        } else {
            match self.access(engine, cx, token)? {
                Some(f) => Some(f),
                None => refresh(cx, token)?,
            }
        };
        Ok(found.unwrap_or(Found::Nothing))
    }
}

fn refresh<'a>(cx: &mut Cx<'a>, token: &str) -> Result<Option<Found<'a>>, Halt> {
    Ok(ask::refresh(cx, token)?.map(Found::Refresh))
}
