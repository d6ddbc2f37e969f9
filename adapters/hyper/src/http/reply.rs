//! Building HTTP responses: copying the engine's responses onto hyper's, JSON errors, HTML pages,
//! the security headers every response carries, and the rate-limited log line of store failures.
//!
//! Pages get a Content-Security-Policy that allows no script at all, styles only from this origin,
//! and form submissions only to this origin plus, on a consent page, the client's redirect origin
//! (browsers apply `form-action` to the redirect that follows the POST).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use oauth_proto::error::OAuthError;
use oauth_proto::store::StoreError;

/// The body type of every response.
pub type Body = Full<Bytes>;
/// A response as the server sends it.
pub type HttpResponse = hyper::Response<Body>;

/// The policy for answers that are not pages (JSON, redirects): nothing may load or frame them.
const CSP_NONE: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Room for the headers a response gets besides its own: the four of [`secure`].
const SECURITY_HEADERS: usize = 4;

/// A bare response with a status and body, its header map sized for `headers` of its own plus the
/// security headers (so adding them never grows and rehashes the map).
fn build(status: u16, body: impl Into<Bytes>, headers: usize) -> HttpResponse {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    *r.headers_mut() = hyper::HeaderMap::with_capacity(headers + SECURITY_HEADERS);
    r
}

fn set(r: &mut HttpResponse, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Copies an engine response. Header names from the engine are lowercase static strings; its
/// constant values are shared, not copied.
pub fn from_engine(resp: oauth_proto::response::Response) -> HttpResponse {
    let mut r = build(resp.status, resp.body, resp.headers.len());
    for (name, value) in resp.headers {
        let value = match value {
            Cow::Borrowed(v) => HeaderValue::from_maybe_shared(Bytes::from_static(v.as_bytes())),
            Cow::Owned(v) => HeaderValue::from_maybe_shared(Bytes::from(v)),
        };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), value) {
            r.headers_mut().append(n, v);
        }
    }
    r
}

/// A JSON error in the RFC 6749 §5.2 shape, with a status chosen by the caller.
pub fn json_error(status: u16, err: &OAuthError) -> HttpResponse {
    let mut engine = oauth_proto::response::Response::error(err);
    engine.status = status;
    from_engine(engine)
}

/// The `Retry-After` of a 503 for a store failure, in seconds: long enough not to hammer a
/// database coming back, short enough for a failover.
pub const RETRY_AFTER_SECS: u64 = 5;

/// `temporarily_unavailable` (503) with `Retry-After`: the store failed; the client did nothing
/// wrong.
pub fn unavailable() -> HttpResponse {
    let mut r = json_error(
        503,
        &OAuthError::new(
            oauth_proto::error::ErrorCode::TemporarilyUnavailable,
            "the server cannot reach its storage; try again shortly",
        ),
    );
    retry_after(&mut r);
    r
}

/// Adds `Retry-After: RETRY_AFTER_SECS` (a 503 for a store failure, page or JSON).
pub fn retry_after(r: &mut HttpResponse) {
    r.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER_SECS),
    );
}

/// An HTML page. `form_target` is an extra origin forms (and the redirects they trigger) may go
/// to. Pages always get `Cache-Control: no-store`: they carry CSRF tokens or personal data.
pub fn html(status: u16, markup: String, form_target: Option<&str>) -> HttpResponse {
    html_framing(status, markup, form_target, &[])
}

/// An HTML page that frames pages of `frames` (origins, as [`csp_origin`] gives them): the
/// front-channel logout page. Otherwise as [`html`].
pub fn html_framing(
    status: u16,
    markup: String,
    form_target: Option<&str>,
    frames: &[String],
) -> HttpResponse {
    let mut r = build(status, markup, 3);
    set(&mut r, "content-type", "text/html; charset=utf-8");
    set(&mut r, "cache-control", "no-store");
    let extra = form_target.map(|t| format!(" {t}")).unwrap_or_default();
    let frame_src = if frames.is_empty() {
        String::new()
    } else {
        format!("frame-src {}; ", frames.join(" "))
    };
    set(
        &mut r,
        "content-security-policy",
        &format!(
            "default-src 'none'; style-src 'self'; {frame_src}form-action 'self'{extra}; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
    );
    r
}

/// The stylesheet, cacheable.
pub fn stylesheet() -> HttpResponse {
    let mut r = build(200, include_str!("../../static/style.css"), 2);
    set(&mut r, "content-type", "text/css; charset=utf-8");
    set(&mut r, "cache-control", "public, max-age=3600");
    r
}

/// Plain text (health checks).
pub fn text(status: u16, body: &'static str) -> HttpResponse {
    let mut r = build(status, body, 2);
    set(&mut r, "content-type", "text/plain; charset=utf-8");
    set(&mut r, "cache-control", "no-store");
    r
}

/// Adds `Set-Cookie`.
pub fn with_cookie(mut r: HttpResponse, cookie: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(hyper::header::SET_COOKIE, v);
    }
    r
}

