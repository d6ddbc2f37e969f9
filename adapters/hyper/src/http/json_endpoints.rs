//! The JSON endpoints: each one hands the parsed request to its engine entry point, runs the
//! flow against the store, and copies the engine's response. A store failure is 503
//! `temporarily_unavailable`; everything else, errors included, is the engine's answer.

use oauth_proto::error::OAuthError;
use oauth_proto::flow::{drive_async, Flow, Procedure};
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;
use oauth_proto::throttle::Verdict;
use oauth_proto::Engine;

use crate::app::App;
use crate::clock;
use crate::http::reply::{self, HttpResponse};
use crate::http::request::Request;
use crate::rng::OsRandom;

/// Runs an endpoint: `start` is its engine entry point, given the request, and its flow is run
/// against the store; the engine's response is copied. The engine's limiter is asked first: an
/// address that failed too often gets 429 without its request being looked at, one that failed a
/// few times waits its delay; an answer that tells of a failed guess is counted against the
/// address (see [`oauth_proto::throttle`]).
async fn run<P: Procedure<Output = Response>>(
    app: &App,
    req: Request,
    name: &str,
    start: impl FnOnce(&Engine, HttpRequest, u64) -> Flow<P>,
) -> HttpResponse {
    let addr = req.client_addr();
    let throttle = app.engine.throttle();
    match throttle.check(addr, None, clock::now()) {
        Verdict::Refuse { retry_after } => return too_many_failures(retry_after),
        Verdict::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed { .. } => {}
    }
    let now = clock::now();
    let flow = start(&app.engine, req.into_engine(), now);
    match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(resp) => {
            if resp.is_failed_guess() && throttle.record_failure(addr, None, now) {
                tracing::warn!(
                    %addr,
                    endpoint = name,
                    "too many failed client authentications or refused grants; address refused"
                );
            }
            reply::from_engine(resp)
        }
        Err(e) => {
            reply::store_failed(&e, name);
            reply::unavailable()
        }
    }
}

/// 429 for an address past its failure limit.
fn too_many_failures(secs: u64) -> HttpResponse {
    too_many(secs, "too many failed requests from this address")
}

/// 429 with `Retry-After` and a JSON `invalid_request` saying why and for how long.
fn too_many(secs: u64, why: &str) -> HttpResponse {
    let mut resp = reply::json_error(
        429,
        &OAuthError::invalid_request(format!("{why}; try again in {secs} seconds")),
    );
    resp.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(secs),
    );
    resp
}

/// `POST /token`.
pub async fn token(app: &App, req: Request) -> HttpResponse {
    run(app, req, "token", Engine::token).await
}

/// `POST /register` (RFC 7591). Every attempt, whatever it holds, first takes one registration
/// from its address's allowance and from the server's (`[throttle]` `registrations_per_address`
/// and `registrations_total` per `registration_window_secs`); when either is used up the answer is
/// 429 with `Retry-After`, and the body is not looked at. What strangers can make the store keep
/// is so bounded by the allowance times `max_client_metadata_bytes`, for `unused_client_ttl_secs`
/// unless the clients get tokens (see [`oauth_proto::register`]).
pub async fn register(app: &App, req: Request) -> HttpResponse {
    // Anonymous registrations take from the limiter's quota. One that presents an initial access
    // token does not (an administrator provisioning clients is not throttled); a wrong token is
    // 401 `invalid_token`, a failed guess counted against the address, and stores nothing.
    if req.header(hyper::header::AUTHORIZATION).is_none() {
        // On PostgreSQL the quota is all nodes' (see `shared_limits`).
        let taken =
            crate::shared_limits::take_registration(app, req.client_addr(), clock::now()).await;
        let taken = match taken {
            Ok(taken) => taken,
            Err(e) => {
                reply::store_failed(&e, "register");
                return reply::unavailable();
            }
        };
        if let Err(secs) = taken {
            return too_many(
                secs,
                "too many client registrations from this address or on this server",
            );
        }
    }
    run(app, req, "register", Engine::register).await
}

/// `GET`, `PUT`, `DELETE /register/{client_id}` (RFC 7592).
pub async fn client_configuration(app: &App, req: Request, client_id: &str) -> HttpResponse {
    run(app, req, "client configuration", |e, r, now| {
        e.client_configuration(client_id, r, now)
    })
    .await
}

