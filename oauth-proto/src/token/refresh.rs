//! `grant_type=refresh_token` (RFC 6749 §6, RFC 9700 §4.14.2).
//!
//! Public clients always get a new refresh token and the old one is rotated out; confidential
//! clients keep theirs until it has less than the renewal threshold left. Rotation is a
//! compare-and-swap in the store: of two concurrent refreshes with one token exactly one wins. A
//! rotated token presented again (a replay, or the loser of such a race) revokes the whole grant, as
//! RFC 9700 §4.14.2 and OAuth 2.1 §4.3.1 require, because the server cannot tell the thief from the
//! victim. With `refresh_reuse_grace_secs` set, a client that lost the answer to a rotation may
//! present the rotated token again within that window, as long as it has not used the new token:
//! the unused new token is rotated out in turn and the client gets another (a
//! [`Op::RotateRefresh`](crate::store::Op::RotateRefresh) with `retry`); anything else is reuse
//! as above, including the unused token a retry replaced (its answer was lost, so whoever
//! presents it is not the client).
//! The new refresh token keeps the grant's full scope even when the access token is narrowed.
//! Likewise `resource` (RFC 8707) may narrow the access token's audience to part of what the
//! grant authorized, never widen it (`invalid_target`; see [`crate::resource`]).
//! A grant approved before the subject's credentials last changed is refused and revoked, even when a
//! race with the password change left it unrevoked in the store.
//!
//! A refresh token names its grant and carries the grant's family secret
//! ([`crate::refresh_token`]), so the store finds the grant's [`RefreshFamily`] by the grant id,
//! and the engine tells by hash what the token is to it: the current token, the one it replaced
//! (a retry within the grace window), an older one (reuse) or none of the family's (unknown,
//! which revokes nothing: a grant id is no secret).
//!
//! A refresh asks the store twice at most: one read of the family ([`Op::GetRefresh`], whose
//! answer also carries the grant, its client and the revocation status of the grant and its
//! subject, so the token endpoint reads it before authenticating the client and asks for nothing
//! else), then the rotation's compare-and-swap ([`Op::RotateRefresh`]). On a networked store each
//! question is a round trip.
//!
//! A public client's refresh, the most frequent write of a mail deployment, asks once: the read
//! and the rotation are one [`Op::RefreshPublic`], whose compare-and-swap also holds the checks
//! that could refuse such a request (the token is the family's current one and unexpired, its
//! grant live and of the client named, which is registered). The engine asks it only when nothing
//! else can refuse the request: the token is in the current format with the public-client prefix,
//! no secret is presented, and neither `scope` nor `resource` narrows the request. When the store
//! did not rotate, the refresh goes on from the read as above; when it did, every check still runs
//! on what was read, before anything is issued. Two of them the store cannot see: a grant older
//! than its subject's credentials is then refused and revoked as always, and a client whose
//! registration no longer allows `refresh_token` is refused, its token rotated out (the same
//! `unauthorized_client` answer; presented again, the token is a retry of a lost rotation within
//! `refresh_reuse_grace_secs`, and reuse after it).
//!
//! [`Op::GetRefresh`]: crate::store::Op::GetRefresh
//! [`Op::RotateRefresh`]: crate::store::Op::RotateRefresh
//! [`Op::RefreshPublic`]: crate::store::Op::RefreshPublic
//! [`RefreshFamily`]: crate::store::RefreshFamily

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::client_auth::Presented as Credentials;
use crate::engine::Engine;
use crate::error::OAuthError;
use crate::flow::Cx;
use crate::issue::{self, Issue};
use crate::openid::IdTokenFacts;
use crate::params::Params;
use crate::refresh_token::{self, Presented, Standing};
use crate::resource;
use crate::response::Response;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::store::{Effect, RefreshGrant, Successor};

/// What the token endpoint read of the presented refresh token before authenticating the client.
#[derive(Default)]
pub(super) struct Found<'a> {
    /// The presented token, parsed. `None` when the request names no single `refresh_token`:
    /// [`refresh`] then refuses it, after the client checks, as it would without this read.
    presented: Option<Presented>,
    /// Its family as the store had it ([`RefreshGrant::client`] is why it is read first).
    pub(super) grant: Option<&'a RefreshGrant>,
    /// The token the store already rotated it into ([`Op::RefreshPublic`](crate::store::Op)).
    rotated_into: Option<Secret>,
}

/// Reads the presented refresh token's family: with [`Op::GetRefresh`](crate::store::Op), or for
/// a public client's plain refresh with [`Op::RefreshPublic`](crate::store::Op), which also
/// rotates it (the module docs say when).
pub(super) fn find<'a>(
    engine: &Engine,
    cx: &mut Cx<'a>,
    params: &Params,
    credentials: &Credentials,
) -> Result<Found<'a>, Halt> {
    let Ok(Some(token)) = params.get("refresh_token") else {
        return Ok(Found::default());
    };
    let token = Presented::parse(token);
    let plain = !params.contains("scope") && !params.contains("resource");
    let one_step = match &token.names {
        Some(names) if plain && names.public && credentials.secret_hash.is_none() => Some(names),
        _ => None,
    };
    let Some(names) = one_step else {
        let grant = ask::refresh(cx, &token)?;
        return Ok(Found {
            presented: Some(token),
            grant,
            rotated_into: None,
        });
    };
    let new = refresh_token::mint(cx.rng(), names.grant_id, &names.family, true);
    let successor = successor(engine, cx.now(), &new);
    let (grant, rotated) = ask::refresh_public(
        cx,
        names.grant_id,
        token.hash,
        &credentials.client_id,
        successor,
    )?;
    Ok(Found {
        presented: Some(token),
        grant,
        rotated_into: rotated.then_some(new),
    })
}

