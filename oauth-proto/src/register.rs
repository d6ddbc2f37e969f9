//! Dynamic client registration (RFC 7591) and client management (RFC 7592).
//!
//! `POST /register` takes a JSON body of client metadata, validates it ([`client_metadata`]), checks
//! the registration policy, and answers 201 with a fresh `client_id` (128 random bits, never chosen
//! by the client), the secret of a confidential client (shown once, stored as a hash), and a
//! registration access token for `/register/{client_id}` (also stored only as a hash).
//!
//! Policy: public clients (`token_endpoint_auth_method` `none`) register freely while
//! `public_registration` is on; confidential ones as `confidential_registration` says (open, with an
//! initial access token, or not at all). A valid initial access token also admits public clients when
//! open public registration is off. A `Bearer` token that is sent but wrong is always refused with 401
//! `invalid_token`, never silently ignored.
//!
//! Management (RFC 7592): `GET` reads the configuration, `PUT` replaces the metadata (the client kind
//! cannot change, since that would mean issuing or dropping a secret), `DELETE` removes the client
//! and revokes every grant it holds (204). The registration access token is compared as a hash in
//! constant time; an unknown client and a wrong token get the same 401 `invalid_token`, so client ids
//! cannot be probed. Because only hashes are stored, reads echo the caller's own registration access
//! token and never a client secret.
//!
//! Open registration must not be a way to fill the server's storage, since anyone may call it. Three
//! bounds make what strangers can store small and temporary:
//! - per registration: [`client_metadata::validate`] keeps at most `max_client_metadata_bytes` (8 KB)
//!   of metadata, measured as JSON, and at most 8 `#language` variants of each member (before,
//!   25 variants of 2048 bytes, about 60 KB, were kept);
//! - per address and in all: the embedder takes one registration from the engine's limiter
//!   ([`Throttle::take_registration`](crate::throttle::Throttle::take_registration), 20 per address
//!   and 2000 in all per hour by default) before it runs this flow, and answers 429 when it is used
//!   up; the reference server does;
//! - in time: a new client carries `unused_expires_at`, `unused_client_ttl_secs` (24 h) after
//!   registering, and the store's purge drops it unless the token endpoint has issued to it by then
//!   (which emits [`Effect::MarkClientUsed`] once). A client in real use gets its first token within
//!   minutes of registering; one nobody uses is gone a day later. Updates do not extend the time,
//!   and clients an administrator adds never expire.
//!
//! What strangers can make the store hold is so bounded: one address keeps at most
//! `registrations_per_address` × `unused_client_ttl_secs` / `registration_window_secs` unused
//! clients alive, 480 with the defaults (about 4 MB), and all addresses together
//! `registrations_total` times that ratio, 48,000 (about 400 MB). Where that is too much, lower
//! `registrations_total` or `unused_client_ttl_secs`.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::ask::{self, Halt};
use crate::client::{ClientKind, ClientRecord};
use crate::client_metadata::{self, Validated};
use crate::config::RegistrationPolicy;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::HttpRequest;
use crate::issue::SECRET_BYTES;
use crate::response::Response;
use crate::secret::{Secret, SecretHash};
use crate::store::Effect;

/// Random bytes in a generated `client_id` (128 bits).
pub const CLIENT_ID_BYTES: usize = 16;

const BEARER_CHALLENGE: &str = "Bearer realm=\"oauth\"";
const BEARER_INVALID: &str = "Bearer realm=\"oauth\", error=\"invalid_token\"";
const BEARER_MALFORMED: &str = "Bearer realm=\"oauth\", error=\"invalid_request\"";

/// `POST /register`.
#[derive(Debug)]
pub struct Register {
    engine: Engine,
    request: HttpRequest,
}

/// `GET`, `PUT` or `DELETE` on `/register/{client_id}`.
#[derive(Debug)]
pub struct ClientConfiguration {
    engine: Engine,
    client_id: String,
    request: HttpRequest,
}

impl Engine {
    /// Starts a registration request (RFC 7591 §3): a JSON body, with `Authorization: Bearer` and
    /// an initial access token when the policy needs one.
    pub fn register(&self, request: HttpRequest, now: u64) -> Flow<Register> {
        Flow::new(
            Register {
                engine: self.clone(),
                request,
            },
            now,
        )
    }

    /// Starts a client configuration request (RFC 7592) for `/register/{client_id}`.
    pub fn client_configuration(
        &self,
        client_id: &str,
        request: HttpRequest,
        now: u64,
    ) -> Flow<ClientConfiguration> {
        Flow::new(
            ClientConfiguration {
                engine: self.clone(),
                client_id: client_id.to_owned(),
                request,
            },
            now,
        )
    }
}

