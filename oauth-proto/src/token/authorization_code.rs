//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 9700 §4.8).
//!
//! The code is taken atomically, so of concurrent redemptions exactly one succeeds. A code presented
//! a second time is refused with `invalid_grant` and, when the replay comes from the code's own client
//! with a correct verifier, every token issued from it is revoked (RFC 6749 §10.5). A replay with a
//! wrong verifier or from another client revokes nothing, so a thief cannot use a stolen code to
//! cancel the victim's session (OAuth 2.1 §7.5.2).
//!
//! A code whose request had a `code_challenge` needs the `code_verifier` (missing: `invalid_request`,
//! the choice recorded for OAuth 2.1's unnamed error; wrong: `invalid_grant`); a verifier sent for a
//! code without a challenge is `invalid_request` (PKCE downgrade). `redirect_uri` must be repeated,
//! identically, when the authorization request carried it (RFC 6749 §4.1.3), and whenever it is sent
//! it must match. `resource` (RFC 8707) must be within what the authorization request named
//! (`invalid_target`); see [`crate::resource`].

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::engine::Engine;
use crate::error::OAuthError;
use crate::flow::Cx;
use crate::issue::{self, Issue};
use crate::openid::IdTokenFacts;
use crate::params::Params;
use crate::pkce;
use crate::resource;
use crate::response::Response;
use crate::secret::SecretHash;
use crate::store::{CodeRecord, CodeTake, Effect};

pub(super) fn redeem(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<Response, Halt> {
    let code = params.require("code")?;
    let verifier = params.get("code_verifier")?;
    let redirect_uri = params.get("redirect_uri")?;
    if verifier.is_some_and(|v| !pkce::is_valid_verifier_syntax(v)) {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 unreserved characters",
        )
        .into());
    }
    let now = cx.now();
    let record = match ask::take_code(cx, SecretHash::of(code))? {
        CodeTake::Missing => {
            return Err(OAuthError::invalid_grant("the code is unknown or expired").into())
        }
        CodeTake::Used(record) => {
            if record.client_id == client.client_id && verifier_matches(record, verifier) {
                cx.effect(Effect::RevokeGrant {
                    grant_id: record.grant_id,
                    at: now,
                    keep_until: engine.revocation_keep_until(now),
                });
            }
            return Err(OAuthError::invalid_grant(
                "the code was already used; tokens issued from it are revoked",
            )
            .into());
        }
        CodeTake::Taken(record) => record,
    };
    if now >= record.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired").into());
    }
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client").into());
    }
    match (record.redirect_uri_sent, redirect_uri) {
        (true, None) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required: the authorization request had one",
            )
            .into())
        }
        (_, Some(sent)) if sent != record.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            )
            .into())
        }
        _ => {}
    }
    match (&record.challenge, verifier) {
        (Some(_), None) => {
            return Err(OAuthError::invalid_request("code_verifier is required").into())
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "code_verifier was sent but the authorization request had no code_challenge",
            )
            .into())
        }
        (Some(_), Some(_)) if !verifier_matches(record, verifier) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            )
            .into())
        }
        _ => {}
    }
    let access_revoked_at = super::require_current_credentials(
        cx,
        record.grant_id,
        &record.subject,
        record.credential_version,
    )?;
    let config = engine.config();
    let requested = resource::requested(params, &config.resources, &record.scope)?;
    let audience = resource::audience(
        requested,
        &record.resources,
        &config.resources,
        &record.scope,
    )?;
    let issue = Issue {
        grant_id: record.grant_id,
        subject: &record.subject,
        client_id: &client.client_id,
        scope: &record.scope,
        credential_version: record.credential_version,
        access_revoked_at,
        audience: &audience,
        authorized: &record.resources,
        format: client.access_token_format,
        id_token: Some(IdTokenFacts::new(
            client,
            record.nonce.as_deref(),
            record.auth_time,
            &record.amr,
            record.sid.as_deref(),
        )),
    };
    Ok(issue::new_grant(engine, cx, client, &issue)?)
}

/// Whether the verifier satisfies the code's challenge (a code without a challenge needs none).
fn verifier_matches(record: &CodeRecord, verifier: Option<&str>) -> bool {
    match (&record.challenge, verifier) {
        (Some(c), Some(v)) => pkce::verify(c.method, &c.value, v),
        (None, None) => true,
        _ => false,
    }
}