/// `POST /introspect` (RFC 7662).
pub async fn introspect(app: &App, req: Request) -> HttpResponse {
    run(app, req, "introspect", Engine::introspect).await
}

/// `POST /revoke` (RFC 7009).
pub async fn revoke(app: &App, req: Request) -> HttpResponse {
    run(app, req, "revoke", Engine::revoke).await
}

/// `GET` and `POST /userinfo` (OpenID Connect Core §5.3): the bearer token's user, for relying
/// parties and for Dovecot's `oauth2` passdb (`introspection_url`, see `docs/deployment.md`).
pub async fn userinfo(app: &App, req: Request) -> HttpResponse {
    run(app, req, "userinfo", Engine::userinfo).await
}

/// `POST /device_authorization` (RFC 8628).
pub async fn device_authorization(app: &App, req: Request) -> HttpResponse {
    run(
        app,
        req,
        "device authorization",
        Engine::device_authorization,
    )
    .await
}

/// The metadata documents (RFC 8414, RFC 9728) and the JWK Set of `jwks_uri`: pure answers from
/// the configuration and the keys, served only at the paths derived from the issuer.
pub fn metadata(app: &App, req: &Request) -> HttpResponse {
    let e = &app.engine;
    if req.path() == e.metadata_path()
        || req.path() == e.openid_configuration_path()
        || req.path() == e.openid_configuration_inserted_path()
    {
        reply::from_engine(e.metadata())
    } else if req.path() == oauth_proto::endpoints::Endpoints::path_of(&e.endpoints().jwks) {
        reply::from_engine(e.jwks())
    } else if let Some(document) = e.protected_resource_metadata_at(req.path()) {
        reply::from_engine(document)
    } else {
        reply::json_error(
            404,
            &oauth_proto::error::OAuthError::invalid_request("no metadata for this issuer path"),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::settings::ServerSettings;
    use crate::store::AnyStore;
    use crate::test_support::{block_on, engine};

    /// A request as the router hands it over.
    pub(crate) fn request(method: &str, query: &str, body: &[u8]) -> Request {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            "content-type",
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        Request {
            method: method.parse().unwrap(),
            uri: format!("/?{query}").parse().unwrap(),
            headers,
            body: body.to_vec(),
            peer: "127.0.0.1:1".parse().unwrap(),
            client: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn n116_an_issuer_with_a_path_has_its_metadata_at_the_inserted_paths() {
        let config = oauth_proto::config::Config {
            issuer: "https://example.com/issuer1/".to_owned(),
            ..oauth_proto::config::Config::default()
        };
        let engine = crate::admin::setup::admin_engine(config).unwrap();
        let app = App::new(
            engine,
            Arc::new(AnyStore::Failing),
            ServerSettings::default(),
        );
        let get = |path: &str| {
            let mut r = request("GET", "", b"");
            r.uri = path.parse().unwrap();
            metadata(&app, &r)
        };
        for path in [
            "/.well-known/oauth-authorization-server/issuer1",
            "/.well-known/openid-configuration/issuer1",
        ] {
            let r = get(path);
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(r.headers()["content-type"], "application/json");
        }
        assert_eq!(
            get("/.well-known/oauth-protected-resource/issuer1").status(),
            200
        );
        // Not this issuer's paths: the root documents and another issuer's.
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server/issuer2",
            "/.well-known/openid-configuration",
            "/.well-known/openid-configuration/other",
        ] {
            assert_eq!(get(path).status(), 404, "{path}");
        }
    }

    #[test]
    fn a_store_failure_is_503_temporarily_unavailable() {
        let app = App::new(
            engine(),
            Arc::new(AnyStore::Failing),
            ServerSettings::default(),
        );
        let body = b"grant_type=refresh_token&refresh_token=abc&client_id=x";
        let r = block_on(token(&app, request("POST", "", body)));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["retry-after"], "5");
        let r = block_on(crate::pages::authorize::show(
            &app,
            &request("GET", "response_type=code&client_id=x", b""),
        ));
        assert_eq!(r.status(), 503);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(r.headers()["retry-after"], "5");
    }
}