impl Procedure for Register {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

impl Procedure for ClientConfiguration {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

/// A 401 `invalid_token` with a Bearer challenge (with `error` only when a token was sent).
fn invalid_token(description: &'static str, token_sent: bool) -> OAuthError {
    OAuthError {
        www_authenticate: Some(if token_sent {
            BEARER_INVALID
        } else {
            BEARER_CHALLENGE
        }),
        ..OAuthError::new(ErrorCode::InvalidToken, description)
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1, scheme matched
/// case-insensitively). Another scheme is no bearer credentials (§3.1); `Bearer` with anything
/// but one `b64token` is a malformed request: 400 `invalid_request`.
fn bearer(authorization: Option<&str>) -> Result<Option<&str>, OAuthError> {
    let Some(header) = authorization else {
        return Ok(None);
    };
    crate::bearer::header_token(header).map_err(|description| OAuthError {
        www_authenticate: Some(BEARER_MALFORMED),
        ..OAuthError::invalid_request(description)
    })
}

/// The JSON object body of a POST or PUT, after framing checks.
fn json_object(request: &HttpRequest, max_body: usize) -> Result<Map<String, Value>, OAuthError> {
    let media_type = request
        .content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(OAuthError::invalid_request(
            "the body must be application/json",
        ));
    }
    if request.body.len() > max_body {
        return Err(OAuthError::invalid_request("the request body is too large"));
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be a JSON object of client metadata",
        )),
    }
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
fn information(
    engine: &Engine,
    client: &ClientRecord,
    secret: Option<&Secret>,
    registration_token: &str,
) -> Value {
    let mut out = Map::new();
    out.insert("client_id".into(), client.client_id.clone().into());
    out.insert("client_id_issued_at".into(), client.created_at.into());
    if let Some(secret) = secret {
        out.insert("client_secret".into(), secret.expose().into());
    }
    if client.kind == ClientKind::Confidential {
        out.insert(
            "client_secret_expires_at".into(),
            client.secret_expires_at.unwrap_or(0).into(),
        );
    }
    out.insert(
        "registration_access_token".into(),
        registration_token.into(),
    );
    out.insert(
        "registration_client_uri".into(),
        engine
            .endpoints()
            .client_configuration(&client.client_id)
            .into(),
    );
    for (k, v) in client_metadata::describe(client) {
        out.insert(k, v);
    }
    Value::Object(out)
}

/// Applies validated metadata to a record (new or existing).
fn apply(record: &mut ClientRecord, v: Validated) {
    record.name = v.client_name.unwrap_or_else(|| record.client_id.clone());
    record.kind = v.kind;
    record.auth_method = v.auth_method;
    record.redirect_uris = v.redirect_uris;
    record.grant_types = v.grant_types;
    record.scope = v.scope;
    record.metadata = v.metadata;
}

impl Register {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let config = self.engine.config();
        if !self.request.method.eq_ignore_ascii_case("POST") {
            return Err(OAuthError::invalid_request("registration only accepts POST").into());
        }
        let presented = bearer(self.request.authorization.as_deref())?;
        let token_valid = match presented {
            None => false,
            Some(token) => {
                let hash = SecretHash::of(token);
                // Every configured token is compared, so timing reveals nothing about which matched.
                let matched = config
                    .initial_access_tokens
                    .iter()
                    .fold(false, |acc, t| SecretHash::of(t).ct_eq(&hash) | acc);
                if !matched {
                    return Err(invalid_token("the initial access token is not valid", true).into());
                }
                true
            }
        };
        let body = json_object(&self.request, config.max_body_bytes)?;
        let validated = client_metadata::validate(&body, config)?;
        crate::openid::check_registered_alg(&self.engine, &validated.metadata)?;
        self.check_policy(validated.kind, token_valid)?;

        let now = cx.now();
        let mut id = [0u8; CLIENT_ID_BYTES];
        cx.rng().fill(&mut id);
        let client_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        let secret = (validated.kind == ClientKind::Confidential)
            .then(|| Secret::generate(cx.rng(), SECRET_BYTES));
        let registration_token = Secret::generate(cx.rng(), SECRET_BYTES);
        let mut record = ClientRecord {
            client_id: client_id.clone(),
            name: String::new(),
            kind: validated.kind,
            secret_hash: secret.as_ref().map(Secret::hash),
            secret_expires_at: None,
            auth_method: validated.auth_method,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            scope: validated.scope.clone(),
            require_pkce: false,
            resource_server: false,
            registration_token_hash: Some(registration_token.hash()),
            created_at: now,
            metadata: Map::new(),
            unused_expires_at: Some(now.saturating_add(config.unused_client_ttl_secs)),
            access_token_format: Default::default(),
        };
        apply(&mut record, validated);
        cx.effect(Effect::PutClient(record.clone()));
        Ok(Response::json(
            201,
            &information(
                &self.engine,
                &record,
                secret.as_ref(),
                registration_token.expose(),
            ),
        ))
    }

