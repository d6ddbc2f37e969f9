//! The operating system's randomness, behind the engine's [`Random`] trait.
//!
//! The engine never reads OS randomness itself (it is sans-IO); the adapter passes this source to
//! every flow, and uses it for its own secrets (session ids, CSRF tokens, signing keys, passwords).

use base64::Engine as _;
use oauth_proto::random::Random;

/// Fills buffers from `getrandom` (the kernel's CSPRNG).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        // On the platforms this server supports the kernel source cannot fail once the system has
        // booted; if it ever does, refusing to continue is the only safe answer.
        getrandom::fill(dest).expect("the operating system's random source failed");
    }
}

/// `n` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    OsRandom.fill(&mut buf);
    buf
}

/// A random token of 32 bytes (256 bits), unpadded base64url.
pub fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<32>())
}
