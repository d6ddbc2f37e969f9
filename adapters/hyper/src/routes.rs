//! The route table and the request pipeline around it.
//!
//! [`ROUTES`] lists every endpoint with the methods it allows and whether it answers JSON or HTML;
//! adding an endpoint is one line there and one arm in [`dispatch`]. Around the handlers, [`handle`]
//! answers 404 and 405 (with `Allow`), reads the body under the size and time limits, bounds the
//! handler's time (a slow store gives 503, never a hang), adds the security headers, and logs one
//! line per request: method, path (never the query, which carries codes and state), status and
//! latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use oauth_proto::error::{ErrorCode, OAuthError};

use crate::app::App;
use crate::reply::{self, HttpResponse};
use crate::request::{self, Request};
use crate::{authorize_page, device_page, json_endpoints, pages};

/// What a route's errors look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A JSON API: errors are RFC 6749 JSON.
    Json,
    /// A page for people: errors are HTML.
    Page,
}

/// The handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /healthz`
    Healthz,
    /// `GET /static/style.css`
    Stylesheet,
    /// The authorization endpoint and its pages.
    Authorize,
    /// The token endpoint.
    Token,
    /// Dynamic client registration.
    Register,
    /// RFC 7592 client configuration, `/register/{client_id}`.
    ClientConfiguration,
    /// Token introspection.
    Introspect,
    /// Token revocation.
    Revoke,
    /// The device authorization endpoint.
    DeviceAuthorization,
    /// The device verification page (`verification_uri`).
    DeviceVerification,
    /// Authorization server and protected resource metadata.
    Metadata,
}

/// One row of the table. A path ending in `/{}` matches any one further segment.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The path.
    pub path: &'static str,
    /// Allowed methods.
    pub methods: &'static [&'static str],
    /// JSON or HTML.
    pub kind: Kind,
    /// The handler.
    pub endpoint: Endpoint,
}

