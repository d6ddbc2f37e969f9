//! The device verification page (RFC 8628 §3.3): the person types the code their device shows,
//! signs in, checks who asks for what, and approves or denies.
//!
//! `GET /device` shows the code form, prefilled from `?user_code=` (the `verification_uri_complete`
//! link). `POST /device` without a `page` field is a code entry: the engine checks it, after the
//! engine's limiter has let the client address through, and a wrong code counts against that
//! address (right ones never do); a valid code becomes a page kept server-side for the session (see
//! [`crate::pages::sessions`]), shown as the sign-in form or, when signed in, the consent view. Every
//! wrong code gets the same message, so the page does not tell an unknown code from a used one.
//! `POST /device` with a `page` field carries the sign-in fields, `switch_user`, or the decision
//! (`decision=approve|deny`), exactly like the authorization page; approve and deny are applied
//! once, and the device learns the answer at its next poll. Every form carries the session's CSRF
//! token; the pages post only to this origin.

use std::collections::HashMap;

use oauth_proto::device_verify::{DeviceDecisionOutcome, DeviceVerifyOutcome, PendingDevice};
use oauth_proto::flow::drive_async;
use oauth_proto::throttle::Verdict;

use crate::app::App;
use crate::clock;
use crate::http::reply::{self, HttpResponse};
use crate::http::request::Request;
use crate::pages::authorize::{
    current_session, decision, error_page, form, refused_page, sessions_down, sign_in,
    unavailable_page, LOCKED,
};
use crate::pages::sessions::{self, NewPage, Pending, Session};
use crate::pages::views::{self, FormIds};
use crate::rng::OsRandom;

const ACTION: &str = "/device";

/// The one message for any code that does not lead to a pending request.
pub const INVALID_CODE: &str =
    "That code is not valid. Check the code shown on your device and try again.";

fn expired_page() -> HttpResponse {
    error_page(
        400,
        "This code has expired",
        "The request from your device has expired. Start again on your device to get a new code.",
    )
}

fn session_expired_page() -> HttpResponse {
    error_page(
        400,
        "This page has expired",
        "Enter the code shown on your device again.",
    )
}

/// The page for a session and a pending device: consent when signed in, sign-in otherwise.
fn render(
    p: &PendingDevice,
    session: &Session,
    page_id: &str,
    error: Option<&str>,
    username: &str,
) -> HttpResponse {
    let ids = FormIds {
        action: ACTION,
        csrf: &session.csrf,
        page: page_id,
    };
    match &session.user {
        Some(user) => {
            let html = views::device_consent(p.client_name(), p.scope(), p.user_code(), user, ids);
            reply::html(200, html, None)
        }
        None => reply::html(
            if error == Some(LOCKED) { 429 } else { 200 },
            views::login(p.client_name(), ids, error, username),
            None,
        ),
    }
}

fn code_form(status: u16, session: &Session, user_code: &str, error: Option<&str>) -> HttpResponse {
    reply::html(
        status,
        views::device_code(&session.csrf, user_code, error),
        None,
    )
}

/// 429: the address entered too many wrong codes (or failed too often elsewhere).
fn too_many_attempts() -> HttpResponse {
    error_page(
        429,
        "Too many attempts",
        "Too many wrong codes were entered from your network. Wait a while, then start again on your device.",
    )
}

/// The value of `user_code` in the query, if any.
fn prefilled(query: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "user_code"))
        .map(|(_, v)| v.chars().take(64).collect())
        .unwrap_or_default()
}

/// `GET /device`.
pub async fn show(app: &App, req: &Request) -> HttpResponse {
    let now = clock::now();
    let existing = match current_session(app, req, now).await {
        Ok(existing) => existing,
        Err(down) => return down,
    };
    let user_code = prefilled(req.query());
    match existing {
        Some((_, session)) => code_form(200, &session, &user_code, None),
        None => match app.sessions.create(now, req.client_addr()).await {
            Ok(Ok((id, session))) => {
                let cookie =
                    sessions::set_cookie(&id, app.settings.page_ttl_secs, app.secure_cookies);
                reply::with_cookie(code_form(200, &session, &user_code, None), &cookie)
            }
            Ok(Err(r)) => refused_page(app, r),
            Err(e) => sessions_down(&e),
        },
    }
}

