//! The conformance suite's shared harness.
//!
//! [`Harness`] wires an [`Engine`] to a [`MemoryStore`] with a fixed clock and a deterministic
//! counter RNG, so every test is a reproducible transcript. Tests advance the clock explicitly.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod store_contract;
pub mod surface;

use oauth_proto::access_token::{AccessClaims, KeyRing, TokenError, TokenKey};
use oauth_proto::authorize::{AuthorizeOutcome, DecisionOutcome, PendingAuthorization};
use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::client_id_document::{ClientDocument, FetchError};
use oauth_proto::config::Config;
use oauth_proto::flow::{Flow, Next, Procedure};
use oauth_proto::http::HttpRequest;
use oauth_proto::jose::{Algorithm, KeySet};
use oauth_proto::random::CounterRandom;
use oauth_proto::response::Response;
use oauth_proto::scope::Scope;
use oauth_proto::secret::Secret;
use oauth_proto::store::{Effect, Op, Reply, Store};
use oauth_proto::Engine;
use oauth_store_memory::MemoryStore;

pub mod transcript;

/// The fixed start of every transcript: 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600;

/// The PKCE verifier of RFC 7636 Appendix B and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Engine + memory store + fixed clock + deterministic randomness.
pub struct Harness {
    /// The engine under test.
    pub engine: Engine,
    /// Its store.
    pub store: MemoryStore,
    /// The current time; tests move it.
    pub now: u64,
    /// The randomness source.
    pub rng: CounterRandom,
    /// The client metadata documents the driver serves, by URL (an unknown URL is
    /// [`FetchError::Unreachable`]).
    pub documents: std::collections::HashMap<String, ClientDocument>,
    /// Every document URL the engine asked for, in order.
    pub fetched: Vec<String>,
}

/// A test key ring (key id 1).
pub fn test_keys() -> KeyRing {
    KeyRing::new(TokenKey::new(1, &[7u8; 32]).expect("32-byte key"), vec![]).expect("one key")
}

/// The test ID token signing keys: one per algorithm, generated once per test binary from a
/// fixed seed (RSA key generation is the slow part), so every harness shares them.
pub fn test_signing_keys() -> KeySet {
    static KEYS: std::sync::OnceLock<KeySet> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::generate(&Algorithm::ALL, &mut CounterRandom::new(0x1d70))
            .expect("key generation from a counter")
    })
    .clone()
}

impl Default for Harness {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Harness {
    /// A harness with this configuration.
    pub fn new(config: Config) -> Self {
        Harness {
            engine: Engine::new(config, test_keys(), test_signing_keys())
                .expect("valid test configuration"),
            store: MemoryStore::new(),
            now: T0,
            rng: CounterRandom::new(0),
            documents: Default::default(),
            fetched: Vec::new(),
        }
    }

    /// Runs a flow to completion against the store, answering client metadata document fetches
    /// from [`Harness::documents`] as a driver does.
    pub fn run<P: Procedure>(&mut self, flow: Flow<P>) -> P::Output {
        self.run_asking(flow).0
    }

    /// [`Harness::run`], also returning the ops the flow asked, in order.
    pub fn run_asking<P: Procedure>(&mut self, mut flow: Flow<P>) -> (P::Output, Vec<Op>) {
        let mut asked = Vec::new();
        loop {
            match flow.step(&mut self.rng) {
                Next::Op(op, waiting) => {
                    asked.push(op.clone());
                    flow = waiting.answer(self.answer(op));
                }
                Next::Done(done) => {
                    self.apply(done.effects);
                    return (done.output, asked);
                }
            }
        }
    }

    /// Answers one op as a driver does: a client metadata document from
    /// [`Harness::documents`], anything else from the store.
    fn answer(&mut self, op: Op) -> Reply {
        match op {
            Op::FetchClientDocument { url } => {
                let document = self.documents.get(&url).cloned();
                self.fetched.push(url);
                Reply::ClientDocument(
                    document.unwrap_or_else(|| ClientDocument::failed(FetchError::Unreachable)),
                )
            }
            op => self.store.execute(op).expect("memory store never fails"),
        }
    }

    /// Applies effects directly (embedder calls such as `revoke_subject`).
    pub fn apply(&self, effects: Vec<Effect>) {
        self.store.apply(effects).expect("memory store never fails");
    }

