//! Purging a store one shard at a time, so that the store's lock is never held for a whole purge.
//!
//! A store takes its write lock for each call of `step` and releases it before the next, so other
//! requests run between steps instead of waiting for the whole purge
//! ([`MemoryState::purge_shard`](crate::MemoryState::purge_shard) says what that saves). The
//! asynchronous form also hands the thread back to the executor between steps, so a purge of a
//! large store does not hold a runtime worker either.
//!
//! Releasing the lock is not enough by itself: a plain unlock wakes the waiting threads, and the
//! purge takes the lock again for its next step before any of them has run. Measured with
//! `cargo bench -p conformance --bench purge`, a reader then waited for the whole purge just the
//! same. So each step ends with [`fair_step`]'s fair unlock, which hands the lock to the threads
//! waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use oauth_proto::store::PurgeStats;
use parking_lot::RwLockWriteGuard;

use crate::sharded::SHARDS;

/// Runs `step` for every shard in turn and adds up what they removed; stops at the first error.
pub fn purge_in_steps<E>(
    mut step: impl FnMut(usize) -> Result<PurgeStats, E>,
) -> Result<PurgeStats, E> {
    let mut total = PurgeStats::default();
    for shard in 0..SHARDS {
        total.removed += step(shard)?.removed;
    }
    Ok(total)
}

/// [`purge_in_steps`], yielding to the executor after each step.
pub async fn purge_in_steps_async<E>(
    mut step: impl FnMut(usize) -> Result<PurgeStats, E>,
) -> Result<PurgeStats, E> {
    let mut total = PurgeStats::default();
    for shard in 0..SHARDS {
        total.removed += step(shard)?.removed;
        YieldNow(false).await;
    }
    Ok(total)
}

/// Runs `step` on the locked state, then unlocks fairly: threads waiting for the lock get it before
/// this thread can take it again.
pub fn fair_step<T, R>(mut guard: RwLockWriteGuard<'_, T>, step: impl FnOnce(&mut T) -> R) -> R {
    let result = step(&mut guard);
    RwLockWriteGuard::unlock_fair(guard);
    result
}

/// Pending once (asking to be polled again at once), then ready: lets the executor run other
/// tasks. Written here because the store depends on no runtime.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct CountWakes(std::sync::atomic::AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn every_shard_is_one_step_and_the_totals_add_up() {
        let mut seen = Vec::new();
        let total = purge_in_steps::<()>(|shard| {
            seen.push(shard);
            Ok(PurgeStats { removed: 2 })
        });
        assert_eq!(seen, (0..SHARDS).collect::<Vec<_>>());
        assert_eq!(
            total,
            Ok(PurgeStats {
                removed: 2 * SHARDS as u64
            })
        );
    }

    #[test]
    fn an_error_stops_the_steps() {
        let mut steps = 0;
        let result = purge_in_steps(|shard| {
            steps += 1;
            if shard == 3 {
                Err("disk full")
            } else {
                Ok(PurgeStats { removed: 1 })
            }
        });
        assert_eq!(result, Err("disk full"));
        assert_eq!(steps, 4);
    }

    #[test]
    fn the_async_form_yields_between_steps() {
        let wakes = Arc::new(CountWakes(0.into()));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let steps = std::cell::Cell::new(0);
        let mut purge = std::pin::pin!(purge_in_steps_async::<()>(|_| {
            steps.set(steps.get() + 1);
            Ok(PurgeStats { removed: 1 })
        }));
        let mut polls = 1;
        let total = loop {
            match purge.as_mut().poll(&mut cx) {
                Poll::Ready(total) => break total,
                Poll::Pending => polls += 1,
            }
        };
        assert_eq!(
            total,
            Ok(PurgeStats {
                removed: SHARDS as u64
            })
        );
        assert_eq!(steps.get(), SHARDS);
        assert_eq!(polls, SHARDS + 1, "pending once after every step");
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::SeqCst), SHARDS);
    }
}
