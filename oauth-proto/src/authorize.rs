//! The authorization endpoint (RFC 6749 §4.1.1, RFC 7636, RFC 9207, RFC 9700).
//!
//! A request ends in one of four ways:
//! - [`AuthorizeOutcome::ErrorPage`]: the client is unknown or the redirect URI is missing, invalid
//!   or unregistered. The user sees the error; the browser is never sent to an unverified URI.
//! - [`AuthorizeOutcome::Redirect`]: anything else wrong, for a client an administrator
//!   registered: sent back to the verified redirect URI with `error`, `error_description`,
//!   `state` and `iss` (RFC 6749 §4.1.2.1).
//! - [`AuthorizeOutcome::ErrorLink`]: the same errors for a client that registered itself
//!   (RFC 7591; its record has a registration access token) or is known by its metadata document
//!   ([`crate::client_id_document`]). Anyone may register any redirect URI,
//!   so redirecting such a client's errors at once would make this server an open redirector
//!   (RFC 9700 §4.11.2): a link to `/authorize?client_id=…&response_type=x` would bounce a victim
//!   to the attacker's site behind this server's trusted name. The embedder shows the error and
//!   offers the error redirect as a link, naming its host, that the user may choose to follow.
//! - [`AuthorizeOutcome::Consent`]: a valid request. The embedder asks [`Engine::proceed`] what
//!   comes next for the user signed in on the browser ([`crate::interaction`]: the sign-in form,
//!   the consent page, or an answer without a page), and after the consent page calls
//!   [`Engine::approve`] or [`Engine::deny`] with the [`PendingAuthorization`].
//!
//! No `error_description` carries request text: every one is a fixed sentence, so neither a
//! redirect nor an error page can be made to say what an attacker wrote. `state` is at most
//! [`MAX_STATE_BYTES`]; a longer one is `invalid_request` (and not echoed), so what a page keeps
//! and what a redirect carries stay small.
//!
//! # Why the decision re-validates
//! A [`PendingAuthorization`] is what the engine validated at one moment; the user may decide
//! minutes later. Its fields are private and it has no constructor and no `Deserialize`, so only
//! this module makes one, and the embedder cannot alter it. And [`Engine::approve`] and
//! [`Engine::deny`] are flows that read the client again before answering: it must still exist,
//! still be allowed the authorization code grant, still have the redirect URI registered (by the
//! same `redirect::resolve` rules, so a client that had one URI and now has several is refused
//! when the request named none), still be allowed the whole scope, and still get PKCE if it now
//! requires it. A client deleted or changed between the page and the decision never gets a code,
//! and never a redirect to a URI it no longer has: when the redirect URI still stands and an
//! administrator added the client, the error goes back to it (303); otherwise the user sees an
//! error page ([`DecisionOutcome::ErrorPage`]).
//!
//! `resource` (RFC 8707) may be repeated; each must name a configured protected resource that
//! accepts part of the scope, or the request fails with `invalid_target`, sent back like the
//! other errors after the redirect URI is verified. The code records them ([`crate::resource`]).
//!
//! # OpenID Connect
//! `nonce` (OpenID Connect Core §3.1.2.1) is kept exactly as sent, through the pending
//! authorization and the code, and echoed in the ID token; it is at most [`MAX_NONCE_BYTES`]
//! bytes and sent once (else `invalid_request`; an empty one counts as absent, like every
//! parameter). Request objects are not supported and say so (§3.1.2.6, §6): `request` is `request_not_supported`, `request_uri`
//! `request_uri_not_supported`, and the `claims` parameter (§5.5) `invalid_request`; discovery
//! advertises all three as unsupported, so a relying party that reads it never sends them.
//! `prompt`, `max_age`, `login_hint` and `id_token_hint` are checked here with the rest (a bad one
//! is `invalid_request`, sent back like the other errors) and kept in the pending authorization;
//! what they decide is [`crate::interaction`]'s. An approval is remembered
//! ([`crate::store::ConsentRecord`]), so the next request of the client for the same scope or less
//! needs no consent page.

