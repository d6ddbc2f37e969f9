//! A throwaway PostgreSQL cluster for tests (the `testing` feature): `initdb` into a temporary
//! directory, `pg_ctl start` listening only on a unix socket inside it, torn down when the
//! [`Cluster`] is dropped. Tests of this crate and of the crates running against it (the
//! conformance suite, the multi-node tests) start their database here, never a system service.
//!
//! Debian's server binaries are in `/usr/lib/postgresql/<version>/bin` (the newest version is
//! taken), or `OAUTH_TEST_PG_BIN` names the directory. Run as root (as CI is), the server runs as
//! the `postgres` system user (through `runuser`), which owns the temporary directory: PostgreSQL
//! refuses to run as root. The cluster requires a password (scram-sha-256), so tests can check
//! what a wrong one does.
//!
//! [`Cluster::start_tls`] starts one that also listens on 127.0.0.1 with `ssl = on`, serving a
//! certificate the test made, for the tests of TLS to the database ([`Cluster::tcp_url`]).
//!
//! When the binaries are missing, [`Cluster::start`] says what is missing and how to install it;
//! [`missing_component`] then fails under `CI=true` and skips otherwise, as the reference server's
//! tests do for their components.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The login the cluster's superuser has.
pub const USER: &str = "oauth";

/// A component a test needs is missing. With `CI=true` this panics (CI must never go green on
/// tests that did not run); otherwise it says so on stderr, and the test returns without running.
pub fn missing_component(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing, and CI=true requires every component (.ci/run installs it)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} is missing");
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    as_postgres: bool,
    /// Whether the server also listens on 127.0.0.1 with TLS ([`Cluster::start_tls`]).
    tls: bool,
    databases: AtomicU64,
}

static CLUSTERS: AtomicU64 = AtomicU64::new(0);

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and `pg_ctl`, or the override.
fn server_binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("OAUTH_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "PostgreSQL server binaries (initdb, pg_ctl) in OAUTH_TEST_PG_BIN={}",
                dir.display()
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "PostgreSQL server binaries (initdb, pg_ctl in /usr/lib/postgresql/<version>/bin; \
         install Debian's `postgresql` package: apt-get install postgresql)"
            .to_owned()
    })
}

/// The uid and gid of the `postgres` system user, from `/etc/passwd`.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Whether a cluster can be started here: the server binaries are installed (and, as root, the
/// `postgres` user exists). When they are not, [`missing_component`] says so (and fails under
/// `CI=true`), and the caller skips its test.
pub fn available() -> bool {
    let found = server_binaries().and_then(|_| {
        if running_as_root() && postgres_user().is_none() {
            return Err(
                "the `postgres` system user (Debian's `postgresql` package creates it)".to_owned(),
            );
        }
        Ok(())
    });
    match found {
        Ok(()) => true,
        Err(what) => {
            missing_component(&what);
            false
        }
    }
}

impl Cluster {
    /// Creates and starts a cluster, or says what is missing (or what failed).
    pub fn start() -> Result<Cluster, String> {
        Self::create(None)
    }

