//! Harness helpers for the protocol surface beyond the code flow: registration, introspection,
//! revocation, metadata and the device flow.

use oauth_proto::client::ClientRecord;
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;
use oauth_proto::store::{Op, Reply, Store};

use crate::{json, Harness};

/// A JSON request with an optional `Authorization` header.
pub fn json_request(method: &str, body: &str, authorization: Option<&str>) -> HttpRequest {
    HttpRequest {
        method: method.to_owned(),
        content_type: Some("application/json".to_owned()),
        authorization: authorization.map(str::to_owned),
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// `Bearer` credentials.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

impl Harness {
    /// `POST /register` with a JSON body.
    pub fn register(&mut self, body: &str, authorization: Option<&str>) -> Response {
        let flow = self
            .engine
            .register(json_request("POST", body, authorization), self.now);
        self.run(flow)
    }

    /// Registers a client that must succeed and returns the 201 body.
    pub fn register_ok(&mut self, body: &str) -> serde_json::Value {
        let r = self.register(body, None);
        assert_eq!(r.status, 201, "{}", r.body);
        json(&r)
    }

    /// A request to `/register/{client_id}`.
    pub fn client_configuration(
        &mut self,
        client_id: &str,
        method: &str,
        body: &str,
        authorization: Option<&str>,
    ) -> Response {
        let flow = self.engine.client_configuration(
            client_id,
            json_request(method, body, authorization),
            self.now,
        );
        self.run(flow)
    }

    /// A client as the store has it.
    pub fn client(&self, client_id: &str) -> Option<ClientRecord> {
        match self.store.execute(Op::GetClient {
            client_id: client_id.to_owned(),
        }) {
            Ok(Reply::Client(c)) => c,
            other => panic!("unexpected store answer {other:?}"),
        }
    }
}
