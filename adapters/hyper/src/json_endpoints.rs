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
