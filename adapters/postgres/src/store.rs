//! [`PostgresStore`]: the pool, the revocation view, and the runtime the database work runs on.
//!
//! # Which runtime
//!
//! `tokio-postgres` drives each connection with a task on a tokio runtime, and the store's callers
//! are not all on one: the reference server is (tokio), a mail server's thread-per-connection code
//! calls the synchronous [`Store`] trait from plain threads, and a test may poll the
//! [`AsyncStore`] futures with any executor. So every call runs on the store's runtime, and
//! connections always live there: [`PostgresStore::connect`] uses the runtime it is called on,
//! [`PostgresStore::connect_blocking`] starts a small runtime of the store's own. The async API
//! spawns the call onto that runtime and awaits the task (which works from any executor), or,
//! when it is already polled on that runtime (the reference server's case), runs the call in
//! place, since a task per call would only add a wake-up; the sync API waits for its answer on a
//! channel. Neither can panic: a task that could not finish (the runtime is shutting down) is a
//! [`StoreError`].

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, QueueMode, RecyclingMethod, Runtime};
use oauth_directory::{Directory, UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::store::{
    AsyncStore, Effect, GrantId, Op, PurgeStats, Reply, RevocationView, Store, StoreError,
};
use tokio::runtime::Handle;

use crate::batch::{BatchCounts, Batcher};
use crate::codec::{self, decode, from_time};
use crate::error::{from_pool, OpenError};
use crate::follow::{Follower, Watermarks};
use crate::keys::KeyWatch;
use crate::refresh::{Batchable, PublicRefresh, Rotation};
use crate::schema::{self, Migrated};
use crate::sql::{query, store_error};
use crate::tls::Connector;
use crate::view::{RevocationCache, Revoked, Version, ViewChanges};

/// How the store connects and how much it may use.
#[derive(Clone, Debug)]
pub struct Options {
    /// Connections in the pool at most (per node; PostgreSQL's `max_connections` is shared by all
    /// nodes). Default 16.
    pub max_connections: usize,
    /// How long a call waits for a free connection before it fails as overloaded. Default 5 s.
    pub wait_timeout: Duration,
    /// How long making a connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// PostgreSQL's `statement_timeout` for the store's sessions; a statement running longer is
    /// cancelled and the call fails as overloaded. Default 10 s; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
    /// How often the follower reads the revocations other nodes made, when no notification woke
    /// it sooner; the worst case of the propagation bound (`follow` module). Default
    /// 500 ms.
    pub catch_up_interval: Duration,
    /// How long the revocation view may go without a successful catch-up (the database
    /// unreachable) before it refuses every access token (`view` module). Default 30 s.
    pub view_max_age: Duration,
    /// PEM certificates trusted, besides Mozilla's roots, to sign the database server's
    /// certificate when the URL says `sslmode=require` (`tls` module); giving one without
    /// it is an error. Default none.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_connections: 16,
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(10)),
            catch_up_interval: Duration::from_millis(500),
            view_max_age: Duration::from_secs(30),
            ca_file: None,
        }
    }
}

/// [`PostgresStore::rotation_batches`]: the counts of each kind of rotation's batches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationBatches {
    /// Public clients' refreshes (`Op::RefreshPublic`).
    pub public: BatchCounts,
    /// The other rotations (`Op::RotateRefresh`: confidential clients' refreshes, and the
    /// retries and migrations of every client's).
    pub confidential: BatchCounts,
}

/// A runtime the store started itself; shut down without waiting when the store goes, so
/// dropping the store inside another runtime cannot panic.
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) struct Shared {
    pub(crate) pool: Pool,
    view: Arc<RevocationCache>,
    /// How to connect, for the connections kept outside the pool ([`crate::failures`]).
    pub(crate) config: tokio_postgres::Config,
    /// How every connection is made, TLS or not ([`crate::tls`]).
    pub(crate) connector: Connector,
    /// Whether and how this node follows key changes ([`crate::keys`]).
    pub(crate) keys: Arc<KeyWatch>,
    /// The batches of public clients' refreshes ([`crate::batch`]).
    pub(crate) public_refreshes: Arc<Batcher<PublicRefresh>>,
    /// The batches of rotations ([`crate::batch`]).
    pub(crate) rotations: Arc<Batcher<Rotation>>,
}

/// Stops the follower when the last clone of the store goes.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The PostgreSQL store. Cloning it shares the pool, the view and its follower.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: Handle,
    _follower: Arc<AbortOnDrop>,
    // Declared last: dropped after the pool, whose connections run on it.
    _runtime: Arc<OwnedRuntime>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.shared.pool.status();
        f.debug_struct("PostgresStore")
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish_non_exhaustive()
    }
}

