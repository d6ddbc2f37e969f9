//! The route table and the request pipeline around it.
//!
//! [`Routes`] lists every endpoint with the methods it allows and whether it answers JSON or HTML;
//! adding an endpoint is one row there and one arm in [`dispatch`]. The paths are not typed here:
//! they come from the engine ([`Engine::endpoints`] and its well-known paths), built from the
//! configured issuer, so the server serves exactly the URLs its metadata advertises. For an issuer
//! with a path (`https://example.com/auth`) every endpoint, page and the stylesheet live under
//! `/auth/...`, the RFC 8414 documents at `/.well-known/oauth-authorization-server/auth` (and the
//! OpenID Connect discovery document at both `/auth/.well-known/openid-configuration`, the URL SASL
//! error challenges carry, and `/.well-known/openid-configuration/auth`); only `/healthz` stays at
//! the root, for probes that know nothing of the issuer.
//!
//! Around the handlers, [`handle`] answers 404 and 405 (with `Allow`), reads the body under the size
//! and time limits, bounds the handler's time (a slow store gives 503, never a hang), adds the
//! security headers, and logs one line per request: method, path (never the query, which carries
//! codes and state), status and latency. The same status and latency are counted for `/metrics`,
//! by endpoint ([`crate::http::metrics`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use oauth_proto::endpoints::Endpoints;
use oauth_proto::error::{ErrorCode, OAuthError};
use oauth_proto::Engine;

use crate::app::App;
use crate::http::reply::{self, HttpResponse};
use crate::http::request::{self, Request};
use crate::http::{json_endpoints, metrics};
use crate::pages::{authorize, device, views};

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
    /// `GET {issuer path}/static/style.css`
    Stylesheet,
    /// The authorization endpoint and its pages.
    Authorize,
    /// The token endpoint.
    Token,
    /// Dynamic client registration.
    Register,
    /// RFC 7592 client configuration, `{registration}/{client_id}`.
    ClientConfiguration,
    /// Token introspection.
    Introspect,
    /// Token revocation.
    Revoke,
    /// The userinfo endpoint (OpenID Connect; Dovecot's `introspection_url`).
    Userinfo,
    /// The device authorization endpoint.
    DeviceAuthorization,
    /// The device verification page (`verification_uri`).
    DeviceVerification,
    /// The end-session endpoint (RP-initiated logout) and its confirmation page.
    EndSession,
    /// Authorization server and protected resource metadata, and the JWK Set (`jwks_uri`).
    Metadata,
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Route {
    /// The path; with `segment`, the path of the collection below which one segment is matched.
    pub path: String,
    /// The route matches `{path}/{one segment}`, handed to the handler (e.g. a client id).
    pub segment: bool,
    /// Allowed methods.
    pub methods: &'static [&'static str],
    /// JSON or HTML.
    pub kind: Kind,
    /// The handler.
    pub endpoint: Endpoint,
}

/// Every endpoint the server has, at the paths the engine's issuer gives them.
#[derive(Clone, Debug)]
pub struct Routes(Vec<Route>);

const GET: &[&str] = &["GET"];
const POST: &[&str] = &["POST"];
const GET_POST: &[&str] = &["GET", "POST"];

