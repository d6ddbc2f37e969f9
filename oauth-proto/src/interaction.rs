//! OpenID Connect's say in how the user is asked (Core §3.1.2.1, §3.1.2.3, §3.1.2.6): the
//! `prompt`, `max_age`, `login_hint` and `id_token_hint` of an authorization request, and the
//! step after a valid request ([`Engine::proceed`]): sign in, consent, or an answer without a page.
//!
//! # Parsing ([`Interaction`], checked with the rest of the request)
//! - `prompt` is a space-separated set of `none`, `login`, `consent` and `select_account`; any
//!   other value, or `none` with another, is `invalid_request`.
//! - `max_age` is a non-negative decimal integer of seconds (`-1`, `+5`, `1.5`, `abc` are
//!   `invalid_request`); one too large for 64 bits means no limit in practice and is kept as the
//!   largest value.
//! - `login_hint` is kept (at most [`MAX_LOGIN_HINT_BYTES`]) for the sign-in form to prefill; it
//!   decides nothing.
//! - `id_token_hint` must be an ID token this server signed (with any key of its set, retired
//!   ones included), for this issuer and this client; its expiry is not checked, since a relying
//!   party sends the ID token it holds, which may be old (§3.1.2.1). Anything else is
//!   `invalid_request` with a description saying which check failed. Only its `sub` is kept.
//!
//! # The step ([`Engine::proceed`])
//! The embedder knows who is signed in on the browser and when; the engine decides from that:
//! 1. A sign-in is needed when nobody is signed in, or, unless the user just signed in on this
//!    request's own form ([`SignedIn::fresh`]), when `prompt=login`, when the sign-in is older
//!    than `max_age`, or when the signed-in user is not the one `id_token_hint` names. A fresh
//!    sign-in satisfies all three, whoever signed in: the person at the browser chose.
//! 2. Then the consent page, when `prompt` has `consent` or `select_account` (the consent page
//!    names the user and offers to switch: that is where an account is selected), or when the
//!    user has no remembered consent ([`crate::store::ConsentRecord`]) for this client covering
//!    the whole scope.
//! 3. Otherwise the code is issued at once, as [`Engine::approve`] would.
//!
//! With `prompt=none` a needed sign-in is `login_required` and a needed consent
//! `consent_required`, answered like the request's other errors: redirected for a client an
//! administrator added, and for a self-registered client (or one known by its metadata
//! document) shown with the redirect as a link ([`crate::authorize`]'s `ErrorLink`). Such a
//! client's redirect URI is whatever a stranger registered, so a silent redirect there would
//! make this server an open redirector (RFC 9700 §4.11.2); silent re-authentication works for
//! those clients only when it succeeds (a session, and a remembered consent of this user for
//! the client). `interaction_required` is never answered: every interaction this server asks
//! for is a sign-in or a consent, which have the two precise codes.

use serde::Serialize;

use crate::ask::{self, Halt};
use crate::authentication::Authentication;
use crate::authorize::{self, DecisionOutcome, ErrorLink, PendingAuthorization};
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::jose::KeySet;
use crate::params::Params;
use crate::response::Response;

/// The longest `login_hint` accepted, in bytes: a user name or an address, shown in a form.
pub const MAX_LOGIN_HINT_BYTES: usize = 255;

/// The `prompt` values of a request (OpenID Connect Core §3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
    select_account: bool,
}

impl Prompt {
    /// `none`: answer without showing anything.
    pub fn none(&self) -> bool {
        self.none
    }

    /// `login`: ask for the password even when the user is signed in.
    pub fn login(&self) -> bool {
        self.login
    }

    /// `consent`: show the consent page even when the user approved before.
    pub fn consent(&self) -> bool {
        self.consent
    }

    /// `select_account`: let the user choose the account (the consent page's switch).
    pub fn select_account(&self) -> bool {
        self.select_account
    }

    fn parse(value: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut p = Prompt::default();
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                _ => {
                    return Err(OAuthError::invalid_request(
                        "prompt has a value this server does not know; use none, login, \
                         consent or select_account",
                    ))
                }
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with another prompt value",
            ));
        }
        Ok(p)
    }
}

/// What a request says about asking the user (see the module docs). Part of a
/// [`PendingAuthorization`]; only the engine makes one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Interaction {
    prompt: Prompt,
    max_age: Option<u64>,
    login_hint: Option<String>,
    hint_subject: Option<String>,
}

impl Interaction {
    /// The request's `prompt`.
    pub fn prompt(&self) -> Prompt {
        self.prompt
    }