/// Every endpoint the server has.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/healthz",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Healthz,
    },
    Route {
        path: "/static/style.css",
        methods: &["GET"],
        kind: Kind::Page,
        endpoint: Endpoint::Stylesheet,
    },
    Route {
        path: "/authorize",
        methods: &["GET", "POST"],
        kind: Kind::Page,
        endpoint: Endpoint::Authorize,
    },
    Route {
        path: "/token",
        methods: &["POST"],
        kind: Kind::Json,
        endpoint: Endpoint::Token,
    },
    Route {
        path: "/register",
        methods: &["POST"],
        kind: Kind::Json,
        endpoint: Endpoint::Register,
    },
    Route {
        path: "/register/{}",
        methods: &["GET", "PUT", "DELETE"],
        kind: Kind::Json,
        endpoint: Endpoint::ClientConfiguration,
    },
    Route {
        path: "/introspect",
        methods: &["POST"],
        kind: Kind::Json,
        endpoint: Endpoint::Introspect,
    },
    Route {
        path: "/revoke",
        methods: &["POST"],
        kind: Kind::Json,
        endpoint: Endpoint::Revoke,
    },
    Route {
        path: "/device_authorization",
        methods: &["POST"],
        kind: Kind::Json,
        endpoint: Endpoint::DeviceAuthorization,
    },
    Route {
        path: "/device",
        methods: &["GET", "POST"],
        kind: Kind::Page,
        endpoint: Endpoint::DeviceVerification,
    },
    Route {
        path: "/.well-known/oauth-authorization-server",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
    Route {
        path: "/.well-known/oauth-authorization-server/{}",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
    Route {
        path: "/.well-known/openid-configuration",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
    Route {
        path: "/.well-known/openid-configuration/{}",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
    Route {
        path: "/.well-known/oauth-protected-resource",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
    Route {
        path: "/.well-known/oauth-protected-resource/{}",
        methods: &["GET"],
        kind: Kind::Json,
        endpoint: Endpoint::Metadata,
    },
];

/// The route for a path, and the trailing segment when the route has one.
pub fn find(path: &str) -> Option<(&'static Route, Option<&str>)> {
    ROUTES.iter().find_map(|r| match r.path.strip_suffix("{}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(|rest| (r, Some(rest))),
        None => (r.path == path).then_some((r, None)),
    })
}

/// Answers one request: the whole pipeline, logging included.
pub async fn handle(
    app: Arc<App>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = reply::secure(route(&app, req, peer, start).await);
    tracing::info!(
        method = %method,
        path = %log_path(uri.path()),
        status = resp.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// The path as logged: at most 200 bytes (cut at a character boundary).
fn log_path(path: &str) -> &str {
    let mut end = path.len().min(200);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Routes and answers; `start` is when the request arrived (its deadline counts from there).
async fn route(
    app: &Arc<App>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    start: Instant,
) -> HttpResponse {
    let Some((route, param)) = find(req.uri().path()) else {
        return reply::json_error(404, &OAuthError::invalid_request("no such endpoint"));
    };
    let param = param.map(str::to_owned);
    if !route.methods.contains(&req.method().as_str()) {
        return method_not_allowed(route);
    }
    // One deadline for the whole request, body and answer: a body too slow is the client's 408, a
    // handler too slow (a stuck store) is 503, never a hang. The selects are biased towards the work:
    // a timer is registered only when first polled, so a request whose body is already here and
    // whose answer needs no waiting never touches the timer wheel.
    let until = tokio::time::Instant::from_std(start)
        + Duration::from_secs(app.settings.request_timeout_secs);
    let max = app.engine.config().max_body_bytes;
    let mut request = match request::read(req, peer, max, until).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let deadline = tokio::time::sleep_until(until);
    tokio::pin!(deadline);
    request.client = app.proxies.client_addr(peer.ip(), &request.headers);
    tokio::select! {
        biased;
        resp = dispatch(app, route.endpoint, request, param) => resp,
        () = &mut deadline => {
            tracing::warn!("a handler exceeded the request timeout");
            reply::unavailable()
        }
    }
}

fn method_not_allowed(route: &Route) -> HttpResponse {
    let allow = route.methods.join(", ");
    let mut resp = match route.kind {
        Kind::Json => reply::json_error(
            405,
            &OAuthError::new(ErrorCode::InvalidRequest, "method not allowed"),
        ),
        Kind::Page => reply::html(
            405,
            pages::error(
                "Method not allowed",
                "This page does not accept that method.",
            ),
            None,
        ),
    };
    if let Ok(v) = hyper::header::HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(hyper::header::ALLOW, v);
    }
    resp
}

/// Runs the endpoint's handler: the token, introspection and revocation endpoints inline, every
/// other one through a boxed [`dispatch_any`]. A request's future is as large as its largest
/// handler's and is moved into place for every request; the page handlers' futures are several
/// kilobytes, which would be copied around on every token request if they were inline.
async fn dispatch(
    app: &Arc<App>,
    endpoint: Endpoint,
    req: Request,
    param: Option<String>,
) -> HttpResponse {
    match endpoint {
        Endpoint::Token => json_endpoints::token(app, req).await,
        Endpoint::Introspect => json_endpoints::introspect(app, req).await,
        Endpoint::Revoke => json_endpoints::revoke(app, req).await,
        _ => Box::pin(dispatch_any(app, endpoint, req, param)).await,
    }
}

/// Runs any endpoint's handler.
async fn dispatch_any(
    app: &Arc<App>,
    endpoint: Endpoint,
    req: Request,
    param: Option<String>,
) -> HttpResponse {
    match endpoint {
        Endpoint::Healthz => reply::text(200, "ok\n"),
        Endpoint::Stylesheet => reply::stylesheet(),
        Endpoint::Authorize if req.method == hyper::Method::GET => {
            authorize_page::show(app, &req).await
        }
        Endpoint::Authorize => authorize_page::submit(app, &req).await,
        Endpoint::Token => json_endpoints::token(app, req).await,
        Endpoint::Register => json_endpoints::register(app, req).await,
        Endpoint::ClientConfiguration => {
            let client_id = param.unwrap_or_default();
            json_endpoints::client_configuration(app, req, &client_id).await
        }
        Endpoint::Introspect => json_endpoints::introspect(app, req).await,
        Endpoint::Revoke => json_endpoints::revoke(app, req).await,
        Endpoint::DeviceAuthorization => json_endpoints::device_authorization(app, req).await,
        Endpoint::DeviceVerification if req.method == hyper::Method::GET => {
            device_page::show(app, &req).await
        }
        Endpoint::DeviceVerification => device_page::submit(app, &req).await,
        Endpoint::Metadata => json_endpoints::metadata(app, &req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_paths_only() {
        assert_eq!(find("/token").unwrap().0.endpoint, Endpoint::Token);
        assert!(find("/token/").is_none());
        assert!(find("/tokens").is_none());
        assert!(find("/").is_none());
    }
}