    /// As [`Self::start`], and the server also listens on 127.0.0.1 (a free port, the same as
    /// its socket's) with `ssl = on`, serving `cert_pem` (its chain, PEM) with the private key
    /// `key_pem` (PEM). The key file is the server user's with mode 0600, as PostgreSQL requires.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<Cluster, String> {
        Self::create(Some((cert_pem, key_pem)))
    }

    fn create(tls: Option<(&str, &str)>) -> Result<Cluster, String> {
        let bin = server_binaries()?;
        let as_postgres = running_as_root();
        let owner = if as_postgres {
            Some(postgres_user().ok_or(
                "the `postgres` system user (the server refuses to run as root; Debian's \
                 `postgresql` package creates it)",
            )?)
        } else {
            None
        };
        let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("oauth-pg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let password = format!("pw{}x{nanos}x{n}", std::process::id());
        std::fs::write(dir.join("pwfile"), &password).map_err(|e| e.to_string())?;
        let mut owned = vec![dir.clone(), dir.join("pwfile")];
        let mut port = 5432;
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(dir.join("server.crt"), cert).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("server.key"), key).map_err(|e| e.to_string())?;
            std::fs::set_permissions(dir.join("server.key"), PermissionsExt::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            owned.extend([dir.join("server.crt"), dir.join("server.key")]);
            port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("finding a free port: {e}"))?
                .port();
        }
        if let Some((uid, gid)) = owner {
            for path in owned {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("handing {} to postgres: {e}", path.display()))?;
            }
        }
        let cluster = Cluster {
            dir,
            bin,
            port,
            password,
            as_postgres,
            tls: tls.is_some(),
            databases: AtomicU64::new(0),
        };
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                USER,
                &format!("--pwfile={}", path(&cluster.dir.join("pwfile"))),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Starts the server of this cluster (again, after [`Self::stop_server`]).
    pub fn start_server(&self) -> Result<(), String> {
        let listen = if self.tls {
            format!(
                "-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                path(&self.dir.join("server.crt")),
                path(&self.dir.join("server.key"))
            )
        } else {
            "-c listen_addresses=''".to_owned()
        };
        let options = format!(
            "-k {} {listen} -p {} -c fsync=off -c max_connections=300",
            path(&self.dir),
            self.port
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.dir.join("data")),
                "-l",
                path(&self.dir.join("server.log")),
                "-w",
                "-o",
                &options,
                "start",
            ],
        )
    }

    /// Stops the server at once (`-m immediate`: like a crash, no checkpoint); the data stays.
    pub fn stop_server(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&self.dir.join("data")),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
    }

    /// Runs one of the server's programs (as `postgres` when this is root).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program_path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program_path);
            c
        } else {
            Command::new(&program_path)
        };
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("running {program}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "{program} failed ({}): {}{}\n{log}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The URL of `database` on this cluster, with `password`.
    pub fn url_with_password(&self, database: &str, password: &str) -> String {
        format!(
            "postgresql://{USER}:{password}@localhost/{database}?host={}&port={}",
            path(&self.dir),
            self.port
        )
    }

    /// The URL of `database` over TCP, for a cluster of [`Self::start_tls`]: the host name
    /// `localhost` (which the certificate must name), the address 127.0.0.1, no `sslmode` (the
    /// caller adds it).
    pub fn tcp_url(&self, database: &str) -> String {
        format!(
            "postgresql://{USER}:{}@localhost:{}/{database}?hostaddr=127.0.0.1",
            self.password, self.port
        )
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        self.url_with_password(database, &self.password)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> Result<String, String> {
        let name = format!("test_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        // The name is made here from a counter; CREATE DATABASE takes no parameters.
        sql(&self.url("postgres"), &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// The cluster's directory (its socket, data and server log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop_server();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `work` on a connection of its own to `url`, on a runtime of its own, and closes it.
fn on_connection<T>(
    url: &str,
    work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, String>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to the test cluster: {e}"))?;
        let driver = tokio::spawn(connection);
        let result = work(&client).await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// The first column of each row of a simple query's answer.
fn first_columns(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<&str> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .collect()
}

/// Runs `statements` (a test's own, constant SQL) on `url` over a connection of its own, and
/// returns the first column of the last row as text, if any.
pub fn sql(url: &str, statements: &str) -> Result<Option<String>, String> {
    on_connection(url, async |client| {
        let messages = client
            .simple_query(statements)
            .await
            .map_err(|e| format!("running {statements}: {e}"))?;
        Ok(first_columns(&messages).last().map(|s| (*s).to_owned()))
    })
}

/// The generic plan (`EXPLAIN`, not run) of each refresh statement, by name, on the migrated
/// database at `url`: for the test that checks they find the grant's row by its primary key
/// (`refresh` module docs). Parameters are all null: the plan of a generic plan does not depend
/// on them.
pub fn plans_of_refresh_statements(url: &str) -> Result<Vec<(&'static str, String)>, String> {
    on_connection(url, async |client| {
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan")
            .await
            .map_err(|e| e.to_string())?;
        let mut plans = Vec::new();
        for (name, statement) in crate::refresh::BY_KEY {
            let prepared = client
                .prepare(statement)
                .await
                .map_err(|e| format!("preparing {name}: {e}"))?;
            let types: Vec<&str> = prepared.params().iter().map(|t| t.name()).collect();
            let nulls = vec!["NULL"; types.len()].join(", ");
            let explain = format!(
                "PREPARE plan_{name} ({}) AS {statement};
                 EXPLAIN EXECUTE plan_{name} ({nulls});",
                types.join(", ")
            );
            let messages = client
                .simple_query(&explain)
                .await
                .map_err(|e| format!("explaining {name}: {e}"))?;
            plans.push((name, first_columns(&messages).join("\n")));
        }
        Ok(plans)
    })
}

/// Brings the empty database at `url` to schema version `version` only, for the tests of a later
/// migration: they fill it as that version's code did, then open a store, which migrates the
/// rest of the way.
pub fn migrate_up_to(url: &str, version: i32) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connecting to the test cluster: {e}"))?;
        let driver = tokio::spawn(connection);
        let migrated = crate::schema::migrate_to(&mut client, version)
            .await
            .map_err(|e| format!("migrating to version {version}: {e}"));
        drop(client);
        let _ = driver.await;
        match migrated {
            Ok(m) if m.to == version => Ok(()),
            Ok(m) => Err(format!("migrated to version {} instead of {version}", m.to)),
            Err(e) => Err(e),
        }
    })
}

/// [`sql`] on a thread of its own (to hold a lock while the test goes on).
pub fn sql_in_background(
    url: &str,
    statements: &'static str,
) -> std::thread::JoinHandle<Result<Option<String>, String>> {
    let url = url.to_owned();
    std::thread::spawn(move || sql(&url, statements))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs `ops` (all `Op::RefreshPublic` or all `Op::RotateRefresh`, of distinct grants) on
/// `store` as one batch, as a node's batch task does (`batch` module), and answers each, in
/// their order: for the tests of what a batch answers, which must not depend on which rotations
/// happen to wait at the same moment. Any other op is answered with an error.
pub fn run_batch(
    store: &crate::PostgresStore,
    ops: Vec<oauth_proto::store::Op>,
) -> Vec<Result<oauth_proto::store::Reply, oauth_proto::store::StoreError>> {
    use crate::refresh::{Batchable, PublicRefresh, Rotation};
    use oauth_proto::store::StoreError;

    let count = ops.len();
    let mut public: Vec<(usize, PublicRefresh)> = Vec::new();
    let mut rotations: Vec<(usize, Rotation)> = Vec::new();
    for (at, op) in ops.into_iter().enumerate() {
        match Batchable::of(op) {
            Batchable::Public(op) => public.push((at, op)),
            Batchable::Rotation(op) => rotations.push((at, op)),
            Batchable::Not(_) => {}
        }
    }
    // The batch task sends its batch in key order.
    public.sort_by_key(|a| a.1.grant_id.0);
    rotations.sort_by_key(|a| a.1.grant_id.0);
    let answered = store.block(|shared| async move {
        let (at_public, public): (Vec<usize>, Vec<PublicRefresh>) = public.into_iter().unzip();
        let (at_rotations, rotations): (Vec<usize>, Vec<Rotation>) = rotations.into_iter().unzip();
        let mut answers = Vec::new();
        if !public.is_empty() {
            answers.extend(
                at_public
                    .into_iter()
                    .zip(shared.public_refreshes.run(&public).await),
            );
        }
        if !rotations.is_empty() {
            answers.extend(
                at_rotations
                    .into_iter()
                    .zip(shared.rotations.run(&rotations).await),
            );
        }
        Ok(answers)
    });
    let mut replies: Vec<Result<_, StoreError>> = (0..count)
        .map(|_| {
            Err(StoreError::contract_violation(
                "run_batch takes only RefreshPublic and RotateRefresh ops",
            ))
        })
        .collect();
    match answered {
        Ok(answers) => {
            for (at, reply) in answers {
                replies[at] = reply;
            }
        }
        Err(e) => replies.iter_mut().for_each(|r| *r = Err(e.clone())),
    }
    replies
}