impl Routes {
    /// The table for an engine: every path derived from its configured issuer.
    pub fn new(engine: &Engine) -> Self {
        let e = engine.endpoints();
        let at = |url: &str| Endpoints::path_of(url);
        let row = |path: String, methods, kind, endpoint| Route {
            path,
            segment: false,
            methods,
            kind,
            endpoint,
        };
        let base = at(&e.issuer).trim_end_matches('/').to_owned();
        let mut table = vec![
            row("/healthz".to_owned(), GET, Kind::Json, Endpoint::Healthz),
            row(
                format!("{base}/{}", crate::pages::html::STYLESHEET),
                GET,
                Kind::Page,
                Endpoint::Stylesheet,
            ),
            row(
                at(&e.authorization),
                GET_POST,
                Kind::Page,
                Endpoint::Authorize,
            ),
            row(at(&e.token), POST, Kind::Json, Endpoint::Token),
            row(at(&e.registration), POST, Kind::Json, Endpoint::Register),
            Route {
                segment: true,
                ..row(
                    at(&e.registration),
                    &["GET", "PUT", "DELETE"],
                    Kind::Json,
                    Endpoint::ClientConfiguration,
                )
            },
            row(at(&e.introspection), POST, Kind::Json, Endpoint::Introspect),
            row(at(&e.revocation), POST, Kind::Json, Endpoint::Revoke),
            row(at(&e.userinfo), GET_POST, Kind::Json, Endpoint::Userinfo),
            row(
                at(&e.device_authorization),
                POST,
                Kind::Json,
                Endpoint::DeviceAuthorization,
            ),
            row(
                at(&e.device_verification),
                GET_POST,
                Kind::Page,
                Endpoint::DeviceVerification,
            ),
            row(
                at(&e.end_session),
                GET_POST,
                Kind::Page,
                Endpoint::EndSession,
            ),
        ];
        let documents = [
            engine.metadata_path(),
            // The JWK Set at `jwks_uri`: a public document like the metadata.
            at(&e.jwks),
            at(&e.openid_configuration),
            engine.openid_configuration_inserted_path(),
        ]
        .into_iter()
        // The co-located resource's RFC 9728 document and each configured resource's.
        .chain(engine.protected_resource_metadata_paths());
        for path in documents {
            // For an issuer without a path both OpenID Connect locations are one path.
            if !table.iter().any(|r| r.path == path) {
                table.push(row(path, GET, Kind::Json, Endpoint::Metadata));
            }
        }
        Routes(table)
    }