use serde::Serialize;

use crate::ask::{self, Halt};
use crate::authentication::Authentication;
use crate::client::{ClientRecord, GrantType};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Procedure, Suspend};
use crate::interaction::Interaction;
use crate::issue::{new_grant_id, SECRET_BYTES};
use crate::params::Params;
use crate::pkce::{self, PkceMethod};
use crate::redirect;
use crate::response::Response;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::store::{CodeRecord, ConsentRecord, Effect, PkceChallenge};

/// The longest `state` accepted, in bytes (after decoding). Clients use a few dozen bytes; the
/// bound keeps what a waiting page holds and what a redirect carries small.
pub const MAX_STATE_BYTES: usize = 1024;

/// The longest `nonce` accepted, in bytes. Relying parties send a few dozen random characters;
/// the bound keeps what a code record and an ID token carry small.
pub const MAX_NONCE_BYTES: usize = 255;

/// A valid authorization request waiting for the user's decision. Only the engine makes one, and
/// nothing can change it: the fields are read through methods. Keep it server-side between the
/// consent page and the decision; [`Engine::approve`] and [`Engine::deny`] check it against the
/// client's current registration anyway (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingAuthorization {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    redirect_uri_sent: bool,
    scope: Scope,
    state: Option<String>,
    challenge: Option<PkceChallenge>,
    resources: Vec<String>,
    nonce: Option<String>,
    interaction: Interaction,
}

impl PendingAuthorization {
    /// The client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client's display name (self-asserted for registered clients).
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// Where the response goes (verified against the client's registration).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether the request carried `redirect_uri` (the token request must then repeat it).
    pub fn redirect_uri_sent(&self) -> bool {
        self.redirect_uri_sent
    }

    /// The scope to consent to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The client's `state` (at most [`MAX_STATE_BYTES`]), echoed back exactly.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The PKCE challenge.
    pub fn challenge(&self) -> Option<&PkceChallenge> {
        self.challenge.as_ref()
    }

    /// The protected resources the request named (RFC 8707), checked against the configuration;
    /// empty when it named none (see [`crate::resource`]).
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The OpenID Connect `nonce` (at most [`MAX_NONCE_BYTES`]), echoed in the ID token exactly.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// What the request said about asking the user: `prompt`, `max_age`, `login_hint`,
    /// `id_token_hint` ([`crate::interaction`]).
    pub fn interaction(&self) -> &Interaction {
        &self.interaction
    }

    /// The redirect URI's host, which a consent page shows.
    pub fn redirect_host(&self) -> String {
        host_of(&self.redirect_uri)
    }

    /// The bytes this value owns on the heap (its strings), for embedders that bound the memory
    /// of waiting pages.
    pub fn heap_bytes(&self) -> usize {
        self.client_id.capacity()
            + self.client_name.capacity()
            + self.redirect_uri.capacity()
            + self.scope.as_str().len()
            + self.state.as_ref().map_or(0, String::capacity)
            + self.challenge.as_ref().map_or(0, |c| c.value.capacity())
            + self.resources.iter().map(String::capacity).sum::<usize>()
            + self.nonce.as_ref().map_or(0, String::capacity)
            + self.interaction.heap_bytes()
    }

    /// Checks the request against the client as it is now (see the module docs).
    fn recheck(&self, client: Option<&ClientRecord>, config: &Config) -> Result<(), OAuthError> {
        let changed = |what: &'static str| OAuthError::invalid_request(what);
        let client = client.ok_or_else(|| changed("the client no longer exists"))?;
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(OAuthError::unauthorized_client(
                "this client may no longer use the authorization code grant",
            ));
        }
        if !self.redirect_still_resolves(client) {
            return Err(changed(
                "the redirect URI is no longer registered for this client",
            ));
        }
        if !self.scope.is_subset_of(&client.scope) {
            return Err(OAuthError::invalid_scope(
                "the client may no longer ask for this scope",
            ));
        }
        if self.challenge.is_none() && pkce_required(client, config) {
            return Err(changed("this client now requires PKCE"));
        }
        Ok(())
    }
}

