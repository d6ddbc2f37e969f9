//! The pages a person sees: sign-in, consent, and errors.
//!
//! Each function returns the page's markup; [`crate::http::reply`] adds the status and the security
//! headers. Every form carries the session's CSRF token and the id of the server-side page state
//! as hidden fields; user names, client names, hosts and scopes are escaped.

use std::fmt::Write;

use oauth_proto::scope::Scope;

use crate::pages::html::{escape, hidden, page};

/// Where a form posts, and the hidden fields every form carries. The sign-in and consent views
/// are shared by every page that needs them (the target path says which page's handler gets the
/// answer: `/authorize` or `/device`).
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

/// The consent view: who asks (`client_name`), where the answer goes (`host`, of the redirect
/// URI), and what for. A client known by its metadata document (an `https` URL as `client_id`)
/// names itself, so the page puts first what vouches for it: the host that publishes the
/// document, and where the answer goes, saying so when that is neither this device nor that host.
pub fn consent(
    client_name: &str,
    client_id: &str,
    host: &str,
    scope: &Scope,
    resources: &[String],
    user: &str,
    ids: FormIds<'_>,
) -> String {
    let mut b = String::new();
    signed_in_as(&mut b, user);
    match document_host(client_id) {
        Some(publisher) => document_client(&mut b, client_name, &publisher, host),
        None => {
            let _ = writeln!(
                b,
                "<p><strong>{}</strong> (<code>{}</code>) wants access to your account:</p>",
                escape(client_name),
                escape(host)
            );
        }
    }
    scope_list(&mut b, scope);
    resource_list(&mut b, resources);
    decision_forms(&mut b, user, ids);
    page("Allow access?", &b)
}

/// The host of a client id that is a metadata document URL.
fn document_host(client_id: &str) -> Option<String> {
    if !oauth_proto::client_id_document::is_document_url(client_id) {
        return None;
    }
    Some(url::Url::parse(client_id).ok()?.host_str()?.to_owned())
}

/// Who asks, for a client known by its metadata document.
fn document_client(b: &mut String, client_name: &str, publisher: &str, host: &str) {
    let _ = writeln!(
        b,
        "<p>An application published by <strong><code>{}</code></strong> wants access to your \
         account. It calls itself &ldquo;{}&rdquo;.</p>",
        escape(publisher),
        escape(client_name)
    );
    let local = matches!(host, "127.0.0.1" | "[::1]");
    let where_to = if local {
        "an application on this device".to_owned()
    } else {
        format!("<strong><code>{}</code></strong>", escape(host))
    };
    let _ = writeln!(b, "<p>If you allow it, the answer goes to {where_to}.</p>");
    if !local && host != publisher {
        let _ = writeln!(
            b,
            "<p><strong>Check:</strong> the answer goes to another host than the one that \
             publishes the application. Allow only if you trust both.</p>"
        );
    }
    let _ = writeln!(b, "<p>It asks for:</p>");
}

/// The device verification form: one input named `user_code`, prefilled from the link the device
/// showed (`verification_uri_complete`), with an optional error.
pub fn device_code(csrf: &str, user_code: &str, error: Option<&str>) -> String {
    let mut b = String::new();
    b.push_str("<p>Enter the code shown on your device.</p>\n");
    if let Some(e) = error {
        let _ = writeln!(b, "<p class=\"error\" role=\"alert\">{}</p>", escape(e));
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/device\">\n{}\
         <label for=\"user_code\">Code</label>\n\
         <input id=\"user_code\" name=\"user_code\" type=\"text\" autocomplete=\"off\" \
         autocapitalize=\"characters\" spellcheck=\"false\" required maxlength=\"64\" \
         placeholder=\"WDJB-MJHT\" value=\"{}\">\n\
         <button type=\"submit\">Continue</button>\n</form>\n",
        hidden(&[("csrf", csrf)]),
        escape(user_code)
    );
    page("Connect a device", &b)
}

/// The consent view for a device: who asks, the code to compare with the device's screen (RFC
/// 8628 §5.4: a remote phishing defence), and what for.
pub fn device_consent(
    client_name: &str,
    scope: &Scope,
    user_code: &str,
    user: &str,
    ids: FormIds<'_>,
) -> String {
    let mut b = String::new();
    signed_in_as(&mut b, user);
    let _ = writeln!(
        b,
        "<p>A device using <strong>{}</strong> wants access to your account:</p>",
        escape(client_name)
    );
    scope_list(&mut b, scope);
    let _ = writeln!(
        b,
        "<p>Code: <strong class=\"user-code\">{}</strong></p>\n\
         <p class=\"warning\">Only continue if you started this on your device and the code \
         matches the one it shows. If someone sent you this code, deny.</p>",
        escape(user_code)
    );
    decision_forms(&mut b, user, ids);
    page("Allow this device?", &b)
}

