//! OpenID Connect Front-Channel Logout 1.0: when a browser session ends on the logout page, the
//! page the browser sees next loads each relying party's `frontchannel_logout_uri` in an iframe,
//! so that the relying party ends its own session (its cookies are sent with that request).
//!
//! As with back-channel logout ([`crate::backchannel_logout`]) the engine keeps no sessions: the
//! embedder names the clients the ended session gave ID tokens and its `sid`, and
//! [`Engine::frontchannel_logout`] answers with the URLs to frame, one per client that registered
//! a `frontchannel_logout_uri`, with `iss` and `sid` added to its query when the session has a
//! `sid` (§2: the OP MAY always send them, and MUST when the client registered
//! `frontchannel_logout_session_required`; such a client is left out for a session without one).
//! Only an embedder that renders them may turn on
//! [`crate::config::Config::frontchannel_logout`], which makes discovery advertise
//! `frontchannel_logout_supported` and `frontchannel_logout_session_supported` and registration
//! accept the two members.
//!
//! Registration (§2): `frontchannel_logout_uri` follows the rules of `backchannel_logout_uri`
//! (https, or http on the loopback IP literals; no fragment; bounded), and its scheme, host and
//! port must be those of one of the client's registered redirect URIs (§2: the same site as
//! the client, so registering cannot make the logout page frame somebody else's).
//! `frontchannel_logout_session_required` is a boolean.

use serde_json::{Map, Value};

use crate::ask::{self, Halt};
use crate::backchannel_logout::{validate_channel, Channel, MAX_CLIENTS};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};

/// The registration member naming the page to frame (§2).
pub const FRONTCHANNEL_LOGOUT_URI: &str = "frontchannel_logout_uri";

/// The registration member asking for `iss` and `sid` in the framed URL (§2).
pub const FRONTCHANNEL_LOGOUT_SESSION_REQUIRED: &str = "frontchannel_logout_session_required";

const FRONT: Channel = Channel {
    uri: FRONTCHANNEL_LOGOUT_URI,
    session_required: FRONTCHANNEL_LOGOUT_SESSION_REQUIRED,
    name: "front-channel",
    section: "Front-Channel Logout 2",
};

/// Checks the front-channel logout members of a registration and keeps them in `metadata`
/// (see the module docs): `redirect_uris` are the client's, already checked; `enabled` is
/// [`crate::config::Config::frontchannel_logout`], `max_len` its `max_metadata_string_len`.
pub fn validate(
    body: &Map<String, Value>,
    metadata: &mut Map<String, Value>,
    redirect_uris: &[String],
    enabled: bool,
    max_len: usize,
) -> Result<(), OAuthError> {
    let Some(uri) = validate_channel(&FRONT, body, metadata, enabled, max_len)? else {
        return Ok(());
    };
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
    let same_site = origin(uri).is_some_and(|o| {
        o.is_tuple() && redirect_uris.iter().any(|r| origin(r).as_ref() == Some(&o))
    });
    if !same_site {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!(
                "{FRONTCHANNEL_LOGOUT_URI} {uri} must have the scheme, host and port of one of \
                 the client's redirect_uris (Front-Channel Logout 2)"
            ),
        ));
    }
    Ok(())
}

/// One page to frame: the client and the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutFrame {
    /// The client told.
    pub client_id: String,
    /// Its `frontchannel_logout_uri`, with `iss` and `sid` when the session has a `sid`.
    pub url: String,
}

/// The procedure behind [`Engine::frontchannel_logout`].
#[derive(Debug)]
pub struct FrontchannelLogout {
    engine: Engine,
    sid: Option<String>,
    clients: Vec<String>,
}

impl Engine {
    /// The pages to frame now that the session `sid` ended, for the clients it gave ID tokens
    /// (the first [`MAX_CLIENTS`], each once): one per client that registered a
    /// `frontchannel_logout_uri` (see the module docs). Unknown clients are skipped.
    pub fn frontchannel_logout(
        &self,
        sid: Option<&str>,
        clients: &[String],
        now: u64,
    ) -> Flow<FrontchannelLogout> {
        let mut unique: Vec<String> = Vec::new();
        for c in clients.iter().take(MAX_CLIENTS) {
            if !unique.contains(c) {
                unique.push(c.clone());
            }
        }
        Flow::new(
            FrontchannelLogout {
                engine: self.clone(),
                sid: sid.map(str::to_owned),
                clients: unique,
            },
            now,
        )
    }
}

impl Procedure for FrontchannelLogout {
    type Output = Vec<LogoutFrame>;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Vec<LogoutFrame>, Suspend> {
        let config = self.engine.config();
        let mut frames = Vec::new();
        if !config.frontchannel_logout {
            return Ok(frames);
        }
        for client_id in &self.clients {
            let client = match ask::client(cx, config, client_id) {
                Ok(Some(c)) => c,
                Ok(None) | Err(Halt::Error(_)) => continue,
                Err(Halt::Suspend(s)) => return Err(s),
            };
            let Some(mut url) = client
                .metadata
                .get(FRONTCHANNEL_LOGOUT_URI)
                .and_then(Value::as_str)
                .and_then(|u| url::Url::parse(u).ok())
            else {
                continue;
            };
            let session_required = client
                .metadata
                .get(FRONTCHANNEL_LOGOUT_SESSION_REQUIRED)
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match &self.sid {
                Some(sid) => {
                    url.query_pairs_mut()
                        .append_pair("iss", &config.issuer)
                        .append_pair("sid", sid);
                }
                None if session_required => continue,
                None => {}
            }
            frames.push(LogoutFrame {
                client_id: client.client_id.clone(),
                url: url.into(),
            });
        }
        Ok(frames)
    }
}
