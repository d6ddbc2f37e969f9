//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 9207, RFC 9700).
//!
//! A request ends in one of three ways:
//! - [`AuthorizeOutcome::ErrorPage`]: the client is unknown or the redirect URI is missing, invalid
//!   or unregistered. The user sees the error; the browser is never sent to an unverified URI.
//! - [`AuthorizeOutcome::Redirect`]: anything else wrong, sent back to the verified redirect URI
//!   with `error`, `error_description`, `state` and `iss`.
//! - [`AuthorizeOutcome::Consent`]: a valid request. The embedder authenticates the user, shows the
//!   consent, and calls [`Engine::approve`] or [`Engine::deny`] with the [`PendingAuthorization`].

use serde::{Deserialize, Serialize};

use crate::ask::{self, Halt};
use crate::client::GrantType;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Procedure, Suspend};
use crate::issue::{new_grant_id, SECRET_BYTES};
use crate::params::Params;
use crate::pkce::{self, PkceMethod};
use crate::redirect;
use crate::response::Response;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::store::{CodeRecord, Effect, PkceChallenge};

/// A valid authorization request waiting for the user's decision. It is plain data, so the embedder
/// may keep it server-side or round-trip it through its own pages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: String,
    /// The client's display name (self-asserted for registered clients).
    pub client_name: String,
    /// Where the response goes (already verified).
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (the token request must then repeat it).
    pub redirect_uri_sent: bool,
    /// The scope to consent to.
    pub scope: Scope,
    /// The client's `state`, echoed back exactly.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub challenge: Option<PkceChallenge>,
}

impl PendingAuthorization {
    /// The redirect URI's host, which a consent page shows.
    pub fn redirect_host(&self) -> String {
        url::Url::parse(&self.redirect_uri)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(str::to_owned)
                    .or_else(|| Some(u.scheme().to_owned()))
            })
            .unwrap_or_default()
    }
}

/// How an authorization request ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// Show an error to the user; never redirect.
    ErrorPage(OAuthError),
    /// Send the browser back to the client with an error.
    Redirect(Response),
    /// Ask the user.
    Consent(PendingAuthorization),
}

/// The authorization request procedure.
#[derive(Debug)]
pub struct Authorize {
    pub(crate) engine: Engine,
    pub(crate) query: Vec<u8>,
}

impl Procedure for Authorize {
    type Output = AuthorizeOutcome;

    fn run(&self, cx: &mut Cx<'_>) -> Result<AuthorizeOutcome, Suspend> {
        ask::finish(self.handle(cx), AuthorizeOutcome::ErrorPage)
    }
}

impl Authorize {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<AuthorizeOutcome, Halt> {
        let params = Params::parse(&self.query)?;
        let client_id = params.require("client_id")?;
        let requested_redirect = params.get("redirect_uri")?;
        let client = ask::client(cx, client_id)?
            .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
        if requested_redirect.is_some_and(|r| !redirect::is_absolute_without_fragment(r)) {
            return Err(OAuthError::invalid_request(
                "redirect_uri must be absolute and without a fragment",
            )
            .into());
        }
        let redirect_uri = redirect::resolve(&client.redirect_uris, requested_redirect).ok_or_else(|| {
            OAuthError::invalid_request(if requested_redirect.is_some() {
                "redirect_uri is not registered for this client"
            } else {
                "redirect_uri is required because the client has several (or no) registered redirect URIs"
            })
        })?;
        // From here on the redirect URI is verified, so errors go back to the client.
        let state = redirect::single(&params, "state");
        let back = |e: OAuthError| {
            AuthorizeOutcome::Redirect(self.engine.error_redirect(
                302,
                &redirect_uri,
                state.as_deref(),
                &e,
            ))
        };
        if params.get("state").is_err() {
            return Ok(back(OAuthError::invalid_request(
                "parameter state was sent more than once",
            )));
        }
        match self.validate(&params, client) {
            Ok((scope, challenge)) => Ok(AuthorizeOutcome::Consent(PendingAuthorization {
                client_id: client.client_id.clone(),
                client_name: client.name.clone(),
                redirect_uri: redirect_uri.clone(),
                redirect_uri_sent: requested_redirect.is_some(),
                scope,
                state: state.clone(),
                challenge,
            })),
            Err(e) => Ok(back(e)),
        }
    }

