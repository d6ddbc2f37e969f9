//! Checking a sign-in, with limits on guessing.
//!
//! Every attempt asks the engine's limiter first ([`oauth_proto::throttle`]), for the client address
//! and the typed name: an address that failed too often, or failed too often for this name, is
//! refused without the password being checked; one that failed a few times, or a name that failed
//! from elsewhere, waits a growing delay first. Failures on a name from other addresses never
//! refuse: a stranger who knows alice's name can slow her sign-in a little, never lock her out. A
//! success forgets the name's failures; successes are never counted, so many people behind one
//! address sign in freely. Nothing is stored: a restart forgets every count.
//!
//! Unknown users and wrong passwords get the same answer after the same argon2 work, so neither
//! the message nor the timing tells whether a name exists.

use std::net::IpAddr;

use oauth_proto::store::StoreError;
use oauth_proto::throttle::Verdict;

use crate::app::App;
use crate::password;

/// How a sign-in attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right.
    Success,
    /// Wrong name or password (deliberately not told apart).
    Failure,
    /// Too many failures from this address (for this name, or in all); the password was not
    /// checked.
    Locked,
}

/// Checks a sign-in attempt from `addr`.
pub async fn attempt(
    app: &App,
    username: &str,
    password: &str,
    addr: IpAddr,
    now: u64,
) -> Result<Outcome, StoreError> {
    let throttle = app.engine.throttle();
    match throttle.check(addr, Some(username), now) {
        Verdict::Refuse { .. } => {
            tracing::info!(%addr, "sign-in refused: too many failures");
            return Ok(Outcome::Locked);
        }
        Verdict::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Verdict::Proceed { .. } => {}
    }
    let hash = if crate::admin::users::check_username(username).is_ok() {
        oauth_directory::Directory::user(&*app.store, username)
            .await?
            .map(|u| u.password_hash)
    } else {
        None
    };
    let password = password.to_owned();
    let ok =
        tokio::task::spawn_blocking(move || password::verify_or_dummy(&password, hash.as_deref()))
            .await
            .map_err(|e| StoreError::unavailable("password check failed").with_source(e))?;
    if ok {
        throttle.record_success(addr, Some(username), now);
        return Ok(Outcome::Success);
    }
    if throttle.record_failure(addr, Some(username), now) {
        tracing::warn!(%addr, "too many failed sign-ins; address refused");
    } else {
        tracing::info!(%addr, "failed sign-in");
    }
    Ok(Outcome::Failure)
}
