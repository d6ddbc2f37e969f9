//! The pages a person sees: sign-in, consent, and errors.
//!
//! Each function returns the page's markup; [`crate::reply`] adds the status and the security
//! headers. Every form carries the session's CSRF token and the id of the server-side page state
//! as hidden fields; user names, client names, hosts and scopes are escaped.

use std::fmt::Write;

use oauth_proto::authorize::PendingAuthorization;

use crate::html::{escape, hidden, page};

/// Where a form posts, and the hidden fields every form carries. The sign-in and consent views
/// are shared by every page that needs them (the target path says which page's handler gets the
/// answer, e.g. `/authorize`, or the device verification page once the engine has the device
/// flow).
#[derive(Clone, Copy, Debug)]
pub struct FormIds<'a> {
    /// The path the form posts to.
    pub action: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// The id of the server-side page state.
    pub page: &'a str,
}

impl FormIds<'_> {
    fn fields(&self) -> String {
        hidden(&[("csrf", self.csrf), ("page", self.page)])
    }
}

/// The sign-in form, optionally with an error and the name typed before.
pub fn login(client_name: &str, ids: FormIds<'_>, error: Option<&str>, username: &str) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p><strong>{}</strong> asks you to sign in.</p>",
        escape(client_name)
    );
    if let Some(e) = error {
        let _ = writeln!(b, "<p class=\"error\" role=\"alert\">{}</p>", escape(e));
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"{}\">\n{}\
         <label for=\"username\">User name</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required value=\"{}\">\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n",
        escape(ids.action),
        ids.fields(),
        escape(username)
    );
    page("Sign in", &b)
}

/// The consent view: who asks, where the answer goes, and what for.
pub fn consent(p: &PendingAuthorization, user: &str, ids: FormIds<'_>) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p class=\"muted\">Signed in as <strong>{}</strong>.</p>",
        escape(user)
    );
    let _ = writeln!(
        b,
        "<p><strong>{}</strong> (<code>{}</code>) wants access to your account:</p>",
        escape(&p.client_name),
        escape(&p.redirect_host())
    );
    b.push_str("<ul class=\"scopes\">\n");
    if p.scope.is_empty() {
        b.push_str("<li>basic access (no specific scope)</li>\n");
    }
    for s in p.scope.tokens() {
        let _ = writeln!(b, "<li>{}</li>", escape(s));
    }
    b.push_str("</ul>\n");
    let _ = write!(
        b,
        "<form method=\"post\" action=\"{action}\">\n{fields}<div class=\"buttons\">\n\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n\
         </div>\n</form>\n\
         <form method=\"post\" action=\"{action}\" class=\"switch\">\n{fields}\
         <button type=\"submit\" name=\"switch_user\" value=\"1\" class=\"link\">Not {user}? Sign in as someone else</button>\n</form>\n",
        action = escape(ids.action),
        fields = ids.fields(),
        user = escape(user)
    );
    page("Allow access?", &b)
}

/// An error the person has to read (never a redirect).
pub fn error(title: &str, message: &str) -> String {
    page(
        title,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::scope::Scope;

    #[test]
    fn consent_escapes_client_supplied_text() {
        let p = PendingAuthorization {
            client_id: "c".to_owned(),
            client_name: "<b>Evil</b>".to_owned(),
            redirect_uri: "https://app.example.com/cb".to_owned(),
            redirect_uri_sent: true,
            scope: Scope::parse("mail calendar").unwrap(),
            state: None,
            challenge: None,
        };
        let html = consent(
            &p,
            "alice",
            FormIds {
                action: "/authorize",
                csrf: "t\"x",
                page: "p",
            },
        );
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;"));
        assert!(html.contains("app.example.com"));
        assert!(html.contains("<li>calendar</li>"));
        assert!(html.contains("value=\"t&quot;x\""));
        assert!(html.contains("name=\"decision\" value=\"approve\""));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
    }

    #[test]
    fn login_has_the_named_inputs() {
        let html = login(
            "App",
            FormIds {
                action: "/authorize",
                csrf: "c",
                page: "p",
            },
            Some("Wrong"),
            "<bob>",
        );
        assert!(html.contains("name=\"username\""));
        assert!(html.contains("name=\"password\""));
        assert!(html.contains("value=\"&lt;bob&gt;\""));
        assert!(html.contains("Wrong"));
    }
}
