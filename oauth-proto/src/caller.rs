//! Who is calling introspection or revocation: client authentication outside the token endpoint.
//!
//! The rules are the token endpoint's ([`client_auth`]): Basic or body credentials for confidential
//! clients, `client_id` alone for public ones, never two methods at once. One difference: a request
//! naming no client at all is 401 `invalid_client` (RFC 7662 §2.1 and RFC 7009 §2.1 answer an
//! unauthenticated caller as a failed authentication), not `invalid_request`.

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::client_auth;
use crate::config::Config;
use crate::error::OAuthError;
use crate::flow::Cx;
use crate::http::FormRequest;
use crate::params::Params;

/// Authenticates (or, for a public client, identifies) the caller.
pub(crate) fn authenticate<'a>(
    cx: &mut Cx<'a>,
    config: &Config,
    request: &FormRequest,
    params: &Params,
) -> Result<&'a ClientRecord, Halt> {
    if request.request().authorization.is_none()
        && params.get("client_id")?.is_none()
        && params.get("client_secret")?.is_none()
    {
        return Err(OAuthError::invalid_client("client authentication is required").into());
    }
    let presented = request.presented()?;
    let stored = ask::client(cx, config, &presented.client_id)?;
    Ok(client_auth::verify(presented, stored, cx.now())?)
}
