//! The follower: how a revocation made through one node reaches every node's revocation view.
//! Changes of the server's keys ride along: the same wake-ups and catch-ups read them, so they
//! keep the same bound ([`keys`](crate::keys)).
//!
//! # The bound
//!
//! **While a node reaches the database, a revocation committed through any node is refused by
//! it within 1 s** (`Options::catch_up_interval`, 500 ms, plus the time of one catch-up query):
//! normally within milliseconds, through the notification; at worst by the next periodic
//! catch-up, when a notification was lost (the listening connection dropped and came back).
//! A node that cannot reach the database keeps its view for `Options::view_max_age` (30 s) and
//! then refuses every access token ([`view`](crate::view)); so no node accepts a token revoked
//! elsewhere for longer than that, whatever fails.
//!
//! # How
//!
//! Each node holds one connection of its own (outside the pool, so a full pool never delays
//! it), named `oauth-server revocations` in `pg_stat_activity`, which `LISTEN`s on
//! [`CHANNEL`]. Every transaction that writes a revocation ends with `NOTIFY` on it, which
//! PostgreSQL delivers to the listeners when (and only if) the transaction commits. The
//! notification carries nothing: it only wakes the follower, which then reads every row of
//! `revoked_access` and `subjects` whose `revocation_seq` is above the highest it has read from
//! that table (its watermark). The same catch-up runs every `catch_up_interval` without a
//! notification, and first thing after each (re)connection, so a notification sent while the
//! connection was down, or lost in any other way, costs at most one interval.
//!
//! # Why no revocation slips under the watermark
//!
//! Sequence numbers are taken before commit, so two transactions could commit out of their
//! order: a catch-up could see number 8 committed while 7 is still open, move its watermark to 8,
//! and never read 7. To exclude that, every transaction that takes a `revocation_seq` first takes
//! one transaction-scoped advisory lock ([`REVOCATION_LOCK`], released only after the commit is
//! visible), so revoking transactions run one at a time across all nodes and commit in the order
//! of their numbers. The rows a catch-up's snapshot sees are then, in each table, exactly those
//! numbered up to some point: nothing below the watermark can appear later. (Each table keeps
//! its own watermark, because the two reads are two snapshots.) Revocations are rare next to
//! token issuance (sign-outs, refresh token reuse, deleted clients), so running them one at a
//! time costs little; and the lock is taken before any row lock, so it adds no deadlock.
//!
//! The follower gives up a connection whose catch-up does not answer within `connect_timeout`
//! (a silently dropped network path) and connects again, once a second at most.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Statement};

use crate::codec::{self, from_time};
use crate::keys::{self, KeyWatch};
use crate::view::{RevocationCache, Revoked, Version, ViewChanges};

/// The channel revocations are announced on.
pub(crate) const CHANNEL: &str = "oauth_revocation";

/// The channel unlocks are announced on, the account's name as the payload
/// ([`crate::PostgresStore::unlock`]).
pub(crate) const UNLOCK_CHANNEL: &str = "oauth_unlock";

/// The advisory lock every revoking transaction holds until it ends ("oauthrev" in ASCII).
pub(crate) const REVOCATION_LOCK: i64 = 0x6f61_7574_6872_6576;

/// The `application_name` of the listening connection.
pub(crate) const APPLICATION_NAME: &str = "oauth-server revocations";

/// The highest `revocation_seq` read from each table.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Watermarks {
    pub(crate) access: i64,
    pub(crate) subjects: i64,
}

impl Watermarks {
    /// The marks after `changes` was read.
    pub(crate) fn after(mut self, changes: &ViewChanges) -> Self {
        for (_, r) in &changes.access {
            self.access = self.access.max(r.seq);
        }
        for (_, v) in &changes.subjects {
            self.subjects = self.subjects.max(v.seq);
        }
        self
    }
}

/// What the follower needs.
pub(crate) struct Follower {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) connector: crate::tls::Connector,
    pub(crate) view: Arc<RevocationCache>,
    /// Key changes are read on the same wake-ups and catch-ups ([`crate::keys`]).
    pub(crate) keys: Arc<KeyWatch>,
    pub(crate) marks: Watermarks,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// The pause between failed connection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

