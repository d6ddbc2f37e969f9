//! `grant_type=client_credentials` (RFC 6749 §4.4): confidential clients only, no refresh token.
//!
//! Nothing is written: the tokens belong to a per-client grant whose id is derived from the client
//! id, so revoking the client (or one of these tokens, RFC 7009) revokes them through the
//! revocation view without any record per token. The grant's revocation status is read before
//! issuing, like every grant's, so a token issued in the same second after such a revocation is
//! issued after it (see [`issue`](crate::issue)) rather than born dead. `resource` (RFC 8707) may
//! name any configured resource that accepts part of the token's scope ([`crate::resource`]).
//!
//! The grant and its subject (the client) follow from the presented client id alone, so the
//! status is read together with the client, before client authentication
//! ([`Op::GetClientWithStatus`](crate::store::Op::GetClientWithStatus), [`read_client`]): one
//! store op per request instead of two, which on a networked store is one round trip instead of
//! two. The status is only used once the client is authenticated and allowed the grant, so the
//! checks and their answers are those of any grant.

use sha2::{Digest, Sha256};

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::engine::Engine;
use crate::flow::Cx;
use crate::issue::{self, Issue};
use crate::params::Params;
use crate::resource;
use crate::response::Response;
use crate::store::{GrantId, RevocationStatus};

/// The grant id shared by a client's `client_credentials` tokens.
pub fn grant_id(client_id: &str) -> GrantId {
    let digest = Sha256::new()
        .chain_update(b"oauth-proto client_credentials grant\0")
        .chain_update(client_id.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    GrantId(id)
}

/// What a `client_credentials` request reads before authenticating its client: the client as
/// registered, with the revocation status of its grant, in one op. `None` for a client the engine
/// describes by its metadata document, which is fetched rather than stored ([`ask::client`]); the
/// status is then read when issuing.
pub(super) fn read_client<'a>(
    engine: &Engine,
    cx: &mut Cx<'a>,
    client_id: &str,
) -> Result<Option<(Option<&'a ClientRecord>, RevocationStatus)>, Halt> {
    if ask::by_document(engine.config(), client_id) {
        return Ok(None);
    }
    ask::client_with_status(cx, client_id, grant_id(client_id), client_id).map(Some)
}

/// Issues the tokens of `client`'s grant; `status` is that grant's revocation status as
/// [`read_client`] read it, or `None` to read it now.
pub(super) fn issue(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    params: &Params,
    status: Option<RevocationStatus>,
) -> Result<Response, Halt> {
    let scope = crate::scope::requested(params.get("scope")?, &client.scope)?;
    let resources = &engine.config().resources;
    let audience = resource::requested(params, resources, &scope)
        .and_then(|r| resource::audience(r, &[], resources, &scope))?;
    let grant_id = grant_id(&client.client_id);
    let status = match status {
        Some(status) => status,
        None => ask::revocation_status(cx, grant_id, &client.client_id)?,
    };
    let issue = Issue {
        grant_id,
        subject: &client.client_id,
        client_id: &client.client_id,
        scope: &scope,
        credential_version: status.credential_version,
        access_revoked_at: status.access_revoked_at,
        audience: &audience,
        authorized: &[],
        format: client.access_token_format,
        // No user, so no ID token, whatever the scope.
        id_token: None,
    };
    let now = cx.now();
    Ok(issue::token_response(engine, now, &issue, None, cx.rng())?)
}