    fn validate(
        &self,
        params: &Params,
        client: &crate::client::ClientRecord,
    ) -> Result<(Scope, Option<PkceChallenge>), OAuthError> {
        let config = self.engine.config();
        match params.require("response_type")? {
            "code" => {}
            other => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    format!("response_type {other} is not supported; use code"),
                ))
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(OAuthError::unauthorized_client(
                "this client may not use the authorization code grant",
            ));
        }
        let scope = crate::scope::requested(params.get("scope")?, &client.scope)?;
        let challenge = match params.get("code_challenge")? {
            Some(value) => {
                let method = match params.get("code_challenge_method")? {
                    None => PkceMethod::Plain,
                    Some(m) => PkceMethod::parse(m).ok_or_else(|| {
                        OAuthError::invalid_request("code_challenge_method must be S256")
                    })?,
                };
                if method == PkceMethod::Plain && !config.allow_plain_pkce {
                    return Err(OAuthError::invalid_request(
                        "code_challenge_method plain is not allowed; use S256",
                    ));
                }
                if !pkce::is_valid_verifier_syntax(value) {
                    return Err(OAuthError::invalid_request(
                        "code_challenge must be 43 to 128 unreserved characters",
                    ));
                }
                Some(PkceChallenge {
                    method,
                    value: value.to_owned(),
                })
            }
            None => {
                if params.get("code_challenge_method")?.is_some() {
                    return Err(OAuthError::invalid_request(
                        "code_challenge_method sent without code_challenge",
                    ));
                }
                let required = client.is_public()
                    || client.require_pkce
                    || config.require_pkce_for_confidential;
                if required {
                    return Err(OAuthError::invalid_request(
                        "code_challenge is required (PKCE with S256)",
                    ));
                }
                None
            }
        };
        Ok((scope, challenge))
    }
}

/// Approving a pending authorization: issue a code and redirect to the client.
#[derive(Debug)]
pub struct Approve {
    pub(crate) engine: Engine,
    pub(crate) pending: PendingAuthorization,
    pub(crate) subject: String,
}

impl Procedure for Approve {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        let p = &self.pending;
        let server_error = |e: OAuthError| {
            self.engine
                .error_redirect(303, &p.redirect_uri, p.state.as_deref(), &e)
        };
        ask::finish(self.handle(cx), server_error)
    }
}

impl Approve {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let p = &self.pending;
        let credential_version = ask::credential_version(cx, &self.subject)?;
        let now = cx.now();
        let code = Secret::generate(cx.rng(), SECRET_BYTES);
        let grant_id = new_grant_id(cx.rng());
        cx.effect(Effect::PutCode(CodeRecord {
            hash: code.hash(),
            grant_id,
            client_id: p.client_id.clone(),
            subject: self.subject.clone(),
            scope: p.scope.clone(),
            redirect_uri: p.redirect_uri.clone(),
            redirect_uri_sent: p.redirect_uri_sent,
            challenge: p.challenge.clone(),
            credential_version,
            issued_at: now,
            expires_at: now + self.engine.config().authorization_code_ttl_secs,
        }));
        let mut params = vec![("code", code.expose())];
        if let Some(state) = &p.state {
            params.push(("state", state));
        }
        params.push(("iss", &self.engine.config().issuer));
        let location = redirect::with_params(&p.redirect_uri, &params).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::ServerError,
                "the redirect URI cannot carry parameters",
            )
        })?;
        Ok(Response::redirect(303, location))
    }
}
