//! `oauth-server db export` / `db import` through the binary: a file store's users and clients
//! exported as JSON lines, imported into PostgreSQL, and exported from there identically, then
//! back into a new file store, which exports the same again; the users and clients are then
//! served by each. The cluster is a throwaway one the test starts
//! (`oauth_store_postgres::testing`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use oauth_store_postgres::testing::{missing_component, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run oauth-server");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn ok(args: &[&str], stdin: &[u8]) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn sorted(export: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = export.lines().collect();
    lines[1..].sort_unstable();
    lines
}

#[test]
fn a_file_store_moves_to_postgres_and_exports_the_same() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(what) => return missing_component(&what),
    };
    let url = cluster.create_database().expect("create a database");
    let data = cluster.dir().join("file-data");
    let data = data.to_str().expect("utf-8 path");

    ok(
        &["user", "add", "alice", "--password-stdin", "--data", data],
        b"a long enough password\n",
    );
    ok(
        &["user", "add", "bob", "--password-stdin", "--data", data],
        b"another password\n",
    );
    let added = ok(
        &[
            "client",
            "add",
            "--name",
            "Mail server",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mail",
            "--data",
            data,
        ],
        b"",
    );
    let client: serde_json::Value = serde_json::from_str(&added).expect("JSON");
    let client_id = client["client_id"].as_str().expect("client_id");

    let from_files = ok(&["db", "export", "--data", data], b"");
    assert_eq!(
        from_files.lines().count(),
        4,
        "a header, two users, a client: {from_files}"
    );

    let said = ok(
        &["db", "import", "-", "--postgres", &url],
        from_files.as_bytes(),
    );
    assert_eq!(said.trim(), "imported 3 records");
    let from_postgres = ok(&["db", "export", "--postgres", &url], b"");
    assert_eq!(sorted(&from_postgres), sorted(&from_files));

    // What was imported is what the database serves.
    let users = ok(&["user", "list", "--postgres", &url], b"");
    assert!(users.contains("alice") && users.contains("bob"), "{users}");
    let clients = ok(&["client", "list", "--postgres", &url], b"");
    assert!(clients.contains(client_id), "{clients}");

    // Bad input is refused before anything is written, naming the line.
    let broken = format!("{}{{\"NotARecord\":1}}\n", from_files);
    let out = run(
        &["db", "import", "-", "--postgres", &url],
        broken.as_bytes(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5: not a record"), "{err}");

    // And back: PostgreSQL's export into a new file store gives the same records, which the
    // file store then serves.
    let back = cluster.dir().join("back-data");
    let back = back.to_str().expect("utf-8");
    let said = ok(
        &["db", "import", "-", "--data", back],
        from_postgres.as_bytes(),
    );
    assert_eq!(said.trim(), "imported 3 records");
    let from_back = ok(&["db", "export", "--data", back], b"");
    assert_eq!(sorted(&from_back), sorted(&from_files));
    let users = ok(&["user", "list", "--data", back], b"");
    assert!(users.contains("alice") && users.contains("bob"), "{users}");
    // Bad input leaves the file store as it was.
    let out = run(&["db", "import", "-", "--data", back], broken.as_bytes());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5: not a record"), "{err}");
    assert_eq!(
        sorted(&ok(&["db", "export", "--data", back], b"")),
        sorted(&from_files)
    );
}
