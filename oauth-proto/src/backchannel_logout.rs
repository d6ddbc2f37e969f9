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

use serde_json::{Map, Value};

use crate::ask::{self, Halt};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::jose::logout_token::LogoutTokenClaims;
use crate::secret::Secret;

/// The registration member naming where logout tokens go (§2.2).
pub const BACKCHANNEL_LOGOUT_URI: &str = "backchannel_logout_uri";

/// The registration member asking for `sid` in every logout token (§2.2).
pub const BACKCHANNEL_LOGOUT_SESSION_REQUIRED: &str = "backchannel_logout_session_required";

/// A logout token's life: enough for delivery and clock skew, too short to be worth replaying.
pub const LOGOUT_TOKEN_TTL_SECS: u64 = 120;

/// At most this many clients per [`Engine::backchannel_logout`] (the embedder's own bound on a
/// session's clients should be lower).
pub const MAX_CLIENTS: usize = 64;

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

/// The procedure behind [`Engine::backchannel_logout`].
#[derive(Debug)]
pub struct BackchannelLogout {
    engine: Engine,
    subject: String,
    sid: Option<String>,
    clients: Vec<String>,
}

impl Engine {
    /// The logout tokens to deliver now that the session `sid` of `subject` ended, for the
    /// clients it gave ID tokens (the first [`MAX_CLIENTS`], each once): one per client that
    /// registered a `backchannel_logout_uri` (see the module docs). Unknown clients are skipped.
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
    type Output = Vec<LogoutNotice>;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Vec<LogoutNotice>, Suspend> {
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
