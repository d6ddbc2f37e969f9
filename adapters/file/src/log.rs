//! Group commit: the queue between callers and the writer thread, and waiting for durability.
//!
//! Callers append encoded entries to one shared buffer and get a log sequence number (LSN). The
//! writer thread repeatedly takes the whole buffer, writes it as one frame, syncs once, and then
//! advances `durable` to the last LSN it took and wakes everyone waiting for an LSN at or below it.
//! While it syncs, new entries gather for the next round, so N concurrent callers share one fsync
//! instead of queueing for N of them: durability costs latency (one sync), not throughput.
//!
//! Waiting is one mechanism for both kinds of callers: [`Durable`] is a future that registers its
//! task's waker with the LSN it waits for (`AsyncStore` callers await it), and [`Log::wait`] polls
//! the same future with a waker that unparks the calling thread (synchronous `Store` callers). The
//! writer wakes exactly the waiters whose entries it made durable, and the store needs no runtime.
//!
//! A write failure is sticky: it is recorded once, every waiter and every later call gets
//! [`FileStoreError::Failed`], and the writer stops.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use crate::error::FileStoreError;
use crate::format::FRAME_HEADER;

/// The shared queue and durability state.
#[derive(Debug, Default)]
pub(crate) struct Log {
    st: Mutex<LogState>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes a compaction waiting for a journal rotation (and anyone else waiting on state changes).
    done: Condvar,
    /// Mirrors `failure.is_some()` for lock-free checks on the read path.
    failed: AtomicBool,
}

/// Everything behind the log's lock.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// Entries not yet taken by the writer; starts with [`FRAME_HEADER`] reserved bytes when non-empty.
    buf: Vec<u8>,
    /// A drained buffer handed back by the writer, reused to avoid reallocating.
    spare: Vec<u8>,
    /// LSN of the last appended entry.
    appended: u64,
    /// Every entry up to this LSN is on disk.
    durable: u64,
    /// Async waiters: (LSN, waker).
    wakers: Vec<(u64, Waker)>,
    /// The first write failure.
    failure: Option<Arc<FileStoreError>>,
    /// A compaction asked the writer to start a new journal generation.
    rotate: bool,
    /// The writer's answer to `rotate`: the generation it closed. (A failed rotation fails the log.)
    rotated: Option<u64>,
    /// Stop once the buffer is drained.
    closing: bool,
}

/// One round of work for the writer.
pub(crate) struct Batch {
    /// The entries, with [`FRAME_HEADER`] bytes reserved in front (empty if only a rotation).
    pub bytes: Vec<u8>,
    /// The LSN of the last entry in it.
    pub last: u64,
    /// Start a new journal after writing it.
    pub rotate: bool,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // The state behind the lock is plain data updated in single assignments; a panic elsewhere
        // cannot leave it half-written, so a poisoned lock is safe to use.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails fast once a write failed.
    pub(crate) fn check(&self) -> Result<(), FileStoreError> {
        if self.failed.load(Ordering::Acquire) {
            if let Some(f) = &self.lock().failure {
                return Err(FileStoreError::Failed(f.clone()));
            }
        }
        Ok(())
    }

    /// Queues one encoded entry (as `codec::append` wrote it) and returns its LSN. Callers hold the
    /// state's write lock, so LSN order is the order in which changes reached memory.
    pub(crate) fn append(&self, entry: &[u8]) -> Result<u64, FileStoreError> {
        let mut st = self.lock();
        if let Some(f) = &st.failure {
            return Err(FileStoreError::Failed(f.clone()));
        }
        if st.closing {
            return Err(FileStoreError::Closed);
        }
        if st.buf.is_empty() {
            let spare = std::mem::take(&mut st.spare);
            st.buf = spare;
            st.buf.extend_from_slice(&[0; FRAME_HEADER]);
            self.work.notify_one();
        }
        st.buf.extend_from_slice(entry);
        st.appended += 1;
        Ok(st.appended)
    }

    /// The LSN of the last appended entry: waiting for it makes everything seen so far durable.
    pub(crate) fn appended(&self) -> u64 {
        self.lock().appended
    }