    /// The route for a path, and the trailing segment when the route has one.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Route, Option<&'p str>)> {
        self.0.iter().find_map(|r| {
            let rest = path.strip_prefix(r.path.as_str())?;
            if !r.segment {
                return rest.is_empty().then_some((r, None));
            }
            rest.strip_prefix('/')
                .filter(|seg| !seg.is_empty() && !seg.contains('/'))
                .map(|seg| (r, Some(seg)))
        })
    }

    /// Every row, in matching order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }
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
    let mut matched = None;
    let resp = reply::secure(route(&app, req, peer, start, &mut matched).await);
    let elapsed = start.elapsed();
    metrics::record(matched, resp.status().as_u16(), elapsed);
    tracing::info!(
        method = %method,
        path = %log_path(uri.path()),
        status = resp.status().as_u16(),
        latency_us = elapsed.as_micros() as u64,
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

/// Routes and answers; `start` is when the request arrived (its deadline counts from there);
/// `matched` is set to the endpoint of the route that matched, for the metrics.
async fn route(
    app: &Arc<App>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    start: Instant,
    matched: &mut Option<Endpoint>,
) -> HttpResponse {
    let Some((route, param)) = app.routes.find(req.uri().path()) else {
        return reply::json_error(404, &OAuthError::invalid_request("no such endpoint"));
    };
    *matched = Some(route.endpoint);
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
            views::error(
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
        Endpoint::Authorize if req.method == hyper::Method::GET => authorize::show(app, &req).await,
        Endpoint::Authorize => authorize::submit(app, &req).await,
        Endpoint::Token => json_endpoints::token(app, req).await,
        Endpoint::Register => json_endpoints::register(app, req).await,
        Endpoint::ClientConfiguration => {
            let client_id = param.unwrap_or_default();
            json_endpoints::client_configuration(app, req, &client_id).await
        }
        Endpoint::Introspect => json_endpoints::introspect(app, req).await,
        Endpoint::Revoke => json_endpoints::revoke(app, req).await,
        Endpoint::Userinfo => json_endpoints::userinfo(app, req).await,
        Endpoint::DeviceAuthorization => json_endpoints::device_authorization(app, req).await,
        Endpoint::DeviceVerification if req.method == hyper::Method::GET => {
            device::show(app, &req).await
        }
        Endpoint::DeviceVerification => device::submit(app, &req).await,
        Endpoint::EndSession => crate::pages::logout::handle(app, req).await,
        Endpoint::Metadata => json_endpoints::metadata(app, &req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(issuer: &str) -> Routes {
        let config = oauth_proto::config::Config {
            issuer: issuer.to_owned(),
            ..oauth_proto::config::Config::default()
        };
        Routes::new(&crate::admin::setup::admin_engine(config).unwrap())
    }

    fn endpoint(routes: &Routes, path: &str) -> Option<Endpoint> {
        routes.find(path).map(|(r, _)| r.endpoint)
    }

    #[test]
    fn finds_exact_paths_only() {
        let routes = routes("http://127.0.0.1:8080");
        assert_eq!(endpoint(&routes, "/token"), Some(Endpoint::Token));
        assert!(routes.find("/token/").is_none());
        assert!(routes.find("/tokens").is_none());
        assert!(routes.find("/").is_none());
        assert_eq!(
            routes.find("/register/abc").map(|(r, p)| (r.endpoint, p)),
            Some((Endpoint::ClientConfiguration, Some("abc")))
        );
        assert!(routes.find("/register/").is_none());
        assert!(routes.find("/register/a/b").is_none());
        assert!(routes.find("/registerabc").is_none());
    }

    #[test]
    fn an_issuer_with_a_path_serves_everything_under_it() {
        let routes = routes("https://example.com/auth");
        for (path, want) in [
            ("/auth/authorize", Endpoint::Authorize),
            ("/auth/token", Endpoint::Token),
            ("/auth/register", Endpoint::Register),
            ("/auth/register/abc", Endpoint::ClientConfiguration),
            ("/auth/introspect", Endpoint::Introspect),
            ("/auth/revoke", Endpoint::Revoke),
            ("/auth/userinfo", Endpoint::Userinfo),
            ("/auth/device_authorization", Endpoint::DeviceAuthorization),
            ("/auth/device", Endpoint::DeviceVerification),
            ("/auth/static/style.css", Endpoint::Stylesheet),
            ("/auth/.well-known/openid-configuration", Endpoint::Metadata),
            ("/.well-known/openid-configuration/auth", Endpoint::Metadata),
            (
                "/.well-known/oauth-authorization-server/auth",
                Endpoint::Metadata,
            ),
            (
                "/.well-known/oauth-protected-resource/auth",
                Endpoint::Metadata,
            ),
            ("/healthz", Endpoint::Healthz),
        ] {
            assert_eq!(endpoint(&routes, path), Some(want), "{path}");
        }
        // The root paths belong to no issuer here.
        for path in [
            "/token",
            "/authorize",
            "/static/style.css",
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server/other",
        ] {
            assert!(routes.find(path).is_none(), "{path}");
        }
    }

    /// Every URL the engine hands out or advertises is routed.
    #[test]
    fn every_advertised_url_is_routed() {
        for issuer in ["http://127.0.0.1:8080", "https://example.com/auth/"] {
            let config = oauth_proto::config::Config {
                issuer: issuer.to_owned(),
                ..oauth_proto::config::Config::default()
            };
            let engine = crate::admin::setup::admin_engine(config).unwrap();
            let routes = Routes::new(&engine);
            let e = engine.endpoints();
            for url in [
                &e.authorization,
                &e.token,
                &e.registration,
                &e.client_configuration("abc"),
                &e.introspection,
                &e.revocation,
                &e.device_authorization,
                &e.device_verification,
                &e.userinfo,
                &e.openid_configuration,
            ] {
                assert!(routes.find(&Endpoints::path_of(url)).is_some(), "{url}");
            }
            let metadata: serde_json::Value =
                serde_json::from_str(&engine.metadata().body).unwrap();
            for (key, url) in metadata.as_object().unwrap() {
                if key.ends_with("_endpoint") {
                    let url = url.as_str().unwrap();
                    assert!(
                        routes.find(&Endpoints::path_of(url)).is_some(),
                        "{key}: {url}"
                    );
                }
            }
        }
    }
}
