//! The authorization endpoint's pages: sign-in, consent, decision.
//!
//! `GET /authorize` runs the engine on the query. An unknown client or unverifiable redirect URI
//! gets an error page (never a redirect); other errors go back to the client as the engine says.
//! A valid request goes to the engine's next step for the session's user (`Engine::proceed`,
//! OpenID Connect's `prompt`, `max_age`, `id_token_hint` and remembered consent): answered at
//! once without a page (a code when the user approved this client for this scope before; a
//! `prompt=none` error), or kept server-side as a page (see [`crate::pages::sessions`]) showing
//! the sign-in form (prefilled with `login_hint`) or the consent view. After a sign-in on the
//! form, the step is asked again with the sign-in as fresh, which `prompt=login` and `max_age`
//! want; a remembered consent then redirects at once and uses the page up.
//!
//! An error of a self-registered client is shown with the error redirect as a link the user may
//! follow, never redirected on its own (the engine's `ErrorLink`; RFC 9700 §4.11.2).
//!
//! `POST /authorize` carries the session's CSRF token and the page id, plus either the sign-in
//! fields (`username`, `password`), the decision (`decision=approve|deny`), or `switch_user` (sign
//! out, to sign in as someone else). The page keeps only the engine's `PendingAuthorization`, not
//! the request: the engine's approve and deny check it against the client as it is now (a client
//! deleted or changed in the meantime gets an error page); approve issues the code (303 to the
//! redirect URI with `code`, `state`, `iss`), deny sends `access_denied`.

use std::collections::HashMap;

use oauth_proto::authentication::Authentication;
use oauth_proto::authorize::{AuthorizeOutcome, DecisionOutcome, ErrorLink, PendingAuthorization};
use oauth_proto::error::{ErrorCode, OAuthError};
use oauth_proto::flow::drive_async;
use oauth_proto::interaction::{SignedIn, Step};
use oauth_proto::response::Response;

use crate::app::App;
use crate::clock;
use crate::http::reply::{self, csp_origin, HttpResponse};
use crate::http::request::Request;
use crate::pages::backchannel;
use crate::pages::login::{self, Outcome};
use crate::pages::sessions::{self, NewPage, Pending, Refused, Session};
use crate::pages::views::{self, FormIds};
use crate::rng::OsRandom;

pub(crate) const WRONG: &str = "The user name or password is wrong.";
pub(crate) const LOCKED: &str = "Too many failed sign-in attempts. Wait a while and try again.";

pub(crate) fn error_page(status: u16, title: &str, message: &str) -> HttpResponse {
    reply::html(status, views::error(title, message), None)
}

pub(crate) fn unavailable_page() -> HttpResponse {
    let mut r = error_page(
        503,
        "Temporarily unavailable",
        "The server cannot reach its storage right now. Try again in a moment.",
    );
    reply::retry_after(&mut r);
    r
}

pub(crate) fn expired_page() -> HttpResponse {
    error_page(
        400,
        "This request has expired",
        "Go back to the application and start signing in again.",
    )
}

/// Which page a waiting authorization shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// The sign-in form, even when someone is signed in (`prompt=login`, `max_age`, ...).
    SignIn,
    /// The consent page (the sign-in form if the session has nobody signed in).
    Consent,
}

/// The page for a session: the sign-in form or the consent page, as the engine's step says.
/// The form's user name is what was typed, else the request's `login_hint`, else the user
/// signed in now (asked to sign in again).
fn render(
    p: &PendingAuthorization,
    session: &Session,
    page_id: &str,
    view: View,
    error: Option<&str>,
    username: &str,
) -> HttpResponse {
    let ids = FormIds {
        action: "/authorize",
        csrf: &session.csrf,
        page: page_id,
    };
    match (&session.user, view) {
        (Some(user), View::Consent) => {
            let origin = csp_origin(p.redirect_uri());
            let html = views::consent(
                p.client_name(),
                p.client_id(),
                &p.redirect_host(),
                p.scope(),
                p.resources(),
                user,
                ids,
            );
            reply::html(200, html, origin.as_deref())
        }
        (user, _) => {
            let prefill = Some(username)
                .filter(|u| !u.is_empty())
                .or(p.interaction().login_hint())
                .or(user.as_deref())
                .unwrap_or("");
            reply::html(
                if error == Some(LOCKED) { 429 } else { 200 },
                views::login(p.client_name(), ids, error, prefill),
                None,
            )
        }
    }
}