impl PendingAuthorization {
    /// Whether the client's registration still leads this request to the same redirect URI.
    fn redirect_still_resolves(&self, client: &ClientRecord) -> bool {
        let requested = self.redirect_uri_sent.then_some(self.redirect_uri.as_str());
        redirect::resolve(&client.redirect_uris, requested).as_deref()
            == Some(self.redirect_uri.as_str())
    }
}

/// The host of a URI (its scheme when it has none, as for a private-use scheme), for display.
fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(str::to_owned)
                .or_else(|| Some(u.scheme().to_owned()))
        })
        .unwrap_or_default()
}

fn pkce_required(client: &ClientRecord, config: &Config) -> bool {
    client.is_public() || client.require_pkce || config.require_pkce_for_confidential
}

/// An error for a self-registered client: shown to the user, with the error redirect offered as a
/// link they may follow (never followed automatically).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorLink {
    /// The error, to show.
    pub error: OAuthError,
    /// The client's redirect URI with `error`, `error_description`, `state` and `iss`: the link.
    pub location: String,
    /// The redirect URI's host, to name the link's destination.
    pub host: String,
}

/// How an authorization request ends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizeOutcome {
    /// Show an error to the user; never redirect.
    ErrorPage(OAuthError),
    /// Send the browser back to the client with an error (an administrator's client).
    Redirect(Response),
    /// Show the error, with a link back to the client the user may follow (a self-registered
    /// client: redirecting at once would be an open redirector).
    ErrorLink(ErrorLink),
    /// Ask the user.
    Consent(PendingAuthorization),
}

/// How a decision ([`Engine::approve`], [`Engine::deny`]) ends.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecisionOutcome {
    /// Send the browser to the client (303): the code, `access_denied`, or, for an
    /// administrator's client whose redirect URI still stands, the error its changed
    /// registration now gives the request (nothing issued).
    Redirect(Response),
    /// Show an error; never redirect. The client vanished, its redirect URI no longer stands, or
    /// it registered itself and changed since the request (nothing was issued); or the store
    /// broke its contract.
    ErrorPage(OAuthError),
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
        let client = ask::client(cx, self.engine.config(), client_id)?
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
        // From here on the redirect URI is verified, so errors go back to the client: at once for
        // an administrator's client, through the user for a self-registered one.
        let back = |e: OAuthError, state: Option<&str>| match send_back(
            &self.engine,
            client,
            &redirect_uri,
            state,
            e,
        ) {
            Back::Redirect(r) => AuthorizeOutcome::Redirect(r),
            Back::Link(l) => AuthorizeOutcome::ErrorLink(l),
            Back::Page(e) => AuthorizeOutcome::ErrorPage(e),
        };
        // A repeated or oversized state is refused and not echoed.
        let state = match params.get("state") {
            Err(e) => return Ok(back(e, None)),
            Ok(Some(s)) if s.len() > MAX_STATE_BYTES => {
                return Ok(back(
                    OAuthError::invalid_request("state is longer than 1024 bytes"),
                    None,
                ))
            }
            Ok(s) => s,
        };
        match self.validate(&params, client) {
            Ok(Validated {
                scope,
                challenge,
                resources,
                nonce,
                interaction,
            }) => Ok(AuthorizeOutcome::Consent(PendingAuthorization {
                client_id: client.client_id.clone(),
                client_name: client.name.clone(),
                redirect_uri: redirect_uri.clone(),
                redirect_uri_sent: requested_redirect.is_some(),
                scope,
                state: state.map(str::to_owned),
                challenge,
                resources,
                nonce,
                interaction,
            })),
            Err(e) => Ok(back(e, state)),
        }
    }

    fn validate(&self, params: &Params, client: &ClientRecord) -> Result<Validated, OAuthError> {
        let config = self.engine.config();
        if params.require("response_type")? != "code" {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "this response_type is not supported; use code",
            ));
        }
        refuse_request_objects(params)?;
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(OAuthError::unauthorized_client(
                "this client may not use the authorization code grant",
            ));
        }
        // The scope module's own descriptions name the offending token; here they must not.
        let scope = crate::scope::requested(params.get("scope")?, &client.scope).map_err(|_| {
            OAuthError::invalid_scope(
                "the scope is malformed or asks for more than this client may have",
            )
        })?;
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
                if pkce_required(client, config) {
                    return Err(OAuthError::invalid_request(
                        "code_challenge is required (PKCE with S256)",
                    ));
                }
                None
            }
        };
        let resources = crate::resource::requested(params, &config.resources, &scope)?;
        let nonce = match params.get("nonce")? {
            Some(n) if n.len() > MAX_NONCE_BYTES => {
                return Err(OAuthError::invalid_request(
                    "nonce is longer than 255 bytes",
                ))
            }
            n => n.map(str::to_owned),
        };
        let interaction = Interaction::parse(
            params,
            &self.engine.signing_keys(),
            &config.issuer,
            &client.client_id,
        )?;
        Ok(Validated {
            scope,
            challenge,
            resources,
            nonce,
            interaction,
        })
    }
}

