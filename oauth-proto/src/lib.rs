//! `oauth-proto`: a sans-IO OAuth 2.0 authorization server engine.
//!
//! The engine turns parsed requests into responses and storage effects. It performs **no IO of any
//! kind**: no sockets, no files, no threads, no async runtime, and it never reads the clock or the
//! operating system's randomness. The current Unix time and a [`Random`](random::Random) source are
//! arguments; the store is reached only through [`Op`](store::Op)s the driver answers and
//! [`Effect`](store::Effect)s it applies. `clippy.toml` bans `SystemTime::now`, `Instant::now` and
//! OS randomness in this crate, so the rule is checked, not just promised.
//!
//! # The run loop
//! 1. Build one [`Engine`] from a [`Config`](config::Config) and a [`KeyRing`](access_token::KeyRing).
//! 2. For each request, call its entry point (e.g. [`Engine::token`]) with the parsed request and
//!    `now`. It returns a [`Flow`](flow::Flow) (or, for pure steps, the answer itself).
//! 3. Step the flow: answer each [`Op`](store::Op) from the store, then apply the effects of
//!    [`Done`](flow::Done) *before* sending its output. [`flow::drive`] and [`flow::drive_async`] do it.
//! 4. Validate access tokens with [`Engine::validate_access_token`]: no store round trip.
//! 5. Around every credential check a stranger can repeat (a password, a token over SASL, a user
//!    code, a client secret), ask [`Engine::throttle`] first and tell it the result: one limiter
//!    that slows and stops the guessing address and never locks out the user it aims at
//!    ([`throttle`] has the design). [`response::Response::is_failed_guess`] says which engine
//!    answers count.
//!
//! # Choices where the specifications disagree (RFC 6749 vs RFC 9700 / OAuth 2.1)
//! | topic | choice |
//! |---|---|
//! | secret-based client auth | both `client_secret_basic` and `client_secret_post` are accepted and advertised |
//! | `Pragma: no-cache` | sent with `Cache-Control: no-store` on every credential-bearing response |
//! | `redirect_uri` at the token endpoint | required and identical when the authorization request had it (RFC 6749 §4.1.3); otherwise optional, and it must match whenever sent |
//! | PKCE | required for public clients, and for confidential ones by default (`require_pkce_for_confidential`); `S256` only unless `allow_plain_pkce` |
//! | implicit and password grants | not implemented: `unsupported_response_type` / `unsupported_grant_type` |
//! | loopback redirects | any port for `http://127.0.0.1` and `http://[::1]`; `localhost` is matched exactly |
//! | refresh token reuse | a rotated token presented again revokes the whole grant |
//! | missing `code_verifier` | `invalid_request`; a wrong one is `invalid_grant` |
//! | revoking another client's token | the same empty 200 as for an unknown token, live or dead, and the token left valid (an error only for live ones would reveal liveness) |
//! | who may introspect (RFC 7662 §4) | by default (`resource_servers_only`) confidential clients marked as resource servers see every token; every other client only its own, and `{"active":false}` for the rest, live or dead |
//! | failed client authentication | always 401 `invalid_client` with a `WWW-Authenticate: Basic` challenge |
//! | authorization errors of a self-registered client | shown to the user with the error redirect as a link ([`AuthorizeOutcome::ErrorLink`](authorize::AuthorizeOutcome::ErrorLink)), never redirected at once (RFC 9700 §4.11.2: anyone may register any redirect URI); an administrator's clients are redirected (RFC 6749 §4.1.2.1) |
//! | `error_description` at the authorization endpoint | fixed sentences only, never request text; `state` at most 1024 bytes, a longer one is `invalid_request` |
//! | which tokens a SASL login accepts | by default ([`sasl::SaslPolicy::default`]) only a token carrying a mail scope (`mail` or `urn:ietf:params:oauth:scope:mail`, else `insufficient_scope`) that names a user (a `client_credentials` token fails with `invalid_token`); a failed login counts against the source address only, never the claimed identity |
//! | a pending authorization or device request | opaque (private fields, no constructor, no `Deserialize`); the decision re-reads the client or device record and refuses a request that no longer matches it (see [`authorize`], [`device_verify`]) |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_token;
mod ask;
pub mod authorize;
pub mod bearer;
mod caller;
pub mod client;
pub mod client_auth;
pub mod client_metadata;
pub mod config;
pub mod device;
pub mod device_verify;
pub mod endpoints;
pub mod engine;
pub mod error;
pub mod flow;
pub mod http;
pub mod introspect;
mod issue;
pub mod metadata;
pub mod params;
pub mod pkce;
pub mod random;
mod redirect;
pub mod register;
pub mod response;
pub mod revoke;
pub mod sasl;
pub mod scope;
pub mod secret;
pub mod store;
pub mod throttle;
pub mod token;
mod token_lookup;

pub use engine::Engine;