    /// The request's `max_age`, in seconds.
    pub fn max_age(&self) -> Option<u64> {
        self.max_age
    }

    /// The request's `login_hint` (at most [`MAX_LOGIN_HINT_BYTES`]), for the sign-in form to
    /// prefill. Request text: escape it.
    pub fn login_hint(&self) -> Option<&str> {
        self.login_hint.as_deref()
    }

    /// The subject of the request's verified `id_token_hint`.
    pub fn hint_subject(&self) -> Option<&str> {
        self.hint_subject.as_deref()
    }

    /// The bytes this value owns on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.login_hint.as_ref().map_or(0, String::capacity)
            + self.hint_subject.as_ref().map_or(0, String::capacity)
    }

    /// Reads the four parameters of `params` for a request of `client_id` (see the module docs).
    pub(crate) fn parse(
        params: &Params,
        keys: &KeySet,
        issuer: &str,
        client_id: &str,
    ) -> Result<Interaction, OAuthError> {
        let prompt = Prompt::parse(params.get("prompt")?)?;
        let max_age = params.get("max_age")?.map(parse_max_age).transpose()?;
        let login_hint = match params.get("login_hint")? {
            Some(h) if h.len() > MAX_LOGIN_HINT_BYTES => {
                return Err(OAuthError::invalid_request(
                    "login_hint is longer than 255 bytes",
                ))
            }
            h => h.map(str::to_owned),
        };
        let hint_subject = params
            .get("id_token_hint")?
            .map(|t| hint_subject(t, keys, issuer, client_id))
            .transpose()?;
        Ok(Interaction {
            prompt,
            max_age,
            login_hint,
            hint_subject,
        })
    }
}

fn parse_max_age(v: &str) -> Result<u64, OAuthError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OAuthError::invalid_request(
            "max_age must be a non-negative integer number of seconds",
        ));
    }
    // Only digits: the one possible failure is overflow, which means no limit in practice.
    Ok(v.parse().unwrap_or(u64::MAX))
}

/// The subject of an `id_token_hint`, after checking it is an ID token of this server
/// ([`crate::openid::verify_hint`]) for this client.
fn hint_subject(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
) -> Result<String, OAuthError> {
    let claims = crate::openid::verify_hint(token, keys, issuer)?;
    if !claims.aud.contains(client_id) {
        return Err(OAuthError::invalid_request(
            "id_token_hint was issued to another client",
        ));
    }
    Ok(claims.sub)
}

/// Who is signed in on the browser that sent the request, as the embedder's session says.
#[derive(Clone, Copy, Debug)]
pub struct SignedIn<'a> {
    /// The user (the subject of the tokens), 1 to 1024 bytes.
    pub subject: &'a str,
    /// When they signed in (Unix seconds): the ID token's `auth_time`.
    pub auth_time: u64,
    /// How they signed in (RFC 8176 values): the ID token's `amr`; empty when unknown.
    pub amr: &'a [String],
    /// The browser session's public identifier (never its cookie): the ID token's `sid`.
    pub sid: Option<&'a str>,
    /// They signed in on this request's own sign-in form, after the request was made: the
    /// sign-in that `prompt=login`, `max_age` and a differing `id_token_hint` ask for.
    pub fresh: bool,
}

/// What comes after a valid authorization request ([`Engine::proceed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Show the sign-in form (prefilled with [`Interaction::login_hint`]), even when someone is
    /// signed in; after a successful sign-in, call [`Engine::proceed`] again with `fresh`.
    SignIn(PendingAuthorization),
    /// Show the consent page; then [`Engine::approve`] or [`Engine::deny`].
    Consent(PendingAuthorization),
    /// Send the browser back to the client: the code (remembered consent), or a `prompt=none`
    /// error for a client an administrator added.
    Redirect(Response),
    /// A `prompt=none` error of a self-registered client: show it, with the redirect as a link.
    ErrorLink(ErrorLink),
    /// Show an error; never redirect (the client changed since the request, or the store broke
    /// its contract).
    ErrorPage(OAuthError),
}

/// The procedure behind [`Engine::proceed`].
#[derive(Debug)]
pub struct Proceed {
    engine: Engine,
    pending: PendingAuthorization,
    /// The user, the sign-in (checked) and whether it is fresh; or why the embedder's sign-in
    /// was refused.
    signed_in: Option<Result<(String, Authentication, bool), OAuthError>>,
}

