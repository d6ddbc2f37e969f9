//! `oauth-proto`: a sans-IO OAuth 2.0 authorization server engine.
//!
//! The engine turns parsed requests into responses and storage effects. It performs **no IO of any
//! kind**: no sockets, no files, no threads, no async runtime, and it never reads the clock or the
//! operating system's randomness. The current Unix time and a [`Random`](random::Random) source are
//! arguments; the store is reached only through [`Op`](store::Op)s the driver answers and
//! [`Effect`](store::Effect)s it applies. `clippy.toml` bans `SystemTime::now`, `Instant::now` and
//! OS randomness in this crate, so the rule is checked, not just promised.
//!
//! The store contract ([`store`]) is exactly what the engine asks and writes. It holds no user
//! accounts: an embedder authenticates its users against its own directory and hands the engine a
//! subject. The reference server's accounts and its client listing are a contract of their own
//! (`oauth-directory`, beside the stores), and a store failure is a typed
//! [`StoreError`](store::StoreError) whose kind a driver can act on.
//!
//! # The run loop
//! 1. Build one [`Engine`] from a [`Config`](config::Config) and a [`KeyRing`](access_token::KeyRing).
//! 2. For each request, call its entry point (e.g. [`Engine::token`]) with the parsed request and
//!    `now`. It returns a [`Flow`](flow::Flow) (or, for pure steps, the answer itself).
//! 3. Step the flow ([`Flow::step`](flow::Flow::step)): on [`Next::Op`](flow::Next::Op) execute
//!    the op against the store and give the reply to the [`Waiting`](flow::Waiting) flow that came
//!    with it; on [`Next::Done`](flow::Next::Done) apply its effects *before* sending its output.
//!    [`flow::drive`] and [`flow::drive_async`] do it.
//! 4. Validate access tokens with [`Engine::validate_access_token`]: no store round trip.
//! 5. Around every credential check a stranger can repeat (a password, a token over SASL, a user
//!    code, a client secret), ask [`Engine::throttle`] first and tell it the result: one limiter
//!    that slows and stops the guessing address and never locks out the user it aims at
//!    ([`throttle`] has the design). [`response::Response::is_failed_guess`] says which engine
//!    answers count.
//!
//! The whole loop, with the in-memory store (`oauth-store-memory`); `examples/mail_server.rs` is
//! the same as a program shaped like a mail server, with its own user directory:
//!
//! ```
//! use oauth_proto::access_token::{KeyRing, TokenKey};
//! use oauth_proto::authorize::{AuthorizeOutcome, DecisionOutcome};
//! use oauth_proto::flow::{Flow, Next, Procedure};
//! use oauth_proto::http::HttpRequest;
//! use oauth_proto::random::Random;
//! use oauth_proto::sasl::{decode_initial_response, Mechanism, SaslExchange, SaslPolicy, Step};
//! use oauth_proto::store::{Store, StoreError};
//! use oauth_proto::throttle::Verdict;
//! use oauth_proto::{config::Config, pkce, Engine};
//! use oauth_store_memory::MemoryStore;
//! # use oauth_proto::{client::*, scope::Scope, store::Effect};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = |dest: &mut [u8]| getrandom::fill(dest).expect("OS randomness");
//!
//! // 1. One engine: a configuration, an access token key, and ID token signing keys (ES256 here;
//! //    a server keeps them in files and loads them, see `jose::StoredKeySet`).
//! let mut key = [0u8; 32];
//! rng.fill(&mut key);
//! let keys = KeyRing::new(TokenKey::new(1, &key)?, vec![])?;
//! let signing = oauth_proto::jose::KeySet::generate(&[oauth_proto::jose::Algorithm::Es256], &mut rng)?;
//! let engine = Engine::new(Config::default(), keys, signing)?;
//! let store = MemoryStore::new();
//! # store.apply(vec![Effect::PutClient(ClientRecord {
//! #     client_id: "app".into(), name: "Mail App".into(), kind: ClientKind::Public,
//! #     secret_hash: None, secret_expires_at: None, auth_method: AuthMethod::None,
//! #     redirect_uris: vec!["http://127.0.0.1/cb".into()],
//! #     grant_types: vec![GrantType::AuthorizationCode], scope: Scope::parse("mail").unwrap(),
//! #     require_pkce: true, resource_server: false, registration_token_hash: None,
//! #     created_at: 0, metadata: Default::default(), unused_expires_at: None,
//! #     access_token_format: Default::default(),
//! # })])?;
//!
//! // 3. The driver: answer each op through the waiting flow, apply the effects, then the output.
//! fn run<P: Procedure>(
//!     mut flow: Flow<P>,
//!     store: &MemoryStore,
//!     rng: &mut dyn Random,
//! ) -> Result<P::Output, StoreError> {
//!     loop {
//!         match flow.step(rng) {
//!             Next::Op(op, waiting) => flow = waiting.answer(store.execute(op)?),
//!             Next::Done(done) => {
//!                 store.apply(done.effects)?;
//!                 return Ok(done.output);
//!             }
//!         }
//!     }
//! }
//!
//! // 2. Requests: the authorization code flow of a public client ("app") for user "alice".
//! let now = 1_767_225_600;
//! let verifier = "a-fresh-random-pkce-verifier-of-43-or-more-characters";
//! let query = format!(
//!     "response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail\
//!      &code_challenge={}&code_challenge_method=S256",
//!     pkce::s256_challenge(verifier)
//! );
//! let AuthorizeOutcome::Consent(pending) = run(engine.authorize(query.as_bytes(), now), &store, &mut rng)? else {
//!     panic!("the request is valid");
//! };
//! // ... the server signs the user in (its own directory) and the user allows ...
//! let DecisionOutcome::Redirect(redirect) = run(engine.approve(pending, "alice", now, now)?, &store, &mut rng)? else {
//!     panic!("approved");
//! };
//! let location = url::Url::parse(redirect.header("location").unwrap())?;
//! let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
//! let form = format!(
//!     "grant_type=authorization_code&code={code}&client_id=app\
//!      &redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={verifier}"
//! );
//! let response = run(engine.token(HttpRequest::form_post(form), now), &store, &mut rng)?;
//! assert_eq!(response.status, 200);
//! let body: serde_json::Value = serde_json::from_str(&response.body)?;
//! let token = body["access_token"].as_str().unwrap();
//!
//! // 4. Validate the token: signature, expiry and the store's revocation view.
//! let claims = engine.validate_access_token(token, now, &store)?;
//! assert_eq!(claims.subject, "alice");
//!
//! // 5. A SASL login (IMAP `AUTHENTICATE XOAUTH2`) behind the limiter.
//! let peer = "192.0.2.1".parse()?;
//! let Verdict::Proceed { .. } = engine.throttle().check(peer, None, now) else {
//!     panic!("nothing failed yet");
//! };
//! let policy = SaslPolicy::default(); // a `mail` scope and a user's token
//! let mut exchange = SaslExchange::new(Mechanism::XOAuth2, true, &policy)?;
//! let initial = base64::Engine::encode(
//!     &base64::engine::general_purpose::STANDARD,
//!     format!("user=alice\x01auth=Bearer {token}\x01\x01"),
//! );
//! let validator = |t: &str| engine.validate_access_token(t, now, &store);
//! let step = exchange.step(decode_initial_response(initial.as_bytes()), &policy, &validator)?;
//! if step.counts_toward_lockout() {
//!     engine.throttle().record_failure(peer, None, now);
//! }
//! let Step::Success(login) = step else { panic!("{step:?}") };
//! assert_eq!(login.identity(), "alice");
//! # Ok(())
//! # }
//! ```
//!
//! # The API's shape
//! | what | why |
//! |---|---|
//! | error codes, token errors and every outcome enum are `#[non_exhaustive]` | a new RFC error or outcome is not a breaking change; an adapter's wildcard arm refuses what it does not know, never grants it |
//! | a reply goes to the [`Waiting`](flow::Waiting) flow that asked, which [`answer`](flow::Waiting::answer) consumes | a reply with nothing pending, two replies to one op, or a reply to another flow's op cannot be written |
//! | [`Procedure`](flow::Procedure) is sealed | drivers can be generic over every flow; only the engine's endpoints are flows |
//! | [`CounterRandom`](random) exists only with the `test-util` feature | a predictable randomness source cannot reach a server by accident |
//! | one [`Endpoints`](endpoints::Endpoints) for every URL | an adapter routes from it, so it serves exactly what the metadata advertises, under the issuer's path |
//!
//! # Choices where the specifications disagree (RFC 6749 vs RFC 9700 / OAuth 2.1)
//! | topic | choice |
//! |---|---|
//! | secret-based client auth | both `client_secret_basic` and `client_secret_post` are accepted and advertised |
//! | `Pragma: no-cache` | sent with `Cache-Control: no-store` on every credential-bearing response |
//! | `redirect_uri` at the token endpoint | required and identical when the authorization request had it (RFC 6749 §4.1.3); otherwise optional, and it must match whenever sent |
//! | PKCE | required for public clients, and for confidential ones by default (`require_pkce_for_confidential`); `S256` only unless `allow_plain_pkce` |
//! | implicit and password grants | not implemented: `unsupported_response_type` / `unsupported_grant_type` |
//! | loopback redirects | any port for `http://127.0.0.1` and `http://[::1]` (RFC 8252 §7.3); `http://localhost` and port 0 are refused at registration (RFC 8252 §8.3: a name may resolve off the machine) |
//! | the mail scopes | `urn:ietf:params:oauth:scope:mail`, `…:contacts`, `…:calendars` (draft-ietf-mailmaint-oauth-public) and the short `mail`, `contacts`, `calendar` are aliases, all supported by default: a token carries the spelling the client asked for, and resources accept either ([`scope`]) |
//! | `application_type` | kept and echoed; `native` allows only loopback `http` and private-use scheme redirects, `web` only `https` (`invalid_redirect_uri` otherwise); absent, the general redirect rules apply |
//! | `offline_access` | only with a refresh token: left out of the default scope of a client without the `refresh_token` grant, `invalid_client_metadata` when such a client names it, and never in a token answer that carries no refresh token |
//! | refresh token reuse | a rotated token presented again revokes the whole grant |
//! | missing `code_verifier` | `invalid_request`; a wrong one is `invalid_grant` |
//! | revoking another client's token | the same empty 200 as for an unknown token, live or dead, and the token left valid (an error only for live ones would reveal liveness) |
//! | who may introspect (RFC 7662 §4) | by default (`resource_servers_only`) confidential clients marked as resource servers see every token; every other client only its own, and `{"active":false}` for the rest, live or dead |
//! | failed client authentication | always 401 `invalid_client` with a `WWW-Authenticate: Basic` challenge |
//! | authorization errors of a self-registered client | shown to the user with the error redirect as a link ([`AuthorizeOutcome::ErrorLink`](authorize::AuthorizeOutcome::ErrorLink)), never redirected at once (RFC 9700 §4.11.2: anyone may register any redirect URI); an administrator's clients are redirected (RFC 6749 §4.1.2.1) |
//! | client metadata documents (draft-ietf-oauth-client-id-metadata-document) | off by default (`client_id_metadata_documents`); on, an `https` `client_id` names the client's document, which the driver fetches (`Op::FetchClientDocument`) and the engine checks ([`client_id_document`]): `client_id` equal to the URL, at most 5 KB, `token_endpoint_auth_method` `none` (absent means `none`; `private_key_jwt` is not supported), then the registration rules; every failure `invalid_client`; never stored; its errors are never redirected at once, like a self-registered client's |
//! | `error_description` at the authorization endpoint | fixed sentences only, never request text; `state` at most 1024 bytes, a longer one is `invalid_request` |
//! | userinfo (OpenID Connect Core §5.3) | one endpoint for relying parties and mail servers (Dovecot's default `introspection_mode = auth`): any valid user token of any audience, `openid` not required; `sub` always, `email` and `email_verified` (`true`: every address is administrator-set) with `email`, `preferred_username` and `name` (when the directory has one) with `profile`, and `scope` with both spellings of each mail-profile scope; a `client_credentials` token is 401 `invalid_token` ([`userinfo`]) |
//! | RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) | `end_session_endpoint`: the engine checks the request (an `id_token_hint` of this server, possibly expired; `client_id` one of its audiences; `post_logout_redirect_uri` exactly one the client registered, then `state` appended); every failure is `invalid_request` shown to the user, never redirected; the embedder asks the user before ending the session (a plain link must not sign anyone out) and refuses a hint whose `sid` is not the browser's session ([`end_session`]) |
//! | back-channel logout (OpenID Connect Back-Channel Logout 1.0) | when the embedder turns on `backchannel_logout` (it delivers): registration accepts `backchannel_logout_uri` (https, or http on loopback; no fragment) and `backchannel_logout_session_required`, discovery advertises both `*_supported`; [`Engine::backchannel_logout`] signs one logout token (`typ: logout+jwt`, `sub`, `sid`, the event, a `jti`, 2 minutes, never a `nonce`) per client of the ended session that registered a URI, and revokes the session's grants without `offline_access` (§2.7, whether or not it is on; [`backchannel_logout`]) |
//! | front-channel logout (OpenID Connect Front-Channel Logout 1.0) | when the embedder turns on `frontchannel_logout` (it renders the frames): registration accepts `frontchannel_logout_uri` (the back-channel URI rules, and the origin of a registered redirect URI) and `frontchannel_logout_session_required`; [`Engine::frontchannel_logout`] gives the URL to frame per client of the ended session, with `iss` and `sid` ([`frontchannel_logout`]) |
//! | ID tokens (OpenID Connect Core) | with `openid` in the granted scope, from the code exchange, the device code and refresh: `iss`, `sub`, `aud` = `azp` = the client, `iat`/`exp` of the access token, `auth_time`, `amr` (RFC 8176) and `sid` (the sign-in the embedder reports to `approve`, [`authentication`]; no `sid` from the device flow; no `acr`, nothing asserts one), `nonce` exactly as sent (code exchange only), `at_hash`; signed with the client's `id_token_signed_response_alg` (ES256 by default, RS256, EdDSA; never HMAC or `none`) by the key set given to [`Engine::new`], whose public keys [`Engine::jwks`] serves ([`openid`], [`jose`]) |
//! | request objects and `claims` | not supported, and refused rather than ignored: `request` is `request_not_supported`, `request_uri` `request_uri_not_supported`, `claims` `invalid_request`; discovery says so |
//! | `prompt`, `max_age`, `login_hint`, `id_token_hint` (OpenID Connect Core §3.1.2.1) | checked with the authorization request (`invalid_request` for an unknown prompt value, `none` with another, a `max_age` that is not a non-negative integer, a hint not signed by this server's keys for this issuer and client; an expired hint is accepted); [`Engine::proceed`] turns them and who the embedder's session says is signed in into the next step: the sign-in form, the consent page, or an answer without a page (`login_required`, `consent_required`, or a code from a remembered consent) ([`interaction`]) |
//! | remembered consent | per subject and client, the union of the approvals, at most 100 per subject: the client's next request for the same scope or less needs no consent page; forgotten when the user denies on the consent page ([`Engine::deny_and_forget`]), when revoked, or with its client or user ([`store::ConsentRecord`]) |
//! | which tokens a SASL login accepts | by default ([`sasl::SaslPolicy::default`]) only a token carrying a mail scope (`mail` or `urn:ietf:params:oauth:scope:mail`, else `insufficient_scope`) that names a user (a `client_credentials` token fails with `invalid_token`); a failed login counts against the source address only, never the claimed identity |
//! | resource indicators (RFC 8707) | the administrator lists the protected resources (`resources`: absolute URIs such as `imap://mail.example.com`, each with its scopes); `resource` on `/authorize`, the token and the device requests picks among them, `invalid_target` for a malformed or unknown one; without it a token is for every configured resource its scope reaches; a refresh may narrow the audience, never widen it ([`resource`]) |
//! | the access token's audience | the resource identifiers themselves in the token (format version 2), so it survives configuration changes; no audience, and format version 1 byte for byte, when no resource is configured ([`access_token`]) |
//! | a token without audience at a named resource | accepted by [`Engine::validate_access_token_for`] only while no resource is configured; always refused by a SASL listener whose [`sasl::SaslPolicy::resource`] is set, with `invalid_token` like a token for another resource |
//! | the access token's format | HMAC-signed ([`access_token`]) by default, the fastest to issue and check; RFC 9068 JWTs (`typ: at+jwt`, RS256 unless `jwt_access_token_alg` says otherwise, `aud` the resources or else the issuer, the grant id and credential version in `jti`) for a client the administrator sets to them ([`client::ClientRecord::access_token_format`], never through registration) or a resource configured so; every validation entry point takes both alike ([`jose::access_token`]) |
//! | a pending authorization or device request | opaque (private fields, no constructor, no `Deserialize`); the decision re-reads the client or device record and refuses a request that no longer matches it (see [`authorize`], [`device_verify`]) |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_token;
mod ask;
pub mod authentication;
pub mod authorize;
pub mod backchannel_logout;
pub mod bearer;
mod caller;
pub mod claims;
pub mod client;
pub mod client_auth;
pub mod client_id_document;
pub mod client_metadata;
pub mod config;
pub mod device;
pub mod device_verify;
pub mod end_session;
pub mod endpoints;
pub mod engine;
pub mod error;
pub mod flow;
pub mod frontchannel_logout;
pub mod http;
pub mod interaction;
pub mod introspect;
mod issue;
pub mod jose;
pub mod metadata;
pub mod openid;
pub mod params;
pub mod pkce;
pub mod random;
mod redirect;
mod refresh_token;
pub mod register;
pub mod resource;
pub mod response;
pub mod revoke;
pub mod sasl;
pub mod scope;
pub mod secret;
pub mod store;
pub mod throttle;
pub mod token;
mod token_lookup;
pub mod userinfo;

pub use engine::Engine;
