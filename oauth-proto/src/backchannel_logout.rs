//! OpenID Connect Back-Channel Logout 1.0: when a user's session at this server ends, each
//! relying party that got ID tokens from it is told, server to server, with a signed Logout
//! Token ([`crate::jose::logout_token`]) POSTed to its registered `backchannel_logout_uri`.
//!
//! The engine keeps no sessions and sends nothing: the embedder knows when a session ends, which
//! clients it gave codes and the session's `sid` ([`crate::authentication`]); it asks
//! [`Engine::backchannel_logout`] for the notices, one per client that registered a
//! `backchannel_logout_uri`, and delivers them (form-encoded `logout_token`, §2.5). Only an
//! embedder that does so may turn on [`crate::config::Config::backchannel_logout`], which makes
//! discovery advertise `backchannel_logout_supported` and `backchannel_logout_session_supported`
//! and registration accept the two members below.
//!
//! Registration (§2.2): `backchannel_logout_uri` is an absolute `https` URL, or `http` on the
//! loopback IP literals (the redirect URI rules, [`crate::client_metadata::check_redirect_uri`]),
//! with no fragment (§2.2), no user information, at most `max_metadata_string_len` bytes;
//! `backchannel_logout_session_required` is a boolean. Each failure is
//! `invalid_client_metadata` naming the rule. Where the embedder may send (public addresses
//! only, in the reference server) is its own policy, checked when it sends.
//!
//! A logout token carries `sub` and, when the session has one, `sid`; a client that registered
//! `backchannel_logout_session_required` is not told about a session without `sid` (it could not
//! tell which session ended). Tokens expire [`LOGOUT_TOKEN_TTL_SECS`] after issue and are signed
//! with the client's ID token algorithm.
//!
//! # The session's refresh tokens (§2.7)
//!
//! "Refresh tokens issued without the `offline_access` property to a session being logged out
//! SHOULD be revoked. Refresh tokens issued with the `offline_access` property normally SHOULD
//! NOT be revoked." A grant remembers the session it was approved in
//! ([`GrantRecord::sid`](crate::store::GrantRecord::sid)), so the same flow first asks the store
//! for the session's live grants ([`Op::GrantsOfSession`](crate::store::Op::GrantsOfSession))
//! and revokes ([`Effect::RevokeGrant`]) each one whose consented scope lacks
//! [`OFFLINE_ACCESS`]: its refresh tokens die, and so do its access tokens (the revocation view).
//! A grant with `offline_access` is the user's explicit "keep working while I am away" and stays.
//!
//! This is part of ending the session, not of telling relying parties: it happens whether or not
//! [`Config::backchannel_logout`](crate::config::Config::backchannel_logout) is on and whether
//! or not any client registered a URI, so the embedder runs this flow on every session end. A
//! session without `sid` (an embedder without sessions) names no grants, so nothing is revoked.
//! The read is bounded: pages of [`MAX_SESSION_GRANTS`], at most [`MAX_SESSION_GRANT_PAGES`] of
//! them (the rest, if a session ever approved that many live grants, stay; `more` says so).

use serde_json::{Map, Value};

use crate::ask::{self, Halt};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::jose::logout_token::LogoutTokenClaims;
use crate::scope::OFFLINE_ACCESS;
use crate::secret::Secret;
use crate::store::{Effect, GrantId, MAX_SESSION_GRANTS};

/// The registration member naming where logout tokens go (§2.2).
pub const BACKCHANNEL_LOGOUT_URI: &str = "backchannel_logout_uri";

/// The registration member asking for `sid` in every logout token (§2.2).
pub const BACKCHANNEL_LOGOUT_SESSION_REQUIRED: &str = "backchannel_logout_session_required";

/// A logout token's life: enough for delivery and clock skew, too short to be worth replaying.
pub const LOGOUT_TOKEN_TTL_SECS: u64 = 120;

/// At most this many clients per [`Engine::backchannel_logout`] (the embedder's own bound on a
/// session's clients should be lower).
pub const MAX_CLIENTS: usize = 64;

/// At most this many pages of [`MAX_SESSION_GRANTS`] grants are read per session end.
pub const MAX_SESSION_GRANT_PAGES: usize = 10;

fn meta(d: String) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