    fn check_policy(&self, kind: ClientKind, token_valid: bool) -> Result<(), OAuthError> {
        let config = self.engine.config();
        let tokens_exist = !config.initial_access_tokens.is_empty();
        match kind {
            ClientKind::Public if config.public_registration || token_valid => Ok(()),
            ClientKind::Public if tokens_exist => Err(invalid_token(
                "an initial access token is required to register clients",
                false,
            )),
            ClientKind::Public => Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "dynamic registration of public clients is disabled on this server",
            )),
            ClientKind::Confidential => match config.confidential_registration {
                RegistrationPolicy::Open => Ok(()),
                RegistrationPolicy::InitialAccessToken if token_valid => Ok(()),
                RegistrationPolicy::InitialAccessToken => Err(invalid_token(
                    "an initial access token is required to register confidential clients; \
                     public clients register with token_endpoint_auth_method none",
                    false,
                )),
                RegistrationPolicy::Off => Err(OAuthError::new(
                    ErrorCode::InvalidClientMetadata,
                    "dynamic registration of confidential clients is disabled; register a \
                     public client with token_endpoint_auth_method none",
                )),
            },
        }
    }
}

impl ClientConfiguration {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let token = bearer(self.request.authorization.as_deref())?.ok_or_else(|| {
            invalid_token(
                "the registration access token is required (Authorization: Bearer)",
                false,
            )
        })?;
        let hash = SecretHash::of(token);
        let client = ask::registered_client(cx, &self.client_id)?
            .filter(|c| c.registration_token_hash.is_some_and(|h| h.ct_eq(&hash)))
            .ok_or_else(|| invalid_token("the registration access token is not valid", true))?;
        let now = cx.now();
        let method = self.request.method.to_ascii_uppercase();
        match method.as_str() {
            "GET" => Ok(Response::json(
                200,
                &information(&self.engine, client, None, token),
            )),
            "PUT" => self.update(cx, client.clone(), token),
            "DELETE" => {
                cx.effect(Effect::DeleteClient {
                    client_id: client.client_id.clone(),
                    at: now,
                    keep_until: self.engine.revocation_keep_until(now),
                });
                cx.effect(Effect::RevokeGrant {
                    grant_id: crate::token::client_credentials_grant_id(&client.client_id),
                    at: now,
                    keep_until: self.engine.revocation_keep_until(now),
                });
                Ok(Response {
                    status: 204,
                    headers: vec![
                        ("cache-control", "no-store".into()),
                        ("pragma", "no-cache".into()),
                    ],
                    body: String::new(),
                    error: None,
                })
            }
            _ => {
                let mut r = Response::error(&OAuthError::invalid_request(
                    "the client configuration endpoint accepts GET, PUT and DELETE",
                ));
                r.status = 405;
                r.headers.push(("allow", "GET, PUT, DELETE".into()));
                Ok(r)
            }
        }
    }

    fn update(&self, cx: &mut Cx<'_>, client: ClientRecord, token: &str) -> Result<Response, Halt> {
        let config = self.engine.config();
        let body = json_object(&self.request, config.max_body_bytes)?;
        if body.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
            return Err(OAuthError::invalid_request(
                "the body must contain this client's client_id (RFC 7592 2.2)",
            )
            .into());
        }
        if let Some(sent) = body.get("client_secret").filter(|v| !v.is_null()) {
            let matches = sent
                .as_str()
                .zip(client.secret_hash)
                .is_some_and(|(s, h)| h.ct_eq(&SecretHash::of(s)));
            if !matches {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClientMetadata,
                    "client_secret does not match the client's current secret",
                )
                .into());
            }
        }
        let validated = client_metadata::validate(&body, config)?;
        crate::openid::check_registered_alg(&self.engine, &validated.metadata)?;
        if validated.kind != client.kind {
            return Err(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "token_endpoint_auth_method cannot change between none and a secret method; \
                 register a new client instead",
            )
            .into());
        }
        let mut record = client;
        apply(&mut record, validated);
        cx.effect(Effect::PutClient(record.clone()));
        Ok(Response::json(
            200,
            &information(&self.engine, &record, None, token),
        ))
    }
}
