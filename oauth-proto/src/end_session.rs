//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a relying party sends the
//! browser to the `end_session_endpoint` to end the user's session at this server, and may ask
//! to have it sent back afterwards.
//!
//! The engine checks the request; the embedder keeps the browser sessions, so it ends one and
//! shows the pages. What is checked (each failure `invalid_request` with a description, shown
//! to the user on a page, never redirected: nothing about a failed request proves the
//! redirect is the client's):
//!
//! - `id_token_hint`, when sent: an ID token this server signed (any key of its set, rotated-out
//!   ones included) for this issuer; it may be expired (§2: the user's session, not the token's
//!   life, is what ends). It names the client (its `aud`) and the user the RP believes is signed
//!   in, and its `sid` the session (Back-Channel Logout §2.1), which the embedder compares with
//!   the browser's: a hint from another session must not end this one.
//! - `client_id`, when sent: with a hint, one of the hint's audiences.
//! - `post_logout_redirect_uri`, when sent: needs the client (`client_id` or the hint), and must
//!   equal one of the client's registered `post_logout_redirect_uris` exactly (registration
//!   accepts and checks them like `redirect_uris`, see [`crate::client_metadata`]). `state` is
//!   then appended to it, echoed byte for byte (at most
//!   [`MAX_STATE_BYTES`]).
//! - `logout_hint` and `ui_locales` are accepted and not used.
//!
//! Why the embedder asks the user before ending the session: the request is a plain link any
//! site can send a browser to, so ending a session on it alone would let any page sign a user
//! out (a "logout CSRF"). The specification (§2) says the OP SHOULD ask; the reference server
//! always does, and its confirmation form carries the session's CSRF token.

use crate::ask::{self, Halt};
use crate::authorize::MAX_STATE_BYTES;
use crate::client::ClientRecord;
use crate::engine::Engine;
use crate::error::OAuthError;
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::HttpRequest;
use crate::params::Params;

/// The registration member listing a client's logout redirect URIs (RP-Initiated Logout §3.1).
pub const POST_LOGOUT_REDIRECT_URIS: &str = "post_logout_redirect_uris";

/// `GET` or `POST` of the `end_session_endpoint`.
#[derive(Debug)]
pub struct EndSession {
    engine: Engine,
    request: HttpRequest,
}

impl Engine {
    /// Starts checking a logout request (its query on a `GET`, its form on a `POST`).
    pub fn end_session(&self, request: HttpRequest, now: u64) -> Flow<EndSession> {
        Flow::new(
            EndSession {
                engine: self.clone(),
                request,
            },
            now,
        )
    }
}

/// How a logout request was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndSessionOutcome {
    /// A valid request: ask the user, end the session, then follow [`Logout::redirect`].
    Logout(Logout),
    /// An invalid one: show the error to the user; redirect nowhere.
    Invalid(OAuthError),
}

/// A checked logout request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logout {
    client_id: Option<String>,
    client_name: Option<String>,
    hint_subject: Option<String>,
    hint_sid: Option<String>,
    redirect: Option<String>,
}

impl Logout {
    /// The client that asked, if the request named one (`client_id` or the hint's audience).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Its display name (self-asserted for registered clients), when it exists.
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// The user the `id_token_hint` names, if one was sent.
    pub fn hint_subject(&self) -> Option<&str> {
        self.hint_subject.as_deref()
    }

    /// The session the `id_token_hint` names (its `sid`), if it names one.
    pub fn hint_sid(&self) -> Option<&str> {
        self.hint_sid.as_deref()
    }

    /// Where to send the browser once the session ended: the registered
    /// `post_logout_redirect_uri` with `state` appended, if the request asked for one.
    pub fn redirect(&self) -> Option<&str> {
        self.redirect.as_deref()
    }
}

impl Procedure for EndSession {
    type Output = EndSessionOutcome;

    fn run(&self, cx: &mut Cx<'_>) -> Result<EndSessionOutcome, Suspend> {
        match self.handle(cx) {
            Ok(logout) => Ok(EndSessionOutcome::Logout(logout)),
            Err(Halt::Error(e)) => Ok(EndSessionOutcome::Invalid(e)),
            Err(Halt::Suspend(s)) => Err(s),
        }
    }
}

impl EndSession {
    fn params(&self) -> Result<Params, OAuthError> {
        if self.request.method.eq_ignore_ascii_case("POST") {
            self.request.form(self.engine.config().max_body_bytes)
        } else {
            Params::parse(self.request.query.as_bytes())
        }
    }

    fn handle(&self, cx: &mut Cx<'_>) -> Result<Logout, Halt> {
        let config = self.engine.config();
        let params = self.params()?;
        let hint = match params.get("id_token_hint")? {
            Some(token) => Some(crate::openid::verify_hint(
                token,
                &self.engine.signing_keys(),
                &config.issuer,
            )?),
            None => None,
        };
        let named = params.get("client_id")?;
        let client_id = match (named, &hint) {
            (Some(id), Some(h)) if !h.aud.contains(id) => {
                return Err(OAuthError::invalid_request(
                    "client_id is not the client the id_token_hint was issued to",
                )
                .into())
            }
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(h)) => h.azp.clone().or_else(|| match &h.aud {
                crate::jose::id_token::Audience::One(a) => Some(a.clone()),
                crate::jose::id_token::Audience::Many(_) => None,
            }),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => ask::client(cx, config, id)?,
            None => None,
        };
        let state = params.get("state")?;
        if state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
            return Err(OAuthError::invalid_request(format!(
                "state is longer than {MAX_STATE_BYTES} bytes"
            ))
            .into());
        }
        let redirect = match params.get("post_logout_redirect_uri")? {
            None => None,
            Some(uri) => Some(redirect_to(uri, client_id.as_deref(), client, state)?),
        };
        Ok(Logout {
            client_name: client.map(|c| c.name.clone()),
            client_id,
            hint_sid: hint.as_ref().and_then(|h| h.sid.clone()),
            hint_subject: hint.map(|h| h.sub),
            redirect,
        })
    }
}

/// `uri` with `state` appended, if it is one of the client's registered logout redirects.
fn redirect_to(
    uri: &str,
    client_id: Option<&str>,
    client: Option<&ClientRecord>,
    state: Option<&str>,
) -> Result<String, OAuthError> {
    let Some(client) = client else {
        return Err(OAuthError::invalid_request(match client_id {
            None => "post_logout_redirect_uri needs client_id or id_token_hint to say whose it is",
            Some(_) => "post_logout_redirect_uri names an unknown client",
        }));
    };
    let registered = client
        .metadata
        .get(POST_LOGOUT_REDIRECT_URIS)
        .and_then(serde_json::Value::as_array)
        .is_some_and(|uris| uris.iter().any(|u| u.as_str() == Some(uri)));
    if !registered {
        return Err(OAuthError::invalid_request(
            "post_logout_redirect_uri is not one the client registered",
        ));
    }
    let mut url = url::Url::parse(uri).map_err(|_| {
        OAuthError::invalid_request("post_logout_redirect_uri is not an absolute URI")
    })?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok(url.into())
}