/// Parses `url`, applies `options` to it, and makes the connector for it.
fn config(url: &str, options: &Options) -> Result<(tokio_postgres::Config, Connector), OpenError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(OpenError::BadUrl)?;
    let connector = Connector::new(&mut config, options.ca_file.as_deref())?;
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("oauth-server");
    }
    if let Some(timeout) = options.statement_timeout {
        let mut server_options = config.get_options().unwrap_or_default().to_owned();
        if !server_options.is_empty() {
            server_options.push(' ');
        }
        server_options.push_str(&format!("-c statement_timeout={}", timeout.as_millis()));
        config.options(&server_options);
    }
    Ok((config, connector))
}

fn pool(
    config: tokio_postgres::Config,
    connector: &Connector,
    options: &Options,
) -> Result<Pool, OpenError> {
    let manager = Manager::from_config(
        config,
        connector.make_tls(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        // The connection used last goes out first: a node's light load keeps reusing the same few
        // backends (warm in the CPU caches), and the rest stay idle.
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| OpenError::Runtime(e.to_string()))
}

/// Reads the whole revocation view.
async fn load_view(pool: &Pool) -> Result<ViewChanges, StoreError> {
    let client = pool.get().await.map_err(from_pool)?;
    let mut changes = ViewChanges::default();
    let rows = query(
        &client,
        "loading the revocation view",
        "SELECT grant_id, revoked_at, keep_until, revocation_seq FROM revoked_access",
        &[],
    )
    .await
    .map_err(store_error)?;
    for row in rows {
        changes.access.push((
            codec::grant_id(row.get(0))?,
            Revoked {
                at: from_time(row.get(1)),
                keep_until: from_time(row.get(2)),
                seq: row.get(3),
            },
        ));
    }
    let rows = query(
        &client,
        "loading the credential versions",
        "SELECT subject, credential_version, revocation_seq FROM subjects",
        &[],
    )
    .await
    .map_err(store_error)?;
    for row in rows {
        let subject: &[u8] = row.get(0);
        changes.subjects.push((
            subject.to_vec(),
            Version {
                version: crate::ops::version(row.get(1)),
                seq: row.get(2),
            },
        ));
    }
    Ok(changes)
}

/// Connects, migrates, loads the view and starts its follower, on the current runtime.
async fn open(url: &str, options: &Options) -> Result<(Shared, AbortOnDrop), OpenError> {
    let (config, connector) = config(url, options)?;
    let pool = pool(config.clone(), &connector, options)?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| OpenError::Connect(from_pool(e)))?;
    schema::migrate(&mut client).await?;
    drop(client);
    let view = Arc::new(RevocationCache::new(options.view_max_age));
    let loading = std::time::Instant::now();
    let loaded = load_view(&pool).await.map_err(OpenError::Database)?;
    let marks = Watermarks::default().after(&loaded);
    view.merge(loaded);
    view.confirm(loading);
    let keys = Arc::new(KeyWatch::default());
    let follower = Follower {
        config: config.clone(),
        connector: connector.clone(),
        view: view.clone(),
        keys: keys.clone(),
        marks,
        interval: options.catch_up_interval,
        timeout: options.connect_timeout,
    };
    let follower = AbortOnDrop(tokio::spawn(follower.run()).abort_handle());
    Ok((
        Shared {
            public_refreshes: Batcher::new(pool.clone()),
            rotations: Batcher::new(pool.clone()),
            pool,
            view,
            config,
            connector,
            keys,
        },
        follower,
    ))
}

/// Brings the database at `url` to the newest schema (what `oauth-server db migrate` runs); the
/// store also does it whenever it opens. Call it inside a tokio runtime.
pub async fn migrate(url: &str, options: &Options) -> Result<Migrated, OpenError> {
    let (config, connector) = config(url, options)?;
    let pool = pool(config, &connector, options)?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| OpenError::Connect(from_pool(e)))?;
    schema::migrate(&mut client).await
}

impl PostgresStore {
    /// Opens the store on the tokio runtime this is called on: connects, applies the migrations
    /// and loads the revocation view.
    pub async fn connect(url: &str, options: Options) -> Result<Self, OpenError> {
        let handle = Handle::try_current().map_err(|e| OpenError::Runtime(e.to_string()))?;
        let (shared, follower) = open(url, &options).await?;
        Ok(PostgresStore {
            shared: Arc::new(shared),
            handle,
            _follower: Arc::new(follower),
            _runtime: Arc::new(OwnedRuntime(None)),
        })
    }

