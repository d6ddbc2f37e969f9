//! Who is calling introspection or revocation: client authentication outside the token endpoint.
//!
//! The rules are the token endpoint's ([`client_auth`]): Basic or body credentials for confidential
//! clients, `client_id` alone for public ones, never two methods at once. One difference: a request
//! naming no client at all is 401 `invalid_client` (RFC 7662 §2.1 and RFC 7009 §2.1 answer an
//! unauthenticated caller as a failed authentication), not `invalid_request`.
//!
//! Both endpoints then look a token up, and an access token's lookup needs one more read, its
//! grant's revocation status, whose grant and subject the token names without the store
//! ([`TokenLookup::status_to_read`](crate::token_lookup::TokenLookup::status_to_read)). When they
//! are known before the caller is read, the caller's client is read with that status in one op
//! ([`Op::GetClientWithStatus`](crate::store::Op::GetClientWithStatus)): one round trip to a
//! networked store instead of two. The status is returned alongside and only looked at once the
//! caller is authenticated, so authentication's checks and answers come first as ever. A caller
//! described by its metadata document is fetched, not stored, so its status is read later.

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::client_auth;
use crate::config::Config;
use crate::error::OAuthError;
use crate::flow::Cx;
use crate::http::FormRequest;
use crate::params::Params;
use crate::store::{GrantId, RevocationStatus};

/// Authenticates (or, for a public client, identifies) the caller. `status_of` names the grant
/// and subject whose revocation status to read with the caller's client, if any; it is asked only
/// for a request presenting some client, and the status read is returned (`None` when none was).
pub(crate) fn authenticate<'a, 's>(
    cx: &mut Cx<'a>,
    config: &Config,
    request: &FormRequest,
    params: &Params,
    status_of: impl FnOnce() -> Option<(GrantId, &'s str)>,
) -> Result<(&'a ClientRecord, Option<RevocationStatus>), Halt> {
    if request.request().authorization.is_none()
        && params.get("client_id")?.is_none()
        && params.get("client_secret")?.is_none()
    {
        return Err(OAuthError::invalid_client("client authentication is required").into());
    }
    let presented = request.presented()?;
    let client_id = presented.client_id.as_str();
    let (stored, status) = match status_of() {
        Some((grant_id, subject)) if !ask::by_document(config, client_id) => {
            let (stored, status) = ask::client_with_status(cx, client_id, grant_id, subject)?;
            (stored, Some(status))
        }
        _ => (ask::client(cx, config, client_id)?, None),
    };
    Ok((client_auth::verify(presented, stored, cx.now())?, status))
}