    /// Blocks until entry `lsn` is durable.
    ///
    /// The thread parks with its own waker, which the writer wakes only once this entry is durable:
    /// with a shared condvar, every sync would wake all blocked callers, including those whose
    /// entries are still waiting for the next sync.
    pub(crate) fn wait(&self, lsn: u64) -> Result<(), FileStoreError> {
        if self.lock().durable >= lsn {
            return Ok(());
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut durable = self.durable(lsn);
        loop {
            match Pin::new(&mut durable).poll(&mut cx) {
                Poll::Ready(done) => return done,
                Poll::Pending => std::thread::park(),
            }
        }
    }

    /// A future that resolves once entry `lsn` is durable.
    pub(crate) fn durable(&self, lsn: u64) -> Durable<'_> {
        Durable { log: self, lsn }
    }

    /// Asks the writer to close the current journal and start the next generation; blocks until it
    /// has, and returns the generation that was closed. Everything appended before the call is in the
    /// closed journal, and synced.
    pub(crate) fn rotate(&self) -> Result<u64, FileStoreError> {
        let mut st = self.lock();
        if st.closing {
            // The writer may already have stopped; nobody would answer.
            return Err(FileStoreError::Closed);
        }
        st.rotate = true;
        st.rotated = None;
        self.work.notify_one();
        loop {
            if let Some(closed) = st.rotated.take() {
                return Ok(closed);
            }
            if let Some(f) = &st.failure {
                return Err(FileStoreError::Failed(f.clone()));
            }
            st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writer side: waits for work; `None` means stop.
    pub(crate) fn take(&self) -> Option<Batch> {
        let mut st = self.lock();
        loop {
            if st.failure.is_some() {
                return None;
            }
            if !st.buf.is_empty() || st.rotate {
                let bytes = std::mem::take(&mut st.buf);
                let rotate = std::mem::take(&mut st.rotate);
                return Some(Batch {
                    bytes,
                    last: st.appended,
                    rotate,
                });
            }
            if st.closing {
                return None;
            }
            st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writer side: the batch ending at `last` is durable; `rotated` answers a rotation request.
    pub(crate) fn completed(&self, last: u64, mut spare: Vec<u8>, rotated: Option<u64>) {
        let ready = {
            let mut st = self.lock();
            st.durable = st.durable.max(last);
            if rotated.is_some() {
                st.rotated = rotated;
            }
            if st.spare.capacity() < spare.capacity() && spare.capacity() <= 4 << 20 {
                spare.clear();
                st.spare = spare;
            }
            let durable = st.durable;
            let mut ready = Vec::new();
            let mut i = 0;
            while i < st.wakers.len() {
                if st.wakers[i].0 <= durable {
                    ready.push(st.wakers.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
            ready
        };
        self.done.notify_all();
        ready.into_iter().for_each(Waker::wake);
    }

    /// Writer side: a write failed; fail every waiter and every later call.
    pub(crate) fn fail(&self, error: FileStoreError) {
        let ready: Vec<Waker> = {
            let mut st = self.lock();
            st.failure.get_or_insert_with(|| Arc::new(error));
            st.buf = Vec::new();
            self.failed.store(true, Ordering::Release);
            st.wakers.drain(..).map(|(_, w)| w).collect()
        };
        self.done.notify_all();
        ready.into_iter().for_each(Waker::wake);
    }

    /// Tells the writer to stop once everything queued is written.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.work.notify_one();
        self.done.notify_all();
    }

    /// (appended, durable) LSNs.
    pub(crate) fn positions(&self) -> (u64, u64) {
        let st = self.lock();
        (st.appended, st.durable)
    }
}

/// Wakes a parked thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Resolves once an entry is durable (or the store failed). Holds no lock between polls.
#[derive(Debug)]
#[must_use = "a durability wait does nothing unless awaited"]
pub(crate) struct Durable<'a> {
    log: &'a Log,
    lsn: u64,
}

impl Future for Durable<'_> {
    type Output = Result<(), FileStoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.log.lock();
        if st.durable >= self.lsn {
            return Poll::Ready(Ok(()));
        }
        if let Some(f) = &st.failure {
            return Poll::Ready(Err(FileStoreError::Failed(f.clone())));
        }
        let lsn = self.lsn;
        match st
            .wakers
            .iter_mut()
            .find(|(l, w)| *l == lsn && w.will_wake(cx.waker()))
        {
            Some(_) => {}
            None => st.wakers.push((lsn, cx.waker().clone())),
        }
        Poll::Pending
    }
}
