//! User accounts: the administration operations on them, over the reference server's
//! [`Directory`] contract (the engine's store contract holds no users: an embedder has its own).
//!
//! They are written against [`Directory`] alone, so the same code serves the admin commands (on
//! the data directory's persistent store) and the server's first start, and is tested on the memory
//! store. A user name is also the OAuth subject, so changing a password or deleting a user revokes
//! everything issued to that subject (`Engine::revoke_subject`).
//!
//! A user may have an email address (`user add|set NAME --email ADDR`) and a display name
//! (`--name "Alice Example"`, OpenID Connect's `name`). Introspection and userinfo read them
//! live through the directory (`UserRecord::claims`: the address set, or else a user name that is
//! an address), so changing them revokes nothing: the next answer about the user's tokens shows
//! the new ones.

use oauth_directory::{check_display_name, check_email, Directory, UserChange, UserRecord};
use oauth_proto::Engine;

use crate::password;

/// Longest user name.
pub const MAX_USERNAME: usize = 64;

/// Checks a user name: 1 to 64 of `A-Z a-z 0-9 . _ - @ +`.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user names are 1 to {MAX_USERNAME} characters of A-Z a-z 0-9 . _ - @ +"
        ))
    }
}

/// The user, if it exists.
pub async fn get(store: &impl Directory, name: &str) -> Result<Option<UserRecord>, String> {
    store.user(name).await.map_err(|e| e.to_string())
}

/// Every user, sorted by name.
pub async fn list(store: &impl Directory) -> Result<Vec<UserRecord>, String> {
    let mut users = store.users().await.map_err(|e| e.to_string())?;
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(users)
}

/// Creates a user without an email or display name; refuses an existing name.
pub async fn add(
    store: &impl Directory,
    name: &str,
    password: &str,
    now: u64,
) -> Result<(), String> {
    create(store, name, password, Details::default(), now).await
}

/// A user's details besides the password: `Some` sets one, `None` leaves it unset.
#[derive(Clone, Copy, Debug, Default)]
pub struct Details<'a> {
    /// The email address ([`check_email`]).
    pub email: Option<&'a str>,
    /// The display name ([`check_display_name`]).
    pub name: Option<&'a str>,
}

impl Details<'_> {
    fn check(&self) -> Result<(), String> {
        self.email.map(check_email).transpose()?;
        self.name.map(check_display_name).transpose()?;
        Ok(())
    }
}

/// Creates a user with its details; refuses an existing name, a malformed address or name.
pub async fn create(
    store: &impl Directory,
    name: &str,
    password: &str,
    details: Details<'_>,
    now: u64,
) -> Result<(), String> {
    check_username(name)?;
    password::check_new(password)?;
    details.check()?;
    if get(store, name).await?.is_some() {
        return Err(format!("user {name} already exists"));
    }
    let record = UserRecord {
        username: name.to_owned(),
        password_hash: password::hash(password)?,
        created_at: now,
        email: details.email.map(str::to_owned),
        name: details.name.map(str::to_owned),
    };
    store
        .change(vec![UserChange::PutUser(record)], Vec::new())
        .await
        .map_err(|e| e.to_string())
}

/// Changes a user's password and revokes every token and grant of the user.
pub async fn set_password(
    store: &impl Directory,
    engine: &Engine,
    name: &str,
    password: &str,
    now: u64,
) -> Result<(), String> {
    password::check_new(password)?;
    let mut record = get(store, name)
        .await?
        .ok_or_else(|| format!("no user {name}"))?;
    record.password_hash = password::hash(password)?;
    store
        .change(
            vec![UserChange::PutUser(record)],
            engine.revoke_subject(name, now),
        )
        .await
        .map_err(|e| e.to_string())
}