/// The two registration members of a logout channel (back- or front-channel).
pub(crate) struct Channel {
    /// The URI member.
    pub(crate) uri: &'static str,
    /// The boolean member asking for `sid`.
    pub(crate) session_required: &'static str,
    /// "back-channel" or "front-channel", for messages.
    pub(crate) name: &'static str,
    /// The specification's section on the URI, for messages.
    pub(crate) section: &'static str,
}

/// Back-channel logout's members.
const BACK: Channel = Channel {
    uri: BACKCHANNEL_LOGOUT_URI,
    session_required: BACKCHANNEL_LOGOUT_SESSION_REQUIRED,
    name: "back-channel",
    section: "Back-Channel Logout 2.2",
};

/// Checks the back-channel logout members of a registration body (or an administrator's
/// change) and keeps them in `metadata` (see the module docs): `enabled` is
/// [`crate::config::Config::backchannel_logout`], `max_len` its `max_metadata_string_len`.
pub fn validate(
    body: &Map<String, Value>,
    metadata: &mut Map<String, Value>,
    enabled: bool,
    max_len: usize,
) -> Result<(), OAuthError> {
    validate_channel(&BACK, body, metadata, enabled, max_len).map(|_| ())
}

/// Checks a channel's two members (the URI as [`check_uri`] says, the other a boolean) and
/// keeps them in `metadata`; gives the URI kept, if any.
pub(crate) fn validate_channel<'b>(
    channel: &Channel,
    body: &'b Map<String, Value>,
    metadata: &mut Map<String, Value>,
    enabled: bool,
    max_len: usize,
) -> Result<Option<&'b str>, OAuthError> {
    let uri = body.get(channel.uri).filter(|v| !v.is_null());
    let required = body.get(channel.session_required).filter(|v| !v.is_null());
    if (uri.is_some() || required.is_some()) && !enabled {
        return Err(meta(format!(
            "this server does not send {} logout; register without {} and {}",
            channel.name, channel.uri, channel.session_required
        )));
    }
    let kept = match uri {
        None => None,
        Some(Value::String(uri)) => {
            check_uri(channel, uri, max_len)?;
            metadata.insert(channel.uri.to_owned(), uri.clone().into());
            Some(uri.as_str())
        }
        Some(_) => return Err(meta(format!("{} must be a string", channel.uri))),
    };
    if let Some(required) = required {
        let Value::Bool(required) = required else {
            return Err(meta(format!(
                "{} must be true or false",
                channel.session_required
            )));
        };
        metadata.insert(channel.session_required.to_owned(), (*required).into());
    }
    Ok(kept)
}

/// A logout URI: the redirect URI rules, minus private-use schemes, as
/// `invalid_client_metadata`.
fn check_uri(channel: &Channel, uri: &str, max_len: usize) -> Result<(), OAuthError> {
    let name = channel.uri;
    if uri.len() > max_len {
        return Err(meta(format!("{name} is longer than {max_len} bytes")));
    }
    if uri.contains('#') {
        return Err(meta(format!(
            "{name} {uri} must not contain a fragment ({})",
            channel.section
        )));
    }
    if !uri.starts_with("https:") && !uri.starts_with("http:") {
        return Err(meta(format!(
            "{name} {uri} must be an https URL (or http on the loopback addresses 127.0.0.1 \
             and [::1])"
        )));
    }
    crate::client_metadata::check_redirect_uri(uri)
        .map_err(|e| meta(e.description.replacen("redirect URI", name, 1)))
}

/// One logout token to deliver: POST `logout_token` to `uri`.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutNotice {
    /// The client told.
    pub client_id: String,
    /// Its `backchannel_logout_uri`.
    pub uri: String,
    /// The signed logout token (a credential for this logout only: never log it).
    pub logout_token: String,
}

impl std::fmt::Debug for LogoutNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutNotice")
            .field("client_id", &self.client_id)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// What ending a session did: the logout tokens to deliver, and the grants revoked (§2.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// One per client to tell (empty when back-channel logout is off).
    pub notices: Vec<LogoutNotice>,
    /// The grants revoked: those of the session without `offline_access`.
    pub revoked: Vec<GrantId>,
    /// True when the session had more live grants than were read (see the module docs), or the
    /// store answered out of contract: some may be left unrevoked.
    pub more: bool,
}

/// The procedure behind [`Engine::backchannel_logout`].
#[derive(Debug)]
pub struct BackchannelLogout {
    engine: Engine,
    subject: String,
    sid: Option<String>,
    clients: Vec<String>,
}