impl Follower {
    /// Follows the other nodes' revocations until the task is aborted (when the store goes).
    pub(crate) async fn run(mut self) {
        self.config.application_name(APPLICATION_NAME);
        self.config.connect_timeout(self.timeout);
        loop {
            let started = Instant::now();
            // The session ended or never began; nothing is lost, the catch-up reads it all.
            let _ = self.session().await;
            // A connection that lasted retries at once; one that keeps failing, once a second.
            let pause = RECONNECT_PAUSE.saturating_sub(started.elapsed());
            tokio::time::sleep(pause).await;
        }
    }

    /// One connection: listen, catch up, then catch up on each notification and each interval,
    /// until the connection fails.
    async fn session(&mut self) -> Result<(), tokio_postgres::Error> {
        let (client, mut connection) = self.connector.connect(&self.config).await?;
        // The connection is driven by a task of its own, which passes notifications on; it ends
        // (closing the channel) when the connection fails or the client is dropped.
        let (wake, mut woken) = mpsc::channel::<()>(1);
        let view = self.view.clone();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == UNLOCK_CHANNEL => {
                        view.account_cleared(n.payload().as_bytes());
                    }
                    Some(Ok(AsyncMessage::Notification(_))) => {
                        // A full channel already holds a wake-up: the catch-up reads all anyway.
                        let _ = wake.try_send(());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        });
        client
            .batch_execute(&format!(
                "LISTEN {CHANNEL}; LISTEN {UNLOCK_CHANNEL}; LISTEN {}",
                keys::CHANNEL
            ))
            .await?;
        let statements = Statements::prepare(&client).await?;
        loop {
            let began = Instant::now();
            match tokio::time::timeout(self.timeout, self.catch_up(&client, &statements)).await {
                Ok(result) => result?,
                // Unanswered: give the connection up and make another.
                Err(_) => return Ok(()),
            }
            self.view.confirm(began);
            match tokio::time::timeout(self.interval, woken.recv()).await {
                Ok(Some(())) | Err(_) => {}
                // The connection ended.
                Ok(None) => return Ok(()),
            }
        }
    }

    /// Reads every revocation above the watermarks into the view.
    async fn catch_up(
        &mut self,
        client: &Client,
        statements: &Statements,
    ) -> Result<(), tokio_postgres::Error> {
        let mut changes = ViewChanges::default();
        for row in client
            .query(&statements.access, &[&self.marks.access])
            .await?
        {
            // A grant id of the wrong length matches no token; skip it rather than stall.
            let Ok(grant) = codec::grant_id(row.get(0)) else {
                continue;
            };
            changes.access.push((
                grant,
                Revoked {
                    at: from_time(row.get(1)),
                    keep_until: from_time(row.get(2)),
                    seq: row.get(3),
                },
            ));
        }
        for row in client
            .query(&statements.subjects, &[&self.marks.subjects])
            .await?
        {
            let subject: &[u8] = row.get(0);
            changes.subjects.push((
                subject.to_vec(),
                Version {
                    version: crate::ops::version(row.get(1)),
                    seq: row.get(2),
                },
            ));
        }
        self.marks = self.marks.after(&changes);
        self.view.merge(changes);
        self.keys.catch_up(client, &statements.keys).await
    }
}

/// The catch-up's two statements, prepared once per connection.
struct Statements {
    access: Statement,
    subjects: Statement,
    keys: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Statements {
            access: client
                .prepare(
                    "SELECT grant_id, revoked_at, keep_until, revocation_seq FROM revoked_access
                     WHERE revocation_seq > $1",
                )
                .await?,
            subjects: client
                .prepare(
                    "SELECT subject, credential_version, revocation_seq FROM subjects
                     WHERE revocation_seq > $1",
                )
                .await?,
            keys: client.prepare(keys::NEWER).await?,
        })
    }
}