    /// Registers a client directly in the store and returns its secret (confidential clients).
    pub fn add_client(
        &self,
        client_id: &str,
        kind: ClientKind,
        redirect_uris: &[&str],
        grants: &[GrantType],
        scope: &str,
    ) -> Option<Secret> {
        let secret = (kind == ClientKind::Confidential)
            .then(|| Secret::new(format!("{client_id}-secret-0123456789abcdef")));
        self.apply(vec![Effect::PutClient(ClientRecord {
            client_id: client_id.to_owned(),
            name: format!("{client_id} app"),
            kind,
            secret_hash: secret.as_ref().map(Secret::hash),
            secret_expires_at: None,
            auth_method: if kind == ClientKind::Public {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            },
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            grant_types: grants.to_vec(),
            scope: Scope::parse(scope).expect("valid scope"),
            require_pkce: false,
            resource_server: false,
            registration_token_hash: None,
            created_at: self.now,
            metadata: Default::default(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        })]);
        secret
    }

    /// A public native client `app` with redirect `http://127.0.0.1/cb`, code + refresh grants,
    /// scope `mail offline_access`.
    pub fn public_client(&self) {
        self.add_client(
            "app",
            ClientKind::Public,
            &["http://127.0.0.1/cb"],
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
            "mail offline_access",
        );
    }

    /// A confidential client `web` with redirect `https://client.example.com/cb`, every grant.
    pub fn confidential_client(&self) -> Secret {
        self.add_client(
            "web",
            ClientKind::Confidential,
            &["https://client.example.com/cb"],
            &[
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            "mail offline_access",
        )
        .expect("confidential clients have secrets")
    }

    /// Runs an authorization request from a query string.
    pub fn authorize(&mut self, query: &str) -> AuthorizeOutcome {
        let flow = self.engine.authorize(query.as_bytes(), self.now);
        self.run(flow)
    }

    /// Runs an authorization request that must reach consent.
    pub fn pending(&mut self, query: &str) -> PendingAuthorization {
        match self.authorize(query) {
            AuthorizeOutcome::Consent(p) => p,
            other => panic!("expected consent, got {other:?}"),
        }
    }

    /// Approves for `subject` and returns the redirect response.
    pub fn approve(&mut self, pending: PendingAuthorization, subject: &str) -> Response {
        match self.decide(pending, Some(subject)) {
            DecisionOutcome::Redirect(r) => r,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    /// Denies and returns the redirect response.
    pub fn deny(&mut self, pending: PendingAuthorization) -> Response {
        match self.decide(pending, None) {
            DecisionOutcome::Redirect(r) => r,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    /// Approves for `subject` (or denies, for `None`) and returns how the decision ended.
    pub fn decide(
        &mut self,
        pending: PendingAuthorization,
        subject: Option<&str>,
    ) -> DecisionOutcome {
        match subject {
            Some(subject) => {
                let flow = self
                    .engine
                    .approve(pending, subject, self.now, self.now)
                    .expect("valid subject");
                self.run(flow)
            }
            None => {
                let flow = self.engine.deny(pending, self.now);
                self.run(flow)
            }
        }
    }

    /// Authorizes and approves, returning the code from the redirect.
    pub fn code_for(&mut self, query: &str, subject: &str) -> String {
        let pending = self.pending(query);
        let response = self.approve(pending, subject);
        location_param(&response, "code").expect("redirect carries a code")
    }

    /// Posts a form to the token endpoint.
    pub fn token(&mut self, body: &str, authorization: Option<&str>) -> Response {
        self.token_asking(body, authorization).0
    }

    /// [`Harness::token`], also returning the ops the request asked the store, in order.
    pub fn token_asking(&mut self, body: &str, authorization: Option<&str>) -> (Response, Vec<Op>) {
        let mut request = HttpRequest::form_post(body);
        request.authorization = authorization.map(str::to_owned);
        let flow = self.engine.token(request, self.now);
        self.run_asking(flow)
    }

    /// Validates an access token against the store's revocation view.
    pub fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.engine
            .validate_access_token(token, self.now, &self.store)
    }
}

/// A query parameter of a redirect's `Location`.
pub fn location_param(response: &Response, name: &str) -> Option<String> {
    let location = response.header("location")?;
    let url = url_parse(location)?;
    url.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn url_parse(location: &str) -> Option<Vec<(String, String)>> {
    let query = location.split_once('?')?.1;
    serde_urlencoded::from_str(query).ok()
}

/// The names of ops (their variants, as `Debug` prints them), to compare what a flow asked with a
/// list such as `["GetRefresh", "RotateRefresh"]`.
pub fn op_names(asked: &[Op]) -> Vec<String> {
    asked
        .iter()
        .map(|op| {
            let shown = format!("{op:?}");
            let end = shown.find([' ', '(', '{']).unwrap_or(shown.len());
            shown[..end].to_owned()
        })
        .collect()
}

/// The JSON body of a response.
pub fn json(response: &Response) -> serde_json::Value {
    serde_json::from_str(&response.body).expect("JSON body")
}

/// `Basic` credentials for a client id and secret, form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic(client_id: &str, secret: &str) -> String {
    use base64::Engine as _;
    let enc = |s: &str| serde_urlencoded::to_string([("", s)]).expect("encodes")[1..].to_owned();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(secret)
        ))
    )
}
