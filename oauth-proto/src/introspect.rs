//! Token introspection (RFC 7662).
//!
//! A user token's answer names its user: `username` and, when known, `email` (which Dovecot's
//! default `username_attribute = email` reads). They come from the embedder's user directory
//! ([`crate::claims`], one more question to the driver); a user the directory does not know is
//! named by its subject, with no `email`. A `client_credentials` token has no user: no
//! `username`, no `email`, and no claims lookup.
//!
//! Only authenticated callers get an answer (`caller`): an unauthenticated call is
//! 401 `invalid_client`, never a token status. Who sees which tokens is
//! [`IntrospectionPolicy`]: by default (`resource_servers_only`, as RFC 7662 §4 advises) only
//! confidential clients the operator marked `resource_server` see every token; every other
//! authenticated client, public or confidential, sees only the tokens issued to itself, which tell
//! it nothing it did not know. Under `any_confidential_client` every confidential client sees every
//! token. The answer describes the token's owner, never the caller: `client_id`, `sub` and
//! `username` are the token's. A token that is unknown, malformed, expired, revoked, of another kind
//! (codes, device codes) or not visible to this caller is `{"active":false}` and nothing more (RFC
//! 7662 §2.2), so a caller cannot tell a live token it may not see from a dead one. `aud` is the
//! access token's audience (RFC 8707; a string for one resource, an array for several, omitted
//! for a token without audience and for refresh tokens).
//!
//! What is read: for a valid access token (signature and expiry checked without the store), one op,
//! the caller's client together with the token's revocation status
//! ([`Op::GetClientWithStatus`](crate::store::Op::GetClientWithStatus), see the crate's `caller` and
//! `token_lookup` modules); for a refresh token, the caller's client, then the token by hash;
//! anything else, the caller's client and at most a lookup by hash. Then, for an active user token
//! the caller may see, its user's claims. The hint (`token_type_hint`) only orders the lookups; a
//! caller described by its metadata document has its document fetched and the status read on its
//! own.

use serde::Serialize;

use crate::ask::{self, Halt};
use crate::caller;
use crate::claims::UserClaims;
use crate::config::IntrospectionPolicy;
use crate::engine::Engine;
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::{FormRequest, HttpRequest};
use crate::response::Response;
use crate::token_lookup::{self, Found, TokenLookup};

/// `POST /introspect`.
#[derive(Debug)]
pub struct Introspect {
    engine: Engine,
    request: FormRequest,
    lookup: TokenLookup,
}

impl Engine {
    /// Starts an introspection request.
    pub fn introspect(&self, request: HttpRequest, now: u64) -> Flow<Introspect> {
        Flow::new(
            Introspect {
                engine: self.clone(),
                request: FormRequest::new(request, self.config().max_body_bytes),
                lookup: TokenLookup::default(),
            },
            now,
        )
    }
}

#[derive(Serialize)]
struct Active<'a> {
    active: bool,
    scope: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    sub: &'a str,
    token_type: &'static str,
    exp: u64,
    iat: u64,
    iss: &'a str,
    #[serde(skip_serializing_if = "Audience::is_empty")]
    aud: Audience<'a>,
}

/// `aud` as JWT claims write it (RFC 7519 §4.1.3): one identifier as a string, several as an array.
/// `None` for refresh tokens, which carry no audience of their own.
struct Audience<'a>(Option<&'a crate::access_token::Audience>);

impl Audience<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_none_or(|a| a.is_empty())
    }

    fn len(&self) -> usize {
        self.0
            .map_or(0, |a| a.iter().map(|id| id.len() + 3).sum::<usize>() + 8)
    }
}

impl Serialize for Audience<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let Some(audience) = self.0 else {
            return s.serialize_none();
        };
        if audience.len() == 1 {
            return s.serialize_str(audience.iter().next().unwrap_or_default());
        }
        let mut seq = s.serialize_seq(Some(audience.len()))?;
        for id in audience.iter() {
            seq.serialize_element(id)?;
        }
        seq.end()
    }
}

impl Active<'_> {
    fn response(&self) -> Response {
        // Member names, punctuation and two 20-digit numbers take under 160 bytes.
        let size = 160
            + self.scope.len()
            + self.client_id.len()
            + self.username.map_or(0, str::len)
            + self.email.map_or(0, |e| e.len() + 10)
            + self.sub.len()
            + self.iss.len()
            + self.aud.len();
        Response::json_sized(200, self, size)
    }
}

/// How an answer names a token's user: its claims from the embedder's directory, or its subject
/// alone when the directory does not know it.
#[derive(Clone, Copy)]
struct User<'a> {
    username: &'a str,
    email: Option<&'a str>,
}

impl<'a> User<'a> {
    fn new(claims: Option<&'a UserClaims>, subject: &'a str) -> Self {
        match claims {
            Some(c) => User {
                username: &c.username,
                email: c.email.as_deref(),
            },
            None => User {
                username: subject,
                email: None,
            },
        }
    }
}

fn inactive() -> Response {
    #[derive(Serialize)]
    struct Inactive {
        active: bool,
    }
    Response::json(200, &Inactive { active: false })
}

impl Procedure for Introspect {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

impl Introspect {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let config = self.engine.config();
        let params = self.request.form()?;
        let now = cx.now();
        let (caller, status) = caller::authenticate(cx, config, &self.request, params, || {
            self.lookup.status_to_read(&self.engine, params, now)
        })?;
        let token = params.require("token")?;
        let sees_all = !caller.is_public()
            && match config.introspection {
                IntrospectionPolicy::AnyConfidentialClient => true,
                IntrospectionPolicy::ResourceServersOnly => caller.resource_server,
            };
        let may_see = |owner: &str| sees_all || owner == caller.client_id;
        let iss = config.issuer.as_str();
        let response = match self.lookup.find(&self.engine, cx, params, token, status)? {
            Found::Access(c) if may_see(&c.client_id) => {
                // client_credentials tokens have the client as subject and no user.
                let user = if c.is_client_credentials() {
                    None
                } else {
                    let claims = ask::user_claims(cx, &c.subject)?;
                    Some(User::new(claims, &c.subject))
                };
                Active {
                    active: true,
                    scope: c.scope.as_str(),
                    client_id: &c.client_id,
                    username: user.map(|u| u.username),
                    email: user.and_then(|u| u.email),
                    sub: &c.subject,
                    token_type: "Bearer",
                    exp: c.expires_at,
                    iat: c.issued_at,
                    iss,
                    aud: Audience(Some(&c.audience)),
                }
                .response()
            }
            Found::Refresh { found: r, current }
                if token_lookup::refresh_active(r, current, cx.now())
                    && may_see(&r.grant.client_id) =>
            {
                let claims = ask::user_claims(cx, &r.grant.subject)?;
                let user = User::new(claims, &r.grant.subject);
                Active {
                    active: true,
                    scope: r.grant.scope.as_str(),
                    client_id: &r.grant.client_id,
                    username: Some(user.username),
                    email: user.email,
                    sub: &r.grant.subject,
                    token_type: "refresh_token",
                    exp: r.family.expires_at,
                    iat: r.family.issued_at,
                    iss,
                    aud: Audience(None),
                }
                .response()
            }
            _ => inactive(),
        };
        Ok(response)
    }
}
