//! Drives one [`SaslExchange`] over a connection; shared by IMAP and SMTP.
//!
//! All SASL work (base64, parsing, validation, challenges, reply texts) is `oauth-proto`'s; this
//! module only moves lines between the socket and the exchange, asks the embedder's lockout check
//! before any token is validated, and reports every counted failure to the embedder's hook. Neither
//! tokens nor raw SASL payloads are logged: only the mechanism, the claimed identity and the
//! failure reason.

use oauth_proto::access_token::{AccessClaims, TokenError};
use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, parse_xoauth2, Authenticated, ClientInput,
    Gs2Header, Mechanism, Protocol, SaslExchange, Step,
};
use tracing::{info, warn};

use crate::conn::{Conn, End};
use crate::context::MailContext;

/// How an exchange ended.
pub(crate) enum Outcome {
    /// The client is authenticated.
    Success(Authenticated),
    /// The exchange failed; the reply to send (without an IMAP tag).
    Failure(String),
}

/// The reply when a lockout key is locked out. Permanent, like every other failure (a temporary
/// code would make clients retry at once); `oauth-proto`'s [`Protocol`] has no text for it.
fn locked_out_reply(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "NO [AUTHENTICATIONFAILED] Too many failed attempts",
        Protocol::Smtp => "535 5.7.8 Authentication credentials invalid (too many failed attempts)",
        Protocol::Pop3 => "-ERR [AUTH] Too many failed attempts",
        Protocol::ManageSieve => "NO \"Too many failed attempts\"",
    }
}

/// The identity a client response claims, read before validation for the lockout check only (the
/// exchange parses the message again, strictly). `None` when there is none or it cannot be read.
fn claimed_identity(mechanism: Mechanism, bytes: &[u8]) -> Option<String> {
    match mechanism {
        Mechanism::OAuthBearer => Gs2Header::parse(bytes).ok()?.0.authzid,
        Mechanism::XOAuth2 => parse_xoauth2(bytes).ok().map(|r| r.user),
    }
}

/// The lockout key of a claimed identity; the same form as `oauth_proto::sasl::Lockout::key`.
fn identity_key(identity: &str) -> String {
    format!("sasl:{}", identity.to_ascii_lowercase())
}

/// Runs an exchange for `mechanism`, starting from the command's initial response if it had one.
/// Challenges are sent here; the final reply is returned for the caller to send.
pub(crate) async fn authenticate(
    conn: &mut Conn,
    protocol: Protocol,
    mechanism: Mechanism,
    initial: Option<&[u8]>,
) -> Result<Outcome, End> {
    let ctx = conn.ctx().clone();
    let peer = conn.peer();
    let peer_key = MailContext::peer_key(&peer);
    if (ctx.locked_out)(&peer_key) {
        warn!(%peer, mechanism = mechanism.name(), "authentication refused: peer locked out");
        return Ok(Outcome::Failure(locked_out_reply(protocol).to_owned()));
    }
    let mut exchange = match SaslExchange::new(mechanism, false, &ctx.policy) {
        Ok(exchange) => exchange,
        Err(e) => return Ok(Outcome::Failure(protocol.refused(e).to_owned())),
    };
    let validator = |token: &str| -> Result<AccessClaims, TokenError> { (ctx.validator)(token) };
    let mut input = match initial {
        Some(arg) => decode_initial_response(arg),
        None => {
            let step = exchange.no_initial_response().map_err(internal)?;
            conn.send(&protocol.reply(&step)).await?;
            decode_client_line(&conn.read_line().await?)
        }
    };
    let mut awaiting_dummy = false;
    loop {
        if !awaiting_dummy {
            if let ClientInput::Response(bytes) = &input {
                if let Some(identity) = claimed_identity(mechanism, bytes) {
                    if (ctx.locked_out)(&identity_key(&identity)) {
                        warn!(%peer, mechanism = mechanism.name(), identity = ?identity,
                            "authentication refused: identity locked out");
                        return Ok(Outcome::Failure(locked_out_reply(protocol).to_owned()));
                    }
                }
            }
        }
        let step = exchange
            .step(input, &ctx.policy, &validator)
            .map_err(internal)?;
        if let Some(lockout) = step.lockout() {
            let key = lockout
                .key()
                .map_or_else(|| peer_key.clone(), str::to_owned);
            (ctx.on_failure)(&key);
        }
        match step {
            Step::Challenge(challenge) => {
                awaiting_dummy = challenge.is_error();
                conn.send(&protocol.challenge(&challenge)).await?;
                input = decode_client_line(&conn.read_line().await?);
            }
            Step::Success(authenticated) => {
                info!(%peer, mechanism = mechanism.name(), identity = %authenticated.identity(),
                    client_id = %authenticated.client_id(), "authenticated");
                return Ok(Outcome::Success(authenticated));
            }
            Step::Failure(failure) => {
                warn!(%peer, mechanism = mechanism.name(), identity = ?failure.identity(),
                    reason = ?failure.reason(), ending = ?failure.ending(), "authentication failed");
                return Ok(Outcome::Failure(protocol.failure(&failure).to_owned()));
            }
        }
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> End {
    End::Io(std::io::Error::other(e))
}