/// The error page of an engine error shown to the user.
fn shown_error(e: &OAuthError) -> HttpResponse {
    error_page(400, "This request cannot be completed", &e.description)
}

/// The error page of a self-registered client's error, with the redirect as a link.
fn error_link_page(l: &ErrorLink) -> HttpResponse {
    let html = views::error_with_link(
        "This request cannot be completed",
        &l.error.description,
        &l.location,
        &l.host,
    );
    reply::html(400, html, None)
}

/// Asks the engine what comes after a valid request for the user of `session` (its id and
/// itself; see `oauth_proto::interaction`); `fresh` when they just signed in on this request's
/// form.
/// `Err` is the answer to send at once: a redirect (a code, or a `prompt=none` error) or an
/// error page.
async fn proceed(
    app: &App,
    pending: PendingAuthorization,
    session: Option<(&str, &Session)>,
    fresh: bool,
) -> Result<(PendingAuthorization, View), HttpResponse> {
    let now = clock::now();
    let authn = session.and_then(|(_, s)| s.authentication(now));
    let signed_in = session.and_then(|(_, s)| {
        let authn = authn.as_ref()?;
        s.user.as_deref().map(|subject| SignedIn {
            subject,
            auth_time: authn.auth_time,
            amr: &authn.amr,
            sid: authn.sid.as_deref(),
            fresh,
        })
    });
    // Only a client the user approved is listed: here, one given a code at once (remembered
    // consent), before the browser gets it; the consent page's approval lists it in `decide`.
    // Showing a client the sign-in or consent page lists nothing: any site can send a signed-in
    // browser here for its own client, which must neither get a logout token (the user's `sub`)
    // nor take one of the session's bounded places.
    let listing = session
        .filter(|_| signed_in.is_some() && wants_id_token(&pending))
        .map(|(id, s)| (id, s, pending.client_id().to_owned()));
    let flow = app.engine.proceed(pending, signed_in, now);
    match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(Step::SignIn(p)) => Ok((p, View::SignIn)),
        Ok(Step::Consent(p)) => Ok((p, View::Consent)),
        Ok(Step::Redirect(r)) => {
            if let Some((id, s, client_id)) = listing.filter(|_| carries_code(&r)) {
                // The code has not left: a session store failure withholds it.
                if let Err(e) = record_relying_party(app, id, s, &client_id, now).await {
                    return Err(sessions_down(&e));
                }
            }
            Err(reply::from_engine(r))
        }
        Ok(Step::ErrorLink(l)) => Err(error_link_page(&l)),
        Ok(Step::ErrorPage(e)) if e.code == ErrorCode::ServerError => {
            tracing::error!(error = %e.description, "engine error after an authorization request");
            Err(error_page(
                500,
                "Something went wrong",
                "The server cannot complete this request.",
            ))
        }
        Ok(Step::ErrorPage(e)) => Err(shown_error(&e)),
        Ok(_) => {
            tracing::error!("an authorization step this page does not handle");
            Err(error_page(
                500,
                "Something went wrong",
                "The server cannot complete this request.",
            ))
        }
        Err(e) => {
            reply::store_failed(&e, "authorize");
            Err(unavailable_page())
        }
    }
}

/// Whether the request asks for an ID token (`openid`): only such clients are relying parties.
fn wants_id_token(pending: &PendingAuthorization) -> bool {
    pending.scope().contains(oauth_proto::openid::OPENID)
}

/// Whether the engine's redirect back to the client carries a code (remembered consent), not a
/// `prompt=none` error.
fn carries_code(r: &Response) -> bool {
    let Some((_, location)) = r.headers.iter().find(|(name, _)| *name == "location") else {
        return false;
    };
    let Ok(url) = url::Url::parse(location) else {
        return false;
    };
    let mut names = url.query_pairs().map(|(name, _)| name);
    names.clone().any(|n| n == "code") && !names.any(|n| n == "error")
}

/// Lists `client_id` among the relying parties of `session` (named `id`) once the user approved
/// it and before its code leaves (see `sessions`); a session that lists it already, or is full,
/// is not written to.
async fn record_relying_party(
    app: &App,
    id: &str,
    session: &Session,
    client_id: &str,
    now: u64,
) -> Result<(), oauth_proto::store::StoreError> {
    let listed = &session.relying_parties;
    if listed.len() >= sessions::MAX_RELYING_PARTIES || listed.iter().any(|c| c == client_id) {
        return Ok(());
    }
    app.sessions.add_relying_party(id, client_id, now).await
}