impl Engine {
    /// The step after a valid authorization request, for the user `signed_in` on the browser (see
    /// the module docs): a sign-in, the consent page, or an answer without a page (a code when
    /// the user approved this client for this scope before; `login_required` or
    /// `consent_required` with `prompt=none`). The code is issued as by [`Engine::approve`],
    /// after the same checks of the client as it is now.
    pub fn proceed(
        &self,
        pending: PendingAuthorization,
        signed_in: Option<SignedIn<'_>>,
        now: u64,
    ) -> Flow<Proceed> {
        Flow::new(
            Proceed {
                engine: self.clone(),
                pending,
                signed_in: signed_in.map(|s| {
                    let authn = Authentication {
                        auth_time: s.auth_time,
                        amr: s.amr.to_vec(),
                        sid: s.sid.map(str::to_owned),
                    };
                    Ok((s.subject.to_owned(), authn.checked(now)?, s.fresh))
                }),
            },
            now,
        )
    }
}

impl Engine {
    /// The user signed in as `subject` refused on the consent page: as [`Engine::deny`], and
    /// the consent `subject` gave this client before is withdrawn, so the client's next request
    /// shows the consent page again rather than getting a code silently.
    pub fn deny_and_forget(
        &self,
        pending: PendingAuthorization,
        subject: &str,
        now: u64,
    ) -> Flow<authorize::Decide> {
        Flow::new(
            authorize::Decide {
                engine: self.clone(),
                pending,
                subject: None,
                forget: Some(subject.to_owned()),
            },
            now,
        )
    }
}

impl Procedure for Proceed {
    type Output = Step;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Step, Suspend> {
        ask::finish(self.handle(cx), Step::ErrorPage)
    }
}

impl Proceed {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Step, Halt> {
        let p = &self.pending;
        let i = p.interaction();
        let prompt = i.prompt();
        let Some(signed_in) = &self.signed_in else {
            return self.sign_in(cx, "the user is not signed in");
        };
        let (subject, authn, fresh) = signed_in.as_ref().map_err(|e| Halt::Error(e.clone()))?;
        let auth_time = &authn.auth_time;
        if subject.is_empty() || subject.len() > crate::access_token::MAX_SUBJECT {
            return Err(OAuthError::new(
                ErrorCode::ServerError,
                "the subject must be 1 to 1024 bytes",
            )
            .into());
        }
        if !fresh {
            if prompt.login() {
                return Ok(Step::SignIn(p.clone()));
            }
            if i.max_age()
                .is_some_and(|m| cx.now().saturating_sub(*auth_time) > m)
            {
                return self.sign_in(cx, "the user signed in longer ago than max_age allows");
            }
            if i.hint_subject().is_some_and(|h| h != subject) {
                return self.sign_in(cx, "the signed-in user is not the one id_token_hint names");
            }
        }
        if prompt.consent() || prompt.select_account() {
            return Ok(Step::Consent(p.clone()));
        }
        let remembered = ask::consents(cx, subject)?
            .iter()
            .any(|c| c.client_id == p.client_id() && p.scope().is_subset_of(&c.scope));
        if remembered {
            let subject = (subject.clone(), authn.clone());
            return Ok(
                match authorize::decide(&self.engine, cx, p, Some(&subject), None, false)? {
                    DecisionOutcome::Redirect(r) => Step::Redirect(r),
                    DecisionOutcome::ErrorPage(e) => Step::ErrorPage(e),
                },
            );
        }
        if prompt.none() {
            return self.refuse(
                cx,
                OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not approved this client for this scope",
                ),
            );
        }
        Ok(Step::Consent(p.clone()))
    }

    /// A sign-in is needed: the form, or `login_required` with `prompt=none`.
    fn sign_in(&self, cx: &mut Cx<'_>, why: &'static str) -> Result<Step, Halt> {
        if !self.pending.interaction().prompt().none() {
            return Ok(Step::SignIn(self.pending.clone()));
        }
        self.refuse(cx, OAuthError::new(ErrorCode::LoginRequired, why))
    }

    /// A `prompt=none` error, sent back as the request's other errors are (see the module docs).
    fn refuse(&self, cx: &mut Cx<'_>, e: OAuthError) -> Result<Step, Halt> {
        let p = &self.pending;
        let Some(client) = ask::client(cx, self.engine.config(), p.client_id())? else {
            return Ok(Step::ErrorPage(OAuthError::invalid_request(
                "the client no longer exists",
            )));
        };
        Ok(
            match authorize::send_back(&self.engine, client, p.redirect_uri(), p.state(), e) {
                authorize::Back::Redirect(r) => Step::Redirect(r),
                authorize::Back::Link(l) => Step::ErrorLink(l),
                authorize::Back::Page(e) => Step::ErrorPage(e),
            },
        )
    }
}