/// The token a rotation at `now` into the secret `new` stores: a full lifetime.
fn successor(engine: &Engine, now: u64, new: &Secret) -> Successor {
    Successor {
        hash: new.hash(),
        issued_at: now,
        expires_at: now + engine.config().refresh_token_ttl_secs,
    }
}

/// The refresh of `found` ([`find`]'s answer) for the authenticated `client`.
pub(super) fn refresh(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    params: &Params,
    found: Found<'_>,
) -> Result<Response, Halt> {
    params.require("refresh_token")?;
    let requested = params
        .get("scope")?
        .map(Scope::parse)
        .transpose()
        .map_err(|_| OAuthError::invalid_scope("scope is malformed"))?;
    let now = cx.now();
    let Found {
        presented,
        grant: found,
        rotated_into,
    } = found;
    let unknown = || OAuthError::invalid_grant("the refresh token is unknown, expired or revoked");
    let (Some(presented), Some(found)) = (presented, found) else {
        return Err(unknown().into());
    };
    let (family, grant) = (&found.family, &found.grant);
    // What the token is to its family. Rotated with the read, it was the current token: the
    // family the store answered is the one after the rotation.
    let standing = match rotated_into {
        Some(_) => Standing::Current,
        None => presented.standing(family),
    };
    if standing == Standing::Foreign {
        return Err(unknown().into());
    }
    if grant.client_id != client.client_id {
        return Err(
            OAuthError::invalid_grant("the refresh token was issued to another client").into(),
        );
    }
    let revoke = Effect::RevokeGrant {
        grant_id: grant.grant_id,
        at: now,
        keep_until: engine.revocation_keep_until(now),
    };
    if grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the grant was revoked").into());
    }
    // The token it replaced is a retry (of the rotation that made the current one) within the
    // grace window; any other token of the family is reuse.
    let retry = match standing {
        Standing::Current => false,
        Standing::Previous(at)
            if now < at.saturating_add(engine.config().refresh_reuse_grace_secs) =>
        {
            true
        }
        Standing::Previous(_) | Standing::Older | Standing::Foreign => {
            cx.effect(revoke);
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; the grant is revoked",
            )
            .into());
        }
    };
    if rotated_into.is_none() && now >= family.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired").into());
    }
    // The status came with the token (`RefreshGrant::status`): no second read.
    let access_revoked_at =
        match super::current_credentials(&found.status, grant.credential_version) {
            Ok(at) => at,
            Err(stale) => {
                cx.effect(revoke.clone());
                return Err(stale.into());
            }
        };
    let scope = match &requested {
        Some(s) if !s.is_subset_of(&grant.scope) => {
            return Err(
                OAuthError::invalid_scope("the requested scope exceeds the granted scope").into(),
            )
        }
        Some(s) => s,
        None => &grant.scope,
    };
    // Before any rotation: a refused `resource` must leave the refresh token as it was.
    let config = engine.config();
    let audience = resource::requested(params, &config.resources, scope)
        .and_then(|r| resource::audience(r, &grant.resources, &config.resources, scope))?;
    let threshold = engine.config().refresh_renewal_threshold_secs;
    let rotate = retry || client.is_public() || family.expires_at.saturating_sub(now) < threshold;
    let new_token = if let Some(new) = rotated_into {
        // Rotated with the read: only a public client's current token is, so this is the
        // rotation the lines below would make.
        Some(new)
    } else if rotate {
        let secret = presented.successor_family(cx.rng());
        let new = refresh_token::mint(cx.rng(), grant.grant_id, &secret, client.is_public());
        let swapped = ask::rotate_refresh(
            cx,
            ask::Rotation {
                grant_id: grant.grant_id,
                // On a retry, the successor whose answer was lost is replaced in turn.
                from: family.current,
                new: successor(engine, now, &new),
                family: secret.hash(),
                retry,
            },
        )?;
        if !swapped {
            cx.effect(revoke);
            return Err(OAuthError::invalid_grant(if retry {
                "the refresh token was already used; the grant is revoked"
            } else {
                "the refresh token was used concurrently; the grant is revoked"
            })
            .into());
        }
        Some(new)
    } else {
        None
    };
    let issue = Issue {
        grant_id: grant.grant_id,
        subject: &grant.subject,
        client_id: &client.client_id,
        scope,
        credential_version: grant.credential_version,
        access_revoked_at,
        audience: &audience,
        authorized: &grant.resources,
        format: client.access_token_format,
        // A new ID token without a nonce and with the original authentication time (OpenID
        // Connect Core §12.2).
        id_token: Some(IdTokenFacts::new(
            client,
            None,
            grant.auth_time,
            &grant.amr,
            grant.sid.as_deref(),
        )),
    };
    Ok(issue::token_response(
        engine,
        now,
        &issue,
        new_token.as_ref(),
        cx.rng(),
    )?)
}