/// The 503 page for sessions or pages the store could not read or write.
pub(crate) fn sessions_down(e: &oauth_proto::store::StoreError) -> HttpResponse {
    reply::store_failed(e, "browser sessions");
    unavailable_page()
}

/// The live session the request's cookie names, and its id; `Err` is the 503 page.
pub(crate) async fn current_session(
    app: &App,
    req: &Request,
    now: u64,
) -> Result<Option<(String, Session)>, HttpResponse> {
    let Some(id) = session_cookie(req) else {
        return Ok(None);
    };
    match app.sessions.get(id, now).await {
        Ok(s) => Ok(s.map(|s| (id.to_owned(), s))),
        Err(e) => Err(sessions_down(&e)),
    }
}

pub(crate) fn session_cookie(req: &Request) -> Option<&str> {
    req.headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| sessions::cookie_value(h, sessions::COOKIE))
}

async fn run_authorize(app: &App, query: &[u8]) -> Option<AuthorizeOutcome> {
    let flow = app.engine.authorize(query, clock::now());
    match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(o) => Some(o),
        Err(e) => {
            reply::store_failed(&e, "authorize");
            None
        }
    }
}

/// `GET /authorize`.
pub async fn show(app: &App, req: &Request) -> HttpResponse {
    let Some(outcome) = run_authorize(app, req.query().as_bytes()).await else {
        return unavailable_page();
    };
    let pending = match outcome {
        AuthorizeOutcome::ErrorPage(e) => return shown_error(&e),
        AuthorizeOutcome::Redirect(r) => return reply::from_engine(r),
        AuthorizeOutcome::ErrorLink(l) => return error_link_page(&l),
        AuthorizeOutcome::Consent(p) => p,
        // An outcome added to the engine after this page was written: refuse rather than guess.
        _ => {
            tracing::error!("an authorization outcome this page does not handle");
            return error_page(
                500,
                "Something went wrong",
                "The server cannot complete this request.",
            );
        }
    };
    let now = clock::now();
    let existing = match current_session(app, req, now).await {
        Ok(existing) => existing,
        Err(down) => return down,
    };
    // Before any session or page is made: prompt=none and remembered consent answer without one.
    let (pending, view) = match proceed(
        app,
        pending,
        existing.as_ref().map(|(id, s)| (id.as_str(), s)),
        false,
    )
    .await
    {
        Ok(next) => next,
        Err(answer) => return answer,
    };
    let (id, session, new) = match existing {
        Some((id, s)) => (id, s, false),
        None => match app.sessions.create(now, req.client_addr()).await {
            Ok(Ok((id, s))) => (id, s, true),
            Ok(Err(r)) => return refused_page(app, r),
            Err(e) => return sessions_down(&e),
        },
    };
    let page = NewPage::Authorization {
        pending: pending.clone(),
        query: req.query().as_bytes(),
    };
    let page_id = match app
        .sessions
        .put_page(&id, page, now, req.client_addr())
        .await
    {
        Ok(Ok(page_id)) => page_id,
        Ok(Err(r)) => return refused_page(app, r),
        Err(e) => return sessions_down(&e),
    };
    let resp = render(&pending, &session, &page_id, view, None, "");
    if new {
        let cookie = sessions::set_cookie(&id, app.settings.page_ttl_secs, app.secure_cookies);
        reply::with_cookie(resp, &cookie)
    } else {
        resp
    }
}

/// The answer when no session or page could be made: 429 for an address past its own bound
/// (with `Retry-After`: by then its oldest pages have expired), 503 when the server is full.
pub(crate) fn refused_page(app: &App, refused: Refused) -> HttpResponse {
    match refused {
        Refused::Full => error_page(
            503,
            "Too busy",
            "The server has too many sign-ins in progress. Try again in a moment.",
        ),
        Refused::Address => {
            let mut r = error_page(
                429,
                "Too many sign-ins from your network",
                "Too many sign-ins are in progress from your network address. Finish or close the ones you started, or wait a few minutes, then try again.",
            );
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(app.settings.page_ttl_secs),
            );
            r
        }
    }
}

/// The form fields; a field sent twice makes the form invalid.
pub(crate) fn form(req: &Request) -> Option<HashMap<String, String>> {
    let media = req
        .header("content-type")
        .and_then(|c| c.split(';').next())
        .map(str::trim)?;
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return None;
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body).ok()?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k, v).is_some() {
            return None;
        }
    }
    Some(map)
}

