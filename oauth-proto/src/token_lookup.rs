//! Finding what a presented token is, for introspection and revocation.
//!
//! Access tokens are self-contained: their signature and expiry are checked without the store, then
//! one [`Op::RevocationStatus`](crate::store::Op::RevocationStatus) answers whether their grant's
//! access or their subject's credentials were revoked. Learning which grant and subject to ask about
//! needs a first validation pass; a recording [`RevocationView`] captures the grant id and subject
//! the validator asks about, so the first pass works for every credential version (a view that
//! answers "version 0" would wrongly refuse tokens of subjects revoked before). Refresh tokens are
//! looked up by hash. Authorization codes and device codes live in stores of their own and are never
//! found here.
//!
//! `token_type_hint` only orders the search (RFC 7662 §2.1, RFC 7009 §2.1); an unknown hint is
//! ignored.

use std::cell::RefCell;

use crate::access_token::{self, AccessClaims, TokenError};
use crate::ask::{self, Halt};
use crate::engine::Engine;
use crate::flow::Cx;
use crate::params::Params;
use crate::secret::SecretHash;
use crate::store::{GrantId, RefreshGrant, RefreshState, RevocationView};

/// What a presented token turned out to be.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// A valid access token: signature, expiry and revocation checked.
    Access(AccessClaims),
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

/// Records what the validator asks about, answering "nothing revoked".
#[derive(Default)]
struct Probe {
    asked: RefCell<(Option<GrantId>, Option<String>)>,
}

impl RevocationView for Probe {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.asked.borrow_mut().0 = Some(*grant_id);
        None
    }
    fn credential_version(&self, subject: &str) -> u32 {
        self.asked.borrow_mut().1 = Some(subject.to_owned());
        0
    }
}

/// `Some` when the token is an access token (valid or not), `None` when it is not one at all.
fn access<'a>(engine: &Engine, cx: &mut Cx<'a>, token: &str) -> Result<Option<Found<'a>>, Halt> {
    let now = cx.now();
    let probe = Probe::default();
    match access_token::validate(engine.keys(), token, now, &probe) {
        Ok(_) | Err(TokenError::Revoked) => {}
        Err(TokenError::Expired) => return Ok(Some(Found::Nothing)),
        Err(_) => return Ok(None),
    }
    let (Some(grant_id), Some(subject)) = probe.asked.into_inner() else {
        return Ok(Some(Found::Nothing));
    };
    let status = ask::revocation_status(cx, grant_id, &subject)?;
    Ok(Some(
        match access_token::validate(engine.keys(), token, now, &status) {
            Ok(claims) => Found::Access(claims),
            Err(_) => Found::Nothing,
        },
    ))
}

fn refresh<'a>(cx: &mut Cx<'a>, token: &str) -> Result<Option<Found<'a>>, Halt> {
    Ok(ask::refresh(cx, SecretHash::of(token))?.map(Found::Refresh))
}

/// Looks the token up, refresh tokens first when the hint says `refresh_token`.
pub(crate) fn find<'a>(
    engine: &Engine,
    cx: &mut Cx<'a>,
    params: &Params,
    token: &str,
) -> Result<Found<'a>, Halt> {
    let refresh_first = params.get("token_type_hint")? == Some("refresh_token");
    let found = if refresh_first {
        match refresh(cx, token)? {
            Some(f) => Some(f),
            None => access(engine, cx, token)?,
        }
    } else {
        match access(engine, cx, token)? {
            Some(f) => Some(f),
            None => refresh(cx, token)?,
        }
    };
    Ok(found.unwrap_or(Found::Nothing))
}
