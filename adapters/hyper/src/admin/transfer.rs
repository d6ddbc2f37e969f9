//! `oauth-server db export` / `db import`: a whole store as JSON lines, to move a deployment
//! from the file store to PostgreSQL (and to keep a portable copy of either).
//!
//! The format is the stores' own record model, [`Record`] (`oauth-store-memory`), the one the
//! file store's snapshots hold, so no record is translated on the way: the first line is a header,
//! `{"oauth_server_export":1,"record_version":N}`, then one record per line, as serde writes
//! it. Secrets are in it only as the stores keep them (hashes), but it holds every client, grant
//! and user: keep it as private as the database.
//!
//! Export reads the file store (while no server holds its directory) or PostgreSQL (in one
//! snapshot, while servers run). Import writes all records or none, replacing records of the
//! same keys: into PostgreSQL in one transaction, into the file store through one snapshot
//! (`FileStore::import`: a compaction whose snapshot holds them; the command holds the directory,
//! so no server writes meanwhile), so a deployment moves back from PostgreSQL to files the way it
//! came. A header of another format or record version, or a line that does not parse, is refused
//! with its line number before anything is written.
//!
//! Export writes the current record version. Import also reads exports of record version 1
//! (before refresh families, one record per refresh token), converted by
//! `oauth_store_memory::v1` as the file store converts its own version 1 files: the refresh tokens
//! of a deployment exported before the upgrade keep working after it is imported.

use std::io::{BufRead, Write};

use oauth_store_memory::{v1, Record, RECORD_VERSION};
use serde::{Deserialize, Serialize};

use crate::store::AnyStore;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Header {
    oauth_server_export: u32,
    record_version: u32,
}

/// The version of this format (the header's `oauth_server_export`).
const FORMAT: u32 = 1;

/// Writes every record of `store` to `out`; returns how many.
pub async fn export(store: &AnyStore, out: &mut impl Write) -> Result<usize, String> {
    let records: Vec<Record> = match store {
        AnyStore::Memory(s) => s.read().records().collect(),
        AnyStore::File(s) => s.state().records().collect(),
        AnyStore::Postgres(s) => s.export().await.map_err(|e| e.to_string())?,
        #[cfg(test)]
        AnyStore::Failing => return Err("the store failed".to_owned()),
    };
    let write = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|e| format!("writing the export failed: {e}"))
    };
    let header = Header {
        oauth_server_export: FORMAT,
        record_version: RECORD_VERSION,
    };
    write(out, json(&header)?)?;
    for record in &records {
        write(out, json(record)?)?;
    }
    out.flush()
        .map_err(|e| format!("writing the export failed: {e}"))?;
    Ok(records.len())
}

fn json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("a record does not serialize: {e}"))
}

/// Reads an export from `input` and writes its records into `store`; returns how many.
pub async fn import(store: &AnyStore, input: impl BufRead) -> Result<usize, String> {
    let records = read(input)?;
    let count = records.len();
    match store {
        AnyStore::Postgres(s) => s.import(records).await.map_err(|e| e.to_string()),
        AnyStore::File(s) => s
            .import(records)
            .map(|_| count)
            .map_err(|e| format!("importing into the file store failed: {e}")),
        AnyStore::Memory(_) => Err(
            "import needs a store that keeps what it is given: the file store (--data DIR) or \
             PostgreSQL (--postgres URL)"
                .to_owned(),
        ),
        #[cfg(test)]
        AnyStore::Failing => Err("the store failed".to_owned()),
    }
}

/// Parses a whole export, refusing it at the first bad line; an export of record version 1 is
/// converted to the current one.
fn read(input: impl BufRead) -> Result<Vec<Record>, String> {
    let mut lines = input.lines();
    let header = lines
        .next()
        .ok_or("the export is empty: no header line")?
        .map_err(|e| format!("reading the export failed: {e}"))?;
    let record_version = match serde_json::from_str::<Header>(&header) {
        Ok(h)
            if h.oauth_server_export == FORMAT
                && (1..=RECORD_VERSION).contains(&h.record_version) =>
        {
            h.record_version
        }
        Ok(h) => {
            return Err(format!(
                "line 1: an export of format {} with record version {}; this oauth-server reads \
                 format {FORMAT} with record versions 1 to {RECORD_VERSION}",
                h.oauth_server_export, h.record_version
            ))
        }
        Err(e) => return Err(format!("line 1: not an oauth-server export header: {e}")),
    };
    if record_version == 1 {
        return parse_lines::<v1::Record>(lines).map(v1::convert);
    }
    parse_lines::<Record>(lines)
}

