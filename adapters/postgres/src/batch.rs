//! Concurrent refresh-token rotations share one statement: group commit in the store.
//!
//! A rotation is one `UPDATE` of one row, so what it costs PostgreSQL is mostly what any
//! statement and transaction costs, whatever it does: a round trip, starting the executor for the
//! statement's plan, a commit that waits for its WAL to reach the disk, and the wake-ups of the
//! processes on both ends. PostgreSQL already shares the disk flush between commits that wait at
//! once (its own group commit), but not the rest. Under load, several rotations are waiting on a
//! node at any moment, and each one would pay all of it. So a node sends the rotations that are
//! waiting together, as one statement over arrays (one element per rotation), and they commit
//! together: PostgreSQL's cost per rotation falls to the row's own work, and the node makes one
//! round trip for them all. Without concurrency nothing waits: a lone rotation is a batch of one
//! and is sent at once.
//!
//! # How
//!
//! Per kind of rotation ([`Batched`]), a node runs one batch at a time. A rotation that arrives
//! while none runs starts a batch task at once; otherwise it queues, and the batch task, once its
//! batch is committed, takes the queue, up to [`MAX_BATCH`] rotations, as its next batch, until
//! the queue is empty. One batch at a time is what makes the batches: with two at a time, three
//! nodes sharing two cores with PostgreSQL sent 1.7 rotations per statement, and PostgreSQL's
//! CPU time per rotation stayed where it was without batches (123 to 126 µs against 128); with
//! one at a time, 2.7 per statement and 91 to 98 µs (one node: 8 per statement, 31 to 37 µs). A
//! rotation waits for the batch that runs at most about as long as PostgreSQL would have made it
//! wait for its commit anyway: one disk flush.
//!
//! Before it takes the queue, the batch task gathers ([`Batcher::gather`]): the callers it has
//! just answered are, under load, about to send their next rotations (a client refreshing as soon
//! as it can, a busy node's next requests), so it waits until as many rotations wait as did plus
//! the ones it answered, or [`GATHER`] at most, whichever comes first. Without it, a node's
//! callers split into two groups that take turns (the rotations that arrive while one batch
//! commits go out as the next one), and each batch carries half of them: with three nodes, 2.7
//! rotations per statement; with it, 5.3 (all of a node's 16 / 3 callers), PostgreSQL's CPU per
//! rotation fell from 71 to 100 µs to 39 to 47, and three nodes went from 0.41 to 0.59 of
//! pgbench's rate to 0.74 to 0.77. A lone caller is never held: after a batch of one, the wait
//! ends as soon as one rotation waits, and a rotation that finds no batch task starts one at once.
//!
//! More run at once (up to [`MAX_RUNNING`]) only when one is not enough: when a full batch waits
//! (the load is more than one batch at a time carries), and when the batch that runs has taken
//! longer than [`STALL`] (it is stalled, for example on the row lock of a long revocation, and
//! the rotations of other grants should not wait for it): then the next batch starts as if none
//! ran.
//!
//! A batch runs in a task of its own, so a caller that goes away (hyper drops a request whose
//! client left) cannot take its neighbours' answers with it; its own rotation is left out of the
//! batch if the caller went away before the batch was sent (nothing written, as when a call is
//! dropped before its statement is sent), and runs to its end otherwise (as a statement already
//! sent does).
//!
//! # Why a batch is as race-free as its rotations one by one
//!
//! - The batch statement is the one-row statement's `UPDATE`, joined to the arrays by the grant
//!   id: every condition of the compare-and-swap is evaluated for each row on its own, and at
//!   READ COMMITTED a row another transaction is changing is waited for and its conditions
//!   evaluated again on its newest version, exactly as for one row (`refresh` module). A row whose
//!   conditions fail is not updated and does not stop the others.
//! - Two rotations of one family never share a batch ([`Batched::key`]): the second waits for the
//!   next batch and then meets the first one's result, as it would have one by one.
//! - The statement is one transaction: every rotation of a batch is committed, or none is (an
//!   error answers every caller of the batch with it, as each would have had it alone).
//! - A batch is sent in grant-id order, and the plans PostgreSQL makes for the statement visit
//!   the rows in that order (the arrays', or `grants_pkey`'s for `grant_id = ANY`), so two
//!   batches of different nodes do not deadlock with each other. A revocation of a subject or a
//!   client locks its grants in another order, so it can deadlock with a batch holding two of
//!   them (as can batches under any other plan); PostgreSQL then aborts one of the two, and if
//!   that is the batch, its rotations run again one by one (a one-row statement holds no lock
//!   while it waits for one, so it cannot deadlock).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deadpool_postgres::{Client, Pool};
use oauth_proto::store::{Reply, StoreError};
use tokio::sync::{oneshot, Notify};

