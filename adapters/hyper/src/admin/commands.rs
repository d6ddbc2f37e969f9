//! The administration commands, written against the reference server's [`Directory`] contract
//! (the engine's store contract plus users and the client listing).
//!
//! Each command takes the store, the engine, standard input and an output sink, so the same code
//! runs from the binary on the data directory's store and, in tests, on a memory store.

use std::io::{BufRead, Write};

use oauth_directory::Directory;
use oauth_proto::Engine;

use crate::admin::cli::{ClientCommand, UserCommand};
use crate::admin::{clients, consents, users};
use crate::clock;

fn io_err(e: std::io::Error) -> String {
    format!("cannot write the output: {e}")
}

/// Reads a password from the first line of `input` (the line ending is not part of it).
pub fn read_password(input: &mut dyn BufRead) -> Result<String, String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err("no password on standard input".to_owned());
    }
    Ok(pw)
}

/// Runs a `user` command.
pub async fn user(
    cmd: &UserCommand,
    store: &(impl Directory + users::Unlock),
    engine: &Engine,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), String> {
    let now = clock::now();
    match cmd {
        UserCommand::Add {
            name,
            email,
            display_name,
            ..
        } => {
            let pw = read_password(input)?;
            let details = users::Details {
                email: email.as_deref(),
                name: display_name.as_deref(),
            };
            users::create(store, name, &pw, details, now).await?;
            writeln!(out, "created user {name}").map_err(io_err)
        }
        UserCommand::Set {
            name,
            email,
            no_email,
            display_name,
            no_name,
            ..
        } => {
            let set = users::Details {
                email: email.as_deref(),
                name: display_name.as_deref(),
            };
            let remove = users::Removed {
                email: *no_email,
                name: *no_name,
            };
            users::set_details(store, name, set, remove).await?;
            let said = |detail: &str, to: Option<&str>, removed: bool| match (to, removed) {
                (Some(value), _) => Some(format!("set the {detail} of {name} to {value}")),
                (None, true) => Some(format!("removed the {detail} of {name}")),
                (None, false) => None,
            };
            let lines = [
                said("email", set.email, remove.email),
                said("display name", set.name, remove.name),
            ];
            for line in lines.into_iter().flatten() {
                writeln!(out, "{line}").map_err(io_err)?;
            }
            Ok(())
        }
        UserCommand::Passwd { name, .. } => {
            let pw = read_password(input)?;
            users::set_password(store, engine, name, &pw, now).await?;
            writeln!(out, "changed the password of {name} and revoked its tokens").map_err(io_err)
        }
        UserCommand::Del { name, .. } => {
            users::delete(store, engine, name, now).await?;
            writeln!(out, "deleted user {name} and revoked its tokens").map_err(io_err)
        }
        UserCommand::Unlock { name, .. } => match users::Unlock::unlock(store, name).await? {
            users::Unlocked::RunningServers => writeln!(
                out,
                "told every running server to forget the failures of {name}"
            ),
            users::Unlocked::NothingRunning => writeln!(
                out,
                "nothing to unlock for {name}: no server runs on this store now, and a \
                 server's failure counts live in its memory (a restart forgets them)"
            ),
        }
        .map_err(io_err),
        UserCommand::List { .. } => {
            for u in users::list(store).await? {
                let email = u.email.as_deref().unwrap_or("-");
                // The display name last: it may hold spaces (never a tab or a line break).
                let display = u.name.as_deref().unwrap_or("-");
                writeln!(
                    out,
                    "{}\tcreated_at={}\temail={email}\tname={display}",
                    u.username, u.created_at
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        UserCommand::Consents { name, .. } => {
            for c in consents::list(store, name).await? {
                writeln!(
                    out,
                    "{}\tgranted_at={}\tscope={}",
                    c.client_id,
                    c.granted_at,
                    c.scope.as_str()
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        UserCommand::RevokeConsent { name, client, .. } => {
            consents::revoke(store, name, client).await?;
            writeln!(out, "forgot the consent {name} gave {client}").map_err(io_err)
        }
    }
}

/// Runs a `client` command.
pub async fn client(
    cmd: &ClientCommand,
    store: &impl Directory,
    engine: &Engine,
    out: &mut dyn Write,
) -> Result<(), String> {
    let now = clock::now();
    match cmd {
        ClientCommand::Add {
            name,
            redirect_uris,
            public,
            grant_types,
            scope,
            resource_server,
            application_type,
            access_token_format,
            logout,
            ..
        } => {
            let new = clients::NewClient {
                name: name.clone(),
                redirect_uris: redirect_uris.clone(),
                public: *public,
                grant_types: grant_types.clone(),
                scope: scope.clone(),
                application_type: application_type.clone(),
                resource_server: *resource_server,
                access_token_format: clients::access_token_format(access_token_format.as_deref())?,
                backchannel_logout: logout.registration(),
            };
            let created = clients::add(store, engine, &new, now).await?;
            let json = serde_json::to_string(&created).map_err(|e| e.to_string())?;
            writeln!(out, "{json}").map_err(io_err)
        }
        ClientCommand::List { .. } => {
            for c in clients::list(store).await? {
                let line = serde_json::json!({
                    "client_id": c.client_id,
                    "client_name": c.name,
                    "kind": c.kind,
                    "redirect_uris": c.redirect_uris,
                    "grant_types": c.grant_types,
                    "scope": c.scope.to_string(),
                    "resource_server": c.resource_server,
                    "access_token_format": c.access_token_format,
                });
                writeln!(out, "{line}").map_err(io_err)?;
            }
            Ok(())
        }
        ClientCommand::Set {
            id,
            access_token_format,
            logout,
            no_backchannel_logout,
            ..
        } => {
            let change = clients::Change {
                access_token_format: access_token_format
                    .as_deref()
                    .map(|f| clients::access_token_format(Some(f)))
                    .transpose()?,
            };
            // The logout registration first: it is checked, and a refused one changes nothing.
            match (logout.registration(), no_backchannel_logout) {
                (Some(b), _) => {
                    clients::set_backchannel_logout(store, engine, id, Some(&b)).await?
                }
                (None, true) => clients::set_backchannel_logout(store, engine, id, None).await?,
                (None, false) => {}
            }
            clients::set(store, id, &change).await?;
            writeln!(out, "changed client {id}").map_err(io_err)
        }
        ClientCommand::Del { id, .. } => {
            clients::delete(store, engine, id, now).await?;
            writeln!(out, "deleted client {id} and revoked its tokens").map_err(io_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::cli::DataArgs;
    use crate::test_support::{block_on, engine};
    use oauth_store_memory::MemoryStore;

    fn data() -> DataArgs {
        DataArgs {
            data: None,
            config: None,
            postgres: None,
            postgres_ca_file: None,
        }
    }

    #[test]
    fn unlock_on_a_store_no_server_runs_on_says_there_is_nothing_to_unlock() {
        let store = MemoryStore::new();
        let engine = engine();
        let mut out = Vec::new();
        let unlock = UserCommand::Unlock {
            name: "alice".to_owned(),
            data: data(),
        };
        block_on(user(&unlock, &store, &engine, &mut &b""[..], &mut out)).unwrap();
        let said = String::from_utf8(out).unwrap();
        assert!(said.contains("nothing to unlock for alice"), "{said}");
    }

    #[test]
    fn user_commands_round_trip() {
        let store = MemoryStore::new();
        let engine = engine();
        let mut out = Vec::new();
        block_on(async {
            let add = UserCommand::Add {
                name: "carol".to_owned(),
                password_stdin: true,
                email: Some("carol@example.com".to_owned()),
                display_name: Some("Carol Example".to_owned()),
                data: data(),
            };
            user(
                &add,
                &store,
                &engine,
                &mut &b"secret password\n"[..],
                &mut out,
            )
            .await
            .unwrap();
            assert!(user(&add, &store, &engine, &mut &b""[..], &mut out)
                .await
                .is_err());
            user(
                &UserCommand::List { data: data() },
                &store,
                &engine,
                &mut &b""[..],
                &mut out,
            )
            .await
            .unwrap();
            let u = crate::admin::users::get(&store, "carol")
                .await
                .unwrap()
                .unwrap();
            assert!(crate::password::verify("secret password", &u.password_hash));
            assert_eq!(u.email.as_deref(), Some("carol@example.com"));
            assert_eq!(u.name.as_deref(), Some("Carol Example"));
            let set = |email: Option<&str>| UserCommand::Set {
                name: "carol".to_owned(),
                email: email.map(str::to_owned),
                no_email: email.is_none(),
                display_name: None,
                no_name: false,
                data: data(),
            };
            user(&set(None), &store, &engine, &mut &b""[..], &mut out)
                .await
                .unwrap();
            assert_eq!(
                crate::admin::users::get(&store, "carol")
                    .await
                    .unwrap()
                    .unwrap()
                    .email,
                None
            );
            user(
                &set(Some("c@example.org")),
                &store,
                &engine,
                &mut &b""[..],
                &mut out,
            )
            .await
            .unwrap();
            let del = UserCommand::Del {
                name: "carol".to_owned(),
                data: data(),
            };
            user(&del, &store, &engine, &mut &b""[..], &mut out)
                .await
                .unwrap();
        });
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("created user carol"));
        assert!(text.contains("carol\tcreated_at="));
        assert!(text.contains("\temail=carol@example.com\tname=Carol Example"));
        assert!(text.contains("removed the email of carol"));
        assert!(text.contains("set the email of carol to c@example.org"));
        assert!(text.contains("deleted user carol"));
    }

    #[test]
    fn client_add_prints_one_json_object() {
        let store = MemoryStore::new();
        let engine = engine();
        let mut out = Vec::new();
        block_on(async {
            let add = ClientCommand::Add {
                name: "Mail app".to_owned(),
                redirect_uris: vec!["http://127.0.0.1/cb".to_owned()],
                public: false,
                grant_types: vec![],
                scope: Some("mail".to_owned()),
                resource_server: false,
                application_type: None,
                access_token_format: None,
                logout: Default::default(),
                data: data(),
            };
            client(&add, &store, &engine, &mut out).await.unwrap();
        });
        let text = String::from_utf8(out).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert!(v["client_id"].is_string());
        assert!(v["client_secret"].is_string());
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn client_set_changes_the_access_token_format_and_list_shows_it() {
        let store = MemoryStore::new();
        let engine = engine();
        let mut out = Vec::new();
        block_on(async {
            let add = ClientCommand::Add {
                name: "Mail app".to_owned(),
                redirect_uris: vec!["http://127.0.0.1/cb".to_owned()],
                public: true,
                grant_types: vec![],
                scope: Some("mail".to_owned()),
                resource_server: false,
                application_type: None,
                access_token_format: None,
                logout: Default::default(),
                data: data(),
            };
            client(&add, &store, &engine, &mut out).await.unwrap();
            let created: serde_json::Value =
                serde_json::from_slice(&std::mem::take(&mut out)).unwrap();
            let id = created["client_id"].as_str().unwrap().to_owned();
            let list = ClientCommand::List { data: data() };
            client(&list, &store, &engine, &mut out).await.unwrap();
            let listed: serde_json::Value =
                serde_json::from_slice(&std::mem::take(&mut out)).unwrap();
            assert_eq!(listed["access_token_format"], "hmac");
            let set = ClientCommand::Set {
                id: id.clone(),
                access_token_format: Some("jwt".to_owned()),
                logout: Default::default(),
                no_backchannel_logout: false,
                data: data(),
            };
            client(&set, &store, &engine, &mut out).await.unwrap();
            out.clear();
            client(&list, &store, &engine, &mut out).await.unwrap();
            let listed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(listed["access_token_format"], "jwt");
            let unknown = ClientCommand::Set {
                id: "nobody".to_owned(),
                access_token_format: Some("jwt".to_owned()),
                logout: Default::default(),
                no_backchannel_logout: false,
                data: data(),
            };
            assert!(client(&unknown, &store, &engine, &mut out).await.is_err());
        });
    }

    #[test]
    fn password_from_stdin() {
        assert_eq!(read_password(&mut &b"pw pw\r\nnext"[..]).unwrap(), "pw pw");
        assert!(read_password(&mut &b"\n"[..]).is_err());
    }
}