    /// Opens the store from synchronous code, on a runtime of its own (two worker threads),
    /// which lives as long as the store.
    pub fn connect_blocking(url: &str, options: Options) -> Result<Self, OpenError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("oauth-postgres")
            .enable_all()
            .build()
            .map_err(|e| OpenError::Runtime(e.to_string()))?;
        let handle = runtime.handle().clone();
        let owned = Arc::new(OwnedRuntime(Some(runtime)));
        let url = url.to_owned();
        let (shared, follower) = wait(&handle, async move { open(&url, &options).await })
            .unwrap_or_else(|e| Err(OpenError::Runtime(e.to_string())))?;
        Ok(PostgresStore {
            shared: Arc::new(shared),
            handle,
            _follower: Arc::new(follower),
            _runtime: owned,
        })
    }

    /// Runs `work` on the store's runtime and awaits it from whatever executor polls this: in
    /// place when this already runs on that runtime (the reference server, which opens the store
    /// with [`Self::connect`] on its own runtime: no task to spawn and wake per call), else as a
    /// task spawned there. In place, a call its caller drops (hyper drops a request whose client
    /// went away) stops with it, as any future: a statement already sent still runs to its end,
    /// and a transaction not committed is rolled back (`tokio-postgres` does on drop), so a write
    /// is applied whole or not at all either way.
    pub(crate) async fn run<T, F>(
        &self,
        work: impl FnOnce(Arc<Shared>) -> F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        if Handle::try_current().is_ok_and(|current| current.id() == self.handle.id()) {
            return work(self.shared.clone()).await;
        }
        let task = self.handle.spawn(work(self.shared.clone()));
        task.await.unwrap_or_else(|e| Err(ended(e)))
    }

    /// Runs `work` on the store's runtime and blocks this thread until it answers.
    pub(crate) fn block<T, F>(&self, work: impl FnOnce(Arc<Shared>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        wait(&self.handle, work(self.shared.clone())).unwrap_or_else(Err)
    }

    /// The number of records held, counted as the memory store counts them (a row of
    /// `revoked_access` or `subjects` is a record; `schema_version` is not).
    pub async fn count_records(&self) -> Result<u64, StoreError> {
        self.run(|shared| async move { count_records(&shared).await })
            .await
    }

    /// [`Self::count_records`] from synchronous code.
    pub fn count_records_blocking(&self) -> Result<u64, StoreError> {
        self.block(|shared| async move { count_records(&shared).await })
    }

    /// Every record in the database, read in one consistent snapshot (`oauth-server export`).
    pub async fn export(&self) -> Result<Vec<oauth_store_memory::Record>, StoreError> {
        self.run(|shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            crate::transfer::export(&mut client).await
        })
        .await
    }

    /// Writes `records` in one transaction, replacing records with the same keys
    /// (`oauth-server import`); returns how many were written. Imported revocations reach
    /// every node's view as any revocation does.
    pub async fn import(
        &self,
        records: Vec<oauth_store_memory::Record>,
    ) -> Result<usize, StoreError> {
        self.run(|shared| async move {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            crate::transfer::import(&mut client, &records).await
        })
        .await
    }

    /// How long ago the revocation view was last known to hold every revocation: normally less
    /// than the catch-up interval; past `Options::view_max_age` the view refuses every access
    /// token (`follow` module has the bound).
    pub fn revocation_lag(&self) -> Duration {
        self.shared.view.age()
    }

    /// Calls `hook` with the name of every account whose failed guesses this node's limiter
    /// must forget: a subject whose credentials changed on any node (a password change, with
    /// its `Effect::RevokeSubject`), and an account [`Self::unlock`]ed from anywhere. The
    /// reference server passes `Throttle::clear_account`.
    pub fn on_accounts_cleared(&self, hook: Arc<dyn Fn(&str) + Send + Sync>) {
        self.shared.view.on_accounts_cleared(hook);
    }

    /// Asks every node connected to the database to forget `account`'s failed guesses
    /// (`oauth-server user unlock`). A node that is not connected at that moment misses it;
    /// its counts are forgotten by themselves within the limiter's window anyway.
    pub async fn unlock(&self, account: &str) -> Result<(), StoreError> {
        let account = account.to_owned();
        self.run(|shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&crate::follow::UNLOCK_CHANNEL, &account],
                )
                .await
                .map(drop)
                .map_err(|e| crate::error::from_db("announcing an unlock", e))
        })
        .await
    }

    /// Connections open and idle in the pool, and its bound.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.shared.pool.status()
    }

    /// How this node's batches of rotations went so far (`batch` module): public clients'
    /// refreshes, and the other rotations.
    pub fn rotation_batches(&self) -> RotationBatches {
        RotationBatches {
            public: self.shared.public_refreshes.counts(),
            confidential: self.shared.rotations.counts(),
        }
    }
}

