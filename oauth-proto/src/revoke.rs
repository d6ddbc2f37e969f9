//! Token revocation (RFC 7009).
//!
//! An authenticated client (or a public client naming itself) revokes one of its own tokens:
//! - a refresh token ends its whole grant ([`Effect::RevokeGrant`]): every refresh and access token
//!   issued from it stops working;
//! - an access token ends its grant's access ([`Effect::RevokeAccess`]): every access token of the
//!   grant issued up to now fails validation, while the refresh token lives on (RFC 7009 §2.1 allows
//!   either; the client keeps its session and gets fresh access).
//!
//! Every other token gets the same empty 200 and is left untouched: unknown, malformed, expired and
//! already revoked tokens (RFC 7009 §2.2), and tokens of other clients, live or dead. Answering a
//! live token of another client differently (say `unauthorized_client`) would tell any client
//! whether a token it got hold of is alive, which is exactly what introspection keeps from it; one
//! answer for all of them tells nothing (the choice recorded in the crate docs). A refresh token of
//! a grant that is already revoked revokes nothing again. `unsupported_token_type` is never needed,
//! since both kinds can be revoked.
//!
//! As for introspection, a valid access token's revocation status (whether it is already revoked)
//! is read with the caller's client in one op (the crate's `caller` and `token_lookup`
//! modules).

use crate::ask::{self, Halt};
use crate::caller;
use crate::engine::Engine;
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::{FormRequest, HttpRequest};
use crate::response::Response;
use crate::store::Effect;
use crate::token_lookup::{Found, TokenLookup};

/// `POST /revoke`.
#[derive(Debug)]
pub struct Revoke {
    engine: Engine,
    request: FormRequest,
    lookup: TokenLookup,
}

impl Engine {
    /// Starts a revocation request.
    pub fn revoke(&self, request: HttpRequest, now: u64) -> Flow<Revoke> {
        Flow::new(
            Revoke {
                engine: self.clone(),
                request: FormRequest::new(request, self.config().max_body_bytes),
                lookup: TokenLookup::default(),
            },
            now,
        )
    }
}

impl Procedure for Revoke {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

impl Revoke {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let params = self.request.form()?;
        let now = cx.now();
        let config = self.engine.config();
        let (caller, status) = caller::authenticate(cx, config, &self.request, params, || {
            self.lookup.status_to_read(&self.engine, params, now)
        })?;
        let token = params.require("token")?;
        let keep_until = self.engine.revocation_keep_until(now);
        match self.lookup.find(&self.engine, cx, params, token, status)? {
            Found::Access(claims) if claims.client_id == caller.client_id => {
                cx.effect(Effect::RevokeAccess {
                    grant_id: claims.grant_id,
                    at: now,
                    keep_until,
                });
            }
            Found::Refresh { found, .. }
                if found.grant.client_id == caller.client_id
                    && found.grant.revoked_at.is_none() =>
            {
                cx.effect(Effect::RevokeGrant {
                    grant_id: found.grant.grant_id,
                    at: now,
                    keep_until,
                });
            }
            // Another client's token, live or dead, or nothing revocable: the same 200.
            Found::Access(_) | Found::Refresh { .. } | Found::Nothing => {}
        }
        Ok(Response {
            status: 200,
            headers: vec![
                ("cache-control", "no-store".into()),
                ("pragma", "no-cache".into()),
            ],
            body: String::new(),
            error: None,
        })
    }
}