/// Changes a user's details: `set` holds those to set, `remove` those to remove (a detail in
/// neither is kept). Revokes nothing: the details are claims read at each answer, not
/// credentials.
pub async fn set_details(
    store: &impl Directory,
    name: &str,
    set: Details<'_>,
    remove: Removed,
) -> Result<(), String> {
    set.check()?;
    let mut record = get(store, name)
        .await?
        .ok_or_else(|| format!("no user {name}"))?;
    let change = |field: &mut Option<String>, to: Option<&str>, removed: bool| {
        if let Some(value) = to {
            *field = Some(value.to_owned());
        } else if removed {
            *field = None;
        }
    };
    change(&mut record.email, set.email, remove.email);
    change(&mut record.name, set.name, remove.name);
    store
        .change(vec![UserChange::PutUser(record)], Vec::new())
        .await
        .map_err(|e| e.to_string())
}

/// Sets (`Some`) or removes (`None`) the email address alone: [`set_details`] for the tests and
/// embedders that set up a user with an address.
pub async fn set_email(
    store: &impl Directory,
    name: &str,
    email: Option<&str>,
) -> Result<(), String> {
    let set = Details { email, name: None };
    let remove = Removed {
        email: email.is_none(),
        name: false,
    };
    set_details(store, name, set, remove).await
}

/// Which details [`set_details`] removes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Removed {
    /// The email address.
    pub email: bool,
    /// The display name.
    pub name: bool,
}

/// Deletes a user, revokes every token and grant of the user, and forgets its consents.
pub async fn delete(
    store: &impl Directory,
    engine: &Engine,
    name: &str,
    now: u64,
) -> Result<(), String> {
    if get(store, name).await?.is_none() {
        return Err(format!("no user {name}"));
    }
    let delete = UserChange::DeleteUser {
        username: name.to_owned(),
    };
    let mut effects = engine.revoke_subject(name, now);
    effects.push(oauth_proto::store::Effect::DeleteConsent {
        subject: name.to_owned(),
        client_id: None,
    });
    store
        .change(vec![delete], effects)
        .await
        .map_err(|e| e.to_string())
}

