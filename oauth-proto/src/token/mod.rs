//! The token endpoint (RFC 6749 §3.2, §5): parse, authenticate the client, dispatch on `grant_type`.
//!
//! Order of checks: form framing (POST, content type, size, no secret in the query), then
//! `grant_type` (missing: `invalid_request`; unknown, including `password` and `implicit`:
//! `unsupported_grant_type`), then client authentication (`invalid_client`), then whether this
//! client may use the grant (`unauthorized_client`), then the grant itself.
//!
//! What is read for the client authentication may carry what the grant needs, so that a request
//! asks the store once where it would ask twice: a refresh reads its token first, with the
//! grant's client; a `client_credentials` request reads its client with its grant's revocation
//! status. Neither answer is looked at beyond the client before the client is authenticated and
//! allowed the grant, so the order of checks and their answers stay as above.

mod authorization_code;
mod client_credentials;
mod device_code;

pub use client_credentials::grant_id as client_credentials_grant_id;
mod refresh;

use crate::ask::{self, Halt};
use crate::client::GrantType;
use crate::client_auth;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Procedure, Suspend};
use crate::http::FormRequest;
use crate::response::Response;
use crate::store::{GrantId, RevocationStatus};

/// The token endpoint procedure.
#[derive(Debug)]
pub struct TokenEndpoint {
    pub(crate) engine: Engine,
    pub(crate) request: FormRequest,
}

impl Procedure for TokenEndpoint {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

impl TokenEndpoint {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let params = self.request.form()?;
        let name = params.require("grant_type")?;
        let grant = GrantType::parse(name).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {name} is not supported"),
            )
        })?;
        let presented = self.request.presented()?;
        // A refresh reads its token first, because that answer carries the grant's client
        // (`RefreshGrant::client`): a client refreshing its own grant is authenticated without a
        // second read. The checks keep their order (nothing of the token is looked at before the
        // client is authenticated and allowed the grant).
        let found = match grant {
            GrantType::RefreshToken => refresh::find(&self.engine, cx, params, presented)?,
            _ => refresh::Found::default(),
        };
        // A client_credentials request reads its client with its grant's revocation status.
        let cc = match grant {
            GrantType::ClientCredentials => {
                client_credentials::read_client(&self.engine, cx, &presented.client_id)?
            }
            _ => None,
        };
        let known = match (&found.grant, cc) {
            (Some(f), _) => Some((f.grant.client_id.as_str(), f.client.as_deref())),
            (None, Some((record, _))) => Some((presented.client_id.as_str(), record)),
            (None, None) => None,
        };
        let stored = ask::client_known(cx, self.engine.config(), &presented.client_id, known)?;
        let client = client_auth::verify(presented, stored, cx.now())?;
        if !client.allows(grant) || (grant == GrantType::ClientCredentials && client.is_public()) {
            return Err(OAuthError::unauthorized_client(format!(
                "this client may not use the {} grant",
                grant.as_str()
            ))
            .into());
        }
        let issued = match grant {
            GrantType::AuthorizationCode => {
                authorization_code::redeem(&self.engine, cx, client, params)
            }
            GrantType::RefreshToken => refresh::refresh(&self.engine, cx, client, params, found),
            GrantType::ClientCredentials => {
                let status = cc.map(|(_, status)| status);
                client_credentials::issue(&self.engine, cx, client, params, status)
            }
            GrantType::DeviceCode => device_code::poll(&self.engine, cx, client, params),
        }?;
        mark_used(cx, client);
        Ok(issued)
    }
}

/// A dynamically registered client that obtains its first token is in use: its record stops
/// expiring ([`crate::store::Effect::MarkClientUsed`]). Only while the record still expires, so
/// token requests of clients in use write nothing for it.
fn mark_used(cx: &mut Cx<'_>, client: &crate::client::ClientRecord) {
    if client.unused_expires_at.is_some() {
        cx.effect(crate::store::Effect::MarkClientUsed {
            client_id: client.client_id.clone(),
        });
    }
}

/// Reads the grant's revocation status before issuing from it. Refuses to issue from a grant
/// approved before the subject's credentials last changed (a password change or `revoke_subject`
/// that raced with the approval, the redemption or an earlier refresh): access tokens from such a
/// grant would fail validation anyway; refusing here also stops a grant created just after the
/// revocation from living on through its refresh token. Returns when the grant's access was last
/// revoked, which the new access token must postdate ([`Issue::access_revoked_at`]).
///
/// [`Issue::access_revoked_at`]: crate::issue::Issue::access_revoked_at
fn require_current_credentials(
    cx: &mut Cx<'_>,
    grant_id: GrantId,
    subject: &str,
    approved_version: u32,
) -> Result<Option<u64>, Halt> {
    let status = ask::revocation_status(cx, grant_id, subject)?;
    Ok(current_credentials(&status, approved_version)?)
}

/// [`require_current_credentials`] on a status already read (a refresh token's
/// [`RefreshGrant::status`](crate::store::RefreshGrant::status)).
fn current_credentials(
    status: &RevocationStatus,
    approved_version: u32,
) -> Result<Option<u64>, OAuthError> {
    if status.credential_version > approved_version {
        return Err(OAuthError::invalid_grant(
            "the user's credentials changed after this grant was approved",
        ));
    }
    Ok(status.access_revoked_at)
}