/// What a valid authorization request asks for.
struct Validated {
    scope: Scope,
    challenge: Option<PkceChallenge>,
    resources: Vec<String>,
    nonce: Option<String>,
    interaction: Interaction,
}

/// Where an error goes once the redirect URI is verified: at once for a client an administrator
/// added, through the user for a self-registered one (see the module docs).
pub(crate) enum Back {
    /// Redirect at once (302).
    Redirect(Response),
    /// Show, with the redirect as a link.
    Link(ErrorLink),
    /// Show (the redirect URI cannot carry parameters).
    Page(OAuthError),
}

/// Sends `e` back to `client` at its verified `redirect_uri` (see [`Back`]).
pub(crate) fn send_back(
    engine: &Engine,
    client: &ClientRecord,
    redirect_uri: &str,
    state: Option<&str>,
    e: OAuthError,
) -> Back {
    if !client.is_self_asserted() {
        return Back::Redirect(engine.error_redirect(302, redirect_uri, state, &e));
    }
    match engine.error_location(redirect_uri, state, &e) {
        Some(location) => Back::Link(ErrorLink {
            error: e,
            location,
            host: host_of(redirect_uri),
        }),
        None => Back::Page(e),
    }
}

/// Request objects and the `claims` parameter are not supported: each is refused with the error
/// OpenID Connect Core names for it (§3.1.2.6, §6), rather than ignored, since a relying party
/// sending them expects what they ask to be honoured.
fn refuse_request_objects(params: &Params) -> Result<(), OAuthError> {
    if params.contains("request") {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects (the request parameter) are not supported; send the parameters \
             in the query",
        ));
    }
    if params.contains("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported; send the parameters in the query",
        ));
    }
    if params.contains("claims") {
        return Err(OAuthError::invalid_request(
            "the claims parameter is not supported; ask for claims with scope",
        ));
    }
    Ok(())
}

/// The user's decision on a pending authorization: approve (issue a code) or deny, after checking
/// the request against the client's current registration.
#[derive(Debug)]
pub struct Decide {
    pub(crate) engine: Engine,
    pub(crate) pending: PendingAuthorization,
    /// `Some((subject, sign-in))` approves for that subject, who signed in as it says; `None`
    /// denies.
    pub(crate) subject: Option<(String, Authentication)>,
    /// On a denial, the user whose remembered consent for the client is withdrawn with it.
    pub(crate) forget: Option<String>,
}

impl Procedure for Decide {
    type Output = DecisionOutcome;

    fn run(&self, cx: &mut Cx<'_>) -> Result<DecisionOutcome, Suspend> {
        ask::finish(self.handle(cx), DecisionOutcome::ErrorPage)
    }
}

