//! The end-session page (OpenID Connect RP-Initiated Logout 1.0): a relying party sends the
//! browser to `/logout` to end the user's session here, and may ask to have it sent back.
//!
//! The engine checks the request ([`oauth_proto::end_session`]): an invalid one is an error page
//! and redirects nowhere. A valid one, from a browser signed in here, gets a confirmation page
//! first: the request is a link any site can send a browser to, so ending the session on it alone
//! would let any page sign the user out. The page's form posts the request back with the
//! session's CSRF token and `confirm=1`; only that ends the session (the session store's
//! `sign_out`: a new session id, no user, so the old cookie is worth nothing), and the relying
//! parties that got ID tokens from it are told ([`crate::pages::backchannel`]). A hint whose
//! `sid` is not this session's is refused: it names a session that already ended. Then the browser
//! goes to the client's registered `post_logout_redirect_uri` (with its `state`), or sees a
//! "signed out" page. When relying parties of the session registered a
//! `frontchannel_logout_uri` (OpenID Connect Front-Channel Logout 1.0), the "signed out" page
//! comes first in any case: it frames their logout pages (hidden iframes, with `iss` and `sid`;
//! the page's CSP allows framing exactly their origins) and links on to the redirect. A browser
//! with no signed-in session has nothing to end: it is sent on at once. The consent pages link
//! here ("Sign out").

use oauth_proto::end_session::{EndSessionOutcome, Logout};
use oauth_proto::flow::drive_async;
use oauth_proto::frontchannel_logout::LogoutFrame;
use oauth_proto::response::Response;

use crate::app::App;
use crate::clock;
use crate::http::reply::{self, HttpResponse};
use crate::http::request::Request;
use crate::pages::authorize::{current_session, error_page, form, sessions_down, unavailable_page};
use crate::pages::html::{escape, hidden, page};
use crate::pages::sessions::{self, Ended, Session};
use crate::rng::OsRandom;

/// The request parameters the confirmation form posts back (RP-Initiated Logout §2).
const CARRIED: [&str; 6] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "logout_hint",
    "ui_locales",
];

/// `GET` or `POST /logout`.
pub async fn handle(app: &App, req: Request) -> HttpResponse {
    let now = clock::now();
    let posted = if req.method == hyper::Method::POST {
        match form(&req) {
            Some(f) => Some(f),
            None => return error_page(400, "Invalid form", "The form could not be read."),
        }
    } else {
        None
    };
    let session = match current_session(app, &req, now).await {
        Ok(s) => s,
        Err(down) => return down,
    };
    let field = |name: &str| {
        posted
            .as_ref()
            .and_then(|f| f.get(name))
            .map(String::as_str)
    };
    let confirmed = field("confirm") == Some("1");
    let csrf = field("csrf").unwrap_or("").to_owned();
    let stay = field("stay") == Some("1");
    let client = req.client_addr();
    let query = req.query().to_owned();
    let outcome = match drive_async(
        app.engine.end_session(req.into_engine(), now),
        &app.flow_store,
        &mut OsRandom,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            reply::store_failed(&e, "logout");
            return unavailable_page();
        }
    };
    let logout = match outcome {
        EndSessionOutcome::Logout(l) => l,
        EndSessionOutcome::Invalid(e) => {
            return error_page(400, "This sign-out request is not valid", &e.description)
        }
        _ => {
            tracing::error!("a logout outcome this page does not handle");
            return error_page(500, "Something went wrong", "Try again in a moment.");
        }
    };
    let Some((sid, session)) = session.filter(|(_, s)| s.user.is_some()) else {
        // Nobody is signed in on this browser: nothing to end, nothing to ask.
        return done(&logout, None, &[]);
    };
    // A hint from another session (its `sid`, Back-Channel Logout 2.1) must not end this one:
    // the relying party's user already left that session, and this browser's is someone's else.
    if let Some(hinted) = logout.hint_sid() {
        if session.oidc_sid.as_deref() != Some(hinted) {
            return error_page(
                400,
                "This sign-out request is not valid",
                "id_token_hint names another session than the one signed in on this browser",
            );
        }
    }
    if !confirmed {
        return confirm_page(&logout, &session, posted.as_ref(), &query);
    }
    if !session.csrf_matches(&csrf) {
        return error_page(
            403,
            "Invalid form",
            "This form was not sent from this site's page, or it is out of date.",
        );
    }
    if stay {
        return reply::html(
            200,
            crate::pages::views::message("Still signed in", "You are still signed in."),
            None,
        );
    }
    match app.sessions.sign_out(&sid, now, client).await {
        Ok(Some(out)) => {
            let frames = frames(app, out.ended.as_ref(), now).await;
            crate::pages::backchannel::notify(app, out.ended).await;
            let cookie =
                sessions::set_cookie(&out.id, app.settings.page_ttl_secs, app.secure_cookies);
            done(&logout, Some(&cookie), &frames)
        }
        // The session ended meanwhile: signed out all the same.
        Ok(None) => done(&logout, None, &[]),
        Err(e) => sessions_down(&e),
    }
}

