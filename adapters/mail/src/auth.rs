//! Drives one [`SaslExchange`] over a connection; shared by IMAP and SMTP.
//!
//! All SASL work (base64, parsing, validation, challenges, reply texts) is `oauth-proto`'s; this
//! module only moves lines between the socket and the exchange, asks the [`Throttle`] about the
//! source address before the exchange starts, and records every counted failure against that
//! address (see [`MailContext`](crate::MailContext) for why never against the claimed identity). Neither tokens nor raw
//! SASL payloads are logged: only the mechanism, the claimed identity and the failure reason.
//!
//! [`Throttle`]: oauth_proto::throttle::Throttle

use oauth_proto::access_token::{AccessClaims, TokenError};
use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, Authenticated, Mechanism, Protocol, SaslExchange,
    Step,
};
use oauth_proto::throttle::Verdict;
use tracing::{info, warn};

use crate::conn::{Conn, End};

/// How an exchange ended.
pub(crate) enum Outcome {
    /// The client is authenticated.
    Success(Authenticated),
    /// The exchange failed; the reply to send (without an IMAP tag).
    Failure(String),
}

/// The reply when the source address is refused. Permanent, like every other failure (a temporary
/// code would make clients retry at once); `oauth-proto`'s [`Protocol`] has no text for it.
fn locked_out_reply(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "NO [AUTHENTICATIONFAILED] Too many failed attempts",
        Protocol::Smtp => "535 5.7.8 Authentication credentials invalid (too many failed attempts)",
        Protocol::Pop3 => "-ERR [AUTH] Too many failed attempts",
        Protocol::ManageSieve => "NO \"Too many failed attempts\"",
    }
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
    match ctx.throttle.check(peer.ip(), None, (ctx.clock)()) {
        Verdict::Refuse { retry_after } => {
            warn!(%peer, mechanism = mechanism.name(), retry_after,
                "authentication refused: too many failures from this address");
            return Ok(Outcome::Failure(locked_out_reply(protocol).to_owned()));
        }
        Verdict::Proceed { delay } => {
            if !delay.is_zero() {
                conn.pause(delay).await?;
            }
        }
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
    loop {
        let step = exchange
            .step(input, &ctx.policy, &validator)
            .map_err(internal)?;
        if step.counts_toward_lockout()
            && ctx.throttle.record_failure(peer.ip(), None, (ctx.clock)())
        {
            warn!(%peer, "too many failed authentications: this address is now refused");
        }
        match step {
            Step::Challenge(challenge) => {
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
            // A step added to the engine after this listener was written: never a success; the
            // session ends as on an internal error.
            _ => {
                warn!(%peer, mechanism = mechanism.name(), "an exchange step this listener does not handle");
                return Err(internal(std::io::Error::other(
                    "unhandled SASL exchange step",
                )));
            }
        }
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> End {
    End::Io(std::io::Error::other(e))
}
