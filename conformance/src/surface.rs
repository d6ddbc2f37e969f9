//! Harness helpers for the protocol surface beyond the code flow: registration, introspection,
//! revocation, metadata and the device flow.

use oauth_proto::client::{ClientKind, ClientRecord, GrantType};
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;
use oauth_proto::store::{Effect, Op, Reply, Store};

use crate::{basic, json, Harness, CHALLENGE, VERIFIER};

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

/// A form POST with an optional `Authorization` header.
pub fn form(body: &str, authorization: Option<&str>) -> HttpRequest {
    let mut r = HttpRequest::form_post(body);
    r.authorization = authorization.map(str::to_owned);
    r
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

    /// `POST /introspect`.
    pub fn introspect(&mut self, body: &str, authorization: Option<&str>) -> Response {
        let flow = self.engine.introspect(form(body, authorization), self.now);
        self.run(flow)
    }

    /// `POST /revoke`.
    pub fn revoke(&mut self, body: &str, authorization: Option<&str>) -> Response {
        let flow = self.engine.revoke(form(body, authorization), self.now);
        self.run(flow)
    }

    /// Access and refresh tokens for the public client `app` and `alice` (code flow with PKCE).
    pub fn app_tokens(&mut self) -> (String, String) {
        self.public_client();
        let query = format!("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256");
        let code = self.code_for(&query, "alice");
        let r = self.token(&format!("grant_type=authorization_code&code={code}&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        let j = json(&r);
        (
            j["access_token"].as_str().unwrap().to_owned(),
            j["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Adds a confidential client `rs` marked as a resource server and returns its Basic
    /// credentials.
    pub fn resource_server(&self) -> String {
        let secret = self
            .add_client(
                "rs",
                ClientKind::Confidential,
                &[],
                &[GrantType::ClientCredentials],
                "mail",
            )
            .expect("secret");
        let mut client = self.client("rs").expect("just added");
        client.resource_server = true;
        self.apply(vec![Effect::PutClient(client)]);
        basic("rs", secret.expose())
    }
}
