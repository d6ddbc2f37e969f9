//! Harness helpers for the protocol surface beyond the code flow: registration, introspection,
//! revocation, metadata and the device flow.

use oauth_proto::client::{ClientKind, ClientRecord, GrantType};
use oauth_proto::device_verify::{DeviceDecisionOutcome, DeviceVerifyOutcome, PendingDevice};
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{DeviceLookup, DeviceRecord, Effect, Op, Reply, Store};

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
            Ok(Reply::Client(c)) => c.map(std::sync::Arc::unwrap_or_clone),
            other => panic!("unexpected store answer {other:?}"),
        }
    }

    /// `POST /introspect`.
    pub fn introspect(&mut self, body: &str, authorization: Option<&str>) -> Response {
        self.introspect_asking(body, authorization).0
    }

    /// [`Harness::introspect`], also returning the ops the request asked, in order.
    pub fn introspect_asking(
        &mut self,
        body: &str,
        authorization: Option<&str>,
    ) -> (Response, Vec<Op>) {
        let flow = self.engine.introspect(form(body, authorization), self.now);
        self.run_asking(flow)
    }

    /// `POST /revoke`.
    pub fn revoke(&mut self, body: &str, authorization: Option<&str>) -> Response {
        self.revoke_asking(body, authorization).0
    }

    /// [`Harness::revoke`], also returning the ops the request asked, in order.
    pub fn revoke_asking(
        &mut self,
        body: &str,
        authorization: Option<&str>,
    ) -> (Response, Vec<Op>) {
        let flow = self.engine.revoke(form(body, authorization), self.now);
        self.run_asking(flow)
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

/// The device grant's `grant_type` value, form-encoded.
pub const DEVICE_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

impl Harness {
    /// `POST /device_authorization`.
    pub fn device_authorization(&mut self, body: &str, authorization: Option<&str>) -> Response {
        let flow = self
            .engine
            .device_authorization(form(body, authorization), self.now);
        self.run(flow)
    }

    /// The user typed a code on the verification page.
    pub fn device_verify(&mut self, user_code: &str) -> DeviceVerifyOutcome {
        let flow = self.engine.device_verify(user_code, self.now);
        self.run(flow)
    }

    /// Approves a pending device request.
    pub fn device_approve(
        &mut self,
        pending: PendingDevice,
        subject: &str,
    ) -> DeviceDecisionOutcome {
        let flow = self
            .engine
            .device_approve(pending, subject, self.now, self.now)
            .expect("valid subject");
        self.run(flow)
    }

    /// Denies a pending device request.
    pub fn device_deny(&mut self, pending: PendingDevice) -> DeviceDecisionOutcome {
        let flow = self.engine.device_deny(pending, self.now);
        self.run(flow)
    }

    /// Polls the token endpoint with a device code as the public client `tv`.
    pub fn poll(&mut self, device_code: &str) -> Response {
        self.token(
            &format!("grant_type={DEVICE_GRANT}&device_code={device_code}&client_id=tv"),
            None,
        )
    }

    /// A public device client `tv` (device + refresh grants, scope `mail offline_access`).
    pub fn device_client(&self) {
        self.add_client(
            "tv",
            ClientKind::Public,
            &[],
            &[GrantType::DeviceCode, GrantType::RefreshToken],
            "mail offline_access",
        );
    }

    /// Starts a device authorization for `tv` (scope `mail`) and returns (device_code, user_code).
    pub fn start_device(&mut self) -> (String, String) {
        let r = self.device_authorization("client_id=tv&scope=mail", None);
        assert_eq!(r.status, 200, "{}", r.body);
        let j = json(&r);
        (
            j["device_code"].as_str().unwrap().to_owned(),
            j["user_code"].as_str().unwrap().to_owned(),
        )
    }

    /// A device record as the store has it, by device code.
    pub fn device_record(&self, device_code: &str) -> Option<DeviceRecord> {
        match self.store.execute(Op::GetDevice {
            by: DeviceLookup::DeviceCode(SecretHash::of(device_code)),
        }) {
            Ok(Reply::Device(d)) => d,
            other => panic!("unexpected store answer {other:?}"),
        }
    }
}