use crate::error::from_pool;
use crate::sql::{is_retryable, Failure};

/// Batches of one kind that one node runs at a time at most: one normally (see the module docs),
/// more only while a full batch waits or a batch is stalled; each holds a pooled connection.
pub(crate) const MAX_RUNNING: usize = 4;

/// How long a batch may run before it counts as stalled, and the next one starts without waiting
/// for it: far longer than a batch takes (a statement and a commit, about a millisecond), so it
/// only happens when one is stuck, for example waiting for the row lock of a long revocation.
pub(crate) const STALL: Duration = Duration::from_millis(50);

/// Rotations in one batch at most: the arrays a statement is sent stay small, and so does the
/// time its row locks are held.
pub(crate) const MAX_BATCH: usize = 64;

/// How long a batch task waits at most, after answering a batch, for its callers' next
/// rotations ([`Batcher::gather`]): about a round trip to a client on the same network, and
/// short against a rotation's own time (a statement, a commit, a disk flush). The runtime's timer
/// fires on millisecond ticks, so the wait ends 0.5 to 1.5 ms later unless the batch is complete
/// first, which ends it at once. With 0.25, 0.5 and 1 ms, three nodes on two cores reached 0.68,
/// 0.77 and 0.71 of pgbench's rate, one node 0.71, 0.72 and 0.69 (`bench/README.md`).
pub(crate) const GATHER: Duration = Duration::from_micros(500);

/// One kind of rotation that can be batched: the op's values, and the statement that runs a
/// batch of them.
pub(crate) trait Batched: Send + Sync + Sized + 'static {
    /// The row the rotation writes (its grant id): two rotations with one key never share a
    /// batch.
    fn key(&self) -> &[u8];

    /// Runs `batch` (rotations with distinct keys) in one transaction on `client`, and answers
    /// each, in the order of `batch`.
    fn run(
        client: &Client,
        batch: &[Self],
    ) -> impl Future<Output = Result<Vec<Reply>, Failure>> + Send;
}

/// A rotation waiting for its batch, and where its answer goes.
struct Waiting<T> {
    op: T,
    answer: oneshot::Sender<Result<Reply, StoreError>>,
}

struct Queue<T> {
    waiting: VecDeque<Waiting<T>>,
    /// Batch tasks running (at most [`MAX_RUNNING`]).
    running: usize,
    /// Of those, the ones whose batch has run longer than [`STALL`].
    stalled: usize,
    /// While the batch task gathers the next batch: how many waiting rotations wake it.
    gather: Option<usize>,
}

impl<T> Queue<T> {
    /// Counts in a new batch task, unless [`MAX_RUNNING`] run or nothing waits for one.
    fn count_in(&mut self) -> bool {
        let start = self.running < MAX_RUNNING && !self.waiting.is_empty();
        if start {
            self.running += 1;
        }
        start
    }
}

/// How the batches of one kind of rotation went on this node since it started, for
/// `/metrics`: `rotations / batches` is their mean size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Batch statements sent (each one transaction), the one-by-one runs after a deadlock
    /// included.
    pub batches: u64,
    /// Rotations they carried.
    pub rotations: u64,
    /// Batches that PostgreSQL aborted to break a deadlock with a revocation and whose rotations
    /// then ran one by one.
    pub split: u64,
}