/// Spawns `work` on `handle` and blocks the calling thread for its answer.
fn wait<T: Send + 'static>(
    handle: &Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| StoreError::unavailable("PostgreSQL store: its runtime is shutting down"))
}

fn ended(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        StoreError::contract_violation(format!("PostgreSQL store: a task panicked: {e}"))
    } else {
        StoreError::unavailable("PostgreSQL store: its runtime is shutting down")
    }
}

async fn count_records(shared: &Shared) -> Result<u64, StoreError> {
    let client = shared.pool.get().await.map_err(from_pool)?;
    let rows = query(
        &client,
        "counting records",
        "SELECT (SELECT count(*) FROM clients) + (SELECT count(*) FROM codes)
              + (SELECT count(*) FROM grants)
              + (SELECT count(refresh_current) FROM grants)
              + (SELECT count(*) FROM legacy_refresh_tokens)
              + (SELECT count(*) FROM devices) + (SELECT count(*) FROM subjects)
              + (SELECT count(*) FROM revoked_access) + (SELECT count(*) FROM counters)
              + (SELECT count(*) FROM users) + (SELECT count(*) FROM consents)",
        &[],
    )
    .await
    .map_err(store_error)?;
    let total: i64 = rows.first().map_or(0, |r| r.get(0));
    Ok(total as u64)
}

async fn execute_op(shared: Arc<Shared>, op: Op) -> Result<Reply, StoreError> {
    match Batchable::of(op) {
        Batchable::Public(op) => shared.public_refreshes.submit(op).await,
        Batchable::Rotation(op) => shared.rotations.submit(op).await,
        Batchable::Not(other) => {
            let mut client = shared.pool.get().await.map_err(from_pool)?;
            crate::ops::execute_op(&mut client, other).await
        }
    }
}

async fn apply_changes(
    shared: Arc<Shared>,
    users: Vec<UserChange>,
    effects: Vec<Effect>,
) -> Result<(), StoreError> {
    if users.is_empty() && effects.is_empty() {
        return Ok(());
    }
    let mut client = shared.pool.get().await.map_err(from_pool)?;
    let changes = crate::effects::apply(&mut client, &users, &effects).await?;
    shared.view.merge(changes);
    Ok(())
}

async fn purge(shared: Arc<Shared>, now: u64) -> Result<PurgeStats, StoreError> {
    let client = shared.pool.get().await.map_err(from_pool)?;
    let stats = crate::purge::purge(&client, now).await?;
    shared.view.purge(now);
    Ok(stats)
}

impl AsyncStore for PostgresStore {
    async fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        self.run(|shared| execute_op(shared, op)).await
    }

    async fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        self.run(|shared| apply_changes(shared, Vec::new(), effects))
            .await
    }

    async fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        self.run(|shared| purge(shared, now)).await
    }
}

impl Store for PostgresStore {
    fn execute(&self, op: Op) -> Result<Reply, StoreError> {
        self.block(|shared| execute_op(shared, op))
    }

    fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError> {
        self.block(|shared| apply_changes(shared, Vec::new(), effects))
    }

    fn purge(&self, now: u64) -> Result<PurgeStats, StoreError> {
        self.block(|shared| purge(shared, now))
    }
}

impl RevocationView for PostgresStore {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.shared.view.access_revoked_at(grant_id)
    }

    fn credential_version(&self, subject: &str) -> u32 {
        self.shared.view.credential_version(subject)
    }

    fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        self.shared.view.status(grant_id, subject)
    }
}

impl Directory for PostgresStore {
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let username = username.as_bytes().to_vec();
        self.run(|shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            let rows = query(
                &client,
                "reading a user",
                "SELECT body FROM users WHERE username = $1",
                &[&username],
            )
            .await
            .map_err(store_error)?;
            rows.first()
                .map(|r| decode::<UserRecord>("user", r.get(0)))
                .transpose()
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.run(|shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            let rows = query(
                &client,
                "listing users",
                "SELECT body FROM users ORDER BY username",
                &[],
            )
            .await
            .map_err(store_error)?;
            rows.iter()
                .map(|r| decode::<UserRecord>("user", r.get(0)))
                .collect()
        })
        .await
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.run(|shared| async move {
            let client = shared.pool.get().await.map_err(from_pool)?;
            let rows = query(
                &client,
                "listing clients",
                "SELECT body, unused_expires_at FROM clients ORDER BY client_id",
                &[],
            )
            .await
            .map_err(store_error)?;
            rows.iter().map(codec::client).collect()
        })
        .await
    }

    async fn change(&self, users: Vec<UserChange>, effects: Vec<Effect>) -> Result<(), StoreError> {
        self.run(|shared| apply_changes(shared, users, effects))
            .await
    }
}
