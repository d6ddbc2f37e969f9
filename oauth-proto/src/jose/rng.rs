//! The engine's injected [`Random`] as the `rand_core` generator the RustCrypto crates take.
//!
//! Key generation and RSA blinding draw from it; the engine still never reads the operating
//! system's randomness itself (the driver's `Random` is the only source).

use std::convert::Infallible;

use crate::random::Random;

/// Borrows a [`Random`] as a `rand_core` cryptographic generator.
pub(crate) struct RandomRng<'a>(pub(crate) &'a mut dyn Random);

impl rand_core::TryRng for RandomRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

// `Random`'s contract: production drivers back it with a CSPRNG.
impl rand_core::TryCryptoRng for RandomRng<'_> {}