impl Engine {
    /// Ends the session `sid` of `subject`: revokes its grants without `offline_access` (always,
    /// see the module docs) and gives the logout tokens to deliver for the clients it gave ID
    /// tokens (the first [`MAX_CLIENTS`], each once): one per client that registered a
    /// `backchannel_logout_uri`. Unknown clients are skipped. Run it on every session end.
    pub fn backchannel_logout(
        &self,
        subject: &str,
        sid: Option<&str>,
        clients: &[String],
        now: u64,
    ) -> Flow<BackchannelLogout> {
        let mut unique: Vec<String> = Vec::new();
        for c in clients.iter().take(MAX_CLIENTS) {
            if !unique.contains(c) {
                unique.push(c.clone());
            }
        }
        Flow::new(
            BackchannelLogout {
                engine: self.clone(),
                subject: subject.to_owned(),
                sid: sid.map(str::to_owned),
                clients: unique,
            },
            now,
        )
    }
}

impl Procedure for BackchannelLogout {
    type Output = SessionEnd;

    fn run(&self, cx: &mut Cx<'_>) -> Result<SessionEnd, Suspend> {
        let (revoked, more) = self.revoke_session_grants(cx)?;
        let notices = self.notices(cx)?;
        Ok(SessionEnd {
            notices,
            revoked,
            more,
        })
    }
}

impl BackchannelLogout {
    /// Revokes the session's live grants without `offline_access` (§2.7): the grants revoked,
    /// and whether some may be left.
    fn revoke_session_grants(&self, cx: &mut Cx<'_>) -> Result<(Vec<GrantId>, bool), Suspend> {
        let mut revoked = Vec::new();
        let Some(sid) = self.sid.as_deref() else {
            return Ok((revoked, false));
        };
        let now = cx.now();
        let keep_until = self.engine.revocation_keep_until(now);
        let mut after = None;
        for _ in 0..MAX_SESSION_GRANT_PAGES {
            let page = match ask::grants_of_session(cx, &self.subject, sid, after) {
                Ok(page) => page,
                Err(Halt::Suspend(s)) => return Err(s),
                // Out of contract: what was read is revoked, the rest cannot be known.
                Err(Halt::Error(_)) => return Ok((revoked, true)),
            };
            for grant in page.iter().filter(|g| !g.scope.contains(OFFLINE_ACCESS)) {
                cx.effect(Effect::RevokeGrant {
                    grant_id: grant.grant_id,
                    at: now,
                    keep_until,
                });
                revoked.push(grant.grant_id);
            }
            match page.last() {
                Some(last) if page.len() >= MAX_SESSION_GRANTS => after = Some(last.grant_id),
                _ => return Ok((revoked, false)),
            }
        }
        Ok((revoked, true))
    }

    /// The logout tokens for the session's clients (see the module docs).
    fn notices(&self, cx: &mut Cx<'_>) -> Result<Vec<LogoutNotice>, Suspend> {
        let config = self.engine.config();
        let mut notices = Vec::new();
        if !config.backchannel_logout {
            return Ok(notices);
        }
        for client_id in &self.clients {
            let client = match ask::client(cx, config, client_id) {
                Ok(Some(c)) => c,
                // Gone, or a document that no longer fetches: nobody to tell.
                Ok(None) | Err(Halt::Error(_)) => continue,
                Err(Halt::Suspend(s)) => return Err(s),
            };
            let Some(uri) = client
                .metadata
                .get(BACKCHANNEL_LOGOUT_URI)
                .and_then(Value::as_str)
            else {
                continue;
            };
            let session_required = client
                .metadata
                .get(BACKCHANNEL_LOGOUT_SESSION_REQUIRED)
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if session_required && self.sid.is_none() {
                continue;
            }
            let keys = self.engine.signing_keys();
            let Some(key) = keys.signing_key(crate::openid::id_token_alg(client)) else {
                continue;
            };
            let jti = Secret::generate(cx.rng(), 16).expose().to_owned();
            let claims = LogoutTokenClaims::new(
                &config.issuer,
                &client.client_id,
                Some(&self.subject),
                self.sid.as_deref(),
                jti,
                cx.now(),
                LOGOUT_TOKEN_TTL_SECS,
            );
            notices.push(LogoutNotice {
                client_id: client.client_id.clone(),
                uri: uri.to_owned(),
                logout_token: claims.sign(key, cx.rng()),
            });
        }
        Ok(notices)
    }
}