/// On a store without users, creates `admin` with a random password and returns that password
/// (to be shown once). Returns `None` when there already are users.
pub async fn ensure_admin(store: &impl Directory, now: u64) -> Result<Option<String>, String> {
    if !list(store).await?.is_empty() {
        return Ok(None);
    }
    let password = crate::rng::token();
    add(store, "admin", &password, now).await?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{block_on, engine};
    use oauth_proto::store::RevocationView;
    use oauth_store_memory::MemoryStore;

    #[test]
    fn add_list_passwd_del() {
        let store = MemoryStore::new();
        let engine = engine();
        block_on(async {
            add(&store, "alice", "password one", 10).await.unwrap();
            assert!(add(&store, "alice", "password two", 10).await.is_err());
            assert!(add(&store, "bad name", "password two", 10).await.is_err());
            assert!(add(&store, "bob", "short", 10).await.is_err());
            let users = list(&store).await.unwrap();
            assert_eq!(users.len(), 1);
            assert!(password::verify("password one", &users[0].password_hash));

            set_password(&store, &engine, "alice", "password two", 20)
                .await
                .unwrap();
            assert_eq!(store.credential_version("alice"), 1);
            let u = get(&store, "alice").await.unwrap().unwrap();
            assert!(password::verify("password two", &u.password_hash));
            assert_eq!(u.created_at, 10);
            assert!(set_password(&store, &engine, "nobody", "password two", 20)
                .await
                .is_err());

            delete(&store, &engine, "alice", 30).await.unwrap();
            assert_eq!(store.credential_version("alice"), 2);
            assert!(list(&store).await.unwrap().is_empty());
            assert!(delete(&store, &engine, "alice", 30).await.is_err());
        });
    }

    #[test]
    fn display_names_are_checked_set_and_removed_apart_from_the_email() {
        let store = MemoryStore::new();
        block_on(async {
            let named = |name| Details {
                email: Some("erin@example.com"),
                name: Some(name),
            };
            let long = "e".repeat(201);
            for bad in ["", " Erin", "Erin\n", "Er\u{202E}in", &long] {
                let refused = create(&store, "erin", "password one", named(bad), 1).await;
                assert!(refused.unwrap_err().contains("display name"), "{bad:?}");
            }
            create(&store, "erin", "password one", named("Erin Example"), 1)
                .await
                .unwrap();
            let claims = get(&store, "erin").await.unwrap().unwrap().claims();
            assert_eq!(claims.name.as_deref(), Some("Erin Example"));
            let rename = Details {
                email: None,
                name: Some("Erin E."),
            };
            set_details(&store, "erin", rename, Removed::default())
                .await
                .unwrap();
            let u = get(&store, "erin").await.unwrap().unwrap();
            assert_eq!(
                (u.name.as_deref(), u.email.as_deref()),
                (Some("Erin E."), Some("erin@example.com"))
            );
            let no_name = Removed {
                email: false,
                name: true,
            };
            set_details(&store, "erin", Details::default(), no_name)
                .await
                .unwrap();
            let u = get(&store, "erin").await.unwrap().unwrap();
            assert_eq!(
                (u.name, u.email.as_deref()),
                (None, Some("erin@example.com"))
            );
        });
    }

    #[test]
    fn emails_are_checked_kept_changed_and_removed() {
        let store = MemoryStore::new();
        block_on(async {
            let email = |address| Details {
                email: Some(address),
                name: None,
            };
            let bad = create(&store, "dave", "password one", email("dave"), 1).await;
            assert!(bad.unwrap_err().contains("not an email address"));
            assert!(get(&store, "dave").await.unwrap().is_none());
            create(&store, "dave", "password one", email("dave@example.com"), 1)
                .await
                .unwrap();
            assert_eq!(
                get(&store, "dave").await.unwrap().unwrap().email.as_deref(),
                Some("dave@example.com")
            );
            set_details(&store, "dave", email("d@example.org"), Removed::default())
                .await
                .unwrap();
            assert_eq!(
                get(&store, "dave").await.unwrap().unwrap().email.as_deref(),
                Some("d@example.org")
            );
            assert!(
                set_details(&store, "dave", email("d @example.org"), Removed::default())
                    .await
                    .is_err()
            );
            assert_eq!(
                get(&store, "dave").await.unwrap().unwrap().email.as_deref(),
                Some("d@example.org")
            );
            let no_email = Removed {
                email: true,
                name: false,
            };
            set_details(&store, "dave", Details::default(), no_email)
                .await
                .unwrap();
            assert_eq!(get(&store, "dave").await.unwrap().unwrap().email, None);
            assert!(set_details(&store, "nobody", Details::default(), no_email)
                .await
                .is_err());
            // Changing an address is no credential change: nothing is revoked.
            assert_eq!(store.credential_version("dave"), 0);
        });
    }

    #[test]
    fn first_start_creates_admin_once() {
        let store = MemoryStore::new();
        block_on(async {
            let pw = ensure_admin(&store, 1).await.unwrap().unwrap();
            let admin = get(&store, "admin").await.unwrap().unwrap();
            assert!(password::verify(&pw, &admin.password_hash));
            assert_eq!(ensure_admin(&store, 2).await.unwrap(), None);
        });
    }
}

/// Where an unlock reached ([`Unlock::unlock`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlocked {
    /// Every server running on the database was told to forget the account's failures.
    RunningServers,
    /// No server can be running: the store is this process's own (the file store's lock is
    /// held, or memory), and a server's failure counts live only in its memory, which a restart
    /// empties. There was nothing to unlock.
    NothingRunning,
}

/// Asking the running servers to forget an account's failed guesses (`user unlock`).
pub trait Unlock {
    /// Tells every running server to forget `account`'s failures, if any can be running.
    fn unlock(&self, account: &str) -> impl std::future::Future<Output = Result<Unlocked, String>>;
}

impl Unlock for oauth_store_memory::MemoryStore {
    async fn unlock(&self, _account: &str) -> Result<Unlocked, String> {
        Ok(Unlocked::NothingRunning)
    }
}

impl Unlock for crate::store::AnyStore {
    async fn unlock(&self, account: &str) -> Result<Unlocked, String> {
        match self {
            crate::store::AnyStore::Postgres(s) => s
                .unlock(account)
                .await
                .map(|()| Unlocked::RunningServers)
                .map_err(|e| e.to_string()),
            _ => Ok(Unlocked::NothingRunning),
        }
    }
}
