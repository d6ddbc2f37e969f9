//! The device verification step (RFC 8628 §3.3, §5.1, §5.4): the user enters a user code, sees which
//! client asks for what, and approves or denies.
//!
//! [`Engine::device_verify`] turns a typed code into a [`PendingDevice`] carrying the client's name
//! and the scope, so the embedder can show them (a remote phishing defence: the user sees who they
//! are authorizing) before calling [`Engine::device_approve`] for the authenticated subject or
//! [`Engine::device_deny`]. Both are compare-and-swaps on the device record, so a decision is taken
//! once; the device learns it at its next poll. Neither trusts the [`PendingDevice`] beyond naming
//! the record: its fields are private and only the engine makes one, and the decision re-reads the
//! record and acts only while it is still pending, unexpired, and for the same client and scope
//! the user was shown.
//!
//! Brute force (RFC 8628 §5.1): an [`DeviceVerifyOutcome::InvalidCode`] is a failed guess. The
//! embedder asks the engine's limiter before each entry and counts each invalid one against the
//! typing address ([`crate::throttle`]; the reference server's device page does), so a guessing
//! address is slowed and then refused, while right codes are never counted: many people behind
//! one address (an office) connect as many devices as they like.

use crate::access_token;
use crate::ask::{self, Halt};
use crate::authentication::Authentication;
use crate::device::{format_user_code, normalize_user_code, user_code_hash};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::issue::new_grant_id;
use crate::scope::Scope;
use crate::secret::SecretHash;
use crate::store::{DeviceLookup, DeviceRecord, DeviceStatus};

/// A device authorization waiting for the user's decision. Only the engine makes one (from a
/// user code that was right), and nothing can change it: the fields are read through methods.
/// [`Engine::device_approve`] and [`Engine::device_deny`] read the device record again and act
/// only if it is still the same request: pending, unexpired, for the same client and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingDevice {
    client_id: String,
    client_name: String,
    scope: Scope,
    user_code: String,
    device_code_hash: SecretHash,
    expires_at: u64,
}

impl PendingDevice {
    /// The requesting client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Its display name (self-asserted for registered clients), to show the user.
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// The scope the device asks for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The user code in display form (`XXXX-XXXX`), to show for confirmation (RFC 8628 §3.3.1).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// When the request expires.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The bytes this value owns on the heap (its strings), for embedders that bound the memory
    /// of waiting pages.
    pub fn heap_bytes(&self) -> usize {
        self.client_id.capacity()
            + self.client_name.capacity()
            + self.scope.as_str().len()
            + self.user_code.capacity()
    }
}

/// What a user-code entry leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceVerifyOutcome {
    /// A valid code: show the client and scope, then approve or deny.
    Consent(PendingDevice),
    /// No pending request has this code (mistyped, already used, or its client gone): a failed
    /// guess, to count against the typing address.
    InvalidCode(String),
    /// The code was right but its request expired; start again on the device.
    Expired,
    /// The store answered out of contract (a server fault).
    Error(OAuthError),
}

/// What a decision led to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceDecisionOutcome {
    /// Approved: the device gets its tokens at its next poll.
    Approved,
    /// Denied: the device gets `access_denied`.
    Denied,
    /// The request expired before the decision.
    Expired,
    /// The request was already decided (or consumed, or is gone); nothing changed.
    NotPending,
    /// The store answered out of contract (a server fault).
    Error(OAuthError),
}

/// Entering a user code.
#[derive(Debug)]
pub struct DeviceVerify {
    engine: Engine,
    user_code: String,
}

/// Approving or denying a pending device request.
#[derive(Debug)]
pub struct DeviceDecision {
    pending: PendingDevice,
    /// `Some((subject, sign-in))` approves for that subject, who signed in as it says; `None`
    /// denies.
    subject: Option<(String, Authentication)>,
}

impl Engine {
    /// The user typed `user_code` on the verification page (see the module docs for limiting
    /// guesses).
    pub fn device_verify(&self, user_code: &str, now: u64) -> Flow<DeviceVerify> {
        Flow::new(
            DeviceVerify {
                engine: self.clone(),
                user_code: user_code.to_owned(),
            },
            now,
        )
    }

