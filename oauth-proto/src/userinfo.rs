//! The userinfo endpoint (OpenID Connect Core 1.0 §5.3): a token's user, described to whoever
//! holds the token.
//!
//! One endpoint serves two audiences. A relying party (webmail, groupware) asks who signed in;
//! a mail server asks who a token it was presented belongs to: Dovecot's `oauth2` passdb in its
//! default `introspection_mode = auth` sends exactly this request (a `GET` with the token as
//! `Authorization: Bearer`) and reads the login name from `email` (its default
//! `username_attribute`). So the endpoint needs no client credentials: the bearer token is the
//! credential (RFC 6750), found by [`crate::bearer::extract`] (the header, or an `access_token`
//! form parameter on a `POST`; never the query), and validated like every access token: signature,
//! key, expiry, then the revocation view through
//! [`Op::RevocationStatus`](crate::store::Op::RevocationStatus). Errors are RFC 6750 §3's, with
//! their `WWW-Authenticate: Bearer` challenge ([`BearerError::response`]).
//!
//! What it answers, from [`Op::UserClaims`](crate::store::Op::UserClaims) (the one source of user
//! claims, [`crate::claims`]):
//!
//! - always `sub`, the token's subject;
//! - with scope `email`: `email` and `email_verified`, when the directory knows an address.
//!   Every address the reference server knows was set by its administrator (`user add --email`,
//!   or a user name that is an address), never typed in by the user, so it is `true`. An embedder
//!   whose users enter their own addresses answers [`UserClaims`] only with the ones it verified;
//! - with scope `profile`: `preferred_username` (the name the user signs in with), and `name`
//!   (the display name) when the directory knows one;
//! - `scope`: the token's scope, with the other spelling of each mail-profile scope it holds
//!   (`mail` and `urn:ietf:params:oauth:scope:mail`, likewise contacts and calendars, which this
//!   server treats as one scope each, see [`crate::scope`]). It describes the token, not the
//!   user; a resource server that checks one required scope by name (Dovecot's `scope` setting
//!   reads this member) then accepts either spelling.
//!
//! A token without a user (`client_credentials`: its subject is the client) is 401
//! `invalid_token`: it never yields a user name, and its subject is never looked up. A token of
//! any audience is accepted: a resource server asks here about the tokens presented to it
//! (Dovecot presents an `imap://` token), and the answer tells it nothing the token's holder
//! could not already use. `openid` is not required either, for the same reason: the mail servers
//! that ask carry mail tokens.

use std::sync::OnceLock;

use serde::Serialize;

use crate::access_token::{self, AccessClaims};
use crate::ask::{self, Halt};
use crate::bearer::{self, BearerError};
use crate::claims::UserClaims;
use crate::engine::Engine;
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::HttpRequest;
use crate::response::Response;
use crate::scope::{CALENDARS, CONTACTS, MAIL};

/// The mail-profile scopes and their short aliases (see [`crate::scope`]).
const ALIASES: [(&str, &str); 3] = [
    ("mail", MAIL),
    ("contacts", CONTACTS),
    ("calendar", CALENDARS),
];

/// `GET` or `POST /userinfo`.
#[derive(Debug)]
pub struct Userinfo {
    engine: Engine,
    request: HttpRequest,
    /// The store-free half of validation, made once per request and reused by the flow's replays.
    verified: OnceLock<Result<AccessClaims, BearerError>>,
}

impl Engine {
    /// Starts a userinfo request (OpenID Connect Core §5.3).
    pub fn userinfo(&self, request: HttpRequest, now: u64) -> Flow<Userinfo> {
        Flow::new(
            Userinfo {
                engine: self.clone(),
                request,
                verified: OnceLock::new(),
            },
            now,
        )
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    scope: String,
}

/// The token's scope with each mail-profile scope's other spelling added, in canonical order.
fn scope_with_aliases(claims: &AccessClaims) -> String {
    let mut tokens: Vec<&str> = claims.scope.tokens().collect();
    for (short, urn) in ALIASES {
        if claims.scope.contains(short) && !claims.scope.contains(urn) {
            tokens.push(urn);
        } else if claims.scope.contains(urn) && !claims.scope.contains(short) {
            tokens.push(short);
        }
    }
    tokens.sort_unstable();
    tokens.join(" ")
}

impl Procedure for Userinfo {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        // A store that answers out of contract is a server fault (`server_error`), not the caller's.
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

impl Userinfo {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let refuse = |e: BearerError| Ok(e.response(&self.engine.config().issuer));
        let claims = match self.verified.get_or_init(|| self.verify(cx.now())) {
            Ok(c) => c,
            Err(e) => return refuse(e.clone()),
        };
        let status = ask::revocation_status(cx, claims.grant_id, &claims.subject)?;
        if let Err(e) = access_token::check_revocation(claims, &status) {
            return refuse(BearerError::InvalidToken(e));
        }
        let user = ask::user_claims(cx, &claims.subject)?;
        Ok(describe(claims, user))
    }

    /// Finds and checks the token without the store: extraction, signature, expiry, and that it
    /// names a user.
    fn verify(&self, now: u64) -> Result<AccessClaims, BearerError> {
        let r = &self.request;
        if r.body.len() > self.engine.config().max_body_bytes {
            return Err(BearerError::InvalidRequest("the request body is too large"));
        }
        let token = bearer::extract(
            &r.method,
            r.authorization.as_deref(),
            r.content_type.as_deref(),
            &r.query,
            &r.body,
        )?;
        let claims = self
            .engine
            .verify_access_token(&token, now)
            .map_err(BearerError::InvalidToken)?;
        if claims.is_client_credentials() {
            return Err(BearerError::NoUser);
        }
        Ok(claims)
    }
}

/// The answer for a valid user token.
fn describe(claims: &AccessClaims, user: Option<&UserClaims>) -> Response {
    let email = user
        .and_then(|u| u.email.as_deref())
        .filter(|_| claims.scope.contains("email"));
    let profile = claims.scope.contains("profile");
    let preferred_username =
        profile.then(|| user.map_or(claims.subject.as_str(), |u| u.username.as_str()));
    let name = user.and_then(|u| u.name.as_deref()).filter(|_| profile);
    Response::json(
        200,
        &Claims {
            sub: &claims.subject,
            email,
            email_verified: email.map(|_| true),
            preferred_username,
            name,
            scope: scope_with_aliases(claims),
        },
    )
}