/// The batches of one kind of rotation on one node.
pub(crate) struct Batcher<T> {
    pool: Pool,
    queue: Mutex<Queue<T>>,
    /// Wakes the gathering batch task when the next batch is complete.
    gathered: Notify,
    batches: AtomicU64,
    rotations: AtomicU64,
    split: AtomicU64,
}

impl<T> Batcher<T> {
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // Nothing panics while holding the lock; should something, the queue is still whole.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Batched> Batcher<T> {
    pub(crate) fn new(pool: Pool) -> Arc<Self> {
        Arc::new(Batcher {
            pool,
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                running: 0,
                stalled: 0,
                gather: None,
            }),
            gathered: Notify::new(),
            batches: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            split: AtomicU64::new(0),
        })
    }

    /// The counts so far.
    pub(crate) fn counts(&self) -> BatchCounts {
        BatchCounts {
            batches: self.batches.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            split: self.split.load(Relaxed),
        }
    }

    /// Runs `op` in the next batch and answers it. Call it on the store's runtime (the batch
    /// tasks are spawned on the runtime it is called on).
    pub(crate) async fn submit(self: &Arc<Self>, op: T) -> Result<Reply, StoreError> {
        let (answer, answered) = oneshot::channel();
        let (start, gathered) = {
            let mut queue = self.lock();
            queue.waiting.push_back(Waiting { op, answer });
            let gathered = queue.gather.is_some_and(|n| queue.waiting.len() >= n);
            if gathered {
                queue.gather = None;
            }
            // A batch task starts when none runs but stalled ones, or when a full batch waits.
            let start = (queue.running == queue.stalled || queue.waiting.len() >= MAX_BATCH)
                && queue.count_in();
            (start, gathered)
        };
        if gathered {
            self.gathered.notify_waiters();
        }
        if start {
            tokio::spawn(self.clone().drain());
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::unavailable(
                "PostgreSQL store: its runtime is shutting down",
            ))
        })
    }

    /// Starts a batch task, unless [`MAX_RUNNING`] run or nothing waits.
    fn start(self: &Arc<Self>) {
        if self.lock().count_in() {
            tokio::spawn(self.clone().drain());
        }
    }

    /// A batch task: runs batches until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let mut running = Running(Some(self.clone()));
        while let Some(batch) = self.next_batch() {
            let (ops, answers): (Vec<T>, Vec<_>) =
                batch.into_iter().map(|w| (w.op, w.answer)).unzip();
            let run = self.run(&ops);
            tokio::pin!(run);
            // One timer per batch, none per rotation: if the batch runs longer than `STALL`, it
            // counts as stalled, and another batch task takes what waits.
            let replies = tokio::select! {
                biased;
                replies = &mut run => replies,
                () = tokio::time::sleep(STALL) => {
                    let _stalled = Stalled::new(&self);
                    self.start();
                    run.await
                }
            };
            let mut answered = 0;
            for (answer, reply) in answers.into_iter().zip(replies) {
                // A caller that went away meanwhile no longer wants its answer.
                answered += usize::from(answer.send(reply).is_ok());
            }
            self.gather(answered).await;
        }
        running.0 = None; // `next_batch` counted this task out with the lock held.
    }

    /// Waits, at most [`GATHER`], until the rotations waiting are as many as wait now plus
    /// `answered` (the callers just answered, whose next rotations are on their way under load),
    /// so that the next batch carries them too (module docs). Returns at once when they already
    /// wait, or when another batch task runs.
    async fn gather(&self, answered: usize) {
        let gathered = self.gathered.notified();
        tokio::pin!(gathered);
        {
            let mut queue = self.lock();
            let target = (queue.waiting.len() + answered).min(MAX_BATCH);
            if queue.running > 1 || queue.waiting.len() >= target {
                return;
            }
            // Registered before the target is set, so that `submit`'s wake-up cannot be missed
            // (it wakes after releasing the queue's lock, so no lock is taken in the other order);
            // only when there is something to wait for.
            gathered.as_mut().enable();
            queue.gather = Some(target);
        }
        let _ = tokio::time::timeout(GATHER, gathered).await;
        self.lock().gather = None;
    }

    /// The next batch: the queue's oldest rotations with distinct keys whose callers still wait,
    /// at most [`MAX_BATCH`]; `None`, and this task no longer counted as running, when there are
    /// none.
    fn next_batch(&self) -> Option<Vec<Waiting<T>>> {
        let mut queue = self.lock();
        let mut batch: Vec<Waiting<T>> = Vec::new();
        let mut later = VecDeque::new();
        while batch.len() < MAX_BATCH {
            let Some(w) = queue.waiting.pop_front() else {
                break;
            };
            if w.answer.is_closed() {
                continue;
            }
            if batch.iter().any(|b| b.op.key() == w.op.key()) {
                later.push_back(w);
            } else {
                batch.push(w);
            }
        }
        // The rotations left for later go first next time, in their order.
        while let Some(w) = later.pop_back() {
            queue.waiting.push_front(w);
        }
        if batch.is_empty() {
            queue.running -= 1;
            return None;
        }
        // In grant-id order: the order the statement locks the rows in (module docs).
        batch.sort_unstable_by(|a, b| a.op.key().cmp(b.op.key()));
        Some(batch)
    }

    /// Runs `ops` (distinct keys, in key order) as one batch; the reply of each, in their order.
    pub(crate) async fn run(&self, ops: &[T]) -> Vec<Result<Reply, StoreError>> {
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(e) => return vec![Err(from_pool(e)); ops.len()],
        };
        self.batches.fetch_add(1, Relaxed);
        self.rotations.fetch_add(ops.len() as u64, Relaxed);
        match T::run(&client, ops).await {
            Ok(replies) if replies.len() == ops.len() => replies.into_iter().map(Ok).collect(),
            Ok(_) => vec![
                Err(StoreError::contract_violation(
                    "PostgreSQL store: a batch of rotations answered a different number of them",
                ));
                ops.len()
            ],
            // Aborted to break a deadlock with a revocation (module docs): one by one instead.
            Err(Failure::Db(_, e)) if ops.len() > 1 && is_retryable(&e) => {
                self.split.fetch_add(1, Relaxed);
                self.batches.fetch_add(ops.len() as u64, Relaxed);
                let mut replies = Vec::with_capacity(ops.len());
                for op in ops {
                    replies.push(match T::run(&client, std::slice::from_ref(op)).await {
                        Ok(mut one) if one.len() == 1 => Ok(one.remove(0)),
                        Ok(_) => Err(StoreError::contract_violation(
                            "PostgreSQL store: a rotation answered a different number of them",
                        )),
                        Err(f) => Err(f.into_store()),
                    });
                }
                replies
            }
            Err(f) => vec![Err(f.into_store()); ops.len()],
        }
    }
}

/// Counts a batch as stalled while it lives.
struct Stalled<'a, T>(&'a Batcher<T>);

impl<'a, T: Batched> Stalled<'a, T> {
    fn new(batcher: &'a Batcher<T>) -> Self {
        batcher.lock().stalled += 1;
        Stalled(batcher)
    }
}

impl<T> Drop for Stalled<'_, T> {
    fn drop(&mut self) {
        self.0.lock().stalled -= 1;
    }
}

/// Counts a batch task out if it ends without emptying the queue (it panicked, or its runtime
/// is shutting down), and hands the queue to a new one, so that no rotation waits for a task
/// that is gone.
struct Running<T: Batched>(Option<Arc<Batcher<T>>>);

impl<T: Batched> Drop for Running<T> {
    fn drop(&mut self) {
        let Some(batcher) = self.0.take() else {
            return;
        };
        let restart = {
            let mut queue = batcher.lock();
            if queue.waiting.is_empty() {
                queue.running -= 1;
                false
            } else {
                true
            }
        };
        if restart {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(batcher.drain());
            }
        }
    }
}
