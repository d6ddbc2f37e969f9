//! Checking a sign-in, with limits on guessing.
//!
//! Every attempt is counted twice through the store's windowed counters (`Op::Count`): once for
//! the account (keyed by a hash of the typed name, whether or not such a user exists) and once for
//! the client address. Past either limit the attempt is refused without checking the password.
//! A failed attempt is answered after a delay that doubles with each failure on the account in the
//! window. A successful sign-in resets the account's counter; the address counter only expires
//! (it counts every attempt from the address, so its limit is set high).
//!
//! Unknown users and wrong passwords get the same answer after the same argon2 work, so neither
//! the message nor the timing tells whether a name exists.

use std::net::IpAddr;
use std::time::Duration;

use oauth_proto::secret::SecretHash;
use oauth_proto::store::{AsyncStore, Effect, Op, Reply, StoreError};

use crate::app::App;
use crate::password;

/// How a sign-in attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right.
    Success,
    /// Wrong name or password (deliberately not told apart).
    Failure,
    /// Too many attempts for this account or from this address; the password was not checked.
    Locked,
}

async fn count(
    store: &impl AsyncStore,
    key: String,
    now: u64,
    window: u64,
) -> Result<u32, StoreError> {
    match store
        .execute(Op::Count {
            key,
            now,
            expires_at: now + window,
        })
        .await?
    {
        Reply::Count(n) => Ok(n),
        other => Err(StoreError(format!("Count answered with {other:?}"))),
    }
}

fn account_key(username: &str) -> String {
    format!("login:user:{}", SecretHash::of(username).to_hex())
}

/// The delay after the `n`th failure in a window.
pub fn delay(n: u32, base_ms: u64, max_ms: u64) -> Duration {
    let factor = 1u64 << n.saturating_sub(1).min(20);
    Duration::from_millis(base_ms.saturating_mul(factor).min(max_ms))
}

/// Checks a sign-in attempt from `addr`.
pub async fn attempt(
    app: &App,
    username: &str,
    password: &str,
    addr: IpAddr,
    now: u64,
) -> Result<Outcome, StoreError> {
    let s = &app.settings;
    let store = &*app.store;
    let key = account_key(username);
    let on_account = count(store, key.clone(), now, s.login_window_secs).await?;
    let on_address = count(
        store,
        format!("login:addr:{addr}"),
        now,
        s.login_window_secs,
    )
    .await?;
    let outcome = if on_account > s.login_max_attempts_per_account
        || on_address > s.login_max_attempts_per_address
    {
        Outcome::Locked
    } else {
        let hash = if crate::users::check_username(username).is_ok() {
            crate::users::get(store, username)
                .await
                .map_err(StoreError)?
                .map(|u| u.password_hash)
        } else {
            None
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            password::verify_or_dummy(&password, hash.as_deref())
        })
        .await
        .map_err(|e| StoreError(format!("password check failed: {e}")))?;
        if ok {
            store.apply(vec![Effect::ResetCounter { key }]).await?;
            return Ok(Outcome::Success);
        }
        Outcome::Failure
    };
    tracing::info!(%addr, locked = outcome == Outcome::Locked, "failed sign-in");
    tokio::time::sleep(delay(
        on_account,
        s.login_delay_base_ms,
        s.login_delay_max_ms,
    ))
    .await;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_and_is_bounded() {
        assert_eq!(delay(1, 200, 5000), Duration::from_millis(200));
        assert_eq!(delay(2, 200, 5000), Duration::from_millis(400));
        assert_eq!(delay(4, 200, 5000), Duration::from_millis(1600));
        assert_eq!(delay(10, 200, 5000), Duration::from_millis(5000));
        assert_eq!(delay(u32::MAX, 200, 5000), Duration::from_millis(5000));
    }
}
