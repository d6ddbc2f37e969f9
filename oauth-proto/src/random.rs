//! The source of randomness, injected by the driver.
//!
//! The engine never reads OS randomness itself: a driver passes something that fills buffers with
//! cryptographically secure bytes (`getrandom` in the adapters), and tests pass a deterministic
//! counter so every transcript is reproducible.
//!
//! That counter, `CounterRandom`, is predictable by design, so a server built with it would hand
//! out guessable codes and tokens. It exists only with the `test-util` cargo feature, which the
//! workspace's tests, benches and fuzz targets enable and nothing that ships does: an embedder
//! cannot pick it by accident.

/// Fills buffers with random bytes. Production drivers must back this with a CSPRNG.
pub trait Random {
    /// Fills `dest` entirely with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Random for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// A deterministic, *insecure* byte source for tests and transcripts: SHA-256 of a counter.
/// Only with the `test-util` feature.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, Default)]
pub struct CounterRandom {
    counter: u64,
}

#[cfg(any(test, feature = "test-util"))]
impl CounterRandom {
    /// Starts the counter at `seed`.
    pub fn new(seed: u64) -> Self {
        CounterRandom { counter: seed }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Random for CounterRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        use sha2::{Digest, Sha256};
        for chunk in dest.chunks_mut(32) {
            self.counter = self.counter.wrapping_add(1);
            let block = Sha256::digest(self.counter.to_be_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}
