//! Failed guesses shared between nodes: each node announces its own in small batches and hears
//! everyone else's, so that the limiter of every node counts every node's failures.
//!
//! # How
//!
//! [`PostgresStore::exchange_failures`] starts one task per node with one connection of its own
//! (outside the pool, so a full pool never delays it), named `oauth-server failures` in
//! `pg_stat_activity`. It `LISTEN`s on [`CHANNEL`] and sends each batch the server hands it with
//! `pg_notify` on the same connection. Every other node's connection hears the batch when the
//! `NOTIFY` commits (it is its own transaction: at once); the node's own batches come back to it
//! too and are skipped, by the sending backend's process id. What a batch says is the server's
//! business (a text payload under PostgreSQL's limit of 8000 bytes); this module only carries it.
//!
//! # What may be lost, and the bound
//!
//! Nothing is stored: a node that is not connected when a batch is sent never hears it, and a
//! batch handed over while this node's connection is down (or when [`QUEUE`] batches already
//! wait) is dropped. So the sharing is best effort: while the nodes reach the database, a
//! failure counts on every node within one sending interval of the server plus the delivery
//! (milliseconds); during an outage each node counts only its own, as a single node does.
//! The limiter forgets failures after its window anyway, so nothing lost accumulates.
//!
//! The task gives up a connection that fails and connects again, once a second at most.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

use crate::PostgresStore;

/// The channel failure batches are announced on.
pub(crate) const CHANNEL: &str = "oauth_failures";

/// The `application_name` of the exchanging connection.
const APPLICATION_NAME: &str = "oauth-server failures";

/// Batches waiting to be sent at most; a further one is dropped.
pub const QUEUE: usize = 64;

/// The longest payload PostgreSQL's `NOTIFY` carries is 7999 bytes; a longer batch is refused.
pub const MAX_PAYLOAD: usize = 7999;

/// The pause between failed connection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// What is told each payload another node sent.
pub type OnRemote = Arc<dyn Fn(&str) + Send + Sync>;

/// The sending end of [`PostgresStore::exchange_failures`]; dropping it stops the exchange.
#[derive(Debug)]
pub struct FailureExchange {
    outgoing: mpsc::Sender<String>,
    listening: watch::Receiver<bool>,
    handle: tokio::runtime::Handle,
    task: tokio::task::AbortHandle,
}

impl Drop for FailureExchange {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FailureExchange {
    /// Hands a batch over for sending to the other nodes. False when it is dropped instead: longer
    /// than [`MAX_PAYLOAD`], or [`QUEUE`] batches already wait (see the module docs).
    pub fn send(&self, payload: String) -> bool {
        payload.len() <= MAX_PAYLOAD && self.outgoing.try_send(payload).is_ok()
    }

    /// Waits until the exchange listens (so that it hears what the other nodes send from now
    /// on), at most `within`; false if it did not by then. A server waits for it before it
    /// takes requests.
    /// Works from any executor, as the store's calls do.
    pub async fn listening(&self, within: Duration) -> bool {
        let mut listening = self.listening.clone();
        let waiting = self.handle.spawn(async move {
            tokio::time::timeout(within, listening.wait_for(|l| *l))
                .await
                .is_ok_and(|r| r.is_ok())
        });
        waiting.await.unwrap_or(false)
    }
}

impl PostgresStore {
    /// Starts sharing failure batches with the other nodes on this database: what is handed to
    /// [`FailureExchange::send`] reaches every other node's `on_remote` (see the module docs).
    pub fn exchange_failures(&self, on_remote: OnRemote) -> FailureExchange {
        let (outgoing, queue) = mpsc::channel(QUEUE);
        let (listening_tx, listening) = watch::channel(false);
        let mut config = self.shared.config.clone();
        config.application_name(APPLICATION_NAME);
        let connector = self.shared.connector.clone();
        let task = self
            .handle
            .spawn(run(config, connector, queue, on_remote, listening_tx));
        FailureExchange {
            outgoing,
            listening,
            handle: self.handle.clone(),
            task: task.abort_handle(),
        }
    }
}

async fn run(
    config: tokio_postgres::Config,
    connector: crate::tls::Connector,
    mut queue: mpsc::Receiver<String>,
    on_remote: OnRemote,
    listening: watch::Sender<bool>,
) {
    loop {
        let started = Instant::now();
        let ended = session(&config, &connector, &mut queue, &on_remote, &listening).await;
        listening.send_replace(false);
        match ended {
            // The sending end is gone: the exchange is over.
            Ok(Ended::Dropped) => return,
            Ok(Ended::Lost) | Err(_) => {}
        }
        // Batches handed over while disconnected are stale by the time a connection is back.
        while queue.try_recv().is_ok() {}
        tokio::time::sleep(RECONNECT_PAUSE.saturating_sub(started.elapsed())).await;
    }
}

enum Ended {
    Dropped,
    Lost,
}

/// One connection: listen, then send each batch handed over, until either end goes.
async fn session(
    config: &tokio_postgres::Config,
    connector: &crate::tls::Connector,
    queue: &mut mpsc::Receiver<String>,
    on_remote: &OnRemote,
    listening: &watch::Sender<bool>,
) -> Result<Ended, tokio_postgres::Error> {
    let (client, mut connection) = connector.connect(config).await?;
    let (lost_tx, mut lost) = mpsc::channel::<()>(1);
    let own_pid = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let pid = own_pid.clone();
    let hook = on_remote.clone();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let own = pid.load(std::sync::atomic::Ordering::Relaxed);
                    if n.channel() == CHANNEL && n.process_id() != own {
                        hook(n.payload());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        drop(lost_tx);
    });
    let row = client.query_one("SELECT pg_backend_pid()", &[]).await?;
    own_pid.store(row.get(0), std::sync::atomic::Ordering::Relaxed);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let notify = client.prepare("SELECT pg_notify($1, $2)").await?;
    listening.send_replace(true);
    loop {
        tokio::select! {
            batch = queue.recv() => match batch {
                Some(payload) => {
                    client.execute(&notify, &[&CHANNEL, &payload]).await?;
                }
                None => return Ok(Ended::Dropped),
            },
            _ = lost.recv() => return Ok(Ended::Lost),
        }
    }
}