/// The relying parties' front-channel logout pages for the `ended` session
/// ([`oauth_proto::frontchannel_logout`]). The session has ended already: a store failure here
/// costs the frames (logged), never the sign-out.
async fn frames(app: &App, ended: Option<&Ended>, now: u64) -> Vec<LogoutFrame> {
    let Some(ended) = ended.filter(|e| !e.relying_parties.is_empty()) else {
        return Vec::new();
    };
    let flow =
        app.engine
            .frontchannel_logout(ended.oidc_sid.as_deref(), &ended.relying_parties, now);
    drive_async(flow, &app.flow_store, &mut OsRandom)
        .await
        .unwrap_or_else(|e| {
            reply::store_failed(&e, "front-channel logout");
            Vec::new()
        })
}

/// Signed out: on to the client's registered redirect, or a page saying so. With front-channel
/// logout `frames`, a page that frames them comes first (hidden, one per relying party), with a
/// link on to the redirect: a redirect at once would leave no page to frame them in.
fn done(logout: &Logout, cookie: Option<&str>, frames: &[LogoutFrame]) -> HttpResponse {
    let r = if frames.is_empty() {
        signed_out(logout)
    } else {
        framing(logout, frames)
    };
    match cookie {
        Some(c) => reply::with_cookie(r, c),
        None => r,
    }
}

/// The front-channel logout page: "Signed out", the hidden frames, and the way on.
fn framing(logout: &Logout, frames: &[LogoutFrame]) -> HttpResponse {
    let mut body = String::from("<p class=\"ok\">You are signed out.</p>\n");
    for f in frames {
        body.push_str(&format!(
            "<iframe src=\"{}\" title=\"Signing out of {}\" width=\"0\" height=\"0\" \
             hidden></iframe>\n",
            escape(&f.url),
            escape(&f.client_id),
        ));
    }
    if let Some(to) = logout.redirect() {
        body.push_str(&format!("<p><a href=\"{}\">Continue</a></p>\n", escape(to)));
    }
    let origins: Vec<String> = frames
        .iter()
        .filter_map(|f| reply::csp_origin(&f.url))
        .collect();
    reply::html_framing(200, page("Signed out", &body), None, &origins)
}

/// The plain answer: on to the client's registered redirect, or a page saying so.
fn signed_out(logout: &Logout) -> HttpResponse {
    match logout.redirect() {
        Some(to) => reply::from_engine(Response {
            status: 303,
            headers: vec![
                ("location", to.to_owned().into()),
                ("cache-control", "no-store".into()),
            ],
            body: String::new(),
            error: None,
        }),
        None => reply::html(
            200,
            crate::pages::views::message("Signed out", "You are signed out."),
            None,
        ),
    }
}

/// "Sign out?", with the request's parameters and the session's CSRF token in the form.
fn confirm_page(
    logout: &Logout,
    session: &Session,
    posted: Option<&std::collections::HashMap<String, String>>,
    query: &str,
) -> HttpResponse {
    let user = session.user.as_deref().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = Vec::new();
    let parsed: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    for name in CARRIED {
        let value = posted.and_then(|f| f.get(name).cloned()).or_else(|| {
            parsed
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        });
        if let Some(v) = value {
            fields.push((name, v));
        }
    }
    fields.push(("csrf", session.csrf.clone()));
    fields.push(("confirm", "1".to_owned()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let asking = match logout.client_name() {
        Some(name) => format!(
            "<p><strong>{}</strong> asks to sign you out of this server.</p>\n",
            escape(name)
        ),
        None => String::new(),
    };
    let body = format!(
        "<p class=\"muted\">Signed in as <strong>{user}</strong>.</p>\n{asking}\
         <form method=\"post\" action=\"logout\">\n{fields}<div class=\"buttons\">\n\
         <button type=\"submit\">Sign out</button>\n\
         <button type=\"submit\" name=\"stay\" value=\"1\" class=\"secondary\">Stay signed in</button>\n\
         </div>\n</form>\n",
        user = escape(user),
        fields = hidden(&fields),
    );
    // The form's answer redirects to the client: its origin must be a form target too.
    let target = logout.redirect().and_then(reply::csp_origin);
    reply::html(200, page("Sign out?", &body), target.as_deref())
}