    /// Approves a pending device request for an authenticated subject (1 to 1024 bytes), who
    /// signed in as `authn` says (or at the time a `u64` gives; a time after `now` is taken as
    /// `now`): the ID token's `auth_time` and `amr`. Its `sid` is not used: the ID token goes to
    /// the device, which took no part in the browser session of the verification page.
    pub fn device_approve(
        &self,
        pending: PendingDevice,
        subject: &str,
        authn: impl Into<Authentication>,
        now: u64,
    ) -> Result<Flow<DeviceDecision>, OAuthError> {
        if subject.is_empty() || subject.len() > access_token::MAX_SUBJECT {
            return Err(OAuthError::new(
                ErrorCode::ServerError,
                "the subject must be 1 to 1024 bytes",
            ));
        }
        Ok(Flow::new(
            DeviceDecision {
                pending,
                subject: Some((subject.to_owned(), authn.into().checked(now)?)),
            },
            now,
        ))
    }

    /// Denies a pending device request.
    pub fn device_deny(&self, pending: PendingDevice, now: u64) -> Flow<DeviceDecision> {
        Flow::new(
            DeviceDecision {
                pending,
                subject: None,
            },
            now,
        )
    }
}

impl Procedure for DeviceVerify {
    type Output = DeviceVerifyOutcome;

    fn run(&self, cx: &mut Cx<'_>) -> Result<DeviceVerifyOutcome, Suspend> {
        ask::finish(self.handle(cx), DeviceVerifyOutcome::Error)
    }
}

impl DeviceVerify {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<DeviceVerifyOutcome, Halt> {
        let Some(code) = normalize_user_code(&self.user_code) else {
            return Ok(DeviceVerifyOutcome::InvalidCode(
                "a code has 8 letters, like WDJB-MJHT".to_owned(),
            ));
        };
        let unknown = || {
            DeviceVerifyOutcome::InvalidCode(
                "no pending device request has this code; check the code shown on the device"
                    .to_owned(),
            )
        };
        let Some(record) = ask::device(cx, DeviceLookup::UserCode(user_code_hash(&code)))? else {
            return Ok(unknown());
        };
        if cx.now() >= record.expires_at {
            return Ok(DeviceVerifyOutcome::Expired);
        }
        if record.status != DeviceStatus::Pending {
            return Ok(DeviceVerifyOutcome::InvalidCode(
                "this code was already used".to_owned(),
            ));
        }
        let Some(client) = ask::client(cx, self.engine.config(), &record.client_id)? else {
            return Ok(unknown());
        };
        Ok(DeviceVerifyOutcome::Consent(PendingDevice {
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            scope: record.scope.clone(),
            user_code: format_user_code(&code),
            device_code_hash: record.device_code_hash,
            expires_at: record.expires_at,
        }))
    }
}

impl Procedure for DeviceDecision {
    type Output = DeviceDecisionOutcome;

    fn run(&self, cx: &mut Cx<'_>) -> Result<DeviceDecisionOutcome, Suspend> {
        ask::finish(self.handle(cx), DeviceDecisionOutcome::Error)
    }
}

impl DeviceDecision {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<DeviceDecisionOutcome, Halt> {
        let by = DeviceLookup::DeviceCode(self.pending.device_code_hash);
        let Some(record) = ask::device(cx, by)? else {
            return Ok(DeviceDecisionOutcome::NotPending);
        };
        // The same request as the one shown: same client, same scope.
        if record.client_id != self.pending.client_id || record.scope != self.pending.scope {
            return Ok(DeviceDecisionOutcome::NotPending);
        }
        if cx.now() >= record.expires_at {
            return Ok(DeviceDecisionOutcome::Expired);
        }
        if record.status != DeviceStatus::Pending {
            return Ok(DeviceDecisionOutcome::NotPending);
        }
        let (status, outcome) = match &self.subject {
            Some((subject, authn)) => (
                DeviceStatus::Approved {
                    subject: subject.clone(),
                    credential_version: ask::credential_version(cx, subject)?,
                    grant_id: new_grant_id(cx.rng()),
                    auth_time: Some(authn.auth_time),
                    amr: authn.amr.clone(),
                },
                DeviceDecisionOutcome::Approved,
            ),
            None => (DeviceStatus::Denied, DeviceDecisionOutcome::Denied),
        };
        let revision = record.revision;
        let next = || DeviceRecord {
            status,
            revision: revision + 1,
            ..record.clone()
        };
        Ok(if ask::swap_device(cx, revision, next)? {
            outcome
        } else {
            DeviceDecisionOutcome::NotPending
        })
    }
}
