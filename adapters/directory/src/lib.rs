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
//! - its local user accounts ([`UserRecord`]: a login name, which is also the OAuth subject, an
//!   argon2id password hash, an optional email address and display name), read at sign-in and changed by
//!   `oauth-server user ...`;
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
//!
//! # Users' claims
//!
//! The engine describes a token's user (introspection's `username` and `email`) from the claims
//! its driver gives it for the subject ([`oauth_proto::claims`], the op
//! [`Op::UserClaims`](oauth_proto::store::Op::UserClaims)). A store implementing [`Directory`]
//! answers that op from its users with [`UserRecord::claims`]: the user's name, and its email,
//! which is the one set with `oauth-server user add|set NAME --email ADDR`, or else the user name
//! itself when that is an address (`alice@example.com`): a deployment that names its users by
//! their addresses, as mail servers usually do, needs to set nothing more for Dovecot's default
//! `username_attribute = email` to work.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;

use serde::{Deserialize, Serialize};

use oauth_proto::client::ClientRecord;
use oauth_proto::store::{AsyncStore, Effect, StoreError};

/// A local user account of the reference server. The engine never reads it; it sees the user's
/// claims ([`UserRecord::claims`]) through `Op::UserClaims`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Login name, also the OAuth subject.
    pub username: String,
    /// Password hash in PHC string format (argon2id in the reference server).
    pub password_hash: String,
    /// Creation time.
    pub created_at: u64,
    /// The user's email address, if one was set (records stored before it existed have none).
    /// Always written, even when absent: the file store writes records as arrays, so a field
    /// left out before a later one would shift that one into its place.
    #[serde(default)]
    pub email: Option<String>,
    /// The user's display name (OpenID Connect's `name`, "Alice Example"), if one was set
    /// ([`check_display_name`]); records stored before it existed have none. Left out when
    /// absent, which only the last field may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Longest display name accepted, in bytes.
pub const MAX_DISPLAY_NAME: usize = 200;

/// Checks a display name as `user add|set --name` takes it: 1 to [`MAX_DISPLAY_NAME`] bytes of
/// text with no control or formatting characters (no line breaks, no bidirectional overrides
/// that would make it read differently on a page than it is), not starting or ending with a space.
pub fn check_display_name(name: &str) -> Result<(), String> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if name.is_empty()
        || name.len() > MAX_DISPLAY_NAME
        || name.trim() != name
        || name.chars().any(hidden)
    {
        return Err(format!(
            "a display name is 1 to {MAX_DISPLAY_NAME} bytes of text, without control or \
             formatting characters or spaces at either end"
        ));
    }
    Ok(())
}

/// Longest email address accepted (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its
/// angle brackets).
pub const MAX_EMAIL: usize = 254;

/// Checks an email address as `user add|set --email` takes it: `local@domain`, at most
/// [`MAX_EMAIL`] bytes, one `@`, a non-empty local part, a domain of dot-separated labels of
/// letters, digits and `-`, and no spaces, quotes or control characters (the quoted local parts
/// of RFC 5321 are not accepted: no mail client sends them as a login).
pub fn check_email(address: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{address:?} is not an email address of the form local@example.com \
             (at most {MAX_EMAIL} bytes, no spaces or quotes)"
        )
    };
    if address.is_empty() || address.len() > MAX_EMAIL {
        return Err(bad());
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(bad());
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"(),:;<>@[\\]".contains(&b));
    let domain_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

impl UserRecord {
    /// What the engine is told about this user: its name, and its email (the one set, or else
    /// the user name when that is an address; see the crate docs).
    pub fn claims(&self) -> oauth_proto::claims::UserClaims {
        let email = self.email.clone().or_else(|| {
            check_email(&self.username)
                .is_ok()
                .then(|| self.username.clone())
        });
        oauth_proto::claims::UserClaims {
            username: self.username.clone(),
            email,
            name: self.name.clone(),
        }
    }
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("email", &self.email)
            .field("name", &self.name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, email: Option<&str>) -> UserRecord {
        UserRecord {
            username: name.to_owned(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            created_at: 1,
            email: email.map(str::to_owned),
            name: None,
        }
    }

    #[test]
    fn records_stored_before_emails_and_names_existed_load_without_them() {
        let old = r#"{"username":"alice","password_hash":"h","created_at":5}"#;
        let record: UserRecord = serde_json::from_str(old).unwrap();
        assert_eq!((&record.email, &record.name), (&None, &None));
        // The email is always written (the field before the name, see its docs); a missing
        // name is left out.
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"username":"alice","password_hash":"h","created_at":5,"email":null}"#
        );
        let mut named = user("alice", None);
        named.name = Some("Alice Example".to_owned());
        for with in [user("alice", Some("alice@example.com")), named] {
            let back: UserRecord =
                serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
            assert_eq!(back, with);
        }
    }

    #[test]
    fn display_names_are_text_without_hidden_characters() {
        assert_eq!(check_display_name("Alice Example"), Ok(()));
        assert_eq!(check_display_name("Zoë Ünal-Østergård"), Ok(()));
        for bad in ["", " Alice", "Alice ", "A\tB", "A\u{202E}B", "A\u{200B}B"] {
            assert!(check_display_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_display_name(&"x".repeat(MAX_DISPLAY_NAME + 1)).is_err());
    }

    #[test]
    fn the_email_is_the_one_set_or_a_user_name_that_is_an_address() {
        let claims = user("alice", Some("alice@example.com")).claims();
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
        let claims = user("bob@example.org", None).claims();
        assert_eq!(claims.email.as_deref(), Some("bob@example.org"));
        let claims = user("bob@example.org", Some("robert@example.com")).claims();
        assert_eq!(claims.email.as_deref(), Some("robert@example.com"));
        assert_eq!(user("carol", None).claims().email, None);
        // A name with an @ that is no address is not taken for one.
        assert_eq!(user("carol@", None).claims().email, None);
        assert_eq!(user("carol@localhost", None).claims().email, None);
    }

    #[test]
    fn email_syntax() {
        for ok in [
            "a@example.com",
            "first.last+tag@mail.example.co.uk",
            "x_y-z@a-b.example",
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a@b@example.com",
            "a b@example.com",
            "\"a\"@example.com",
            "a@-x.example.com",
            "a@exa mple.com",
            "a@example..com",
            "a\n@example.com",
            long.as_str(),
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }
}
