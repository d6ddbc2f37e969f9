//! Loading on two cores: one thread reads, verifies and decodes, the other applies.
//!
//! Replaying a million records is about half decoding (MessagePack, checksums, string allocation)
//! and half inserting into hash maps, so start-up splits the two across threads, handing over
//! decoded batches through a bounded channel (which also bounds the memory in flight).

use std::sync::mpsc;

use crate::error::FileStoreError;

/// Batches in flight between the decoder and the applier.
const IN_FLIGHT: usize = 16;

/// Runs `decode` on a helper thread; every batch it emits is handed to `apply` on this thread, in
/// order. Returns what `decode` returns (after every batch it emitted was applied).
pub(crate) fn run<T, R>(
    decode: impl FnOnce(&mut dyn FnMut(Vec<T>)) -> Result<R, FileStoreError> + Send,
    mut apply: impl FnMut(T),
) -> Result<R, FileStoreError>
where
    T: Send,
    R: Send,
{
    let (tx, rx) = mpsc::sync_channel::<Vec<T>>(IN_FLIGHT);
    std::thread::scope(|scope| {
        let decoder = scope.spawn(move || {
            let mut emit = |batch: Vec<T>| {
                // The receiver only goes away if this thread's caller panicked; nothing to do then.
                let _ = tx.send(batch);
            };
            decode(&mut emit)
        });
        for batch in rx {
            batch.into_iter().for_each(&mut apply);
        }
        decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