/// Parses the record lines after the header (line 1).
fn parse_lines<T: serde::de::DeserializeOwned>(
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Result<Vec<T>, String> {
    let mut records = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| format!("reading the export failed: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<T>(&line)
            .map_err(|e| format!("line {}: not a record: {e}", n + 2))?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_of(store: &AnyStore) -> String {
        let mut out = Vec::new();
        futures_lite_block_on(export(store, &mut out)).expect("export");
        String::from_utf8(out).expect("utf-8")
    }

    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn an_export_reads_back_and_bad_input_is_refused_with_its_line() {
        let store = AnyStore::memory();
        futures_lite_block_on(crate::admin::users::add(
            &store,
            "alice",
            "a long password",
            1,
        ))
        .expect("add a user");
        let text = export_of(&store);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                format!(r#"{{"oauth_server_export":1,"record_version":{RECORD_VERSION}}}"#)
                    .as_str()
            )
        );
        let records = read(text.as_bytes()).expect("reads back");
        assert_eq!(records.len(), 1);
        assert!(matches!(&records[0], Record::User(u) if u.username == "alice"));

        assert!(read(&b""[..]).unwrap_err().contains("empty"));
        let other = r#"{"oauth_server_export":1,"record_version":999}"#;
        assert!(read(other.as_bytes())
            .unwrap_err()
            .contains("record version 999"));
        let garbage = format!(
            "{}\n{{\"Nope\":1}}\n",
            text.lines().next().unwrap_or_default()
        );
        assert!(read(garbage.as_bytes())
            .unwrap_err()
            .starts_with("line 2: not a record"));
        assert!(read(&b"hello\n"[..])
            .unwrap_err()
            .starts_with("line 1: not an oauth-server"));
        let err = futures_lite_block_on(import(&store, text.as_bytes())).unwrap_err();
        assert!(err.contains("keeps what it is given"), "{err}");
    }

    #[test]
    fn an_export_of_record_version_1_reads_as_families_and_legacy_tokens() {
        use oauth_proto::secret::SecretHash;
        use oauth_proto::store::{GrantId, RefreshFamily, Rotated};
        use v1::{RefreshRecord, RefreshState};
        let grant_id = GrantId([9; 16]);
        let token = |name: &str, issued_at: u64, state: RefreshState| {
            v1::Record::Refresh(RefreshRecord {
                hash: SecretHash::of(name),
                grant_id,
                issued_at,
                expires_at: issued_at + 100,
                state,
            })
        };
        let rotated = token(
            "old",
            1,
            RefreshState::Rotated {
                at: 5,
                successor: Some(SecretHash::of("new")),
            },
        );
        let active = token("new", 5, RefreshState::Active);
        let mut text = String::from("{\"oauth_server_export\":1,\"record_version\":1}\n");
        for record in [&rotated, &active] {
            text.push_str(&serde_json::to_string(record).expect("serialize"));
            text.push('\n');
        }
        assert!(text.contains("\"Refresh\":"), "{text}");
        let records = read(text.as_bytes()).expect("a version 1 export reads");
        let legacy = |name: &str, issued_at: u64| Record::LegacyRefresh {
            hash: SecretHash::of(name),
            grant_id,
            expires_at: issued_at + 100,
        };
        assert_eq!(
            records,
            [
                legacy("old", 1),
                legacy("new", 5),
                Record::RefreshFamily(RefreshFamily {
                    grant_id,
                    family: None,
                    current: SecretHash::of("new"),
                    issued_at: 5,
                    expires_at: 105,
                    previous: Some(Rotated {
                        hash: SecretHash::of("old"),
                        at: 5,
                    }),
                }),
            ]
        );
        // The current version does not read the old refresh records.
        let relabelled = text.replacen(
            "\"record_version\":1",
            &format!("\"record_version\":{RECORD_VERSION}"),
            1,
        );
        assert!(read(relabelled.as_bytes())
            .unwrap_err()
            .starts_with("line 2: not a record"));
    }
}