impl Decide {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<DecisionOutcome, Halt> {
        let (subject, forget) = (self.subject.as_ref(), self.forget.as_deref());
        decide(&self.engine, cx, &self.pending, subject, forget, true)
    }
}

/// Applies a decision on `p`: after checking it against the client as it is now, a code for
/// `subject` (who authenticated at the given time), or `access_denied` when `None`. With
/// `remember` (an approval on the consent page), the approval is remembered
/// ([`Effect::PutConsent`]: the union with what the user approved for this client before), so
/// the next request for the same scope or less needs no consent page ([`crate::interaction`]);
/// a code issued from a remembered consent writes nothing more. A denial with `forget`
/// withdraws that user's remembered consent for the client ([`Effect::DeleteConsent`]).
pub(crate) fn decide(
    engine: &Engine,
    cx: &mut Cx<'_>,
    p: &PendingAuthorization,
    subject: Option<&(String, Authentication)>,
    forget: Option<&str>,
    remember: bool,
) -> Result<DecisionOutcome, Halt> {
    let config = engine.config();
    let client = ask::client(cx, config, &p.client_id)?;
    if let Err(e) = p.recheck(client, config) {
        // Back to the client when the redirect URI still stands and an administrator added
        // the client (RFC 6749 §4.1.2.1); otherwise only the user learns of it.
        let redirect =
            client.is_some_and(|c| !c.is_self_asserted() && p.redirect_still_resolves(c));
        return Ok(if redirect {
            DecisionOutcome::Redirect(engine.error_redirect(
                303,
                &p.redirect_uri,
                p.state.as_deref(),
                &e,
            ))
        } else {
            DecisionOutcome::ErrorPage(e)
        });
    }
    let Some((subject, authn)) = subject else {
        if let Some(user) = forget {
            cx.effect(Effect::DeleteConsent {
                subject: user.to_owned(),
                client_id: Some(p.client_id.clone()),
            });
        }
        let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return Ok(DecisionOutcome::Redirect(engine.error_redirect(
            303,
            &p.redirect_uri,
            p.state.as_deref(),
            &denied,
        )));
    };
    let credential_version = ask::credential_version(cx, subject)?;
    let consented = if remember {
        let before = ask::consents(cx, subject)?
            .iter()
            .find(|c| c.client_id == p.client_id)
            .map(|c| c.scope.clone());
        Some(match before {
            Some(before) => Scope::from_tokens(
                before
                    .tokens()
                    .chain(p.scope.tokens())
                    .map(str::to_owned)
                    .collect(),
            ),
            None => p.scope.clone(),
        })
    } else {
        None
    };
    let now = cx.now();
    let code = Secret::generate(cx.rng(), SECRET_BYTES);
    let grant_id = new_grant_id(cx.rng());
    cx.effect(Effect::PutCode(CodeRecord {
        hash: code.hash(),
        grant_id,
        client_id: p.client_id.clone(),
        subject: subject.clone(),
        scope: p.scope.clone(),
        redirect_uri: p.redirect_uri.clone(),
        redirect_uri_sent: p.redirect_uri_sent,
        challenge: p.challenge.clone(),
        credential_version,
        issued_at: now,
        expires_at: now + config.authorization_code_ttl_secs,
        resources: p.resources.clone(),
        nonce: p.nonce.clone(),
        auth_time: Some(authn.auth_time),
        amr: authn.amr.clone(),
        sid: authn.sid.clone(),
    }));
    if let Some(scope) = consented {
        cx.effect(Effect::PutConsent(ConsentRecord {
            subject: subject.clone(),
            client_id: p.client_id.clone(),
            scope,
            granted_at: now,
        }));
    }
    let mut params = vec![("code", code.expose())];
    if let Some(state) = &p.state {
        params.push(("state", state));
    }
    params.push(("iss", &config.issuer));
    let location = redirect::with_params(&p.redirect_uri, &params).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            "the redirect URI cannot carry parameters",
        )
    })?;
    Ok(DecisionOutcome::Redirect(Response::redirect(303, location)))
}
