//! The JSON endpoints: each one hands the parsed request to its engine entry point, runs the
//! flow against the store, and copies the engine's response. A store failure is 503
//! `temporarily_unavailable`; everything else, errors included, is the engine's answer.

use oauth_proto::flow::drive_async;

use crate::app::App;
use crate::clock;
use crate::reply::{self, HttpResponse};
use crate::request::Request;
use crate::rng::OsRandom;

/// `POST /token`.
pub async fn token(app: &App, req: &Request) -> HttpResponse {
    let flow = app.engine.token(req.to_engine(), clock::now());
    match drive_async(flow, &*app.store, &mut OsRandom).await {
        Ok(resp) => reply::from_engine(resp),
        Err(e) => {
            tracing::error!(error = %e, "store failure at the token endpoint");
            reply::unavailable()
        }
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
            method: method.to_owned(),
            path: "/".to_owned(),
            query: query.to_owned(),
            headers,
            body: body.to_vec(),
            peer: "127.0.0.1:1".parse().unwrap(),
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
        let r = block_on(token(&app, &request("POST", "", body)));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = block_on(crate::authorize_page::show(
            &app,
            &request("GET", "response_type=code&client_id=x", b""),
        ));
        assert_eq!(r.status(), 503);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}