/// `POST /device`.
pub async fn submit(app: &App, req: &Request) -> HttpResponse {
    let Some(form) = form(req) else {
        return error_page(400, "Invalid form", "The form could not be read.");
    };
    let now = clock::now();
    let Some((sid, session)) = (match current_session(app, req, now).await {
        Ok(existing) => existing,
        Err(down) => return down,
    }) else {
        return error_page(
            403,
            "Your session has expired",
            "Open the device page again and enter the code shown on your device. Cookies must be enabled.",
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if !session.csrf_matches(field("csrf")) {
        return error_page(
            403,
            "Invalid form",
            "This form was not sent from this site's page, or it is out of date. Open the device page again.",
        );
    }
    if !form.contains_key("page") {
        return enter_code(app, req, &sid, &session, field("user_code")).await;
    }
    page_step(app, req, &sid, &session, &form).await
}

async fn enter_code(
    app: &App,
    req: &Request,
    sid: &str,
    session: &Session,
    user_code: &str,
) -> HttpResponse {
    let addr = req.client_addr();
    let throttle = app.engine.throttle();
    match throttle.check(addr, None, clock::now()) {
        Verdict::Refuse { .. } => return too_many_attempts(),
        Verdict::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed { .. } => {}
    }
    let now = clock::now();
    let flow = app.engine.device_verify(user_code, now);
    let outcome = match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(o) => o,
        Err(e) => {
            reply::store_failed(&e, "device page");
            return unavailable_page();
        }
    };
    let pending = match outcome {
        DeviceVerifyOutcome::Consent(p) => p,
        DeviceVerifyOutcome::InvalidCode(_) => {
            if throttle.record_failure(addr, None, now) {
                tracing::warn!(%addr, "too many wrong device codes; address refused");
            }
            let shown: String = user_code.chars().take(64).collect();
            return code_form(200, session, &shown, Some(INVALID_CODE));
        }
        DeviceVerifyOutcome::Expired => return expired_page(),
        DeviceVerifyOutcome::Error(e) => {
            tracing::error!(error = %e.description, "engine error on the device page");
            return error_page(
                500,
                "Something went wrong",
                "The server could not check this code. Try again in a moment.",
            );
        }
        _ => {
            tracing::error!("a device verification outcome this page does not handle");
            return error_page(
                500,
                "Something went wrong",
                "The server could not check this code. Try again in a moment.",
            );
        }
    };
    let page = NewPage::Device(pending.clone());
    let page_id = match app
        .sessions
        .put_page(sid, page, now, req.client_addr())
        .await
    {
        Ok(Ok(page_id)) => page_id,
        Ok(Err(r)) => return refused_page(app, r),
        Err(e) => return sessions_down(&e),
    };
    render(&pending, session, &page_id, None, "")
}

async fn page_step(
    app: &App,
    req: &Request,
    sid: &str,
    session: &Session,
    form: &HashMap<String, String>,
) -> HttpResponse {
    let now = clock::now();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let page_id = field("page");
    let Some(Pending::Device(pending)) = (match app.sessions.page(page_id, sid, now).await {
        Ok(page) => page,
        Err(e) => return sessions_down(&e),
    }) else {
        return session_expired_page();
    };
    if form.contains_key("switch_user") {
        let Some(out) = (match app.sessions.sign_out(sid, now, req.client_addr()).await {
            Ok(signed_out) => signed_out,
            Err(e) => return sessions_down(&e),
        }) else {
            return session_expired_page();
        };
        crate::pages::backchannel::notify(app, out.ended).await;
        let (new_id, anonymous) = (out.id, out.session);
        let cookie = sessions::set_cookie(&new_id, app.settings.page_ttl_secs, app.secure_cookies);
        return reply::with_cookie(render(&pending, &anonymous, page_id, None, ""), &cookie);
    }
    match form.get("decision") {
        Some(decision) => decide(app, sid, session, page_id, decision).await,
        None => {
            sign_in(
                app,
                req,
                sid,
                field("username"),
                field("password"),
                session_expired_page,
                |session, error, typed| render(&pending, session, page_id, error, typed),
            )
            .await
        }
    }
}

async fn decide(
    app: &App,
    sid: &str,
    session: &Session,
    page_id: &str,
    decision_value: &str,
) -> HttpResponse {
    let d = match decision(
        app,
        sid,
        session,
        page_id,
        decision_value,
        session_expired_page,
    )
    .await
    {
        Ok(d) => d,
        Err(resp) => return *resp,
    };
    let Pending::Device(pending) = d.pending else {
        return session_expired_page();
    };
    let now = clock::now();
    let flow = if d.approve {
        match app.engine.device_approve(pending, d.user, d.authn, now) {
            Ok(f) => f,
            Err(e) => return error_page(400, "This request cannot be completed", &e.description),
        }
    } else {
        app.engine.device_deny(pending, now)
    };
    let outcome = match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(o) => o,
        Err(e) => {
            reply::store_failed(&e, "device decision");
            return unavailable_page();
        }
    };
    match outcome {
        DeviceDecisionOutcome::Approved => reply::html(
            200,
            views::message(
                "Device connected",
                "You allowed the device. You may return to your device; it will continue on its own.",
            ),
            None,
        ),
        DeviceDecisionOutcome::Denied => reply::html(
            200,
            views::message(
                "Access denied",
                "You denied access. The device will not get access to your account.",
            ),
            None,
        ),
        DeviceDecisionOutcome::Expired => expired_page(),
        DeviceDecisionOutcome::NotPending => error_page(
            409,
            "Already decided",
            "This device request was already approved or denied. Start again on your device if needed.",
        ),
        DeviceDecisionOutcome::Error(e) => {
            tracing::error!(error = %e.description, "engine error while deciding a device request");
            error_page(
                500,
                "Something went wrong",
                "The server could not record your decision. Start again on your device.",
            )
        }
        _ => {
            tracing::error!("a device decision outcome this page does not handle");
            error_page(
                500,
                "Something went wrong",
                "The server could not record your decision. Start again on your device.",
            )
        }
    }
}