/// The policy for answers that are not pages, as a header value.
const CSP_NONE_VALUE: HeaderValue = HeaderValue::from_static(CSP_NONE);

/// The headers every response carries; a page's own policy is kept.
pub fn secure(mut r: HttpResponse) -> HttpResponse {
    const FIXED: [(HeaderName, HeaderValue); 3] = [
        (
            hyper::header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        (
            hyper::header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            hyper::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let h = r.headers_mut();
    if !h.contains_key(hyper::header::CONTENT_SECURITY_POLICY) {
        h.insert(hyper::header::CONTENT_SECURITY_POLICY, CSP_NONE_VALUE);
    }
    for (name, value) in FIXED {
        h.insert(name, value);
    }
    r
}

/// The origin a redirect URI's answer goes to, as a CSP source expression: `scheme://host:port`
/// for http(s), `scheme:` for a private-use scheme. `None` if it cannot be expressed safely.
pub fn csp_origin(redirect_uri: &str) -> Option<String> {
    let u = url::Url::parse(redirect_uri).ok()?;
    let s = match u.scheme() {
        "http" | "https" => u.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
        .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_origins() {
        assert_eq!(
            csp_origin("http://127.0.0.1:4711/cb?x=1").as_deref(),
            Some("http://127.0.0.1:4711")
        );
        assert_eq!(
            csp_origin("https://app.example.com/cb").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            csp_origin("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
    }

    #[test]
    fn pages_forbid_scripts_and_framing() {
        let r = secure(html(200, "x".to_owned(), Some("https://a.example")));
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; style-src 'self'"));
        assert!(csp.contains("form-action 'self' https://a.example;"));
        assert!(!csp.contains("script"));
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
}

// Store failures in the log: one clear line per outage, not one per request.
//
// When the database goes down every request fails the same way; a line for each would bury
// everything else in the log (and fill its disk) just when an operator reads it. So the first
// failure is logged at once with the store's own words (what failed and why: "PostgreSQL:
// connecting: connection refused"), then at most one line every `EVERY`, saying how many
// failures it stood for. Each request still gets its 503 with `Retry-After` (`unavailable`);
// the lines left out are logged at debug level.

/// At most one store failure line per this long.
pub const EVERY: Duration = Duration::from_secs(10);

/// When the last store failure line was written, and the failures since.
#[derive(Debug, Default)]
pub struct OutageLog {
    last: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl OutageLog {
    /// Whether a failure at `now` gets a line; if so, how many failures were left out before
    /// it (since the previous line).
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < EVERY => {
                self.unlogged.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.unlogged.swap(0, Ordering::Relaxed))
            }
        }
    }
}

static LOG: OutageLog = OutageLog {
    last: Mutex::new(None),
    unlogged: AtomicU64::new(0),
};

/// Logs a store failure seen while `doing` (an endpoint or a page's step), rate-limited.
pub fn store_failed(e: &StoreError, doing: &str) {
    match LOG.admit(Instant::now()) {
        Some(unlogged) => tracing::error!(
            error = %e,
            kind = ?e.kind(),
            doing,
            unlogged,
            "the store is failing; requests get 503 with Retry-After until it answers again \
             (at most one such line per 10 s; `unlogged` counts the failures since the last)"
        ),
        None => tracing::debug!(error = %e, doing, "store failure"),
    }
}

#[cfg(test)]
mod outage_tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let log = OutageLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for i in 1..=100 {
            assert_eq!(log.admit(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(log.admit(t0 + EVERY), Some(100));
        assert_eq!(log.admit(t0 + EVERY + Duration::from_secs(1)), None);
        assert_eq!(log.admit(t0 + EVERY * 3), Some(1));
    }
}