/// `POST /authorize`.
pub async fn submit(app: &App, req: &Request) -> HttpResponse {
    let Some(form) = form(req) else {
        return error_page(400, "Invalid form", "The form could not be read.");
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let now = clock::now();
    let Some((sid, session)) = (match current_session(app, req, now).await {
        Ok(existing) => existing,
        Err(down) => return down,
    }) else {
        return error_page(
            403,
            "Your session has expired",
            "Go back to the application and start signing in again. Cookies must be enabled.",
        );
    };
    if !session.csrf_matches(field("csrf")) {
        return error_page(
            403,
            "Invalid form",
            "This form was not sent from this site's page, or it is out of date. Go back to the application and start again.",
        );
    }
    let page_id = field("page");
    let Some(Pending::Authorization(pending)) = (match app.sessions.page(page_id, &sid, now).await {
        Ok(page) => page,
        Err(e) => return sessions_down(&e),
    }) else {
        return expired_page();
    };
    if form.contains_key("switch_user") {
        let Some(out) = (match app.sessions.sign_out(&sid, now, req.client_addr()).await {
            Ok(signed_out) => signed_out,
            Err(e) => return sessions_down(&e),
        }) else {
            return expired_page();
        };
        backchannel::notify(app, out.ended).await;
        let (new_id, anonymous) = (out.id, out.session);
        let cookie = sessions::set_cookie(&new_id, app.settings.page_ttl_secs, app.secure_cookies);
        let page = render(&pending, &anonymous, page_id, View::SignIn, None, "");
        return reply::with_cookie(page, &cookie);
    }
    match form.get("decision") {
        Some(decision) => decide(app, &sid, &session, page_id, decision).await,
        None => {
            let user = (field("username"), field("password"));
            let attempt = match check_sign_in(app, req, &sid, user.0, user.1, expired_page).await {
                Ok(attempt) => attempt,
                Err(answer) => return answer,
            };
            let (new_id, signed_in) = match attempt {
                SignInAttempt::Refused(session, error) => {
                    return render(
                        &pending,
                        &session,
                        page_id,
                        View::SignIn,
                        Some(error),
                        user.0,
                    )
                }
                SignInAttempt::SignedIn(new_id, signed_in) => (new_id, signed_in),
            };
            let cookie =
                sessions::set_cookie(&new_id, app.settings.session_ttl_secs, app.secure_cookies);
            // Signed in on this request's own form: what prompt=login and max_age ask for. A
            // remembered consent answers at once; the page is then used up.
            let resp = match proceed(app, pending, Some((&new_id, &signed_in)), true).await {
                Ok((pending, view)) => render(&pending, &signed_in, page_id, view, None, ""),
                Err(answer) => {
                    if let Err(e) = app.sessions.take_page(page_id, &new_id, clock::now()).await {
                        return sessions_down(&e);
                    }
                    answer
                }
            };
            reply::with_cookie(resp, &cookie)
        }
    }
}

/// How a sign-in attempt went.
enum SignInAttempt {
    /// Signed in: the session's new id, and the session.
    SignedIn(String, Session),
    /// Wrong password or locked: the session as it is, and what to tell the user.
    Refused(Session, &'static str),
}

/// Checks a sign-in (with the login limits) on session `sid`, and replaces the session id on
/// success. `Err` is the page to answer (the store is down, or the session expired: `expired`).
async fn check_sign_in(
    app: &App,
    req: &Request,
    sid: &str,
    username: &str,
    password: &str,
    expired: fn() -> HttpResponse,
) -> Result<SignInAttempt, HttpResponse> {
    let now = clock::now();
    let outcome = match login::attempt(app, username, password, req.peer.ip(), now).await {
        Ok(o) => o,
        Err(e) => {
            reply::store_failed(&e, "sign-in");
            return Err(unavailable_page());
        }
    };
    let Some(session) = (match app.sessions.get(sid, now).await {
        Ok(session) => session,
        Err(e) => return Err(sessions_down(&e)),
    }) else {
        return Err(expired());
    };
    match outcome {
        Outcome::Success => match app.sessions.sign_in(sid, username, now).await {
            Ok(Some(signed_in)) => {
                // Another user signing in over a session ends the previous user's.
                backchannel::notify(app, signed_in.ended).await;
                Ok(SignInAttempt::SignedIn(signed_in.id, signed_in.session))
            }
            Ok(None) => Err(expired()),
            Err(e) => Err(sessions_down(&e)),
        },
        Outcome::Failure => Ok(SignInAttempt::Refused(session, WRONG)),
        Outcome::Locked => Ok(SignInAttempt::Refused(session, LOCKED)),
    }
}

/// A sign-in attempt on a page that asks for consent next: checks the password (with the login
/// limits), replaces the session id on success, and re-renders the page with `render(session,
/// error, typed user name)`. Used by the device page (the authorization page goes on with the
/// engine's next step after a sign-in, [`check_sign_in`]).
pub(crate) async fn sign_in(
    app: &App,
    req: &Request,
    sid: &str,
    username: &str,
    password: &str,
    expired: fn() -> HttpResponse,
    render: impl Fn(&Session, Option<&str>, &str) -> HttpResponse,
) -> HttpResponse {
    match check_sign_in(app, req, sid, username, password, expired).await {
        Err(answer) => answer,
        Ok(SignInAttempt::SignedIn(new_id, signed_in)) => {
            let cookie =
                sessions::set_cookie(&new_id, app.settings.session_ttl_secs, app.secure_cookies);
            reply::with_cookie(render(&signed_in, None, ""), &cookie)
        }
        Ok(SignInAttempt::Refused(session, error)) => render(&session, Some(error), username),
    }
}

/// A decision a signed-in user made on a consent page.
pub(crate) struct Decision<'a> {
    /// Who decided.
    pub user: &'a str,
    /// How and when they signed in, in which session (the ID token's `auth_time`, `amr`, `sid`).
    pub authn: Authentication,
    /// Allow (true) or deny.
    pub approve: bool,
    /// The request decided on, taken from the session (it cannot be decided twice).
    pub pending: Pending,
}

/// The checks every consent decision passes first: the session is signed in, the decision is
/// `approve` or `deny`, and the page belongs to this session and is taken (used once).
pub(crate) async fn decision<'a>(
    app: &App,
    sid: &str,
    session: &'a Session,
    page_id: &str,
    decision: &str,
    expired: fn() -> HttpResponse,
) -> Result<Decision<'a>, Box<HttpResponse>> {
    let Some(user) = session.user.as_deref() else {
        return Err(Box::new(error_page(
            403,
            "Not signed in",
            "Sign in before deciding.",
        )));
    };
    let approve = match decision {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(Box::new(error_page(
                400,
                "Invalid form",
                "Choose Allow or Deny.",
            )))
        }
    };
    match app.sessions.take_page(page_id, sid, clock::now()).await {
        Ok(Some(pending)) => Ok(Decision {
            user,
            authn: session
                .authentication(clock::now())
                .unwrap_or_else(|| Authentication::from(clock::now())),
            approve,
            pending,
        }),
        Ok(None) => Err(Box::new(expired())),
        Err(e) => Err(Box::new(sessions_down(&e))),
    }
}

