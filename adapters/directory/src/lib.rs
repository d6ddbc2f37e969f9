//! The reference server's directory: what `oauth-server` asks of a store beyond the engine's
//! contract.
//!
//! # Why a contract of its own
//!
//! The engine's store contract (`oauth_proto::store`: [`Op`](oauth_proto::store::Op),
//! [`Effect`], [`Store`](oauth_proto::store::Store), [`AsyncStore`]) holds exactly what the engine
//! reads and writes: clients, codes, grants, tokens, device authorizations, counters and
//! revocations. An embedder such as a mail server implements that contract and keeps its users in
//! its own user directory (LDAP, `/etc/passwd`, a mail account table); it must not have to store
//! the reference server's accounts too. So the reference server's additions live here:
//!
//! - its local user accounts ([`UserRecord`]: a login name, which is also the OAuth subject, and
//!   an argon2id password hash), read at sign-in and changed by `oauth-server user ...`;
//! - the listing of every client, which only `oauth-server client list` needs (the engine reads a
//!   client by id, never all of them).
//!
//! A store that also implements [`Directory`] can back the reference server; the memory and file
//! stores do, so the server keeps its users in the same crash-safe files as its tokens.
//!
//! # Why one `change` call with both kinds of writes
//!
//! Changing a password or deleting a user must revoke what the user was issued
//! (`Engine::revoke_subject`), and a crash in between must not leave a new password with the old
//! tokens alive. [`Directory::change`] therefore takes the user changes and the engine's effects
//! together and applies them as one atomic, durable write, as [`AsyncStore::apply`] does for
//! effects alone.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;

use serde::{Deserialize, Serialize};

use oauth_proto::client::ClientRecord;
use oauth_proto::store::{AsyncStore, Effect, StoreError};

/// A local user account of the reference server. The engine never reads it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name, also the OAuth subject.
    pub username: String,
    /// Password hash in PHC string format (argon2id in the reference server).
    pub password_hash: String,
    /// Creation time.
    pub created_at: u64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A write to the user accounts.
///
/// The variant names are those the user writes had when they were engine effects
/// (`Effect::PutUser`, `Effect::DeleteUser`), so stores that journal changes by variant name (the
/// file store) read their old entries unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UserChange {
    /// Insert or replace a user.
    PutUser(UserRecord),
    /// Delete a user (callers also apply the engine's `revoke_subject` effects, in the same
    /// [`Directory::change`]).
    DeleteUser {
        /// The login name.
        username: String,
    },
}

/// The reference server's directory contract, on top of the engine's [`AsyncStore`].
///
/// Errors are [`StoreError`]s, exactly as for the engine's contract.
pub trait Directory: AsyncStore {
    /// The user named `username`, if there is one.
    fn user(
        &self,
        username: &str,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;

    /// Every user, sorted by name.
    fn users(&self) -> impl Future<Output = Result<Vec<UserRecord>, StoreError>> + Send;

    /// Every client, sorted by id (owned copies: an administrative read).
    fn clients(&self) -> impl Future<Output = Result<Vec<ClientRecord>, StoreError>> + Send;

    /// Applies `users` in order, then `effects` in order, as one atomic and durable write: after
    /// a crash all of it is there or none.
    fn change(
        &self,
        users: Vec<UserChange>,
        effects: Vec<Effect>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
