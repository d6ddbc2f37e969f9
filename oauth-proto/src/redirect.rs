//! Redirect URIs: matching a requested URI against the registered ones, and building redirects.
//!
//! Matching is exact string comparison (RFC 9700 §4.1.3): no normalization, no prefix, no case
//! folding. The one exception is the loopback interface (RFC 8252 §7.3, OAuth 2.1 §8.4.2): for an
//! `http` URI on the IP literal `127.0.0.1` or `[::1]`, the port may differ, because native apps
//! listen on an ephemeral port. Everything else (scheme, host, path, query) must still match exactly.
//! `localhost` gets no exception, since a name may resolve off the machine: registration refuses it
//! (`client_metadata::check_redirect_uri`, RFC 8252 §8.3), so only a client registered before that
//! can hold one, and it is matched exactly.

const LOOPBACK_PREFIXES: [&str; 2] = ["http://127.0.0.1", "http://[::1]"];

/// True when `requested` may be used as `registered`.
pub(crate) fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (
        without_loopback_port(registered),
        without_loopback_port(requested),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// For a loopback `http` URI, the URI with its port removed; `None` for any other URI.
fn without_loopback_port(uri: &str) -> Option<String> {
    let prefix = LOOPBACK_PREFIXES.iter().find(|p| uri.starts_with(**p))?;
    let rest = &uri[prefix.len()..];
    let rest = match rest.strip_prefix(':') {
        Some(port_and_rest) => {
            let digits = port_and_rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            &port_and_rest[digits..]
        }
        None => rest,
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some(format!("{prefix}{rest}"))
}

/// Finds which redirect URI to use: the requested one if it matches a registered one, or the only
/// registered one when none was requested. `None` means the request must not be redirected.
pub(crate) fn resolve(registered: &[String], requested: Option<&str>) -> Option<String> {
    match requested {
        Some(req) => registered
            .iter()
            .any(|r| matches(r, req))
            .then(|| req.to_owned()),
        None if registered.len() == 1 => Some(registered[0].clone()),
        None => None,
    }
}

/// Appends parameters to a redirect URI's query, keeping any query it already has (RFC 6749 §3.1.2).
/// The URI was matched against a registered one, so it parses; if it somehow does not, `None`.
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// True when a URI is acceptable as a redirect target at all: absolute, no fragment (RFC 6749 §3.1.2).
pub(crate) fn is_absolute_without_fragment(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none() && !uri.contains('#'))
}
