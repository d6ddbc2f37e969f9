//! Finding what a presented token is, for introspection and revocation.
//!
//! Access tokens are self-contained: their signature, fields and expiry are checked without the
//! store ([`access_token::verify`]), which also tells which grant and subject the token names; their
//! revocation status then answers whether the grant's access or the subject's credentials were
//! revoked ([`access_token::check_revocation`]). The check without the store depends only on the
//! token, the keys and the flow's fixed clock, so a [`TokenLookup`] makes it once per request and
//! the flow's replays reuse it.
//!
//! Introspection and revocation authenticate their caller before looking the token up, and the
//! caller's client is one read anyway. So the check without the store runs first
//! ([`TokenLookup::status_to_read`], which names the grant and subject of a token that passes it)
//! and the status is read with the caller's client, one op
//! ([`Op::GetClientWithStatus`](crate::store::Op::GetClientWithStatus), see [`crate::caller`]),
//! then handed to [`TokenLookup::find`]. When it was not read that way (the token is not a valid
//! access token, or the caller is described by its metadata document), the lookup asks
//! [`Op::RevocationStatus`](crate::store::Op::RevocationStatus) itself, as before. Either way the
//! status decides nothing until the lookup, after the caller is authenticated. Refresh tokens are
//! looked up by the family they name ([`crate::refresh_token`]); one that is not of its family is
//! unknown. Authorization codes and device codes live in stores of their own and are never
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
use crate::refresh_token::{Presented, Standing};
use crate::store::{GrantId, RefreshGrant, RevocationStatus};

/// What a presented token turned out to be.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// A valid access token: signature, expiry and revocation checked.
    Access(&'a AccessClaims),
    /// A refresh token of its family, active or not (see [`refresh_active`]).
    Refresh {
        /// The family.
        found: &'a RefreshGrant,
        /// Whether the token is the family's current one.
        current: bool,
    },
    /// Unknown, malformed, expired or revoked.
    Nothing,
}

/// True when the refresh token (the family's current one or not) may still be used.
pub(crate) fn refresh_active(found: &RefreshGrant, current: bool, now: u64) -> bool {
    current && found.grant.revoked_at.is_none() && now < found.family.expires_at
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
    /// The check of `token` as an access token without the store, made once per request.
    fn verified(
        &self,
        engine: &Engine,
        token: &str,
        now: u64,
    ) -> &Result<AccessClaims, TokenError> {
        self.verified
            .get_or_init(|| engine.verify_access_token(token, now))
    }

    /// The grant and subject whose revocation status decides the request's `token`, when it passes
    /// the check without the store: what to read with the caller's client ([`crate::caller`]), to
    /// hand to [`TokenLookup::find`]. `None` when there is no such token (missing or repeated
    /// `token`, which the request reports later, or one that is not a valid access token). Must be
    /// asked about the token later passed to [`TokenLookup::find`], as the check is remembered.
    pub(crate) fn status_to_read(
        &self,
        engine: &Engine,
        params: &Params,
        now: u64,
    ) -> Option<(GrantId, &str)> {
        let token = params.get("token").ok().flatten()?;
        let claims = self.verified(engine, token, now).as_ref().ok()?;
        Some((claims.grant_id, claims.subject.as_str()))
    }

    /// `Some` when the token is an access token (valid or not), `None` when it is not one at all.
    /// `read` is its revocation status if already read ([`TokenLookup::status_to_read`]).
    fn access<'f>(
        &'f self,
        engine: &Engine,
        cx: &mut Cx<'_>,
        token: &str,
        read: Option<RevocationStatus>,
    ) -> Result<Option<Found<'f>>, Halt> {
        let claims = match self.verified(engine, token, cx.now()) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Ok(Some(Found::Nothing)),
            Err(_) => return Ok(None),
        };
        let status = match read {
            Some(status) => status,
            None => ask::revocation_status(cx, claims.grant_id, &claims.subject)?,
        };
        Ok(Some(
            match access_token::check_revocation(claims, &status) {
                Ok(()) => Found::Access(claims),
                Err(_) => Found::Nothing,
            },
        ))
    }

    /// Looks the token up, refresh tokens first when the hint says `refresh_token`. `read` is the
    /// revocation status of [`TokenLookup::status_to_read`]'s grant and subject, if it was read
    /// with the caller; otherwise a valid access token's status is asked here.
    pub(crate) fn find<'f, 'a: 'f>(
        &'f self,
        engine: &Engine,
        cx: &mut Cx<'a>,
        params: &Params,
        token: &str,
        read: Option<RevocationStatus>,
    ) -> Result<Found<'f>, Halt> {
        let refresh_first = params.get("token_type_hint")? == Some("refresh_token");
        let found = if refresh_first {
            match refresh(cx, token)? {
                Some(f) => Some(f),
                None => self.access(engine, cx, token, read)?,
            }
        } else {
            match self.access(engine, cx, token, read)? {
                Some(f) => Some(f),
                None => refresh(cx, token)?,
            }
        };
        Ok(found.unwrap_or(Found::Nothing))
    }
}

fn refresh<'a>(cx: &mut Cx<'a>, token: &str) -> Result<Option<Found<'a>>, Halt> {
    let presented = Presented::parse(token);
    Ok(
        ask::refresh(cx, &presented)?.and_then(|found| match presented.standing(&found.family) {
            Standing::Foreign => None,
            standing => Some(Found::Refresh {
                found,
                current: standing == Standing::Current,
            }),
        }),
    )
}