async fn decide(
    app: &App,
    sid: &str,
    session: &Session,
    page_id: &str,
    decision_value: &str,
) -> HttpResponse {
    let d = match decision(app, sid, session, page_id, decision_value, expired_page).await {
        Ok(d) => d,
        Err(resp) => return *resp,
    };
    let Pending::Authorization(pending) = d.pending else {
        return expired_page();
    };
    let now = clock::now();
    let flow = if d.approve {
        if wants_id_token(&pending) {
            if let Err(e) = record_relying_party(app, sid, session, pending.client_id(), now).await
            {
                return sessions_down(&e);
            }
        }
        match app.engine.approve(pending, d.user, d.authn, now) {
            Ok(f) => f,
            Err(e) => return error_page(400, "This request cannot be completed", &e.description),
        }
    } else {
        // Refusing withdraws a consent this user gave the client before (prompt=consent, or a
        // wider scope), so the client gets no code silently afterwards.
        app.engine.deny_and_forget(pending, d.user, now)
    };
    match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(DecisionOutcome::Redirect(resp)) => reply::from_engine(resp),
        Ok(DecisionOutcome::ErrorPage(e)) if e.code == ErrorCode::ServerError => {
            tracing::error!(error = %e.description, "engine error while deciding");
            error_page(
                500,
                "Something went wrong",
                "The server could not record your decision. Go back to the application and start again.",
            )
        }
        Ok(DecisionOutcome::ErrorPage(e)) => error_page(
            400,
            "The application changed",
            &format!(
                "The application's registration changed while you were deciding ({}); nothing was granted. Go back to the application and start again.",
                e.description
            ),
        ),
        Ok(_) => {
            tracing::error!("a decision outcome this page does not handle");
            error_page(
                500,
                "Something went wrong",
                "The server could not record your decision. Go back to the application and start again.",
            )
        }
        Err(e) => {
            reply::store_failed(&e, "consent decision");
            unavailable_page()
        }
    }
}
