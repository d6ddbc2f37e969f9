//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5): polling.
//!
//! Every answer is decided on the device record, found only by the device code's hash:
//! - pending: `authorization_pending`, or `slow_down` when the device polls sooner than its current
//!   interval after its previous poll; each `slow_down` adds 5 seconds to the interval, persisted in
//!   the record with a compare-and-swap, so the penalty holds for every later poll. A poll that loses
//!   the swap to a concurrent one is also too fast: `slow_down`;
//! - denied: `access_denied`; past its lifetime: `expired_token`;
//! - approved: the record is swapped to consumed and tokens are issued, so of concurrent polls
//!   exactly one gets them; every later poll is `invalid_grant`.
//!
//! A device code of another client is `invalid_grant`, and touches nothing.

use crate::ask::{self, Halt};
use crate::client::ClientRecord;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::Cx;
use crate::issue::{self, Issue};
use crate::openid::IdTokenFacts;
use crate::params::Params;
use crate::resource;
use crate::response::Response;
use crate::secret::SecretHash;
use crate::store::{DeviceLookup, DeviceRecord, DeviceStatus};

/// Seconds added to the polling interval by each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: u64 = 5;

pub(super) fn poll(
    engine: &Engine,
    cx: &mut Cx<'_>,
    client: &ClientRecord,
    params: &Params,
) -> Result<Response, Halt> {
    let code = params.require("device_code")?;
    let now = cx.now();
    let by = DeviceLookup::DeviceCode(SecretHash::of(code));
    let Some(record) = ask::device(cx, by)? else {
        return Err(OAuthError::invalid_grant("the device code is unknown").into());
    };
    if record.client_id != client.client_id {
        return Err(
            OAuthError::invalid_grant("the device code was issued to another client").into(),
        );
    }
    let revision = record.revision;
    match (record.status.clone(), now >= record.expires_at) {
        (DeviceStatus::Consumed, _) => {
            Err(OAuthError::invalid_grant("the device code was already used").into())
        }
        (_, true) => Err(OAuthError::new(
            ErrorCode::ExpiredToken,
            "the device code has expired; start a new device authorization",
        )
        .into()),
        (DeviceStatus::Denied, false) => {
            Err(OAuthError::new(ErrorCode::AccessDenied, "the user denied the request").into())
        }
        (DeviceStatus::Pending, false) => {
            let too_soon = record
                .last_poll
                .is_some_and(|t| now < t.saturating_add(record.interval));
            let interval = if too_soon {
                record.interval + SLOW_DOWN_STEP_SECS
            } else {
                record.interval
            };
            let next = || DeviceRecord {
                interval,
                last_poll: Some(now),
                revision: revision + 1,
                ..record.clone()
            };
            let swapped = ask::swap_device(cx, revision, next)?;
            if too_soon || !swapped {
                return Err(OAuthError::new(
                    ErrorCode::SlowDown,
                    format!("polling too fast: wait at least {interval} seconds between requests"),
                )
                .into());
            }
            Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not yet approved the request",
            )
            .into())
        }
        (
            DeviceStatus::Approved {
                subject,
                credential_version,
                grant_id,
                auth_time,
                amr,
            },
            false,
        ) => {
            let scope = record.scope.clone();
            let next = || DeviceRecord {
                status: DeviceStatus::Consumed,
                last_poll: Some(now),
                revision: revision + 1,
                ..record.clone()
            };
            if !ask::swap_device(cx, revision, next)? {
                return Err(
                    OAuthError::invalid_grant("the device code was used concurrently").into(),
                );
            }
            let access_revoked_at =
                super::require_current_credentials(cx, grant_id, &subject, credential_version)?;
            let config = engine.config();
            let audience =
                resource::requested(params, &config.resources, &scope).and_then(|r| {
                    resource::audience(r, &record.resources, &config.resources, &scope)
                })?;
            let issue = Issue {
                grant_id,
                subject: &subject,
                client_id: &client.client_id,
                scope: &scope,
                credential_version,
                access_revoked_at,
                audience: &audience,
                authorized: &record.resources,
                format: client.access_token_format,
                id_token: Some(IdTokenFacts::new(client, None, auth_time, &amr, None)),
            };
            Ok(issue::new_grant(engine, cx, client, &issue)?)
        }
    }
}
