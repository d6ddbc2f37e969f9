//! HTML building blocks: escaping and the page frame.
//!
//! Pages are plain strings built with `format!`; everything that did not come from this file goes
//! through [`escape`] first, which is the one rule that keeps the pages free of injected markup.
//! The frame links the one stylesheet ([`STYLESHEET`]) and carries no script, so the
//! Content-Security-Policy can forbid scripts entirely. The link is relative: every page is served
//! directly under the issuer's path, and so is the stylesheet, so it resolves for an issuer with a
//! path (`/auth/authorize` links `/auth/static/style.css`) as for one without.

use std::fmt::Write;

/// The stylesheet's path relative to the issuer's path (and so to every page).
pub const STYLESHEET: &str = "static/style.css";

/// Escapes text for an HTML element body or a double-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page: `title` is text (escaped here), `body` is markup built by the caller.
pub fn page(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 512);
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET}\">\n</head>\n\
         <body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    );
    s
}

/// Hidden form fields, escaped.
pub fn hidden(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (name, value) in fields {
        let _ = writeln!(
            s,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let p = page("<script>", "<p>ok</p>");
        assert!(p.contains("<title>&lt;script&gt;</title>"));
        assert!(!p.contains("<script>"));
    }
}