/// "Signed in as …", at the top of a consent view, with a link that ends the session
/// ([`crate::pages::logout`]; relative, so it stays under the issuer's path like the page).
fn signed_in_as(b: &mut String, user: &str) {
    let _ = writeln!(
        b,
        "<p class=\"muted\">Signed in as <strong>{}</strong>. <a href=\"logout\">Sign \
         out</a></p>",
        escape(user)
    );
}

/// The scopes a consent asks for, one per line.
fn scope_list(b: &mut String, scope: &Scope) {
    b.push_str("<ul class=\"scopes\">\n");
    if scope.is_empty() {
        b.push_str("<li>basic access (no specific scope)</li>\n");
    }
    for s in scope.tokens() {
        let _ = writeln!(b, "<li>{}</li>", escape(s));
    }
    b.push_str("</ul>\n");
}

/// Where the access may be used (RFC 8707 resources), when the client named any: a token for
/// `imap://mail.example.com` alone is a narrower grant than the same scope everywhere, and the
/// user decides on what is actually granted.
fn resource_list(b: &mut String, resources: &[String]) {
    if resources.is_empty() {
        return;
    }
    b.push_str("<p>Only at:</p>\n<ul class=\"resources\">\n");
    for r in resources {
        let _ = writeln!(b, "<li><code>{}</code></li>", escape(r));
    }
    b.push_str("</ul>\n");
}

/// The Allow / Deny buttons (`decision=approve|deny`) and the switch-user form of a consent view.
fn decision_forms(b: &mut String, user: &str, ids: FormIds<'_>) {
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
}

/// A result the person reads, that is not an error (a device approved).
pub fn message(title: &str, message: &str) -> String {
    page(title, &format!("<p class=\"ok\">{}</p>\n", escape(message)))
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

/// An error in a request of a self-registered client (RFC 9700 §4.11.2): the error, and the
/// error redirect as a link the person may follow, naming where it leads. Never followed on its own.
pub fn error_with_link(title: &str, message: &str, href: &str, host: &str) -> String {
    page(
        title,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n\
             <p>The application that sent you here can be told about the error at \
             <strong>{}</strong>. Only continue if you trust that site.</p>\n\
             <p><a href=\"{}\" rel=\"noreferrer\">Return to {}</a></p>\n",
            escape(message),
            escape(host),
            escape(href),
            escape(host)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_escapes_client_supplied_text() {
        let html = consent(
            "<b>Evil</b>",
            "client-1",
            "app.example.com",
            &Scope::parse("mail calendar").unwrap(),
            &["imap://mail.example.com/<x>".to_owned()],
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
        assert!(html.contains("<li><code>imap://mail.example.com/&lt;x&gt;</code></li>"));
        assert!(html.contains("value=\"t&quot;x\""));
        assert!(html.contains("name=\"decision\" value=\"approve\""));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        assert!(html.contains("<a href=\"logout\">Sign out</a>"));
    }

    #[test]
    fn a_document_client_is_shown_by_its_publisher_and_redirect_host() {
        let ids = FormIds {
            action: "/authorize",
            csrf: "t",
            page: "p",
        };
        let scope = Scope::parse("mail").unwrap();
        let id = "https://tools.example.org/oauth/client.json";
        let html = consent(
            "<i>Mail</i>",
            id,
            "evil.example.net",
            &scope,
            &[],
            "alice",
            ids,
        );
        assert!(html.contains("published by <strong><code>tools.example.org</code></strong>"));
        assert!(html.contains("&lt;i&gt;Mail&lt;/i&gt;"));
        assert!(html.contains("<strong><code>evil.example.net</code></strong>"));
        assert!(html.contains("another host than the one that"));
        let html = consent("Mail", id, "127.0.0.1", &scope, &[], "alice", ids);
        assert!(html.contains("an application on this device"));
        assert!(!html.contains("another host"));
        let html = consent("Mail", id, "tools.example.org", &scope, &[], "alice", ids);
        assert!(!html.contains("another host"));
    }

    #[test]
    fn device_pages_escape_and_show_the_code() {
        let html = device_consent(
            "<i>TV</i>",
            &Scope::parse("mail").unwrap(),
            "WDJB-MJHT",
            "alice",
            FormIds {
                action: "/device",
                csrf: "c",
                page: "p",
            },
        );
        assert!(html.contains("&lt;i&gt;TV&lt;/i&gt;"));
        assert!(html.contains("WDJB-MJHT") && html.contains("Only continue"));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        let form = device_code("c", "\"><x", Some("bad"));
        assert!(form.contains("name=\"user_code\""));
        assert!(form.contains("value=\"&quot;&gt;&lt;x\""));
        assert!(form.contains("bad"));
    }

    #[test]
    fn the_error_link_is_escaped_and_names_its_host() {
        let html = error_with_link(
            "Error",
            "<m>",
            "https://evil.example/landing?error=x&state=\"><",
            "evil.example",
        );
        assert!(
            html.contains("href=\"https://evil.example/landing?error=x&amp;state=&quot;&gt;&lt;\"")
        );
        assert!(html.contains("Return to evil.example"));
        assert!(html.contains("&lt;m&gt;"));
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
